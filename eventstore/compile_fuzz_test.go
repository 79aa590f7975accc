package eventstore

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"herald"
)

// sqlWords are the only words compiled SQL may hold: SQL, the functions
// the compiler uses, and the names it makes. A word from a query — a
// column name, a filter value — would show up as a word not in this set,
// or as a quote.
var sqlWords = regexp.MustCompile(`^(SELECT|FROM|WHERE|AND|OR|NOT|IS|NULL|AS|CAST|TRY_CAST|BIGINT|HUGEINT|DOUBLE|VARCHAR|BOOLEAN|IN|GROUP|BY|HAVING|ORDER|ASC|DESC|NULLS|LAST|LIMIT|UNION|ALL|WITH|JOIN|ON|DISTINCT|CASE|WHEN|THEN|ELSE|END|OVER|WINDOW|PARTITION|__time_us|__samplerate|sum|count|min|max|avg|quantile_cont|starts_with|suffix|contains|lag|nullif|coalesce|regexp_matches|concat|least|greatest|trunc|false|t|sr|f|w|n|m|top|bucket|events_\d+|[bvarcd]\d+|\d+(\.\d+)?(e\d+)?)$`)

func checkSQL(t *testing.T, sql string) {
	t.Helper()
	if strings.ContainsAny(sql, `'"`+"`;$\\") {
		t.Fatalf("quote or separator in SQL: %s", sql)
	}
	for _, word := range regexp.MustCompile(`[A-Za-z_][A-Za-z_0-9]*|[0-9][0-9.e]*`).FindAllString(sql, -1) {
		if !sqlWords.MatchString(word) {
			t.Fatalf("word %q from outside the compiler in SQL: %s", word, sql)
		}
	}
}

// FuzzCompile: for any query spec, any field names and any derived
// column, the compiled SQL holds no text from any of them, and DuckDB runs
// it.
func FuzzCompile(f *testing.F) {
	f.Add(`{"calculations":[{"op":"P99","column":"duration_ms"},{"op":"COUNT"}],"filters":[{"column":"service.name","op":"=","value":"checkout"},{"column":"http.route","op":"in","value":["/cart","/pay"]},{"column":"trace.parent_id","op":"does-not-exist"}],"breakdowns":["http.route"],"orders":[{"op":"P99","column":"duration_ms","order":"descending"},{"column":"http.route"}],"havings":[{"calculate_op":"COUNT","op":">","value":10}],"limit":100,"time_range":7200,"granularity":60}`, "duration_ms", "http.route", "")
	f.Add(`{"calculations":[{"op":"RATE_SUM","column":"x'); DROP TABLE herald_columns; --"}],"filters":[{"column":"a\"b","op":"contains","value":"%'"}],"breakdowns":["x'); DROP TABLE herald_columns; --"],"filter_combination":"OR"}`, "x'); DROP TABLE herald_columns; --", "a\"b", "")
	f.Add(`{"calculations":[{"op":"COUNT_DISTINCT","column":"s"},{"op":"AVG","column":"n"}],"havings":[{"calculate_op":"SUM","column":"n","op":"<=","value":1e300}],"filters":[{"column":"n","op":"!=","value":"12"},{"column":"b","op":"=","value":true}]}`, "s", "n", "")
	f.Add(`{"calculations":[{"op":"SUM","column":"derived"},{"op":"COUNT"}],"filters":[{"column":"derived","op":">","value":1}],"breakdowns":["derived"],"havings":[{"calculate_op":"SUM","column":"derived","op":">","value":0}],"orders":[{"column":"derived"}]}`,
		"x'); --", "y", "IF(LT($n, 5), $n * 2 + $f, -$n % 3, SUM(\"2\", $s) / $\"x'); --\")")
	f.Add(`{"calculations":[{"op":"RATE_MAX","column":"derived"},{"op":"P50","column":"derived"}],"breakdowns":["derived","s"]}`,
		"a", "b", "IF(EQUALS($channel,\"email\"), EQUALS($outcome,\"delivered\"))")
	f.Add(`{"breakdowns":["derived"],"filters":[{"column":"derived","op":"starts-with","value":"a'"}]}`,
		"q", "r", "CONCAT(STRING($b), INT($s), FLOAT($n), BOOL($f), MIN($s, 1), MAX($n, 2.5), COALESCE($nope, \"'\"))")
	f.Add(`{"breakdowns":["derived"]}`, "p", "q",
		"REG_MATCH($s, `^[a-z]+'\\d`) AND IN($n, 1, 2.5, \"3\") OR STARTS_WITH($b, \"t\") AND NOT(ENDS_WITH($s, \"--\")) AND CONTAINS($f, \";\") OR !EXISTS($p) AND $s >= \"m\" AND MOD($n, 0) != DIV(1, 0)")
	dir := f.TempDir()
	s, err := Open(context.Background(), Config{Path: filepath.Join(dir, "fuzz.duckdb")})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	if _, err := s.Write(ctx, "fuzz", []herald.Event{{Time: now.Add(-time.Minute), SampleRate: 1, Fields: map[string]any{"n": int64(1)}}}, true); err != nil {
		f.Fatal(err)
	}
	dc, err := s.CreateDerivedColumn(ctx, "fuzz", herald.DerivedColumn{Alias: "derived", Expression: "true"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, spec, col1, col2, expression string) {
		var q herald.Query
		if json.Unmarshal([]byte(spec), &q) != nil {
			return
		}
		q, err := q.Normalize()
		if err != nil {
			return
		}
		fields := map[string]any{"n": int64(1), "s": "x", "b": true, "f": 2.5}
		for _, c := range []string{col1, col2} {
			if c != "" && !strings.HasPrefix(c, "__") && c != "derived" {
				fields[c] = "v"
			}
		}
		if _, err := s.Write(ctx, "fuzz", []herald.Event{{Time: now.Add(-time.Minute), SampleRate: 1, Fields: fields}}, true); err != nil {
			t.Fatal(err)
		}
		if expression != "" {
			_, err := s.UpdateDerivedColumn(ctx, "fuzz", herald.DerivedColumn{ID: dc.ID, Expression: expression})
			if err != nil && herald.ErrorCode(err) != herald.EINVALID {
				t.Fatal(err)
			}
		}
		sources, err := s.sources("fuzz", q)
		if err != nil {
			t.Fatal(err)
		}
		start, end := q.Window(now)
		p := newPlan(q, sources, start, end)
		res, series := p.results(), p.series()
		built := []*sqlb{res, series}
		sli, err := s.sources("fuzz", herald.Query{Breakdowns: []string{"derived"}})
		if err != nil {
			t.Fatal(err)
		}
		built = append(built, sliCounts(sli[0], "d0", start, end))
		for _, b := range built {
			checkSQL(t, b.sb.String())
			if n := strings.Count(b.sb.String(), "?"); n != len(b.args) {
				t.Fatalf("%d placeholders, %d arguments: %s", n, len(b.args), b.sb.String())
			}
		}
		if _, err := s.Run(ctx, "fuzz", q, herald.RunOptions{Now: now, Series: true}); err != nil {
			t.Fatalf("%v\nquery: %s\nexpression: %s", err, spec, expression)
		}
		if _, err := s.SLICounts(ctx, "fuzz", "derived", start, end); err != nil && herald.ErrorCode(err) != herald.EINVALID {
			t.Fatalf("%v\nexpression: %s", err, expression)
		}
	})
}
