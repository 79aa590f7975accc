package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald/eventstore"
)

// checkoutEvents sends 100 checkout events in the hour before t0, two of
// them slower than 300 ms, and 10 health checks the SLI leaves out.
func checkoutEvents(t *testing.T, b *eventsBundle) {
	t.Helper()
	var events []string
	for i := range 100 {
		ms := 120
		if i%50 == 7 {
			ms = 900
		}
		at := t0.Add(-time.Hour + time.Duration(i)*30*time.Second).Format(time.RFC3339)
		events = append(events, fmt.Sprintf(`{"time":%q,"data":{"name":"checkout","duration_ms":%d}}`, at, ms))
	}
	for range 10 {
		events = append(events, fmt.Sprintf(`{"time":%q,"data":{"name":"health","duration_ms":1}}`, t0.Add(-time.Hour).Format(time.RFC3339)))
	}
	status, out := b.do(t, "POST", "/1/batch/checkout", b.ingest, strings.NewReader("["+strings.Join(events, ",")+"]"))
	require.Equal(t, http.StatusOK, status, "%s", out)
	status, out = b.do(t, "POST", "/1/derived_columns/checkout", b.key, strings.NewReader(
		`{"alias":"sli.fast_checkout","expression":"IF(EQUALS($name, \"checkout\"), LTE($duration_ms, 300))"}`))
	require.Equal(t, http.StatusCreated, status, "%s", out)
	status, out = b.do(t, "POST", "/1/derived_columns/checkout", b.key, strings.NewReader(
		`{"alias":"double_ms","expression":"MUL($duration_ms, 2)"}`))
	require.Equal(t, http.StatusCreated, status, "%s", out)
}

func decodeJSON[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(b, &v), "%s", b)
	return v
}

func TestSLOLifecycle(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{})
	checkoutEvents(t, b)

	status, out := b.do(t, "POST", "/1/slos/checkout", b.key, strings.NewReader(`{
	  "name": "Checkout under 300 ms", "description": "checkouts are fast",
	  "sli": {"alias": "sli.fast_checkout"}, "time_period_days": 30, "target_per_million": 999000,
	  "tags": [{"key": "team", "value": "payments"}],
	  "alert_recipients": [{"type": "email", "target": "payments@example.com"}]}`))
	require.Equal(t, http.StatusCreated, status, "%s", out)
	created := decodeJSON[map[string]any](t, out)
	id := created["id"].(string)
	require.Equal(t, []any{"checkout"}, created["dataset_slugs"])
	require.Equal(t, "sli.fast_checkout", created["sli"].(map[string]any)["alias"])
	warnings := fmt.Sprint(created["warnings"])
	require.Contains(t, warnings, "expected budget is 0.4 events per 30d", "100 events in 7 days: a budget under one event")
	require.Contains(t, warnings, `alert "page 1h/5m": 0.595 events per 1h is below 69.44, so a single failure trips the page`)

	status, out = b.do(t, "GET", "/1/burn_alerts/checkout?slo_id="+id, b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", out)
	alerts := decodeJSON[[]map[string]any](t, out)
	require.Len(t, alerts, 4, "the default multiwindow set")
	var rates []any
	for _, a := range alerts {
		require.Equal(t, "multiwindow", a["alert_type"])
		require.Equal(t, false, a["triggered"])
		require.Len(t, a["recipients"], 1)
		rates = append(rates, a["burn_rate"])
	}
	require.Equal(t, []any{14.4, 6.0, 3.0, 1.0}, rates)

	status, out = b.do(t, "GET", "/1/slos/checkout/"+id+"?detailed", b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", out)
	detail := decodeJSON[map[string]any](t, out)
	require.Equal(t, 98.0, detail["compliance"], "98 of 100 checkouts; health checks excluded")
	require.Equal(t, -1900.0, detail["budget_remaining"], "2 bad against a budget of 0.1 events")
	require.Equal(t, 20.0, detail["burn_rate"])
	require.Equal(t, "normal", detail["status"])
	require.EqualValues(t, 98, detail["good"])
	require.EqualValues(t, 2, detail["bad"])
	require.Len(t, detail["burn_alerts"], 4)
	status, out = b.do(t, "GET", "/1/slos/checkout/"+id, b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", out)
	require.NotContains(t, string(out), "compliance", "only ?detailed reports status")

	// Burn alerts of Honeycomb's shapes, and herald's.
	status, out = b.do(t, "POST", "/1/burn_alerts/checkout", b.key, strings.NewReader(
		`{"alert_type":"budget_rate","budget_rate_window_minutes":60,"budget_rate_decrease_threshold_per_million":10000,
		  "slo":{"id":"`+id+`"},"recipients":[{"type":"email","target":"payments@example.com"}]}`))
	require.Equal(t, http.StatusCreated, status, "%s", out)
	ba := decodeJSON[map[string]any](t, out)
	status, out = b.do(t, "PUT", "/1/burn_alerts/checkout/"+ba["id"].(string), b.key, strings.NewReader(
		`{"alert_type":"exhaustion_time","exhaustion_minutes":240,"slo":{"id":"`+id+`"},"recipients":[{"type":"email","target":"payments@example.com"}]}`))
	require.Equal(t, http.StatusOK, status, "%s", out)
	require.Contains(t, string(out), `"exhaustion_minutes":240`)
	require.NotContains(t, string(out), "budget_rate_window_minutes")

	// The SLO's target cannot move where an alert becomes unreachable.
	status, out = b.do(t, "PUT", "/1/slos/checkout/"+id, b.key, strings.NewReader(
		`{"name":"Checkout","sli":{"alias":"sli.fast_checkout"},"time_period_days":30,"target_per_million":900000}`))
	require.Equal(t, http.StatusUnprocessableEntity, status, "%s", out)
	require.Contains(t, string(out), "unreachable")
	status, out = b.do(t, "PUT", "/1/slos/checkout/"+id, b.key, strings.NewReader(
		`{"name":"Checkout","sli":{"alias":"sli.fast_checkout"},"time_period_days":30,"target_per_million":995000}`))
	require.Equal(t, http.StatusOK, status, "%s", out)

	status, out = b.do(t, "GET", "/1/slos/checkout/"+id+"/history", b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", out)
	require.Equal(t, "[]", strings.TrimSpace(string(out)))

	// Its SLI cannot be deleted while the SLO uses it.
	status, out = b.do(t, "GET", "/1/derived_columns/checkout?alias=sli.fast_checkout", b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", out)
	dcID := decodeJSON[map[string]any](t, out)["id"].(string)
	status, out = b.do(t, "DELETE", "/1/derived_columns/checkout/"+dcID, b.key, nil)
	require.Equal(t, http.StatusConflict, status, "%s", out)
	require.Contains(t, string(out), id)

	// Nor turned into something that is not true, false or null.
	status, out = b.do(t, "PUT", "/1/derived_columns/checkout/"+dcID, b.key, strings.NewReader(`{"alias":"sli.fast_checkout","expression":"MUL($duration_ms, 2)"}`))
	require.Equal(t, http.StatusUnprocessableEntity, status, "%s", out)
	require.Contains(t, string(out), "must stay true, false or null")
	status, out = b.do(t, "GET", "/1/derived_columns/checkout/"+dcID, b.key, nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(out), `LTE($duration_ms, 300)`, "the refused change was undone")
	status, out = b.do(t, "PUT", "/1/derived_columns/checkout/"+dcID, b.key, strings.NewReader(`{"alias":"sli.fast_checkout","expression":"IF(EQUALS($name, \"checkout\"), LT($duration_ms, 500))"}`))
	require.Equal(t, http.StatusOK, status, "%s", out)

	status, _ = b.do(t, "DELETE", "/1/slos/checkout/"+id, b.key, nil)
	require.Equal(t, http.StatusNoContent, status)
	status, out = b.do(t, "DELETE", "/1/derived_columns/checkout/"+dcID, b.key, nil)
	require.Equal(t, http.StatusNoContent, status, "%s", out)
	status, out = b.do(t, "GET", "/1/burn_alerts/checkout?slo_id="+id, b.key, nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "[]", strings.TrimSpace(string(out)), "the SLO's alerts go with it")
}

func TestSLORules(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{})
	checkoutEvents(t, b)
	slo := func(body string) (int, string) {
		status, out := b.do(t, "POST", "/1/slos/checkout", b.key, strings.NewReader(body))
		return status, string(out)
	}
	for _, c := range []struct{ body, want string }{
		{`{"name":"x","sli":{"alias":"double_ms"},"time_period_days":30,"target_per_million":999000}`, "boolean"},
		{`{"name":"x","sli":{"alias":"nope"},"time_period_days":30,"target_per_million":999000}`, "nope"},
		{`{"name":"","sli":{"alias":"sli.fast_checkout"},"time_period_days":30,"target_per_million":999000}`, "name"},
		{`{"name":"x","sli":{"alias":"sli.fast_checkout"},"time_period_days":0,"target_per_million":999000}`, "time_period_days"},
		{`{"name":"x","sli":{"alias":"sli.fast_checkout"},"time_period_days":30,"target_per_million":1000000}`, "target_per_million"},
		{`{"name":"x","sli":{"alias":"sli.fast_checkout"},"time_period_days":30,"target_per_million":999000,"dataset_slugs":["other"]}`, "dataset_slugs"},
		{`{"name":"x","sli":{"alias":"sli.fast_checkout"},"time_period_days":30,"target_per_million":999000,"default_burn_alerts":false,"alert_recipients":[{"type":"email","target":"a@example.com"}]}`, "alert_recipients"},
	} {
		status, out := slo(c.body)
		require.Equal(t, http.StatusUnprocessableEntity, status, "%s → %s", c.body, out)
		require.Contains(t, out, c.want)
	}

	// At 90 % the highest possible burn is 10: the 14.4 page is left out,
	// and an explicit one refused.
	status, out := slo(`{"name":"lenient","sli":{"alias":"sli.fast_checkout"},"time_period_days":30,"target_per_million":900000,"default_burn_alerts":true}`)
	require.Equal(t, http.StatusCreated, status, "%s", out)
	require.Contains(t, out, "default alert page-1h left out: burn rate 14.4 is unreachable")
	id := decodeJSON[map[string]any](t, []byte(out))["id"].(string)
	alert := func(body string) (int, string) {
		status, out := b.do(t, "POST", "/1/burn_alerts/checkout", b.key, strings.NewReader(body))
		return status, string(out)
	}
	rc := `"recipients":[{"type":"email","target":"a@example.com"}]`
	for _, c := range []struct{ body, want string }{
		{`{"alert_type":"multiwindow","long_window_minutes":60,"burn_rate":14.4,"slo":{"id":"` + id + `"},` + rc + `}`, "unreachable"},
		{`{"alert_type":"budget_rate","budget_rate_window_minutes":30,"budget_rate_decrease_threshold_per_million":100,"slo":{"id":"` + id + `"},` + rc + `}`, "budget_rate_window_minutes"},
		{`{"alert_type":"exhaustion_time","slo":{"id":"` + id + `"},` + rc + `}`, "exhaustion_minutes"},
		{`{"alert_type":"exhaustion_time","exhaustion_minutes":60,"budget_rate_window_minutes":60,"slo":{"id":"` + id + `"},` + rc + `}`, "alert_type"},
		{`{"exhaustion_minutes":60,"slo":{"id":"` + id + `"}}`, "recipients"},
		{`{"exhaustion_minutes":60,` + rc + `}`, "slo.id"},
		{`{"exhaustion_minutes":60,"slo":{"id":"slo_nope"},` + rc + `}`, "slo_nope"},
		{`{"alert_type":"multiwindow","long_window_minutes":60,"short_window_minutes":60,"burn_rate":2,"slo":{"id":"` + id + `"},` + rc + `}`, "short_window_minutes"},
	} {
		status, out := alert(c.body)
		require.Equal(t, http.StatusUnprocessableEntity, status, "%s → %s", c.body, out)
		require.Contains(t, out, c.want)
	}
	status, out = alert(`{"exhaustion_minutes":60,"slo":{"id":"` + id + `"},` + rc + `}`)
	require.Equal(t, http.StatusCreated, status, "%s", out)
	require.Contains(t, out, `"alert_type":"exhaustion_time"`, "Honeycomb's default type")
	require.Contains(t, out, `"severity":"page"`)
}

// The built-in delivery SLOs: listed under __deliveries__, editable but
// not deletable, and their alerts may not travel the channel they watch.
func TestDeliverySLOsAPI(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{})
	status, out := b.do(t, "GET", "/1/slos/__deliveries__", b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", out)
	list := decodeJSON[[]map[string]any](t, out)
	require.Len(t, list, 8, "availability and latency for four channels")
	var email map[string]any
	for _, o := range list {
		if o["name"] == "Delivery: email" {
			email = o
		}
	}
	require.NotNil(t, email)
	require.Equal(t, "email", email["channel"])
	id := email["id"].(string)

	status, out = b.do(t, "GET", "/1/slos/__deliveries__/"+id+"?detailed=true", b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", out)
	detail := decodeJSON[map[string]any](t, out)
	require.Equal(t, "no_events", detail["status"])
	require.Equal(t, 100.0, detail["compliance"])
	require.Equal(t, 100.0, detail["budget_remaining"])

	status, out = b.do(t, "DELETE", "/1/slos/__deliveries__/"+id, b.key, nil)
	require.Equal(t, http.StatusConflict, status, "%s", out)
	status, out = b.do(t, "POST", "/1/slos/__deliveries__", b.key, strings.NewReader(`{"name":"x","sli":{"alias":"herald.delivered"},"time_period_days":30,"target_per_million":999000}`))
	require.Equal(t, http.StatusConflict, status, "%s", out)
	status, out = b.do(t, "PUT", "/1/slos/__deliveries__/"+id, b.key, strings.NewReader(`{"name":"Delivery: email","time_period_days":7,"target_per_million":995000}`))
	require.Equal(t, http.StatusOK, status, "%s", out)
	require.Contains(t, string(out), `"sli":{"alias":"herald.delivered"}`, "the SLI stays")

	status, out = b.do(t, "POST", "/1/burn_alerts/__deliveries__", b.key, strings.NewReader(
		`{"exhaustion_minutes":60,"slo":{"id":"`+id+`"},"recipients":[{"type":"email","target":"oncall@example.com"}]}`))
	require.Equal(t, http.StatusUnprocessableEntity, status, "%s", out)
	require.Contains(t, string(out), "watches the email channel")
	status, out = b.do(t, "POST", "/1/burn_alerts/__deliveries__", b.key, strings.NewReader(
		`{"exhaustion_minutes":60,"slo":{"id":"`+id+`"},"recipients":[{"type":"pagerduty","target":"R0UT1NGK3Y0123456789abcdefABCDEF"}]}`))
	require.Equal(t, http.StatusCreated, status, "%s", out)

	status, out = b.do(t, "POST", "/1/batch/__deliveries__", b.ingest, strings.NewReader(`[{"data":{"a":1}}]`))
	require.NotEqual(t, http.StatusOK, status, "%s", out)
	require.Contains(t, string(out), "reserved")
}
