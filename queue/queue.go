// Package queue runs herald's delivery jobs on River, on the same SQLite
// database as the state store, so that a job is inserted in the same
// transaction as the deliveries it sends (sqlstore.EnqueueFunc).
package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// DeliverArgs is the job that makes a delivery's next attempt.
type DeliverArgs struct {
	DeliveryID string `json:"delivery_id"`
}

// Kind names the job in River's table.
func (DeliverArgs) Kind() string { return "herald_deliver" }

// InsertOpts: herald counts attempts and decides retries itself, so River's
// own retries only cover infrastructure failures (the database gone, a
// panic), and are generous.
func (DeliverArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 25} }

// Handler does the work of one delivery job. Implementations are safe for
// concurrent use.
type Handler interface {
	// Deliver makes the delivery's next attempt. A positive retryIn asks for
	// another attempt after that wait; an error is an infrastructure
	// failure, retried by the queue with its own backoff.
	Deliver(ctx context.Context, deliveryID string) (retryIn time.Duration, err error)
}

// Migrate applies River's schema migrations to db.
func Migrate(ctx context.Context, db *sql.DB) error {
	m, err := rivermigrate.New(riversqlite.New(db), nil)
	if err != nil {
		return fmt.Errorf("queue: migrate: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("queue: migrate: %w", err)
	}
	return nil
}

// Inserter inserts delivery jobs. It is safe for concurrent use.
type Inserter struct {
	client *river.Client[*sql.Tx]
}

// NewInserter returns an insert-only queue client on db.
func NewInserter(db *sql.DB, log *slog.Logger) (*Inserter, error) {
	c, err := river.NewClient(riversqlite.New(db), &river.Config{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("queue: inserter: %w", err)
	}
	return &Inserter{client: c}, nil
}

// EnqueueTx inserts one delivery job per id inside tx. It has the shape of
// sqlstore.EnqueueFunc.
func (in *Inserter) EnqueueTx(ctx context.Context, tx *sql.Tx, deliveryIDs []string) error {
	if len(deliveryIDs) == 1 { // the common case; River's single insert is cheaper
		if _, err := in.client.InsertTx(ctx, tx, DeliverArgs{DeliveryID: deliveryIDs[0]}, nil); err != nil {
			return fmt.Errorf("queue: enqueue: %w", err)
		}
		return nil
	}
	params := make([]river.InsertManyParams, len(deliveryIDs))
	for i, id := range deliveryIDs {
		params[i] = river.InsertManyParams{Args: DeliverArgs{DeliveryID: id}}
	}
	if _, err := in.client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("queue: enqueue: %w", err)
	}
	return nil
}

// Config configures the workers.
type Config struct {
	// Workers is how many deliveries run at once. Defaults to 32.
	Workers int
	// JobTimeout bounds one job (one attempt). Defaults to 60s.
	JobTimeout time.Duration
	// RescueAfter is how long a job may look running before it is taken to
	// have died with its process and run again. Defaults to JobTimeout + 30s.
	RescueAfter time.Duration
	// PollInterval is how often workers look for due jobs besides being
	// told. Defaults to 1s (River's default).
	PollInterval time.Duration
	// Logger receives River's logs. Defaults to discarding them.
	Logger *slog.Logger
}

// Workers runs delivery jobs.
type Workers struct {
	client *river.Client[*sql.Tx]
}

type worker struct {
	river.WorkerDefaults[DeliverArgs]
	h Handler
}

func (w *worker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	wait, err := w.h.Deliver(ctx, job.Args.DeliveryID)
	if err != nil {
		return err
	}
	if wait > 0 {
		return river.JobSnooze(wait)
	}
	return nil
}

// NewWorkers returns delivery workers on db, calling h for each job. Call
// Start to run them.
func NewWorkers(db *sql.DB, h Handler, cfg Config) (*Workers, error) {
	if cfg.Workers == 0 {
		cfg.Workers = 32
	}
	if cfg.JobTimeout == 0 {
		cfg.JobTimeout = time.Minute
	}
	if cfg.RescueAfter == 0 {
		cfg.RescueAfter = cfg.JobTimeout + 30*time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RescueAfter <= cfg.JobTimeout {
		return nil, errors.New("queue: RescueAfter must be longer than JobTimeout")
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &worker{h: h})
	c, err := river.NewClient(riversqlite.New(db), &river.Config{
		Logger:               cfg.Logger,
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}},
		Workers:              workers,
		JobTimeout:           cfg.JobTimeout,
		RescueStuckJobsAfter: cfg.RescueAfter,
		FetchPollInterval:    cfg.PollInterval,
		FetchCooldown:        5 * time.Millisecond,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: workers: %w", err)
	}
	return &Workers{client: c}, nil
}

// Start runs the workers until Stop.
func (w *Workers) Start(ctx context.Context) error {
	if err := w.client.Start(ctx); err != nil {
		return fmt.Errorf("queue: start: %w", err)
	}
	return nil
}

// Stop lets running jobs finish until ctx is done, then cancels them; a
// cancelled job is taken up again by the next run.
func (w *Workers) Stop(ctx context.Context) error {
	err := w.client.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = w.client.StopAndCancel(cctx)
	}
	if err != nil {
		return fmt.Errorf("queue: stop: %w", err)
	}
	return nil
}
