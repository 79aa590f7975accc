// Package smtp sends herald's email over SMTP with go-mail, deciding the
// outcome from the server's reply codes itself — never from go-mail's
// IsTemp(), which depends on the order of recipients and calls network
// errors permanent (reference/providers.md §5.4). A message the server
// accepted (250 after DATA) is accepted even when a later RSET or QUIT fails.
//
// Metadata travels in X-PM-Metadata-<key> headers, one per entry, encoded
// by go-mail per RFC 2047 (never preformatted, so no header injection): the
// header family Postmark's SMTP relay reads, and the sandbox too.
package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"herald"
)

// Config configures an SMTP partner.
type Config struct {
	// Name is the partner's configured name. Required.
	Name string
	// Host is the SMTP server. Required.
	Host string
	// Port defaults to 587 (465 with TLS "tls").
	Port int
	// Username and Password authenticate with AUTH PLAIN when set.
	Username, Password string
	// TLS is "starttls" (mandatory STARTTLS; the default), "tls" (implicit
	// TLS) or "none".
	TLS string
	// TLSConfig verifies the server; defaults to the system roots for Host.
	TLSConfig *tls.Config
	// From is the sender address. Required.
	From string
	// Timeout bounds one send. Defaults to 10s.
	Timeout time.Duration
	// TracerProvider defaults to the global one.
	TracerProvider trace.TracerProvider
}

// Provider is an SMTP partner. It is safe for concurrent use: every send
// uses a connection of its own.
type Provider struct {
	cfg    Config
	tracer trace.Tracer
}

// New returns an SMTP partner for cfg.
func New(cfg Config) (*Provider, error) {
	if cfg.TLS == "" {
		cfg.TLS = "starttls"
	}
	if cfg.Port == 0 {
		cfg.Port = 587
		if cfg.TLS == "tls" {
			cfg.Port = 465
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	switch {
	case cfg.Name == "":
		return nil, errors.New("smtp: name is required")
	case cfg.Host == "":
		return nil, fmt.Errorf("smtp %s: host is required", cfg.Name)
	case cfg.From == "":
		return nil, fmt.Errorf("smtp %s: from is required", cfg.Name)
	case !slices.Contains([]string{"starttls", "tls", "none"}, cfg.TLS):
		return nil, fmt.Errorf("smtp %s: tls: want starttls, tls or none, got %q", cfg.Name, cfg.TLS)
	}
	return &Provider{cfg: cfg, tracer: cfg.TracerProvider.Tracer("herald/provider/smtp")}, nil
}

// Name returns the configured name.
func (p *Provider) Name() string { return p.cfg.Name }

// Kind returns "smtp".
func (p *Provider) Kind() string { return "smtp" }

// CheckMetadata requires keys usable in a header name: printable ASCII
// without spaces or colons, and a header line within 998 characters.
func (p *Provider) CheckMetadata(md map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if k == "" || strings.ContainsAny(k, ": ") || strings.IndexFunc(k, func(r rune) bool { return r < 33 || r > 126 }) >= 0 {
			return herald.Invalid("metadata."+k, "invalid", "smtp metadata keys become header names: printable ASCII without spaces or colons")
		}
		if len(headerPrefix)+len(k)+2+len(md[k]) > 900 {
			return herald.Invalid("metadata."+k, "invalid", "smtp header lines are limited to 998 characters (RFC 5322 2.1.1)")
		}
	}
	return nil
}

const headerPrefix = "X-PM-Metadata-"

// Message builds the message for e.
func (p *Provider) Message(e *herald.Email) (*gomail.Msg, error) {
	m := gomail.NewMsg()
	if err := m.From(p.cfg.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := m.To(e.To); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	m.Subject(e.Subject)
	switch {
	case e.Text != "" && e.HTML != "":
		m.SetBodyString(gomail.TypeTextPlain, e.Text)
		m.AddAlternativeString(gomail.TypeTextHTML, e.HTML)
	case e.HTML != "":
		m.SetBodyString(gomail.TypeTextHTML, e.HTML)
	default:
		m.SetBodyString(gomail.TypeTextPlain, e.Text)
	}
	for _, k := range slices.Sorted(maps.Keys(e.Metadata)) {
		m.SetGenHeader(gomail.Header(headerPrefix+k), e.Metadata[k])
	}
	m.SetMessageID()
	return m, nil
}

// Send makes one attempt to hand e to the SMTP server.
func (p *Provider) Send(ctx context.Context, e *herald.Email) herald.Result {
	summary := fmt.Sprintf("SMTP %s:%d metadata_keys=[%s]", p.cfg.Host, p.cfg.Port, strings.Join(slices.Sorted(maps.Keys(e.Metadata)), ","))
	ctx, span := p.tracer.Start(ctx, "smtp.Send", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("server.address", p.cfg.Host), attribute.Int("server.port", p.cfg.Port)))
	defer span.End()
	if err := p.CheckMetadata(e.Metadata); err != nil { // fail closed
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "encode", Request: summary, Error: "smtp: " + err.Error()}
	}
	m, err := p.Message(e)
	if err != nil {
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "validation", Request: summary, Error: "smtp: " + err.Error()}
	}
	opts := []gomail.Option{gomail.WithPort(p.cfg.Port), gomail.WithTimeout(p.cfg.Timeout)}
	switch p.cfg.TLS {
	case "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "tls":
		opts = append(opts, gomail.WithSSL())
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if p.cfg.TLSConfig != nil {
		opts = append(opts, gomail.WithTLSConfig(p.cfg.TLSConfig))
	}
	if p.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(p.cfg.Username), gomail.WithPassword(p.cfg.Password))
	}
	c, err := gomail.NewClient(p.cfg.Host, opts...)
	if err != nil {
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "config", Request: summary, PartnerSide: true, Error: "smtp: " + err.Error()}
	}
	sendErr := c.DialAndSendWithContext(ctx, m)
	r := Classify(m, sendErr, p.cfg.Password)
	r.Request = summary
	if r.Status != 0 {
		span.SetAttributes(attribute.Int("herald.smtp.reply_code", r.Status))
	}
	if r.Outcome != herald.OutcomeAccepted {
		span.SetStatus(codes.Error, string(r.Outcome)+": "+r.Reason)
	}
	return r
}

var (
	queuedAs = regexp.MustCompile(`(?i)queued as ([A-Za-z0-9._-]+)`)
	replyRe  = regexp.MustCompile(`\b([245]\d\d)[ -]`)
)

// Classify decides the outcome of one send from the message's state and
// the error, by the server's reply codes (RFC 5321 §4.2; reference/
// providers.md §5.3–5.5, §7 cases 10, 11, 13). secret is removed from any
// error text.
func Classify(m *gomail.Msg, err error, secret string) herald.Result {
	clean := func(s string) string {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
		return s
	}
	if m.IsDelivered() {
		// 250 after DATA: taken. A failure after it (RSET, QUIT) must not
		// lead to a retry, which would send the message twice.
		r := herald.Result{Outcome: herald.OutcomeAccepted, Reason: "ok", Status: 250, Response: clean(m.ServerResponse())}
		if match := queuedAs.FindStringSubmatch(m.ServerResponse()); match != nil {
			r.MessageID = match[1]
		} else {
			r.MessageID = strings.Trim(m.GetMessageID(), "<>")
		}
		if err != nil {
			r.Error = "smtp: after the message was accepted: " + clean(err.Error())
		}
		return r
	}
	if err == nil {
		return herald.Result{Outcome: herald.OutcomeUnknown, Reason: "unexpected_status", Error: "smtp: no error, yet the server did not confirm the message"}
	}
	r := herald.Result{Error: "smtp: " + clean(err.Error()), Response: clean(m.ServerResponse())}
	var se *gomail.SendError
	code := 0
	if errors.As(err, &se) {
		code = se.ErrorCode()
	}
	if code == 0 { // go-mail does not always carry the code: read it from the text
		if match := replyRe.FindStringSubmatch(err.Error()); match != nil {
			code, _ = strconv.Atoi(match[1])
		}
	}
	r.Status = code
	text := strings.ToLower(err.Error())
	switch {
	case code == 535 || code == 534 || code == 530 || strings.Contains(text, "auth"):
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "auth", true
	case code == 553 && se != nil && se.Reason == gomail.ErrSMTPMailFrom:
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "unverified_sender", true
	case code >= 400 && code < 500 && (strings.Contains(text, "throttl") || strings.Contains(text, "rate")):
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeThrottled, "rate_limited", true
		r.RetryAfter = time.Minute
	case code >= 400 && code < 500:
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeTransient, "server_error", true
	case code >= 500:
		r.Outcome, r.Reason = herald.OutcomeRejected, "validation"
	case se != nil && (se.Reason == gomail.ErrSMTPDataClose || se.Reason == gomail.ErrWriteContent):
		// The message was on the wire and no reply came: the server may
		// have it.
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeUnknown, "connection_lost_after_send", true
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeTransient, "timeout", true
		} else {
			r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeTransient, "connection", true
		}
	}
	return r
}
