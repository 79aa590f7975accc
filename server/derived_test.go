package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald/clock"
	"herald/eventstore"
)

// TestDerivedColumns drives /1/derived_columns through the real handler:
// the lifecycle, its errors in Honeycomb's shape, and a query that reads
// a derived column.
func TestDerivedColumns(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{Clock: clock.NewFake(t0)})
	at := t0.Add(-time.Minute).Format(time.RFC3339)
	status, out := b.do(t, "POST", "/1/batch/checkout", b.ingest, strings.NewReader(`[
		{"time":"`+at+`","data":{"route":"/cart","duration_ms":120}},
		{"time":"`+at+`","data":{"route":"/cart","duration_ms":480}},
		{"time":"`+at+`","data":{"route":"/pay","duration_ms":900}}]`))
	require.Equal(t, http.StatusOK, status, "%s", out)

	type body struct {
		ID, Alias, Expression, Description string
		CreatedAt                          time.Time `json:"created_at"`
		UpdatedAt                          time.Time `json:"updated_at"`
	}
	decode := func(out []byte) body {
		t.Helper()
		var v body
		require.NoError(t, json.Unmarshal(out, &v), "%s", out)
		return v
	}

	status, out = b.do(t, "POST", "/1/derived_columns/checkout", b.key, strings.NewReader(
		`{"alias":"sli.fast","expression":"IF(EXISTS($duration_ms), LTE($duration_ms, 500))","description":"under 500 ms"}`))
	require.Equal(t, http.StatusCreated, status, "%s", out)
	dc := decode(out)
	require.NotEmpty(t, dc.ID)
	require.Equal(t, "sli.fast", dc.Alias)
	require.Equal(t, "IF(EXISTS($duration_ms), LTE($duration_ms, 500))", dc.Expression)
	require.Equal(t, "under 500 ms", dc.Description)
	require.Equal(t, t0, dc.CreatedAt)
	var keys map[string]any
	require.NoError(t, json.Unmarshal(out, &keys))
	for _, k := range []string{"id", "alias", "expression", "description", "created_at", "updated_at"} {
		require.Contains(t, keys, k)
	}

	status, out = b.do(t, "GET", "/1/derived_columns/checkout", b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", out)
	var list []body
	require.NoError(t, json.Unmarshal(out, &list))
	require.Equal(t, []body{dc}, list)
	status, out = b.do(t, "GET", "/1/derived_columns/checkout?alias=sli.fast", b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", out)
	require.Equal(t, dc, decode(out))
	status, _ = b.do(t, "GET", "/1/derived_columns/checkout?alias=sli.slow", b.key, nil)
	require.Equal(t, http.StatusNotFound, status)
	status, out = b.do(t, "GET", "/1/derived_columns/checkout/"+dc.ID, b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", out)
	require.Equal(t, dc, decode(out))

	// The derived column in a query: a breakdown and a filter.
	require.Equal(t, []map[string]any{{"sli.fast": true, "COUNT": "2"}, {"sli.fast": false, "COUNT": "1"}},
		b.query(t, "checkout", `{"breakdowns":["sli.fast"],"calculations":[{"op":"COUNT"}],"time_range":600}`))
	require.Equal(t, []map[string]any{{"route": "/pay", "MAX(duration_ms)": "900"}},
		b.query(t, "checkout", `{"breakdowns":["route"],"calculations":[{"op":"MAX","column":"duration_ms"}],
			"filters":[{"column":"sli.fast","op":"=","value":false}],"time_range":600}`))

	status, out = b.do(t, "PUT", "/1/derived_columns/checkout/"+dc.ID, b.key, strings.NewReader(
		`{"alias":"sli.fast","expression":"LTE($duration_ms, 1000)","description":"under a second"}`))
	require.Equal(t, http.StatusOK, status, "%s", out)
	up := decode(out)
	require.Equal(t, dc.ID, up.ID)
	require.Equal(t, "LTE($duration_ms, 1000)", up.Expression)
	require.Equal(t, dc.CreatedAt, up.CreatedAt)

	for _, c := range []struct {
		method, path, key, body string
		status                  int
		detail                  string
	}{
		{"POST", "/1/derived_columns/checkout", b.key, `{"alias":"x","expression":"LTE($duration_ms 500)"}`,
			http.StatusUnprocessableEntity, "expression: at column 18"},
		{"POST", "/1/derived_columns/checkout", b.key, `{"alias":"x","expression":"REG_VALUE($route, \"x\")"}`,
			http.StatusUnprocessableEntity, "function REG_VALUE is not supported by herald"},
		{"POST", "/1/derived_columns/checkout", b.key, `{"alias":"sli.fast","expression":"true"}`,
			http.StatusConflict, "already has a derived column"},
		{"POST", "/1/derived_columns/checkout", b.key, `{"alias":"route","expression":"true"}`,
			http.StatusUnprocessableEntity, `has a column named "route"`},
		{"POST", "/1/derived_columns/checkout", b.key, `{"alias":"x","expression":"true","formula":"x"}`,
			http.StatusUnprocessableEntity, "unknown field"},
		{"POST", "/1/derived_columns/checkout", b.key, `{"alias":`, http.StatusBadRequest, "not valid JSON"},
		{"POST", "/1/derived_columns/__all__", b.key, `{"alias":"x","expression":"true"}`,
			http.StatusUnprocessableEntity, "environment-wide derived columns"},
		{"GET", "/1/derived_columns/__all__", b.key, ``, http.StatusUnprocessableEntity, "environment-wide derived columns"},
		{"POST", "/1/derived_columns/nowhere", b.key, `{"alias":"x","expression":"true"}`, http.StatusNotFound, "not found"},
		{"GET", "/1/derived_columns/nowhere", b.key, ``, http.StatusNotFound, "not found"},
		{"POST", "/1/derived_columns/checkout", b.ingest, `{"alias":"x","expression":"true"}`,
			http.StatusForbidden, "needs a configuration key"},
		{"PUT", "/1/derived_columns/checkout/" + dc.ID, b.key, `{"alias":"sli.quick","expression":"true"}`,
			http.StatusUnprocessableEntity, "cannot change"},
		{"PUT", "/1/derived_columns/checkout/dc_nope", b.key, `{"expression":"true"}`, http.StatusNotFound, "not found"},
		{"GET", "/1/derived_columns/checkout/dc_nope", b.key, ``, http.StatusNotFound, "not found"},
	} {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		status, out := b.do(t, c.method, c.path, c.key, body)
		require.Equal(t, c.status, status, "%s %s %s: %s", c.method, c.path, c.body, out)
		var p map[string]any
		require.NoError(t, json.Unmarshal(out, &p), "%s", out)
		for _, k := range []string{"status", "type", "title", "error"} {
			require.Contains(t, p, k)
		}
		require.Contains(t, p["error"], c.detail, "%s %s %s", c.method, c.path, c.body)
	}

	status, _ = b.do(t, "DELETE", "/1/derived_columns/checkout/"+dc.ID, b.key, nil)
	require.Equal(t, http.StatusNoContent, status)
	status, _ = b.do(t, "GET", "/1/derived_columns/checkout/"+dc.ID, b.key, nil)
	require.Equal(t, http.StatusNotFound, status)
	status, _ = b.do(t, "DELETE", "/1/derived_columns/checkout/"+dc.ID, b.key, nil)
	require.Equal(t, http.StatusNotFound, status)
	status, out = b.do(t, "GET", "/1/derived_columns/checkout", b.key, nil)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `[]`, string(out))
}
