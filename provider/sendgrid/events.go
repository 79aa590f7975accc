package sendgrid

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"herald"
	"herald/clock"
)

// The headers of SendGrid's signed event webhook (reference/providers.md
// §1.6; https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features).
const (
	SignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	TimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// EventWebhookConfig configures an EventWebhook.
type EventWebhookConfig struct {
	// PublicKey is the signed event webhook's verification key as SendGrid
	// shows it (GET /v3/user/webhooks/event/settings/signed): a base64 DER
	// (PKIX) ECDSA P-256 public key. Required. It is public, not a secret.
	PublicKey string
	// MaxAge is how far the signed timestamp may be from now, either way:
	// an older (or future-dated) request is refused as stale. Defaults to
	// 10m.
	MaxAge time.Duration
	// Clock reads the time the timestamp is checked against. Defaults to
	// clock.Real().
	Clock clock.Clock
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c EventWebhookConfig) WithDefaults() EventWebhookConfig {
	if c.MaxAge == 0 {
		c.MaxAge = 10 * time.Minute
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	return c
}

// EventWebhook reads SendGrid's signed event webhook. It implements
// herald.EventWebhook and is safe for concurrent use.
type EventWebhook struct {
	key    *ecdsa.PublicKey
	maxAge time.Duration
	clock  clock.Clock
}

var _ herald.EventWebhook = (*EventWebhook)(nil)

// NewEventWebhook returns a reader of SendGrid's event webhook for cfg.
// Returns an error when cfg.PublicKey is missing or is not a base64 DER
// ECDSA P-256 public key, or when cfg.MaxAge is negative.
func NewEventWebhook(cfg EventWebhookConfig) (*EventWebhook, error) {
	cfg = cfg.WithDefaults()
	if cfg.MaxAge < 0 {
		return nil, errors.New("sendgrid: event webhook: max_age must not be negative")
	}
	key, err := parsePublicKey(cfg.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("sendgrid: event webhook: public_key: %w", err)
	}
	return &EventWebhook{key: key, maxAge: cfg.MaxAge, clock: cfg.Clock}, nil
}

// parsePublicKey reads SendGrid's verification key. Unlike sendgrid-go's
// ConvertPublicKeyBase64ToECDSA, which panics on a key that is not ECDSA
// (reference/providers.md §1.6), it returns an error.
func parsePublicKey(s string) (*ecdsa.PublicKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("required")
	}
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("not a DER public key: %w", err)
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an ECDSA key", pub)
	}
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("ECDSA on %s, want P-256", key.Curve.Params().Name)
	}
	return key, nil
}

// event is the part of one SendGrid event herald reads
// (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event).
type event struct {
	Event       string `json:"event"`
	Type        string `json:"type"` // on bounce: "bounce" or "blocked"
	Email       string `json:"email"`
	Timestamp   int64  `json:"timestamp"`
	SGEventID   string `json:"sg_event_id"`
	SGMessageID string `json:"sg_message_id"`
	Reason      string `json:"reason"`
	Response    string `json:"response"`
	// herald's ids come back as custom args flattened to the top level.
	DeliveryID     string `json:"herald_delivery_id"`
	NotificationID string `json:"herald_notification_id"`
}

// Parse verifies r as SendGrid's signed event webhook and returns its
// events (herald.EventWebhook). The signature is ECDSA over SHA-256 of the
// timestamp header and the raw body, with the configured key.
//
// Returns EUNAUTHORIZED when a signature header is missing, the signature
// does not verify, or the signed timestamp is more than MaxAge from now
// (stale or future-dated); EMALFORMED when a verified body is not a JSON
// array of SendGrid events. A replay within MaxAge verifies: its events
// carry the same EventID (sg_event_id), by which they are deduplicated.
//
// Events map to herald's kinds as follows (reference/providers.md §1.6):
// delivered → delivered; bounce of type "bounce" (or none) → bounced, the
// recipient's server refused the address; bounce of type "blocked" (or any
// other type) → dropped: the receiving server refused the message for
// policy or reputation (not the recipient's address), and SendGrid does not
// try again, so it will not be sent (herald.PartnerDropped names "blocked");
// dropped → dropped; deferred → deferred; every other event (processed,
// open, click, spamreport, unsubscribe, …) → "" (ignored).
func (w *EventWebhook) Parse(_ context.Context, r *http.Request, body []byte) ([]herald.PartnerEvent, error) {
	if err := w.verify(r.Header, body); err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, herald.Errorf(herald.EMALFORMED, "sendgrid event webhook: the body is not a JSON array")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(trimmed, &raws); err != nil {
		return nil, herald.Errorf(herald.EMALFORMED, "sendgrid event webhook: the body is not a JSON array: %v", err)
	}
	out := make([]herald.PartnerEvent, 0, len(raws))
	for i, raw := range raws {
		var e event
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, herald.Errorf(herald.EMALFORMED, "sendgrid event webhook: event %d: %v", i, err)
		}
		out = append(out, e.partnerEvent(raw))
	}
	return out, nil
}

// verify checks the signature headers against body.
func (w *EventWebhook) verify(h http.Header, body []byte) error {
	sig64, ts := h.Get(SignatureHeader), h.Get(TimestampHeader)
	if sig64 == "" || ts == "" {
		return herald.Errorf(herald.EUNAUTHORIZED, "sendgrid event webhook: missing %s or %s", SignatureHeader, TimestampHeader)
	}
	sig, err := base64.StdEncoding.DecodeString(sig64)
	if err != nil {
		return herald.Errorf(herald.EUNAUTHORIZED, "sendgrid event webhook: the signature is not base64")
	}
	sum := sha256.New()
	sum.Write([]byte(ts))
	sum.Write(body)
	if !ecdsa.VerifyASN1(w.key, sum.Sum(nil), sig) {
		return herald.Errorf(herald.EUNAUTHORIZED, "sendgrid event webhook: the signature does not verify")
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return herald.Errorf(herald.EUNAUTHORIZED, "sendgrid event webhook: the timestamp is not Unix seconds")
	}
	// Compare in seconds, so that no timestamp overflows a time.Duration.
	now, limit := w.clock.Now().Unix(), int64(w.maxAge/time.Second)
	if secs < now-limit || secs > now+limit {
		return herald.Errorf(herald.EUNAUTHORIZED, "sendgrid event webhook: stale: signed at %d, more than %s from now", secs, w.maxAge)
	}
	return nil
}

// partnerEvent maps e (whose JSON is raw) to herald's terms.
func (e event) partnerEvent(raw json.RawMessage) herald.PartnerEvent {
	pe := herald.PartnerEvent{
		EventID:        e.SGEventID,
		PartnerType:    e.Event,
		MessageID:      MessageID(e.SGMessageID),
		DeliveryID:     e.DeliveryID,
		NotificationID: e.NotificationID,
		Recipient:      e.Email,
		At:             time.Unix(e.Timestamp, 0).UTC(),
	}
	if pe.EventID == "" { // SendGrid always sends one; never leave it empty
		sum := sha256.Sum256(raw)
		pe.EventID = "sha256:" + hex.EncodeToString(sum[:])
	}
	switch e.Event {
	case "delivered":
		pe.Type = herald.PartnerDelivered
		return pe // its response ("250 OK") is no reason
	case "bounce":
		switch e.Type {
		case "", "bounce":
			pe.Type = herald.PartnerBounced
		default: // "blocked"
			pe.Type = herald.PartnerDropped
		}
	case "dropped":
		pe.Type = herald.PartnerDropped
	case "deferred":
		pe.Type = herald.PartnerDeferred
	}
	pe.Reason = cmp.Or(e.Reason, e.Response)
	return pe
}

// MessageID returns the X-Message-Id an event's sg_message_id starts with:
// SendGrid appends a per-recipient ".filter…" suffix to the id its send
// answered (reference/providers.md §1.6), which is what Send records.
func MessageID(sgMessageID string) string {
	id, _, _ := strings.Cut(sgMessageID, ".")
	return id
}
