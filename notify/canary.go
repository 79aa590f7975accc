package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"herald"
	"herald/clock"
	"herald/sqlstore"
)

// CanaryStore is what canaries need of the state store; *sqlstore.DB
// implements it.
type CanaryStore interface {
	StartCanary(ctx context.Context, c *herald.Canary, n *herald.Notification, enqueue sqlstore.EnqueueFunc) error
	FinishCanary(ctx context.Context, id, result, detail string, at time.Time) error
	Canaries(ctx context.Context, partner string, pending bool, limit int) ([]herald.Canary, error)
	GetDelivery(ctx context.Context, id string) (*herald.Delivery, error)
}

// CanaryConfig configures Canaries.
type CanaryConfig struct {
	Store   CanaryStore
	Enqueue sqlstore.EnqueueFunc
	// Partners are the email partners to prove, by name. Confirms names
	// those whose event webhook reports delivery: their canary passes at
	// delivered; the others' at accepted, the most they can show.
	Partners []string
	Confirms map[string]bool
	// To is the address email canaries are sent to: a mailbox its owner
	// keeps. Without it, email partners have no canaries.
	To string
	// Recipients are webhook, Slack and PagerDuty recipients (by id) to
	// prove too. Their canary passes when the receiver takes it (a 2xx in
	// its documented shape): for these channels that is the confirmation.
	// The canary's alert has status OK and is_test set, so a PagerDuty
	// canary resolves (opens no incident) and a receiver can ignore it.
	Recipients []herald.Destination
	// Every is the time between a partner's canaries. Defaults to 5m.
	Every time.Duration
	// Clock defaults to clock.Real().
	Clock clock.Clock
	// Registerer, when set, receives herald_canary_up and
	// herald_canary_latency_seconds per partner.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Canaries sends each partner a synthetic notification every period, built
// by the same path as real ones (metadata encoder included) and pinned to
// that partner, and judges it by its delivery: passed when the partner
// confirms delivery (or accepts, when it has no event webhook), failed
// when the delivery fails, bounces, is dropped or is unconfirmed at the
// partner's deadline. A partner with little real traffic is still proven
// every period.
type Canaries struct {
	cfg     CanaryConfig
	last    map[string]time.Time // partner → when its last canary started
	up      *prometheus.GaugeVec
	latency *prometheus.GaugeVec
}

// NewCanaries returns Canaries for cfg.
func NewCanaries(cfg CanaryConfig) (*Canaries, error) {
	if cfg.Store == nil || cfg.Enqueue == nil || (cfg.To == "" && len(cfg.Recipients) == 0) {
		return nil, errors.New("notify: canaries: Store, Enqueue and To or Recipients are required")
	}
	if cfg.Every == 0 {
		cfg.Every = 5 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Canaries{cfg: cfg, last: map[string]time.Time{},
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_canary_up",
			Help: "1 when the partner's last finished canary passed, 0 when it failed."}, []string{"partner"}),
		latency: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_canary_latency_seconds",
			Help: "End-to-end time of the partner's last finished canary."}, []string{"partner"}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(c.up, c.latency)
	}
	return c, nil
}

// Tick judges the pending canaries and starts the ones due at now.
func (c *Canaries) Tick(ctx context.Context, now time.Time) error {
	pending, err := c.cfg.Store.Canaries(ctx, "", true, 1000)
	if err != nil {
		return err
	}
	for _, can := range pending {
		if err := c.judge(ctx, can, now); err != nil {
			return err
		}
		if can.StartedAt.After(c.last[can.Partner]) {
			c.last[can.Partner] = can.StartedAt
		}
	}
	subjects := []string{}
	if c.cfg.To != "" {
		subjects = append(subjects, c.cfg.Partners...)
	}
	for _, r := range c.cfg.Recipients {
		subjects = append(subjects, r.Type+":"+r.ID)
	}
	for _, p := range subjects {
		last, ok := c.last[p]
		if !ok {
			recent, err := c.cfg.Store.Canaries(ctx, p, false, 1)
			if err != nil {
				return err
			}
			if len(recent) > 0 {
				last = recent[0].StartedAt
			}
		}
		if !last.IsZero() && now.Sub(last) < c.cfg.Every {
			c.last[p] = last
			continue
		}
		if err := c.start(ctx, p, now); err != nil {
			return err
		}
		c.last[p] = now
	}
	return nil
}

// start sends one canary: through an email partner (pinned to it), or to
// a recipient named "type:id".
func (c *Canaries) start(ctx context.Context, subject string, now time.Time) error {
	now = now.UTC()
	can := &herald.Canary{ID: herald.NewID("cny_", now), Partner: subject, StartedAt: now, Result: herald.CanaryPending}
	d := herald.Delivery{ID: herald.NewID("dlv_", now), Channel: "email", PinnedPartner: subject,
		Recipient: herald.Recipient{Type: "email", Target: c.cfg.To}}
	summary := fmt.Sprintf("herald canary through %s", subject)
	var alert *herald.Alert
	if channel, id, ok := strings.Cut(subject, ":"); ok {
		d.Channel, d.PinnedPartner, d.Recipient = channel, "", herald.Recipient{Type: channel, Target: id}
		alert = &herald.Alert{Version: "v0.1.0", ID: "canary", Name: "herald canary", Status: "OK", IsTest: true,
			Summary: summary, Description: "A synthetic notification proving this channel; nothing is wrong.",
			ResultGroups: []herald.AlertGroup{}, ResultGroupsTriggered: []herald.AlertGroup{}, EvaluationID: can.ID}
	}
	can.DeliveryID = d.ID
	n := &herald.Notification{ID: herald.NewID("ntf_", now), Recipients: []herald.Recipient{d.Recipient}, Subject: summary,
		Text:     fmt.Sprintf("A synthetic notification proving %s, sent %s. Canary %s.", subject, now.Format(time.RFC3339), can.ID),
		Metadata: map[string]string{"herald_canary": can.ID}, CreatedAt: now, Deliveries: []herald.Delivery{d}, Alert: alert}
	return c.cfg.Store.StartCanary(ctx, can, n, c.cfg.Enqueue)
}

// judge gives a pending canary its verdict once its delivery has one.
func (c *Canaries) judge(ctx context.Context, can herald.Canary, now time.Time) error {
	d, err := c.cfg.Store.GetDelivery(ctx, can.DeliveryID)
	if err != nil {
		return err
	}
	result := ""
	switch d.State {
	case herald.StateDelivered:
		result = herald.CanaryPassed
	case herald.StateAccepted:
		if !c.cfg.Confirms[can.Partner] {
			result = herald.CanaryPassed
		}
	case herald.StateFailed, herald.StateBounced, herald.StateDropped, herald.StateUnconfirmed:
		result = herald.CanaryFailed
	}
	if result == "" {
		return nil
	}
	detail := string(d.State)
	if d.Reason != "" {
		detail += ": " + d.Reason
	}
	if err := c.cfg.Store.FinishCanary(ctx, can.ID, result, detail, now); err != nil {
		return err
	}
	up := 1.0
	if result == herald.CanaryFailed {
		up = 0
		c.cfg.Logger.WarnContext(ctx, "canary failed", "partner", can.Partner, "canary_id", can.ID, "detail", detail)
	}
	c.up.WithLabelValues(can.Partner).Set(up)
	c.latency.WithLabelValues(can.Partner).Set(now.Sub(can.StartedAt).Seconds())
	return nil
}

// Run ticks every interval until ctx ends.
func (c *Canaries) Run(ctx context.Context, interval time.Duration) {
	every(ctx, interval, c.cfg.Logger, "canary pass failed", func(ctx context.Context) error {
		return c.Tick(ctx, c.cfg.Clock.Now())
	})
}
