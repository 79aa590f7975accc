package ses_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/clock"
	"herald/provider/ses"
	"herald/sandbox"
)

// topic is the sandbox's default SNS topic (docs/sandbox.md).
const topic = "arn:aws:sns:us-east-1:000000000000:herald-sandbox"

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
	rc *receiver
}

// setupEvents starts a sandbox and an SES partner (setup), and a receiver
// whose EventWebhook for topicARN trusts the sandbox's certificate URL;
// the sandbox posts SES's notifications to it.
func setupEvents(t *testing.T, topicARN string, change func(*sandbox.Config), changeP func(*ses.Config)) *eventBundle {
	t.Helper()
	b := setup(t, change, changeP)
	wh, err := ses.NewEventWebhook(ses.EventWebhookConfig{TopicARN: topicARN, CertHosts: []string{strings.TrimPrefix(b.sb.URL, "http://")},
		AllowHTTP: true, Clock: b.clock})
	require.NoError(t, err)
	rc := newReceiver(t, wh)
	require.NoError(t, b.sb.SetWebhook(sandbox.SES, rc.srv.URL))
	return &eventBundle{bundle: b, rc: rc}
}

// send sends e through the adapter and lets the sandbox post the message's
// events: they go out from the fake clock's timer, synchronously within
// Advance.
func (b *eventBundle) send(t *testing.T, e *herald.Email) herald.Result {
	t.Helper()
	r := b.p.Send(context.Background(), e)
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
	b.clock.Advance(0)
	return r
}

func TestEventWebhookEndToEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		to          string
		fate        sandbox.Fate // accept_then_fail's, or ""
		typ         string
		partnerType string
		reason      string
	}{
		{"delivered", "oncall@example.com", "", herald.PartnerDelivered, "Delivery", ""},
		{"bounced", "oncall@example.com", sandbox.FateBounced, herald.PartnerBounced, "Bounce", "smtp; 550 5.1.1 The email account that you tried to reach does not exist"},
		{"deferred", "oncall@example.com", sandbox.FateDeferred, herald.PartnerDeferred, "DeliveryDelay", "smtp; 451 4.7.1 Greylisted, please try again later"},
		{"rejected", "oncall@example.com", sandbox.FateDropped, herald.PartnerDropped, "Reject", "Bad content"},
		{"simulator bounce", "bounce@simulator.amazonses.com", "", herald.PartnerBounced, "Bounce", "smtp; 550 5.1.1 The email account that you tried to reach does not exist"},
		{"simulator suppression list: a drop", "suppressionlist@simulator.amazonses.com", "", herald.PartnerDropped, "Bounce", "Amazon SES did not send the message to this address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupEvents(t, topic, func(c *sandbox.Config) {
				if tc.fate != "" {
					c.Faults = []sandbox.Fault{{Kind: sandbox.FaultAcceptThenFail, Fate: tc.fate}}
				}
			}, nil)
			e := email()
			e.To = tc.to
			r := b.send(t, e)
			evs, codes := b.rc.got()
			require.Equal(t, []string{""}, codes)
			require.Len(t, evs, 1)
			ev := evs[0]
			require.Equal(t, tc.typ, ev.Type)
			require.Equal(t, tc.partnerType, ev.PartnerType)
			require.Equal(t, r.MessageID, ev.MessageID, "the id Send recorded")
			require.Equal(t, e.Metadata[herald.MetaDeliveryID], ev.DeliveryID)
			require.Equal(t, e.Metadata[herald.MetaNotificationID], ev.NotificationID)
			require.Equal(t, tc.to, ev.Recipient)
			require.True(t, t0.Equal(ev.At), ev.At)
			require.Contains(t, ev.Reason, tc.reason)
			require.NotEmpty(t, ev.EventID)
		})
	}
}

// Tag values SES would refuse travel encoded and come back decoded.
func TestEventWebhookDecodesTags(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, topic, nil, nil)
	e := email()
	e.Metadata[herald.MetaDeliveryID] = "dlv.1 ✓"
	e.Metadata[herald.MetaNotificationID] = "b64-looks-encoded"
	r := b.send(t, e)
	m, ok := b.sb.Message(r.MessageID)
	require.True(t, ok)
	require.NotEqual(t, "dlv.1 ✓", m.Metadata[herald.MetaDeliveryID], "sent encoded")
	evs, _ := b.rc.got()
	require.Len(t, evs, 1)
	require.Equal(t, "dlv.1 ✓", evs[0].DeliveryID)
	require.Equal(t, "b64-looks-encoded", evs[0].NotificationID)
}

// A complaint follows a delivery: herald acts on the delivery and ignores
// the complaint.
func TestEventWebhookIgnoresComplaints(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, topic, nil, nil)
	e := email()
	e.To = "complaint@simulator.amazonses.com"
	r := b.send(t, e)
	evs, codes := b.rc.got()
	require.Equal(t, []string{"", ""}, codes)
	require.Len(t, evs, 2)
	require.Equal(t, herald.PartnerDelivered, evs[0].Type)
	require.Equal(t, "", evs[1].Type)
	require.Equal(t, "Complaint", evs[1].PartnerType)
	require.Equal(t, r.MessageID, evs[1].MessageID)
	require.NotEqual(t, evs[0].EventID, evs[1].EventID)
}

// Without a configuration set SES sends identity notifications, which carry
// no tags: the message id still correlates, herald's ids are lost
// (reference/providers.md §7 case 14).
func TestEventWebhookIdentityNotificationsHaveNoIDs(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, topic, nil, func(c *ses.Config) { c.ConfigurationSetName = "" })
	r := b.send(t, email())
	evs, _ := b.rc.got()
	require.Len(t, evs, 1)
	require.Equal(t, herald.PartnerDelivered, evs[0].Type)
	require.Equal(t, r.MessageID, evs[0].MessageID)
	require.Empty(t, evs[0].DeliveryID)
}

func TestEventWebhookRefusesAnotherTopic(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, "arn:aws:sns:us-east-1:000000000000:another-topic", nil, nil)
	b.send(t, email())
	evs, codes := b.rc.got()
	require.Equal(t, []string{herald.EUNAUTHORIZED}, codes)
	require.Empty(t, evs)
	attempts := b.sb.WebhookAttempts()
	require.Len(t, attempts, 1)
	require.Equal(t, http.StatusUnauthorized, attempts[0].Status)
}

// The sandbox's certificate URL is not an SNS host: with the default
// hosts it is never trusted.
func TestEventWebhookDefaultHostsRefuseTheSandbox(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, nil)
	wh, err := ses.NewEventWebhook(ses.EventWebhookConfig{TopicARN: topic, AllowHTTP: true, Clock: b.clock})
	require.NoError(t, err)
	rc := newReceiver(t, wh)
	require.NoError(t, b.sb.SetWebhook(sandbox.SES, rc.srv.URL))
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeAccepted, r.Outcome)
	b.clock.Advance(0)
	evs, codes := rc.got()
	require.Equal(t, []string{herald.EUNAUTHORIZED}, codes)
	require.Empty(t, evs)
}

// snsSigner signs SNS messages as SNS does, with a key of the test's own.
type snsSigner struct {
	key *rsa.PrivateKey
	pem []byte
}

var testSigner = sync.OnceValue(func() *snsSigner { return newSigner() })

func newSigner() *snsSigner {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return &snsSigner{key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// sign adds SignatureVersion (2 unless m has one) and Signature to m,
// computed over SNS's canonical string, and returns m as JSON.
func (s *snsSigner) sign(t testing.TB, m map[string]string) []byte {
	t.Helper()
	keys := []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	if m["Type"] != "Notification" {
		keys = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	}
	var canonical strings.Builder
	for _, k := range keys {
		if v, ok := m[k]; ok {
			canonical.WriteString(k + "\n" + v + "\n")
		}
	}
	if m["SignatureVersion"] == "" {
		m["SignatureVersion"] = "2"
	}
	var sig []byte
	var err error
	if m["SignatureVersion"] == "1" {
		sum := sha1.Sum([]byte(canonical.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA1, sum[:])
	} else {
		sum := sha256.Sum256([]byte(canonical.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	}
	require.NoError(t, err)
	m["Signature"] = base64.StdEncoding.EncodeToString(sig)
	body, err := json.Marshal(m)
	require.NoError(t, err)
	return body
}

// certServer serves the signer's certificate at /cert.pem, answers
// /confirm, and counts every request by path.
type certServer struct {
	srv      *httptest.Server
	host     string
	requests sync.Map // path → *atomic.Int32
	confirms atomic.Value
}

func newCertServer(t *testing.T, s *snsSigner) *certServer {
	t.Helper()
	cs := &certServer{}
	cs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := cs.requests.LoadOrStore(r.URL.Path, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		switch r.URL.Path {
		case "/cert.pem", "/elsewhere/cert.pem":
			w.Write(s.pem)
		case "/confirm":
			cs.confirms.Store(r.URL.Query().Get("Token"))
			w.Write([]byte("<ConfirmSubscriptionResponse/>"))
		case "/not-a-cert.pem":
			w.Write([]byte("hello"))
		case "/down.pem":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(cs.srv.Close)
	cs.host = strings.TrimPrefix(cs.srv.URL, "http://")
	return cs
}

func (cs *certServer) count(path string) int {
	n, ok := cs.requests.Load(path)
	if !ok {
		return 0
	}
	return int(n.(*atomic.Int32).Load())
}

func (cs *certServer) total() int {
	total := 0
	cs.requests.Range(func(_, n any) bool { total += int(n.(*atomic.Int32).Load()); return true })
	return total
}

// deliveryRecord is an SES Delivery event of a configuration set.
func deliveryRecord() map[string]any {
	return map[string]any{
		"eventType": "Delivery",
		"mail": map[string]any{"timestamp": "2026-11-24T11:59:59.000Z", "messageId": "0100019abc-1111-000000",
			"destination": []string{"oncall@example.com"},
			"tags": map[string][]string{herald.MetaDeliveryID: {"dlv_1"}, herald.MetaNotificationID: {ses.EncodeTagValue("ntf.1")},
				"ses:configuration-set": {"herald"}}},
		"delivery": map[string]any{"timestamp": "2026-11-24T12:00:00.250Z", "recipients": []string{"oncall@example.com"},
			"smtpResponse": "250 2.6.0 Message received"},
	}
}

func notification(cs *certServer, record any) map[string]string {
	msg, _ := json.Marshal(record)
	return map[string]string{"Type": "Notification", "MessageId": "5b7f1c2e-0000-4000-8000-000000000001", "TopicArn": topic,
		"Message": string(msg), "Timestamp": "2026-11-24T12:00:00.300Z", "SigningCertURL": cs.srv.URL + "/cert.pem",
		"UnsubscribeURL": cs.srv.URL + "/unsubscribe"}
}

func ownWebhook(t *testing.T, cs *certServer, change func(*ses.EventWebhookConfig)) *ses.EventWebhook {
	t.Helper()
	cfg := ses.EventWebhookConfig{TopicARN: topic, CertHosts: []string{cs.host}, AllowHTTP: true, Clock: clockAt(t0)}
	if change != nil {
		change(&cfg)
	}
	wh, err := ses.NewEventWebhook(cfg)
	require.NoError(t, err)
	return wh
}

func clockAt(at time.Time) clock.Clock { return clock.NewFake(at) }

func parse(wh *ses.EventWebhook, body []byte) ([]herald.PartnerEvent, error) {
	r := httptest.NewRequest(http.MethodPost, "/hooks/ses", strings.NewReader(string(body)))
	return wh.Parse(context.Background(), r, body)
}

func TestEventWebhookReadsNotifications(t *testing.T) {
	t.Parallel()
	s := testSigner()
	cs := newCertServer(t, s)
	wh := ownWebhook(t, cs, nil)
	want := herald.PartnerEvent{EventID: "5b7f1c2e-0000-4000-8000-000000000001", Type: herald.PartnerDelivered, PartnerType: "Delivery",
		MessageID: "0100019abc-1111-000000", DeliveryID: "dlv_1", NotificationID: "ntf.1", Recipient: "oncall@example.com",
		At: t0.Add(250 * time.Millisecond)}
	for _, version := range []string{"1", "2"} {
		n := notification(cs, deliveryRecord())
		n["SignatureVersion"] = version
		evs, err := parse(wh, s.sign(t, n))
		require.NoError(t, err, "SignatureVersion %s", version)
		require.Equal(t, []herald.PartnerEvent{want}, evs)
	}
	n := notification(cs, deliveryRecord())
	n["Subject"] = "Amazon SES Email Event Notification"
	_, err := parse(wh, s.sign(t, n))
	require.NoError(t, err, "a Subject is signed when present")
	require.Equal(t, 1, cs.count("/cert.pem"), "the certificate is fetched once, then cached")

	for _, tc := range []struct {
		name   string
		change func(r map[string]any)
		want   []herald.PartnerEvent
	}{
		{"transient bounce", func(r map[string]any) {
			r["eventType"] = "Bounce"
			r["bounce"] = map[string]any{"bounceType": "Transient", "bounceSubType": "MailboxFull", "timestamp": "2026-11-24T12:00:01Z",
				"bouncedRecipients": []any{map[string]any{"emailAddress": "oncall@example.com"}}}
		}, []herald.PartnerEvent{{Type: herald.PartnerDeferred, PartnerType: "Bounce", Reason: "Transient/MailboxFull", At: t0.Add(time.Second), Recipient: "oncall@example.com"}}},
		{"undetermined bounce", func(r map[string]any) {
			r["eventType"] = "Bounce"
			r["bounce"] = map[string]any{"bounceType": "Undetermined", "bounceSubType": "Undetermined", "timestamp": "2026-11-24T12:00:01Z",
				"bouncedRecipients": []any{map[string]any{"emailAddress": "a@example.com", "diagnosticCode": "smtp; 550 x"}, map[string]any{"emailAddress": "b@example.com"}}}
		}, []herald.PartnerEvent{
			{Type: herald.PartnerDropped, PartnerType: "Bounce", Reason: "smtp; 550 x", At: t0.Add(time.Second), Recipient: "a@example.com"},
			{Type: herald.PartnerDropped, PartnerType: "Bounce", Reason: "Undetermined/Undetermined", At: t0.Add(time.Second), Recipient: "b@example.com"},
		}},
		{"rendering failure", func(r map[string]any) {
			r["eventType"] = "Rendering Failure"
			r["failure"] = map[string]any{"errorMessage": "Attribute 'name' is not present", "templateName": "t"}
		}, []herald.PartnerEvent{{Type: herald.PartnerDropped, PartnerType: "Rendering Failure", Reason: "Attribute 'name' is not present", At: t0.Add(300 * time.Millisecond), Recipient: "oncall@example.com"}}},
		{"open", func(r map[string]any) {
			r["eventType"] = "Open"
			r["open"] = map[string]any{"timestamp": "2026-11-24T12:05:00Z"}
		}, []herald.PartnerEvent{{PartnerType: "Open", At: t0.Add(300 * time.Millisecond), Recipient: "oncall@example.com"}}},
		{"send", func(r map[string]any) { r["eventType"] = "Send"; r["send"] = map[string]any{} },
			[]herald.PartnerEvent{{PartnerType: "Send", At: t0.Add(300 * time.Millisecond), Recipient: "oncall@example.com"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := deliveryRecord()
			delete(r, "delivery")
			tc.change(r)
			evs, err := parse(wh, s.sign(t, notification(cs, r)))
			require.NoError(t, err)
			require.Len(t, evs, len(tc.want))
			for i, ev := range evs {
				w := tc.want[i]
				require.Equal(t, w.Type, ev.Type)
				require.Equal(t, w.PartnerType, ev.PartnerType)
				require.Equal(t, w.Reason, ev.Reason)
				require.Equal(t, w.Recipient, ev.Recipient)
				require.True(t, w.At.Equal(ev.At), ev.At)
				require.Equal(t, "0100019abc-1111-000000", ev.MessageID)
				require.Equal(t, "dlv_1", ev.DeliveryID)
				if len(evs) > 1 {
					require.Regexp(t, `^5b7f1c2e-0000-4000-8000-000000000001#\d$`, ev.EventID, "one id per recipient")
				}
			}
		})
	}
}

func TestEventWebhookConfirmsSubscriptions(t *testing.T) {
	t.Parallel()
	s := testSigner()
	cs := newCertServer(t, s)
	other := newCertServer(t, s)
	wh := ownWebhook(t, cs, nil)
	confirmation := func(subscribeURL string) map[string]string {
		return map[string]string{"Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b", "TopicArn": topic,
			"Token": "2336412f37fb687f5d51e6e2425c464de", "Message": "You have chosen to subscribe to the topic " + topic + ".",
			"SubscribeURL": subscribeURL, "Timestamp": "2026-11-24T11:59:00.000Z", "SigningCertURL": cs.srv.URL + "/cert.pem"}
	}
	evs, err := parse(wh, s.sign(t, confirmation(cs.srv.URL+"/confirm?Action=ConfirmSubscription&TopicArn="+url.QueryEscape(topic)+"&Token=2336412f37fb687f5d51e6e2425c464de")))
	require.NoError(t, err)
	require.Empty(t, evs)
	require.Equal(t, 1, cs.count("/confirm"))
	require.Equal(t, "2336412f37fb687f5d51e6e2425c464de", cs.confirms.Load())

	// A SubscribeURL on a host not allowed is never visited.
	_, err = parse(wh, s.sign(t, confirmation(other.srv.URL+"/confirm?Token=x")))
	require.Equal(t, herald.EUNAUTHORIZED, herald.ErrorCode(err))
	require.Zero(t, other.total())

	// A confirmation whose URL was changed after signing is not confirmed.
	body := s.sign(t, confirmation(cs.srv.URL+"/confirm?Token=a"))
	body = []byte(strings.Replace(string(body), "Token=a", "Token=b", 1))
	_, err = parse(wh, body)
	require.Equal(t, herald.EUNAUTHORIZED, herald.ErrorCode(err))
	require.Equal(t, 1, cs.count("/confirm"))

	// The confirmation endpoint failing: SNS should send it again.
	_, err = parse(wh, s.sign(t, confirmation(cs.srv.URL+"/nowhere")))
	require.Equal(t, herald.EUNAVAILABLE, herald.ErrorCode(err))

	unsub := confirmation(cs.srv.URL + "/confirm?Token=u")
	unsub["Type"] = "UnsubscribeConfirmation"
	evs, err = parse(wh, s.sign(t, unsub))
	require.NoError(t, err)
	require.Empty(t, evs)
	require.Equal(t, 1, cs.count("/confirm"), "an unsubscribe is not re-confirmed")
}

func TestEventWebhookRefusals(t *testing.T) {
	t.Parallel()
	s := testSigner()
	for _, tc := range []struct {
		name   string
		change func(cs, other *certServer, n map[string]string) // before signing
		after  func(body []byte) []byte                         // after signing
		config func(*ses.EventWebhookConfig)
		code   string
		asked  int // requests the allowed certificate host gets
	}{
		{name: "forged signature", after: func(b []byte) []byte {
			var m map[string]string
			json.Unmarshal(b, &m)
			sig, _ := base64.StdEncoding.DecodeString(m["Signature"])
			sig[10] ^= 1
			m["Signature"] = base64.StdEncoding.EncodeToString(sig)
			out, _ := json.Marshal(m)
			return out
		}, code: herald.EUNAUTHORIZED, asked: 1},
		{name: "signed with another key", change: func(cs, _ *certServer, n map[string]string) {}, code: herald.EUNAUTHORIZED, asked: 1},
		{name: "message changed after signing", after: func(b []byte) []byte {
			return []byte(strings.Replace(string(b), "dlv_1", "dlv_2", 1))
		}, code: herald.EUNAUTHORIZED, asked: 1},
		{name: "subject added after signing", after: func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `{`, `{"Subject":"x",`, 1))
		}, code: herald.EUNAUTHORIZED, asked: 1},
		{name: "no signature", after: func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"Signature":"`, `"Signature":"","X":"`, 1))
		}, code: herald.EUNAUTHORIZED},
		{name: "signature version 3", change: func(_, _ *certServer, n map[string]string) { n["SignatureVersion"] = "3" }, code: herald.EUNAUTHORIZED},
		{name: "another topic", change: func(_, _ *certServer, n map[string]string) {
			n["TopicArn"] = "arn:aws:sns:us-east-1:999999999999:attacker"
		}, code: herald.EUNAUTHORIZED},
		{name: "certificate on a host not allowed", change: func(_, other *certServer, n map[string]string) {
			n["SigningCertURL"] = other.srv.URL + "/cert.pem"
		}, code: herald.EUNAUTHORIZED},
		{name: "certificate over http, not allowed", config: func(c *ses.EventWebhookConfig) { c.AllowHTTP = false }, code: herald.EUNAUTHORIZED},
		{name: "certificate path not .pem", change: func(cs, _ *certServer, n map[string]string) {
			n["SigningCertURL"] = cs.srv.URL + "/cert.pem.txt"
		}, code: herald.EUNAUTHORIZED},
		{name: "certificate URL with userinfo", change: func(cs, _ *certServer, n map[string]string) {
			n["SigningCertURL"] = "http://user@" + cs.host + "/cert.pem"
		}, code: herald.EUNAUTHORIZED},
		{name: "certificate URL not a URL", change: func(_, _ *certServer, n map[string]string) { n["SigningCertURL"] = "::" }, code: herald.EUNAUTHORIZED},
		{name: "certificate missing", change: func(cs, _ *certServer, n map[string]string) {
			n["SigningCertURL"] = cs.srv.URL + "/missing.pem"
		}, code: herald.EUNAUTHORIZED, asked: 1},
		{name: "not a certificate", change: func(cs, _ *certServer, n map[string]string) {
			n["SigningCertURL"] = cs.srv.URL + "/not-a-cert.pem"
		}, code: herald.EUNAUTHORIZED, asked: 1},
		{name: "certificate host down", change: func(cs, _ *certServer, n map[string]string) {
			n["SigningCertURL"] = cs.srv.URL + "/down.pem"
		}, code: herald.EUNAVAILABLE, asked: 1},
		{name: "stale", change: func(_, _ *certServer, n map[string]string) { n["Timestamp"] = "2026-11-24T10:59:59.000Z" }, code: herald.EUNAUTHORIZED},
		{name: "from the future", change: func(_, _ *certServer, n map[string]string) { n["Timestamp"] = "2026-11-24T13:00:01.000Z" }, code: herald.EUNAUTHORIZED},
		{name: "timestamp not a time", change: func(_, _ *certServer, n map[string]string) { n["Timestamp"] = "yesterday" }, code: herald.EUNAUTHORIZED},
		{name: "not JSON", after: func([]byte) []byte { return []byte("Type=Notification") }, code: herald.EMALFORMED},
		{name: "null", after: func([]byte) []byte { return []byte("null") }, code: herald.EMALFORMED},
		{name: "an array", after: func([]byte) []byte { return []byte(`[{"Type":"Notification"}]`) }, code: herald.EMALFORMED},
		{name: "a member of the wrong type", after: func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `{`, `{"Timestamp":5,`, 1))
		}, code: herald.EMALFORMED},
		{name: "unknown type", change: func(_, _ *certServer, n map[string]string) { n["Type"] = "Surprise" }, code: herald.EMALFORMED},
		{name: "no MessageId", change: func(_, _ *certServer, n map[string]string) { delete(n, "MessageId") }, code: herald.EMALFORMED},
		{name: "signed, Message not JSON", change: func(_, _ *certServer, n map[string]string) { n["Message"] = "delivered!" }, code: herald.EMALFORMED, asked: 1},
		{name: "signed, no event type", change: func(_, _ *certServer, n map[string]string) { n["Message"] = `{"mail":{"messageId":"m"}}` }, code: herald.EMALFORMED, asked: 1},
		{name: "signed, no mail.messageId", change: func(_, _ *certServer, n map[string]string) {
			n["Message"] = `{"eventType":"Delivery","delivery":{"recipients":["a@example.com"]}}`
		}, code: herald.EMALFORMED, asked: 1},
		{name: "signed, a tag that does not decode", change: func(_, _ *certServer, n map[string]string) {
			n["Message"] = `{"eventType":"Send","mail":{"messageId":"m","tags":{"herald_delivery_id":["b64-!!"]}}}`
		}, code: herald.EMALFORMED, asked: 1},
		{name: "signed, a bounce of no known type", change: func(_, _ *certServer, n map[string]string) {
			n["Message"] = `{"eventType":"Bounce","mail":{"messageId":"m"},"bounce":{"bounceType":"Soft"}}`
		}, code: herald.EMALFORMED, asked: 1},
		{name: "signed, a delivery timestamp not a time", change: func(_, _ *certServer, n map[string]string) {
			n["Message"] = `{"eventType":"Delivery","mail":{"messageId":"m"},"delivery":{"timestamp":"noon"}}`
		}, code: herald.EMALFORMED, asked: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cs, other := newCertServer(t, s), newCertServer(t, s)
			wh := ownWebhook(t, cs, tc.config)
			n := notification(cs, deliveryRecord())
			signer := s
			if tc.name == "signed with another key" {
				signer = &snsSigner{key: mustKey(t), pem: s.pem}
			}
			if tc.change != nil {
				tc.change(cs, other, n)
			}
			body := signer.sign(t, n)
			if tc.after != nil {
				body = tc.after(body)
			}
			evs, err := parse(wh, body)
			require.Equal(t, tc.code, herald.ErrorCode(err), "%v", err)
			require.Empty(t, evs)
			require.Zero(t, other.total(), "a host not allowed is never asked")
			require.Equal(t, tc.asked, cs.total(), "requests to the certificate host")
		})
	}
}

func mustKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return k
}

// memoryCerts serves the signer's certificate for any https URL of an SNS
// host, and counts what it is asked; nothing reaches the network.
type memoryCerts struct {
	s     *snsSigner
	asked atomic.Int32
}

func (m *memoryCerts) RoundTrip(r *http.Request) (*http.Response, error) {
	m.asked.Add(1)
	body := "ok"
	if strings.HasSuffix(r.URL.Path, ".pem") {
		body = string(m.s.pem)
	}
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(body)), Header: http.Header{}, Request: r}, nil
}

func TestEventWebhookDefaultHosts(t *testing.T) {
	t.Parallel()
	s := testSigner()
	for certURL, ok := range map[string]bool{
		"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem":                    true,
		"https://SNS.eu-west-3.amazonaws.com/SimpleNotificationService-abc.pem":                    true,
		"http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem":                     false,
		"https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-abc.pem":       false,
		"https://evil.example/sns.us-east-1.amazonaws.com.pem":                                     false,
		"https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem":               false,
		"https://sns.us-east-1.amazonaws.com@evil.example/SimpleNotificationService-abc.pem":       false,
		"https://evil.example#@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem":      false,
		"https://s3.amazonaws.com/sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem":   false,
		"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem?x=1":                true,
		"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem/../../redirect.txt": false,
	} {
		t.Run(certURL, func(t *testing.T) {
			t.Parallel()
			mc := &memoryCerts{s: s}
			wh, err := ses.NewEventWebhook(ses.EventWebhookConfig{TopicARN: topic, HTTPClient: &http.Client{Transport: mc}, Clock: clockAt(t0)})
			require.NoError(t, err)
			n := notification(&certServer{srv: &httptest.Server{URL: "http://unused"}}, deliveryRecord())
			n["SigningCertURL"] = certURL
			_, err = parse(wh, s.sign(t, n))
			if ok {
				require.NoError(t, err)
				require.Equal(t, int32(1), mc.asked.Load())
			} else {
				require.Equal(t, herald.EUNAUTHORIZED, herald.ErrorCode(err))
				require.Zero(t, mc.asked.Load(), "never fetched")
			}
		})
	}
}

func TestNewEventWebhookValidates(t *testing.T) {
	t.Parallel()
	_, err := ses.NewEventWebhook(ses.EventWebhookConfig{})
	require.ErrorContains(t, err, "topic_arn")
	_, err = ses.NewEventWebhook(ses.EventWebhookConfig{TopicARN: topic, CertHosts: []string{"https://sns.example/"}})
	require.ErrorContains(t, err, "cert_hosts")
	_, err = ses.NewEventWebhook(ses.EventWebhookConfig{TopicARN: topic})
	require.NoError(t, err)
}

// FuzzEventWebhook: whatever arrives, Parse never panics and fails closed:
// anything not signed by the certificate is refused, and a signed
// notification yields well-formed events or EMALFORMED.
func FuzzEventWebhook(f *testing.F) {
	s := testSigner()
	cs := &certServer{srv: &httptest.Server{URL: "https://sns.us-east-1.amazonaws.com"}}
	rec, _ := json.Marshal(deliveryRecord())
	f.Add(s.sign(f, notification(cs, deliveryRecord())), rec)
	f.Add([]byte(`{"Type":"SubscriptionConfirmation","TopicArn":"`+topic+`","MessageId":"x","SubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription","Token":"t","Timestamp":"2026-11-24T12:00:00Z","SignatureVersion":"1","Signature":"AAAA","SigningCertURL":"https://sns.us-east-1.amazonaws.com/c.pem"}`),
		[]byte(`{"eventType":"Bounce","mail":{"messageId":"m","destination":["a","b"]},"bounce":{"bounceType":"Permanent","bouncedRecipients":[]}}`))
	f.Add([]byte(`{"Type":"Notification"}`), []byte(`{"notificationType":"Delivery","mail":{"messageId":"m","tags":{"herald_delivery_id":[]}},"delivery":null}`))
	f.Fuzz(func(t *testing.T, body, record []byte) {
		mc := &memoryCerts{s: s}
		wh, err := ses.NewEventWebhook(ses.EventWebhookConfig{TopicARN: topic, HTTPClient: &http.Client{Transport: mc}, Clock: clockAt(t0)})
		require.NoError(t, err)
		evs, err := parse(wh, body)
		if err != nil {
			require.Contains(t, []string{herald.EUNAUTHORIZED, herald.EMALFORMED, herald.EUNAVAILABLE}, herald.ErrorCode(err), "%v", err)
			require.Empty(t, evs)
		} else {
			var m struct{ TopicArn string }
			require.NoError(t, json.Unmarshal(body, &m))
			require.Equal(t, topic, m.TopicArn)
			checkEvents(t, evs)
		}

		n := notification(cs, nil)
		n["Message"] = strings.ToValidUTF8(string(record), "\uFFFD") // SNS messages are UTF-8, as JSON carries them
		evs, err = parse(wh, s.sign(t, n))
		if err != nil {
			require.Equal(t, herald.EMALFORMED, herald.ErrorCode(err), "%v", err)
			require.Empty(t, evs)
			return
		}
		checkEvents(t, evs)
	})
}

func checkEvents(t *testing.T, evs []herald.PartnerEvent) {
	for _, ev := range evs {
		require.NotEmpty(t, ev.EventID)
		require.NotEmpty(t, ev.PartnerType)
		require.NotEmpty(t, ev.MessageID)
		require.Contains(t, []string{"", herald.PartnerDelivered, herald.PartnerBounced, herald.PartnerDropped, herald.PartnerDeferred}, ev.Type)
		require.False(t, ev.At.IsZero())
	}
}
