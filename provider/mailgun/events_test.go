package mailgun_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/clock"
	"herald/provider/mailgun"
	"herald/sandbox"
)

const signingKey = "sandbox-mailgun-signing-key" // the sandbox's default (docs/sandbox.md)

// receiver is an event webhook endpoint that hands every request to an
// EventWebhook and keeps what it returned.
type receiver struct {
	srv *httptest.Server

	mu     sync.Mutex
	events []herald.PartnerEvent
	codes  []string // the error code of each request, "" for none
}

func newReceiver(t *testing.T, wh herald.EventWebhook) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		evs, err := wh.Parse(r.Context(), r, body)
		rc.mu.Lock()
		rc.events = append(rc.events, evs...)
		rc.codes = append(rc.codes, herald.ErrorCode(err))
		rc.mu.Unlock()
		switch herald.ErrorCode(err) {
		case "":
			w.WriteHeader(http.StatusOK)
		case herald.EUNAUTHORIZED:
			w.WriteHeader(http.StatusUnauthorized)
		case herald.EMALFORMED:
			w.WriteHeader(http.StatusBadRequest)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) got() ([]herald.PartnerEvent, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]herald.PartnerEvent(nil), rc.events...), append([]string(nil), rc.codes...)
}

type eventBundle struct {
	*bundle
	wh *mailgun.EventWebhook
	rc *receiver
}

// setupEvents starts a sandbox posting Mailgun's webhooks to a receiver
// that parses them with an EventWebhook for key, all on one fake clock.
func setupEvents(t *testing.T, key string, change func(*sandbox.Config)) *eventBundle {
	t.Helper()
	fake := clock.NewFake(t0)
	wh, err := mailgun.NewEventWebhook(mailgun.EventWebhookConfig{SigningKey: key, Clock: fake})
	require.NoError(t, err)
	rc := newReceiver(t, wh)
	cfg := sandbox.Config{Clock: fake, Seed: 1, Webhooks: map[sandbox.Partner]string{sandbox.Mailgun: rc.srv.URL}}
	if change != nil {
		change(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); sb.Close() })
	b := &bundle{sb: sb, clock: fake, p: partner(t, sb.URL, "sandbox-mailgun-key", "mg.example.com", fake)}
	return &eventBundle{bundle: b, wh: wh, rc: rc}
}

// send sends email() through the adapter and lets the sandbox post the
// message's final event: its webhook goes out from the fake clock's timer,
// synchronously within Advance.
func (b *eventBundle) send(t *testing.T) herald.Result {
	t.Helper()
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
	b.clock.Advance(0)
	return r
}

func TestEventWebhookEndToEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fate        sandbox.Fate // "" for no fault: delivered
		typ         string
		partnerType string
		reason      string
	}{
		{"", herald.PartnerDelivered, "delivered", ""},
		{sandbox.FateBounced, herald.PartnerBounced, "failed", "The email account that you tried to reach does not exist"},
		{sandbox.FateDropped, herald.PartnerDropped, "failed", "Not delivering to previously bounced address"},
		{sandbox.FateDeferred, herald.PartnerDeferred, "failed", "Greylisted, please try again later"},
	} {
		t.Run(cmpOr(string(tc.fate), "delivered"), func(t *testing.T) {
			t.Parallel()
			b := setupEvents(t, signingKey, func(c *sandbox.Config) {
				if tc.fate != "" {
					c.Faults = []sandbox.Fault{{Kind: sandbox.FaultAcceptThenFail, Fate: tc.fate}}
				}
			})
			r := b.send(t)
			evs, codes := b.rc.got()
			require.Equal(t, []string{""}, codes)
			require.Len(t, evs, 1)
			ev := evs[0]
			require.Equal(t, tc.typ, ev.Type)
			require.Equal(t, tc.partnerType, ev.PartnerType)
			require.Equal(t, r.MessageID, ev.MessageID, "the id Send recorded, brackets and all")
			require.Equal(t, "d-1", ev.DeliveryID)
			require.Equal(t, "n-1", ev.NotificationID)
			require.Equal(t, "oncall@example.com", ev.Recipient)
			require.True(t, t0.Equal(ev.At), ev.At)
			require.Equal(t, tc.reason, ev.Reason)
			m, ok := b.sb.Message(r.MessageID)
			require.True(t, ok)
			require.Len(t, m.Events, 1)
			require.NotEmpty(t, ev.EventID)
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// A complaint comes after a delivery; herald acts on the delivery and
// ignores the complaint.
func TestEventWebhookIgnoresComplaints(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, signingKey, func(c *sandbox.Config) { c.EventDelay = time.Hour })
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
	_, err := b.sb.Emit(r.MessageID, sandbox.EmitRequest{Type: sandbox.FateComplained})
	require.NoError(t, err)
	evs, codes := b.rc.got()
	require.Equal(t, []string{"", ""}, codes)
	require.Len(t, evs, 2)
	require.Equal(t, herald.PartnerDelivered, evs[0].Type)
	require.Equal(t, "", evs[1].Type)
	require.Equal(t, "complained", evs[1].PartnerType)
	require.Equal(t, r.MessageID, evs[1].MessageID)
	require.NotEqual(t, evs[0].EventID, evs[1].EventID)
}

// The sandbox's duplicate_webhooks fault posts the same signed request
// twice: the second is a replay.
func TestEventWebhookRefusesTheSandboxsReplay(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, signingKey, func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Kind: sandbox.FaultDuplicateWebhooks, Copies: 2}}
	})
	b.send(t)
	evs, codes := b.rc.got()
	require.Equal(t, []string{"", herald.EUNAUTHORIZED}, codes)
	require.Len(t, evs, 1)
}

func TestEventWebhookRefusesAnotherKey(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, "another-signing-key", nil)
	b.send(t)
	evs, codes := b.rc.got()
	require.Equal(t, []string{herald.EUNAUTHORIZED}, codes)
	require.Empty(t, evs)
	attempts := b.sb.WebhookAttempts()
	require.Len(t, attempts, 1)
	require.Equal(t, http.StatusUnauthorized, attempts[0].Status)
}

// sign returns a webhook body for data signed with key at ts.
func sign(t testing.TB, key string, ts int64, token string, data any) []byte {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(strconv.FormatInt(ts, 10) + token))
	body, err := json.Marshal(map[string]any{
		"signature":  map[string]string{"timestamp": strconv.FormatInt(ts, 10), "token": token, "signature": hex.EncodeToString(mac.Sum(nil))},
		"event-data": data,
	})
	require.NoError(t, err)
	return body
}

var tokens atomic.Int64

func token() string { return fmt.Sprintf("%050d", tokens.Add(1)) }

// delivered is event-data as Mailgun sends it for a delivery.
func delivered() map[string]any {
	return map[string]any{
		"id": "CPgfbmQMTCKtHW6uIWtuVe", "event": "delivered", "timestamp": float64(t0.UnixMicro()+250) / 1e6,
		"recipient": "oncall@example.com", "message": map[string]any{"headers": map[string]any{"message-id": "20261124120000.abc@mg.example.com"}},
		"user-variables":  map[string]any{herald.MetaDeliveryID: "d-1", herald.MetaNotificationID: "n-1", "team": "platform"},
		"delivery-status": map[string]any{"code": 250, "message": "OK", "description": ""},
		"flags":           map[string]any{"is-test-mode": false},
	}
}

func webhook(t *testing.T) (*mailgun.EventWebhook, *clock.Fake) {
	t.Helper()
	fake := clock.NewFake(t0)
	wh, err := mailgun.NewEventWebhook(mailgun.EventWebhookConfig{SigningKey: signingKey, Clock: fake})
	require.NoError(t, err)
	return wh, fake
}

func parse(wh *mailgun.EventWebhook, body []byte) ([]herald.PartnerEvent, error) {
	r := httptest.NewRequest(http.MethodPost, "/hooks/mailgun", strings.NewReader(string(body)))
	return wh.Parse(context.Background(), r, body)
}

func TestEventWebhookReadsEventData(t *testing.T) {
	t.Parallel()
	wh, _ := webhook(t)
	evs, err := parse(wh, sign(t, signingKey, t0.Unix(), token(), delivered()))
	require.NoError(t, err)
	require.Equal(t, []herald.PartnerEvent{{
		EventID: "CPgfbmQMTCKtHW6uIWtuVe", Type: herald.PartnerDelivered, PartnerType: "delivered",
		MessageID: "<20261124120000.abc@mg.example.com>", DeliveryID: "d-1", NotificationID: "n-1",
		Recipient: "oncall@example.com", At: t0.Add(250 * time.Microsecond),
	}}, evs)

	for _, tc := range []struct {
		name   string
		change func(d map[string]any)
		typ    string
		reason string
	}{
		{"test mode: nothing was delivered", func(d map[string]any) {
			d["flags"] = map[string]any{"is-test-mode": true}
		}, "", ""},
		{"hard bounce", func(d map[string]any) {
			d["event"], d["severity"], d["reason"] = "failed", "permanent", "bounce"
			d["delivery-status"] = map[string]any{"code": 550, "message": "5.1.1 No such user", "description": ""}
		}, herald.PartnerBounced, "5.1.1 No such user"},
		{"suppressed: a drop, not a bounce", func(d map[string]any) {
			d["event"], d["severity"], d["reason"] = "failed", "permanent", "suppress-bounce"
			d["delivery-status"] = map[string]any{"code": 605, "description": "Not delivering to previously bounced address"}
		}, herald.PartnerDropped, "Not delivering to previously bounced address"},
		{"unsubscribed recipient", func(d map[string]any) {
			d["event"], d["severity"], d["reason"] = "failed", "permanent", "suppress-unsubscribe"
			delete(d, "delivery-status")
		}, herald.PartnerDropped, "suppress-unsubscribe"},
		{"temporary failure", func(d map[string]any) {
			d["event"], d["severity"], d["reason"] = "failed", "temporary", "generic"
			d["delivery-status"] = map[string]any{"code": 451, "message": "Greylisted"}
		}, herald.PartnerDeferred, "Greylisted"},
		{"opened", func(d map[string]any) { d["event"] = "opened" }, "", ""},
		{"accepted", func(d map[string]any) { d["event"] = "accepted" }, "", ""},
		{"herald ids that are not strings are not ids", func(d map[string]any) {
			d["user-variables"] = map[string]any{herald.MetaDeliveryID: 7}
			d["event"] = "clicked"
		}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := delivered()
			tc.change(d)
			evs, err := parse(wh, sign(t, signingKey, t0.Unix(), token(), d))
			require.NoError(t, err)
			require.Len(t, evs, 1)
			require.Equal(t, tc.typ, evs[0].Type)
			require.Equal(t, d["event"], evs[0].PartnerType)
			require.Equal(t, tc.reason, evs[0].Reason)
			require.Equal(t, "<20261124120000.abc@mg.example.com>", evs[0].MessageID)
		})
	}

	d := delivered()
	delete(d, "id")
	evs, err = parse(wh, sign(t, signingKey, t0.Unix(), token(), d))
	require.NoError(t, err)
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, evs[0].EventID, "derived from the content when Mailgun gives none")
}

func TestEventWebhookRefusals(t *testing.T) {
	t.Parallel()
	good := func() []byte { return sign(t, signingKey, t0.Unix(), token(), delivered()) }
	withSig := func(f func(sig map[string]any)) []byte {
		var m map[string]any
		require.NoError(t, json.Unmarshal(good(), &m))
		f(m["signature"].(map[string]any))
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return b
	}
	for _, tc := range []struct {
		name string
		body []byte
		code string
	}{
		{"forged signature", withSig(func(s map[string]any) { s["signature"] = strings.Repeat("ab", 32) }), herald.EUNAUTHORIZED},
		{"signature not hex", withSig(func(s map[string]any) { s["signature"] = "zz" }), herald.EUNAUTHORIZED},
		{"timestamp changed after signing", withSig(func(s map[string]any) { s["timestamp"] = strconv.FormatInt(t0.Unix()+1, 10) }), herald.EUNAUTHORIZED},
		{"token changed after signing", withSig(func(s map[string]any) { s["token"] = token() }), herald.EUNAUTHORIZED},
		{"no signature", withSig(func(s map[string]any) { clear(s) }), herald.EUNAUTHORIZED},
		{"wrong key", sign(t, "another-key", t0.Unix(), token(), delivered()), herald.EUNAUTHORIZED},
		{"stale", sign(t, signingKey, t0.Add(-11*time.Minute).Unix(), token(), delivered()), herald.EUNAUTHORIZED},
		{"from the future", sign(t, signingKey, t0.Add(11*time.Minute).Unix(), token(), delivered()), herald.EUNAUTHORIZED},
		{"timestamp far in the past", sign(t, signingKey, -1<<62, token(), delivered()), herald.EUNAUTHORIZED},
		{"timestamp not a number", withSig(func(s map[string]any) { s["timestamp"] = "soon" }), herald.EUNAUTHORIZED},
		{"not JSON", []byte("signature=x"), herald.EMALFORMED},
		{"an array", []byte(`[{"signature":{}}]`), herald.EMALFORMED},
		{"empty", nil, herald.EMALFORMED},
		{"signature of the wrong type", []byte(`{"signature":"abc","event-data":{}}`), herald.EMALFORMED},
		{"signed, without event-data", sign(t, signingKey, t0.Unix(), token(), nil), herald.EMALFORMED},
		{"signed, event-data not an object", sign(t, signingKey, t0.Unix(), token(), []int{1}), herald.EMALFORMED},
		{"signed, no event", sign(t, signingKey, t0.Unix(), token(), map[string]any{"id": "x", "timestamp": 1.7e9}), herald.EMALFORMED},
		{"signed, no timestamp", sign(t, signingKey, t0.Unix(), token(), map[string]any{"id": "x", "event": "delivered"}), herald.EMALFORMED},
		{"signed, timestamp a string", sign(t, signingKey, t0.Unix(), token(), map[string]any{"event": "delivered", "timestamp": "1.7e9"}), herald.EMALFORMED},
		{"signed, a failure of no severity", sign(t, signingKey, t0.Unix(), token(), map[string]any{"event": "failed", "timestamp": 1.7e9}), herald.EMALFORMED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wh, _ := webhook(t)
			evs, err := parse(wh, tc.body)
			require.Equal(t, tc.code, herald.ErrorCode(err), "%v", err)
			require.Empty(t, evs)
			require.NotContains(t, err.Error(), signingKey, "the key never reaches an error")
		})
	}
}

func TestEventWebhookRefusesAReplayedToken(t *testing.T) {
	t.Parallel()
	wh, fake := webhook(t)
	tok := token()
	body := sign(t, signingKey, t0.Unix(), tok, delivered())
	_, err := parse(wh, body)
	require.NoError(t, err)
	evs, err := parse(wh, body)
	require.Equal(t, herald.EUNAUTHORIZED, herald.ErrorCode(err))
	require.ErrorContains(t, err, "replayed")
	require.Empty(t, evs)

	// The same token, signed again a minute later: still a replay.
	fake.Advance(time.Minute)
	_, err = parse(wh, sign(t, signingKey, t0.Add(time.Minute).Unix(), tok, delivered()))
	require.Equal(t, herald.EUNAUTHORIZED, herald.ErrorCode(err))

	// Concurrent copies: exactly one is taken.
	body = sign(t, signingKey, fake.Now().Unix(), token(), delivered())
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := parse(wh, body); err == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), ok.Load())
}

// Tokens are forgotten once their requests would be stale anyway, and the
// set never grows past MaxTokens.
func TestEventWebhookTokensExpireAndAreBounded(t *testing.T) {
	t.Parallel()
	wh, fake := webhook(t)
	for range 3 {
		_, err := parse(wh, sign(t, signingKey, t0.Unix(), token(), delivered()))
		require.NoError(t, err)
	}
	require.Equal(t, 3, wh.Remembered())
	fake.Advance(10 * time.Minute)
	_, err := parse(wh, sign(t, signingKey, fake.Now().Unix(), token(), delivered()))
	require.NoError(t, err)
	require.Equal(t, 4, wh.Remembered(), "at exactly MaxAge the first three could still be accepted")
	fake.Advance(time.Second)
	_, err = parse(wh, sign(t, signingKey, fake.Now().Unix(), token(), delivered()))
	require.NoError(t, err)
	require.Equal(t, 2, wh.Remembered(), "the first three expired")

	wh.FillTokens(mailgun.MaxTokens-2, fake.Now().Add(10*time.Minute))
	_, err = parse(wh, sign(t, signingKey, fake.Now().Unix(), token(), delivered()))
	require.Equal(t, herald.EUNAVAILABLE, herald.ErrorCode(err), "full of fresh tokens: refused, none forgotten early")
	require.Equal(t, mailgun.MaxTokens, wh.Remembered())
	fake.Advance(10*time.Minute + time.Second)
	_, err = parse(wh, sign(t, signingKey, fake.Now().Unix(), token(), delivered()))
	require.NoError(t, err)
	require.Equal(t, 1, wh.Remembered())
}

func TestNewEventWebhookValidates(t *testing.T) {
	t.Parallel()
	_, err := mailgun.NewEventWebhook(mailgun.EventWebhookConfig{})
	require.ErrorContains(t, err, "signing_key")
	_, err = mailgun.NewEventWebhook(mailgun.EventWebhookConfig{SigningKey: "k", MaxAge: -time.Second})
	require.ErrorContains(t, err, "max_age")
	_, err = mailgun.NewEventWebhook(mailgun.EventWebhookConfig{SigningKey: "k"})
	require.NoError(t, err)
}

// FuzzEventWebhook: whatever arrives, Parse never panics and fails closed —
// an unsigned body is refused; a signed one yields well-formed events or
// EMALFORMED.
func FuzzEventWebhook(f *testing.F) {
	d, _ := json.Marshal(delivered())
	f.Add([]byte(`{"signature":{"timestamp":"1","token":"t","signature":"00"},"event-data":{}}`), d)
	f.Add(sign(f, signingKey, t0.Unix(), "seed-token", delivered()), []byte(`{"event":"failed","severity":"permanent","reason":"bounce","timestamp":1.7e9}`))
	f.Add([]byte(`{"signature":null}`), []byte(`{"event":"failed","timestamp":1e300}`))
	f.Add([]byte(`[]`), []byte(`{"event":"delivered","timestamp":-1,"user-variables":[1]}`))
	f.Fuzz(func(t *testing.T, body, eventData []byte) {
		fake := clock.NewFake(t0)
		wh, err := mailgun.NewEventWebhook(mailgun.EventWebhookConfig{SigningKey: signingKey, Clock: fake})
		require.NoError(t, err)

		evs, err := parse(wh, body)
		if err == nil {
			// Only a body signed with the key can pass: check it the long way.
			var b struct {
				Signature struct{ Timestamp, Token, Signature string }
			}
			require.NoError(t, json.Unmarshal(body, &b))
			mac := hmac.New(sha256.New, []byte(signingKey))
			mac.Write([]byte(b.Signature.Timestamp + b.Signature.Token))
			require.Equal(t, hex.EncodeToString(mac.Sum(nil)), strings.ToLower(b.Signature.Signature))
			checkEvents(t, evs)
		} else {
			require.Contains(t, []string{herald.EUNAUTHORIZED, herald.EMALFORMED}, herald.ErrorCode(err), "%v", err)
			require.Empty(t, evs)
		}

		var raw json.RawMessage
		if json.Unmarshal(eventData, &raw) != nil {
			return
		}
		signed := sign(t, signingKey, t0.Unix(), "fuzz-token", raw)
		evs, err = parse(wh, signed)
		if err != nil {
			require.Equal(t, herald.EMALFORMED, herald.ErrorCode(err), "%v", err)
			require.Empty(t, evs)
			return
		}
		checkEvents(t, evs)
	})
}

func checkEvents(t *testing.T, evs []herald.PartnerEvent) {
	require.Len(t, evs, 1)
	ev := evs[0]
	require.NotEmpty(t, ev.EventID)
	require.NotEmpty(t, ev.PartnerType)
	require.Contains(t, []string{"", herald.PartnerDelivered, herald.PartnerBounced, herald.PartnerDropped, herald.PartnerDeferred}, ev.Type)
	require.False(t, ev.At.IsZero())
	if ev.MessageID != "" {
		require.True(t, strings.HasPrefix(ev.MessageID, "<") && strings.HasSuffix(ev.MessageID, ">"), ev.MessageID)
	}
}
