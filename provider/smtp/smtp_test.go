package smtp_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"herald"
	"herald/clock"
	"herald/provider/smtp"
	"herald/sandbox"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

const password = "sandbox-smtp-password"

type bundle struct {
	sb    *sandbox.Running
	clock *clock.Fake
	spans *tracetest.SpanRecorder
	p     *smtp.Provider
}

func setup(t *testing.T, change func(*sandbox.Config)) *bundle {
	t.Helper()
	fake := clock.NewFake(t0)
	cfg := sandbox.Config{Clock: fake, Seed: 1}
	if change != nil {
		change(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); sb.Close() })
	b := &bundle{sb: sb, clock: fake, spans: tracetest.NewSpanRecorder()}
	b.p = b.partner(t, sb.SMTPAddr, password, time.Second)
	return b
}

// partner returns an adapter for the SMTP server at addr.
func (b *bundle) partner(t *testing.T, addr, password string, timeout time.Duration) *smtp.Provider {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(port)
	require.NoError(t, err)
	p, err := smtp.New(smtp.Config{Name: "smtp-main", Host: host, Port: n, Username: "sandbox", Password: password,
		TLSConfig: &tls.Config{InsecureSkipVerify: true}, // the sandbox's certificate is generated at start
		From:      "alerts@example.com", Timeout: timeout, Clock: b.clock,
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b.spans))})
	require.NoError(t, err)
	return p
}

func email(to string) *herald.Email {
	return &herald.Email{To: to, Subject: "CPU high ✓", Text: "p99 above 2s", HTML: "<p>p99 above 2s</p>",
		Metadata: map[string]string{"team": "platform & infra", herald.MetaNotificationID: "n-1", herald.MetaDeliveryID: "d-1"}}
}

func TestAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	r := b.p.Send(context.Background(), email("oncall@example.com"))
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, "%+v", r)
	require.Equal(t, "ok", r.Reason)
	require.Equal(t, 250, r.Status)
	require.Contains(t, r.Response, "queued as "+r.MessageID)
	require.Contains(t, r.Request, "metadata_keys=[herald_delivery_id,herald_notification_id,team]")
	require.Empty(t, r.Error)

	msgs := b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.SMTP})
	require.Len(t, msgs, 1)
	require.Equal(t, r.MessageID, msgs[0].MessageID, "the queue id from 250 queued as …")
	require.Equal(t, "CPU high ✓", msgs[0].Subject)
	require.Equal(t, "p99 above 2s", msgs[0].Text)
	require.Equal(t, "<p>p99 above 2s</p>", msgs[0].HTML)
	require.Equal(t, email("").Metadata, msgs[0].Metadata, "every metadata value arrived as sent")
	require.Equal(t, []string{"oncall@example.com"}, msgs[0].To)

	spans := b.spans.Ended()
	require.Len(t, spans, 1)
	require.Equal(t, "smtp.Send", spans[0].Name())
	require.Equal(t, trace.SpanKindClient, spans[0].SpanKind())
	attrs := attribute.NewSet(spans[0].Attributes()...)
	port, _ := attrs.Value("server.port")
	require.NotZero(t, port.AsInt64())
	code, _ := attrs.Value("herald.smtp.reply_code")
	require.EqualValues(t, 250, code.AsInt64())
	id, _ := attrs.Value("herald.partner_message_id")
	require.Equal(t, r.MessageID, id.AsString())
}

func TestClassifiesEveryAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		to          string
		fault       *sandbox.Fault
		outcome     herald.Outcome
		reason      string
		status      int
		partnerSide bool
		response    string // part of the server's reply kept in the result
		inMailbox   bool
	}{
		{"recipient refused", "reject@example.com", nil, herald.OutcomeRejected, "validation", 550, false, "5.1.1 Recipient address rejected", false},
		{"recipient deferred", "tempfail@example.com", nil, herald.OutcomeTransient, "server_error", 452, true, "4.2.2 Mailbox full", false},
		{"451 at MAIL", "oncall@example.com", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 451}, herald.OutcomeTransient, "server_error", 451, true, "451 4.3.0", false},
		{"421 at MAIL", "oncall@example.com", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 421}, herald.OutcomeTransient, "server_error", 421, true, "421 4.3.0 Service not available", false},
		{"429 becomes 451 rate limit", "oncall@example.com", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 429}, herald.OutcomeThrottled, "rate_limited", 451, true, "Rate limit exceeded", false},
		{"554 at MAIL", "oncall@example.com", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 554}, herald.OutcomeRejected, "validation", 554, false, "554 5.3.0", false},
		{"incident: a metadata value refused", "oncall@example.com", &sandbox.Fault{Kind: sandbox.FaultRejectMetadata, Key: "team"}, herald.OutcomeRejected, "validation", 550, false, "550 5.7.1 Message rejected: metadata header field team is not acceptable", false},
		{"dropped after DATA", "oncall@example.com", &sandbox.Fault{Kind: sandbox.FaultDropConnection}, herald.OutcomeUnknown, "connection_lost_after_send", 0, true, "", true},
		{"stalled at DATA", "oncall@example.com", &sandbox.Fault{Kind: sandbox.FaultStall}, herald.OutcomeUnknown, "timeout_after_send", 0, true, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(c *sandbox.Config) {
				if tc.fault != nil {
					c.Faults = []sandbox.Fault{*tc.fault}
				}
			})
			if tc.fault != nil && tc.fault.Kind == sandbox.FaultStall {
				b.p = b.partner(t, b.sb.SMTPAddr, password, 200*time.Millisecond)
			}
			r := b.p.Send(context.Background(), email(tc.to))
			require.Equal(t, tc.outcome, r.Outcome, "%+v", r)
			require.Equal(t, tc.reason, r.Reason, "%+v", r)
			require.Equal(t, tc.status, r.Status, "%+v", r)
			require.Equal(t, tc.partnerSide, r.PartnerSide, "%+v", r)
			require.Contains(t, r.Response, tc.response)
			require.NotEmpty(t, r.Error)
			require.Empty(t, r.MessageID)
			require.Len(t, b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.SMTP}), map[bool]int{true: 1}[tc.inMailbox],
				"the mailbox holds the message only when the server took it")
		})
	}
}

func TestPartnerSideFailures(t *testing.T) {
	t.Parallel()
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		r := b.partner(t, b.sb.SMTPAddr, "wrong-smtp-secret", time.Second).Send(context.Background(), email("oncall@example.com"))
		require.Equal(t, herald.OutcomeRejected, r.Outcome, "%+v", r)
		require.Equal(t, "auth", r.Reason)
		require.Equal(t, 535, r.Status)
		require.True(t, r.PartnerSide)
		require.Contains(t, r.Response, "5.7.8")
		for _, field := range []string{r.Error, r.Response, r.Request} {
			require.NotContains(t, field, "wrong-smtp-secret")
		}
		require.Empty(t, b.sb.Messages(sandbox.MessageFilter{}))
	})
	t.Run("unverified sender", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *sandbox.Config) { c.VerifiedSenders = []string{"@verified.example.com"} })
		r := b.p.Send(context.Background(), email("oncall@example.com"))
		require.Equal(t, herald.OutcomeRejected, r.Outcome, "%+v", r)
		require.Equal(t, "unverified_sender", r.Reason)
		require.Equal(t, 553, r.Status)
		require.True(t, r.PartnerSide)
	})
	t.Run("rate limit", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *sandbox.Config) {
			c.Limits = map[sandbox.Partner]sandbox.Rate{sandbox.SMTP: {PerSecond: 1, Burst: 1}}
		})
		require.Equal(t, herald.OutcomeAccepted, b.p.Send(context.Background(), email("oncall@example.com")).Outcome)
		r := b.p.Send(context.Background(), email("oncall@example.com")) // the fake clock has not moved
		require.Equal(t, herald.OutcomeThrottled, r.Outcome, "%+v", r)
		require.Equal(t, "rate_limited", r.Reason)
		require.Equal(t, 454, r.Status)
		require.True(t, r.PartnerSide)
		require.Zero(t, r.RetryAfter, "SMTP names no wait: herald's backoff decides")
	})
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		r := b.partner(t, addr, password, time.Second).Send(context.Background(), email("oncall@example.com"))
		require.Equal(t, herald.OutcomeTransient, r.Outcome, "%+v", r)
		require.Equal(t, "connection", r.Reason)
		require.True(t, r.PartnerSide)
		require.Zero(t, r.Status)
	})
	t.Run("TLS handshake fails", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		host, port, _ := net.SplitHostPort(b.sb.SMTPAddr)
		n, _ := strconv.Atoi(port)
		p, err := smtp.New(smtp.Config{Name: "smtp-main", Host: host, Port: n, Username: "sandbox", Password: password,
			From: "alerts@example.com", Timeout: time.Second, Clock: b.clock}) // verifies the self-signed certificate
		require.NoError(t, err)
		r := p.Send(context.Background(), email("oncall@example.com"))
		require.Equal(t, herald.OutcomeTransient, r.Outcome, "%+v", r)
		require.Equal(t, "connection", r.Reason)
		require.Contains(t, r.Error, "certificate")
	})
	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *sandbox.Config) { c.Faults = []sandbox.Fault{{Kind: sandbox.FaultStall}} })
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		r := b.partner(t, b.sb.SMTPAddr, password, time.Minute).Send(ctx, email("oncall@example.com"))
		require.Equal(t, herald.OutcomeUnknown, r.Outcome, "%+v", r)
		require.Equal(t, "timeout_after_send", r.Reason, "ctx's deadline ended the wait, not the 1m timeout")
	})
}

// TestAcceptedThenConnectionLost is reference/providers.md §7 case 11: the
// server answered 250 to DATA and the connection broke before RSET was
// answered; go-mail returns an error, yet the message is the server's and
// must never be sent again. The sandbox serves on a listener whose
// connections break at the first read after the message reached the mailbox.
func TestAcceptedThenConnectionLost(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := b.sb.ServeSMTP(breakAfterAccept{l, b.sb})
	t.Cleanup(func() { srv.Close() })

	r := b.partner(t, l.Addr().String(), password, time.Second).Send(context.Background(), email("oncall@example.com"))
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, "%+v", r)
	require.Equal(t, 250, r.Status)
	require.Contains(t, r.Error, "after the message was accepted")
	require.Contains(t, r.Error, "RESET")
	msgs := b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.SMTP})
	require.Len(t, msgs, 1)
	require.Equal(t, msgs[0].MessageID, r.MessageID)
}

// breakAfterAccept hands out connections that close themselves at the first
// read after the sandbox's answer to a message it took.
type breakAfterAccept struct {
	net.Listener
	sb *sandbox.Running
}

func (l breakAfterAccept) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &breakingConn{Conn: c, sb: l.sb}, nil
}

type breakingConn struct {
	net.Conn
	sb      *sandbox.Running
	written atomic.Bool // the server wrote after the message reached the mailbox
}

func (c *breakingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if len(c.sb.Messages(sandbox.MessageFilter{Partner: sandbox.SMTP})) > 0 {
		c.written.Store(true)
	}
	return n, err
}

func (c *breakingConn) Read(p []byte) (int, error) {
	if c.written.Load() {
		c.Conn.Close()
		return 0, net.ErrClosed
	}
	return c.Conn.Read(p)
}

func TestMessageGolden(t *testing.T) {
	t.Parallel()
	b := &bundle{clock: clock.NewFake(t0), spans: tracetest.NewSpanRecorder()}
	p := b.partner(t, "127.0.0.1:2525", password, time.Second)
	m, err := p.Message(&herald.Email{To: "oncall@example.com", Subject: "CPU high ✓", Text: "p99 above 2s",
		HTML: "<p>p99 above 2s</p>", Metadata: map[string]string{"team": "platform & infra", "note": "line\r\nBcc: evil@example.com"}})
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = m.WriteTo(&buf)
	require.NoError(t, err)
	raw := buf.Bytes()
	require.Regexp(t, `(?m)^Message-ID: <[a-z2-7]{26}@example\.com>\r$`, string(raw))
	require.NotRegexp(t, `(?mi)^Bcc:`, string(raw), "a value cannot inject a header")
	// The deterministic parts: the Message-ID and the MIME boundary are random.
	raw = regexp.MustCompile(`<[a-z2-7]{26}@example\.com>`).ReplaceAll(raw, []byte("<MESSAGE-ID@example.com>"))
	for _, bnd := range regexp.MustCompile(`boundary=([0-9a-f]+)`).FindAllSubmatch(raw, -1) {
		raw = bytes.ReplaceAll(raw, bnd[1], []byte("BOUNDARY"))
	}
	golden(t, "message.eml", raw)
}

func TestCheckMetadata(t *testing.T) {
	t.Parallel()
	b := &bundle{clock: clock.NewFake(t0), spans: tracetest.NewSpanRecorder()}
	p := b.partner(t, "127.0.0.1:25", "x", time.Second)
	require.NoError(t, p.CheckMetadata(map[string]string{"team": "platform & infra ✓", "multi": "a\r\nb"}))
	for _, bad := range []string{"my key", "a:b", "", "ключ", "tab\tkey", string(make([]byte, 950))} {
		require.Equal(t, herald.EINVALID, herald.ErrorCode(p.CheckMetadata(map[string]string{bad: "v"})), bad)
	}
	r := p.Send(context.Background(), &herald.Email{To: "oncall@example.com", Metadata: map[string]string{"a:b": "v"}})
	require.Equal(t, herald.OutcomeRejected, r.Outcome)
	require.Equal(t, "encode", r.Reason, "fail closed: never sent")
	r = p.Send(context.Background(), &herald.Email{To: "not an address"})
	require.Equal(t, herald.OutcomeRejected, r.Outcome)
	require.Equal(t, "validation", r.Reason)
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  smtp.Config
		want string
	}{
		{smtp.Config{Host: "h", From: "a@example.com"}, "name is required"},
		{smtp.Config{Name: "x", From: "a@example.com"}, "host is required"},
		{smtp.Config{Name: "x", Host: "h"}, "from is required"},
		{smtp.Config{Name: "x", Host: "h", From: "nobody"}, "not an email address"},
		{smtp.Config{Name: "x", Host: "h", From: "a@example.com", TLS: "maybe"}, "tls"},
		{smtp.Config{Name: "x", Host: "h", From: "a@example.com", Port: 70000}, "port"},
	} {
		_, err := smtp.New(tc.cfg)
		require.ErrorContains(t, err, tc.want)
	}
	p, err := smtp.New(smtp.Config{Name: "x", Host: "h", From: "a@example.com"})
	require.NoError(t, err)
	require.Equal(t, "smtp", p.Kind())
	require.Equal(t, "x", p.Name())
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	require.Equal(t, string(want), string(got))
}
