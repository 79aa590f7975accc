package slo

import "time"

// Counts is a number of good and bad judgements.
type Counts struct {
	Good, Bad int64
}

// Total returns Good + Bad.
func (c Counts) Total() int64 { return c.Good + c.Bad }

// Ratio returns Bad/Total and false when there is no data. It never
// returns NaN: an empty window is "no data", not good and not bad.
func (c Counts) Ratio() (float64, bool) {
	if c.Total() <= 0 {
		return 0, false
	}
	return float64(c.Bad) / float64(c.Total()), true
}

type slot struct {
	minute          int64 // unix minute this slot holds
	good, bad       int64
	cumGood, cumBad int64 // cumulative sums up to and including minute
}

// Buckets holds per-minute (good, bad) judgement counts in a ring that
// covers one SLO period, with running cumulative sums so that any window
// sum is O(1). Judgements are added at judgement time, so additions are
// normally to the newest minute; adding to an older minute still inside the
// ring costs O(minutes since). Data older than the ring is forgotten.
//
// The zero value is not usable; call NewBuckets. Buckets is not safe for
// concurrent use.
type Buckets struct {
	ring     []slot
	head     int64 // newest minute written; valid when started
	started  bool
	first    int64 // first minute that ever held a judgement
	lastData int64 // newest minute holding a judgement
	hasData  bool
	baseGood int64 // cumulative sums just before the oldest retained minute
	baseBad  int64
}

// NewBuckets returns an empty ring covering period (at least one minute).
func NewBuckets(period time.Duration) *Buckets {
	n := int(period / time.Minute)
	if n < 1 {
		n = 1
	}
	return &Buckets{ring: make([]slot, n)}
}

func unixMinute(t time.Time) int64 {
	s := t.Unix()
	m := s / 60
	if s%60 < 0 {
		m--
	}
	return m
}

func (b *Buckets) idx(minute int64) int {
	n := int64(len(b.ring))
	return int(((minute % n) + n) % n)
}

// advance moves the head to minute, carrying the cumulative sums forward.
// Every slot always holds a valid minute; base holds the sums just before
// the oldest retained minute.
func (b *Buckets) advance(minute int64) {
	n := int64(len(b.ring))
	if !b.started || minute-b.head > n {
		if b.started {
			last := b.ring[b.idx(b.head)]
			b.baseGood, b.baseBad = last.cumGood, last.cumBad
		}
		b.started = true
		b.head = minute - 1
		for m := b.head - n + 1; m <= b.head; m++ {
			b.ring[b.idx(m)] = slot{minute: m, cumGood: b.baseGood, cumBad: b.baseBad}
		}
	}
	for b.head < minute {
		prev := b.ring[b.idx(b.head)]
		b.head++
		s := &b.ring[b.idx(b.head)]
		b.baseGood, b.baseBad = s.cumGood, s.cumBad // the evicted minute
		*s = slot{minute: b.head, cumGood: prev.cumGood, cumBad: prev.cumBad}
	}
}

// Add records one judgement made at ts.
func (b *Buckets) Add(ts time.Time, good bool) {
	if good {
		b.AddCounts(unixMinute(ts), 1, 0)
	} else {
		b.AddCounts(unixMinute(ts), 0, 1)
	}
}

// AddCounts records good and bad judgements made during the given unix
// minute (seconds since the epoch / 60). Counts for a minute older than the
// ring are dropped.
func (b *Buckets) AddCounts(minute, good, bad int64) {
	if good == 0 && bad == 0 {
		return
	}
	if !b.started || minute > b.head {
		b.advance(minute)
	}
	if minute <= b.head-int64(len(b.ring)) {
		return
	}
	if !b.hasData || minute < b.first {
		b.first = minute
	}
	if !b.hasData || minute > b.lastData {
		b.lastData = minute
	}
	b.hasData = true
	s := &b.ring[b.idx(minute)]
	s.good += good
	s.bad += bad
	for m := minute; m <= b.head; m++ {
		c := &b.ring[b.idx(m)]
		c.cumGood += good
		c.cumBad += bad
	}
}

// cum returns cumulative sums up to and including minute.
func (b *Buckets) cum(minute int64) (int64, int64) {
	if !b.started {
		return 0, 0
	}
	if minute >= b.head {
		s := b.ring[b.idx(b.head)]
		return s.cumGood, s.cumBad
	}
	if minute <= b.head-int64(len(b.ring)) {
		return b.baseGood, b.baseBad
	}
	s := b.ring[b.idx(minute)]
	return s.cumGood, s.cumBad
}

// Sum returns the counts judged in [now−w, now), with now floored to the
// minute. It is O(1).
func (b *Buckets) Sum(now time.Time, w time.Duration) Counts {
	end := unixMinute(now)
	start := end - int64(w/time.Minute)
	g1, b1 := b.cum(end - 1)
	g0, b0 := b.cum(start - 1)
	return Counts{Good: g1 - g0, Bad: b1 - b0}
}

// First returns the start of the first minute that held a judgement, and
// false if none has.
func (b *Buckets) First() (time.Time, bool) {
	return time.Unix(b.first*60, 0).UTC(), b.hasData
}

// LastData returns the end of the newest minute holding a judgement, and
// false if none has.
func (b *Buckets) LastData() (time.Time, bool) {
	return time.Unix((b.lastData+1)*60, 0).UTC(), b.hasData
}
