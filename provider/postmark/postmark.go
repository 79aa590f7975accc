// Package postmark sends herald's email through Postmark's Email API with a
// client of herald's own (docs/adr/0001): success is decided from the whole
// response — the HTTP status is kept even when the body is not Postmark's
// JSON, and a 200 counts only with ErrorCode 0 and a MessageID. It never uses
// the batch endpoint, whose per-message errors hide behind a 200
// (reference/providers.md §2.4).
//
// API: https://postmarkapp.com/developer/api/email-api
//
// Postmark caps metadata keys at 20 characters, so herald's correlation ids
// travel under shorter keys: herald_notification_id as "herald_ntf" and
// herald_delivery_id as "herald_dlv" (MetadataKey).
package postmark

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"herald"
	"herald/clock"
	"herald/provider"
)

// Config configures a Postmark partner.
type Config struct {
	// Name is the partner's configured name. Required.
	Name string
	// ServerToken is the server's API token. Required.
	ServerToken string
	// MessageStream is the stream to send through. Defaults to "outbound".
	MessageStream string
	// BaseURL is the API's base URL. Defaults to https://api.postmarkapp.com.
	BaseURL string
	// From is a confirmed Sender Signature. Required.
	From string
	// Timeout bounds one send. Defaults to 10s.
	Timeout time.Duration
	// HTTPClient sends the requests. Defaults to provider.NewHTTPClient
	// with Timeout and the global tracer provider.
	HTTPClient *http.Client
	// Clock reads the time for Retry-After dates. Defaults to clock.Real().
	Clock clock.Clock
}

// Provider is a Postmark partner. It is safe for concurrent use.
type Provider struct {
	cfg  Config
	url  string
	http *http.Client
}

// New returns a Postmark partner for cfg.
func New(cfg Config) (*Provider, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.postmarkapp.com"
	}
	if cfg.MessageStream == "" {
		cfg.MessageStream = "outbound"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	switch {
	case cfg.Name == "":
		return nil, errors.New("postmark: name is required")
	case cfg.ServerToken == "":
		return nil, fmt.Errorf("postmark %s: server_token is required", cfg.Name)
	case cfg.From == "":
		return nil, fmt.Errorf("postmark %s: from is required", cfg.Name)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = provider.NewHTTPClient(cfg.Timeout, nil)
	}
	return &Provider{cfg: cfg, url: strings.TrimRight(cfg.BaseURL, "/") + "/email", http: cfg.HTTPClient}, nil
}

// Name returns the configured name.
func (p *Provider) Name() string { return p.cfg.Name }

// Kind returns "postmark".
func (p *Provider) Kind() string { return "postmark" }

// Postmark's metadata limits (https://postmarkapp.com/support/article/1125;
// commonly cited, not fully published: reference/providers.md §8).
const (
	maxFields   = 10
	maxKeyLen   = 20
	maxValueLen = 80
)

// MetadataKey is the key a metadata entry travels under: herald's own ids
// are shortened to fit Postmark's 20-character keys.
func MetadataKey(k string) string {
	switch k {
	case herald.MetaNotificationID:
		return "herald_ntf"
	case herald.MetaDeliveryID:
		return "herald_dlv"
	}
	return k
}

// CheckMetadata applies Postmark's metadata rules to md, herald's ids
// included: at most 10 fields, keys of 1–20 characters unique regardless of
// case, values of at most 80 characters.
func (p *Provider) CheckMetadata(md map[string]string) error {
	all := maps.Clone(md)
	if all == nil {
		all = map[string]string{}
	}
	for _, id := range []string{herald.MetaNotificationID, herald.MetaDeliveryID} {
		if _, ok := all[id]; !ok {
			all[id] = "" // every send carries them
		}
	}
	if len(all) > maxFields {
		return herald.Invalid("metadata", "invalid", "postmark allows %d metadata fields, herald's two ids included; this has %d", maxFields, len(all))
	}
	seen := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(all)) {
		key := MetadataKey(k)
		field := "metadata." + k
		switch {
		case key == "" || utf8.RuneCountInString(key) > maxKeyLen:
			return herald.Invalid(field, "invalid", "postmark metadata keys are 1 to %d characters", maxKeyLen)
		case utf8.RuneCountInString(all[k]) > maxValueLen:
			return herald.Invalid(field, "invalid", "postmark metadata values are at most %d characters", maxValueLen)
		case seen[strings.ToLower(key)] != "":
			return herald.Invalid(field, "already_exists", "postmark metadata keys must differ regardless of case; %q and %q do not", seen[strings.ToLower(key)], k)
		}
		seen[strings.ToLower(key)] = k
	}
	return nil
}

type email struct {
	From          string
	To            string
	Subject       string
	TextBody      string            `json:",omitempty"`
	HtmlBody      string            `json:",omitempty"`
	Metadata      map[string]string `json:",omitempty"`
	MessageStream string
}

// Request returns the /email body for e.
func Request(from, stream string, e *herald.Email) ([]byte, error) {
	md := make(map[string]string, len(e.Metadata))
	for k, v := range e.Metadata {
		md[MetadataKey(k)] = v
	}
	return json.Marshal(email{From: from, To: e.To, Subject: e.Subject, TextBody: e.Text, HtmlBody: e.HTML,
		Metadata: md, MessageStream: stream})
}

// Send makes one attempt to hand e to Postmark.
func (p *Provider) Send(ctx context.Context, e *herald.Email) herald.Result {
	if err := p.CheckMetadata(e.Metadata); err != nil { // fail closed
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "encode", Error: "postmark: " + err.Error()}
	}
	body, err := Request(p.cfg.From, p.cfg.MessageStream, e)
	if err != nil {
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "encode", Error: "postmark: encode request: " + err.Error()}
	}
	summary := provider.Summary(http.MethodPost, p.url, len(body), e.Metadata)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "config", Request: summary, Error: "postmark: build request: " + err.Error(), PartnerSide: true}
	}
	req.Header.Set("X-Postmark-Server-Token", p.cfg.ServerToken)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	r := Classify(provider.Do(p.http, req), p.cfg.Clock.Now())
	r.Request = summary
	return r
}

type answer struct {
	ErrorCode *int
	Message   string
	MessageID string
}

// defaultThrottle is the wait after a 429 that names none.
const defaultThrottle = 10 * time.Second

// Classify decides the outcome of one /email exchange from the whole
// response (reference/providers.md §2.3, §2.4, §7 cases 4, 5, 13).
func Classify(x provider.Exchange, now time.Time) herald.Result {
	if x.Err != nil {
		return provider.TransportFailure(x)
	}
	r := herald.Result{Status: x.Status, Response: provider.Excerpt(x.Body), RateLimit: provider.RateLimitHeaders(x.Header)}
	var a answer
	parsed := json.Unmarshal(x.Body, &a) == nil && a.ErrorCode != nil
	if x.Status >= 200 && x.Status < 300 {
		switch {
		case !parsed:
			r.Outcome, r.Reason, r.Error = herald.OutcomeUnknown, "unexpected_body", fmt.Sprintf("postmark answered %d with a body that is not its documented JSON", x.Status)
		case *a.ErrorCode != 0:
			byCode(&r, *a.ErrorCode, a.Message, now, x.Header)
		case a.MessageID == "":
			r.Outcome, r.Reason, r.Error = herald.OutcomeUnknown, "missing_message_id", "postmark answered ErrorCode 0 without a MessageID"
		case a.Message == "Test job accepted":
			r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "test_mode", true
			r.Error = "postmark accepted a test job: the server token is POSTMARK_API_TEST and nothing is ever delivered"
		default:
			r.Outcome, r.Reason, r.MessageID = herald.OutcomeAccepted, "ok", a.MessageID
		}
		return r
	}
	r.Outcome, r.Reason, r.PartnerSide = provider.ByStatus(x.Status)
	if parsed && *a.ErrorCode != 0 {
		byCode(&r, *a.ErrorCode, a.Message, now, x.Header)
		if x.Status >= 500 { // the status outranks the code: the partner is failing
			r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeTransient, "server_error", true
		}
		return r
	}
	r.Error = fmt.Sprintf("postmark %d with a body that is not its error shape", x.Status)
	if r.Outcome == herald.OutcomeThrottled {
		r.RetryAfter = throttleWait(x.Header, now)
	}
	return r
}

// byCode classifies Postmark's ErrorCode
// (https://postmarkapp.com/developer/api/overview#error-codes).
func byCode(r *herald.Result, code int, msg string, now time.Time, h http.Header) {
	r.Error = fmt.Sprintf("postmark ErrorCode %d: %s", code, msg)
	switch code {
	case 10:
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "auth", true
	case 100:
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeTransient, "server_error", true
	case 400, 401:
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "unverified_sender", true
	case 405, 412, 413:
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "account", true
	case 406:
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "inactive_recipient", false
	case 429:
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeThrottled, "rate_limited", true
		r.RetryAfter = throttleWait(h, now)
	default:
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "validation", false
	}
}

func throttleWait(h http.Header, now time.Time) time.Duration {
	if d := provider.RetryAfter(h, now); d > 0 {
		return d
	}
	return defaultThrottle
}
