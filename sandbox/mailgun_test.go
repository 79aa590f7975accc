package sandbox_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailgun/mailgun-go/v4"
	"github.com/mailgun/mailgun-go/v4/events"
	"github.com/stretchr/testify/require"

	"herald/clock"
	"herald/sandbox"
)

const (
	mgDomain = "mg.example.com"
	mgKey    = "sandbox-mailgun-key"
)

// mgClient is the official SDK pointed at the sandbox, with a timeout
// (mailgun-go's default client has none).
func mgClient(b *bundle, domain, key string) *mailgun.MailgunImpl {
	mg := mailgun.NewMailgun(domain, key)
	mg.SetAPIBase(b.sb.URL + "/v3")
	mg.SetClient(&http.Client{Timeout: 10 * time.Second})
	mg.SetWebhookSigningKey(b.sb.Keys().MailgunWebhookSigningKey)
	return mg
}

func mgSend(t *testing.T, mg *mailgun.MailgunImpl, m *mailgun.Message) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return mg.Send(ctx, m)
}

// mgUnexpected returns the SDK's *UnexpectedResponseError inside err.
func mgUnexpected(t *testing.T, err error) *mailgun.UnexpectedResponseError {
	t.Helper()
	require.Error(t, err)
	var ue *mailgun.UnexpectedResponseError
	require.True(t, errors.As(err, &ue), "want *UnexpectedResponseError, got %T: %v", err, err)
	return ue
}

// mgErrorMessage decodes Mailgun's {"message": "…"} error body.
func mgErrorMessage(t *testing.T, data []byte) string {
	t.Helper()
	var body map[string]any
	require.NoError(t, json.Unmarshal(data, &body), "body %q", data)
	require.Len(t, body, 1, "body %s", data)
	msg, ok := body["message"].(string)
	require.True(t, ok, "body %s", data)
	return msg
}

// mgHook takes the next webhook, checks its signature with the SDK's own
// VerifyWebhookSignature and parses its event-data with the SDK's
// ParseEvent.
func mgHook(t *testing.T, b *bundle, mg *mailgun.MailgunImpl) (mailgun.Event, map[string]any) {
	t.Helper()
	h := b.hooks.next(t)
	require.Equal(t, "/mailgun", h.Path)
	require.Equal(t, "application/json", h.Header.Get("Content-Type"))
	var pl mailgun.WebhookPayload
	require.NoError(t, json.Unmarshal(h.Body, &pl))
	ok, err := mg.VerifyWebhookSignature(pl.Signature)
	require.NoError(t, err)
	require.True(t, ok, "signature does not verify")
	require.Len(t, pl.Signature.Token, 50)
	ev, err := mailgun.ParseEvent(pl.EventData)
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(pl.EventData, &raw))
	return ev, raw
}

var mgIDPattern = regexp.MustCompile(`^<20261124120000\.[0-9a-f]{16}@mg\.example\.com>$`)

func TestMailgunSDKSendAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	mg := mgClient(b, mgDomain, mgKey)
	m := mailgun.NewMessage("Alerts <alerts@mg.example.com>", "CPU high", "p99 above 2s", "oncall@example.com")
	m.AddCC("lead@example.com")
	require.NoError(t, m.AddVariable("notification_id", "n-1"))
	require.NoError(t, m.AddVariable("attempt", 2))
	require.NoError(t, m.AddTemplateVariable("team", "core"))
	require.NoError(t, m.AddTemplateVariable("severity", 3))
	require.NoError(t, m.AddTag("alert", "cpu"))
	m.AddHeader("X-Trace", "t-1")

	mes, id, err := mgSend(t, mg, m)
	require.NoError(t, err)
	require.Equal(t, "Queued. Thank you.", mes)
	require.Regexp(t, mgIDPattern, id)

	got, ok := b.sb.Message(id)
	require.True(t, ok)
	require.Equal(t, sandbox.Mailgun, got.Partner)
	require.Equal(t, id, got.MessageID)
	require.Equal(t, "Alerts <alerts@mg.example.com>", got.From)
	require.Equal(t, []string{"oncall@example.com"}, got.To)
	require.Equal(t, []string{"lead@example.com"}, got.Cc)
	require.Equal(t, map[string]string{"notification_id": "n-1", "attempt": "2", "team": "core", "severity": "3"}, got.Metadata)
	require.Equal(t, []string{"alert", "cpu"}, got.Tags)
	require.Equal(t, "t-1", got.Headers["X-Trace"])
	require.False(t, got.TestMode)
	require.Equal(t, sandbox.FateAccepted, got.Fate)

	b.clock.Advance(0)
	for _, rcpt := range []string{"oncall@example.com", "lead@example.com"} {
		ev, raw := mgHook(t, b, mg)
		d, ok := ev.(*events.Delivered)
		require.True(t, ok, "got %T", ev)
		require.Equal(t, rcpt, d.Recipient)
		require.Equal(t, strings.Trim(id, "<>"), d.Message.Headers.MessageID, "message-id is the send id without brackets")
		require.Equal(t, 250, d.DeliveryStatus.Code)
		require.False(t, d.Flags.IsTestMode)
		require.Equal(t, []string{"alert", "cpu"}, d.Tags)
		require.True(t, t0.Equal(d.GetTimestamp()), "timestamp %v", d.GetTimestamp())
		require.Len(t, d.GetID(), 22)
		// v: variables come back as sent; X-Mailgun-Variables keep their JSON type.
		require.Equal(t, map[string]any{"notification_id": "n-1", "attempt": "2", "team": "core", "severity": float64(3)}, d.UserVariables)
		require.Equal(t, "info", raw["log-level"])
	}
	got, _ = b.sb.Message(id)
	require.Equal(t, sandbox.FateDelivered, got.Fate)
	require.Len(t, got.Events, 2)
}

func TestMailgunSDKUnauthorizedIsPlainTextForbidden(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	const wrong = "key-not-the-sandbox-one"
	mg := mgClient(b, mgDomain, wrong)
	_, _, err := mgSend(t, mg, mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com"))
	ue := mgUnexpected(t, err)
	require.Equal(t, http.StatusUnauthorized, ue.Actual)
	require.Equal(t, http.StatusUnauthorized, mailgun.GetStatusFromErr(err))
	require.Equal(t, "Forbidden", string(ue.Data), "Mailgun's 401 body is plain text, not JSON")
	require.NotContains(t, err.Error(), wrong)
	require.Empty(t, b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.Mailgun}))

	// The user must be "api".
	req := mgFormRequest(t, b.sb.URL+"/v3/mg.example.com/messages", mgValidForm())
	req.SetBasicAuth("user", mgKey)
	resp := mgDo(t, req)
	require.Equal(t, http.StatusUnauthorized, resp.status)
	require.Equal(t, "Forbidden", resp.body)
	require.True(t, strings.HasPrefix(resp.header.Get("Content-Type"), "text/plain"))
}

func TestMailgunSDKUnknownDomain(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	mg := mgClient(b, "other.example.com", mgKey)
	_, _, err := mgSend(t, mg, mailgun.NewMessage("alerts@other.example.com", "s", "t", "oncall@example.com"))
	ue := mgUnexpected(t, err)
	require.Equal(t, http.StatusNotFound, ue.Actual)
	require.Equal(t, "Domain not found: other.example.com", mgErrorMessage(t, ue.Data))
}

// TestMailgunSDKHiddenTemplateVariableLoss reproduces providers.md §3.4: one
// template variable json.Marshal cannot encode makes mailgun-go drop
// X-Mailgun-Variables entirely, valid variables included, and the send
// still succeeds. The sandbox shows the loss: no metadata in the mailbox,
// none in the event.
func TestMailgunSDKHiddenTemplateVariableLoss(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	mg := mgClient(b, mgDomain, mgKey)
	m := mailgun.NewMessage("alerts@mg.example.com", "CPU high", "p99 above 2s", "oncall@example.com")
	require.NoError(t, m.AddTemplateVariable("notification_id", "n-1"))
	require.NoError(t, m.AddTemplateVariable("threshold", math.Inf(1)))

	_, id, err := mgSend(t, mg, m)
	require.NoError(t, err, "the SDK reports success although it dropped the variables")
	got, ok := b.sb.Message(id)
	require.True(t, ok)
	require.Empty(t, got.Metadata, "notification_id never reached the partner")
	require.NotContains(t, got.Headers, "X-Mailgun-Variables")
	require.Empty(t, b.sb.Messages(sandbox.MessageFilter{MetadataKey: "notification_id"}))

	b.clock.Advance(0)
	ev, _ := mgHook(t, b, mg)
	d := ev.(*events.Delivered)
	require.Equal(t, map[string]any{}, d.UserVariables, "the event cannot be correlated by notification_id")
}

func TestMailgunSDKSendOptionsLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	mg := mgClient(b, mgDomain, mgKey)
	// "v:big" plus its value: 16 kB exactly is accepted, one byte more is not.
	for size, wantErr := range map[int]bool{16<<10 - len("v:big"): false, 16<<10 - len("v:big") + 1: true} {
		m := mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com")
		require.NoError(t, m.AddVariable("big", strings.Repeat("x", size)))
		_, _, err := mgSend(t, mg, m)
		if !wantErr {
			require.NoError(t, err, "size %d", size)
			continue
		}
		ue := mgUnexpected(t, err)
		require.Equal(t, http.StatusBadRequest, ue.Actual)
		require.Equal(t, "Send options (parameters starting with o:, h:, or v:) are limited to 16 kB total", mgErrorMessage(t, ue.Data))
	}
}

func TestMailgunSDKTestModeStillEmitsEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	mg := mgClient(b, mgDomain, mgKey)
	m := mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com")
	m.EnableTestMode()
	require.NoError(t, m.AddVariable("notification_id", "n-1"))
	_, id, err := mgSend(t, mg, m)
	require.NoError(t, err)
	got, _ := b.sb.Message(id)
	require.True(t, got.TestMode)

	b.clock.Advance(0)
	ev, _ := mgHook(t, b, mg)
	d, ok := ev.(*events.Delivered)
	require.True(t, ok, "got %T", ev)
	require.True(t, d.Flags.IsTestMode)
	require.Equal(t, 650, d.DeliveryStatus.Code, "test mode emits a delivered event with status 650")
	require.Equal(t, map[string]any{"notification_id": "n-1"}, d.UserVariables)
	got, _ = b.sb.Message(id)
	require.Equal(t, sandbox.FateDelivered, got.Fate)
}

func TestMailgunSDKRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Limits = map[sandbox.Partner]sandbox.Rate{sandbox.Mailgun: {PerSecond: 1, Burst: 1}}
	})
	mg := mgClient(b, mgDomain, mgKey)
	_, _, err := mgSend(t, mg, mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com"))
	require.NoError(t, err)
	_, _, err = mgSend(t, mg, mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com"))
	ue := mgUnexpected(t, err)
	require.Equal(t, http.StatusTooManyRequests, ue.Actual)
	msg := mgErrorMessage(t, ue.Data)
	require.Equal(t, "Domain mg.example.com is not allowed to send: request limit exceeded, try again after Tue, 24 Nov 2026 12:00:01 GMT", msg)
	after, err := time.Parse(time.RFC1123, strings.TrimPrefix(msg, "Domain mg.example.com is not allowed to send: request limit exceeded, try again after "))
	require.NoError(t, err)
	require.Equal(t, t0.Add(time.Second), after.UTC())

	// No Retry-After: Mailgun documents none.
	resp := mgDo(t, mgFormRequest(t, b.sb.URL+"/v3/mg.example.com/messages", mgValidForm()))
	require.Equal(t, http.StatusTooManyRequests, resp.status)
	require.Empty(t, resp.header.Get("Retry-After"))

	b.clock.Advance(time.Second)
	_, _, err = mgSend(t, mg, mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com"))
	require.NoError(t, err)
}

func TestMailgunSDKRejectMetadataFault(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Partner: sandbox.Mailgun, Kind: sandbox.FaultRejectMetadata, Key: "notification_id", Value: "n-2"}}
	})
	mg := mgClient(b, mgDomain, mgKey)
	m := mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com")
	require.NoError(t, m.AddVariable("notification_id", "n-1"))
	_, _, err := mgSend(t, mg, m)
	require.NoError(t, err)

	m = mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com")
	require.NoError(t, m.AddTemplateVariable("notification_id", "n-2"))
	_, _, err = mgSend(t, mg, m)
	ue := mgUnexpected(t, err)
	require.Equal(t, http.StatusBadRequest, ue.Actual)
	require.Equal(t, "'v:notification_id' parameter is not valid", mgErrorMessage(t, ue.Data))
}

func TestMailgunSDKUnverifiedSender(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) { c.VerifiedSenders = []string{"@mg.example.com"} })
	mg := mgClient(b, mgDomain, mgKey)
	_, _, err := mgSend(t, mg, mailgun.NewMessage("Ops <ops@elsewhere.example>", "s", "t", "oncall@example.com"))
	ue := mgUnexpected(t, err)
	require.Equal(t, http.StatusBadRequest, ue.Actual)
	require.True(t, strings.HasPrefix(mgErrorMessage(t, ue.Data), "Domain mg.example.com is not allowed to send"))
	_, _, err = mgSend(t, mg, mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com"))
	require.NoError(t, err)
}

// TestMailgunSDKFaults shows how each response fault reaches the SDK.
func TestMailgunSDKFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fault    sandbox.Fault
		status   int    // the SDK's UnexpectedResponseError status; 0 when the error is not one
		body     string // the error's Data
		accepted bool   // the message is in the mailbox anyway
	}{
		{fault: sandbox.Fault{Kind: sandbox.FaultStatus, Status: 503}, status: 503, body: `{"message":"Service Unavailable"}`},
		{fault: sandbox.Fault{Kind: sandbox.FaultStatus, Status: 401}, status: 401, body: "Forbidden"},
		{fault: sandbox.Fault{Kind: sandbox.FaultStatus, Status: 404}, status: 404, body: `{"message":"Domain not found: mg.example.com"}`},
		{fault: sandbox.Fault{Kind: sandbox.FaultGateway502}, status: 502},
		// A 200 whose body is not Mailgun's: the SDK fails to decode it
		// although the message was accepted.
		{fault: sandbox.Fault{Kind: sandbox.FaultEmptyBody}, accepted: true},
		{fault: sandbox.Fault{Kind: sandbox.FaultHTMLBody}, accepted: true},
		{fault: sandbox.Fault{Kind: sandbox.FaultDropConnection}, accepted: true},
	} {
		t.Run(string(tc.fault.Kind)+fmt.Sprint(tc.fault.Status), func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(c *sandbox.Config) { c.Faults = []sandbox.Fault{tc.fault} })
			mg := mgClient(b, mgDomain, mgKey)
			_, _, err := mgSend(t, mg, mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com"))
			require.Error(t, err)
			want := tc.status
			if want == 0 {
				want = -1 // not an *UnexpectedResponseError
			}
			require.Equal(t, want, mailgun.GetStatusFromErr(err), "%v", err)
			if tc.body != "" {
				require.Equal(t, tc.body, string(mgUnexpected(t, err).Data))
			}
			require.Equal(t, tc.accepted, len(b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.Mailgun})) == 1)
		})
	}
}

func TestMailgunWebhookFailedEvents(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fate     sandbox.Fate
		severity string
		reason   string
		code     int
	}{
		{sandbox.FateBounced, "permanent", "bounce", 550},
		{sandbox.FateDropped, "permanent", "suppress-bounce", 605},
		{sandbox.FateDeferred, "temporary", "generic", 451},
	} {
		t.Run(string(tc.fate), func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(c *sandbox.Config) {
				c.Faults = []sandbox.Fault{{Partner: sandbox.Mailgun, Kind: sandbox.FaultAcceptThenFail, Fate: tc.fate}}
			})
			mg := mgClient(b, mgDomain, mgKey)
			m := mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com")
			require.NoError(t, m.AddVariable("notification_id", "n-1"))
			_, id, err := mgSend(t, mg, m)
			require.NoError(t, err, "accepted now, failed later")
			b.clock.Advance(0)
			ev, _ := mgHook(t, b, mg)
			f, ok := ev.(*events.Failed)
			require.True(t, ok, "got %T", ev)
			require.Equal(t, tc.severity, f.Severity)
			require.Equal(t, tc.reason, f.Reason)
			require.Equal(t, tc.code, f.DeliveryStatus.Code)
			require.Equal(t, strings.Trim(id, "<>"), f.Message.Headers.MessageID)
			require.Equal(t, map[string]any{"notification_id": "n-1"}, f.UserVariables)
			got, _ := b.sb.Message(id)
			require.Equal(t, tc.fate, got.Fate)
		})
	}
}

func TestMailgunWebhookComplained(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Partner: sandbox.Mailgun, Kind: sandbox.FaultNeverConfirm}}
	})
	mg := mgClient(b, mgDomain, mgKey)
	_, id, err := mgSend(t, mg, mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com"))
	require.NoError(t, err)
	b.clock.Advance(time.Hour)
	b.hooks.none(t)

	_, err = b.sb.Emit(id, sandbox.EmitRequest{Type: sandbox.FateComplained})
	require.NoError(t, err)
	ev, _ := mgHook(t, b, mg)
	require.IsType(t, &events.Delivered{}, ev)
	ev, _ = mgHook(t, b, mg)
	c, ok := ev.(*events.Complained)
	require.True(t, ok, "got %T", ev)
	require.Equal(t, "oncall@example.com", c.Recipient)
	require.Equal(t, strings.Trim(id, "<>"), c.Message.Headers.MessageID)
}

// TestMailgunWebhookRetries walks the documented schedule: 10 m, 10 m,
// 15 m, 30 m, 1 h, 2 h, 4 h, then gives up.
func TestMailgunWebhookRetries(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Partner: sandbox.Mailgun, Kind: sandbox.FaultAcceptThenFail}}
	})
	b.hooks.answer(500, 500, 500, 500, 500, 500, 500, 500)
	mg := mgClient(b, mgDomain, mgKey)
	_, id, err := mgSend(t, mg, mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com"))
	require.NoError(t, err)

	b.clock.Advance(0)
	first, _ := mgHook(t, b, mg)
	for _, wait := range []time.Duration{10 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour} {
		b.clock.Advance(wait - time.Second)
		b.hooks.none(t)
		b.clock.Advance(time.Second)
		again, _ := mgHook(t, b, mg)
		require.Equal(t, first.GetID(), again.GetID(), "a retry is the same event")
	}
	b.clock.Advance(24 * time.Hour)
	b.hooks.none(t)

	attempts := b.sb.WebhookAttempts()
	require.Len(t, attempts, 8)
	var offsets []time.Duration
	for i, a := range attempts {
		require.Equal(t, sandbox.Mailgun, a.Partner)
		require.Equal(t, id, a.MessageID)
		require.Equal(t, i+1, a.Attempt)
		require.Equal(t, 500, a.Status)
		offsets = append(offsets, a.At.Sub(t0))
		want := "retrying"
		if i == 7 {
			want = "gave_up"
		}
		require.Equal(t, want, a.Outcome)
	}
	require.Equal(t, []time.Duration{0, 10 * time.Minute, 20 * time.Minute, 35 * time.Minute, 65 * time.Minute,
		125 * time.Minute, 245 * time.Minute, 485 * time.Minute}, offsets)
}

func TestMailgunWebhook406StopsRetries(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Partner: sandbox.Mailgun, Kind: sandbox.FaultAcceptThenFail}}
	})
	b.hooks.answer(500, http.StatusNotAcceptable)
	mg := mgClient(b, mgDomain, mgKey)
	_, _, err := mgSend(t, mg, mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com"))
	require.NoError(t, err)

	b.clock.Advance(0)
	mgHook(t, b, mg)
	b.clock.Advance(10 * time.Minute)
	mgHook(t, b, mg)
	b.clock.Advance(24 * time.Hour)
	b.hooks.none(t)

	attempts := b.sb.WebhookAttempts()
	require.Len(t, attempts, 2)
	require.Equal(t, "retrying", attempts[0].Outcome)
	require.Equal(t, http.StatusNotAcceptable, attempts[1].Status)
	require.Equal(t, "gave_up", attempts[1].Outcome)
}

// TestMailgunDeliveredWebhookIsNotRetried: Mailgun retries every webhook
// "other than the delivery notification".
func TestMailgunDeliveredWebhookIsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.hooks.answer(503)
	mg := mgClient(b, mgDomain, mgKey)
	_, _, err := mgSend(t, mg, mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com"))
	require.NoError(t, err)
	b.clock.Advance(0)
	ev, _ := mgHook(t, b, mg)
	require.IsType(t, &events.Delivered{}, ev)
	b.clock.Advance(24 * time.Hour)
	b.hooks.none(t)
	attempts := b.sb.WebhookAttempts()
	require.Len(t, attempts, 1)
	require.Equal(t, "gave_up", attempts[0].Outcome)
}

func TestMailgunDuplicateWebhooks(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Partner: sandbox.Mailgun, Kind: sandbox.FaultDuplicateWebhooks, Copies: 3}}
	})
	mg := mgClient(b, mgDomain, mgKey)
	_, _, err := mgSend(t, mg, mailgun.NewMessage("alerts@mg.example.com", "s", "t", "oncall@example.com"))
	require.NoError(t, err)
	b.clock.Advance(0)
	first, _ := mgHook(t, b, mg)
	for range 2 {
		again, _ := mgHook(t, b, mg)
		require.Equal(t, first.GetID(), again.GetID(), "duplicates share the event id to dedupe on")
	}
	b.hooks.none(t)
}

// mgValidForm is a minimal valid send.
func mgValidForm() url.Values {
	return url.Values{"from": {"alerts@mg.example.com"}, "to": {"oncall@example.com"}, "subject": {"CPU high"}, "text": {"p99"}}
}

func mgFormRequest(t *testing.T, target string, form url.Values) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("api", mgKey)
	return req
}

// mgMultipart encodes pairs as multipart/form-data, in order.
func mgMultipart(t testing.TB, pairs [][2]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range pairs {
		require.NoError(t, w.WriteField(p[0], p[1]))
	}
	require.NoError(t, w.Close())
	return buf.Bytes(), w.FormDataContentType()
}

type mgResponse struct {
	status int
	header http.Header
	body   string
}

func mgDo(t *testing.T, req *http.Request) mgResponse {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return mgResponse{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func TestMailgunValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	with := func(change func(url.Values)) url.Values {
		f := mgValidForm()
		change(f)
		return f
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("r%d@example.com", i)
	}
	for name, tc := range map[string]struct {
		form   url.Values
		status int
		msg    string
	}{
		"no from":       {with(func(f url.Values) { f.Del("from") }), 400, "'from' parameter is missing"},
		"bad from":      {with(func(f url.Values) { f.Set("from", "not an address") }), 400, "'from' parameter is not a valid address. please check documentation"},
		"no to":         {with(func(f url.Values) { f.Del("to") }), 400, "'to' parameter is missing"},
		"bad to":        {with(func(f url.Values) { f.Set("to", "oncall@") }), 400, "'to' parameter is not a valid address. please check documentation"},
		"bad cc":        {with(func(f url.Values) { f.Set("cc", "<<") }), 400, "'cc' parameter is not a valid address. please check documentation"},
		"no body":       {with(func(f url.Values) { f.Del("text") }), 400, "Need at least one of 'text', 'html' or 'template' parameters specified"},
		"empty text":    {with(func(f url.Values) { f.Set("text", "") }), 400, "Need at least one of 'text', 'html' or 'template' parameters specified"},
		"html only":     {with(func(f url.Values) { f.Del("text"); f.Set("html", "<p>x</p>") }), 200, ""},
		"template only": {with(func(f url.Values) { f.Del("text"); f.Del("from"); f.Set("template", "alert") }), 200, ""},
		"too many recipients": {with(func(f url.Values) { f["to"] = many }), 400,
			"Too many recipients: 1001, the maximum is 1000"},
		"1000 recipients in one comma list": {with(func(f url.Values) { f.Set("to", strings.Join(many[:1000], ", ")) }), 200, ""},
		"non-ASCII header name":             {with(func(f url.Values) { f.Set("h:X-Équipe", "core") }), 400, "Header name must be pure ASCII: X-Équipe"},
		"header name with space":            {with(func(f url.Values) { f.Set("h:X Team", "core") }), 400, `Header name is not valid: "X Team"`},
		"variables not JSON": {with(func(f url.Values) { f.Set("h:X-Mailgun-Variables", "{team: core}") }), 400,
			"'h:X-Mailgun-Variables' parameter is not a valid JSON"},
		"variables not an object": {with(func(f url.Values) { f.Set("h:X-Mailgun-Variables", `["core"]`) }), 400,
			"'h:X-Mailgun-Variables' parameter is not a valid JSON"},
		"recipient-variables not JSON": {with(func(f url.Values) { f.Set("recipient-variables", `{"oncall@example.com":`) }), 400,
			"'recipient-variables' parameter is not a valid JSON"},
		"recipient-variables JSON": {with(func(f url.Values) { f.Set("recipient-variables", `{"oncall@example.com":{"id":1}}`) }), 200, ""},
		"tag too long": {with(func(f url.Values) { f.Set("o:tag", strings.Repeat("t", 129)) }), 400,
			"Tag must be ASCII and at most 128 characters: " + strings.Repeat("t", 129)},
		"non-ASCII tag": {with(func(f url.Values) { f.Set("o:tag", "équipe") }), 400, "Tag must be ASCII and at most 128 characters: équipe"},
		"tag of 128":    {with(func(f url.Values) { f.Set("o:tag", strings.Repeat("t", 128)) }), 200, ""},
		"options at 16kB": {with(func(f url.Values) {
			f.Set("v:a", strings.Repeat("x", 8<<10-3))
			f.Set("o:b", strings.Repeat("y", 8<<10-3))
		}), 200, ""},
		"options over 16kB": {with(func(f url.Values) {
			f.Set("v:a", strings.Repeat("x", 8<<10-3))
			f.Set("h:b", strings.Repeat("y", 8<<10-2))
		}), 400,
			"Send options (parameters starting with o:, h:, or v:) are limited to 16 kB total"},
	} {
		resp := mgDo(t, mgFormRequest(t, b.sb.URL+"/v3/mg.example.com/messages", tc.form))
		require.Equal(t, tc.status, resp.status, "%s: %s", name, resp.body)
		require.Equal(t, "application/json", resp.header.Get("Content-Type"), name)
		if tc.status != 200 {
			require.Equal(t, tc.msg, mgErrorMessage(t, []byte(resp.body)), name)
		}
	}
}

func TestMailgunMetadataAndTags(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	body, ct := mgMultipart(t, [][2]string{
		{"from", "alerts@mg.example.com"}, {"to", "Ops <oncall@example.com>, second@example.com"}, {"text", "x"},
		{"o:tag", "one"}, {"o:tag", "two"}, {"o:tag", "three"}, {"o:tag", "four"},
		{"h:X-Mailgun-Variables", `{"team":"core","n":1,"obj":{"a":[1,2]},"shared":"header"}`},
		{"v:notification_id", "n-1"}, {"v:shared", "param"},
		{"o:testmode", "true"},
	})
	req, err := http.NewRequest(http.MethodPost, b.sb.URL+"/v3/MG.example.com/messages", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", ct)
	req.SetBasicAuth("api", mgKey)
	resp := mgDo(t, req)
	require.Equal(t, http.StatusOK, resp.status, resp.body)
	var ok struct{ ID, Message string }
	require.NoError(t, json.Unmarshal([]byte(resp.body), &ok))
	require.Regexp(t, mgIDPattern, ok.ID, "domains match case-insensitively; the id names the configured one")

	got, found := b.sb.Message(strings.Trim(ok.ID, "<>"))
	require.True(t, found)
	require.Equal(t, []string{"Ops <oncall@example.com>", "second@example.com"}, got.To)
	require.Equal(t, []string{"one", "two", "three"}, got.Tags, "tags past the third are dropped without an error")
	require.Equal(t, map[string]string{"team": "core", "n": "1", "obj": `{"a":[1,2]}`, "shared": "param", "notification_id": "n-1"}, got.Metadata)
	require.True(t, got.TestMode)

	b.clock.Advance(0)
	mg := mgClient(b, mgDomain, mgKey)
	for range 2 {
		ev, _ := mgHook(t, b, mg)
		d := ev.(*events.Delivered)
		require.True(t, d.Flags.IsTestMode)
		require.Equal(t, map[string]any{"team": "core", "n": float64(1), "obj": map[string]any{"a": []any{float64(1), float64(2)}},
			"shared": "param", "notification_id": "n-1"}, d.UserVariables)
	}
}

func TestMailgunGzipBody(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write([]byte(mgValidForm().Encode()))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	req, err := http.NewRequest(http.MethodPost, b.sb.URL+"/v3/mg.example.com/messages", &buf)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Content-Encoding", "gzip")
	req.SetBasicAuth("api", mgKey)
	resp := mgDo(t, req)
	require.Equal(t, http.StatusOK, resp.status, resp.body)
}

// mgFuzzServer is a sandbox served in-process, its clock never advanced.
func mgFuzzServer(f *testing.F) http.Handler {
	// never_confirm: accepted messages schedule no events, so nothing
	// piles up in the clock that is never advanced.
	s, err := sandbox.New(sandbox.Config{Clock: clock.NewFake(t0), Seed: 1, MaxMessages: 100,
		Faults: []sandbox.Fault{{Kind: sandbox.FaultNeverConfirm}}})
	require.NoError(f, err)
	return s.Handler()
}

// mgCheckAnswer fails unless the answer is one Mailgun could give to a
// send: 200 with the id and "Queued", a plain-text 401, or a documented
// error status with a {"message"} body.
func mgCheckAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	body := rec.Body.Bytes()
	switch rec.Code {
	case http.StatusOK:
		var ok map[string]string
		require.NoError(t, json.Unmarshal(body, &ok), "%s", body)
		require.Regexp(t, mgIDPattern, ok["id"])
		require.Equal(t, "Queued. Thank you.", ok["message"])
		require.Len(t, ok, 2)
	case http.StatusUnauthorized:
		require.Equal(t, "Forbidden", string(body))
	case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
		require.NotEmpty(t, mgErrorMessage(t, body))
	default:
		t.Fatalf("status %d is not a Mailgun send answer: %s", rec.Code, body)
	}
	require.NotContains(t, string(body), mgKey)
}

// FuzzMailgunBody sends arbitrary bodies under arbitrary content types.
func FuzzMailgunBody(f *testing.F) {
	h := mgFuzzServer(f)
	valid := mgValidForm().Encode()
	mp, mpType := mgMultipart(f, [][2]string{{"from", "a@mg.example.com"}, {"to", "b@example.com"}, {"text", "x"}, {"h:X-Mailgun-Variables", `{"a":1}`}})
	f.Add("application/x-www-form-urlencoded", []byte(valid), "")
	f.Add("application/x-www-form-urlencoded", []byte(valid+"&v:x=%zz"), "")
	f.Add("application/x-www-form-urlencoded", []byte("from=a@b.c&to=d@e.f&text=x&o:tag=a&o:tag=b&o:tag=c&o:tag=d&recipient-variables={"), "")
	f.Add(mpType, mp, "")
	f.Add(mpType, mp[:len(mp)/2], "")
	f.Add("multipart/form-data", mp, "")
	f.Add("multipart/form-data; boundary=\"", []byte("--\"\r\n"), "")
	f.Add("application/json", []byte(`{"from":"a@b.c"}`), "")
	f.Add("", []byte{}, "gzip")
	f.Add("application/x-www-form-urlencoded", []byte("\x1f\x8b\x08\x00garbage"), "gzip")
	f.Fuzz(func(t *testing.T, contentType string, body []byte, encoding string) {
		req := httptest.NewRequest(http.MethodPost, "/v3/mg.example.com/messages", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Content-Encoding", encoding)
		req.SetBasicAuth("api", mgKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		mgCheckAnswer(t, rec)
	})
}

// FuzzMailgunFields sends well-formed forms of arbitrary fields, both as
// multipart/form-data (as mailgun-go does) and urlencoded, and to an
// arbitrary domain with arbitrary credentials. fields holds name=value
// lines.
func FuzzMailgunFields(f *testing.F) {
	h := mgFuzzServer(f)
	f.Add("from=a@mg.example.com\nto=b@example.com\ntext=x", "mg.example.com", "api", mgKey)
	f.Add("from=a@mg.example.com\nto=b@example.com, c@example.com\nhtml=x\nv:id=1\nh:X-Mailgun-Variables={\"a\":[1]}", "mg.example.com", "api", mgKey)
	f.Add("from=a@mg.example.com\nto=b@example.com\ntemplate=t\no:tag=\xff\no:testmode=yes", "mg.example.com", "api", mgKey)
	f.Add("from=a@mg.example.com\nto=b@example.com\ntext=x\nh:X-\xc3\x89=1\nh:=2", "mg.example.com", "api", mgKey)
	f.Add("to=b@example.com\ntext=x", "other.example.com", "api", mgKey)
	f.Add("from=a@mg.example.com\nto=b@example.com\ntext=x", "mg.example.com", "api", "wrong")
	f.Add("from=a\nto=\"unterminated\ntext=x\nrecipient-variables=[]", "mg.example.com", "", "")
	f.Fuzz(func(t *testing.T, fields, domain, user, pass string) {
		if strings.ContainsAny(domain, "/?#%") || domain == "" || domain == "." || domain == ".." {
			return // not one path segment
		}
		var pairs [][2]string
		form := url.Values{}
		for line := range strings.SplitSeq(fields, "\n") {
			k, v, _ := strings.Cut(line, "=")
			pairs = append(pairs, [2]string{k, v})
			form.Add(k, v)
		}
		mp, mpType := mgMultipart(t, pairs)
		for _, enc := range []struct {
			ct   string
			body []byte
		}{{mpType, mp}, {"application/x-www-form-urlencoded", []byte(form.Encode())}} {
			req := httptest.NewRequest(http.MethodPost, "/v3/x/messages", bytes.NewReader(enc.body))
			req.URL.Path = "/v3/" + domain + "/messages"
			req.Header.Set("Content-Type", enc.ct)
			req.SetBasicAuth(user, pass)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if (rec.Code == http.StatusNotFound && rec.Body.String() == "404 page not found\n") ||
				rec.Code == http.StatusMovedPermanently || rec.Code == http.StatusTemporaryRedirect {
				return // the path did not route to the send endpoint
			}
			mgCheckAnswer(t, rec)
		}
	})
}
