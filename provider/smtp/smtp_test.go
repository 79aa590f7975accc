package smtp_test

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/provider/smtp"
	"herald/sandbox"
)

type bundle struct {
	sb *sandbox.Running
	p  *smtp.Provider
}

func setup(t *testing.T, change func(*sandbox.Config)) *bundle {
	t.Helper()
	cfg := sandbox.Config{Seed: 1}
	if change != nil {
		change(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); sb.Close() })
	return &bundle{sb: sb, p: partner(t, sb.SMTPAddr, "sandbox-smtp-password")}
}

func partner(t *testing.T, addr, password string) *smtp.Provider {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, _ := strconv.Atoi(port)
	p, err := smtp.New(smtp.Config{Name: "smtp-main", Host: host, Port: n, Username: "sandbox", Password: password,
		TLSConfig: &tls.Config{InsecureSkipVerify: true}, // the sandbox's certificate is generated at start
		From:      "alerts@example.com", Timeout: time.Second})
	require.NoError(t, err)
	return p
}

func email(to string) *herald.Email {
	return &herald.Email{To: to, Subject: "CPU high ✓", Text: "p99 above 2s", HTML: "<p>p99 above 2s</p>",
		Metadata: map[string]string{"team": "platform & infra", herald.MetaDeliveryID: "d-1"}}
}

func TestAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	r := b.p.Send(context.Background(), email("oncall@example.com"))
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
	require.Equal(t, 250, r.Status)
	msgs := b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.SMTP})
	require.Len(t, msgs, 1)
	require.Equal(t, r.MessageID, msgs[0].MessageID, "the queue id from 250 queued as …")
	require.Equal(t, "CPU high ✓", msgs[0].Subject)
	require.Contains(t, msgs[0].Text, "p99 above 2s")
	require.Contains(t, msgs[0].HTML, "<p>p99 above 2s</p>")
	require.Equal(t, email("").Metadata, msgs[0].Metadata)
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
	}{
		{"recipient refused", "reject@example.com", nil, herald.OutcomeRejected, "validation", 550, false},
		{"recipient deferred", "tempfail@example.com", nil, herald.OutcomeTransient, "server_error", 452, true},
		{"451", "oncall@example.com", &sandbox.Fault{Kind: sandbox.FaultStatus, Status: 451}, herald.OutcomeTransient, "server_error", 451, true},
		{"incident: a metadata value refused", "oncall@example.com", &sandbox.Fault{Kind: sandbox.FaultRejectMetadata, Key: "team"}, herald.OutcomeRejected, "validation", 550, false},
		{"dropped after DATA", "oncall@example.com", &sandbox.Fault{Kind: sandbox.FaultDropConnection}, herald.OutcomeUnknown, "connection_lost_after_send", 0, true},
		{"stalled at DATA", "oncall@example.com", &sandbox.Fault{Kind: sandbox.FaultStall}, herald.OutcomeUnknown, "connection_lost_after_send", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(c *sandbox.Config) {
				if tc.fault != nil {
					c.Faults = []sandbox.Fault{*tc.fault}
				}
			})
			r := b.p.Send(context.Background(), email(tc.to))
			require.Equal(t, tc.outcome, r.Outcome, "%+v", r)
			require.Equal(t, tc.reason, r.Reason, "%+v", r)
			require.Equal(t, tc.status, r.Status, "%+v", r)
			require.Equal(t, tc.partnerSide, r.PartnerSide)
			require.Empty(t, r.MessageID)
		})
	}
}

func TestPartnerSideFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	r := partner(t, b.sb.SMTPAddr, "wrong-smtp-secret").Send(context.Background(), email("oncall@example.com"))
	require.Equal(t, herald.OutcomeRejected, r.Outcome, "%+v", r)
	require.Equal(t, "auth", r.Reason)
	require.True(t, r.PartnerSide)
	require.NotContains(t, r.Error+r.Response+r.Request, "wrong-smtp-secret")

	require.NoError(t, b.sb.SetLimit(sandbox.SMTP, sandbox.Rate{PerSecond: 0.001, Burst: 1}))
	require.Equal(t, herald.OutcomeAccepted, b.p.Send(context.Background(), email("oncall@example.com")).Outcome)
	r = b.p.Send(context.Background(), email("oncall@example.com"))
	require.Equal(t, herald.OutcomeThrottled, r.Outcome, "%+v", r)
	require.Equal(t, 454, r.Status)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	r = partner(t, addr, "x").Send(context.Background(), email("oncall@example.com"))
	require.Equal(t, herald.OutcomeTransient, r.Outcome, "%+v", r)
	require.Equal(t, "connection", r.Reason)
}

func TestCheckMetadata(t *testing.T) {
	t.Parallel()
	p := partner(t, "127.0.0.1:25", "x")
	require.NoError(t, p.CheckMetadata(map[string]string{"team": "platform & infra ✓"}))
	for _, bad := range []string{"my key", "a:b", "", "ключ"} {
		require.Equal(t, herald.EINVALID, herald.ErrorCode(p.CheckMetadata(map[string]string{bad: "v"})), bad)
	}
	_, err := smtp.New(smtp.Config{Name: "x", Host: "h", From: "f", TLS: "maybe"})
	require.ErrorContains(t, err, "tls")
}
