package sendgrid_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/clock"
	"herald/provider/sendgrid"
	"herald/sandbox"
)

// received is one webhook request as the receiver read it.
type received struct {
	header http.Header
	body   []byte
	events []herald.PartnerEvent
	err    error
}

type hookBundle struct {
	*bundle
	wh   *sendgrid.EventWebhook
	got  chan received
	fail atomic.Int32 // how many requests to answer 503 before reading them
}

// setupHooks is setup with a receiver that reads the sandbox's event
// webhooks with an EventWebhook holding the sandbox's public key and clock.
func setupHooks(t *testing.T, change func(*sandbox.Config)) *hookBundle {
	t.Helper()
	b := &hookBundle{bundle: setup(t, change), got: make(chan received, 64)}
	wh, err := sendgrid.NewEventWebhook(sendgrid.EventWebhookConfig{PublicKey: b.sb.Keys().SendGridPublicKey, Clock: b.clock})
	require.NoError(t, err)
	b.wh = wh
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.fail.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		evs, err := b.wh.Parse(r.Context(), r, body)
		b.got <- received{header: r.Header.Clone(), body: body, events: evs, err: err}
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	require.NoError(t, b.sb.SetWebhook(sandbox.SendGrid, srv.URL))
	return b
}

// next returns the next request the receiver read; the sandbox posts
// synchronously within clock.Advance, so it is already there.
func (b *hookBundle) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-b.got:
		return r
	default:
		t.Fatal("the receiver got no event webhook")
		return received{}
	}
}

func (b *hookBundle) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-b.got:
		t.Fatalf("the receiver got an unexpected event webhook: %s", r.body)
	default:
	}
}

func TestEventWebhookDelivered(t *testing.T) {
	t.Parallel()
	b := setupHooks(t, nil)
	e := email()
	r := b.p.Send(context.Background(), e)
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
	b.clock.Advance(0) // the sandbox's final event is due at once

	got := b.next(t)
	require.NoError(t, got.err)
	require.Len(t, got.events, 1)
	ev := got.events[0]
	require.Equal(t, herald.PartnerDelivered, ev.Type)
	require.Equal(t, "delivered", ev.PartnerType)
	require.Equal(t, r.MessageID, ev.MessageID, "the event names the message id Send recorded")
	require.Equal(t, e.Metadata[herald.MetaDeliveryID], ev.DeliveryID)
	require.Equal(t, e.Metadata[herald.MetaNotificationID], ev.NotificationID)
	require.Equal(t, "oncall@example.com", ev.Recipient)
	require.True(t, t0.Equal(ev.At), "at %s", ev.At)
	require.NotEmpty(t, ev.EventID)
	require.Empty(t, ev.Reason)
	b.none(t)

	msgs := b.sb.Messages(sandbox.MessageFilter{MessageID: r.MessageID})
	require.Len(t, msgs, 1)
	require.Len(t, msgs[0].Events, 1)
	require.Equal(t, base64.RawURLEncoding.EncodeToString([]byte(msgs[0].Events[0].ID)), ev.EventID, "EventID is sg_event_id")
}

// Each final fate the sandbox can give a message, through accept_then_fail,
// and the kind herald reads from SendGrid's event.
func TestEventWebhookFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fate        sandbox.Fate
		kind        string
		partnerType string
		reason      string
	}{
		{sandbox.FateBounced, herald.PartnerBounced, "bounce", "550 5.1.1"},
		{sandbox.FateDropped, herald.PartnerDropped, "dropped", "Bounced Address"},
		{sandbox.FateDeferred, herald.PartnerDeferred, "deferred", "451 4.7.1"},
	} {
		t.Run(string(tc.fate), func(t *testing.T) {
			t.Parallel()
			b := setupHooks(t, func(c *sandbox.Config) {
				c.Faults = []sandbox.Fault{{Kind: sandbox.FaultAcceptThenFail, Fate: tc.fate}}
				c.EventDelay = time.Minute
			})
			e := email()
			r := b.p.Send(context.Background(), e)
			require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
			b.clock.Advance(59 * time.Second)
			b.none(t)
			b.clock.Advance(time.Second)

			got := b.next(t)
			require.NoError(t, got.err)
			require.Len(t, got.events, 1)
			ev := got.events[0]
			require.Equal(t, tc.kind, ev.Type)
			require.Equal(t, tc.partnerType, ev.PartnerType)
			require.Contains(t, ev.Reason, tc.reason)
			require.Equal(t, r.MessageID, ev.MessageID)
			require.Equal(t, e.Metadata[herald.MetaDeliveryID], ev.DeliveryID)
			require.True(t, t0.Add(time.Minute).Equal(ev.At))
		})
	}
}

// A spam report, emitted through the control API, comes after a delivery
// and is parsed but ignored.
func TestEventWebhookIgnoresOthers(t *testing.T) {
	t.Parallel()
	b := setupHooks(t, func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Kind: sandbox.FaultNeverConfirm}}
	})
	e := email()
	r := b.p.Send(context.Background(), e)
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
	b.clock.Advance(time.Hour)
	b.none(t)

	msgs := b.sb.Messages(sandbox.MessageFilter{MessageID: r.MessageID})
	require.Len(t, msgs, 1)
	_, err := b.sb.Emit(msgs[0].ID, sandbox.EmitRequest{Type: sandbox.FateComplained})
	require.NoError(t, err)

	got := b.next(t)
	require.NoError(t, got.err)
	require.Len(t, got.events, 2)
	require.Equal(t, herald.PartnerDelivered, got.events[0].Type)
	require.Equal(t, "", got.events[1].Type)
	require.Equal(t, "spamreport", got.events[1].PartnerType)
	for _, ev := range got.events {
		require.Equal(t, r.MessageID, ev.MessageID)
		require.Equal(t, e.Metadata[herald.MetaDeliveryID], ev.DeliveryID)
	}
	require.NotEqual(t, got.events[0].EventID, got.events[1].EventID)
}

// SendGrid signs each attempt anew: a retry half a minute later verifies,
// and a repeated webhook carries the same event ids, by which it is
// deduplicated.
func TestEventWebhookRetriedAndRepeated(t *testing.T) {
	t.Parallel()
	b := setupHooks(t, func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Kind: sandbox.FaultDuplicateWebhooks, Copies: 2}}
	})
	b.fail.Store(1)
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
	b.clock.Advance(0)
	first := b.next(t) // the second copy; the first was answered 503
	b.none(t)
	b.clock.Advance(30 * time.Second)
	retry := b.next(t)
	for _, got := range []received{first, retry} {
		require.NoError(t, got.err)
		require.Len(t, got.events, 1)
		require.Equal(t, r.MessageID, got.events[0].MessageID)
	}
	require.Equal(t, first.events[0].EventID, retry.events[0].EventID)
	require.NotEqual(t, first.header.Get(sendgrid.TimestampHeader), retry.header.Get(sendgrid.TimestampHeader), "signed at each attempt")
}

// A genuine request replayed later than MaxAge is refused as stale.
func TestEventWebhookReplayedLate(t *testing.T) {
	t.Parallel()
	b := setupHooks(t, nil)
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
	b.clock.Advance(0)
	got := b.next(t)
	require.NoError(t, got.err)

	replay := func() ([]herald.PartnerEvent, error) {
		req := httptest.NewRequest(http.MethodPost, "/hooks/sendgrid", strings.NewReader(string(got.body)))
		req.Header = got.header.Clone()
		return b.wh.Parse(context.Background(), req, got.body)
	}
	evs, err := replay()
	require.NoError(t, err, "within MaxAge a replay verifies; its event ids repeat")
	require.Equal(t, got.events, evs)
	b.clock.Advance(10*time.Minute + time.Second)
	evs, err = replay()
	require.Equal(t, herald.EUNAUTHORIZED, herald.ErrorCode(err), "%v", err)
	require.Contains(t, err.Error(), "stale")
	require.Empty(t, evs)
}

// signer signs event webhook requests as SendGrid does, with a key of its own.
type signer struct {
	key *ecdsa.PrivateKey
}

func newSigner(t testing.TB) signer {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return signer{key: key}
}

func (s signer) publicKey(t testing.TB) string {
	der, err := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(der)
}

func (s signer) sign(t testing.TB, ts string, body []byte) string {
	sum := sha256.Sum256(append([]byte(ts), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, sum[:])
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(sig)
}

func request(sig, ts string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hooks/sendgrid", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/json")
	if sig != "" {
		r.Header.Set(sendgrid.SignatureHeader, sig)
	}
	if ts != "" {
		r.Header.Set(sendgrid.TimestampHeader, ts)
	}
	return r
}

func unitWebhook(t testing.TB) (*sendgrid.EventWebhook, signer, *clock.Fake) {
	s := newSigner(t)
	fake := clock.NewFake(t0)
	wh, err := sendgrid.NewEventWebhook(sendgrid.EventWebhookConfig{PublicKey: s.publicKey(t), Clock: fake})
	require.NoError(t, err)
	return wh, s, fake
}

const delivered = `[{"email":"oncall@example.com","timestamp":1795521600,"event":"delivered","sg_event_id":"ev-1",` +
	`"sg_message_id":"abc123.filterdrecv-1-0.0","herald_delivery_id":"d-1","herald_notification_id":"n-1"}]`

func TestEventWebhookRefuses(t *testing.T) {
	t.Parallel()
	now := strconv.FormatInt(t0.Unix(), 10)
	body := []byte(delivered)
	other := newSigner(t)
	for _, tc := range []struct {
		name string
		req  func(s signer) (*http.Request, []byte)
		code string
		msg  string
	}{
		{"signed by another key", func(signer) (*http.Request, []byte) {
			return request(other.sign(t, now, body), now, body), body
		}, herald.EUNAUTHORIZED, "does not verify"},
		{"body changed after signing", func(s signer) (*http.Request, []byte) {
			changed := []byte(strings.Replace(delivered, "delivered", "bounce", 1))
			return request(s.sign(t, now, body), now, changed), changed
		}, herald.EUNAUTHORIZED, "does not verify"},
		{"timestamp changed after signing", func(s signer) (*http.Request, []byte) {
			return request(s.sign(t, now, body), strconv.FormatInt(t0.Unix()+1, 10), body), body
		}, herald.EUNAUTHORIZED, "does not verify"},
		{"stale", func(s signer) (*http.Request, []byte) {
			ts := strconv.FormatInt(t0.Add(-11*time.Minute).Unix(), 10)
			return request(s.sign(t, ts, body), ts, body), body
		}, herald.EUNAUTHORIZED, "stale"},
		{"future-dated", func(s signer) (*http.Request, []byte) {
			ts := strconv.FormatInt(t0.Add(11*time.Minute).Unix(), 10)
			return request(s.sign(t, ts, body), ts, body), body
		}, herald.EUNAUTHORIZED, "stale"},
		{"far future", func(s signer) (*http.Request, []byte) {
			ts := "9223372036854775807"
			return request(s.sign(t, ts, body), ts, body), body
		}, herald.EUNAUTHORIZED, "stale"},
		{"timestamp not Unix seconds", func(s signer) (*http.Request, []byte) {
			ts := t0.Format(time.RFC3339)
			return request(s.sign(t, ts, body), ts, body), body
		}, herald.EUNAUTHORIZED, "Unix seconds"},
		{"no signature", func(s signer) (*http.Request, []byte) {
			return request("", now, body), body
		}, herald.EUNAUTHORIZED, "missing"},
		{"no timestamp", func(s signer) (*http.Request, []byte) {
			return request(s.sign(t, now, body), "", body), body
		}, herald.EUNAUTHORIZED, "missing"},
		{"no headers", func(signer) (*http.Request, []byte) {
			return request("", "", body), body
		}, herald.EUNAUTHORIZED, "missing"},
		{"signature not base64", func(signer) (*http.Request, []byte) {
			return request("not base64!", now, body), body
		}, herald.EUNAUTHORIZED, "base64"},
		{"signature not DER", func(signer) (*http.Request, []byte) {
			return request(base64.StdEncoding.EncodeToString([]byte("garbage")), now, body), body
		}, herald.EUNAUTHORIZED, "does not verify"},
		{"signed, not JSON", func(s signer) (*http.Request, []byte) {
			b := []byte(`[{"event":`)
			return request(s.sign(t, now, b), now, b), b
		}, herald.EMALFORMED, "not a JSON array"},
		{"signed, an object", func(s signer) (*http.Request, []byte) {
			b := []byte(`{"event":"delivered"}`)
			return request(s.sign(t, now, b), now, b), b
		}, herald.EMALFORMED, "not a JSON array"},
		{"signed, null", func(s signer) (*http.Request, []byte) {
			b := []byte(`null`)
			return request(s.sign(t, now, b), now, b), b
		}, herald.EMALFORMED, "not a JSON array"},
		{"signed, empty", func(s signer) (*http.Request, []byte) {
			return request(s.sign(t, now, nil), now, nil), nil
		}, herald.EMALFORMED, "not a JSON array"},
		{"signed, an event of the wrong shape", func(s signer) (*http.Request, []byte) {
			b := []byte(`[{"event":"delivered","timestamp":"yesterday"}]`)
			return request(s.sign(t, now, b), now, b), b
		}, herald.EMALFORMED, "event 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wh, s, _ := unitWebhook(t)
			req, b := tc.req(s)
			evs, err := wh.Parse(context.Background(), req, b)
			require.Equal(t, tc.code, herald.ErrorCode(err), "%v", err)
			require.Contains(t, err.Error(), tc.msg)
			require.Empty(t, evs)
		})
	}
}

func TestEventWebhookMapping(t *testing.T) {
	t.Parallel()
	wh, s, fake := unitWebhook(t)
	body := []byte(`[
	{"event":"processed","email":"a@example.com","timestamp":1795521600,"sg_event_id":"e0","sg_message_id":"m1.filter0001.1-0.0"},
	{"event":"delivered","email":"a@example.com","timestamp":1795521601,"sg_event_id":"e1","sg_message_id":"m1.filter0001.1-0.0","response":"250 OK","herald_delivery_id":"d-1","herald_notification_id":"n-1"},
	{"event":"bounce","type":"bounce","email":"b@example.com","timestamp":1795521602,"sg_event_id":"e2","sg_message_id":"m1.filter0002","reason":"550 5.1.1 no such user","status":"5.1.1"},
	{"event":"bounce","type":"blocked","email":"c@example.com","timestamp":1795521603,"sg_event_id":"e3","sg_message_id":"m1.filter0003","reason":"554 blocked by policy"},
	{"event":"bounce","email":"d@example.com","timestamp":1795521604,"sg_event_id":"e4","sg_message_id":"m1"},
	{"event":"dropped","email":"e@example.com","timestamp":1795521605,"sg_event_id":"e5","sg_message_id":"m1.x","reason":"Bounced Address"},
	{"event":"deferred","email":"f@example.com","timestamp":1795521606,"sg_event_id":"e6","sg_message_id":"m1.x","response":"451 try later","attempt":"2"},
	{"event":"open","email":"g@example.com","timestamp":1795521607,"sg_event_id":"e7","sg_message_id":"m1.x","category":["a","b"]},
	{"event":"delivered","email":"h@example.com","timestamp":1795521608,"sg_message_id":"m2.x","category":"one"}
	]`)
	now := strconv.FormatInt(fake.Now().Unix(), 10)
	evs, err := wh.Parse(context.Background(), request(s.sign(t, now, body), now, body), body)
	require.NoError(t, err)
	require.Len(t, evs, 9)

	type row struct{ id, kind, partnerType, msg, recipient, reason string }
	var got []row
	for _, ev := range evs {
		got = append(got, row{ev.EventID, ev.Type, ev.PartnerType, ev.MessageID, ev.Recipient, ev.Reason})
	}
	require.Equal(t, []row{
		{"e0", "", "processed", "m1", "a@example.com", ""},
		{"e1", herald.PartnerDelivered, "delivered", "m1", "a@example.com", ""},
		{"e2", herald.PartnerBounced, "bounce", "m1", "b@example.com", "550 5.1.1 no such user"},
		{"e3", herald.PartnerDropped, "bounce", "m1", "c@example.com", "554 blocked by policy"},
		{"e4", herald.PartnerBounced, "bounce", "m1", "d@example.com", ""},
		{"e5", herald.PartnerDropped, "dropped", "m1", "e@example.com", "Bounced Address"},
		{"e6", herald.PartnerDeferred, "deferred", "m1", "f@example.com", "451 try later"},
		{"e7", "", "open", "m1", "g@example.com", ""},
		{got[8].id, herald.PartnerDelivered, "delivered", "m2", "h@example.com", ""},
	}, got)
	require.True(t, strings.HasPrefix(got[8].id, "sha256:"), "an event without sg_event_id gets one derived from its content")
	require.Equal(t, "d-1", evs[1].DeliveryID)
	require.Equal(t, "n-1", evs[1].NotificationID)
	require.Empty(t, evs[2].DeliveryID)
	require.Equal(t, time.Unix(1795521602, 0).UTC(), evs[2].At)

	empty := []byte(" [] ")
	evs, err = wh.Parse(context.Background(), request(s.sign(t, now, empty), now, empty), empty)
	require.NoError(t, err)
	require.Empty(t, evs)
}

func TestNewEventWebhook(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rsaDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	p384DER, err := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	require.NoError(t, err)
	good := newSigner(t).publicKey(t)

	for _, tc := range []struct {
		name string
		cfg  sendgrid.EventWebhookConfig
		msg  string
	}{
		{"no key", sendgrid.EventWebhookConfig{}, "required"},
		{"not base64", sendgrid.EventWebhookConfig{PublicKey: "not base64!"}, "not base64"},
		{"not DER", sendgrid.EventWebhookConfig{PublicKey: base64.StdEncoding.EncodeToString([]byte("garbage"))}, "not a DER public key"},
		{"RSA", sendgrid.EventWebhookConfig{PublicKey: base64.StdEncoding.EncodeToString(rsaDER)}, "want an ECDSA key"},
		{"P-384", sendgrid.EventWebhookConfig{PublicKey: base64.StdEncoding.EncodeToString(p384DER)}, "want P-256"},
		{"negative max age", sendgrid.EventWebhookConfig{PublicKey: good, MaxAge: -time.Second}, "max_age"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wh, err := sendgrid.NewEventWebhook(tc.cfg)
			require.ErrorContains(t, err, tc.msg)
			require.Nil(t, wh)
		})
	}
	wh, err := sendgrid.NewEventWebhook(sendgrid.EventWebhookConfig{PublicKey: " " + good + "\n"})
	require.NoError(t, err, "the key as pasted, with white space around it")
	require.NotNil(t, wh)
}

// FuzzEventWebhookParse feeds Parse arbitrary requests: unsigned ones must
// be refused as unauthorized with no events, signed ones must parse or be
// refused as malformed; nothing panics.
func FuzzEventWebhookParse(f *testing.F) {
	f.Add([]byte(delivered), "", "", true)
	f.Add([]byte(delivered), "MEUCIQ==", "1795521600", false)
	f.Add([]byte(`[{"event":"bounce","type":"blocked","timestamp":-1}]`), "", "", true)
	f.Add([]byte(`[{"event":"delivered","timestamp":1e99}]`), "", "", true)
	f.Add([]byte(`[{"sg_message_id":"...."},null,{}]`), "", "", true)
	f.Add([]byte(`[`), "", "", true)
	f.Add([]byte("\x00\xff"), "AAAA", "0", false)
	wh, s, fake := unitWebhook(f)
	now := strconv.FormatInt(fake.Now().Unix(), 10)
	f.Fuzz(func(t *testing.T, body []byte, sig, ts string, signed bool) {
		if signed {
			sig, ts = s.sign(t, now, body), now
		}
		req := httptest.NewRequest(http.MethodPost, "/hooks/sendgrid", nil)
		req.Header[sendgrid.SignatureHeader] = []string{sig}
		req.Header[sendgrid.TimestampHeader] = []string{ts}
		evs, err := wh.Parse(context.Background(), req, body)
		if !signed {
			require.Equal(t, herald.EUNAUTHORIZED, herald.ErrorCode(err), "an unsigned request passed: %v", err)
			require.Empty(t, evs)
			return
		}
		if err != nil {
			require.Equal(t, herald.EMALFORMED, herald.ErrorCode(err), "%v", err)
			require.Empty(t, evs)
			return
		}
		for _, ev := range evs {
			require.NotEmpty(t, ev.EventID)
			require.NotContains(t, ev.MessageID, ".")
			require.Contains(t, []string{"", herald.PartnerDelivered, herald.PartnerBounced, herald.PartnerDropped, herald.PartnerDeferred}, ev.Type)
		}
	})
}
