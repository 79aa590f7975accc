package server

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"herald"
	"herald/server/chart"
	"herald/slo"
)

// The web UI's SLOs: every SLO with its status, and an SLO's page with its
// budget burn-down over the period, its burn alerts with each window's
// burn rate, and their history.

const (
	// burnDownPoints is how many instants an SLO's burn-down chart draws:
	// every 3 hours of a 30-day period.
	burnDownPoints = 241
	// sloHistoryEvents is how many of an SLO's newest alert changes its
	// page lists.
	sloHistoryEvents = 100
)

// sloListRow is one SLO of the SLOs list.
type sloListRow struct {
	SLO    herald.SLO
	Status herald.SLOStatus
	// Err says why its status is unknown, if it is.
	Err    string
	Target string
	Period string
}

// handleUISLOs is GET /ui/slos: every SLO with its status, compliance,
// budget and 4-hour burn rate.
func handleUISLOs(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		list, err := d.SLOs.ListSLOs(ctx, "")
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		slices.SortFunc(list, func(a, b herald.SLO) int {
			return cmp.Or(cmp.Compare(a.Dataset, b.Dataset), cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.ID, b.ID))
		})
		rows := make([]sloListRow, len(list))
		for i, o := range list {
			rows[i] = sloListRow{SLO: o, Target: sloTarget(o), Period: slo.Window(o.Period())}
			st, err := d.SLOEngine.Status(ctx, o)
			if err != nil {
				rows[i].Err = herald.ErrorCode(err) + ": " + err.Error()
				continue
			}
			rows[i].Status = st
		}
		d.render(w, r, http.StatusOK, "slos", page{Title: "SLOs", Nav: "slos", Data: map[string]any{"SLOs": rows}})
	})
}

// sloTarget is an SLO's target in percent: "99.9 %".
func sloTarget(o herald.SLO) string {
	return strconv.FormatFloat(float64(o.TargetPerMillion)/1e4, 'f', -1, 64) + " %"
}

// burnAlertRow is one burn alert of an SLO's page.
type burnAlertRow struct {
	Alert herald.BurnAlert
	Name  string
	// Rule says when it fires.
	Rule    string
	State   string
	Windows []windowRow
}

// windowRow is one window an alert reads, with its burn rate now.
type windowRow struct {
	herald.WindowBurn
	// Over is true when a multiwindow alert's window burns faster than
	// its threshold.
	Over  bool
	Total int64
}

// alertEventRow is one change of a burn alert in an SLO's history.
type alertEventRow struct {
	Event herald.BurnAlertEvent
	Alert string
	Rates string
	// Budget is the budget remaining then, in percent.
	Budget float64
	// Delivery is the first delivery of its notification, if any.
	Delivery string
}

// handleUISLO is GET /ui/slos/{dataset}/{id}.
func handleUISLO(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		o, err := pathSLO(d, r)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		st, err := d.SLOEngine.Status(ctx, o)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		points, err := d.SLOEngine.BurnDown(ctx, o, burnDownPoints)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		alerts, err := d.SLOs.ListBurnAlerts(ctx, o.Dataset, o.ID)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		events, err := d.SLOs.BurnAlertEvents(ctx, o.ID, sloHistoryEvents)
		if err != nil {
			d.uiError(w, r, err)
			return
		}

		line := chart.Line{ID: "burn-down", Title: fmt.Sprintf("Error budget remaining over the %s period", slo.Window(o.Period())),
			YLabel: "budget remaining", Unit: "%", Width: 720, Height: 300, YMax: ptr(100.0),
			Series:     []chart.Series{{Name: "budget remaining"}},
			Thresholds: []chart.Threshold{{Value: 0, Label: "budget spent (0 %)"}}}
		for _, p := range points {
			line.Series[0].Points = append(line.Series[0].Points, chart.Point{T: p.At, V: p.Remaining})
		}

		rows, names := burnAlertRows(alerts, st)

		var ids []string
		for _, ev := range events {
			if ev.NotificationID != "" {
				ids = append(ids, ev.NotificationID)
			}
		}
		first, err := firstDeliveries(ctx, d, ids)
		if err != nil {
			d.uiError(w, r, err)
			return
		}
		d.render(w, r, http.StatusOK, "slo", page{Title: o.Name, Nav: "slos", Data: map[string]any{
			"SLO": o, "Status": st, "Target": sloTarget(o), "Period": slo.Window(o.Period()),
			"Chart": line.SVG(), "Alerts": rows, "History": historyRows(events, names, first)}})
	})
}

// burnAlertRows are the rows of an SLO's burn alerts table, each with its
// state and windows from st, and the name of every alert that may appear
// in the SLO's history, by id.
func burnAlertRows(alerts []herald.BurnAlert, st herald.SLOStatus) ([]burnAlertRow, map[string]string) {
	statuses := map[string]herald.BurnAlertStatus{}
	for _, a := range st.Alerts {
		statuses[a.ID] = a
	}
	// The engine's own alerts: its SLI's silence, and (on a delivery SLO)
	// bounces far above their baseline.
	names := map[string]string{slo.NoDataAlert: "no data: the SLI went silent", "ExclusionDrift": "exclusion drift: bounces above their baseline"}
	rows := make([]burnAlertRow, len(alerts))
	for i, a := range alerts {
		names[a.ID] = slo.Label(a)
		row := burnAlertRow{Alert: a, Name: names[a.ID], Rule: burnAlertRule(a), State: cmp.Or(a.State, string(herald.AlertOK))}
		if s, ok := statuses[a.ID]; ok {
			row.State = string(s.State)
			for _, w := range s.Windows {
				row.Windows = append(row.Windows, windowRow{WindowBurn: w, Over: w.Threshold > 0 && w.BurnRate > w.Threshold, Total: w.Good + w.Bad})
			}
		}
		rows[i] = row
	}
	return rows, names
}

// historyRows are the rows of an SLO's alert history: each change with its
// alert's name, its burn rates (the longest window first), and the first
// delivery of its notification by the notification's id.
func historyRows(events []herald.BurnAlertEvent, names, first map[string]string) []alertEventRow {
	rows := make([]alertEventRow, len(events))
	for i, ev := range events {
		windows := slices.Collect(maps.Keys(ev.BurnRates))
		slices.SortFunc(windows, func(a, b string) int { return cmp.Or(cmp.Compare(windowLength(b), windowLength(a)), cmp.Compare(a, b)) })
		var rates []string
		for _, w := range windows {
			rates = append(rates, w+" "+strconv.FormatFloat(ev.BurnRates[w], 'g', 4, 64))
		}
		rows[i] = alertEventRow{Event: ev, Alert: cmp.Or(names[ev.BurnAlertID], "deleted alert "+ev.BurnAlertID),
			Rates: strings.Join(rates, ", "), Budget: ev.BudgetRemaining * 100, Delivery: first[ev.NotificationID]}
	}
	return rows
}

// burnAlertRule says when a burn alert fires.
func burnAlertRule(a herald.BurnAlert) string {
	switch a.AlertType {
	case herald.AlertMultiwindow:
		return fmt.Sprintf("both windows burn faster than %s× the sustainable rate", sayNumber(a.BurnRate))
	case herald.AlertBudgetRate:
		if a.BudgetRateWindowMinutes != nil && a.BudgetRateDecreaseThresholdPerMillion != nil {
			return fmt.Sprintf("%s %% of the budget spent within %s", sayNumber(float64(*a.BudgetRateDecreaseThresholdPerMillion)/1e4),
				slo.Window(time.Duration(*a.BudgetRateWindowMinutes)*time.Minute))
		}
	case herald.AlertExhaustionTime:
		switch {
		case a.ExhaustionMinutes != nil && *a.ExhaustionMinutes == 0:
			return "the budget is spent"
		case a.ExhaustionMinutes != nil:
			return "the budget would run out within " + slo.Window(time.Duration(*a.ExhaustionMinutes)*time.Minute) + " at the current rate"
		}
	}
	return a.AlertType
}

// windowLength reads a window as slo.Window writes it ("5m", "6h",
// "3d"); 0 for anything else.
func windowLength(w string) time.Duration {
	n, err := strconv.Atoi(w[:max(0, len(w)-1)])
	if err != nil || n < 0 {
		return 0
	}
	unit := map[string]time.Duration{"m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[w[len(w)-1:]]
	return time.Duration(n) * unit
}
