package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/sqlstore"
)

// accept moves a delivery through sending to accepted by partner, with the
// partner's message id, as an accepted attempt does.
func accept(t *testing.T, db *sqlstore.DB, id, partner, messageID string) {
	t.Helper()
	ctx := context.Background()
	for _, to := range []herald.DeliveryState{herald.StateSending, herald.StateAccepted} {
		_, err := db.Update(ctx, id, func(d *herald.Delivery) (sqlstore.Change, error) {
			if to == herald.StateAccepted {
				d.Partner, d.PartnerMessageID = partner, messageID
			}
			return sqlstore.Change{To: to, Cause: "test"}, nil
		})
		require.NoError(t, err)
	}
}

func TestPartnerEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _, _ := open(t)
	_, _, err := db.CreateNotification(ctx, notification("n1", "a@example.com", "b@example.com", "c@example.com"), "h", noEnqueue)
	require.NoError(t, err)
	accept(t, db, "n1-d0", "sendgrid-main", "msg-0")
	accept(t, db, "n1-d1", "sendgrid-main", "msg-1")

	// Matched by herald's delivery id.
	res, err := db.ApplyPartnerEvent(ctx, "sendgrid-main", herald.PartnerEvent{EventID: "e1", Type: herald.PartnerDeferred, PartnerType: "deferred",
		DeliveryID: "n1-d0", Reason: "mailbox busy"})
	require.NoError(t, err)
	require.Equal(t, sqlstore.EventResult{DeliveryID: "n1-d0", Applied: true, State: herald.StateAccepted}, res)
	res, err = db.ApplyPartnerEvent(ctx, "sendgrid-main", herald.PartnerEvent{EventID: "e2", Type: herald.PartnerDelivered, PartnerType: "delivered", DeliveryID: "n1-d0"})
	require.NoError(t, err)
	require.Equal(t, herald.StateDelivered, res.State)
	// The same event again changes nothing.
	res, err = db.ApplyPartnerEvent(ctx, "sendgrid-main", herald.PartnerEvent{EventID: "e2", Type: herald.PartnerDelivered, DeliveryID: "n1-d0"})
	require.NoError(t, err)
	require.True(t, res.Duplicate)
	// A bounce after delivered is history only.
	res, err = db.ApplyPartnerEvent(ctx, "sendgrid-main", herald.PartnerEvent{EventID: "e3", Type: herald.PartnerBounced, PartnerType: "bounce", DeliveryID: "n1-d0"})
	require.NoError(t, err)
	require.Equal(t, herald.StateDelivered, res.State)
	tr, err := db.Transitions(ctx, "n1-d0")
	require.NoError(t, err)
	var causes []string
	for _, x := range tr[3:] { // after created, sending, accepted
		causes = append(causes, string(x.From)+"→"+string(x.To)+" "+x.Cause)
	}
	require.Equal(t, []string{
		"accepted→accepted deferred event e1 from sendgrid-main: mailbox busy",
		"accepted→delivered delivered event e2 from sendgrid-main",
		"delivered→delivered bounce event e3 from sendgrid-main",
	}, causes)

	// Matched by the partner's message id when the event carries no herald id.
	res, err = db.ApplyPartnerEvent(ctx, "sendgrid-main", herald.PartnerEvent{EventID: "e4", Type: herald.PartnerBounced, PartnerType: "bounce", MessageID: "msg-1"})
	require.NoError(t, err)
	require.Equal(t, sqlstore.EventResult{DeliveryID: "n1-d1", Applied: true, State: herald.StateBounced}, res)
	// Another partner's message id does not match.
	res, err = db.ApplyPartnerEvent(ctx, "postmark", herald.PartnerEvent{EventID: "e4", Type: herald.PartnerDelivered, MessageID: "msg-1"})
	require.NoError(t, err)
	require.Empty(t, res.DeliveryID)

	// An event that arrives before the accepted attempt is recorded waits,
	// then applies in the transaction that records it — once.
	res, err = db.ApplyPartnerEvent(ctx, "sendgrid-main", herald.PartnerEvent{EventID: "e5", Type: herald.PartnerDelivered, PartnerType: "delivered", DeliveryID: "n1-d2"})
	require.NoError(t, err)
	require.False(t, res.Applied)
	accept(t, db, "n1-d2", "sendgrid-main", "msg-2")
	d, err := db.GetDelivery(ctx, "n1-d2")
	require.NoError(t, err)
	require.Equal(t, herald.StateDelivered, d.State)
	tr, err = db.Transitions(ctx, "n1-d2")
	require.NoError(t, err)
	require.Equal(t, herald.StateDelivered, tr[len(tr)-1].To)
	require.Len(t, tr, 4, "created, sending, accepted, delivered: applied once")

	// One known only by the partner's message id waits for the attempt
	// that records that id.
	_, _, err = db.CreateNotification(ctx, notification("n3", "d@example.com"), "h", noEnqueue)
	require.NoError(t, err)
	res, err = db.ApplyPartnerEvent(ctx, "sendgrid-main", herald.PartnerEvent{EventID: "e6", Type: herald.PartnerBounced, PartnerType: "bounce", MessageID: "msg-3"})
	require.NoError(t, err)
	require.Empty(t, res.DeliveryID)
	accept(t, db, "n3-d0", "sendgrid-main", "msg-3")
	d, err = db.GetDelivery(ctx, "n3-d0")
	require.NoError(t, err)
	require.Equal(t, herald.StateBounced, d.State)
}

func TestUnconfirmAtTheDeadline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, c, _ := open(t)
	_, _, err := db.CreateNotification(ctx, notification("n2", "a@example.com"), "h", noEnqueue)
	require.NoError(t, err)
	accept(t, db, "n2-d0", "mailgun", "m0")
	c.Advance(time.Hour - time.Nanosecond)
	ids, err := db.Unconfirm(ctx, "mailgun", time.Hour, c.Now())
	require.NoError(t, err)
	require.Empty(t, ids, "not before the deadline")
	c.Advance(time.Nanosecond)
	ids, err = db.Unconfirm(ctx, "mailgun", time.Hour, c.Now())
	require.NoError(t, err)
	require.Equal(t, []string{"n2-d0"}, ids, "exactly at it")
	d, err := db.GetDelivery(ctx, "n2-d0")
	require.NoError(t, err)
	require.Equal(t, herald.StateUnconfirmed, d.State)
	require.Equal(t, "unconfirmed: no final event from mailgun within 1h0m0s of acceptance", d.Reason)
	// A late confirmation still wins.
	res, err := db.ApplyPartnerEvent(ctx, "mailgun", herald.PartnerEvent{EventID: "late", Type: herald.PartnerDelivered, PartnerType: "delivered", MessageID: "m0"})
	require.NoError(t, err)
	require.Equal(t, herald.StateDelivered, res.State)
}
