package sandbox_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sendgrid/sendgrid-go"
	"github.com/sendgrid/sendgrid-go/helpers/eventwebhook"
	"github.com/sendgrid/sendgrid-go/helpers/mail"
	"github.com/stretchr/testify/require"

	"herald/sandbox"
)

// sendgridSDK is sendgrid-go's client, pointed at the sandbox.
func sendgridSDK(b *bundle, key string) *sendgrid.Client {
	req := sendgrid.GetRequest(key, "/v3/mail/send", b.sb.URL)
	req.Method = "POST"
	return &sendgrid.Client{Request: req}
}

func sendgridMail(args map[string]string) *mail.SGMailV3 {
	m := mail.NewSingleEmail(mail.NewEmail("", "alerts@example.com"), "CPU high", mail.NewEmail("", "oncall@example.com"), "p99 above 2s", "")
	m.Content = m.Content[:1] // text/plain only
	for k, v := range args {
		m.Personalizations[0].SetCustomArg(k, v)
	}
	m.AddCategories("alerts")
	return m
}

func TestSendGridSDKAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	resp, err := sendgridSDK(b, "SG.sandbox").Send(sendgridMail(map[string]string{"notification_id": "n-1", "event": "mine"}))
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Empty(t, resp.Body)
	id := resp.Headers["X-Message-Id"][0]
	msgs := b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.SendGrid, MessageID: id})
	require.Len(t, msgs, 1)
	require.Equal(t, "n-1", msgs[0].Metadata["notification_id"])
	require.Equal(t, []string{"alerts"}, msgs[0].Tags)

	// The event webhook: signed, verified with sendgrid-go's own helper and
	// the key SendGrid's settings endpoint serves.
	b.clock.Advance(0)
	h := b.hooks.next(t)
	settings := sendgrid.GetRequest("SG.sandbox", "/v3/user/webhooks/event/settings/signed", b.sb.URL)
	sresp, err := sendgrid.API(settings)
	require.NoError(t, err)
	var signed struct {
		PublicKey string `json:"public_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(sresp.Body), &signed))
	require.Equal(t, b.sb.Keys().SendGridPublicKey, signed.PublicKey)
	key, err := eventwebhook.ConvertPublicKeyBase64ToECDSA(signed.PublicKey)
	require.NoError(t, err)
	ok, err := eventwebhook.VerifySignature(key, h.Body,
		h.Header.Get(eventwebhook.VerificationHTTPHeader), h.Header.Get(eventwebhook.TimestampHTTPHeader))
	require.NoError(t, err)
	require.True(t, ok)
	ok, _ = eventwebhook.VerifySignature(key, append(h.Body, ' '),
		h.Header.Get(eventwebhook.VerificationHTTPHeader), h.Header.Get(eventwebhook.TimestampHTTPHeader))
	require.False(t, ok, "the raw body is signed")

	var events []map[string]any
	require.NoError(t, json.Unmarshal(h.Body, &events))
	require.Len(t, events, 1)
	require.Equal(t, "delivered", events[0]["event"], "a custom arg named like a SendGrid field is overridden")
	require.Equal(t, "n-1", events[0]["notification_id"])
	require.True(t, strings.HasPrefix(events[0]["sg_message_id"].(string), id+"."))
}

// reference/providers.md §1.4: sendgrid-go never turns a non-2xx answer
// into an error. Each of these comes back with err == nil.
func TestSendGridSDKReturnsNilErrorsForFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)

	resp, err := sendgridSDK(b, "SG.wrong").Send(sendgridMail(nil))
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.NotContains(t, resp.Body, "SG.wrong")

	// A non-string custom_args value: 400 naming the field, err == nil.
	req := sendgrid.GetRequest("SG.sandbox", "/v3/mail/send", b.sb.URL)
	req.Method = "POST"
	req.Body = []byte(`{"personalizations":[{"to":[{"email":"oncall@example.com"}],"custom_args":{"count":3}}],
		"from":{"email":"alerts@example.com"},"subject":"s","content":[{"type":"text/plain","value":"t"}]}`)
	resp, err = sendgrid.API(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, resp.Body, `"field":"personalizations.0.custom_args.count"`)
	require.Contains(t, resp.Body, "Expected: string, given: integer")

	// A value json.Marshal cannot encode: the SDK logs, sends an empty body,
	// and still returns err == nil with the 400.
	m := sendgridMail(nil)
	m.Personalizations[0].SetDynamicTemplateData("ch", make(chan int))
	resp, err = sendgridSDK(b, "SG.sandbox").Send(m)
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// The rate limit: 429 with the reset in Unix seconds.
	require.NoError(t, b.sb.SetLimit(sandbox.SendGrid, sandbox.Rate{PerSecond: 0.5, Burst: 1}))
	resp, err = sendgridSDK(b, "SG.sandbox").Send(sendgridMail(nil))
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	resp, err = sendgridSDK(b, "SG.sandbox").Send(sendgridMail(nil))
	require.NoError(t, err)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, []string{itoa(t0.Add(2 * time.Second).Unix())}, resp.Headers["X-Ratelimit-Reset"], "one token per 2 s")

	_, err = b.sb.AddFault(sandbox.Fault{Partner: sandbox.SendGrid, Kind: sandbox.FaultGateway502})
	require.NoError(t, err)
	resp, err = sendgridSDK(b, "SG.sandbox").Send(sendgridMail(nil))
	require.NoError(t, err)
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
	require.Contains(t, resp.Body, "<center>nginx</center>")
}

func TestSendGridSDKSandboxModeAndValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	m := sendgridMail(nil)
	m.SetMailSettings(mail.NewMailSettings().SetSandboxMode(mail.NewSetting(true)))
	resp, err := sendgridSDK(b, "SG.sandbox").Send(m)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "sandbox mode validates and sends nothing")
	b.clock.Advance(time.Hour)
	b.hooks.none(t)

	post := func(body string, headers ...string) (int, string) {
		rec := serve(b.sb.Handler(), "POST", "/v3/mail/send", []byte(body),
			append([]string{"Authorization", "Bearer SG.sandbox", "Accept", "application/json"}, headers...)...)
		return rec.Code, rec.Body.String()
	}
	code, body := post(`{"personalizations":[{"to":[{"email":"a@example.com"},{"email":"A@example.com"}],
		"headers":{"To":"x"},"custom_args":{"k":"` + strings.Repeat("v", 10001) + `"}}],
		"from":{"email":"alerts@example.com"},"subject":"s","content":[{"type":"text/plain","value":"t"}],
		"categories":["a","b","c","d","e","f","g","h","i","j","k","é"],
		"mail_settings":{"sandbox_mode":{"enable":"true"}}}`)
	require.Equal(t, http.StatusBadRequest, code)
	for _, want := range []string{"should be unique", "is reserved", "no more than 10000 bytes", "no more than 10 categories",
		"ASCII", "must be a boolean"} {
		require.Contains(t, body, want, "every invalid field is listed in one 400")
	}
	code, _ = post("{\"subject\":\"\xff\"}")
	require.Equal(t, http.StatusUnsupportedMediaType, code)
	rec := serve(b.sb.Handler(), "POST", "/v3/mail/send", []byte(`{}`), "Authorization", "Bearer SG.sandbox")
	require.Equal(t, http.StatusNotAcceptable, rec.Code)
	sendAt := time.Now().Add(100 * time.Hour).Unix()
	code, body = post(`{"personalizations":[{"to":[{"email":"a@example.com"}]}],"from":{"email":"alerts@example.com"},
		"subject":"s","content":[{"type":"text/plain","value":"t"}],"send_at":` + itoa(sendAt) + `}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, "72 hours")
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// FuzzSendGridSend: any body gets one of SendGrid's answers, errors in its
// {"errors": […]} shape, and never a panic.
func FuzzSendGridSend(f *testing.F) {
	for _, seed := range []string{
		`{"personalizations":[{"to":[{"email":"a@example.com"}],"custom_args":{"k":"v"}}],"from":{"email":"b@example.com"},"subject":"s","content":[{"type":"text/plain","value":"t"}]}`,
		`{"personalizations":[{"to":[]}],"categories":"x","headers":[1],"custom_args":{"k":{"a":1}}}`,
		`{"mail_settings":{"sandbox_mode":{"enable":1}}}`, `[]`, ``, `{"personalizations":null}`,
	} {
		f.Add([]byte(seed))
	}
	sb, err := sandbox.New(sandbox.Config{})
	require.NoError(f, err)
	h := sb.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(h, "POST", "/v3/mail/send", body, "Authorization", "Bearer SG.sandbox", "Accept", "application/json")
		switch rec.Code {
		case http.StatusAccepted, http.StatusOK:
			if rec.Body.Len() != 0 {
				t.Fatalf("success with a body: %q", rec.Body)
			}
			return
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("status %d", rec.Code)
		}
		var e struct {
			Errors []struct{ Message string } `json:"errors"`
		}
		if json.Unmarshal(rec.Body.Bytes(), &e) != nil || len(e.Errors) == 0 || e.Errors[0].Message == "" {
			t.Fatalf("error body not in SendGrid's shape: %q", rec.Body)
		}
	})
}

// FuzzControlFaults: the control API refuses what it cannot use with 400 or
// 422 and a JSON error, and accepts only faults it can apply.
func FuzzControlFaults(f *testing.F) {
	for _, seed := range []string{`{"kind":"status","status":503}`, `{"kind":"latency","delay":"1s"}`,
		`{"kind":"latency","delay":5}`, `{"kind":"reject_metadata","key":"k","value":"v","times":2}`,
		`{"kind":"status","status":200}`, `{"colour":"blue"}`, `{`, `{"kind":"stall","probability":2}`} {
		f.Add([]byte(seed))
	}
	sb, err := sandbox.New(sandbox.Config{})
	require.NoError(f, err)
	h := sb.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(h, "POST", "/_sandbox/faults", body)
		switch rec.Code {
		case http.StatusCreated:
			var fault sandbox.Fault
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &fault))
			require.True(t, sb.RemoveFault(fault.ID))
		case http.StatusBadRequest, http.StatusUnprocessableEntity:
			var e struct{ Error string }
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Fatalf("error not in the control API's shape: %q", rec.Body)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
