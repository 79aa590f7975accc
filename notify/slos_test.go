package notify_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/notify"
	"herald/provider/pagerduty"
	"herald/sandbox"
)

// noEvents is the event store of tests whose SLOs are all delivery SLOs:
// they never read events.
type noEvents struct{}

func (noEvents) SLICounts(context.Context, string, string, time.Time, time.Time) ([]herald.SLIMinute, error) {
	return nil, errors.New("delivery SLOs read no events")
}

// incident is the proof bundle (SendGrid through the sandbox, its signed
// event webhook applied as /hooks does, in simulated time) with a
// PagerDuty fallback recipient, the reconciler, and the SLO engine with
// the built-in email delivery SLOs.
type incident struct {
	*bundle
	slos       *notify.SLOs
	reconciler *notify.Reconciler
}

const confirmWithin = 15 * time.Minute // T_final

func setupIncident(t *testing.T) *incident {
	t.Helper()
	ctx := context.Background()
	b := setupProof(t)
	pdDest, err := b.db.CreateDestination(ctx, herald.Destination{Type: "pagerduty", Details: herald.DestinationDetails{
		PagerDutyIntegrationName: "on-call", PagerDutyIntegrationKey: "R0UT1NGK3Y0123456789abcdefABCDEF"}})
	require.NoError(t, err)
	pd, err := pagerduty.New(pagerduty.Config{BaseURL: b.sb.URL, Destinations: b.db, Clock: b.clock})
	require.NoError(t, err)
	b.svc, err = notify.New(notify.Config{Store: b.db, Clock: b.clock, Enqueue: b.enqueue,
		Channels: map[string][]herald.Provider{"email": {sendgridPartner(t, "sendgrid-main", "SG.sandbox", b.sb.URL, b.clock)}, "pagerduty": {pd}}})
	require.NoError(t, err)
	slos, err := notify.NewSLOs(notify.SLOsConfig{Store: b.db, Events: noEvents{}, Enqueue: b.enqueue, Clock: b.clock,
		BaseURL: "https://herald.example.com",
		Delivery: notify.DeliverySLOConfig{Channels: []string{"email"}, EmailPartners: []string{"sendgrid-main"},
			FinalWithin: map[string]time.Duration{"email": confirmWithin + 5*time.Minute},
			Fallback:    []notify.Fallback{{Channel: "pagerduty", Target: pdDest.ID}}}})
	require.NoError(t, err)
	require.NoError(t, slos.EnsureDeliverySLOs(ctx))
	rec, err := notify.NewReconciler(notify.ReconcilerConfig{Store: b.db, Clock: b.clock,
		Deadlines: map[string]time.Duration{"sendgrid-main": confirmWithin}})
	require.NoError(t, err)
	return &incident{bundle: b, slos: slos, reconciler: rec}
}

// pages returns the PagerDuty events the fallback received that open a
// critical incident (a page; tickets arrive as warnings), by SLO name.
func (in *incident) pages() map[string]sandbox.Notification {
	out := map[string]sandbox.Notification{}
	for _, n := range in.sb.Notifications(sandbox.NotificationFilter{Channel: sandbox.PagerDuty}) {
		if !strings.Contains(n.Body, `"event_action":"trigger"`) || !strings.Contains(n.Body, `"severity":"critical"`) {
			continue
		}
		for _, name := range []string{"Delivery: email", "Delivery latency: email"} {
			if _, seen := out[name]; !seen && strings.Contains(n.Body, `"name":"`+name+`"`) {
				out[name] = n
			}
		}
	}
	return out
}

// run sends one trigger notification every 6 s (the metadata a trigger
// notification carries included) for the given time, delivering each as
// the queue would, with the reconciler and the SLO engine running as in
// herald serve. It stops early once stop returns true.
func (in *incident) run(t *testing.T, d time.Duration, stop func() bool) {
	t.Helper()
	ctx := context.Background()
	end := in.clock.Now().Add(d)
	for in.clock.Now().Before(end) {
		_, _, err := in.svc.Create(ctx, notify.CreateRequest{Recipients: []herald.Recipient{{Type: "email", Target: "team@example.com"}},
			Subject: "Triggered: p99 latency", Text: "p99 above 2s",
			Metadata: map[string]string{"trigger": "checkout-p99", "team": "platform"}}, "")
		require.NoError(t, err)
		in.runJobs(t)
		in.clock.Advance(6 * time.Second)
		_, err = in.reconciler.Tick(ctx, in.clock.Now())
		require.NoError(t, err)
		require.NoError(t, in.slos.Tick(ctx, in.clock.Now()))
		in.runJobs(t) // the burn alerts' notifications
		if stop() {
			return
		}
	}
}

// The incident, replayed: a healthy hour, then at T the partner refuses
// the metadata value it accepted a moment before (a 400 its SDK would have
// hidden). herald pages through the fallback (PagerDuty, another channel)
// within minutes.
func TestIncidentReplayRejectedMetadata(t *testing.T) {
	t.Parallel()
	in := setupIncident(t)
	in.run(t, time.Hour, func() bool { return false })
	require.Empty(t, in.pages(), "a healthy hour pages no one")

	T := in.clock.Now()
	_, err := in.sb.AddFault(sandbox.Fault{Partner: sandbox.SendGrid, Kind: sandbox.FaultRejectMetadata, Key: "team"})
	require.NoError(t, err)
	in.run(t, 30*time.Minute, func() bool { return len(in.pages()) > 0 })
	page, ok := in.pages()["Delivery: email"]
	require.True(t, ok, "herald must page through the fallback")
	detected := in.clock.Now().Sub(T)
	t.Logf("rejecting partner: the email delivery SLO paged %v after T (goal ≤ 5m)", detected)
	require.LessOrEqual(t, detected, 5*time.Minute)

	body := page.Body
	require.Contains(t, body, `"budget_remaining_percent"`)
	require.Regexp(t, `"windows":\[\{"window":"(1h|6h)","burn_rate":[0-9.]+,"threshold":(14.4|6),"good":600,"bad":10\}`, body)
	require.Contains(t, body, `failed: rejected/validation`, "the top failure reason travels with the page")
	require.Contains(t, body, `"partner":"sendgrid-main"`)
	require.Contains(t, body, `https://herald.example.com/1/deliveries?channel=email`)

	o := in.deliverySLO(t, herald.SLIDelivered)
	st, err := in.slos.Status(context.Background(), o)
	require.NoError(t, err)
	require.Equal(t, herald.SLOTriggered, st.Status)
	require.Less(t, st.BudgetRemaining, 100.0)
	events, err := in.db.BurnAlertEvents(context.Background(), o.ID, 10)
	require.NoError(t, err)
	var notified, inhibited int
	for _, ev := range events {
		require.Equal(t, "firing", ev.To, "%+v", ev)
		if ev.Inhibited {
			inhibited++
			require.Empty(t, ev.NotificationID, "a page holds the tickets of its SLO back")
		} else {
			notified++
			n, err := in.db.GetNotification(context.Background(), ev.NotificationID)
			require.NoError(t, err)
			// What an email fallback would read.
			require.Contains(t, n.Text, "burn rate")
			require.Contains(t, n.Text, "Top failures:\n  10 × sendgrid-main failed: rejected/validation")
			require.Contains(t, n.Text, "Failing deliveries: https://herald.example.com/1/deliveries?channel=email")
			require.Contains(t, n.HTML, "<td>sendgrid-main</td><td>failed: rejected/validation</td><td>10</td>")
		}
	}
	require.Equal(t, 2, notified, "both pages: with one hour of history the 6h window holds the same hour")
	require.Equal(t, 2, inhibited, "both tickets fire, held back by the page")
	healthy, why := in.slos.Healthy(in.clock.Now())
	require.False(t, healthy)
	require.Contains(t, why, "paging")
}

// The second shape of silence: the partner accepts everything and never
// confirms. The latency SLI pages first; the availability SLI pages once
// the confirmation deadline (T_final) turns the deliveries unconfirmed.
func TestIncidentReplayNeverConfirmed(t *testing.T) {
	t.Parallel()
	in := setupIncident(t)
	in.run(t, time.Hour, func() bool { return false })
	require.Empty(t, in.pages())

	T := in.clock.Now()
	_, err := in.sb.AddFault(sandbox.Fault{Partner: sandbox.SendGrid, Kind: sandbox.FaultNeverConfirm})
	require.NoError(t, err)
	at := map[string]time.Duration{}
	in.run(t, 40*time.Minute, func() bool {
		for name := range in.pages() {
			if _, seen := at[name]; !seen {
				at[name] = in.clock.Now().Sub(T)
			}
		}
		return len(at) == 2
	})
	require.Len(t, at, 2, "both delivery SLOs page: %v", at)
	t.Logf("never-confirming partner: the latency SLO paged %v after T, the availability SLO %v after T (T_final %v; goal ≤ T_final + 2m)",
		at["Delivery latency: email"], at["Delivery: email"], confirmWithin)
	require.LessOrEqual(t, at["Delivery: email"], confirmWithin+2*time.Minute)
	require.LessOrEqual(t, at["Delivery latency: email"], at["Delivery: email"], "the latency SLI is the faster detector")
	require.Contains(t, in.pages()["Delivery: email"].Body, "sendgrid-main unconfirmed")
}

func (in *incident) deliverySLO(t *testing.T, sli string) herald.SLO {
	t.Helper()
	list, err := in.db.ListSLOs(context.Background(), herald.DeliveryDataset)
	require.NoError(t, err)
	for _, o := range list {
		if o.SLI.Alias == sli && o.Channel == "email" {
			return o
		}
	}
	t.Fatalf("no email delivery SLO over %s", sli)
	return herald.SLO{}
}

// herald refuses a fallback that travels the path it watches.
func TestDeliverySLOFallbackMustTakeAnotherPath(t *testing.T) {
	t.Parallel()
	cfg := func(fb ...notify.Fallback) notify.DeliverySLOConfig {
		return notify.DeliverySLOConfig{EmailPartners: []string{"sendgrid-main", "postmark-backup"}, Fallback: fb}
	}
	err := cfg(notify.Fallback{Channel: "email", Target: "oncall@example.com", Partner: "postmark-backup"}).Validate()
	require.ErrorContains(t, err, "the email delivery SLO's alerts would travel the path it watches")
	err = cfg(notify.Fallback{Channel: "pagerduty", Target: "rcp_pd"}).Validate()
	require.ErrorContains(t, err, "the pagerduty delivery SLO's alerts would travel the path it watches")
	require.NoError(t, cfg(notify.Fallback{Channel: "pagerduty", Target: "rcp_pd"},
		notify.Fallback{Channel: "email", Target: "oncall@example.com", Partner: "ses-fallback"}).Validate())
	require.ErrorContains(t, cfg(notify.Fallback{Channel: "email", Target: "oncall@example.com"}).Validate(), "must name its partner")
	require.NoError(t, cfg().Validate(), "no fallback: herald warns instead")
}
