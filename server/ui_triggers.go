package server

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"herald"
	"herald/server/chart"
	"herald/slo"
)

// The web UI's triggers: every trigger with its state, and a trigger's
// page with its query, threshold, recipients, a chart of its recent
// evaluations against the threshold, and a button that sends a test.

const (
	// triggerChartEvaluations is how many of a trigger's newest
	// evaluations its chart draws.
	triggerChartEvaluations = 500
	// triggerTableEvaluations is how many its table lists.
	triggerTableEvaluations = 50
	// triggerChartSeries is the most breakdown groups its chart draws,
	// those with the largest values first.
	triggerChartSeries = 6
)

// triggerRow is one trigger of the triggers list.
type triggerRow struct {
	Trigger herald.Trigger
	// State is triggered, ok or disabled.
	State string
	// Last is the newest evaluation, if any.
	Last *herald.Evaluation
	// Every is its frequency, "every 15m"; Window is true when it runs
	// only in a weekly window.
	Every     string
	Window    bool
	Threshold string
	InARow    int
}

// handleUITriggers is GET /ui/triggers: every trigger of every dataset.
func handleUITriggers(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		datasets, err := d.Events.Datasets(ctx)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		slugs := []string{herald.AllDatasets}
		for _, ds := range datasets {
			slugs = append(slugs, ds.Slug)
		}
		var rows []triggerRow
		triggered := 0
		for _, slug := range slugs {
			list, err := d.Triggers.ListTriggers(ctx, slug)
			if err != nil {
				d.uiError(w, r, err)
				return
			}
			for _, t := range list {
				row := triggerRow{Trigger: t, State: triggerState(t), Every: triggerEvery(t.Frequency), Window: t.EvaluationScheduleType == "window",
					Threshold: triggerThreshold(t), InARow: triggerInARow(t)}
				evs, err := d.Evaluations.Evaluations(ctx, t.ID, 1)
				if err != nil {
					d.uiError(w, r, err)
					return
				}
				if len(evs) > 0 {
					row.Last = &evs[0]
				} else if row.State == "ok" {
					row.State = notEvaluated
				}
				if row.State == "triggered" {
					triggered++
				}
				rows = append(rows, row)
			}
		}
		slices.SortFunc(rows, func(a, b triggerRow) int {
			return cmp.Or(cmp.Compare(a.Trigger.DatasetSlug, b.Trigger.DatasetSlug),
				cmp.Compare(strings.ToLower(a.Trigger.Name), strings.ToLower(b.Trigger.Name)), cmp.Compare(a.Trigger.ID, b.Trigger.ID))
		})
		d.render(w, r, http.StatusOK, "triggers", page{Title: "Triggers", Nav: "triggers",
			Data: map[string]any{"Triggers": rows, "Triggered": triggered}})
	})
}

// notEvaluated is the state of an enabled trigger with no evaluation yet.
const notEvaluated = "not_evaluated"

// triggerState is what the list says of a trigger: disabled, triggered
// or ok.
func triggerState(t herald.Trigger) string {
	switch {
	case t.Disabled:
		return "disabled"
	case t.Triggered:
		return "triggered"
	}
	return "ok"
}

// queryView is a trigger's query as people read it.
type queryView struct {
	Calculation string
	Filters     []string
	// Combination is AND or OR, shown with two filters or more.
	Combination string
	Breakdowns  []string
	Havings     []string
	TimeRange   string
	JSON        string
}

func triggerQuery(q *herald.Query) queryView {
	if q == nil {
		return queryView{}
	}
	v := queryView{Combination: cmp.Or(q.FilterCombination, "AND"), Breakdowns: q.Breakdowns,
		TimeRange: sayDuration(time.Duration(q.TimeRange) * time.Second)}
	var calcs []string
	for _, c := range q.Calculations {
		calcs = append(calcs, c.Name())
	}
	v.Calculation = strings.Join(calcs, ", ")
	for _, f := range q.Filters {
		s := f.Column + " " + f.Op
		if f.Value != nil {
			b, _ := json.Marshal(f.Value)
			s += " " + string(b)
		}
		v.Filters = append(v.Filters, s)
	}
	for _, h := range q.Havings {
		v.Havings = append(v.Havings, herald.Calculation{Op: h.CalculateOp, Column: h.Column}.Name()+" "+h.Op+" "+sayNumber(h.Value))
	}
	b, _ := json.MarshalIndent(q, "", "  ")
	v.JSON = string(b)
	return v
}

// recipientView is a trigger's recipient without its secrets: its type,
// and a name, an address or a URL's host.
type recipientView struct {
	ID   string
	Type string
	Name string
	// Host is the host of the URL it posts to, for webhook and Slack.
	Host string
	// Severity is the PagerDuty severity the trigger asks for, if any.
	Severity string
	// Missing is true when the recipient no longer exists.
	Missing bool
}

// recipientViews resolves a trigger's (or a burn alert's) recipients to
// what the UI may show of them: never a webhook secret, header, URL path
// or PagerDuty key.
func recipientViews(ctx context.Context, d Deps, rs []herald.TriggerRecipient) ([]recipientView, error) {
	var out []recipientView
	for _, r := range rs {
		v := recipientView{ID: r.ID, Type: r.Type}
		if r.Details != nil {
			v.Severity = r.Details.PagerDutySeverity
		}
		if r.ID == "" { // not resolved: only an email address is safe to show
			if r.Type == "email" {
				v.Name = r.Target
			}
			out = append(out, v)
			continue
		}
		dest, err := d.Triggers.GetDestination(ctx, r.ID)
		switch {
		case herald.ErrorCode(err) == herald.ENOTFOUND:
			v.Missing = true
			out = append(out, v)
			continue
		case err != nil:
			return nil, err
		}
		v.Type = dest.Type
		det := dest.Details
		switch dest.Type {
		case "email":
			v.Name = det.EmailAddress
		case "slack":
			v.Name, v.Host = det.SlackChannel, recipientHost(det.WebhookURL)
		case "webhook":
			v.Name, v.Host = det.WebhookName, recipientHost(det.WebhookURL)
		case "pagerduty":
			v.Name = det.PagerDutyIntegrationName
		}
		out = append(out, v)
	}
	return out, nil
}

// recipientHost returns the host of a URL, and nothing of its path, query or
// user: those may hold a token.
func recipientHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(not a URL)"
	}
	return u.Host
}

// evaluationRow is one evaluation of a trigger's table.
type evaluationRow struct {
	Evaluation herald.Evaluation
	// Values are its groups' values, the largest first, at most three.
	Values []string
	More   int
	// Delivery is the first delivery of its notification, if any.
	Delivery string
}

// sentTest is the test notification a trigger's page reports.
type sentTest struct {
	ID string
	// Delivery is its first delivery; Count how many it has.
	Delivery string
	Count    int
}

// sentTestOf returns the test notification id names if it is one of
// trigger t's, or nil.
func sentTestOf(ctx context.Context, d Deps, t herald.Trigger, id string) (*sentTest, error) {
	if id == "" {
		return nil, nil
	}
	n, err := d.Reader.GetNotification(ctx, id)
	switch {
	case herald.ErrorCode(err) == herald.ENOTFOUND:
		return nil, nil
	case err != nil:
		return nil, err
	case n.Metadata[herald.MetaTriggerID] != t.ID || n.Alert == nil || !n.Alert.IsTest || len(n.Deliveries) == 0:
		return nil, nil
	}
	return &sentTest{ID: n.ID, Delivery: n.Deliveries[0].ID, Count: len(n.Deliveries)}, nil
}

// handleUITrigger is GET /ui/triggers/{dataset}/{id}.
func handleUITrigger(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		t, err := pathTrigger(d, r)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		recipients, err := recipientViews(ctx, d, t.Recipients)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		evs, err := d.Evaluations.Evaluations(ctx, t.ID, triggerChartEvaluations)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		svg, hidden := evaluationChart(t, evs)
		latest := evs[:min(len(evs), triggerTableEvaluations)]
		var ids []string
		for _, ev := range latest {
			if ev.NotificationID != "" {
				ids = append(ids, ev.NotificationID)
			}
		}
		first, err := firstDeliveries(ctx, d, ids)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		p := page{Title: t.Name, Nav: "triggers"}
		sent, err := sentTestOf(ctx, d, t, r.URL.Query().Get("sent"))
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		if sent != nil {
			p.Flash = fmt.Sprintf("Sent test notification %s to %d recipient(s).", sent.ID, sent.Count)
		}
		state := triggerState(t)
		if len(evs) == 0 && state == "ok" {
			state = notEvaluated
		}
		p.Data = map[string]any{"Trigger": t, "State": state, "Query": triggerQuery(t.Query),
			"Threshold": triggerThreshold(t), "InARow": triggerInARow(t), "Schedule": triggerSchedule(t), "Recipients": recipients,
			"Chart": svg, "Hidden": hidden, "Drawn": len(evs), "Evaluations": evaluationRows(latest, first), "Sent": sent}
		d.render(w, r, http.StatusOK, "trigger", p)
	})
}

// evaluationRows are the rows of a trigger's evaluations table, with the
// first delivery of each notification by its id.
func evaluationRows(evs []herald.Evaluation, first map[string]string) []evaluationRow {
	rows := make([]evaluationRow, len(evs))
	for i, ev := range evs {
		rows[i] = evaluationRow{Evaluation: ev, Delivery: first[ev.NotificationID]}
		groups := slices.Clone(ev.Groups)
		slices.SortFunc(groups, func(a, b herald.GroupResult) int {
			return cmp.Or(cmp.Compare(b.Result, a.Result), cmp.Compare(triggerGroupLabel(a.Group), triggerGroupLabel(b.Group)))
		})
		if len(groups) > 3 {
			groups, rows[i].More = groups[:3], len(groups)-3
		}
		for _, g := range groups {
			s := sayNumber(g.Result)
			if label := triggerGroupLabel(g.Group); label != "" {
				s = label + ": " + s
			}
			if g.Breached {
				s += " (breached)"
			}
			rows[i].Values = append(rows[i].Values, s)
		}
	}
	return rows
}

// handleUITestTrigger is POST /ui/triggers/{dataset}/{id}/test: it sends
// the trigger's test notification and goes back to the trigger's page,
// which names it and links its first delivery.
func handleUITestTrigger(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := pathTrigger(d, r)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		back := "/ui/triggers/" + url.PathEscape(t.DatasetSlug) + "/" + url.PathEscape(t.ID)
		if len(t.Recipients) == 0 {
			http.Redirect(w, r, back+"?flash="+url.QueryEscape("This trigger has no recipient: there is no one to send a test to."), http.StatusSeeOther)
			return
		}
		n, err := d.Evaluator.Test(r.Context(), t)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		http.Redirect(w, r, back+"?sent="+url.QueryEscape(n.ID), http.StatusSeeOther)
	})
}

// firstDeliveries returns, by notification id, the id of each
// notification's first delivery; a notification that does not exist is
// left out.
func firstDeliveries(ctx context.Context, d Deps, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for _, id := range ids {
		if _, done := out[id]; done {
			continue
		}
		n, err := d.Reader.GetNotification(ctx, id)
		switch {
		case herald.ErrorCode(err) == herald.ENOTFOUND:
			continue
		case err != nil:
			return nil, err
		}
		if len(n.Deliveries) > 0 {
			out[id] = n.Deliveries[0].ID
		}
	}
	return out, nil
}

// evaluationChart draws a trigger's evaluations against its threshold:
// one line per breakdown group, at most triggerChartSeries of them (those
// with the largest values), and how many groups it left out.
func evaluationChart(t herald.Trigger, evs []herald.Evaluation) (template.HTML, int) {
	calc := "result"
	if t.Query != nil && len(t.Query.Calculations) > 0 {
		calc = t.Query.Calculations[0].Name()
	}
	points := map[string][]chart.Point{}
	peak := map[string]float64{}
	for _, ev := range evs {
		for _, g := range ev.Groups {
			label := cmp.Or(triggerGroupLabel(g.Group), calc)
			if p, seen := peak[label]; !seen || g.Result > p {
				peak[label] = g.Result
			}
			points[label] = append(points[label], chart.Point{T: ev.At, V: g.Result})
		}
	}
	labels := slices.Collect(maps.Keys(points))
	slices.SortFunc(labels, func(a, b string) int { return cmp.Or(cmp.Compare(peak[b], peak[a]), cmp.Compare(a, b)) })
	hidden := max(0, len(labels)-triggerChartSeries)
	labels = labels[:len(labels)-hidden]
	line := chart.Line{ID: "evaluations", Title: calc + " at each evaluation", YLabel: calc, Width: 720, Height: 300}
	for _, l := range labels {
		line.Series = append(line.Series, chart.Series{Name: l, Points: points[l]})
	}
	if th := t.Threshold; th != nil {
		line.Thresholds = []chart.Threshold{{Value: th.Value, Label: triggerThreshold(t)}}
	}
	return line.SVG(), hidden
}

// triggerGroupLabel names a breakdown group: "service=api, region=eu", or "" for
// the one group of a query without breakdowns.
func triggerGroupLabel(g map[string]any) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(g)) {
		v := g[k]
		s := fmt.Sprint(v)
		if v == nil {
			s = "(none)"
		}
		parts = append(parts, k+"="+s)
	}
	return strings.Join(parts, ", ")
}

// triggerThreshold is a trigger's threshold as a comparison:
// "P99(duration_ms) > 1000".
func triggerThreshold(t herald.Trigger) string {
	th := t.Threshold
	if th == nil {
		return "—"
	}
	calc := "result"
	if t.Query != nil && len(t.Query.Calculations) > 0 {
		calc = t.Query.Calculations[0].Name()
	}
	return calc + " " + th.Op + " " + sayNumber(th.Value)
}

// triggerInARow is how many breaching evaluations in a row fire t.
func triggerInARow(t herald.Trigger) int {
	if t.Threshold == nil {
		return 1
	}
	return max(1, t.Threshold.ExceededLimit)
}

// triggerSchedule says when a trigger is evaluated: "every 5m", and the weekly
// window if it has one.
func triggerSchedule(t herald.Trigger) string {
	s := triggerEvery(t.Frequency)
	if t.EvaluationScheduleType != "window" || t.EvaluationSchedule == nil {
		return s
	}
	win := t.EvaluationSchedule.Window
	days := make([]string, len(win.DaysOfWeek))
	for i, day := range win.DaysOfWeek {
		days[i] = strings.ToUpper(day[:1]) + day[1:]
	}
	return fmt.Sprintf("%s, on %s from %s to %s UTC", s, strings.Join(days, ", "), win.StartTime, win.EndTime)
}

// triggerEvery is a frequency in seconds as people say it: "every 15m".
func triggerEvery(seconds int) string {
	return "every " + sayDuration(time.Duration(seconds)*time.Second)
}

// sayDuration writes a duration the way people say it: 5m, 6h, 3d; other
// durations as Go does.
func sayDuration(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	if d%time.Minute == 0 {
		return slo.Window(d)
	}
	return d.String()
}

// sayNumber writes a value exactly, without an exponent where that
// stays short.
func sayNumber(v float64) string {
	if a := max(v, -v); a != 0 && (a < 1e-4 || a >= 1e15) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
