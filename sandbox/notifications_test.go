package sandbox_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"herald/sandbox"
)

// answer is one response of a notification channel, read in full.
type answer struct {
	status int
	header http.Header
	body   string
}

// post sends body to the sandbox's path over real HTTP with header
// name/value pairs (Content-Type defaults to application/json).
func post(t *testing.T, b *bundle, client *http.Client, path, body string, headers ...string) (answer, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.sb.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(got)}, nil
}

// mustPost is post that fails the test when no answer comes.
func mustPost(t *testing.T, b *bundle, path, body string, headers ...string) answer {
	t.Helper()
	a, err := post(t, b, http.DefaultClient, path, body, headers...)
	require.NoError(t, err)
	return a
}

// listNotifications reads GET /_sandbox/notifications with the given query.
func listNotifications(t *testing.T, b *bundle, query string) []sandbox.Notification {
	t.Helper()
	resp, err := http.Get(b.sb.URL + "/_sandbox/notifications" + query)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out []sandbox.Notification
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

func TestNotificationsListingClearAndReset(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	require.Equal(t, "ok", mustPost(t, b, "/services/T1/B1/tok", `{"text":"first"}`).body)
	require.Equal(t, http.StatusAccepted, mustPost(t, b, "/v2/enqueue", pdTrigger("")).status)
	require.Equal(t, "ok", mustPost(t, b, "/services/T1/B1/tok", `{"text":"second"}`).body)
	require.Equal(t, http.StatusOK, mustPost(t, b, "/_sandbox/hooks/ops", `{}`).status)

	all := listNotifications(t, b, "")
	require.Len(t, all, 4)
	require.Equal(t, []sandbox.Partner{sandbox.Slack, sandbox.PagerDuty, sandbox.Slack, sandbox.Webhook},
		[]sandbox.Partner{all[0].Channel, all[1].Channel, all[2].Channel, all[3].Channel}, "oldest first, newest last")

	slack := listNotifications(t, b, "?channel=slack")
	require.Len(t, slack, 2)
	require.Equal(t, "first", slack[0].Slack.Text)
	require.Equal(t, "second", slack[1].Slack.Text)
	require.Equal(t, t0, slack[1].ReceivedAt, "stamped by the injected clock")
	require.Equal(t, "/services/T1/B1/tok", slack[1].Path)
	require.Equal(t, http.StatusOK, slack[1].Answer.Status)
	require.Equal(t, "ok", slack[1].Answer.Body)
	require.True(t, slack[1].Accepted)
	require.Len(t, listNotifications(t, b, "?channel=pagerduty"), 1)
	require.Len(t, listNotifications(t, b, "?channel=webhook&name=ops"), 1)
	require.Empty(t, listNotifications(t, b, "?channel=webhook&name=other"))

	resp, err := http.Get(b.sb.URL + "/_sandbox/notifications?channel=sendgrid")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "only the channels have notifications")

	req, _ := http.NewRequest(http.MethodDelete, b.sb.URL+"/_sandbox/notifications", nil)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Empty(t, listNotifications(t, b, ""))

	mustPost(t, b, "/_sandbox/hooks/ops", `{}`)
	require.Len(t, listNotifications(t, b, ""), 1)
	resp, err = http.Post(b.sb.URL+"/_sandbox/reset", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Empty(t, listNotifications(t, b, ""), "reset empties the notification store")

	rec := serve(b.sb.Handler(), http.MethodGet, "/metrics", nil)
	for _, series := range []string{
		`herald_sandbox_requests_total{code="200",partner="slack"} 2`,
		`herald_sandbox_requests_total{code="202",partner="pagerduty"} 1`,
		`herald_sandbox_requests_total{code="200",partner="webhook"} 2`,
		`herald_sandbox_messages_accepted_total{partner="slack"} 2`,
		`herald_sandbox_messages_accepted_total{partner="pagerduty"} 1`,
		`herald_sandbox_messages_accepted_total{partner="webhook"} 2`,
	} {
		require.Contains(t, rec.Body.String(), series)
	}
	require.NotContains(t, rec.Body.String(), `herald_sandbox_webhook_attempts_total{outcome="delivered",partner="slack"}`,
		"the channels send no event webhooks")
}

func TestChannelsHaveNoEventWebhooks(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, ch := range sandbox.Channels {
		require.ErrorContains(t, b.sb.SetWebhook(ch, "http://127.0.0.1:1/x"), "has no event webhook")
		_, err := sandbox.New(sandbox.Config{Webhooks: map[sandbox.Partner]string{ch: "http://127.0.0.1:1/x"}})
		require.ErrorContains(t, err, "has no event webhook")
		p, err := sandbox.ParsePartner(string(ch))
		require.NoError(t, err)
		require.Equal(t, ch, p)
	}
	// Their rate limits and faults are set like any partner's.
	require.NoError(t, b.sb.SetLimit(sandbox.PagerDuty, sandbox.Rate{PerSecond: 2, Burst: 2}))
	code, _ := control(t, b, "POST", "/_sandbox/faults", `{"partner":"webhook","kind":"status","status":500}`)
	require.Equal(t, http.StatusCreated, code)
}
