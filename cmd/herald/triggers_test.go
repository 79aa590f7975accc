package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/sandbox"
)

// A trigger's test notification travels the whole way through herald
// serve — API, queue, each channel's adapter — to the sandbox's webhook
// receiver, Slack and PagerDuty, and to email, each delivery reaching
// accepted; the webhook is signed, and no recipient's secret is in any
// answer or log.
func TestTriggerTestReachesEveryChannel(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.Start(context.Background(), sandbox.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { sb.Close() })
	dir := t.TempDir()
	cfg := filepath.Join(dir, "herald.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
partners:
  - {name: sendgrid-main, kind: sendgrid, api_key: SG.sandbox, base_url: `+sb.URL+`, from: alerts@example.com}
webhooks: {allow_networks: [127.0.0.0/8]}
pagerduty: {base_url: `+sb.URL+`}
public_url: https://herald.example
`), 0o600))
	h := startServe(t, map[string]string{"HERALD_API_KEY": "trigger-test-key-0123456789"}, "--config", cfg, "--data-dir", filepath.Join(dir, "data"))

	status, _ := h.do(t, "POST", "/1/batch/checkout", []map[string]any{{"data": map[string]any{"duration_ms": 12.5}}})
	require.Equal(t, http.StatusOK, status)

	// herald marked its start, with its version.
	req, _ := http.NewRequest("GET", h.url+"/1/markers/__all__", nil)
	req.Header.Set("X-Honeycomb-Team", h.key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var markers []herald.Marker
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&markers))
	resp.Body.Close()
	require.Len(t, markers, 1)
	require.Equal(t, "herald-start", markers[0].Type)
	require.Equal(t, "herald "+buildVersion()+" started", markers[0].Message)
	const secret = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LWZvci10ZXN0cw=="
	const routingKey = "R0UT1NGK3Y0123456789abcdefABCDEF"
	const slackToken = "xoxTOKEN0123456789"
	var ids []string
	for _, rc := range []map[string]any{
		{"type": "webhook", "details": map[string]any{"webhook_name": "ops", "webhook_url": sb.URL + "/_sandbox/hooks/ops", "webhook_secret": secret}},
		{"type": "slack", "details": map[string]any{"webhook_url": sb.URL + "/services/T1/B1/" + slackToken, "slack_channel": "#ops"}},
		{"type": "pagerduty", "details": map[string]any{"pagerduty_integration_name": "ops", "pagerduty_integration_key": routingKey}},
		{"type": "email", "details": map[string]any{"email_address": "oncall@example.com"}},
	} {
		status, out := h.do(t, "POST", "/1/recipients", rc)
		require.Equal(t, http.StatusCreated, status, "%v", out)
		ids = append(ids, out["id"].(string))
	}
	var recipients []map[string]any
	for i, id := range ids {
		r := map[string]any{"id": id}
		if i == 2 {
			r["details"] = map[string]any{"pagerduty_severity": "warning"}
		}
		recipients = append(recipients, r)
	}
	status, tr := h.do(t, "POST", "/1/triggers/checkout", map[string]any{
		"name": "Checkout p99 too slow", "query": map[string]any{"calculations": []map[string]any{{"op": "P99", "column": "duration_ms"}}},
		"threshold": map[string]any{"op": ">", "value": 1000}, "recipients": recipients})
	require.Equal(t, http.StatusCreated, status, "%v", tr)

	status, n := h.do(t, "POST", "/1/triggers/checkout/"+tr["id"].(string)+"/test", nil)
	require.Equal(t, http.StatusAccepted, status, "%v", n)
	deliveries := n["deliveries"].([]any)
	require.Len(t, deliveries, 4)
	for _, d := range deliveries {
		h.waitState(t, d.(map[string]any)["id"].(string), herald.StateAccepted)
	}

	hooks := sb.Notifications(sandbox.NotificationFilter{Channel: "webhook"})
	require.Len(t, hooks, 1)
	hook := hooks[0]
	var payload map[string]any
	require.NoError(t, json.Unmarshal([]byte(hook.Body), &payload))
	require.Equal(t, true, payload["is_test"])
	require.Equal(t, "TRIGGER TEST: Triggered: Checkout p99 too slow", payload["summary"])
	require.Equal(t, secret, hook.Header.Get("X-Honeycomb-Webhook-Token"))
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(hook.Header.Get("webhook-id") + "." + hook.Header.Get("webhook-timestamp") + "." + hook.Body))
	require.Equal(t, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)), hook.Header.Get("webhook-signature"))
	require.Equal(t, hook.Header.Get("webhook-id"), hook.Header.Get("X-Honeycomb-Webhook-Delivery-ID"))

	require.Len(t, sb.Notifications(sandbox.NotificationFilter{Channel: "slack"}), 1)
	pd := sb.Notifications(sandbox.NotificationFilter{Channel: "pagerduty"})
	require.Len(t, pd, 1)
	require.Contains(t, pd[0].Body, `"severity":"warning"`)
	require.Contains(t, pd[0].Body, `"dedup_key":"herald-`+tr["id"].(string)+`"`)
	msgs := sb.Messages(sandbox.MessageFilter{})
	require.Len(t, msgs, 1)

	// The secrets are in the recipient records only.
	answers, _ := json.Marshal(n)
	for _, s := range []string{secret, routingKey, slackToken} {
		require.NotContains(t, string(answers), s)
		require.NotContains(t, h.logs.all(), s)
	}
	for _, d := range deliveries {
		_, got := h.do(t, "GET", "/1/deliveries/"+d.(map[string]any)["id"].(string), nil)
		b, _ := json.Marshal(got)
		for _, s := range []string{secret, routingKey, slackToken} {
			require.NotContains(t, string(b), s, "in a delivery's attempts")
		}
	}
}

// Proof of delivery through herald serve: SendGrid's signed event webhook
// (from the sandbox) moves an accepted delivery to delivered; a message the
// partner accepts and never reports on becomes unconfirmed at the
// partner's confirm_within; a forged request changes nothing.
func TestServeProofOfDelivery(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.Start(context.Background(), sandbox.Config{EventDelay: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { sb.Close() })
	dir := t.TempDir()
	cfg := filepath.Join(dir, "herald.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
partners:
  - name: sendgrid-main
    kind: sendgrid
    api_key: SG.sandbox
    base_url: `+sb.URL+`
    from: alerts@example.com
    webhook_public_key: `+sb.Keys().SendGridPublicKey+`
    confirm_within: 3s
canaries: {to: canary@example.com, every: 1m}
`), 0o600))
	var spans syncBuffer
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(&spans, r.Body)
	}))
	t.Cleanup(collector.Close)
	h := startServe(t, map[string]string{"HERALD_API_KEY": "proof-test-key-0123456789", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL},
		"--config", cfg, "--data-dir", filepath.Join(dir, "data"))
	require.NoError(t, sb.SetWebhook(sandbox.SendGrid, h.url+"/hooks/sendgrid-main"))

	status, n := h.do(t, "POST", "/1/notifications", notification("ok@example.com", nil))
	require.Equal(t, http.StatusAccepted, status)
	confirmed := firstDelivery(t, n)
	h.waitState(t, confirmed, herald.StateDelivered)

	_, err = sb.AddFault(sandbox.Fault{Partner: sandbox.SendGrid, Kind: sandbox.FaultNeverConfirm, Times: 1})
	require.NoError(t, err)
	status, n = h.do(t, "POST", "/1/notifications", notification("void@example.com", nil))
	require.Equal(t, http.StatusAccepted, status)
	silent := firstDelivery(t, n)
	h.waitState(t, silent, herald.StateAccepted)
	d := h.waitState(t, silent, herald.StateUnconfirmed)
	require.Contains(t, d["reason"], "no final event from sendgrid-main within 3s")

	// A forged event for the unconfirmed delivery is refused and changes
	// nothing.
	status, _ = h.do(t, "POST", "/hooks/sendgrid-main", []map[string]any{{"event": "delivered", "sg_event_id": "forged",
		"herald_delivery_id": silent, "email": "void@example.com", "timestamp": time.Now().Unix()}},
		"X-Twilio-Email-Event-Webhook-Signature", "MEUCIQ==", "X-Twilio-Email-Event-Webhook-Timestamp", fmt.Sprint(time.Now().Unix()))
	require.Equal(t, http.StatusUnauthorized, status)
	_, d = h.do(t, "GET", "/1/deliveries/"+silent, nil)
	require.Equal(t, string(herald.StateUnconfirmed), d["state"])
	status, _ = h.do(t, "POST", "/hooks/nobody", []any{})
	require.Equal(t, http.StatusNotFound, status)

	// The canary proved the partner end to end: delivered, as its signed
	// event reported.
	var canaries []herald.Canary
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest("GET", h.url+"/1/canaries?partner=sendgrid-main", nil)
		req.Header.Set("X-Honeycomb-Team", h.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		canaries = nil
		raw, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(raw, &canaries) != nil {
			t.Logf("%d %s", resp.StatusCode, raw)
		}
		return len(canaries) > 0 && canaries[0].Result == herald.CanaryPassed
	}, 30*time.Second, 100*time.Millisecond, "%+v %s", canaries, h.logs.all())
	require.True(t, strings.HasPrefix(canaries[0].Detail, "delivered: delivered event "), canaries[0].Detail)

	// The partner's event is a span of its notification's trace.
	require.NoError(t, h.stop())
	require.Contains(t, spans.String(), "notify.PartnerEvent")
}
