package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/clock"
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

// With resend configured, an unconfirmed delivery goes out again through
// the channel's next partner, with the same herald ids, counted as a
// possible duplicate; a late event from the first partner still matches.
func TestUnconfirmedIsResentThroughTheNextPartner(t *testing.T) {
	t.Parallel()
	b := setup(t, options{
		sandbox: func(c *sandbox.Config) {
			c.Faults = []sandbox.Fault{{Partner: sandbox.SendGrid, Kind: sandbox.FaultNeverConfirm, Times: 1}}
		},
		partners: func(url string, c clock.Clock) []herald.Provider {
			return []herald.Provider{sendgridPartner(t, "sendgrid-a", "SG.sandbox", url, c), sendgridPartner(t, "sendgrid-b", "SG.sandbox", url, c)}
		},
	})
	id := b.create(t, nil)
	_, err := b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, "sendgrid-a", b.delivery(t, id).Partner)

	r, err := notify.NewReconciler(notify.ReconcilerConfig{Store: b.db, Clock: b.clock, Resend: b.svc.Resend,
		Deadlines: map[string]time.Duration{"sendgrid-a": time.Hour, "sendgrid-b": time.Hour}})
	require.NoError(t, err)
	b.clock.Advance(time.Hour)
	ids, err := r.Tick(context.Background(), b.clock.Now())
	require.NoError(t, err)
	require.Equal(t, []string{id}, ids)
	d := b.delivery(t, id)
	require.Equal(t, herald.StateQueued, d.State)
	require.Equal(t, "sendgrid-b", d.PinnedPartner)
	require.Equal(t, 1, d.PossibleDuplicates)

	_, err = b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	d = b.delivery(t, id)
	require.Equal(t, herald.StateAccepted, d.State)
	require.Equal(t, "sendgrid-b", d.Partner)
	msgs := b.sb.Messages(sandbox.MessageFilter{})
	require.Len(t, msgs, 2, "the same message twice, once per partner")
	// Resent once only: a second deadline leaves it unconfirmed.
	b.clock.Advance(time.Hour)
	_, err = r.Tick(context.Background(), b.clock.Now())
	require.NoError(t, err)
	require.Equal(t, herald.StateUnconfirmed, b.delivery(t, id).State)
}
