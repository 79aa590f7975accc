package server

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"herald"
	"herald/server/chart"
	"herald/sqlstore"
)

// channelHealth is one channel's delivery success over the overview's
// range: a chart and its totals per partner.
type channelHealth struct {
	Channel string
	Chart   any
	Bars    any
	Rows    []partnerTotals
}

type partnerTotals struct {
	Partner             string
	Good, Bad, Excluded int64
	// Success is good / (good + bad), in percent; −1 with no judgement.
	Success float64
}

type sloRow struct {
	SLO    herald.SLO
	Status herald.SLOStatus
	Err    string
}

// overviewRanges are the spans the overview charts, with their bucket.
var overviewRanges = map[string][2]time.Duration{
	"6h": {6 * time.Hour, 15 * time.Minute}, "24h": {24 * time.Hour, time.Hour}, "7d": {7 * 24 * time.Hour, 6 * time.Hour},
}

// handleOverview is GET /ui/: delivery success per channel and partner
// over time, the SLOs' status and budget, the canaries, the partners'
// circuit breakers, and the newest failures.
func handleOverview(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		rangeName := r.URL.Query().Get("range")
		rng, ok := overviewRanges[rangeName]
		if !ok {
			rangeName, rng = "24h", overviewRanges["24h"]
		}
		now := d.Clock.Now().UTC()
		to := now.Truncate(rng[1]).Add(rng[1])
		from := to.Add(-rng[0])
		series, err := d.UIStore.DeliverySeries(ctx, from, to, rng[1])
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		slos, err := d.SLOs.ListSLOs(ctx, "")
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		var sloRows []sloRow
		for _, o := range slos {
			st, err := d.SLOEngine.Status(ctx, o)
			row := sloRow{SLO: o, Status: st}
			if err != nil {
				row.Err = herald.ErrorCode(err) + ": " + err.Error()
			}
			sloRows = append(sloRows, row)
		}
		canaries, err := d.Canaries.Canaries(ctx, "", false, 200)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		latest := map[string]herald.Canary{}
		for _, c := range canaries { // newest first
			if _, seen := latest[c.Partner]; !seen {
				latest[c.Partner] = c
			}
		}
		failures, err := d.Reader.ListDeliveries(ctx, sqlstore.DeliveryFilter{Judgement: herald.JudgedBad, Limit: 10})
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		var breakers map[string]string
		if d.Breakers != nil {
			breakers = map[string]string{}
			for p, st := range d.Breakers() {
				breakers[p] = string(st)
			}
		}
		d.render(w, r, http.StatusOK, "overview", page{Title: "Overview", Nav: "overview", Data: map[string]any{
			"Range": rangeName, "Ranges": slices.Sorted(maps.Keys(overviewRanges)), "From": from, "To": to,
			"Channels": health(series, from, to, rng[1]), "SLOs": sloRows,
			"Canaries": slices.SortedFunc(maps.Values(latest), func(a, b herald.Canary) int { return cmp.Compare(a.Partner, b.Partner) }),
			"Breakers": breakers, "BreakerNames": slices.Sorted(maps.Keys(breakers)), "Failures": failures,
		}})
	})
}

// health turns the judgement buckets into one chart per channel: the
// delivered share of each partner per bucket, and stacked counts.
func health(series []sqlstore.JudgementBucket, from, to time.Time, step time.Duration) []channelHealth {
	byChannel := map[string][]sqlstore.JudgementBucket{}
	for _, b := range series {
		byChannel[b.Channel] = append(byChannel[b.Channel], b)
	}
	var out []channelHealth
	for _, ch := range slices.Sorted(maps.Keys(byChannel)) {
		buckets := byChannel[ch]
		totals := map[string]*partnerTotals{}
		points := map[string][]chart.Point{}
		counts := map[time.Time]*[3]float64{}
		for _, b := range buckets {
			name := cmp.Or(b.Partner, "(no partner)")
			t := totals[name]
			if t == nil {
				t = &partnerTotals{Partner: name}
				totals[name] = t
			}
			t.Good, t.Bad, t.Excluded = t.Good+b.Good, t.Bad+b.Bad, t.Excluded+b.Excluded
			if b.Good+b.Bad > 0 {
				points[name] = append(points[name], chart.Point{T: b.Start, V: 100 * float64(b.Good) / float64(b.Good+b.Bad)})
			}
			c := counts[b.Start]
			if c == nil {
				c = &[3]float64{}
				counts[b.Start] = c
			}
			c[0], c[1], c[2] = c[0]+float64(b.Good), c[1]+float64(b.Bad), c[2]+float64(b.Excluded)
		}
		line := chart.Line{ID: "success-" + ch, Title: fmt.Sprintf("%s: delivered share by partner", ch), YLabel: "delivered of judged", Unit: "%",
			Width: 720, Height: 260, YMin: ptr(0.0), YMax: ptr(100.0)}
		var rows []partnerTotals
		for _, name := range slices.Sorted(maps.Keys(totals)) {
			t := totals[name]
			t.Success = -1
			if t.Good+t.Bad > 0 {
				t.Success = 100 * float64(t.Good) / float64(t.Good+t.Bad)
			}
			rows = append(rows, *t)
			line.Series = append(line.Series, chart.Series{Name: name, Points: points[name]})
		}
		bars := chart.Bars{ID: "counts-" + ch, Title: fmt.Sprintf("%s: deliveries judged per %s", ch, step), YLabel: "deliveries", Width: 720, Height: 220}
		for t := from; t.Before(to); t = t.Add(step) {
			c := counts[t]
			if c == nil {
				c = &[3]float64{}
			}
			bars.Bars = append(bars.Bars, chart.Bar{Label: t.Format("01-02 15:04"), Segments: []chart.Segment{
				{Name: "delivered", Value: c[0]}, {Name: "bad", Value: c[1]}, {Name: "excluded", Value: c[2]}}})
		}
		out = append(out, channelHealth{Channel: ch, Chart: line.SVG(), Bars: bars.SVG(), Rows: rows})
	}
	return out
}

func ptr[T any](v T) *T { return &v }
