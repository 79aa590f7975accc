package herald

import (
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
)

// RecipientTypes are the kinds of recipient a trigger may notify.
var RecipientTypes = []string{"email", "webhook", "slack", "pagerduty"}

// Destination is what Honeycomb's Recipients API calls a recipient: a
// named place notifications go, shared by triggers (reference:
// honeycomb-api.md §5).
type Destination struct {
	ID        string             `json:"id"`
	Type      string             `json:"type"`
	Details   DestinationDetails `json:"details"`
	CreatedAt time.Time          `json:"created_at"`
	UpdatedAt time.Time          `json:"updated_at"`
}

// DestinationDetails hold a destination's settings; which apply depends on
// its type.
type DestinationDetails struct {
	EmailAddress string `json:"email_address,omitempty"`
	SlackChannel string `json:"slack_channel,omitempty"`
	// PagerDutyIntegrationKey is the Events API v2 routing key: a secret.
	PagerDutyIntegrationName string `json:"pagerduty_integration_name,omitempty"`
	PagerDutyIntegrationKey  string `json:"pagerduty_integration_key,omitempty"`
	WebhookName              string `json:"webhook_name,omitempty"`
	// WebhookURL is where webhooks (and Slack messages: an incoming
	// webhook URL) are posted.
	WebhookURL string `json:"webhook_url,omitempty"`
	// WebhookSecret is sent as X-Honeycomb-Webhook-Token and signs the
	// Standard Webhooks signature: a secret.
	WebhookSecret   string           `json:"webhook_secret,omitempty"`
	WebhookHeaders  []WebhookHeader  `json:"webhook_headers,omitempty"`
	WebhookPayloads *WebhookPayloads `json:"webhook_payloads,omitempty"`
}

// WebhookHeader is a header a webhook destination adds to each request.
type WebhookHeader struct {
	Header string `json:"header"`
	Value  string `json:"value"`
}

// WebhookPayloads are a webhook's custom payload templates.
type WebhookPayloads struct {
	TemplateVariables []struct {
		Name         string `json:"name"`
		DefaultValue string `json:"default_value"`
	} `json:"template_variables,omitempty"`
	PayloadTemplates map[string]struct {
		Body string `json:"body"`
	} `json:"payload_templates,omitempty"`
}

var reservedHeaders = []string{"content-type", "user-agent", "x-honeycomb-webhook-token",
	"webhook-id", "webhook-timestamp", "webhook-signature"}

// Check returns an EINVALID error naming the first field of d that breaks
// the Recipients API's rules for its type.
func (d Destination) Check() error {
	det := d.Details
	switch d.Type {
	case "email":
		if _, err := mail.ParseAddress(det.EmailAddress); err != nil || det.EmailAddress == "" {
			return Invalid("details.email_address", "invalid", "an email address")
		}
	case "slack":
		if err := checkURL("details.webhook_url", det.WebhookURL); err != nil {
			return fmt.Errorf("%w (a Slack incoming webhook URL)", err)
		}
	case "pagerduty":
		if len(det.PagerDutyIntegrationKey) != 32 {
			return Invalid("details.pagerduty_integration_key", "invalid", "32 characters")
		}
		if det.PagerDutyIntegrationName == "" {
			return Invalid("details.pagerduty_integration_name", "missing", "name the integration")
		}
	case "webhook":
		switch {
		case det.WebhookName == "" || len(det.WebhookName) > 255:
			return Invalid("details.webhook_name", "invalid", "1–255 characters")
		case len(det.WebhookURL) > 2048:
			return Invalid("details.webhook_url", "invalid", "at most 2048 characters")
		case len(det.WebhookSecret) > 255:
			return Invalid("details.webhook_secret", "invalid", "at most 255 characters")
		case len(det.WebhookHeaders) > 5:
			return Invalid("details.webhook_headers", "invalid", "at most 5 headers")
		}
		if err := checkURL("details.webhook_url", det.WebhookURL); err != nil {
			return err
		}
		for i, h := range det.WebhookHeaders {
			switch {
			case h.Header == "" || len(h.Header) > 64:
				return Invalid(fmt.Sprintf("details.webhook_headers[%d].header", i), "invalid", "1–64 characters")
			case len(h.Value) > 750:
				return Invalid(fmt.Sprintf("details.webhook_headers[%d].value", i), "invalid", "at most 750 characters")
			case slices.Contains(reservedHeaders, strings.ToLower(h.Header)):
				return Invalid(fmt.Sprintf("details.webhook_headers[%d].header", i), "invalid", "%s is set by herald", h.Header)
			}
		}
		if p := det.WebhookPayloads; p != nil {
			if len(p.TemplateVariables) > 10 {
				return Invalid("details.webhook_payloads.template_variables", "invalid", "at most 10 variables")
			}
			for k := range p.PayloadTemplates {
				if k != "trigger" && k != "exhaustion_time" && k != "budget_rate" {
					return Invalid("details.webhook_payloads.payload_templates", "invalid", "templates are trigger, exhaustion_time or budget_rate, not %q", k)
				}
			}
		}
	default:
		return Invalid("type", "invalid", "one of %s", strings.Join(RecipientTypes, ", "))
	}
	return nil
}

func checkURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Invalid(field, "invalid", "an http or https URL")
	}
	return nil
}
