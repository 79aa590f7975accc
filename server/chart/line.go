package chart

import (
	"cmp"
	"html/template"
	"math"
	"slices"
	"strconv"
	"time"
)

// Point is one sample of a Series.
type Point struct {
	T time.Time
	V float64
}

// Series is one line of a Line chart. Its points need not be sorted. A
// point whose value is NaN or ±Inf is skipped and leaves a gap in the line.
type Series struct {
	Name   string // Defaults to "Series N", N counting from 1.
	Points []Point
}

// Threshold is a horizontal dashed reference line, such as an SLO target.
type Threshold struct {
	Value float64 // Skipped if NaN or ±Inf.
	Label string  // Defaults to the value and the chart's unit.
}

// Line is a time-series line chart. Series are told apart by colour, dash
// pattern and marker shape; times are shown in UTC. The zero value renders
// an empty chart saying "No data".
type Line struct {
	// ID prefixes the ids of the chart's elements, which must be unique on
	// a page; characters other than ASCII letters, digits, '-' and '_' are
	// dropped. Defaults to "chart-" and a hash of the chart's content, so
	// give an ID only if one page shows the same chart twice.
	ID     string
	Title  string // Defaults to "Line chart".
	Desc   string // Defaults to a summary of series, times and values.
	YLabel string // Names the value axis; none if empty.
	Unit   string // Follows values on the axis and in the table, e.g. "ms" or "%".

	Series     []Series
	Thresholds []Threshold

	// Width and Height are the size in pixels. They default to 640 and
	// 320, and are held within [160, 4096] and [120, 4096].
	Width, Height int

	// YMin and YMax fix the ends of the value axis. By default it spans
	// the values, the thresholds and zero, widened to round numbers. A
	// fixed end that is NaN, ±Inf or on the wrong side of the other is
	// ignored.
	YMin, YMax *float64
}

// maxTableRows is the most distinct times a Line's table lists one per row;
// past it, the table summarises each series instead.
const maxTableRows = 500

// dashes are the series' stroke-dasharray values; shapes their marker
// shapes, as polygon offsets from the point (nil is a circle). The cycles'
// lengths are coprime, so the first 30 series all look different even
// without colour.
var (
	dashes = [...]string{"", "8 4", "2 4", "12 4 2 4", "5 2 1 2 1 2"}
	shapes = [...][]float64{
		nil,
		{-3.5, -3.5, 3.5, -3.5, 3.5, 3.5, -3.5, 3.5},
		{0, -4.5, 4.5, 3.5, -4.5, 3.5},
		{0, -5, 5, 0, 0, 5, -5, 0},
		{0, 4.5, 4.5, -3.5, -4.5, -3.5},
		{-1.5, -4.5, 1.5, -4.5, 1.5, -1.5, 4.5, -1.5, 4.5, 1.5, 1.5, 1.5, 1.5, 4.5, -1.5, 4.5, -1.5, 1.5, -4.5, 1.5, -4.5, -1.5, -1.5, -1.5},
	}
)

// SVG renders the chart: an <svg role="img"> followed by a <table
// class="sr-only"> of its data. A series with more points than the plot is
// wide in pixels is downsampled to the lowest and highest value in each
// pair of pixel columns, so spikes stay visible. The table has a row per
// distinct time or, past 500 of them, a row summarising each series.
func (c Line) SVG() template.HTML {
	width, height := size(c.Width, c.Height)
	title := cmp.Or(c.Title, "Line chart")
	names := make([]string, len(c.Series))
	data := make([][]Point, len(c.Series))
	xlo, xhi := math.Inf(1), math.Inf(-1)
	vlo, vhi := math.Inf(1), math.Inf(-1)
	n := 0
	for i, s := range c.Series {
		names[i] = cmp.Or(s.Name, "Series "+strconv.Itoa(i+1))
		data[i] = sortedPoints(s.Points)
		for _, p := range data[i] {
			if finite(p.V) {
				n++
				t := seconds(p.T)
				xlo, xhi = min(xlo, t), max(xhi, t)
				vlo, vhi = min(vlo, p.V), max(vhi, p.V)
			}
		}
	}

	id := idPrefix(c.ID, c.hash())
	w := &writer{b: make([]byte, 0, 8192)}
	header(w, "line", id, width, height, title, cmp.Or(c.Desc, describeLine(names, n, xlo, xhi, vlo, vhi, c.Unit)))
	if n == 0 {
		return noData(w, width, height, c.Title, title)
	}
	if xhi == xlo {
		xlo, xhi = xlo-1800, xhi+1800
	}

	// Layout: title, plot, x tick labels, "Time (UTC)", legend rows.
	top := topMargin(c.Title)
	items := make([]legendItem, len(names))
	for i, name := range names {
		name = truncate(name, maxLabel)
		items[i] = legendItem{name: name, width: textWidth(name)}
	}
	leg := layoutLegend(items, width, max(1, height/4/legendRow))
	bottom := float64(height) - edge - 40 - float64(leg.rows*legendRow)
	ys := c.yScale(vlo, vhi, yTickCount(bottom-top))
	left := plotLeft(ys, c.YLabel)
	right := float64(width) - edge - 12
	plotW, plotH := right-left, bottom-top
	xmap := func(t float64) float64 { return left + (t-xlo)/(xhi-xlo)*plotW }
	ymap := func(v float64) float64 {
		return clampf(bottom-(v-ys.lo)/(ys.hi-ys.lo)*plotH, top-2*plotH, bottom+2*plotH)
	}
	xticks := timeTicks(xlo, xhi, max(1, int(plotW/90)))

	w.s(`<defs><clipPath id="`)
	w.s(id)
	w.s(`-clip"><rect x="`)
	w.num(left - 5)
	w.s(`" y="`)
	w.num(top - 5)
	w.s(`" width="`)
	w.num(plotW + 10)
	w.s(`" height="`)
	w.num(plotH + 10)
	w.s(`"/></clipPath></defs>`)
	visibleTitle(w, c.Title, width)

	vgrid := make([]float64, len(xticks))
	for i, t := range xticks {
		vgrid[i] = xmap(t.t)
	}
	yAxis(w, ys, ymap, left, right, top, bottom, c.YLabel, vgrid)
	w.s(`<g class="axis axis-x" fill="currentColor" text-anchor="middle">`)
	prev := math.Inf(-1) // right end of the last label drawn
	for i, t := range xticks {
		// Skip a label that would overlap the last or leave the chart.
		half := textWidth(t.label) / 2
		if vgrid[i]-half < prev+charWidth || vgrid[i]+half > float64(width) {
			continue
		}
		prev = vgrid[i] + half
		w.s(`<text x="`)
		w.num(vgrid[i])
		w.s(`" y="`)
		w.num(bottom + tickLength + fontSize + 2)
		w.s(`">`)
		w.text(t.label)
		w.s("</text>")
	}
	w.s(`<text class="axis-label" x="`)
	w.num((left + right) / 2)
	w.s(`" y="`)
	w.num(bottom + tickLength + 2*fontSize + 6)
	w.s(`">Time (UTC)</text></g>`)

	c.thresholds(w, ys, ymap, left, right, top)

	w.s(`<g class="series" clip-path="url(#`)
	w.s(id)
	w.s(`-clip)">`)
	for i, pts := range data {
		p := trace(pts, xmap, ymap, left, plotW)
		w.s(`<g class="s`)
		w.int(i % len(colors))
		w.s(`" color="`)
		w.s(colors[i%len(colors)])
		w.s(`">`)
		if len(p.pts) > 0 {
			w.s(`<path class="line" d="`)
			p.write(w)
			w.s(`" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"`)
			dash(w, i)
			w.s(`/><path class="marker" d="`)
			p.markers(w, i, len(data), plotW)
			w.s(`" fill="currentColor"/>`)
		}
		w.s("</g>")
	}
	w.s("</g>")

	legendTop := bottom + 40
	baseline := func(row int) float64 { return legendTop + float64(row*legendRow) + fontSize }
	w.s(`<g class="legend" fill="currentColor">`)
	for i, x := range leg.x {
		y := baseline(leg.row[i]) - fontSize/3
		w.s(`<g class="s`)
		w.int(i % len(colors))
		w.s(`" color="`)
		w.s(colors[i%len(colors)])
		w.s(`"><path class="swatch" d="M`)
		w.xy(x, y)
		w.s(`h24" fill="none" stroke="currentColor" stroke-width="2"`)
		dash(w, i)
		w.s(`/><path class="marker" d="`)
		marker(w, i%len(shapes), x+12, y)
		w.s(`" fill="currentColor"/></g>`)
		legendText(w, x, baseline(leg.row[i]), items[i].name)
	}
	moreText(w, leg, items, baseline)
	w.s("</g></svg>")

	c.table(w, title, names, data)
	return template.HTML(w.b)
}

// yScale is the value axis over the values [vlo, vhi], the thresholds, and
// zero, with YMin and YMax applied.
func (c Line) yScale(vlo, vhi float64, n int) yScale {
	lo, hi := min(vlo, 0), max(vhi, 0)
	for _, t := range c.Thresholds {
		if finite(t.Value) {
			lo, hi = min(lo, t.Value), max(hi, t.Value)
		}
	}
	fixLo := c.YMin != nil && finite(*c.YMin)
	fixHi := c.YMax != nil && finite(*c.YMax)
	flo, fhi := lo, hi
	if fixLo {
		flo = *c.YMin
	}
	if fixHi {
		fhi = *c.YMax
	}
	if flo >= fhi {
		return newYScale(lo, hi, false, false, n, c.Unit)
	}
	return newYScale(flo, fhi, fixLo, fixHi, n, c.Unit)
}

// thresholds draws each threshold inside the axis as a dashed line with its
// label above it, or below it if the top of the plot is too close.
func (c Line) thresholds(w *writer, ys yScale, ymap func(float64) float64, left, right, top float64) {
	if len(c.Thresholds) == 0 {
		return
	}
	w.s(`<g class="thresholds">`)
	for _, t := range c.Thresholds {
		if !finite(t.Value) || t.Value < ys.lo || t.Value > ys.hi {
			continue
		}
		y := ymap(t.Value)
		w.s(`<path class="threshold" d="M`)
		w.xy(left, y)
		w.s("H")
		w.num(right)
		w.s(`" fill="none" stroke="currentColor" stroke-width="1.5" stroke-dasharray="6 6"/>`)
		ly := y - 4
		if ly-fontSize < top {
			ly = y + fontSize + 2
		}
		w.s(`<text class="threshold-label halo" x="`)
		w.num(right - 4)
		w.s(`" y="`)
		w.num(ly)
		w.s(`" text-anchor="end" fill="currentColor" stroke="#fff" stroke-width="3" stroke-linejoin="round" paint-order="stroke">`)
		w.text(truncate(thresholdLabel(t, c.Unit), max(4, int(right-left)/charWidth)))
		w.s("</text>")
	}
	w.s("</g>")
}

func thresholdLabel(t Threshold, unit string) string {
	return cmp.Or(t.Label, formatValue(t.Value)+unitSuffix(unit))
}

// dash writes series i's stroke-dasharray, if it has one.
func dash(w *writer, i int) {
	if d := dashes[i%len(dashes)]; d != "" {
		w.s(` stroke-dasharray="`)
		w.s(d)
		w.s(`"`)
	}
}

// marker writes the path of a marker of shape at (x, y).
func marker(w *writer, shape int, x, y float64) {
	offsets := shapes[shape]
	if offsets == nil {
		w.s("M")
		w.xy(x-4, y)
		w.s("a4 4 0 1 0 8 0a4 4 0 1 0-8 0Z")
		return
	}
	for i := 0; i < len(offsets); i += 2 {
		if i == 0 {
			w.s("M")
		} else {
			w.s("L")
		}
		w.xy(x+offsets[i], y+offsets[i+1])
	}
	w.s("Z")
}

// sortedPoints returns pts in time order, copying only if they are not.
func sortedPoints(pts []Point) []Point {
	byTime := func(a, b Point) int { return a.T.Compare(b.T) }
	if slices.IsSortedFunc(pts, byTime) {
		return pts
	}
	pts = slices.Clone(pts)
	slices.SortStableFunc(pts, byTime)
	return pts
}

// xy is a point in pixels.
type xy struct{ x, y float64 }

// polyline is a series in pixels: runs of points to join, split where the
// series has a gap.
type polyline struct {
	pts    []xy
	starts []int // the index in pts of each run's first point
}

// trace maps sorted points to pixels. With more points than plotW, it
// keeps only the lowest and highest value in each pair of pixel columns,
// in time order, and ignores gaps narrower than a column pair.
func trace(points []Point, xmap, ymap func(float64) float64, left, plotW float64) polyline {
	var p polyline
	buckets := max(1, int(plotW/2))
	downsample := len(points) > int(plotW)
	if downsample {
		p.pts = make([]xy, 0, 2*buckets)
	}
	type sample struct {
		xy
		i int
	}
	col, gap := -1, true
	var hi, lo sample // highest and lowest value: least and greatest y
	flush := func() {
		switch {
		case col < 0:
		case hi.i == lo.i:
			p.pts = append(p.pts, hi.xy)
		case hi.i < lo.i:
			p.pts = append(p.pts, hi.xy, lo.xy)
		default:
			p.pts = append(p.pts, lo.xy, hi.xy)
		}
	}
	for i, pt := range points {
		if !finite(pt.V) {
			gap = true
			continue
		}
		s := sample{xy{xmap(seconds(pt.T)), ymap(pt.V)}, i}
		c := i
		if downsample {
			c = min(max(int((s.x-left)/plotW*float64(buckets)), 0), buckets-1)
		}
		if c == col {
			gap = false
			if s.y < hi.y {
				hi = s
			}
			if s.y > lo.y {
				lo = s
			}
			continue
		}
		flush()
		if gap {
			p.starts = append(p.starts, len(p.pts))
		}
		col, gap, hi, lo = c, false, s, s
	}
	flush()
	return p
}

// write writes the path data of the runs.
func (p polyline) write(w *writer) {
	for k, start := range p.starts {
		end := len(p.pts)
		if k+1 < len(p.starts) {
			end = p.starts[k+1]
		}
		for i, q := range p.pts[start:end] {
			if i == 0 {
				w.s("M")
			} else {
				w.s("L")
			}
			w.xy(q.x, q.y)
		}
	}
}

// markers writes the path data of series i's markers (of n series): on
// every point of a sparse series; otherwise on about one point per 80
// pixels, staggered between series so they don't hide each other, and on
// every point that stands alone between gaps.
func (p polyline) markers(w *writer, i, n int, plotW float64) {
	shape := i % len(shapes)
	if len(p.pts) <= int(plotW/12) {
		for _, q := range p.pts {
			marker(w, shape, q.x, q.y)
		}
		return
	}
	m := max(2, int(plotW/80))
	shift := (float64(i) + 0.5) / float64(n)
	var at []int
	for k := range m {
		at = append(at, min(int((float64(k)+shift)*float64(len(p.pts))/float64(m)), len(p.pts)-1))
	}
	for k, start := range p.starts {
		end := len(p.pts)
		if k+1 < len(p.starts) {
			end = p.starts[k+1]
		}
		if end-start == 1 {
			at = append(at, start)
		}
	}
	slices.Sort(at)
	for _, j := range slices.Compact(at) {
		marker(w, shape, p.pts[j].x, p.pts[j].y)
	}
}

// describeLine is the default description: series, time span and values.
func describeLine(names []string, n int, xlo, xhi, vlo, vhi float64, unit string) string {
	if n == 0 {
		return "No data."
	}
	b := []byte("Line chart of ")
	b = strconv.AppendInt(b, int64(len(names)), 10)
	b = append(b, " series: "...)
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
	lo, hi := timeAt(xlo), timeAt(xhi)
	layout := timeLayout([]time.Time{lo, hi})
	b = append(b, ". From "...)
	b = lo.AppendFormat(b, layout)
	b = append(b, " to "...)
	b = hi.AppendFormat(b, layout)
	b = append(b, " UTC; values from "...)
	b = append(b, formatValue(vlo)...)
	b = append(b, " to "...)
	b = append(b, formatValue(vhi)...)
	b = append(b, unitSuffix(unit)...)
	b = append(b, '.')
	return string(b)
}

// hash fingerprints everything the chart draws.
func (c Line) hash() hash {
	h := newHash()
	h.str("line")
	h.str(c.Title)
	h.str(c.Desc)
	h.str(c.YLabel)
	h.str(c.Unit)
	h.word(uint64(c.Width))
	h.word(uint64(c.Height))
	for _, p := range []*float64{c.YMin, c.YMax} {
		if p == nil {
			h.word(0)
		} else {
			h.word(1)
			h.word(math.Float64bits(*p))
		}
	}
	for _, s := range c.Series {
		h.str(s.Name)
		h.word(uint64(len(s.Points)))
		for _, p := range s.Points {
			h.word(uint64(p.T.Unix()))
			h.word(uint64(p.T.Nanosecond()) ^ math.Float64bits(p.V)<<1)
		}
	}
	for _, t := range c.Thresholds {
		h.str(t.Label)
		h.word(math.Float64bits(t.Value))
	}
	return h
}

// table writes the data table: a row per distinct time and a column per
// series, or a row per series summarising it if there are too many times.
// Thresholds follow in the footer.
func (c Line) table(w *writer, caption string, names []string, data [][]Point) {
	unit := ""
	if c.Unit != "" {
		unit = " (" + c.Unit + ")"
	}
	w.s(`<div class="sr-only"><table><caption>`)
	w.text(caption)
	w.s("</caption><thead><tr>")
	times, ok := tableTimes(data)
	cols := len(names) + 1
	if ok {
		w.s(`<th scope="col">Time (UTC)</th>`)
		for _, name := range names {
			w.s(`<th scope="col">`)
			w.text(name + unit)
			w.s("</th>")
		}
		w.s("</tr></thead><tbody>")
		lineRows(w, times, data)
	} else {
		cols = 7
		w.s(`<th scope="col">Series</th><th scope="col">Points</th><th scope="col">From (UTC)</th><th scope="col">To (UTC)</th>`)
		for _, h := range [...]string{"Min", "Max", "Last"} {
			w.s(`<th scope="col">`)
			w.text(h + unit)
			w.s("</th>")
		}
		w.s("</tr></thead><tbody>")
		summaryRows(w, names, data)
	}
	w.s("</tbody>")
	thresholdRows(w, c.Thresholds, c.Unit, cols)
	w.s("</table></div>")
}

// tableTimes returns the distinct times of the finite points in data, in
// order, or false if there are more than maxTableRows.
func tableTimes(data [][]Point) ([]time.Time, bool) {
	total := 0
	for _, pts := range data {
		distinct := 0
		var last time.Time
		for _, p := range pts {
			if finite(p.V) && (distinct == 0 || !p.T.Equal(last)) {
				distinct++
				last = p.T
			}
		}
		if distinct > maxTableRows {
			return nil, false
		}
		total += distinct
	}
	times := make([]time.Time, 0, total)
	for _, pts := range data {
		for _, p := range pts {
			if finite(p.V) {
				times = append(times, p.T)
			}
		}
	}
	slices.SortFunc(times, time.Time.Compare)
	times = slices.CompactFunc(times, time.Time.Equal)
	return times, len(times) <= maxTableRows
}

func lineRows(w *writer, times []time.Time, data [][]Point) {
	layout := timeLayout(times)
	cells := make([][]string, len(times)*len(data))
	for j, pts := range data {
		for _, p := range pts {
			if !finite(p.V) {
				continue
			}
			i, _ := slices.BinarySearchFunc(times, p.T, time.Time.Compare)
			cells[i*len(data)+j] = append(cells[i*len(data)+j], formatValue(p.V))
		}
	}
	for i, t := range times {
		w.s(`<tr><th scope="row"><time datetime="`)
		w.text(t.UTC().Format(time.RFC3339Nano))
		w.s(`">`)
		w.text(t.UTC().Format(layout))
		w.s("</time></th>")
		for j := range data {
			w.s("<td>")
			for k, v := range cells[i*len(data)+j] {
				if k > 0 {
					w.s(", ")
				}
				w.s(v)
			}
			w.s("</td>")
		}
		w.s("</tr>")
	}
}

func summaryRows(w *writer, names []string, data [][]Point) {
	for j, pts := range data {
		n := 0
		var from, to time.Time
		lo, hi, last := math.Inf(1), math.Inf(-1), 0.0
		for _, p := range pts {
			if !finite(p.V) {
				continue
			}
			if n == 0 {
				from = p.T
			}
			n++
			to, last = p.T, p.V
			lo, hi = min(lo, p.V), max(hi, p.V)
		}
		w.s(`<tr><th scope="row">`)
		w.text(names[j])
		w.s("</th><td>")
		w.int(n)
		w.s("</td>")
		if n == 0 {
			w.s("<td></td><td></td><td></td><td></td><td></td></tr>")
			continue
		}
		layout := timeLayout([]time.Time{from, to})
		for _, t := range [...]time.Time{from, to} {
			w.s(`<td><time datetime="`)
			w.text(t.UTC().Format(time.RFC3339Nano))
			w.s(`">`)
			w.text(t.UTC().Format(layout))
			w.s("</time></td>")
		}
		for _, v := range [...]float64{lo, hi, last} {
			w.s("<td>")
			w.s(formatValue(v))
			w.s("</td>")
		}
		w.s("</tr>")
	}
}

// thresholdRows writes the thresholds as a table footer of cols columns.
func thresholdRows(w *writer, ts []Threshold, unit string, cols int) {
	var rows []Threshold
	for _, t := range ts {
		if finite(t.Value) {
			rows = append(rows, t)
		}
	}
	if len(rows) == 0 {
		return
	}
	w.s("<tfoot>")
	for _, t := range rows {
		w.s(`<tr><th scope="row">Threshold: `)
		w.text(thresholdLabel(t, unit))
		w.s(`</th><td colspan="`)
		w.int(cols - 1)
		w.s(`">`)
		w.text(formatValue(t.Value) + unitSuffix(unit))
		w.s("</td></tr>")
	}
	w.s("</tfoot>")
}
