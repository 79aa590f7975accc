package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is herald serve's configuration file. See docs/configuration.md.
type Config struct {
	// Listen is the HTTP address. Defaults to ":8080".
	Listen string `yaml:"listen"`
	// PublicURL is herald's address as its users reach it, for the links
	// in notifications. Defaults to none: notifications carry no links.
	PublicURL string `yaml:"public_url"`
	// DataDir holds the state database. Defaults to "./herald-data".
	DataDir   string          `yaml:"data_dir"`
	LogLevel  string          `yaml:"log_level"`
	LogFormat string          `yaml:"log_format"`
	Partners  []PartnerConfig `yaml:"partners"`
	// Channels maps a channel to its partners' names in failover order.
	Channels map[string][]string `yaml:"channels"`
	Webhooks struct {
		// AllowNetworks are the private networks (CIDR prefixes) webhook
		// and Slack recipients may be at; every other private,
		// loopback or link-local address is refused.
		AllowNetworks []string `yaml:"allow_networks"`
	} `yaml:"webhooks"`
	PagerDuty struct {
		// BaseURL defaults to https://events.pagerduty.com.
		BaseURL string `yaml:"base_url"`
	} `yaml:"pagerduty"`
	Delivery DeliveryConfig `yaml:"delivery"`
	Events   EventsConfig   `yaml:"events"`
	Canaries struct {
		// To is the mailbox canaries are sent to; canaries are off
		// without it.
		To string `yaml:"to"`
		// Every is the time between a partner's canaries. Defaults to 5m.
		Every Duration `yaml:"every"`
		// Recipients are webhook, Slack and PagerDuty recipients (by id)
		// to prove as well.
		Recipients []string `yaml:"recipients"`
	} `yaml:"canaries"`
	SLOs SLOsConfig `yaml:"slos"`
}

// SLOsConfig configures the built-in delivery SLOs, where their burn
// alerts go, and the heartbeat. See docs/slos.md.
type SLOsConfig struct {
	Delivery struct {
		// Channels are the channels with delivery SLOs. Defaults to all:
		// email, webhook, slack and pagerduty.
		Channels []string `yaml:"channels"`
		// Target is the availability target in percent. Defaults to 99.9.
		Target float64 `yaml:"target"`
		// LatencyTarget is the latency target in percent. Defaults to 99.
		LatencyTarget float64 `yaml:"latency_target"`
		// PeriodDays defaults to 30.
		PeriodDays int `yaml:"period_days"`
		// FinalWithin is, per channel, how long after its creation a
		// delivery must reach a final state before it counts as bad.
		// Defaults to 1h for email and 15m for the others.
		FinalWithin map[string]Duration `yaml:"final_within"`
		// LatencyWithin is, per channel, the latency SLI's threshold.
		// Defaults to 5m for email and 1m for the others.
		LatencyWithin map[string]Duration `yaml:"latency_within"`
	} `yaml:"delivery"`
	// Fallback lists where the delivery SLOs' burn alerts go; each SLO's
	// go to the first that does not travel the channel it watches.
	Fallback  []FallbackConfig `yaml:"fallback"`
	Heartbeat struct {
		// URL is pinged while herald is healthy (a dead man's switch).
		URL string `yaml:"url"`
		// Every defaults to 1m.
		Every Duration `yaml:"every"`
	} `yaml:"heartbeat"`
}

// FallbackConfig is one fallback recipient of the delivery SLOs' burn
// alerts. Which fields apply depends on Type.
type FallbackConfig struct {
	// Type is email, webhook, slack or pagerduty.
	Type string `yaml:"type"`
	// To and Partner: an email address, sent only through Partner, which
	// must be a partner outside channels.email.
	To      string `yaml:"to"`
	Partner string `yaml:"partner"`
	// URL (and Secret, for a webhook): a webhook or Slack incoming webhook.
	URL    string `yaml:"url"`
	Secret string `yaml:"secret"`
	// IntegrationKey is a PagerDuty Events API v2 routing key.
	IntegrationKey string `yaml:"integration_key"`
}

// EventsConfig configures the event store.
type EventsConfig struct {
	// RetentionDays is how long a new dataset keeps its events. Defaults
	// to 60; a dataset created through the API may set its own.
	RetentionDays int `yaml:"retention_days"`
	// MaxColumns is the most columns one dataset may have. Defaults to
	// 10,000.
	MaxColumns int `yaml:"max_columns"`
}

// PartnerConfig is one partner. Which credential fields apply depends on
// Kind; the others must be empty.
type PartnerConfig struct {
	Name    string   `yaml:"name"`
	Kind    string   `yaml:"kind"`
	BaseURL string   `yaml:"base_url"`
	From    string   `yaml:"from"`
	Timeout Duration `yaml:"timeout"`
	// ConfirmWithin is how long after acceptance a final event must
	// arrive through the partner's event webhook before the delivery is
	// unconfirmed. Defaults to 1h for a partner whose event webhook is
	// configured; without one, nothing can confirm, and nothing is
	// reconciled.
	ConfirmWithin Duration `yaml:"confirm_within"`
	// The partner's event webhook, at POST /hooks/{name}:
	WebhookPublicKey  string   `yaml:"webhook_public_key"`  // sendgrid: the signed event webhook's verification key
	WebhookUsername   string   `yaml:"webhook_username"`    // postmark: the basic auth the webhook URL carries
	WebhookPassword   string   `yaml:"webhook_password"`    // postmark
	WebhookSigningKey string   `yaml:"webhook_signing_key"` // mailgun: the HTTP webhook signing key
	SNSTopicARN       string   `yaml:"sns_topic_arn"`       // ses: the SNS topic its events arrive from
	SNSCertHosts      []string `yaml:"sns_cert_hosts"`      // ses: hosts SNS certificates may come from (default: AWS's)

	APIKey           string `yaml:"api_key"`           // sendgrid, mailgun
	ServerToken      string `yaml:"server_token"`      // postmark
	MessageStream    string `yaml:"message_stream"`    // postmark
	Domain           string `yaml:"domain"`            // mailgun
	Region           string `yaml:"region"`            // ses
	AccessKeyID      string `yaml:"access_key_id"`     // ses
	SecretAccessKey  string `yaml:"secret_access_key"` // ses
	ConfigurationSet string `yaml:"configuration_set"` // ses
	Host             string `yaml:"host"`              // smtp
	Port             int    `yaml:"port"`              // smtp
	Username         string `yaml:"username"`          // smtp
	Password         string `yaml:"password"`          // smtp
	TLS              string `yaml:"tls"`               // smtp: starttls (default), tls, none
	TLSSkipVerify    bool   `yaml:"tls_skip_verify"`   // smtp: for test servers such as herald sandbox only
}

// DeliveryConfig tunes retries and the workers.
type DeliveryConfig struct {
	MaxAttempts     int      `yaml:"max_attempts"`
	MaxAge          Duration `yaml:"max_age"`
	BackoffBase     Duration `yaml:"backoff_base"`
	BackoffCap      Duration `yaml:"backoff_cap"`
	AttemptTimeout  Duration `yaml:"attempt_timeout"`
	Workers         int      `yaml:"workers"`
	BreakerFailures int      `yaml:"breaker_failures"`
	BreakerCooldown Duration `yaml:"breaker_cooldown"`
	// ResendUnconfirmed sends a delivery that its partner never confirmed
	// again through the channel's next partner, once.
	ResendUnconfirmed bool `yaml:"resend_unconfirmed"`
}

// Duration reads "90s", "15m", "2h".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration such as 30s or 15m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// loadConfig reads the YAML file at path (none when path is empty),
// expanding ${VAR} from getenv, refusing unknown keys, then applies the
// HERALD_* environment overrides and validates. Errors name the key.
func loadConfig(path string, getenv func(string) string) (*Config, error) {
	var c Config
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := decodeConfig(raw, getenv, &c); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	for env, field := range map[string]*string{"HERALD_LISTEN": &c.Listen, "HERALD_DATA_DIR": &c.DataDir,
		"HERALD_LOG_LEVEL": &c.LogLevel, "HERALD_LOG_FORMAT": &c.LogFormat} {
		if v := getenv(env); v != "" {
			*field = v
		}
	}
	c.withDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// decodeConfig parses raw, replaces ${VAR} in every scalar value by the
// variable's value — after parsing, so that a value can never change the
// document's structure — and decodes the result into c, refusing unknown
// keys. A referenced variable that is not set is an error naming it.
func decodeConfig(raw []byte, getenv func(string) string, c *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 {
		return nil // an empty file is an empty configuration
	}
	var missing []string
	var expand func(n *yaml.Node)
	expand = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
			n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
				name := envRef.FindStringSubmatch(ref)[1]
				v := getenv(name)
				if v == "" {
					missing = append(missing, name)
				}
				return v
			})
			n.Tag, n.Style = "!!str", yaml.DoubleQuotedStyle
		}
		for _, child := range n.Content {
			expand(child)
		}
	}
	expand(&doc)
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("environment variables not set: %s", strings.Join(slices.Compact(missing), ", "))
	}
	expanded, err := yaml.Marshal(&doc)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (c *Config) withDefaults() {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./herald-data"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.LogFormat == "" {
		c.LogFormat = "json"
	}
}

var partnerKinds = []string{"sendgrid", "postmark", "mailgun", "ses", "smtp"}

func (c *Config) validate() error {
	if c.Canaries.To != "" {
		if a, err := mail.ParseAddress(c.Canaries.To); err != nil || a.Address != c.Canaries.To {
			return fmt.Errorf("config: canaries.to: %q is not a bare email address", c.Canaries.To)
		}
	}
	if c.Canaries.Every != 0 && time.Duration(c.Canaries.Every) < time.Minute {
		return fmt.Errorf("config: canaries.every: at least 1m")
	}
	for i, n := range c.Webhooks.AllowNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			return fmt.Errorf("config: webhooks.allow_networks[%d]: %q is not a CIDR prefix such as 10.0.0.0/8", i, n)
		}
	}
	if c.Events.RetentionDays < 0 {
		return fmt.Errorf("config: events.retention_days cannot be negative")
	}
	if c.Events.MaxColumns < 0 {
		return fmt.Errorf("config: events.max_columns cannot be negative")
	}
	names := map[string]bool{}
	for i, p := range c.Partners {
		at := fmt.Sprintf("partners[%d]", i)
		if p.Name == "" {
			return fmt.Errorf("config: %s.name is required", at)
		}
		at = fmt.Sprintf("partners[%d] (%s)", i, p.Name)
		if names[p.Name] {
			return fmt.Errorf("config: %s.name: %q is used twice", at, p.Name)
		}
		names[p.Name] = true
		if !slices.Contains(partnerKinds, p.Kind) {
			return fmt.Errorf("config: %s.kind: %q is not one of %s", at, p.Kind, strings.Join(partnerKinds, ", "))
		}
		if p.From == "" {
			return fmt.Errorf("config: %s.from is required", at)
		}
		required := map[string][]string{
			"sendgrid": {"api_key"}, "postmark": {"server_token"}, "mailgun": {"api_key", "domain"},
			"ses": {"region", "access_key_id", "secret_access_key"}, "smtp": {"host"},
		}[p.Kind]
		fields := p.credentialFields()
		for _, f := range required {
			if fields[f] == "" {
				return fmt.Errorf("config: %s.%s is required for kind %s", at, f, p.Kind)
			}
		}
		allowed := append(required, map[string][]string{"postmark": {"message_stream"}, "ses": {"configuration_set"},
			"smtp": {"port", "username", "password", "tls", "tls_skip_verify"}}[p.Kind]...)
		for f, v := range fields {
			if v != "" && v != "0" && !slices.Contains(allowed, f) {
				return fmt.Errorf("config: %s.%s does not apply to kind %s", at, f, p.Kind)
			}
		}
		for f, v := range p.webhookFields() {
			if v != "" && webhookKinds[f] != p.Kind {
				return fmt.Errorf("config: %s.%s does not apply to kind %s", at, f, p.Kind)
			}
		}
		if (p.WebhookUsername == "") != (p.WebhookPassword == "") {
			return fmt.Errorf("config: %s.webhook_username and webhook_password go together", at)
		}
		if p.SNSTopicARN == "" && len(p.SNSCertHosts) > 0 {
			return fmt.Errorf("config: %s.sns_cert_hosts needs sns_topic_arn", at)
		}
		if p.Kind == "smtp" && p.TLS != "" && !slices.Contains([]string{"starttls", "tls", "none"}, p.TLS) {
			return fmt.Errorf("config: %s.tls: want starttls, tls or none, got %q", at, p.TLS)
		}
	}
	for ch, list := range c.Channels {
		if ch != "email" {
			return fmt.Errorf("config: channels.%s: unknown channel (want email)", ch)
		}
		if len(list) == 0 {
			return fmt.Errorf("config: channels.%s: list at least one partner", ch)
		}
		for _, n := range list {
			if !names[n] {
				return fmt.Errorf("config: channels.%s: no partner named %q", ch, n)
			}
		}
	}
	if err := c.SLOs.validate(names, c.Channels["email"]); err != nil {
		return err
	}
	if _, err := newLogger(os.Stderr, c.LogLevel, c.LogFormat); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	d := c.Delivery
	if d.MaxAttempts < 0 || d.Workers < 0 || d.BreakerFailures < 0 {
		return errors.New("config: delivery: max_attempts, workers and breaker_failures must not be negative")
	}
	return nil
}

// webhookFields are the event webhook settings by name.
func (p PartnerConfig) webhookFields() map[string]string {
	return map[string]string{"webhook_public_key": p.WebhookPublicKey, "webhook_username": p.WebhookUsername,
		"webhook_password": p.WebhookPassword, "webhook_signing_key": p.WebhookSigningKey, "sns_topic_arn": p.SNSTopicARN,
		"sns_cert_hosts": strings.Join(p.SNSCertHosts, ",")}
}

// webhookKinds says which kind each event webhook setting belongs to.
var webhookKinds = map[string]string{"webhook_public_key": "sendgrid", "webhook_username": "postmark", "webhook_password": "postmark",
	"webhook_signing_key": "mailgun", "sns_topic_arn": "ses", "sns_cert_hosts": "ses"}

// HasEventWebhook reports whether the partner's event webhook is
// configured.
func (p PartnerConfig) HasEventWebhook() bool {
	return p.WebhookPublicKey != "" || p.WebhookUsername != "" || p.WebhookSigningKey != "" || p.SNSTopicARN != ""
}

func (p PartnerConfig) credentialFields() map[string]string {
	port := ""
	if p.Port != 0 {
		port = fmt.Sprint(p.Port)
	}
	return map[string]string{"api_key": p.APIKey, "server_token": p.ServerToken, "message_stream": p.MessageStream,
		"domain": p.Domain, "region": p.Region, "access_key_id": p.AccessKeyID, "secret_access_key": p.SecretAccessKey,
		"configuration_set": p.ConfigurationSet, "host": p.Host, "port": port, "username": p.Username,
		"password": p.Password, "tls": p.TLS, "tls_skip_verify": map[bool]string{true: "true"}[p.TLSSkipVerify]}
}

func (c SLOsConfig) validate(partners map[string]bool, email []string) error {
	d := c.Delivery
	for name, v := range map[string]float64{"target": d.Target, "latency_target": d.LatencyTarget} {
		if v != 0 && !(v > 0 && v < 100) {
			return fmt.Errorf("config: slos.delivery.%s: a percentage above 0 and below 100, got %v", name, v)
		}
	}
	if d.PeriodDays < 0 || d.PeriodDays > 90 {
		return fmt.Errorf("config: slos.delivery.period_days: between 1 and 90, got %d", d.PeriodDays)
	}
	for i, f := range c.Fallback {
		at := fmt.Sprintf("slos.fallback[%d]", i)
		set := map[string]bool{"to": f.To != "", "partner": f.Partner != "", "url": f.URL != "", "secret": f.Secret != "", "integration_key": f.IntegrationKey != ""}
		want := map[string][]string{"email": {"to", "partner"}, "webhook": {"url", "secret"}, "slack": {"url"}, "pagerduty": {"integration_key"}}[f.Type]
		if want == nil {
			return fmt.Errorf("config: %s.type: email, webhook, slack or pagerduty, got %q", at, f.Type)
		}
		for field, ok := range set {
			if ok && !slices.Contains(want, field) {
				return fmt.Errorf("config: %s.%s does not apply to type %s", at, field, f.Type)
			}
		}
		if f.Type == "email" {
			if _, err := mail.ParseAddress(f.To); err != nil {
				return fmt.Errorf("config: %s.to: an email address, got %q", at, f.To)
			}
			if !partners[f.Partner] {
				return fmt.Errorf("config: %s.partner: no partner named %q", at, f.Partner)
			}
		}
	}
	if c.Heartbeat.URL != "" && !strings.HasPrefix(c.Heartbeat.URL, "https://") && !strings.HasPrefix(c.Heartbeat.URL, "http://") {
		return errors.New("config: slos.heartbeat.url: an absolute http(s) URL")
	}
	return nil
}
