// Package smtp sends herald's email over SMTP with go-mail, deciding the
// outcome from the server's reply codes itself — never from go-mail's
// IsTemp(), which takes the last refused recipient's code and calls network
// errors permanent (reference/providers.md §5.4, §5.5). A message the server
// answered 250 after DATA is accepted even when the RSET or QUIT after it
// fails: retrying it would send it twice.
//
// Metadata travels in X-PM-Metadata-<key> headers, one per entry, encoded by
// go-mail's SetGenHeader per RFC 2047 (never preformatted, so a value cannot
// inject a header). That is the family Postmark's SMTP relay documents
// (https://postmarkapp.com/support/article/1125-custom-metadata-faq) and the
// one of reference/providers.md §5.1 that carries one plain value per key: the
// others wrap every value in JSON (X-SMTPAPI, X-Mailgun-Variables) or allow
// only [A-Za-z0-9_-] (X-SES-MESSAGE-TAGS). herald's sandbox reads it too.
//
// Replies: RFC 5321 §4.2 (https://www.rfc-editor.org/rfc/rfc5321#section-4.2);
// enhanced status codes: RFC 3463 (https://www.rfc-editor.org/rfc/rfc3463).
package smtp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"herald"
	"herald/clock"
	"herald/provider"
)

// Config configures an SMTP partner.
type Config struct {
	// Name is the partner's configured name. Required.
	Name string
	// Host is the SMTP server's host name. Required.
	Host string
	// Port is the server's port. Defaults to 587 (465 with TLS "tls").
	Port int
	// Username and Password authenticate with AUTH PLAIN when Username is
	// set; PLAIN is only ever sent over TLS unless TLS is "none".
	Username, Password string
	// TLS is "starttls" (STARTTLS is mandatory: a server without it is a
	// failed attempt, never a plain-text one), "tls" (implicit TLS) or
	// "none". Defaults to "starttls".
	TLS string
	// TLSConfig verifies the server. Defaults to the system roots for Host.
	TLSConfig *tls.Config
	// From is the sender address. Required.
	From string
	// Timeout bounds the connection and each stage of one send. Defaults to
	// 10s.
	Timeout time.Duration
	// Clock dates the messages. Defaults to clock.Real().
	Clock clock.Clock
	// TracerProvider makes the client span of each send. Defaults to the
	// global tracer provider.
	TracerProvider trace.TracerProvider
}

// Provider is an SMTP partner. It is safe for concurrent use: every send
// dials a connection of its own.
type Provider struct {
	cfg    Config
	tracer trace.Tracer
}

// New returns an SMTP partner for cfg, or an error naming the first field
// that is missing or invalid.
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
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
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
	case cfg.Port < 0 || cfg.Port > 65535:
		return nil, fmt.Errorf("smtp %s: port %d is out of range", cfg.Name, cfg.Port)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("smtp %s: timeout must be positive", cfg.Name)
	case !slices.Contains([]string{"starttls", "tls", "none"}, cfg.TLS):
		return nil, fmt.Errorf("smtp %s: tls: want starttls, tls or none, got %q", cfg.Name, cfg.TLS)
	}
	if _, err := domain(cfg.From); err != nil {
		return nil, fmt.Errorf("smtp %s: from: %w", cfg.Name, err)
	}
	return &Provider{cfg: cfg, tracer: cfg.TracerProvider.Tracer("herald/provider/smtp")}, nil
}

// Name returns the configured name.
func (p *Provider) Name() string { return p.cfg.Name }

// Kind returns "smtp".
func (p *Provider) Kind() string { return "smtp" }

// HeaderPrefix starts the name of the header each metadata entry travels in.
const HeaderPrefix = "X-PM-Metadata-"

// maxLine is RFC 5322's limit on a line, CRLF excluded
// (https://www.rfc-editor.org/rfc/rfc5322#section-2.1.1).
const maxLine = 998

// CheckMetadata requires keys usable in a header name (printable ASCII
// without spaces or colons, RFC 5322 §2.2) and header names within a line;
// go-mail folds long values, so values are free.
func (p *Provider) CheckMetadata(md map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if k == "" || strings.IndexFunc(k, func(r rune) bool { return r <= ' ' || r > '~' || r == ':' }) >= 0 {
			return herald.Invalid("metadata."+k, "invalid", "smtp metadata keys become header names: printable ASCII without spaces or colons (RFC 5322 2.2)")
		}
		if len(HeaderPrefix)+len(k)+len(": ")+80 > maxLine {
			return herald.Invalid("metadata."+k, "invalid", "smtp metadata keys become header names, and a header line is limited to %d characters (RFC 5322 2.1.1)", maxLine)
		}
	}
	return nil
}

// Message builds the message for e, dated by the provider's clock: From,
// To, Subject, Date, a fresh Message-ID under the sender's domain, the text
// (and the HTML as a multipart/alternative) and one header per metadata
// entry. It returns an error when an address cannot be used.
func (p *Provider) Message(e *herald.Email) (*gomail.Msg, error) {
	m := gomail.NewMsg()
	if err := m.From(p.cfg.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := m.To(e.To); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	m.Subject(e.Subject)
	m.SetDateWithValue(p.cfg.Clock.Now())
	d, _ := domain(p.cfg.From) // checked by New
	m.SetMessageIDWithValue(strings.ToLower(rand.Text()) + "@" + d)
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
		m.SetGenHeader(gomail.Header(HeaderPrefix+k), e.Metadata[k]) // RFC 2047-encoded: no CR/LF gets through
	}
	return m, nil
}

func domain(addr string) (string, error) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || at == len(addr)-1 {
		return "", fmt.Errorf("%q is not an email address", addr)
	}
	return strings.Trim(addr[at+1:], "> "), nil
}

// Send makes one attempt to hand e to the SMTP server: one connection, one
// message, one recipient. ctx bounds the whole exchange: when it ends the
// connection is closed.
func (p *Provider) Send(ctx context.Context, e *herald.Email) herald.Result {
	ctx, span := p.tracer.Start(ctx, "smtp.Send", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("server.address", p.cfg.Host), attribute.Int("server.port", p.cfg.Port),
		attribute.String("herald.partner", p.cfg.Name)))
	defer span.End()
	r := p.send(ctx, e)
	provider.RecordResult(span, r, "herald.smtp.reply_code")
	return r
}

func (p *Provider) send(ctx context.Context, e *herald.Email) herald.Result {
	summary := fmt.Sprintf("SMTP %s to %s:%d tls=%s metadata_keys=[%s]", p.cfg.From, p.cfg.Host, p.cfg.Port, p.cfg.TLS,
		strings.Join(slices.Sorted(maps.Keys(e.Metadata)), ","))
	if err := p.CheckMetadata(e.Metadata); err != nil { // fail closed
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "encode", Request: summary, Error: "smtp: " + err.Error()}
	}
	m, err := p.Message(e)
	if err != nil {
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "validation", Request: summary, Error: "smtp: " + err.Error()}
	}
	rec := &ioRecord{}
	c, err := p.client(ctx, rec)
	if err != nil {
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "config", Request: summary, PartnerSide: true, Error: "smtp: " + err.Error()}
	}
	var sendErr error
	dialErr := c.DialWithContext(ctx)
	if dialErr == nil {
		sendErr = c.Send(m)
		if err := c.Close(); err != nil {
			sendErr = errors.Join(sendErr, fmt.Errorf("quit: %w", err))
		}
	}
	// go-mail's SendError does not unwrap to the network error under it:
	// join the first one the connection saw, and ctx's end, so a timeout
	// can be told from a lost connection.
	under := errors.Join(rec.get(), context.Cause(ctx))
	if dialErr != nil {
		dialErr = errors.Join(dialErr, under)
	} else if sendErr != nil {
		sendErr = errors.Join(sendErr, under)
	}
	r := Classify(m, dialErr, sendErr)
	r.Request = summary
	if p.cfg.Password != "" { // no server echoes it; this makes sure
		r.Error = strings.ReplaceAll(r.Error, p.cfg.Password, "[redacted]")
		r.Response = strings.ReplaceAll(r.Response, p.cfg.Password, "[redacted]")
	}
	return r
}

// ioRecord keeps the first error the connection's reads or writes met.
type ioRecord struct {
	mu  sync.Mutex
	err error
}

func (r *ioRecord) note(err error) {
	if err == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
}

func (r *ioRecord) get() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// recordingConn notes its I/O errors in an ioRecord.
type recordingConn struct {
	net.Conn
	rec *ioRecord
}

func (c recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.rec.note(err)
	return n, err
}

func (c recordingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.rec.note(err)
	return n, err
}

// client returns a go-mail client for one send. Its connection is closed
// when ctx ends, so that go-mail, which reads ctx only while dialing, cannot
// outlive it.
func (p *Provider) client(ctx context.Context, rec *ioRecord) (*gomail.Client, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if p.cfg.TLSConfig != nil {
		tlsConfig = p.cfg.TLSConfig.Clone()
	}
	if tlsConfig.ServerName == "" {
		tlsConfig.ServerName = p.cfg.Host
	}
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := (&net.Dialer{}).DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		context.AfterFunc(ctx, func() { raw.Close() })
		var conn net.Conn = recordingConn{raw, rec}
		if p.cfg.TLS == "tls" {
			tc := tls.Client(conn, tlsConfig)
			if err := tc.HandshakeContext(dctx); err != nil {
				raw.Close()
				return nil, err
			}
			conn = tc
		}
		return conn, nil
	}
	opts := []gomail.Option{gomail.WithPort(p.cfg.Port), gomail.WithTimeout(p.cfg.Timeout),
		gomail.WithTLSConfig(tlsConfig), gomail.WithDialContextFunc(dial)}
	switch p.cfg.TLS {
	case "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "tls":
		opts = append(opts, gomail.WithSSL()) // the dialer above speaks TLS; go-mail then skips STARTTLS
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if p.cfg.Username != "" {
		auth := gomail.SMTPAuthPlain
		if p.cfg.TLS == "none" {
			auth = gomail.SMTPAuthPlainNoEnc // the operator chose a plain-text connection
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(p.cfg.Username), gomail.WithPassword(p.cfg.Password))
	}
	return gomail.NewClient(p.cfg.Host, opts...)
}

// queuedAs finds the queue id in a 250 reply, as Postfix and most servers
// word it ("2.0.0 Ok: queued as 4ABC12").
var queuedAs = regexp.MustCompile(`(?i)queued as <?([A-Za-z0-9._@-]+)>?`)

// rateText is how servers word a rate limit in a 4xx reply (SES: "454
// Throttling failure", Gmail "421 4.7.28 … rate", Postfix "450 4.7.1 …
// too many"): the code alone does not tell a rate limit from an outage.
var rateText = regexp.MustCompile(`(?i)\brate\b|throttl|too many`)

// Classify decides the outcome of one send from the message's state, the
// error of the dial (greeting, EHLO, STARTTLS, AUTH) and the error of the
// send (MAIL, RCPT, DATA, RSET, QUIT), by the server's reply codes
// (reference/providers.md §5.3–§5.5, §7 cases 10, 11, 13):
//
//   - 250 after DATA: accepted, whatever failed after it;
//   - 4xx: transient, or throttled when the reply names a rate limit;
//   - 5xx: rejected — on the partner's side for AUTH and the sender;
//   - no reply before the message's final dot was written: transient (the
//     server cannot have it); after: unknown (the server may have it).
func Classify(m *gomail.Msg, dialErr, sendErr error) herald.Result {
	if m.IsDelivered() {
		// 250 after DATA: taken. A failure after it (RSET, QUIT) must not
		// lead to a retry, which would send the message twice (§7 case 11).
		resp := m.ServerResponse()
		r := herald.Result{Outcome: herald.OutcomeAccepted, Reason: "ok", Status: 250, Response: "250 " + resp}
		if match := queuedAs.FindStringSubmatch(resp); match != nil {
			r.MessageID = match[1]
		} else {
			// The 250 is SMTP's whole success shape; without a queue id,
			// the Message-ID herald set is what a DSN would quote.
			r.MessageID = strings.Trim(m.GetMessageID(), "<>")
		}
		if sendErr != nil {
			r.Error = "smtp: after the message was accepted: " + sendErr.Error()
		}
		return r
	}
	if dialErr != nil {
		return classifyDial(dialErr)
	}
	var se *gomail.SendError
	if !errors.As(m.SendError(), &se) {
		if sendErr == nil {
			return herald.Result{Outcome: herald.OutcomeUnknown, Reason: "unexpected_status", PartnerSide: true,
				Error: "smtp: no error, yet the server did not confirm the message"}
		}
		// go-mail failed before the message's own commands (its NOOP
		// connection check): nothing was sent.
		return noReply(sendErr, sendErr, false)
	}
	code := se.ErrorCode()
	r := herald.Result{Status: code, Error: "smtp: " + se.Error()}
	if code == 0 {
		// No reply to read. Only the dot that ends DATA commits the server
		// (RFC 5321 §4.1.1.4): before DataClose it was never written.
		return noReply(se, sendErr, se.Reason == gomail.ErrSMTPDataClose)
	}
	r.Response = reply(se.Error(), code)
	enhanced := se.EnhancedStatusCode()
	switch {
	case code == 530 || code == 534 || code == 535 || code == 538:
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "auth", true
	case se.Reason == gomail.ErrSMTPMailFrom && code >= 500 &&
		(code == 553 || strings.HasSuffix(enhanced, ".1.7") || strings.HasSuffix(enhanced, ".1.8")):
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "unverified_sender", true
	case code >= 400 && code < 500 && rateText.MatchString(r.Response):
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeThrottled, "rate_limited", true
	case code >= 400 && code < 500:
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeTransient, "server_error", true
	case code == 552 || enhanced == "5.3.4":
		r.Outcome, r.Reason = herald.OutcomeRejected, "too_large"
	case code >= 500:
		r.Outcome, r.Reason = herald.OutcomeRejected, "validation"
	default: // a 1xx, 2xx or 3xx where another was due
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeTransient, "server_error", true
	}
	return r
}

// classifyDial classifies a failure to connect, greet, start TLS or
// authenticate: the message was never offered.
func classifyDial(err error) herald.Result {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return noReply(err, err, false)
	}
	r := herald.Result{Status: te.Code, Response: fmt.Sprintf("%03d %s", te.Code, strings.ToValidUTF8(te.Msg, "\uFFFD")), Error: "smtp: " + err.Error(), PartnerSide: true}
	switch {
	case te.Code == 530 || te.Code == 534 || te.Code == 535 || te.Code == 538:
		r.Outcome, r.Reason = herald.OutcomeRejected, "auth"
	case te.Code >= 400 && te.Code < 500 && rateText.MatchString(te.Msg):
		r.Outcome, r.Reason = herald.OutcomeThrottled, "rate_limited"
	case te.Code >= 500:
		r.Outcome, r.Reason = herald.OutcomeRejected, "forbidden" // the server refuses this client
	default:
		r.Outcome, r.Reason = herald.OutcomeTransient, "server_error"
	}
	return r
}

// noReply classifies err, which carries no reply code: a refused or lost
// connection, a TLS failure, a timeout. cause is err with what lies under
// it; sent reports whether the message's final dot was written.
func noReply(err, cause error, sent bool) herald.Result {
	r := herald.Result{Error: "smtp: " + err.Error(), PartnerSide: true}
	var ne net.Error
	timeout := errors.Is(cause, context.DeadlineExceeded) || errors.As(cause, &ne) && ne.Timeout()
	switch {
	case !sent && timeout:
		r.Outcome, r.Reason = herald.OutcomeTransient, "timeout"
	case !sent:
		r.Outcome, r.Reason = herald.OutcomeTransient, "connection"
	case timeout:
		r.Outcome, r.Reason = herald.OutcomeUnknown, "timeout_after_send"
	default:
		r.Outcome, r.Reason = herald.OutcomeUnknown, "connection_lost_after_send"
	}
	return r
}

// reply cuts the server's reply out of go-mail's error text, which wraps
// it as "<stage>: <code> <text>, affected recipient(s): …", the text quoted
// by net/textproto.
func reply(s string, code int) string {
	i := strings.Index(s, strconv.Itoa(code)+" ")
	if i < 0 {
		return ""
	}
	s = s[i:]
	head, text := s[:4], s[4:]
	if q, err := strconv.QuotedPrefix(text); err == nil {
		text, _ = strconv.Unquote(q)
	} else if j := strings.Index(text, ", affected "); j >= 0 {
		text = text[:j]
	}
	return strings.ToValidUTF8(head+text, "\uFFFD")
}
