package sandbox_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSendGridSmoke(t *testing.T) {
	b := setup(t, nil)
	req, _ := http.NewRequest("POST", b.sb.URL+"/v3/mail/send", strings.NewReader(`{"personalizations":[{"to":[{"email":"a@example.com"}],"custom_args":{"notification_id":"n1"}}],"from":{"email":"alerts@example.com"},"subject":"hi","content":[{"type":"text/plain","value":"x"}]}`))
	req.Header.Set("Authorization", "Bearer SG.sandbox")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, 202, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("X-Message-Id"))
	b.clock.Advance(0)
	h := b.hooks.next(t)
	require.Equal(t, "/sendgrid", h.Path)
	require.Contains(t, string(h.Body), `"notification_id":"n1"`)
	require.NotEmpty(t, h.Header.Get("X-Twilio-Email-Event-Webhook-Signature"))
}
