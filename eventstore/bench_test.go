package eventstore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"herald"
	"herald/clock"
	"herald/notify"
	"herald/sqlstore"
)

// benchNow is the benchmarks' "now"; the events span the day before it.
var benchNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// benchStore is one dataset of HERALD_BENCH_EVENTS events (default
// 10,000,000), built once per benchmark binary straight into the table.
var benchStore = sync.OnceValues(func() (*DuckDB, error) {
	n := 10_000_000
	if v := os.Getenv("HERALD_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			return nil, fmt.Errorf("HERALD_BENCH_EVENTS: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: filepath.Join(dir, "events.duckdb")})
	if err != nil {
		return nil, err
	}
	// One event makes the columns, in this order: c1 service, c2 route,
	// c3 status, c4 duration_ms, c5 user_id, c6 error.
	sample := herald.Event{Time: benchNow.Add(-48 * time.Hour), SampleRate: 1, Fields: map[string]any{
		"service": "s", "route": "r", "status": int64(200), "duration_ms": 1.0, "user_id": "u", "error": false}}
	if _, err := s.Write(ctx, "bench", []herald.Event{sample}, true); err != nil {
		return nil, err
	}
	d := s.datasets["bench"]
	col := func(name string) string { return d.cols[name].physical }
	// Events evenly over the 24 hours before benchNow, in time order as
	// they would arrive.
	span := int64(24 * time.Hour / time.Microsecond)
	_, err = s.db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (__time_us, __samplerate, %s, %s, %s, %s, %s, %s)
		SELECT ? + i * ? // ?, 1,
			'svc-' || (i %% 8), '/api/route/' || (hash(i) %% 50), CASE WHEN hash(i) %% 100 < 3 THEN 500 ELSE 200 END,
			(hash(i * 7) %% 100000) / 100.0, 'user-' || (hash(i * 13) %% 100000), hash(i) %% 100 < 3
		FROM range(?) t(i)`, d.table(), col("service"), col("route"), col("status"), col("duration_ms"), col("user_id"), col("error")),
		benchNow.Add(-24*time.Hour).UnixMicro(), span, n, n)
	if err != nil {
		return nil, err
	}
	return s, nil
})

// benchCase is one question, asked through herald's compiler and as the
// SQL a person would write for it.
type benchCase struct {
	name  string
	query herald.Query
	sql   func(table string, col func(string) string) string
}

var benchCases = []benchCase{
	{
		name: "count_filter_10m",
		query: herald.Query{TimeRange: 600, Filters: []herald.Filter{{Column: "status", Op: ">=", Value: 500.0}},
			Calculations: []herald.Calculation{{Op: "COUNT"}}},
		sql: func(t string, c func(string) string) string {
			return fmt.Sprintf("SELECT sum(__samplerate) FROM %s WHERE __time_us >= %d AND __time_us < %d AND %s >= 500",
				t, benchNow.Add(-10*time.Minute).UnixMicro(), benchNow.UnixMicro(), c("status"))
		},
	},
	{
		name:  "p99_1h",
		query: herald.Query{TimeRange: 3600, Calculations: []herald.Calculation{{Op: "P99", Column: "duration_ms"}}},
		sql: func(t string, c func(string) string) string {
			return fmt.Sprintf("SELECT quantile_cont(%s, 0.99) FROM %s WHERE __time_us >= %d AND __time_us < %d",
				c("duration_ms"), t, benchNow.Add(-time.Hour).UnixMicro(), benchNow.UnixMicro())
		},
	},
	{
		name:  "count_distinct_1h",
		query: herald.Query{TimeRange: 3600, Calculations: []herald.Calculation{{Op: "COUNT_DISTINCT", Column: "user_id"}}},
		sql: func(t string, c func(string) string) string {
			return fmt.Sprintf("SELECT count(DISTINCT %s) FROM %s WHERE __time_us >= %d AND __time_us < %d",
				c("user_id"), t, benchNow.Add(-time.Hour).UnixMicro(), benchNow.UnixMicro())
		},
	},
	{
		name: "breakdown_having_1h",
		query: herald.Query{TimeRange: 3600, Breakdowns: []string{"route"},
			Calculations: []herald.Calculation{{Op: "COUNT"}, {Op: "AVG", Column: "duration_ms"}},
			Havings:      []herald.Having{{CalculateOp: "COUNT", Op: ">", Value: 10}}},
		sql: func(t string, c func(string) string) string {
			return fmt.Sprintf(`SELECT %s, sum(__samplerate) AS n, sum(%s * __samplerate) / sum(__samplerate) AS a
				FROM %s WHERE __time_us >= %d AND __time_us < %d GROUP BY %s HAVING sum(__samplerate) > 10
				ORDER BY n DESC, %s LIMIT 100`, c("route"), c("duration_ms"), t,
				benchNow.Add(-time.Hour).UnixMicro(), benchNow.UnixMicro(), c("route"), c("route"))
		},
	},
}

// BenchmarkQuery runs each question through herald (Run: normalize,
// compile, bind, execute, shape the rows) and as hand-written SQL, in the
// same run over the same data.
func BenchmarkQuery(b *testing.B) {
	s, err := benchStore()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	d := s.datasets["bench"]
	col := func(name string) string { return d.cols[name].physical }
	for _, c := range benchCases {
		b.Run(c.name+"/herald", func(b *testing.B) {
			for b.Loop() {
				res, err := s.Run(ctx, "bench", c.query, herald.RunOptions{Now: benchNow})
				if err != nil || len(res.Results) == 0 {
					b.Fatal(err, res)
				}
			}
		})
		b.Run(c.name+"/sql", func(b *testing.B) {
			query := c.sql(d.table(), col)
			for b.Loop() {
				rows, err := s.db.QueryContext(ctx, query)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for rows.Next() {
					n++
				}
				if err := rows.Close(); err != nil || n == 0 {
					b.Fatal(err, n)
				}
			}
		})
	}
}

// BenchmarkTriggers: 1,000 triggers at a 60 s frequency over the benchmark
// dataset. Each iteration simulates one period, a second at a time: the
// scheduler's tick for each second runs for real and is timed, and a
// virtual timeline (a tick starts when its second comes or when the
// previous tick ends, whichever is later) gives each evaluation's lag, as
// the time from its slot to the end of the tick that ran it.
func BenchmarkTriggers(b *testing.B) {
	s, err := benchStore()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	fake := clock.NewFake(benchNow.Add(-time.Hour))
	db, err := sqlstore.Open(ctx, filepath.Join(b.TempDir(), "herald.db"), fake)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	shapes := []herald.Query{
		{Calculations: []herald.Calculation{{Op: "COUNT"}}, Filters: []herald.Filter{{Column: "status", Op: ">=", Value: 500.0}}, TimeRange: 60},
		{Calculations: []herald.Calculation{{Op: "P99", Column: "duration_ms"}}, TimeRange: 120},
		{Calculations: []herald.Calculation{{Op: "AVG", Column: "duration_ms"}}, Breakdowns: []string{"route"}, TimeRange: 60},
		{Calculations: []herald.Calculation{{Op: "COUNT_DISTINCT", Column: "user_id"}}, Filters: []herald.Filter{{Column: "service", Op: "=", Value: "svc-3"}}, TimeRange: 240},
	}
	for i := range 1000 {
		q := shapes[i%len(shapes)]
		t, err := herald.Trigger{Name: fmt.Sprintf("t%d", i), DatasetSlug: "bench", Frequency: 60, Query: &q,
			Threshold:  &herald.Threshold{Op: ">", Value: 1e12},
			Recipients: []herald.TriggerRecipient{{Type: "email", Target: "oncall@example.com"}}}.Normalize()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.SaveTrigger(ctx, t); err != nil {
			b.Fatal(err)
		}
	}
	noop := func(context.Context, *sql.Tx, []string) error { return nil }
	eval, err := notify.NewEvaluator(notify.EvaluatorConfig{Store: db, Events: s, Enqueue: noop, Clock: fake})
	if err != nil {
		b.Fatal(err)
	}
	// Start a period before benchNow, so every window holds events.
	fake.Advance(time.Hour - 2*time.Minute)
	sched, err := notify.NewScheduler(notify.SchedulerConfig{Evaluator: eval, Store: db, Clock: fake, Workers: 4})
	if err != nil {
		b.Fatal(err)
	}
	var lags []time.Duration
	evaluations := 0
	var busy time.Duration
	b.ResetTimer()
	for range b.N {
		var end time.Duration // the virtual timeline, from the period's start
		for sec := range 60 {
			fake.Advance(time.Second)
			started := time.Now()
			n, err := sched.Tick(ctx, fake.Now())
			if err != nil {
				b.Fatal(err)
			}
			took := time.Since(started)
			busy += took
			end = max(end, time.Duration(sec)*time.Second) + took
			for range n {
				lags = append(lags, end-time.Duration(sec)*time.Second)
			}
			evaluations += n
		}
	}
	b.StopTimer()
	slices.Sort(lags)
	if len(lags) > 0 {
		b.ReportMetric(float64(evaluations)/busy.Seconds(), "evaluations/s")
		b.ReportMetric(lags[len(lags)*99/100].Seconds(), "p99_lag_s")
		b.ReportMetric(lags[len(lags)-1].Seconds(), "max_lag_s")
	}
	b.ReportMetric(float64(evaluations)/float64(b.N), "evaluations/period")
}
