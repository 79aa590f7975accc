package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"herald"
)

// EnqueueFunc inserts the queue jobs that deliver deliveryIDs, inside tx, so
// they exist only if tx commits.
type EnqueueFunc func(ctx context.Context, tx *sql.Tx, deliveryIDs []string) error

// CreateNotification stores n and its deliveries (state queued), records
// their first transition, and calls enqueue in the same transaction.
//
// When n has an IdempotencyKey already used, it returns the stored
// notification and existed=true if requestHash matches the first request's,
// or EINVALID if it does not; nothing is written either way.
func (s *DB) CreateNotification(ctx context.Context, n *herald.Notification, requestHash string, enqueue EnqueueFunc) (_ *herald.Notification, existed bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if n.IdempotencyKey != "" {
			var id, hash string
			err := s.q(tx).QueryRowContext(ctx, qIdempotency, n.IdempotencyKey).Scan(&id, &hash)
			switch {
			case err == nil && hash != requestHash:
				return herald.Invalid("Idempotency-Key", "already_exists", "this key was used with a different request body")
			case err == nil:
				existed = true
				n.ID = id
				return nil
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		return s.insertNotification(ctx, tx, n, requestHash, enqueue)
	})
	if err != nil {
		if herald.ErrorCode(err) == herald.EINVALID {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("sqlstore: create notification: %w", err)
	}
	if existed {
		got, err := s.GetNotification(ctx, n.ID)
		return got, true, err
	}
	for i := range n.Deliveries {
		d := &n.Deliveries[i]
		d.NotificationID, d.State = n.ID, herald.StateQueued
		d.CreatedAt, d.UpdatedAt, d.RoundStartedAt = n.CreatedAt, n.CreatedAt, n.CreatedAt
	}
	return n, false, nil
}

// insertNotification writes n and its deliveries, in state queued, and
// enqueues their jobs, inside tx.
func (s *DB) insertNotification(ctx context.Context, tx *sql.Tx, n *herald.Notification, requestHash string, enqueue EnqueueFunc) error {
	md, _ := json.Marshal(n.Metadata)
	rc, _ := json.Marshal(n.Recipients)
	var idem any
	if n.IdempotencyKey != "" {
		idem = n.IdempotencyKey
	}
	now := n.CreatedAt.UnixNano()
	if _, err := s.q(tx).ExecContext(ctx, qInsertNotification, n.ID, idem, requestHash, n.Subject, n.Text, n.HTML, string(md), string(rc),
		n.TraceParent, now, jsonOrEmpty(n.Alert)); err != nil {
		return err
	}
	ids := make([]string, 0, len(n.Deliveries))
	for _, d := range n.Deliveries {
		if _, err := s.q(tx).ExecContext(ctx, qInsertDelivery, d.ID, n.ID, d.Channel, d.Recipient.Type, d.Recipient.Target, herald.StateQueued,
			now, now, now, jsonOrEmpty(d.Options), d.PinnedPartner); err != nil {
			return err
		}
		if err := s.insertTransition(ctx, tx, d.ID, "", herald.StateQueued, "created", now); err != nil {
			return err
		}
		ids = append(ids, d.ID)
	}
	return enqueue(ctx, tx, ids)
}

// jsonOrEmpty is v as JSON, or "" for a nil pointer.
func jsonOrEmpty[T any](v *T) string {
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// insertTransition records a state change of delivery id and, the first
// time it reaches a final state, its judgement for the delivery SLOs.
func (s *DB) insertTransition(ctx context.Context, tx *sql.Tx, id string, from, to herald.DeliveryState, cause string, at int64) error {
	if _, err := s.q(tx).ExecContext(ctx, qInsertTransition, id, from, to, cause, at); err != nil {
		return err
	}
	if j := herald.Judge(to); j != "" && from != to {
		_, err := s.q(tx).ExecContext(ctx, `UPDATE deliveries SET judged_at = ?, judgement = ? WHERE id = ? AND judged_at IS NULL`, at, j, id)
		return err
	}
	return nil
}

// GetNotification returns the notification with id and its deliveries.
// Returns ENOTFOUND when there is none.
func (s *DB) GetNotification(ctx context.Context, id string) (*herald.Notification, error) {
	n, err := s.Notification(ctx, id)
	if err != nil {
		return nil, err
	}
	n.Deliveries, err = s.queryDeliveries(ctx, `WHERE notification_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, err
	}
	return n, nil
}

// Notification returns the notification with id, without its deliveries.
// Returns ENOTFOUND when there is none.
func (s *DB) Notification(ctx context.Context, id string) (*herald.Notification, error) {
	var n herald.Notification
	var idem sql.NullString
	var md, rc, alert string
	var created int64
	err := s.q(nil).QueryRowContext(ctx, `SELECT id, idempotency_key, subject, text_body, html_body, metadata, recipients, trace_parent, created_at, alert FROM notifications WHERE id = ?`, id).
		Scan(&n.ID, &idem, &n.Subject, &n.Text, &n.HTML, &md, &rc, &n.TraceParent, &created, &alert)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, herald.Errorf(herald.ENOTFOUND, "no notification %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get notification: %w", err)
	}
	n.IdempotencyKey = idem.String
	n.CreatedAt = time.Unix(0, created).UTC()
	if err := json.Unmarshal([]byte(md), &n.Metadata); err != nil {
		return nil, fmt.Errorf("sqlstore: get notification %s: metadata: %w", id, err)
	}
	if err := json.Unmarshal([]byte(rc), &n.Recipients); err != nil {
		return nil, fmt.Errorf("sqlstore: get notification %s: recipients: %w", id, err)
	}
	if alert != "" {
		n.Alert = &herald.Alert{}
		if err := json.Unmarshal([]byte(alert), n.Alert); err != nil {
			return nil, fmt.Errorf("sqlstore: get notification %s: alert: %w", id, err)
		}
	}
	return &n, nil
}

const deliveryColumns = `id, notification_id, channel, recipient_type, recipient_target, state, reason, partner, partner_message_id,
	attempts, last_outcome, possible_duplicates, next_attempt_at, lease_until, round_attempts, round_started_at, created_at, updated_at, options, pinned_partner,
	judged_at, judgement`

func (s *DB) queryDeliveries(ctx context.Context, where string, args ...any) ([]herald.Delivery, error) {
	return queryDeliveries(ctx, s.q(nil), where, args...)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryDeliveries(ctx context.Context, q querier, where string, args ...any) ([]herald.Delivery, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: query deliveries: %w", err)
	}
	defer rows.Close()
	out := []herald.Delivery{}
	for rows.Next() {
		var d herald.Delivery
		var next, lease, judged sql.NullInt64
		var created, updated, round int64
		var options string
		if err := rows.Scan(&d.ID, &d.NotificationID, &d.Channel, &d.Recipient.Type, &d.Recipient.Target, &d.State, &d.Reason,
			&d.Partner, &d.PartnerMessageID, &d.Attempts, &d.LastOutcome, &d.PossibleDuplicates, &next, &lease, &d.RoundAttempts, &round, &created, &updated, &options, &d.PinnedPartner,
			&judged, &d.Judgement); err != nil {
			return nil, fmt.Errorf("sqlstore: query deliveries: %w", err)
		}
		if options != "" {
			d.Options = &herald.RecipientOptions{}
			if err := json.Unmarshal([]byte(options), d.Options); err != nil {
				return nil, fmt.Errorf("sqlstore: delivery %s options: %w", d.ID, err)
			}
		}
		d.CreatedAt = time.Unix(0, created).UTC()
		d.RoundStartedAt = time.Unix(0, round).UTC()
		d.UpdatedAt = time.Unix(0, updated).UTC()
		d.NextAttemptAt, d.LeaseUntil, d.JudgedAt = nullTime(next), nullTime(lease), nullTime(judged)
		out = append(out, d)
	}
	return out, rows.Err()
}

// GetDelivery returns the delivery with id and every attempt made on it.
// Returns ENOTFOUND when there is none.
func (s *DB) GetDelivery(ctx context.Context, id string) (*herald.Delivery, error) {
	ds, err := s.queryDeliveries(ctx, `WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, herald.Errorf(herald.ENOTFOUND, "no delivery %q", id)
	}
	d := ds[0]
	d.AttemptLog, err = s.attempts(ctx, id)
	return &d, err
}

func (s *DB) attempts(ctx context.Context, deliveryID string) ([]herald.Attempt, error) {
	rows, err := s.q(nil).QueryContext(ctx, `SELECT id, delivery_id, number, partner, started_at, duration_ns, outcome, reason, status,
		partner_message_id, retry_after_ns, rate_limit, request_summary, response_excerpt, error, partner_side, trace_id
		FROM attempts WHERE delivery_id = ? ORDER BY number`, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: attempts: %w", err)
	}
	defer rows.Close()
	out := []herald.Attempt{}
	for rows.Next() {
		var a herald.Attempt
		var started, dur, wait int64
		var rl string
		if err := rows.Scan(&a.ID, &a.DeliveryID, &a.Number, &a.Partner, &started, &dur, &a.Outcome, &a.Reason, &a.Status,
			&a.MessageID, &wait, &rl, &a.Request, &a.Response, &a.Error, &a.PartnerSide, &a.TraceID); err != nil {
			return nil, fmt.Errorf("sqlstore: attempts: %w", err)
		}
		a.StartedAt = time.Unix(0, started).UTC()
		a.Duration = time.Duration(dur)
		a.RetryAfter = time.Duration(wait)
		if rl != "" && rl != "null" {
			json.Unmarshal([]byte(rl), &a.RateLimit)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeliveryFilter selects deliveries. Empty fields match all.
type DeliveryFilter struct {
	State   herald.DeliveryState
	Partner string
	Channel string
	// Judgement keeps the deliveries judged so for the delivery SLOs;
	// JudgedSince, when set, those judged at or after it.
	Judgement   herald.Judgement
	JudgedSince time.Time
	// Since and Until bound the creation time: Since ≤ created < Until.
	Since, Until time.Time
	// Limit caps the result; 0 means 100. At most 1000.
	Limit int
}

// ListDeliveries returns the matching deliveries, newest first.
func (s *DB) ListDeliveries(ctx context.Context, f DeliveryFilter) ([]herald.Delivery, error) {
	var where []string
	var args []any
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, f.State)
	}
	if f.Partner != "" {
		where, args = append(where, "partner = ?"), append(args, f.Partner)
	}
	if f.Channel != "" {
		where, args = append(where, "channel = ?"), append(args, f.Channel)
	}
	if f.Judgement != "" {
		where, args = append(where, "judgement = ?"), append(args, f.Judgement)
	}
	if !f.JudgedSince.IsZero() {
		where, args = append(where, "judged_at >= ?"), append(args, f.JudgedSince.UnixNano())
	}
	if !f.Since.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, f.Until.UnixNano())
	}
	q := ""
	if len(where) > 0 {
		q = "WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	return s.queryDeliveries(ctx, q+" ORDER BY created_at DESC, id DESC LIMIT ?", append(args, limit)...)
}

// Change is what one step of a delivery's life writes, atomically.
type Change struct {
	// To is the new state; empty keeps the state.
	To herald.DeliveryState
	// Cause explains the transition, recorded with it.
	Cause string
	// Attempt, when set, is recorded.
	Attempt *herald.Attempt
	// Enqueue asks for a queue job for the delivery in the same transaction.
	Enqueue EnqueueFunc
}

// ErrNoChange is returned by a decide function to leave the delivery as it
// is; Update then returns the delivery unchanged and a nil error.
var ErrNoChange = errors.New("no change")

// Update loads the delivery with id inside a transaction, lets decide
// mutate its fields (Reason, Partner, PartnerMessageID, Attempts, LastOutcome,
// PossibleDuplicates, NextAttemptAt, LeaseUntil, RoundAttempts, RoundStartedAt) and return the Change to write, and
// writes it all or nothing. A transition the state machine forbids is an
// *herald.ErrInvalidTransition. Returns ENOTFOUND when there is no delivery.
func (s *DB) Update(ctx context.Context, id string, decide func(d *herald.Delivery) (Change, error)) (*herald.Delivery, error) {
	var out herald.Delivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ds, err := queryDeliveries(ctx, s.q(tx), byID, id)
		if err != nil {
			return err
		}
		if len(ds) == 0 {
			return herald.Errorf(herald.ENOTFOUND, "no delivery %q", id)
		}
		d := ds[0]
		from := d.State
		c, err := decide(&d)
		if err != nil {
			out = ds[0]
			return err
		}
		now := s.now()
		if c.To != "" && c.To != from {
			if err := herald.Move(from, c.To); err != nil {
				return err
			}
			d.State = c.To
			if err := s.insertTransition(ctx, tx, id, from, c.To, c.Cause, now); err != nil {
				return err
			}
		}
		var next, lease any
		if d.NextAttemptAt != nil {
			next = d.NextAttemptAt.UnixNano()
		}
		if d.LeaseUntil != nil {
			lease = d.LeaseUntil.UnixNano()
		}
		if _, err := s.q(tx).ExecContext(ctx, qUpdateDelivery,
			d.State, d.Reason, d.Partner, d.PartnerMessageID, d.Attempts, d.LastOutcome, d.PossibleDuplicates, next, lease, d.RoundAttempts,
			d.RoundStartedAt.UnixNano(), now, d.PinnedPartner, id); err != nil {
			return err
		}
		if c.To == herald.StateAccepted {
			if err := s.applyWaiting(ctx, tx, &d); err != nil {
				return err
			}
			// An event that was waiting may have moved it on.
			if err := s.q(tx).QueryRowContext(ctx, `SELECT state, reason FROM deliveries WHERE id = ?`, id).Scan(&d.State, &d.Reason); err != nil {
				return err
			}
		}
		if a := c.Attempt; a != nil {
			rl, _ := json.Marshal(a.RateLimit)
			if _, err := s.q(tx).ExecContext(ctx, qInsertAttempt,
				a.ID, id, a.Number, a.Partner, a.StartedAt.UnixNano(), int64(a.Duration), a.Outcome, a.Reason, a.Status,
				a.MessageID, int64(a.RetryAfter), string(rl), a.Request, a.Response, a.Error, a.PartnerSide, a.TraceID); err != nil {
				return err
			}
		}
		if c.Enqueue != nil {
			if err := c.Enqueue(ctx, tx, []string{id}); err != nil {
				return err
			}
		}
		d.UpdatedAt = time.Unix(0, now).UTC()
		out = d
		return nil
	})
	switch {
	case errors.Is(err, ErrNoChange):
		return &out, nil
	case err != nil && herald.ErrorCode(err) != herald.EINTERNAL:
		return nil, err
	case err != nil:
		var bad *herald.ErrInvalidTransition
		if errors.As(err, &bad) {
			return nil, err
		}
		return nil, fmt.Errorf("sqlstore: update delivery %s: %w", id, err)
	}
	return &out, nil
}

// Transitions returns the recorded state changes of a delivery, oldest first.
func (s *DB) Transitions(ctx context.Context, id string) ([]Transition, error) {
	rows, err := s.QueryContext(ctx, `SELECT from_state, to_state, cause, at FROM transitions WHERE delivery_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: transitions: %w", err)
	}
	defer rows.Close()
	var out []Transition
	for rows.Next() {
		var t Transition
		var at int64
		if err := rows.Scan(&t.From, &t.To, &t.Cause, &at); err != nil {
			return nil, fmt.Errorf("sqlstore: transitions: %w", err)
		}
		t.At = time.Unix(0, at).UTC()
		out = append(out, t)
	}
	return out, rows.Err()
}

// Transition is one recorded state change.
type Transition struct {
	From  herald.DeliveryState `json:"from"`
	To    herald.DeliveryState `json:"to"`
	Cause string               `json:"cause"`
	At    time.Time            `json:"at"`
}

func nullTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.Unix(0, v.Int64).UTC()
	return &t
}

// RequeueUnfinished enqueues a job for every delivery that a stopped
// process may have left without a live one: those sending (their attempt was
// interrupted) and those queued and due. Jobs are idempotent — a delivery
// is only ever attempted by the worker holding its lease — so a job too
// many costs one no-op. It returns how many it enqueued.
func (s *DB) RequeueUnfinished(ctx context.Context, enqueue EnqueueFunc) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ds, err := queryDeliveries(ctx, s.q(tx), `WHERE state = ? OR (state = ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?))`,
			herald.StateSending, herald.StateQueued, s.now())
		if err != nil || len(ds) == 0 {
			return err
		}
		ids := make([]string, len(ds))
		for i, d := range ds {
			ids[i] = d.ID
		}
		n = len(ids)
		return enqueue(ctx, tx, ids)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlstore: requeue unfinished deliveries: %w", err)
	}
	return n, nil
}

const byID = `WHERE id = ?`

// The statements transactions run, prepared at Open.
const (
	qIdempotency        = `SELECT id, request_hash FROM notifications WHERE idempotency_key = ?`
	qInsertNotification = `INSERT INTO notifications (id, idempotency_key, request_hash, subject, text_body, html_body, metadata, recipients, trace_parent, created_at, alert)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qInsertDelivery = `INSERT INTO deliveries (id, notification_id, channel, recipient_type, recipient_target, state, round_started_at, created_at, updated_at, options, pinned_partner)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qInsertTransition = `INSERT INTO transitions (delivery_id, from_state, to_state, cause, at) VALUES (?, ?, ?, ?, ?)`
	qUpdateDelivery   = `UPDATE deliveries SET state = ?, reason = ?, partner = ?, partner_message_id = ?, attempts = ?, last_outcome = ?,
			possible_duplicates = ?, next_attempt_at = ?, lease_until = ?, round_attempts = ?, round_started_at = ?, updated_at = ?, pinned_partner = ? WHERE id = ?`
	qInsertAttempt = `INSERT INTO attempts (id, delivery_id, number, partner, started_at, duration_ns, outcome, reason,
				status, partner_message_id, retry_after_ns, rate_limit, request_summary, response_excerpt, error, partner_side, trace_id)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

var txQueries = []string{qIdempotency, qInsertNotification, qInsertDelivery, qInsertTransition, qUpdateDelivery,
	qInsertAttempt, `SELECT ` + deliveryColumns + ` FROM deliveries ` + byID}
