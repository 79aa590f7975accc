package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"html/template"
	"log/slog"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"herald"
	"herald/clock"
	"herald/sqlstore"
)

// TriggerStore is what evaluating triggers needs of the state store;
// *sqlstore.DB implements it.
type TriggerStore interface {
	ScheduledTriggers(ctx context.Context) ([]sqlstore.ScheduledTrigger, error)
	RecordEvaluation(ctx context.Context, ev *herald.Evaluation, state herald.TriggerState, n *herald.Notification, enqueue sqlstore.EnqueueFunc) error
	CreateNotification(ctx context.Context, n *herald.Notification, requestHash string, enqueue sqlstore.EnqueueFunc) (*herald.Notification, bool, error)
	GetDestination(ctx context.Context, id string) (herald.Destination, error)
}

// EvaluatorConfig configures an Evaluator.
type EvaluatorConfig struct {
	// Store and Events are required; Enqueue inserts delivery jobs in the
	// store's transaction (required).
	Store   TriggerStore
	Events  herald.EventStore
	Enqueue sqlstore.EnqueueFunc
	// BaseURL is herald's address as users reach it, for the links in
	// notifications. Defaults to none (links are left out).
	BaseURL string
	// QueryTimeout bounds one evaluation's query. Defaults to 30s.
	QueryTimeout time.Duration
	// Clock defaults to clock.Real().
	Clock          clock.Clock
	TracerProvider trace.TracerProvider
	Logger         *slog.Logger
}

// Evaluator evaluates triggers and turns what they notify into
// notifications. Safe for concurrent use.
type Evaluator struct {
	cfg    EvaluatorConfig
	tracer trace.Tracer
	log    *slog.Logger
}

// NewEvaluator returns an Evaluator for cfg.
func NewEvaluator(cfg EvaluatorConfig) (*Evaluator, error) {
	if cfg.Store == nil || cfg.Events == nil || cfg.Enqueue == nil {
		return nil, errors.New("notify: evaluator: Store, Events and Enqueue are required")
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Evaluator{cfg: cfg, tracer: cfg.TracerProvider.Tracer("herald/notify"), log: cfg.Logger}, nil
}

// Evaluate runs one evaluation of st's trigger at now: the query over
// [now − time_range, now], the comparison, and — in one transaction — the
// evaluation record, the trigger's new state and the notification it
// owes with its deliveries and their jobs. One trace covers the
// evaluation, and the notification's deliveries and attempts join it.
func (e *Evaluator) Evaluate(ctx context.Context, st sqlstore.ScheduledTrigger, now time.Time, missed int) (herald.Evaluation, error) {
	t := st.Trigger
	ctx, span := e.tracer.Start(ctx, "notify.EvaluateTrigger", trace.WithAttributes(
		attribute.String("herald.trigger.id", t.ID), attribute.String("herald.dataset", t.DatasetSlug)))
	defer span.End()
	started := e.cfg.Clock.Now()
	qctx, cancel := context.WithTimeout(ctx, e.cfg.QueryTimeout)
	data, qerr := e.cfg.Events.Run(qctx, t.DatasetSlug, worstFirst(t), herald.RunOptions{Now: now})
	cancel()
	ev, next := t.Evaluate(st.State, data, qerr)
	ev.At, ev.Duration, ev.Missed = now.UTC(), e.cfg.Clock.Now().Sub(started), missed
	ev.TraceID = span.SpanContext().TraceID().String()
	ev.ID = herald.NewID("evl_", now)
	span.SetAttributes(attribute.String("herald.evaluation.status", ev.Status), attribute.String("herald.evaluation.notify", ev.Notify))
	if qerr != nil {
		span.SetStatus(codes.Error, qerr.Error())
		e.log.WarnContext(ctx, "trigger query failed", "trigger_id", t.ID, "error", qerr)
	}
	var n *herald.Notification
	if ev.Notify != "" {
		var err error
		if n, err = e.notification(ctx, t, ev, false); err != nil {
			span.SetStatus(codes.Error, err.Error())
			return ev, err
		}
		ev.NotificationID = n.ID
	}
	if err := e.cfg.Store.RecordEvaluation(ctx, &ev, next, n, e.cfg.Enqueue); err != nil {
		span.SetStatus(codes.Error, err.Error())
		return ev, err
	}
	return ev, nil
}

// worstFirst is t's query asking for its groups furthest past the
// threshold first, up to herald.MaxLimit of them.
func worstFirst(t herald.Trigger) herald.Query {
	q := *t.Query
	c := q.Calculations[0]
	order := "descending"
	if strings.HasPrefix(t.Threshold.Op, "<") {
		order = "ascending"
	}
	q.Orders = []herald.Order{{Op: c.Op, Column: c.Column, Order: order}}
	q.Limit = herald.MaxLimit
	return q
}

// Test sends t's test notification (is_test) to every recipient, without
// evaluating or changing the trigger's state.
func (e *Evaluator) Test(ctx context.Context, t herald.Trigger) (*herald.Notification, error) {
	ctx, span := e.tracer.Start(ctx, "notify.TestTrigger", trace.WithAttributes(attribute.String("herald.trigger.id", t.ID)))
	defer span.End()
	now := e.cfg.Clock.Now().UTC()
	ev := herald.Evaluation{ID: herald.NewID("evl_", now), TriggerID: t.ID, At: now, Status: herald.EvalBreached,
		Notify: herald.EvalTriggered, Triggered: true, Groups: []herald.GroupResult{}}
	n, err := e.notification(ctx, t, ev, true)
	if err != nil {
		return nil, err
	}
	created, _, err := e.cfg.Store.CreateNotification(ctx, n, "", e.cfg.Enqueue)
	return created, err
}

// notification builds what an evaluation notifies: one delivery per
// recipient — an email to the address, or for webhook, Slack and
// PagerDuty recipients a delivery whose target is the recipient's id, so
// their secrets stay in the recipient record.
func (e *Evaluator) notification(ctx context.Context, t herald.Trigger, ev herald.Evaluation, test bool) (*herald.Notification, error) {
	if len(t.Recipients) == 0 {
		return nil, nil
	}
	alert := e.alert(t, ev, test)
	n := &herald.Notification{ID: herald.NewID("ntf_", ev.At), Subject: alert.Summary, CreatedAt: ev.At, Alert: alert,
		Metadata: map[string]string{herald.MetaTriggerID: t.ID}}
	var err error
	if n.Text, n.HTML, err = renderAlert(alert); err != nil {
		return nil, err
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	n.TraceParent = carrier["traceparent"]
	for _, r := range t.Recipients {
		d, err := deliveryTo(ctx, e.cfg.Store, r, ev.At)
		if err != nil {
			return nil, fmt.Errorf("notify: trigger %s: %w", t.ID, err)
		}
		n.Recipients, n.Deliveries = append(n.Recipients, d.Recipient), append(n.Deliveries, d)
	}
	return n, nil
}

// deliveryTo returns the delivery, made at, of a notification to the
// recipient of a trigger or burn alert: an email to the recipient's
// address, or for webhook, Slack and PagerDuty recipients a delivery whose
// target is the recipient's id, so their secrets stay in its record.
func deliveryTo(ctx context.Context, dests herald.Destinations, r herald.TriggerRecipient, at time.Time) (herald.Delivery, error) {
	dest, err := dests.GetDestination(ctx, r.ID)
	if err != nil {
		return herald.Delivery{}, fmt.Errorf("recipient %s: %w", r.ID, err)
	}
	rc := herald.Recipient{Type: dest.Type, Target: dest.ID}
	if dest.Type == "email" {
		rc.Target = dest.Details.EmailAddress
	}
	return herald.Delivery{ID: herald.NewID("dlv_", at), Channel: rc.Type, Recipient: rc, Options: r.Details}, nil
}

// alert is the structured event of an evaluation.
func (e *Evaluator) alert(t herald.Trigger, ev herald.Evaluation, test bool) *herald.Alert {
	a := &herald.Alert{Version: "v0.1.0", ID: t.ID, Name: t.Name, TriggerDescription: t.Description, AlertType: t.AlertType,
		Summary: t.Summary(ev, test), Operator: herald.OperatorWords(t.Threshold.Op), Threshold: t.Threshold.Value,
		IsTest: test, Dataset: t.DatasetSlug, EvaluationID: ev.ID,
		ResultGroups: []herald.AlertGroup{}, ResultGroupsTriggered: []herald.AlertGroup{}}
	if e.cfg.BaseURL != "" {
		base := strings.TrimRight(e.cfg.BaseURL, "/")
		a.TriggerURL = base + "/1/triggers/" + t.DatasetSlug + "/" + t.ID
		a.ResultURL = a.TriggerURL + "/evaluations"
	}
	a.Status = map[string]string{herald.EvalTriggered: "TRIGGERED", herald.EvalStill: "TRIGGERED", herald.EvalResolved: "OK",
		herald.EvalNoData: "NO_DATA", herald.EvalError: "ERROR"}[ev.Notify]
	for _, g := range ev.Groups {
		a.ResultGroups = append(a.ResultGroups, herald.AlertGroup{Group: g.Group, Result: g.Result})
	}
	breached := ev.Breached(t.Threshold.Op)
	for _, g := range breached {
		a.ResultGroupsTriggered = append(a.ResultGroupsTriggered, herald.AlertGroup{Group: g.Group, Result: g.Result})
	}
	switch ev.Notify {
	case herald.EvalNoData:
		a.Description = "The query found no data to compare with the threshold."
	case herald.EvalError:
		a.Description = "The query failed: " + ev.Error
	case herald.EvalResolved:
		a.Description = fmt.Sprintf("No longer %s the threshold value (%g).", a.Operator, a.Threshold)
	default:
		var parts []string
		for _, g := range breached {
			parts = append(parts, fmt.Sprintf("%s (value %g)", groupLabel(g.Group), g.Result))
		}
		a.Description = fmt.Sprintf("Currently %s the threshold value (%g)", a.Operator, a.Threshold)
		if len(parts) > 0 {
			a.Description += " for " + strings.Join(parts, ", ")
		}
		if test {
			a.Description = "This is a test notification; the trigger's state is unchanged."
		}
	}
	return a
}

// groupLabel is "key:value, key:value", or "the result" with no breakdown.
func groupLabel(g map[string]any) string {
	if len(g) == 0 {
		return "the result"
	}
	var parts []string
	for k, v := range g {
		parts = append(parts, fmt.Sprintf("%s:%v", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

var alertText = texttemplate.Must(texttemplate.New("text").Parse(`{{.Summary}}

{{.Description}}
{{- if .TriggerDescription}}

{{.TriggerDescription}}
{{- end}}
{{- if .ResultGroupsTriggered}}

Groups past the threshold ({{.Operator}} {{.Threshold}}):
{{- range .ResultGroupsTriggered}}
  {{range $k, $v := .Group}}{{$k}}={{$v}} {{end}}→ {{.Result}}
{{- end}}
{{- end}}
{{- with .SLO}}

{{- range .Windows}}
  {{.Window}}: burn rate {{.BurnRate}}{{if .Threshold}} (threshold {{.Threshold}}){{end}}, {{.Bad}} bad of {{.Good}} good
{{- end}}
{{- if .TopFailures}}

Top failures:
{{- range .TopFailures}}
  {{.Count}} × {{.Partner}} {{.Reason}}
{{- end}}
{{- end}}
{{- if .FailuresURL}}

Failing deliveries: {{.FailuresURL}}
{{- end}}
{{- if .SLOURL}}
SLO: {{.SLOURL}}
{{- end}}
{{- else}}
{{- if .ResultURL}}

Result: {{.ResultURL}}
{{- end}}
{{- if .TriggerURL}}
Trigger: {{.TriggerURL}}
{{- end}}
{{- end}}
`))

var alertHTML = template.Must(template.New("html").Parse(`<h2>{{.Summary}}</h2>
<p>{{.Description}}</p>
{{- if .TriggerDescription}}
<p><em>{{.TriggerDescription}}</em></p>
{{- end}}
{{- if .ResultGroupsTriggered}}
<table>
<tr><th>Group</th><th>Value</th></tr>
{{- range .ResultGroupsTriggered}}
<tr><td>{{range $k, $v := .Group}}{{$k}}={{$v}} {{end}}</td><td>{{.Result}}</td></tr>
{{- end}}
</table>
<p>Threshold: {{.Operator}} {{.Threshold}}</p>
{{- end}}
{{- with .SLO}}
<table>
<tr><th>Window</th><th>Burn rate</th><th>Threshold</th><th>Bad</th><th>Good</th></tr>
{{- range .Windows}}
<tr><td>{{.Window}}</td><td>{{.BurnRate}}</td><td>{{if .Threshold}}{{.Threshold}}{{end}}</td><td>{{.Bad}}</td><td>{{.Good}}</td></tr>
{{- end}}
</table>
<p>Budget remaining: {{.BudgetRemainingPercent}}% (target {{.TargetPercent}}%)</p>
{{- if .TopFailures}}
<table>
<tr><th>Partner</th><th>Reason</th><th>Count</th></tr>
{{- range .TopFailures}}
<tr><td>{{.Partner}}</td><td>{{.Reason}}</td><td>{{.Count}}</td></tr>
{{- end}}
</table>
{{- end}}
{{- if .FailuresURL}}
<p><a href="{{.FailuresURL}}">See the failing deliveries</a></p>
{{- end}}
{{- if .SLOURL}}
<p><a href="{{.SLOURL}}">See the SLO</a></p>
{{- end}}
{{- else}}
{{- if .ResultURL}}
<p><a href="{{.ResultURL}}">See the result</a></p>
{{- end}}
{{- end}}
`))

// renderAlert renders an alert's email text and HTML.
func renderAlert(a *herald.Alert) (string, string, error) {
	var text, html bytes.Buffer
	if err := alertText.Execute(&text, a); err != nil {
		return "", "", fmt.Errorf("notify: render alert text: %w", err)
	}
	if err := alertHTML.Execute(&html, a); err != nil {
		return "", "", fmt.Errorf("notify: render alert html: %w", err)
	}
	return text.String(), html.String(), nil
}

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	Evaluator *Evaluator
	Store     TriggerStore
	// Workers is how many evaluations run at once. Defaults to 8.
	Workers int
	// Clock defaults to clock.Real().
	Clock  clock.Clock
	Logger *slog.Logger
}

// Scheduler evaluates every enabled trigger every frequency. Each trigger
// has its own slot in its period — an offset derived from its id — so
// triggers spread over the period instead of running together.
//
// After downtime, a trigger that missed evaluations is evaluated once, at
// its first slot after the scheduler started (so the catch-up is spread
// over one period, not run at once), and that evaluation records how many
// were missed. Outside a trigger's evaluation window its slots pass
// without an evaluation.
//
// In a cluster only one node may run a Scheduler; on SQLite there is one
// node.
type Scheduler struct {
	cfg     SchedulerConfig
	started time.Time
	mu      sync.Mutex
	next    map[string]time.Time // trigger id → its next slot
	missed  map[string]int       // trigger id → slots missed while down
}

// NewScheduler returns a Scheduler that counts downtime from now.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.Evaluator == nil || cfg.Store == nil {
		return nil, errors.New("notify: scheduler: Evaluator and Store are required")
	}
	if cfg.Workers == 0 {
		cfg.Workers = 8
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{cfg: cfg, started: cfg.Clock.Now(), next: map[string]time.Time{}, missed: map[string]int{}}, nil
}

// Offset is a trigger's deterministic slot within its period.
func Offset(id string, frequency int) time.Duration {
	h := fnv.New32a()
	h.Write([]byte(id))
	return time.Duration(h.Sum32()%uint32(frequency)) * time.Second
}

// slotAfter is the first slot of t strictly after at.
func slotAfter(t herald.Trigger, at time.Time) time.Time {
	period := time.Duration(t.Frequency) * time.Second
	off := Offset(t.ID, t.Frequency)
	base := at.Add(-off).Truncate(period).Add(off)
	for !base.After(at) {
		base = base.Add(period)
	}
	return base
}

// Tick evaluates every trigger whose slot has come at now, and returns how
// many it evaluated. It waits for them all.
func (s *Scheduler) Tick(ctx context.Context, now time.Time) (int, error) {
	triggers, err := s.cfg.Store.ScheduledTriggers(ctx)
	if err != nil {
		return 0, err
	}
	type job struct {
		st     sqlstore.ScheduledTrigger
		slot   time.Time
		missed int
	}
	var jobs []job
	s.mu.Lock()
	live := map[string]bool{}
	for _, st := range triggers {
		t := st.Trigger
		live[t.ID] = true
		period := time.Duration(t.Frequency) * time.Second
		next, ok := s.next[t.ID]
		if !ok {
			from := t.UpdatedAt
			if st.LastEvaluatedAt != nil {
				from = *st.LastEvaluatedAt
			}
			next = slotAfter(t, from)
			// Slots that passed while herald was down: wait for the
			// trigger's first slot since start, and say what was missed.
			if catchUp := slotAfter(t, s.started.Add(-time.Nanosecond)); next.Before(catchUp) {
				if st.LastEvaluatedAt != nil {
					s.missed[t.ID] = int(catchUp.Sub(next) / period)
				}
				next = catchUp
			}
		}
		if now.Before(next) {
			s.next[t.ID] = next
			continue
		}
		// Run late (a slow tick): evaluate the latest slot due, and count
		// the ones passed over.
		late := int(now.Sub(next) / period)
		slot := next.Add(time.Duration(late) * period)
		s.next[t.ID] = slot.Add(period)
		missed := late + s.missed[t.ID]
		delete(s.missed, t.ID)
		if !t.InWindow(slot) {
			continue
		}
		jobs = append(jobs, job{st: st, slot: slot, missed: missed})
	}
	for id := range s.next {
		if !live[id] {
			delete(s.next, id)
			delete(s.missed, id)
		}
	}
	s.mu.Unlock()

	var wg sync.WaitGroup
	sem := make(chan struct{}, s.cfg.Workers)
	var mu sync.Mutex
	var errs []error
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := s.cfg.Evaluator.Evaluate(ctx, j.st, j.slot, j.missed); err != nil {
				s.cfg.Logger.ErrorContext(ctx, "trigger evaluation failed", "trigger_id", j.st.Trigger.ID, "error", err)
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return len(jobs), errors.Join(errs...)
}

// Run ticks every second until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	every(ctx, time.Second, s.cfg.Logger, "scheduler tick failed", func(ctx context.Context) error {
		_, err := s.Tick(ctx, s.cfg.Clock.Now())
		return err
	})
}
