// Package notify turns a request to notify into deliveries, and each
// delivery into attempts: it picks the partner (failing over in the
// channel's order, around open circuit breakers), makes the attempt, records
// it with its outcome, traces and counts it, and decides whether and when to
// try again. It never counts a delivery as sent from a nil error: only a
// provider's accepted outcome moves a delivery to accepted.
package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"herald"
	"herald/clock"
	"herald/sqlstore"
)

// Store is the state the service keeps; *sqlstore.DB implements it.
type Store interface {
	CreateNotification(ctx context.Context, n *herald.Notification, requestHash string, enqueue sqlstore.EnqueueFunc) (*herald.Notification, bool, error)
	Notification(ctx context.Context, id string) (*herald.Notification, error)
	Update(ctx context.Context, id string, decide func(d *herald.Delivery) (sqlstore.Change, error)) (*herald.Delivery, error)
}

// Config configures a Service.
type Config struct {
	// Store keeps notifications, deliveries and attempts. Required.
	Store Store
	// Enqueue inserts delivery jobs in the store's transaction. Required.
	Enqueue sqlstore.EnqueueFunc
	// Channels maps a channel ("email") to its partners in failover order.
	Channels map[string][]herald.Provider
	// Reserve maps a channel to partners outside its failover list, used
	// only by deliveries pinned to them: the email fallback of the
	// delivery SLOs' burn alerts, say, which must not share the path it
	// reports on.
	Reserve map[string][]herald.Provider
	// Policy is the retry policy. See RetryPolicy for its defaults.
	Policy RetryPolicy
	// Breaker configures each partner's circuit breaker.
	Breaker BreakerConfig
	// AttemptTimeout bounds one attempt. Defaults to 30s.
	AttemptTimeout time.Duration
	// Clock defaults to clock.Real().
	Clock clock.Clock
	// TracerProvider defaults to the global one.
	TracerProvider trace.TracerProvider
	// Metrics defaults to series on a private registry.
	Metrics *Metrics
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Service creates notifications and delivers them. Safe for concurrent use.
type Service struct {
	cfg      Config
	clock    clock.Clock
	policy   RetryPolicy
	tracer   trace.Tracer
	metrics  *Metrics
	log      *slog.Logger
	breakers map[string]*breaker
	recent   *notificationCache
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Enqueue == nil {
		return nil, errors.New("notify: Store and Enqueue are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = 30 * time.Second
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	s := &Service{cfg: cfg, clock: cfg.Clock, policy: cfg.Policy.WithDefaults(), metrics: cfg.Metrics,
		tracer: cfg.TracerProvider.Tracer("herald/notify"), log: cfg.Logger, breakers: map[string]*breaker{},
		recent: newNotificationCache(4096)}
	for _, ps := range slices.Concat(slices.Collect(maps.Values(cfg.Channels)), slices.Collect(maps.Values(cfg.Reserve))) {
		for _, p := range ps {
			if _, dup := s.breakers[p.Name()]; !dup {
				s.breakers[p.Name()] = newBreaker(cfg.Breaker, cfg.Clock)
			}
		}
	}
	s.metrics.precreate(cfg.Channels)
	return s, nil
}

// BreakerStates returns each partner's circuit breaker state.
func (s *Service) BreakerStates() map[string]BreakerState {
	out := map[string]BreakerState{}
	for name, b := range s.breakers {
		out[name] = b.state()
	}
	return out
}

// Limits of a notification request that herald itself sets.
const (
	MaxRecipients    = 100
	maxSubject       = 998
	MaxMetadataKeys  = 50
	maxMetadataKey   = 128
	maxMetadataValue = 2048
)

// CreateRequest is the body of POST /1/notifications.
type CreateRequest struct {
	Recipients []herald.Recipient `json:"recipients"`
	Subject    string             `json:"subject"`
	Text       string             `json:"text"`
	HTML       string             `json:"html,omitempty"`
	Metadata   map[string]string  `json:"metadata,omitempty"`
}

// Create validates req, then stores the notification with one delivery per
// recipient and their queue jobs, all in one transaction.
//
// With an idempotency key already used for the same request it returns the
// first notification and existed=true. Returns EINVALID naming the field
// and the rule for a request that breaks one — including metadata a
// configured partner of the channel cannot carry exactly.
func (s *Service) Create(ctx context.Context, req CreateRequest, idempotencyKey string) (*herald.Notification, bool, error) {
	if err := s.validate(req); err != nil {
		return nil, false, err
	}
	now := s.clock.Now().UTC()
	n := &herald.Notification{
		ID: herald.NewID("ntf_", now), IdempotencyKey: idempotencyKey, Recipients: req.Recipients,
		Subject: req.Subject, Text: req.Text, HTML: req.HTML, Metadata: req.Metadata, CreatedAt: now,
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	n.TraceParent = carrier["traceparent"]
	for _, r := range req.Recipients {
		n.Deliveries = append(n.Deliveries, herald.Delivery{ID: herald.NewID("dlv_", now), Channel: r.Type, Recipient: r})
	}
	canonical, _ := json.Marshal(req)
	sum := sha256.Sum256(canonical)
	created, existed, err := s.cfg.Store.CreateNotification(ctx, n, hex.EncodeToString(sum[:]), s.cfg.Enqueue)
	if err == nil {
		s.recent.put(created)
	}
	return created, existed, err
}

func (s *Service) validate(req CreateRequest) error {
	if len(req.Recipients) == 0 {
		return herald.Invalid("recipients", "missing", "at least one recipient is required")
	}
	if len(req.Recipients) > MaxRecipients {
		return herald.Invalid("recipients", "invalid", "at most %d recipients per notification", MaxRecipients)
	}
	seen := map[string]bool{}
	for i, r := range req.Recipients {
		field := fmt.Sprintf("recipients[%d]", i)
		if r.Type != "email" {
			return herald.Invalid(field+".type", "invalid", "unsupported channel %q (want \"email\")", r.Type)
		}
		if len(s.cfg.Channels[r.Type]) == 0 {
			return herald.Invalid(field+".type", "invalid", "no partner is configured for the %s channel", r.Type)
		}
		a, err := mail.ParseAddress(r.Target)
		if err != nil || a.Address != r.Target {
			return herald.Invalid(field+".target", "invalid", "%q is not a bare email address", r.Target)
		}
		key := strings.ToLower(r.Type + ":" + r.Target)
		if seen[key] {
			return herald.Invalid(field+".target", "already_exists", "%s is listed twice", r.Target)
		}
		seen[key] = true
	}
	switch {
	case strings.TrimSpace(req.Subject) == "":
		return herald.Invalid("subject", "missing", "a subject is required")
	case len(req.Subject) > maxSubject:
		return herald.Invalid("subject", "invalid", "at most %d bytes", maxSubject)
	case strings.ContainsAny(req.Subject, "\r\n"):
		return herald.Invalid("subject", "invalid", "line breaks are not allowed")
	case req.Text == "" && req.HTML == "":
		return herald.Invalid("text", "missing", "text or html is required")
	case len(req.Metadata) > MaxMetadataKeys:
		return herald.Invalid("metadata", "invalid", "at most %d entries", MaxMetadataKeys)
	}
	for _, k := range slices.Sorted(maps.Keys(req.Metadata)) {
		v := req.Metadata[k]
		field := "metadata." + k
		switch {
		case k == "":
			return herald.Invalid("metadata", "invalid", "keys must not be empty")
		case len(k) > maxMetadataKey:
			return herald.Invalid(field, "invalid", "keys are at most %d bytes", maxMetadataKey)
		case strings.HasPrefix(k, "herald_"):
			return herald.Invalid(field, "invalid", "keys starting with herald_ are reserved for herald's own ids")
		case len(v) > maxMetadataValue:
			return herald.Invalid(field, "invalid", "values are at most %d bytes", maxMetadataValue)
		}
	}
	// Every partner of the channel must carry the metadata exactly — with
	// herald's ids, which every attempt adds — since any may be used.
	md := withIDs(req.Metadata, herald.NewID("ntf_", time.Time{}), herald.NewID("dlv_", time.Time{}))
	for _, p := range s.cfg.Channels["email"] {
		if err := p.CheckMetadata(md); err != nil {
			var he *herald.Error
			if errors.As(err, &he) {
				he.Message = fmt.Sprintf("partner %s (%s) cannot carry this metadata: %s", p.Name(), p.Kind(), he.Message)
				return he
			}
			return herald.Invalid("metadata", "invalid", "partner %s (%s): %v", p.Name(), p.Kind(), err)
		}
	}
	return nil
}

func withIDs(md map[string]string, notificationID, deliveryID string) map[string]string {
	out := make(map[string]string, len(md)+2)
	for k, v := range md {
		out[k] = v
	}
	out[herald.MetaNotificationID] = notificationID
	out[herald.MetaDeliveryID] = deliveryID
	return out
}

// Retry queues a failed delivery again, starting a new round of attempts.
// Returns ENOTFOUND for an unknown delivery and ECONFLICT for one that has
// not failed: an accepted delivery is never sent again.
func (s *Service) Retry(ctx context.Context, deliveryID string) (*herald.Delivery, error) {
	return s.cfg.Store.Update(ctx, deliveryID, func(d *herald.Delivery) (sqlstore.Change, error) {
		if d.State != herald.StateFailed {
			return sqlstore.Change{}, herald.Errorf(herald.ECONFLICT, "delivery %s is %s; only a failed delivery can be retried", d.ID, d.State)
		}
		d.RoundAttempts, d.RoundStartedAt = d.Attempts, s.clock.Now()
		d.Reason, d.NextAttemptAt = "", nil
		return sqlstore.Change{To: herald.StateQueued, Cause: "retry requested", Enqueue: s.cfg.Enqueue}, nil
	})
}

// Resend sends an unconfirmed delivery again through the next partner of
// its channel, after the one that accepted it and never confirmed. The
// message carries the same herald ids, so a late event from the first
// partner is matched to it, and the resend is counted as a possible
// duplicate. It returns false when the channel has no next partner.
func (s *Service) Resend(ctx context.Context, deliveryID string) (bool, error) {
	resent := false
	_, err := s.cfg.Store.Update(ctx, deliveryID, func(d *herald.Delivery) (sqlstore.Change, error) {
		if d.State != herald.StateUnconfirmed || d.PinnedPartner != "" {
			return sqlstore.Change{}, sqlstore.ErrNoChange // resent once, or a canary
		}
		partners := s.cfg.Channels[d.Channel]
		i := slices.IndexFunc(partners, func(p herald.Provider) bool { return p.Name() == d.Partner })
		if i < 0 || i+1 >= len(partners) {
			return sqlstore.Change{}, sqlstore.ErrNoChange
		}
		next := partners[i+1].Name()
		d.PinnedPartner, d.PossibleDuplicates = next, d.PossibleDuplicates+1
		d.RoundAttempts, d.RoundStartedAt = d.Attempts, s.clock.Now()
		d.NextAttemptAt = nil
		resent = true
		return sqlstore.Change{To: herald.StateQueued, Cause: fmt.Sprintf("resent through %s: %s never confirmed it", next, d.Partner),
			Enqueue: s.cfg.Enqueue}, nil
	})
	return resent, err
}

// every calls pass every interval (of real time: the background loops of
// herald serve) until ctx ends, logging each error as msg.
func every(ctx context.Context, interval time.Duration, log *slog.Logger, msg string, pass func(context.Context) error) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := pass(ctx); err != nil && ctx.Err() == nil {
				log.ErrorContext(ctx, msg, "error", err)
			}
		}
	}
}
