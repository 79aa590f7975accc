// Package slo is herald's pure SLO engine: per-minute judgement buckets,
// multiwindow burn-rate, budget-rate and exhaustion-time alerts with an
// ok → pending → firing → resolving → ok lifecycle, and a no-data alert.
// It does no I/O; callers feed judgements and call Evaluate once a minute.
package slo

import (
	"errors"
	"fmt"
	"time"
)

// Alert kinds.
const (
	KindMultiwindow    = "multiwindow"
	KindBudgetRate     = "budget_rate"
	KindExhaustionTime = "exhaustion_time"
)

// Severities. A firing page inhibits the tickets of the same SLO.
const (
	SeverityPage   = "page"
	SeverityTicket = "ticket"
)

// NoDataAlert is the name of the distinct alert raised when judgements stop
// arriving while traffic is expected.
const NoDataAlert = "SLINoData"

// DefaultPeriod is the rolling period used when SLO.Period is zero.
const DefaultPeriod = 30 * 24 * time.Hour

// ErrInvalid is wrapped by every error Validate returns.
var ErrInvalid = errors.New("slo: invalid")

// SLO is one service level objective over a stream of good/bad judgements.
type SLO struct {
	ID, Name string
	// Target is the good fraction, 0 < Target < 1 (0.999).
	Target float64
	// Period is the rolling period. Defaults to 30 days.
	Period time.Duration
	// Alerts are evaluated in order, pages before tickets.
	Alerts []BurnAlert
	// LowTraffic adjusts alerting for sparse streams.
	LowTraffic LowTrafficPolicy
	// ExpectedEventsPerHour, when > 0, lets Validate warn about budgets
	// too small to alert on. Zero skips those warnings.
	ExpectedEventsPerHour float64
}

// BurnAlert is one alert rule of an SLO.
type BurnAlert struct {
	// Name labels the alert's transitions.
	Name string
	// Severity is SeverityPage or SeverityTicket.
	Severity string
	// Kind is KindMultiwindow, KindBudgetRate or KindExhaustionTime.
	Kind string

	// Long is the multiwindow long window.
	Long time.Duration
	// Short is the multiwindow short window. Defaults to Long/12.
	Short time.Duration
	// BurnRate is the multiwindow threshold. Defaults to
	// BudgetFraction × Period / Long.
	BurnRate float64
	// BudgetFraction is the share of the budget the rule allows to be spent
	// in Long (0.02). Used to derive BurnRate and by volume-aware mode.
	BudgetFraction float64

	// Window and DecreasePct define a budget_rate alert: fire when at least
	// DecreasePct percent of the period's budget was spent within Window.
	Window      time.Duration
	DecreasePct float64

	// Horizon defines an exhaustion_time alert: fire when the remaining
	// budget, spent at the burn rate of the last Horizon/4, lasts less than
	// Horizon. Zero fires when the budget is spent.
	Horizon time.Duration

	// For is how long the condition must hold before firing. Zero fires at
	// the first true evaluation.
	For time.Duration
	// KeepFiringFor is the number of consecutive false one-minute
	// evaluations, as a duration, before a firing alert resolves. Zero
	// resolves at the first false evaluation.
	KeepFiringFor time.Duration
	// MinBadEvents is the least number of bad judgements in the long window
	// for a multiwindow alert to fire. Defaults to 3 for pages, 1 otherwise.
	MinBadEvents int
}

// LowTrafficPolicy adjusts alerting for sparse streams.
type LowTrafficPolicy struct {
	// VolumeAware additionally requires a multiwindow alert's long window to
	// have spent at least BudgetFraction of the period's budget in absolute
	// events, so a few failures on a quiet night do not page.
	VolumeAware bool
	// NoDataAfter overrides the silence after which SLINoData fires.
	// Defaults to B_max × (1−Target) × Long + For of the fastest
	// multiwindow alert.
	NoDataAfter time.Duration
}

// DefaultAlerts returns the four default multiwindow alerts with burn rates
// derived for period: page 2 %/1 h/5 m, page 5 %/6 h/30 m, ticket
// 10 %/1 d/2 h and ticket 10 %/3 d/6 h (14.4, 6, 3 and 1 for 30 days).
func DefaultAlerts(period time.Duration) []BurnAlert {
	mk := func(name, sev string, f float64, long, short time.Duration) BurnAlert {
		return BurnAlert{
			Name: name, Severity: sev, Kind: KindMultiwindow,
			Long: long, Short: short, BudgetFraction: f,
			BurnRate: BurnRateFor(f, period, long),
		}
	}
	return []BurnAlert{
		mk("page-1h", SeverityPage, 0.02, time.Hour, 5*time.Minute),
		mk("page-6h", SeverityPage, 0.05, 6*time.Hour, 30*time.Minute),
		mk("ticket-1d", SeverityTicket, 0.10, 24*time.Hour, 2*time.Hour),
		mk("ticket-3d", SeverityTicket, 0.10, 72*time.Hour, 6*time.Hour),
	}
}

// Burn returns the burn rate of an error ratio under target:
// errorRatio / (1 − target).
func Burn(errorRatio, target float64) float64 { return errorRatio / (1 - target) }

// BurnRateFor returns the burn rate that spends fraction of the budget in
// window: fraction × period / window.
func BurnRateFor(fraction float64, period, window time.Duration) float64 {
	if window <= 0 {
		return 0
	}
	return fraction * float64(period) / float64(window)
}

// ErrorRatioThreshold returns the error ratio at which burn is reached.
func ErrorRatioThreshold(burn, target float64) float64 { return burn * (1 - target) }

// ExhaustionTime returns how long a full budget lasts at burn: period/burn.
func ExhaustionTime(period time.Duration, burn float64) time.Duration {
	return time.Duration(float64(period) / burn)
}

// withDefaults returns s with its documented defaults applied.
func (s SLO) withDefaults() SLO {
	if s.Period == 0 {
		s.Period = DefaultPeriod
	}
	alerts := make([]BurnAlert, len(s.Alerts))
	for i, a := range s.Alerts {
		if a.Kind == "" {
			a.Kind = KindMultiwindow
		}
		if a.Kind == KindMultiwindow {
			if a.Short == 0 {
				a.Short = a.Long / 12
			}
			if a.BurnRate == 0 {
				a.BurnRate = BurnRateFor(a.BudgetFraction, s.Period, a.Long)
			}
			if a.BudgetFraction == 0 && s.Period > 0 {
				a.BudgetFraction = a.BurnRate * float64(a.Long) / float64(s.Period)
			}
		}
		if a.MinBadEvents == 0 {
			a.MinBadEvents = 1
			if a.Severity == SeverityPage {
				a.MinBadEvents = 3
			}
		}
		alerts[i] = a
	}
	s.Alerts = alerts
	return s
}

// Validate checks s with its defaults applied. It returns an error wrapping
// ErrInvalid for a target outside (0, 1), a burn rate that can never be
// reached (≥ 1/(1−Target)), Short ≥ Long, or a window longer than the
// period. When ExpectedEventsPerHour is set it warns when the expected
// budget is under 10 events per period and when a single failure would trip
// a page.
func Validate(s SLO) (warnings []string, err error) {
	s = s.withDefaults()
	if !(s.Target > 0 && s.Target < 1) {
		return nil, fmt.Errorf("%w: target %v not in (0, 1)", ErrInvalid, s.Target)
	}
	if s.Period < time.Minute {
		return nil, fmt.Errorf("%w: period %v shorter than a minute", ErrInvalid, s.Period)
	}
	maxBurn := 1 / (1 - s.Target)
	for _, a := range s.Alerts {
		switch a.Kind {
		case KindMultiwindow:
			if a.Long <= 0 || a.Short <= 0 {
				return nil, fmt.Errorf("%w: alert %q: windows must be positive", ErrInvalid, a.Name)
			}
			if a.Short >= a.Long {
				return nil, fmt.Errorf("%w: alert %q: short window %v not shorter than long %v", ErrInvalid, a.Name, a.Short, a.Long)
			}
			if a.Long > s.Period {
				return nil, fmt.Errorf("%w: alert %q: long window %v exceeds period %v", ErrInvalid, a.Name, a.Long, s.Period)
			}
			if a.BurnRate <= 0 || a.BurnRate >= maxBurn {
				return nil, fmt.Errorf("%w: alert %q: burn rate %v unreachable (max %.4g at target %v)", ErrInvalid, a.Name, a.BurnRate, maxBurn, s.Target)
			}
		case KindBudgetRate:
			if a.Window <= 0 || a.Window > s.Period {
				return nil, fmt.Errorf("%w: alert %q: window %v not in (0, period]", ErrInvalid, a.Name, a.Window)
			}
			if !(a.DecreasePct > 0 && a.DecreasePct <= 100) {
				return nil, fmt.Errorf("%w: alert %q: decrease %v%% not in (0, 100]", ErrInvalid, a.Name, a.DecreasePct)
			}
		case KindExhaustionTime:
			if a.Horizon < 0 {
				return nil, fmt.Errorf("%w: alert %q: horizon cannot be negative", ErrInvalid, a.Name)
			}
		default:
			return nil, fmt.Errorf("%w: alert %q: unknown kind %q", ErrInvalid, a.Name, a.Kind)
		}
	}
	if r := s.ExpectedEventsPerHour; r > 0 {
		budget := (1 - s.Target) * r * s.Period.Hours()
		if budget < 10 {
			warnings = append(warnings, fmt.Sprintf("expected budget is %.1f events per %s (< 10): alerts will be coarse", budget, Window(s.Period)))
		}
		for _, a := range s.Alerts {
			if a.Kind != KindMultiwindow || a.Severity != SeverityPage {
				continue
			}
			need := 1 / (a.BurnRate * (1 - s.Target)) // events per long window
			if got := r * a.Long.Hours(); got < need {
				warnings = append(warnings, fmt.Sprintf("alert %q: %.3g events per %s is below %.4g, so a single failure trips the page", a.Name, got, Window(a.Long), need))
			}
		}
	}
	return warnings, nil
}

// ExclusionDrift reports whether the excluded share of attempts grew by at
// least factor over its baseline (curExcluded/curAttempts ≥ factor ×
// baseExcluded/baseAttempts). It guards exclusions, which a wrong-address
// bug would otherwise hide in. A zero baseline share drifts on any
// exclusion.
func ExclusionDrift(baseExcluded, baseAttempts, curExcluded, curAttempts int64, factor float64) bool {
	if curAttempts <= 0 || curExcluded <= 0 {
		return false
	}
	if baseAttempts <= 0 {
		return false
	}
	return float64(curExcluded)*float64(baseAttempts) >= factor*float64(baseExcluded)*float64(curAttempts)
}
