package sandbox_test

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/smtp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	gomail "github.com/wneessen/go-mail"

	"herald/sandbox"
)

func smtpClient(t *testing.T, b *bundle, password string) *gomail.Client {
	t.Helper()
	host, port, err := net.SplitHostPort(b.sb.SMTPAddr)
	require.NoError(t, err)
	p, _ := strconv.Atoi(port)
	c, err := gomail.NewClient(host, gomail.WithPort(p), gomail.WithTLSPolicy(gomail.TLSMandatory),
		gomail.WithTLSConfig(&tls.Config{InsecureSkipVerify: true}), // the sandbox's certificate is generated at start
		gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername("sandbox"), gomail.WithPassword(password),
		gomail.WithTimeout(5*time.Second))
	require.NoError(t, err)
	return c
}

func smtpMessage(t *testing.T, to ...string) *gomail.Msg {
	t.Helper()
	m := gomail.NewMsg()
	require.NoError(t, m.From("alerts@example.com"))
	require.NoError(t, m.To(to...))
	m.Subject("CPU high ✓")
	m.SetBodyString(gomail.TypeTextPlain, "p99 above 2s")
	m.SetGenHeader("X-PM-Metadata-notification_id", "n-1")
	return m
}

func TestSMTPAcceptedWithGoMail(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	m := smtpMessage(t, "oncall@example.com")
	require.NoError(t, smtpClient(t, b, "sandbox-smtp-password").DialAndSend(m))
	require.True(t, m.IsDelivered())
	require.Contains(t, m.ServerResponse(), "queued as")

	msgs := b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.SMTP})
	require.Len(t, msgs, 1)
	require.Equal(t, "CPU high ✓", msgs[0].Subject)
	require.Equal(t, []string{"oncall@example.com"}, msgs[0].To)
	require.Contains(t, msgs[0].Text, "p99 above 2s")
	require.Equal(t, map[string]string{"notification_id": "n-1"}, msgs[0].Metadata)
	require.Contains(t, m.ServerResponse(), msgs[0].MessageID)
}

func TestSMTPWrongPassword(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	err := smtpClient(t, b, "wrong-password").DialAndSend(smtpMessage(t, "oncall@example.com"))
	require.Error(t, err)
	require.Contains(t, err.Error(), "535")
	require.NotContains(t, err.Error(), "wrong-password")
	require.Empty(t, b.sb.Messages(sandbox.MessageFilter{}))
}

// reference/providers.md §5.4: one refused recipient aborts the whole
// message in go-mail — the accepted recipients get nothing either — and
// whether the failure looks temporary depends on the order of recipients.
func TestSMTPOneRefusedRecipientAbortsTheMessage(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	err := smtpClient(t, b, "sandbox-smtp-password").DialAndSend(smtpMessage(t, "oncall@example.com", "reject@example.com"))
	require.Error(t, err)
	require.Empty(t, b.sb.Messages(sandbox.MessageFilter{}), "the accepted recipient got nothing")

	isTemp := func(rcpts ...string) bool {
		err := smtpClient(t, b, "sandbox-smtp-password").DialAndSend(smtpMessage(t, rcpts...))
		var se *gomail.SendError
		require.True(t, errors.As(err, &se), "%v", err)
		return se.IsTemp()
	}
	require.True(t, isTemp("reject@example.com", "tempfail@example.com"), "[550, 452] looks temporary")
	require.False(t, isTemp("tempfail@example.com", "reject@example.com"), "[452, 550] looks permanent")
}

// A connection dropped after DATA: the message was taken, the client gets
// an error — the outcome is unknown.
func TestSMTPDroppedAfterData(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Partner: sandbox.SMTP, Kind: sandbox.FaultDropConnection}}
	})
	m := smtpMessage(t, "oncall@example.com")
	err := smtpClient(t, b, "sandbox-smtp-password").DialAndSend(m)
	require.Error(t, err)
	require.Len(t, b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.SMTP}), 1, "the partner has it")
}

func TestSMTPFaultsAndLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	send := func() error {
		return smtpClient(t, b, "sandbox-smtp-password").DialAndSend(smtpMessage(t, "oncall@example.com"))
	}
	f, err := b.sb.AddFault(sandbox.Fault{Partner: sandbox.SMTP, Kind: sandbox.FaultStatus, Status: 451})
	require.NoError(t, err)
	err = send()
	var se *gomail.SendError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 451, se.ErrorCode())
	b.sb.RemoveFault(f.ID)

	_, err = b.sb.AddFault(sandbox.Fault{Partner: sandbox.SMTP, Kind: sandbox.FaultRejectMetadata, Key: "notification_id"})
	require.NoError(t, err)
	err = send()
	require.ErrorContains(t, err, "550")
	b.sb.Reset()

	require.NoError(t, b.sb.SetLimit(sandbox.SMTP, sandbox.Rate{PerSecond: 1, Burst: 1}))
	require.NoError(t, send())
	err = send()
	require.ErrorContains(t, err, "454")
	b.clock.Advance(time.Second)
	require.NoError(t, send())

	rec := serve(b.sb.Handler(), http.MethodGet, "/metrics", nil)
	require.Contains(t, rec.Body.String(), `herald_sandbox_requests_total{code="454",partner="smtp"}`)
	require.Contains(t, rec.Body.String(), `herald_sandbox_messages_accepted_total{partner="smtp"} 2`)
}

func TestSMTPLineTooLong(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	c, err := smtp.Dial(b.sb.SMTPAddr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.StartTLS(&tls.Config{InsecureSkipVerify: true}))
	require.NoError(t, c.Auth(smtp.PlainAuth("", "sandbox", "sandbox-smtp-password", "127.0.0.1")))
	err = smtpSend(c, "From: alerts@example.com\r\nX-Long: "+strings.Repeat("x", 1000)+"\r\nSubject: s\r\n\r\nbody\r\n")
	require.ErrorContains(t, err, "554", "lines are limited to 998 characters")
	require.Empty(t, b.sb.Messages(sandbox.MessageFilter{}))
}

// FuzzSMTPMessage: whatever DATA holds, the sandbox answers with an SMTP
// reply and never panics.
func FuzzSMTPMessage(f *testing.F) {
	for _, seed := range []string{
		"From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n",
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n--b--\r\n",
		"X-SMTPAPI: {\"unique_args\":{\"k\":1}}\r\nX-SES-MESSAGE-TAGS: a=b, c\r\n\r\n",
		"Subject: =?utf-8?q?caf=C3=A9?=\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E2=9C=93=\r\n", "", ":\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		sandbox.ParseSMTPMessageForTest(raw)
	})
}
