package mailgun

// Mailgun's event webhooks (reference/providers.md §3.6):
// https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
// https://documentation.mailgun.com/docs/mailgun/user-manual/events/event-types

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"herald"
	"herald/clock"
)

// EventWebhookConfig configures the reader of a Mailgun domain's event
// webhooks.
type EventWebhookConfig struct {
	// SigningKey is the domain's HTTP webhook signing key (not the API
	// key). Required.
	SigningKey string
	// MaxAge is how far a signature's timestamp may be from now, in either
	// direction, and how long its token is remembered to refuse a replay.
	// Defaults to 10 minutes.
	MaxAge time.Duration
	// Clock reads the time the timestamps are checked against. Defaults to
	// clock.Real().
	Clock clock.Clock
}

// MaxTokens is how many signature tokens an EventWebhook remembers at most.
// Tokens are forgotten MaxAge after their timestamp, when a request bearing
// them would be refused as stale anyway; a request that would need a
// 100,001st token remembered is refused (EUNAVAILABLE) rather than make room
// by forgetting one still fresh, which would let it be replayed.
const MaxTokens = 100_000

// EventWebhook reads Mailgun's event webhooks. It is safe for concurrent
// use.
//
// A request is trusted only when its signature is hex(HMAC-SHA256(signing
// key, timestamp ‖ token)), compared in constant time; its timestamp is
// within MaxAge of now; and its token has not been seen within MaxAge (the
// checks Mailgun advises and mailgun-go's VerifyWebhookSignature leaves out,
// §3.4). A token is remembered once its request is verified, so a request
// repeated with the same signature — a capture replayed, or a retry that
// re-sends the same signature — is refused EUNAUTHORIZED: answer 2xx once
// Parse returned the events and deduplicate on EventID, so that Mailgun has
// no reason to retry.
//
// Mapping of event-data to herald's kinds:
//
//	event      severity    reason                  herald
//	delivered                                      PartnerDelivered (Reason empty)
//	delivered  (flags.is-test-mode: true)          "" (o:testmode: nothing was delivered, §3.5)
//	failed     permanent   bounce                  PartnerBounced: the recipient's server refused it
//	failed     permanent   any other (suppress-bounce, suppress-complaint,
//	                       suppress-unsubscribe, espblock, old, generic…)
//	                                               PartnerDropped: Mailgun will not send it
//	failed     temporary                           PartnerDeferred: Mailgun tries again
//	failed     other or missing                    EMALFORMED (a failure herald cannot classify)
//	accepted, opened, clicked, complained, unsubscribed, stored…   "" (ignored)
//
// "suppress-bounce" is a drop, not a bounce: Mailgun did not try the
// recipient's server, because the address bounced before (herald.PartnerDropped
// names suppression). EventID is event-data.id (a hash of event-data when it
// has none); MessageID is message.headers.message-id inside angle brackets,
// the form Send records from Mailgun's answer; DeliveryID and NotificationID
// come from user-variables (each metadata value is its own v: variable); At
// is event-data.timestamp; Reason is delivery-status.description, else
// delivery-status.message, else reason.
type EventWebhook struct {
	key    []byte
	maxAge time.Duration
	clock  clock.Clock

	mu     sync.Mutex
	tokens tokenSet
}

var _ herald.EventWebhook = (*EventWebhook)(nil)

// NewEventWebhook returns a reader of Mailgun's event webhooks for cfg.
func NewEventWebhook(cfg EventWebhookConfig) (*EventWebhook, error) {
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 10 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	switch {
	case cfg.SigningKey == "":
		return nil, errors.New("mailgun: event webhook: signing_key is required")
	case cfg.MaxAge < 0:
		return nil, errors.New("mailgun: event webhook: max_age must not be negative")
	}
	return &EventWebhook{key: []byte(cfg.SigningKey), maxAge: cfg.MaxAge, clock: cfg.Clock,
		tokens: tokenSet{expiry: map[string]time.Time{}}}, nil
}

// webhookBody is Mailgun's webhook request body.
type webhookBody struct {
	Signature *struct {
		Timestamp string `json:"timestamp"`
		Token     string `json:"token"`
		Signature string `json:"signature"`
	} `json:"signature"`
	EventData json.RawMessage `json:"event-data"`
}

// eventData is the part of Mailgun's event-data herald reads.
type eventData struct {
	ID        string   `json:"id"`
	Event     string   `json:"event"`
	Timestamp *float64 `json:"timestamp"`
	Recipient string   `json:"recipient"`
	Severity  string   `json:"severity"`
	Reason    string   `json:"reason"`
	Flags     struct {
		IsTestMode bool `json:"is-test-mode"`
	} `json:"flags"`
	Message struct {
		Headers struct {
			MessageID string `json:"message-id"`
		} `json:"headers"`
	} `json:"message"`
	UserVariables  map[string]any `json:"user-variables"`
	DeliveryStatus struct {
		Message     string `json:"message"`
		Description string `json:"description"`
	} `json:"delivery-status"`
}

// Parse verifies body as one Mailgun webhook and returns its event. Returns
// EMALFORMED for a body that is not Mailgun's JSON, EUNAUTHORIZED for a
// signature that is missing, forged, made with another key, stale or
// replayed, and EUNAVAILABLE when MaxTokens fresh tokens are remembered
// already (Mailgun retries it later).
func (w *EventWebhook) Parse(_ context.Context, _ *http.Request, body []byte) ([]herald.PartnerEvent, error) {
	var b webhookBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, herald.Errorf(herald.EMALFORMED, "mailgun: the body is not Mailgun's webhook JSON")
	}
	sig := b.Signature
	if sig == nil || sig.Timestamp == "" || sig.Token == "" || sig.Signature == "" {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "mailgun: the request is not signed")
	}
	if !w.signed(sig.Timestamp, sig.Token, sig.Signature) {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "mailgun: the signature does not match the signing key")
	}
	secs, err := strconv.ParseInt(sig.Timestamp, 10, 64)
	if err != nil {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "mailgun: the signature's timestamp is not a number of seconds")
	}
	now := w.clock.Now()
	// Compared in seconds, so that no timestamp can overflow a Duration.
	limit := int64(w.maxAge / time.Second)
	if age := now.Unix() - secs; secs < 0 || secs > maxUnix || age > limit || -age > limit {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "mailgun: the signature is stale: its timestamp is not within %s of now", w.maxAge)
	}
	if err := w.remember(sig.Token, time.Unix(secs, 0).Add(w.maxAge), now); err != nil {
		return nil, err
	}
	ev, err := readEvent(b.EventData)
	if err != nil {
		return nil, err
	}
	return []herald.PartnerEvent{ev}, nil
}

// maxUnix bounds the timestamps read (seconds and event-data's fractional
// seconds) to before the year 4000, so that no arithmetic on them overflows.
const maxUnix = 1 << 36

// signed reports, in constant time, whether signature is the hex HMAC of
// timestamp ‖ token with the signing key.
func (w *EventWebhook) signed(timestamp, token, signature string) bool {
	got, err := hex.DecodeString(signature)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, w.key)
	mac.Write([]byte(timestamp))
	mac.Write([]byte(token))
	return hmac.Equal(mac.Sum(nil), got)
}

// remember records token until expires, or refuses it as a replay.
func (w *EventWebhook) remember(token string, expires, now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tokens.expire(now)
	if _, seen := w.tokens.expiry[token]; seen {
		return herald.Errorf(herald.EUNAUTHORIZED, "mailgun: the signature was replayed: its token was seen before")
	}
	if len(w.tokens.expiry) >= MaxTokens {
		return herald.Errorf(herald.EUNAVAILABLE, "mailgun: %d signature tokens are remembered already; try again later", MaxTokens)
	}
	w.tokens.add(token, expires)
	return nil
}

// readEvent maps Mailgun's event-data to a PartnerEvent (see EventWebhook).
func readEvent(raw json.RawMessage) (herald.PartnerEvent, error) {
	malformed := func(format string, args ...any) (herald.PartnerEvent, error) {
		return herald.PartnerEvent{}, herald.Errorf(herald.EMALFORMED, "mailgun: event-data: "+format, args...)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return malformed("missing or not an object")
	}
	var d eventData
	if err := json.Unmarshal(raw, &d); err != nil {
		return malformed("not Mailgun's event JSON")
	}
	if d.Event == "" {
		return malformed("no event")
	}
	if d.Timestamp == nil || *d.Timestamp <= 0 || *d.Timestamp >= maxUnix {
		return malformed("no valid timestamp")
	}
	sec, frac := math.Modf(*d.Timestamp)
	ev := herald.PartnerEvent{
		EventID:     d.ID,
		PartnerType: d.Event,
		Recipient:   d.Recipient,
		At:          time.Unix(int64(sec), int64(math.Round(frac*1e6))*int64(time.Microsecond)).UTC(),
	}
	if ev.EventID == "" {
		sum := sha256.Sum256(raw)
		ev.EventID = "sha256:" + hex.EncodeToString(sum[:])
	}
	if mid := strings.Trim(strings.TrimSpace(d.Message.Headers.MessageID), "<>"); mid != "" {
		ev.MessageID = "<" + mid + ">" // as Send records it (Classify keeps Mailgun's brackets)
	}
	ev.DeliveryID, _ = d.UserVariables[herald.MetaDeliveryID].(string)
	ev.NotificationID, _ = d.UserVariables[herald.MetaNotificationID].(string)
	switch d.Event {
	case "delivered":
		if !d.Flags.IsTestMode {
			ev.Type = herald.PartnerDelivered
		}
		return ev, nil
	case "failed":
		switch d.Severity {
		case "permanent":
			ev.Type = herald.PartnerDropped
			if d.Reason == "bounce" {
				ev.Type = herald.PartnerBounced
			}
		case "temporary":
			ev.Type = herald.PartnerDeferred
		default:
			return malformed("a failed event whose severity is neither permanent nor temporary")
		}
		ev.Reason = firstNonBlank(d.DeliveryStatus.Description, d.DeliveryStatus.Message, d.Reason)
	}
	return ev, nil
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

// tokenSet is the tokens seen and when each may be forgotten: a map for
// lookups and a min-heap by expiry for eviction. It is guarded by its
// EventWebhook's mutex.
type tokenSet struct {
	expiry map[string]time.Time
	queue  tokenHeap
}

type tokenEntry struct {
	token   string
	expires time.Time
}

func (s *tokenSet) add(token string, expires time.Time) {
	s.expiry[token] = expires
	heap.Push(&s.queue, tokenEntry{token: token, expires: expires})
}

// expire forgets every token whose expiry is before now.
func (s *tokenSet) expire(now time.Time) {
	for len(s.queue) > 0 && s.queue[0].expires.Before(now) {
		e := heap.Pop(&s.queue).(tokenEntry)
		delete(s.expiry, e.token)
	}
}

type tokenHeap []tokenEntry

func (h tokenHeap) Len() int           { return len(h) }
func (h tokenHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h tokenHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *tokenHeap) Push(x any)        { *h = append(*h, x.(tokenEntry)) }
func (h *tokenHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
