// Package slack posts herald's trigger notifications to Slack incoming
// webhooks, with a client of herald's own (docs/adr/0001). Success is decided
// from the whole response: Slack answers a posted message 200 with the body
// "ok", and some failures 200 with an error word instead ("invalid_blocks",
// "no_text", …), which a client reading only the status takes for success.
//
// API: https://api.slack.com/messaging/webhooks (the "Handling errors"
// table), https://api.slack.com/apis/rate-limits (one message a second per
// webhook; 429 with Retry-After) and https://api.slack.com/block-kit.
//
// An incoming webhook URL carries its secret in its path
// (/services/{team}/{hook}/{token}). It is read from the destination at send
// time and never reaches a Result, a span or an error: requests are summarized
// as the host and "/services/…". For that reason the adapter does not use the
// shared otelhttp transport, whose client span records the full URL; it makes
// its own client span, slack.Send, with the host only.
package slack

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"herald"
	"herald/clock"
	"herald/provider"
)

// Config configures a Slack channel.
type Config struct {
	// Name is the partner's configured name. Defaults to "slack".
	Name string
	// Destinations looks up the incoming webhook URL of the destination an
	// email's To names. Required.
	Destinations herald.Destinations
	// AllowNetworks are the private networks an incoming-webhook URL may
	// resolve to; any other private, loopback or link-local address is
	// refused (provider.GuardedClient).
	AllowNetworks []netip.Prefix
	// Timeout bounds one send. Defaults to 10s.
	Timeout time.Duration
	// TracerProvider makes the client span of each send. Defaults to the
	// global tracer provider.
	TracerProvider trace.TracerProvider
	// Clock reads the time for Retry-After dates. Defaults to clock.Real().
	Clock clock.Clock
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c Config) WithDefaults() Config {
	c.Name = cmp.Or(c.Name, "slack")
	c.Timeout = cmp.Or(c.Timeout, 10*time.Second)
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Destinations == nil:
		return fmt.Errorf("slack %s: destinations are required", c.Name)
	case c.Timeout < 0:
		return fmt.Errorf("slack %s: timeout must not be negative", c.Name)
	}
	return nil
}

// Provider is a Slack channel. It is safe for concurrent use.
type Provider struct {
	cfg    Config
	http   *http.Client
	tracer trace.Tracer
}

// New returns a Slack channel for cfg, or an error naming the first setting
// it cannot use.
func New(cfg Config) (*Provider, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// Not otelhttp: its span would record the URL, token included. The
	// URL is the user's choice, so every dial passes the SSRF guard.
	client := provider.GuardedClient(cfg.Timeout, cfg.AllowNetworks)
	return &Provider{cfg: cfg, http: client, tracer: cfg.TracerProvider.Tracer("herald/provider/slack")}, nil
}

// Name returns the configured name.
func (p *Provider) Name() string { return p.cfg.Name }

// Kind returns "slack".
func (p *Provider) Kind() string { return "slack" }

// CheckMetadata accepts any metadata: none of it is sent to Slack, whose
// incoming webhooks carry a message only. herald matches a Slack attempt
// to its delivery by the delivery id, which it keeps as the message id.
func (p *Provider) CheckMetadata(map[string]string) error { return nil }

// Send makes one attempt to post e to the incoming webhook of the
// destination e.To names. A destination that does not exist or is not a
// Slack one is rejected ("no_destination") without a request; a failure to
// read it is transient ("destination_lookup"). e.Metadata must hold
// herald.MetaDeliveryID: Slack returns no id of its own, so the delivery id
// is the accepted message's id.
func (p *Provider) Send(ctx context.Context, e *herald.Email) herald.Result {
	ctx, span := p.tracer.Start(ctx, "slack.Send", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("herald.partner", p.cfg.Name), attribute.String("herald.destination_id", e.To)))
	defer span.End()
	r := p.send(ctx, e, span)
	provider.RecordResult(span, r, "http.response.status_code")
	return r
}

func (p *Provider) send(ctx context.Context, e *herald.Email, span trace.Span) herald.Result {
	dest, r, ok := p.destination(ctx, e.To)
	if !ok {
		return r
	}
	hook, err := url.Parse(dest.Details.WebhookURL)
	if err != nil || (hook.Scheme != "https" && hook.Scheme != "http") || hook.Host == "" {
		// url.Parse's error quotes the URL: never show it.
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "no_destination", PartnerSide: true,
			Error: fmt.Sprintf("slack: destination %q has no usable incoming webhook URL", e.To)}
	}
	secrets := secretsOf(dest.Details.WebhookURL, hook)
	span.SetAttributes(attribute.String("server.address", hook.Hostname()), attribute.String("http.request.method", http.MethodPost))
	if dest.Details.SlackChannel != "" {
		span.SetAttributes(attribute.String("herald.slack.channel", dest.Details.SlackChannel))
	}
	summary := provider.Summary(http.MethodPost, Redact(hook), 0, nil)
	deliveryID := e.Metadata[herald.MetaDeliveryID]
	if deliveryID == "" {
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "encode", Request: summary,
			Error: "slack: the email has no " + herald.MetaDeliveryID + ": it is the accepted message's id, as Slack returns none"}
	}
	body, err := Payload(e)
	if err != nil {
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "encode", Request: summary, Error: "slack: " + err.Error()}
	}
	summary = provider.Summary(http.MethodPost, Redact(hook), len(body), nil)
	if dest.Details.SlackChannel != "" {
		summary += " channel=" + dest.Details.SlackChannel
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.String(), bytes.NewReader(body))
	if err != nil {
		return provider.Scrub(herald.Result{Outcome: herald.OutcomeRejected, Reason: "no_destination", Request: summary, PartnerSide: true,
			Error: "slack: build request: " + err.Error()}, secrets...)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "herald")
	r = Classify(provider.Do(p.http, req), deliveryID, p.cfg.Clock.Now())
	r.Request = summary
	return provider.Scrub(r, secrets...)
}

// destination reads the destination id names; ok is false, with the result
// to return, when there is none to send to.
func (p *Provider) destination(ctx context.Context, id string) (herald.Destination, herald.Result, bool) {
	return provider.LookupDestination(ctx, p.cfg.Destinations, id, "slack")
}

// Redact words an incoming webhook URL without its secret: the scheme, the
// host and the first segment of the path, e.g.
// "https://hooks.slack.com/services/…".
func Redact(u *url.URL) string {
	first, _, _ := strings.Cut(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	if first == "" {
		return u.Scheme + "://" + u.Host + "/…"
	}
	return u.Scheme + "://" + u.Host + "/" + first + "/…"
}

// secretsOf lists the strings of a webhook URL that must not appear in a
// result: the URL, its path and, when it is long enough not to be an
// ordinary word, its last segment (the token).
func secretsOf(raw string, u *url.URL) []string {
	secrets := []string{raw, u.String()}
	for _, path := range []string{u.Path, u.EscapedPath()} {
		if len(path) > 1 {
			secrets = append(secrets, path)
		}
		if token := path[strings.LastIndexByte(path, '/')+1:]; len(token) >= 8 {
			secrets = append(secrets, token)
		}
	}
	return secrets
}

// Slack's error words (https://api.slack.com/messaging/webhooks#handling_errors),
// each the reason of the refusal it names. Those marked true are failures
// of the webhook rather than of the message: another channel may succeed.
var errorWords = map[string]bool{
	"invalid_payload":                   false,
	"no_text":                           false,
	"invalid_blocks":                    false,
	"invalid_blocks_format":             false,
	"too_many_attachments":              false,
	"request_too_large":                 false,
	"invalid_token":                     true,
	"no_service":                        true,
	"no_service_id":                     true,
	"no_team":                           true,
	"team_disabled":                     true,
	"invalid_team":                      true,
	"channel_not_found":                 true,
	"channel_is_archived":               true,
	"action_prohibited":                 true,
	"posting_to_general_channel_denied": true,
	"no_active_hooks":                   true,
	"user_not_found":                    true,
}

// word returns body when it has the shape of a Slack error word (lower-case
// letters, digits and underscores), or "".
func word(body []byte) string {
	w := strings.TrimSpace(string(body))
	if w == "" || len(w) > 64 {
		return ""
	}
	for _, c := range w {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return ""
		}
	}
	return w
}

// Classify decides the outcome of one webhook exchange from the whole
// response. deliveryID becomes the accepted message's id.
//
//   - 200 "ok": accepted.
//   - 200 with an error word ("invalid_blocks", …): rejected, reason
//     "error_body" — nothing was posted although the status says success.
//   - 200 with an empty or other body (a proxy's page), or another 2xx:
//     unknown, "unexpected_body" — Slack did not say whether it posted.
//   - 429: throttled, with the Retry-After Slack names.
//   - 5xx: transient.
//   - 400, 403, 404, 410 and other 4xx: rejected, the reason Slack's error
//     word when it is a documented one ("invalid_payload", "invalid_token",
//     "no_service", "channel_is_archived", …); a failure of the webhook
//     itself (invalid_token, no_service, channel_is_archived, …) is on the
//     partner's side.
func Classify(x provider.Exchange, deliveryID string, now time.Time) herald.Result {
	var forbidden *provider.ForbiddenAddressError
	if errors.As(x.Err, &forbidden) {
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "forbidden_address",
			Error: fmt.Sprintf("slack: refused to connect to %s (%s address): not in webhooks.allow_networks", forbidden.Addr, forbidden.Range)}
	}
	if x.Err != nil {
		return provider.TransportFailure(x)
	}
	r := herald.Result{Status: x.Status, Response: provider.Excerpt(x.Body), RateLimit: provider.RateLimitHeaders(x.Header)}
	w := word(x.Body)
	switch {
	case x.Status == http.StatusOK && string(x.Body) == "ok":
		r.Outcome, r.Reason, r.MessageID = herald.OutcomeAccepted, "ok", deliveryID
	case x.Status == http.StatusOK && w != "" && w != "ok":
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "error_body", errorWords[w]
		r.Error = fmt.Sprintf("slack answered 200 with %q instead of \"ok\": the message was not posted", w)
	case x.Status >= 200 && x.Status < 300:
		r.Outcome, r.Reason = herald.OutcomeUnknown, "unexpected_body"
		r.Error = fmt.Sprintf("slack answered %d without its \"ok\" body: whether the message was posted is unknown", x.Status)
	case x.Status >= 300 && x.Status < 400:
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "redirect", true
		r.Error = fmt.Sprintf("slack answered %d, a redirect: the webhook URL is not an incoming webhook", x.Status)
	default:
		r.Outcome, r.Reason, r.PartnerSide = provider.ByStatus(x.Status)
		if partnerSide, known := errorWords[w]; known && x.Status < 500 && r.Outcome == herald.OutcomeRejected {
			r.Reason, r.PartnerSide = w, partnerSide
		}
		if r.Outcome == herald.OutcomeThrottled {
			r.RetryAfter = provider.RetryAfter(x.Header, now)
		}
		if w != "" {
			r.Error = fmt.Sprintf("slack %d %s", x.Status, w)
		} else {
			r.Error = fmt.Sprintf("slack %d with a body that is not one of its error words", x.Status)
		}
	}
	return r
}

// Block Kit's limits (https://api.slack.com/reference/block-kit/blocks).
const (
	maxHeader  = 150  // a header block's text
	maxSection = 3000 // a section's text
	maxField   = 2000 // one field of a section
	maxFields  = 10   // fields in a section
	maxURL     = 3000 // a button's url
)

type message struct {
	Text   string  `json:"text"`
	Blocks []block `json:"blocks,omitempty"`
}

type block struct {
	Type     string `json:"type"`
	Text     *text  `json:"text,omitempty"`
	Fields   []text `json:"fields,omitempty"`
	Elements []any  `json:"elements,omitempty"`
}

type text struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

type button struct {
	Type     string `json:"type"`
	Text     text   `json:"text"`
	URL      string `json:"url"`
	ActionID string `json:"action_id"`
}

// statusWords are an alert status's emoji and words.
var statusWords = map[string][2]string{
	"TRIGGERED": {":red_circle:", "Triggered"},
	"OK":        {":large_green_circle:", "Resolved"},
	"NO_DATA":   {":grey_question:", "No data"},
	"ERROR":     {":warning:", "Query failed"},
}

// Payload returns the incoming-webhook body for e. With an Alert it is a
// Block Kit message: a header with the status and summary, a section with
// the description and the value against the threshold, up to 10 breached
// groups as fields, the dataset as context and buttons to the trigger and
// its results; its text, the summary, is what notifications and clients
// without blocks show. Without an Alert it is e.Subject and e.Text as
// text. Text from the alert is escaped, so it cannot mention or link.
func Payload(e *herald.Email) ([]byte, error) {
	if e.Alert == nil {
		t := strings.TrimSpace(strings.TrimSpace(e.Subject) + "\n" + strings.TrimSpace(e.Text))
		if t == "" {
			return nil, errors.New("the message has neither a subject nor text")
		}
		return json.Marshal(message{Text: escape(t)})
	}
	a := e.Alert
	status := strings.ToUpper(strings.TrimSpace(a.Status))
	words, known := statusWords[status]
	if !known {
		words = [2]string{":bell:", cmp.Or(a.Status, "Alert")}
	}
	title := Title(a)
	blocks := []block{{Type: "header", Text: &text{Type: "plain_text", Text: truncate(words[0]+" "+title, maxHeader), Emoji: true}}}

	var lines []string
	if d := strings.TrimSpace(a.Description); d != "" {
		lines = append(lines, escape(d))
	}
	if vs := valueVsThreshold(a, status); vs != "" {
		lines = append(lines, vs)
	}
	if len(lines) > 0 {
		blocks = append(blocks, block{Type: "section", Text: &text{Type: "mrkdwn", Text: truncate(strings.Join(lines, "\n"), maxSection)}})
	}

	if groups := a.ResultGroupsTriggered; len(groups) > 0 {
		head := fmt.Sprintf("*%d groups breached*", len(groups))
		switch {
		case len(groups) == 1:
			head = "*1 group breached*"
		case len(groups) > maxFields:
			head = fmt.Sprintf("*%d groups breached*, the first %d:", len(groups), maxFields)
		}
		sec := block{Type: "section", Text: &text{Type: "mrkdwn", Text: head}}
		for _, g := range groups[:min(len(groups), maxFields)] {
			sec.Fields = append(sec.Fields, text{Type: "mrkdwn", Text: truncate(escape(groupLabel(g.Group))+" → "+number(g.Result), maxField)})
		}
		blocks = append(blocks, sec)
	}

	if a.Dataset != "" {
		blocks = append(blocks, block{Type: "context", Elements: []any{text{Type: "mrkdwn", Text: "Dataset *" + escape(a.Dataset) + "* · sent by herald"}}})
	}
	var buttons []any
	for _, l := range []struct{ label, url, id string }{
		{"View trigger", a.TriggerURL, "herald_trigger"},
		{"View results", a.ResultURL, "herald_results"},
	} {
		if l.url != "" && len(l.url) <= maxURL {
			buttons = append(buttons, button{Type: "button", Text: text{Type: "plain_text", Text: l.label}, URL: l.url, ActionID: l.id})
		}
	}
	if len(buttons) > 0 {
		blocks = append(blocks, block{Type: "actions", Elements: buttons})
	}
	return json.Marshal(message{Text: escape(title), Blocks: blocks})
}

// Title is the one-line account of an alert: its summary, said with its
// status's words when the summary does not already start with them
// ("No data: Checkout p99 too slow"), and "TRIGGER TEST: " first for a
// test.
func Title(a *herald.Alert) string {
	const test = "TRIGGER TEST: "
	s := strings.TrimSpace(a.Summary)
	if len(s) >= len(test) && strings.EqualFold(s[:len(test)], test) {
		s = strings.TrimSpace(s[len(test):])
	}
	if words, ok := statusWords[strings.ToUpper(strings.TrimSpace(a.Status))]; ok && !strings.HasPrefix(strings.ToLower(s), strings.ToLower(words[1])) {
		switch {
		case s != "":
			s = words[1] + ": " + s
		case a.Name != "":
			s = words[1] + ": " + a.Name
		default:
			s = words[1]
		}
	}
	s = cmp.Or(s, a.Name, "Alert")
	if a.IsTest {
		s = test + s
	}
	return s
}

// valueVsThreshold says the worst value against the threshold, e.g.
// "*Value:* 1530 vs threshold: greater than 1000".
func valueVsThreshold(a *herald.Alert, status string) string {
	op := strings.TrimSpace(a.Operator)
	if w := herald.OperatorWords(op); w != "" {
		op = w // herald's own alerts may carry the symbol
	}
	threshold := "*Threshold:* " + strings.TrimSpace(escape(op)+" "+number(a.Threshold))
	if status == "NO_DATA" || status == "ERROR" {
		return threshold
	}
	groups := a.ResultGroupsTriggered
	if len(groups) == 0 {
		groups = a.ResultGroups
	}
	if len(groups) == 0 {
		return threshold
	}
	return "*Value:* " + number(groups[0].Result) + " vs threshold: " + strings.TrimSpace(escape(op)+" "+number(a.Threshold))
}

// groupLabel words a group as "key=value, key=value", keys sorted; a result
// without breakdowns is "all".
func groupLabel(g map[string]any) string {
	if len(g) == 0 {
		return "all"
	}
	parts := make([]string, 0, len(g))
	for _, k := range slices.Sorted(maps.Keys(g)) {
		v := g[k]
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case float64:
			s = number(v)
		case nil:
			s = "(none)"
		default:
			s = fmt.Sprint(v)
		}
		parts = append(parts, k+"="+s)
	}
	return strings.Join(parts, ", ")
}

// number words a value without float noise: 1530, 0.3, 12.3457.
func number(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	if math.Abs(v) < 1e15 {
		v = math.Round(v*1e4) / 1e4
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// escape makes text safe in Slack's mrkdwn: &, < and > are the only
// characters it requires escaped, and escaping them keeps event data from
// mentioning (<!channel>) or linking.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate cuts s to at most n characters, ending it with "…" when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
