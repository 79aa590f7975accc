package chart

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNiceStep(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, want float64 }{
		{1, 1}, {1.1, 2}, {2, 2}, {2.2, 2.5}, {3, 5}, {7, 10}, {0.03, 0.05}, {45, 50}, {1234, 2000}, {0.00021, 0.00025},
		{0, 1}, {-3, 1},
	} {
		require.InDelta(t, tc.want, niceStep(tc.raw), tc.want*1e-12, "niceStep(%v)", tc.raw)
	}
}

func TestYScale(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		lo, hi       float64
		fixLo, fixHi bool
		n            int
		unit         string
		want         []string
	}{
		{"round", 0, 100, false, false, 4, "", []string{"0", "25", "50", "75", "100"}},
		{"widened", 0, 93, false, false, 4, "", []string{"0", "25", "50", "75", "100"}},
		{"uneven", 0, 202, false, false, 4, "", []string{"0", "100", "200", "300"}},
		{"small", 0, 0.7, false, false, 4, "", []string{"0", "0.2", "0.4", "0.6", "0.8"}},
		{"halves", 0, 9, false, false, 4, "", []string{"0", "2.5", "5", "7.5", "10"}},
		{"negative", -45, 30, false, false, 4, "", []string{"-60", "-40", "-20", "0", "20", "40"}},
		{"prefixes", 0, 1400, false, false, 4, "", []string{"0", "500", "1k", "1.5k"}},
		{"thousands", 0, 4200, false, false, 4, "", []string{"0", "2k", "4k", "6k"}},
		{"millions", 0, 2.5e6, false, false, 4, "", []string{"0", "1M", "2M", "3M"}},
		{"huge", 0, 1e300, false, false, 4, "", []string{"0", "2.5e+299", "5e+299", "7.5e+299", "1e+300"}},
		{"tiny", 0, 3e-9, false, false, 3, "", []string{"0", "1e-09", "2e-09", "3e-09"}},
		{"unit", 0, 1, false, false, 2, "ms", []string{"0 ms", "0.5 ms", "1 ms"}},
		{"percent", 99, 100, false, false, 2, "%", []string{"99%", "99.5%", "100%"}},
		{"fixed", 90, 100, true, true, 4, "", []string{"90", "92.5", "95", "97.5", "100"}},
		{"fixed odd", 3, 17, true, true, 4, "", []string{"5", "10", "15"}},
		{"flat", 7, 7, false, false, 4, "", []string{"6", "6.5", "7", "7.5", "8"}},
		{"zero", 0, 0, false, false, 4, "", []string{"0", "0.25", "0.5", "0.75", "1"}},
		{"reversed", 10, 0, false, false, 2, "", []string{"0", "5", "10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newYScale(tc.lo, tc.hi, tc.fixLo, tc.fixHi, tc.n, tc.unit)
			require.Equal(t, tc.want, s.labels)
			require.Len(t, s.ticks, len(s.labels))
			require.Less(t, s.lo, s.hi)
			require.LessOrEqual(t, s.lo, s.ticks[0])
			require.GreaterOrEqual(t, s.hi, s.ticks[len(s.ticks)-1])
		})
	}
}

func TestTimeTicks(t *testing.T) {
	t.Parallel()
	at := func(s string) float64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		return seconds(tm)
	}
	for _, tc := range []struct {
		name   string
		lo, hi string
		n      int
		want   []string
	}{
		{"1 hour", "2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z", 6, []string{"10:00", "10:10", "10:20", "10:30", "10:40", "10:50", "11:00"}},
		{"1 hour, not aligned", "2026-03-01T10:07:00Z", "2026-03-01T11:07:00Z", 6, []string{"10:10", "10:20", "10:30", "10:40", "10:50", "11:00"}},
		{"1 hour, narrow", "2026-03-01T10:07:00Z", "2026-03-01T11:07:00Z", 3, []string{"10:30", "11:00"}},
		{"1 day", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", 6, []string{"Mar 1", "06:00", "12:00", "18:00", "Mar 2"}},
		{"1 day, wide", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", 8, []string{"Mar 1", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00", "Mar 2"}},
		{"30 days", "2026-03-01T00:00:00Z", "2026-03-31T00:00:00Z", 6, []string{"Mar 2", "Mar 9", "Mar 16", "Mar 23", "Mar 30"}},
		{"30 days, wide", "2026-03-01T00:00:00Z", "2026-03-31T00:00:00Z", 16, []string{"Mar 2", "Mar 4", "Mar 6", "Mar 8", "Mar 10", "Mar 12", "Mar 14", "Mar 16", "Mar 18", "Mar 20", "Mar 22", "Mar 24", "Mar 26", "Mar 28", "Mar 30"}},
		{"seconds", "2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z", 6, []string{"10:00:00", "10:00:10", "10:00:20", "10:00:30", "10:00:40", "10:00:50", "10:01:00"}},
		{"milliseconds", "2026-03-01T10:00:00.1Z", "2026-03-01T10:00:00.4Z", 4, []string{"10:00:00.1", "10:00:00.2", "10:00:00.3", "10:00:00.4"}},
		{"midnight in hours", "2026-03-01T20:00:00Z", "2026-03-02T04:00:00Z", 4, []string{"20:00", "22:00", "Mar 2", "02:00", "04:00"}},
		{"months", "2026-01-15T00:00:00Z", "2026-07-15T00:00:00Z", 6, []string{"Feb 2026", "Mar 2026", "Apr 2026", "May 2026", "Jun 2026", "Jul 2026"}},
		{"half years", "2024-01-15T00:00:00Z", "2026-01-15T00:00:00Z", 6, []string{"Jul 2024", "Jan 2025", "Jul 2025", "Jan 2026"}},
		{"quarters", "2024-01-15T00:00:00Z", "2026-01-15T00:00:00Z", 9, []string{"Apr 2024", "Jul 2024", "Oct 2024", "Jan 2025", "Apr 2025", "Jul 2025", "Oct 2025", "Jan 2026"}},
		{"years", "1990-06-01T00:00:00Z", "2026-06-01T00:00:00Z", 6, []string{"2000", "2010", "2020"}},
		{"before the epoch", "1969-12-31T22:00:00Z", "1970-01-01T02:00:00Z", 4, []string{"22:00", "23:00", "Jan 1", "01:00", "02:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lo, hi := at(tc.lo), at(tc.hi)
			var got []string
			for i, tick := range timeTicks(lo, hi, tc.n) {
				got = append(got, tick.label)
				require.GreaterOrEqual(t, tick.t, lo)
				require.LessOrEqual(t, tick.t, hi)
				require.Equal(t, tick.label, timeAt(tick.t).Format(layoutOf(tick.label)), "tick %d is where its label says", i)
			}
			require.Equal(t, tc.want, got)
		})
	}
	require.Empty(t, timeTicks(5, 5, 6), "no span")
	require.Empty(t, timeTicks(-1e17, 1e17, 6), "beyond time.Date's range")
}

// layoutOf guesses the layout a tick label was formatted with.
func layoutOf(label string) string {
	for _, l := range []string{"15:04:05.000", "15:04:05.00", "15:04:05.0", "15:04:05", "15:04", "Jan 2006", "Jan 2", "2006"} {
		if _, err := time.Parse(l, label); err == nil {
			return l
		}
	}
	return ""
}

func TestTrace(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(0, 0)
	ident := func(v float64) float64 { return v }
	byIndex := func(s float64) float64 { return s }
	pts := func(vs ...float64) []Point {
		out := make([]Point, len(vs))
		for i, v := range vs {
			out[i] = Point{T: t0.Add(time.Duration(i) * time.Second), V: v}
		}
		return out
	}
	// Few points: every one kept, gaps split runs.
	p := trace(pts(1, 2, nan(), 4), byIndex, ident, 0, 100)
	require.Equal(t, []xy{{0, 1}, {1, 2}, {3, 4}}, p.pts)
	require.Equal(t, []int{0, 2}, p.starts)

	// More points than pixels: the highest and lowest of each two-pixel
	// column, in time order.
	vs := make([]float64, 40)
	for i := range vs {
		vs[i] = float64(i % 5)
	}
	vs[13] = -7
	p = trace(pts(vs...), func(s float64) float64 { return s / 4 }, ident, 0, 10)
	require.Len(t, p.pts, 10, "5 columns, 2 points each")
	require.Contains(t, p.pts, xy{13.0 / 4, -7})
	require.Equal(t, []int{0}, p.starts)
}

func nan() float64 { return 0 * func() float64 { var z float64; return 1 / z }() }
