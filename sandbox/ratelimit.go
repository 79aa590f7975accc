package sandbox

import (
	"math"
	"sync"
	"time"

	"herald/clock"
)

// limiter keeps a token bucket per partner and credential.
type limiter struct {
	clock clock.Clock

	mu      sync.Mutex
	rates   map[Partner]Rate
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(c clock.Clock, rates map[Partner]Rate) *limiter {
	l := &limiter{clock: c, rates: map[Partner]Rate{}, buckets: map[string]*bucket{}}
	for p, r := range rates {
		l.rates[p] = r
	}
	return l
}

func (l *limiter) set(p Partner, r Rate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.PerSecond == 0 {
		delete(l.rates, p)
	} else {
		l.rates[p] = r
	}
	for k := range l.buckets {
		delete(l.buckets, k)
	}
}

func (l *limiter) all() map[Partner]Rate {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[Partner]Rate{}
	for p, r := range l.rates {
		out[p] = r
	}
	return out
}

// verdict is the outcome of one take.
type verdict struct {
	ok        bool
	limit     int       // requests per second, rounded up
	remaining int       // whole tokens left
	reset     time.Time // when a token is next available
}

// take spends one token of partner p's bucket for credential cred.
func (l *limiter) take(p Partner, cred string) verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.rates[p]
	if !ok || r.PerSecond <= 0 {
		return verdict{ok: true}
	}
	burst := float64(max(r.Burst, 1))
	now := l.clock.Now()
	key := string(p) + "\x00" + cred
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(burst, b.tokens+now.Sub(b.last).Seconds()*r.PerSecond)
	b.last = now
	v := verdict{limit: int(math.Ceil(r.PerSecond))}
	if b.tokens >= 1 {
		b.tokens--
		v.ok = true
	}
	v.remaining = int(b.tokens)
	wait := time.Duration((1 - math.Min(b.tokens, 1)) / r.PerSecond * float64(time.Second))
	v.reset = now.Add(wait)
	return v
}
