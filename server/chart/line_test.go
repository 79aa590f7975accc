package chart_test

import (
	"encoding/binary"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald/server/chart"
)

// series returns n points a step apart from t0, valued f(i).
func series(name string, n int, step time.Duration, f func(i int) float64) chart.Series {
	s := chart.Series{Name: name, Points: make([]chart.Point, n)}
	for i := range n {
		s.Points[i] = chart.Point{T: t0.Add(time.Duration(i) * step), V: f(i)}
	}
	return s
}

// latency is a typical chart: three series, a threshold, a unit.
func latency() chart.Line {
	return chart.Line{
		Title:  "Delivery latency",
		YLabel: "Latency",
		Unit:   "ms",
		Series: []chart.Series{
			series("p50", 24, time.Hour, func(i int) float64 { return 40 + float64(i%5) }),
			series("p90", 24, time.Hour, func(i int) float64 { return 90 + float64(i%7) }),
			series("p99", 24, time.Hour, func(i int) float64 { return 150 + float64(i%11)*10 }),
		},
		Thresholds: []chart.Threshold{{Value: 250, Label: "SLO 250 ms"}},
	}
}

// linePaths returns the d attribute of each series' line.
func linePaths(svg string) []string { return attrs(svg, "line", "d") }

func TestLineStructure(t *testing.T) {
	t.Parallel()
	out := latency().SVG()
	svg := wellFormed(t, out)
	noNonFinite(t, out)
	s := string(out)

	id := regexp.MustCompile(`<title id="(chart-[0-9a-f]+)-title">`).FindStringSubmatch(svg)
	require.NotNil(t, id, "title with a derived id")
	require.Contains(t, svg, `role="img" aria-labelledby="`+id[1]+`-title `+id[1]+`-desc"`)
	require.Contains(t, svg, `<title id="`+id[1]+`-title">Delivery latency</title>`)
	require.Contains(t, svg, `<desc id="`+id[1]+`-desc">Line chart of 3 series: p50, p90, p99. From 2026-03-01 00:00 to 2026-03-01 23:00 UTC; values from 40 to 250 ms.</desc>`)
	require.Contains(t, svg, `clip-path="url(#`+id[1]+`-clip)"`)

	require.Len(t, linePaths(svg), 3, "a line per series")
	for _, d := range linePaths(svg) {
		require.Equal(t, 1, strings.Count(d, "M"), "no gaps")
		require.Equal(t, 23, strings.Count(d, "L"), "every point")
	}
	require.Equal(t, []string{"8 4", "2 4"}, attrs(svg, "line", "stroke-dasharray"), "the first is solid, the others dashed")
	require.Len(t, attrs(svg, "marker", "d"), 6, "markers on each line and in each legend entry")
	for _, name := range []string{"p50", "p90", "p99"} {
		require.Contains(t, svg, ">"+name+"</text>", "legend names %s", name)
	}
	require.Len(t, attrs(svg, "swatch", "d"), 3)
	require.Len(t, attrs(svg, "threshold", "d"), 1)
	require.Contains(t, svg, `>SLO 250 ms</text>`)
	require.Contains(t, svg, `>Latency</text>`, "y axis label")
	require.Contains(t, svg, `>Time (UTC)</text>`)
	require.Contains(t, svg, `>300 ms</text>`, "y ticks carry the unit")
	require.Contains(t, svg, `>Mar 1</text>`, "the midnight tick names its day")
	require.Contains(t, svg, `>06:00</text>`)

	require.Contains(t, s, `<caption>Delivery latency</caption>`)
	require.Contains(t, s, `<th scope="col">Time (UTC)</th><th scope="col">p50 (ms)</th>`)
	require.Contains(t, s, `<tr><th scope="row"><time datetime="2026-03-01T05:00:00Z">2026-03-01 05:00</time></th><td>40</td><td>95</td><td>200</td></tr>`)
	require.Equal(t, 24, strings.Count(s, `<th scope="row"><time`), "a row per time")
	require.Contains(t, s, `<tfoot><tr><th scope="row">Threshold: SLO 250 ms</th><td colspan="3">250 ms</td></tr></tfoot>`)

	golden(t, "line.html", out)
}

func TestLineEscapesText(t *testing.T) {
	t.Parallel()
	evil := `<script>alert("x")</script>'&`
	c := chart.Line{
		Title: evil, Desc: evil, YLabel: evil, Unit: evil,
		Series:     []chart.Series{series(evil, 3, time.Minute, func(i int) float64 { return float64(i) })},
		Thresholds: []chart.Threshold{{Value: 1, Label: evil}},
	}
	out := c.SVG()
	wellFormed(t, out)
	s := string(out)
	require.NotContains(t, s, "<script")
	require.NotContains(t, s, `"x"`)
	require.Contains(t, s, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&#39;&amp;`)

	// Bytes XML forbids, invalid UTF-8 and line breaks are replaced.
	c = chart.Line{Title: "a\x00b\x1bc\xffd\u0085e\nf", Series: c.Series}
	out = c.SVG()
	wellFormed(t, out)
	require.Contains(t, string(out), "<title id=")
	require.Contains(t, string(out), ">a\uFFFDb\uFFFDc\uFFFDd\uFFFDe f</title>")
}

func TestLineOddData(t *testing.T) {
	t.Parallel()
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		name  string
		chart chart.Line
		check func(t *testing.T, svg, out string)
	}{{
		name:  "zero value",
		chart: chart.Line{},
		check: func(t *testing.T, svg, out string) {
			require.Contains(t, svg, ">No data</text>")
			require.Contains(t, svg, "<title id=\"chart-")
			require.Contains(t, svg, ">Line chart</title>")
			require.Contains(t, out, "<td>No data</td>")
		},
	}, {
		name:  "series without points",
		chart: chart.Line{Title: "t", Series: []chart.Series{{Name: "a"}, {Name: "b"}}},
		check: func(t *testing.T, svg, _ string) {
			require.Contains(t, svg, ">No data</text>")
			require.Empty(t, linePaths(svg))
		},
	}, {
		name:  "only NaN and Inf",
		chart: chart.Line{Series: []chart.Series{series("a", 5, time.Minute, func(i int) float64 { return []float64{nan, inf, -inf}[i%3] })}},
		check: func(t *testing.T, svg, _ string) { require.Contains(t, svg, ">No data</text>") },
	}, {
		name:  "single point",
		chart: chart.Line{Series: []chart.Series{series("a", 1, time.Minute, func(int) float64 { return 42 })}},
		check: func(t *testing.T, svg, out string) {
			require.Equal(t, []string{"M326 81.8"}, linePaths(svg))
			require.Len(t, attrs(svg, "marker", "d"), 2, "the point has a marker, so it shows")
			require.Contains(t, svg, ">40</text>")
			require.Contains(t, svg, ">23:30</text>", "half an hour either side")
			require.Contains(t, out, "<td>42</td>")
		},
	}, {
		name:  "all equal",
		chart: chart.Line{Series: []chart.Series{series("a", 10, time.Minute, func(int) float64 { return 7 })}},
		check: func(t *testing.T, svg, _ string) {
			require.Len(t, linePaths(svg), 1)
			require.Contains(t, svg, ">0</text>")
			require.Contains(t, svg, ">8</text>")
		},
	}, {
		name:  "all zero",
		chart: chart.Line{Series: []chart.Series{series("a", 10, time.Minute, func(int) float64 { return 0 })}},
		check: func(t *testing.T, svg, _ string) {
			require.Contains(t, svg, ">0</text>")
			require.Contains(t, svg, ">1</text>")
		},
	}, {
		name:  "negative",
		chart: chart.Line{Series: []chart.Series{series("a", 10, time.Minute, func(i int) float64 { return -float64(i) * 100 })}},
		check: func(t *testing.T, svg, _ string) {
			require.Contains(t, svg, ">-1k</text>")
			require.Contains(t, svg, ">0</text>")
			require.NotContains(t, svg, ">-0</text>")
		},
	}, {
		name: "gaps",
		chart: chart.Line{Series: []chart.Series{series("a", 10, time.Minute, func(i int) float64 {
			return []float64{1, 2, nan, 3, 4, inf, 5, -inf, 6, 7}[i]
		})}},
		check: func(t *testing.T, svg, out string) {
			d := linePaths(svg)
			require.Len(t, d, 1)
			require.Equal(t, 4, strings.Count(d[0], "M"), "runs 1-2, 3-4, 5 and 6-7")
			require.Equal(t, 3, strings.Count(d[0], "L"))
			require.Equal(t, 7, strings.Count(out, `<th scope="row"><time`), "the table skips the gaps")
		},
	}, {
		name: "unsorted",
		chart: chart.Line{Series: []chart.Series{{Name: "a", Points: []chart.Point{
			{T: t0.Add(2 * time.Minute), V: 3}, {T: t0, V: 1}, {T: t0.Add(time.Minute), V: 2},
		}}}},
		check: func(t *testing.T, svg, out string) {
			require.Equal(t, []string{"M32 172L326 90L620 8"}, linePaths(svg))
			require.Regexp(t, `(?s)00:00</time>.*00:01</time>.*00:02</time>`, out)
		},
	}, {
		name: "same time twice",
		chart: chart.Line{Series: []chart.Series{{Name: "a", Points: []chart.Point{
			{T: t0, V: 1}, {T: t0, V: 2}, {T: t0.Add(time.Minute), V: 3},
		}}}},
		check: func(t *testing.T, _, out string) {
			require.Contains(t, out, "<td>1, 2</td>")
		},
	}, {
		name: "extreme values",
		chart: chart.Line{Series: []chart.Series{series("a", 4, time.Minute, func(i int) float64 {
			return []float64{math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 0}[i]
		})}},
		check: func(t *testing.T, svg, out string) {
			require.Len(t, linePaths(svg), 1)
			require.Contains(t, out, "<td>1.7976931348623157e+308</td>")
		},
	}, {
		name: "tiny range",
		chart: chart.Line{YMin: ptr(1e15), Series: []chart.Series{series("a", 4, time.Minute, func(i int) float64 {
			return 1e15 + float64(i)*0.125
		})}},
		check: func(t *testing.T, svg, _ string) { require.Len(t, linePaths(svg), 1) },
	}, {
		name: "extreme times",
		chart: chart.Line{Series: []chart.Series{{Name: "a", Points: []chart.Point{
			{T: time.Time{}, V: 1}, {T: time.Unix(math.MaxInt64/2, 0), V: 2}, {T: time.Unix(math.MinInt64/2, 0), V: 3},
		}}}},
		check: func(t *testing.T, svg, _ string) { require.Len(t, linePaths(svg), 1) },
	}, {
		name: "fixed axis",
		chart: chart.Line{YMin: ptr(90), YMax: ptr(100), Thresholds: []chart.Threshold{{Value: 99.9, Label: "SLO"}, {Value: 50, Label: "off the axis"}},
			Series: []chart.Series{series("a", 10, time.Minute, func(i int) float64 { return 95 + float64(i) })}},
		check: func(t *testing.T, svg, out string) {
			require.Contains(t, svg, ">90</text>")
			require.Contains(t, svg, ">100</text>")
			require.NotContains(t, svg, ">0</text>")
			require.Len(t, attrs(svg, "threshold", "d"), 1, "only the threshold on the axis is drawn")
			require.Contains(t, out, "Threshold: off the axis", "the table lists both")
		},
	}, {
		name: "fixed axis upside down is ignored",
		chart: chart.Line{YMin: ptr(100), YMax: ptr(10), Series: []chart.Series{
			series("a", 10, time.Minute, func(i int) float64 { return float64(i) }),
		}},
		check: func(t *testing.T, svg, _ string) {
			require.Contains(t, svg, ">0</text>")
			require.Contains(t, svg, ">10</text>")
		},
	}, {
		name: "NaN axis end is ignored",
		chart: chart.Line{YMin: ptr(nan), YMax: ptr(inf), Series: []chart.Series{
			series("a", 10, time.Minute, func(i int) float64 { return float64(i) }),
		}},
		check: func(t *testing.T, svg, _ string) { require.Contains(t, svg, ">10</text>") },
	}, {
		name: "many series",
		chart: func() chart.Line {
			var c chart.Line
			for i := range 100 {
				c.Series = append(c.Series, series(strings.Repeat("x", i), 3, time.Minute, func(j int) float64 { return float64(i * j) }))
			}
			return c
		}(),
		check: func(t *testing.T, svg, _ string) {
			require.Len(t, linePaths(svg), 100)
			require.Regexp(t, `>\+\d+ more</text>`, svg, "the legend stops where the chart does")
		},
	}, {
		name: "odd sizes",
		chart: chart.Line{Width: -5, Height: 1 << 30, Series: []chart.Series{
			series("a", 3, time.Minute, func(i int) float64 { return float64(i) }),
		}},
		check: func(t *testing.T, svg, _ string) { require.Contains(t, svg, `width="640" height="4096"`) },
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := tc.chart.SVG()
			svg := wellFormed(t, out)
			noNonFinite(t, out)
			tc.check(t, svg, string(out))
		})
	}
}

func TestLineDownsamples(t *testing.T) {
	t.Parallel()
	const n = 100_000
	spike := series("spiky", n, time.Second, func(i int) float64 {
		switch i {
		case 31_337:
			return 1000 // one spike among 100,000 points
		case 70_000:
			return math.NaN()
		}
		return 10 + float64(i%3)
	})
	out := chart.Line{Series: []chart.Series{spike}}.SVG()
	svg := wellFormed(t, out)
	noNonFinite(t, out)
	d := linePaths(svg)
	require.Len(t, d, 1)
	points := strings.Count(d[0], "M") + strings.Count(d[0], "L")
	require.LessOrEqual(t, points, 640, "at most about a point per pixel")
	require.Greater(t, points, 400)
	require.Equal(t, 1, strings.Count(d[0], "M"), "a one-point gap is narrower than a pixel")
	require.Regexp(t, `L\d+(\.\d)? 8L`, d[0], "the spike reaches the top of the plot")
	require.Contains(t, string(out), "<th scope=\"col\">Points</th>", "too many times for a row each: a summary")
	require.Contains(t, string(out), "<td>99999</td>")
	require.Contains(t, string(out), "<td>1000</td>")
}

func TestLineIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b := latency().SVG(), latency().SVG()
	require.Equal(t, a, b)

	other := latency()
	other.Series[0].Points[3].V++
	idOf := func(s string) string {
		return regexp.MustCompile(`<title id="([^"]+)-title">`).FindStringSubmatch(s)[1]
	}
	require.NotEqual(t, idOf(string(a)), idOf(string(other.SVG())), "different data, different ids")

	for _, tc := range []struct{ id, want string }{
		{"latency", "latency"},
		{"p99 <latency> ü", "p99latency"},
		{"9lives", "c9lives"},
		{"\"><", "chart-"},
	} {
		c := latency()
		c.ID = tc.id
		require.Contains(t, string(c.SVG()), `<title id="`+tc.want, "ID %q", tc.id)
	}
}

func FuzzLine(f *testing.F) {
	f.Add("Latency", "p99", "SLO", "ms", []byte{0, 0, 0, 0, 0, 0, 240, 63, 0, 0, 0, 0, 0, 0, 0, 64}, int64(1_772_323_200), int64(60), int16(640), int16(320), false)
	f.Add("<b>", "\"'&", "", "%", []byte{1, 0, 0, 0, 0, 0, 248, 127, 0, 0, 0, 0, 0, 0, 240, 127, 0, 0, 0, 0, 0, 0, 240, 255}, int64(0), int64(-1), int16(0), int16(-3), true)
	f.Add("", "", "", "", []byte{}, int64(math.MaxInt64), int64(math.MinInt64), int16(math.MaxInt16), int16(1), true)
	f.Add("x", "\xff\x00", "\u2028", "", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xef, 0x7f, 1, 0, 0, 0, 0, 0, 0, 0}, int64(-62135596800), int64(0), int16(160), int16(120), false)
	f.Fuzz(func(t *testing.T, title, name, label, unit string, raw []byte, start, step int64, width, height int16, fix bool) {
		for _, s := range []string{title, name, label, unit} {
			if strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
				t.Skip("the output would rightly contain NaN or Inf")
			}
		}
		var vs []float64
		for len(raw) >= 8 {
			vs = append(vs, math.Float64frombits(binary.LittleEndian.Uint64(raw)))
			raw = raw[8:]
		}
		c := chart.Line{Title: title, YLabel: label, Unit: unit, Width: int(width), Height: int(height)}
		a := chart.Series{Name: name}
		b := chart.Series{Name: name + name}
		for i, v := range vs {
			tm := time.Unix(start+int64(i)*step, int64(i)*7919)
			a.Points = append(a.Points, chart.Point{T: tm, V: v})
			b.Points = append(b.Points, chart.Point{T: tm.Add(time.Duration(v)), V: -v / 3})
			if i%4 == 0 {
				c.Thresholds = append(c.Thresholds, chart.Threshold{Value: v, Label: label})
			}
		}
		c.Series = []chart.Series{a, b, {Name: label}}
		if fix && len(vs) >= 2 {
			c.YMin, c.YMax = &vs[0], &vs[1]
		}
		out := c.SVG()
		wellFormed(t, out)
		noNonFinite(t, out)
		require.Equal(t, out, c.SVG(), "deterministic")
	})
}

// BenchmarkLine renders three series of 10,000 points each.
func BenchmarkLine(b *testing.B) {
	c := chart.Line{Title: "Delivery latency", Unit: "ms", Thresholds: []chart.Threshold{{Value: 250, Label: "SLO"}}}
	for k := range 3 {
		c.Series = append(c.Series, series("p"+string(rune('5'+2*k)), 10_000, 10*time.Second, func(i int) float64 {
			return float64(50*(k+1)) + 30*math.Sin(float64(i)/500+float64(k))
		}))
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(c.SVG()) == 0 {
			b.Fatal("no output")
		}
	}
}
