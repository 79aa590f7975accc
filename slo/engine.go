package slo

import (
	"fmt"
	"math"
	"time"
)

// State is an alert's lifecycle state.
type State string

// Lifecycle states: ok → pending (For) → firing → resolving
// (KeepFiringFor) → ok.
const (
	StateOK        State = "ok"
	StatePending   State = "pending"
	StateFiring    State = "firing"
	StateResolving State = "resolving"
)

// Snapshot is what an alert saw at an evaluation.
type Snapshot struct {
	// Long and Short are the multiwindow counts; Window is the budget_rate
	// window or the exhaustion_time lookback.
	Long, Short, Window Counts
	// LongBurn, ShortBurn and WindowBurn are the burn rates of those
	// windows, 0 when a window is empty.
	LongBurn, ShortBurn, WindowBurn float64
	// Period holds the counts of the whole period.
	Period Counts
	// PeriodTotalEstimate is Σtotal(P) extrapolated during warm-up.
	PeriodTotalEstimate float64
	// BudgetRemaining is 1 − Σbad(P)/((1−S)·Σtotal(P)); it may be negative
	// and is 1 with no data.
	BudgetRemaining float64
	// NoData is true when the long window held no judgements, so the state
	// was left unchanged.
	NoData bool
	// Cond is the raw condition at this evaluation.
	Cond bool
}

// Transition is one change of an alert's state.
type Transition struct {
	SLO      string
	Alert    string
	Severity string
	From, To State
	At       time.Time
	// Inhibited is true for a ticket's transition while a page of the same
	// SLO is firing or resolving; it should not notify.
	Inhibited bool
	Snapshot  Snapshot
}

func (t Transition) String() string {
	return fmt.Sprintf("%s %s: %s → %s at %s", t.SLO, t.Alert, t.From, t.To, t.At.Format(time.RFC3339))
}

type alertState struct {
	last   Snapshot
	state  State
	since  time.Time // start of pending
	falses int
}

// Engine evaluates one SLO's alerts over its Buckets. Evaluate it once per
// minute. It is not safe for concurrent use; the caller serialises Add and
// Evaluate.
type Engine struct {
	slo     SLO
	buckets *Buckets
	states  []alertState
	noData  alertState
}

// NewEngine validates s and returns an Engine reading judgements from b,
// which must cover at least s.Period. Errors wrap ErrInvalid.
func NewEngine(s SLO, b *Buckets) (*Engine, error) {
	if _, err := Validate(s); err != nil {
		return nil, err
	}
	s = s.withDefaults()
	e := &Engine{slo: s, buckets: b, states: make([]alertState, len(s.Alerts)), noData: alertState{state: StateOK}}
	for i := range e.states {
		e.states[i].state = StateOK
	}
	return e, nil
}

// SLO returns the SLO with its defaults applied.
func (e *Engine) SLO() SLO { return e.slo }

// State returns the current state of the named alert (NoDataAlert
// included), and "" for an unknown name.
func (e *Engine) State(name string) State {
	if a := e.alert(name); a != nil {
		return a.state
	}
	return ""
}

// Progress returns where the named alert (NoDataAlert included) is in its
// lifecycle: its state, when pending began, and how many consecutive false
// evaluations it has had while firing. ok is false for an unknown name.
func (e *Engine) Progress(name string) (st State, since time.Time, falses int, ok bool) {
	a := e.alert(name)
	if a == nil {
		return "", time.Time{}, 0, false
	}
	return a.state, a.since, a.falses, true
}

// Restore sets where the named alert is in its lifecycle, as Progress
// reported it, so a restarted engine resumes instead of starting over. It
// reports false for an unknown name or state.
func (e *Engine) Restore(name string, st State, since time.Time, falses int) bool {
	a := e.alert(name)
	switch st {
	case StateOK, StatePending, StateFiring, StateResolving:
	default:
		return false
	}
	if a == nil {
		return false
	}
	a.state, a.since, a.falses = st, since, falses
	return true
}

func (e *Engine) alert(name string) *alertState {
	if name == NoDataAlert {
		return &e.noData
	}
	for i, a := range e.slo.Alerts {
		if a.Name == name {
			return &e.states[i]
		}
	}
	return nil
}

// Last returns the snapshot of the named alert at the latest evaluation
// (NoDataAlert included), and false for an unknown name.
func (e *Engine) Last(name string) (Snapshot, bool) {
	if a := e.alert(name); a != nil {
		return a.last, true
	}
	return Snapshot{}, false
}

func (e *Engine) burn(c Counts) float64 {
	r, ok := c.Ratio()
	if !ok {
		return 0
	}
	return r / (1 - e.slo.Target)
}

// BudgetRemaining returns 1 − Σbad(P)/((1−S)·Σtotal(P)) over the period
// ending at now. It may be negative, is 1 with no data, and is never NaN.
func (e *Engine) BudgetRemaining(now time.Time) float64 {
	p := e.buckets.Sum(now, e.slo.Period)
	if p.Total() == 0 {
		return 1
	}
	return 1 - float64(p.Bad)/((1-e.slo.Target)*float64(p.Total()))
}

// PeriodTotalEstimate returns Σtotal(P) / min(1, observedSpan/P): during
// warm-up the observed volume is extrapolated to a whole period.
func (e *Engine) PeriodTotalEstimate(now time.Time) float64 {
	total := float64(e.buckets.Sum(now, e.slo.Period).Total())
	first, ok := e.buckets.First()
	if !ok {
		return 0
	}
	span := now.Truncate(time.Minute).Sub(first)
	if span <= 0 || span >= e.slo.Period {
		return total
	}
	return total / (float64(span) / float64(e.slo.Period))
}

// spent returns bad as a fraction of the period's (estimated) budget, and
// false when there is no estimate.
func (e *Engine) spent(bad int64, est float64) (float64, bool) {
	if est <= 0 {
		return 0, false
	}
	return float64(bad) / ((1 - e.slo.Target) * est), true
}

// Evaluate evaluates every alert at now (floored to the minute; windows are
// [now−W, now)) and returns the transitions, pages first. Tickets change
// state as usual while a page fires, but their transitions are marked
// Inhibited.
func (e *Engine) Evaluate(now time.Time) []Transition {
	now = now.Truncate(time.Minute)
	s := e.slo
	period := e.buckets.Sum(now, s.Period)
	est := e.PeriodTotalEstimate(now)
	budget := e.BudgetRemaining(now)
	var out []Transition
	pageActive := false
	order := make([]int, 0, len(s.Alerts))
	for i, a := range s.Alerts {
		if a.Severity == SeverityPage {
			order = append(order, i)
		}
	}
	for i, a := range s.Alerts {
		if a.Severity != SeverityPage {
			order = append(order, i)
		}
	}
	for _, i := range order {
		a := s.Alerts[i]
		snap := Snapshot{Period: period, PeriodTotalEstimate: est, BudgetRemaining: budget}
		var cond bool
		switch a.Kind {
		case KindMultiwindow:
			thr := a.BurnRate * (1 - s.Target)
			snap.Long, snap.Short = e.buckets.Sum(now, a.Long), e.buckets.Sum(now, a.Short)
			snap.LongBurn, snap.ShortBurn = e.burn(snap.Long), e.burn(snap.Short)
			lr, ok := snap.Long.Ratio()
			if !ok {
				snap.NoData = true
				break
			}
			shortOK := true // an empty short window defers to the long one
			if sr, ok := snap.Short.Ratio(); ok {
				shortOK = sr > thr
			}
			cond = lr > thr && shortOK && snap.Long.Bad >= int64(a.MinBadEvents)
			if cond && s.LowTraffic.VolumeAware {
				f, ok := e.spent(snap.Long.Bad, est)
				cond = ok && f >= a.BudgetFraction
			}
		case KindBudgetRate:
			snap.Window = e.buckets.Sum(now, a.Window)
			snap.WindowBurn = e.burn(snap.Window)
			f, ok := e.spent(snap.Window.Bad, est)
			cond = ok && f >= a.DecreasePct/100
		case KindExhaustionTime:
			snap.Window = e.buckets.Sum(now, a.Horizon/4)
			snap.WindowBurn = e.burn(snap.Window)
			if f, ok := e.spent(period.Bad, est); ok {
				rem := 1 - f
				b := snap.WindowBurn
				// Strictly less than the horizon: at exact equality the
				// budget lasts the horizon.
				cond = rem <= 0 || (b > 0 && rem*float64(s.Period)/b < float64(a.Horizon))
			}
		}
		snap.Cond = cond
		st := &e.states[i]
		st.last = snap
		if !snap.NoData {
			if t, ok := step(st, cond, now, a.For, a.KeepFiringFor); ok {
				out = append(out, Transition{
					SLO: s.ID, Alert: a.Name, Severity: a.Severity, From: t[0], To: t[1], At: now,
					Inhibited: a.Severity != SeverityPage && pageActive, Snapshot: snap,
				})
			}
		}
		if a.Severity == SeverityPage && (st.state == StateFiring || st.state == StateResolving) {
			pageActive = true
		}
	}
	if t, ok := e.evaluateNoData(now, budget, period); ok {
		out = append(out, t)
	}
	return out
}

// noDataAfter returns the silence after which SLINoData fires.
func (e *Engine) noDataAfter() time.Duration {
	if d := e.slo.LowTraffic.NoDataAfter; d > 0 {
		return d
	}
	var fastest *BurnAlert
	for i, a := range e.slo.Alerts {
		if a.Kind == KindMultiwindow && (fastest == nil || a.BurnRate > fastest.BurnRate) {
			fastest = &e.slo.Alerts[i]
		}
	}
	if fastest == nil {
		return time.Hour
	}
	return time.Duration(fastest.BurnRate*(1-e.slo.Target)*float64(fastest.Long)) + fastest.For
}

// minExpectedSilent is how many judgements the 7-day average rate must
// predict for a silence before it counts as missing data (Poisson chance of
// a natural gap ≈ e^−10).
const minExpectedSilent = 10

// evaluateNoData raises SLINoData when no judgement arrived for
// noDataAfter although the 7-day average rate expected at least
// minExpectedSilent of them. It resolves when judgements return.
func (e *Engine) evaluateNoData(now time.Time, budget float64, period Counts) (Transition, bool) {
	cond := false
	last, ok := e.buckets.LastData()
	if ok {
		silence := now.Sub(last)
		week := 7 * 24 * time.Hour
		if week > e.slo.Period {
			week = e.slo.Period
		}
		rate := float64(e.buckets.Sum(now, week).Total()) / float64(week) // per ns
		cond = silence >= e.noDataAfter() && silence > 0 && rate*float64(silence) >= minExpectedSilent
	}
	snap := Snapshot{Period: period, BudgetRemaining: budget, NoData: cond, Cond: cond}
	e.noData.last = snap
	t, ok := step(&e.noData, cond, now, 0, 0)
	if !ok {
		return Transition{}, false
	}
	return Transition{
		SLO: e.slo.ID, Alert: NoDataAlert, Severity: SeverityTicket, From: t[0], To: t[1], At: now,
		Snapshot: snap,
	}, true
}

// step advances one alert's lifecycle and reports the transition, if any.
func step(st *alertState, cond bool, now time.Time, forDur, keep time.Duration) ([2]State, bool) {
	from := st.state
	keepEvals := int(math.Ceil(float64(keep) / float64(time.Minute)))
	if keepEvals < 1 {
		keepEvals = 1
	}
	switch st.state {
	case StateOK:
		if cond {
			if forDur <= 0 {
				st.state = StateFiring
			} else {
				st.state, st.since = StatePending, now
			}
		}
	case StatePending:
		if !cond {
			st.state = StateOK
		} else if now.Sub(st.since) >= forDur {
			st.state = StateFiring
		}
	case StateFiring, StateResolving:
		if cond {
			st.state, st.falses = StateFiring, 0
			break
		}
		st.falses++
		if st.falses >= keepEvals {
			st.state, st.falses = StateOK, 0
		} else {
			st.state = StateResolving
		}
	}
	return [2]State{from, st.state}, from != st.state
}
