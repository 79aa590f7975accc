package sandbox_test

import (
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald/sandbox"
)

func TestWebhookReceiverRecordsEverything(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	a := mustPost(t, b, "/_sandbox/hooks/ops-alerts?source=herald", `{"trigger":"cpu","value":2.3}`,
		"Authorization", "Bearer hook-s3cret", "X-Herald-Signature", "v1=abc")
	require.Equal(t, http.StatusOK, a.status)
	require.Equal(t, "application/json", a.header.Get("Content-Type"))
	require.JSONEq(t, `{"ok":true}`, a.body)
	a = mustPost(t, b, "/_sandbox/hooks/ops-alerts", `not json`, "Content-Type", "text/plain")
	require.Equal(t, http.StatusOK, a.status, "any body is taken")

	got := listNotifications(t, b, "?channel=webhook&name=ops-alerts")
	require.Len(t, got, 2)
	n := got[0]
	require.Equal(t, sandbox.Webhook, n.Channel)
	require.Equal(t, "ops-alerts", n.Name)
	require.Equal(t, http.MethodPost, n.Method)
	require.Equal(t, "/_sandbox/hooks/ops-alerts", n.Path)
	require.Equal(t, "source=herald", n.Query)
	require.Equal(t, "Bearer hook-s3cret", n.Header.Get("Authorization"), "secrets are recorded: tests need them")
	require.Equal(t, "v1=abc", n.Header.Get("X-Herald-Signature"))
	require.Equal(t, `{"trigger":"cpu","value":2.3}`, n.Body)
	require.JSONEq(t, `{"trigger":"cpu","value":2.3}`, string(n.JSON))
	require.True(t, n.Accepted)
	require.Equal(t, t0, n.ReceivedAt)
	require.Empty(t, got[1].JSON)
	require.Equal(t, "not json", got[1].Body)
}

func TestWebhookReceiverFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	_, err := b.sb.AddFault(sandbox.Fault{Partner: sandbox.Webhook, Kind: sandbox.FaultStatus, Status: 500, Times: 1})
	require.NoError(t, err)
	a := mustPost(t, b, "/_sandbox/hooks/x", `{}`)
	require.Equal(t, http.StatusInternalServerError, a.status)
	require.JSONEq(t, `{"ok":false,"error":"Internal Server Error"}`, a.body)

	_, err = b.sb.AddFault(sandbox.Fault{Partner: sandbox.Webhook, Kind: sandbox.FaultLatency, Delay: sandbox.Duration(20 * time.Millisecond), Times: 1})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, mustPost(t, b, "/_sandbox/hooks/x", `{}`).status)

	_, err = b.sb.AddFault(sandbox.Fault{Partner: sandbox.Webhook, Kind: sandbox.FaultDropConnection, Times: 1})
	require.NoError(t, err)
	_, err = post(t, b, http.DefaultClient, "/_sandbox/hooks/x", `{}`)
	require.Error(t, err)

	// A dropped request's answer is recorded as its handler ends, a moment
	// after the client saw the connection close.
	var got []sandbox.Notification
	require.Eventually(t, func() bool {
		got = b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.Webhook})
		return len(got) == 3 && got[2].Answer != nil
	}, 5*time.Second, 5*time.Millisecond)
	require.False(t, got[0].Accepted)
	require.Equal(t, http.StatusInternalServerError, got[0].Answer.Status)
	require.True(t, got[2].Accepted)
	require.True(t, got[2].Answer.Dropped)
}

// TestWebhookReceiverStall: a receiver that never answers, against a client
// with a short timeout — the client times out, and the sandbox has the
// request on record while it holds it.
func TestWebhookReceiverStall(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	_, err := b.sb.AddFault(sandbox.Fault{Partner: sandbox.Webhook, Kind: sandbox.FaultStall, Times: 1})
	require.NoError(t, err)
	client := &http.Client{Timeout: 200 * time.Millisecond}
	start := time.Now()
	_, err = post(t, b, client, "/_sandbox/hooks/slow", `{"n":1}`)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "want a client timeout, got %v", err)
	require.Less(t, time.Since(start), 5*time.Second)

	got := b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.Webhook, Name: "slow"})
	require.Len(t, got, 1, "recorded as it arrived")
	require.Equal(t, `{"n":1}`, got[0].Body)
	require.False(t, got[0].Accepted)
	// Once the client has hung up the sandbox lets go of the request and
	// records that no answer went out.
	require.Eventually(t, func() bool {
		n := b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.Webhook, Name: "slow"})[0]
		return n.Answer != nil && n.Answer.Dropped
	}, 5*time.Second, 10*time.Millisecond)

	require.Equal(t, http.StatusOK, mustPost(t, b, "/_sandbox/hooks/slow", `{"n":2}`).status, "the fault fired once")
}
