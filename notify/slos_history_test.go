package notify_test

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/clock"
	"herald/eventstore"
	"herald/notify"
	"herald/sqlstore"
)

// burnDownBundle is an SLO over events, in simulated time, over real
// SQLite and DuckDB files: a day's period at 99 %, its SLI "sli.ok"
// true for events with status below 500.
type burnDownBundle struct {
	clock  *clock.Fake
	db     *sqlstore.DB
	events *eventstore.DuckDB
	slos   *notify.SLOs
	slo    herald.SLO
}

func setupBurnDown(t *testing.T, now time.Time) *burnDownBundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	b := &burnDownBundle{clock: clock.NewFake(now)}
	var err error
	b.db, err = sqlstore.Open(ctx, filepath.Join(dir, "herald.db"), b.clock)
	require.NoError(t, err)
	t.Cleanup(func() { b.db.Close() })
	b.events, err = eventstore.Open(ctx, eventstore.Config{Path: filepath.Join(dir, "events.duckdb"), Clock: b.clock})
	require.NoError(t, err)
	t.Cleanup(func() { b.events.Close() })
	_, _, err = b.events.CreateDataset(ctx, herald.Dataset{Name: "api"})
	require.NoError(t, err)
	_, err = b.events.CreateDerivedColumn(ctx, "api", herald.DerivedColumn{Alias: "sli.ok", Expression: "LT($status, 500)"})
	require.NoError(t, err)
	o, err := herald.SLO{Name: "API available", Dataset: "api", SLI: herald.SLIRef{Alias: "sli.ok"},
		TimePeriodDays: 1, TargetPerMillion: 990000}.Normalize()
	require.NoError(t, err)
	b.slo, _, err = b.db.SaveSLO(ctx, o, nil)
	require.NoError(t, err)
	b.slos, err = notify.NewSLOs(notify.SLOsConfig{Store: b.db, Events: b.events, Clock: b.clock, Logger: slog.New(slog.DiscardHandler),
		Enqueue: func(context.Context, *sql.Tx, []string) error { return nil }})
	require.NoError(t, err)
	return b
}

// write stores n events with the given status at at.
func (b *burnDownBundle) write(t *testing.T, at time.Time, status, n int) {
	t.Helper()
	evs := make([]herald.Event, n)
	for i := range evs {
		evs[i] = herald.Event{Time: at, SampleRate: 1, Fields: map[string]any{"status": float64(status)}}
	}
	res, err := b.events.Write(context.Background(), "api", evs, false)
	require.NoError(t, err)
	for _, err := range res.Errors {
		require.NoError(t, err)
	}
}

func TestBurnDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 12, 0, 30, 0, time.UTC)
	b := setupBurnDown(t, now)
	// Events count once a minute of ingest lag has passed: the window ends
	// at 11:59 and starts a day before.
	end := time.Date(2026, 3, 2, 11, 59, 0, 0, time.UTC)
	start := end.Add(-24 * time.Hour)
	b.write(t, start.Add(-2*time.Hour), 503, 50) // before the period: not counted
	b.write(t, start.Add(3*time.Hour), 200, 500)
	b.write(t, start.Add(9*time.Hour), 200, 490)
	b.write(t, start.Add(9*time.Hour), 503, 4)
	b.write(t, start.Add(15*time.Hour), 503, 3)
	b.write(t, start.Add(21*time.Hour), 503, 3)

	// 1000 judgements at 99 %: a budget of 10 bad ones, spent 4, 3 and 3 at
	// a time.
	points, err := b.slos.BurnDown(ctx, b.slo, 5)
	require.NoError(t, err)
	var at []time.Time
	var left []float64
	for _, p := range points {
		at, left = append(at, p.At), append(left, p.Remaining)
	}
	require.Equal(t, []time.Time{start, start.Add(6 * time.Hour), start.Add(12 * time.Hour), start.Add(18 * time.Hour), end}, at)
	require.Equal(t, []float64{100, 100, 60, 30, 0}, left)
	st, err := b.slos.Status(ctx, b.slo)
	require.NoError(t, err)
	require.Equal(t, st.BudgetRemaining, points[len(points)-1].Remaining, "the burn-down ends where the status is")
	require.EqualValues(t, 990, st.Good)

	// Three more bad ones a minute later overspend the budget (13 of 10.03).
	b.write(t, end, 503, 3)
	b.clock.Advance(time.Minute)
	points, err = b.slos.BurnDown(ctx, b.slo, 2)
	require.NoError(t, err)
	require.Len(t, points, 2)
	require.Equal(t, herald.BudgetPoint{At: start.Add(time.Minute), Remaining: 100}, points[0])
	require.Equal(t, end.Add(time.Minute), points[1].At)
	require.Equal(t, -29.611, points[1].Remaining, "1 − 13/(0.01 × 1003)")

	// At most a point a minute, and at least two.
	points, err = b.slos.BurnDown(ctx, b.slo, 1_000_000)
	require.NoError(t, err)
	require.Len(t, points, 24*60+1)
	for i := 1; i < len(points); i++ {
		require.Equal(t, time.Minute, points[i].At.Sub(points[i-1].At))
	}
	points, err = b.slos.BurnDown(ctx, b.slo, 0)
	require.NoError(t, err)
	require.Len(t, points, 2)
}

func TestBurnDownWithoutData(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	b := setupBurnDown(t, now)
	b.write(t, now.Add(-48*time.Hour), 503, 5) // long before the period
	points, err := b.slos.BurnDown(context.Background(), b.slo, 3)
	require.NoError(t, err)
	require.Equal(t, []herald.BudgetPoint{
		{At: time.Date(2026, 3, 1, 11, 59, 0, 0, time.UTC), Remaining: 100},
		{At: time.Date(2026, 3, 1, 23, 59, 0, 0, time.UTC), Remaining: 100},
		{At: time.Date(2026, 3, 2, 11, 59, 0, 0, time.UTC), Remaining: 100},
	}, points, "no judgement: the budget is whole, never NaN")
}
