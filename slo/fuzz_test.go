package slo_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"herald"
	"herald/slo"
)

// SLOs and burn alerts arrive as JSON bodies of the API: whatever they
// hold, checking them never panics, and an SLO that passes runs in the
// engine without ever reporting NaN.
func FuzzSLOAndBurnAlert(f *testing.F) {
	f.Add(`{"name":"x","sli":{"alias":"a"},"time_period_days":30,"target_per_million":999000}`,
		`{"alert_type":"multiwindow","long_window_minutes":60,"burn_rate":14.4,"slo":{"id":"s"},"recipients":[{"id":"r"}]}`, int64(100), int64(3))
	f.Add(`{"name":"x","sli":{"alias":"a"},"time_period_days":1,"target_per_million":1}`,
		`{"alert_type":"exhaustion_time","exhaustion_minutes":0,"slo":{"id":"s"},"recipients":[{"id":"r"}]}`, int64(0), int64(0))
	f.Add(`{"name":"x","sli":{"alias":"a"},"time_period_days":90,"target_per_million":999999}`,
		`{"alert_type":"budget_rate","budget_rate_window_minutes":60,"budget_rate_decrease_threshold_per_million":1,"slo":{"id":"s"},"recipients":[{"id":"r"}]}`, int64(5), int64(5))
	f.Fuzz(func(t *testing.T, sloJSON, alertJSON string, good, bad int64) {
		var o herald.SLO
		var a herald.BurnAlert
		if json.Unmarshal([]byte(sloJSON), &o) != nil || json.Unmarshal([]byte(alertJSON), &a) != nil {
			return
		}
		o.Dataset = "d"
		o, err := o.Normalize()
		if err != nil {
			return
		}
		a, err = a.Normalize(o.Period(), true)
		if err != nil {
			return
		}
		a.ID = "ba"
		if slo.Check(o, []herald.BurnAlert{a}) != nil {
			return
		}
		b := slo.NewBuckets(o.Period())
		now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		b.AddCounts(now.Unix()/60-1, max(good, 0)%1_000_000, max(bad, 0)%1_000_000)
		e, err := slo.NewEngine(slo.FromHerald(o, []herald.BurnAlert{a}), b)
		if err != nil {
			t.Fatalf("Check passed but the engine refused: %v", err)
		}
		for _, tr := range e.Evaluate(now) {
			if math.IsNaN(tr.Snapshot.BudgetRemaining) || math.IsNaN(tr.Snapshot.LongBurn) || math.IsNaN(tr.Snapshot.WindowBurn) {
				t.Fatalf("NaN in %+v", tr)
			}
		}
		if r := e.BudgetRemaining(now); math.IsNaN(r) || math.IsInf(r, 0) {
			t.Fatalf("budget %v", r)
		}
	})
}
