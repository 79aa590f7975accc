package notify

import (
	"sync"
	"time"

	"herald/clock"
)

// BreakerConfig configures the circuit breaker kept for each partner.
type BreakerConfig struct {
	// Failures is how many failures in a row open the breaker. Defaults to 5.
	Failures int
	// Cooldown is how long an open breaker refuses before it lets one
	// probe through. Defaults to 30s.
	Cooldown time.Duration
}

func (c BreakerConfig) withDefaults() BreakerConfig {
	if c.Failures == 0 {
		c.Failures = 5
	}
	if c.Cooldown == 0 {
		c.Cooldown = 30 * time.Second
	}
	return c
}

// BreakerState is a breaker's state, as a metric label and in logs.
type BreakerState string

// The breaker states.
const (
	BreakerClosed   BreakerState = "closed"
	BreakerOpen     BreakerState = "open"
	BreakerHalfOpen BreakerState = "half_open"
)

// breaker keeps one partner from being hammered while it is down: after
// Failures failures in a row (or one partner-side rejection: a bad key or
// an exhausted quota does not heal in seconds) it opens for Cooldown, then
// lets a single probe through; the probe's success closes it, its failure
// opens it again. Safe for concurrent use.
type breaker struct {
	cfg   BreakerConfig
	clock clock.Clock

	mu        sync.Mutex
	failures  int
	openUntil time.Time
	probing   bool
}

func newBreaker(cfg BreakerConfig, c clock.Clock) *breaker {
	return &breaker{cfg: cfg.withDefaults(), clock: c}
}

// allow reports whether a request may go to the partner now; when not, it
// returns the time it may.
func (b *breaker) allow() (bool, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	switch {
	case b.openUntil.IsZero():
		return true, time.Time{}
	case now.Before(b.openUntil):
		return false, b.openUntil
	case b.probing:
		return false, now.Add(b.cfg.Cooldown)
	}
	b.probing = true // half open: this caller is the probe
	return true, time.Time{}
}

func (b *breaker) state() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.openUntil.IsZero():
		return BreakerClosed
	case b.clock.Now().Before(b.openUntil):
		return BreakerOpen
	}
	return BreakerHalfOpen
}

// success records a request the partner handled (whatever it said of the
// message itself).
func (b *breaker) success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures, b.openUntil, b.probing = 0, time.Time{}, false
}

// failure records a failure of the partner; trip opens the breaker at once.
func (b *breaker) failure(trip bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	b.probing = false
	if trip || b.failures >= b.cfg.Failures || !b.openUntil.IsZero() {
		b.openUntil = b.clock.Now().Add(b.cfg.Cooldown)
	}
}
