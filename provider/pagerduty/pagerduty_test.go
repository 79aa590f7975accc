package pagerduty_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"herald"
	"herald/clock"
	"herald/provider"
	"herald/provider/pagerduty"
	"herald/sandbox"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// routingKey is the secret of the test destination: 32 characters, as
// PagerDuty requires.
const routingKey = "R0ut1ngK3ySecretR0ut1ngK3ySecret"

// destinations is the store the adapter reads its routing keys from: a map,
// read-only once built.
type destinations map[string]herald.Destination

func (d destinations) GetDestination(_ context.Context, id string) (herald.Destination, error) {
	dest, ok := d[id]
	if !ok {
		return herald.Destination{}, herald.Errorf(herald.ENOTFOUND, "destination %q not found", id)
	}
	return dest, nil
}

var dests = destinations{
	"rc_pd": {ID: "rc_pd", Type: "pagerduty", Details: herald.DestinationDetails{
		PagerDutyIntegrationName: "checkout-oncall", PagerDutyIntegrationKey: routingKey}},
	"rc_short": {ID: "rc_short", Type: "pagerduty", Details: herald.DestinationDetails{
		PagerDutyIntegrationName: "typo", PagerDutyIntegrationKey: routingKey[:31]}},
	"rc_slack": {ID: "rc_slack", Type: "slack", Details: herald.DestinationDetails{WebhookURL: "https://hooks.slack.com/services/T/B/x"}},
}

type bundle struct {
	sb    *sandbox.Running
	clock *clock.Fake
	spans *tracetest.SpanRecorder
	p     *pagerduty.Provider
}

func setup(t *testing.T, change func(*sandbox.Config), timeout time.Duration) *bundle {
	t.Helper()
	fake := clock.NewFake(t0)
	cfg := sandbox.Config{Clock: fake, Seed: 1}
	if change != nil {
		change(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); sb.Close() })
	b := &bundle{sb: sb, clock: fake, spans: tracetest.NewSpanRecorder()}
	b.p = b.partner(t, sb.URL, dests, timeout)
	return b
}

func (b *bundle) partner(t *testing.T, baseURL string, d herald.Destinations, timeout time.Duration) *pagerduty.Provider {
	t.Helper()
	p, err := pagerduty.New(pagerduty.Config{BaseURL: baseURL, Destinations: d, Timeout: timeout, Clock: b.clock,
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b.spans))})
	require.NoError(t, err)
	return p
}

func alert(status string) *herald.Alert {
	return &herald.Alert{
		Version: "v0.1.0", ID: "tr_2x9Qm", Name: "Checkout p99 too slow",
		TriggerDescription: "p99 over 1s for 10 min",
		TriggerURL:         "https://herald.example/datasets/checkout/triggers/tr_2x9Qm",
		AlertType:          "on_change", Status: status,
		Summary:     "Triggered: Checkout p99 too slow",
		Description: "Currently greater than threshold value (1000) for http.route:/cart (value 1530)",
		Operator:    "greater than", Threshold: 1000,
		ResultURL: "https://herald.example/datasets/checkout/results/r1",
		ResultGroups: []herald.AlertGroup{{Group: map[string]any{"http.route": "/cart"}, Result: 1530},
			{Group: map[string]any{"http.route": "/pay"}, Result: 420}},
		ResultGroupsTriggered: []herald.AlertGroup{{Group: map[string]any{"http.route": "/cart"}, Result: 1530}},
		Dataset:               "checkout",
	}
}

func email(to string, a *herald.Alert, severity string) *herald.Email {
	e := &herald.Email{To: to, Subject: "Triggered: Checkout p99 too slow", Text: "p99 above 1s", Alert: a,
		Metadata: map[string]string{herald.MetaNotificationID: "ntf_01m86pt8djqcdva78j8906sfz2", herald.MetaDeliveryID: "dlv_01m86pt8djqkves8nh691mc3pa"}}
	if severity != "" {
		e.Options = &herald.RecipientOptions{PagerDutySeverity: severity}
	}
	return e
}

func events(t *testing.T, sb *sandbox.Running) []sandbox.Notification {
	t.Helper()
	return sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.PagerDuty})
}

func TestTriggerThenResolve(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, 2*time.Second)
	r := b.p.Send(context.Background(), email("rc_pd", alert("TRIGGERED"), "error"))
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, "%+v", r)
	require.Equal(t, "ok", r.Reason)
	require.Equal(t, 202, r.Status)
	require.Equal(t, "herald-tr_2x9Qm", r.MessageID)
	require.Regexp(t, `^POST http://127\.0\.0\.1:\d+/v2/enqueue body=\d+B metadata_keys=\[\] event_action=trigger dedup_key=herald-tr_2x9Qm integration=checkout-oncall$`, r.Request)

	ok := alert("OK")
	ok.Summary = "Resolved: Checkout p99 too slow"
	ok.ResultGroupsTriggered = nil
	r = b.p.Send(context.Background(), email("rc_pd", ok, "error"))
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, "%+v", r)
	require.Equal(t, "herald-tr_2x9Qm", r.MessageID)

	got := events(t, b.sb)
	require.Len(t, got, 2)
	trigger, resolve := got[0], got[1]
	require.True(t, trigger.Accepted)
	require.Equal(t, "/v2/enqueue", trigger.Path)
	require.Equal(t, "application/json", trigger.Header.Get("Content-Type"))
	ev := trigger.PagerDuty
	require.Equal(t, routingKey, ev.RoutingKey)
	require.Equal(t, "trigger", ev.EventAction)
	require.Equal(t, "herald-tr_2x9Qm", ev.DedupKey)
	require.Equal(t, "herald", ev.Client)
	require.Equal(t, &sandbox.PagerDutyPayload{Summary: "Triggered: Checkout p99 too slow", Source: "herald", Severity: "error",
		Timestamp: "2026-11-24T12:00:00.000Z", Component: "checkout", Group: "Checkout p99 too slow", Class: "trigger",
		CustomDetails: ev.Payload.CustomDetails}, ev.Payload)
	require.JSONEq(t, `{"description":"Currently greater than threshold value (1000) for http.route:/cart (value 1530)",
		"threshold":1000,"operator":"greater than","is_test":false,
		"result_groups_triggered":[{"Group":{"http.route":"/cart"},"Result":1530}]}`, string(ev.Payload.CustomDetails))
	require.Equal(t, []sandbox.PagerDutyLink{{Href: "https://herald.example/datasets/checkout/triggers/tr_2x9Qm", Text: "Trigger"},
		{Href: "https://herald.example/datasets/checkout/results/r1", Text: "Query results"}}, ev.Links)

	require.True(t, resolve.Accepted)
	require.Equal(t, &sandbox.PagerDutyEvent{RoutingKey: routingKey, EventAction: "resolve", DedupKey: "herald-tr_2x9Qm"}, resolve.PagerDuty)
	require.JSONEq(t, `{"routing_key":"`+routingKey+`","event_action":"resolve","dedup_key":"herald-tr_2x9Qm"}`, resolve.Body,
		"a resolve carries nothing else")
}

func TestSeverityAndSummary(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, 2*time.Second)
	long := alert("TRIGGERED")
	long.Summary = "Triggered: " + strings.Repeat("é", 2000)
	for _, tc := range []struct {
		name, severity string
		alert          *herald.Alert
		want           string
		summary        string
	}{
		{"default", "", alert("TRIGGERED"), "critical", "Triggered: Checkout p99 too slow"},
		{"from the options", "info", alert("triggered"), "info", "Triggered: Checkout p99 too slow"},
		{"no data", "critical", func() *herald.Alert {
			a := alert("NO_DATA")
			a.Summary = "Checkout p99 too slow"
			return a
		}(), "warning", "No data: Checkout p99 too slow"},
		{"query failed", "", func() *herald.Alert { a := alert("ERROR"); a.Summary = ""; return a }(), "warning", "Query failed: Checkout p99 too slow"},
		{"test", "", func() *herald.Alert { a := alert("TRIGGERED"); a.IsTest = true; return a }(), "critical", "TRIGGER TEST: Triggered: Checkout p99 too slow"},
		{"long", "", long, "critical", "Triggered: " + strings.Repeat("é", 1012) + "…"},
	} {
		b.sb.ClearNotifications()
		r := b.p.Send(context.Background(), email("rc_pd", tc.alert, tc.severity))
		require.Equal(t, herald.OutcomeAccepted, r.Outcome, "%s: %+v", tc.name, r)
		ev := events(t, b.sb)[0].PagerDuty
		require.Equal(t, "trigger", ev.EventAction, tc.name)
		require.Equal(t, tc.want, ev.Payload.Severity, tc.name)
		require.Equal(t, tc.summary, ev.Payload.Summary, tc.name)
		require.LessOrEqual(t, len([]rune(ev.Payload.Summary)), 1024)
	}
}

func TestPlainNotification(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, 2*time.Second)
	r := b.p.Send(context.Background(), email("rc_pd", nil, ""))
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, "%+v", r)
	require.Equal(t, "herald-ntf_01m86pt8djqcdva78j8906sfz2", r.MessageID)
	ev := events(t, b.sb)[0].PagerDuty
	require.Equal(t, "Triggered: Checkout p99 too slow", ev.Payload.Summary)
	require.JSONEq(t, `{"text":"p99 above 1s"}`, string(ev.Payload.CustomDetails))
}

func TestRequestGolden(t *testing.T) {
	t.Parallel()
	ev, err := pagerduty.Event("golden-routing-key-0000000000000", email("rc_pd", alert("TRIGGERED"), "error"), t0)
	require.NoError(t, err)
	got, err := json.MarshalIndent(ev, "", "  ")
	require.NoError(t, err)
	path := filepath.Join("testdata", "trigger.json")
	if *update {
		require.NoError(t, os.WriteFile(path, append(got, '\n'), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(got))
}

func TestClassifiesEveryAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		to          string
		fault       *sandbox.Fault
		outcome     herald.Outcome
		reason      string
		partnerSide bool
		status      int
		errorHas    string
	}{
		{"400 invalid event", "rc_short", nil, herald.OutcomeRejected, "validation", false, 400, "Length of 'routing_key' is incorrect (should be 32 characters)"},
		{"400 fault", "rc_pd", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 400}, herald.OutcomeRejected, "validation", false, 400, "pagerduty 400 Event object is invalid: Event object is invalid"},
		{"401", "rc_pd", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 401}, herald.OutcomeRejected, "auth", true, 401, "Unauthorized"},
		{"403", "rc_pd", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 403}, herald.OutcomeRejected, "forbidden", true, 403, "Forbidden"},
		{"429 without Retry-After", "rc_pd", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 429}, herald.OutcomeThrottled, "rate_limited", true, 429, "arriving too quickly"},
		{"500", "rc_pd", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 500}, herald.OutcomeTransient, "server_error", true, 500, "Internal Server Error"},
		{"nginx 502 page", "rc_pd", &sandbox.Fault{Kind: sandbox.FaultGateway502}, herald.OutcomeTransient, "server_error", true, 502, "not its error shape"},
		{"202 with no body", "rc_pd", &sandbox.Fault{Kind: sandbox.FaultEmptyBody}, herald.OutcomeUnknown, "unexpected_body", false, 202, "whether the event was processed is unknown"},
		{"202 with garbage", "rc_pd", &sandbox.Fault{Kind: sandbox.FaultGarbageBody}, herald.OutcomeUnknown, "unexpected_body", false, 202, ""},
		{"connection dropped after the request", "rc_pd", &sandbox.Fault{Kind: sandbox.FaultDropConnection}, herald.OutcomeUnknown, "connection_lost_after_send", true, 0, ""},
		{"stalled past the timeout", "rc_pd", &sandbox.Fault{Kind: sandbox.FaultStall}, herald.OutcomeUnknown, "timeout_after_send", true, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(c *sandbox.Config) {
				if tc.fault != nil {
					c.Faults = []sandbox.Fault{*tc.fault}
				}
			}, 300*time.Millisecond)
			r := b.p.Send(context.Background(), email(tc.to, alert("TRIGGERED"), ""))
			require.Equal(t, tc.outcome, r.Outcome, "%+v", r)
			require.Equal(t, tc.reason, r.Reason)
			require.Equal(t, tc.partnerSide, r.PartnerSide)
			require.Equal(t, tc.status, r.Status)
			require.Empty(t, r.MessageID)
			require.Zero(t, r.RetryAfter, "PagerDuty names no wait: the retry policy chooses")
			require.NotEmpty(t, r.Error)
			require.Contains(t, r.Error, tc.errorHas)
		})
	}
}

// TestClassifyAnswersNoSandboxGives covers answers the sandbox, faithful to
// PagerDuty, never gives.
func TestClassifyAnswersNoSandboxGives(t *testing.T) {
	t.Parallel()
	x := func(status int, body string, header ...string) provider.Exchange {
		h := http.Header{}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return provider.Exchange{Sent: true, Status: status, Header: h, Body: []byte(body)}
	}
	success := `{"status":"success","message":"Event processed","dedup_key":"herald-tr_1"}`
	for _, tc := range []struct {
		name    string
		x       provider.Exchange
		outcome herald.Outcome
		reason  string
		retry   time.Duration
	}{
		{"202 success", x(202, success), herald.OutcomeAccepted, "ok", 0},
		{"200 with the success body is not the documented answer", x(200, success), herald.OutcomeUnknown, "unexpected_body", 0},
		{"202 of another status", x(202, `{"status":"queued","dedup_key":"herald-tr_1"}`), herald.OutcomeUnknown, "unexpected_body", 0},
		{"202 success without a dedup_key", x(202, `{"status":"success","message":"Event processed"}`), herald.OutcomeUnknown, "missing_message_id", 0},
		{"429 with Retry-After", x(429, `{"status":"throttle event"}`, "Retry-After", "30"), herald.OutcomeThrottled, "rate_limited", 30 * time.Second},
	} {
		r := pagerduty.Classify(tc.x, t0)
		require.Equal(t, tc.outcome, r.Outcome, tc.name)
		require.Equal(t, tc.reason, r.Reason, tc.name)
		require.Equal(t, tc.retry, r.RetryAfter, tc.name)
	}
}

func TestThrottledByTheRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Limits = map[sandbox.Partner]sandbox.Rate{sandbox.PagerDuty: {PerSecond: 1, Burst: 1}}
	}, 2*time.Second)
	require.Equal(t, herald.OutcomeAccepted, b.p.Send(context.Background(), email("rc_pd", alert("TRIGGERED"), "")).Outcome)
	r := b.p.Send(context.Background(), email("rc_pd", alert("TRIGGERED"), ""))
	require.Equal(t, herald.OutcomeThrottled, r.Outcome, "%+v", r)
	require.Zero(t, r.RetryAfter)
}

func TestTransportFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, 2*time.Second)

	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	r := b.p.Send(ctx, email("rc_pd", alert("TRIGGERED"), ""))
	require.Equal(t, herald.OutcomeTransient, r.Outcome, "%+v", r)
	require.Equal(t, "timeout", r.Reason, "a timeout before the request was sent")
	require.Empty(t, events(t, b.sb))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	r = b.partner(t, closed, dests, time.Second).Send(context.Background(), email("rc_pd", alert("TRIGGERED"), ""))
	require.Equal(t, herald.OutcomeTransient, r.Outcome, "%+v", r)
	require.Equal(t, "connection", r.Reason)
}

func TestRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, 2*time.Second)
	for _, to := range []string{"rc_missing", "rc_slack"} {
		r := b.p.Send(context.Background(), email(to, alert("TRIGGERED"), ""))
		require.Equal(t, herald.OutcomeRejected, r.Outcome, to)
		require.Equal(t, "no_destination", r.Reason, to)
		require.Contains(t, r.Error, to)
	}

	r := b.partner(t, b.sb.URL, failing{}, time.Second).Send(context.Background(), email("rc_pd", alert("TRIGGERED"), ""))
	require.Equal(t, herald.OutcomeTransient, r.Outcome, "herald's store failing is not the destination's fault")
	require.Equal(t, "destination_lookup", r.Reason)

	for name, e := range map[string]*herald.Email{
		"unknown severity":        email("rc_pd", alert("TRIGGERED"), "sev1"),
		"unknown status":          email("rc_pd", alert("PENDING"), ""),
		"resolve without an id":   email("rc_pd", func() *herald.Alert { a := alert("OK"); a.ID = ""; return a }(), ""),
		"dedup_key over 255 long": email("rc_pd", func() *herald.Alert { a := alert("TRIGGERED"); a.ID = strings.Repeat("x", 250); return a }(), ""),
	} {
		r := b.p.Send(context.Background(), e)
		require.Equal(t, herald.OutcomeRejected, r.Outcome, name)
		require.Equal(t, "encode", r.Reason, name)
	}
	require.Empty(t, events(t, b.sb))
}

type failing struct{}

func (failing) GetDestination(context.Context, string) (herald.Destination, error) {
	return herald.Destination{}, fmt.Errorf("database is locked")
}

// TestRoutingKeyNeverShown sends through every kind of answer and checks
// that the routing key is in no Result field and no span.
func TestRoutingKeyNeverShown(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, 300*time.Millisecond)
	send := func(to string, f *sandbox.Fault) herald.Result {
		if f != nil {
			f.Times = 1
			_, err := b.sb.AddFault(*f)
			require.NoError(t, err)
		}
		return b.p.Send(context.Background(), email(to, alert("TRIGGERED"), ""))
	}
	results := []herald.Result{
		send("rc_pd", nil),
		send("rc_short", nil),
		send("rc_pd", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 400}),
		send("rc_pd", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 403}),
		send("rc_pd", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 429}),
		send("rc_pd", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 500}),
		send("rc_pd", &sandbox.Fault{Kind: sandbox.FaultGarbageBody}),
		send("rc_pd", &sandbox.Fault{Kind: sandbox.FaultDropConnection}),
		send("rc_pd", &sandbox.Fault{Kind: sandbox.FaultStall}),
	}
	require.Equal(t, herald.OutcomeAccepted, results[0].Outcome)
	for _, r := range results {
		raw, err := json.Marshal(r)
		require.NoError(t, err)
		require.NotContains(t, string(raw), routingKey, "%+v", r)
		require.NotContains(t, string(raw), routingKey[:31], "%+v", r)
	}
	spans := b.spans.Ended()
	require.NotEmpty(t, spans)
	sends := 0
	for _, s := range spans {
		if s.Name() == "pagerduty.Send" {
			sends++
		}
		require.NotContains(t, s.Status().Description, routingKey[:31])
		for _, kv := range s.Attributes() {
			require.NotContains(t, kv.Value.String(), routingKey[:31], "span %s attribute %s", s.Name(), kv.Key)
		}
		for _, ev := range s.Events() {
			for _, kv := range ev.Attributes {
				require.NotContains(t, kv.Value.String(), routingKey[:31])
			}
		}
	}
	require.Equal(t, len(results), sends)
}
