package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"herald"
	"herald/clock"
	"herald/provider"
	"herald/provider/webhook"
	"herald/sandbox"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

const (
	secret     = "s3cret-webhook-token-7f1c"
	deliveryID = "dlv_01m86pt8djqkves8nh691mc3pa"
)

// store is an in-memory herald.Destinations: the recipient store, not a
// partner.
type store map[string]herald.Destination

func (s store) GetDestination(_ context.Context, id string) (herald.Destination, error) {
	d, ok := s[id]
	if !ok {
		return herald.Destination{}, herald.Errorf(herald.ENOTFOUND, "recipient %q not found", id)
	}
	return d, nil
}

type bundle struct {
	sb    *sandbox.Running
	clock *clock.Fake
	dests store
	p     *webhook.Provider
	spans *tracetest.SpanRecorder
}

type options struct {
	sandbox func(*sandbox.Config)
	webhook func(*webhook.Config)
}

func setup(t *testing.T, o options) *bundle {
	t.Helper()
	fake := clock.NewFake(t0)
	cfg := sandbox.Config{Clock: fake, Seed: 1}
	if o.sandbox != nil {
		o.sandbox(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); sb.Close() })
	spans := tracetest.NewSpanRecorder()
	b := &bundle{sb: sb, clock: fake, dests: store{}, spans: spans}
	wc := webhook.Config{Destinations: b.dests, AllowNetworks: loopback, Timeout: 2 * time.Second, Clock: fake,
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))}
	if o.webhook != nil {
		o.webhook(&wc)
	}
	b.p, err = webhook.New(wc)
	require.NoError(t, err)
	return b
}

// hook adds a webhook destination posting to the sandbox receiver name and
// returns its id.
func (b *bundle) hook(name string, change func(*herald.DestinationDetails)) string {
	det := herald.DestinationDetails{WebhookName: name, WebhookURL: b.sb.URL + "/_sandbox/hooks/" + name, WebhookSecret: secret}
	if change != nil {
		change(&det)
	}
	id := "rc_" + name
	b.dests[id] = herald.Destination{ID: id, Type: "webhook", Details: det}
	return id
}

func (b *bundle) received(t *testing.T, name string) []sandbox.Notification {
	t.Helper()
	return b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.Webhook, Name: name})
}

func alert() *herald.Alert {
	groups := []herald.AlertGroup{{Group: map[string]any{"http.route": "/cart"}, Result: 1530}, {Group: map[string]any{"http.route": "/pay"}, Result: 420}}
	return &herald.Alert{Version: "v0.1.0", ID: "tr_2x9Qm", Name: "Checkout p99 too slow",
		TriggerDescription: "p99 over 1s for 10 min", TriggerURL: "https://herald.example/triggers/tr_2x9Qm",
		AlertType: "on_change", Status: "TRIGGERED", Summary: "Triggered: Checkout p99 too slow",
		Description: "Currently greater than threshold value (1000) for http.route:/cart (value 1530)",
		Operator:    "greater than", Threshold: 1000, ResultURL: "https://herald.example/results/r1",
		ResultGroups: groups, ResultGroupsTriggered: groups[:1], Dataset: "checkout"}
}

func message(to string) *herald.Email {
	return &herald.Email{To: to, Subject: "Triggered: Checkout p99 too slow", Alert: alert(),
		Metadata: map[string]string{herald.MetaNotificationID: "ntf_01m86pt8djqcdva78j8906sfz2", herald.MetaDeliveryID: deliveryID}}
}

// verify checks a Standard Webhooks signature independently of the package.
func verify(t *testing.T, key []byte, n sandbox.Notification) {
	t.Helper()
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(n.Header.Get("webhook-id") + "." + n.Header.Get("webhook-timestamp") + "." + n.Body))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	require.True(t, hmac.Equal([]byte(want), []byte(n.Header.Get("webhook-signature"))), "signature %q, want %q", n.Header.Get("webhook-signature"), want)
}

func TestDefaultPayloadAndHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	id := b.hook("ops", func(d *herald.DestinationDetails) {
		d.WebhookHeaders = []herald.WebhookHeader{{Header: "Authorization", Value: "Bearer custom-header-value"}}
	})
	r := b.p.Send(context.Background(), message(id))
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, "%+v", r)
	require.Equal(t, "ok", r.Reason)
	require.Equal(t, 200, r.Status)
	require.Equal(t, deliveryID, r.MessageID)

	got := b.received(t, "ops")
	require.Len(t, got, 1)
	n := got[0]
	require.Equal(t, http.MethodPost, n.Method)
	require.Equal(t, "application/json", n.Header.Get("Content-Type"))
	require.Equal(t, "herald-webhook", n.Header.Get("User-Agent"))
	require.Equal(t, secret, n.Header.Get("X-Honeycomb-Webhook-Token"))
	require.Equal(t, deliveryID, n.Header.Get("X-Honeycomb-Webhook-Delivery-ID"))
	require.Equal(t, deliveryID, n.Header.Get("webhook-id"))
	require.Equal(t, strconv.FormatInt(t0.Unix(), 10), n.Header.Get("webhook-timestamp"))
	require.Equal(t, "Bearer custom-header-value", n.Header.Get("Authorization"))
	verify(t, []byte(secret), n)

	want, err := json.Marshal(alert())
	require.NoError(t, err)
	var payload map[string]any
	require.NoError(t, json.Unmarshal(want, &payload))
	payload["shared_secret"] = secret
	want, err = json.Marshal(payload)
	require.NoError(t, err)
	require.JSONEq(t, string(want), n.Body)
	require.True(t, n.Accepted)
}

func TestDeliveryIDStableAcrossRetries(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	id := b.hook("dedupe", nil)
	require.Equal(t, herald.OutcomeAccepted, b.p.Send(context.Background(), message(id)).Outcome)
	b.clock.Advance(30 * time.Second)
	require.Equal(t, herald.OutcomeAccepted, b.p.Send(context.Background(), message(id)).Outcome)

	got := b.received(t, "dedupe")
	require.Len(t, got, 2)
	for _, n := range got {
		require.Equal(t, deliveryID, n.Header.Get("X-Honeycomb-Webhook-Delivery-ID"))
		require.Equal(t, deliveryID, n.Header.Get("webhook-id"))
		verify(t, []byte(secret), n)
	}
	require.Equal(t, strconv.FormatInt(t0.Add(30*time.Second).Unix(), 10), got[1].Header.Get("webhook-timestamp"),
		"the timestamp is the attempt's, from the injected clock")
}

func TestStandardWebhooksSecret(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	key := []byte("0123456789abcdef0123456789abcdef")
	id := b.hook("whsec", func(d *herald.DestinationDetails) {
		d.WebhookSecret = "whsec_" + base64.StdEncoding.EncodeToString(key)
	})
	r := b.p.Send(context.Background(), message(id))
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, "%+v", r)
	got := b.received(t, "whsec")
	require.Len(t, got, 1)
	verify(t, key, got[0])

	bad := b.hook("badsec", func(d *herald.DestinationDetails) { d.WebhookSecret = "whsec_!!not base64!!" })
	r = b.p.Send(context.Background(), message(bad))
	require.Equal(t, herald.OutcomeRejected, r.Outcome)
	require.Equal(t, "validation", r.Reason)
	require.NotContains(t, r.Error, "!!not base64!!")
	require.Empty(t, b.received(t, "badsec"))
}

func TestNoSecretNoSignature(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	id := b.hook("open", func(d *herald.DestinationDetails) { d.WebhookSecret = "" })
	r := b.p.Send(context.Background(), message(id))
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, "%+v", r)
	got := b.received(t, "open")
	require.Len(t, got, 1)
	n := got[0]
	require.Empty(t, n.Header.Values("X-Honeycomb-Webhook-Token"))
	require.Empty(t, n.Header.Values("webhook-signature"))
	require.Equal(t, deliveryID, n.Header.Get("webhook-id"))
	var body map[string]any
	require.NoError(t, json.Unmarshal([]byte(n.Body), &body))
	require.NotContains(t, body, "shared_secret")
	require.Equal(t, "v0.1.0", body["version"])
}

const customTemplate = `{
  "title": {{ toJson .Name }},
  "id": "{{ .ID }}",
  "description": {{ toJson .Description }},
  "url": "{{ .URL }}",
  "datasets": {{ toJson .Datasets }},
  "rule": "{{ .Operator }} {{ .Threshold }}",
  "result_url": "{{ .Result.URL }}",
  "all": {{ toJson .Result.Groups }},
  "groups": [{{ range $i, $g := .Result.GroupsTriggered }}{{ if $i }},{{ end }}{"route": {{ toJson (index $g.Group "http.route") }}, "value": {{ $g.Result }}}{{ end }}],
  "summary": {{ toJson .Alert.Summary }},
  "status": "{{ .Alert.Status }}",
  "test": {{ .Alert.IsTest }},
  "severity": "{{ .Vars.severity }}",
  "team": "{{ .Vars.team }}"
}`

func TestCustomTemplate(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	id := b.hook("custom", func(d *herald.DestinationDetails) {
		var p herald.WebhookPayloads
		require.NoError(t, json.Unmarshal([]byte(`{"template_variables": [{"name": "severity", "default_value": "critical"}, {"name": "team", "default_value": "core"}],
			"payload_templates": {"trigger": {"body": `+strconv.Quote(customTemplate)+`}}}`), &p))
		d.WebhookPayloads = &p
	})
	e := message(id)
	e.Options = &herald.RecipientOptions{Variables: []herald.TemplateVariable{{Name: "severity", Value: "warning"}}}
	r := b.p.Send(context.Background(), e)
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, "%+v", r)

	got := b.received(t, "custom")
	require.Len(t, got, 1)
	require.JSONEq(t, `{
	  "title": "Checkout p99 too slow", "id": "tr_2x9Qm", "description": "p99 over 1s for 10 min",
	  "url": "https://herald.example/triggers/tr_2x9Qm", "datasets": ["checkout"], "rule": "greater than 1000",
	  "result_url": "https://herald.example/results/r1",
	  "all": [{"Group": {"http.route": "/cart"}, "Result": 1530}, {"Group": {"http.route": "/pay"}, "Result": 420}],
	  "groups": [{"route": "/cart", "value": 1530}],
	  "summary": "Triggered: Checkout p99 too slow", "status": "TRIGGERED", "test": false,
	  "severity": "warning", "team": "core"}`, got[0].Body)
	require.NotContains(t, got[0].Body, secret, "a template's body holds only what it names")
	require.Equal(t, secret, got[0].Header.Get("X-Honeycomb-Webhook-Token"))
	verify(t, []byte(secret), got[0])
}

func TestBadTemplates(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	for name, tmpl := range map[string]string{
		"parse":    `{"title": {{ .Name }`,
		"execute":  `{"x": "{{ .Vars.undeclared }}"}`,
		"function": `{"x": {{ toJson .Name | nosuch }}}`,
		"not_json": `title: {{ .Name }}`,
		"quotes":   `{"title": "{{ .Name }} said "hi""}`,
	} {
		t.Run(name, func(t *testing.T) {
			id := b.hook("bad-"+name, func(d *herald.DestinationDetails) {
				d.WebhookPayloads = &herald.WebhookPayloads{}
				require.NoError(t, json.Unmarshal([]byte(`{"payload_templates": {"trigger": {"body": `+strconv.Quote(tmpl)+`}}}`), d.WebhookPayloads))
			})
			r := b.p.Send(context.Background(), message(id))
			require.Equal(t, herald.OutcomeRejected, r.Outcome)
			require.Equal(t, "template", r.Reason)
			require.Contains(t, r.Error, "template")
			require.NotContains(t, r.Error, secret)
			require.Empty(t, b.received(t, "bad-"+name), "nothing is posted")
		})
	}
}

func TestSSRFGuard(t *testing.T) {
	t.Parallel()
	closed := setup(t, options{webhook: func(c *webhook.Config) { c.AllowNetworks = nil }})
	id := closed.hook("guarded", nil)
	r := closed.p.Send(context.Background(), message(id))
	require.Equal(t, herald.OutcomeRejected, r.Outcome, "%+v", r)
	require.Equal(t, "forbidden_address", r.Reason)
	require.Contains(t, r.Error, "127.0.0.1")
	require.Contains(t, r.Error, "loopback")
	require.Empty(t, closed.received(t, "guarded"), "the guard refuses before connecting")

	// A name that resolves to loopback is judged by the address it resolves to.
	port := strings.TrimPrefix(closed.sb.URL, "http://127.0.0.1:")
	named := closed.hook("named", func(d *herald.DestinationDetails) {
		d.WebhookURL = "http://localhost:" + port + "/_sandbox/hooks/named?token=query-secret-value"
	})
	r = closed.p.Send(context.Background(), message(named))
	require.Equal(t, "forbidden_address", r.Reason, "%+v", r)
	require.Contains(t, r.Error, "loopback")
	require.Contains(t, r.Error, "host localhost")
	require.NotContains(t, r.Error+r.Request, "query-secret-value")
	require.Empty(t, closed.received(t, "named"))

	// Cloud metadata endpoints are link-local: refused without a packet sent.
	meta := closed.hook("metadata", func(d *herald.DestinationDetails) { d.WebhookURL = "http://169.254.169.254/latest/meta-data/" })
	r = closed.p.Send(context.Background(), message(meta))
	require.Equal(t, "forbidden_address", r.Reason, "%+v", r)
	require.Contains(t, r.Error, "169.254.169.254")

	open := setup(t, options{}) // AllowNetworks 127.0.0.0/8
	id = open.hook("allowed", nil)
	require.Equal(t, herald.OutcomeAccepted, open.p.Send(context.Background(), message(id)).Outcome)
	require.Len(t, open.received(t, "allowed"), 1)
}

func TestCheckAddress(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"127.0.0.1": "loopback", "::1": "loopback", "::ffff:127.0.0.1": "loopback",
		"10.1.2.3": "private", "172.16.0.1": "private", "192.168.1.1": "private", "fc00::1": "private", "fd12:3456::1": "private",
		"169.254.169.254": "link-local", "fe80::1": "link-local",
		"0.0.0.0": "unspecified", "::": "unspecified", "0.1.2.3": "unspecified",
		"224.0.0.1": "multicast", "ff02::1": "multicast",
		"100.64.0.1": "cgnat", "100.127.255.254": "cgnat",
		"8.8.8.8": "", "2001:4860:4860::8888": "", "100.128.0.1": "", "172.32.0.1": "",
	} {
		err := provider.CheckAddress(netip.MustParseAddr(addr), nil)
		if want == "" {
			require.NoError(t, err, addr)
			continue
		}
		var fe *provider.ForbiddenAddressError
		require.ErrorAs(t, err, &fe, addr)
		require.Equal(t, want, fe.Range, addr)
	}
	allow := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	require.NoError(t, provider.CheckAddress(netip.MustParseAddr("10.1.2.3"), allow))
	require.NoError(t, provider.CheckAddress(netip.MustParseAddr("fd12::1"), allow))
	require.Error(t, provider.CheckAddress(netip.MustParseAddr("192.168.1.1"), allow))
}

func TestClassifiesEveryAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		fault   sandbox.Fault
		timeout time.Duration
		outcome herald.Outcome
		reason  string
		status  int
	}{
		{"500", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 500}, 0, herald.OutcomeTransient, "server_error", 500},
		{"502", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 502}, 0, herald.OutcomeTransient, "server_error", 502},
		{"nginx 502 page", sandbox.Fault{Kind: sandbox.FaultGateway502}, 0, herald.OutcomeTransient, "server_error", 502},
		{"503 without Retry-After", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 503}, 0, herald.OutcomeTransient, "server_error", 503},
		{"408", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 408}, 0, herald.OutcomeTransient, "timeout", 408},
		{"404", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 404}, 0, herald.OutcomeRejected, "status_4xx", 404},
		{"401", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 401}, 0, herald.OutcomeRejected, "auth", 401},
		{"429 with Retry-After", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 429}, 0, herald.OutcomeThrottled, "rate_limited", 429},
		{"dropped after the request", sandbox.Fault{Kind: sandbox.FaultDropConnection}, 0, herald.OutcomeUnknown, "connection_lost_after_send", 0},
		{"stalled past the timeout", sandbox.Fault{Kind: sandbox.FaultStall}, 300 * time.Millisecond, herald.OutcomeUnknown, "timeout_after_send", 0},
		{"slow but in time", sandbox.Fault{Kind: sandbox.FaultLatency, Delay: sandbox.Duration(50 * time.Millisecond)}, 0, herald.OutcomeAccepted, "ok", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fault.Partner = sandbox.Webhook
			b := setup(t, options{
				sandbox: func(c *sandbox.Config) { c.Faults = []sandbox.Fault{tc.fault} },
				webhook: func(c *webhook.Config) {
					if tc.timeout > 0 {
						c.Timeout = tc.timeout
					}
				},
			})
			id := b.hook("classify", nil)
			r := b.p.Send(context.Background(), message(id))
			require.Equal(t, tc.outcome, r.Outcome, "%+v", r)
			require.Equal(t, tc.reason, r.Reason)
			require.Equal(t, tc.status, r.Status)
			if tc.outcome == herald.OutcomeAccepted {
				require.Equal(t, deliveryID, r.MessageID)
			} else {
				require.Empty(t, r.MessageID)
				require.NotEmpty(t, r.Error)
			}
			if tc.outcome == herald.OutcomeThrottled {
				require.Equal(t, time.Second, r.RetryAfter)
			}
			if tc.status == 404 {
				require.Contains(t, r.Response, "Not Found", "the answer's excerpt is kept")
			}
			require.Len(t, b.received(t, "classify"), 1, "the receiver saw the request")
		})
	}
}

func TestRateLimitedReceiver(t *testing.T) {
	t.Parallel()
	b := setup(t, options{sandbox: func(c *sandbox.Config) {
		c.Limits = map[sandbox.Partner]sandbox.Rate{sandbox.Webhook: {PerSecond: 1, Burst: 1}}
	}})
	id := b.hook("limited", nil)
	require.Equal(t, herald.OutcomeAccepted, b.p.Send(context.Background(), message(id)).Outcome)
	r := b.p.Send(context.Background(), message(id))
	require.Equal(t, herald.OutcomeThrottled, r.Outcome, "%+v", r)
	require.Equal(t, time.Second, r.RetryAfter)
	require.Equal(t, "1", r.RateLimit["Retry-After"])
}

// TestClassifyRetryAfter covers answers the sandbox's receiver does not give:
// a 503 naming a wait, a 429 naming none, and redirects.
func TestClassifyRetryAfter(t *testing.T) {
	t.Parallel()
	now := t0
	with := func(status int, h ...string) provider.Exchange {
		x := provider.Exchange{Sent: true, Status: status, Header: http.Header{}, Body: []byte(`{}`)}
		for i := 0; i < len(h); i += 2 {
			x.Header.Set(h[i], h[i+1])
		}
		return x
	}
	r := webhook.Classify(with(503, "Retry-After", "120"), deliveryID, now)
	require.Equal(t, herald.OutcomeThrottled, r.Outcome)
	require.Equal(t, "unavailable", r.Reason)
	require.Equal(t, 2*time.Minute, r.RetryAfter)

	r = webhook.Classify(with(503, "Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)), deliveryID, now)
	require.Equal(t, herald.OutcomeThrottled, r.Outcome)
	require.Equal(t, 90*time.Second, r.RetryAfter)

	r = webhook.Classify(with(429), deliveryID, now)
	require.Equal(t, herald.OutcomeTransient, r.Outcome)
	require.Equal(t, "rate_limited", r.Reason)
	require.Zero(t, r.RetryAfter)

	for _, s := range []int{301, 302, 307, 308} {
		r = webhook.Classify(with(s, "Location", "http://169.254.169.254/"), deliveryID, now)
		require.Equal(t, herald.OutcomeRejected, r.Outcome, s)
		require.Equal(t, "redirect", r.Reason)
	}

	r = webhook.Classify(with(204), deliveryID, now)
	require.Equal(t, herald.OutcomeAccepted, r.Outcome)
	require.Equal(t, deliveryID, r.MessageID)
}

func TestNoDestination(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	b.dests["rc_email"] = herald.Destination{ID: "rc_email", Type: "email", Details: herald.DestinationDetails{EmailAddress: "oncall@example.com"}}
	for _, to := range []string{"rc_missing", "rc_email", ""} {
		r := b.p.Send(context.Background(), message(to))
		require.Equal(t, herald.OutcomeRejected, r.Outcome, to)
		require.Equal(t, "no_destination", r.Reason, to)
		require.NotEmpty(t, r.Error)
	}
	require.Empty(t, b.received(t, ""))
}

func TestNoAlert(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	id := b.hook("plain", nil)
	e := message(id)
	e.Alert = nil
	r := b.p.Send(context.Background(), e)
	require.Equal(t, herald.OutcomeRejected, r.Outcome)
	require.Equal(t, "validation", r.Reason)
	require.Empty(t, b.received(t, "plain"))
}

func TestSecretsReachNoResultOrSpan(t *testing.T) {
	t.Parallel()
	const headerValue = "Bearer header-secret-9d2e"
	const querySecret = "query-secret-4b8a"
	b := setup(t, options{sandbox: func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Partner: sandbox.Webhook, Kind: sandbox.FaultStatus, Status: 400, Times: 1}}
	}})
	details := func(d *herald.DestinationDetails) {
		d.WebhookURL += "?token=" + querySecret
		d.WebhookHeaders = []herald.WebhookHeader{{Header: "Authorization", Value: headerValue}}
	}
	rejected := b.hook("rejected", details)
	accepted := b.hook("accepted", details)
	badTemplate := b.hook("template", func(d *herald.DestinationDetails) {
		details(d)
		d.WebhookPayloads = &herald.WebhookPayloads{}
		require.NoError(t, json.Unmarshal([]byte(`{"payload_templates": {"trigger": {"body": "{\"x\": {{ .Nope }}}"}}}`), d.WebhookPayloads))
	})
	unreachable := b.hook("unreachable", func(d *herald.DestinationDetails) {
		details(d)
		d.WebhookURL = "http://127.0.0.1:1/hook?token=" + querySecret
	})
	p, err := webhook.New(webhook.Config{Destinations: b.dests, TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b.spans))})
	require.NoError(t, err)

	var results []herald.Result
	for _, id := range []string{rejected, accepted, badTemplate, unreachable} {
		results = append(results, b.p.Send(context.Background(), message(id)))
	}
	results = append(results, p.Send(context.Background(), message(accepted))) // forbidden_address
	reasons := []string{}
	for _, r := range results {
		reasons = append(reasons, r.Reason)
		text := fmt.Sprintf("%+v", r)
		for _, s := range []string{secret, headerValue, querySecret} {
			require.NotContains(t, text, s, "reason %s", r.Reason)
		}
	}
	require.Equal(t, []string{"status_4xx", "ok", "template", "connection", "forbidden_address"}, reasons)
	require.Contains(t, results[0].Request, "/_sandbox/hooks/rejected body=")
	require.Contains(t, results[0].Request, "POST http://127.0.0.1:")

	spans := b.spans.Ended()
	require.Len(t, spans, 5)
	for _, s := range spans {
		require.Equal(t, "webhook.Send", s.Name())
		for _, a := range s.Attributes() {
			for _, sec := range []string{secret, headerValue, querySecret} {
				require.NotContains(t, a.Value.String(), sec, string(a.Key))
			}
		}
	}
	// The receiver got the secrets it is owed.
	got := b.received(t, "accepted")
	require.Len(t, got, 1)
	require.Equal(t, headerValue, got[0].Header.Get("Authorization"))
	require.Equal(t, "token="+querySecret, got[0].Query)
}

func TestNew(t *testing.T) {
	t.Parallel()
	_, err := webhook.New(webhook.Config{})
	require.ErrorContains(t, err, "destinations are required")
	p, err := webhook.New(webhook.Config{Destinations: store{}})
	require.NoError(t, err)
	require.Equal(t, "webhook", p.Name())
	require.Equal(t, "webhook", p.Kind())
	require.NoError(t, p.CheckMetadata(map[string]string{"any": "thing"}))
	var _ herald.Provider = p
}
