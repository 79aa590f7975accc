package sandbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mrz1836/postmark"
	"github.com/stretchr/testify/require"

	"herald/sandbox"
)

func postmarkClient(b *bundle, token string) *postmark.Client {
	c := postmark.NewClient(token, "")
	c.BaseURL = b.sb.URL
	return c
}

func postmarkEmail(md map[string]string) postmark.Email {
	return postmark.Email{From: "alerts@example.com", To: "oncall@example.com", Subject: "CPU high",
		TextBody: "p99 above 2s", Tag: "alerts", Metadata: md}
}

func TestPostmarkAcceptedWithTheOfficialClient(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	res, err := postmarkClient(b, "sandbox-postmark-token").SendEmail(context.Background(), postmarkEmail(map[string]string{"notification_id": "n-1"}))
	require.NoError(t, err)
	require.Zero(t, res.ErrorCode)
	require.Equal(t, "OK", res.Message)
	require.Regexp(t, `^[0-9a-f-]{36}$`, res.MessageID)

	msgs := b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.Postmark, MessageID: res.MessageID})
	require.Len(t, msgs, 1)
	require.Equal(t, map[string]string{"notification_id": "n-1"}, msgs[0].Metadata)
	require.Equal(t, []string{"alerts"}, msgs[0].Tags)

	// The event echoes MessageID and Metadata, one object per event, with
	// the basic auth of the target URL.
	b.clock.Advance(0)
	h := b.hooks.next(t)
	require.Equal(t, "/postmark", h.Path)
	var ev map[string]any
	require.NoError(t, json.Unmarshal(h.Body, &ev))
	require.Equal(t, "Delivery", ev["RecordType"])
	require.Equal(t, res.MessageID, ev["MessageID"])
	require.Equal(t, map[string]any{"notification_id": "n-1"}, ev["Metadata"])
	require.Equal(t, "oncall@example.com", ev["Recipient"])
}

func TestPostmarkWebhookBasicAuthAndRetries(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	require.NoError(t, b.sb.SetWebhook(sandbox.Postmark, strings.Replace(b.hooks.url, "http://", "http://hook:s3cret@", 1)+"/postmark"))
	_, err := b.sb.AddFault(sandbox.Fault{Partner: sandbox.Postmark, Kind: sandbox.FaultAcceptThenFail, Fate: sandbox.FateBounced})
	require.NoError(t, err)
	b.hooks.answer(500, 500, 403)
	res, err := postmarkClient(b, "sandbox-postmark-token").SendEmail(context.Background(), postmarkEmail(nil))
	require.NoError(t, err)
	b.clock.Advance(0)
	first := b.hooks.next(t)
	require.Equal(t, "hook", first.User)
	require.Equal(t, "s3cret", first.Pass)
	var ev map[string]any
	require.NoError(t, json.Unmarshal(first.Body, &ev))
	require.Equal(t, "Bounce", ev["RecordType"])
	require.Equal(t, "HardBounce", ev["Type"])
	require.Equal(t, res.MessageID, ev["MessageID"])

	b.clock.Advance(time.Minute) // 1st retry after 1 m
	b.hooks.next(t)
	b.clock.Advance(5 * time.Minute) // 2nd after 5 m: answered 403, which stops Postmark
	b.hooks.next(t)
	b.clock.Advance(24 * time.Hour)
	b.hooks.none(t)
	var outcomes []string
	for _, a := range b.sb.WebhookAttempts() {
		outcomes = append(outcomes, a.Outcome)
		require.NotContains(t, a.URL, "s3cret")
	}
	require.Equal(t, []string{"retrying", "retrying", "gave_up"}, outcomes)
}

// reference/providers.md §2.4: batch calls return a nil error although an
// item failed; the failure is only in that item's ErrorCode.
func TestPostmarkBatchHidesAFailedItem(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	_, err := b.sb.AddFault(sandbox.Fault{Partner: sandbox.Postmark, Kind: sandbox.FaultRejectMetadata, Key: "team", Value: "a&b"})
	require.NoError(t, err)
	res, err := postmarkClient(b, "sandbox-postmark-token").SendEmailBatch(context.Background(), []postmark.Email{
		postmarkEmail(map[string]string{"team": "platform"}),
		postmarkEmail(map[string]string{"team": "a&b"}),
	})
	require.NoError(t, err, "the SDK reports success for the whole batch")
	require.Len(t, res, 2)
	require.Zero(t, res[0].ErrorCode)
	require.Equal(t, int64(300), res[1].ErrorCode)
	require.Contains(t, res[1].Message, "team")
	require.Len(t, b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.Postmark}), 1)
}

// §2.4: an error body that is not Postmark's JSON loses its status in the
// SDK: a gateway's HTML page comes back as a JSON syntax error.
func TestPostmarkHTMLErrorLosesItsStatusInTheSDK(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Partner: sandbox.Postmark, Kind: sandbox.FaultGateway502}}
	})
	_, err := postmarkClient(b, "sandbox-postmark-token").SendEmail(context.Background(), postmarkEmail(nil))
	var syntax *json.SyntaxError
	require.ErrorAs(t, err, &syntax)
}

func TestPostmarkAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) { c.VerifiedSenders = []string{"example.com"} })
	ctx := context.Background()

	_, err := postmarkClient(b, "wrong-token").SendEmail(ctx, postmarkEmail(nil))
	var apiErr postmark.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, int64(10), apiErr.ErrorCode)
	require.NotContains(t, apiErr.Message, "wrong-token")

	// The test token validates and sends nothing: no event ever.
	res, err := postmarkClient(b, "POSTMARK_API_TEST").SendEmail(ctx, postmarkEmail(nil))
	require.NoError(t, err)
	require.Equal(t, "Test job accepted", res.Message)
	b.clock.Advance(time.Hour)
	b.hooks.none(t)
	m, ok := b.sb.Message(res.MessageID)
	require.True(t, ok)
	require.Equal(t, sandbox.FateTest, m.Fate)

	for _, tc := range []struct {
		email postmark.Email
		code  int64
		msg   string
	}{
		{postmark.Email{From: "alerts@example.com", Subject: "s", TextBody: "t"}, 300, "Zero recipients"},
		{postmark.Email{From: "alerts@example.com", To: "a@example.com", Subject: "s"}, 300, "TextBody or HtmlBody"},
		{postmark.Email{From: "alerts@example.com", To: "not-an-address", Subject: "s", TextBody: "t"}, 300, "Error parsing 'To'"},
		{postmark.Email{From: "alerts@other.org", To: "a@example.com", Subject: "s", TextBody: "t"}, 400, "not a Sender Signature"},
		{postmarkEmail(map[string]string{"a_key_longer_than_twenty": "v"}), 300, "1 to 20 characters"},
		{postmarkEmail(map[string]string{"k": strings.Repeat("v", 81)}), 300, "at most 80 characters"},
		{postmarkEmail(map[string]string{"Team": "a", "team": "b"}), 300, "unique"},
		{postmarkEmail(map[string]string{"a": "", "b": "", "c": "", "d": "", "e": "", "f": "", "g": "", "h": "", "i": "", "j": "", "k": ""}), 300, "at most 10 fields"},
	} {
		_, err := postmarkClient(b, "sandbox-postmark-token").SendEmail(ctx, tc.email)
		var apiErr postmark.APIError
		require.ErrorAs(t, err, &apiErr, "%+v", tc.email)
		require.Equal(t, tc.code, apiErr.ErrorCode, "%+v", tc.email)
		require.Contains(t, apiErr.Message, tc.msg)
	}

	req, _ := http.NewRequest("POST", b.sb.URL+"/email", strings.NewReader("{not json"))
	req.Header.Set("X-Postmark-Server-Token", "sandbox-postmark-token")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
}

func TestPostmarkRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Limits = map[sandbox.Partner]sandbox.Rate{sandbox.Postmark: {PerSecond: 1, Burst: 1}}
	})
	c := postmarkClient(b, "sandbox-postmark-token")
	_, err := c.SendEmail(context.Background(), postmarkEmail(nil))
	require.NoError(t, err)
	_, err = c.SendEmail(context.Background(), postmarkEmail(nil))
	var apiErr postmark.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, int64(429), apiErr.ErrorCode)
	b.clock.Advance(time.Second)
	_, err = c.SendEmail(context.Background(), postmarkEmail(nil))
	require.NoError(t, err)
}

// FuzzPostmarkEmail: any body gets one of Postmark's answers — 200 with a
// result, or an error status with {"ErrorCode", "Message"} — and never a
// panic.
func FuzzPostmarkEmail(f *testing.F) {
	for _, seed := range []string{
		`{"From":"a@example.com","To":"b@example.com","Subject":"s","TextBody":"t","Metadata":{"k":"v"}}`,
		`[{"From":"a@example.com","To":"b@example.com","TextBody":"t"},{"From":""}]`,
		`{"Metadata":[1]}`, `{"To":",,,"}`, `null`, `{`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	sb, err := sandbox.New(sandbox.Config{})
	require.NoError(f, err)
	h := sb.Handler()
	f.Fuzz(func(t *testing.T, body []byte, batch bool) {
		path := "/email"
		if batch {
			path = "/email/batch"
		}
		rec := serve(h, "POST", path, body, "X-Postmark-Server-Token", "sandbox-postmark-token")
		switch rec.Code {
		case http.StatusOK, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d", rec.Code)
		}
		var v any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("answer is not JSON: %q", rec.Body)
		}
		if rec.Code != http.StatusOK {
			var e struct{ ErrorCode *int }
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.ErrorCode == nil {
				t.Fatalf("error without ErrorCode: %s", rec.Body)
			}
		}
	})
}
