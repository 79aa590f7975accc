package herald

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Trigger is a query evaluated on a schedule whose result is compared with
// a threshold, in the shape of Honeycomb's Triggers API
// (reference: honeycomb-api.md §4).
type Trigger struct {
	ID          string `json:"id"`
	DatasetSlug string `json:"dataset_slug"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Disabled    bool   `json:"disabled"`
	// Triggered is true while the trigger is breached and unresolved.
	Triggered bool       `json:"triggered"`
	Query     *Query     `json:"query,omitempty"`
	QueryID   string     `json:"query_id,omitempty"`
	Threshold *Threshold `json:"threshold"`
	// Frequency is how often, in seconds, the trigger is evaluated.
	Frequency              int                 `json:"frequency"`
	AlertType              string              `json:"alert_type"`
	EvaluationScheduleType string              `json:"evaluation_schedule_type"`
	EvaluationSchedule     *EvaluationSchedule `json:"evaluation_schedule,omitempty"`
	Recipients             []TriggerRecipient  `json:"recipients"`
	BaselineDetails        *BaselineDetails    `json:"baseline_details,omitempty"`
	Tags                   []Tag               `json:"tags"`
	AutoInvestigate        *bool               `json:"auto_investigate,omitempty"`
	CreatedAt              time.Time           `json:"created_at"`
	UpdatedAt              time.Time           `json:"updated_at"`
}

// Threshold is what a trigger's result is compared with.
type Threshold struct {
	Op    string  `json:"op"`
	Value float64 `json:"value"`
	// ExceededLimit is how many evaluations in a row must breach before
	// the trigger fires; 1–5, default 1.
	ExceededLimit int `json:"exceeded_limit"`
}

// EvaluationSchedule limits evaluation to a weekly window, in UTC.
type EvaluationSchedule struct {
	Window struct {
		DaysOfWeek []string `json:"days_of_week"`
		StartTime  string   `json:"start_time"`
		EndTime    string   `json:"end_time"`
	} `json:"window"`
}

// TriggerRecipient names a recipient of a trigger's notifications: by id,
// or (deprecated in Honeycomb's API, still accepted) by type and target.
type TriggerRecipient struct {
	ID      string            `json:"id,omitempty"`
	Type    string            `json:"type,omitempty"`
	Target  string            `json:"target,omitempty"`
	Details *RecipientOptions `json:"details,omitempty"`
}

// RecipientOptions are a trigger's settings for one recipient.
type RecipientOptions struct {
	PagerDutySeverity string             `json:"pagerduty_severity,omitempty"`
	Variables         []TemplateVariable `json:"variables,omitempty"`
}

// TemplateVariable is a value for a webhook payload template.
type TemplateVariable struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// BaselineDetails compares a result with an earlier one. herald does not
// evaluate baselines yet and refuses triggers that set one.
type BaselineDetails struct {
	Type          string `json:"type,omitempty"`
	OffsetMinutes int    `json:"offset_minutes,omitempty"`
}

// Tag labels a trigger.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Trigger defaults and limits.
const (
	DefaultFrequency = 900
	maxTriggerRange  = 86400
)

var (
	tagKey     = regexp.MustCompile(`^[a-z]{1,32}$`)
	tagValue   = regexp.MustCompile(`^[a-z][a-z0-9/-]*$`)
	varName    = regexp.MustCompile(`^[a-z](?:[a-zA-Z0-9]+)?$`)
	clockTime  = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	weekdays   = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}
	severities = []string{"critical", "error", "warning", "info"}
)

// checkTags checks tags by the rules Honeycomb's triggers and SLOs share:
// at most 10, keys of 1–32 lower-case letters, values of up to 128
// characters starting with a letter.
func checkTags(tags []Tag) error {
	if len(tags) > 10 {
		return Invalid("tags", "invalid", "at most 10 tags")
	}
	for i, tag := range tags {
		if !tagKey.MatchString(tag.Key) {
			return Invalid(fmt.Sprintf("tags[%d].key", i), "invalid", "1–32 lower-case letters")
		}
		if len(tag.Value) > 128 || !tagValue.MatchString(tag.Value) {
			return Invalid(fmt.Sprintf("tags[%d].value", i), "invalid", "up to 128 characters: a lower-case letter, then lower-case letters, digits, / or -")
		}
	}
	return nil
}

// Normalize returns t with Honeycomb's response defaults filled in —
// frequency 900, query.time_range = frequency, alert_type on_change,
// evaluation_schedule_type frequency, threshold.exceeded_limit 1 — and
// checks every rule of the Triggers API, returning an EINVALID error that
// names the first field at fault. It adds no other query keys, so a client
// that compares what it sent with what it gets back sees only those
// defaults. The query must be inline: a caller resolves query_id first.
func (t Trigger) Normalize() (Trigger, error) {
	switch n := len([]rune(strings.TrimSpace(t.Name))); {
	case n == 0:
		return t, Invalid("name", "missing", "a trigger needs a name")
	case n > 120:
		return t, Invalid("name", "invalid", "at most 120 characters")
	}
	if len([]rune(t.Description)) > 1023 {
		return t, Invalid("description", "invalid", "at most 1023 characters")
	}
	if err := checkTags(t.Tags); err != nil {
		return t, err
	}
	if t.Tags == nil {
		t.Tags = []Tag{}
	}
	if t.Frequency == 0 {
		t.Frequency = DefaultFrequency
	}
	if t.Frequency < 60 || t.Frequency > maxTriggerRange || t.Frequency%60 != 0 {
		return t, Invalid("frequency", "invalid", "a multiple of 60 between 60 and 86400 seconds")
	}
	if t.Threshold == nil {
		return t, Invalid("threshold", "missing", "a trigger needs a threshold")
	}
	th := *t.Threshold
	if !slices.Contains([]string{">", ">=", "<", "<="}, th.Op) {
		return t, Invalid("threshold.op", "invalid", "one of >, >=, <, <=")
	}
	if th.ExceededLimit == 0 {
		th.ExceededLimit = 1
	}
	if th.ExceededLimit < 1 || th.ExceededLimit > 5 {
		return t, Invalid("threshold.exceeded_limit", "invalid", "between 1 and 5")
	}
	t.Threshold = &th
	switch t.AlertType {
	case "":
		t.AlertType = "on_change"
	case "on_change", "on_true":
	default:
		return t, Invalid("alert_type", "invalid", "on_change or on_true")
	}
	switch t.EvaluationScheduleType {
	case "":
		t.EvaluationScheduleType = "frequency"
		if t.EvaluationSchedule != nil {
			t.EvaluationScheduleType = "window"
		}
	case "frequency", "window":
	default:
		return t, Invalid("evaluation_schedule_type", "invalid", "frequency or window")
	}
	if err := t.checkSchedule(); err != nil {
		return t, err
	}
	if b := t.BaselineDetails; b != nil && (b.Type != "" || b.OffsetMinutes != 0) {
		return t, Invalid("baseline_details", "invalid", "baseline triggers are not supported yet")
	}
	t.BaselineDetails = nil
	if err := t.checkQuery(); err != nil {
		return t, err
	}
	for i, r := range t.Recipients {
		if err := r.check(fmt.Sprintf("recipients[%d]", i)); err != nil {
			return t, err
		}
	}
	if t.Recipients == nil {
		t.Recipients = []TriggerRecipient{}
	}
	return t, nil
}

func (t *Trigger) checkSchedule() error {
	if t.EvaluationScheduleType == "frequency" {
		if t.EvaluationSchedule != nil {
			return Invalid("evaluation_schedule", "invalid", "only with evaluation_schedule_type window")
		}
		return nil
	}
	s := t.EvaluationSchedule
	if s == nil {
		return Invalid("evaluation_schedule", "missing", "a window schedule needs evaluation_schedule.window")
	}
	days := s.Window.DaysOfWeek
	if len(days) < 1 || len(days) > 7 {
		return Invalid("evaluation_schedule.window.days_of_week", "invalid", "1 to 7 day names")
	}
	for i, d := range days {
		if !slices.Contains(weekdays, d) || slices.Contains(days[:i], d) {
			return Invalid("evaluation_schedule.window.days_of_week", "invalid", "%q is not a lower-case day name, or is repeated", d)
		}
	}
	if !clockTime.MatchString(s.Window.StartTime) {
		return Invalid("evaluation_schedule.window.start_time", "invalid", "HH:mm, in UTC")
	}
	if !clockTime.MatchString(s.Window.EndTime) {
		return Invalid("evaluation_schedule.window.end_time", "invalid", "HH:mm, in UTC")
	}
	return nil
}

// checkQuery applies the Triggers API's rules for a trigger's query and
// defaults its time_range to the frequency.
func (t *Trigger) checkQuery() error {
	if t.Query == nil {
		return Invalid("query", "missing", "a trigger needs a query or a query_id")
	}
	q := *t.Query
	q.ID = ""
	shown := 0
	for _, c := range q.Calculations {
		if c.Op == "HEATMAP" || c.Op == "CONCURRENCY" {
			return Invalid("query.calculations", "invalid", "%s cannot be a trigger's calculation", c.Op)
		}
		shown++
	}
	if shown != 1 {
		return Invalid("query.calculations", "invalid", "a trigger's query has exactly one calculation")
	}
	switch {
	case len(q.Orders) > 0:
		return Invalid("query.orders", "invalid", "a trigger's query has no orders")
	case q.Limit != 0:
		return Invalid("query.limit", "invalid", "a trigger's query has no limit")
	case q.StartTime != 0 || q.EndTime != 0:
		return Invalid("query.start_time", "invalid", "a trigger's query has no start_time or end_time")
	case len(q.Havings) > 1:
		return Invalid("query.havings", "invalid", "a trigger's query has at most one having")
	case q.Granularity != 0:
		return Invalid("query.granularity", "invalid", "a trigger's query has no granularity")
	}
	if q.TimeRange == 0 {
		q.TimeRange = int64(t.Frequency)
	}
	if q.TimeRange < int64(t.Frequency) || q.TimeRange > 4*int64(t.Frequency) || q.TimeRange > maxTriggerRange {
		return Invalid("query.time_range", "invalid", "between the frequency (%d s) and four times it, and at most 86400", t.Frequency)
	}
	if _, err := q.Normalize(); err != nil {
		var e *Error
		if errors.As(err, &e) && len(e.Fields) > 0 {
			e.Fields[0].Field = "query." + e.Fields[0].Field
			e.Message = "query." + e.Message
		}
		return err
	}
	t.Query = &q
	return nil
}

func (r TriggerRecipient) check(field string) error {
	if r.ID == "" && (r.Type == "" || r.Target == "") {
		return Invalid(field, "missing", "a recipient has an id, or a type and a target")
	}
	if r.ID == "" && !slices.Contains(RecipientTypes, r.Type) {
		return Invalid(field+".type", "invalid", "one of %s", strings.Join(RecipientTypes, ", "))
	}
	if d := r.Details; d != nil {
		if d.PagerDutySeverity != "" && !slices.Contains(severities, d.PagerDutySeverity) {
			return Invalid(field+".details.pagerduty_severity", "invalid", "one of %s", strings.Join(severities, ", "))
		}
		for i, v := range d.Variables {
			if len(v.Name) > 64 || !varName.MatchString(v.Name) {
				return Invalid(fmt.Sprintf("%s.details.variables[%d].name", field, i), "invalid", "up to 64 letters and digits, starting with a lower-case letter")
			}
			if len(v.Value) > 256 {
				return Invalid(fmt.Sprintf("%s.details.variables[%d].value", field, i), "invalid", "at most 256 characters")
			}
		}
	}
	return nil
}
