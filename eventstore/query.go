package eventstore

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"herald"
)

// Run implements herald.EventStore.
func (s *DuckDB) Run(ctx context.Context, name string, q herald.Query, opt herald.RunOptions) (*herald.QueryData, error) {
	q, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	sources, err := s.sources(name, q)
	if err != nil {
		return nil, err
	}
	data := &herald.QueryData{Results: []herald.ResultRow{}}
	if opt.Series {
		data.Series = []herald.SeriesPoint{}
	}
	if len(sources) == 0 {
		return data, nil
	}
	start, end := q.Window(opt.Now)
	p := newPlan(q, sources, start, end)
	res := p.results()
	err = s.scan(ctx, res, func(row []any) {
		if len(q.Breakdowns) == 0 {
			// The last column counts the events: none means no result.
			if n, _ := row[len(row)-1].(int64); n == 0 {
				return
			}
		}
		data.Results = append(data.Results, herald.ResultRow{Data: p.row(row)})
	})
	if err != nil {
		return nil, err
	}
	if !opt.Series {
		return data, nil
	}
	err = s.scan(ctx, p.series(), func(row []any) {
		at, _ := row[0].(int64)
		data.Series = append(data.Series, herald.SeriesPoint{Time: time.UnixMicro(at).UTC(), Data: p.row(row[1:])})
	})
	if err != nil {
		return nil, err
	}
	return data, nil
}

// sources returns the datasets a query over name reads, with the derived
// columns q names compiled in.
func (s *DuckDB) sources(name string, q herald.Query) ([]source, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var ds []*dataset
	if name == herald.AllDatasets {
		for _, d := range s.datasets {
			ds = append(ds, d)
		}
	} else {
		d := s.datasets[herald.DatasetSlug(name)]
		if d == nil {
			return nil, herald.Errorf(herald.ENOTFOUND, "dataset %q not found", name)
		}
		ds = append(ds, d)
	}
	names := columnsOf(q)
	out := make([]source, 0, len(ds))
	for _, d := range ds {
		// Published catalog entries are never changed, only replaced,
		// so the query may keep reading these.
		src := source{table: d.table(), cols: d.cols}
		n := 0
		for _, name := range names {
			dc := s.derived[d.id][name]
			if dc == nil {
				continue
			}
			if src.derived == nil {
				src.cols, src.derived = maps.Clone(d.cols), &sqlb{}
			}
			physical := physicalName(n)
			n++
			typ, err := derivedColumn(src.derived, d, dc, physical)
			if err != nil {
				return nil, err
			}
			src.cols[name] = &column{name: name, physical: physical, typ: typ}
		}
		out = append(out, src)
	}
	slices.SortFunc(out, func(a, b source) int { return strings.Compare(a.table, b.table) })
	return out, nil
}

// columnsOf returns the column names q reads, each once.
func columnsOf(q herald.Query) []string {
	var out []string
	add := func(name string) {
		if name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	for _, c := range q.Calculations {
		add(c.Column)
	}
	for _, f := range q.Filters {
		add(f.Column)
	}
	for _, b := range q.Breakdowns {
		add(b)
	}
	for _, h := range q.Havings {
		add(h.Column)
	}
	for _, o := range q.Orders {
		add(o.Column)
	}
	return out
}

// scan runs a query and calls f with each row's values.
func (s *DuckDB) scan(ctx context.Context, b *sqlb, f func([]any)) error {
	rows, err := s.db.QueryContext(ctx, b.sb.String(), b.args...)
	if err != nil {
		return fmt.Errorf("eventstore: query: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return fmt.Errorf("eventstore: query: %w", err)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("eventstore: query: %w", err)
		}
		f(slices.Clone(vals))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("eventstore: query: %w", err)
	}
	return nil
}

// row names the values of a result row: breakdowns by column, then
// calculations by Calculation.Name.
func (p *plan) row(vals []any) map[string]any {
	out := make(map[string]any, len(vals))
	for i, name := range p.q.Breakdowns {
		out[name] = value(vals[i])
	}
	for i, c := range p.calcs {
		out[c.Name()] = value(vals[len(p.q.Breakdowns)+i])
	}
	return out
}

// value is a database value as JSON can carry it: NaN and infinities
// (a TRY_CAST of "nan", say) become null. The compiler casts every result
// column to BIGINT, DOUBLE, BOOLEAN or VARCHAR, so nothing else comes.
func value(v any) any {
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return nil
	}
	return v
}
