// Package sqlstore keeps herald's state — API keys, notifications, their
// deliveries, every attempt and every state transition — in SQLite (the
// embedded default). Schema migrations are embedded and applied at Open.
//
// Writes that owe work take a caller's hook that runs inside the same
// transaction, so a queue job commits together with the rows that owe it,
// or not at all.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"herald/clock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open state store. It is safe for concurrent use.
type DB struct {
	*sql.DB
	clock clock.Clock
	stmts sync.Map // query text → *sql.Stmt
	keys  sync.Map // string(hashKey(secret)) → cachedKey

	specMu sync.Mutex
	specs  map[string]cachedSpec // trigger id → its decoded spec, for the scheduler

	seriesMu sync.Mutex
	series   map[seriesKey][]JudgementBucket // closed buckets of DeliverySeries
}

// Open opens (creating if needed) the SQLite database at path and applies
// every migration it lacks. The pool has one connection: SQLite allows one
// writer, and the queue shares the database.
func Open(ctx context.Context, path string, c clock.Clock) (*DB, error) {
	if c == nil {
		c = clock.Real()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("sqlstore: create data directory: %w", err)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	s := &DB{DB: db, clock: c}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	// Prepare what transactions run, while the connection is free.
	for _, q := range txQueries {
		if _, err := s.q(nil).stmt(ctx, q); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlstore: prepare: %w", err)
		}
	}
	return s, nil
}

// migrate applies the embedded migrations in name order, each in its own
// transaction, recording them in herald_migrations.
func (s *DB) migrate(ctx context.Context) error {
	if _, err := s.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS herald_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	slices.Sort(names)
	for _, name := range names {
		var done int
		if err := s.QueryRowContext(ctx, `SELECT COUNT(*) FROM herald_migrations WHERE name = ?`, name).Scan(&done); err != nil {
			return fmt.Errorf("sqlstore: migrate: %w", err)
		}
		if done > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("sqlstore: migrate: %w", err)
		}
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO herald_migrations (name, applied_at) VALUES (?, ?)`, name, s.now())
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlstore: migrate %s: %w", name, err)
		}
	}
	return nil
}

func (s *DB) now() int64 { return s.clock.Now().UnixNano() }

// inTx runs f in a transaction, committing when it returns nil.
func (s *DB) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		return errors.Join(err, rollback(tx))
	}
	return tx.Commit()
}

func rollback(tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}

// q returns a runner for tx (or the pool, when tx is nil) that executes
// each statement through a prepared statement kept per query text: with
// short statements, SQLite's parser is most of their cost.
func (s *DB) q(tx *sql.Tx) cached { return cached{s, tx} }

type cached struct {
	s  *DB
	tx *sql.Tx
}

// stmt returns the prepared statement for query, bound to the
// transaction if there is one, or nil when it is not prepared and cannot be
// now: preparing takes a connection, and inside a transaction the pool's
// one connection is the transaction's.
func (c cached) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	st, ok := c.s.stmts.Load(query)
	if !ok && c.tx != nil {
		return nil, nil
	}
	if !ok {
		prepared, err := c.s.PrepareContext(ctx, query)
		if err != nil {
			return nil, err
		}
		var loaded bool
		if st, loaded = c.s.stmts.LoadOrStore(query, prepared); loaded {
			prepared.Close()
		}
	}
	if c.tx != nil {
		return c.tx.StmtContext(ctx, st.(*sql.Stmt)), nil
	}
	return st.(*sql.Stmt), nil
}

func (c cached) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, query)
	switch {
	case err != nil:
		return nil, err
	case st == nil:
		return c.tx.ExecContext(ctx, query, args...)
	}
	return st.ExecContext(ctx, args...)
}

func (c cached) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, query)
	switch {
	case err != nil:
		return nil, err
	case st == nil:
		return c.tx.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext is sql's QueryRowContext through the statement cache;
// a preparation error surfaces from Scan.
func (c cached) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, query)
	if err != nil || st == nil {
		// Unprepared: sql.Row has no constructor for an error, so a
		// preparation error is reported by Scan from the plain query.
		if c.tx != nil {
			return c.tx.QueryRowContext(ctx, query, args...)
		}
		return c.s.DB.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}
