package postmark_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/provider/postmark"
	"herald/sandbox"
)

const (
	hookUser     = "herald"
	hookPassword = "hook-s3cret-Xq7"
)

// received is one webhook request as the receiver read it.
type received struct {
	body   []byte
	events []herald.PartnerEvent
	err    error
}

type hookBundle struct {
	*bundle
	wh   *postmark.EventWebhook
	srv  *httptest.Server
	got  chan received
	fail atomic.Int32 // how many requests to answer 503 before reading them
}

// setupHooks is setup with a receiver that reads the sandbox's Postmark
// webhooks with an EventWebhook, the target URL carrying the basic auth as
// Postmark's does.
func setupHooks(t *testing.T, change func(*sandbox.Config)) *hookBundle {
	t.Helper()
	b := &hookBundle{bundle: setup(t, change), got: make(chan received, 64)}
	wh, err := postmark.NewEventWebhook(postmark.EventWebhookConfig{Username: hookUser, Password: hookPassword})
	require.NoError(t, err)
	b.wh = wh
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		b.got <- received{body: body, events: evs, err: err}
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(b.srv.Close)
	b.target(t, hookUser, hookPassword)
	return b
}

// target points the sandbox's Postmark webhook at the receiver with user
// and password in the URL.
func (b *hookBundle) target(t *testing.T, user, password string) {
	t.Helper()
	u, err := url.Parse(b.srv.URL + "/hooks/postmark")
	require.NoError(t, err)
	u.User = url.UserPassword(user, password)
	require.NoError(t, b.sb.SetWebhook(sandbox.Postmark, u.String()))
}

// next returns the next request the receiver read; the sandbox posts
// synchronously within clock.Advance, so it is already there.
func (b *hookBundle) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-b.got:
		return r
	default:
		t.Fatal("the receiver got no webhook")
		return received{}
	}
}

func (b *hookBundle) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-b.got:
		t.Fatalf("the receiver got an unexpected webhook: %s", r.body)
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
	require.Equal(t, "Delivery", ev.PartnerType)
	require.Equal(t, r.MessageID, ev.MessageID, "the event names the MessageID Send recorded")
	require.Equal(t, e.Metadata[herald.MetaDeliveryID], ev.DeliveryID)
	require.Equal(t, e.Metadata[herald.MetaNotificationID], ev.NotificationID)
	require.Equal(t, "oncall@example.com", ev.Recipient)
	require.True(t, t0.Equal(ev.At), "at %s", ev.At)
	require.Equal(t, "Delivery:"+r.MessageID+":oncall@example.com:"+t0.Format(time.RFC3339), ev.EventID)
	require.Empty(t, ev.Reason)
	b.none(t)
}

// Each final fate the sandbox can give a message, through accept_then_fail,
// and the kind herald reads from Postmark's Bounce.
func TestEventWebhookBounces(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fate   sandbox.Fate
		kind   string
		reason string
	}{
		{sandbox.FateBounced, herald.PartnerBounced, "550 5.1.1"},       // HardBounce
		{sandbox.FateDropped, herald.PartnerDropped, "Bounced Address"}, // Blocked
		{sandbox.FateDeferred, herald.PartnerDeferred, "451 4.7.1"},     // Transient
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
			require.Equal(t, "Bounce", ev.PartnerType)
			require.Contains(t, ev.Reason, tc.reason)
			require.Equal(t, r.MessageID, ev.MessageID)
			require.Equal(t, e.Metadata[herald.MetaDeliveryID], ev.DeliveryID)
			require.Equal(t, e.Metadata[herald.MetaNotificationID], ev.NotificationID)
			require.Equal(t, "oncall@example.com", ev.Recipient)
			require.True(t, t0.Add(time.Minute).Equal(ev.At))
			require.Equal(t, "Bounce:"+r.MessageID+":oncall@example.com:"+t0.Add(time.Minute).Format(time.RFC3339)+":4000000000", ev.EventID)
		})
	}
}

// A spam complaint, emitted through the control API, comes after a
// delivery, one webhook each; the complaint is parsed and ignored.
func TestEventWebhookIgnoresComplaint(t *testing.T) {
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

	delivery, complaint := b.next(t), b.next(t)
	require.NoError(t, delivery.err)
	require.NoError(t, complaint.err)
	require.Len(t, delivery.events, 1)
	require.Len(t, complaint.events, 1)
	require.Equal(t, herald.PartnerDelivered, delivery.events[0].Type)
	require.Equal(t, "", complaint.events[0].Type)
	require.Equal(t, "SpamComplaint", complaint.events[0].PartnerType)
	require.Equal(t, r.MessageID, complaint.events[0].MessageID)
	require.Equal(t, e.Metadata[herald.MetaDeliveryID], complaint.events[0].DeliveryID)
	require.NotEqual(t, delivery.events[0].EventID, complaint.events[0].EventID)
}

// A webhook retried on Postmark's schedule, and one sent twice, carry the
// same event id, by which they are deduplicated.
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
	b.clock.Advance(time.Minute) // Postmark's first retry
	retry := b.next(t)
	for _, got := range []received{first, retry} {
		require.NoError(t, got.err)
		require.Len(t, got.events, 1)
		require.Equal(t, r.MessageID, got.events[0].MessageID)
	}
	require.Equal(t, first.events[0].EventID, retry.events[0].EventID)
}

// A webhook with the wrong password, from the sandbox, is refused, and the
// password is in no error.
func TestEventWebhookWrongPasswordEndToEnd(t *testing.T) {
	t.Parallel()
	b := setupHooks(t, nil)
	b.target(t, hookUser, "guessed-password")
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
	b.clock.Advance(0)
	got := b.next(t)
	require.Equal(t, herald.EUNAUTHORIZED, herald.ErrorCode(got.err), "%v", got.err)
	require.Empty(t, got.events)
	require.NotContains(t, got.err.Error(), "guessed-password")
	require.NotContains(t, got.err.Error(), hookPassword)
	attempts := b.sb.WebhookAttempts()
	require.Len(t, attempts, 1)
	require.Equal(t, http.StatusUnauthorized, attempts[0].Status)
}

func request(body string, auth func(*http.Request)) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hooks/postmark", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if auth != nil {
		auth(r)
	}
	return r
}

func basic(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func unitWebhook(t testing.TB) *postmark.EventWebhook {
	wh, err := postmark.NewEventWebhook(postmark.EventWebhookConfig{Username: hookUser, Password: hookPassword})
	require.NoError(t, err)
	return wh
}

const delivery = `{"RecordType":"Delivery","ServerID":23,"MessageStream":"outbound",` +
	`"MessageID":"883953f4-6105-42a2-a16a-77a8eac79483","Recipient":"john@example.com","Tag":"welcome-email",` +
	`"DeliveredAt":"2019-11-05T16:33:54.9070259Z","Details":"Test delivery webhook details",` +
	`"Metadata":{"a_key":"a_value","herald_dlv":"d-1","herald_ntf":"n-1"}}`

func TestEventWebhookRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		body string
		auth func(*http.Request)
		code string
	}{
		{"no auth", delivery, nil, herald.EUNAUTHORIZED},
		{"wrong password", delivery, basic(hookUser, "nope"), herald.EUNAUTHORIZED},
		{"password with a suffix", delivery, basic(hookUser, hookPassword+"x"), herald.EUNAUTHORIZED},
		{"wrong username", delivery, basic("admin", hookPassword), herald.EUNAUTHORIZED},
		{"empty credentials", delivery, basic("", ""), herald.EUNAUTHORIZED},
		{"bearer, not basic", delivery, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+hookPassword) }, herald.EUNAUTHORIZED},
		{"credentials in a query", delivery, func(r *http.Request) {
			r.URL.RawQuery = url.Values{"user": {hookUser}, "password": {hookPassword}}.Encode()
		}, herald.EUNAUTHORIZED},
		{"not JSON", `{"RecordType":`, basic(hookUser, hookPassword), herald.EMALFORMED},
		{"an array", "[" + delivery + "]", basic(hookUser, hookPassword), herald.EMALFORMED},
		{"null", "null", basic(hookUser, hookPassword), herald.EMALFORMED},
		{"empty", "", basic(hookUser, hookPassword), herald.EMALFORMED},
		{"no RecordType", `{"MessageID":"m-1"}`, basic(hookUser, hookPassword), herald.EMALFORMED},
		{"trailing data", delivery + "{}", basic(hookUser, hookPassword), herald.EMALFORMED},
		{"a time that is not RFC 3339", `{"RecordType":"Delivery","MessageID":"m-1","DeliveredAt":"05/11/2019"}`, basic(hookUser, hookPassword), herald.EMALFORMED},
		{"metadata not strings", `{"RecordType":"Delivery","MessageID":"m-1","Metadata":{"herald_dlv":7}}`, basic(hookUser, hookPassword), herald.EMALFORMED},
		{"bounce ID not a number", `{"RecordType":"Bounce","MessageID":"m-1","ID":"x"}`, basic(hookUser, hookPassword), herald.EMALFORMED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			evs, err := unitWebhook(t).Parse(context.Background(), request(tc.body, tc.auth), []byte(tc.body))
			require.Equal(t, tc.code, herald.ErrorCode(err), "%v", err)
			require.Empty(t, evs)
			require.NotContains(t, err.Error(), hookPassword)
		})
	}
}

func TestEventWebhookMapping(t *testing.T) {
	t.Parallel()
	wh := unitWebhook(t)
	parse := func(body string) herald.PartnerEvent {
		t.Helper()
		evs, err := wh.Parse(context.Background(), request(body, basic(hookUser, hookPassword)), []byte(body))
		require.NoError(t, err)
		require.Len(t, evs, 1)
		return evs[0]
	}

	ev := parse(delivery)
	require.Equal(t, herald.PartnerEvent{
		EventID:        "Delivery:883953f4-6105-42a2-a16a-77a8eac79483:john@example.com:2019-11-05T16:33:54.9070259Z",
		Type:           herald.PartnerDelivered,
		PartnerType:    "Delivery",
		MessageID:      "883953f4-6105-42a2-a16a-77a8eac79483",
		DeliveryID:     "d-1",
		NotificationID: "n-1",
		Recipient:      "john@example.com",
		At:             time.Date(2019, 11, 5, 16, 33, 54, 907025900, time.UTC),
	}, ev)

	bounce := func(typ string, code int) string {
		return `{"RecordType":"Bounce","MessageStream":"outbound","ID":4323372036854775807,"Type":"` + typ + `","TypeCode":` +
			strconv.Itoa(code) + `,"Name":"x","Tag":"Test","MessageID":"883953f4-6105-42a2-a16a-77a8eac79483",` +
			`"Metadata":{"herald_dlv":"d-1"},"ServerID":23,"Description":"The server was unable to deliver your message.",` +
			`"Details":"Test bounce details","Email":"john@example.com","From":"sender@example.com",` +
			`"BouncedAt":"2019-11-05T16:33:54.9070259-05:00","DumpAvailable":true,"Inactive":true,"CanActivate":true,"Subject":"Test subject"}`
	}
	for _, tc := range []struct {
		typ  string
		code int
		kind string
	}{
		{"HardBounce", 1, herald.PartnerBounced},
		{"BadEmailAddress", 100000, herald.PartnerBounced},
		{"Transient", 2, herald.PartnerDeferred},
		{"SoftBounce", 4096, herald.PartnerDeferred},
		{"DnsError", 256, herald.PartnerDeferred},
		{"Blocked", 100006, herald.PartnerDropped},
		{"DMARCPolicy", 100009, herald.PartnerDropped},
		{"ManuallyDeactivated", 100002, herald.PartnerDropped},
		{"TemplateRenderingFailed", 100010, herald.PartnerDropped},
		{"Unknown", 2048, herald.PartnerDropped},
		{"SomethingNew", 999999, herald.PartnerDropped},
		{"AutoResponder", 64, ""},
		{"SpamNotification", 512, ""},
		{"Unsubscribe", 16, ""},
		{"", 4096, herald.PartnerDeferred}, // by TypeCode when the name is missing
		{"", 1, herald.PartnerBounced},
	} {
		ev := parse(bounce(tc.typ, tc.code))
		require.Equal(t, tc.kind, ev.Type, "%s/%d", tc.typ, tc.code)
		require.Equal(t, "Bounce", ev.PartnerType)
		require.Equal(t, "Test bounce details", ev.Reason)
		require.Equal(t, "d-1", ev.DeliveryID)
		require.Empty(t, ev.NotificationID)
		require.Equal(t, "john@example.com", ev.Recipient)
		require.Equal(t, time.Date(2019, 11, 5, 21, 33, 54, 907025900, time.UTC), ev.At)
		require.Equal(t, "Bounce:883953f4-6105-42a2-a16a-77a8eac79483:john@example.com:2019-11-05T16:33:54.9070259-05:00:4323372036854775807", ev.EventID)
	}

	for _, body := range []string{
		`{"RecordType":"SpamComplaint","ID":42,"Type":"SpamComplaint","TypeCode":100001,"MessageID":"m-1","Email":"john@example.com","BouncedAt":"2019-11-05T16:33:54Z"}`,
		`{"RecordType":"Open","MessageID":"m-1","Recipient":"john@example.com","ReceivedAt":"2019-11-05T16:33:54Z","FirstOpen":true}`,
		`{"RecordType":"Click","MessageID":"m-1","Recipient":"john@example.com","ReceivedAt":"2019-11-05T16:33:54Z","OriginalLink":"https://example.com"}`,
		`{"RecordType":"SubscriptionChange","MessageID":"m-1","Recipient":"john@example.com","ChangedAt":"2019-11-05T16:33:54Z","SuppressSending":true}`,
	} {
		ev := parse(body)
		require.Empty(t, ev.Type, body)
		require.Equal(t, "m-1", ev.MessageID)
		require.Equal(t, "john@example.com", ev.Recipient)
		require.NotEmpty(t, ev.EventID)
		require.Equal(t, time.Date(2019, 11, 5, 16, 33, 54, 0, time.UTC), ev.At)
	}
}

func TestNewEventWebhook(t *testing.T) {
	t.Parallel()
	for _, cfg := range []postmark.EventWebhookConfig{{}, {Username: "u"}, {Password: "p"}} {
		wh, err := postmark.NewEventWebhook(cfg)
		require.ErrorContains(t, err, "required")
		require.Nil(t, wh)
	}
}

// FuzzEventWebhookParse feeds Parse arbitrary bodies and credentials: wrong
// credentials are refused as unauthorized with no events, right ones give
// one event or a malformed refusal; nothing panics.
func FuzzEventWebhookParse(f *testing.F) {
	f.Add([]byte(delivery), hookUser, hookPassword)
	f.Add([]byte(delivery), hookUser, "")
	f.Add([]byte(`{"RecordType":"Bounce","ID":1e400,"TypeCode":-1}`), hookUser, hookPassword)
	f.Add([]byte(`{"RecordType":"Bounce","BouncedAt":"2019-13-45T99:99:99Z"}`), hookUser, hookPassword)
	f.Add([]byte(`{"recordtype":"Delivery","metadata":null}`), hookUser, hookPassword)
	f.Add([]byte("\x00\xff"), "", "")
	wh := unitWebhook(f)
	f.Fuzz(func(t *testing.T, body []byte, user, pass string) {
		req := httptest.NewRequest(http.MethodPost, "/hooks/postmark", nil)
		req.SetBasicAuth(user, pass)
		evs, err := wh.Parse(context.Background(), req, body)
		if user != hookUser || pass != hookPassword {
			require.Equal(t, herald.EUNAUTHORIZED, herald.ErrorCode(err), "wrong credentials passed: %v", err)
			require.Empty(t, evs)
			return
		}
		if err != nil {
			require.Equal(t, herald.EMALFORMED, herald.ErrorCode(err), "%v", err)
			require.Empty(t, evs)
			return
		}
		require.Len(t, evs, 1)
		require.NotEmpty(t, evs[0].EventID)
		require.Contains(t, []string{"", herald.PartnerDelivered, herald.PartnerBounced, herald.PartnerDropped, herald.PartnerDeferred}, evs[0].Type)
	})
}
