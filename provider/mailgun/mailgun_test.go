package mailgun_test

import (
	"context"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/clock"
	"herald/provider/mailgun"
	"herald/sandbox"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

type bundle struct {
	sb    *sandbox.Running
	clock *clock.Fake
	p     *mailgun.Provider
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
	return &bundle{sb: sb, clock: fake, p: partner(t, sb.URL, "sandbox-mailgun-key", "mg.example.com", fake)}
}

func partner(t *testing.T, url, key, domain string, c clock.Clock) *mailgun.Provider {
	t.Helper()
	p, err := mailgun.New(mailgun.Config{Name: "mailgun-main", APIKey: key, Domain: domain, BaseURL: url,
		From: "alerts@mg.example.com", Timeout: 2 * time.Second, Clock: c})
	require.NoError(t, err)
	return p
}

func email() *herald.Email {
	return &herald.Email{To: "oncall@example.com", Subject: "CPU high", Text: "p99 above 2s",
		Metadata: map[string]string{"team": "platform & infra", herald.MetaNotificationID: "n-1", herald.MetaDeliveryID: "d-1"}}
}

func TestAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
	require.Regexp(t, `^<.+@mg\.example\.com>$`, r.MessageID, "the id as Mailgun writes it, with brackets")
	msgs := b.sb.Messages(sandbox.MessageFilter{MessageID: r.MessageID})
	require.Len(t, msgs, 1)
	require.Equal(t, email().Metadata, msgs[0].Metadata, "every value arrives, exactly")
}

func TestRequestGolden(t *testing.T) {
	t.Parallel()
	got := mailgun.Request("alerts@mg.example.com", email())
	path := filepath.Join("testdata", "request.form")
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
	form, err := url.ParseQuery(string(got))
	require.NoError(t, err)
	require.Equal(t, "platform & infra", form.Get("v:team"))
}

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
		{"incident: a metadata value refused", sandbox.Fault{Kind: sandbox.FaultRejectMetadata, Key: "team"}, herald.OutcomeRejected, "validation", false, "v:team"},
		{"500", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 500}, herald.OutcomeTransient, "server_error", true, "mailgun 500"},
		{"nginx 502 page", sandbox.Fault{Kind: sandbox.FaultGateway502}, herald.OutcomeTransient, "server_error", true, "not its error shape"},
		{"200 with no body", sandbox.Fault{Kind: sandbox.FaultEmptyBody}, herald.OutcomeUnknown, "missing_message_id", false, "without a message id"},
		{"200 with garbage", sandbox.Fault{Kind: sandbox.FaultGarbageBody}, herald.OutcomeUnknown, "unexpected_body", false, ""},
		{"200 with HTML", sandbox.Fault{Kind: sandbox.FaultHTMLBody}, herald.OutcomeUnknown, "unexpected_body", false, ""},
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

func TestPartnerSideRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) { c.VerifiedSenders = []string{"verified.example.com"} })
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeRejected, r.Outcome)
	require.Equal(t, "unverified_sender", r.Reason)
	require.True(t, r.PartnerSide)

	r = partner(t, b.sb.URL, "wrong-mailgun-secret", "mg.example.com", b.clock).Send(context.Background(), email())
	require.Equal(t, herald.OutcomeRejected, r.Outcome)
	require.Equal(t, "auth", r.Reason)
	require.True(t, r.PartnerSide)
	require.Contains(t, r.Error, "Forbidden", "Mailgun's 401 is plain text")
	require.NotContains(t, r.Error+r.Response+r.Request, "wrong-mailgun-secret")

	r = partner(t, b.sb.URL, "sandbox-mailgun-key", "other.example.com", b.clock).Send(context.Background(), email())
	require.Equal(t, "domain_not_found", r.Reason)
	require.True(t, r.PartnerSide)
}

func TestThrottledUntilTheNamedTime(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Limits = map[sandbox.Partner]sandbox.Rate{sandbox.Mailgun: {PerSecond: 0.1, Burst: 1}}
	})
	require.Equal(t, herald.OutcomeAccepted, b.p.Send(context.Background(), email()).Outcome)
	b.clock.Advance(4 * time.Second)
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeThrottled, r.Outcome)
	// One token per 10 s; 4 s in, "try again after" names t0+10 s: 6 s.
	require.Equal(t, 6*time.Second, r.RetryAfter)
}

func TestCheckMetadata(t *testing.T) {
	t.Parallel()
	p := partner(t, "http://127.0.0.1:1", "k", "mg.example.com", nil)
	require.NoError(t, p.CheckMetadata(map[string]string{"team": "platform & infra ✓"}))
	err := p.CheckMetadata(map[string]string{"my key": "x"})
	require.Equal(t, herald.EINVALID, herald.ErrorCode(err))
	require.ErrorContains(t, err, "metadata.my key")
	err = p.CheckMetadata(map[string]string{"big": strings.Repeat("x", 16300)})
	require.ErrorContains(t, err, "16 kB")
	for _, cfg := range []mailgun.Config{{}, {Name: "a"}, {Name: "a", APIKey: "k"}, {Name: "a", APIKey: "k", Domain: "d/x", From: "f"}} {
		_, err := mailgun.New(cfg)
		require.Error(t, err)
	}
}
