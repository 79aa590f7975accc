// Package provider holds what herald's partner adapters share: the HTTP
// client that sees every byte, the bookkeeping of one exchange (was the
// request sent? what came back?), and the classification rules common to
// every partner. Each partner's own rules live in its subpackage.
package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"herald"
)

// MaxExcerpt is the most of a response body an attempt record keeps.
const MaxExcerpt = 4096

// maxBody is the most of a response body an adapter reads.
const maxBody = 1 << 20

// NewHTTPClient returns the client partner adapters send with: an otelhttp
// transport under tp (a client span per request), the given timeout, and no
// redirects (a partner API that redirects is answering something else). A
// nil tp means the global tracer provider.
func NewHTTPClient(timeout time.Duration, tp trace.TracerProvider) *http.Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 64
	var opts []otelhttp.Option
	if tp != nil {
		opts = append(opts, otelhttp.WithTracerProvider(tp))
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: otelhttp.NewTransport(base, opts...),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Exchange is one request and what came back.
type Exchange struct {
	// Sent reports whether the whole request was written to the
	// connection: a failure after that leaves the outcome unknown.
	Sent   bool
	Status int
	Header http.Header
	Body   []byte
	// Err is the transport error, if the exchange did not complete.
	Err error
}

// Do sends req with client and reads at most 1 MiB of the answer.
func Do(client *http.Client, req *http.Request) Exchange {
	var x Exchange
	trace := &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			x.Sent = true
		}
	}}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := client.Do(req)
	if err != nil {
		x.Err = err
		return x
	}
	defer resp.Body.Close()
	x.Status = resp.StatusCode
	x.Header = resp.Header
	x.Body, x.Err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return x
}

// TransportFailure classifies an exchange that got no complete answer: a
// failure before the request was fully sent is transient (the partner has
// nothing); after it, unknown (the partner may have taken the message).
func TransportFailure(x Exchange) herald.Result {
	r := herald.Result{Status: x.Status, Error: describe(x.Err)}
	timeout := isTimeout(x.Err)
	switch {
	case !x.Sent && timeout:
		r.Outcome, r.Reason = herald.OutcomeTransient, "timeout"
	case !x.Sent:
		r.Outcome, r.Reason = herald.OutcomeTransient, "connection"
	case timeout:
		r.Outcome, r.Reason = herald.OutcomeUnknown, "timeout_after_send"
	default:
		r.Outcome, r.Reason = herald.OutcomeUnknown, "connection_lost_after_send"
	}
	r.PartnerSide = true
	return r
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// describe words a transport error without the request URL, whose query
// could carry a credential.
func describe(err error) string {
	if err == nil {
		return ""
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil && strings.HasPrefix(err.Error(), "Post ") {
			return inner.Error()
		}
	}
	return err.Error()
}

// ByStatus classifies a non-2xx status with the rules every partner shares:
// 429 throttled, 408 and 5xx transient, 401/403 rejected on the partner's
// side (another partner may succeed), any other 4xx rejected.
func ByStatus(status int) (herald.Outcome, string, bool) {
	switch {
	case status == http.StatusTooManyRequests:
		return herald.OutcomeThrottled, "rate_limited", true
	case status == http.StatusRequestTimeout:
		return herald.OutcomeTransient, "timeout", true
	case status >= 500:
		return herald.OutcomeTransient, "server_error", true
	case status == http.StatusUnauthorized:
		return herald.OutcomeRejected, "auth", true
	case status == http.StatusForbidden:
		return herald.OutcomeRejected, "forbidden", true
	case status == http.StatusRequestEntityTooLarge:
		return herald.OutcomeRejected, "too_large", false
	}
	return herald.OutcomeRejected, "validation", false
}

// Excerpt returns at most MaxExcerpt bytes of b, cut on a rune boundary.
func Excerpt(b []byte) string {
	if len(b) <= MaxExcerpt {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	cut := MaxExcerpt
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return strings.ToValidUTF8(string(b[:cut]), "\uFFFD")
}

// RetryAfter reads a Retry-After header: seconds, or an HTTP date relative
// to now. It returns 0 when there is none or it cannot be read.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// RateLimitHeaders returns the rate-limit headers of h (X-RateLimit-*,
// RateLimit*, Retry-After) as sent.
func RateLimitHeaders(h http.Header) map[string]string {
	var out map[string]string
	for k, vs := range h {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-ratelimit") || strings.HasPrefix(lk, "ratelimit") || lk == "retry-after" {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = strings.Join(vs, ", ")
		}
	}
	return out
}

// Summary words a request for the attempt record: method, URL without
// credentials or query, body size and the metadata keys (never values).
func Summary(method, url string, bodyLen int, md map[string]string) string {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if i := strings.IndexByte(url, '?'); i >= 0 {
		url = url[:i]
	}
	return fmt.Sprintf("%s %s body=%dB metadata_keys=[%s]", method, url, bodyLen, strings.Join(keys, ","))
}

// Scrub replaces every secret of four characters or more in r's request
// summary, response excerpt and error with "[redacted]": for channels whose
// destinations hold secrets (a routing key, a webhook URL's token, a
// signing secret) that no answer should echo, but might. Shorter strings
// are left alone, as they would blank ordinary words.
func Scrub(r herald.Result, secrets ...string) herald.Result {
	for _, s := range secrets {
		if len(s) < 4 {
			continue
		}
		r.Request = strings.ReplaceAll(r.Request, s, "[redacted]")
		r.Response = strings.ReplaceAll(r.Response, s, "[redacted]")
		r.Error = strings.ReplaceAll(r.Error, s, "[redacted]")
	}
	return r
}

// RecordResult puts an attempt's result on its client span: outcome,
// reason, the partner's status under statusKey (the HTTP status, or an
// SMTP reply code), the partner's message id, and an error status for
// anything but accepted.
func RecordResult(span trace.Span, r herald.Result, statusKey string) {
	span.SetAttributes(attribute.String("herald.outcome", string(r.Outcome)), attribute.String("herald.reason", r.Reason))
	if r.Status != 0 {
		span.SetAttributes(attribute.Int(statusKey, r.Status))
	}
	if r.MessageID != "" {
		span.SetAttributes(attribute.String("herald.partner_message_id", r.MessageID))
	}
	if r.Outcome != herald.OutcomeAccepted {
		span.SetStatus(codes.Error, string(r.Outcome)+": "+r.Reason)
	}
}
