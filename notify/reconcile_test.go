package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/notify"
	"herald/sandbox"
)

// A partner that accepts a message and never reports its fate: the
// delivery becomes unconfirmed exactly at its partner's deadline (T_final),
// not a nanosecond before.
func TestNeverConfirmedBecomesUnconfirmedAtTheDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t, options{sandbox: func(c *sandbox.Config) {
		c.Faults = []sandbox.Fault{{Partner: sandbox.SendGrid, Kind: sandbox.FaultNeverConfirm}}
	}})
	id := b.create(t, nil)
	_, err := b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, herald.StateAccepted, b.delivery(t, id).State)

	r, err := notify.NewReconciler(notify.ReconcilerConfig{Store: b.db, Clock: b.clock,
		Deadlines: map[string]time.Duration{"sendgrid-main": 30 * time.Minute}})
	require.NoError(t, err)
	b.clock.Advance(30*time.Minute - time.Nanosecond)
	ids, err := r.Tick(context.Background(), b.clock.Now())
	require.NoError(t, err)
	require.Empty(t, ids)
	b.clock.Advance(time.Nanosecond)
	ids, err = r.Tick(context.Background(), b.clock.Now())
	require.NoError(t, err)
	require.Equal(t, []string{id}, ids)
	d := b.delivery(t, id)
	require.Equal(t, herald.StateUnconfirmed, d.State)
	require.Contains(t, d.Reason, "no final event from sendgrid-main within 30m0s")
}
