package notify_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"herald"
	"herald/clock"
	"herald/eventstore"
	"herald/notify"
	"herald/sqlstore"
)

// The trigger scenarios run in simulated time over real SQLite and DuckDB
// files: events are written at chosen instants, the clock moves a second
// at a time, the scheduler ticks, and each test asserts exactly which
// notifications were created, to whom, with what, in what order.

type triggerBundle struct {
	clock  *clock.Fake
	db     *sqlstore.DB
	events *eventstore.DuckDB
	sched  *notify.Scheduler
	eval   *notify.Evaluator
	mu     sync.Mutex
	queued []string // delivery ids, in the order their jobs were enqueued
}

func setupTriggers(t *testing.T, start time.Time) *triggerBundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	b := &triggerBundle{clock: clock.NewFake(start)}
	var err error
	b.db, err = sqlstore.Open(ctx, filepath.Join(dir, "herald.db"), b.clock)
	require.NoError(t, err)
	t.Cleanup(func() { b.db.Close() })
	b.events, err = eventstore.Open(ctx, eventstore.Config{Path: filepath.Join(dir, "events.duckdb"), Clock: b.clock})
	require.NoError(t, err)
	t.Cleanup(func() { b.events.Close() })
	b.eval, err = notify.NewEvaluator(notify.EvaluatorConfig{Store: b.db, Events: b.events, Clock: b.clock, BaseURL: "https://herald.example",
		TracerProvider: sdktrace.NewTracerProvider(),
		Enqueue: func(_ context.Context, _ *sql.Tx, ids []string) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.queued = append(b.queued, ids...)
			return nil
		}})
	require.NoError(t, err)
	b.sched, err = notify.NewScheduler(notify.SchedulerConfig{Evaluator: b.eval, Store: b.db, Clock: b.clock})
	require.NoError(t, err)
	return b
}

// trigger saves a trigger on dataset "api" notifying oncall@example.com.
func (b *triggerBundle) trigger(t *testing.T, tr herald.Trigger) herald.Trigger {
	t.Helper()
	if tr.Name == "" {
		tr.Name = "errors"
	}
	tr.DatasetSlug = "api"
	tr.Recipients = []herald.TriggerRecipient{{Type: "email", Target: "oncall@example.com"}}
	tr, err := tr.Normalize()
	require.NoError(t, err)
	tr, err = b.db.SaveTrigger(context.Background(), tr)
	require.NoError(t, err)
	return tr
}

// write stores events at the given instants.
func (b *triggerBundle) write(t *testing.T, fields map[string]any, at ...time.Time) {
	t.Helper()
	var evs []herald.Event
	for _, a := range at {
		evs = append(evs, herald.Event{Time: a, SampleRate: 1, Fields: fields})
	}
	_, err := b.events.Write(context.Background(), "api", evs, true)
	require.NoError(t, err)
}

// runUntil moves the clock a second at a time to until, ticking the
// scheduler at each second.
func (b *triggerBundle) runUntil(t *testing.T, until time.Time) {
	t.Helper()
	for b.clock.Now().Before(until) {
		b.clock.Advance(time.Second)
		_, err := b.sched.Tick(context.Background(), b.clock.Now())
		require.NoError(t, err)
	}
}

// sent lists the notifications created so far, in order, as
// "subject → recipient".
func (b *triggerBundle) sent(t *testing.T) []string {
	t.Helper()
	b.mu.Lock()
	ids := append([]string(nil), b.queued...)
	b.mu.Unlock()
	var out []string
	for _, id := range ids {
		d, err := b.db.GetDelivery(context.Background(), id)
		require.NoError(t, err)
		n, err := b.db.GetNotification(context.Background(), d.NotificationID)
		require.NoError(t, err)
		out = append(out, n.Subject+" → "+d.Recipient.Target)
	}
	return out
}

// slot is the k-th slot of tr at or after from.
func slot(tr herald.Trigger, from time.Time, k int) time.Time {
	period := time.Duration(tr.Frequency) * time.Second
	off := notify.Offset(tr.ID, tr.Frequency)
	s := from.Add(-off).Truncate(period).Add(off)
	for s.Before(from) {
		s = s.Add(period)
	}
	return s.Add(time.Duration(k) * period)
}

func countErrors(alertType string, limit int) herald.Trigger {
	return herald.Trigger{AlertType: alertType, Frequency: 60,
		Query:     &herald.Query{Calculations: []herald.Calculation{{Op: "COUNT"}}, Filters: []herald.Filter{{Column: "error", Op: "=", Value: true}}},
		Threshold: &herald.Threshold{Op: ">", Value: 5, ExceededLimit: limit}}
}

func TestTriggerOnChangeFiresAndResolves(t *testing.T) {
	t.Parallel()
	b := setupTriggers(t, t0)
	tr := b.trigger(t, countErrors("on_change", 1))
	s1, s3 := slot(tr, t0.Add(time.Second), 1), slot(tr, t0.Add(time.Second), 3)
	// Ten errors in the minute before the third slot: that evaluation
	// fires, the next (a window without them) resolves.
	at := make([]time.Time, 10)
	for i := range at {
		at[i] = s3.Add(-30*time.Second + time.Duration(i)*time.Second)
	}
	b.write(t, map[string]any{"error": true, "route": "/cart"}, at...)
	b.write(t, map[string]any{"error": false}, s1.Add(-10*time.Second))
	b.runUntil(t, s3.Add(3*time.Minute))
	require.Equal(t, []string{"Triggered: errors → oncall@example.com", "Resolved: errors → oncall@example.com"}, b.sent(t))

	evs, err := b.db.Evaluations(context.Background(), tr.ID, 100)
	require.NoError(t, err)
	// Newest first: slots 0…6 of the period after creation.
	require.Len(t, evs, 7)
	var statuses []string
	for i := len(evs) - 1; i >= 0; i-- {
		statuses = append(statuses, evs[i].Status+"/"+evs[i].Notify)
	}
	require.Equal(t, []string{"ok/", "ok/", "ok/", "breached/triggered", "ok/resolved", "ok/", "ok/"}, statuses)
	fired := evs[3]
	require.Equal(t, slot(tr, t0.Add(time.Second), 3), fired.At)
	require.Equal(t, []herald.GroupResult{{Group: map[string]any{}, Result: 10, Breached: true}}, fired.Groups)
	require.NotEmpty(t, fired.NotificationID)

	n, err := b.db.GetNotification(context.Background(), fired.NotificationID)
	require.NoError(t, err)
	// The notification carries the evaluation's trace: its deliveries and
	// attempts continue it.
	require.NotEqual(t, "00000000000000000000000000000000", fired.TraceID)
	require.Contains(t, n.TraceParent, "-"+fired.TraceID+"-")
	require.Equal(t, "TRIGGERED", n.Alert.Status)
	require.Equal(t, "greater than", n.Alert.Operator)
	require.Equal(t, 5.0, n.Alert.Threshold)
	require.Equal(t, []herald.AlertGroup{{Group: map[string]any{}, Result: 10}}, n.Alert.ResultGroupsTriggered)
	require.Contains(t, n.Text, "Currently greater than the threshold value (5) for the result (value 10)")
	require.Contains(t, n.HTML, "<h2>Triggered: errors</h2>")
	require.Equal(t, "https://herald.example/1/triggers/api/"+tr.ID, n.Alert.TriggerURL)

	got, err := b.db.GetTrigger(context.Background(), "api", tr.ID)
	require.NoError(t, err)
	require.False(t, got.Triggered, "resolved")
}

func TestTriggerOnTrueNotifiesEveryEvaluationWhileBreached(t *testing.T) {
	t.Parallel()
	b := setupTriggers(t, t0)
	tr := b.trigger(t, countErrors("on_true", 1))
	s1 := slot(tr, t0.Add(time.Second), 1)
	// Errors every 5 s for three minutes from s1: breached at s2, s3, s4.
	var at []time.Time
	for x := s1; x.Before(s1.Add(3 * time.Minute)); x = x.Add(5 * time.Second) {
		at = append(at, x)
	}
	b.write(t, map[string]any{"error": true}, at...)
	b.runUntil(t, s1.Add(5*time.Minute))
	require.Equal(t, []string{
		"Triggered: errors → oncall@example.com", "Triggered: errors → oncall@example.com",
		"Triggered: errors → oncall@example.com", "Resolved: errors → oncall@example.com",
	}, b.sent(t))
}

func TestTriggerExceededLimitNeedsBreachesInARow(t *testing.T) {
	t.Parallel()
	b := setupTriggers(t, t0)
	tr := b.trigger(t, countErrors("on_change", 3))
	s1 := slot(tr, t0.Add(time.Second), 1)
	// Breaches at s2 and s3, none at s4, then s6, s7, s8: only the second
	// run of three fires.
	burst := func(end time.Time) {
		var at []time.Time
		for i := range 6 {
			at = append(at, end.Add(-time.Duration(10+i)*time.Second))
		}
		b.write(t, map[string]any{"error": true}, at...)
	}
	period := time.Minute
	for _, k := range []int{1, 2, 5, 6, 7} {
		burst(s1.Add(time.Duration(k) * period))
	}
	b.runUntil(t, s1.Add(9*period))
	require.Equal(t, []string{"Triggered: errors → oncall@example.com", "Resolved: errors → oncall@example.com"}, b.sent(t))
	evs, err := b.db.Evaluations(context.Background(), tr.ID, 100)
	require.NoError(t, err)
	for _, ev := range evs {
		if ev.Notify == herald.EvalTriggered {
			require.Equal(t, s1.Add(7*period), ev.At, "the third breach in a row")
		}
	}
}

func TestTriggerBreakdownGroups(t *testing.T) {
	t.Parallel()
	b := setupTriggers(t, t0)
	tr := b.trigger(t, herald.Trigger{Frequency: 60,
		Query:     &herald.Query{Calculations: []herald.Calculation{{Op: "MAX", Column: "ms"}}, Breakdowns: []string{"route"}},
		Threshold: &herald.Threshold{Op: ">=", Value: 500}})
	s1 := slot(tr, t0.Add(time.Second), 1)
	b.write(t, map[string]any{"route": "/cart", "ms": 700.0}, s1.Add(-20*time.Second))
	b.write(t, map[string]any{"route": "/pay", "ms": 900.0}, s1.Add(-20*time.Second))
	b.write(t, map[string]any{"route": "/home", "ms": 20.0}, t0, s1.Add(-20*time.Second))
	b.runUntil(t, s1.Add(time.Second))
	require.Equal(t, []string{"Triggered: errors → oncall@example.com"}, b.sent(t))
	evs, err := b.db.Evaluations(context.Background(), tr.ID, 1)
	require.NoError(t, err)
	n, err := b.db.GetNotification(context.Background(), evs[0].NotificationID)
	require.NoError(t, err)
	require.Equal(t, []herald.AlertGroup{
		{Group: map[string]any{"route": "/pay"}, Result: 900}, {Group: map[string]any{"route": "/cart"}, Result: 700},
	}, n.Alert.ResultGroupsTriggered)
	require.Len(t, n.Alert.ResultGroups, 3)
	require.Contains(t, n.Alert.Description, "route:/pay (value 900), route:/cart (value 700)")
}

func TestTriggerNoDataAndQueryErrors(t *testing.T) {
	t.Parallel()
	b := setupTriggers(t, t0)
	// P99 over no events has no value: no data, notified once.
	p99 := b.trigger(t, herald.Trigger{Name: "slow", Frequency: 60,
		Query:     &herald.Query{Calculations: []herald.Calculation{{Op: "P99", Column: "ms"}}},
		Threshold: &herald.Threshold{Op: ">", Value: 100}})
	b.write(t, map[string]any{"other": "x"}, t0)
	// A trigger on a dataset that is gone: its query fails every time.
	ghost := herald.Trigger{Name: "ghost", Frequency: 60, DatasetSlug: "ghost",
		Query:      &herald.Query{Calculations: []herald.Calculation{{Op: "COUNT"}}},
		Threshold:  &herald.Threshold{Op: ">", Value: 1},
		Recipients: []herald.TriggerRecipient{{Type: "email", Target: "oncall@example.com"}}}
	ghost, err := ghost.Normalize()
	require.NoError(t, err)
	ghost, err = b.db.SaveTrigger(context.Background(), ghost)
	require.NoError(t, err)
	b.runUntil(t, t0.Add(5*time.Minute))
	sent := b.sent(t)
	require.ElementsMatch(t, []string{"No data: slow → oncall@example.com", "Query failed: ghost → oncall@example.com"}, sent)
	evs, err := b.db.Evaluations(context.Background(), ghost.ID, 100)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(evs), 4)
	for _, ev := range evs {
		require.Equal(t, herald.EvalError, ev.Status)
		require.Contains(t, ev.Error, "not found")
	}
	evs, err = b.db.Evaluations(context.Background(), p99.ID, 100)
	require.NoError(t, err)
	for _, ev := range evs {
		require.Equal(t, herald.EvalNoData, ev.Status)
	}
}

func TestTriggerEvaluationWindow(t *testing.T) {
	t.Parallel()
	// Monday 2026-11-30 12:00 UTC; the window is Mondays 12:05–12:10.
	monday := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	b := setupTriggers(t, monday)
	tr := countErrors("on_true", 1)
	tr.EvaluationSchedule = &herald.EvaluationSchedule{}
	tr.EvaluationSchedule.Window.DaysOfWeek = []string{"monday"}
	tr.EvaluationSchedule.Window.StartTime, tr.EvaluationSchedule.Window.EndTime = "12:05", "12:10"
	tr = b.trigger(t, tr)
	var at []time.Time
	for x := monday; x.Before(monday.Add(15 * time.Minute)); x = x.Add(5 * time.Second) {
		at = append(at, x)
	}
	b.write(t, map[string]any{"error": true}, at...)
	b.runUntil(t, monday.Add(15*time.Minute))
	evs, err := b.db.Evaluations(context.Background(), tr.ID, 100)
	require.NoError(t, err)
	require.Len(t, evs, 5, "one a minute, inside 12:05–12:10 only")
	for _, ev := range evs {
		require.True(t, tr.InWindow(ev.At), "%v", ev.At)
	}
	require.Len(t, b.sent(t), 5, "on_true: each breached evaluation notifies")
}

func TestSchedulerAfterDowntimeSpreadsAndCounts(t *testing.T) {
	t.Parallel()
	b := setupTriggers(t, t0)
	var trs []herald.Trigger
	for range 20 {
		trs = append(trs, b.trigger(t, countErrors("on_change", 1)))
	}
	b.runUntil(t, t0.Add(2*time.Minute))
	// herald is down for ten minutes; a new scheduler starts.
	b.clock.Advance(10 * time.Minute)
	restart := b.clock.Now()
	sched, err := notify.NewScheduler(notify.SchedulerConfig{Evaluator: b.eval, Store: b.db, Clock: b.clock})
	require.NoError(t, err)
	n, err := sched.Tick(context.Background(), restart)
	require.NoError(t, err)
	due := 0
	for _, tr := range trs {
		if slot(tr, restart, 0).Equal(restart) {
			due++
		}
	}
	require.Equal(t, due, n, "no thundering herd at start: only the triggers whose slot is now")
	for b.clock.Now().Before(restart.Add(time.Minute - time.Second)) { // one period: each slot once
		b.clock.Advance(time.Second)
		_, err := sched.Tick(context.Background(), b.clock.Now())
		require.NoError(t, err)
	}
	for _, tr := range trs {
		evs, err := b.db.Evaluations(context.Background(), tr.ID, 1)
		require.NoError(t, err)
		require.Len(t, evs, 1)
		last := evs[0]
		require.Equal(t, slot(tr, restart, 0), last.At, "each at its own slot in the first period")
		// The slots strictly between the last evaluation before the
		// downtime (the latest slot up to t0+2m) and the catch-up slot.
		before := slot(tr, t0.Add(time.Minute+time.Second), 0)
		for !before.Add(time.Minute).After(t0.Add(2 * time.Minute)) {
			before = before.Add(time.Minute)
		}
		require.Equal(t, int(last.At.Sub(before)/time.Minute)-1, last.Missed, "the slots herald was down for")
		require.GreaterOrEqual(t, last.Missed, 9)
	}
}

func TestTriggerTestNotification(t *testing.T) {
	t.Parallel()
	b := setupTriggers(t, t0)
	tr := b.trigger(t, countErrors("on_change", 1))
	n, err := b.eval.Test(context.Background(), tr)
	require.NoError(t, err)
	require.Equal(t, "TRIGGER TEST: Triggered: errors", n.Subject)
	require.True(t, n.Alert.IsTest)
	require.Equal(t, []string{"TRIGGER TEST: Triggered: errors → oncall@example.com"}, b.sent(t))
	got, err := b.db.GetTrigger(context.Background(), "api", tr.ID)
	require.NoError(t, err)
	require.False(t, got.Triggered, "a test changes nothing")
}
