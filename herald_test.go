package herald_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
)

func TestDeliveryStateMachine(t *testing.T) {
	t.Parallel()
	allowed := map[herald.DeliveryState][]herald.DeliveryState{
		herald.StateQueued:      {herald.StateSending, herald.StateFailed},
		herald.StateSending:     {herald.StateQueued, herald.StateAccepted, herald.StateFailed},
		herald.StateAccepted:    {herald.StateDelivered, herald.StateBounced, herald.StateDropped, herald.StateUnconfirmed},
		herald.StateFailed:      {herald.StateQueued},
		herald.StateUnconfirmed: {herald.StateDelivered, herald.StateBounced, herald.StateDropped, herald.StateQueued},
	}
	for _, from := range herald.DeliveryStates {
		require.True(t, from.Valid())
		for _, to := range herald.DeliveryStates {
			want := slices.Contains(allowed[from], to)
			require.Equal(t, want, from.CanMoveTo(to), "%s → %s", from, to)
			err := herald.Move(from, to)
			if want {
				require.NoError(t, err)
			} else {
				var bad *herald.ErrInvalidTransition
				require.ErrorAs(t, err, &bad)
				require.Equal(t, fmt.Sprintf("delivery cannot move from %s to %s", from, to), err.Error())
			}
		}
	}
	require.False(t, herald.StateAccepted.CanMoveTo(herald.StateSending), "never sent again after accepted")
	require.False(t, herald.DeliveryState("lost").Valid())
	for _, s := range []herald.DeliveryState{herald.StateDelivered, herald.StateFailed, herald.StateBounced, herald.StateDropped, herald.StateUnconfirmed} {
		require.True(t, s.Final(), s)
	}
	require.False(t, herald.StateAccepted.Final())
}

func TestNewIDSortsByTime(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	a := herald.NewID("dlv_", t0)
	b := herald.NewID("dlv_", t0.Add(time.Millisecond))
	require.Len(t, a, 4+26)
	require.Less(t, a, b)
	require.NotEqual(t, herald.NewID("x", t0), herald.NewID("x", t0))
}

func TestErrorCode(t *testing.T) {
	t.Parallel()
	require.Equal(t, "", herald.ErrorCode(nil))
	require.Equal(t, herald.EINTERNAL, herald.ErrorCode(errors.New("boom")))
	err := fmt.Errorf("wrapped: %w", herald.Invalid("subject", "missing", "a subject is required"))
	require.Equal(t, herald.EINVALID, herald.ErrorCode(err))
	var he *herald.Error
	require.ErrorAs(t, err, &he)
	require.Equal(t, []herald.FieldError{{Field: "subject", Code: "missing", Description: "a subject is required"}}, he.Fields)
}
