package herald

import (
	"context"
	"net/http"
	"time"
)

// The kinds of partner event herald acts on. Others (opens, clicks,
// "processed") are parsed and ignored.
const (
	PartnerDelivered = "delivered" // the recipient's server took the message
	PartnerBounced   = "bounced"   // the recipient's server refused it (hard bounce): recipient-caused
	PartnerDropped   = "dropped"   // the partner will not send it (suppressed, invalid, blocked)
	PartnerDeferred  = "deferred"  // delayed; the partner will try again
)

// PartnerEvent is what a partner reports, through its event webhook, about
// a message it accepted. It holds no secret.
type PartnerEvent struct {
	// EventID is the partner's own id for the event, used to ignore a
	// repeat; never empty (derived from the event's content when the
	// partner gives none).
	EventID string `json:"event_id"`
	// Type is one of the Partner* kinds, or "" for an event herald ignores.
	Type string `json:"type"`
	// PartnerType is the partner's name for the event ("bounce", "Bounce",
	// "failed", "Delivery"…).
	PartnerType string `json:"partner_type"`
	// MessageID is the partner's message id, normalized to the form the
	// partner's adapter records on an accepted attempt.
	MessageID string `json:"message_id,omitempty"`
	// DeliveryID and NotificationID are herald's ids, when the partner
	// echoes the message's metadata.
	DeliveryID     string    `json:"delivery_id,omitempty"`
	NotificationID string    `json:"notification_id,omitempty"`
	Recipient      string    `json:"recipient,omitempty"`
	At             time.Time `json:"at"`
	// Reason is the partner's description of a bounce, drop or deferral.
	Reason string `json:"reason,omitempty"`
}

// EventWebhook reads one partner's event webhook requests. Implementations
// are safe for concurrent use.
type EventWebhook interface {
	// Parse verifies r (whose body has been read into body) as the
	// partner's signed event webhook and returns its events. Returns
	// EUNAUTHORIZED for a request that fails verification (a forged, stale
	// or replayed signature, wrong credentials), EMALFORMED for one that
	// cannot be read; nothing may be trusted from either. A request that
	// needs no events applied (a subscription confirmation handled here)
	// returns no events and no error.
	Parse(ctx context.Context, r *http.Request, body []byte) ([]PartnerEvent, error)
}

// Marker annotates a point or span of time in a dataset (or AllDatasets),
// in the shape of Honeycomb's Markers API. herald writes one at every start,
// so delivery success can be compared across releases.
type Marker struct {
	ID        string    `json:"id"`
	StartTime int64     `json:"start_time"`
	EndTime   int64     `json:"end_time,omitempty"`
	Message   string    `json:"message,omitempty"`
	Type      string    `json:"type,omitempty"`
	URL       string    `json:"url,omitempty"`
	Color     string    `json:"color,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Check returns an EINVALID error naming the field of m that breaks a rule.
func (m Marker) Check() error {
	switch {
	case m.StartTime < 0:
		return Invalid("start_time", "invalid", "Unix seconds, not negative")
	case m.EndTime != 0 && m.EndTime < m.StartTime:
		return Invalid("end_time", "invalid", "cannot be before start_time")
	case len(m.Message) > 1024:
		return Invalid("message", "invalid", "at most 1024 characters")
	case len(m.Type) > 255:
		return Invalid("type", "invalid", "at most 255 characters")
	case len(m.URL) > 2048:
		return Invalid("url", "invalid", "at most 2048 characters")
	}
	return nil
}

// Canary results.
const (
	CanaryPending = "pending"
	CanaryPassed  = "passed"
	CanaryFailed  = "failed"
)

// Canary is one synthetic notification sent through one partner to prove
// the whole path: sent, accepted, and — where the partner reports it —
// delivered.
type Canary struct {
	ID         string     `json:"id"`
	Partner    string     `json:"partner"`
	DeliveryID string     `json:"delivery_id"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Result     string     `json:"result"`
	// Detail is the delivery's final state and reason.
	Detail string `json:"detail,omitempty"`
	// LatencyNS is the time from start to the verdict, end to end.
	LatencyNS time.Duration `json:"latency_ns,omitempty"`
}
