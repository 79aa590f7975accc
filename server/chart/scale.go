package chart

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// yScale is a value axis: its range, and ticks at a nice step with their
// labels.
type yScale struct {
	lo, hi float64
	step   float64
	ticks  []float64
	labels []string
}

// newYScale makes an axis over [lo, hi] with about n intervals at a step of
// 1, 2, 2.5 or 5 × 10^k. An end that is not fixed widens to a multiple of
// the step; a fixed end stays, and ticks fall inside it. A range too narrow
// to tell its ends apart widens around them. Labels carry unit.
func newYScale(lo, hi float64, fixLo, fixHi bool, n int, unit string) yScale {
	lo, hi = clampf(lo, -limit, limit), clampf(hi, -limit, limit)
	if hi < lo {
		lo, hi = hi, lo
	}
	if span := hi - lo; span <= 1e-9*max(math.Abs(lo), math.Abs(hi)) || span < 1e-200 {
		fixLo, fixHi = false, false
		if math.Abs(lo) < 1e-200 {
			lo, hi = 0, 1
		} else {
			pad := math.Abs(lo) / 10
			lo, hi = lo-pad, hi+pad
		}
	}
	n = max(n, 1)
	step := niceStep((hi - lo) / float64(n))
	if !fixLo {
		lo = math.Floor(lo/step) * step
	}
	if !fixHi {
		hi = math.Ceil(hi/step) * step
	}
	s := yScale{lo: lo, hi: hi, step: step}
	first := math.Ceil(lo/step - 1e-9)
	for i := range 4*n + 3 {
		v := (first + float64(i)) * step
		if v > hi+step*1e-9 {
			break
		}
		if v == 0 {
			v = 0 // not -0
		}
		if len(s.ticks) > 0 && v <= s.ticks[len(s.ticks)-1] {
			continue // lost to rounding at this magnitude
		}
		s.ticks = append(s.ticks, v)
	}
	f := newTickFormat(s.ticks, step)
	suffix := unitSuffix(unit)
	for _, v := range s.ticks {
		l := f.format(v) + suffix
		if len(s.labels) > 0 && l == s.labels[len(s.labels)-1] {
			// Two ticks the labels can't tell apart: keep the first.
			s.ticks = s.ticks[:len(s.labels)]
			break
		}
		s.labels = append(s.labels, l)
	}
	return s
}

// niceStep returns the smallest of 1, 2, 2.5, 5 or 10 × 10^k at least raw.
func niceStep(raw float64) float64 {
	if !(raw > 0) || math.IsInf(raw, 0) {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	if mag == 0 || math.IsInf(mag, 0) {
		return raw
	}
	for _, m := range [...]float64{1, 2, 2.5, 5} {
		if raw <= m*mag*(1+1e-9) {
			return m * mag
		}
	}
	return 10 * mag
}

// tickFormat formats the ticks of one axis: each scaled by the metric
// prefix (k, M, G, T) its size calls for, with the decimals the step needs
// and no trailing zeros; or, for huge values or tiny steps, all in exponent
// notation.
type tickFormat struct {
	step float64
	exp  bool
}

func newTickFormat(ticks []float64, step float64) tickFormat {
	var top float64
	for _, t := range ticks {
		top = max(top, math.Abs(t))
	}
	return tickFormat{step: step, exp: top >= 1e15 || step < 1e-5}
}

func (f tickFormat) format(v float64) string {
	if f.exp {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	div, prefix := 1.0, ""
	for _, p := range [...]struct {
		div    float64
		prefix string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if math.Abs(v) >= p.div*(1-1e-9) {
			div, prefix = p.div, p.prefix
			break
		}
	}
	decimals := 10
	for d := range 10 {
		p := f.step / div * math.Pow(10, float64(d))
		if math.Abs(p-math.Round(p)) <= 1e-6*p {
			decimals = d
			break
		}
	}
	s := strconv.FormatFloat(v/div, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0" // rounded from a tiny negative
	}
	return s + prefix
}

// timeTick is a tick on the time axis, at t seconds since the Unix epoch.
type timeTick struct {
	t     float64
	label string
}

// A timeStep is a step for time ticks, with the layout of their labels.
type timeStep struct {
	seconds float64
	layout  string
}

const (
	day  = 86400
	week = 7 * day
	// monday is 1970-01-05, the first Monday of the epoch: weekly ticks
	// fall on Mondays.
	monday = 4 * day
)

// timeSteps are the steps shorter than a month. Ticks align to multiples
// of the step since the epoch, which for whole hours and days means UTC
// boundaries.
var timeSteps = [...]timeStep{
	{0.001, "15:04:05.000"}, {0.002, "15:04:05.000"}, {0.005, "15:04:05.000"},
	{0.01, "15:04:05.00"}, {0.02, "15:04:05.00"}, {0.05, "15:04:05.00"},
	{0.1, "15:04:05.0"}, {0.2, "15:04:05.0"}, {0.5, "15:04:05.0"},
	{1, "15:04:05"}, {2, "15:04:05"}, {5, "15:04:05"}, {10, "15:04:05"}, {15, "15:04:05"}, {30, "15:04:05"},
	{60, "15:04"}, {120, "15:04"}, {300, "15:04"}, {600, "15:04"}, {900, "15:04"}, {1800, "15:04"},
	{3600, "15:04"}, {2 * 3600, "15:04"}, {3 * 3600, "15:04"}, {6 * 3600, "15:04"}, {12 * 3600, "15:04"},
	{day, "Jan 2"}, {2 * day, "Jan 2"}, {week, "Jan 2"},
}

// monthSeconds is an average month, for choosing a step of months.
const monthSeconds = 30.436875 * day

// timeTicks returns at most about n ticks in [lo, hi] (seconds since the
// epoch) at the shortest sensible step: milliseconds to weeks, then 1, 3 or
// 6 months, then 1, 2 or 5 × 10^k years. Labels are in UTC, and a sub-day
// tick at midnight names its day instead of "00:00".
func timeTicks(lo, hi float64, n int) []timeTick {
	// Beyond about 30 million years from 1970 time.Date's arithmetic
	// wraps; such times get no ticks.
	if !(hi > lo) || math.Abs(lo) > 1e15 || math.Abs(hi) > 1e15 {
		return nil
	}
	n = max(n, 1)
	span := hi - lo
	for _, s := range timeSteps {
		if span/s.seconds > float64(n) {
			continue
		}
		offset := 0.0
		if s.seconds == week {
			offset = monday
		}
		var ticks []timeTick
		first := math.Ceil((lo-offset)/s.seconds)*s.seconds + offset
		for i := range 2*n + 2 {
			t := first + float64(i)*s.seconds
			if t > hi {
				break
			}
			tm := timeAt(t)
			layout := s.layout
			if s.seconds < day && tm.Hour() == 0 && tm.Minute() == 0 && tm.Second() == 0 && tm.Nanosecond() < 1e6 {
				layout = "Jan 2"
			}
			ticks = append(ticks, timeTick{t: t, label: tm.Format(layout)})
		}
		return ticks
	}
	loT, hiT := timeAt(lo), timeAt(hi)
	if months := span / monthSeconds; months/6 <= float64(n) {
		k := 1
		for _, m := range [...]int{1, 3, 6} {
			if k = m; months/float64(m) <= float64(n) {
				break
			}
		}
		// Months since year 0, aligned down to a multiple of k.
		m0 := loT.Year()*12 + int(loT.Month()) - 1
		m0 -= ((m0 % k) + k) % k
		return calendarTicks(lo, hi, n, func(i int) time.Time {
			m := m0 + i*k
			return time.Date(floorDiv(m, 12), time.Month(m-floorDiv(m, 12)*12+1), 1, 0, 0, 0, 0, time.UTC)
		}, "Jan 2006")
	}
	years := float64(hiT.Year() - loT.Year())
	k := max(1, int(niceYears(years/float64(n))))
	y0 := floorDiv(loT.Year(), k) * k
	return calendarTicks(lo, hi, n, func(i int) time.Time {
		return time.Date(y0+i*k, 1, 1, 0, 0, 0, 0, time.UTC)
	}, "2006")
}

// calendarTicks returns the times at(0), at(1), … that fall in [lo, hi].
func calendarTicks(lo, hi float64, n int, at func(int) time.Time, layout string) []timeTick {
	var ticks []timeTick
	for i := range 2*n + 3 {
		tm := at(i)
		t := seconds(tm)
		if t > hi {
			break
		}
		if t >= lo {
			ticks = append(ticks, timeTick{t: t, label: tm.Format(layout)})
		}
	}
	return ticks
}

// niceYears returns the smallest of 1, 2 or 5 × 10^k at least raw.
func niceYears(raw float64) float64 {
	if !(raw > 1) {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range [...]float64{1, 2, 5} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// seconds is t as seconds since the Unix epoch.
func seconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// timeAt is the UTC time s seconds after the Unix epoch.
func timeAt(s float64) time.Time {
	s = clampf(s, -9e18, 9e18)
	sec := math.Floor(s)
	return time.Unix(int64(sec), int64((s-sec)*1e9)).UTC()
}

// timeLayout is the layout for full timestamps in a table or description:
// to the minute, second or millisecond, as fine as any of ts needs.
func timeLayout(ts []time.Time) string {
	layout := "2006-01-02 15:04"
	for _, t := range ts {
		if t.Nanosecond() != 0 {
			return "2006-01-02 15:04:05.000"
		}
		if t.Second() != 0 {
			layout = "2006-01-02 15:04:05"
		}
	}
	return layout
}
