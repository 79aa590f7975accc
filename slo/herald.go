package slo

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"herald"
)

// FromHerald returns the engine's SLO for an SLO of herald's API and its
// burn alerts. Each engine alert is named by its burn alert's id.
func FromHerald(o herald.SLO, alerts []herald.BurnAlert) SLO {
	s := SLO{ID: o.ID, Name: o.Name, Target: o.Target(), Period: o.Period(),
		LowTraffic: LowTrafficPolicy{VolumeAware: o.VolumeAware}}
	for _, a := range alerts {
		b := BurnAlert{Name: cmp.Or(a.ID, Label(a)), Severity: a.Severity} // an unsaved alert is named by what it is
		switch a.AlertType {
		case herald.AlertMultiwindow:
			b.Kind = KindMultiwindow
			b.Long = time.Duration(a.LongWindowMinutes) * time.Minute
			b.Short = time.Duration(a.ShortWindowMinutes) * time.Minute
			b.BurnRate = a.BurnRate
			// Hold a firing alert for one short window, against flapping.
			b.KeepFiringFor = b.Short
		case herald.AlertBudgetRate:
			b.Kind = KindBudgetRate
			b.Window = time.Duration(*a.BudgetRateWindowMinutes) * time.Minute
			b.DecreasePct = float64(*a.BudgetRateDecreaseThresholdPerMillion) / 1e4
		case herald.AlertExhaustionTime:
			b.Kind = KindExhaustionTime
			b.Horizon = time.Duration(*a.ExhaustionMinutes) * time.Minute
		}
		s.Alerts = append(s.Alerts, b)
	}
	return s
}

// Check validates an SLO with its burn alerts as the engine would run
// them: a burn rate the target makes unreachable, say, is refused. Errors
// are EINVALID and name the alert at fault.
func Check(o herald.SLO, alerts []herald.BurnAlert) error {
	if _, err := Validate(FromHerald(o, alerts)); err != nil {
		msg := strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
		if errors.Is(err, ErrInvalid) {
			return herald.Invalid("burn_alert", "invalid", "%s", msg)
		}
		return fmt.Errorf("slo: check: %w", err)
	}
	return nil
}

// DefaultBurnAlerts returns the burn alerts every new SLO gets unless told
// otherwise, as herald multiwindow alerts for period: page at 2 % of the
// budget in 1 h (5 m short window) and 5 % in 6 h (30 m), ticket at 10 % in
// 1 d (2 h) and 10 % in 3 d (6 h). Burn rates follow from the period (14.4,
// 6, 3 and 1 for 30 days). A window longer than the period is left out,
// and so is an alert the target makes unreachable; notes say which.
func DefaultBurnAlerts(o herald.SLO) (alerts []herald.BurnAlert, notes []string) {
	period := o.Period()
	var out []herald.BurnAlert
	for _, a := range DefaultAlerts(period) {
		if a.Long > period {
			notes = append(notes, fmt.Sprintf("default alert %s left out: its %s window is longer than the SLO's period", a.Name, Window(a.Long)))
			continue
		}
		if maxBurn := 1 / (1 - o.Target()); a.BurnRate >= maxBurn {
			notes = append(notes, fmt.Sprintf("default alert %s left out: burn rate %.3g is unreachable at this target (at most %.3g)", a.Name, a.BurnRate, maxBurn))
			continue
		}
		out = append(out, herald.BurnAlert{
			AlertType: herald.AlertMultiwindow, Severity: a.Severity,
			LongWindowMinutes: int(a.Long / time.Minute), ShortWindowMinutes: int(a.Short / time.Minute),
			BurnRate:    a.BurnRate,
			Description: fmt.Sprintf("%.0f%% of the budget spent in %s (burn rate %.3g)", a.BudgetFraction*100, Window(a.Long), a.BurnRate),
			SLO:         herald.SLORef{ID: o.ID}, Recipients: []herald.TriggerRecipient{},
		})
	}
	return out, notes
}

// Window writes a duration the way people say it: 5m, 6h, 3d.
func Window(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmt.Sprintf("%dm", d/time.Minute)
}

// Label names a burn alert by what it is, for people: "page 1h/5m",
// "ticket budget rate 1h", "page exhaustion 4h".
func Label(a herald.BurnAlert) string {
	minutes := func(m *int) string {
		switch {
		case m == nil:
			return "?"
		case *m == 0:
			return "0m"
		}
		return Window(time.Duration(*m) * time.Minute)
	}
	switch a.AlertType {
	case herald.AlertMultiwindow:
		return fmt.Sprintf("%s %s/%s", a.Severity, Window(time.Duration(a.LongWindowMinutes)*time.Minute),
			Window(time.Duration(a.ShortWindowMinutes)*time.Minute))
	case herald.AlertBudgetRate:
		return a.Severity + " budget rate " + minutes(a.BudgetRateWindowMinutes)
	case herald.AlertExhaustionTime:
		return a.Severity + " exhaustion " + minutes(a.ExhaustionMinutes)
	}
	return a.Severity + " " + a.AlertType
}
