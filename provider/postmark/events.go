package postmark

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"herald"
)

// EventWebhookConfig configures an EventWebhook. Postmark signs nothing: its
// webhooks authenticate with the basic auth given in the webhook's URL
// (https://user:pass@host/…), which herald checks (reference/providers.md
// §2.6).
type EventWebhookConfig struct {
	// Username and Password are the basic-auth credentials set in the
	// webhook's URL at Postmark. Both required. Password is a secret: it
	// never reaches an error string.
	Username, Password string
}

// EventWebhook reads Postmark's webhooks. It implements herald.EventWebhook
// and is safe for concurrent use.
type EventWebhook struct {
	// Digests of the credentials, so that comparing them takes the same
	// time whatever their lengths.
	user, pass [sha256.Size]byte
}

var _ herald.EventWebhook = (*EventWebhook)(nil)

// NewEventWebhook returns a reader of Postmark's webhooks for cfg. Returns an
// error when the username or the password is empty.
func NewEventWebhook(cfg EventWebhookConfig) (*EventWebhook, error) {
	switch {
	case cfg.Username == "":
		return nil, errors.New("postmark: event webhook: username is required")
	case cfg.Password == "":
		return nil, errors.New("postmark: event webhook: password is required")
	}
	return &EventWebhook{user: sha256.Sum256([]byte(cfg.Username)), pass: sha256.Sum256([]byte(cfg.Password))}, nil
}

// webhookEvent is the part of one Postmark webhook herald reads
// (https://postmarkapp.com/developer/webhooks/webhooks-overview;
// reference/providers.md §2.6).
type webhookEvent struct {
	RecordType string
	MessageID  string
	Metadata   map[string]string
	// Delivery
	Recipient   string
	DeliveredAt string
	// Bounce (and SpamComplaint, which has the bounce's shape)
	ID          *json.Number
	Type        string
	TypeCode    *int
	Email       string
	BouncedAt   string
	Description string
	Details     string
	// Open and Click
	ReceivedAt string
	// SubscriptionChange
	ChangedAt string
}

// bounceKinds maps Postmark's bounce types
// (https://postmarkapp.com/developer/api/bounce-api#bounce-types), by name
// and by TypeCode, to herald's kinds (reference/providers.md §2.6 lists the
// Bounce fields; the types' meanings are Postmark's):
//
//   - bounced, refused for the recipient's address, for good: HardBounce,
//     BadEmailAddress.
//   - deferred, a temporary failure: Transient, SoftBounce (mailbox full,
//     over quota), DnsError.
//   - dropped, not delivered and not the address's fault: Blocked (an ISP
//     block for spam or policy), DMARCPolicy, ManuallyDeactivated,
//     Unconfirmed, ChallengeVerification, VirusNotification, SMTPApiError,
//     TemplateRenderingFailed, Unknown — and any type not listed here.
//   - ignored (""), reports about a message that did arrive, or not about
//     sending at all: Unsubscribe, Subscribe, AutoResponder, AddressChange,
//     SpamNotification, SpamComplaint, OpenRelayTest, InboundError.
var bounceKinds = map[string]struct {
	code int
	kind string
}{
	"HardBounce":              {1, herald.PartnerBounced},
	"Transient":               {2, herald.PartnerDeferred},
	"Unsubscribe":             {16, ""},
	"Subscribe":               {32, ""},
	"AutoResponder":           {64, ""},
	"AddressChange":           {128, ""},
	"DnsError":                {256, herald.PartnerDeferred},
	"SpamNotification":        {512, ""},
	"OpenRelayTest":           {1024, ""},
	"Unknown":                 {2048, herald.PartnerDropped},
	"SoftBounce":              {4096, herald.PartnerDeferred},
	"VirusNotification":       {8192, herald.PartnerDropped},
	"ChallengeVerification":   {16384, herald.PartnerDropped},
	"BadEmailAddress":         {100000, herald.PartnerBounced},
	"SpamComplaint":           {100001, ""},
	"ManuallyDeactivated":     {100002, herald.PartnerDropped},
	"Unconfirmed":             {100003, herald.PartnerDropped},
	"Blocked":                 {100006, herald.PartnerDropped},
	"SMTPApiError":            {100007, herald.PartnerDropped},
	"InboundError":            {100008, ""},
	"DMARCPolicy":             {100009, herald.PartnerDropped},
	"TemplateRenderingFailed": {100010, herald.PartnerDropped},
}

// bounceKind is herald's kind for a bounce of type typ (or, without one,
// of TypeCode code).
func bounceKind(typ string, code *int) string {
	if b, ok := bounceKinds[typ]; ok {
		return b.kind
	}
	if typ == "" && code != nil {
		for _, b := range bounceKinds {
			if b.code == *code {
				return b.kind
			}
		}
	}
	return herald.PartnerDropped // not delivered, cause unknown: never blame the address
}

// Parse checks r's basic auth and returns the one event its body holds
// (herald.EventWebhook).
//
// Returns EUNAUTHORIZED when the request carries no basic auth or other
// credentials (compared in constant time); EMALFORMED when the body is not
// one JSON object with a RecordType, or a timestamp in it is not RFC 3339.
// Postmark signs nothing and has no timestamp to check, so a replay with
// the credentials verifies; its EventID repeats, by which it is
// deduplicated.
//
// RecordType Delivery → delivered; Bounce → by its Type (bounceKinds);
// SpamComplaint, Open, Click, SubscriptionChange and any other → ""
// (ignored). MessageID is the MessageID Send recorded; herald's ids come
// from Metadata under their short keys (MetadataKey). Postmark gives no event
// id, so EventID is derived from the event:
// RecordType:MessageID:recipient:timestamp, and :ID for a bounce.
func (w *EventWebhook) Parse(_ context.Context, r *http.Request, body []byte) ([]herald.PartnerEvent, error) {
	if !w.authorized(r) {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "postmark webhook: missing or wrong basic auth")
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, herald.Errorf(herald.EMALFORMED, "postmark webhook: the body is not a JSON object")
	}
	var e webhookEvent
	if err := json.Unmarshal(trimmed, &e); err != nil {
		return nil, herald.Errorf(herald.EMALFORMED, "postmark webhook: the body is not a Postmark event: %v", err)
	}
	if e.RecordType == "" {
		return nil, herald.Errorf(herald.EMALFORMED, "postmark webhook: the event has no RecordType")
	}
	ts := cmp.Or(e.DeliveredAt, e.BouncedAt, e.ReceivedAt, e.ChangedAt)
	var at time.Time
	if ts != "" {
		var err error
		if at, err = time.Parse(time.RFC3339, ts); err != nil {
			return nil, herald.Errorf(herald.EMALFORMED, "postmark webhook: the event's time %q is not RFC 3339", ts)
		}
		at = at.UTC()
	}
	pe := herald.PartnerEvent{
		PartnerType:    e.RecordType,
		MessageID:      e.MessageID,
		DeliveryID:     e.Metadata[MetadataKey(herald.MetaDeliveryID)],
		NotificationID: e.Metadata[MetadataKey(herald.MetaNotificationID)],
		Recipient:      cmp.Or(e.Recipient, e.Email),
		At:             at,
	}
	id := []string{e.RecordType, e.MessageID, pe.Recipient, ts}
	if e.ID != nil {
		id = append(id, e.ID.String())
	}
	pe.EventID = strings.Join(id, ":")
	switch e.RecordType {
	case "Delivery":
		pe.Type = herald.PartnerDelivered
	case "Bounce":
		pe.Type = bounceKind(e.Type, e.TypeCode)
		pe.Reason = cmp.Or(e.Details, e.Description)
	}
	return []herald.PartnerEvent{pe}, nil
}

// authorized reports whether r carries the configured basic auth. Both
// parts are always compared, as digests, in constant time.
func (w *EventWebhook) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	match := subtle.ConstantTimeCompare(u[:], w.user[:]) & subtle.ConstantTimeCompare(p[:], w.pass[:])
	return ok && match == 1
}
