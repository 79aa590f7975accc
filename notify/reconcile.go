package notify

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"time"

	"herald/clock"
)

// ReconcileStore is what the reconciler needs of the state store;
// *sqlstore.DB implements it.
type ReconcileStore interface {
	Unconfirm(ctx context.Context, partner string, within time.Duration, now time.Time) ([]string, error)
}

// ReconcilerConfig configures a Reconciler.
type ReconcilerConfig struct {
	Store ReconcileStore
	// Deadlines is each partner's confirmation deadline (T_final): an
	// accepted delivery with no final event that long after acceptance
	// becomes unconfirmed. A partner without one is not reconciled.
	Deadlines map[string]time.Duration
	// Resend, when set, is called for each delivery made unconfirmed:
	// Service.Resend sends it again through the channel's next partner.
	Resend func(ctx context.Context, deliveryID string) (bool, error)
	// Clock defaults to clock.Real().
	Clock  clock.Clock
	Logger *slog.Logger
}

// Reconciler closes the loop on accepted deliveries: it turns an accepted
// delivery that no final event confirmed by its partner's deadline into
// unconfirmed — a failure, not a silent success.
type Reconciler struct {
	cfg ReconcilerConfig
}

// NewReconciler returns a Reconciler for cfg.
func NewReconciler(cfg ReconcilerConfig) (*Reconciler, error) {
	if cfg.Store == nil {
		return nil, errors.New("notify: reconciler: Store is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{cfg: cfg}, nil
}

// Tick runs one pass at now and returns the deliveries it made
// unconfirmed.
func (r *Reconciler) Tick(ctx context.Context, now time.Time) ([]string, error) {
	partners := make([]string, 0, len(r.cfg.Deadlines))
	for p := range r.cfg.Deadlines {
		partners = append(partners, p)
	}
	sort.Strings(partners)
	var all []string
	for _, p := range partners {
		ids, err := r.cfg.Store.Unconfirm(ctx, p, r.cfg.Deadlines[p], now)
		all = append(all, ids...)
		if err != nil {
			return all, err
		}
		for _, id := range ids {
			r.cfg.Logger.WarnContext(ctx, "delivery unconfirmed: the partner never reported its fate",
				"delivery_id", id, "partner", p, "confirm_within", r.cfg.Deadlines[p].String())
			if r.cfg.Resend == nil {
				continue
			}
			resent, err := r.cfg.Resend(ctx, id)
			if err != nil {
				return all, err
			}
			if resent {
				r.cfg.Logger.InfoContext(ctx, "unconfirmed delivery resent through the next partner", "delivery_id", id)
			}
		}
	}
	return all, nil
}

// Run ticks every interval until ctx ends.
func (r *Reconciler) Run(ctx context.Context, interval time.Duration) {
	every(ctx, interval, r.cfg.Logger, "reconciler pass failed", func(ctx context.Context) error {
		_, err := r.Tick(ctx, r.cfg.Clock.Now())
		return err
	})
}
