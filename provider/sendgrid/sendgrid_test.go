package sendgrid_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/clock"
	"herald/provider/sendgrid"
	"herald/sandbox"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

type bundle struct {
	sb    *sandbox.Running
	clock *clock.Fake
	p     *sendgrid.Provider
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
	p, err := sendgrid.New(sendgrid.Config{Name: "sendgrid-main", APIKey: "SG.sandbox", BaseURL: sb.URL,
		From: "alerts@example.com", Timeout: 2 * time.Second, Clock: fake})
	require.NoError(t, err)
	return &bundle{sb: sb, clock: fake, p: p}
}

func email() *herald.Email {
	return &herald.Email{To: "oncall@example.com", Subject: "CPU high", Text: "p99 above 2s",
		Metadata: map[string]string{"team": "platform", herald.MetaNotificationID: "n-1", herald.MetaDeliveryID: "d-1"}}
}

func TestAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
	require.Equal(t, "ok", r.Reason)
	require.Equal(t, 202, r.Status)
	require.NotEmpty(t, r.MessageID)
	require.Contains(t, r.Request, "metadata_keys=[herald_delivery_id,herald_notification_id,team]")

	msgs := b.sb.Messages(sandbox.MessageFilter{MessageID: r.MessageID})
	require.Len(t, msgs, 1)
	require.Equal(t, email().Metadata, msgs[0].Metadata, "the partner stored every metadata value as sent")
}

func TestRequestGolden(t *testing.T) {
	t.Parallel()
	body, err := sendgrid.Request("alerts@example.com", &herald.Email{To: "oncall@example.com", Subject: "CPU high",
		Text: "p99 above 2s", HTML: "<p>p99 above 2s</p>", Metadata: map[string]string{"team": "platform & infra"}})
	require.NoError(t, err)
	golden(t, "request.json", body)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(got))
}

// Each of SendGrid's answers, as the sandbox gives them, and the outcome
// herald must take from it (reference/providers.md §7 cases 1–3, 13).
func TestClassifiesEveryAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		fault       sandbox.Fault
		outcome     herald.Outcome
		reason      string
		partnerSide bool
		errContains string
	}{
		{"incident: a metadata value refused", sandbox.Fault{Kind: sandbox.FaultRejectMetadata, Key: "team"},
			herald.OutcomeRejected, "validation", false, "custom_args"},
		{"500", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 500}, herald.OutcomeTransient, "server_error", true, "sendgrid 500"},
		{"nginx 502 page", sandbox.Fault{Kind: sandbox.FaultGateway502}, herald.OutcomeTransient, "server_error", true, "not its error shape"},
		{"403", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 403}, herald.OutcomeRejected, "forbidden", true, "access forbidden"},
		{"202 without X-Message-Id", sandbox.Fault{Kind: sandbox.FaultEmptyBody}, herald.OutcomeUnknown, "missing_message_id", false, "without X-Message-Id"},
		{"202 with garbage", sandbox.Fault{Kind: sandbox.FaultGarbageBody}, herald.OutcomeUnknown, "missing_message_id", false, ""},
		{"connection dropped after the request", sandbox.Fault{Kind: sandbox.FaultDropConnection}, herald.OutcomeUnknown, "connection_lost_after_send", true, ""},
		{"stalled past the timeout", sandbox.Fault{Kind: sandbox.FaultStall}, herald.OutcomeUnknown, "timeout_after_send", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(c *sandbox.Config) { c.Faults = []sandbox.Fault{tc.fault} })
			r := b.p.Send(context.Background(), email())
			require.Equal(t, tc.outcome, r.Outcome, "%+v", r)
			require.Equal(t, tc.reason, r.Reason)
			require.Equal(t, tc.partnerSide, r.PartnerSide)
			require.Contains(t, r.Error, tc.errContains)
			require.Empty(t, r.MessageID)
		})
	}
}

func TestWrongKeyAndUnverifiedSender(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) { c.VerifiedSenders = []string{"verified.example.com"} })
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeRejected, r.Outcome)
	require.Equal(t, "unverified_sender", r.Reason)
	require.True(t, r.PartnerSide, "another partner may have this sender verified")

	wrong, err := sendgrid.New(sendgrid.Config{Name: "sg", APIKey: "SG.wrong-secret", BaseURL: b.sb.URL, From: "a@verified.example.com"})
	require.NoError(t, err)
	r = wrong.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeRejected, r.Outcome)
	require.Equal(t, "auth", r.Reason)
	require.True(t, r.PartnerSide)
	require.NotContains(t, r.Error+r.Response+r.Request, "SG.wrong-secret")
}

func TestThrottledWaitsUntilTheNamedReset(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Limits = map[sandbox.Partner]sandbox.Rate{sandbox.SendGrid: {PerSecond: 0.25, Burst: 1}}
	})
	require.Equal(t, herald.OutcomeAccepted, b.p.Send(context.Background(), email()).Outcome)
	b.clock.Advance(1500 * time.Millisecond)
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeThrottled, r.Outcome)
	require.Equal(t, "rate_limited", r.Reason)
	// One token per 4 s; 1.5 s in, the next is due at 4 s, and the reset
	// header names that second: the wait is exactly 2.5 s.
	require.Equal(t, 2500*time.Millisecond, r.RetryAfter)
	require.Equal(t, "0", r.RateLimit["X-Ratelimit-Remaining"])
}

func TestCheckMetadata(t *testing.T) {
	t.Parallel()
	p, err := sendgrid.New(sendgrid.Config{Name: "sg", APIKey: "k", From: "a@example.com"})
	require.NoError(t, err)
	require.NoError(t, p.CheckMetadata(map[string]string{"team": "platform & infra ✓"}))
	err = p.CheckMetadata(map[string]string{"event": "x"})
	require.Equal(t, herald.EINVALID, herald.ErrorCode(err))
	require.ErrorContains(t, err, "metadata.event")
	err = p.CheckMetadata(map[string]string{"big": strings.Repeat("x", 9900)})
	require.ErrorContains(t, err, "10000 bytes")
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for _, cfg := range []sendgrid.Config{{}, {Name: "a"}, {Name: "a", APIKey: "k"}} {
		_, err := sendgrid.New(cfg)
		require.Error(t, err)
	}
}
