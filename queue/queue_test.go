package queue_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/queue"
	"herald/sqlstore"
)

type handler struct {
	mu    sync.Mutex
	calls map[string]int
	done  chan string
}

func (h *handler) Deliver(ctx context.Context, id string) (time.Duration, error) {
	h.mu.Lock()
	h.calls[id]++
	n := h.calls[id]
	h.mu.Unlock()
	if n == 1 {
		return 10 * time.Millisecond, nil // ask for a second attempt
	}
	h.done <- id
	return 0, nil
}

func TestJobsCommitWithTheirRowsAndRetryOnRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "herald.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, queue.Migrate(ctx, db.DB))
	in, err := queue.NewInserter(db.DB, nil)
	require.NoError(t, err)

	n := &herald.Notification{ID: "n1", Subject: "s", CreatedAt: time.Now(),
		Deliveries: []herald.Delivery{{ID: "d1", Channel: "email", Recipient: herald.Recipient{Type: "email", Target: "a@example.com"}}}}
	_, _, err = db.CreateNotification(ctx, n, "h", in.EnqueueTx)
	require.NoError(t, err)

	// A transaction that fails takes its job with it.
	boom := errors.New("boom")
	n2 := &herald.Notification{ID: "n2", Subject: "s", CreatedAt: time.Now(),
		Deliveries: []herald.Delivery{{ID: "d2", Channel: "email", Recipient: herald.Recipient{Type: "email", Target: "b@example.com"}}}}
	_, _, err = db.CreateNotification(ctx, n2, "h", func(ctx context.Context, tx *sql.Tx, ids []string) error {
		require.NoError(t, in.EnqueueTx(ctx, tx, ids))
		return boom
	})
	require.ErrorIs(t, err, boom)
	var jobs int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM river_job`).Scan(&jobs))
	require.Equal(t, 1, jobs)

	h := &handler{calls: map[string]int{}, done: make(chan string, 1)}
	w, err := queue.NewWorkers(db.DB, h, queue.Config{PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { w.Stop(context.Background()) })
	select {
	case id := <-h.done:
		require.Equal(t, "d1", id)
	case <-time.After(10 * time.Second):
		t.Fatal("the job did not run twice")
	}
	require.Equal(t, map[string]int{"d1": 2}, h.calls)
}
