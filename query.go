package herald

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Query is a query specification in Honeycomb's shape
// (reference: honeycomb-api.md §3).
type Query struct {
	ID                string        `json:"id,omitempty"`
	Calculations      []Calculation `json:"calculations,omitempty"`
	Filters           []Filter      `json:"filters,omitempty"`
	FilterCombination string        `json:"filter_combination,omitempty"`
	Breakdowns        []string      `json:"breakdowns,omitempty"`
	Orders            []Order       `json:"orders,omitempty"`
	Havings           []Having      `json:"havings,omitempty"`
	Limit             int           `json:"limit,omitempty"`
	// TimeRange is in seconds; it defaults to 7200.
	TimeRange int64 `json:"time_range,omitempty"`
	// StartTime and EndTime are Unix seconds.
	StartTime int64 `json:"start_time,omitempty"`
	EndTime   int64 `json:"end_time,omitempty"`
	// Granularity is the width of a series bucket, in seconds.
	Granularity int64 `json:"granularity,omitempty"`
}

// Calculation is one aggregate of a query.
type Calculation struct {
	Op     string `json:"op"`
	Column string `json:"column,omitempty"`
}

// Filter keeps the events whose column passes op against value.
type Filter struct {
	Column string `json:"column"`
	Op     string `json:"op"`
	Value  any    `json:"value,omitempty"`
}

// Order sorts results by a calculation (Op, with Column unless COUNT) or a
// breakdown (Column alone).
type Order struct {
	Op     string `json:"op,omitempty"`
	Column string `json:"column,omitempty"`
	Order  string `json:"order,omitempty"`
}

// Having keeps the groups whose calculation passes op against value.
type Having struct {
	CalculateOp string  `json:"calculate_op"`
	Column      string  `json:"column,omitempty"`
	Op          string  `json:"op"`
	Value       float64 `json:"value"`
}

// Calculation ops.
var calculationOps = []string{"COUNT", "CONCURRENCY", "SUM", "AVG", "COUNT_DISTINCT", "HEATMAP", "MAX", "MIN",
	"P001", "P01", "P05", "P10", "P20", "P25", "P50", "P75", "P80", "P90", "P95", "P99", "P999",
	"RATE_AVG", "RATE_SUM", "RATE_MAX"}

// unsupportedOps are valid ops herald does not compute yet.
var unsupportedOps = []string{"CONCURRENCY", "HEATMAP"}

// Percentile returns the fraction a percentile op names (P99 → 0.99,
// P001 → 0.001) and whether op is one.
func Percentile(op string) (float64, bool) {
	if len(op) < 3 || op[0] != 'P' || !slices.Contains(calculationOps, op) {
		return 0, false
	}
	digits := op[1:]
	var n float64
	for _, c := range digits {
		n = n*10 + float64(c-'0')
	}
	return n / math.Pow(10, float64(len(digits))), true
}

// Filter ops.
var filterOps = []string{"=", "!=", ">", ">=", "<", "<=", "starts-with", "does-not-start-with",
	"ends-with", "does-not-end-with", "exists", "does-not-exist", "contains", "does-not-contain", "in", "not-in"}

var havingOps = []string{"=", "!=", ">", ">=", "<", "<="}

// Query limits.
const (
	DefaultTimeRange = 7200
	DefaultLimit     = 100
	MaxLimit         = 1000
	// MaxResultLimit is the largest limit of a query result.
	MaxResultLimit = 10_000
	maxTerms       = 100
	// MaxSeriesBuckets bounds the buckets of a series.
	MaxSeriesBuckets = 1000
)

// Name returns the result key of a calculation: COUNT, or OP(column).
func (c Calculation) Name() string {
	if c.Column == "" {
		return c.Op
	}
	return c.Op + "(" + c.Column + ")"
}

// Normalize returns q with defaults applied and checks it, returning an
// EINVALID error naming the first field at fault. It does not look at any
// dataset: a column no event has is an empty column, not an error.
func (q Query) Normalize() (Query, error) {
	if len(q.Calculations) == 0 {
		q.Calculations = []Calculation{{Op: "COUNT"}}
	}
	if q.FilterCombination == "" {
		q.FilterCombination = "AND"
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	for _, n := range []struct {
		field string
		n     int
	}{{"calculations", len(q.Calculations)}, {"filters", len(q.Filters)}, {"breakdowns", len(q.Breakdowns)},
		{"orders", len(q.Orders)}, {"havings", len(q.Havings)}} {
		if n.n > maxTerms {
			return q, Invalid(n.field, "invalid", "at most %d %s", maxTerms, n.field)
		}
	}
	for i, c := range q.Calculations {
		field := fmt.Sprintf("calculations[%d]", i)
		if err := validCalculation(field, c.Op, c.Column); err != nil {
			return q, err
		}
	}
	for i, f := range q.Filters {
		if err := validFilter(fmt.Sprintf("filters[%d]", i), f); err != nil {
			return q, err
		}
	}
	if q.FilterCombination != "AND" && q.FilterCombination != "OR" {
		return q, Invalid("filter_combination", "invalid", "must be AND or OR, not %q", q.FilterCombination)
	}
	for i, b := range q.Breakdowns {
		if b == "" {
			return q, Invalid(fmt.Sprintf("breakdowns[%d]", i), "missing", "a breakdown names a column")
		}
		if slices.Contains(q.Breakdowns[:i], b) {
			return q, Invalid(fmt.Sprintf("breakdowns[%d]", i), "invalid", "%q is already a breakdown", b)
		}
	}
	for i, o := range q.Orders {
		field := fmt.Sprintf("orders[%d]", i)
		switch o.Order {
		case "":
			q.Orders[i].Order = "ascending"
		case "ascending", "descending":
		default:
			return q, Invalid(field+".order", "invalid", "must be ascending or descending, not %q", o.Order)
		}
		if o.Op == "" {
			if !slices.Contains(q.Breakdowns, o.Column) {
				return q, Invalid(field, "invalid", "orders by column %q, which is not a breakdown", o.Column)
			}
			continue
		}
		if !slices.Contains(q.Calculations, Calculation{Op: o.Op, Column: o.Column}) {
			return q, Invalid(field, "invalid", "orders by %s, which is not a calculation of the query",
				Calculation{Op: o.Op, Column: o.Column}.Name())
		}
	}
	for i, h := range q.Havings {
		field := fmt.Sprintf("havings[%d]", i)
		if h.CalculateOp == "HEATMAP" {
			return q, Invalid(field+".calculate_op", "invalid", "HEATMAP cannot be a having")
		}
		if err := validCalculation(field, h.CalculateOp, h.Column); err != nil {
			return q, err
		}
		if !slices.Contains(havingOps, h.Op) {
			return q, Invalid(field+".op", "invalid", "unknown op %q", h.Op)
		}
		if math.IsNaN(h.Value) || math.IsInf(h.Value, 0) {
			return q, Invalid(field+".value", "invalid", "must be a finite number")
		}
	}
	if q.Limit < 1 || q.Limit > MaxResultLimit {
		return q, Invalid("limit", "invalid", "must be between 1 and %d", MaxResultLimit)
	}
	if q.TimeRange < 0 || q.StartTime < 0 || q.EndTime < 0 || q.Granularity < 0 {
		return q, Invalid("time_range", "invalid", "times and durations cannot be negative")
	}
	if q.TimeRange != 0 && q.StartTime != 0 && q.EndTime != 0 {
		return q, Invalid("time_range", "invalid", "give at most two of time_range, start_time and end_time")
	}
	if q.StartTime != 0 && q.EndTime != 0 && q.EndTime <= q.StartTime {
		return q, Invalid("end_time", "invalid", "must be after start_time")
	}
	if q.TimeRange == 0 && !(q.StartTime != 0 && q.EndTime != 0) {
		q.TimeRange = DefaultTimeRange
	}
	return q, nil
}

func validCalculation(field, op, column string) error {
	switch {
	case !slices.Contains(calculationOps, op):
		return Invalid(field+".op", "invalid", "unknown calculation %q", op)
	case slices.Contains(unsupportedOps, op):
		return Invalid(field+".op", "invalid", "%s is not supported yet", op)
	case op == "COUNT" && column != "":
		return Invalid(field+".column", "invalid", "COUNT takes no column")
	case op != "COUNT" && column == "":
		return Invalid(field+".column", "missing", "%s needs a column", op)
	}
	return nil
}

func validFilter(field string, f Filter) error {
	if f.Column == "" {
		return Invalid(field+".column", "missing", "a filter names a column")
	}
	if !slices.Contains(filterOps, f.Op) {
		return Invalid(field+".op", "invalid", "unknown op %q", f.Op)
	}
	switch f.Op {
	case "exists", "does-not-exist":
		if f.Value != nil {
			return Invalid(field+".value", "invalid", "%s takes no value", f.Op)
		}
	case "in", "not-in":
		vs, ok := f.Value.([]any)
		if !ok || len(vs) == 0 {
			return Invalid(field+".value", "incorrect_type", "%s takes a non-empty array", f.Op)
		}
		for _, v := range vs {
			if !scalar(v) {
				return Invalid(field+".value", "incorrect_type", "%s takes an array of strings, numbers or booleans", f.Op)
			}
		}
	case "starts-with", "does-not-start-with", "ends-with", "does-not-end-with", "contains", "does-not-contain":
		if _, ok := f.Value.(string); !ok {
			return Invalid(field+".value", "incorrect_type", "%s takes a string", f.Op)
		}
	default:
		if !scalar(f.Value) {
			return Invalid(field+".value", "incorrect_type", "%s takes a string, number or boolean", f.Op)
		}
	}
	return nil
}

func scalar(v any) bool {
	switch v := v.(type) {
	case string, bool:
		return true
	case float64:
		return !math.IsNaN(v) && !math.IsInf(v, 0)
	}
	return false
}

// Window returns the time span [start, end) that a normalized query covers
// at now.
func (q Query) Window(now time.Time) (start, end time.Time) {
	r := time.Duration(q.TimeRange) * time.Second
	switch {
	case q.StartTime != 0 && q.EndTime != 0:
		return time.Unix(q.StartTime, 0), time.Unix(q.EndTime, 0)
	case q.StartTime != 0:
		s := time.Unix(q.StartTime, 0)
		return s, s.Add(r)
	case q.EndTime != 0:
		e := time.Unix(q.EndTime, 0)
		return e.Add(-r), e
	}
	return now.Add(-r), now
}

// SeriesGranularity returns the bucket width of a normalized query's
// series: its granularity, else a hundredth of the window; never so small
// that the window holds more than MaxSeriesBuckets buckets, nor under a
// second.
func (q Query) SeriesGranularity(start, end time.Time) int64 {
	span := int64(end.Sub(start) / time.Second)
	g := q.Granularity
	if g == 0 {
		g = span / 100
	}
	if minimum := (span + MaxSeriesBuckets - 1) / MaxSeriesBuckets; g < minimum {
		g = minimum
	}
	return max(g, 1)
}

// QueryData is the answer to a query, in Honeycomb's shape.
type QueryData struct {
	Series  []SeriesPoint `json:"series"`
	Results []ResultRow   `json:"results"`
}

// ResultRow is one group of a query's answer: its breakdown values and
// its calculations, keyed as Calculation.Name says.
type ResultRow struct {
	Data map[string]any `json:"data"`
}

// SeriesPoint is one group in one time bucket.
type SeriesPoint struct {
	Time time.Time      `json:"time"`
	Data map[string]any `json:"data"`
}

// QueryResult is a query run at one moment, kept so clients can read it
// back.
type QueryResult struct {
	ID        string
	QueryID   string
	Dataset   string
	Data      QueryData
	CreatedAt time.Time
}
