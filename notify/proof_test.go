package notify_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/provider/sendgrid"
	"herald/sandbox"
)

// proofBundle is the notify bundle with the sandbox's SendGrid event
// webhook read by herald's own reader and applied to the store, as
// POST /hooks/{partner} does, all in simulated time.
func setupProof(t *testing.T, faults ...sandbox.Fault) *bundle {
	t.Helper()
	b := setup(t, options{sandbox: func(c *sandbox.Config) {
		c.EventDelay = time.Minute
		c.Faults = faults
	}})
	wh, err := sendgrid.NewEventWebhook(sendgrid.EventWebhookConfig{PublicKey: b.sb.Keys().SendGridPublicKey, Clock: b.clock})
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		events, err := wh.Parse(r.Context(), r, body)
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		for _, ev := range events {
			if _, err := b.db.ApplyPartnerEvent(r.Context(), "sendgrid-main", ev); err != nil {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	require.NoError(t, b.sb.SetWebhook(sandbox.SendGrid, srv.URL))
	return b
}

func (b *bundle) history(t *testing.T, id string) []string {
	t.Helper()
	tr, err := b.db.Transitions(context.Background(), id)
	require.NoError(t, err)
	var out []string
	for _, x := range tr {
		out = append(out, string(x.From)+"→"+string(x.To))
	}
	return out
}

func TestAcceptedThenDropped(t *testing.T) {
	t.Parallel()
	b := setupProof(t, sandbox.Fault{Partner: sandbox.SendGrid, Kind: sandbox.FaultAcceptThenFail, Fate: sandbox.FateDropped})
	id := b.create(t, nil)
	_, err := b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, herald.StateAccepted, b.delivery(t, id).State)
	b.clock.Advance(time.Minute) // the sandbox posts the event
	d := b.delivery(t, id)
	require.Equal(t, herald.StateDropped, d.State)
	require.Contains(t, d.Reason, "dropped event")
	require.Equal(t, []string{"→queued", "queued→sending", "sending→accepted", "accepted→dropped"}, b.history(t, id))
}

func TestDeferredThenDeliveredAndDuplicates(t *testing.T) {
	t.Parallel()
	b := setupProof(t,
		sandbox.Fault{Partner: sandbox.SendGrid, Kind: sandbox.FaultAcceptThenFail, Fate: sandbox.FateDeferred, Times: 1},
		sandbox.Fault{Partner: sandbox.SendGrid, Kind: sandbox.FaultDuplicateWebhooks, Copies: 3})
	id := b.create(t, nil)
	_, err := b.svc.Deliver(context.Background(), id)
	require.NoError(t, err)
	b.clock.Advance(time.Minute)
	require.Equal(t, herald.StateAccepted, b.delivery(t, id).State, "deferred: still pending")
	// Deferred, each event posted three times: recorded once.
	require.Equal(t, []string{"→queued", "queued→sending", "sending→accepted", "accepted→accepted"}, b.history(t, id))

	// The partner delivers it later; its event arrives three times too.
	msgs := b.sb.Messages(sandbox.MessageFilter{})
	require.Len(t, msgs, 1)
	_, err = b.sb.Emit(msgs[0].ID, sandbox.EmitRequest{Type: sandbox.FateDelivered})
	require.NoError(t, err)
	require.Equal(t, herald.StateDelivered, b.delivery(t, id).State)
	require.Equal(t, []string{"→queued", "queued→sending", "sending→accepted", "accepted→accepted", "accepted→delivered"}, b.history(t, id))
}
