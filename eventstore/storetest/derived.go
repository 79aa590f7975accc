package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
)

func createDerived(t *testing.T, s herald.EventStore, dataset, alias, expression string) herald.DerivedColumn {
	t.Helper()
	dc, err := s.CreateDerivedColumn(context.Background(), dataset, herald.DerivedColumn{Alias: alias, Expression: expression})
	require.NoError(t, err, "%s = %s", alias, expression)
	return dc
}

func testDerivedCRUD(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, 0)
	write(t, s, "dc", ev(time.Minute, map[string]any{"duration_ms": 12.5, "status": int64(200)}))
	write(t, s, "other", ev(time.Minute, map[string]any{"status": int64(200)}))

	dc, err := s.CreateDerivedColumn(ctx, "DC", herald.DerivedColumn{
		Alias: "slow", Expression: "GT($duration_ms, 100)", Description: "over 100 ms", ID: "ignored",
	})
	require.NoError(t, err)
	require.NotEmpty(t, dc.ID)
	require.NotEqual(t, "ignored", dc.ID)
	require.Equal(t, "slow", dc.Alias)
	require.Equal(t, "GT($duration_ms, 100)", dc.Expression, "kept as written")
	require.Equal(t, "over 100 ms", dc.Description)
	require.False(t, dc.CreatedAt.IsZero())
	require.Equal(t, dc.CreatedAt, dc.UpdatedAt)

	got, err := s.DerivedColumn(ctx, "dc", dc.ID)
	require.NoError(t, err)
	require.Equal(t, dc, got)
	// Aliases are case-sensitive, like column names, and per dataset.
	upper := createDerived(t, s, "dc", "Slow", "LT($duration_ms, 1)")
	createDerived(t, s, "other", "slow", "true")
	list, err := s.DerivedColumns(ctx, "dc")
	require.NoError(t, err)
	require.Equal(t, []herald.DerivedColumn{upper, dc}, list, "by alias")
	cols, err := s.Columns(ctx, "dc")
	require.NoError(t, err)
	require.Len(t, cols, 2, "derived columns are not columns")

	for _, c := range []struct {
		name, dataset string
		dc            herald.DerivedColumn
		code, msg     string
	}{
		{"unknown dataset", "nope", herald.DerivedColumn{Alias: "a", Expression: "true"}, herald.ENOTFOUND, "not found"},
		{"every dataset", herald.AllDatasets, herald.DerivedColumn{Alias: "a", Expression: "true"}, herald.EINVALID, "environment-wide"},
		{"no alias", "dc", herald.DerivedColumn{Expression: "true"}, herald.EINVALID, "alias"},
		{"blank alias", "dc", herald.DerivedColumn{Alias: "  ", Expression: "true"}, herald.EINVALID, "alias"},
		{"long alias", "dc", herald.DerivedColumn{Alias: strings.Repeat("a", 256), Expression: "true"}, herald.EINVALID, "255"},
		{"a column's name", "dc", herald.DerivedColumn{Alias: "status", Expression: "true"}, herald.EINVALID, `has a column named "status"`},
		{"taken alias", "dc", herald.DerivedColumn{Alias: "slow", Expression: "true"}, herald.ECONFLICT, "already has"},
		{"no expression", "dc", herald.DerivedColumn{Alias: "a", Expression: " "}, herald.EINVALID, "expression"},
		{"syntax", "dc", herald.DerivedColumn{Alias: "a", Expression: "GT($duration_ms 100)"}, herald.EINVALID, "at column 17"},
		{"unknown function", "dc", herald.DerivedColumn{Alias: "a", Expression: "NOT(FOO($a))"}, herald.EINVALID, "at column 5: unknown function FOO"},
		{"unsupported function", "dc", herald.DerivedColumn{Alias: "a", Expression: "LOG10($duration_ms)"}, herald.EINVALID, "not supported"},
		{"arity", "dc", herald.DerivedColumn{Alias: "a", Expression: "EQUALS($a)"}, herald.EINVALID, "EQUALS takes 2 arguments"},
		{"bad regexp", "dc", herald.DerivedColumn{Alias: "a", Expression: `REG_MATCH($a, "(")`}, herald.EINVALID, "regular expression"},
		{"derived in derived", "dc", herald.DerivedColumn{Alias: "a", Expression: "NOT($slow)"}, herald.EINVALID, "$slow is a derived column"},
		{"long description", "dc", herald.DerivedColumn{Alias: "a", Expression: "true", Description: strings.Repeat("d", 1024)}, herald.EINVALID, "description"},
	} {
		_, err := s.CreateDerivedColumn(ctx, c.dataset, c.dc)
		require.Equal(t, c.code, herald.ErrorCode(err), "%s: %v", c.name, err)
		require.ErrorContains(t, err, c.msg, c.name)
	}
	// Columns not seen yet are allowed: they read as null.
	createDerived(t, s, "dc", "later", "EXISTS($not_yet)")

	up, err := s.UpdateDerivedColumn(ctx, "dc", herald.DerivedColumn{ID: dc.ID, Expression: "GTE($duration_ms, 200)", Description: "slower"})
	require.NoError(t, err)
	require.Equal(t, "slow", up.Alias, "an update without an alias keeps it")
	require.Equal(t, "GTE($duration_ms, 200)", up.Expression)
	require.Equal(t, "slower", up.Description)
	require.Equal(t, dc.CreatedAt, up.CreatedAt)
	require.False(t, up.UpdatedAt.Before(up.CreatedAt))
	got, err = s.DerivedColumn(ctx, "dc", dc.ID)
	require.NoError(t, err)
	require.Equal(t, up, got)
	up, err = s.UpdateDerivedColumn(ctx, "dc", herald.DerivedColumn{ID: dc.ID, Alias: "slow", Expression: "true"})
	require.NoError(t, err, "the same alias may be sent")
	require.Equal(t, "", up.Description, "an update replaces the description")

	for _, c := range []struct {
		name, dataset string
		dc            herald.DerivedColumn
		code, msg     string
	}{
		{"new alias", "dc", herald.DerivedColumn{ID: dc.ID, Alias: "fast", Expression: "true"}, herald.EINVALID, "cannot change"},
		{"unknown id", "dc", herald.DerivedColumn{ID: "dc_nope", Expression: "true"}, herald.ENOTFOUND, "not found"},
		{"another dataset's", "other", herald.DerivedColumn{ID: dc.ID, Expression: "true"}, herald.ENOTFOUND, "not found"},
		{"unknown dataset", "nope", herald.DerivedColumn{ID: dc.ID, Expression: "true"}, herald.ENOTFOUND, "not found"},
		{"bad expression", "dc", herald.DerivedColumn{ID: dc.ID, Expression: "IF("}, herald.EINVALID, "at column 4"},
		{"itself", "dc", herald.DerivedColumn{ID: dc.ID, Expression: "$slow"}, herald.EINVALID, "derived column"},
	} {
		_, err := s.UpdateDerivedColumn(ctx, c.dataset, c.dc)
		require.Equal(t, c.code, herald.ErrorCode(err), "%s: %v", c.name, err)
		require.ErrorContains(t, err, c.msg, c.name)
	}

	_, err = s.DerivedColumn(ctx, "dc", "dc_nope")
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(err))
	_, err = s.DerivedColumns(ctx, "nope")
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(err))
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(s.DeleteDerivedColumn(ctx, "other", dc.ID)))
	require.NoError(t, s.DeleteDerivedColumn(ctx, "dc", dc.ID))
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(s.DeleteDerivedColumn(ctx, "dc", dc.ID)))
	_, err = s.DerivedColumn(ctx, "dc", dc.ID)
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(err))
	// The alias is free again.
	createDerived(t, s, "dc", "slow", "GT($duration_ms, 1)")
	list, err = s.DerivedColumns(ctx, "dc")
	require.NoError(t, err)
	require.Len(t, list, 3)
}

func testSLICounts(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, 0)
	m := func(minutes int, seconds int) time.Duration {
		return time.Duration(minutes)*time.Minute - time.Duration(seconds)*time.Second
	}
	at := func(ago time.Duration, rate int64, fields map[string]any) herald.Event {
		e := ev(ago, fields)
		e.SampleRate = rate
		return e
	}
	email := func(outcome string) map[string]any {
		f := map[string]any{"channel": "email"}
		if outcome != "" {
			f["outcome"] = outcome
		}
		return f
	}
	write(t, s, "sli",
		at(m(10, 0), 1, email("delivered")), // the first instant of the window
		at(m(10, 5), 4, email("delivered")),
		at(m(10, 30), 1, email("bounced")),
		at(m(10, 59), 2, email("")), // no outcome: a failure, not excluded
		at(m(10, 10), 3, map[string]any{"channel": "sms", "outcome": "delivered"}),
		at(m(10, 20), 1, map[string]any{"outcome": "delivered"}), // no channel: excluded
		at(m(8, 1), 1, email("delivered")),
		at(m(10, -1), 1, email("delivered")), // before the window
		at(m(2, 0), 1, email("bounced")),     // at its end: out
	)
	createDerived(t, s, "sli", "sli.email", `IF(EQUALS($channel,"email"), EQUALS($outcome,"delivered"))`)
	start, end := T0.Add(-10*time.Minute), T0.Add(-2*time.Minute)
	got, err := s.SLICounts(ctx, "sli", "sli.email", start, end)
	require.NoError(t, err)
	require.Equal(t, []herald.SLIMinute{
		{Minute: T0.Add(-10 * time.Minute), Good: 5, Bad: 3, Excluded: 4},
		{Minute: T0.Add(-8 * time.Minute), Good: 1},
	}, got, "minutes without events are left out")

	got, err = s.SLICounts(ctx, "sli", "sli.email", T0.Add(-time.Hour), T0.Add(-50*time.Minute))
	require.NoError(t, err)
	require.Empty(t, got)

	// Any boolean expression is an SLI; columns not seen yet read as null.
	createDerived(t, s, "sli", "unseen", `LT($latency_ms, 300)`)
	got, err = s.SLICounts(ctx, "sli", "unseen", start, end)
	require.NoError(t, err)
	require.Equal(t, []herald.SLIMinute{{Minute: T0.Add(-10 * time.Minute), Bad: 12}, {Minute: T0.Add(-8 * time.Minute), Bad: 1}}, got)

	createDerived(t, s, "sli", "not_boolean", `CONCAT($channel, $outcome)`)
	for _, c := range []struct{ dataset, alias, code string }{
		{"sli", "not_boolean", herald.EINVALID},
		{"sli", "nope", herald.EINVALID},
		{"sli", "channel", herald.EINVALID}, // a column, not a derived column
		{"nope", "sli.email", herald.ENOTFOUND},
	} {
		_, err := s.SLICounts(ctx, c.dataset, c.alias, start, end)
		require.Equal(t, c.code, herald.ErrorCode(err), "%+v: %v", c, err)
	}
}

// testDerivedFunctions evaluates every function herald supports over two
// stored events: one with every field, one with none of them.
func testDerivedFunctions(t *testing.T, open Opener) {
	s := open(t, 0)
	write(t, s, "fn",
		ev(time.Minute, map[string]any{"id": "full", "s": "abc", "n": int64(7), "f": 2.5, "b": true, "z": int64(0), "e": "",
			"num": "42", "tr": "true", "big": int64(9223372036854775807), "neg": int64(-3)}),
		ev(time.Minute, map[string]any{"id": "sparse"}),
	)
	for i, c := range []struct {
		expression   string
		full, sparse any
	}{
		// Conditionals: a false condition without an else is null; a
		// condition is true if a true boolean, a number but 0, or "true".
		{`IF($b, "yes", "no")`, "yes", "no"},
		{`IF(EQUALS($s, "abc"), "a")`, "a", nil},
		{`IF(LT($n, 5), "small", LT($n, 10), "medium", "large")`, "medium", "large"},
		{`IF($z, 1, 2.5)`, 2.5, 2.5},
		{`IF($tr, 1)`, int64(1), nil},
		{`IF($s, 1, 0)`, int64(0), int64(0)},
		{`if($n, $s, $f)`, "abc", nil},
		{`IF(EXISTS($n), $s, "2.5")`, "abc", "2.5"},
		{`COALESCE($missing, $n, 1)`, int64(7), int64(1)},
		{`COALESCE($s, $n)`, "abc", nil},
		// Boolean functions are never null.
		{`NOT($b)`, false, true},
		{`AND($b, $n, $tr)`, true, false},
		{`OR($z, $e, $missing)`, false, false},
		{`OR($z, $f)`, true, false},
		{`$b AND !$z`, true, false},
		{`$z or $n`, true, false},
		{`EQUALS($s, "abc")`, true, false},
		{`EQUALS($n, 7.0)`, true, false},
		{`EQUALS($num, 42)`, false, false}, // a string is never equal to a number
		{`EQUALS($missing, null)`, true, true},
		{`EQUALS($s, $missing)`, false, true}, // two missing values are equal
		{`$n = 7`, true, false},
		{`$n == 7`, true, false},
		{`$n != 7`, false, true},
		{`IN($n, 1, 7, "7")`, true, false},
		{`IN($s, "x", "abc")`, true, false},
		{`IN($s, 1, 2)`, false, false},
		{`EXISTS($s)`, true, false},
		{`EXISTS($missing)`, false, false},
		{`LT($n, 10)`, true, false},
		{`LTE($n, 7)`, true, false},
		{`GT($f, 2)`, true, false},
		{`GTE($s, "abd")`, false, false},
		{`LT($s, 5)`, false, false}, // a string and a number do not compare
		{`$n < $f`, false, false},
		{`$s >= "abc"`, true, false},
		{`$n > 6 AND $n <= 7`, true, false},
		{`STARTS_WITH($s, "ab")`, true, false},
		{`ENDS_WITH($s, "bc")`, true, false},
		{`CONTAINS($s, "b")`, true, false},
		{`CONTAINS($s, "%")`, false, false}, // no wildcards
		{`STARTS_WITH($n, "7")`, true, false},
		{`REG_MATCH($s, "^a.c$")`, true, false},
		{"REG_MATCH($num, `^\\d+$`)", true, false},
		{`REG_MATCH($n, "^7$")`, true, false},
		// Arithmetic: integers stay integers; a missing or non-numeric
		// operand, an overflow or a division by zero is null.
		{`SUM($n, 1, 2)`, int64(10), nil},
		{`$n + 1`, int64(8), nil},
		{`SUM($n, $f)`, 9.5, nil},
		{`SUM($num, 1)`, 43.0, nil},
		{`SUM($n, $missing)`, nil, nil},
		{`SUM($s, 1)`, nil, nil},
		{`SUB($n, 10)`, int64(-3), nil},
		{`$n - 10`, int64(-3), nil},
		{`MUL($n, 2, 3)`, int64(42), nil},
		{`$n * $f`, 17.5, nil},
		{`DIV($n, 2)`, 3.5, nil},
		{`$n / 7`, 1.0, nil},
		{`DIV($n, $z)`, nil, nil},
		{`$f / 0`, nil, nil},
		{`MOD($n, 3)`, int64(1), nil},
		{`$n % 4`, int64(3), nil},
		{`MOD($n, 0)`, nil, nil},
		{`MOD($f, 1)`, 0.5, nil},
		{`SUM($big, 1)`, nil, nil},
		{`MUL($big, 2)`, nil, nil},
		{`$big - -1`, nil, nil},
		{`-$neg`, int64(3), nil},
		{`-$f`, -2.5, nil},
		{`!$b`, false, true},
		{`MIN($n, $f, 10)`, 2.5, 10.0}, // missing values are skipped
		{`MAX($n, 3)`, int64(7), int64(3)},
		{`MIN($s, "b")`, "abc", "b"},
		{`MAX($s, $n)`, "abc", nil}, // mixed types compare as text
		// Casts.
		{`INT($f)`, int64(2), int64(0)},
		{`INT($num)`, int64(42), int64(0)},
		{`INT($s)`, int64(0), int64(0)},
		{`INT(-2.7)`, int64(-2), int64(-2)},
		{`INT($b)`, int64(0), int64(0)},
		{`FLOAT($n)`, 7.0, 0.0},
		{`FLOAT("3.5")`, 3.5, 3.5},
		{`FLOAT($s)`, 0.0, 0.0},
		{`STRING($n)`, "7", ""},
		{`STRING($b)`, "true", ""},
		{`STRING($f)`, "2.5", ""},
		{`BOOL($n)`, true, false},
		{`BOOL($z)`, false, false},
		{`BOOL($tr)`, true, false},
		{`BOOL($s)`, false, false},
		{`CONCAT($s, "-", $n, "-", $b, $missing)`, "abc-7-true", "--"},
		{`null`, nil, nil},
		{`$"s"`, "abc", nil},
	} {
		alias := fmt.Sprintf("x%d", i)
		createDerived(t, s, "fn", alias, c.expression)
		got := run(t, s, "fn", herald.Query{Breakdowns: []string{"id", alias}, Orders: []herald.Order{{Column: "id"}}})
		require.Equal(t, []map[string]any{
			{"id": "full", alias: c.full, "COUNT": int64(1)},
			{"id": "sparse", alias: c.sparse, "COUNT": int64(1)},
		}, got, c.expression)
	}
}

func testDerivedQueries(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t, 0)
	var events []herald.Event
	for i, r := range []string{"/api/a", "/api/b", "/home", "/api/a", "/about", "/api/b"} {
		events = append(events, ev(time.Duration(i+1)*time.Minute, map[string]any{"route": r, "duration_ms": float64(50 * (i + 1))}))
	}
	write(t, s, "q", events...)
	createDerived(t, s, "q", "slow", `GT($duration_ms, 100)`)
	createDerived(t, s, "q", "ms_x2", `$duration_ms * 2`)
	createDerived(t, s, "q", "area", `IF(STARTS_WITH($route, "/api"), "api", "web")`)

	// A derived column in a calculation, a filter, a breakdown, a having
	// and an order.
	require.Equal(t, []map[string]any{
		{"area": "api", "COUNT": int64(2), "SUM(ms_x2)": 1000.0, "MAX(ms_x2)": 600.0},
		{"area": "web", "COUNT": int64(2), "SUM(ms_x2)": 800.0, "MAX(ms_x2)": 500.0},
	}, run(t, s, "q", herald.Query{
		Calculations: []herald.Calculation{{Op: "COUNT"}, {Op: "SUM", Column: "ms_x2"}, {Op: "MAX", Column: "ms_x2"}},
		Filters:      []herald.Filter{{Column: "slow", Op: "=", Value: true}},
		Breakdowns:   []string{"area"},
		Havings:      []herald.Having{{CalculateOp: "MAX", Column: "ms_x2", Op: ">", Value: 100}},
		Orders:       []herald.Order{{Op: "SUM", Column: "ms_x2", Order: "descending"}},
	}))
	require.Equal(t, []map[string]any{{"COUNT": int64(2)}},
		run(t, s, "q", herald.Query{Filters: []herald.Filter{{Column: "slow", Op: "=", Value: false}}}))
	require.Equal(t, []map[string]any{{"COUNT_DISTINCT(area)": int64(2), "AVG(ms_x2)": 350.0}},
		run(t, s, "q", herald.Query{Calculations: []herald.Calculation{{Op: "COUNT_DISTINCT", Column: "area"}, {Op: "AVG", Column: "ms_x2"}}}))

	// The series reads derived columns too.
	d, err := s.Run(ctx, "q", herald.Query{TimeRange: 600, Granularity: 300, Breakdowns: []string{"slow"},
		Orders: []herald.Order{{Column: "slow"}}}, herald.RunOptions{Now: T0, Series: true})
	require.NoError(t, err)
	require.Equal(t, []herald.ResultRow{{Data: map[string]any{"slow": false, "COUNT": int64(2)}}, {Data: map[string]any{"slow": true, "COUNT": int64(4)}}}, d.Results)
	require.NotEmpty(t, d.Series)
	var total int64
	for _, p := range d.Series {
		total += p.Data["COUNT"].(int64)
	}
	require.Equal(t, int64(6), total)

	// Across datasets each dataset's own definition is used, and a
	// dataset without it reads null.
	write(t, s, "q2", ev(time.Minute, map[string]any{"kind": "batch"}))
	write(t, s, "q3", ev(time.Minute, map[string]any{"kind": "other"}))
	createDerived(t, s, "q2", "area", `CONCAT("q2-", $kind)`)
	require.Equal(t, []map[string]any{
		{"area": "api", "COUNT": int64(4)}, {"area": "q2-batch", "COUNT": int64(1)},
		{"area": "web", "COUNT": int64(2)}, {"area": nil, "COUNT": int64(1)},
	}, run(t, s, herald.AllDatasets, herald.Query{Breakdowns: []string{"area"}, Orders: []herald.Order{{Column: "area"}}}))

	// A derived column keeps its name when events later bring a field of
	// that name.
	createDerived(t, s, "q", "later", `CONCAT("derived-", $route)`)
	write(t, s, "q", ev(time.Minute, map[string]any{"later": "field", "route": "/x"}))
	require.Equal(t, []map[string]any{{"later": "derived-/x", "COUNT": int64(1)}},
		run(t, s, "q", herald.Query{Breakdowns: []string{"later"}, Filters: []herald.Filter{{Column: "route", Op: "=", Value: "/x"}}}))

	// A derived column follows its column's type when it widens.
	write(t, s, "q", ev(time.Minute, map[string]any{"route": "/y", "duration_ms": "slow-ish"}))
	require.Equal(t, []map[string]any{{"ms_x2": nil, "COUNT": int64(1)}},
		run(t, s, "q", herald.Query{Breakdowns: []string{"ms_x2"}, Filters: []herald.Filter{{Column: "route", Op: "=", Value: "/y"}}}))
}
