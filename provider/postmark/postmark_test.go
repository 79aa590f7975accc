package postmark_test

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
	"herald/provider/postmark"
	"herald/sandbox"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

type bundle struct {
	sb    *sandbox.Running
	clock *clock.Fake
	p     *postmark.Provider
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
	return &bundle{sb: sb, clock: fake, p: partner(t, sb.URL, "sandbox-postmark-token", fake)}
}

func partner(t *testing.T, url, token string, c clock.Clock) *postmark.Provider {
	t.Helper()
	p, err := postmark.New(postmark.Config{Name: "postmark-main", ServerToken: token, BaseURL: url,
		From: "alerts@example.com", Timeout: 2 * time.Second, Clock: c})
	require.NoError(t, err)
	return p
}

func email() *herald.Email {
	return &herald.Email{To: "oncall@example.com", Subject: "CPU high", Text: "p99 above 2s",
		Metadata: map[string]string{"team": "platform", herald.MetaNotificationID: "ntf_01m86pt8djqcdva78j8906sfz2", herald.MetaDeliveryID: "dlv_01m86pt8djqkves8nh691mc3pa"}}
}

func TestAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
	require.Equal(t, 200, r.Status)
	msgs := b.sb.Messages(sandbox.MessageFilter{MessageID: r.MessageID})
	require.Len(t, msgs, 1)
	require.Equal(t, map[string]string{"team": "platform", "herald_ntf": "ntf_01m86pt8djqcdva78j8906sfz2",
		"herald_dlv": "dlv_01m86pt8djqkves8nh691mc3pa"}, msgs[0].Metadata)
}

func TestRequestGolden(t *testing.T) {
	t.Parallel()
	got, err := postmark.Request("alerts@example.com", "outbound", email())
	require.NoError(t, err)
	path := filepath.Join("testdata", "request.json")
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(got))
}

func TestClassifiesEveryAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		fault       sandbox.Fault
		outcome     herald.Outcome
		reason      string
		partnerSide bool
		status      int
	}{
		{"incident: a metadata value refused", sandbox.Fault{Kind: sandbox.FaultRejectMetadata, Key: "team"}, herald.OutcomeRejected, "validation", false, 422},
		{"500", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 500}, herald.OutcomeTransient, "server_error", true, 500},
		{"503 maintenance", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 503}, herald.OutcomeTransient, "server_error", true, 503},
		{"nginx 502 page: the status is kept", sandbox.Fault{Kind: sandbox.FaultGateway502}, herald.OutcomeTransient, "server_error", true, 502},
		{"200 with no body", sandbox.Fault{Kind: sandbox.FaultEmptyBody}, herald.OutcomeUnknown, "unexpected_body", false, 200},
		{"200 with garbage", sandbox.Fault{Kind: sandbox.FaultGarbageBody}, herald.OutcomeUnknown, "unexpected_body", false, 200},
		{"connection dropped after the request", sandbox.Fault{Kind: sandbox.FaultDropConnection}, herald.OutcomeUnknown, "connection_lost_after_send", true, 0},
		{"stalled past the timeout", sandbox.Fault{Kind: sandbox.FaultStall}, herald.OutcomeUnknown, "timeout_after_send", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(c *sandbox.Config) { c.Faults = []sandbox.Fault{tc.fault} })
			r := b.p.Send(context.Background(), email())
			require.Equal(t, tc.outcome, r.Outcome, "%+v", r)
			require.Equal(t, tc.reason, r.Reason)
			require.Equal(t, tc.partnerSide, r.PartnerSide)
			require.Equal(t, tc.status, r.Status)
			require.Empty(t, r.MessageID)
		})
	}
}

func TestPartnerSideRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) { c.VerifiedSenders = []string{"verified.example.com"} })
	r := b.p.Send(context.Background(), email())
	require.Equal(t, "unverified_sender", r.Reason)
	require.True(t, r.PartnerSide)

	r = partner(t, b.sb.URL, "wrong-postmark-secret", b.clock).Send(context.Background(), email())
	require.Equal(t, herald.OutcomeRejected, r.Outcome)
	require.Equal(t, "auth", r.Reason)
	require.True(t, r.PartnerSide)
	require.NotContains(t, r.Error+r.Response+r.Request, "wrong-postmark-secret")

	// The test token validates and delivers nothing: never success.
	plain := setup(t, nil)
	r = partner(t, plain.sb.URL, "POSTMARK_API_TEST", plain.clock).Send(context.Background(), email())
	require.Equal(t, herald.OutcomeRejected, r.Outcome)
	require.Equal(t, "test_mode", r.Reason)
}

func TestThrottled(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Limits = map[sandbox.Partner]sandbox.Rate{sandbox.Postmark: {PerSecond: 1, Burst: 1}}
	})
	require.Equal(t, herald.OutcomeAccepted, b.p.Send(context.Background(), email()).Outcome)
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeThrottled, r.Outcome)
	require.Equal(t, 10*time.Second, r.RetryAfter, "Postmark names no wait: the documented default")
}

func TestCheckMetadata(t *testing.T) {
	t.Parallel()
	p := partner(t, "http://127.0.0.1:1", "k", nil)
	require.NoError(t, p.CheckMetadata(email().Metadata))
	for want, md := range map[string]map[string]string{
		"1 to 20 characters":            {"a_key_longer_than_twenty": "v"},
		"at most 80 characters":         {"k": strings.Repeat("v", 81)},
		"differ regardless of case":     {"Team": "a", "team": "b"},
		"herald's two ids included":     {"a": "", "b": "", "c": "", "d": "", "e": "", "f": "", "g": "", "h": "", "i": ""},
		"differ regardless of case; \"": {"HERALD_NTF": "x"},
	} {
		err := p.CheckMetadata(md)
		require.Equal(t, herald.EINVALID, herald.ErrorCode(err), "%v", md)
		require.ErrorContains(t, err, strings.TrimSuffix(want, "; \""))
	}
}
