package server_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"herald/eventstore"
)

// TestTriggerRoundTrip: a trigger written for Honeycomb's API comes back
// as it was sent, with only Honeycomb's response defaults added.
func TestTriggerRoundTrip(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{})
	status, out := b.do(t, "POST", "/1/batch/checkout", b.ingest, strings.NewReader(`[{"data":{"duration_ms":1}}]`))
	require.Equal(t, http.StatusOK, status, "%s", out)

	status, out = b.do(t, "POST", "/1/recipients", b.key, strings.NewReader(
		`{"type":"webhook","details":{"webhook_name":"ops-bridge","webhook_url":"https://hooks.example/hc","webhook_secret":"s3cret","webhook_headers":[{"header":"Authorization","value":"Bearer xyz"}]}}`))
	require.Equal(t, http.StatusCreated, status, "%s", out)
	var rc struct{ ID string }
	require.NoError(t, json.Unmarshal(out, &rc))
	status, out = b.do(t, "GET", "/1/recipients/"+rc.ID, b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", out)
	var back map[string]any
	require.NoError(t, json.Unmarshal(out, &back))
	require.Equal(t, "webhook", back["type"])
	require.Equal(t, map[string]any{"webhook_name": "ops-bridge", "webhook_url": "https://hooks.example/hc", "webhook_secret": "s3cret",
		"webhook_headers": []any{map[string]any{"header": "Authorization", "value": "Bearer xyz"}}}, back["details"], "the recipient round-trips")
	status, out = b.do(t, "POST", "/1/recipients", b.key, strings.NewReader(
		`{"type":"webhook","details":{"webhook_name":"ops-bridge","webhook_url":"https://hooks.example/hc","webhook_secret":"s3cret","webhook_headers":[{"header":"Authorization","value":"Bearer xyz"}]}}`))
	require.Equal(t, http.StatusConflict, status, "%s", out)

	sent := `{
	  "name": "Checkout p99 too slow", "description": "p99 over 1s for 10 min",
	  "disabled": false,
	  "query": {"calculations": [{"op": "P99", "column": "duration_ms"}],
	            "filters": [{"column": "trace.parent_id", "op": "does-not-exist"}],
	            "breakdowns": ["http.route"]},
	  "threshold": {"op": ">", "value": 1000},
	  "frequency": 300,
	  "evaluation_schedule_type": "window",
	  "evaluation_schedule": {"window": {"days_of_week": ["monday", "friday"], "start_time": "13:00", "end_time": "21:00"}},
	  "recipients": [{"id": "` + rc.ID + `", "details": {"variables": [{"name": "severity", "value": "info"}]}},
	                 {"type": "email", "target": "oncall@example.com"}],
	  "tags": [{"key": "team", "value": "payments"}]
	}`
	status, out = b.do(t, "POST", "/1/triggers/checkout", b.key, strings.NewReader(sent))
	require.Equal(t, http.StatusCreated, status, "%s", out)
	var got, want map[string]any
	require.NoError(t, json.Unmarshal(out, &got))
	require.NoError(t, json.Unmarshal([]byte(sent), &want))

	// The response defaults a client checks.
	want["query"].(map[string]any)["time_range"] = 300.0
	want["threshold"].(map[string]any)["exceeded_limit"] = 1.0
	want["alert_type"] = "on_change"
	recipients := got["recipients"].([]any)
	require.Len(t, recipients, 2)
	require.Equal(t, rc.ID, recipients[0].(map[string]any)["id"])
	email := recipients[1].(map[string]any)
	require.NotEmpty(t, email["id"], "a {type, target} recipient gets an id")
	want["recipients"].([]any)[1].(map[string]any)["id"] = email["id"]
	for _, k := range []string{"id", "dataset_slug", "triggered", "query_id", "created_at", "updated_at"} {
		require.Contains(t, got, k)
	}
	require.Equal(t, "checkout", got["dataset_slug"])
	require.Equal(t, false, got["triggered"])
	id := got["id"].(string)
	for _, k := range []string{"id", "dataset_slug", "triggered", "query_id", "created_at", "updated_at"} {
		delete(got, k)
	}
	require.Equal(t, want, got)
	status, _ = b.do(t, "DELETE", "/1/recipients/"+email["id"].(string), b.key, nil)
	require.Equal(t, http.StatusConflict, status, "a recipient in use is kept")
	status, out = b.do(t, "GET", "/1/recipients/"+rc.ID+"/triggers", b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", out)
	require.Contains(t, string(out), id)

	// A test notification goes to every recipient; nothing is evaluated.
	status, out = b.do(t, "POST", "/1/triggers/checkout/"+id+"/test", b.key, nil)
	require.Equal(t, http.StatusAccepted, status, "%s", out)
	var n struct {
		Subject    string
		Recipients []struct{ Type, Target string }
		Alert      struct {
			IsTest bool `json:"is_test"`
			Status string
		}
	}
	require.NoError(t, json.Unmarshal(out, &n))
	require.Equal(t, "TRIGGER TEST: Triggered: Checkout p99 too slow", n.Subject)
	require.True(t, n.Alert.IsTest)
	require.Equal(t, "TRIGGERED", n.Alert.Status)
	require.Len(t, n.Recipients, 2)
	require.Equal(t, "webhook", n.Recipients[0].Type)
	require.Equal(t, rc.ID, n.Recipients[0].Target, "a webhook delivery names the recipient, not its URL or secret")
	require.Equal(t, "oncall@example.com", n.Recipients[1].Target)
	require.NotContains(t, string(out), "s3cret")
	status, out = b.do(t, "GET", "/1/triggers/checkout/"+id+"/evaluations", b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", out)
	require.Equal(t, "[]", strings.TrimSpace(string(out)))

	// PUT replaces, keeping disabled when the body leaves it out.
	status, out = b.do(t, "PUT", "/1/triggers/checkout/"+id, b.key, strings.NewReader(`{"name":"x","disabled":true,"query":{"calculations":[{"op":"COUNT"}]},"threshold":{"op":"<","value":1}}`))
	require.Equal(t, http.StatusOK, status, "%s", out)
	status, out = b.do(t, "PUT", "/1/triggers/checkout/"+id, b.key, strings.NewReader(`{"name":"y","query":{"calculations":[{"op":"COUNT"}]},"threshold":{"op":"<","value":1}}`))
	require.Equal(t, http.StatusOK, status, "%s", out)
	require.NoError(t, json.Unmarshal(out, &got))
	require.Equal(t, true, got["disabled"])
	require.Equal(t, 900.0, got["frequency"])

	status, out = b.do(t, "GET", "/1/recipients/"+rc.ID+"/triggers", b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", out)
	require.Equal(t, "[]", strings.TrimSpace(string(out)), "the PUT dropped the recipients")
	status, _ = b.do(t, "DELETE", "/1/recipients/"+email["id"].(string), b.key, nil)
	require.Equal(t, http.StatusNoContent, status)
	status, _ = b.do(t, "DELETE", "/1/triggers/checkout/"+id, b.key, nil)
	require.Equal(t, http.StatusNoContent, status)
	status, _ = b.do(t, "GET", "/1/triggers/checkout/"+id, b.key, nil)
	require.Equal(t, http.StatusNotFound, status)
}

// TestTriggerRules: the Triggers API's validation, each rule its 422.
func TestTriggerRules(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{})
	status, out := b.do(t, "POST", "/1/batch/checkout", b.ingest, strings.NewReader(`[{"data":{"duration_ms":1}}]`))
	require.Equal(t, http.StatusOK, status, "%s", out)
	base := func(extra string) string {
		return `{"name":"t","query":{"calculations":[{"op":"COUNT"}]},"threshold":{"op":">","value":1}` + extra + `}`
	}
	for _, c := range []struct{ body, field string }{
		{`{"query":{"calculations":[{"op":"COUNT"}]},"threshold":{"op":">","value":1}}`, "name"},
		{base(`,"frequency":90`), "frequency"},
		{base(`,"frequency":172800`), "frequency"},
		{`{"name":"t","query":{"calculations":[{"op":"COUNT"}],"time_range":7200},"threshold":{"op":">","value":1}}`, "query.time_range"},
		{`{"name":"t","query":{"calculations":[{"op":"COUNT"},{"op":"MAX","column":"a"}]},"threshold":{"op":">","value":1}}`, "query.calculations"},
		{`{"name":"t","query":{"calculations":[{"op":"HEATMAP","column":"a"}]},"threshold":{"op":">","value":1}}`, "query.calculations"},
		{`{"name":"t","query":{"calculations":[{"op":"COUNT"}],"limit":5},"threshold":{"op":">","value":1}}`, "query.limit"},
		{`{"name":"t","query":{"calculations":[{"op":"COUNT"}],"orders":[{"op":"COUNT"}]},"threshold":{"op":">","value":1}}`, "query.orders"},
		{`{"name":"t","query":{"calculations":[{"op":"COUNT"}]},"threshold":{"op":"=","value":1}}`, "threshold.op"},
		{base(`,"threshold":{"op":">","value":1,"exceeded_limit":6}`), "threshold.exceeded_limit"},
		{base(`,"alert_type":"sometimes"`), "alert_type"},
		{base(`,"tags":[{"key":"Team","value":"x"}]`), "tags[0].key"},
		{base(`,"evaluation_schedule_type":"window"`), "evaluation_schedule"},
		{base(`,"recipients":[{"id":"rcp_nope"}]`), "recipients[0].id"},
		{base(`,"recipients":[{"type":"pigeon","target":"x"}]`), "recipients[0].type"},
		{base(`,"baseline_details":{"type":"percentage","offset_minutes":1440}`), "baseline_details"},
		{`{"name":"t","query_id":"qry_nope","threshold":{"op":">","value":1}}`, "query_id"},
	} {
		status, out := b.do(t, "POST", "/1/triggers/checkout", b.key, strings.NewReader(c.body))
		require.Equal(t, http.StatusUnprocessableEntity, status, "%s: %s", c.body, out)
		var p struct {
			TypeDetail []struct{ Field string } `json:"type_detail"`
		}
		require.NoError(t, json.Unmarshal(out, &p))
		require.NotEmpty(t, p.TypeDetail, "%s", out)
		require.Equal(t, c.field, p.TypeDetail[0].Field, "%s: %s", c.body, out)
	}
	status, _ = b.do(t, "POST", "/1/triggers/nope", b.key, strings.NewReader(base("")))
	require.Equal(t, http.StatusNotFound, status)
	status, _ = b.do(t, "POST", "/1/triggers/checkout", b.ingest, strings.NewReader(base("")))
	require.Equal(t, http.StatusForbidden, status)
}

// TestMarkersAPI: Honeycomb's markers, per dataset and __all__.
func TestMarkersAPI(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{})
	status, out := b.do(t, "POST", "/1/batch/checkout", b.ingest, strings.NewReader(`[{"data":{"a":1}}]`))
	require.Equal(t, http.StatusOK, status, "%s", out)
	status, out = b.do(t, "POST", "/1/markers/checkout", b.key, strings.NewReader(`{"message":"deploy 42","type":"deploy","url":"https://ci.example/42"}`))
	require.Equal(t, http.StatusCreated, status, "%s", out)
	var m map[string]any
	require.NoError(t, json.Unmarshal(out, &m))
	require.Equal(t, float64(t0.Unix()), m["start_time"], "start_time defaults to now")
	id := m["id"].(string)
	status, out = b.do(t, "PUT", "/1/markers/checkout/"+id, b.key, strings.NewReader(`{"message":"deploy 42","type":"deploy","end_time":`+strconv.FormatInt(t0.Unix()+300, 10)+`}`))
	require.Equal(t, http.StatusOK, status, "%s", out)
	status, out = b.do(t, "GET", "/1/markers/checkout", b.key, nil)
	require.Equal(t, http.StatusOK, status)
	var list []map[string]any
	require.NoError(t, json.Unmarshal(out, &list))
	require.Len(t, list, 1)
	require.Equal(t, float64(t0.Unix()+300), list[0]["end_time"])
	status, _ = b.do(t, "POST", "/1/markers/__all__", b.key, strings.NewReader(`{"type":"herald-start"}`))
	require.Equal(t, http.StatusCreated, status)
	status, _ = b.do(t, "POST", "/1/markers/checkout", b.key, strings.NewReader(`{"start_time":100,"end_time":50}`))
	require.Equal(t, http.StatusUnprocessableEntity, status)
	status, _ = b.do(t, "POST", "/1/markers/nope", b.key, strings.NewReader(`{}`))
	require.Equal(t, http.StatusNotFound, status)
	status, _ = b.do(t, "DELETE", "/1/markers/checkout/"+id, b.key, nil)
	require.Equal(t, http.StatusNoContent, status)
	status, _ = b.do(t, "DELETE", "/1/markers/checkout/"+id, b.key, nil)
	require.Equal(t, http.StatusNotFound, status)
}
