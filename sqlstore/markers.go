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

// SaveMarker creates a marker in dataset (m.ID empty; a zero start_time
// means now) or replaces one. Returns EINVALID or ENOTFOUND.
func (s *DB) SaveMarker(ctx context.Context, dataset string, m herald.Marker) (herald.Marker, error) {
	now := time.Unix(0, s.now()).UTC()
	if m.ID == "" {
		m.ID, m.CreatedAt = herald.NewID("mrk_", now), now
		if m.StartTime == 0 {
			m.StartTime = now.Unix()
		}
	} else {
		old, err := s.GetMarker(ctx, dataset, m.ID)
		if err != nil {
			return herald.Marker{}, err
		}
		m.CreatedAt = old.CreatedAt
		if m.StartTime == 0 {
			m.StartTime = old.StartTime
		}
	}
	if err := m.Check(); err != nil {
		return herald.Marker{}, err
	}
	m.UpdatedAt = now
	record, _ := json.Marshal(m)
	if _, err := s.ExecContext(ctx, `INSERT INTO markers (id, dataset, record, start_time) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET record = excluded.record, start_time = excluded.start_time`,
		m.ID, dataset, string(record), m.StartTime); err != nil {
		return herald.Marker{}, fmt.Errorf("sqlstore: save marker: %w", err)
	}
	return m, nil
}

// GetMarker returns the marker with id in dataset, or ENOTFOUND.
func (s *DB) GetMarker(ctx context.Context, dataset, id string) (herald.Marker, error) {
	var record string
	err := s.QueryRowContext(ctx, `SELECT record FROM markers WHERE id = ? AND dataset = ?`, id, dataset).Scan(&record)
	if errors.Is(err, sql.ErrNoRows) {
		return herald.Marker{}, herald.Errorf(herald.ENOTFOUND, "no marker %q in dataset %q", id, dataset)
	}
	if err != nil {
		return herald.Marker{}, fmt.Errorf("sqlstore: get marker: %w", err)
	}
	var m herald.Marker
	return m, json.Unmarshal([]byte(record), &m)
}

// ListMarkers returns dataset's markers by start time.
func (s *DB) ListMarkers(ctx context.Context, dataset string) ([]herald.Marker, error) {
	rows, err := s.QueryContext(ctx, `SELECT record FROM markers WHERE dataset = ? ORDER BY start_time, id`, dataset)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list markers: %w", err)
	}
	defer rows.Close()
	out := []herald.Marker{}
	for rows.Next() {
		var record string
		var m herald.Marker
		if err := rows.Scan(&record); err != nil {
			return nil, fmt.Errorf("sqlstore: list markers: %w", err)
		}
		if err := json.Unmarshal([]byte(record), &m); err != nil {
			return nil, fmt.Errorf("sqlstore: list markers: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// DeleteMarker deletes the marker with id in dataset, or returns ENOTFOUND.
func (s *DB) DeleteMarker(ctx context.Context, dataset, id string) error {
	res, err := s.ExecContext(ctx, `DELETE FROM markers WHERE id = ? AND dataset = ?`, id, dataset)
	if err != nil {
		return fmt.Errorf("sqlstore: delete marker: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return herald.Errorf(herald.ENOTFOUND, "no marker %q in dataset %q", id, dataset)
	}
	return nil
}
