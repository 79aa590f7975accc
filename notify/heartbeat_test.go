package notify_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald/notify"
)

// The heartbeat pings only while herald is healthy, and its URL's secret
// token never reaches a log or an error.
func TestHeartbeatPingsOnlyWhileHealthy(t *testing.T) {
	t.Parallel()
	const token = "9f1c7e2a-secret-token"
	var pings atomic.Int32
	status := atomic.Int32{}
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/ping/"+token, r.URL.Path)
		pings.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	healthy, why := true, ""
	var logs bytes.Buffer
	hb, err := notify.NewHeartbeat(notify.HeartbeatConfig{URL: srv.URL + "/ping/" + token,
		Healthy: func(time.Time) (bool, string) { return healthy, why },
		Logger:  slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	ctx := context.Background()

	pinged, err := hb.Beat(ctx, t0)
	require.NoError(t, err)
	require.True(t, pinged)

	healthy, why = false, `SLO "Delivery: email" is paging`
	pinged, err = hb.Beat(ctx, t0)
	require.NoError(t, err)
	require.False(t, pinged)
	require.EqualValues(t, 1, pings.Load(), "no ping while a delivery SLO pages")
	require.Contains(t, logs.String(), "is paging")

	healthy = true
	status.Store(http.StatusNotFound)
	_, err = hb.Beat(ctx, t0)
	require.ErrorContains(t, err, "status 404")
	require.NotContains(t, err.Error(), token)

	srv.Close()
	_, err = hb.Beat(ctx, t0)
	require.Error(t, err)
	require.NotContains(t, err.Error(), token)
	require.NotContains(t, logs.String(), token)

	_, err = notify.NewHeartbeat(notify.HeartbeatConfig{URL: "hc-ping.example/abc", Healthy: func(time.Time) (bool, string) { return true, "" }})
	require.ErrorContains(t, err, "absolute http(s) URL")
}
