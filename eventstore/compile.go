package eventstore

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"herald"
)

// The compiler turns a normalized query into SQL. Identifiers in the SQL
// come only from herald's catalog (events_<id>, c<n>) and from names the
// compiler makes (t, sr, b0, v0, a0, d0); the literals it writes are a
// percentile fraction from herald's own table of ops and the zeros and
// falses of derived columns' null rules. Every value from the query —
// filter values, having thresholds, times, limits, the literals of
// derived-column expressions — is a bound parameter.

// source is one dataset as the compiler sees it.
type source struct {
	table string
	// cols are the dataset's columns and the derived columns the query
	// names (which take the place of a column of the same name).
	cols map[string]*column
	// derived, when the query names derived columns, is their select
	// list (", <expression> AS d0, …"), read through from.
	derived *sqlb
}

// from writes the relation a source is read from: its table, or with
// derived columns, (SELECT *, <expression> AS d0, … FROM events_N).
func (s source) from(b *sqlb) {
	if s.derived == nil {
		b.add(s.table)
		return
	}
	b.add("(SELECT *")
	b.append(s.derived)
	b.add(" FROM " + s.table + ")")
}

// sqlb builds SQL text and its arguments in textual order.
type sqlb struct {
	sb   strings.Builder
	args []any
}

func (b *sqlb) add(text string, args ...any) {
	b.sb.WriteString(text)
	b.args = append(b.args, args...)
}

func (b *sqlb) append(o *sqlb) { b.add(o.sb.String(), o.args...) }

// input is one value column of the base relation: a column, read as a
// number (for SUM, AVG, percentiles, rates) or as itself (COUNT_DISTINCT).
type input struct {
	column  string
	numeric bool
}

// plan is a query ready to be written as SQL.
type plan struct {
	q          herald.Query
	sources    []source
	start, end int64 // Unix µs, [start, end)
	calcs      []herald.Calculation
	inputs     []input
	rates      []int // indexes into inputs that need a rate column
	// unified is, for __all__, the one type of each breakdown or raw
	// input column across datasets.
	unified map[string]string
	// inline, when set, is the one dataset a flat query reads: breakdowns
	// and inputs are written as its column expressions, not as names of
	// a base relation.
	inline *source
}

func newPlan(q herald.Query, sources []source, start, end time.Time) *plan {
	p := &plan{q: q, sources: sources, start: start.UnixMicro(), end: end.UnixMicro(), unified: map[string]string{}}
	for _, c := range q.Calculations {
		if !slices.Contains(p.calcs, c) {
			p.calcs = append(p.calcs, c)
		}
	}
	for _, c := range p.calcs {
		p.inputOf(c)
	}
	for _, h := range q.Havings {
		p.inputOf(herald.Calculation{Op: h.CalculateOp, Column: h.Column})
	}
	for _, name := range append(slices.Clone(q.Breakdowns), p.rawColumns()...) {
		typ := ""
		for _, s := range sources {
			if c := s.cols[name]; c != nil {
				typ = herald.MergeType(cmp.Or(typ, c.typ), c.typ)
			}
		}
		p.unified[name] = cmp.Or(typ, herald.TypeString)
	}
	return p
}

func (p *plan) rawColumns() []string {
	var out []string
	for _, in := range p.inputs {
		if !in.numeric {
			out = append(out, in.column)
		}
	}
	return out
}

// inputOf returns the index of the input a calculation reads, adding it.
func (p *plan) inputOf(c herald.Calculation) int {
	if c.Op == "COUNT" {
		return -1
	}
	in := input{column: c.Column, numeric: c.Op != "COUNT_DISTINCT"}
	i := slices.Index(p.inputs, in)
	if i < 0 {
		p.inputs = append(p.inputs, in)
		i = len(p.inputs) - 1
	}
	if strings.HasPrefix(c.Op, "RATE_") && !slices.Contains(p.rates, i) {
		p.rates = append(p.rates, i)
	}
	return i
}

// base writes the relation every query reads: one row per event in the
// window that passes the filters, with columns t, sr, b0…, v0… (and r0…
// for rates).
func (p *plan) base() *sqlb {
	b := &sqlb{}
	if len(p.rates) > 0 {
		b.add("SELECT *")
		for _, i := range p.rates {
			b.add(fmt.Sprintf(", (v%d - lag(v%d) OVER w) / nullif((t - lag(t) OVER w) / 1e6, 0) AS r%d", i, i, i))
		}
		b.add(" FROM (")
	}
	for i, s := range p.sources {
		if i > 0 {
			b.add(" UNION ALL ")
		}
		p.branch(b, s)
	}
	if len(p.rates) > 0 {
		b.add(") WINDOW w AS (")
		if len(p.q.Breakdowns) > 0 {
			b.add("PARTITION BY " + p.names("b", len(p.q.Breakdowns)) + " ")
		}
		b.add("ORDER BY t)")
	}
	return b
}

// names returns "b0, b1, …".
func (p *plan) names(prefix string, n int) string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return strings.Join(out, ", ")
}

func (p *plan) branch(b *sqlb, s source) {
	b.add("SELECT __time_us AS t, __samplerate AS sr")
	for i := range p.q.Breakdowns {
		b.add(", " + p.breakdownExpr(s, i) + " AS b" + strconv.Itoa(i))
	}
	for i := range p.inputs {
		b.add(", " + p.inputExpr(s, i) + " AS v" + strconv.Itoa(i))
	}
	b.add(" FROM ")
	s.from(b)
	p.where(b, s)
}

func (p *plan) breakdownExpr(s source, i int) string {
	return p.as(s, p.q.Breakdowns[i], len(p.sources) > 1)
}

func (p *plan) inputExpr(s source, i int) string {
	in := p.inputs[i]
	if in.numeric {
		return numeric(s.cols[in.column], len(p.sources) > 1)
	}
	return p.as(s, in.column, len(p.sources) > 1)
}

// where writes the time window and the filters over one dataset.
func (p *plan) where(b *sqlb, s source) {
	b.add(" WHERE __time_us >= ? AND __time_us < ?", p.start, p.end)
	if len(p.q.Filters) > 0 {
		b.add(" AND (")
		for i, f := range p.q.Filters {
			if i > 0 {
				b.add(" " + p.q.FilterCombination + " ")
			}
			filter(b, s.cols[f.Column], f)
		}
		b.add(")")
	}
}

// as is a column read as its unified type (when many datasets are
// combined), or NULL when the dataset lacks it.
func (p *plan) as(s source, name string, many bool) string {
	c := s.cols[name]
	typ := duckType(p.unified[name])
	switch {
	case c == nil:
		return "CAST(NULL AS " + typ + ")"
	case many && c.typ != p.unified[name]:
		return "CAST(" + c.physical + " AS " + typ + ")"
	}
	return c.physical
}

// numeric is a column read as a number: itself when it is one, else its
// value cast to DOUBLE where the cast succeeds.
func numeric(c *column, many bool) string {
	switch {
	case c == nil:
		return "CAST(NULL AS DOUBLE)"
	case c.typ == herald.TypeFloat, c.typ == herald.TypeInteger && !many:
		return c.physical
	case c.typ == herald.TypeInteger:
		return "CAST(" + c.physical + " AS DOUBLE)"
	}
	return "TRY_CAST(" + c.physical + " AS DOUBLE)"
}

// filter writes one filter over column c (nil when the dataset lacks it).
// Negative ops (!=, does-not-…, not-in) also match events without the
// column.
func filter(b *sqlb, c *column, f herald.Filter) {
	x, typ := "NULL", herald.TypeString
	if c != nil {
		x, typ = c.physical, c.typ
	}
	text := x
	if typ != herald.TypeString {
		text = "CAST(" + x + " AS VARCHAR)"
	}
	negate := func(positive func()) {
		b.add("(" + x + " IS NULL OR NOT (")
		positive()
		b.add("))")
	}
	switch f.Op {
	case "exists":
		b.add(x + " IS NOT NULL")
	case "does-not-exist":
		b.add(x + " IS NULL")
	case "=", ">", ">=", "<", "<=":
		compare(b, x, text, typ, f.Op, f.Value)
	case "!=":
		negate(func() { compare(b, x, text, typ, "=", f.Value) })
	case "starts-with":
		b.add("starts_with("+text+", ?)", f.Value)
	case "does-not-start-with":
		negate(func() { b.add("starts_with("+text+", ?)", f.Value) })
	case "ends-with":
		b.add("suffix("+text+", ?)", f.Value)
	case "does-not-end-with":
		negate(func() { b.add("suffix("+text+", ?)", f.Value) })
	case "contains":
		b.add("contains("+text+", ?)", f.Value)
	case "does-not-contain":
		negate(func() { b.add("contains("+text+", ?)", f.Value) })
	case "in":
		in(b, x, text, typ, f.Value.([]any))
	case "not-in":
		negate(func() { in(b, x, text, typ, f.Value.([]any)) })
	default:
		// Normalize refuses every other op.
		panic("eventstore: unknown filter op " + f.Op)
	}
}

// compare writes x op value, with value read as the column's type when it
// can be, and both sides compared as text when it cannot.
func compare(b *sqlb, x, text, typ, op string, value any) {
	if v, ok := coerce(value, typ); ok {
		b.add(x+" "+op+" ?", v)
		return
	}
	b.add(text+" "+op+" ?", asText(value))
}

func in(b *sqlb, x, text, typ string, values []any) {
	typed := make([]any, len(values))
	ok := true
	for i, v := range values {
		if typed[i], ok = coerce(v, typ); !ok {
			break
		}
	}
	if !ok {
		x = text
		for i, v := range values {
			typed[i] = asText(v)
		}
	}
	b.add(x + " IN (")
	for i, v := range typed {
		if i > 0 {
			b.add(", ")
		}
		b.add("?", v)
	}
	b.add(")")
}

// coerce returns a filter value as a value of a column of type typ.
func coerce(v any, typ string) (any, bool) {
	switch typ {
	case herald.TypeInteger, herald.TypeFloat:
		var f float64
		switch v := v.(type) {
		case float64:
			f = v
		case string:
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
				return nil, false
			}
			f = n
		default:
			return nil, false
		}
		if typ == herald.TypeInteger && f == math.Trunc(f) && math.Abs(f) < 1<<62 {
			return int64(f), true
		}
		return f, true
	case herald.TypeBoolean:
		switch v := v.(type) {
		case bool:
			return v, true
		case string:
			if b, err := strconv.ParseBool(v); err == nil {
				return b, true
			}
		}
		return nil, false
	}
	return asText(v), true
}

// asText is a filter value's text: numbers in their shortest form.
func asText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(v)
}

// aggregate is the SQL of a calculation over the base relation.
func (p *plan) aggregate(c herald.Calculation) string {
	sr := "sr"
	if p.inline != nil {
		sr = "__samplerate"
	}
	if c.Op == "COUNT" {
		return "CAST(sum(" + sr + ") AS BIGINT)"
	}
	i := p.inputOf(c)
	v := "v" + strconv.Itoa(i)
	if p.inline != nil {
		v = p.inputExpr(*p.inline, i)
	}
	if frac, ok := herald.Percentile(c.Op); ok {
		return "quantile_cont(" + v + ", " + strconv.FormatFloat(frac, 'f', -1, 64) + ")"
	}
	switch c.Op {
	case "SUM":
		return "CAST(sum(" + v + " * " + sr + ") AS DOUBLE)"
	case "AVG":
		return "CAST(sum(" + v + " * " + sr + ") AS DOUBLE) / sum(CASE WHEN " + v + " IS NOT NULL THEN " + sr + " END)"
	case "MIN":
		return "min(" + v + ")"
	case "MAX":
		return "max(" + v + ")"
	case "COUNT_DISTINCT":
		return "count(DISTINCT " + v + ")"
	case "RATE_AVG":
		return "avg(r" + strconv.Itoa(i) + ")"
	case "RATE_SUM":
		return "sum(r" + strconv.Itoa(i) + ")"
	case "RATE_MAX":
		return "max(r" + strconv.Itoa(i) + ")"
	}
	// Normalize refuses every other op.
	panic("eventstore: unknown calculation " + c.Op)
}

// grouped writes "SELECT <b…>, <a…> FROM <from> GROUP BY … HAVING …" for
// the results, or, with bucket, the series' columns with the time bucket
// first (a series keeps every group the results keep, so it needs no
// having). Without breakdowns the results end with count(*) AS n, so an
// empty window (one row of nulls in SQL) can be told apart and dropped.
func (p *plan) grouped(b *sqlb, from *sqlb, bucket bool) {
	var cols, groups []string
	var args []any
	if bucket {
		g := p.q.SeriesGranularity(time.UnixMicro(p.start), time.UnixMicro(p.end)) * 1_000_000
		cols, groups, args = append(cols, "(t // ?) * ? AS bucket"), append(groups, "bucket"), []any{g, g}
	}
	for i := range p.q.Breakdowns {
		ref := "f.b" + strconv.Itoa(i)
		if p.inline != nil {
			cols = append(cols, p.breakdownExpr(*p.inline, i)+" AS b"+strconv.Itoa(i))
			ref = "b" + strconv.Itoa(i)
		} else {
			cols = append(cols, ref)
		}
		groups = append(groups, ref)
	}
	for i, c := range p.calcs {
		cols = append(cols, p.aggregate(c)+" AS a"+strconv.Itoa(i))
	}
	if !bucket && len(p.q.Breakdowns) == 0 {
		cols = append(cols, "count(*) AS n")
	}
	b.add("SELECT "+strings.Join(cols, ", ")+" FROM ", args...)
	b.append(from)
	if len(groups) > 0 {
		b.add(" GROUP BY " + strings.Join(groups, ", "))
	}
	if !bucket {
		for i, h := range p.q.Havings {
			if i == 0 {
				b.add(" HAVING ")
			} else {
				b.add(" AND ")
			}
			b.add(p.aggregate(herald.Calculation{Op: h.CalculateOp, Column: h.Column})+" "+h.Op+" ?", h.Value)
		}
	}
}

// order writes the results' ORDER BY and LIMIT: the query's orders (by
// default the first calculation, descending), then every breakdown, so
// the order is total.
func (p *plan) order(b *sqlb) {
	var terms []string
	orders := p.q.Orders
	if len(orders) == 0 {
		orders = []herald.Order{{Op: p.calcs[0].Op, Column: p.calcs[0].Column, Order: "descending"}}
	}
	for _, o := range orders {
		dir := " ASC NULLS LAST"
		if o.Order == "descending" {
			dir = " DESC NULLS LAST"
		}
		if o.Op == "" {
			terms = append(terms, "b"+strconv.Itoa(slices.Index(p.q.Breakdowns, o.Column))+dir)
			continue
		}
		terms = append(terms, "a"+strconv.Itoa(slices.Index(p.calcs, herald.Calculation{Op: o.Op, Column: o.Column}))+dir)
	}
	for i := range p.q.Breakdowns {
		terms = append(terms, "b"+strconv.Itoa(i)+" ASC NULLS LAST")
	}
	b.add(" ORDER BY " + strings.Join(terms, ", "))
	b.add(" LIMIT ?", int64(p.q.Limit))
}

// results is the query for the result rows. Over one dataset and without
// rates it reads the table directly, as a person would write it.
func (p *plan) results() *sqlb {
	from := &sqlb{}
	if len(p.sources) == 1 && len(p.rates) == 0 {
		p.inline = &p.sources[0]
		defer func() { p.inline = nil }()
		p.inline.from(from)
		p.where(from, *p.inline)
	} else {
		from.add("(")
		from.append(p.base())
		from.add(") AS f")
	}
	b := &sqlb{}
	p.grouped(b, from, false)
	if len(p.q.Breakdowns) > 0 {
		// Without breakdowns there is one row at most: nothing to order.
		p.order(b)
	}
	return b
}

// series is the query for the series: every result group in every bucket.
func (p *plan) series() *sqlb {
	b := &sqlb{}
	b.add("WITH f AS (")
	b.append(p.base())
	b.add(")")
	from := &sqlb{}
	from.add("f")
	if len(p.q.Breakdowns) > 0 {
		b.add(", top AS (")
		cte := &sqlb{}
		cte.add("f")
		p.grouped(b, cte, false)
		p.order(b)
		b.add(")")
		var on []string
		for i := range p.q.Breakdowns {
			on = append(on, fmt.Sprintf("f.b%d IS NOT DISTINCT FROM top.b%d", i, i))
		}
		from.add(" JOIN top ON " + strings.Join(on, " AND "))
	}
	b.add(" ")
	p.grouped(b, from, true)
	b.add(" ORDER BY bucket")
	for i := range p.q.Breakdowns {
		b.add(", f.b" + strconv.Itoa(i) + " ASC NULLS LAST")
	}
	return b
}

// sliCounts is the query of SLICounts: per minute of [start, end), the
// sample-rate weight of the events where the boolean column x of s is
// true, false and null.
func sliCounts(s source, x string, start, end time.Time) *sqlb {
	b := &sqlb{}
	b.add("SELECT __time_us // ? AS m", int64(60_000_000))
	b.add(", CAST(sum(CASE WHEN " + x + " THEN __samplerate ELSE 0 END) AS BIGINT)")
	b.add(", CAST(sum(CASE WHEN NOT " + x + " THEN __samplerate ELSE 0 END) AS BIGINT)")
	b.add(", CAST(sum(CASE WHEN " + x + " IS NULL THEN __samplerate ELSE 0 END) AS BIGINT) FROM ")
	s.from(b)
	b.add(" WHERE __time_us >= ? AND __time_us < ? GROUP BY m ORDER BY m", start.UnixMicro(), end.UnixMicro())
	return b
}
