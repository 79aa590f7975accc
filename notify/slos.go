package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"herald"
	"herald/clock"
	"herald/slo"
	"herald/sqlstore"
)

// SLOStore is what SLOs need of the state store; *sqlstore.DB implements
// it.
type SLOStore interface {
	ListSLOs(ctx context.Context, dataset string) ([]herald.SLO, error)
	SaveSLO(ctx context.Context, o herald.SLO, alerts []herald.BurnAlert) (herald.SLO, []herald.BurnAlert, error)
	ListBurnAlerts(ctx context.Context, dataset, sloID string) ([]herald.BurnAlert, error)
	AlertProgress(ctx context.Context, sloID string) (map[string]sqlstore.AlertProgress, error)
	SaveAlertProgress(ctx context.Context, progress map[string]sqlstore.AlertProgress, ev *herald.BurnAlertEvent, n *herald.Notification, enqueue sqlstore.EnqueueFunc) error
	JudgeOverdue(ctx context.Context, channel string, deadline time.Duration, now time.Time) (int64, error)
	JudgeAccepted(ctx context.Context, channel string, partners []string, now time.Time) (int64, error)
	DeliveryJudgements(ctx context.Context, from, to time.Time) ([]herald.DeliveryJudgements, error)
	LatencyJudgements(ctx context.Context, channel string, within time.Duration, from, to time.Time) ([]herald.DeliveryJudgements, error)
	TopFailures(ctx context.Context, channel string, from, to time.Time, limit int) ([]herald.FailureCount, error)
	GetDestination(ctx context.Context, id string) (herald.Destination, error)
}

// SLICounter counts an SLI's judgements per minute of event time;
// herald.EventStore implements it.
type SLICounter interface {
	SLICounts(ctx context.Context, dataset, alias string, start, end time.Time) ([]herald.SLIMinute, error)
}

// Fallback is where the burn alerts of the delivery SLOs go: a path that
// must not be the one it watches.
type Fallback struct {
	// Channel is email, webhook, slack or pagerduty.
	Channel string
	// Target is the email address, or for the other channels the id of
	// the recipient (destination) to notify.
	Target string
	// Partner pins an email fallback to one partner; required for email.
	Partner string
}

func (f Fallback) String() string {
	if f.Channel == "email" {
		return "email via " + f.Partner
	}
	return f.Channel
}

// Channels herald delivers through, each with a built-in delivery SLO.
var Channels = []string{"email", "webhook", "slack", "pagerduty"}

// DeliverySLOConfig configures the built-in delivery SLOs: for each
// channel, one over availability (SLIDelivered) and one over latency
// (SLIDeliveredWithin).
type DeliverySLOConfig struct {
	// Channels are the channels with delivery SLOs. Defaults to Channels.
	Channels []string
	// TargetPerMillion is the availability target. Defaults to 999000.
	TargetPerMillion int
	// LatencyTargetPerMillion is the latency target. Defaults to 990000.
	LatencyTargetPerMillion int
	// PeriodDays defaults to 30.
	PeriodDays int
	// FinalWithin is, per channel, how long after its creation a delivery
	// must reach a final state; one that has not is judged bad then.
	// Defaults to 1h for email and 15m for the others.
	FinalWithin map[string]time.Duration
	// LatencyWithin is, per channel, the latency SLI's threshold.
	// Defaults to 5m for email and 1m for the others; it must be below
	// FinalWithin.
	LatencyWithin map[string]time.Duration
	// EmailPartners are the partners of the email channel, in failover
	// order: an email fallback must use another.
	EmailPartners []string
	// Unconfirmed are the email partners with no event webhook: their
	// acceptance is the most herald can know, so it is judged good. The
	// other channels' acceptance (a receiver's 2xx) is their confirmation.
	Unconfirmed []string
	// Fallback lists where their burn alerts go: each SLO's go to the
	// first entry that does not travel the channel it watches.
	Fallback []Fallback
}

func (c DeliverySLOConfig) withDefaults() DeliverySLOConfig {
	if c.Channels == nil {
		c.Channels = Channels
	}
	c.TargetPerMillion = cmp.Or(c.TargetPerMillion, 999000)
	c.LatencyTargetPerMillion = cmp.Or(c.LatencyTargetPerMillion, 990000)
	c.PeriodDays = cmp.Or(c.PeriodDays, 30)
	final, latency := map[string]time.Duration{}, map[string]time.Duration{}
	for _, ch := range c.Channels {
		final[ch] = cmp.Or(c.FinalWithin[ch], map[bool]time.Duration{true: time.Hour, false: 15 * time.Minute}[ch == "email"])
		latency[ch] = cmp.Or(c.LatencyWithin[ch], map[bool]time.Duration{true: 5 * time.Minute, false: time.Minute}[ch == "email"])
	}
	c.FinalWithin, c.LatencyWithin = final, latency
	return c
}

// Validate refuses a configuration whose burn alerts would travel the path
// that is failing: every channel with a delivery SLO needs a fallback on
// another channel, or (for email) through a partner outside the email
// channel. With no fallback at all it returns nil; herald then warns that
// the delivery SLOs' alerts reach no one.
func (c DeliverySLOConfig) Validate() error {
	c = c.withDefaults()
	for _, ch := range c.Channels {
		if !slices.Contains(Channels, ch) {
			return fmt.Errorf("slos.delivery.channels: unknown channel %q (one of %s)", ch, strings.Join(Channels, ", "))
		}
		if c.LatencyWithin[ch] >= c.FinalWithin[ch] {
			return fmt.Errorf("slos.delivery: %s latency threshold %s must be below its deadline %s", ch, c.LatencyWithin[ch], c.FinalWithin[ch])
		}
	}
	for i, f := range c.Fallback {
		if !slices.Contains(Channels, f.Channel) {
			return fmt.Errorf("slos.fallback[%d]: unknown channel %q", i, f.Channel)
		}
		if f.Channel == "email" && f.Partner == "" {
			return fmt.Errorf("slos.fallback[%d]: an email fallback must name its partner, one outside channels.email", i)
		}
	}
	if len(c.Fallback) == 0 {
		return nil
	}
	for _, ch := range c.Channels {
		if _, ok := c.fallbackFor(ch); !ok {
			var paths []string
			for _, f := range c.Fallback {
				paths = append(paths, f.String())
			}
			return fmt.Errorf("slos.fallback: the %s delivery SLO's alerts would travel the path it watches (%s); add a fallback through another channel%s",
				ch, strings.Join(paths, ", "), map[bool]string{true: " or an email partner outside channels.email", false: ""}[ch == "email"])
		}
	}
	return nil
}

// fallbackFor returns the first fallback that does not travel channel.
func (c DeliverySLOConfig) fallbackFor(channel string) (Fallback, bool) {
	for _, f := range c.Fallback {
		if f.Channel != channel || (channel == "email" && !slices.Contains(c.EmailPartners, f.Partner)) {
			return f, true
		}
	}
	return Fallback{}, false
}

// SLOsConfig configures SLOs.
type SLOsConfig struct {
	// Store, Events and Enqueue are required.
	Store   SLOStore
	Events  SLICounter
	Enqueue sqlstore.EnqueueFunc
	// Delivery configures the built-in delivery SLOs.
	Delivery DeliverySLOConfig
	// IngestLag is how long after a minute ends its events are counted
	// for SLOs over events: events arriving later than that for their
	// timestamp are not counted. Defaults to 1m.
	IngestLag time.Duration
	// BaseURL is herald's address as users reach it, for links. Defaults
	// to none.
	BaseURL string
	// Clock defaults to clock.Real().
	Clock  clock.Clock
	Logger *slog.Logger
}

// SLOs runs every SLO's engine: once a minute it judges overdue
// deliveries, loads each SLO's new judgements into its per-minute buckets,
// evaluates its burn alerts, and records every state change in the same
// transaction as the notification it owes. Safe for concurrent use.
type SLOs struct {
	cfg  SLOsConfig
	log  *slog.Logger
	mu   sync.Mutex
	runs map[string]*sloRun
	// lastJudged is the last range of availability judgements read.
	lastJudged struct {
		from, to time.Time
		list     []herald.DeliveryJudgements
	}
	// lastTick is when Tick last finished without error.
	lastTick time.Time
}

// sloRun is one SLO's engine and what it has read.
type sloRun struct {
	slo    herald.SLO
	alerts []herald.BurnAlert
	key    string // changes when the SLO or its alerts do
	engine *slo.Engine
	bkt    *slo.Buckets
	// excluded counts, for availability delivery SLOs, judged (good) and
	// excluded (bad) deliveries: the guardrail on exclusions reads it.
	excluded *slo.Buckets
	drift    herald.AlertState
	// saved is each alert's lifecycle as last stored.
	saved    map[string]sqlstore.AlertProgress
	loadedTo time.Time
	evalAt   time.Time
}

// NewSLOs returns the SLO engine runner. It validates the delivery SLOs'
// configuration.
func NewSLOs(cfg SLOsConfig) (*SLOs, error) {
	if cfg.Store == nil || cfg.Events == nil || cfg.Enqueue == nil {
		return nil, errors.New("notify: slos: Store, Events and Enqueue are required")
	}
	if err := cfg.Delivery.Validate(); err != nil {
		return nil, err
	}
	cfg.Delivery = cfg.Delivery.withDefaults()
	cfg.IngestLag = cmp.Or(cfg.IngestLag, time.Minute)
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	log := cmp.Or(cfg.Logger, slog.Default())
	return &SLOs{cfg: cfg, log: log, runs: map[string]*sloRun{}}, nil
}

// EnsureDeliverySLOs creates the built-in delivery SLOs that do not exist
// yet, each with the default burn alerts. It changes none that exists, so
// an operator's edits survive restarts.
func (s *SLOs) EnsureDeliverySLOs(ctx context.Context) error {
	have, err := s.cfg.Store.ListSLOs(ctx, herald.DeliveryDataset)
	if err != nil {
		return err
	}
	d := s.cfg.Delivery
	for _, ch := range d.Channels {
		for _, want := range []herald.SLO{
			{Name: "Delivery: " + ch, SLI: herald.SLIRef{Alias: herald.SLIDelivered}, TargetPerMillion: d.TargetPerMillion,
				Description: fmt.Sprintf("%s deliveries confirmed delivered; failed, dropped, unconfirmed or not final within %s count as bad, recipient bounces are excluded", ch, d.FinalWithin[ch])},
			{Name: "Delivery latency: " + ch, SLI: herald.SLIRef{Alias: herald.SLIDeliveredWithin}, TargetPerMillion: d.LatencyTargetPerMillion,
				Description: fmt.Sprintf("%s deliveries confirmed delivered within %s of their creation", ch, d.LatencyWithin[ch])},
		} {
			if slices.ContainsFunc(have, func(o herald.SLO) bool { return o.Channel == ch && o.SLI == want.SLI }) {
				continue
			}
			want.Dataset, want.Channel, want.TimePeriodDays = herald.DeliveryDataset, ch, d.PeriodDays
			o, err := want.Normalize()
			if err != nil {
				return err
			}
			alerts, _ := slo.DefaultBurnAlerts(o)
			for i := range alerts {
				if alerts[i], err = alerts[i].Normalize(o.Period(), false); err != nil {
					return err
				}
			}
			if _, _, err := s.cfg.Store.SaveSLO(ctx, o, alerts); err != nil {
				return fmt.Errorf("notify: create delivery SLO %s: %w", want.Name, err)
			}
			s.log.Info("created delivery SLO", "name", want.Name, "target_per_million", o.TargetPerMillion)
		}
	}
	return nil
}

// CheckAlert refuses a burn alert the engine could never fire (a burn rate
// the SLO's target makes unreachable) and, on a built-in delivery SLO, a
// recipient that travels the channel the SLO watches. Errors are EINVALID.
func (s *SLOs) CheckAlert(ctx context.Context, o herald.SLO, a herald.BurnAlert) error {
	if err := slo.Check(o, []herald.BurnAlert{a}); err != nil {
		return err
	}
	if !o.BuiltIn() {
		return nil
	}
	for i, r := range a.Recipients {
		typ := r.Type
		if r.ID != "" {
			d, err := s.cfg.Store.GetDestination(ctx, r.ID)
			if err != nil {
				continue // the store refuses an unknown id with its own message
			}
			typ = d.Type
		}
		if typ == o.Channel {
			return herald.Invalid(fmt.Sprintf("recipients[%d]", i), "invalid",
				"this SLO watches the %s channel: its alerts must travel another one, or the alert fails with what it reports", o.Channel)
		}
	}
	return nil
}

// Tick judges overdue deliveries and evaluates every SLO at now. An SLO
// that fails is logged and the others still run; the first error is
// returned.
func (s *SLOs) Tick(ctx context.Context, now time.Time) error {
	now = now.UTC()
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for _, ch := range s.cfg.Delivery.Channels {
		var partners []string // nil: every partner of the channel
		if ch == "email" {
			partners = append([]string{}, s.cfg.Delivery.Unconfirmed...)
		}
		if _, err := s.cfg.Store.JudgeAccepted(ctx, ch, partners, now); err != nil {
			keep(err)
		}
		if _, err := s.cfg.Store.JudgeOverdue(ctx, ch, s.cfg.Delivery.FinalWithin[ch], now); err != nil {
			keep(err)
		}
	}
	slos, err := s.cfg.Store.ListSLOs(ctx, "")
	if err != nil {
		return err
	}
	alerts, err := s.cfg.Store.ListBurnAlerts(ctx, "", "")
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, o := range slos {
		seen[o.ID] = true
		var mine []herald.BurnAlert
		for _, a := range alerts {
			if a.SLO.ID == o.ID {
				mine = append(mine, a)
			}
		}
		run, err := s.sync(ctx, o, mine, now)
		if err == nil {
			err = s.evaluate(ctx, run)
		}
		if err != nil {
			s.log.Error("SLO evaluation failed", "slo_id", o.ID, "name", o.Name, "error", err)
			keep(fmt.Errorf("notify: slo %s: %w", o.ID, err))
		}
	}
	for id := range s.runs {
		if !seen[id] {
			delete(s.runs, id)
		}
	}
	if first == nil {
		s.lastTick = now
	}
	return first
}

// end is the minute up to which an SLO's judgements are complete at now:
// deliveries are judged as their state changes, events only once
// IngestLag has passed.
func (s *SLOs) end(o herald.SLO, now time.Time) time.Time {
	if o.BuiltIn() {
		return now.Truncate(time.Minute)
	}
	return now.Add(-s.cfg.IngestLag).Truncate(time.Minute)
}

// sync returns o's run, rebuilt if o or its alerts changed, with its
// judgements loaded up to its end at now. Called with s.mu held.
func (s *SLOs) sync(ctx context.Context, o herald.SLO, alerts []herald.BurnAlert, now time.Time) (*sloRun, error) {
	key := o.UpdatedAt.String()
	for _, a := range alerts {
		key += "|" + a.ID + "@" + a.UpdatedAt.String()
	}
	end := s.end(o, now)
	run := s.runs[o.ID]
	if run == nil || run.key != key {
		spec := slo.FromHerald(o, alerts)
		fresh := run == nil || run.slo.Period() != o.Period() || run.slo.SLI != o.SLI
		if fresh {
			run = &sloRun{bkt: slo.NewBuckets(o.Period()), loadedTo: end.Add(-o.Period()), drift: herald.AlertOK}
			if o.BuiltIn() && o.SLI.Alias == herald.SLIDelivered {
				run.excluded = slo.NewBuckets(7 * 24 * time.Hour)
			}
		}
		engine, err := slo.NewEngine(spec, run.bkt)
		if err != nil {
			return nil, err
		}
		progress, err := s.cfg.Store.AlertProgress(ctx, o.ID)
		if err != nil {
			return nil, err
		}
		for id, p := range progress {
			engine.Restore(id, slo.State(p.State), p.Since, p.Falses)
		}
		run.saved = progress
		run.slo, run.alerts, run.key, run.engine = o, alerts, key, engine
		s.runs[o.ID] = run
	}
	if end.After(run.loadedTo) {
		if err := s.load(ctx, run, run.loadedTo, end); err != nil {
			return nil, err
		}
		run.loadedTo = end
	}
	return run, nil
}

// load adds the judgements of [from, to) to run's buckets.
func (s *SLOs) load(ctx context.Context, run *sloRun, from, to time.Time) error {
	o := run.slo
	minute := func(t time.Time) int64 { return t.Unix() / 60 }
	switch {
	case !o.BuiltIn():
		counts, err := s.cfg.Events.SLICounts(ctx, o.Dataset, o.SLI.Alias, from, to)
		if err != nil {
			return err
		}
		for _, c := range counts {
			run.bkt.AddCounts(minute(c.Minute), c.Good, c.Bad)
		}
	case o.SLI.Alias == herald.SLIDelivered:
		js, err := s.deliveryJudgements(ctx, from, to)
		if err != nil {
			return err
		}
		for _, j := range js {
			if j.Channel == o.Channel {
				run.bkt.AddCounts(minute(j.Minute), j.Good, j.Bad)
				run.excluded.AddCounts(minute(j.Minute), j.Good+j.Bad, j.Excluded)
			}
		}
	case o.SLI.Alias == herald.SLIDeliveredWithin:
		js, err := inDays(from, to, func(from, to time.Time) ([]herald.DeliveryJudgements, error) {
			return s.cfg.Store.LatencyJudgements(ctx, o.Channel, s.cfg.Delivery.LatencyWithin[o.Channel], from, to)
		})
		if err != nil {
			return err
		}
		for _, j := range js {
			run.bkt.AddCounts(minute(j.Minute), j.Good, j.Bad)
		}
	default:
		return fmt.Errorf("unknown delivery SLI %q", o.SLI.Alias)
	}
	return nil
}

// deliveryJudgements returns the availability judgements of [from, to),
// every channel's: the channels' SLOs read the same range at each tick, so
// the last range read is kept for the next SLO. Called with s.mu held.
func (s *SLOs) deliveryJudgements(ctx context.Context, from, to time.Time) ([]herald.DeliveryJudgements, error) {
	if s.lastJudged.from.Equal(from) && s.lastJudged.to.Equal(to) {
		return s.lastJudged.list, nil
	}
	js, err := inDays(from, to, func(from, to time.Time) ([]herald.DeliveryJudgements, error) {
		return s.cfg.Store.DeliveryJudgements(ctx, from, to)
	})
	if err != nil {
		return nil, err
	}
	s.lastJudged.from, s.lastJudged.to, s.lastJudged.list = from, to, js
	return js, nil
}

// inDays reads [from, to) a day at a time: loading a whole period at
// start then holds the state store's one connection, which the delivery
// queue shares, for a moment at a time rather than for seconds.
func inDays(from, to time.Time, read func(from, to time.Time) ([]herald.DeliveryJudgements, error)) ([]herald.DeliveryJudgements, error) {
	var out []herald.DeliveryJudgements
	for t := from; t.Before(to); t = t.Add(24 * time.Hour) {
		end := t.Add(24 * time.Hour)
		if end.After(to) {
			end = to
		}
		js, err := read(t, end)
		if err != nil {
			return nil, err
		}
		out = append(out, js...)
	}
	return out, nil
}

// evaluate runs run's engine once per minute and records what changed.
// Called with s.mu held.
func (s *SLOs) evaluate(ctx context.Context, run *sloRun) error {
	at := run.loadedTo
	if !at.After(run.evalAt) {
		return nil
	}
	run.evalAt = at
	progress := func(ids ...string) map[string]sqlstore.AlertProgress {
		out := map[string]sqlstore.AlertProgress{}
		for _, id := range ids {
			if st, since, falses, ok := run.engine.Progress(id); ok && id != slo.NoDataAlert {
				out[id] = sqlstore.AlertProgress{State: herald.AlertState(st), Since: since, Falses: falses}
			}
		}
		return out
	}
	var ids []string
	for _, a := range run.alerts {
		ids = append(ids, a.ID)
	}
	for _, t := range run.engine.Evaluate(at) {
		if err := s.record(ctx, run, t, progress(t.Alert)); err != nil {
			return err
		}
	}
	if err := s.guardExclusions(ctx, run, at); err != nil {
		return err
	}
	// Only what moved without a transition (a pending alert's wait, a
	// resolving one's count) is left to store; most minutes nothing is.
	changed := map[string]sqlstore.AlertProgress{}
	for id, p := range progress(ids...) {
		if saved, ok := run.saved[id]; !ok || saved.State != p.State || !saved.Since.Equal(p.Since) || saved.Falses != p.Falses {
			changed[id] = p
		}
	}
	if len(changed) == 0 {
		return nil
	}
	if err := s.cfg.Store.SaveAlertProgress(ctx, changed, nil, nil, nil); err != nil {
		return err
	}
	maps.Copy(run.saved, changed)
	return nil
}

// exclusionDrift is the guardrail on a delivery SLO's exclusions: a
// ticket when the excluded share of the last 6 hours is 3× its 7-day
// baseline, since a wrong-address bug would hide among bounces.
const exclusionDrift = "ExclusionDrift"

func (s *SLOs) guardExclusions(ctx context.Context, run *sloRun, at time.Time) error {
	if run.excluded == nil {
		return nil
	}
	week, recent := run.excluded.Sum(at, 7*24*time.Hour), run.excluded.Sum(at, 6*time.Hour)
	base := slo.Counts{Good: week.Good - recent.Good, Bad: week.Bad - recent.Bad}
	drift := base.Total() > 0 && recent.Bad >= 3 &&
		slo.ExclusionDrift(base.Bad, base.Total(), recent.Bad, recent.Total(), 3)
	to := map[bool]herald.AlertState{true: herald.AlertFiring, false: herald.AlertOK}[drift]
	if to == run.drift {
		return nil
	}
	t := slo.Transition{SLO: run.slo.ID, Alert: exclusionDrift, Severity: slo.SeverityTicket,
		From: slo.State(run.drift), To: slo.State(to), At: at,
		Snapshot: slo.Snapshot{Window: recent, Long: base, BudgetRemaining: run.engine.BudgetRemaining(at)}}
	run.drift = to
	return s.record(ctx, run, t, nil)
}

// record stores one transition with its notification, when it owes one:
// on firing, and on resolving back to ok, unless a page of the same SLO
// holds a ticket back.
func (s *SLOs) record(ctx context.Context, run *sloRun, t slo.Transition, progress map[string]sqlstore.AlertProgress) error {
	ev := &herald.BurnAlertEvent{SLOID: run.slo.ID, BurnAlertID: t.Alert, From: string(t.From), To: string(t.To), At: t.At,
		Inhibited: t.Inhibited, BudgetRemaining: t.Snapshot.BudgetRemaining, Good: t.Snapshot.Period.Good, Bad: t.Snapshot.Period.Bad}
	alert, windows := s.describe(run, t)
	ev.BurnRates = map[string]float64{}
	for _, w := range windows {
		ev.BurnRates[w.Window] = w.BurnRate
	}
	fired := t.To == slo.StateFiring && (t.From == slo.StateOK || t.From == slo.StatePending)
	resolved := t.To == slo.StateOK && (t.From == slo.StateFiring || t.From == slo.StateResolving)
	var n *herald.Notification
	if (fired || resolved) && !t.Inhibited {
		var err error
		if n, err = s.notification(ctx, run, t, alert, windows, fired); err != nil {
			return err
		}
	}
	s.log.Warn("burn alert changed", "slo_id", run.slo.ID, "slo", run.slo.Name, "alert", t.Alert, "severity", t.Severity,
		"from", t.From, "to", t.To, "inhibited", t.Inhibited, "notified", n != nil, "budget_remaining", t.Snapshot.BudgetRemaining)
	if err := s.cfg.Store.SaveAlertProgress(ctx, progress, ev, n, s.cfg.Enqueue); err != nil {
		return err
	}
	maps.Copy(run.saved, progress)
	return nil
}

// describe returns the burn alert a transition is about (zero for the
// no-data and exclusion alerts) and the windows it read.
func (s *SLOs) describe(run *sloRun, t slo.Transition) (herald.BurnAlert, []herald.WindowBurn) {
	snap := t.Snapshot
	wb := func(w time.Duration, c slo.Counts, burn, thr float64) herald.WindowBurn {
		return herald.WindowBurn{Window: slo.Window(w), BurnRate: round(burn), Threshold: thr, Good: c.Good, Bad: c.Bad}
	}
	target := run.slo.Target()
	burn := func(c slo.Counts) float64 {
		r, _ := c.Ratio()
		return slo.Burn(r, target)
	}
	for _, a := range run.alerts {
		if a.ID != t.Alert {
			continue
		}
		switch a.AlertType {
		case herald.AlertMultiwindow:
			return a, []herald.WindowBurn{
				wb(time.Duration(a.LongWindowMinutes)*time.Minute, snap.Long, snap.LongBurn, a.BurnRate),
				wb(time.Duration(a.ShortWindowMinutes)*time.Minute, snap.Short, snap.ShortBurn, a.BurnRate),
			}
		case herald.AlertBudgetRate:
			return a, []herald.WindowBurn{wb(time.Duration(*a.BudgetRateWindowMinutes)*time.Minute, snap.Window, snap.WindowBurn, 0)}
		case herald.AlertExhaustionTime:
			return a, []herald.WindowBurn{wb(time.Duration(*a.ExhaustionMinutes)*time.Minute/4, snap.Window, snap.WindowBurn, 0)}
		}
	}
	switch t.Alert {
	case exclusionDrift:
		return herald.BurnAlert{}, []herald.WindowBurn{
			{Window: "6h excluded", Good: snap.Window.Good, Bad: snap.Window.Bad},
			{Window: "baseline excluded", Good: snap.Long.Good, Bad: snap.Long.Bad},
		}
	}
	return herald.BurnAlert{}, []herald.WindowBurn{wb(time.Hour, run.bkt.Sum(t.At, time.Hour), burn(run.bkt.Sum(t.At, time.Hour)), 0)}
}

// round keeps three decimals, for numbers people read.
func round(f float64) float64 { return math.Round(f*1000) / 1000 }

// notification builds what a transition notifies, to the alert's
// recipients — for a built-in delivery SLO without its own, to the
// fallback — or nil when there is no one to tell (logged as an error: it
// is the one notification herald cannot send).
func (s *SLOs) notification(ctx context.Context, run *sloRun, t slo.Transition, a herald.BurnAlert, windows []herald.WindowBurn, fired bool) (*herald.Notification, error) {
	o := run.slo
	recipients := a.Recipients
	if a.ID == "" { // no-data and exclusion alerts: everyone the SLO's alerts tell
		for _, x := range run.alerts {
			for _, r := range x.Recipients {
				if !slices.ContainsFunc(recipients, func(y herald.TriggerRecipient) bool { return y.ID == r.ID }) {
					recipients = append(recipients, r)
				}
			}
		}
	}
	n := &herald.Notification{ID: herald.NewID("ntf_", t.At), CreatedAt: t.At,
		Metadata: map[string]string{"herald_slo_id": o.ID, "herald_burn_alert": t.Alert}}
	sev := cmp.Or(a.Severity, t.Severity)
	for _, r := range recipients {
		d, err := deliveryTo(ctx, s.cfg.Store, r, t.At)
		if err != nil {
			return nil, fmt.Errorf("burn alert %s: %w", t.Alert, err)
		}
		if d.Options == nil && d.Channel == "pagerduty" && sev == herald.SeverityTicket {
			d.Options = &herald.RecipientOptions{PagerDutySeverity: "warning"}
		}
		n.Recipients, n.Deliveries = append(n.Recipients, d.Recipient), append(n.Deliveries, d)
	}
	if len(recipients) == 0 && o.BuiltIn() {
		if f, ok := s.cfg.Delivery.fallbackFor(o.Channel); ok {
			rc := herald.Recipient{Type: f.Channel, Target: f.Target}
			d := herald.Delivery{ID: herald.NewID("dlv_", t.At), Channel: f.Channel, Recipient: rc, PinnedPartner: f.Partner}
			if f.Channel == "pagerduty" && sev == herald.SeverityTicket {
				d.Options = &herald.RecipientOptions{PagerDutySeverity: "warning"}
			}
			n.Recipients, n.Deliveries = append(n.Recipients, rc), append(n.Deliveries, d)
		}
	}
	if len(n.Deliveries) == 0 {
		s.log.Error("burn alert has no recipient: nobody is told", "slo_id", o.ID, "slo", o.Name, "alert", t.Alert, "to", t.To)
		return nil, nil
	}
	alert := s.alert(ctx, run, t, a, windows, fired)
	n.Alert, n.Subject = alert, alert.Summary
	var err error
	if n.Text, n.HTML, err = renderAlert(alert); err != nil {
		return nil, err
	}
	return n, nil
}

// alert is the structured content of a burn alert's notification.
func (s *SLOs) alert(ctx context.Context, run *sloRun, t slo.Transition, a herald.BurnAlert, windows []herald.WindowBurn, fired bool) *herald.Alert {
	o := run.slo
	info := &herald.SLOAlert{ID: o.ID, Name: o.Name, Dataset: o.Dataset, Channel: o.Channel, TargetPercent: o.Target() * 100,
		BurnAlertID: t.Alert, AlertType: cmp.Or(a.AlertType, t.Alert), Severity: cmp.Or(a.Severity, t.Severity),
		Windows: windows, BudgetRemainingPercent: round(t.Snapshot.BudgetRemaining * 100)}
	longest := time.Hour
	if a.AlertType == herald.AlertMultiwindow {
		longest = time.Duration(a.LongWindowMinutes) * time.Minute
	}
	base := strings.TrimRight(s.cfg.BaseURL, "/")
	if base != "" {
		info.SLOURL = base + "/1/slos/" + o.Dataset + "/" + o.ID + "?detailed=true"
	}
	if o.BuiltIn() {
		from := t.At.Add(-longest)
		top, err := s.cfg.Store.TopFailures(ctx, o.Channel, from, t.At, 5)
		if err != nil {
			s.log.Warn("top failures unavailable for a burn alert", "slo_id", o.ID, "error", err)
		}
		info.TopFailures = top
		if base != "" {
			q := url.Values{"channel": {o.Channel}, "judgement": {string(herald.JudgedBad)},
				"judged_since": {from.Format(time.RFC3339)}}
			info.FailuresURL = base + "/1/deliveries?" + q.Encode()
		}
	}
	what := map[string]string{
		slo.NoDataAlert: "has had no judgements for longer than its traffic allows: its SLI may be broken",
		exclusionDrift:  "excludes 3× more deliveries than usual (recipient bounces): a wrong-address bug may be hiding there",
	}[t.Alert]
	if what == "" {
		what = "is burning its error budget"
		if a.Description != "" {
			what += ": " + a.Description
		}
	}
	status, verb := "TRIGGERED", "["+strings.ToUpper(info.Severity)+"] "
	if !fired {
		status, verb, what = "OK", "[RESOLVED] ", "is no longer burning its budget that fast"
	}
	if t.Alert == slo.NoDataAlert && fired {
		status = "NO_DATA"
	}
	summary := fmt.Sprintf("%sSLO %q %s", verb, o.Name, what)
	var parts []string
	for _, w := range windows {
		if w.Threshold > 0 {
			parts = append(parts, fmt.Sprintf("%s burn rate %.3g (threshold %.3g; %d bad of %d)", w.Window, w.BurnRate, w.Threshold, w.Bad, w.Good+w.Bad))
		} else {
			parts = append(parts, fmt.Sprintf("%s burn rate %.3g (%d bad of %d)", w.Window, w.BurnRate, w.Bad, w.Good+w.Bad))
		}
	}
	desc := fmt.Sprintf("Target %.4g%%. Budget remaining %.2f%% of %d days. %s.", info.TargetPercent, info.BudgetRemainingPercent, o.TimePeriodDays, strings.Join(parts, "; "))
	if len(info.TopFailures) > 0 {
		var top []string
		for _, f := range info.TopFailures {
			top = append(top, fmt.Sprintf("%s %s ×%d", cmp.Or(f.Partner, "(no partner)"), f.Reason, f.Count))
		}
		desc += " Top failures: " + strings.Join(top, ", ") + "."
	}
	return &herald.Alert{Version: "v0.1.0", ID: o.ID + "-" + t.Alert, Name: o.Name, TriggerDescription: o.Description,
		AlertType: "burn_alert", Status: status, Summary: summary, Description: desc, Dataset: o.Dataset,
		TriggerURL: info.SLOURL, ResultURL: info.FailuresURL, ResultGroups: []herald.AlertGroup{}, ResultGroupsTriggered: []herald.AlertGroup{}, SLO: info}
}

// current returns o's run, with its alerts as stored and its judgements
// loaded up to now, for the reports of a page between ticks. Called with
// s.mu held.
func (s *SLOs) current(ctx context.Context, o herald.SLO) (*sloRun, error) {
	alerts, err := s.cfg.Store.ListBurnAlerts(ctx, o.Dataset, o.ID)
	if err != nil {
		return nil, err
	}
	return s.sync(ctx, o, alerts, s.cfg.Clock.Now().UTC())
}

// Status reports an SLO's compliance, budget, 4-hour burn rate and the
// state of its alerts, loading its judgements first if it has not been
// evaluated yet.
func (s *SLOs) Status(ctx context.Context, o herald.SLO) (herald.SLOStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	run, err := s.current(ctx, o)
	if err != nil {
		return herald.SLOStatus{}, err
	}
	alerts := run.alerts
	at := run.loadedTo
	p := run.bkt.Sum(at, o.Period())
	st := herald.SLOStatus{Compliance: 100, BudgetRemaining: round(run.engine.BudgetRemaining(at) * 100),
		Good: p.Good, Bad: p.Bad, Alerts: []herald.BurnAlertStatus{}, Status: herald.SLONormal}
	if r, ok := p.Ratio(); ok {
		st.Compliance = round((1 - r) * 100)
	}
	if r, ok := run.bkt.Sum(at, 4*time.Hour).Ratio(); ok {
		st.BurnRate = round(slo.Burn(r, o.Target()))
	}
	if !run.evalAt.IsZero() {
		t := run.evalAt
		st.EvaluatedAt = &t
	}
	for _, a := range alerts {
		state, _, _, _ := run.engine.Progress(a.ID)
		snap, _ := run.engine.Last(a.ID)
		_, windows := s.describe(run, slo.Transition{Alert: a.ID, At: at, Snapshot: snap})
		st.Alerts = append(st.Alerts, herald.BurnAlertStatus{ID: a.ID, State: herald.AlertState(state), Severity: a.Severity, Windows: windows})
		if herald.AlertState(state).Triggered() {
			st.Status = herald.SLOTriggered
		}
	}
	switch {
	case p.Total() == 0:
		st.Status = herald.SLONoEvents
	case len(alerts) == 0:
		st.Status = herald.SLONoAlerts
	}
	return st, nil
}

// Healthy reports whether herald's delivery path is healthy at now: the
// SLO engine ran in the last three minutes and no delivery SLO's page is
// firing. The reason says why not.
func (s *SLOs) Healthy(now time.Time) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastTick) > 3*time.Minute {
		return false, "the SLO engine has not run since " + s.lastTick.Format(time.RFC3339)
	}
	for _, run := range s.runs {
		if !run.slo.BuiltIn() {
			continue
		}
		for _, a := range run.alerts {
			if st, _, _, _ := run.engine.Progress(a.ID); a.Severity == herald.SeverityPage && herald.AlertState(st).Triggered() {
				return false, fmt.Sprintf("SLO %q is paging", run.slo.Name)
			}
		}
	}
	return true, ""
}

// Run calls Tick every interval until ctx ends; each SLO is evaluated
// once per minute whatever the interval.
func (s *SLOs) Run(ctx context.Context, interval time.Duration) {
	every(ctx, interval, s.log, "SLO tick failed", func(ctx context.Context) error {
		return s.Tick(ctx, s.cfg.Clock.Now())
	})
}
