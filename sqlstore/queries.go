package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"herald"
)

// CreateQuery saves a query specification for dataset (a slug, or
// herald.AllDatasets) and returns it with its new id.
func (s *DB) CreateQuery(ctx context.Context, dataset string, q herald.Query) (herald.Query, error) {
	q.ID = herald.NewID("qry_", s.clock.Now())
	spec, err := json.Marshal(q)
	if err != nil {
		return herald.Query{}, fmt.Errorf("sqlstore: create query: %w", err)
	}
	if _, err := s.ExecContext(ctx, `INSERT INTO queries (id, dataset, spec, created_at) VALUES (?, ?, ?, ?)`,
		q.ID, dataset, string(spec), s.now()); err != nil {
		return herald.Query{}, fmt.Errorf("sqlstore: create query: %w", err)
	}
	return q, nil
}

// GetQuery returns the query with id saved for dataset, or ENOTFOUND.
func (s *DB) GetQuery(ctx context.Context, dataset, id string) (herald.Query, error) {
	var spec string
	err := s.QueryRowContext(ctx, `SELECT spec FROM queries WHERE id = ? AND dataset = ?`, id, dataset).Scan(&spec)
	if errors.Is(err, sql.ErrNoRows) {
		return herald.Query{}, herald.Errorf(herald.ENOTFOUND, "no query %q in dataset %q", id, dataset)
	}
	if err != nil {
		return herald.Query{}, fmt.Errorf("sqlstore: get query: %w", err)
	}
	var q herald.Query
	if err := json.Unmarshal([]byte(spec), &q); err != nil {
		return herald.Query{}, fmt.Errorf("sqlstore: get query %s: %w", id, err)
	}
	return q, nil
}

// CreateQueryResult saves a query result, giving it an id and a creation
// time.
func (s *DB) CreateQueryResult(ctx context.Context, r *herald.QueryResult) error {
	r.CreatedAt = time.Unix(0, s.now()).UTC()
	r.ID = herald.NewID("qrs_", r.CreatedAt)
	data, err := json.Marshal(r.Data)
	if err != nil {
		return fmt.Errorf("sqlstore: create query result: %w", err)
	}
	if _, err := s.ExecContext(ctx, `INSERT INTO query_results (id, query_id, dataset, data, created_at) VALUES (?, ?, ?, ?, ?)`,
		r.ID, r.QueryID, r.Dataset, string(data), r.CreatedAt.UnixNano()); err != nil {
		return fmt.Errorf("sqlstore: create query result: %w", err)
	}
	return nil
}

// GetQueryResult returns the result with id saved for dataset, or
// ENOTFOUND.
func (s *DB) GetQueryResult(ctx context.Context, dataset, id string) (*herald.QueryResult, error) {
	r := &herald.QueryResult{ID: id, Dataset: dataset}
	var data string
	var created int64
	err := s.QueryRowContext(ctx, `SELECT query_id, data, created_at FROM query_results WHERE id = ? AND dataset = ?`, id, dataset).
		Scan(&r.QueryID, &data, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, herald.Errorf(herald.ENOTFOUND, "no query result %q in dataset %q", id, dataset)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get query result: %w", err)
	}
	if err := json.Unmarshal([]byte(data), &r.Data); err != nil {
		return nil, fmt.Errorf("sqlstore: get query result %s: %w", id, err)
	}
	r.CreatedAt = time.Unix(0, created).UTC()
	return r, nil
}

// DeleteQueryResults deletes the results created before t and returns how
// many.
func (s *DB) DeleteQueryResults(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.ExecContext(ctx, `DELETE FROM query_results WHERE created_at < ?`, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete query results: %w", err)
	}
	return res.RowsAffected()
}
