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

// SaveSLO creates an SLO (s.ID empty), with the burn alerts given, or
// replaces one, keeping its creation time and its alerts; s must be
// normalized and alerts too. Returns ENOTFOUND for an unknown id and
// EINVALID for an unknown recipient id.
func (s *DB) SaveSLO(ctx context.Context, o herald.SLO, alerts []herald.BurnAlert) (herald.SLO, []herald.BurnAlert, error) {
	now := time.Unix(0, s.now()).UTC()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if o.ID == "" {
			o.ID, o.CreatedAt = herald.NewID("slo_", now), now
		} else {
			var created int64
			err := tx.QueryRowContext(ctx, `SELECT created_at FROM slos WHERE id = ? AND dataset = ?`, o.ID, o.Dataset).Scan(&created)
			if errors.Is(err, sql.ErrNoRows) {
				return herald.Errorf(herald.ENOTFOUND, "no SLO %q in dataset %q", o.ID, o.Dataset)
			}
			if err != nil {
				return err
			}
			o.CreatedAt = time.Unix(0, created).UTC()
		}
		o.UpdatedAt = now
		spec, _ := json.Marshal(o)
		if _, err := tx.ExecContext(ctx, `INSERT INTO slos (id, dataset, spec, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
			o.ID, o.Dataset, string(spec), o.CreatedAt.UnixNano(), now.UnixNano()); err != nil {
			return err
		}
		for i := range alerts {
			alerts[i].SLO.ID, alerts[i].Dataset = o.ID, o.Dataset
			// A nanosecond apart, so they list in the order given.
			if err := s.saveBurnAlert(ctx, tx, &alerts[i], now.Add(time.Duration(i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return herald.SLO{}, nil, wrapInternal("save SLO", err)
	}
	return o, alerts, nil
}

// wrapInternal adds context to an internal error and passes herald's
// errors through.
func wrapInternal(what string, err error) error {
	if herald.ErrorCode(err) == herald.EINTERNAL {
		return fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	return err
}

// GetSLO returns the SLO with id in dataset, or ENOTFOUND.
func (s *DB) GetSLO(ctx context.Context, dataset, id string) (herald.SLO, error) {
	list, err := s.listSLOs(ctx, `WHERE id = ? AND dataset = ?`, id, dataset)
	if err != nil {
		return herald.SLO{}, err
	}
	if len(list) == 0 {
		return herald.SLO{}, herald.Errorf(herald.ENOTFOUND, "no SLO %q in dataset %q", id, dataset)
	}
	return list[0], nil
}

// ListSLOs returns the SLOs of dataset, or of every dataset when dataset
// is empty, oldest first.
func (s *DB) ListSLOs(ctx context.Context, dataset string) ([]herald.SLO, error) {
	if dataset == "" {
		return s.listSLOs(ctx, `ORDER BY created_at, id`)
	}
	return s.listSLOs(ctx, `WHERE dataset = ? ORDER BY created_at, id`, dataset)
}

func (s *DB) listSLOs(ctx context.Context, where string, args ...any) ([]herald.SLO, error) {
	rows, err := s.QueryContext(ctx, `SELECT dataset, spec FROM slos `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list SLOs: %w", err)
	}
	defer rows.Close()
	out := []herald.SLO{}
	for rows.Next() {
		var dataset, spec string
		if err := rows.Scan(&dataset, &spec); err != nil {
			return nil, fmt.Errorf("sqlstore: list SLOs: %w", err)
		}
		var o herald.SLO
		if err := json.Unmarshal([]byte(spec), &o); err != nil {
			return nil, fmt.Errorf("sqlstore: SLO: %w", err)
		}
		o.Dataset = dataset
		out = append(out, o)
	}
	return out, rows.Err()
}

// DeleteSLO deletes an SLO with its burn alerts and their history, or
// returns ENOTFOUND.
func (s *DB) DeleteSLO(ctx context.Context, dataset, id string) error {
	return wrapInternal("delete SLO", s.inTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM burn_alert_destinations WHERE burn_alert_id IN (SELECT id FROM burn_alerts WHERE slo_id = ?)`,
			`DELETE FROM burn_alerts WHERE slo_id = ?`,
			`DELETE FROM burn_alert_events WHERE slo_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM slos WHERE id = ? AND dataset = ?`, id, dataset)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return herald.Errorf(herald.ENOTFOUND, "no SLO %q in dataset %q", id, dataset)
		}
		return nil
	}))
}

// SaveBurnAlert creates a burn alert (a.ID empty) or replaces one, keeping
// its creation time and state; a must be normalized. Returns ENOTFOUND for
// an unknown alert or SLO and EINVALID for an unknown recipient id.
func (s *DB) SaveBurnAlert(ctx context.Context, a herald.BurnAlert) (herald.BurnAlert, error) {
	now := time.Unix(0, s.now()).UTC()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM slos WHERE id = ? AND dataset = ?`, a.SLO.ID, a.Dataset).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return herald.Errorf(herald.ENOTFOUND, "no SLO %q in dataset %q", a.SLO.ID, a.Dataset)
		}
		return s.saveBurnAlert(ctx, tx, &a, now)
	})
	if err != nil {
		return herald.BurnAlert{}, wrapInternal("save burn alert", err)
	}
	return a, nil
}

func (s *DB) saveBurnAlert(ctx context.Context, tx *sql.Tx, a *herald.BurnAlert, now time.Time) error {
	a.State = string(herald.AlertOK)
	if a.ID == "" {
		a.ID, a.CreatedAt = herald.NewID("ba_", now), now
	} else {
		var created int64
		err := tx.QueryRowContext(ctx, `SELECT created_at, state FROM burn_alerts WHERE id = ? AND dataset = ?`, a.ID, a.Dataset).Scan(&created, &a.State)
		if errors.Is(err, sql.ErrNoRows) {
			return herald.Errorf(herald.ENOTFOUND, "no burn alert %q in dataset %q", a.ID, a.Dataset)
		}
		if err != nil {
			return err
		}
		a.CreatedAt = time.Unix(0, created).UTC()
	}
	a.UpdatedAt = now
	a.Triggered = herald.AlertState(a.State).Triggered()
	if err := s.resolveRecipients(ctx, tx, a.Recipients); err != nil {
		return err
	}
	// The state lives in its column, which the engine moves; the spec
	// holds what a client set.
	stored := *a
	stored.State, stored.Triggered = "", false
	spec, _ := json.Marshal(stored)
	if _, err := tx.ExecContext(ctx, `INSERT INTO burn_alerts (id, slo_id, dataset, spec, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
		a.ID, a.SLO.ID, a.Dataset, string(spec), a.CreatedAt.UnixNano(), now.UnixNano()); err != nil {
		return err
	}
	return linkDestinations(ctx, tx, burnAlertLinks, a.ID, a.Recipients)
}

// GetBurnAlert returns the burn alert with id in dataset, or ENOTFOUND.
func (s *DB) GetBurnAlert(ctx context.Context, dataset, id string) (herald.BurnAlert, error) {
	list, err := s.listBurnAlerts(ctx, `WHERE id = ? AND dataset = ?`, id, dataset)
	if err != nil {
		return herald.BurnAlert{}, err
	}
	if len(list) == 0 {
		return herald.BurnAlert{}, herald.Errorf(herald.ENOTFOUND, "no burn alert %q in dataset %q", id, dataset)
	}
	return list[0], nil
}

// ListBurnAlerts returns the burn alerts of dataset (every dataset when
// empty), only those of sloID when it is set, oldest first.
func (s *DB) ListBurnAlerts(ctx context.Context, dataset, sloID string) ([]herald.BurnAlert, error) {
	return s.listBurnAlerts(ctx, `WHERE (? = '' OR dataset = ?) AND (? = '' OR slo_id = ?) ORDER BY created_at, id`,
		dataset, dataset, sloID, sloID)
}

func (s *DB) listBurnAlerts(ctx context.Context, where string, args ...any) ([]herald.BurnAlert, error) {
	rows, err := s.QueryContext(ctx, `SELECT dataset, spec, state FROM burn_alerts `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list burn alerts: %w", err)
	}
	defer rows.Close()
	out := []herald.BurnAlert{}
	for rows.Next() {
		var dataset, spec, state string
		if err := rows.Scan(&dataset, &spec, &state); err != nil {
			return nil, fmt.Errorf("sqlstore: list burn alerts: %w", err)
		}
		var a herald.BurnAlert
		if err := json.Unmarshal([]byte(spec), &a); err != nil {
			return nil, fmt.Errorf("sqlstore: burn alert: %w", err)
		}
		a.Dataset, a.State = dataset, state
		a.Triggered = herald.AlertState(state).Triggered()
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeleteBurnAlert deletes a burn alert, or returns ENOTFOUND.
func (s *DB) DeleteBurnAlert(ctx context.Context, dataset, id string) error {
	return wrapInternal("delete burn alert", s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM burn_alert_destinations WHERE burn_alert_id = ?`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM burn_alerts WHERE id = ? AND dataset = ?`, id, dataset)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return herald.Errorf(herald.ENOTFOUND, "no burn alert %q in dataset %q", id, dataset)
		}
		return nil
	}))
}

// AlertProgress is where a burn alert is in its lifecycle, kept so a
// restart resumes it.
type AlertProgress struct {
	State herald.AlertState
	// Since is when pending began.
	Since time.Time
	// Falses counts consecutive false evaluations while firing.
	Falses int
}

// AlertProgress returns the lifecycle of every burn alert of an SLO, by
// alert id.
func (s *DB) AlertProgress(ctx context.Context, sloID string) (map[string]AlertProgress, error) {
	rows, err := s.QueryContext(ctx, `SELECT id, state, since, falses FROM burn_alerts WHERE slo_id = ?`, sloID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: alert progress: %w", err)
	}
	defer rows.Close()
	out := map[string]AlertProgress{}
	for rows.Next() {
		var id, state string
		var since sql.NullInt64
		var p AlertProgress
		if err := rows.Scan(&id, &state, &since, &p.Falses); err != nil {
			return nil, fmt.Errorf("sqlstore: alert progress: %w", err)
		}
		p.State = herald.AlertState(state)
		if since.Valid {
			p.Since = time.Unix(0, since.Int64).UTC()
		}
		out[id] = p
	}
	return out, rows.Err()
}

// SaveAlertProgress stores the lifecycle of burn alerts by id; with ev
// set it records that change too and, when n is not nil, the notification
// it causes with its deliveries and queue jobs: all in one transaction.
func (s *DB) SaveAlertProgress(ctx context.Context, progress map[string]AlertProgress, ev *herald.BurnAlertEvent, n *herald.Notification, enqueue EnqueueFunc) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for id, p := range progress {
			var since any
			if !p.Since.IsZero() {
				since = p.Since.UnixNano()
			}
			if _, err := tx.ExecContext(ctx, `UPDATE burn_alerts SET state = ?, since = ?, falses = ? WHERE id = ?`,
				p.State, since, p.Falses, id); err != nil {
				return err
			}
		}
		if ev == nil {
			return nil
		}
		if n != nil {
			if err := s.insertNotification(ctx, tx, n, "", enqueue); err != nil {
				return err
			}
			ev.NotificationID = n.ID
		}
		if ev.ID == "" {
			ev.ID = herald.NewID("bae_", ev.At)
		}
		record, _ := json.Marshal(ev)
		_, err := tx.ExecContext(ctx, `INSERT INTO burn_alert_events (id, slo_id, burn_alert_id, from_state, to_state, at, notification_id, record)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ev.ID, ev.SLOID, ev.BurnAlertID, ev.From, ev.To, ev.At.UnixNano(), nullString(ev.NotificationID), string(record))
		return err
	})
	return wrapInternal("save alert progress", err)
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// BurnAlertEvents returns the last limit state changes of an SLO's burn
// alerts, newest first.
func (s *DB) BurnAlertEvents(ctx context.Context, sloID string, limit int) ([]herald.BurnAlertEvent, error) {
	rows, err := s.QueryContext(ctx, `SELECT record FROM burn_alert_events WHERE slo_id = ? ORDER BY at DESC, id DESC LIMIT ?`, sloID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: burn alert events: %w", err)
	}
	defer rows.Close()
	out := []herald.BurnAlertEvent{}
	for rows.Next() {
		var record string
		if err := rows.Scan(&record); err != nil {
			return nil, fmt.Errorf("sqlstore: burn alert events: %w", err)
		}
		var ev herald.BurnAlertEvent
		if err := json.Unmarshal([]byte(record), &ev); err != nil {
			return nil, fmt.Errorf("sqlstore: burn alert event: %w", err)
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// JudgeOverdue judges bad, at now, every delivery of channel created
// before now − deadline that has not reached a final state: a delivery
// that is never attempted, or stays queued or sending, burns the budget
// like a failure. Returns how many it judged.
func (s *DB) JudgeOverdue(ctx context.Context, channel string, deadline time.Duration, now time.Time) (int64, error) {
	res, err := s.ExecContext(ctx, `UPDATE deliveries SET judged_at = ?, judgement = 'bad'
		WHERE judged_at IS NULL AND channel = ? AND created_at <= ?`, now.UnixNano(), channel, now.Add(-deadline).UnixNano())
	if err != nil {
		return 0, fmt.Errorf("sqlstore: judge overdue: %w", err)
	}
	return res.RowsAffected()
}

// JudgeAccepted judges good, at now, every accepted and not yet judged
// delivery of channel — only those through partners, when partners is not
// nil: for channels and partners with no confirmation to wait for, the
// documented acceptance is the final outcome. Returns how many it judged.
func (s *DB) JudgeAccepted(ctx context.Context, channel string, partners []string, now time.Time) (int64, error) {
	query := `UPDATE deliveries SET judged_at = ?, judgement = 'good' WHERE judged_at IS NULL AND channel = ? AND state = 'accepted'`
	args := []any{now.UnixNano(), channel}
	if partners != nil {
		if len(partners) == 0 {
			return 0, nil
		}
		query += ` AND partner IN (?` + strings.Repeat(", ?", len(partners)-1) + `)`
		for _, p := range partners {
			args = append(args, p)
		}
	}
	res, err := s.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: judge accepted: %w", err)
	}
	return res.RowsAffected()
}

const nsPerMinute = int64(time.Minute)

// DeliveryJudgements returns the availability judgements made in [from,
// to), per channel and minute, ordered by minute.
func (s *DB) DeliveryJudgements(ctx context.Context, from, to time.Time) ([]herald.DeliveryJudgements, error) {
	return s.judgements(ctx, `SELECT channel, judged_at / ? AS m,
		SUM(judgement = 'good'), SUM(judgement = 'bad'), SUM(judgement = 'excluded')
		FROM deliveries WHERE judged_at >= ? AND judged_at < ? GROUP BY channel, m ORDER BY m, channel`,
		nsPerMinute, from.UnixNano(), to.UnixNano())
}

// LatencyJudgements returns the latency judgements of channel's deliveries
// made in [from, to), per minute: a delivery is good when it was delivered
// within `within` of its creation (judged then), excluded when it was
// excluded by then, and otherwise bad — judged when it failed or at
// creation + within, whichever came first. to must not be after now, so
// no deadline still to come is judged.
func (s *DB) LatencyJudgements(ctx context.Context, channel string, within time.Duration, from, to time.Time) ([]herald.DeliveryJudgements, error) {
	w := int64(within)
	return s.judgements(ctx, `SELECT channel, at / ? AS m, SUM(j = 'good'), SUM(j = 'bad'), SUM(j = 'excluded') FROM (
		SELECT channel,
			CASE WHEN judged_at IS NOT NULL AND judged_at <= created_at + ? THEN judged_at ELSE created_at + ? END AS at,
			CASE WHEN judged_at IS NOT NULL AND judged_at <= created_at + ? AND judgement != 'bad' THEN judgement ELSE 'bad' END AS j
		FROM deliveries WHERE channel = ? AND created_at >= ? AND created_at < ?)
		WHERE at >= ? AND at < ? GROUP BY channel, m ORDER BY m`,
		nsPerMinute, w, w, w, channel, from.UnixNano()-w, to.UnixNano(), from.UnixNano(), to.UnixNano())
}

func (s *DB) judgements(ctx context.Context, query string, args ...any) ([]herald.DeliveryJudgements, error) {
	rows, err := s.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: judgements: %w", err)
	}
	defer rows.Close()
	var out []herald.DeliveryJudgements
	for rows.Next() {
		var j herald.DeliveryJudgements
		var m int64
		if err := rows.Scan(&j.Channel, &m, &j.Good, &j.Bad, &j.Excluded); err != nil {
			return nil, fmt.Errorf("sqlstore: judgements: %w", err)
		}
		j.Minute = time.Unix(m*60, 0).UTC()
		out = append(out, j)
	}
	return out, rows.Err()
}

// TopFailures returns the partners and reasons of channel's deliveries
// judged bad in [from, to), most frequent first, at most limit. The reason
// is the delivery's state, with the last attempt's reason for a failure,
// or "overdue" with the state it was stuck in.
func (s *DB) TopFailures(ctx context.Context, channel string, from, to time.Time, limit int) ([]herald.FailureCount, error) {
	rows, err := s.QueryContext(ctx, `SELECT partner, reason, COUNT(*) AS n FROM (
		SELECT d.partner,
			CASE WHEN d.state NOT IN ('delivered', 'failed', 'bounced', 'dropped', 'unconfirmed') THEN 'overdue while ' || d.state
			     WHEN d.state = 'failed' THEN 'failed: ' || COALESCE((SELECT a.outcome || '/' || a.reason FROM attempts a
			         WHERE a.delivery_id = d.id ORDER BY a.number DESC LIMIT 1), 'no attempt')
			     ELSE d.state END AS reason
		FROM deliveries d WHERE d.judged_at >= ? AND d.judged_at < ? AND d.judgement = 'bad' AND d.channel = ?)
		GROUP BY partner, reason ORDER BY n DESC, partner, reason LIMIT ?`, from.UnixNano(), to.UnixNano(), channel, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: top failures: %w", err)
	}
	defer rows.Close()
	out := []herald.FailureCount{}
	for rows.Next() {
		var f herald.FailureCount
		if err := rows.Scan(&f.Partner, &f.Reason, &f.Count); err != nil {
			return nil, fmt.Errorf("sqlstore: top failures: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}
