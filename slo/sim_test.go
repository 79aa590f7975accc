package slo_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald/slo"
)

const (
	day    = 24 * time.Hour
	period = 30 * day
)

// base is minute 0 of every scenario.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(minute int64) time.Time { return base.Add(time.Duration(minute) * time.Minute) }

// event is one attempt of a scenario: the k-th event of its hour, idx-th
// since minute 0 when the rate is constant, at ms milliseconds from minute 0.
type event struct {
	hour, k, idx, ms int64
}

// scenario describes a bucket simulation. Events are evenly spaced within
// each hour; each is judged at event time unless judge says otherwise;
// evaluation happens at every minute boundary from minute 0 to until.
type scenario struct {
	rate    func(hour int64) int64            // events per hour
	bad     func(e event) bool                // default: none
	judge   func(e event) (ms int64, ok bool) // default: at event time
	history int64                             // minutes before 0; default 30 d
	until   int64                             // last evaluation minute
	slo     slo.SLO
}

func constRate(r int64) func(int64) int64 { return func(int64) int64 { return r } }

// incident makes events with idx in [0, n) bad at ppm parts per million,
// evenly spread, the first event bad (cumulative bad after event i is
// ⌊i·ppm/10⁶⌋ + 1).
func incident(ppm, n int64) func(event) bool {
	return func(e event) bool {
		if e.idx < 0 || e.idx >= n {
			return false
		}
		if e.idx == 0 {
			return true
		}
		return e.idx*ppm/1_000_000 > (e.idx-1)*ppm/1_000_000
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

type result struct {
	t       *testing.T
	eng     *slo.Engine
	buckets *slo.Buckets
	trans   []slo.Transition
	budget  map[int64]float64      // budget remaining after each evaluation
	last    map[int64]slo.Snapshot // the first alert's snapshot at each evaluation
}

func run(t *testing.T, sc scenario) *result {
	t.Helper()
	if sc.history == 0 {
		sc.history = int64(period / time.Minute)
	}
	if sc.bad == nil {
		sc.bad = func(event) bool { return false }
	}
	if sc.slo.Target == 0 {
		sc.slo.Target = 0.999
	}
	if sc.slo.Period == 0 {
		sc.slo.Period = period
	}
	if sc.slo.Alerts == nil {
		sc.slo.Alerts = slo.DefaultAlerts(period)
	}
	from, to := -sc.history, sc.until+1
	counts := make([]slo.Counts, to-from)
	for h := floorDiv(from, 60); h*60 < to; h++ {
		r := sc.rate(h)
		for k := int64(0); k < r; k++ {
			ms := h*3_600_000 + k*3_600_000/r
			if ms < from*60_000 || ms >= to*60_000 {
				continue
			}
			e := event{hour: h, k: k, idx: h*r + k, ms: ms}
			jm := ms
			if sc.judge != nil {
				var ok bool
				if jm, ok = sc.judge(e); !ok {
					continue
				}
			}
			m := floorDiv(jm, 60_000)
			if m < from || m >= to {
				continue
			}
			if sc.bad(e) {
				counts[m-from].Bad++
			} else {
				counts[m-from].Good++
			}
		}
	}
	b := slo.NewBuckets(sc.slo.Period)
	eng, err := slo.NewEngine(sc.slo, b)
	require.NoError(t, err)
	add := func(m int64) {
		c := counts[m-from]
		b.AddCounts(at(m).Unix()/60, c.Good, c.Bad)
	}
	for m := from; m < 0; m++ {
		add(m)
	}
	res := &result{t: t, eng: eng, buckets: b, budget: map[int64]float64{}, last: map[int64]slo.Snapshot{}}
	for m := int64(0); m <= sc.until; m++ {
		res.trans = append(res.trans, eng.Evaluate(at(m))...)
		res.budget[m] = eng.BudgetRemaining(at(m))
		res.last[m], _ = eng.Last(sc.slo.Alerts[0].Name)
		add(m)
	}
	return res
}

func minuteOf(ts time.Time) int64 { return int64(ts.Sub(base) / time.Minute) }

// firings returns the minutes at which alert entered firing from ok or
// pending (a new episode), and the minutes at which it returned to ok.
func (r *result) episodes(alert string) (fired, resolved []int64) {
	for _, tr := range r.trans {
		if tr.Alert != alert {
			continue
		}
		switch {
		case tr.To == slo.StateFiring && (tr.From == slo.StateOK || tr.From == slo.StatePending):
			fired = append(fired, minuteOf(tr.At))
		case tr.To == slo.StateOK && tr.From != slo.StatePending:
			resolved = append(resolved, minuteOf(tr.At))
		}
	}
	return fired, resolved
}

func (r *result) firstFiring(alert string) int64 {
	f, _ := r.episodes(alert)
	if len(f) == 0 {
		return -1
	}
	return f[0]
}

func (r *result) transition(alert string, minute int64, to slo.State) slo.Transition {
	r.t.Helper()
	for _, tr := range r.trans {
		if tr.Alert == alert && minuteOf(tr.At) == minute && tr.To == to {
			return tr
		}
	}
	r.t.Fatalf("no transition of %s to %s at minute %d", alert, to, minute)
	return slo.Transition{}
}

// sum returns the counts in [at(m)−w, at(m)).
func (r *result) sum(m int64, w time.Duration) slo.Counts { return r.buckets.Sum(at(m), w) }
