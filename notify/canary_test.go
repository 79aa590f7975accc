package notify_test

import (
	"context"
	"database/sql"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/clock"
	"herald/notify"
	"herald/provider/pagerduty"
	"herald/provider/webhook"
	"herald/sandbox"
)

// enqueue records delivery jobs, as the queue would take them.
func (b *bundle) enqueue(_ context.Context, _ *sql.Tx, ids []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queued = append(b.queued, ids...)
	return nil
}

// runJobs delivers every queued delivery once, as the queue would.
func (b *bundle) runJobs(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	ids := b.queued
	b.queued = nil
	b.mu.Unlock()
	for _, id := range ids {
		_, err := b.svc.Deliver(context.Background(), id)
		require.NoError(t, err)
	}
}

// A partner that accepts but never delivers is reported failing within one
// canary period plus its confirmation deadline; a healthy one passes every
// period.
func TestCanaryCatchesAPartnerThatAcceptsButNeverDelivers(t *testing.T) {
	t.Parallel()
	b := setup(t, options{sandbox: func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Partner: sandbox.SendGrid, Kind: sandbox.FaultNeverConfirm}}
	}})
	const period, deadline = 5 * time.Minute, 30 * time.Minute
	canaries, err := notify.NewCanaries(notify.CanaryConfig{Store: b.db, Enqueue: b.enqueue, Partners: []string{"sendgrid-main"}, Confirms: map[string]bool{"sendgrid-main": true}, To: "canary@example.com",
		Every: period, Clock: b.clock, Registerer: b.reg})
	require.NoError(t, err)
	rec, err := notify.NewReconciler(notify.ReconcilerConfig{Store: b.db, Clock: b.clock,
		Deadlines: map[string]time.Duration{"sendgrid-main": deadline}})
	require.NoError(t, err)

	// Every 30 s of simulated time: the reconciler, canaries, jobs.
	var failedAt time.Time
	for b.clock.Now().Before(t0.Add(period + deadline + time.Minute)) {
		_, err := rec.Tick(context.Background(), b.clock.Now())
		require.NoError(t, err)
		require.NoError(t, canaries.Tick(context.Background(), b.clock.Now()))
		b.runJobs(t)
		list, err := b.db.Canaries(context.Background(), "sendgrid-main", false, 100)
		require.NoError(t, err)
		for _, c := range list {
			if c.Result == herald.CanaryFailed && failedAt.IsZero() {
				failedAt = b.clock.Now()
			}
		}
		b.clock.Advance(30 * time.Second)
	}
	require.False(t, failedAt.IsZero(), "the canary failed")
	require.LessOrEqual(t, failedAt.Sub(t0), period+deadline, "within one period plus the deadline")
	list, err := b.db.Canaries(context.Background(), "sendgrid-main", false, 100)
	require.NoError(t, err)
	require.Len(t, list, 8, "one canary every 5 minutes over 36 minutes")
	first := list[len(list)-1]
	require.Equal(t, herald.CanaryFailed, first.Result)
	require.Contains(t, first.Detail, "unconfirmed: no final event from sendgrid-main")
	require.Equal(t, deadline, first.LatencyNS)
	require.Equal(t, 0.0, gauge(t, b, "herald_canary_up", "sendgrid-main"))
	// The canary went through the same path as a real notification,
	// pinned to its partner.
	d, err := b.db.GetDelivery(context.Background(), first.DeliveryID)
	require.NoError(t, err)
	require.Equal(t, "sendgrid-main", d.PinnedPartner)
	require.Len(t, b.sb.Messages(sandbox.MessageFilter{}), 8)
}

// gauge reads a gauge of b's registry by name and partner label.
func gauge(t *testing.T, b *bundle, name, partner string) float64 {
	t.Helper()
	families, err := b.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "partner" && l.GetValue() == partner {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{partner=%q}", name, partner)
	return 0
}

// A partner with no event webhook can show no more than acceptance: its
// canary passes when accepted.
func TestCanaryPassesAtAcceptanceWithoutAnEventWebhook(t *testing.T) {
	t.Parallel()
	b := setup(t, options{})
	canaries, err := notify.NewCanaries(notify.CanaryConfig{Store: b.db, Enqueue: b.enqueue, Partners: []string{"sendgrid-main"}, To: "canary@example.com", Clock: b.clock, Registerer: b.reg})
	require.NoError(t, err)
	require.NoError(t, canaries.Tick(context.Background(), b.clock.Now()))
	b.runJobs(t)
	b.clock.Advance(time.Second)
	require.NoError(t, canaries.Tick(context.Background(), b.clock.Now()))
	list, err := b.db.Canaries(context.Background(), "", false, 10)
	require.NoError(t, err)
	require.Len(t, list, 1, "the next is due in 5 minutes")
	require.Equal(t, herald.CanaryPassed, list[0].Result)
	require.Equal(t, "accepted", list[0].Detail)
	require.Equal(t, time.Second, list[0].LatencyNS)
	require.Equal(t, 1.0, gauge(t, b, "herald_canary_up", "sendgrid-main"))
}

// destinations is a map-backed herald.Destinations: the store's role.
type destinations map[string]herald.Destination

func (d destinations) GetDestination(_ context.Context, id string) (herald.Destination, error) {
	if dest, ok := d[id]; ok {
		return dest, nil
	}
	return herald.Destination{}, herald.Errorf(herald.ENOTFOUND, "no recipient %q", id)
}

// Webhook and PagerDuty recipients have canaries too: the webhook's
// receiver takes a test alert; PagerDuty gets a resolve, so no incident
// opens.
func TestCanaryThroughWebhookAndPagerDuty(t *testing.T) {
	t.Parallel()
	dests := destinations{}
	b := setup(t, options{partners: func(url string, c clock.Clock) []herald.Provider {
		dests["rcp_hook"] = herald.Destination{ID: "rcp_hook", Type: "webhook", Details: herald.DestinationDetails{
			WebhookName: "canary", WebhookURL: url + "/_sandbox/hooks/canary", WebhookSecret: "s3cret"}}
		dests["rcp_pd"] = herald.Destination{ID: "rcp_pd", Type: "pagerduty", Details: herald.DestinationDetails{
			PagerDutyIntegrationName: "canary", PagerDutyIntegrationKey: "R0UT1NGK3Y0123456789abcdefABCDEF"}}
		return []herald.Provider{sendgridPartner(t, "sendgrid-main", "SG.sandbox", url, c)}
	}})
	wh, err := webhook.New(webhook.Config{Destinations: dests, Clock: b.clock,
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	require.NoError(t, err)
	pd, err := pagerduty.New(pagerduty.Config{BaseURL: b.sb.URL, Destinations: dests, Clock: b.clock})
	require.NoError(t, err)
	b.svc, err = notify.New(notify.Config{Store: b.db, Clock: b.clock,
		Enqueue: func(ctx context.Context, tx *sql.Tx, ids []string) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.queued = append(b.queued, ids...)
			return nil
		},
		Channels: map[string][]herald.Provider{"webhook": {wh}, "pagerduty": {pd}}})
	require.NoError(t, err)
	canaries, err := notify.NewCanaries(notify.CanaryConfig{Store: b.db, Enqueue: b.enqueue, Recipients: []herald.Destination{dests["rcp_hook"], dests["rcp_pd"]}, Clock: b.clock})
	require.NoError(t, err)
	require.NoError(t, canaries.Tick(context.Background(), b.clock.Now()))
	b.runJobs(t)
	b.clock.Advance(time.Second)
	require.NoError(t, canaries.Tick(context.Background(), b.clock.Now()))
	list, err := b.db.Canaries(context.Background(), "", false, 10)
	require.NoError(t, err)
	require.Len(t, list, 2)
	for _, c := range list {
		require.Equal(t, herald.CanaryPassed, c.Result, "%+v", c)
	}
	hooks := b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.Webhook})
	require.Len(t, hooks, 1)
	require.Contains(t, hooks[0].Body, `"is_test":true`)
	pdEvents := b.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.PagerDuty})
	require.Len(t, pdEvents, 1)
	require.Contains(t, pdEvents[0].Body, `"event_action":"resolve"`)
}
