package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/sqlstore"
)

// Closed buckets are kept; the open one is read again, so a new judgement
// shows at the next call.
func TestDeliverySeriesKeepsClosedBuckets(t *testing.T) {
	t.Parallel()
	db, c, _ := open(t)
	ctx := context.Background()
	_, _, err := db.CreateNotification(ctx, notification("n1", "a@example.com", "b@example.com", "c@example.com"), "", noEnqueue)
	require.NoError(t, err)
	move(t, db, c, "n1-d0", herald.StateSending, herald.StateAccepted, herald.StateDelivered)
	move(t, db, c, "n1-d1", herald.StateSending, herald.StateFailed)
	c.Advance(2 * time.Hour)
	from := t0
	first, err := db.DeliverySeries(ctx, from, from.Add(3*time.Hour), time.Hour)
	require.NoError(t, err)
	require.Equal(t, []sqlstore.JudgementBucket{{Start: t0, Channel: "email", Partner: "p", Good: 1, Bad: 1}}, first)

	move(t, db, c, "n1-d2", herald.StateSending, herald.StateAccepted, herald.StateDelivered)
	again, err := db.DeliverySeries(ctx, from, from.Add(3*time.Hour), time.Hour)
	require.NoError(t, err)
	require.Equal(t, append(first, sqlstore.JudgementBucket{Start: t0.Add(2 * time.Hour), Channel: "email", Partner: "p", Good: 1}), again)

	_, err = db.DeliverySeries(ctx, from, from, time.Hour)
	require.Equal(t, herald.EINVALID, herald.ErrorCode(err))
}
