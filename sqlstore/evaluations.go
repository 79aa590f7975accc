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

// RecordEvaluation stores an evaluation of a trigger and the trigger's new
// state and, when n is not nil, the notification the evaluation causes,
// its deliveries and their queue jobs: all in one transaction, so a state
// change is never recorded without the notification it owes, nor sent
// twice.
func (s *DB) RecordEvaluation(ctx context.Context, ev *herald.Evaluation, state herald.TriggerState, n *herald.Notification, enqueue EnqueueFunc) error {
	if ev.ID == "" {
		ev.ID = herald.NewID("evl_", ev.At)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var notificationID any
		if n != nil {
			if err := s.insertNotification(ctx, tx, n, "", enqueue); err != nil {
				return err
			}
			notificationID = n.ID
		}
		record, _ := json.Marshal(ev)
		if _, err := tx.ExecContext(ctx, `INSERT INTO evaluations (id, trigger_id, at, status, notify, notification_id, record) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			ev.ID, ev.TriggerID, ev.At.UnixNano(), ev.Status, ev.Notify, notificationID, string(record)); err != nil {
			return err
		}
		st, _ := json.Marshal(state)
		_, err := tx.ExecContext(ctx, `UPDATE triggers SET state = ?, triggered = ?, last_evaluated_at = ? WHERE id = ?`,
			string(st), state.Triggered, ev.At.UnixNano(), ev.TriggerID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: record evaluation: %w", err)
	}
	return nil
}

// Evaluations returns the last limit evaluations of a trigger, newest
// first.
func (s *DB) Evaluations(ctx context.Context, triggerID string, limit int) ([]herald.Evaluation, error) {
	rows, err := s.QueryContext(ctx, `SELECT record, notification_id FROM evaluations WHERE trigger_id = ? ORDER BY at DESC, id DESC LIMIT ?`, triggerID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: evaluations: %w", err)
	}
	defer rows.Close()
	out := []herald.Evaluation{}
	for rows.Next() {
		var record string
		var nid sql.NullString
		if err := rows.Scan(&record, &nid); err != nil {
			return nil, fmt.Errorf("sqlstore: evaluations: %w", err)
		}
		var ev herald.Evaluation
		if err := json.Unmarshal([]byte(record), &ev); err != nil {
			return nil, fmt.Errorf("sqlstore: evaluations: %w", err)
		}
		ev.NotificationID = nid.String
		out = append(out, ev)
	}
	return out, rows.Err()
}

// ScheduledTrigger is a trigger as the scheduler sees it.
type ScheduledTrigger struct {
	Trigger herald.Trigger
	State   herald.TriggerState
	// LastEvaluatedAt is nil for a trigger never evaluated.
	LastEvaluatedAt *time.Time
}

// ScheduledTriggers returns every enabled trigger with its state. The
// scheduler asks every second, so a trigger's spec is read and decoded
// again only when its version has moved; the rest is one narrow query.
func (s *DB) ScheduledTriggers(ctx context.Context) ([]ScheduledTrigger, error) {
	type row struct {
		id, state string
		version   int64
		triggered bool
		last      sql.NullInt64
	}
	rows, err := s.QueryContext(ctx, `SELECT id, version, triggered, state, last_evaluated_at FROM triggers ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: scheduled triggers: %w", err)
	}
	var list []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.version, &r.triggered, &r.state, &r.last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlstore: scheduled triggers: %w", err)
		}
		list = append(list, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: scheduled triggers: %w", err)
	}

	s.specMu.Lock()
	defer s.specMu.Unlock()
	specs := make(map[string]cachedSpec, len(list))
	var out []ScheduledTrigger
	for _, r := range list {
		c, ok := s.specs[r.id]
		if !ok || c.version != r.version {
			var spec string
			if err := s.QueryRowContext(ctx, `SELECT spec FROM triggers WHERE id = ?`, r.id).Scan(&spec); err != nil {
				if errors.Is(err, sql.ErrNoRows) {
					continue // deleted since the first query
				}
				return nil, fmt.Errorf("sqlstore: scheduled triggers: %w", err)
			}
			c = cachedSpec{version: r.version}
			if err := json.Unmarshal([]byte(spec), &c.trigger); err != nil {
				return nil, fmt.Errorf("sqlstore: scheduled triggers: trigger %s: %w", r.id, err)
			}
		}
		specs[r.id] = c
		if c.trigger.Disabled {
			continue
		}
		st := ScheduledTrigger{Trigger: c.trigger, LastEvaluatedAt: nullTime(r.last)}
		if err := json.Unmarshal([]byte(r.state), &st.State); err != nil {
			return nil, fmt.Errorf("sqlstore: scheduled triggers: trigger %s: %w", r.id, err)
		}
		st.Trigger.Triggered, st.State.Triggered = r.triggered, r.triggered // the one copy
		out = append(out, st)
	}
	s.specs = specs
	return out, nil
}

// cachedSpec is a decoded trigger spec and the version it was read at.
// Its Query and Threshold are shared by every caller: read only.
type cachedSpec struct {
	version int64
	trigger herald.Trigger
}
