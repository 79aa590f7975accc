package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"herald"
)

// StartCanary stores a canary and its notification (one delivery), with
// the delivery's job, in one transaction.
func (s *DB) StartCanary(ctx context.Context, c *herald.Canary, n *herald.Notification, enqueue EnqueueFunc) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.insertNotification(ctx, tx, n, "", enqueue); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO canaries (id, partner, delivery_id, started_at, result, detail) VALUES (?, ?, ?, ?, ?, '')`,
			c.ID, c.Partner, c.DeliveryID, c.StartedAt.UnixNano(), herald.CanaryPending)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: start canary: %w", err)
	}
	return nil
}

// FinishCanary records a canary's verdict.
func (s *DB) FinishCanary(ctx context.Context, id, result, detail string, at time.Time) error {
	if _, err := s.ExecContext(ctx, `UPDATE canaries SET result = ?, detail = ?, finished_at = ? WHERE id = ?`,
		result, detail, at.UnixNano(), id); err != nil {
		return fmt.Errorf("sqlstore: finish canary: %w", err)
	}
	return nil
}

// Canaries returns canaries, newest first: those of partner (every
// partner when ""), those still pending only when pending is set, at most
// limit.
func (s *DB) Canaries(ctx context.Context, partner string, pending bool, limit int) ([]herald.Canary, error) {
	q := `SELECT id, partner, delivery_id, started_at, finished_at, result, detail FROM canaries WHERE (? = '' OR partner = ?)`
	if pending {
		q += ` AND result = 'pending'`
	}
	rows, err := s.QueryContext(ctx, q+` ORDER BY started_at DESC, id DESC LIMIT ?`, partner, partner, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: canaries: %w", err)
	}
	defer rows.Close()
	out := []herald.Canary{}
	for rows.Next() {
		var c herald.Canary
		var started int64
		var finished sql.NullInt64
		if err := rows.Scan(&c.ID, &c.Partner, &c.DeliveryID, &started, &finished, &c.Result, &c.Detail); err != nil {
			return nil, fmt.Errorf("sqlstore: canaries: %w", err)
		}
		c.StartedAt = time.Unix(0, started).UTC()
		if c.FinishedAt = nullTime(finished); c.FinishedAt != nil {
			c.LatencyNS = c.FinishedAt.Sub(c.StartedAt)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
