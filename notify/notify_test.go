package notify_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"herald"
	"herald/clock"
	"herald/notify"
	"herald/provider/sendgrid"
	"herald/sandbox"
	"herald/sqlstore"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// bundle is a service on a real SQLite store, sending through real
// SendGrid adapters to a real sandbox, in simulated time. Jobs are not run
// by a queue: tests call Deliver themselves, as the queue would.
type bundle struct {
	svc    *notify.Service
	db     *sqlstore.DB
	sb     *sandbox.Running
	clock  *clock.Fake
	spans  *tracetest.SpanRecorder
	reg    *prometheus.Registry
	mu     sync.Mutex
	queued []string
}

type options struct {
	sandbox  func(*sandbox.Config)
	partners func(sbURL string, c clock.Clock) []herald.Provider
	policy   notify.RetryPolicy
	breaker  notify.BreakerConfig
}

func sendgridPartner(t *testing.T, name, key, url string, c clock.Clock) herald.Provider {
	p, err := sendgrid.New(sendgrid.Config{Name: name, APIKey: key, BaseURL: url, From: "alerts@example.com", Timeout: time.Second, Clock: c})
	require.NoError(t, err)
	return p
}

func setup(t *testing.T, o options) *bundle {
	t.Helper()
	ctx := context.Background()
	b := &bundle{clock: clock.NewFake(t0), spans: tracetest.NewSpanRecorder(), reg: prometheus.NewRegistry()}
	sbCfg := sandbox.Config{Clock: b.clock, Seed: 1}
	if o.sandbox != nil {
		o.sandbox(&sbCfg)
	}
	sb, err := sandbox.Start(ctx, sbCfg)
	require.NoError(t, err)
	t.Cleanup(func() { sb.Close() })
	b.sb = sb
	b.db, err = sqlstore.Open(ctx, filepath.Join(t.TempDir(), "herald.db"), b.clock)
	require.NoError(t, err)
	t.Cleanup(func() { b.db.Close() })
	partners := []herald.Provider{sendgridPartner(t, "sendgrid-main", "SG.sandbox", sb.URL, b.clock)}
	if o.partners != nil {
		partners = o.partners(sb.URL, b.clock)
	}
	if o.policy.Jitter == nil {
		o.policy.Jitter = func() float64 { return 0.5 }
	}
	b.svc, err = notify.New(notify.Config{
		Store: b.db,
		Enqueue: func(ctx context.Context, tx *sql.Tx, ids []string) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.queued = append(b.queued, ids...)
			return nil
		},
		Channels:       map[string][]herald.Provider{"email": partners},
		Policy:         o.policy,
		Breaker:        o.breaker,
		Clock:          b.clock,
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b.spans)),
		Metrics:        notify.NewMetrics(b.reg),
	})
	require.NoError(t, err)
	return b
}

func request(md map[string]string) notify.CreateRequest {
	return notify.CreateRequest{Recipients: []herald.Recipient{{Type: "email", Target: "oncall@example.com"}},
		Subject: "CPU high", Text: "p99 above 2s", Metadata: md}
}

// create makes a notification and returns its one delivery id.
func (b *bundle) create(t *testing.T, md map[string]string) string {
	t.Helper()
	n, existed, err := b.svc.Create(context.Background(), request(md), "")
	require.NoError(t, err)
	require.False(t, existed)
	require.Len(t, n.Deliveries, 1)
	require.Equal(t, herald.StateQueued, n.Deliveries[0].State)
	return n.Deliveries[0].ID
}

func (b *bundle) delivery(t *testing.T, id string) *herald.Delivery {
	t.Helper()
	d, err := b.db.GetDelivery(context.Background(), id)
	require.NoError(t, err)
	return d
}

func (b *bundle) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			want := map[string]string{}
			for i := 0; i+1 < len(labels); i += 2 {
				want[labels[i]] = labels[i+1]
			}
			for _, lp := range m.GetLabel() {
				if v, ok := want[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s %v", name, labels)
	return 0
}

func TestAcceptedPath(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	id := b.create(t, map[string]string{"team": "platform"})

	wait, err := b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	require.Zero(t, wait)
	d := b.delivery(t, id)
	require.Equal(t, herald.StateAccepted, d.State)
	require.NotEmpty(t, d.PartnerMessageID)
	require.Len(t, d.AttemptLog, 1)
	a := d.AttemptLog[0]
	require.Equal(t, herald.OutcomeAccepted, a.Outcome)
	require.Equal(t, "sendgrid-main", a.Partner)
	require.Equal(t, 202, a.Status)
	require.Equal(t, d.PartnerMessageID, a.MessageID)
	require.NotEmpty(t, a.TraceID)

	msgs := b.sb.Messages(sandbox.MessageFilter{MetadataKey: herald.MetaDeliveryID, MetadataValue: id})
	require.Len(t, msgs, 1, "the partner got herald's correlation id")
	require.Equal(t, "platform", msgs[0].Metadata["team"])

	// Never sent again once accepted.
	wait, err = b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	require.Zero(t, wait)
	require.Len(t, b.sb.Messages(sandbox.MessageFilter{}), 1)
	require.Equal(t, 1.0, b.counter(t, "herald_delivery_attempts_total", "outcome", "accepted", "reason", "ok"))
	require.Equal(t, 1.0, b.counter(t, "herald_deliveries_finished_total", "state", "accepted"))
}

// The incident: the partner starts refusing a metadata value it accepted a
// moment before. Every delivery must end failed, with the partner's own
// words on the attempt, an ERROR span and a counted failure — and nothing
// may be recorded as accepted.
func TestIncidentMetadataValueSuddenlyRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	md := map[string]string{"team": "platform & infra"}
	first := b.create(t, md)
	_, err := b.svc.Deliver(context.Background(), first)
	require.NoError(t, err)
	require.Equal(t, herald.StateAccepted, b.delivery(t, first).State)

	_, err = b.sb.AddFault(sandbox.Fault{Partner: sandbox.SendGrid, Kind: sandbox.FaultRejectMetadata, Key: "team", Value: "platform & infra"})
	require.NoError(t, err)
	for range 3 {
		id := b.create(t, md)
		wait, err := b.svc.Deliver(context.Background(), id)
		require.NoError(t, err)
		require.Zero(t, wait, "a validation refusal is not retried")
		d := b.delivery(t, id)
		require.Equal(t, herald.StateFailed, d.State)
		require.Contains(t, d.Reason, "rejected by sendgrid-main: validation")
		require.Empty(t, d.PartnerMessageID)
		a := d.AttemptLog[0]
		require.Equal(t, herald.OutcomeRejected, a.Outcome)
		require.Equal(t, 400, a.Status)
		require.Contains(t, a.Error, "custom_args")
		require.Contains(t, a.Response, `"errors"`)
	}
	require.Equal(t, 3.0, b.counter(t, "herald_delivery_attempts_total", "outcome", "rejected", "reason", "validation"))
	require.Equal(t, 3.0, b.counter(t, "herald_deliveries_finished_total", "state", "failed"))
	require.Equal(t, 1.0, b.counter(t, "herald_deliveries_finished_total", "state", "accepted"), "only the send before the fault")

	var failedAttempts int
	for _, s := range b.spans.Ended() {
		if s.Name() == "notify.Attempt" && s.Status().Code == codes.Error {
			failedAttempts++
			require.Contains(t, s.Status().Description, "rejected: validation")
		}
	}
	require.Equal(t, 3, failedAttempts)
}

func TestBackoffScheduleIsExact(t *testing.T) {
	t.Parallel()
	b := setup(t, options{
		sandbox: func(c *sandbox.Config) { c.Faults = []sandbox.Fault{{Kind: sandbox.FaultStatus, Status: 500}} },
		policy:  notify.RetryPolicy{MaxAttempts: 5, Base: 2 * time.Second, Cap: 10 * time.Second},
		breaker: notify.BreakerConfig{Failures: 100},
	})
	id := b.create(t, nil)
	// Equal jitter at 0.5: ¾ of min(Cap, 2s·2^(n−1)).
	var waits []time.Duration
	for range 4 {
		wait, err := b.svc.Deliver(context.Background(), id)
		require.NoError(t, err)
		waits = append(waits, wait)
		d := b.delivery(t, id)
		require.Equal(t, herald.StateQueued, d.State)
		require.Equal(t, b.clock.Now().Add(wait), *d.NextAttemptAt)
		b.clock.Advance(wait)
	}
	require.Equal(t, []time.Duration{1500 * time.Millisecond, 3 * time.Second, 6 * time.Second, 7500 * time.Millisecond}, waits)
	wait, err := b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	require.Zero(t, wait)
	d := b.delivery(t, id)
	require.Equal(t, herald.StateFailed, d.State)
	require.Equal(t, "gave up after 5 attempts; last transient: server_error", d.Reason)
	require.Len(t, d.AttemptLog, 5)
}

func TestThrottleHonoursTheNamedResetToTheSecond(t *testing.T) {
	t.Parallel()
	b := setup(t, options{
		sandbox: func(c *sandbox.Config) {
			c.Limits = map[sandbox.Partner]sandbox.Rate{sandbox.SendGrid: {PerSecond: 0.1, Burst: 1}}
		},
	})
	first := b.create(t, nil)
	_, err := b.svc.Deliver(context.Background(), first)
	require.NoError(t, err)
	b.clock.Advance(3 * time.Second)

	id := b.create(t, nil)
	wait, err := b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	// One token per 10 s; 3 s in, the reset is 7 s away — longer than the
	// 1.5 s backoff, so the partner's wait wins.
	require.Equal(t, 7*time.Second, wait)
	d := b.delivery(t, id)
	require.Equal(t, herald.OutcomeThrottled, d.AttemptLog[0].Outcome)
	require.Equal(t, 7*time.Second, d.AttemptLog[0].RetryAfter)

	b.clock.Advance(wait)
	wait, err = b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	require.Zero(t, wait)
	require.Equal(t, herald.StateAccepted, b.delivery(t, id).State)
}

func TestFailoverToTheNextPartnerOnAPartnerSideRefusal(t *testing.T) {
	t.Parallel()
	b := setup(t, options{partners: func(url string, c clock.Clock) []herald.Provider {
		return []herald.Provider{
			sendgridPartner(t, "sendgrid-main", "SG.revoked-key", url, c),
			sendgridPartner(t, "sendgrid-backup", "SG.sandbox", url, c),
		}
	}})
	id := b.create(t, nil)
	wait, err := b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	require.Zero(t, wait)
	d := b.delivery(t, id)
	require.Equal(t, herald.StateAccepted, d.State)
	require.Equal(t, "sendgrid-backup", d.Partner)
	require.Len(t, d.AttemptLog, 2)
	require.Equal(t, "auth", d.AttemptLog[0].Reason)
	for _, a := range d.AttemptLog {
		require.NotContains(t, a.Error+a.Response+a.Request, "SG.revoked-key")
	}
	require.Equal(t, notify.BreakerOpen, b.svc.BreakerStates()["sendgrid-main"], "a bad key does not heal in seconds")

	// While main's breaker is open, the next notification goes straight to the backup.
	id2 := b.create(t, nil)
	_, err = b.svc.Deliver(context.Background(), id2)
	require.NoError(t, err)
	d2 := b.delivery(t, id2)
	require.Len(t, d2.AttemptLog, 1)
	require.Equal(t, "sendgrid-backup", d2.Partner)
}

func TestCircuitBreakerOpensAndCloses(t *testing.T) {
	t.Parallel()
	b := setup(t, options{
		sandbox: func(c *sandbox.Config) {
			c.Faults = []sandbox.Fault{{Kind: sandbox.FaultStatus, Status: 503, Times: 3}}
		},
		breaker: notify.BreakerConfig{Failures: 3, Cooldown: time.Minute},
		policy:  notify.RetryPolicy{Base: time.Second},
	})
	for range 3 {
		_, err := b.svc.Deliver(context.Background(), b.create(t, nil))
		require.NoError(t, err)
	}
	require.Equal(t, notify.BreakerOpen, b.svc.BreakerStates()["sendgrid-main"])

	// Open: no request goes out; the delivery waits for the cooldown.
	id := b.create(t, nil)
	wait, err := b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, time.Minute, wait)
	require.Empty(t, b.delivery(t, id).AttemptLog)
	require.Equal(t, herald.StateQueued, b.delivery(t, id).State)

	b.clock.Advance(time.Minute)
	require.Equal(t, notify.BreakerHalfOpen, b.svc.BreakerStates()["sendgrid-main"])
	_, err = b.svc.Deliver(context.Background(), id) // the probe; the fault is spent
	require.NoError(t, err)
	require.Equal(t, herald.StateAccepted, b.delivery(t, id).State)
	require.Equal(t, notify.BreakerClosed, b.svc.BreakerStates()["sendgrid-main"])
	require.Equal(t, 0.0, breakerGauge(t, b, "sendgrid-main"))
}

func breakerGauge(t *testing.T, b *bundle, partner string) float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "herald_partner_breaker_open" {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == partner {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatal("no breaker gauge")
	return 0
}

func TestUnknownOutcomeIsRetriedAndCountedAsAPossibleDuplicate(t *testing.T) {
	t.Parallel()
	b := setup(t, options{sandbox: func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Kind: sandbox.FaultEmptyBody, Times: 1}}
	}})
	id := b.create(t, nil)
	wait, err := b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	require.Positive(t, wait)
	d := b.delivery(t, id)
	require.Equal(t, herald.StateQueued, d.State, "unknown is never success")
	require.Equal(t, herald.OutcomeUnknown, d.AttemptLog[0].Outcome)

	b.clock.Advance(wait)
	_, err = b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	d = b.delivery(t, id)
	require.Equal(t, herald.StateAccepted, d.State)
	require.Equal(t, 1, d.PossibleDuplicates)
	require.Len(t, b.sb.Messages(sandbox.MessageFilter{MetadataKey: herald.MetaDeliveryID, MetadataValue: id}), 2,
		"the partner did take the first one: the duplicate is real, and counted")
	require.Equal(t, 1.0, b.counter(t, "herald_delivery_possible_duplicates_total"))
}

func TestCreateValidates(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	for _, tc := range []struct {
		req   notify.CreateRequest
		field string
	}{
		{notify.CreateRequest{Subject: "s", Text: "t"}, "recipients"},
		{notify.CreateRequest{Recipients: []herald.Recipient{{Type: "sms", Target: "+1"}}, Subject: "s", Text: "t"}, "recipients[0].type"},
		{notify.CreateRequest{Recipients: []herald.Recipient{{Type: "email", Target: "Bob <b@example.com>"}}, Subject: "s", Text: "t"}, "recipients[0].target"},
		{request(nil), ""},
		{notify.CreateRequest{Recipients: request(nil).Recipients, Text: "t"}, "subject"},
		{notify.CreateRequest{Recipients: request(nil).Recipients, Subject: "a\r\nBcc: x", Text: "t"}, "subject"},
		{notify.CreateRequest{Recipients: request(nil).Recipients, Subject: "s"}, "text"},
		{request(map[string]string{"herald_delivery_id": "x"}), "metadata.herald_delivery_id"},
		{request(map[string]string{"event": "x"}), "metadata.event"},
		{request(map[string]string{"big": strings.Repeat("x", 3000)}), "metadata.big"},
	} {
		_, _, err := b.svc.Create(context.Background(), tc.req, "")
		if tc.field == "" {
			require.NoError(t, err)
			continue
		}
		require.Equal(t, herald.EINVALID, herald.ErrorCode(err), "%+v: %v", tc.req, err)
		var he *herald.Error
		require.ErrorAs(t, err, &he)
		require.Equal(t, tc.field, he.Fields[0].Field)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	ctx := context.Background()
	n1, existed, err := b.svc.Create(ctx, request(nil), "key-1")
	require.NoError(t, err)
	require.False(t, existed)
	n2, existed, err := b.svc.Create(ctx, request(nil), "key-1")
	require.NoError(t, err)
	require.True(t, existed)
	require.Equal(t, n1.ID, n2.ID)
	require.Len(t, b.queued, 1, "the same request is not queued twice")

	other := request(nil)
	other.Subject = "different"
	_, _, err = b.svc.Create(ctx, other, "key-1")
	require.Equal(t, herald.EINVALID, herald.ErrorCode(err))
}

func TestRetryAFailedDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t, options{sandbox: func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Kind: sandbox.FaultStatus, Status: 400, Times: 1}}
	}})
	id := b.create(t, nil)
	_, err := b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, herald.StateFailed, b.delivery(t, id).State)

	d, err := b.svc.Retry(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, herald.StateQueued, d.State)
	require.Equal(t, []string{id, id}, b.queued)
	_, err = b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	d = b.delivery(t, id)
	require.Equal(t, herald.StateAccepted, d.State)
	require.Len(t, d.AttemptLog, 2)

	_, err = b.svc.Retry(context.Background(), id)
	require.Equal(t, herald.ECONFLICT, herald.ErrorCode(err), "an accepted delivery is never sent again")
	_, err = b.svc.Retry(context.Background(), "dlv_nope")
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(err))
}

func TestInterruptedAttemptIsRecordedAsUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	id := b.create(t, nil)
	// A process that died mid-attempt leaves the delivery in sending.
	_, err := b.db.Update(context.Background(), id, func(d *herald.Delivery) (sqlstore.Change, error) {
		d.Partner = "sendgrid-main"
		return sqlstore.Change{To: herald.StateSending, Cause: "attempt 1"}, nil
	})
	require.NoError(t, err)
	_, err = b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	d := b.delivery(t, id)
	require.Equal(t, herald.StateAccepted, d.State)
	require.Len(t, d.AttemptLog, 2)
	require.Equal(t, "interrupted", d.AttemptLog[0].Reason)
	require.Equal(t, herald.OutcomeUnknown, d.AttemptLog[0].Outcome)
	require.Equal(t, 1, d.PossibleDuplicates)
}

func TestExtraJobsAreHarmless(t *testing.T) {
	t.Parallel()
	b := setup(t, options{sandbox: func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Kind: sandbox.FaultStatus, Status: 503, Times: 1}}
	}})
	id := b.create(t, nil)
	wait, err := b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, 1500*time.Millisecond, wait)

	// A second job for the same delivery, before it is due, keeps the backoff.
	b.clock.Advance(time.Second)
	early, err := b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, 500*time.Millisecond, early)
	require.Len(t, b.delivery(t, id).AttemptLog, 1, "no attempt before it is due")

	// A job for a delivery another worker is sending waits for its lease.
	lease := b.clock.Now().Add(time.Minute)
	_, err = b.db.Update(context.Background(), id, func(d *herald.Delivery) (sqlstore.Change, error) {
		d.LeaseUntil, d.NextAttemptAt = &lease, nil
		return sqlstore.Change{To: herald.StateSending, Cause: "another worker"}, nil
	})
	require.NoError(t, err)
	held, err := b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, time.Minute, held)
	require.Len(t, b.delivery(t, id).AttemptLog, 1)
}

func TestFailoverOnALongThrottle(t *testing.T) {
	t.Parallel()
	b := setup(t, options{
		sandbox: func(c *sandbox.Config) {
			// One send per 10 minutes for SendGrid, per credential: the
			// main key's token is spent first, the backup key has its own.
			c.Limits = map[sandbox.Partner]sandbox.Rate{sandbox.SendGrid: {PerSecond: 1.0 / 600, Burst: 1}}
		},
		partners: func(url string, c clock.Clock) []herald.Provider {
			return []herald.Provider{
				sendgridPartner(t, "sendgrid-main", "SG.sandbox", url, c),
				sendgridPartner(t, "sendgrid-backup", "SG.sandbox", url, c),
			}
		},
	})
	first := b.create(t, nil)
	_, err := b.svc.Deliver(context.Background(), first)
	require.NoError(t, err)
	require.Equal(t, "sendgrid-main", b.delivery(t, first).Partner)

	id := b.create(t, nil)
	wait, err := b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	d := b.delivery(t, id)
	// Both partners share the sandbox's key here, so the backup is throttled
	// too — and, being the last, the delivery waits the named 10 minutes.
	require.Len(t, d.AttemptLog, 2)
	require.Equal(t, "sendgrid-main", d.AttemptLog[0].Partner)
	require.Equal(t, "sendgrid-backup", d.AttemptLog[1].Partner)
	require.Equal(t, herald.OutcomeThrottled, d.AttemptLog[1].Outcome)
	require.Equal(t, 10*time.Minute, wait)
	require.Equal(t, herald.StateQueued, d.State)
}
