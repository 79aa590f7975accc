package ses

// SES events, published by a configuration set to an SNS topic with an
// HTTP/S subscription (reference/providers.md §4.6):
// https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html
// https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"herald"
	"herald/clock"
)

// EventWebhookConfig configures the reader of the SNS HTTP/S subscription
// that carries a configuration set's SES events.
type EventWebhookConfig struct {
	// TopicARN is the SNS topic the configuration set publishes to.
	// Required: a message from any other topic is refused, however well
	// signed (any AWS account can have SNS sign for its own topics).
	TopicARN string
	// CertHosts are the hosts, with the port when it is not the scheme's
	// default ("127.0.0.1:9025"), that SigningCertURL and SubscribeURL may
	// name; a URL naming another host is never fetched. Defaults to SNS's
	// own endpoints: hosts matching ^sns\.[a-z0-9-]+\.amazonaws\.com$ (add
	// sns.<region>.amazonaws.com.cn here for the China regions).
	CertHosts []string
	// AllowHTTP lets those URLs be http as well as https. For tests only:
	// the sandbox serves its certificate over http. Defaults to false.
	AllowHTTP bool
	// HTTPClient fetches certificates and confirms subscriptions; it is
	// used with redirects off, whatever its CheckRedirect, so that a
	// response cannot lead elsewhere than an allowed host. Defaults to a
	// client with a 10 s timeout.
	HTTPClient *http.Client
	// Clock reads the time notifications' timestamps are checked against.
	// Defaults to clock.Real().
	Clock clock.Clock
}

// MaxNotificationAge is how far from now an SNS message's Timestamp may be,
// in either direction, for the message to be trusted. SNS retries an
// HTTP/S delivery for about a minute by default (three retries 20 s apart).
const MaxNotificationAge = time.Hour

// Limits on what is fetched and kept.
const (
	maxCertSize = 64 << 10
	maxCerts    = 64
)

// snsHost is the default pattern of CertHosts.
var snsHost = regexp.MustCompile(`^sns\.[a-z0-9-]+\.amazonaws\.com$`)

// EventWebhook reads the SNS messages of an SES configuration set's event
// destination. It is safe for concurrent use.
//
// A message is trusted only when its TopicArn is Config.TopicARN, its
// Timestamp is within MaxNotificationAge of now, and its Signature
// (SignatureVersion 1: SHA1withRSA; 2: SHA256withRSA) verifies over SNS's
// canonical string with the certificate at SigningCertURL — a URL that is
// fetched only when it is https (or http with AllowHTTP), names an allowed
// host and a path ending in .pem. Certificates are cached by URL. Trust in
// the certificate comes from where it was fetched, as in AWS's own
// validators; its chain and dates are not checked.
//
// A SubscriptionConfirmation is confirmed, once verified, by a GET of its
// SubscribeURL (under the same host rules); an UnsubscribeConfirmation is
// verified and nothing more. Neither returns events. Repeats need no token
// set: SNS keeps a notification's MessageId across retries, and it is the
// EventID.
//
// A Notification's Message is the SES event (configuration-set events,
// eventType; identity notifications, notificationType, read alike but
// carrying no tags). Mapping:
//
//	eventType           detail                                   herald
//	Delivery                                                     PartnerDelivered
//	Bounce              Permanent, subtype Suppressed or         PartnerDropped: SES did not try the address,
//	                    OnAccountSuppressionList                 which is on a suppression list
//	Bounce              Permanent, other subtypes                PartnerBounced
//	Bounce              Transient                                PartnerDeferred
//	Bounce              Undetermined                             PartnerDropped: it failed, and SES cannot
//	                                                             say that the recipient caused it
//	Bounce              another bounceType                       EMALFORMED
//	DeliveryDelay                                                PartnerDeferred
//	Reject, Rendering Failure                                    PartnerDropped
//	Send, Open, Click, Complaint, Subscription, others           "" (ignored)
//
// One PartnerEvent per recipient the event names (delivery.recipients,
// bounce.bouncedRecipients, deliveryDelay.delayedRecipients,
// complaint.complainedRecipients; otherwise mail.destination's only
// address, if it has one). EventID is the SNS MessageId, followed by "#i"
// for the i-th recipient (from 0) when there are several; MessageID is
// mail.messageId, which Send records; DeliveryID and NotificationID are
// mail.tags' herald_delivery_id and herald_notification_id, decoded with
// DecodeTagValue; At is the event's own timestamp (the SNS Timestamp for
// events without one); Reason is the recipient's diagnosticCode, else the
// bounce type and subtype, the delay type, reject.reason or
// failure.errorMessage.
type EventWebhook struct {
	cfg    EventWebhookConfig
	hosts  []string // lowercased; nil means snsHost
	client *http.Client

	mu    sync.Mutex
	certs map[string]*rsa.PublicKey
}

var _ herald.EventWebhook = (*EventWebhook)(nil)

// NewEventWebhook returns a reader of SES events over SNS for cfg. It makes
// no request.
func NewEventWebhook(cfg EventWebhookConfig) (*EventWebhook, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.TopicARN == "" {
		return nil, errors.New("ses: event webhook: topic_arn is required")
	}
	var hosts []string
	for _, h := range cfg.CertHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" || strings.ContainsAny(h, "/?#@") {
			return nil, fmt.Errorf("ses: event webhook: cert_hosts: %q is not a host or host:port", h)
		}
		hosts = append(hosts, h)
	}
	client := *cfg.HTTPClient
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &EventWebhook{cfg: cfg, hosts: hosts, client: &client, certs: map[string]*rsa.PublicKey{}}, nil
}

// snsMessage is SNS's HTTP/S JSON envelope.
// https://docs.aws.amazon.com/sns/latest/dg/http-notification-json.html
type snsMessage struct {
	Type             string  `json:"Type"`
	MessageID        string  `json:"MessageId"`
	TopicArn         string  `json:"TopicArn"`
	Subject          *string `json:"Subject"`
	Message          string  `json:"Message"`
	Timestamp        string  `json:"Timestamp"`
	SignatureVersion string  `json:"SignatureVersion"`
	Signature        string  `json:"Signature"`
	SigningCertURL   string  `json:"SigningCertURL"`
	SubscribeURL     string  `json:"SubscribeURL"`
	Token            string  `json:"Token"`
}

// The SNS message types.
const (
	snsNotification             = "Notification"
	snsSubscriptionConfirmation = "SubscriptionConfirmation"
	snsUnsubscribeConfirmation  = "UnsubscribeConfirmation"
)

// stringToSign is SNS's canonical string: "Key\nValue\n" for each signed
// key of the message's type, in this order.
func (m *snsMessage) stringToSign() string {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	add("Message", m.Message)
	add("MessageId", m.MessageID)
	if m.Type == snsNotification {
		if m.Subject != nil {
			add("Subject", *m.Subject)
		}
	} else {
		add("SubscribeURL", m.SubscribeURL)
	}
	add("Timestamp", m.Timestamp)
	if m.Type != snsNotification {
		add("Token", m.Token)
	}
	add("TopicArn", m.TopicArn)
	add("Type", m.Type)
	return b.String()
}

// Parse verifies body as one SNS message of the configured topic and
// returns the SES events it carries. Returns EMALFORMED for a body that is
// not SNS's JSON or a notification whose SES event cannot be read;
// EUNAUTHORIZED for a message of another topic, stale, unsigned, with a
// signature that does not verify, or whose certificate URL is not allowed
// or does not serve an RSA certificate; EUNAVAILABLE when the certificate
// could not be fetched (no answer, or a 5xx) or the subscription could not
// be confirmed, so that SNS tries again later.
func (w *EventWebhook) Parse(ctx context.Context, _ *http.Request, body []byte) ([]herald.PartnerEvent, error) {
	var m snsMessage
	if !isObject(body) || json.Unmarshal(body, &m) != nil {
		return nil, herald.Errorf(herald.EMALFORMED, "ses: the body is not an SNS message")
	}
	switch m.Type {
	case snsNotification, snsSubscriptionConfirmation, snsUnsubscribeConfirmation:
	default:
		return nil, herald.Errorf(herald.EMALFORMED, "ses: the SNS message type %q is none of Notification, SubscriptionConfirmation, UnsubscribeConfirmation", clip(m.Type))
	}
	if m.MessageID == "" || (m.Type != snsNotification && (m.SubscribeURL == "" || m.Token == "")) {
		return nil, herald.Errorf(herald.EMALFORMED, "ses: the SNS %s lacks a member it must have", m.Type)
	}
	if m.TopicArn != w.cfg.TopicARN {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "ses: the SNS message is from another topic than %s", w.cfg.TopicARN)
	}
	ts, err := time.Parse(time.RFC3339Nano, m.Timestamp)
	if err != nil {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "ses: the SNS message's Timestamp is not a time")
	}
	if age := w.cfg.Clock.Now().Sub(ts); age > MaxNotificationAge || age < -MaxNotificationAge {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "ses: the SNS message is stale: its Timestamp is not within %s of now", MaxNotificationAge)
	}
	if err := w.verify(ctx, &m); err != nil {
		return nil, err
	}
	switch m.Type {
	case snsSubscriptionConfirmation:
		return nil, w.confirm(ctx, m.SubscribeURL)
	case snsUnsubscribeConfirmation:
		return nil, nil
	}
	return readEvent(&m, ts)
}

// verify checks m's signature with the certificate at its SigningCertURL.
func (w *EventWebhook) verify(ctx context.Context, m *snsMessage) error {
	var hash crypto.Hash
	var digest []byte
	switch m.SignatureVersion {
	case "1":
		sum := sha1.Sum([]byte(m.stringToSign()))
		hash, digest = crypto.SHA1, sum[:]
	case "2":
		sum := sha256.Sum256([]byte(m.stringToSign()))
		hash, digest = crypto.SHA256, sum[:]
	default:
		return herald.Errorf(herald.EUNAUTHORIZED, "ses: the SNS message's SignatureVersion is neither 1 nor 2")
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil || len(sig) == 0 {
		return herald.Errorf(herald.EUNAUTHORIZED, "ses: the SNS message's Signature is missing or not base64")
	}
	u, err := w.allowed(m.SigningCertURL, true)
	if err != nil {
		return herald.Errorf(herald.EUNAUTHORIZED, "ses: SigningCertURL: %s", err)
	}
	key, err := w.cert(ctx, u)
	if err != nil {
		return err
	}
	if rsa.VerifyPKCS1v15(key, hash, digest, sig) != nil {
		return herald.Errorf(herald.EUNAUTHORIZED, "ses: the SNS message's signature does not verify")
	}
	return nil
}

// allowed returns raw parsed when it may be fetched: https (or http with
// AllowHTTP), no userinfo, an allowed host, and, for a certificate, a path
// ending in .pem.
func (w *EventWebhook) allowed(raw string, cert bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case raw == "" || err != nil:
		return nil, errors.New("missing or not a URL")
	case u.Scheme != "https" && !(w.cfg.AllowHTTP && u.Scheme == "http"):
		return nil, errors.New("not https")
	case u.User != nil || u.Opaque != "" || u.Host == "":
		return nil, errors.New("not a plain URL with a host")
	case !w.hostAllowed(strings.ToLower(u.Host)):
		return nil, fmt.Errorf("the host %q is not allowed", clip(u.Host))
	case cert && !strings.HasSuffix(u.Path, ".pem"):
		return nil, errors.New("not a .pem path")
	}
	return u, nil
}

func (w *EventWebhook) hostAllowed(host string) bool {
	if w.hosts == nil {
		return snsHost.MatchString(host)
	}
	return slices.Contains(w.hosts, host)
}

// cert returns the RSA key of the certificate at u, from the cache or
// fetched.
func (w *EventWebhook) cert(ctx context.Context, u *url.URL) (*rsa.PublicKey, error) {
	key := u.String()
	w.mu.Lock()
	pub, ok := w.certs[key]
	w.mu.Unlock()
	if ok {
		return pub, nil
	}
	body, status, err := w.get(ctx, u, maxCertSize)
	switch {
	case err != nil:
		return nil, herald.Errorf(herald.EUNAVAILABLE, "ses: fetch the SNS signing certificate from %s: %s", u.Host, err)
	case status >= 500:
		return nil, herald.Errorf(herald.EUNAVAILABLE, "ses: fetch the SNS signing certificate from %s: status %d", u.Host, status)
	case status != http.StatusOK:
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "ses: fetch the SNS signing certificate from %s: status %d", u.Host, status)
	}
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "ses: SigningCertURL does not serve a PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "ses: SigningCertURL does not serve a certificate: %s", err)
	}
	pub, ok = c.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "ses: the SNS signing certificate's key is not RSA")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.certs) >= maxCerts {
		for k := range w.certs { // forget one: SNS rotates its certificate rarely
			delete(w.certs, k)
			break
		}
	}
	w.certs[key] = pub
	return pub, nil
}

// get fetches u, reading at most limit bytes of the answer.
func (w *EventWebhook) get(ctx context.Context, u *url.URL, limit int64) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL: a SubscribeURL carries its token
		}
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, 0, err
	}
	if int64(len(body)) > limit {
		return nil, resp.StatusCode, fmt.Errorf("the answer is over %d bytes", limit)
	}
	return body, resp.StatusCode, nil
}

// confirm GETs a verified SubscriptionConfirmation's SubscribeURL.
func (w *EventWebhook) confirm(ctx context.Context, raw string) error {
	u, err := w.allowed(raw, false)
	if err != nil {
		return herald.Errorf(herald.EUNAUTHORIZED, "ses: SubscribeURL: %s", err)
	}
	_, status, err := w.get(ctx, u, 1<<20)
	switch {
	case err != nil:
		return herald.Errorf(herald.EUNAVAILABLE, "ses: confirm the SNS subscription at %s: %s", u.Host, err)
	case status < 200 || status > 299:
		return herald.Errorf(herald.EUNAVAILABLE, "ses: confirm the SNS subscription at %s: status %d", u.Host, status)
	}
	return nil
}

// sesEvent is the part of an SES event record herald reads.
// https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html
type sesEvent struct {
	EventType        string `json:"eventType"`
	NotificationType string `json:"notificationType"`
	Mail             *struct {
		MessageID   string              `json:"messageId"`
		Destination []string            `json:"destination"`
		Tags        map[string][]string `json:"tags"`
	} `json:"mail"`
	Delivery *struct {
		Timestamp  string   `json:"timestamp"`
		Recipients []string `json:"recipients"`
	} `json:"delivery"`
	Bounce *struct {
		BounceType        string       `json:"bounceType"`
		BounceSubType     string       `json:"bounceSubType"`
		Timestamp         string       `json:"timestamp"`
		BouncedRecipients []sesAddress `json:"bouncedRecipients"`
	} `json:"bounce"`
	DeliveryDelay *struct {
		Timestamp         string       `json:"timestamp"`
		DelayType         string       `json:"delayType"`
		DelayedRecipients []sesAddress `json:"delayedRecipients"`
	} `json:"deliveryDelay"`
	Complaint *struct {
		Timestamp            string       `json:"timestamp"`
		ComplainedRecipients []sesAddress `json:"complainedRecipients"`
	} `json:"complaint"`
	Reject *struct {
		Reason string `json:"reason"`
	} `json:"reject"`
	Failure *struct {
		ErrorMessage string `json:"errorMessage"`
	} `json:"failure"`
}

type sesAddress struct {
	EmailAddress   string `json:"emailAddress"`
	DiagnosticCode string `json:"diagnosticCode"`
}

// suppressedBounces are the Permanent subtypes of a message SES did not
// send because the address is on a suppression list.
var suppressedBounces = []string{"Suppressed", "OnAccountSuppressionList"}

// readEvent maps a verified notification's SES event (see EventWebhook).
func readEvent(m *snsMessage, snsAt time.Time) ([]herald.PartnerEvent, error) {
	malformed := func(format string, args ...any) ([]herald.PartnerEvent, error) {
		return nil, herald.Errorf(herald.EMALFORMED, "ses: the notification's SES event: "+format, args...)
	}
	var e sesEvent
	if !isObject([]byte(m.Message)) || json.Unmarshal([]byte(m.Message), &e) != nil {
		return malformed("not SES's event JSON")
	}
	kind := firstNonBlank(e.EventType, e.NotificationType)
	if kind == "" {
		return malformed("neither eventType nor notificationType")
	}
	if e.Mail == nil || e.Mail.MessageID == "" {
		return malformed("no mail.messageId")
	}
	base := herald.PartnerEvent{PartnerType: kind, MessageID: e.Mail.MessageID}
	var err error
	if base.DeliveryID, err = tag(e.Mail.Tags, herald.MetaDeliveryID); err != nil {
		return malformed("%s", err)
	}
	if base.NotificationID, err = tag(e.Mail.Tags, herald.MetaNotificationID); err != nil {
		return malformed("%s", err)
	}
	var (
		at         string
		recipients []sesAddress
		reason     string
	)
	switch kind {
	case "Delivery":
		if e.Delivery == nil {
			return malformed("a Delivery without delivery")
		}
		base.Type, at = herald.PartnerDelivered, e.Delivery.Timestamp
		for _, r := range e.Delivery.Recipients {
			recipients = append(recipients, sesAddress{EmailAddress: r})
		}
	case "Bounce":
		b := e.Bounce
		if b == nil {
			return malformed("a Bounce without bounce")
		}
		switch {
		case b.BounceType == "Permanent" && slices.Contains(suppressedBounces, b.BounceSubType):
			base.Type = herald.PartnerDropped
		case b.BounceType == "Permanent":
			base.Type = herald.PartnerBounced
		case b.BounceType == "Transient":
			base.Type = herald.PartnerDeferred
		case b.BounceType == "Undetermined":
			base.Type = herald.PartnerDropped
		default:
			return malformed("a Bounce whose bounceType is none of Permanent, Transient, Undetermined")
		}
		at, recipients, reason = b.Timestamp, b.BouncedRecipients, strings.Trim(b.BounceType+"/"+b.BounceSubType, "/")
	case "DeliveryDelay":
		d := e.DeliveryDelay
		if d == nil {
			return malformed("a DeliveryDelay without deliveryDelay")
		}
		base.Type, at, recipients, reason = herald.PartnerDeferred, d.Timestamp, d.DelayedRecipients, d.DelayType
	case "Reject":
		base.Type = herald.PartnerDropped
		if e.Reject != nil {
			reason = e.Reject.Reason
		}
	case "Rendering Failure":
		base.Type = herald.PartnerDropped
		if e.Failure != nil {
			reason = e.Failure.ErrorMessage
		}
	case "Complaint":
		if c := e.Complaint; c != nil {
			at, recipients = c.Timestamp, c.ComplainedRecipients
		}
	}
	base.At = snsAt.UTC()
	if at != "" {
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return malformed("the %s timestamp is not a time", kind)
		}
		base.At = t.UTC()
	}
	if len(recipients) == 0 {
		r := sesAddress{}
		if len(e.Mail.Destination) == 1 {
			r.EmailAddress = e.Mail.Destination[0]
		}
		recipients = []sesAddress{r}
	}
	evs := make([]herald.PartnerEvent, 0, len(recipients))
	for i, r := range recipients {
		ev := base
		ev.EventID, ev.Recipient = m.MessageID, r.EmailAddress
		if len(recipients) > 1 {
			ev.EventID = fmt.Sprintf("%s#%d", m.MessageID, i)
		}
		if base.Type != "" {
			ev.Reason = firstNonBlank(r.DiagnosticCode, reason)
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// tag returns the decoded value of tags[name], "" when it has none.
func tag(tags map[string][]string, name string) (string, error) {
	vs := tags[name]
	if len(vs) == 0 {
		return "", nil
	}
	v, err := DecodeTagValue(vs[0])
	if err != nil {
		return "", fmt.Errorf("tag %s: %w", name, err)
	}
	return v, nil
}

// isObject reports whether b holds a JSON object (and not null, which
// json.Unmarshal accepts into a struct).
func isObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// firstNonBlank returns the first of vs that is not blank, trimmed.
func firstNonBlank(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// clip shortens an untrusted value quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
