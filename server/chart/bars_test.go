package chart_test

import (
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"herald/server/chart"
)

// deliveries is a typical chart: partners' deliveries by outcome.
func deliveries() chart.Bars {
	return chart.Bars{
		Title:  "Deliveries by partner",
		XLabel: "Partner",
		YLabel: "Deliveries",
		Bars: []chart.Bar{
			{Label: "sendgrid", Segments: []chart.Segment{{Name: "delivered", Value: 120}, {Name: "failed", Value: 12}, {Name: "unconfirmed", Value: 5}}},
			{Label: "mailgun", Segments: []chart.Segment{{Name: "delivered", Value: 80}, {Name: "failed", Value: 30}, {Name: "unconfirmed", Value: 10}}},
			{Label: "ses", Segments: []chart.Segment{{Name: "delivered", Value: 200}, {Name: "failed", Value: 2}}},
			{Label: "smtp", Segments: []chart.Segment{{Name: "failed", Value: 50}, {Name: "delivered", Value: 20}}},
		},
	}
}

func TestBarsStructure(t *testing.T) {
	t.Parallel()
	out := deliveries().SVG()
	svg := wellFormed(t, out)
	noNonFinite(t, out)
	s := string(out)

	id := regexp.MustCompile(`<title id="(chart-[0-9a-f]+)-title">`).FindStringSubmatch(svg)
	require.NotNil(t, id)
	require.Contains(t, svg, `role="img" aria-labelledby="`+id[1]+`-title `+id[1]+`-desc"`)
	require.Contains(t, svg, `<desc id="`+id[1]+`-desc">Stacked bar chart of 4 bars of delivered, failed, unconfirmed; stacks reach from 0 to 202.</desc>`)

	require.Equal(t, 3, strings.Count(svg, "<pattern "), "a pattern per segment name")
	require.Contains(t, svg, `<pattern id="`+id[1]+`-h0" patternUnits="userSpaceOnUse" width="8" height="8"><rect class="s0" color="#0072b2" width="8" height="8" fill="currentColor"/></pattern>`, "the first is solid")
	require.Contains(t, svg, `<pattern id="`+id[1]+`-h1" patternUnits="userSpaceOnUse" width="8" height="8"><rect class="s1" color="#d55e00" width="8" height="8" fill="currentColor"/><path class="hatch"`, "the second hatched")
	require.Equal(t, 10, strings.Count(svg, `<rect class="seg `), "a rect per segment")
	require.Equal(t, 3, strings.Count(svg, `fill="url(#`+id[1]+`-h2)"`), "two unconfirmed segments and the legend's swatch")
	require.Len(t, attrs(svg, "swatch", "fill"), 3)
	for _, name := range []string{"delivered", "failed", "unconfirmed", "sendgrid", "smtp", "Partner", "Deliveries"} {
		require.Contains(t, svg, ">"+name+"</text>")
	}
	require.Contains(t, svg, "<title>smtp — failed: 50</title>", "a tooltip per segment")

	require.Contains(t, s, `<caption>Deliveries by partner</caption><thead><tr><th scope="col">Partner</th><th scope="col">delivered</th><th scope="col">failed</th><th scope="col">unconfirmed</th><th scope="col">Total</th></tr></thead>`)
	require.Contains(t, s, `<tr><th scope="row">ses</th><td>200</td><td>2</td><td></td><td>202</td></tr>`)
	require.Contains(t, s, `<tr><th scope="row">smtp</th><td>20</td><td>50</td><td></td><td>70</td></tr>`)

	golden(t, "bars.html", out)
}

func TestBarsOddData(t *testing.T) {
	t.Parallel()
	evil := `<script>alert("x")</script>`
	for _, tc := range []struct {
		name  string
		chart chart.Bars
		check func(t *testing.T, svg, out string)
	}{{
		name:  "zero value",
		chart: chart.Bars{},
		check: func(t *testing.T, svg, out string) {
			require.Contains(t, svg, ">No data</text>")
			require.Contains(t, svg, ">Bar chart</title>")
			require.Contains(t, out, "<td>No data</td>")
		},
	}, {
		name:  "only non-finite",
		chart: chart.Bars{Bars: []chart.Bar{{Label: "a", Segments: []chart.Segment{{Value: math.NaN()}, {Value: math.Inf(-1)}}}}},
		check: func(t *testing.T, svg, _ string) { require.Contains(t, svg, ">No data</text>") },
	}, {
		name: "non-finite skipped",
		chart: chart.Bars{Bars: []chart.Bar{
			{Label: "a", Segments: []chart.Segment{{Name: "x", Value: math.NaN()}, {Name: "y", Value: 3}}},
		}},
		check: func(t *testing.T, svg, out string) {
			require.Equal(t, 1, strings.Count(svg, `<rect class="seg `))
			require.Contains(t, out, `<tr><th scope="row">a</th><td></td><td>3</td><td>3</td></tr>`)
		},
	}, {
		name: "negative",
		chart: chart.Bars{Bars: []chart.Bar{
			{Label: "a", Segments: []chart.Segment{{Name: "in", Value: 30}, {Name: "out", Value: -20}}},
			{Label: "b", Segments: []chart.Segment{{Name: "in", Value: 10}, {Name: "out", Value: -45}}},
		}},
		check: func(t *testing.T, svg, _ string) {
			require.Contains(t, svg, ">-60</text>")
			require.Contains(t, svg, ">40</text>")
			require.Contains(t, svg, `<path class="zero"`)
			require.Equal(t, 4, strings.Count(svg, `<rect class="seg `))
		},
	}, {
		name: "unnamed segments",
		chart: chart.Bars{Bars: []chart.Bar{
			{Label: "a", Segments: []chart.Segment{{Value: 1}}}, {Label: "b", Segments: []chart.Segment{{Value: 2}}},
		}},
		check: func(t *testing.T, svg, out string) {
			require.Contains(t, svg, ">Value</text>")
			require.NotContains(t, out, "Total")
		},
	}, {
		name: "overflowing sums",
		chart: chart.Bars{Bars: []chart.Bar{
			{Label: "a", Segments: []chart.Segment{{Name: "x", Value: math.MaxFloat64}, {Name: "y", Value: math.MaxFloat64}}},
		}},
		check: func(t *testing.T, _, out string) { require.Contains(t, out, "<td>overflow</td>") },
	}, {
		name: "escaping",
		chart: chart.Bars{Title: evil, XLabel: evil, YLabel: evil, Unit: evil, Bars: []chart.Bar{
			{Label: evil, Segments: []chart.Segment{{Name: evil, Value: 1}}},
		}},
		check: func(t *testing.T, _, out string) {
			require.NotContains(t, out, "<script")
			require.Contains(t, out, "&lt;script&gt;")
		},
	}, {
		name: "many bars",
		chart: func() chart.Bars {
			var c chart.Bars
			for i := range 2000 {
				c.Bars = append(c.Bars, chart.Bar{Label: "bucket " + strings.Repeat("i", i%30), Segments: []chart.Segment{{Value: float64(i)}}})
			}
			return c
		}(),
		check: func(t *testing.T, svg, _ string) {
			require.Equal(t, 1999, strings.Count(svg, `<rect class="seg `), "the first is zero")
			require.Less(t, len(regexp.MustCompile(`<text x="[^"]+" y="[^"]+">bucket`).FindAllString(svg, -1)), 20, "labels thinned so they don't overlap")
		},
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

func TestBarsIsDeterministic(t *testing.T) {
	t.Parallel()
	require.Equal(t, deliveries().SVG(), deliveries().SVG())
	c := deliveries()
	c.ID = "by-partner"
	require.Contains(t, string(c.SVG()), `<title id="by-partner-title">`)
	require.Contains(t, string(c.SVG()), `fill="url(#by-partner-h1)"`)
}
