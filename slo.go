package herald

import (
	"fmt"
	"strings"
	"time"
)

// DeliveryDataset is the reserved dataset slug of herald's built-in
// delivery SLOs: their judgements come from the delivery ledger, not from
// events. Like AllDatasets, no event dataset may take this name.
const DeliveryDataset = "__deliveries__"

// The SLIs of the built-in delivery SLOs, as their sli.alias.
const (
	// SLIDelivered: good = confirmed delivered; bad = failed, dropped,
	// unconfirmed, or not final by the channel's deadline; excluded =
	// recipient-caused bounces.
	SLIDelivered = "herald.delivered"
	// SLIDeliveredWithin: good = delivered within the channel's latency
	// threshold of its creation; judged at creation + threshold at the
	// latest.
	SLIDeliveredWithin = "herald.delivered_within"
)

// SLO is a service level objective, in the shape of Honeycomb's SLO API
// (reference: honeycomb-api.md §6), with herald's additions marked.
type SLO struct {
	ID               string     `json:"id"`
	Name             string     `json:"name"`
	Description      string     `json:"description"`
	SLI              SLIRef     `json:"sli"`
	TimePeriodDays   int        `json:"time_period_days"`
	TargetPerMillion int        `json:"target_per_million"`
	Tags             []Tag      `json:"tags"`
	DatasetSlugs     []string   `json:"dataset_slugs"`
	ResetAt          *time.Time `json:"reset_at"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`

	// Dataset is the slug the SLO lives in (herald's).
	Dataset string `json:"-"`
	// Channel is the delivery channel a built-in delivery SLO watches
	// (herald's; empty for SLOs over events).
	Channel string `json:"channel,omitempty"`
	// VolumeAware makes multiwindow alerts also require the long window to
	// have spent their budget fraction in absolute events (herald's; see
	// docs/slos.md).
	VolumeAware bool `json:"volume_aware,omitempty"`
}

// SLIRef names the boolean derived column an SLO counts.
type SLIRef struct {
	Alias string `json:"alias"`
}

// Target returns the SLO's target as a fraction (0.999).
func (s SLO) Target() float64 { return float64(s.TargetPerMillion) / 1e6 }

// Period returns the SLO's rolling period.
func (s SLO) Period() time.Duration { return time.Duration(s.TimePeriodDays) * 24 * time.Hour }

// BuiltIn reports whether s is one of herald's delivery SLOs.
func (s SLO) BuiltIn() bool { return s.Dataset == DeliveryDataset }

// Normalize checks s by the rules of Honeycomb's SLO API and fills its
// defaults (tags [], dataset_slugs [dataset]). Returns EINVALID naming the
// first field at fault.
func (s SLO) Normalize() (SLO, error) {
	switch n := len([]rune(strings.TrimSpace(s.Name))); {
	case n == 0:
		return s, Invalid("name", "missing", "an SLO needs a name")
	case n > 120:
		return s, Invalid("name", "invalid", "at most 120 characters")
	}
	if len([]rune(s.Description)) > 1023 {
		return s, Invalid("description", "invalid", "at most 1023 characters")
	}
	if n := len(s.SLI.Alias); n == 0 || n > 255 {
		return s, Invalid("sli.alias", "invalid", "the alias of a derived column, 1–255 characters")
	}
	if s.TimePeriodDays < 1 || s.TimePeriodDays > 90 {
		return s, Invalid("time_period_days", "invalid", "between 1 and 90 days")
	}
	if s.TargetPerMillion <= 0 || s.TargetPerMillion > 999999 {
		return s, Invalid("target_per_million", "invalid", "between 1 and 999999 (99.9%% is 999000)")
	}
	if err := checkTags(s.Tags); err != nil {
		return s, err
	}
	if s.Tags == nil {
		s.Tags = []Tag{}
	}
	switch {
	case s.Dataset == AllDatasets:
		return s, Invalid("dataset", "invalid", "SLOs over several datasets are not supported yet; create the SLO in its dataset")
	case len(s.DatasetSlugs) > 1 || (len(s.DatasetSlugs) == 1 && s.DatasetSlugs[0] != s.Dataset):
		return s, Invalid("dataset_slugs", "invalid", "must be [%q], the dataset the SLO is created in", s.Dataset)
	}
	s.DatasetSlugs = []string{s.Dataset}
	return s, nil
}

// Burn alert types. Exhaustion time and budget rate are Honeycomb's;
// multiwindow (the SRE workbook's multiwindow, multi-burn-rate alert) is
// herald's.
const (
	AlertExhaustionTime = "exhaustion_time"
	AlertBudgetRate     = "budget_rate"
	AlertMultiwindow    = "multiwindow"
)

// Burn alert severities: a firing page holds back the notifications of the
// same SLO's tickets.
const (
	SeverityPage   = "page"
	SeverityTicket = "ticket"
)

// BurnAlert is an alert on an SLO's error budget, in the shape of
// Honeycomb's burn alert API, with herald's additions marked.
type BurnAlert struct {
	ID                                    string             `json:"id"`
	AlertType                             string             `json:"alert_type"`
	ExhaustionMinutes                     *int               `json:"exhaustion_minutes,omitempty"`
	BudgetRateWindowMinutes               *int               `json:"budget_rate_window_minutes,omitempty"`
	BudgetRateDecreaseThresholdPerMillion *int               `json:"budget_rate_decrease_threshold_per_million,omitempty"`
	Description                           string             `json:"description"`
	SLO                                   SLORef             `json:"slo"`
	Triggered                             bool               `json:"triggered"`
	Recipients                            []TriggerRecipient `json:"recipients"`
	CreatedAt                             time.Time          `json:"created_at"`
	UpdatedAt                             time.Time          `json:"updated_at"`

	// Severity is page or ticket (herald's). Defaults to page.
	Severity string `json:"severity,omitempty"`
	// LongWindowMinutes, ShortWindowMinutes and BurnRate define a
	// multiwindow alert (herald's): fire when both windows burn faster
	// than BurnRate. The short window defaults to a twelfth of the long.
	LongWindowMinutes  int     `json:"long_window_minutes,omitempty"`
	ShortWindowMinutes int     `json:"short_window_minutes,omitempty"`
	BurnRate           float64 `json:"burn_rate,omitempty"`
	// State is the alert's lifecycle state: ok, pending, firing or
	// resolving (herald's; read-only).
	State string `json:"state,omitempty"`

	// Dataset is the slug of the SLO's dataset.
	Dataset string `json:"-"`
}

// SLORef names an SLO.
type SLORef struct {
	ID string `json:"id"`
}

// Normalize checks a by the rules of Honeycomb's burn alert API (and
// herald's for multiwindow) and fills its defaults: alert_type
// exhaustion_time, severity page, the short window. period is the SLO's
// period. requireRecipients is false for the default alerts herald makes
// with a new SLO. The SLO's id is the caller's to check. Returns EINVALID
// naming the first field at fault.
func (a BurnAlert) Normalize(period time.Duration, requireRecipients bool) (BurnAlert, error) {
	if len([]rune(a.Description)) > 1023 {
		return a, Invalid("description", "invalid", "at most 1023 characters")
	}
	switch a.Severity {
	case "":
		a.Severity = SeverityPage
	case SeverityPage, SeverityTicket:
	default:
		return a, Invalid("severity", "invalid", "page or ticket")
	}
	if a.AlertType == "" {
		a.AlertType = AlertExhaustionTime
	}
	budgetSet := a.BudgetRateWindowMinutes != nil || a.BudgetRateDecreaseThresholdPerMillion != nil
	multiSet := a.LongWindowMinutes != 0 || a.ShortWindowMinutes != 0 || a.BurnRate != 0
	periodMin := int(period / time.Minute)
	switch a.AlertType {
	case AlertExhaustionTime:
		if budgetSet || multiSet {
			return a, Invalid("alert_type", "invalid", "an exhaustion_time alert takes only exhaustion_minutes")
		}
		if a.ExhaustionMinutes == nil || *a.ExhaustionMinutes < 0 {
			return a, Invalid("exhaustion_minutes", "invalid", "required, at least 0")
		}
	case AlertBudgetRate:
		if a.ExhaustionMinutes != nil || multiSet {
			return a, Invalid("alert_type", "invalid", "a budget_rate alert takes only budget_rate_window_minutes and budget_rate_decrease_threshold_per_million")
		}
		if w := a.BudgetRateWindowMinutes; w == nil || *w < 60 || *w > periodMin {
			return a, Invalid("budget_rate_window_minutes", "invalid", "required, between 60 and the SLO's period (%d)", periodMin)
		}
		if p := a.BudgetRateDecreaseThresholdPerMillion; p == nil || *p < 1 || *p > 1_000_000 {
			return a, Invalid("budget_rate_decrease_threshold_per_million", "invalid", "required, between 1 and 1000000 (1%% is 10000)")
		}
	case AlertMultiwindow:
		if a.ExhaustionMinutes != nil || budgetSet {
			return a, Invalid("alert_type", "invalid", "a multiwindow alert takes only long_window_minutes, short_window_minutes and burn_rate")
		}
		if a.LongWindowMinutes < 2 || a.LongWindowMinutes > periodMin {
			return a, Invalid("long_window_minutes", "invalid", "required, between 2 and the SLO's period (%d)", periodMin)
		}
		if a.ShortWindowMinutes == 0 {
			a.ShortWindowMinutes = max(1, a.LongWindowMinutes/12)
		}
		if a.ShortWindowMinutes < 1 || a.ShortWindowMinutes >= a.LongWindowMinutes {
			return a, Invalid("short_window_minutes", "invalid", "at least 1 and shorter than the long window")
		}
		if !(a.BurnRate > 0) {
			return a, Invalid("burn_rate", "invalid", "required, above 0")
		}
	default:
		return a, Invalid("alert_type", "invalid", "exhaustion_time, budget_rate or multiwindow")
	}
	if requireRecipients && len(a.Recipients) == 0 {
		return a, Invalid("recipients", "missing", "a burn alert needs at least one recipient")
	}
	for i, r := range a.Recipients {
		if err := r.check(fmt.Sprintf("recipients[%d]", i)); err != nil {
			return a, err
		}
	}
	if a.Recipients == nil {
		a.Recipients = []TriggerRecipient{}
	}
	return a, nil
}

// Judgement is what one delivery counts for in the delivery SLOs.
type Judgement string

// Judgements.
const (
	JudgedGood     Judgement = "good"
	JudgedBad      Judgement = "bad"
	JudgedExcluded Judgement = "excluded"
)

// Judge returns what a delivery reaching the final state counts for in the
// delivery availability SLI: delivered is good; a bounce is the
// recipient's doing and is excluded (its share is watched by a guardrail);
// failed, dropped and unconfirmed are bad. It returns "" for a state that
// is not final.
func Judge(state DeliveryState) Judgement {
	switch state {
	case StateDelivered:
		return JudgedGood
	case StateBounced:
		return JudgedExcluded
	case StateFailed, StateDropped, StateUnconfirmed:
		return JudgedBad
	}
	return ""
}

// DeliveryJudgements are the judgements of one channel's deliveries made
// in one minute.
type DeliveryJudgements struct {
	Channel  string
	Minute   time.Time
	Good     int64
	Bad      int64
	Excluded int64
}

// FailureCount is how many bad judgements share a partner and reason.
type FailureCount struct {
	Partner string `json:"partner"`
	Reason  string `json:"reason"`
	Count   int64  `json:"count"`
}

// BurnAlertEvent is one state change of a burn alert (or of an SLO's
// no-data alert), with what the engine saw when it happened.
type BurnAlertEvent struct {
	ID          string    `json:"id"`
	SLOID       string    `json:"slo_id"`
	BurnAlertID string    `json:"burn_alert_id"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	At          time.Time `json:"at"`
	// Inhibited is true for a ticket's change while a page of the same
	// SLO fires: it is recorded but not notified.
	Inhibited      bool   `json:"inhibited,omitempty"`
	NotificationID string `json:"notification_id,omitempty"`
	// Burn rates of the windows the alert reads, by window ("1h", "5m").
	BurnRates       map[string]float64 `json:"burn_rates"`
	BudgetRemaining float64            `json:"budget_remaining"`
	Good            int64              `json:"good"`
	Bad             int64              `json:"bad"`
}

// AlertState is a burn alert's lifecycle state: ok → pending → firing →
// resolving → ok.
type AlertState string

// Alert states.
const (
	AlertOK        AlertState = "ok"
	AlertPending   AlertState = "pending"
	AlertFiring    AlertState = "firing"
	AlertResolving AlertState = "resolving"
)

// Triggered reports whether an alert in state s has fired and not yet
// resolved.
func (s AlertState) Triggered() bool { return s == AlertFiring || s == AlertResolving }

// SLO statuses, as Honeycomb's detailed SLO reports them.
const (
	SLONormal    = "normal"
	SLOTriggered = "triggered"
	SLONoAlerts  = "no_alerts"
	SLONoEvents  = "no_events"
)

// SLOStatus is an SLO's state over its period, for GET …?detailed. No
// field is ever NaN: with no judgements compliance is 100 and the budget
// whole, and Status says no_events.
type SLOStatus struct {
	// Compliance is the percentage of good judgements in the period.
	Compliance float64 `json:"compliance"`
	// BudgetRemaining is the percentage of the period's error budget left;
	// it is negative when overspent.
	BudgetRemaining float64 `json:"budget_remaining"`
	// BurnRate is the burn rate of the last 4 hours.
	BurnRate float64 `json:"burn_rate"`
	Status   string  `json:"status"`
	// Herald's: the counts behind them, when they were evaluated, and
	// each burn alert's state and windows.
	Good        int64             `json:"good"`
	Bad         int64             `json:"bad"`
	EvaluatedAt *time.Time        `json:"evaluated_at"`
	Alerts      []BurnAlertStatus `json:"burn_alerts"`
}

// BurnAlertStatus is one burn alert's state at the last evaluation.
type BurnAlertStatus struct {
	ID       string       `json:"id"`
	State    AlertState   `json:"state"`
	Severity string       `json:"severity"`
	Windows  []WindowBurn `json:"windows"`
}
