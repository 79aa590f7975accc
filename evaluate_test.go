package herald_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
)

func trigger(t *testing.T, alertType string, limit int, op string, value float64, calc herald.Calculation, breakdowns ...string) herald.Trigger {
	t.Helper()
	tr, err := herald.Trigger{Name: "t", AlertType: alertType, Frequency: 60,
		Query:     &herald.Query{Calculations: []herald.Calculation{calc}, Breakdowns: breakdowns},
		Threshold: &herald.Threshold{Op: op, Value: value, ExceededLimit: limit}}.Normalize()
	require.NoError(t, err)
	return tr
}

func rows(values ...float64) *herald.QueryData {
	d := &herald.QueryData{}
	for _, v := range values {
		d.Results = append(d.Results, herald.ResultRow{Data: map[string]any{"P99(ms)": v}})
	}
	return d
}

// run evaluates a sequence and returns what each evaluation notified.
func run(tr herald.Trigger, results ...*herald.QueryData) []string {
	var state herald.TriggerState
	var out []string
	for _, r := range results {
		var err error
		if r == nil {
			err = errors.New("query failed")
		}
		ev, next := tr.Evaluate(state, r, err)
		state = next
		out = append(out, ev.Status+"/"+ev.Notify)
	}
	return out
}

func TestEvaluateOnChange(t *testing.T) {
	t.Parallel()
	tr := trigger(t, "on_change", 1, ">", 100, herald.Calculation{Op: "P99", Column: "ms"})
	require.Equal(t, []string{"ok/", "breached/triggered", "breached/", "ok/resolved", "ok/"},
		run(tr, rows(50), rows(150), rows(200), rows(99), rows(10)))
}

func TestEvaluateOnTrue(t *testing.T) {
	t.Parallel()
	tr := trigger(t, "on_true", 1, ">=", 100, herald.Calculation{Op: "P99", Column: "ms"})
	require.Equal(t, []string{"breached/triggered", "breached/still_triggered", "breached/still_triggered", "ok/resolved"},
		run(tr, rows(100), rows(150), rows(100), rows(1)))
}

func TestEvaluateExceededLimit(t *testing.T) {
	t.Parallel()
	tr := trigger(t, "on_change", 3, ">", 100, herald.Calculation{Op: "P99", Column: "ms"})
	// Two breaches, a recovery (the count starts again), then three in a row.
	require.Equal(t, []string{"breached/", "breached/", "ok/", "breached/", "breached/", "breached/triggered", "ok/resolved"},
		run(tr, rows(101), rows(101), rows(1), rows(101), rows(101), rows(101), rows(1)))
}

func TestEvaluateNoDataAndErrors(t *testing.T) {
	t.Parallel()
	tr := trigger(t, "on_change", 1, ">", 100, herald.Calculation{Op: "P99", Column: "ms"})
	// No data and query errors notify once when they begin, and neither
	// fire nor resolve the trigger.
	require.Equal(t, []string{"breached/triggered", "no_data/no_data", "no_data/", "error/error", "error/", "breached/", "ok/resolved"},
		run(tr, rows(101), rows(), rows(), nil, nil, rows(150), rows(1)))

	// COUNT over no events is 0, so "fewer than 1" fires when traffic stops.
	count := trigger(t, "on_change", 1, "<", 1, herald.Calculation{Op: "COUNT"})
	require.Equal(t, []string{"ok/", "breached/triggered"},
		run(count, &herald.QueryData{Results: []herald.ResultRow{{Data: map[string]any{"COUNT": int64(12)}}}}, &herald.QueryData{}))
}

func TestEvaluateGroups(t *testing.T) {
	t.Parallel()
	tr := trigger(t, "on_change", 1, ">", 100, herald.Calculation{Op: "P99", Column: "ms"}, "route")
	data := &herald.QueryData{Results: []herald.ResultRow{
		{Data: map[string]any{"route": "/cart", "P99(ms)": 150.0}},
		{Data: map[string]any{"route": "/pay", "P99(ms)": 90.0}},
		{Data: map[string]any{"route": "/home", "P99(ms)": 300.0}},
	}}
	ev, state := tr.Evaluate(herald.TriggerState{}, data, nil)
	require.True(t, state.Triggered)
	require.Equal(t, herald.EvalTriggered, ev.Notify)
	require.Len(t, ev.Groups, 3)
	require.Equal(t, []herald.GroupResult{
		{Group: map[string]any{"route": "/home"}, Result: 300, Breached: true},
		{Group: map[string]any{"route": "/cart"}, Result: 150, Breached: true},
	}, ev.Breached(">"))
	require.Equal(t, "Triggered: t", tr.Summary(ev, false))
	require.Equal(t, "TRIGGER TEST: Triggered: t", tr.Summary(ev, true))
}

func TestInWindow(t *testing.T) {
	t.Parallel()
	tr := trigger(t, "on_change", 1, ">", 1, herald.Calculation{Op: "COUNT"})
	require.True(t, tr.InWindow(time.Now()))
	tr.EvaluationScheduleType = "window"
	tr.EvaluationSchedule = &herald.EvaluationSchedule{}
	tr.EvaluationSchedule.Window.DaysOfWeek = []string{"monday"}
	tr.EvaluationSchedule.Window.StartTime, tr.EvaluationSchedule.Window.EndTime = "22:00", "02:00"
	monday := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC) // a Monday
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{
		{21*time.Hour + 59*time.Minute, false},
		{22 * time.Hour, true},
		{23*time.Hour + 59*time.Minute, true},
		{24*time.Hour + time.Hour, true}, // Tuesday 01:00: Monday's window, past midnight
		{24*time.Hour + 2*time.Hour, false},
		{time.Hour, false}, // Monday 01:00 belongs to Sunday's window
	} {
		require.Equal(t, c.want, tr.InWindow(monday.Add(c.at)), "%v", c.at)
	}
}

// FuzzTriggerNormalize: any trigger body either is refused with an
// EINVALID error or normalizes to a trigger that normalizes to itself and
// can be evaluated.
func FuzzTriggerNormalize(f *testing.F) {
	f.Add(`{"name":"t","query":{"calculations":[{"op":"P99","column":"ms"}],"breakdowns":["r"]},"threshold":{"op":">","value":1},"frequency":300}`)
	f.Add(`{"name":"w","query":{"calculations":[{"op":"COUNT"}],"time_range":120},"threshold":{"op":"<=","value":0,"exceeded_limit":5},"frequency":60,"alert_type":"on_true","evaluation_schedule":{"window":{"days_of_week":["friday"],"start_time":"23:00","end_time":"01:00"}}}`)
	f.Add(`{"name":"x","query_id":"q","threshold":{"op":">","value":1e308},"tags":[{"key":"team","value":"a/b-c"}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		var tr herald.Trigger
		if json.Unmarshal([]byte(body), &tr) != nil {
			return
		}
		n, err := tr.Normalize()
		if err != nil {
			require.Equal(t, herald.EINVALID, herald.ErrorCode(err), "%v", err)
			return
		}
		again, err := n.Normalize()
		require.NoError(t, err)
		require.Equal(t, n, again)
		n.Evaluate(herald.TriggerState{}, &herald.QueryData{Results: []herald.ResultRow{{Data: map[string]any{n.Query.Calculations[0].Name(): 1.0}}}}, nil)
		n.InWindow(time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC))
	})
}
