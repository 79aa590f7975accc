// Package pagerduty sends herald's trigger notifications to PagerDuty as
// Events API v2 events, with a client of herald's own (docs/adr/0001).
// Success is decided from the whole response: only a 202 whose JSON says
// status "success" and names the dedup_key counts; any other 2xx is unknown.
//
// API: https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
// (the event), https://developer.pagerduty.com/docs/events-api-v2/overview/
// (202, 400, 429 and 5xx) and
// https://developer.pagerduty.com/docs/events-api-v2/rate-limits/.
//
// A trigger's events share one dedup_key, "herald-" + the trigger's id, so
// the resolve herald sends when the trigger recovers closes the incident its
// TRIGGERED event opened. The routing key is a secret: it is read from the
// destination at send time and never reaches a Result, a span or an error.
package pagerduty

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
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

// Config configures a PagerDuty channel.
type Config struct {
	// Name is the partner's configured name. Defaults to "pagerduty".
	Name string
	// BaseURL is the Events API's base URL. Defaults to
	// https://events.pagerduty.com.
	BaseURL string
	// Destinations looks up the routing key of the destination an email's
	// To names. Required.
	Destinations herald.Destinations
	// Timeout bounds one send. Defaults to 10s.
	Timeout time.Duration
	// TracerProvider makes the spans of each send: pagerduty.Send and the
	// HTTP client span under it. Defaults to the global tracer provider.
	TracerProvider trace.TracerProvider
	// Clock stamps payload.timestamp and reads Retry-After dates. Defaults
	// to clock.Real().
	Clock clock.Clock
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c Config) WithDefaults() Config {
	c.Name = cmp.Or(c.Name, "pagerduty")
	c.BaseURL = cmp.Or(c.BaseURL, "https://events.pagerduty.com")
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
	u, err := url.Parse(c.BaseURL)
	switch {
	case c.Destinations == nil:
		return fmt.Errorf("pagerduty %s: destinations are required", c.Name)
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("pagerduty %s: base_url %q is not an http or https URL", c.Name, c.BaseURL)
	case c.Timeout < 0:
		return fmt.Errorf("pagerduty %s: timeout must not be negative", c.Name)
	}
	return nil
}

// Provider is a PagerDuty channel. It is safe for concurrent use.
type Provider struct {
	cfg    Config
	url    string
	http   *http.Client
	tracer trace.Tracer
}

// New returns a PagerDuty channel for cfg, or an error naming the first
// setting it cannot use.
func New(cfg Config) (*Provider, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Provider{cfg: cfg, url: strings.TrimRight(cfg.BaseURL, "/") + "/v2/enqueue",
		http:   provider.NewHTTPClient(cfg.Timeout, cfg.TracerProvider),
		tracer: cfg.TracerProvider.Tracer("herald/provider/pagerduty")}, nil
}

// Name returns the configured name.
func (p *Provider) Name() string { return p.cfg.Name }

// Kind returns "pagerduty".
func (p *Provider) Kind() string { return "pagerduty" }

// CheckMetadata accepts any metadata: none of it is sent to PagerDuty.
// herald matches an event to its alert by the dedup_key.
func (p *Provider) CheckMetadata(map[string]string) error { return nil }

// Send makes one attempt to enqueue the event for e with the routing key of
// the destination e.To names. A destination that does not exist or is not a
// PagerDuty one is rejected ("no_destination") without a request; a failure
// to read it is transient ("destination_lookup"). An accepted event's
// MessageID is the dedup_key PagerDuty returned.
func (p *Provider) Send(ctx context.Context, e *herald.Email) herald.Result {
	ctx, span := p.tracer.Start(ctx, "pagerduty.Send", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
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
	key := dest.Details.PagerDutyIntegrationKey
	ev, err := Event(key, e, p.cfg.Clock.Now())
	if err != nil {
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "encode", Error: "pagerduty: " + err.Error()}
	}
	span.SetAttributes(attribute.String("herald.pagerduty.event_action", ev.EventAction),
		attribute.String("herald.pagerduty.dedup_key", ev.DedupKey))
	body, err := json.Marshal(ev)
	if err != nil {
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "encode", Error: "pagerduty: encode event: " + err.Error()}
	}
	summary := fmt.Sprintf("%s event_action=%s dedup_key=%s", provider.Summary(http.MethodPost, p.url, len(body), nil), ev.EventAction, ev.DedupKey)
	if name := dest.Details.PagerDutyIntegrationName; name != "" {
		summary += " integration=" + name
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return provider.Scrub(herald.Result{Outcome: herald.OutcomeRejected, Reason: "config", Request: summary, PartnerSide: true,
			Error: "pagerduty: build request: " + err.Error()}, key)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "herald")
	r = Classify(provider.Do(p.http, req), p.cfg.Clock.Now())
	r.Request = summary
	return provider.Scrub(r, key)
}

// destination reads the destination id names; ok is false, with the result
// to return, when there is none to send to.
func (p *Provider) destination(ctx context.Context, id string) (herald.Destination, herald.Result, bool) {
	dest, r, ok := provider.LookupDestination(ctx, p.cfg.Destinations, id, "pagerduty")
	switch {
	case !ok:
		return dest, r, false
	case dest.Details.PagerDutyIntegrationKey == "":
		return dest, herald.Result{Outcome: herald.OutcomeRejected, Reason: "no_destination", PartnerSide: true,
			Error: fmt.Sprintf("pagerduty: destination %q has no integration key", id)}, false
	}
	return dest, herald.Result{}, true
}

type answer struct {
	Status   string   `json:"status"`
	Message  string   `json:"message"`
	DedupKey string   `json:"dedup_key"`
	Errors   []string `json:"errors"`
}

// Classify decides the outcome of one /v2/enqueue exchange from the whole
// response:
//
//   - 202 with {"status":"success","dedup_key":…}: accepted, the dedup_key
//     its message id;
//   - 202 "success" without a dedup_key: unknown, "missing_message_id";
//   - any other 2xx, or a 202 of another shape: unknown, "unexpected_body"
//     — PagerDuty documents 202 alone for a processed event;
//   - 400: rejected, "validation", PagerDuty's errors joined in Error;
//   - 401, 403: rejected on the partner's side;
//   - 429: throttled, RetryAfter from Retry-After when PagerDuty sends one
//     (it documents none: 0 leaves the wait to the retry policy);
//   - 408 and 5xx: transient.
func Classify(x provider.Exchange, now time.Time) herald.Result {
	if x.Err != nil {
		return provider.TransportFailure(x)
	}
	r := herald.Result{Status: x.Status, Response: provider.Excerpt(x.Body), RateLimit: provider.RateLimitHeaders(x.Header)}
	var a answer
	parsed := json.Unmarshal(x.Body, &a) == nil
	if x.Status >= 200 && x.Status < 300 {
		switch {
		case x.Status == http.StatusAccepted && parsed && a.Status == "success" && a.DedupKey != "":
			r.Outcome, r.Reason, r.MessageID = herald.OutcomeAccepted, "ok", a.DedupKey
		case x.Status == http.StatusAccepted && parsed && a.Status == "success":
			r.Outcome, r.Reason = herald.OutcomeUnknown, "missing_message_id"
			r.Error = "pagerduty answered 202 \"success\" without a dedup_key"
		default:
			r.Outcome, r.Reason = herald.OutcomeUnknown, "unexpected_body"
			r.Error = fmt.Sprintf("pagerduty answered %d without its documented 202 {\"status\":\"success\"}: whether the event was processed is unknown", x.Status)
		}
		return r
	}
	r.Outcome, r.Reason, r.PartnerSide = provider.ByStatus(x.Status)
	if r.Outcome == herald.OutcomeThrottled {
		r.RetryAfter = provider.RetryAfter(x.Header, now)
	}
	switch {
	case !parsed || (a.Message == "" && len(a.Errors) == 0):
		r.Error = fmt.Sprintf("pagerduty %d with a body that is not its error shape", x.Status)
	case len(a.Errors) > 0:
		r.Error = fmt.Sprintf("pagerduty %d %s: %s", x.Status, cmp.Or(a.Message, a.Status), strings.Join(a.Errors, "; "))
	default:
		r.Error = fmt.Sprintf("pagerduty %d %s", x.Status, a.Message)
	}
	return r
}

// PagerDuty's documented limits, and herald's cap on the groups it lists.
const (
	maxSummary  = 1024
	maxDedupKey = 255
	maxGroups   = 100
)

// EventBody is an Events API v2 event.
type EventBody struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key,omitempty"`
	Payload     *Payload `json:"payload,omitempty"`
	Links       []Link   `json:"links,omitempty"`
	Client      string   `json:"client,omitempty"`
	ClientURL   string   `json:"client_url,omitempty"`
}

// Payload is a trigger event's payload, in PagerDuty's Common Event Format.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// Link is one of an event's links.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

var severities = []string{"critical", "error", "warning", "info"}

// statusWords say an alert status in words.
var statusWords = map[string]string{"TRIGGERED": "Triggered", "OK": "Resolved", "NO_DATA": "No data", "ERROR": "Query failed"}

// Event returns the event for e, sent with routingKey at now.
//
// An alert whose status is OK resolves: the event carries routing_key,
// event_action and dedup_key only. TRIGGERED, NO_DATA and ERROR trigger,
// under the dedup_key "herald-" + the alert's id; NO_DATA and ERROR say so
// in the summary and are "warning" whatever the recipient's severity. The
// severity is e.Options.PagerDutySeverity, "critical" when unset; the
// component is the dataset, the group the trigger's name. Without an alert
// the event triggers with e.Subject as its summary and e.Text in its
// details, under "herald-" + the notification id.
func Event(routingKey string, e *herald.Email, now time.Time) (EventBody, error) {
	ev := EventBody{RoutingKey: routingKey}
	severity := "critical"
	if e.Options != nil && e.Options.PagerDutySeverity != "" {
		severity = e.Options.PagerDutySeverity
	}
	if !slices.Contains(severities, severity) {
		return ev, fmt.Errorf("severity %q is not one of %s", severity, strings.Join(severities, ", "))
	}
	stamp := now.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	a := e.Alert
	if a == nil {
		summary := cmp.Or(strings.TrimSpace(e.Subject), firstLine(e.Text))
		if summary == "" {
			return ev, errors.New("the message has neither a subject nor text")
		}
		ev.EventAction = "trigger"
		if id := e.Metadata[herald.MetaNotificationID]; id != "" {
			ev.DedupKey = "herald-" + id
		}
		ev.Payload = &Payload{Summary: truncate(summary, maxSummary), Source: "herald", Severity: severity, Timestamp: stamp,
			Class: "notification", CustomDetails: map[string]any{"text": e.Text}}
		ev.Client = "herald"
		return ev, ev.check()
	}
	status := strings.ToUpper(strings.TrimSpace(a.Status))
	if a.ID != "" {
		ev.DedupKey = "herald-" + a.ID
	}
	switch status {
	case "OK":
		if ev.DedupKey == "" {
			return ev, errors.New("a resolve needs the alert's id: it names the incident to close")
		}
		ev.EventAction = "resolve"
		return ev, ev.check()
	case "TRIGGERED":
	case "NO_DATA", "ERROR":
		severity = "warning"
	default:
		return ev, fmt.Errorf("alert status %q is none of TRIGGERED, OK, NO_DATA and ERROR", a.Status)
	}
	ev.EventAction = "trigger"
	groups := a.ResultGroupsTriggered
	if groups == nil {
		groups = []herald.AlertGroup{}
	}
	details := map[string]any{
		"description":             a.Description,
		"threshold":               a.Threshold,
		"operator":                a.Operator,
		"result_groups_triggered": groups[:min(len(groups), maxGroups)],
		"is_test":                 a.IsTest,
	}
	if a.SLO != nil {
		details["slo"] = a.SLO
	}
	if len(groups) > maxGroups {
		details["result_groups_omitted"] = len(groups) - maxGroups
	}
	ev.Payload = &Payload{Summary: truncate(Title(a), maxSummary), Source: "herald", Severity: severity, Timestamp: stamp,
		Component: a.Dataset, Group: a.Name, Class: "trigger", CustomDetails: details}
	for _, l := range []Link{{Href: a.TriggerURL, Text: "Trigger"}, {Href: a.ResultURL, Text: "Query results"}} {
		if l.Href != "" {
			ev.Links = append(ev.Links, l)
		}
	}
	ev.Client, ev.ClientURL = "herald", a.TriggerURL
	return ev, ev.check()
}

func (ev EventBody) check() error {
	if utf8.RuneCountInString(ev.DedupKey) > maxDedupKey {
		return fmt.Errorf("dedup_key is %d characters; PagerDuty allows %d", utf8.RuneCountInString(ev.DedupKey), maxDedupKey)
	}
	return nil
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
	if words, ok := statusWords[strings.ToUpper(strings.TrimSpace(a.Status))]; ok && !strings.HasPrefix(strings.ToLower(s), strings.ToLower(words)) {
		switch {
		case s != "":
			s = words + ": " + s
		case a.Name != "":
			s = words + ": " + a.Name
		default:
			s = words
		}
	}
	s = cmp.Or(s, a.Name, "Alert")
	if a.IsTest {
		s = test + s
	}
	return s
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// truncate cuts s to at most n characters, ending it with "…" when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
