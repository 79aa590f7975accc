// Package mailgun sends herald's email through Mailgun's messages API with
// a client of herald's own (docs/adr/0001): success is decided from the
// whole response, and every metadata value is sent as its own `v:`
// variable, so one value can never make the others vanish (the way
// mailgun-go drops X-Mailgun-Variables when one value cannot be encoded,
// reference/providers.md §3.4).
//
// API: https://documentation.mailgun.com/docs/mailgun/api-reference/openapi-final/tag/Messages/
//
// Mailgun's send answer names the message `<id@domain>`; its events name it
// without the angle brackets. The Result keeps the brackets, as sent.
package mailgun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"herald"
	"herald/clock"
	"herald/provider"
)

// Config configures a Mailgun partner.
type Config struct {
	// Name is the partner's configured name. Required.
	Name string
	// APIKey is the Mailgun API key (basic auth password). Required.
	APIKey string
	// Domain is the sending domain. Required.
	Domain string
	// BaseURL is the API's base URL. Defaults to https://api.mailgun.net;
	// EU domains use https://api.eu.mailgun.net.
	BaseURL string
	// From is the sender address, on Domain. Required.
	From string
	// Timeout bounds one send. Defaults to 10s.
	Timeout time.Duration
	// HTTPClient sends the requests. Defaults to provider.NewHTTPClient
	// with Timeout and the global tracer provider.
	HTTPClient *http.Client
	// Clock reads the time for "try again after" dates. Defaults to clock.Real().
	Clock clock.Clock
}

// Provider is a Mailgun partner. It is safe for concurrent use.
type Provider struct {
	cfg  Config
	url  string
	http *http.Client
}

// New returns a Mailgun partner for cfg.
func New(cfg Config) (*Provider, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.mailgun.net"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	switch {
	case cfg.Name == "":
		return nil, errors.New("mailgun: name is required")
	case cfg.APIKey == "":
		return nil, fmt.Errorf("mailgun %s: api_key is required", cfg.Name)
	case cfg.Domain == "" || strings.ContainsAny(cfg.Domain, "/?#"):
		return nil, fmt.Errorf("mailgun %s: domain is required and must be a bare domain", cfg.Name)
	case cfg.From == "":
		return nil, fmt.Errorf("mailgun %s: from is required", cfg.Name)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = provider.NewHTTPClient(cfg.Timeout, nil)
	}
	u := strings.TrimRight(cfg.BaseURL, "/") + "/v3/" + url.PathEscape(cfg.Domain) + "/messages"
	return &Provider{cfg: cfg, url: u, http: cfg.HTTPClient}, nil
}

// Name returns the configured name.
func (p *Provider) Name() string { return p.cfg.Name }

// Kind returns "mailgun".
func (p *Provider) Kind() string { return "mailgun" }

// maxOptions is Mailgun's limit on all o:, h: and v: parameters together,
// names and values (https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/#sending-options).
const maxOptions = 16 * 1024

// idReserve is room kept for herald's two correlation ids.
const idReserve = 2 * 80

// CheckMetadata applies Mailgun's rules for `v:` variables to md: names
// must be printable ASCII without spaces (they become form field names),
// and every o:/h:/v: parameter together must stay within 16 kB.
func (p *Provider) CheckMetadata(md map[string]string) error {
	size := 0
	for _, k := range slices.Sorted(maps.Keys(md)) {
		for _, c := range k {
			if c <= ' ' || c > '~' {
				return herald.Invalid("metadata."+k, "invalid", "mailgun variable names must be printable ASCII without spaces")
			}
		}
		size += len("v:"+k) + len(md[k])
	}
	if size+idReserve > maxOptions {
		return herald.Invalid("metadata", "invalid", "mailgun limits all o:, h: and v: parameters to 16 kB together, herald's ids included; this metadata is %d bytes", size)
	}
	return nil
}

// Request returns the url-encoded form for e.
func Request(from string, e *herald.Email) []byte {
	form := url.Values{"from": {from}, "to": {e.To}, "subject": {e.Subject}}
	if e.Text != "" {
		form.Set("text", e.Text)
	}
	if e.HTML != "" {
		form.Set("html", e.HTML)
	}
	for k, v := range e.Metadata {
		form.Set("v:"+k, v)
	}
	return []byte(form.Encode())
}

// Send makes one attempt to hand e to Mailgun.
func (p *Provider) Send(ctx context.Context, e *herald.Email) herald.Result {
	if err := p.CheckMetadata(e.Metadata); err != nil { // fail closed
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "encode", Error: "mailgun: " + err.Error()}
	}
	body := Request(p.cfg.From, e)
	summary := provider.Summary(http.MethodPost, p.url, len(body), e.Metadata)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "config", Request: summary, Error: "mailgun: build request: " + err.Error(), PartnerSide: true}
	}
	req.SetBasicAuth("api", p.cfg.APIKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	r := Classify(provider.Do(p.http, req), p.cfg.Clock.Now())
	r.Request = summary
	return r
}

type answer struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

var tryAgainAfter = regexp.MustCompile(`try again after (.+?)\.?$`)

// Classify decides the outcome of one messages exchange from the whole
// response (reference/providers.md §3.3, §3.7, §7 cases 6, 7, 13).
func Classify(x provider.Exchange, now time.Time) herald.Result {
	if x.Err != nil {
		return provider.TransportFailure(x)
	}
	r := herald.Result{Status: x.Status, Response: provider.Excerpt(x.Body), RateLimit: provider.RateLimitHeaders(x.Header)}
	var a answer
	parsed := json.Unmarshal(x.Body, &a) == nil
	if x.Status >= 200 && x.Status < 300 {
		switch {
		case x.Status == http.StatusOK && parsed && a.ID != "":
			r.Outcome, r.Reason, r.MessageID = herald.OutcomeAccepted, "ok", a.ID
		case len(bytes.TrimSpace(x.Body)) == 0 || (parsed && a.ID == ""):
			r.Outcome, r.Reason, r.Error = herald.OutcomeUnknown, "missing_message_id", fmt.Sprintf("mailgun answered %d without a message id", x.Status)
		default:
			r.Outcome, r.Reason, r.Error = herald.OutcomeUnknown, "unexpected_body", fmt.Sprintf("mailgun answered %d with a body that is not its documented JSON", x.Status)
		}
		return r
	}
	r.Outcome, r.Reason, r.PartnerSide = provider.ByStatus(x.Status)
	msg := strings.TrimSpace(string(x.Body))
	if parsed && a.Message != "" {
		msg = a.Message
	} else if !parsed && x.Status != http.StatusUnauthorized {
		msg = "a body that is not its error shape"
	}
	r.Error = fmt.Sprintf("mailgun %d: %s", x.Status, msg)
	switch {
	case x.Status == http.StatusNotFound:
		r.Reason, r.PartnerSide = "domain_not_found", true
	case x.Status == http.StatusBadRequest && strings.Contains(msg, "not allowed to send"):
		r.Reason, r.PartnerSide = "unverified_sender", true
	case r.Outcome == herald.OutcomeThrottled:
		r.RetryAfter = provider.RetryAfter(x.Header, now)
		if m := tryAgainAfter.FindStringSubmatch(msg); m != nil {
			if t, err := http.ParseTime(m[1]); err == nil && t.After(now) {
				r.RetryAfter = t.Sub(now)
			}
		}
	}
	return r
}
