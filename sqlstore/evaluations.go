package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
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

// ScheduledTriggers returns every enabled trigger with its state.
func (s *DB) ScheduledTriggers(ctx context.Context) ([]ScheduledTrigger, error) {
	rows, err := s.QueryContext(ctx, `SELECT spec, triggered, state, last_evaluated_at FROM triggers ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: scheduled triggers: %w", err)
	}
	defer rows.Close()
	var out []ScheduledTrigger
	for rows.Next() {
		var spec, state string
		var triggered bool
		var last sql.NullInt64
		if err := rows.Scan(&spec, &triggered, &state, &last); err != nil {
			return nil, fmt.Errorf("sqlstore: scheduled triggers: %w", err)
		}
		var st ScheduledTrigger
		if err := json.Unmarshal([]byte(spec), &st.Trigger); err != nil {
			return nil, fmt.Errorf("sqlstore: scheduled triggers: %w", err)
		}
		if st.Trigger.Disabled {
			continue
		}
		if err := json.Unmarshal([]byte(state), &st.State); err != nil {
			return nil, fmt.Errorf("sqlstore: scheduled triggers: %w", err)
		}
		st.Trigger.Triggered, st.State.Triggered = triggered, triggered
		st.LastEvaluatedAt = nullTime(last)
		out = append(out, st)
	}
	return out, rows.Err()
}
