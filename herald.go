// Package herald is the domain of the herald notification service: the
// notifications it owes, the deliveries that pay them, the attempts made on
// each delivery, the outcome vocabulary every package shares, and the
// contracts (Provider, stores) the other packages implement. It depends on
// the standard library only.
package herald

import (
	"fmt"
	"time"
)

// Outcome is how one attempt to hand a message to a partner ended, decided
// from the partner's whole response — never from a nil error alone.
type Outcome string

// The outcomes of an attempt.
const (
	// OutcomeAccepted: a 2xx in the shape the partner documents, with its
	// message id. Accepted is not delivered.
	OutcomeAccepted Outcome = "accepted"
	// OutcomeRejected: a permanent refusal (validation, auth, unverified
	// sender). Never retried on the same partner.
	OutcomeRejected Outcome = "rejected"
	// OutcomeThrottled: the partner's rate limit; retried after the wait it
	// names.
	OutcomeThrottled Outcome = "throttled"
	// OutcomeTransient: 5xx, a refused connection, a timeout before the
	// request was sent; retried with backoff.
	OutcomeTransient Outcome = "transient"
	// OutcomeUnknown: the request may have been taken but the answer was
	// lost or unreadable (timeout after sending, 2xx with an empty or
	// unexpected body). Never counted as success.
	OutcomeUnknown Outcome = "unknown"
)

// Outcomes lists every outcome, for pre-creating metric series.
var Outcomes = []Outcome{OutcomeAccepted, OutcomeRejected, OutcomeThrottled, OutcomeTransient, OutcomeUnknown}

// DeliveryState is where a delivery is in its life. See
// docs/delivery-states.md for the diagram.
type DeliveryState string

// The states of a delivery.
const (
	StateQueued      DeliveryState = "queued"
	StateSending     DeliveryState = "sending"
	StateAccepted    DeliveryState = "accepted"
	StateDelivered   DeliveryState = "delivered"
	StateFailed      DeliveryState = "failed"
	StateBounced     DeliveryState = "bounced"
	StateDropped     DeliveryState = "dropped"
	StateUnconfirmed DeliveryState = "unconfirmed"
)

// DeliveryStates lists every state, for pre-creating metric series.
var DeliveryStates = []DeliveryState{StateQueued, StateSending, StateAccepted, StateDelivered,
	StateFailed, StateBounced, StateDropped, StateUnconfirmed}

// transitions is the delivery state machine: from → allowed next states.
var transitions = map[DeliveryState][]DeliveryState{
	StateQueued:  {StateSending, StateFailed},
	StateSending: {StateQueued, StateAccepted, StateFailed},
	// A partner's final event, or the reconciler's deadline.
	StateAccepted: {StateDelivered, StateBounced, StateDropped, StateUnconfirmed},
	// An operator's retry of a failed delivery.
	StateFailed: {StateQueued},
	// A late confirmation wins over the reconciler's verdict; or the
	// reconciler resends through the channel's next partner.
	StateUnconfirmed: {StateDelivered, StateBounced, StateDropped, StateQueued},
}

// CanMoveTo reports whether a delivery in state s may move to next.
func (s DeliveryState) CanMoveTo(next DeliveryState) bool {
	for _, n := range transitions[s] {
		if n == next {
			return true
		}
	}
	return false
}

// Final reports whether s ends the delivery's sending: nothing more will be
// attempted unless an operator retries a failed delivery.
func (s DeliveryState) Final() bool {
	switch s {
	case StateDelivered, StateFailed, StateBounced, StateDropped, StateUnconfirmed:
		return true
	}
	return false
}

// Valid reports whether s is a known state.
func (s DeliveryState) Valid() bool {
	_, ok := transitions[s]
	return ok || s == StateDelivered || s == StateBounced || s == StateDropped
}

// ErrInvalidTransition is returned when a delivery is asked to move to a
// state its state machine does not allow from where it is.
type ErrInvalidTransition struct {
	From, To DeliveryState
}

func (e *ErrInvalidTransition) Error() string {
	return fmt.Sprintf("delivery cannot move from %s to %s", e.From, e.To)
}

// Move returns nil when from may move to to, else *ErrInvalidTransition.
func Move(from, to DeliveryState) error {
	if !from.CanMoveTo(to) {
		return &ErrInvalidTransition{From: from, To: to}
	}
	return nil
}

// Recipient is one addressee of a notification.
type Recipient struct {
	// Type is the channel: "email" for now.
	Type string `json:"type"`
	// Target is the address on that channel.
	Target string `json:"target"`
}

// Notification is one message herald owes to its recipients.
type Notification struct {
	ID             string            `json:"id"`
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
	Recipients     []Recipient       `json:"recipients"`
	Subject        string            `json:"subject"`
	Text           string            `json:"text"`
	HTML           string            `json:"html,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	CreatedAt      time.Time         `json:"created_at"`
	Deliveries     []Delivery        `json:"deliveries,omitempty"`
	// TraceParent is the W3C traceparent of the request that created the
	// notification: every delivery's spans join that trace.
	TraceParent string `json:"-"`
	// Alert is the trigger event the notification is about, if any.
	Alert *Alert `json:"alert,omitempty"`
}

// Delivery is the debt of one notification to one recipient, and its
// progress towards being paid.
type Delivery struct {
	ID             string `json:"id"`
	NotificationID string `json:"notification_id"`
	Channel        string `json:"channel"`
	// Options are the trigger's settings for this recipient, if any.
	Options *RecipientOptions `json:"options,omitempty"`
	// PinnedPartner, when set, is the only partner the delivery may use
	// (a canary proves one partner; it must not fail over).
	PinnedPartner string        `json:"pinned_partner,omitempty"`
	Recipient     Recipient     `json:"recipient"`
	State         DeliveryState `json:"state"`
	// Reason says why the delivery is in its state, for failed and other
	// final states.
	Reason string `json:"reason,omitempty"`
	// Partner is the partner of the latest attempt.
	Partner string `json:"partner,omitempty"`
	// PartnerMessageID is the id the accepting partner gave the message.
	PartnerMessageID string `json:"partner_message_id,omitempty"`
	Attempts         int    `json:"attempt_count"`
	// LastOutcome is the outcome of the latest attempt.
	LastOutcome Outcome   `json:"last_outcome,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// NextAttemptAt is when the next attempt is due, while queued.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	// PossibleDuplicates counts attempts whose outcome was unknown and
	// that were followed by another attempt: the recipient may have the
	// message more than once.
	PossibleDuplicates int `json:"possible_duplicates"`
	// Judgement is what the delivery counts for in its channel's delivery
	// SLO, set once, at JudgedAt: when it first reached a final state, was
	// accepted where nothing confirms, or passed its channel's deadline.
	Judgement  Judgement  `json:"judgement,omitempty"`
	JudgedAt   *time.Time `json:"judged_at,omitempty"`
	AttemptLog []Attempt  `json:"attempts,omitempty"`
	// RoundAttempts is the number of attempts made before the current
	// round of sending, and RoundStartedAt when it began: the retry
	// policy's limits apply per round, and an operator's retry of a failed
	// delivery starts a new one.
	RoundAttempts  int       `json:"-"`
	RoundStartedAt time.Time `json:"-"`
	// LeaseUntil is, while sending, when the worker making the attempt
	// gives up its claim: a delivery still sending after that was
	// interrupted by its worker's death.
	LeaseUntil *time.Time `json:"-"`
}

// The kinds of API key.
const (
	// KeyConfiguration may use every API: notifications, deliveries,
	// triggers, SLOs, queries, and sending events.
	KeyConfiguration = "configuration"
	// KeyIngest may only send events.
	KeyIngest = "ingest"
)

// APIKey describes an API key. The secret itself is shown once, at
// creation, and stored only as a hash.
type APIKey struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}
