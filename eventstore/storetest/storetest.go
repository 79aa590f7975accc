// Package storetest is the conformance suite every herald.EventStore
// passes unchanged: the embedded DuckDB store now, PostgreSQL later.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
)

// Opener returns a new, empty store that allows at most maxColumns columns
// per dataset (0 means the store's default) and keeps a new dataset's
// events for 60 days. The store is closed by t.Cleanup.
type Opener func(t *testing.T, maxColumns int) herald.EventStore

// T0 is the suite's "now".
var T0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// Run runs the suite against the stores open returns.
func Run(t *testing.T, open Opener) {
	t.Run("Datasets", func(t *testing.T) { t.Parallel(); testDatasets(t, open) })
	t.Run("Types", func(t *testing.T) { t.Parallel(); testTypes(t, open) })
	t.Run("RefusedEvents", func(t *testing.T) { t.Parallel(); testRefused(t, open) })
	t.Run("Calculations", func(t *testing.T) { t.Parallel(); testCalculations(t, open) })
	t.Run("Filters", func(t *testing.T) { t.Parallel(); testFilters(t, open) })
	t.Run("Breakdowns", func(t *testing.T) { t.Parallel(); testBreakdowns(t, open) })
	t.Run("TimeAndSeries", func(t *testing.T) { t.Parallel(); testTime(t, open) })
	t.Run("AllDatasets", func(t *testing.T) { t.Parallel(); testAll(t, open) })
	t.Run("Rates", func(t *testing.T) { t.Parallel(); testRates(t, open) })
	t.Run("Retention", func(t *testing.T) { t.Parallel(); testRetention(t, open) })
	t.Run("ConcurrentWrites", func(t *testing.T) { t.Parallel(); testConcurrent(t, open) })
	t.Run("InvalidQueries", func(t *testing.T) { t.Parallel(); testInvalid(t, open) })
	t.Run("DerivedColumns", func(t *testing.T) { t.Parallel(); testDerivedCRUD(t, open) })
	t.Run("SLICounts", func(t *testing.T) { t.Parallel(); testSLICounts(t, open) })
	t.Run("DerivedFunctions", func(t *testing.T) { t.Parallel(); testDerivedFunctions(t, open) })
	t.Run("DerivedQueries", func(t *testing.T) { t.Parallel(); testDerivedQueries(t, open) })
}

func ev(ago time.Duration, fields map[string]any) herald.Event {
	return herald.Event{Time: T0.Add(-ago), SampleRate: 1, Fields: fields}
}

func write(t *testing.T, s herald.EventStore, name string, events ...herald.Event) {
	t.Helper()
	res, err := s.Write(context.Background(), name, events, true)
	require.NoError(t, err)
	for i, e := range res.Errors {
		require.NoError(t, e, "event %d", i)
	}
}

func run(t *testing.T, s herald.EventStore, name string, q herald.Query) []map[string]any {
	t.Helper()
	d, err := s.Run(context.Background(), name, q, herald.RunOptions{Now: T0})
	require.NoError(t, err)
	out := make([]map[string]any, len(d.Results))
	for i, r := range d.Results {
		out[i] = r.Data
	}
	return out
}

func testDatasets(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, 0)
	_, err := s.Write(ctx, "nope", []herald.Event{ev(0, map[string]any{"a": "b"})}, false)
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(err))

	write(t, s, "My Service", ev(time.Minute, map[string]any{"a": "b"}))
	d, err := s.Dataset(ctx, "my service")
	require.NoError(t, err)
	require.Equal(t, "My Service", d.Name, "the first casing is kept")
	require.Equal(t, "my-service", d.Slug)
	require.Equal(t, 60, d.RetentionDays)
	require.Equal(t, 1, d.RegularColumnsCount)
	require.NotNil(t, d.LastWrittenAt)

	got, created, err := s.CreateDataset(ctx, herald.Dataset{Name: "MY SERVICE"})
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, d.Slug, got.Slug)

	got, created, err = s.CreateDataset(ctx, herald.Dataset{Name: "billing", Description: "money", RetentionDays: 7})
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, "money", got.Description)
	require.Equal(t, 7, got.RetentionDays)
	require.Nil(t, got.LastWrittenAt)

	all, err := s.Datasets(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, "billing", all[0].Slug)
	require.Equal(t, "my-service", all[1].Slug)

	for _, bad := range []string{"", "a/b", "__all__", string(make([]byte, 256))} {
		_, _, err := s.CreateDataset(ctx, herald.Dataset{Name: bad})
		require.Equal(t, herald.EINVALID, herald.ErrorCode(err), "%q", bad)
	}
	_, err = s.Dataset(ctx, "missing")
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(err))
	_, err = s.Run(ctx, "missing", herald.Query{}, herald.RunOptions{Now: T0})
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(err))
}

func testTypes(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, 0)
	write(t, s, "types",
		ev(4*time.Minute, map[string]any{"n": int64(1), "f": int64(2), "s": "x", "b": true, "mixed": int64(5)}),
		ev(3*time.Minute, map[string]any{"n": int64(2), "f": 2.5, "s": "y", "b": false, "mixed": true}),
	)
	cols, err := s.Columns(ctx, "types")
	require.NoError(t, err)
	require.Equal(t, []herald.Column{
		{Name: "b", Type: herald.TypeBoolean}, {Name: "f", Type: herald.TypeFloat},
		{Name: "mixed", Type: herald.TypeString}, {Name: "n", Type: herald.TypeInteger}, {Name: "s", Type: herald.TypeString},
	}, cols)
	// The widened float column keeps the integer written before it.
	require.Equal(t, []map[string]any{{"SUM(f)": 4.5, "MAX(n)": int64(2), "COUNT_DISTINCT(mixed)": int64(2)}},
		run(t, s, "types", herald.Query{Calculations: []herald.Calculation{{Op: "SUM", Column: "f"}, {Op: "MAX", Column: "n"}, {Op: "COUNT_DISTINCT", Column: "mixed"}}}))
	// The string column keeps both values as text.
	require.Equal(t, []map[string]any{{"mixed": "5", "COUNT": int64(1)}, {"mixed": "true", "COUNT": int64(1)}},
		run(t, s, "types", herald.Query{Breakdowns: []string{"mixed"}, Orders: []herald.Order{{Column: "mixed"}}}))
	// Later values of any type still land in the string column.
	write(t, s, "types", ev(2*time.Minute, map[string]any{"mixed": 2.5}))
	require.Equal(t, []map[string]any{{"COUNT": int64(1)}},
		run(t, s, "types", herald.Query{Filters: []herald.Filter{{Column: "mixed", Op: "=", Value: 2.5}}}))
	// Booleans filter by value.
	require.Equal(t, []map[string]any{{"COUNT": int64(1)}},
		run(t, s, "types", herald.Query{Filters: []herald.Filter{{Column: "b", Op: "=", Value: true}}}))
}

func testRefused(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, 3)
	res, err := s.Write(ctx, "narrow", []herald.Event{
		ev(time.Minute, map[string]any{"a": "1", "b": "2"}),
		ev(time.Minute, map[string]any{"c": "3", "d": "4"}), // would make 4 columns
		ev(time.Minute, map[string]any{}),
		ev(time.Minute, map[string]any{"a": "5", "c": "6"}), // makes 3
	}, true)
	require.NoError(t, err)
	require.Len(t, res.Errors, 4)
	require.NoError(t, res.Errors[0])
	require.Equal(t, herald.EINVALID, herald.ErrorCode(res.Errors[1]))
	require.ErrorContains(t, res.Errors[1], "Dataset has too many columns.")
	require.Equal(t, herald.EINVALID, herald.ErrorCode(res.Errors[2]))
	require.NoError(t, res.Errors[3])
	require.Equal(t, []map[string]any{{"COUNT": int64(2)}}, run(t, s, "narrow", herald.Query{}))
	cols, err := s.Columns(ctx, "narrow")
	require.NoError(t, err)
	require.Len(t, cols, 3)
}

func testCalculations(t *testing.T, open Opener) {
	s := open(t, 0)
	var events []herald.Event
	for i := 1; i <= 100; i++ {
		e := ev(time.Duration(i)*time.Second, map[string]any{"d": float64(i), "u": fmt.Sprintf("user%d", i%7)})
		if i == 100 {
			e.SampleRate = 10 // stands for ten events
		}
		events = append(events, e)
	}
	events = append(events, ev(time.Second, map[string]any{"u": "user0"})) // no d
	write(t, s, "calc", events...)
	q := herald.Query{Calculations: []herald.Calculation{
		{Op: "COUNT"}, {Op: "SUM", Column: "d"}, {Op: "AVG", Column: "d"}, {Op: "MIN", Column: "d"}, {Op: "MAX", Column: "d"},
		{Op: "COUNT_DISTINCT", Column: "u"}, {Op: "P50", Column: "d"}, {Op: "P99", Column: "d"}, {Op: "P001", Column: "d"},
		{Op: "P999", Column: "d"}, {Op: "SUM", Column: "missing"},
	}}
	got := run(t, s, "calc", q)
	require.Len(t, got, 1)
	// COUNT and SUM weigh each event by its sample rate; AVG too.
	// sum(1..99) + 100×10 = 4950 + 1000 = 5950 over 99 + 10 = 109 events.
	require.Equal(t, int64(110), got[0]["COUNT"])
	require.Equal(t, 5950.0, got[0]["SUM(d)"])
	require.InDelta(t, 5950.0/109, got[0]["AVG(d)"], 1e-9)
	require.Equal(t, 1.0, got[0]["MIN(d)"])
	require.Equal(t, 100.0, got[0]["MAX(d)"])
	require.Equal(t, int64(7), got[0]["COUNT_DISTINCT(u)"])
	// Percentiles interpolate between stored values (not weighted).
	require.InDelta(t, 50.5, got[0]["P50(d)"], 1e-9)
	require.InDelta(t, 99.01, got[0]["P99(d)"], 1e-9)
	require.InDelta(t, 1.099, got[0]["P001(d)"], 1e-9)
	require.InDelta(t, 99.901, got[0]["P999(d)"], 1e-9)
	require.Nil(t, got[0]["SUM(missing)"])
	require.Contains(t, got[0], "SUM(missing)")

	// No events in the window: no rows, not a row of nulls.
	require.Empty(t, run(t, s, "calc", herald.Query{TimeRange: 3600, EndTime: T0.Add(-24 * time.Hour).Unix()}))
}

func testFilters(t *testing.T, open Opener) {
	s := open(t, 0)
	write(t, s, "f",
		ev(time.Minute, map[string]any{"route": "/cart", "status": int64(200), "ok": true, "ms": 12.5}),
		ev(time.Minute, map[string]any{"route": "/cart/add", "status": int64(500), "ok": false, "ms": 40.0}),
		ev(time.Minute, map[string]any{"route": "/pay", "status": int64(502), "ms": 7.0}),
		ev(time.Minute, map[string]any{"route": "/pay/retry", "ms": 3.0}),
		ev(time.Minute, map[string]any{"status": int64(404)}),
	)
	count := func(combination string, filters ...herald.Filter) int64 {
		t.Helper()
		rows := run(t, s, "f", herald.Query{Filters: filters, FilterCombination: combination})
		if len(rows) == 0 {
			return 0
		}
		return rows[0]["COUNT"].(int64)
	}
	f := func(col, op string, v any) herald.Filter { return herald.Filter{Column: col, Op: op, Value: v} }
	for _, c := range []struct {
		filter herald.Filter
		want   int64
	}{
		{f("status", "=", 200.0), 1},
		{f("status", "=", "200"), 1},  // a numeric string against a number column
		{f("status", "!=", 200.0), 4}, // events without status match !=
		{f("status", ">", 404.0), 2},
		{f("status", ">=", 404.0), 3},
		{f("status", "<", 500.0), 2},
		{f("status", "<=", 500.0), 3},
		{f("ms", ">", 10.0), 2},
		{f("route", "starts-with", "/cart"), 2},
		{f("route", "does-not-start-with", "/cart"), 3},
		{f("route", "ends-with", "retry"), 1},
		{f("route", "does-not-end-with", "retry"), 4},
		{f("route", "contains", "ay"), 2},
		{f("route", "does-not-contain", "ay"), 3},
		{f("route", "exists", nil), 4},
		{f("route", "does-not-exist", nil), 1},
		{f("route", "in", []any{"/cart", "/pay"}), 2},
		{f("route", "not-in", []any{"/cart", "/pay"}), 3},
		{f("status", "in", []any{200.0, "500"}), 2},
		{f("ok", "=", false), 1},
		{f("ok", "=", "true"), 1},
		{f("status", "=", "abc"), 0}, // compared as text, matches nothing
		{f("nowhere", "=", "x"), 0},
		{f("nowhere", "!=", "x"), 5},
		{f("nowhere", "does-not-exist", nil), 5},
		{f("route", "contains", "%"), 0}, // no wildcard: % is a plain character
	} {
		require.Equal(t, c.want, count("", c.filter), "%+v", c.filter)
	}
	require.Equal(t, int64(1), count("AND", f("route", "starts-with", "/pay"), f("ms", "<", 5.0)))
	require.Equal(t, int64(3), count("OR", f("status", "=", 200.0), f("route", "starts-with", "/pay")))
}

func testBreakdowns(t *testing.T, open Opener) {
	s := open(t, 0)
	var events []herald.Event
	for i, r := range []string{"/a", "/a", "/a", "/b", "/b", "/c", "/a", "/b"} {
		events = append(events, ev(time.Minute, map[string]any{"route": r, "ms": float64(10 * (i + 1)), "region": []string{"eu", "us"}[i%2]}))
	}
	events = append(events, ev(time.Minute, map[string]any{"ms": 1.0}))
	write(t, s, "b", events...)

	// Default order: the first calculation, descending; ties by breakdown.
	require.Equal(t, []map[string]any{
		{"route": "/a", "COUNT": int64(4)}, {"route": "/b", "COUNT": int64(3)},
		{"route": "/c", "COUNT": int64(1)}, {"route": nil, "COUNT": int64(1)},
	}, run(t, s, "b", herald.Query{Breakdowns: []string{"route"}}))

	require.Equal(t, []map[string]any{
		{"route": "/b", "MAX(ms)": 80.0, "COUNT": int64(3)},
		{"route": "/a", "MAX(ms)": 70.0, "COUNT": int64(4)},
	}, run(t, s, "b", herald.Query{
		Breakdowns:   []string{"route"},
		Calculations: []herald.Calculation{{Op: "MAX", Column: "ms"}, {Op: "COUNT"}},
		Havings:      []herald.Having{{CalculateOp: "COUNT", Op: ">", Value: 1}},
		Orders:       []herald.Order{{Op: "MAX", Column: "ms", Order: "descending"}},
	}))

	require.Equal(t, []map[string]any{
		{"route": "/a", "region": "eu", "COUNT": int64(3)},
		{"route": "/a", "region": "us", "COUNT": int64(1)},
	}, run(t, s, "b", herald.Query{Breakdowns: []string{"route", "region"}, Orders: []herald.Order{{Column: "route"}, {Column: "region"}}, Limit: 2}))

	// A having on a calculation the query does not show.
	require.Equal(t, []map[string]any{{"route": "/c", "COUNT": int64(1)}}, run(t, s, "b", herald.Query{
		Breakdowns: []string{"route"}, Havings: []herald.Having{{CalculateOp: "MIN", Column: "ms", Op: "=", Value: 60}},
	}))
}

func testTime(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, 0)
	var events []herald.Event
	for m := range 30 { // one event a minute, minutes 0..29 ago, plus one an hour in the future
		events = append(events, ev(time.Duration(m)*time.Minute, map[string]any{"n": int64(m)}))
	}
	events = append(events, ev(-time.Hour, map[string]any{"n": int64(-60)}))
	write(t, s, "t", events...)
	count := func(q herald.Query) int64 {
		rows := run(t, s, "t", q)
		if len(rows) == 0 {
			return 0
		}
		return rows[0]["COUNT"].(int64)
	}
	// [now−600 s, now): minutes 1..10 ago; the event at now itself is out.
	require.Equal(t, int64(10), count(herald.Query{TimeRange: 600}))
	start := T0.Add(-20 * time.Minute).Unix()
	require.Equal(t, int64(5), count(herald.Query{StartTime: start, TimeRange: 300}))
	require.Equal(t, int64(5), count(herald.Query{EndTime: start, TimeRange: 300}))
	require.Equal(t, int64(20), count(herald.Query{StartTime: start, EndTime: T0.Unix()}))
	require.Equal(t, int64(29), count(herald.Query{})) // the default two hours

	d, err := s.Run(ctx, "t", herald.Query{TimeRange: 600, Granularity: 300, Calculations: []herald.Calculation{{Op: "COUNT"}, {Op: "MAX", Column: "n"}}},
		herald.RunOptions{Now: T0, Series: true})
	require.NoError(t, err)
	require.Equal(t, []herald.SeriesPoint{
		{Time: T0.Add(-10 * time.Minute), Data: map[string]any{"COUNT": int64(5), "MAX(n)": int64(10)}},
		{Time: T0.Add(-5 * time.Minute), Data: map[string]any{"COUNT": int64(5), "MAX(n)": int64(5)}},
	}, d.Series)
	require.Equal(t, []herald.ResultRow{{Data: map[string]any{"COUNT": int64(10), "MAX(n)": int64(10)}}}, d.Results)
}

func testAll(t *testing.T, open Opener) {
	s := open(t, 0)
	write(t, s, "one", ev(time.Minute, map[string]any{"status": int64(200), "svc": "one"}), ev(time.Minute, map[string]any{"status": int64(500), "svc": "one"}))
	write(t, s, "two", ev(time.Minute, map[string]any{"status": "500", "svc": "two", "only_two": true}))
	require.Equal(t, []map[string]any{
		{"svc": "one", "COUNT": int64(1)}, {"svc": "two", "COUNT": int64(1)},
	}, run(t, s, herald.AllDatasets, herald.Query{
		Breakdowns: []string{"svc"}, Filters: []herald.Filter{{Column: "status", Op: "=", Value: 500.0}},
		Orders: []herald.Order{{Column: "svc"}},
	}))
	// A column of two types across datasets is read as text.
	require.Equal(t, []map[string]any{
		{"status": "200", "COUNT": int64(1)}, {"status": "500", "COUNT": int64(2)},
	}, run(t, s, herald.AllDatasets, herald.Query{Breakdowns: []string{"status"}, Orders: []herald.Order{{Column: "status"}}}))
	require.Equal(t, []map[string]any{{"COUNT": int64(1)}},
		run(t, s, herald.AllDatasets, herald.Query{Filters: []herald.Filter{{Column: "only_two", Op: "exists"}}}))
}

func testRates(t *testing.T, open Opener) {
	s := open(t, 0)
	// A counter per host: +10 every 10 s on a, +30 every 10 s on b.
	var events []herald.Event
	for i := range 4 {
		at := time.Duration(40-10*i) * time.Second
		events = append(events,
			ev(at, map[string]any{"host": "a", "bytes": int64(100 + 10*i)}),
			ev(at, map[string]any{"host": "b", "bytes": int64(1000 + 30*i)}))
	}
	write(t, s, "r", events...)
	require.Equal(t, []map[string]any{
		{"host": "a", "RATE_AVG(bytes)": 1.0, "RATE_MAX(bytes)": 1.0, "RATE_SUM(bytes)": 3.0},
		{"host": "b", "RATE_AVG(bytes)": 3.0, "RATE_MAX(bytes)": 3.0, "RATE_SUM(bytes)": 9.0},
	}, run(t, s, "r", herald.Query{Breakdowns: []string{"host"}, Orders: []herald.Order{{Column: "host"}},
		Calculations: []herald.Calculation{{Op: "RATE_AVG", Column: "bytes"}, {Op: "RATE_MAX", Column: "bytes"}, {Op: "RATE_SUM", Column: "bytes"}}}))
}

func testRetention(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, 0)
	_, _, err := s.CreateDataset(ctx, herald.Dataset{Name: "short", RetentionDays: 1})
	require.NoError(t, err)
	write(t, s, "short", ev(25*time.Hour, map[string]any{"a": "old"}), ev(23*time.Hour, map[string]any{"a": "new"}))
	write(t, s, "long", ev(25*time.Hour, map[string]any{"a": "old"}))
	n, err := s.DeleteExpired(ctx, T0)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.Equal(t, []map[string]any{{"a": "new", "COUNT": int64(1)}}, run(t, s, "short", herald.Query{Breakdowns: []string{"a"}, TimeRange: 86400 * 7}))
	require.Equal(t, []map[string]any{{"COUNT": int64(1)}}, run(t, s, "long", herald.Query{TimeRange: 86400 * 7}))
}

func testConcurrent(t *testing.T, open Opener) {
	s := open(t, 0)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				// Every writer adds a column of its own, and shares one.
				write(t, s, "busy", ev(time.Second, map[string]any{"shared": int64(i), fmt.Sprintf("w%d", w): "x"}))
			}
		}()
	}
	wg.Wait()
	require.Equal(t, []map[string]any{{"COUNT": int64(160), "SUM(shared)": 8.0 * 190}},
		run(t, s, "busy", herald.Query{Calculations: []herald.Calculation{{Op: "COUNT"}, {Op: "SUM", Column: "shared"}}}))
}

func testInvalid(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, 0)
	write(t, s, "inv", ev(time.Minute, map[string]any{"a": "b"}))
	for _, q := range []herald.Query{
		{Calculations: []herald.Calculation{{Op: "HEATMAP", Column: "a"}}},
		{Calculations: []herald.Calculation{{Op: "CONCURRENCY"}}},
		{Calculations: []herald.Calculation{{Op: "P42", Column: "a"}}},
		{Calculations: []herald.Calculation{{Op: "SUM"}}},
		{Filters: []herald.Filter{{Column: "a", Op: "like", Value: "x"}}},
		{Filters: []herald.Filter{{Column: "a", Op: "in", Value: "x"}}},
		{Filters: []herald.Filter{{Column: "a", Op: "exists", Value: "x"}}},
		{FilterCombination: "XOR"},
		{Orders: []herald.Order{{Column: "a"}}},
		{Orders: []herald.Order{{Op: "MAX", Column: "a"}}},
		{Havings: []herald.Having{{CalculateOp: "COUNT", Op: "~", Value: 1}}},
		{TimeRange: 60, StartTime: 1, EndTime: 2},
		{Limit: 10_001},
	} {
		_, err := s.Run(ctx, "inv", q, herald.RunOptions{Now: T0})
		require.Equal(t, herald.EINVALID, herald.ErrorCode(err), "%+v", q)
	}
}
