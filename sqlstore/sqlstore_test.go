package sqlstore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/clock"
	"herald/sqlstore"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func open(t testing.TB) (*sqlstore.DB, *clock.Fake, string) {
	t.Helper()
	c := clock.NewFake(t0)
	path := filepath.Join(t.TempDir(), "herald.db")
	db, err := sqlstore.Open(context.Background(), path, c)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db, c, path
}

func noEnqueue(context.Context, *sql.Tx, []string) error { return nil }

func notification(id string, recipients ...string) *herald.Notification {
	n := &herald.Notification{ID: id, Subject: "s", Text: "t", Metadata: map[string]string{"k": "v"}, CreatedAt: t0}
	for i, r := range recipients {
		rc := herald.Recipient{Type: "email", Target: r}
		n.Recipients = append(n.Recipients, rc)
		n.Deliveries = append(n.Deliveries, herald.Delivery{ID: id + "-d" + string(rune('0'+i)), Channel: "email", Recipient: rc})
	}
	return n
}

func TestOpenTwiceKeepsData(t *testing.T) {
	t.Parallel()
	db, _, path := open(t)
	_, _, err := db.CreateNotification(context.Background(), notification("n1", "a@example.com"), "h", noEnqueue)
	require.NoError(t, err)
	db.Close()
	again, err := sqlstore.Open(context.Background(), path, nil)
	require.NoError(t, err)
	defer again.Close()
	n, err := again.GetNotification(context.Background(), "n1")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"k": "v"}, n.Metadata)
	require.Len(t, n.Deliveries, 1)
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	db, c, _ := open(t)
	ctx := context.Background()
	k, secret, err := db.CreateAPIKey(ctx, herald.KeyIngest, "collector")
	require.NoError(t, err)
	require.Regexp(t, `^hcxik_[a-z0-9]{46}$`, secret)
	got, err := db.AuthenticateAPIKey(ctx, secret)
	require.NoError(t, err)
	require.Equal(t, k, got)

	var stored int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM api_keys WHERE CAST(secret_hash AS TEXT) LIKE ?`, "%"+secret[6:20]+"%").Scan(&stored))
	require.Zero(t, stored, "only a hash is stored")

	_, _, err = db.CreateAPIKey(ctx, "admin", "x")
	require.Equal(t, herald.EINVALID, herald.ErrorCode(err))
	_, _, err = db.CreateAPIKey(ctx, herald.KeyIngest, " ")
	require.Equal(t, herald.EINVALID, herald.ErrorCode(err))

	c.Advance(time.Hour)
	require.NoError(t, db.RevokeAPIKey(ctx, k.ID))
	_, err = db.AuthenticateAPIKey(ctx, secret)
	require.Equal(t, herald.EUNAUTHORIZED, herald.ErrorCode(err))
	keys, err := db.ListAPIKeys(ctx)
	require.NoError(t, err)
	require.Equal(t, t0.Add(time.Hour), *keys[0].RevokedAt)
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(db.RevokeAPIKey(ctx, "hcxik_nope")))
	_, err = db.AuthenticateAPIKey(ctx, "hcxik_nope")
	require.Equal(t, herald.EUNAUTHORIZED, herald.ErrorCode(err))

	imported, err := db.ImportAPIKey(ctx, herald.KeyConfiguration, "env", "operator-chosen-secret-123")
	require.NoError(t, err)
	again, err := db.ImportAPIKey(ctx, herald.KeyConfiguration, "env", "operator-chosen-secret-123")
	require.NoError(t, err)
	require.Equal(t, imported.ID, again.ID, "importing twice keeps one key")
	_, err = db.ImportAPIKey(ctx, herald.KeyConfiguration, "env", "short")
	require.Equal(t, herald.EINVALID, herald.ErrorCode(err))
}

func TestUpdateEnforcesTheStateMachineAndWritesAtomically(t *testing.T) {
	t.Parallel()
	db, c, _ := open(t)
	ctx := context.Background()
	_, _, err := db.CreateNotification(ctx, notification("n1", "a@example.com"), "h", noEnqueue)
	require.NoError(t, err)
	id := "n1-d0"

	_, err = db.Update(ctx, id, func(d *herald.Delivery) (sqlstore.Change, error) {
		d.Reason = "should not stick"
		return sqlstore.Change{To: herald.StateAccepted, Cause: "skipping sending"}, nil
	})
	var bad *herald.ErrInvalidTransition
	require.ErrorAs(t, err, &bad)
	d, err := db.GetDelivery(ctx, id)
	require.NoError(t, err)
	require.Equal(t, herald.StateQueued, d.State)
	require.Empty(t, d.Reason, "nothing of a refused change is written")

	c.Advance(time.Second)
	_, err = db.Update(ctx, id, func(d *herald.Delivery) (sqlstore.Change, error) {
		return sqlstore.Change{To: herald.StateSending, Cause: "attempt 1"}, nil
	})
	require.NoError(t, err)
	_, err = db.Update(ctx, id, func(d *herald.Delivery) (sqlstore.Change, error) {
		d.Attempts, d.Partner, d.PartnerMessageID = 1, "p", "m-1"
		return sqlstore.Change{To: herald.StateAccepted, Cause: "accepted by p", Attempt: &herald.Attempt{
			ID: "a1", Number: 1, Partner: "p", StartedAt: c.Now(), Duration: time.Millisecond,
			Result: herald.Result{Outcome: herald.OutcomeAccepted, Reason: "ok", Status: 202, MessageID: "m-1",
				RateLimit: map[string]string{"X-RateLimit-Remaining": "9"}}}}, nil
	})
	require.NoError(t, err)
	d, err = db.GetDelivery(ctx, id)
	require.NoError(t, err)
	require.Equal(t, herald.StateAccepted, d.State)
	require.Equal(t, "m-1", d.AttemptLog[0].MessageID)
	require.Equal(t, map[string]string{"X-RateLimit-Remaining": "9"}, d.AttemptLog[0].RateLimit)
	tr, err := db.Transitions(ctx, id)
	require.NoError(t, err)
	require.Equal(t, []sqlstore.Transition{
		{From: "", To: herald.StateQueued, Cause: "created", At: t0},
		{From: herald.StateQueued, To: herald.StateSending, Cause: "attempt 1", At: t0.Add(time.Second)},
		{From: herald.StateSending, To: herald.StateAccepted, Cause: "accepted by p", At: t0.Add(time.Second)},
	}, tr)

	_, err = db.Update(ctx, "nope", func(*herald.Delivery) (sqlstore.Change, error) { return sqlstore.Change{}, nil })
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(err))
}

func TestListDeliveriesAndRequeue(t *testing.T) {
	t.Parallel()
	db, c, _ := open(t)
	ctx := context.Background()
	_, _, err := db.CreateNotification(ctx, notification("n1", "a@example.com", "b@example.com"), "h1", noEnqueue)
	require.NoError(t, err)
	c.Advance(time.Minute)
	n2 := notification("n2", "c@example.com")
	n2.CreatedAt = c.Now()
	_, _, err = db.CreateNotification(ctx, n2, "h2", noEnqueue)
	require.NoError(t, err)
	_, err = db.Update(ctx, "n1-d0", func(d *herald.Delivery) (sqlstore.Change, error) {
		return sqlstore.Change{To: herald.StateSending, Cause: "attempt 1"}, nil
	})
	require.NoError(t, err)
	later := c.Now().Add(time.Hour)
	_, err = db.Update(ctx, "n1-d1", func(d *herald.Delivery) (sqlstore.Change, error) {
		d.NextAttemptAt = &later
		return sqlstore.Change{}, nil
	})
	require.NoError(t, err)

	all, err := db.ListDeliveries(ctx, sqlstore.DeliveryFilter{})
	require.NoError(t, err)
	require.Equal(t, []string{"n2-d0", "n1-d1", "n1-d0"}, ids(all), "newest first")
	sending, err := db.ListDeliveries(ctx, sqlstore.DeliveryFilter{State: herald.StateSending})
	require.NoError(t, err)
	require.Equal(t, []string{"n1-d0"}, ids(sending))
	recent, err := db.ListDeliveries(ctx, sqlstore.DeliveryFilter{Since: t0.Add(time.Second), Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []string{"n2-d0"}, ids(recent))

	var requeued []string
	n, err := db.RequeueUnfinished(ctx, func(_ context.Context, _ *sql.Tx, ids []string) error {
		requeued = ids
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.ElementsMatch(t, []string{"n1-d0", "n2-d0"}, requeued, "sending, and queued and due; not the one waiting")
}

func ids(ds []herald.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func TestQueriesAndResults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _, _ := open(t)
	q, err := db.CreateQuery(ctx, "checkout", herald.Query{Calculations: []herald.Calculation{{Op: "P99", Column: "duration_ms"}}, TimeRange: 600})
	require.NoError(t, err)
	require.NotEmpty(t, q.ID)
	got, err := db.GetQuery(ctx, "checkout", q.ID)
	require.NoError(t, err)
	require.Equal(t, q, got)
	_, err = db.GetQuery(ctx, "other", q.ID)
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(err))

	r := &herald.QueryResult{QueryID: q.ID, Dataset: "checkout", Data: herald.QueryData{Results: []herald.ResultRow{{Data: map[string]any{"COUNT": 3.0}}}}}
	require.NoError(t, db.CreateQueryResult(ctx, r))
	back, err := db.GetQueryResult(ctx, "checkout", r.ID)
	require.NoError(t, err)
	require.Equal(t, r, back)
	n, err := db.DeleteQueryResults(ctx, r.CreatedAt.Add(time.Nanosecond))
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	_, err = db.GetQueryResult(ctx, "checkout", r.ID)
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(err))
}

// A key revoked by another process (herald keys revoke) stops working once
// the cached copy is older than its five seconds.
func TestKeyRevokedElsewhereStopsWithinTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, c, path := open(t)
	k, secret, err := db.CreateAPIKey(ctx, herald.KeyIngest, "collector")
	require.NoError(t, err)
	_, err = db.AuthenticateAPIKey(ctx, secret)
	require.NoError(t, err)

	other, err := sqlstore.Open(ctx, path, c)
	require.NoError(t, err)
	defer other.Close()
	require.NoError(t, other.RevokeAPIKey(ctx, k.ID))
	_, err = db.AuthenticateAPIKey(ctx, secret)
	require.NoError(t, err, "still cached")
	c.Advance(5 * time.Second)
	_, err = db.AuthenticateAPIKey(ctx, secret)
	require.Equal(t, herald.EUNAUTHORIZED, herald.ErrorCode(err))
}

// The scheduler's view follows every save, even two at the same instant.
func TestScheduledTriggersFollowSaves(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _, _ := open(t)
	tr, err := herald.Trigger{Name: "a", DatasetSlug: "d", Frequency: 60,
		Query:     &herald.Query{Calculations: []herald.Calculation{{Op: "COUNT"}}},
		Threshold: &herald.Threshold{Op: ">", Value: 1}}.Normalize()
	require.NoError(t, err)
	tr, err = db.SaveTrigger(ctx, tr)
	require.NoError(t, err)
	got, err := db.ScheduledTriggers(ctx)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, 1.0, got[0].Trigger.Threshold.Value)

	tr.Threshold = &herald.Threshold{Op: ">", Value: 7, ExceededLimit: 1}
	_, err = db.SaveTrigger(ctx, tr) // the fake clock has not moved
	require.NoError(t, err)
	got, err = db.ScheduledTriggers(ctx)
	require.NoError(t, err)
	require.Equal(t, 7.0, got[0].Trigger.Threshold.Value)

	tr.Disabled = true
	_, err = db.SaveTrigger(ctx, tr)
	require.NoError(t, err)
	got, err = db.ScheduledTriggers(ctx)
	require.NoError(t, err)
	require.Empty(t, got)
	require.NoError(t, db.DeleteTrigger(ctx, "d", tr.ID))
	got, err = db.ScheduledTriggers(ctx)
	require.NoError(t, err)
	require.Empty(t, got)
}
