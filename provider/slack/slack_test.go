package slack_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
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
	"herald/provider/slack"
	"herald/sandbox"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// token is the secret of every test webhook URL.
const token = "XoXoSecretWebhookToken42"

// destinations is the store the adapter reads its webhook URLs from: a map,
// read-only once built.
type destinations map[string]herald.Destination

func (d destinations) GetDestination(_ context.Context, id string) (herald.Destination, error) {
	dest, ok := d[id]
	if !ok {
		return herald.Destination{}, herald.Errorf(herald.ENOTFOUND, "destination %q not found", id)
	}
	return dest, nil
}

type bundle struct {
	sb    *sandbox.Running
	clock *clock.Fake
	spans *tracetest.SpanRecorder
	p     *slack.Provider
}

// setup starts a sandbox and a Slack channel whose destinations are
//
//	rc_ops      a webhook that posts
//	rc_archived a webhook to an archived channel (B410…)
//	rc_gone     a workspace that does not exist (T404…)
//	rc_badtoken a token Slack does not know
//	rc_pd       a PagerDuty destination
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
	slackDest := func(id, path string) herald.Destination {
		return herald.Destination{ID: id, Type: "slack", Details: herald.DestinationDetails{
			SlackChannel: "#ops", WebhookURL: sb.URL + path}}
	}
	dests := destinations{
		"rc_ops":      slackDest("rc_ops", "/services/T0001/B0001/"+token),
		"rc_archived": slackDest("rc_archived", "/services/T0001/B410AAAA/"+token),
		"rc_gone":     slackDest("rc_gone", "/services/T404AAAA/B0001/"+token),
		"rc_badtoken": slackDest("rc_badtoken", "/services/T0001/B0001/bad"+token),
		"rc_pd": {ID: "rc_pd", Type: "pagerduty", Details: herald.DestinationDetails{
			PagerDutyIntegrationName: "ops", PagerDutyIntegrationKey: strings.Repeat("k", 32)}},
	}
	b := &bundle{sb: sb, clock: fake, spans: tracetest.NewSpanRecorder()}
	b.p = b.partner(t, dests, timeout)
	return b
}

func (b *bundle) partner(t *testing.T, dests herald.Destinations, timeout time.Duration) *slack.Provider {
	t.Helper()
	p, err := slack.New(slack.Config{Destinations: dests, Timeout: timeout, Clock: b.clock,
		AllowNetworks:  []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b.spans))})
	require.NoError(t, err)
	return p
}

func alert() *herald.Alert {
	return &herald.Alert{
		Version: "v0.1.0", ID: "tr_2x9Qm", Name: "Checkout p99 too slow",
		TriggerDescription: "p99 over 1s for 10 min",
		TriggerURL:         "https://herald.example/datasets/checkout/triggers/tr_2x9Qm",
		AlertType:          "on_change", Status: "TRIGGERED",
		Summary:     "Triggered: Checkout p99 too slow",
		Description: "Currently greater than threshold value (1000) for http.route:/cart (value 1530)",
		Operator:    "greater than", Threshold: 1000,
		ResultURL: "https://herald.example/datasets/checkout/results/r1",
		ResultGroups: []herald.AlertGroup{{Group: map[string]any{"http.route": "/cart"}, Result: 1530},
			{Group: map[string]any{"http.route": "/pay"}, Result: 420}},
		ResultGroupsTriggered: []herald.AlertGroup{{Group: map[string]any{"http.route": "/cart", "region": "eu-1"}, Result: 1530.25}},
		Dataset:               "checkout",
	}
}

func email(to string, a *herald.Alert) *herald.Email {
	return &herald.Email{To: to, Subject: "Triggered: Checkout p99 too slow", Text: "p99 above 1s", Alert: a,
		Metadata: map[string]string{herald.MetaNotificationID: "ntf_01m86pt8djqcdva78j8906sfz2", herald.MetaDeliveryID: "dlv_01m86pt8djqkves8nh691mc3pa"}}
}

// block is the part of a Block Kit block the tests read.
type block struct {
	Type string `json:"type"`
	Text *struct {
		Type, Text string
	} `json:"text"`
	Fields []struct {
		Type, Text string
	} `json:"fields"`
	Elements []struct {
		Type, URL string
		Text      any // a context's string, a button's text object
	} `json:"elements"`
}

func blocks(t *testing.T, raw []json.RawMessage) []block {
	t.Helper()
	out := make([]block, len(raw))
	for i, r := range raw {
		require.NoError(t, json.Unmarshal(r, &out[i]))
	}
	return out
}

func TestAcceptedAlert(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, 2*time.Second)
	r := b.p.Send(context.Background(), email("rc_ops", alert()))
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, "%+v", r)
	require.Equal(t, "ok", r.Reason)
	require.Equal(t, 200, r.Status)
	require.Equal(t, "dlv_01m86pt8djqkves8nh691mc3pa", r.MessageID)
	require.Regexp(t, `^POST http://127\.0\.0\.1:\d+/services/… body=\d+B metadata_keys=\[\] channel=#ops$`, r.Request)

	got := b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.Slack})
	require.Len(t, got, 1)
	n := got[0]
	require.True(t, n.Accepted)
	require.Equal(t, "/services/T0001/B0001/"+token, n.Path)
	require.Equal(t, "application/json", n.Header.Get("Content-Type"))
	require.Equal(t, "Triggered: Checkout p99 too slow", n.Slack.Text, "the text fallback is the summary")
	bl := blocks(t, n.Slack.Blocks)
	require.Equal(t, []string{"header", "section", "section", "context", "actions"},
		[]string{bl[0].Type, bl[1].Type, bl[2].Type, bl[3].Type, bl[4].Type})
	require.Equal(t, ":red_circle: Triggered: Checkout p99 too slow", bl[0].Text.Text)
	require.Equal(t, "Currently greater than threshold value (1000) for http.route:/cart (value 1530)\n"+
		"*Value:* 1530.25 vs threshold: greater than 1000", bl[1].Text.Text)
	require.Equal(t, "*1 group breached*", bl[2].Text.Text)
	require.Len(t, bl[2].Fields, 1)
	require.Equal(t, "http.route=/cart, region=eu-1 → 1530.25", bl[2].Fields[0].Text)
	require.Equal(t, "Dataset *checkout* · sent by herald", bl[3].Elements[0].Text)
	require.Equal(t, "https://herald.example/datasets/checkout/triggers/tr_2x9Qm", bl[4].Elements[0].URL)
	require.Equal(t, "https://herald.example/datasets/checkout/results/r1", bl[4].Elements[1].URL)
}

func TestStatusesAndTests(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, 2*time.Second)
	for _, tc := range []struct {
		status, summary string
		test            bool
		header, text    string
	}{
		{"OK", "Resolved: Checkout p99 too slow", false, ":large_green_circle: Resolved: Checkout p99 too slow", "Resolved: Checkout p99 too slow"},
		{"NO_DATA", "Checkout p99 too slow", false, ":grey_question: No data: Checkout p99 too slow", "No data: Checkout p99 too slow"},
		{"ERROR", "", false, ":warning: Query failed: Checkout p99 too slow", "Query failed: Checkout p99 too slow"},
		{"triggered", "TRIGGER TEST: Triggered: Checkout p99 too slow", true, ":red_circle: TRIGGER TEST: Triggered: Checkout p99 too slow", "TRIGGER TEST: Triggered: Checkout p99 too slow"},
		{"TRIGGERED", "Triggered: Checkout p99 too slow", true, ":red_circle: TRIGGER TEST: Triggered: Checkout p99 too slow", "TRIGGER TEST: Triggered: Checkout p99 too slow"},
	} {
		b.sb.ClearNotifications()
		a := alert()
		a.Status, a.Summary, a.IsTest = tc.status, tc.summary, tc.test
		r := b.p.Send(context.Background(), email("rc_ops", a))
		require.Equal(t, herald.OutcomeAccepted, r.Outcome, "%s: %+v", tc.status, r)
		n := b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.Slack})[0]
		require.Equal(t, tc.text, n.Slack.Text, tc.status)
		require.Equal(t, tc.header, blocks(t, n.Slack.Blocks)[0].Text.Text, tc.status)
	}
}

func TestManyGroupsAndEscaping(t *testing.T) {
	t.Parallel()
	a := alert()
	a.Description = "<!channel> p99 & friends > 1s"
	a.ResultGroupsTriggered = nil
	for i := range 12 {
		a.ResultGroupsTriggered = append(a.ResultGroupsTriggered, herald.AlertGroup{Group: map[string]any{"host": fmt.Sprintf("api-%d", i)}, Result: float64(2000 - i)})
	}
	a.TriggerURL, a.ResultURL, a.Dataset = "", "", ""
	body, err := slack.Payload(email("rc_ops", a))
	require.NoError(t, err)
	var m struct{ Blocks []json.RawMessage }
	require.NoError(t, json.Unmarshal(body, &m))
	bl := blocks(t, m.Blocks)
	require.Len(t, bl, 3, "no context and no actions without a dataset and links")
	require.Equal(t, "&lt;!channel&gt; p99 &amp; friends &gt; 1s\n*Value:* 2000 vs threshold: greater than 1000", bl[1].Text.Text)
	require.Equal(t, "*12 groups breached*, the first 10:", bl[2].Text.Text)
	require.Len(t, bl[2].Fields, 10)
	require.Equal(t, "host=api-0 → 2000", bl[2].Fields[0].Text)
	require.Equal(t, "host=api-9 → 1991", bl[2].Fields[9].Text)
}

func TestPlainMessage(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, 2*time.Second)
	r := b.p.Send(context.Background(), email("rc_ops", nil))
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, "%+v", r)
	n := b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.Slack})[0]
	require.Equal(t, &sandbox.SlackMessage{Text: "Triggered: Checkout p99 too slow\np99 above 1s"}, n.Slack)
}

func TestRequestGolden(t *testing.T) {
	t.Parallel()
	got, err := slack.Payload(email("rc_ops", alert()))
	require.NoError(t, err)
	path := filepath.Join("testdata", "alert.json")
	if *update {
		var pretty map[string]any
		require.NoError(t, json.Unmarshal(got, &pretty))
		out, err := json.MarshalIndent(pretty, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, append(out, '\n'), 0o644))
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
		response    string
	}{
		{"incident: 200 with an error body", "rc_ops", &sandbox.Fault{Kind: sandbox.FaultSlackErrorBody}, herald.OutcomeRejected, "error_body", false, 200, "invalid_blocks"},
		{"200 no_text", "rc_ops", &sandbox.Fault{Kind: sandbox.FaultSlackErrorBody, Text: "no_text"}, herald.OutcomeRejected, "error_body", false, 200, "no_text"},
		{"200 empty: posted or not, unknown", "rc_ops", &sandbox.Fault{Kind: sandbox.FaultEmptyBody}, herald.OutcomeUnknown, "unexpected_body", false, 200, ""},
		{"200 html page", "rc_ops", &sandbox.Fault{Kind: sandbox.FaultHTMLBody}, herald.OutcomeUnknown, "unexpected_body", false, 200, "<html><body><h1>Service temporarily unavailable</h1></body></html>\n"},
		{"400 invalid_payload", "rc_ops", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 400}, herald.OutcomeRejected, "invalid_payload", false, 400, "invalid_payload"},
		{"403 invalid_token", "rc_badtoken", nil, herald.OutcomeRejected, "invalid_token", true, 403, "invalid_token"},
		{"404 no_service", "rc_gone", nil, herald.OutcomeRejected, "no_service", true, 404, "no_service"},
		{"410 channel_is_archived", "rc_archived", nil, herald.OutcomeRejected, "channel_is_archived", true, 410, "channel_is_archived"},
		{"500 rollup_error", "rc_ops", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 500}, herald.OutcomeTransient, "server_error", true, 500, "rollup_error"},
		{"503", "rc_ops", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 503}, herald.OutcomeTransient, "server_error", true, 503, "service_unavailable"},
		{"nginx 502 page", "rc_ops", &sandbox.Fault{Kind: sandbox.FaultGateway502}, herald.OutcomeTransient, "server_error", true, 502, ""},
		{"connection dropped after the request", "rc_ops", &sandbox.Fault{Kind: sandbox.FaultDropConnection}, herald.OutcomeUnknown, "connection_lost_after_send", true, 0, ""},
		{"stalled past the timeout", "rc_ops", &sandbox.Fault{Kind: sandbox.FaultStall}, herald.OutcomeUnknown, "timeout_after_send", true, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(c *sandbox.Config) {
				if tc.fault != nil {
					c.Faults = []sandbox.Fault{*tc.fault}
				}
			}, 300*time.Millisecond)
			r := b.p.Send(context.Background(), email(tc.to, alert()))
			require.Equal(t, tc.outcome, r.Outcome, "%+v", r)
			require.Equal(t, tc.reason, r.Reason)
			require.Equal(t, tc.partnerSide, r.PartnerSide)
			require.Equal(t, tc.status, r.Status)
			require.Empty(t, r.MessageID)
			if tc.response != "" {
				require.Equal(t, tc.response, r.Response)
			}
			require.NotEmpty(t, r.Error)
		})
	}
}

func TestHiddenFailureIsNotPosted(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) { c.Faults = []sandbox.Fault{{Kind: sandbox.FaultSlackErrorBody, Times: 1}} }, 2*time.Second)
	r := b.p.Send(context.Background(), email("rc_ops", alert()))
	require.Equal(t, herald.OutcomeRejected, r.Outcome)
	require.Equal(t, "error_body", r.Reason)
	require.Equal(t, "invalid_blocks", r.Response)
	require.Contains(t, r.Error, `slack answered 200 with "invalid_blocks"`)
	got := b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.Slack})
	require.False(t, got[0].Accepted, "the sandbox posted nothing")

	require.Equal(t, herald.OutcomeAccepted, b.p.Send(context.Background(), email("rc_ops", alert())).Outcome)
}

func TestThrottled(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Limits = map[sandbox.Partner]sandbox.Rate{sandbox.Slack: {PerSecond: 0.25, Burst: 1}}
	}, 2*time.Second)
	require.Equal(t, herald.OutcomeAccepted, b.p.Send(context.Background(), email("rc_ops", alert())).Outcome)
	r := b.p.Send(context.Background(), email("rc_ops", alert()))
	require.Equal(t, herald.OutcomeThrottled, r.Outcome, "%+v", r)
	require.Equal(t, "rate_limited", r.Reason)
	require.Equal(t, 429, r.Status)
	require.Equal(t, 4*time.Second, r.RetryAfter, "the wait Slack names in Retry-After")
	require.Equal(t, map[string]string{"Retry-After": "4"}, r.RateLimit)
}

func TestTransportFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, 2*time.Second)

	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	r := b.p.Send(ctx, email("rc_ops", alert()))
	require.Equal(t, herald.OutcomeTransient, r.Outcome, "%+v", r)
	require.Equal(t, "timeout", r.Reason, "a timeout before the request was sent")
	require.Empty(t, b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.Slack}))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	p := b.partner(t, destinations{"rc_down": {ID: "rc_down", Type: "slack",
		Details: herald.DestinationDetails{WebhookURL: closed + "/services/T1/B1/" + token}}}, time.Second)
	r = p.Send(context.Background(), email("rc_down", alert()))
	require.Equal(t, herald.OutcomeTransient, r.Outcome, "%+v", r)
	require.Equal(t, "connection", r.Reason)
	require.NotContains(t, r.Error, token)
}

func TestNoDestination(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, 2*time.Second)
	for _, to := range []string{"rc_missing", "rc_pd"} {
		r := b.p.Send(context.Background(), email(to, alert()))
		require.Equal(t, herald.OutcomeRejected, r.Outcome, to)
		require.Equal(t, "no_destination", r.Reason, to)
		require.Contains(t, r.Error, to)
	}
	require.Empty(t, b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.Slack}))

	p := b.partner(t, failing{}, time.Second)
	r := p.Send(context.Background(), email("rc_ops", alert()))
	require.Equal(t, herald.OutcomeTransient, r.Outcome, "herald's store failing is not the destination's fault")
	require.Equal(t, "destination_lookup", r.Reason)

	e := email("rc_ops", alert())
	delete(e.Metadata, herald.MetaDeliveryID)
	r = b.p.Send(context.Background(), e)
	require.Equal(t, herald.OutcomeRejected, r.Outcome)
	require.Equal(t, "encode", r.Reason)
}

type failing struct{}

func (failing) GetDestination(context.Context, string) (herald.Destination, error) {
	return herald.Destination{}, fmt.Errorf("database is locked")
}

// TestTokenNeverShown sends through every kind of answer and checks that
// the webhook URL's token is in no Result field and no span.
func TestTokenNeverShown(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, 300*time.Millisecond)
	send := func(to string, f *sandbox.Fault) herald.Result {
		if f != nil {
			f.Times = 1
			_, err := b.sb.AddFault(*f)
			require.NoError(t, err)
		}
		return b.p.Send(context.Background(), email(to, alert()))
	}
	results := []herald.Result{
		send("rc_ops", nil),
		send("rc_badtoken", nil),
		send("rc_archived", nil),
		send("rc_ops", &sandbox.Fault{Kind: sandbox.FaultSlackErrorBody, Text: "invalid_token"}),
		send("rc_ops", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 500}),
		send("rc_ops", &sandbox.Fault{Kind: sandbox.FaultDropConnection}),
		send("rc_ops", &sandbox.Fault{Kind: sandbox.FaultStall}),
	}
	p := b.partner(t, destinations{"rc_bad_url": {ID: "rc_bad_url", Type: "slack",
		Details: herald.DestinationDetails{WebhookURL: "http://[::1/services/T1/B1/" + token}}}, time.Second)
	results = append(results, p.Send(context.Background(), email("rc_bad_url", alert())))
	for _, r := range results {
		raw, err := json.Marshal(r)
		require.NoError(t, err)
		require.NotContains(t, string(raw), token, "%+v", r)
		require.NotContains(t, string(raw), "/T0001/", "%+v", r)
	}
	spans := b.spans.Ended()
	require.Len(t, spans, len(results))
	for _, s := range spans {
		require.Equal(t, "slack.Send", s.Name())
		require.NotContains(t, s.Status().Description, token)
		for _, kv := range s.Attributes() {
			require.NotContains(t, kv.Value.String(), token, "span attribute %s", kv.Key)
		}
		for _, ev := range s.Events() {
			for _, kv := range ev.Attributes {
				require.NotContains(t, kv.Value.String(), token)
			}
		}
	}
}

// TestRefusesPrivateAddresses: an incoming-webhook URL is the user's
// choice, so one that resolves to a private or loopback address is refused
// at dial time unless allowed; nothing is posted.
func TestRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, 5*time.Second)
	p, err := slack.New(slack.Config{Destinations: destinations{
		"rc_local": {ID: "rc_local", Type: "slack", Details: herald.DestinationDetails{WebhookURL: b.sb.URL + "/services/T1/B1/" + token}},
	}, Clock: b.clock})
	require.NoError(t, err)
	r := p.Send(context.Background(), email("rc_local", alert()))
	require.Equal(t, herald.OutcomeRejected, r.Outcome, "%+v", r)
	require.Equal(t, "forbidden_address", r.Reason)
	require.NotContains(t, r.Error, token)
	require.Empty(t, b.sb.Notifications(sandbox.NotificationFilter{Channel: "slack"}))
}
