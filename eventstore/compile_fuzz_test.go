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
var sqlWords = regexp.MustCompile(`^(SELECT|FROM|WHERE|AND|OR|NOT|IS|NULL|AS|CAST|TRY_CAST|BIGINT|DOUBLE|VARCHAR|BOOLEAN|IN|GROUP|BY|HAVING|ORDER|ASC|DESC|NULLS|LAST|LIMIT|UNION|ALL|WITH|JOIN|ON|DISTINCT|CASE|WHEN|THEN|END|OVER|WINDOW|PARTITION|__time_us|__samplerate|sum|count|min|max|avg|quantile_cont|starts_with|suffix|contains|lag|nullif|t|sr|f|w|n|top|bucket|events_\d+|[bvarc]\d+|\d+(\.\d+)?(e\d+)?)$`)

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

// FuzzCompile: for any query spec and any field names, the compiled SQL
// holds no text from either, and DuckDB runs it.
func FuzzCompile(f *testing.F) {
	f.Add(`{"calculations":[{"op":"P99","column":"duration_ms"},{"op":"COUNT"}],"filters":[{"column":"service.name","op":"=","value":"checkout"},{"column":"http.route","op":"in","value":["/cart","/pay"]},{"column":"trace.parent_id","op":"does-not-exist"}],"breakdowns":["http.route"],"orders":[{"op":"P99","column":"duration_ms","order":"descending"},{"column":"http.route"}],"havings":[{"calculate_op":"COUNT","op":">","value":10}],"limit":100,"time_range":7200,"granularity":60}`, "duration_ms", "http.route")
	f.Add(`{"calculations":[{"op":"RATE_SUM","column":"x'); DROP TABLE herald_columns; --"}],"filters":[{"column":"a\"b","op":"contains","value":"%'"}],"breakdowns":["x'); DROP TABLE herald_columns; --"],"filter_combination":"OR"}`, "x'); DROP TABLE herald_columns; --", "a\"b")
	f.Add(`{"calculations":[{"op":"COUNT_DISTINCT","column":"s"},{"op":"AVG","column":"n"}],"havings":[{"calculate_op":"SUM","column":"n","op":"<=","value":1e300}],"filters":[{"column":"n","op":"!=","value":"12"},{"column":"b","op":"=","value":true}]}`, "s", "n")
	dir := f.TempDir()
	s, err := Open(context.Background(), Config{Path: filepath.Join(dir, "fuzz.duckdb")})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec, col1, col2 string) {
		var q herald.Query
		if json.Unmarshal([]byte(spec), &q) != nil {
			return
		}
		q, err := q.Normalize()
		if err != nil {
			return
		}
		fields := map[string]any{"n": int64(1), "s": "x", "b": true}
		for _, c := range []string{col1, col2} {
			if c != "" && !strings.HasPrefix(c, "__") {
				fields[c] = "v"
			}
		}
		ctx := context.Background()
		if _, err := s.Write(ctx, "fuzz", []herald.Event{{Time: now.Add(-time.Minute), SampleRate: 1, Fields: fields}}, true); err != nil {
			t.Fatal(err)
		}
		sources, err := s.sources("fuzz")
		if err != nil {
			t.Fatal(err)
		}
		start, end := q.Window(now)
		p := newPlan(q, sources, start, end)
		res, series := p.results(), p.series()
		checkSQL(t, res.sb.String())
		checkSQL(t, series.sb.String())
		for _, b := range []*sqlb{res, series} {
			if n := strings.Count(b.sb.String(), "?"); n != len(b.args) {
				t.Fatalf("%d placeholders, %d arguments: %s", n, len(b.args), b.sb.String())
			}
		}
		if _, err := s.Run(ctx, "fuzz", q, herald.RunOptions{Now: now, Series: true}); err != nil {
			t.Fatalf("%v\nquery: %s", err, spec)
		}
	})
}
