package chart

import (
	"cmp"
	"html/template"
	"math"
	"strconv"
)

// Segment is one part of a stacked Bar, such as the delivered, failed or
// unconfirmed notifications of an hour.
type Segment struct {
	// Name is what the segment counts. Segments of the same name share a
	// colour, hatch pattern and legend entry across bars. Defaults to
	// "Value".
	Name string
	// Value is the segment's height. Negative values stack down from zero;
	// NaN and ±Inf are skipped.
	Value float64
}

// Bar is one stacked bar, such as a time bucket or a partner.
type Bar struct {
	Label    string
	Segments []Segment
}

// Bars is a stacked bar chart. Segments are told apart by colour and hatch
// pattern. The zero value renders an empty chart saying "No data".
type Bars struct {
	// ID prefixes the ids of the chart's elements, as for Line. Defaults to
	// "chart-" and a hash of the chart's content.
	ID     string
	Title  string // Defaults to "Bar chart".
	Desc   string // Defaults to a summary of bars, segments and totals.
	XLabel string // Names the bars' axis and heads the table's first column.
	YLabel string // Names the value axis; none if empty.
	Unit   string // Follows values on the axis and in the table, e.g. "ms".

	Bars []Bar

	// Width and Height are the size in pixels, as for Line.
	Width, Height int
}

// hatches are the segments' patterns on an 8×8 tile, drawn in the
// background colour over the segment's colour: none, /, \, ×, —, |, dots,
// grid. The cycle is one longer than the palette's, so the first 56 names
// all look different.
var hatches = [...]string{
	"",
	"M0 8L8 0M-2 2L2-2M6 10L10 6",
	"M0 0L8 8M-2 6L2 10M6-2L10 2",
	"M0 8L8 0M-2 2L2-2M6 10L10 6M0 0L8 8M-2 6L2 10M6-2L10 2",
	"M0 4H8",
	"M4 0V8",
	"dots",
	"M0 4H8M4 0V8",
}

// SVG renders the chart: an <svg role="img"> followed by a <table
// class="sr-only"> with a row per bar, a column per segment name and, for
// more than one name, their total.
func (c Bars) SVG() template.HTML {
	width, height := size(c.Width, c.Height)
	title := cmp.Or(c.Title, "Bar chart")

	kinds := map[string]int{}
	var names []string
	n := 0
	lo, hi := 0.0, 0.0
	for _, b := range c.Bars {
		pos, neg := 0.0, 0.0
		for _, s := range b.Segments {
			name := cmp.Or(s.Name, "Value")
			if _, ok := kinds[name]; !ok {
				kinds[name] = len(names)
				names = append(names, name)
			}
			if !finite(s.Value) {
				continue
			}
			n++
			if s.Value >= 0 {
				pos += s.Value
			} else {
				neg += s.Value
			}
		}
		lo, hi = min(lo, neg), max(hi, pos)
	}

	id := idPrefix(c.ID, c.hash())
	w := &writer{b: make([]byte, 0, 8192)}
	header(w, "bars", id, width, height, title, cmp.Or(c.Desc, c.describe(names, n, lo, hi)))
	if n == 0 {
		return noData(w, width, height, c.Title, title)
	}

	top := topMargin(c.Title)
	items := make([]legendItem, len(names))
	for i, name := range names {
		name = truncate(name, maxLabel)
		items[i] = legendItem{name: name, width: textWidth(name)}
	}
	leg := layoutLegend(items, width, max(1, height/4/legendRow))
	captionSpace := 0.0
	if c.XLabel != "" {
		captionSpace = 16
	}
	legendTop := float64(height) - edge - float64(leg.rows*legendRow)
	bottom := legendTop - 20 - captionSpace
	ys := newYScale(lo, hi, false, false, yTickCount(bottom-top), c.Unit)
	left := plotLeft(ys, c.YLabel)
	right := float64(width) - edge
	plotW, plotH := right-left, bottom-top
	ymap := func(v float64) float64 {
		return clampf(bottom-(v-ys.lo)/(ys.hi-ys.lo)*plotH, top, bottom)
	}
	band := plotW / float64(len(c.Bars))
	barW := band * 0.7
	if band < 4 {
		barW = band
	}

	w.s("<defs>")
	for k := range names {
		c.pattern(w, id, k)
	}
	w.s("</defs>")
	visibleTitle(w, c.Title, width)
	yAxis(w, ys, ymap, left, right, top, bottom, c.YLabel, nil)

	// Label every step-th bar, so labels don't overlap.
	labelRunes := 0
	for _, b := range c.Bars {
		labelRunes = max(labelRunes, len([]rune(truncate(b.Label, 16))))
	}
	step := max(1, int(math.Ceil((float64(labelRunes*charWidth)+8)/band)))
	w.s(`<g class="axis axis-x" fill="currentColor" text-anchor="middle">`)
	for i := 0; i < len(c.Bars); i += step {
		w.s(`<text x="`)
		w.num(left + (float64(i)+0.5)*band)
		w.s(`" y="`)
		w.num(bottom + fontSize + 4)
		w.s(`">`)
		w.text(truncate(c.Bars[i].Label, 16))
		w.s("</text>")
	}
	if c.XLabel != "" {
		w.s(`<text class="axis-label" x="`)
		w.num((left + right) / 2)
		w.s(`" y="`)
		w.num(bottom + 2*fontSize + 8)
		w.s(`">`)
		w.text(truncate(c.XLabel, max(4, int(plotW)/charWidth)))
		w.s("</text>")
	}
	w.s("</g>")

	w.s(`<g class="bars" stroke="#fff" stroke-width="0.5">`)
	for i, b := range c.Bars {
		x := left + (float64(i)+0.5)*band - barW/2
		pos, neg := 0.0, 0.0
		for _, s := range b.Segments {
			if !finite(s.Value) || s.Value == 0 {
				continue
			}
			from := pos
			if s.Value > 0 {
				pos += s.Value
			} else {
				from = neg
				neg += s.Value
			}
			y0, y1 := ymap(from), ymap(from+s.Value)
			name := cmp.Or(s.Name, "Value")
			k := kinds[name]
			w.s(`<rect class="seg s`)
			w.int(k % len(colors))
			w.s(`" x="`)
			w.num(x)
			w.s(`" y="`)
			w.num(min(y0, y1))
			w.s(`" width="`)
			w.num(barW)
			w.s(`" height="`)
			w.num(math.Abs(y1 - y0))
			w.s(`" fill="url(#`)
			w.s(id)
			w.s("-h")
			w.int(k)
			w.s(`)"><title>`)
			w.text(b.Label + " — " + name + ": " + formatValue(s.Value) + unitSuffix(c.Unit))
			w.s("</title></rect>")
		}
	}
	w.s("</g>")
	if ys.lo < 0 {
		w.s(`<path class="zero" d="M`)
		w.xy(left, ymap(0))
		w.s("H")
		w.num(right)
		w.s(`" stroke="currentColor" stroke-opacity="0.6"/>`)
	}

	baseline := func(row int) float64 { return legendTop + float64(row*legendRow) + fontSize }
	w.s(`<g class="legend" fill="currentColor">`)
	for i, x := range leg.x {
		w.s(`<rect class="swatch" x="`)
		w.num(x)
		w.s(`" y="`)
		w.num(baseline(leg.row[i]) - fontSize + 1)
		w.s(`" width="22" height="12" fill="url(#`)
		w.s(id)
		w.s("-h")
		w.int(i)
		w.s(`)" stroke="currentColor" stroke-width="0.5"/>`)
		legendText(w, x, baseline(leg.row[i]), items[i].name)
	}
	moreText(w, leg, items, baseline)
	w.s("</g></svg>")

	c.table(w, title, names, kinds)
	return template.HTML(w.b)
}

// pattern writes the fill of segment name k: its colour, hatched.
func (c Bars) pattern(w *writer, id string, k int) {
	w.s(`<pattern id="`)
	w.s(id)
	w.s("-h")
	w.int(k)
	w.s(`" patternUnits="userSpaceOnUse" width="8" height="8"><rect class="s`)
	w.int(k % len(colors))
	w.s(`" color="`)
	w.s(colors[k%len(colors)])
	w.s(`" width="8" height="8" fill="currentColor"/>`)
	switch h := hatches[k%len(hatches)]; h {
	case "":
	case "dots":
		w.s(`<path class="dots" d="M2 2h0M6 6h0" stroke="#fff" stroke-width="2.5" stroke-linecap="round"/>`)
	default:
		w.s(`<path class="hatch" d="`)
		w.s(h)
		w.s(`" stroke="#fff" stroke-width="1.5"/>`)
	}
	w.s("</pattern>")
}

// describe is the default description: bars, segment names and totals.
func (c Bars) describe(names []string, n int, lo, hi float64) string {
	if n == 0 {
		return "No data."
	}
	b := []byte("Stacked bar chart of ")
	b = strconv.AppendInt(b, int64(len(c.Bars)), 10)
	b = append(b, " bars of "...)
	for i, name := range names {
		if i == 10 {
			b = append(b, ", and "...)
			b = strconv.AppendInt(b, int64(len(names)-10), 10)
			b = append(b, " more"...)
			break
		}
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, truncate(name, maxLabel)...)
	}
	b = append(b, "; stacks reach from "...)
	b = append(b, formatValue(lo)...)
	b = append(b, " to "...)
	b = append(b, formatValue(hi)...)
	b = append(b, unitSuffix(c.Unit)...)
	b = append(b, '.')
	return string(b)
}

// hash fingerprints everything the chart draws.
func (c Bars) hash() hash {
	h := newHash()
	h.str("bars")
	h.str(c.Title)
	h.str(c.Desc)
	h.str(c.XLabel)
	h.str(c.YLabel)
	h.str(c.Unit)
	h.word(uint64(c.Width))
	h.word(uint64(c.Height))
	for _, b := range c.Bars {
		h.str(b.Label)
		h.word(uint64(len(b.Segments)))
		for _, s := range b.Segments {
			h.str(s.Name)
			h.word(math.Float64bits(s.Value))
		}
	}
	return h
}

// table writes the data table: a row per bar, a column per segment name,
// and a total if there is more than one name.
func (c Bars) table(w *writer, caption string, names []string, kinds map[string]int) {
	unit := ""
	if c.Unit != "" {
		unit = " (" + c.Unit + ")"
	}
	w.s(`<div class="sr-only"><table><caption>`)
	w.text(caption)
	w.s(`</caption><thead><tr><th scope="col">`)
	w.text(cmp.Or(c.XLabel, "Category"))
	w.s("</th>")
	for _, name := range names {
		w.s(`<th scope="col">`)
		w.text(name + unit)
		w.s("</th>")
	}
	if len(names) > 1 {
		w.s(`<th scope="col">`)
		w.text("Total" + unit)
		w.s("</th>")
	}
	w.s("</tr></thead><tbody>")
	sums := make([]float64, len(names))
	seen := make([]bool, len(names))
	for _, b := range c.Bars {
		clear(sums)
		clear(seen)
		total, has := 0.0, false
		for _, s := range b.Segments {
			if !finite(s.Value) {
				continue
			}
			k := kinds[cmp.Or(s.Name, "Value")]
			sums[k] += s.Value
			seen[k] = true
			total += s.Value
			has = true
		}
		w.s(`<tr><th scope="row">`)
		w.text(b.Label)
		w.s("</th>")
		for k := range names {
			w.s("<td>")
			if seen[k] {
				w.s(formatValue(sums[k]))
			}
			w.s("</td>")
		}
		if len(names) > 1 {
			w.s("<td>")
			if has {
				w.s(formatValue(total))
			}
			w.s("</td>")
		}
		w.s("</tr>")
	}
	w.s("</tbody></table></div>")
}
