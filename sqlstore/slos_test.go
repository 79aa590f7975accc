package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/sqlstore"
)

// move walks delivery id through states, one second apart.
func move(t *testing.T, db *sqlstore.DB, c interface{ Advance(time.Duration) }, id string, states ...herald.DeliveryState) {
	t.Helper()
	for _, st := range states {
		c.Advance(time.Second)
		_, err := db.Update(context.Background(), id, func(d *herald.Delivery) (sqlstore.Change, error) {
			d.Partner = "p"
			return sqlstore.Change{To: st, Cause: "test"}, nil
		})
		require.NoError(t, err)
	}
}

// A delivery is judged once, when it first reaches a final state; a later
// state (an operator's retry that succeeds) does not change the judgement.
func TestDeliveriesAreJudgedOnce(t *testing.T) {
	t.Parallel()
	db, c, _ := open(t)
	ctx := context.Background()
	_, _, err := db.CreateNotification(ctx, notification("n1", "a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"), "", noEnqueue)
	require.NoError(t, err)
	move(t, db, c, "n1-d0", herald.StateSending, herald.StateAccepted, herald.StateDelivered)
	move(t, db, c, "n1-d1", herald.StateSending, herald.StateAccepted, herald.StateBounced)
	move(t, db, c, "n1-d2", herald.StateSending, herald.StateFailed, herald.StateQueued, herald.StateSending, herald.StateAccepted, herald.StateDelivered)
	move(t, db, c, "n1-d3", herald.StateSending, herald.StateAccepted)
	want := map[string]herald.Judgement{"n1-d0": herald.JudgedGood, "n1-d1": herald.JudgedExcluded, "n1-d2": herald.JudgedBad, "n1-d3": "", "n1-d4": ""}
	for id, j := range want {
		d, err := db.GetDelivery(ctx, id)
		require.NoError(t, err)
		require.Equal(t, j, d.Judgement, id)
		require.Equal(t, j != "", d.JudgedAt != nil, id)
	}
	d2, _ := db.GetDelivery(ctx, "n1-d2")
	require.Equal(t, t0.Add(8*time.Second), *d2.JudgedAt, "judged when it first failed")

	// Nothing confirms this channel's acceptance: judged good at once.
	n, err := db.JudgeAccepted(ctx, "email", []string{"other"}, c.Now())
	require.NoError(t, err)
	require.Zero(t, n, "only the partners named")
	n, err = db.JudgeAccepted(ctx, "email", []string{"p"}, c.Now())
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	// n1-d4 never left queued: bad once its channel's deadline passes.
	n, err = db.JudgeOverdue(ctx, "email", time.Hour, t0.Add(59*time.Minute))
	require.NoError(t, err)
	require.Zero(t, n)
	c.Advance(t0.Add(time.Hour).Sub(c.Now()))
	n, err = db.JudgeOverdue(ctx, "email", time.Hour, c.Now())
	require.NoError(t, err)
	require.EqualValues(t, 1, n)

	js, err := db.DeliveryJudgements(ctx, t0, t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.Equal(t, []herald.DeliveryJudgements{
		{Channel: "email", Minute: t0, Good: 2, Bad: 1, Excluded: 1},
		{Channel: "email", Minute: t0.Add(time.Hour), Bad: 1},
	}, js)

	bad, err := db.ListDeliveries(ctx, sqlstore.DeliveryFilter{Channel: "email", Judgement: herald.JudgedBad, JudgedSince: t0.Add(time.Minute)})
	require.NoError(t, err)
	require.Equal(t, []string{"n1-d4"}, ids(bad))

	top, err := db.TopFailures(ctx, "email", t0, t0.Add(2*time.Hour), 5)
	require.NoError(t, err)
	require.Equal(t, []herald.FailureCount{{Partner: "", Reason: "overdue while queued", Count: 1}, {Partner: "p", Reason: "delivered", Count: 1}}, top,
		"a failure judged bad that later succeeded keeps its judgement")
}

// The latency SLI: good when delivered within the threshold, else bad at
// creation + threshold (or when it failed, if sooner).
func TestLatencyJudgements(t *testing.T) {
	t.Parallel()
	db, c, _ := open(t)
	ctx := context.Background()
	_, _, err := db.CreateNotification(ctx, notification("n1", "a@example.com", "b@example.com", "c@example.com", "d@example.com"), "", noEnqueue)
	require.NoError(t, err)
	move(t, db, c, "n1-d0", herald.StateSending, herald.StateAccepted, herald.StateDelivered) // delivered at 3s
	move(t, db, c, "n1-d1", herald.StateSending, herald.StateFailed)                          // failed at 5s
	move(t, db, c, "n1-d2", herald.StateSending, herald.StateAccepted)                        // never confirmed
	c.Advance(t0.Add(10 * time.Minute).Sub(c.Now()))
	move(t, db, c, "n1-d3", herald.StateSending, herald.StateAccepted, herald.StateDelivered) // delivered after 10 min

	js, err := db.LatencyJudgements(ctx, "email", 5*time.Minute, t0, t0.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, []herald.DeliveryJudgements{
		{Channel: "email", Minute: t0, Good: 1, Bad: 1},
		{Channel: "email", Minute: t0.Add(5 * time.Minute), Bad: 2},
	}, js)
	// Windows split the same judgements without counting one twice.
	a, err := db.LatencyJudgements(ctx, "email", 5*time.Minute, t0, t0.Add(5*time.Minute))
	require.NoError(t, err)
	b, err := db.LatencyJudgements(ctx, "email", 5*time.Minute, t0.Add(5*time.Minute), t0.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, js, append(a, b...))
}

func TestSLOsAndBurnAlerts(t *testing.T) {
	t.Parallel()
	db, c, _ := open(t)
	ctx := context.Background()
	mins := 240
	o, alerts, err := db.SaveSLO(ctx, herald.SLO{Name: "checkout", Dataset: "shop", SLI: herald.SLIRef{Alias: "sli.ok"}, TimePeriodDays: 30,
		TargetPerMillion: 999000, Tags: []herald.Tag{}, DatasetSlugs: []string{"shop"}},
		[]herald.BurnAlert{{AlertType: herald.AlertExhaustionTime, ExhaustionMinutes: &mins, Severity: herald.SeverityPage,
			Recipients: []herald.TriggerRecipient{{Type: "email", Target: "oncall@example.com"}}}})
	require.NoError(t, err)
	require.NotEmpty(t, o.ID)
	require.Len(t, alerts, 1)
	a := alerts[0]
	require.Equal(t, o.ID, a.SLO.ID)
	require.NotEmpty(t, a.Recipients[0].ID, "an inline recipient becomes a recipient record")
	require.Equal(t, "ok", a.State)

	got, err := db.GetSLO(ctx, "shop", o.ID)
	require.NoError(t, err)
	require.Equal(t, o, got)
	_, err = db.GetSLO(ctx, "other", o.ID)
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(err))

	// The alert's recipient cannot be deleted while the alert uses it.
	err = db.DeleteDestination(ctx, a.Recipients[0].ID)
	require.Equal(t, herald.ECONFLICT, herald.ErrorCode(err))
	require.ErrorContains(t, err, "1 burn alert(s)")

	// Lifecycle, a recorded change and the notification it owes: together.
	c.Advance(time.Minute)
	ev := &herald.BurnAlertEvent{SLOID: o.ID, BurnAlertID: a.ID, From: "ok", To: "firing", At: c.Now(), BurnRates: map[string]float64{"1h": 20}}
	n := notification("n-burn", "oncall@example.com")
	require.NoError(t, db.SaveAlertProgress(ctx, map[string]sqlstore.AlertProgress{a.ID: {State: herald.AlertFiring}}, ev, n, noEnqueue))
	got2, err := db.GetBurnAlert(ctx, "shop", a.ID)
	require.NoError(t, err)
	require.True(t, got2.Triggered)
	require.Equal(t, "firing", got2.State)
	evs, err := db.BurnAlertEvents(ctx, o.ID, 10)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, "n-burn", evs[0].NotificationID)
	require.Equal(t, 20.0, evs[0].BurnRates["1h"])
	progress, err := db.AlertProgress(ctx, o.ID)
	require.NoError(t, err)
	require.Equal(t, herald.AlertFiring, progress[a.ID].State)

	// A replaced alert keeps its state and creation time.
	a.Description = "budget gone within 4h"
	c.Advance(time.Minute)
	a2, err := db.SaveBurnAlert(ctx, a)
	require.NoError(t, err)
	require.Equal(t, "firing", a2.State)
	require.Equal(t, a.CreatedAt, a2.CreatedAt)
	list, err := db.ListBurnAlerts(ctx, "shop", o.ID)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "budget gone within 4h", list[0].Description)

	_, err = db.SaveBurnAlert(ctx, herald.BurnAlert{SLO: herald.SLORef{ID: "slo_nope"}, Dataset: "shop"})
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(err))

	// Deleting the SLO takes its alerts and history with it.
	require.NoError(t, db.DeleteSLO(ctx, "shop", o.ID))
	list, err = db.ListBurnAlerts(ctx, "", "")
	require.NoError(t, err)
	require.Empty(t, list)
	evs, err = db.BurnAlertEvents(ctx, o.ID, 10)
	require.NoError(t, err)
	require.Empty(t, evs)
	require.NoError(t, db.DeleteDestination(ctx, a.Recipients[0].ID), "no longer used")
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(db.DeleteSLO(ctx, "shop", o.ID)))
}
