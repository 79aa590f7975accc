package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"herald"
)

// CreateDestination stores a new destination (a Honeycomb "recipient")
// after checking it. Returns ECONFLICT if an equal one exists.
func (s *DB) CreateDestination(ctx context.Context, d herald.Destination) (herald.Destination, error) {
	if err := d.Check(); err != nil {
		return herald.Destination{}, err
	}
	id, err := equalDestination(ctx, s.DB, d)
	if err != nil {
		return herald.Destination{}, fmt.Errorf("sqlstore: create recipient: %w", err)
	}
	if id != "" {
		return herald.Destination{}, &herald.Error{Code: herald.ECONFLICT, Message: fmt.Sprintf("recipient %s already exists", id),
			Fields: []herald.FieldError{{Field: "details", Code: "already_exists", Description: "an equal recipient is " + id}}}
	}
	if err := s.insertDestination(ctx, s.DB, &d); err != nil {
		return herald.Destination{}, fmt.Errorf("sqlstore: create recipient: %w", err)
	}
	return d, nil
}

// EnsureDestination returns the destination equal to d (same type and
// details), creating it if there is none: for recipients herald's
// configuration names, which must not multiply at each start.
func (s *DB) EnsureDestination(ctx context.Context, d herald.Destination) (herald.Destination, error) {
	if err := d.Check(); err != nil {
		return herald.Destination{}, err
	}
	id, err := equalDestination(ctx, s.DB, d)
	if err != nil {
		return herald.Destination{}, fmt.Errorf("sqlstore: ensure recipient: %w", err)
	}
	if id != "" {
		return s.GetDestination(ctx, id)
	}
	if err := s.insertDestination(ctx, s.DB, &d); err != nil {
		return herald.Destination{}, fmt.Errorf("sqlstore: ensure recipient: %w", err)
	}
	return d, nil
}

// execQuerier is a *sql.DB or a *sql.Tx.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// equalDestination returns the id of the destination equal to d (same type
// and details), or "" for none. Details are stored as their JSON, which
// encoding/json writes the same for equal values.
func equalDestination(ctx context.Context, q execQuerier, d herald.Destination) (string, error) {
	details, _ := json.Marshal(d.Details)
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM destinations WHERE type = ? AND details = ? ORDER BY id LIMIT 1`,
		d.Type, string(details)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// insertDestination stores d, giving it an id and its times.
func (s *DB) insertDestination(ctx context.Context, q execQuerier, d *herald.Destination) error {
	now := time.Unix(0, s.now()).UTC()
	d.ID, d.CreatedAt, d.UpdatedAt = herald.NewID("rcp_", now), now, now
	details, _ := json.Marshal(d.Details)
	_, err := q.ExecContext(ctx, `INSERT INTO destinations (id, type, details, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		d.ID, d.Type, string(details), now.UnixNano(), now.UnixNano())
	return err
}

// GetDestination returns the destination with id, or ENOTFOUND.
func (s *DB) GetDestination(ctx context.Context, id string) (herald.Destination, error) {
	row := s.QueryRowContext(ctx, `SELECT id, type, details, created_at, updated_at FROM destinations WHERE id = ?`, id)
	d, err := scanDestination(row)
	if errors.Is(err, sql.ErrNoRows) {
		return herald.Destination{}, herald.Errorf(herald.ENOTFOUND, "no recipient %q", id)
	}
	return d, err
}

// ListDestinations returns every destination, oldest first.
func (s *DB) ListDestinations(ctx context.Context) ([]herald.Destination, error) {
	rows, err := s.QueryContext(ctx, `SELECT id, type, details, created_at, updated_at FROM destinations ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list recipients: %w", err)
	}
	defer rows.Close()
	out := []herald.Destination{}
	for rows.Next() {
		d, err := scanDestination(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func scanDestination(row scanner) (herald.Destination, error) {
	var d herald.Destination
	var details string
	var created, updated int64
	if err := row.Scan(&d.ID, &d.Type, &details, &created, &updated); err != nil {
		return d, err
	}
	if err := json.Unmarshal([]byte(details), &d.Details); err != nil {
		return d, fmt.Errorf("sqlstore: recipient %s: %w", d.ID, err)
	}
	d.CreatedAt, d.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return d, nil
}

// UpdateDestination replaces a destination's type and details. Returns
// ENOTFOUND or EINVALID.
func (s *DB) UpdateDestination(ctx context.Context, d herald.Destination) (herald.Destination, error) {
	if err := d.Check(); err != nil {
		return herald.Destination{}, err
	}
	old, err := s.GetDestination(ctx, d.ID)
	if err != nil {
		return herald.Destination{}, err
	}
	now := time.Unix(0, s.now()).UTC()
	d.CreatedAt, d.UpdatedAt = old.CreatedAt, now
	details, _ := json.Marshal(d.Details)
	if _, err := s.ExecContext(ctx, `UPDATE destinations SET type = ?, details = ?, updated_at = ? WHERE id = ?`,
		d.Type, string(details), now.UnixNano(), d.ID); err != nil {
		return herald.Destination{}, fmt.Errorf("sqlstore: update recipient: %w", err)
	}
	return d, nil
}

// DeleteDestination deletes a destination no trigger or burn alert uses.
// Returns ENOTFOUND, or ECONFLICT while one uses it.
func (s *DB) DeleteDestination(ctx context.Context, id string) error {
	var triggers, alerts int
	if err := s.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM trigger_destinations WHERE destination_id = ?),
		(SELECT COUNT(*) FROM burn_alert_destinations WHERE destination_id = ?)`, id, id).Scan(&triggers, &alerts); err != nil {
		return fmt.Errorf("sqlstore: delete recipient: %w", err)
	}
	if triggers+alerts > 0 {
		return herald.Errorf(herald.ECONFLICT, "recipient %s is used by %d trigger(s) and %d burn alert(s)", id, triggers, alerts)
	}
	res, err := s.ExecContext(ctx, `DELETE FROM destinations WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("sqlstore: delete recipient: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return herald.Errorf(herald.ENOTFOUND, "no recipient %q", id)
	}
	return nil
}

// resolveRecipients gives every recipient an id: a {type, target}
// recipient is matched to an existing destination or created, as
// Honeycomb does, and the answer carries id, type and target.
func (s *DB) resolveRecipients(ctx context.Context, tx *sql.Tx, rs []herald.TriggerRecipient) error {
	for i, r := range rs {
		if r.ID != "" {
			var typ string
			if err := tx.QueryRowContext(ctx, `SELECT type FROM destinations WHERE id = ?`, r.ID).Scan(&typ); err != nil {
				if errors.Is(err, sql.ErrNoRows) {
					return herald.Invalid(fmt.Sprintf("recipients[%d].id", i), "invalid", "no recipient %q", r.ID)
				}
				return fmt.Errorf("sqlstore: recipients: %w", err)
			}
			continue
		}
		d := herald.Destination{Type: r.Type}
		switch r.Type {
		case "email":
			d.Details.EmailAddress = r.Target
		case "slack":
			d.Details.WebhookURL = r.Target
		case "webhook":
			d.Details.WebhookName, d.Details.WebhookURL = r.Target, r.Target
		case "pagerduty":
			d.Details.PagerDutyIntegrationName, d.Details.PagerDutyIntegrationKey = "pagerduty", r.Target
		}
		if err := d.Check(); err != nil {
			return herald.Invalid(fmt.Sprintf("recipients[%d].target", i), "invalid", "%v", err)
		}
		id, err := equalDestination(ctx, tx, d)
		if err != nil {
			return fmt.Errorf("sqlstore: recipients: %w", err)
		}
		if id == "" {
			if err := s.insertDestination(ctx, tx, &d); err != nil {
				return fmt.Errorf("sqlstore: recipients: %w", err)
			}
			id = d.ID
		}
		rs[i].ID = id
	}
	return nil
}

// destinationLinks names a table recording which destinations the rows of
// another use, so a destination in use is not deleted.
type destinationLinks struct{ table, owner string }

var (
	triggerLinks   = destinationLinks{"trigger_destinations", "trigger_id"}
	burnAlertLinks = destinationLinks{"burn_alert_destinations", "burn_alert_id"}
)

// linkDestinations records, in l, that owner uses the destinations of
// recipients (resolved: every one has its id), and no other.
func linkDestinations(ctx context.Context, tx *sql.Tx, l destinationLinks, owner string, recipients []herald.TriggerRecipient) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+l.table+` WHERE `+l.owner+` = ?`, owner); err != nil {
		return err
	}
	var ids []string
	for _, r := range recipients {
		if !slices.Contains(ids, r.ID) {
			ids = append(ids, r.ID)
			if _, err := tx.ExecContext(ctx, `INSERT INTO `+l.table+` (`+l.owner+`, destination_id) VALUES (?, ?)`, owner, r.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// SaveTrigger creates a trigger (t.ID empty) or replaces one, in the
// dataset slug t.DatasetSlug; t must be normalized. A replaced trigger
// keeps its creation time and its evaluation state (triggered). Returns
// ENOTFOUND for an unknown id and EINVALID for an unknown recipient id.
func (s *DB) SaveTrigger(ctx context.Context, t herald.Trigger) (herald.Trigger, error) {
	now := time.Unix(0, s.now()).UTC()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if t.ID == "" {
			t.ID, t.CreatedAt, t.Triggered = herald.NewID("trg_", now), now, false
		} else {
			var created int64
			var triggered bool
			err := tx.QueryRowContext(ctx, `SELECT created_at, triggered FROM triggers WHERE id = ? AND dataset = ?`, t.ID, t.DatasetSlug).Scan(&created, &triggered)
			if errors.Is(err, sql.ErrNoRows) {
				return herald.Errorf(herald.ENOTFOUND, "no trigger %q in dataset %q", t.ID, t.DatasetSlug)
			}
			if err != nil {
				return err
			}
			t.CreatedAt, t.Triggered = time.Unix(0, created).UTC(), triggered
		}
		t.UpdatedAt = now
		if err := s.resolveRecipients(ctx, tx, t.Recipients); err != nil {
			return err
		}
		spec, _ := json.Marshal(t)
		if _, err := tx.ExecContext(ctx, `INSERT INTO triggers (id, dataset, spec, triggered, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at, version = triggers.version + 1`,
			t.ID, t.DatasetSlug, string(spec), t.Triggered, t.CreatedAt.UnixNano(), now.UnixNano()); err != nil {
			return err
		}
		return linkDestinations(ctx, tx, triggerLinks, t.ID, t.Recipients)
	})
	if err != nil {
		if herald.ErrorCode(err) == herald.EINTERNAL {
			return herald.Trigger{}, fmt.Errorf("sqlstore: save trigger: %w", err)
		}
		return herald.Trigger{}, err
	}
	return t, nil
}

// GetTrigger returns the trigger with id in dataset, or ENOTFOUND.
func (s *DB) GetTrigger(ctx context.Context, dataset, id string) (herald.Trigger, error) {
	row := s.QueryRowContext(ctx, `SELECT spec, triggered FROM triggers WHERE id = ? AND dataset = ?`, id, dataset)
	t, err := scanTrigger(row)
	if errors.Is(err, sql.ErrNoRows) {
		return herald.Trigger{}, herald.Errorf(herald.ENOTFOUND, "no trigger %q in dataset %q", id, dataset)
	}
	return t, err
}

// ListTriggers returns the triggers of dataset, oldest first.
func (s *DB) ListTriggers(ctx context.Context, dataset string) ([]herald.Trigger, error) {
	return s.listTriggers(ctx, `SELECT spec, triggered FROM triggers WHERE dataset = ? ORDER BY id`, dataset)
}

// TriggersUsing returns every trigger that notifies destination id.
func (s *DB) TriggersUsing(ctx context.Context, id string) ([]herald.Trigger, error) {
	return s.listTriggers(ctx, `SELECT spec, triggered FROM triggers WHERE id IN
		(SELECT trigger_id FROM trigger_destinations WHERE destination_id = ?) ORDER BY id`, id)
}

func (s *DB) listTriggers(ctx context.Context, query string, args ...any) ([]herald.Trigger, error) {
	rows, err := s.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list triggers: %w", err)
	}
	defer rows.Close()
	out := []herald.Trigger{}
	for rows.Next() {
		t, err := scanTrigger(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func scanTrigger(row scanner) (herald.Trigger, error) {
	var spec string
	var triggered bool
	if err := row.Scan(&spec, &triggered); err != nil {
		return herald.Trigger{}, err
	}
	var t herald.Trigger
	if err := json.Unmarshal([]byte(spec), &t); err != nil {
		return t, fmt.Errorf("sqlstore: trigger: %w", err)
	}
	t.Triggered = triggered
	return t, nil
}

// DeleteTrigger deletes the trigger with id in dataset, or returns
// ENOTFOUND.
func (s *DB) DeleteTrigger(ctx context.Context, dataset, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM trigger_destinations WHERE trigger_id = ?`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM triggers WHERE id = ? AND dataset = ?`, id, dataset)
		if err != nil {
			return fmt.Errorf("sqlstore: delete trigger: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return herald.Errorf(herald.ENOTFOUND, "no trigger %q in dataset %q", id, dataset)
		}
		return nil
	})
}
