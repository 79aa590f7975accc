// Package webhook posts a trigger's alert to the webhook destination a
// delivery names, as Honeycomb's webhook recipients do (reference:
// honeycomb-api.md §5 "Webhook delivery"): a JSON body — Honeycomb's default
// payload or the destination's own text/template — with the shared secret in
// X-Honeycomb-Webhook-Token, a delivery id for de-duplication, and a
// Standard Webhooks signature (https://www.standardwebhooks.com/) receivers
// can verify.
//
// The URL and secrets are read from the destination at send time
// (herald.Destinations), so no secret is copied into a notification, and
// none reaches a Result, a log or a span: the request summary names the
// method, host, path and body size only.
//
// Connections are guarded against server-side request forgery at dial time,
// after DNS resolution (net.Dialer.Control), so a name that resolves to a
// private address is refused however it got there: loopback, private (RFC
// 1918, fc00::/7), link-local, unspecified, multicast and CGNAT addresses are
// refused unless inside Config.AllowNetworks. No proxy is used and redirects
// are not followed.
//
// Outcomes follow Honeycomb's documented retry rule, made a little more
// forgiving: 2xx accepted (the message id is the delivery id); 408 and 502
// transient; 429 and 503 throttled when they name a Retry-After, transient
// otherwise; any other 5xx transient; 3xx rejected ("redirect"); any other
// 4xx rejected. Reasons beyond herald.ReasonsByOutcome: "no_destination",
// "template", "forbidden_address", "redirect", "status_4xx", "unavailable"
// (a 503 with Retry-After), "bad_url", "destination_lookup".
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"herald"
	"herald/clock"
	"herald/provider"
)

// Config configures the webhook channel.
type Config struct {
	// Name is the partner's configured name. Defaults to "webhook".
	Name string
	// Destinations looks up the destination a delivery names. Required.
	Destinations herald.Destinations
	// AllowNetworks are address ranges the SSRF guard lets through even
	// though they are private, loopback, link-local, … (e.g. 127.0.0.0/8
	// for a receiver on the same host). Defaults to none.
	AllowNetworks []netip.Prefix
	// Timeout bounds one send, connection included. Defaults to 10s, the
	// shorter of the answer times Honeycomb documents.
	Timeout time.Duration
	// Clock dates the webhook-timestamp header and reads Retry-After dates.
	// Defaults to clock.Real().
	Clock clock.Clock
	// TracerProvider makes the client span of each send. Defaults to the
	// global tracer provider.
	TracerProvider trace.TracerProvider
	// Logger receives one record per send, at Debug when it was accepted.
	// Defaults to a logger that discards.
	Logger *slog.Logger
}

// Provider is the webhook channel. It is safe for concurrent use.
type Provider struct {
	cfg    Config
	http   *http.Client
	tracer trace.Tracer
}

// New returns the webhook channel for cfg, or an error naming the first
// field that is missing or invalid.
func New(cfg Config) (*Provider, error) {
	if cfg.Name == "" {
		cfg.Name = "webhook"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.Destinations == nil:
		return nil, fmt.Errorf("webhook %s: destinations are required", cfg.Name)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("webhook %s: timeout must be positive", cfg.Name)
	}
	allow := make([]netip.Prefix, len(cfg.AllowNetworks)) // the caller's slice is left alone
	for i, p := range cfg.AllowNetworks {
		if !p.IsValid() {
			return nil, fmt.Errorf("webhook %s: allow_networks[%d] is not a valid prefix", cfg.Name, i)
		}
		allow[i] = p.Masked()
	}
	cfg.AllowNetworks = allow
	return &Provider{cfg: cfg, http: provider.GuardedClient(cfg.Timeout, cfg.AllowNetworks),
		tracer: cfg.TracerProvider.Tracer("herald/provider/webhook")}, nil
}

// Name returns the configured name.
func (p *Provider) Name() string { return p.cfg.Name }

// Kind returns "webhook".
func (p *Provider) Kind() string { return "webhook" }

// CheckMetadata accepts any metadata: a webhook does not carry it (the
// delivery id travels in headers).
func (p *Provider) CheckMetadata(map[string]string) error { return nil }

// The headers herald sets on every webhook.
const (
	HeaderToken      = "X-Honeycomb-Webhook-Token"
	HeaderDeliveryID = "X-Honeycomb-Webhook-Delivery-ID"
	HeaderID         = "webhook-id"
	HeaderTimestamp  = "webhook-timestamp"
	HeaderSignature  = "webhook-signature"
	userAgent        = "herald-webhook"
)

// maxBody caps a rendered body, so a runaway template cannot post megabytes.
const maxBody = 1 << 20

// Send makes one attempt to post e.Alert to the webhook destination e.To
// names. Every failure is in the Result; none holds the destination's
// secret, its custom header values or its URL's query.
func (p *Provider) Send(ctx context.Context, e *herald.Email) herald.Result {
	ctx, span := p.tracer.Start(ctx, "webhook.Send", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("herald.partner", p.cfg.Name), attribute.String("herald.destination_id", e.To)))
	defer span.End()
	var secrets []string
	r, host := p.send(ctx, e, span, &secrets)
	r = provider.Scrub(r, secrets...)
	provider.RecordResult(span, r, "http.response.status_code")
	log := p.cfg.Logger.With("partner", p.cfg.Name, "destination_id", e.To, "host", host,
		"delivery_id", e.Metadata[herald.MetaDeliveryID], "outcome", r.Outcome, "reason", r.Reason, "status", r.Status)
	if r.Outcome == herald.OutcomeAccepted {
		log.DebugContext(ctx, "webhook accepted")
	} else {
		log.WarnContext(ctx, "webhook not accepted", "error", r.Error)
	}
	return r
}

// send does Send's work; it adds every value that must not leave it to
// secrets as soon as it knows them, and returns the receiver's host.
func (p *Provider) send(ctx context.Context, e *herald.Email, span trace.Span, secrets *[]string) (herald.Result, string) {
	dest, r, ok := provider.LookupDestination(ctx, p.cfg.Destinations, e.To, "webhook")
	if !ok {
		return r, ""
	}
	det := dest.Details
	*secrets = append(*secrets, det.WebhookSecret)
	for _, h := range det.WebhookHeaders {
		*secrets = append(*secrets, h.Value)
	}
	u, err := url.Parse(det.WebhookURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return rejected("bad_url", "webhook: destination %q has no usable http(s) URL", e.To), ""
	}
	for _, vs := range u.Query() {
		*secrets = append(*secrets, vs...)
	}
	if u.User != nil {
		pw, _ := u.User.Password()
		*secrets = append(*secrets, u.User.Username(), pw)
	}
	host := u.Host
	span.SetAttributes(attribute.String("server.address", u.Hostname()), attribute.String("url.scheme", u.Scheme))

	deliveryID := e.Metadata[herald.MetaDeliveryID]
	switch {
	case e.Alert == nil:
		return rejected("validation", "webhook: the message carries no alert"), host
	case deliveryID == "":
		return rejected("validation", "webhook: the message carries no %s", herald.MetaDeliveryID), host
	}
	key, err := signingKey(det.WebhookSecret)
	if err != nil {
		return rejected("validation", "webhook: destination %q: %v", e.To, err), host
	}

	body, err := Body(e.Alert, det, e.Options)
	if err != nil {
		return rejected("template", "webhook: %v", err), host
	}
	summary := fmt.Sprintf("POST %s://%s%s body=%dB", u.Scheme, u.Host, u.EscapedPath(), len(body))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		r := rejected("bad_url", "webhook: destination %q: cannot build the request", e.To)
		r.Request = summary
		return r, host
	}
	for _, h := range det.WebhookHeaders { // reserved names were refused at creation; ours win anyway
		req.Header.Set(h.Header, h.Value)
	}
	ts := p.cfg.Clock.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderDeliveryID, deliveryID)
	req.Header.Set(HeaderID, deliveryID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	if det.WebhookSecret != "" {
		req.Header.Set(HeaderToken, det.WebhookSecret)
		req.Header.Set(HeaderSignature, Sign(key, deliveryID, ts, body))
	}

	x := provider.Do(p.http, req)
	var forbidden *provider.ForbiddenAddressError
	if errors.As(x.Err, &forbidden) {
		r = rejected("forbidden_address", "webhook: refused to connect to %s (%s address, host %s): not in allow_networks",
			forbidden.Addr, forbidden.Range, u.Hostname())
		r.Request = summary
		return r, host
	}
	r = Classify(x, deliveryID, p.cfg.Clock.Now())
	r.Request = summary
	return r, host
}

func rejected(reason, format string, args ...any) herald.Result {
	return herald.Result{Outcome: herald.OutcomeRejected, Reason: reason, Error: fmt.Sprintf(format, args...)}
}

// signingKey returns the Standard Webhooks key for secret: the base64 after
// "whsec_" when it has that prefix, else the secret's bytes.
func signingKey(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(key) == 0 {
		return nil, errors.New(`webhook_secret starts with "whsec_" but the rest is not base64`)
	}
	return key, nil
}

// Sign returns the Standard Webhooks signature header value for one
// message: "v1," and the base64 HMAC-SHA256 under key of
// id "." timestamp "." body.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, timestamp)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// envelope is Honeycomb's default trigger payload: the alert, and the
// shared secret when the destination has one.
type envelope struct {
	*herald.Alert
	SharedSecret string `json:"shared_secret,omitempty"`
}

// Body returns the JSON body for alert sent to a destination with det: the
// destination's "trigger" template rendered when it has one, else
// Honeycomb's default payload (version "v0.1.0" unless the alert names
// one). A template that does not parse, fails to execute or renders
// something other than JSON is an error.
func Body(alert *herald.Alert, det herald.DestinationDetails, opts *herald.RecipientOptions) ([]byte, error) {
	var tmpl string
	if det.WebhookPayloads != nil {
		tmpl = det.WebhookPayloads.PayloadTemplates["trigger"].Body
	}
	if tmpl == "" {
		a := *alert
		if a.Version == "" {
			a.Version = "v0.1.0"
		}
		return json.Marshal(envelope{Alert: &a, SharedSecret: det.WebhookSecret})
	}
	t, err := template.New("trigger").Option("missingkey=error").Funcs(template.FuncMap{"toJson": toJSON}).Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("parse the trigger template: %w", err)
	}
	// The writer stops the template at the size limit, so a template that
	// loops (range over a large number) cannot exhaust memory.
	buf := &limitedBuffer{limit: maxBody}
	if err := t.Execute(buf, data(alert, det.WebhookPayloads, opts)); err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, fmt.Errorf("the trigger template rendered more than the %d-byte limit", maxBody)
		}
		return nil, fmt.Errorf("render the trigger template: %w", err)
	}
	if !json.Valid(buf.Bytes()) {
		return nil, errors.New("the trigger template did not render valid JSON")
	}
	return buf.Bytes(), nil
}

var errTooLarge = errors.New("too large")

// limitedBuffer is a bytes.Buffer that refuses to grow past limit.
type limitedBuffer struct {
	bytes.Buffer
	limit int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.limit {
		return 0, errTooLarge
	}
	return b.Buffer.Write(p)
}

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// TemplateData is what a trigger template sees, named as in Honeycomb's
// template variables (https://docs.honeycomb.io/integrations/webhooks/variables).
type TemplateData struct {
	Name        string
	ID          string
	Description string
	URL         string
	// Environment is empty: herald has one environment per installation.
	Environment string
	Datasets    []string
	Operator    string
	Threshold   float64
	Result      TemplateResult
	Alert       TemplateAlert
	// Vars are the destination's template variables, their default values
	// overridden by the trigger's values for this recipient.
	Vars map[string]string
}

// TemplateResult is the query result a trigger template sees; each group
// has .Group (a map of the group-by values) and .Result.
type TemplateResult struct {
	URL             string
	Groups          []herald.AlertGroup
	GroupsTriggered []herald.AlertGroup
}

// TemplateAlert is the alert a trigger template sees.
type TemplateAlert struct {
	Summary string
	Status  string
	IsTest  bool
}

func data(a *herald.Alert, p *herald.WebhookPayloads, opts *herald.RecipientOptions) TemplateData {
	vars := map[string]string{}
	if p != nil {
		for _, v := range p.TemplateVariables {
			vars[v.Name] = v.DefaultValue
		}
	}
	if opts != nil {
		for _, v := range opts.Variables {
			vars[v.Name] = v.Value
		}
	}
	var datasets []string
	if a.Dataset != "" {
		datasets = []string{a.Dataset}
	}
	return TemplateData{Name: a.Name, ID: a.ID, Description: a.TriggerDescription, URL: a.TriggerURL,
		Datasets: datasets, Operator: a.Operator, Threshold: a.Threshold,
		Result: TemplateResult{URL: a.ResultURL, Groups: a.ResultGroups, GroupsTriggered: a.ResultGroupsTriggered},
		Alert:  TemplateAlert{Summary: a.Summary, Status: a.Status, IsTest: a.IsTest},
		Vars:   vars}
}

// Classify decides the outcome of one webhook exchange (Honeycomb's retry
// rule, https://docs.honeycomb.io/notify/webhooks: retried on 408, 502, 429
// or 503 with Retry-After, and connection failures; herald also retries
// other 5xx and 429/503 without Retry-After, with backoff). An accepted
// webhook's message id is deliveryID: receivers have no id of their own.
func Classify(x provider.Exchange, deliveryID string, now time.Time) herald.Result {
	if x.Err != nil {
		return provider.TransportFailure(x)
	}
	r := herald.Result{Status: x.Status, Response: provider.Excerpt(x.Body), RateLimit: provider.RateLimitHeaders(x.Header)}
	wait := provider.RetryAfter(x.Header, now)
	switch s := x.Status; {
	case s >= 200 && s < 300:
		r.Outcome, r.Reason, r.MessageID = herald.OutcomeAccepted, "ok", deliveryID
		return r
	case s >= 300 && s < 400:
		r.Outcome, r.Reason = herald.OutcomeRejected, "redirect"
		r.Error = fmt.Sprintf("webhook: the receiver answered %d, a redirect; webhooks do not follow redirects", s)
		return r
	case s == http.StatusTooManyRequests && wait > 0:
		r.Outcome, r.Reason, r.RetryAfter = herald.OutcomeThrottled, "rate_limited", wait
	case s == http.StatusServiceUnavailable && wait > 0:
		r.Outcome, r.Reason, r.RetryAfter = herald.OutcomeThrottled, "unavailable", wait
	case s == http.StatusTooManyRequests:
		r.Outcome, r.Reason = herald.OutcomeTransient, "rate_limited"
	case s == http.StatusRequestTimeout:
		r.Outcome, r.Reason = herald.OutcomeTransient, "timeout"
	case s >= 500:
		r.Outcome, r.Reason = herald.OutcomeTransient, "server_error"
	default:
		r.Outcome, r.Reason, _ = provider.ByStatus(s)
		if r.Reason == "validation" {
			r.Reason = "status_4xx"
		}
	}
	r.PartnerSide = r.Outcome != herald.OutcomeRejected || r.Reason == "auth" || r.Reason == "forbidden"
	r.Error = fmt.Sprintf("webhook: the receiver answered %d %s", x.Status, http.StatusText(x.Status))
	return r
}
