package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/provider/postmark"
	"herald/sandbox"
)

// herald is a running `herald serve`, in-process.
type heraldProc struct {
	url  string
	key  string
	logs *logLines
	stop func() error
}

var keyLine = regexp.MustCompile(`(?m)^\s+(hcxck_[a-z0-9]+)\s*$`)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startServe(t *testing.T, env map[string]string, args ...string) *heraldProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := newLogLines()
	var stdout syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"herald", "serve", "--listen", "127.0.0.1:0"}, args...),
			func(k string) string { return env[k] }, &stdout, logs)
	}()
	h := &heraldProc{logs: logs, key: env["HERALD_API_KEY"]}
	h.url = "http://" + logs.waitFor(t, "herald listening")["addr"].(string)
	if h.key == "" {
		m := keyLine.FindStringSubmatch(stdout.String())
		require.NotNil(t, m, "the first key is printed: %s", stdout.String())
		h.key = m[1]
	}
	stopped := false
	h.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("herald serve did not stop")
		}
	}
	t.Cleanup(func() { h.stop() })
	return h
}

func (h *heraldProc) do(t *testing.T, method, path string, body any, headers ...string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	require.NoError(t, err)
	req.Header.Set("X-Honeycomb-Team", h.key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func notification(target string, md map[string]string) map[string]any {
	return map[string]any{"recipients": []map[string]string{{"type": "email", "target": target}},
		"subject": "CPU high", "text": "p99 above 2s", "metadata": md}
}

// waitState polls a delivery until it reaches state.
func (h *heraldProc) waitState(t *testing.T, id string, state herald.DeliveryState) map[string]any {
	t.Helper()
	var got map[string]any
	require.Eventually(t, func() bool {
		_, got = h.do(t, "GET", "/1/deliveries/"+id, nil)
		return got["state"] == string(state)
	}, 20*time.Second, 20*time.Millisecond, "delivery %s never reached %s: %v", id, state, got)
	return got
}

func firstDelivery(t *testing.T, n map[string]any) string {
	t.Helper()
	ds, ok := n["deliveries"].([]any)
	require.True(t, ok, "%v", n)
	return ds[0].(map[string]any)["id"].(string)
}

func TestServeDeliversThroughTheBuiltInSandbox(t *testing.T) {
	t.Parallel()
	h := startServe(t, map[string]string{}, "--data-dir", t.TempDir())
	require.Contains(t, h.logs.all(), "no partner is configured: the built-in sandbox is the email partner; nothing leaves this machine")

	status, n := h.do(t, "POST", "/1/notifications", notification("oncall@example.com", map[string]string{"team": "platform"}), "Idempotency-Key", "k1")
	require.Equal(t, http.StatusAccepted, status, "%v", n)
	id := firstDelivery(t, n)
	// The built-in sandbox confirms through its signed event webhook.
	d := h.waitState(t, id, herald.StateDelivered)
	require.Equal(t, "good", d["judgement"], "judged for the delivery SLO")
	attempts := d["attempts"].([]any)
	require.Len(t, attempts, 1)
	require.Equal(t, "accepted", attempts[0].(map[string]any)["outcome"])
	require.NotEmpty(t, d["partner_message_id"])

	// The same key and body: the same notification. Another body: 422.
	status, again := h.do(t, "POST", "/1/notifications", notification("oncall@example.com", map[string]string{"team": "platform"}), "Idempotency-Key", "k1")
	require.Equal(t, http.StatusAccepted, status)
	require.Equal(t, n["id"], again["id"])
	status, conflict := h.do(t, "POST", "/1/notifications", notification("other@example.com", nil), "Idempotency-Key", "k1")
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Equal(t, "Idempotency-Key", conflict["type_detail"].([]any)[0].(map[string]any)["field"])

	status, list := h.do(t, "GET", "/1/deliveries?state=delivered&partner=sandbox&channel=email&judgement=good", nil)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, list["deliveries"], 1)
	status, got := h.do(t, "GET", "/1/notifications/"+n["id"].(string), nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "delivered", got["deliveries"].([]any)[0].(map[string]any)["state"])

	status, _ = h.do(t, "POST", "/1/deliveries/"+id+"/retry", nil)
	require.Equal(t, http.StatusConflict, status, "a delivered delivery is never sent again")

	// The delivery SLOs exist from the first start, and the missing
	// fallback is said out loud.
	require.Contains(t, h.logs.all(), "no fallback recipient")
	status, slos := h.do(t, "GET", "/1/slos/__all__", nil)
	require.Equal(t, http.StatusOK, status, "%v", slos)

	resp, err := http.Get(h.url + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(metrics), `herald_delivery_attempts_total{channel="email",outcome="accepted",partner="sandbox",reason="ok"} 1`)
	require.Contains(t, string(metrics), `herald_deliveries_finished_total{channel="email",state="failed"} 0`, "series exist before anything fails")
	require.Contains(t, string(metrics), `herald_delivery_attempt_duration_seconds_bucket`)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(h.url + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
	require.NoError(t, h.stop())
}

func TestServeAPIErrors(t *testing.T) {
	t.Parallel()
	h := startServe(t, map[string]string{}, "--data-dir", t.TempDir())
	for _, tc := range []struct {
		method, path string
		body         any
		key          string
		status       int
		contains     string
	}{
		{"POST", "/1/notifications", notification("oncall@example.com", nil), "nope", 401, "unknown API key"},
		{"POST", "/1/notifications", "not an object", "", 422, "incorrect_type"},
		{"POST", "/1/notifications", map[string]any{"recipients": []any{}, "subject": "s", "text": "t"}, "", 422, "recipients"},
		{"POST", "/1/notifications", map[string]any{"subject": "s", "text": "t", "colour": "blue"}, "", 422, "unknown field"},
		{"POST", "/1/notifications", notification("oncall@example.com", map[string]string{"event": "x"}), "", 422, "metadata.event"},
		{"GET", "/1/notifications/ntf_nope", nil, "", 404, "not-found"},
		{"GET", "/1/deliveries/dlv_nope", nil, "", 404, "no delivery"},
		{"GET", "/1/deliveries?state=lost", nil, "", 422, "unknown delivery state"},
		{"GET", "/1/deliveries?since=yesterday", nil, "", 422, "RFC 3339"},
		{"GET", "/1/nothing", nil, "", 404, "no route"},
	} {
		key := h.key
		if tc.key != "" {
			key = tc.key
		}
		var rd io.Reader
		if tc.body != nil {
			b, _ := json.Marshal(tc.body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(tc.method, h.url+tc.path, rd)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, tc.status, resp.StatusCode, "%s %s: %s", tc.method, tc.path, raw)
		require.Contains(t, string(raw), tc.contains)
		var p map[string]any
		require.NoError(t, json.Unmarshal(raw, &p))
		for _, k := range []string{"status", "type", "title", "error"} {
			require.Contains(t, p, k, "both the legacy and the RFC 7807 shape")
		}
	}
	req, _ := http.NewRequest("POST", h.url+"/1/notifications", strings.NewReader("{"))
	req.Header.Set("X-Honeycomb-Team", h.key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

// No secret — partner API keys, herald's API key — reaches a log line, an
// exported span, an API answer or any file in the data directory (state
// and event stores).
func TestServeKeepsSecretsOutOfLogsSpansAndRecords(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.Start(context.Background(), sandbox.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { sb.Close() })
	var spans syncBuffer
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(&spans, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(collector.Close)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "herald.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
partners:
  - name: sendgrid-revoked
    kind: sendgrid
    api_key: ${REVOKED_KEY}
    base_url: `+sb.URL+`
    from: alerts@example.com
  - name: sendgrid-main
    kind: sendgrid
    api_key: ${SENDGRID_API_KEY}
    base_url: `+sb.URL+`
    from: alerts@example.com
channels:
  email: [sendgrid-revoked, sendgrid-main]
`), 0o600))
	secrets := map[string]string{
		"REVOKED_KEY":                 "SG.revoked-secret-0123456789",
		"SENDGRID_API_KEY":            "SG.sandbox",
		"HERALD_API_KEY":              "herald-secret-key-0123456789abcdef",
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL,
	}
	h := startServe(t, secrets, "--config", cfg, "--data-dir", filepath.Join(dir, "data"), "--log-level", "debug")
	status, n := h.do(t, "POST", "/1/notifications", notification("oncall@example.com", map[string]string{"team": "platform"}))
	require.Equal(t, http.StatusAccepted, status)
	id := firstDelivery(t, n)
	d := h.waitState(t, id, herald.StateAccepted)
	require.Len(t, d["attempts"], 2, "the revoked key failed over to the main partner")
	answer, _ := json.Marshal(d)
	// Events sent with the key, as a batch and as OTLP.
	status, _ = h.do(t, "POST", "/1/batch/secrets", []map[string]any{{"data": map[string]any{"route": "/cart"}}})
	require.Equal(t, http.StatusOK, status)
	status, _ = h.do(t, "POST", "/v1/logs", map[string]any{"resourceLogs": []any{}})
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, h.stop())

	var stored bytes.Buffer
	files, _ := filepath.Glob(filepath.Join(dir, "data", "*"))
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		stored.Write(b)
	}
	require.Contains(t, spans.String(), "notify.Attempt", "spans were exported")
	for name, secret := range secrets {
		if name == "OTEL_EXPORTER_OTLP_ENDPOINT" {
			continue
		}
		for where, text := range map[string]string{"logs": h.logs.all(), "spans": spans.String(), "API answer": string(answer), "database": stored.String()} {
			require.NotContains(t, text, secret, "%s leaked into %s", name, where)
		}
	}
}

// Every wired partner kind carries a notification through herald serve to
// the sandbox and back, with herald's ids in the partner's metadata.
func TestServeThroughEachPartnerKind(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.Start(context.Background(), sandbox.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { sb.Close() })
	smtpHost, smtpPort, err := net.SplitHostPort(sb.SMTPAddr)
	require.NoError(t, err)
	for _, tc := range []struct{ kind, partner string }{ // herald's delivery id travels as herald_delivery_id, or herald_dlv at Postmark
		{"sendgrid", "api_key: SG.sandbox"},
		{"mailgun", "api_key: sandbox-mailgun-key\n    domain: mg.example.com"},
		{"postmark", "server_token: sandbox-postmark-token"},
		{"smtp", "host: " + smtpHost + "\n    port: " + smtpPort + "\n    username: sandbox\n    password: sandbox-smtp-password\n    tls_skip_verify: true"},
		{"ses", "region: us-east-1\n    access_key_id: AKIASANDBOXEXAMPLE\n    secret_access_key: sandbox-ses-secret"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := filepath.Join(dir, "herald.yaml")
			require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
partners:
  - name: main
    kind: %s
    %s
    base_url: %s
    from: alerts@example.com
`, tc.kind, tc.partner, sb.URL)), 0o600))
			h := startServe(t, map[string]string{}, "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
			status, n := h.do(t, "POST", "/1/notifications", notification("oncall@example.com", map[string]string{"team": "platform"}))
			require.Equal(t, http.StatusAccepted, status, "%v", n)
			id := firstDelivery(t, n)
			d := h.waitState(t, id, herald.StateAccepted)
			key := herald.MetaDeliveryID
			if tc.kind == "postmark" {
				key = postmark.MetadataKey(key)
			}
			msgs := sb.Messages(sandbox.MessageFilter{MetadataKey: key, MetadataValue: id})
			require.Len(t, msgs, 1)
			require.Equal(t, sandbox.Partner(tc.kind), msgs[0].Partner)
			require.Equal(t, "platform", msgs[0].Metadata["team"])
			require.Equal(t, d["partner_message_id"], msgs[0].MessageID, "the id exactly as the partner wrote it")
			require.Equal(t, []string{"oncall@example.com"}, msgs[0].To)
		})
	}
}
