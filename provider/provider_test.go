package provider_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/provider"
)

func TestExcerptKeepsValidUTF8(t *testing.T) {
	t.Parallel()
	s := provider.Excerpt([]byte(strings.Repeat("é", provider.MaxExcerpt)))
	require.LessOrEqual(t, len(s), provider.MaxExcerpt)
	require.True(t, utf8.ValidString(s))
	require.Equal(t, "ok\uFFFD", provider.Excerpt([]byte("ok\xff")))
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	h := http.Header{}
	require.Zero(t, provider.RetryAfter(h, now))
	h.Set("Retry-After", "7")
	require.Equal(t, 7*time.Second, provider.RetryAfter(h, now))
	h.Set("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat))
	require.Equal(t, 90*time.Second, provider.RetryAfter(h, now))
	h.Set("Retry-After", "soon")
	require.Zero(t, provider.RetryAfter(h, now))
}

func TestByStatus(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]herald.Outcome{429: herald.OutcomeThrottled, 408: herald.OutcomeTransient,
		500: herald.OutcomeTransient, 503: herald.OutcomeTransient, 400: herald.OutcomeRejected, 401: herald.OutcomeRejected} {
		got, _, _ := provider.ByStatus(status)
		require.Equal(t, want, got, status)
	}
	_, reason, partnerSide := provider.ByStatus(401)
	require.Equal(t, "auth", reason)
	require.True(t, partnerSide)
	_, _, partnerSide = provider.ByStatus(400)
	require.False(t, partnerSide, "a validation refusal is the message's fault")
}

func TestTransportFailure(t *testing.T) {
	t.Parallel()
	r := provider.TransportFailure(provider.Exchange{Err: errors.New("connection refused")})
	require.Equal(t, herald.OutcomeTransient, r.Outcome, "nothing reached the partner")
	r = provider.TransportFailure(provider.Exchange{Sent: true, Err: context.DeadlineExceeded})
	require.Equal(t, herald.OutcomeUnknown, r.Outcome, "the partner may have it")
	require.Equal(t, "timeout_after_send", r.Reason)
}

func TestSummaryHasNoQueryOrValues(t *testing.T) {
	t.Parallel()
	s := provider.Summary("POST", "https://api.example.com/send?key=secret", 12, map[string]string{"b": "value", "a": "x"})
	require.Equal(t, "POST https://api.example.com/send body=12B metadata_keys=[a,b]", s)
}
