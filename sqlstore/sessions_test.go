package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
)

func TestSessionsExpireAndFollowTheirKey(t *testing.T) {
	t.Parallel()
	db, c, _ := open(t)
	ctx := context.Background()
	k, _, err := db.CreateAPIKey(ctx, herald.KeyConfiguration, "ui")
	require.NoError(t, err)
	token, sess, err := db.CreateSession(ctx, k.ID, time.Hour)
	require.NoError(t, err)
	require.Equal(t, k.ID, sess.Key.ID)
	require.Len(t, sess.CSRF, 24)

	got, err := db.Session(ctx, token)
	require.NoError(t, err)
	require.Equal(t, sess, got)
	_, err = db.Session(ctx, token+"x")
	require.Equal(t, herald.EUNAUTHORIZED, herald.ErrorCode(err))

	c.Advance(time.Hour)
	_, err = db.Session(ctx, token)
	require.Equal(t, herald.EUNAUTHORIZED, herald.ErrorCode(err), "expired at its end")

	token, _, err = db.CreateSession(ctx, k.ID, time.Hour)
	require.NoError(t, err)
	require.NoError(t, db.DeleteSession(ctx, token))
	_, err = db.Session(ctx, token)
	require.Equal(t, herald.EUNAUTHORIZED, herald.ErrorCode(err))

	token, _, err = db.CreateSession(ctx, k.ID, time.Hour)
	require.NoError(t, err)
	require.NoError(t, db.RevokeAPIKey(ctx, k.ID))
	_, err = db.Session(ctx, token)
	require.ErrorContains(t, err, "revoked")
}
