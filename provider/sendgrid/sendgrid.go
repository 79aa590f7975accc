// Package sendgrid sends herald's email through SendGrid's v3 Mail Send API
// with a client of herald's own (docs/adr/0001): success is decided from the
// whole response, never from a nil error.
//
// API: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
package sendgrid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"herald"
	"herald/clock"
	"herald/provider"
)

// Config configures a SendGrid partner.
type Config struct {
	// Name is the partner's configured name. Required.
	Name string
	// APIKey is the SendGrid API key with Mail Send permission. Required.
	APIKey string
	// BaseURL is the API's base URL. Defaults to https://api.sendgrid.com.
	BaseURL string
	// From is the verified sender address. Required.
	From string
	// Timeout bounds one send. Defaults to 10s.
	Timeout time.Duration
	// HTTPClient sends the requests. Defaults to provider.NewHTTPClient
	// with Timeout and the global tracer provider.
	HTTPClient *http.Client
	// Clock reads the time for rate-limit resets. Defaults to clock.Real().
	Clock clock.Clock
}

// Provider is a SendGrid partner. It is safe for concurrent use.
type Provider struct {
	cfg  Config
	url  string
	http *http.Client
}

// New returns a SendGrid partner for cfg.
func New(cfg Config) (*Provider, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.sendgrid.com"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	switch {
	case cfg.Name == "":
		return nil, errors.New("sendgrid: name is required")
	case cfg.APIKey == "":
		return nil, fmt.Errorf("sendgrid %s: api_key is required", cfg.Name)
	case cfg.From == "":
		return nil, fmt.Errorf("sendgrid %s: from is required", cfg.Name)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = provider.NewHTTPClient(cfg.Timeout, nil)
	}
	return &Provider{cfg: cfg, url: strings.TrimRight(cfg.BaseURL, "/") + "/v3/mail/send", http: cfg.HTTPClient}, nil
}

// Name returns the configured name.
func (p *Provider) Name() string { return p.cfg.Name }

// Kind returns "sendgrid".
func (p *Provider) Kind() string { return "sendgrid" }

// maxCustomArgs is SendGrid's limit on a personalization's merged
// custom_args, as a JSON object
// (https://docs.sendgrid.com/api-reference/mail-send/limitations).
const maxCustomArgs = 10000

// reservedEventKeys are the fields of SendGrid's event webhook that
// silently override custom args of the same name
// (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event):
// such a key would be lost on its way back, so it is refused.
var reservedEventKeys = []string{"event", "email", "timestamp", "smtp-id", "sg_event_id", "sg_message_id",
	"category", "reason", "status", "response", "attempt", "type", "url", "useragent", "ip", "tls",
	"cert_err", "asm_group_id", "send_at", "pool", "marketing_campaign_id", "marketing_campaign_name"}

// idReserve is room kept in custom_args for herald's correlation ids.
const idReserve = 2 * 80

// CheckMetadata applies SendGrid's custom_args rules to md.
func (p *Provider) CheckMetadata(md map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(md)) {
		switch {
		case k == "":
			return herald.Invalid("metadata", "invalid", "sendgrid custom_args keys must not be empty")
		case slices.Contains(reservedEventKeys, strings.ToLower(k)):
			return herald.Invalid("metadata."+k, "invalid", "%q is a field of SendGrid's event webhook and would override this value in every event; choose another key", k)
		}
	}
	b, _ := json.Marshal(md)
	if len(b)+idReserve > maxCustomArgs {
		return herald.Invalid("metadata", "invalid", "sendgrid custom_args are limited to %d bytes as JSON including herald's ids; this metadata is %d bytes", maxCustomArgs, len(b))
	}
	return nil
}

type address struct {
	Email string `json:"email"`
}

type content struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type mail struct {
	Personalizations []personalization `json:"personalizations"`
	From             address           `json:"from"`
	Subject          string            `json:"subject"`
	Content          []content         `json:"content"`
}

type personalization struct {
	To         []address         `json:"to"`
	CustomArgs map[string]string `json:"custom_args,omitempty"`
}

// Request returns the mail/send body for e.
func Request(from string, e *herald.Email) ([]byte, error) {
	m := mail{
		Personalizations: []personalization{{To: []address{{Email: e.To}}, CustomArgs: e.Metadata}},
		From:             address{Email: from},
		Subject:          e.Subject,
	}
	if e.Text != "" {
		m.Content = append(m.Content, content{Type: "text/plain", Value: e.Text})
	}
	if e.HTML != "" {
		m.Content = append(m.Content, content{Type: "text/html", Value: e.HTML})
	}
	return json.Marshal(m)
}

// Send makes one attempt to hand e to SendGrid.
func (p *Provider) Send(ctx context.Context, e *herald.Email) herald.Result {
	body, err := Request(p.cfg.From, e)
	if err != nil { // fail closed: never send what could not be encoded
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "encode", Error: "sendgrid: encode request: " + err.Error()}
	}
	summary := provider.Summary(http.MethodPost, p.url, len(body), e.Metadata)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "config", Request: summary, Error: "sendgrid: build request: " + err.Error(), PartnerSide: true}
	}
	req.Header.Set("Authorization", "Bearer "+p.cfg.APIKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	r := Classify(provider.Do(p.http, req), p.cfg.Clock.Now())
	r.Request = summary
	return r
}

// errorBody is SendGrid's error shape.
type errorBody struct {
	Errors []struct {
		Message string  `json:"message"`
		Field   *string `json:"field"`
	} `json:"errors"`
}

// Classify decides the outcome of one mail/send exchange from the whole
// response (reference/providers.md §1.3, §1.4, §7 cases 1–3).
func Classify(x provider.Exchange, now time.Time) herald.Result {
	if x.Err != nil {
		return provider.TransportFailure(x)
	}
	r := herald.Result{Status: x.Status, Response: provider.Excerpt(x.Body), RateLimit: provider.RateLimitHeaders(x.Header)}
	id := x.Header.Get("X-Message-Id")
	switch {
	case x.Status == http.StatusAccepted && id != "" && len(bytes.TrimSpace(x.Body)) == 0:
		r.Outcome, r.Reason, r.MessageID = herald.OutcomeAccepted, "ok", id
		return r
	case x.Status == http.StatusAccepted && id == "":
		r.Outcome, r.Reason, r.Error = herald.OutcomeUnknown, "missing_message_id", "sendgrid answered 202 without X-Message-Id"
		return r
	case x.Status == http.StatusAccepted:
		r.Outcome, r.Reason, r.Error = herald.OutcomeUnknown, "unexpected_body", "sendgrid answered 202 with a body; its documented 202 is empty"
		return r
	case x.Status == http.StatusOK:
		// 200 is sandbox mode: validated, never sent.
		r.Outcome, r.Reason, r.Error = herald.OutcomeRejected, "sandbox_mode", "sendgrid answered 200: sandbox mode is on, nothing was sent"
		r.PartnerSide = true
		return r
	case x.Status >= 200 && x.Status < 300:
		r.Outcome, r.Reason, r.Error = herald.OutcomeUnknown, "unexpected_status", fmt.Sprintf("sendgrid answered %d, which it does not document for mail/send", x.Status)
		return r
	}
	r.Outcome, r.Reason, r.PartnerSide = provider.ByStatus(x.Status)
	var eb errorBody
	if json.Unmarshal(x.Body, &eb) == nil && len(eb.Errors) > 0 {
		var msgs []string
		for _, e := range eb.Errors {
			if e.Field != nil && *e.Field != "" {
				msgs = append(msgs, *e.Field+": "+e.Message)
			} else {
				msgs = append(msgs, e.Message)
			}
		}
		r.Error = fmt.Sprintf("sendgrid %d: %s", x.Status, strings.Join(msgs, "; "))
		if x.Status == http.StatusForbidden && strings.Contains(r.Error, "Sender Identity") {
			r.Reason = "unverified_sender"
		}
	} else {
		r.Error = fmt.Sprintf("sendgrid %d with a body that is not its error shape", x.Status)
	}
	if r.Outcome == herald.OutcomeThrottled {
		r.RetryAfter = resetWait(x.Header, now)
	}
	return r
}

// resetWait is the wait until X-RateLimit-Reset (Unix seconds), or
// Retry-After when that is what came.
func resetWait(h http.Header, now time.Time) time.Duration {
	if s, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
		if d := time.Unix(s, 0).Sub(now); d > 0 {
			return d
		}
		return 0
	}
	return provider.RetryAfter(h, now)
}
