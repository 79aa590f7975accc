package herald

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Evaluation statuses.
const (
	EvalOK        = "ok"        // the result is within the threshold
	EvalBreached  = "breached"  // the result is past the threshold
	EvalNoData    = "no_data"   // the query found nothing to compare
	EvalError     = "error"     // the query failed
	EvalSkipped   = "skipped"   // outside the evaluation window
	EvalTriggered = "triggered" // notify: the trigger fired
	EvalResolved  = "resolved"  // notify: the trigger resolved
	EvalStill     = "still_triggered"
)

// TriggerState is what a trigger remembers from one evaluation to the
// next.
type TriggerState struct {
	// Triggered is true from the evaluation that fires to the one that
	// resolves. A store keeps it once, beside the trigger (it is the
	// trigger's "triggered"), not in the state's JSON.
	Triggered bool `json:"-"`
	// Breaches counts the breaching evaluations in a row.
	Breaches int `json:"breaches"`
	// Status is the last evaluation's status.
	Status string `json:"status"`
}

// GroupResult is one breakdown group's value in an evaluation.
type GroupResult struct {
	Group    map[string]any `json:"group"`
	Result   float64        `json:"result"`
	Breached bool           `json:"breached"`
}

// Evaluation is the record of one evaluation of a trigger.
type Evaluation struct {
	ID        string        `json:"id"`
	TriggerID string        `json:"trigger_id"`
	At        time.Time     `json:"at"`
	Status    string        `json:"status"`
	Groups    []GroupResult `json:"groups"`
	// Triggered is the trigger's state after this evaluation.
	Triggered bool `json:"triggered"`
	// Notify is what this evaluation tells recipients: "" (nothing),
	// triggered, resolved, still_triggered (on_true), no_data or error.
	Notify string `json:"notify,omitempty"`
	// Missed counts the scheduled evaluations before this one that did not
	// run (herald was down, or running late).
	Missed int `json:"missed,omitempty"`
	// NotificationID names the notification Notify caused.
	NotificationID string        `json:"notification_id,omitempty"`
	Error          string        `json:"error,omitempty"`
	Duration       time.Duration `json:"duration_ns"`
	TraceID        string        `json:"trace_id,omitempty"`
}

// zeroWhenEmpty are the calculations whose value over no events is 0, so
// an empty window is compared like any other: COUNT < 1 fires when
// traffic stops. Every other calculation has no value over no events, and
// the evaluation says no_data.
var zeroWhenEmpty = []string{"COUNT", "SUM", "COUNT_DISTINCT", "RATE_SUM"}

// Evaluate decides one evaluation of t (normalized) from its query's
// answer, or the error the query failed with, and the state the previous
// evaluation left. It returns the record and the state to keep.
//
// A group breaches when its value passes the threshold. The trigger fires
// after threshold.exceeded_limit breaching evaluations in a row, and
// resolves at the first evaluation with no breach. on_change notifies when
// it fires and when it resolves; on_true notifies at every evaluation
// while it is fired. A failed query and a window without data are states
// of their own: they notify once, when they begin, and leave the trigger
// as it was (neither fired nor resolved by missing evidence).
func (t Trigger) Evaluate(prev TriggerState, data *QueryData, queryErr error) (Evaluation, TriggerState) {
	ev := Evaluation{TriggerID: t.ID, Groups: []GroupResult{}, Triggered: prev.Triggered}
	next := prev
	switch {
	case queryErr != nil:
		ev.Status, ev.Error = EvalError, queryErr.Error()
	default:
		ev.Groups = t.groups(data)
		if len(ev.Groups) == 0 {
			ev.Status = EvalNoData
		}
	}
	if ev.Status != "" {
		if prev.Status != ev.Status {
			ev.Notify = ev.Status
		}
		next.Status = ev.Status
		return ev, next
	}
	breached := false
	for _, g := range ev.Groups {
		breached = breached || g.Breached
	}
	ev.Status = EvalOK
	next.Breaches = 0
	if breached {
		ev.Status = EvalBreached
		next.Breaches = prev.Breaches + 1
	}
	next.Status = ev.Status
	fires := next.Breaches >= t.Threshold.ExceededLimit
	switch {
	case fires && !prev.Triggered:
		next.Triggered, ev.Notify = true, EvalTriggered
	case fires && t.AlertType == "on_true":
		ev.Notify = EvalStill
	case !breached && prev.Triggered:
		next.Triggered, ev.Notify = false, EvalResolved
	}
	ev.Triggered = next.Triggered
	return ev, next
}

// groups reads each result row's value and compares it with the
// threshold.
func (t Trigger) groups(data *QueryData) []GroupResult {
	calc := t.Query.Calculations[0]
	name := calc.Name()
	var out []GroupResult
	for _, row := range data.Results {
		v, ok := number(row.Data[name])
		if !ok {
			continue
		}
		group := map[string]any{}
		for _, b := range t.Query.Breakdowns {
			group[b] = row.Data[b]
		}
		out = append(out, GroupResult{Group: group, Result: v, Breached: t.Threshold.passes(v)})
	}
	if len(out) == 0 && len(t.Query.Breakdowns) == 0 && slices.Contains(zeroWhenEmpty, calc.Op) {
		out = append(out, GroupResult{Group: map[string]any{}, Result: 0, Breached: t.Threshold.passes(0)})
	}
	return out
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	}
	return 0, false
}

func (th Threshold) passes(v float64) bool {
	switch th.Op {
	case ">":
		return v > th.Value
	case ">=":
		return v >= th.Value
	case "<":
		return v < th.Value
	case "<=":
		return v <= th.Value
	}
	return false
}

// OperatorWords is a threshold op in words, as Honeycomb's payload says
// it ("greater than").
func OperatorWords(op string) string {
	return map[string]string{">": "greater than", ">=": "greater than or equal to",
		"<": "less than", "<=": "less than or equal to"}[op]
}

// InWindow reports whether t is evaluated at now: always for a frequency
// schedule; within the window's days and hours (UTC) for a window
// schedule. A window whose end is not after its start runs past midnight
// into the next day, and belongs to the day it starts.
func (t Trigger) InWindow(now time.Time) bool {
	if t.EvaluationScheduleType != "window" || t.EvaluationSchedule == nil {
		return true
	}
	w := t.EvaluationSchedule.Window
	now = now.UTC()
	minute := now.Hour()*60 + now.Minute()
	start, end := clockMinutes(w.StartTime), clockMinutes(w.EndTime)
	day := strings.ToLower(now.Weekday().String())
	if start < end {
		return slices.Contains(w.DaysOfWeek, day) && minute >= start && minute < end
	}
	if minute >= start {
		return slices.Contains(w.DaysOfWeek, day)
	}
	yesterday := strings.ToLower(now.Add(-24 * time.Hour).Weekday().String())
	return minute < end && slices.Contains(w.DaysOfWeek, yesterday)
}

func clockMinutes(hhmm string) int {
	var h, m int
	fmt.Sscanf(hhmm, "%d:%d", &h, &m)
	return h*60 + m
}

// Summary is a one-line account of an evaluation for a notification's
// subject, e.g. "Triggered: Checkout p99 too slow".
func (t Trigger) Summary(ev Evaluation, test bool) string {
	prefix := map[string]string{EvalTriggered: "Triggered", EvalStill: "Triggered", EvalResolved: "Resolved",
		EvalNoData: "No data", EvalError: "Query failed"}[ev.Notify]
	s := prefix + ": " + t.Name
	if test {
		s = "TRIGGER TEST: " + s
	}
	return s
}

// Breached returns the groups of ev that passed the threshold, sorted by
// their values, worst first.
func (ev Evaluation) Breached(op string) []GroupResult {
	var out []GroupResult
	for _, g := range ev.Groups {
		if g.Breached {
			out = append(out, GroupResult{Group: maps.Clone(g.Group), Result: g.Result, Breached: true})
		}
	}
	slices.SortStableFunc(out, func(a, b GroupResult) int {
		if strings.HasPrefix(op, "<") {
			a, b = b, a
		}
		switch {
		case a.Result > b.Result:
			return -1
		case a.Result < b.Result:
			return 1
		}
		return 0
	})
	return out
}
