package sandbox_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald/sandbox"
)

const slackHook = "/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX"

func TestSlackAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	form := "payload=" + url.QueryEscape(`{"text":"from a form"}`)
	manyAttachments := `{"attachments":[` + strings.TrimSuffix(strings.Repeat(`{"text":"a"},`, 101), ",") + `]}`
	manyBlocks := `{"blocks":[` + strings.TrimSuffix(strings.Repeat(`{"type":"divider"},`, 51), ",") + `]}`
	for _, tc := range []struct {
		name, path, body, contentType string
		status                        int
		answer                        string
	}{
		{"text", slackHook, `{"text":"CPU high on api-1","username":"herald","icon_emoji":":fire:","channel":"#ops"}`, "", 200, "ok"},
		{"blocks", slackHook, `{"blocks":[{"type":"section","text":{"type":"mrkdwn","text":"*CPU high*"}}]}`, "", 200, "ok"},
		{"attachments only", slackHook, `{"attachments":[{"fallback":"CPU high","color":"danger"}]}`, "", 200, "ok"},
		{"form payload", slackHook, form, "application/x-www-form-urlencoded", 200, "ok"},
		{"not JSON", slackHook, `text=hello`, "", 400, "invalid_payload"},
		{"not an object", slackHook, `["text"]`, "", 400, "invalid_payload"},
		{"neither text nor blocks", slackHook, `{"username":"herald"}`, "", 400, "invalid_payload"},
		{"text of the wrong type", slackHook, `{"text":42}`, "", 400, "invalid_payload"},
		{"blank text", slackHook, `{"text":"  "}`, "", 400, "no_text"},
		{"empty blocks, no text", slackHook, `{"blocks":[]}`, "", 400, "no_text"},
		{"block without a type", slackHook, `{"text":"x","blocks":[{"text":"no type"}]}`, "", 400, "invalid_blocks"},
		{"blocks not an array", slackHook, `{"text":"x","blocks":"[]"}`, "", 400, "invalid_blocks"},
		{"too many blocks", slackHook, manyBlocks, "", 400, "invalid_blocks"},
		{"too many attachments", slackHook, manyAttachments, "", 400, "too_many_attachments"},
		{"unknown token", "/services/T0001/B0001/bad-token", `{"text":"x"}`, "", 403, "invalid_token"},
		{"unknown workspace", "/services/T404AAAA/B0001/tok", `{"text":"x"}`, "", 404, "no_service"},
		{"archived channel", "/services/T0001/B410AAAA/tok", `{"text":"x"}`, "", 410, "channel_is_archived"},
	} {
		var headers []string
		if tc.contentType != "" {
			headers = []string{"Content-Type", tc.contentType}
		}
		a := mustPost(t, b, tc.path, tc.body, headers...)
		require.Equal(t, tc.status, a.status, tc.name)
		require.Equal(t, tc.answer, a.body, tc.name)
		require.Equal(t, "text/plain; charset=utf-8", a.header.Get("Content-Type"), tc.name)
	}

	got := b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.Slack})
	require.Len(t, got, 17)
	first := got[0]
	require.True(t, first.Accepted)
	require.Equal(t, &sandbox.SlackMessage{Text: "CPU high on api-1", Username: "herald", IconEmoji: ":fire:", Channel: "#ops"}, first.Slack)
	require.Equal(t, "from a form", got[3].Slack.Text)
	require.False(t, got[4].Accepted)
	require.Nil(t, got[4].Slack, "a body that is not JSON has no parsed payload")
	require.Equal(t, 400, got[4].Answer.Status)
	require.Equal(t, "invalid_payload", got[4].Answer.Body)
}

func TestSlackKnownTokens(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) { c.Credentials.SlackTokens = []string{"s3cret"} })
	require.Equal(t, "ok", mustPost(t, b, "/services/T1/B1/s3cret", `{"text":"x"}`).body)
	a := mustPost(t, b, "/services/T1/B1/other", `{"text":"x"}`)
	require.Equal(t, http.StatusForbidden, a.status)
	require.Equal(t, "invalid_token", a.body)
}

func TestSlackRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Limits = map[sandbox.Partner]sandbox.Rate{sandbox.Slack: {PerSecond: 1, Burst: 1}}
	})
	require.Equal(t, "ok", mustPost(t, b, slackHook, `{"text":"1"}`).body)
	a := mustPost(t, b, slackHook, `{"text":"2"}`)
	require.Equal(t, http.StatusTooManyRequests, a.status)
	require.Equal(t, "rate_limited", a.body)
	require.Equal(t, "1", a.header.Get("Retry-After"))
	require.Equal(t, "ok", mustPost(t, b, "/services/T0001/B0002/tok", `{"text":"2"}`).body, "the limit is per webhook")
	b.clock.Advance(time.Second)
	require.Equal(t, "ok", mustPost(t, b, slackHook, `{"text":"3"}`).body)
}

func TestSlack200WithAnErrorBody(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	code, f := control(t, b, "POST", "/_sandbox/faults", `{"partner":"slack","kind":"slack_200_error","times":1}`)
	require.Equal(t, http.StatusCreated, code)
	require.Equal(t, "slack_200_error", f["kind"])
	a := mustPost(t, b, slackHook, `{"text":"CPU high"}`)
	require.Equal(t, http.StatusOK, a.status, "the status says success…")
	require.Equal(t, "invalid_blocks", a.body, "…and the body does not")

	_, err := b.sb.AddFault(sandbox.Fault{Kind: sandbox.FaultSlackErrorBody, Text: "channel_not_found"})
	require.NoError(t, err)
	a = mustPost(t, b, slackHook, `{"text":"CPU high"}`)
	require.Equal(t, http.StatusOK, a.status)
	require.Equal(t, "channel_not_found", a.body)
	a = mustPost(t, b, slackHook, `{"text":""}`)
	require.Equal(t, http.StatusBadRequest, a.status, "an invalid request still answers its error")

	got := b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.Slack})
	require.Len(t, got, 3)
	require.False(t, got[0].Accepted, "nothing was posted")
	require.Equal(t, "invalid_blocks", got[0].Answer.Body)

	for body, msg := range map[string]string{
		`{"partner":"sendgrid","kind":"slack_200_error"}`: "applies to slack only",
		`{"kind":"slack_200_error","text":"ok"}`:          `must not be "ok"`,
	} {
		code, e := control(t, b, "POST", "/_sandbox/faults", body)
		require.Equal(t, http.StatusUnprocessableEntity, code, body)
		require.Contains(t, e["error"], msg)
	}
	parsed, err := sandbox.ParseFault("slack_200_error,partner=slack,text=invalid_blocks")
	require.NoError(t, err)
	require.Equal(t, sandbox.Fault{Kind: sandbox.FaultSlackErrorBody, Partner: sandbox.Slack, Text: "invalid_blocks"}, parsed)
}

func TestSlackFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	add := func(f sandbox.Fault) {
		f.Partner, f.Times = sandbox.Slack, 1
		_, err := b.sb.AddFault(f)
		require.NoError(t, err)
	}
	add(sandbox.Fault{Kind: sandbox.FaultStatus, Status: 503})
	a := mustPost(t, b, slackHook, `{"text":"x"}`)
	require.Equal(t, http.StatusServiceUnavailable, a.status)
	require.Equal(t, "service_unavailable", a.body)

	add(sandbox.Fault{Kind: sandbox.FaultStatus, Status: 500})
	a = mustPost(t, b, slackHook, `{"text":"x"}`)
	require.Equal(t, "rollup_error", a.body)

	add(sandbox.Fault{Kind: sandbox.FaultStatus, Status: 429})
	a = mustPost(t, b, slackHook, `{"text":"x"}`)
	require.Equal(t, http.StatusTooManyRequests, a.status)
	require.Equal(t, "rate_limited", a.body)
	require.Equal(t, "1", a.header.Get("Retry-After"))

	add(sandbox.Fault{Kind: sandbox.FaultLatency, Delay: sandbox.Duration(20 * time.Millisecond)})
	require.Equal(t, "ok", mustPost(t, b, slackHook, `{"text":"x"}`).body)

	add(sandbox.Fault{Kind: sandbox.FaultDropConnection})
	_, err := post(t, b, http.DefaultClient, slackHook, `{"text":"posted, answer lost"}`)
	require.Error(t, err)

	add(sandbox.Fault{Kind: sandbox.FaultStall, Delay: sandbox.Duration(10 * time.Millisecond)})
	_, err = post(t, b, http.DefaultClient, slackHook, `{"text":"x"}`)
	require.Error(t, err, "a stall with a delay hangs up after it")

	// The stalled request's answer is recorded when its handler ends, a
	// moment after the client hung up.
	var got []sandbox.Notification
	require.Eventually(t, func() bool {
		got = b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.Slack})
		return len(got) == 6 && got[4].Answer != nil && got[5].Answer != nil
	}, 5*time.Second, 5*time.Millisecond)
	dropped := got[4]
	require.True(t, dropped.Accepted, "Slack posted the message; only the answer was lost")
	require.True(t, dropped.Answer.Dropped)
	require.False(t, got[5].Accepted)
	require.True(t, got[5].Answer.Dropped)

	rec := serve(b.sb.Handler(), http.MethodGet, "/metrics", nil)
	require.Contains(t, rec.Body.String(), `herald_sandbox_faults_fired_total{kind="drop_connection",partner="slack"} 1`)
	require.Contains(t, rec.Body.String(), `herald_sandbox_requests_total{code="dropped",partner="slack"} 2`)
}

// FuzzSlackPayload: any body gets an answer without a panic, a parsed
// message comes with it only for a JSON object, and a message with
// non-blank text (and whatever else a sender sets) is accepted as sent.
func FuzzSlackPayload(f *testing.F) {
	for _, seed := range []string{`{"text":"hi"}`, `{"blocks":[{"type":"divider"}]}`, `{"attachments":[{"fallback":"x"}]}`,
		`{}`, `[]`, `null`, `{"text":null,"blocks":null}`, `{"blocks":[1]}`, `payload=%7B%7D`, "\xff"} {
		f.Add([]byte(seed), "CPU high", "herald")
	}
	f.Fuzz(func(t *testing.T, body []byte, text, username string) {
		for _, ct := range []string{"application/json", "application/x-www-form-urlencoded"} {
			m, code := sandbox.ParseSlackPayloadForTest(ct, body)
			if code == "" && m == nil {
				t.Fatalf("accepted %q without a message", body)
			}
		}
		if strings.TrimSpace(text) == "" {
			return
		}
		valid, err := json.Marshal(map[string]any{"text": text, "username": username,
			"blocks": []map[string]any{{"type": "section", "text": map[string]string{"type": "plain_text", "text": text}}}})
		if err != nil {
			t.Fatal(err)
		}
		m, code := sandbox.ParseSlackPayloadForTest("application/json", valid)
		if code != "" {
			t.Fatalf("refused a valid message %s: %s", valid, code)
		}
		var want string // text as JSON carries it: invalid UTF-8 becomes U+FFFD
		asJSON, _ := json.Marshal(text)
		json.Unmarshal(asJSON, &want)
		if m.Text != want {
			t.Fatalf("text %q came back as %q", text, m.Text)
		}
	})
}
