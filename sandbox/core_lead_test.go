package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald/sandbox"
)

const sgBody = `{"personalizations":[{"to":[{"email":"oncall@example.com"}],"custom_args":{"team":"platform"}}],` +
	`"from":{"email":"alerts@example.com"},"subject":"CPU high","content":[{"type":"text/plain","value":"p99"}]}`

// sgSend posts sgBody to the sandbox over real HTTP.
func sgSend(t *testing.T, b *bundle, client *http.Client) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequest("POST", b.sb.URL+"/v3/mail/send", strings.NewReader(sgBody))
	req.Header.Set("Authorization", "Bearer SG.sandbox")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

func control(t *testing.T, b *bundle, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, b.sb.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestCoreFaultsThroughTheControlAPI(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	code, f := control(t, b, "POST", "/_sandbox/faults", `{"partner":"sendgrid","kind":"status","status":503,"times":2}`)
	require.Equal(t, http.StatusCreated, code)
	require.Equal(t, 2.0, f["remaining"])
	for range 2 {
		resp, err := sgSend(t, b, http.DefaultClient)
		require.NoError(t, err)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	}
	resp, err := sgSend(t, b, http.DefaultClient)
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "the fault removed itself after two requests")
	_, list := control(t, b, "GET", "/_sandbox/faults", "")
	require.Empty(t, list["faults"])

	for body, status := range map[string]int{
		`{"kind":"explode"}`:                   http.StatusUnprocessableEntity,
		`{"kind":"status","status":503,"x":1}`: http.StatusBadRequest,
		`{"kind":"latency"}`:                   http.StatusUnprocessableEntity,
		`not json`:                             http.StatusBadRequest,
	} {
		code, e := control(t, b, "POST", "/_sandbox/faults", body)
		require.Equal(t, status, code, body)
		require.NotEmpty(t, e["error"])
	}
	code, _ = control(t, b, "DELETE", "/_sandbox/faults/999", "")
	require.Equal(t, http.StatusNotFound, code)
}

func TestCoreProbabilisticFaultsReplayWithTheSeed(t *testing.T) {
	t.Parallel()
	run := func() []int {
		b := setup(t, func(c *sandbox.Config) {
			c.Seed = 42
			c.Faults = []sandbox.Fault{{Partner: sandbox.SendGrid, Kind: sandbox.FaultStatus, Status: 500, Probability: 0.5}}
		})
		var codes []int
		for range 20 {
			resp, err := sgSend(t, b, http.DefaultClient)
			require.NoError(t, err)
			codes = append(codes, resp.StatusCode)
		}
		return codes
	}
	first := run()
	require.Equal(t, first, run())
	require.Contains(t, first, 500)
	require.Contains(t, first, 202)
}

func TestCoreBrokenSuccessAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind  sandbox.FaultKind
		check func(t *testing.T, resp *http.Response, err error)
	}{
		{sandbox.FaultDropConnection, func(t *testing.T, _ *http.Response, err error) { require.Error(t, err) }},
		{sandbox.FaultEmptyBody, func(t *testing.T, resp *http.Response, err error) {
			require.NoError(t, err)
			require.Equal(t, 202, resp.StatusCode)
			require.Empty(t, resp.Header.Get("X-Message-Id"))
		}},
		{sandbox.FaultHTMLBody, func(t *testing.T, resp *http.Response, err error) {
			require.NoError(t, err)
			require.Equal(t, "text/html", resp.Header.Get("Content-Type"))
		}},
		{sandbox.FaultGateway502, func(t *testing.T, resp *http.Response, err error) {
			require.NoError(t, err)
			require.Equal(t, 502, resp.StatusCode)
		}},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(c *sandbox.Config) { c.Faults = []sandbox.Fault{{Kind: tc.kind}} })
			resp, err := sgSend(t, b, http.DefaultClient)
			tc.check(t, resp, err)
			want := 1 // taken by the partner, answer lost or mangled
			if tc.kind == sandbox.FaultGateway502 {
				want = 0
			}
			require.Len(t, b.sb.Messages(sandbox.MessageFilter{}), want)
		})
	}
}

func TestCoreLatencyAndStallUseRealTime(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Kind: sandbox.FaultStall, Partner: sandbox.SendGrid}}
	})
	client := &http.Client{Timeout: 200 * time.Millisecond}
	_, err := sgSend(t, b, client)
	require.ErrorContains(t, err, "Client.Timeout")

	b.sb.Reset()
	_, err = b.sb.AddFault(sandbox.Fault{Kind: sandbox.FaultLatency, Delay: sandbox.Duration(50 * time.Millisecond)})
	require.NoError(t, err)
	resp, err := sgSend(t, b, http.DefaultClient)
	require.NoError(t, err)
	require.Equal(t, 202, resp.StatusCode)
}

func TestCoreMailboxEventsAndWebhookRetries(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) { c.EventDelay = time.Minute })
	resp, err := sgSend(t, b, http.DefaultClient)
	require.NoError(t, err)
	id := resp.Header.Get("X-Message-Id")

	code, list := control(t, b, "GET", "/_sandbox/messages?partner=sendgrid&to=ONCALL@example.com&metadata_key=team&metadata_value=platform&subject=cpu", "")
	require.Equal(t, 200, code)
	require.Len(t, list["messages"], 1)
	require.Equal(t, "accepted", list["messages"].([]any)[0].(map[string]any)["fate"])
	_, none := control(t, b, "GET", "/_sandbox/messages?metadata_value=platform&metadata_key=other", "")
	require.Empty(t, none["messages"])

	b.clock.Advance(59 * time.Second)
	b.hooks.none(t)
	b.hooks.answer(500, 500)
	b.clock.Advance(time.Second) // the event, answered 500
	b.hooks.next(t)
	b.clock.Advance(30 * time.Second) // retried after 30 s, answered 500
	b.hooks.next(t)
	b.clock.Advance(time.Minute) // then after 1 m: delivered
	b.hooks.next(t)
	var got []string
	for _, a := range b.sb.WebhookAttempts() {
		got = append(got, a.At.Sub(t0).String()+" "+a.Outcome)
	}
	require.Equal(t, []string{"1m0s retrying", "1m30s retrying", "2m30s delivered"}, got)
	m, ok := b.sb.Message(id)
	require.True(t, ok)
	require.Equal(t, sandbox.FateDelivered, m.Fate)

	// An event on demand.
	code, evs := control(t, b, "POST", "/_sandbox/messages/"+id+"/events", `{"type":"bounced"}`)
	require.Equal(t, 200, code)
	require.Len(t, evs["events"], 1)
	h := b.hooks.next(t)
	require.Contains(t, string(h.Body), `"event":"bounce"`)
	code, _ = control(t, b, "POST", "/_sandbox/messages/"+id+"/events", `{"type":"vanished"}`)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	code, _ = control(t, b, "POST", "/_sandbox/messages/nope/events", `{"type":"bounced"}`)
	require.Equal(t, http.StatusNotFound, code)

	// Targets and limits through the control API.
	code, _ = control(t, b, "PUT", "/_sandbox/webhooks/sendgrid", `{"url":"ftp://nope"}`)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	code, _ = control(t, b, "DELETE", "/_sandbox/webhooks/sendgrid", "")
	require.Equal(t, 200, code)
	code, lim := control(t, b, "PUT", "/_sandbox/limits/ses", `{"per_second":2,"burst":4}`)
	require.Equal(t, 200, code)
	require.Equal(t, map[string]any{"per_second": 2.0, "burst": 4.0}, lim["limits"].(map[string]any)["ses"])

	code, _ = control(t, b, "POST", "/_sandbox/reset", "")
	require.Equal(t, http.StatusNoContent, code)
	require.Empty(t, b.sb.Messages(sandbox.MessageFilter{}))
	require.Empty(t, b.sb.WebhookAttempts())
}

func TestCoreDuplicateAndSilentFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Kind: sandbox.FaultDuplicateWebhooks, Copies: 3, Times: 1}, {Kind: sandbox.FaultNeverConfirm, Times: 2}}
	})
	// The first send fires both: never confirmed, so no webhook at all.
	_, err := sgSend(t, b, http.DefaultClient)
	require.NoError(t, err)
	b.clock.Advance(0)
	b.hooks.none(t)
	require.Len(t, b.sb.Messages(sandbox.MessageFilter{Fate: sandbox.FateUnconfirmed}), 1)

	_, err = b.sb.AddFault(sandbox.Fault{Kind: sandbox.FaultDuplicateWebhooks, Copies: 3})
	require.NoError(t, err)
	_, err = sgSend(t, b, http.DefaultClient) // never_confirm's second and last time
	require.NoError(t, err)
	_, err = sgSend(t, b, http.DefaultClient)
	require.NoError(t, err)
	b.clock.Advance(0)
	first := b.hooks.next(t)
	for range 2 {
		require.Equal(t, first.Body, b.hooks.next(t).Body, "the same event three times")
	}
	b.hooks.none(t)
}

func TestCoreSecretsStayOutOfLogsAndAnswers(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	secrets := sandbox.Credentials{SendGridAPIKey: "SG.secret-sendgrid", PostmarkServerToken: "secret-postmark",
		MailgunAPIKey: "secret-mailgun", SESSecretAccessKey: "secret-ses", SMTPPassword: "secret-smtp"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb, err := sandbox.Start(ctx, sandbox.Config{Credentials: secrets,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	defer sb.Close()
	require.NoError(t, sb.SetWebhook(sandbox.Postmark, "http://user:hook-secret@127.0.0.1:1/hook"))
	var answers bytes.Buffer
	for _, path := range []string{"/v3/mail/send", "/email", "/v3/mg.example.com/messages", "/v2/email/outbound-emails"} {
		for _, key := range []string{"SG.secret-sendgrid", "wrong-secret-value"} {
			req, _ := http.NewRequest("POST", sb.URL+path, strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("X-Postmark-Server-Token", key)
			req.SetBasicAuth("api", key)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			answers.ReadFrom(resp.Body)
			resp.Body.Close()
		}
	}
	for _, path := range []string{"/_sandbox/webhooks", "/_sandbox/keys", "/_sandbox/"} {
		resp, err := http.Get(sb.URL + path)
		require.NoError(t, err)
		answers.ReadFrom(resp.Body)
		resp.Body.Close()
	}
	for _, s := range []string{"SG.secret-sendgrid", "secret-postmark", "secret-mailgun", "secret-ses", "secret-smtp", "hook-secret", "wrong-secret-value"} {
		require.NotContains(t, logs.String(), s)
		require.NotContains(t, answers.String(), s)
	}
}
