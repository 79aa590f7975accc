package herald

import (
	"context"
	"time"
)

// Email is one message to one recipient, as a Provider sends it.
type Email struct {
	From    string
	To      string
	Subject string
	Text    string
	HTML    string
	// Metadata is the notification's metadata plus herald's correlation
	// ids (MetaNotificationID, MetaDeliveryID), already checked with the
	// provider's CheckMetadata.
	Metadata map[string]string
	// Alert is the trigger event the message is about, nil for a plain
	// notification. For the webhook, Slack and PagerDuty channels To is
	// the id of a Destination.
	Alert *Alert
	// Options are the trigger's settings for this recipient (PagerDuty
	// severity, webhook template variables), nil when none.
	Options *RecipientOptions
}

// The metadata keys herald always adds, so a partner's events can be
// matched to the delivery they are about.
const (
	MetaNotificationID = "herald_notification_id"
	MetaDeliveryID     = "herald_delivery_id"
)

// MetaTriggerID is the metadata key of a trigger's notifications that
// names the trigger.
const MetaTriggerID = "herald_trigger_id"

// Attempt is the record of one try to hand a delivery to a partner. It
// never holds a secret: request bodies are summarized, not stored, and
// credentials are never part of a summary.
type Attempt struct {
	ID         string        `json:"id"`
	DeliveryID string        `json:"delivery_id"`
	Number     int           `json:"number"`
	Partner    string        `json:"partner"`
	StartedAt  time.Time     `json:"started_at"`
	Duration   time.Duration `json:"duration_ns"`
	Result
	TraceID string `json:"trace_id,omitempty"`
}

// Result is what a Provider learned from one send: the outcome decided from
// the whole response, and the evidence for it.
type Result struct {
	Outcome Outcome `json:"outcome"`
	// Reason is a short, stable, machine-readable cause ("ok",
	// "validation", "auth", "unverified_sender", "rate_limited",
	// "server_error", "timeout", "connection", "empty_body",
	// "unexpected_body", "missing_message_id", …), used as a metric label.
	Reason string `json:"reason"`
	// Status is the HTTP status or the SMTP reply code; 0 when none came.
	Status int `json:"status,omitempty"`
	// MessageID is the partner's id for the accepted message.
	MessageID string `json:"partner_message_id,omitempty"`
	// RetryAfter is the wait the partner asked for, when it named one.
	RetryAfter time.Duration `json:"retry_after_ns,omitempty"`
	// RateLimit holds the partner's rate-limit headers, as sent.
	RateLimit map[string]string `json:"rate_limit,omitempty"`
	// Request summarizes what was sent: method, URL, sizes, metadata keys.
	Request string `json:"request_summary,omitempty"`
	// Response is an excerpt of the answer, at most 4 KB.
	Response string `json:"response_excerpt,omitempty"`
	// Error describes a failure in words, without secrets.
	Error string `json:"error,omitempty"`
	// PartnerSide reports a failure of the partner or of herald's account
	// with it (auth, quota, unverified sender, outage) rather than of the
	// message: another partner may succeed where this one failed.
	PartnerSide bool `json:"partner_side,omitempty"`
}

// Provider hands emails to one configured partner. Implementations are safe
// for concurrent use.
type Provider interface {
	// Name is the partner's configured name, e.g. "sendgrid-main".
	Name() string
	// Kind is the partner's kind: sendgrid, postmark, mailgun, ses, smtp.
	Kind() string
	// CheckMetadata reports whether md can be carried to this partner
	// exactly. It returns an *Error with code EINVALID naming the field
	// and the partner's rule when it cannot.
	CheckMetadata(md map[string]string) error
	// Send makes one attempt. It never returns success without the
	// documented success shape and a message id; every failure is in the
	// Result, never silent.
	Send(ctx context.Context, e *Email) Result
}

// ReasonsByOutcome lists the reasons each outcome is commonly given, so that
// metric series can exist before the first attempt. A provider may use a
// reason not listed here when none fits; document it in the provider.
var ReasonsByOutcome = map[Outcome][]string{
	OutcomeAccepted: {"ok"},
	OutcomeRejected: {"validation", "auth", "forbidden", "unverified_sender", "too_large", "encode",
		"no_destination", "template", "forbidden_address", "redirect", "status_4xx", "error_body"},
	OutcomeThrottled: {"rate_limited", "unavailable"},
	OutcomeTransient: {"server_error", "timeout", "connection", "destination_lookup"},
	OutcomeUnknown:   {"missing_message_id", "unexpected_body", "timeout_after_send", "connection_lost_after_send", "interrupted"},
}

// Alert is the structured event a trigger's notification is about, in the
// shape of Honeycomb's default trigger webhook payload (reference:
// honeycomb-api.md §5). Channels that send JSON (webhook, Slack,
// PagerDuty) build their bodies from it. It holds no secret.
type Alert struct {
	Version            string `json:"version"`
	ID                 string `json:"id"`
	Name               string `json:"name"`
	TriggerDescription string `json:"trigger_description"`
	TriggerURL         string `json:"trigger_url"`
	AlertType          string `json:"alert_type"`
	// Status is TRIGGERED or OK as Honeycomb sends them, or herald's own
	// NO_DATA and ERROR.
	Status                string       `json:"status"`
	Summary               string       `json:"summary"`
	Description           string       `json:"description"`
	Operator              string       `json:"operator"`
	Threshold             float64      `json:"threshold"`
	ResultURL             string       `json:"result_url"`
	ResultGroups          []AlertGroup `json:"result_groups"`
	ResultGroupsTriggered []AlertGroup `json:"result_groups_triggered"`
	IsTest                bool         `json:"is_test"`
	// Dataset is the trigger's dataset slug (herald's addition).
	Dataset string `json:"dataset"`
	// EvaluationID names the evaluation that caused the alert.
	EvaluationID string `json:"evaluation_id,omitempty"`
	// SLO describes a burn alert's SLO and what it saw (herald's); nil
	// for a trigger's alert.
	SLO *SLOAlert `json:"slo,omitempty"`
}

// SLOAlert is what a burn alert's notification says about its SLO: what a
// person needs to judge it without opening anything else.
type SLOAlert struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Dataset string `json:"dataset"`
	// Channel is the delivery channel a built-in delivery SLO watches.
	Channel       string  `json:"channel,omitempty"`
	TargetPercent float64 `json:"target_percent"`
	BurnAlertID   string  `json:"burn_alert_id"`
	AlertType     string  `json:"alert_type"`
	Severity      string  `json:"severity"`
	// Windows are the burn rates of the windows the alert reads.
	Windows []WindowBurn `json:"windows"`
	// BudgetRemainingPercent may be negative: the budget is overspent.
	BudgetRemainingPercent float64 `json:"budget_remaining_percent"`
	// TopFailures are the most frequent partners and reasons of the bad
	// judgements in the alert's longest window (delivery SLOs).
	TopFailures []FailureCount `json:"top_failures,omitempty"`
	// FailuresURL lists the failing deliveries (delivery SLOs).
	FailuresURL string `json:"failures_url,omitempty"`
	SLOURL      string `json:"slo_url,omitempty"`
}

// WindowBurn is the burn rate of one window, with the counts behind it.
type WindowBurn struct {
	Window    string  `json:"window"`
	BurnRate  float64 `json:"burn_rate"`
	Threshold float64 `json:"threshold,omitempty"`
	Good      int64   `json:"good"`
	Bad       int64   `json:"bad"`
}

// AlertGroup is one group's value, with Honeycomb's capitalised keys.
type AlertGroup struct {
	Group  map[string]any `json:"Group"`
	Result float64        `json:"Result"`
}

// Destinations reads the recipients that trigger notifications go to;
// *sqlstore.DB implements it. Webhook, Slack and PagerDuty providers read
// the URL and secrets of the destination a delivery names (its target is
// the destination's id) at send time, so no secret is copied into a
// notification.
type Destinations interface {
	// GetDestination returns the destination with id, or ENOTFOUND.
	GetDestination(ctx context.Context, id string) (Destination, error)
}
