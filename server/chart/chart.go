// Package chart draws herald's web UI charts as inline SVG: Line, a
// time-series chart, and Bars, a stacked bar chart. Each renders as
// template.HTML to embed in an html/template page: the <svg>, then a
// visually hidden <div class="sr-only"><table> with the same numbers for screen
// readers and text browsers.
//
// Charts are readable without colour: series differ by dash pattern and
// marker shape, bar segments by hatch pattern, and a legend names them.
// Colours come from CSS: each series is drawn in currentColor inside an
// element of class s0, s1, …, whose color presentation attribute is a
// default that any stylesheet rule overrides. Stylesheet is a starting
// point, and also defines .sr-only.
//
// Rendering never fails and is deterministic: the same chart gives the same
// bytes. It tolerates hostile data: NaN and ±Inf values are skipped, empty
// charts say "No data", long series are downsampled, and every text is
// escaped. Rendering is safe for concurrent use; it only reads the chart.
package chart

import (
	"html/template"
	"math"
	"strconv"
	"unicode/utf8"
)

// Stylesheet is CSS for pages that show charts: it hides .sr-only elements
// visually, lets charts shrink to their container, and maps the series
// classes to the custom properties --chart-color-0 … --chart-color-6 and
// --chart-background, so a page (or its dark mode) restyles every chart by
// setting those.
const Stylesheet template.CSS = `.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);clip-path:inset(50%);white-space:nowrap;border:0}
svg.chart{max-width:100%;height:auto}
svg.chart .s0{color:var(--chart-color-0,#0072b2)}
svg.chart .s1{color:var(--chart-color-1,#d55e00)}
svg.chart .s2{color:var(--chart-color-2,#009e73)}
svg.chart .s3{color:var(--chart-color-3,#cc79a7)}
svg.chart .s4{color:var(--chart-color-4,#e69f00)}
svg.chart .s5{color:var(--chart-color-5,#56b4e9)}
svg.chart .s6{color:var(--chart-color-6,#666666)}
svg.chart .hatch{stroke:var(--chart-background,#fff)}
svg.chart .dots{stroke:var(--chart-background,#fff)}
svg.chart .halo{stroke:var(--chart-background,#fff)}
svg.chart .seg{stroke:var(--chart-background,#fff)}
`

// colors is the Okabe–Ito palette, told apart by most colour-blind readers,
// without its yellow (too pale on white) and with grey for the seventh.
// Stylesheet repeats it.
var colors = [...]string{"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#666666"}

const (
	defaultWidth  = 640
	defaultHeight = 320
	minWidth      = 160
	minHeight     = 120
	maxSize       = 4096

	// limit bounds the values the y axis spans, so sums and spans of
	// hostile values stay finite.
	limit = 1e300

	fontSize   = 12
	charWidth  = 7 // a generous average advance at fontSize, for layout
	legendRow  = 18
	titleSize  = 14
	edge       = 8 // blank margin around the chart
	tickLength = 4
	maxLabel   = 40 // runes of a name shown in a legend; the table has it all
)

// size applies the defaults and bounds to a chart's width and height.
func size(w, h int) (int, int) {
	if w <= 0 {
		w = defaultWidth
	}
	if h <= 0 {
		h = defaultHeight
	}
	return min(max(w, minWidth), maxSize), min(max(h, minHeight), maxSize)
}

// idPrefix returns id made safe for an XML id, or else "chart-" and the
// hash.
func idPrefix(id string, h hash) string {
	b := make([]byte, 0, len(id)+1)
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9', r == '-', r == '_':
			if len(b) == 0 {
				b = append(b, 'c')
			}
		default:
			continue
		}
		b = append(b, byte(r))
	}
	if len(b) > 0 {
		return string(b)
	}
	return "chart-" + strconv.FormatUint(uint64(h.sum())>>16, 16)
}

// hash fingerprints a chart's content for its id prefix. Stable across
// processes and versions of Go, unlike hash/maphash.
type hash uint64

func newHash() hash { return 14695981039346656037 }

// word mixes in a 64-bit word.
func (h *hash) word(x uint64) {
	v := (uint64(*h) ^ x) * 0x9e3779b97f4a7c15
	*h = hash(v ^ v>>29)
}

// str mixes in a string (FNV-1a), then its length.
func (h *hash) str(s string) {
	v := uint64(*h)
	for i := 0; i < len(s); i++ {
		v ^= uint64(s[i])
		v *= 1099511628211
	}
	*h = hash(v)
	h.word(uint64(len(s)))
}

func (h hash) sum() uint64 {
	v := uint64(h)
	v ^= v >> 33
	v *= 0xff51afd7ed558ccd
	v ^= v >> 33
	return v
}

// writer builds the output. Texts go through text, which escapes them;
// numbers through num, which never writes NaN or Inf.
type writer struct{ b []byte }

func (w *writer) s(s string) { w.b = append(w.b, s...) }

// num writes a coordinate rounded to a tenth of a pixel.
func (w *writer) num(v float64) {
	v = math.Round(v*10) / 10
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	w.b = strconv.AppendFloat(w.b, v, 'f', -1, 64)
}

// int writes an integer.
func (w *writer) int(v int) { w.b = strconv.AppendInt(w.b, int64(v), 10) }

// text writes s escaped for HTML and XML text and attribute values. Invalid
// UTF-8 and characters XML forbids become U+FFFD.
func (w *writer) text(s string) {
	for _, r := range s {
		switch {
		case r == '<':
			w.s("&lt;")
		case r == '>':
			w.s("&gt;")
		case r == '&':
			w.s("&amp;")
		case r == '"':
			w.s("&#34;")
		case r == '\'':
			w.s("&#39;")
		case r == '\t', r == '\n', r == '\r':
			w.b = append(w.b, ' ')
		case r < 0x20, r >= 0x7f && r <= 0x9f, r >= 0xd800 && r <= 0xdfff, r == 0xfffe, r == 0xffff:
			w.b = utf8.AppendRune(w.b, utf8.RuneError)
		default:
			w.b = utf8.AppendRune(w.b, r)
		}
	}
}

// xy writes "x y".
func (w *writer) xy(x, y float64) {
	w.num(x)
	w.s(" ")
	w.num(y)
}

// truncate shortens s to at most n runes, ending it with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for j := range s {
		if i == n-1 {
			return s[:j] + "…"
		}
		i++
	}
	return s
}

// textWidth estimates the width in pixels of s at fontSize.
func textWidth(s string) float64 { return float64(utf8.RuneCountInString(s) * charWidth) }

// finite reports whether v is neither NaN nor ±Inf.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// clampf bounds v to [lo, hi], mapping NaN to lo.
func clampf(v, lo, hi float64) float64 {
	if !(v >= lo) {
		return lo
	}
	return min(v, hi)
}

// unitSuffix is what follows a number to give its unit: "%" directly,
// anything else after a space.
func unitSuffix(unit string) string {
	if unit == "" || unit == "%" {
		return unit
	}
	return " " + unit
}

// formatValue formats a data value exactly (shortest representation), in
// plain notation where that stays short.
func formatValue(v float64) string {
	switch {
	case !finite(v):
		return "overflow"
	case v == 0:
		return "0"
	case math.Abs(v) >= 1e-4 && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// header writes the opening <svg>, its title and desc.
func header(w *writer, kind, id string, width, height int, title, desc string) {
	w.s(`<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-`)
	w.s(kind)
	w.s(`" role="img" aria-labelledby="`)
	w.s(id)
	w.s(`-title `)
	w.s(id)
	w.s(`-desc" width="`)
	w.int(width)
	w.s(`" height="`)
	w.int(height)
	w.s(`" viewBox="0 0 `)
	w.int(width)
	w.s(" ")
	w.int(height)
	w.s(`" font-family="system-ui, sans-serif" font-size="12">`)
	w.s(`<title id="`)
	w.s(id)
	w.s(`-title">`)
	w.text(title)
	w.s(`</title><desc id="`)
	w.s(id)
	w.s(`-desc">`)
	w.text(desc)
	w.s("</desc>")
}

// topMargin is the space above the plot: room for the title, if any.
func topMargin(title string) float64 {
	if title == "" {
		return edge
	}
	return edge + titleSize + 12
}

// visibleTitle draws the title, if any, above the plot.
func visibleTitle(w *writer, title string, width int) {
	if title == "" {
		return
	}
	w.s(`<text class="chart-title" x="8" y="18" font-size="14" font-weight="bold" fill="currentColor">`)
	w.text(truncate(title, max(8, (width-2*edge)/8)))
	w.s("</text>")
}

// noData finishes an empty chart: its title, a frame with "No data" in it,
// then a table saying the same.
func noData(w *writer, width, height int, title, caption string) template.HTML {
	visibleTitle(w, title, width)
	top := topMargin(title)
	w.s(`<rect class="frame" x="8" y="`)
	w.num(top)
	w.s(`" width="`)
	w.num(float64(width - 2*edge))
	w.s(`" height="`)
	w.num(float64(height) - top - edge)
	w.s(`" fill="none" stroke="currentColor" stroke-opacity="0.4"/><text class="no-data" x="`)
	w.num(float64(width) / 2)
	w.s(`" y="`)
	w.num((top+float64(height)-edge)/2 + fontSize/3)
	w.s(`" text-anchor="middle" fill="currentColor">No data</text></svg>`)
	w.s(`<div class="sr-only"><table><caption>`)
	w.text(caption)
	w.s("</caption><tbody><tr><td>No data</td></tr></tbody></table></div>")
	return template.HTML(w.b)
}

// legendItem is one entry of a legend: a swatch drawn by the chart kind and
// a name.
type legendItem struct {
	name  string
	width float64
}

// legendLayout is where a legend's items go: each item's x and row, the
// rows used, and how many items were left out for want of rows.
type legendLayout struct {
	x    []float64
	row  []int
	rows int
	more int
}

const swatchWidth = 30 // swatch and the gap before the name

// layoutLegend places items left to right in rows across width, in at most
// maxRows rows; if some don't fit, the last row keeps room for "+N more".
func layoutLegend(items []legendItem, width int, maxRows int) legendLayout {
	var l legendLayout
	x, row := float64(edge), 0
	right := float64(width - edge)
	moreWidth := textWidth("+0000 more")
	for i, it := range items {
		w := swatchWidth + it.width + 14
		if x > edge && x+w > right {
			x, row = edge, row+1
		}
		// Leave room on the last row for "+N more" if anything follows.
		last := row == maxRows-1 && i < len(items)-1
		if row >= maxRows || (last && x+w+moreWidth > right && x > edge) {
			l.more = len(items) - i
			break
		}
		l.x = append(l.x, x)
		l.row = append(l.row, row)
		x += w
	}
	if len(items) > 0 {
		l.rows = min(row+1, maxRows)
	}
	return l
}

// legendText writes an item's name at (x, y), the row's baseline.
func legendText(w *writer, x, y float64, name string) {
	w.s(`<text x="`)
	w.num(x + swatchWidth)
	w.s(`" y="`)
	w.num(y)
	w.s(`">`)
	w.text(name)
	w.s("</text>")
}

// moreText writes "+N more" after a legend cut short.
func moreText(w *writer, l legendLayout, items []legendItem, baseline func(row int) float64) {
	if l.more == 0 {
		return
	}
	x, row := float64(edge), 0
	if n := len(l.x); n > 0 {
		x, row = l.x[n-1]+swatchWidth+items[n-1].width+14, l.row[n-1]
	}
	w.s(`<text class="legend-more" x="`)
	w.num(x)
	w.s(`" y="`)
	w.num(baseline(row))
	w.s(`">+`)
	w.int(l.more)
	w.s(" more</text>")
}

// yAxis draws the grid (horizontal lines at the y ticks, vertical ones at
// vgrid), the y tick labels, the y axis label and the axis lines.
func yAxis(w *writer, s yScale, ymap func(float64) float64, left, right, top, bottom float64, label string, vgrid []float64) {
	w.s(`<g class="grid" stroke="currentColor" stroke-opacity="0.15" fill="none"><path d="`)
	for _, t := range s.ticks {
		w.s("M")
		w.xy(left, ymap(t))
		w.s("H")
		w.num(right)
	}
	for _, x := range vgrid {
		w.s("M")
		w.xy(x, top)
		w.s("V")
		w.num(bottom + tickLength)
	}
	w.s(`"/></g><g class="axis axis-y" fill="currentColor" text-anchor="end">`)
	for i, t := range s.ticks {
		w.s(`<text x="`)
		w.num(left - tickLength - 2)
		w.s(`" y="`)
		w.num(ymap(t) + fontSize/3)
		w.s(`">`)
		w.text(s.labels[i])
		w.s("</text>")
	}
	if label != "" {
		w.s(`<text class="axis-label" text-anchor="middle" transform="translate(`)
		w.xy(edge+fontSize, (top+bottom)/2)
		w.s(`) rotate(-90)">`)
		w.text(truncate(label, max(4, int(bottom-top)/charWidth)))
		w.s("</text>")
	}
	w.s(`</g><path class="axis-line" d="M`)
	w.xy(left, top)
	w.s("V")
	w.num(bottom)
	w.s("H")
	w.num(right)
	w.s(`" fill="none" stroke="currentColor" stroke-opacity="0.6"/>`)
}

// yLabelsWidth is the widest y tick label's estimated width.
func yLabelsWidth(s yScale) float64 {
	var wd float64
	for _, l := range s.labels {
		wd = max(wd, textWidth(l))
	}
	return wd
}

// plotLeft is the left edge of the plot given the y tick labels and
// whether there is a y axis label.
func plotLeft(s yScale, yLabel string) float64 {
	left := edge + yLabelsWidth(s) + tickLength + 4
	if yLabel != "" {
		left += fontSize + 6
	}
	return max(left, 32)
}

// yTickCount is how many intervals the y axis aims for at a plot height.
func yTickCount(plotHeight float64) int { return min(max(int(plotHeight/50), 1), 4) }
