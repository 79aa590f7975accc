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

// EventResult says what a partner event did.
type EventResult struct {
	// Duplicate: the partner sent this event before; nothing changed.
	Duplicate bool
	// DeliveryID is the delivery it matched, "" for none yet.
	DeliveryID string
	// Applied: the event moved or was recorded on its delivery. An event
	// for a delivery whose accepted attempt is not recorded yet (it
	// arrived first) is kept, and applied in the same transaction that
	// records the accepted attempt.
	Applied bool
	// State is the delivery's state after the event.
	State herald.DeliveryState
	// TraceParent is the trace of the delivery's notification, so the
	// event can join it.
	TraceParent string
}

// ApplyPartnerEvent records a partner's event once (by its event id) and
// applies it to its delivery, found by herald's delivery id or else by the
// partner's message id: delivered, bounced and dropped move an accepted
// (or unconfirmed) delivery to that state; deferred is recorded in its
// history and leaves it accepted. Events herald ignores are recorded only.
// Every transition names the event that caused it.
func (s *DB) ApplyPartnerEvent(ctx context.Context, partner string, ev herald.PartnerEvent) (EventResult, error) {
	var res EventResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		record, _ := json.Marshal(ev)
		r, err := tx.ExecContext(ctx, `INSERT INTO partner_events (partner, event_id, type, applied, received_at, record, message_id)
			VALUES (?, ?, ?, 0, ?, ?, ?) ON CONFLICT (partner, event_id) DO NOTHING`, partner, ev.EventID, ev.Type, s.now(), string(record), ev.MessageID)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			res.Duplicate = true
			return nil
		}
		res, err = s.applyEvent(ctx, tx, partner, ev)
		return err
	})
	if err != nil {
		return EventResult{}, fmt.Errorf("sqlstore: apply partner event: %w", err)
	}
	return res, nil
}

// applyEvent matches ev to its delivery and applies it, inside tx.
func (s *DB) applyEvent(ctx context.Context, tx *sql.Tx, partner string, ev herald.PartnerEvent) (EventResult, error) {
	var res EventResult
	var id, trace string
	var state herald.DeliveryState
	const q = `SELECT d.id, d.state, n.trace_parent FROM deliveries d JOIN notifications n ON n.id = d.notification_id WHERE `
	err := sql.ErrNoRows
	if ev.DeliveryID != "" {
		err = tx.QueryRowContext(ctx, q+`d.id = ?`, ev.DeliveryID).Scan(&id, &state, &trace)
	}
	if errors.Is(err, sql.ErrNoRows) && ev.MessageID != "" {
		err = tx.QueryRowContext(ctx, q+`d.partner = ? AND d.partner_message_id = ?`, partner, ev.MessageID).Scan(&id, &state, &trace)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return res, nil // kept; a later attempt record may match it
	}
	if err != nil {
		return res, err
	}
	res.DeliveryID, res.State, res.TraceParent = id, state, trace
	if _, err := tx.ExecContext(ctx, `UPDATE partner_events SET delivery_id = ? WHERE partner = ? AND event_id = ?`, id, partner, ev.EventID); err != nil {
		return res, err
	}
	to := map[string]herald.DeliveryState{herald.PartnerDelivered: herald.StateDelivered,
		herald.PartnerBounced: herald.StateBounced, herald.PartnerDropped: herald.StateDropped}[ev.Type]
	cause := fmt.Sprintf("%s event %s from %s", ev.PartnerType, ev.EventID, partner)
	if ev.Reason != "" {
		cause += ": " + ev.Reason
	}
	now := s.now()
	switch {
	case state == herald.StateQueued || state == herald.StateSending:
		return res, nil // arrived before the accepted attempt's record: pending
	case ev.Type == "":
	case ev.Type == herald.PartnerDeferred || !state.CanMoveTo(to):
		// Deferred, or a final event after the delivery's final state
		// (a bounce after delivered): history only.
		if err := s.insertTransition(ctx, tx, id, state, state, cause, now); err != nil {
			return res, err
		}
	default:
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = ?, reason = ?, updated_at = ? WHERE id = ?`, to, cause, now, id); err != nil {
			return res, err
		}
		if err := s.insertTransition(ctx, tx, id, state, to, cause, now); err != nil {
			return res, err
		}
		res.State = to
	}
	res.Applied = true
	_, err = tx.ExecContext(ctx, `UPDATE partner_events SET applied = 1 WHERE partner = ? AND event_id = ?`, partner, ev.EventID)
	return res, err
}

// applyWaiting applies, inside tx, the events that arrived before d's
// accepted attempt was recorded: those already matched to d, and those
// carrying the message id d's partner just gave.
func (s *DB) applyWaiting(ctx context.Context, tx *sql.Tx, d *herald.Delivery) error {
	rows, err := tx.QueryContext(ctx, `SELECT partner, record FROM partner_events WHERE applied = 0
		AND (delivery_id = ? OR (partner = ? AND message_id = ? AND message_id != '')) ORDER BY received_at`,
		d.ID, d.Partner, d.PartnerMessageID)
	if err != nil {
		return err
	}
	type waiting struct {
		partner string
		ev      herald.PartnerEvent
	}
	var list []waiting
	for rows.Next() {
		var w waiting
		var record string
		if err := rows.Scan(&w.partner, &record); err != nil {
			rows.Close()
			return err
		}
		if json.Unmarshal([]byte(record), &w.ev) == nil {
			list = append(list, w)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, w := range list {
		if _, err := s.applyEvent(ctx, tx, w.partner, w.ev); err != nil {
			return err
		}
	}
	return nil
}

// Unconfirm moves to unconfirmed every delivery accepted by partner more
// than within ago (at now) that no final event has confirmed, and returns
// their ids. The cause names the deadline.
func (s *DB) Unconfirm(ctx context.Context, partner string, within time.Duration, now time.Time) ([]string, error) {
	rows, err := s.QueryContext(ctx, `SELECT d.id FROM deliveries d
		WHERE d.state = 'accepted' AND d.partner = ?
		AND (SELECT MAX(t.at) FROM transitions t WHERE t.delivery_id = d.id AND t.to_state = 'accepted') <= ?`,
		partner, now.Add(-within).UnixNano())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: unconfirm: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlstore: unconfirm: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	var moved []string
	for _, id := range ids {
		_, err := s.Update(ctx, id, func(d *herald.Delivery) (Change, error) {
			if d.State != herald.StateAccepted {
				return Change{}, ErrNoChange
			}
			d.Reason = fmt.Sprintf("unconfirmed: no final event from %s within %s of acceptance", partner, within)
			return Change{To: herald.StateUnconfirmed, Cause: d.Reason}, nil
		})
		if err != nil {
			return moved, err
		}
		moved = append(moved, id)
	}
	return moved, nil
}
