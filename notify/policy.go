package notify

import (
	"math/rand/v2"
	"time"
)

// RetryPolicy decides when a delivery is tried again and when it gives up.
// The zero value is usable: every field has a documented default.
type RetryPolicy struct {
	// MaxAttempts is the most attempts one round of sending makes.
	// Defaults to 10.
	MaxAttempts int
	// MaxAge is how long one round of sending may last. Defaults to 24h.
	MaxAge time.Duration
	// Base is the backoff before the second attempt. Defaults to 2s.
	Base time.Duration
	// Cap is the longest backoff. Defaults to 30m.
	Cap time.Duration
	// Jitter returns a number in [0,1) that spreads the backoff. Defaults
	// to a random source; tests pass a constant.
	Jitter func() float64
}

// WithDefaults returns p with every unset field given its default.
func (p RetryPolicy) WithDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = 10
	}
	if p.MaxAge == 0 {
		p.MaxAge = 24 * time.Hour
	}
	if p.Base == 0 {
		p.Base = 2 * time.Second
	}
	if p.Cap == 0 {
		p.Cap = 30 * time.Minute
	}
	if p.Jitter == nil {
		p.Jitter = rand.Float64
	}
	return p
}

// Backoff is the wait after the n-th failed attempt of a round (n ≥ 1):
// Base·2^(n−1), capped at Cap, of which the upper half is jittered
// ("equal jitter": never less than half the exponential step).
func (p RetryPolicy) Backoff(n int) time.Duration {
	d := p.Cap
	if n < 40 {
		if step := p.Base << (n - 1); step > 0 && step < p.Cap {
			d = step
		}
	}
	half := d / 2
	return half + time.Duration(p.Jitter()*float64(d-half))
}

// Wait is the wait after the n-th failed attempt when the partner asked for
// retryAfter: the longer of the two, so a partner's named reset is always
// honoured.
func (p RetryPolicy) Wait(n int, retryAfter time.Duration) time.Duration {
	return max(p.Backoff(n), retryAfter)
}
