package sqlstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"herald"
)

// ActivityFilter selects the deliveries of the activity list. Empty
// fields match all.
type ActivityFilter struct {
	State   herald.DeliveryState
	Channel string
	// Partner is the partner of the latest attempt.
	Partner string
	// Recipient matches the recipient's target exactly, ignoring ASCII case.
	Recipient string
	// TriggerID keeps the deliveries of notifications about this trigger.
	TriggerID string
	// Since and Until bound the creation time: Since ≤ created < Until.
	Since, Until time.Time
	// Before, when set, continues a listing: only deliveries older than
	// this cursor (a page's Next).
	Before *ActivityCursor
	// Limit caps the page; 0 means 50. At most 200.
	Limit int
}

// ActivityCursor is a position in the activity list: the deliveries
// after it are those strictly older by (CreatedAt, ID).
type ActivityCursor struct {
	CreatedAt time.Time
	ID        string
}

// String encodes c as an opaque, URL-safe token; DecodeActivityCursor
// reads it back.
func (c ActivityCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixNano(), 36) + "." + c.ID))
}

// DecodeActivityCursor reads a token made by ActivityCursor.String.
// Returns EINVALID for anything else.
func DecodeActivityCursor(token string) (*ActivityCursor, error) {
	bad := herald.Invalid("before", "invalid", "not a cursor from a page of this list")
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, bad
	}
	ts, id, ok := strings.Cut(string(raw), ".")
	if !ok {
		return nil, bad
	}
	ns, err := strconv.ParseInt(ts, 36, 64)
	if err != nil {
		return nil, bad
	}
	return &ActivityCursor{CreatedAt: time.Unix(0, ns).UTC(), ID: id}, nil
}

// ActivityRow is one delivery of the activity list, with what the list
// shows of its notification.
type ActivityRow struct {
	herald.Delivery
	// Subject is the notification's subject.
	Subject string
	// TriggerID is the trigger the notification is about, "" for none;
	// TriggerDataset that trigger's dataset, as its alert recorded it ("" if
	// unknown).
	TriggerID      string
	TriggerDataset string
}

// ActivityPage is one page of the activity list.
type ActivityPage struct {
	// Deliveries are newest first, by (created_at, id).
	Deliveries []ActivityRow
	// Next continues the list with older deliveries; nil at its end.
	Next *ActivityCursor
	// Partial reports that the search stopped before filling the page: it
	// read ActivityWindow deliveries matching the filter it leads with
	// (see Activity) without finding Limit that match the others. Next
	// continues the search further back.
	Partial bool
}

// ActivityWindow is how many deliveries (or, led by a trigger, its
// notifications) one page of a search that combines filters reads at most.
const ActivityWindow = 10_000

// The activity list's leading indexes, each ordered by (created_at, id)
// after its equality column (migration 0012).
const (
	idxCreated   = "deliveries_created_id"
	idxState     = "deliveries_state_created_id"
	idxPartner   = "deliveries_partner_created"
	idxChannel   = "deliveries_channel_created"
	idxRecipient = "deliveries_recipient_created"
	idxTrigger   = "notifications_trigger"
)

// triggerExpr is the expression notifications_trigger indexes.
const triggerExpr = `json_extract(n.metadata, '$.` + herald.MetaTriggerID + `')`

// Activity returns a page of the deliveries matching f, newest first.
//
// Every page is read from an index: one filter leads — the first set of
// trigger, recipient, state, partner and channel — and its index gives
// the matching deliveries already in order from the cursor on; the others
// are checked on the rows it yields. So that a combination matching few of
// the leading filter's rows stays fast, such a page reads at most
// ActivityWindow rows of the leading index and may come back Partial.
// Returns EINVALID for an unknown state or channel or an empty time range.
func (s *DB) Activity(ctx context.Context, f ActivityFilter) (ActivityPage, error) {
	return s.activity(ctx, f, ActivityWindow)
}

// activity is Activity with a window of window rows.
func (s *DB) activity(ctx context.Context, f ActivityFilter, window int) (ActivityPage, error) {
	q, err := newActivityQuery(f)
	if err != nil {
		return ActivityPage{}, err
	}
	q.window = window
	if q.combined() {
		if q.floor, err = s.activityFloor(ctx, q); err != nil {
			return ActivityPage{}, err
		}
	}
	query, args := q.sql()
	rows, err := s.QueryContext(ctx, query, args...)
	if err != nil {
		return ActivityPage{}, fmt.Errorf("sqlstore: activity: %w", err)
	}
	var page ActivityPage
	var keys []ActivityCursor
	for rows.Next() {
		var r ActivityRow
		var created int64
		if err := rows.Scan(&r.ID, &created, &r.Subject, &r.TriggerID, &r.TriggerDataset); err != nil {
			rows.Close()
			return ActivityPage{}, fmt.Errorf("sqlstore: activity: %w", err)
		}
		page.Deliveries = append(page.Deliveries, r)
		keys = append(keys, ActivityCursor{CreatedAt: time.Unix(0, created).UTC(), ID: r.ID})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return ActivityPage{}, fmt.Errorf("sqlstore: activity: %w", err)
	}
	switch {
	case len(keys) > q.limit:
		page.Deliveries, page.Next = page.Deliveries[:q.limit], &keys[q.limit-1]
	case q.floor != nil:
		page.Next, page.Partial = q.floor, true
	}
	if err := s.fillActivity(ctx, &page); err != nil {
		return ActivityPage{}, err
	}
	return page, nil
}

// fillActivity reads the deliveries of page's rows, through the one
// reader of their rows.
func (s *DB) fillActivity(ctx context.Context, page *ActivityPage) error {
	if len(page.Deliveries) == 0 {
		page.Deliveries = []ActivityRow{}
		return nil
	}
	ids := make([]string, len(page.Deliveries))
	for i, r := range page.Deliveries {
		ids[i] = r.ID
	}
	list, _ := json.Marshal(ids)
	ds, err := s.queryDeliveries(ctx, `WHERE id IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return err
	}
	byID := make(map[string]herald.Delivery, len(ds))
	for _, d := range ds {
		byID[d.ID] = d
	}
	for i := range page.Deliveries {
		page.Deliveries[i].Delivery = byID[ids[i]]
	}
	return nil
}

// activityQuery is an ActivityFilter made into SQL.
type activityQuery struct {
	f     ActivityFilter
	limit int
	// lead is the index the page is read from.
	lead string
	// window is how many rows of the leading index a combined search
	// reads; floor is then the oldest position of that window, nil when
	// it reaches the end of the list.
	window int
	floor  *ActivityCursor
}

func newActivityQuery(f ActivityFilter) (*activityQuery, error) {
	f.Recipient = strings.TrimSpace(f.Recipient)
	switch {
	case f.State != "" && !f.State.Valid():
		return nil, herald.Invalid("state", "invalid", "unknown delivery state %q", f.State)
	case f.Channel != "" && !slices.Contains(herald.RecipientTypes, f.Channel):
		return nil, herald.Invalid("channel", "invalid", "unknown channel %q (want one of %s)", f.Channel, strings.Join(herald.RecipientTypes, ", "))
	case !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until):
		return nil, herald.Invalid("until", "invalid", "must be after since")
	}
	q := &activityQuery{f: f, limit: f.Limit}
	if q.limit <= 0 {
		q.limit = 50
	}
	q.limit = min(q.limit, 200)
	switch {
	case f.TriggerID != "":
		q.lead = idxTrigger
	case f.Recipient != "":
		q.lead = idxRecipient
	case f.State != "":
		q.lead = idxState
	case f.Partner != "":
		q.lead = idxPartner
	case f.Channel != "":
		q.lead = idxChannel
	default:
		q.lead = idxCreated
	}
	return q, nil
}

// combined reports whether filters other than the leading one remain to
// be checked row by row.
func (q *activityQuery) combined() bool {
	n := 0
	for _, set := range []bool{q.f.TriggerID != "", q.f.Recipient != "", q.f.State != "", q.f.Partner != "", q.f.Channel != ""} {
		if set {
			n++
		}
	}
	return n > 1
}

// leading returns the conditions the leading index answers: its equality
// column, the time range and the cursor. With whole, for a trigger, they
// read its notifications alone: a notification at the cursor's time is
// kept whole.
func (q *activityQuery) leading(whole bool) (where []string, args []any) {
	f := q.f
	created := "d.created_at"
	switch q.lead {
	case idxTrigger:
		// A trigger's deliveries are found through its notifications,
		// which are created with them (same created_at).
		created = "n.created_at"
		where, args = append(where, triggerExpr+" = ?"), append(args, f.TriggerID)
	case idxRecipient:
		where, args = append(where, "d.recipient_target = ? COLLATE NOCASE"), append(args, f.Recipient)
	case idxState:
		where, args = append(where, "d.state = ?"), append(args, f.State)
	case idxPartner:
		where, args = append(where, "d.partner = ?"), append(args, f.Partner)
	case idxChannel:
		where, args = append(where, "d.channel = ?"), append(args, f.Channel)
	}
	if !f.Since.IsZero() {
		where, args = append(where, created+" >= ?"), append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		where, args = append(where, created+" < ?"), append(args, f.Until.UnixNano())
	}
	c := f.Before
	switch {
	case c == nil:
	case q.lead != idxTrigger:
		where, args = append(where, "(d.created_at, d.id) < (?, ?)"), append(args, c.CreatedAt.UnixNano(), c.ID)
	case whole:
		where, args = append(where, "n.created_at <= ?"), append(args, c.CreatedAt.UnixNano())
	default:
		where = append(where, "n.created_at <= ?", "(n.created_at < ? OR d.id < ?)")
		args = append(args, c.CreatedAt.UnixNano(), c.CreatedAt.UnixNano(), c.ID)
	}
	return where, args
}

// activityFloor returns the oldest position of the window a combined
// search reads, or nil when fewer than q.window rows of the leading index
// remain.
func (s *DB) activityFloor(ctx context.Context, q *activityQuery) (*ActivityCursor, error) {
	query, args := q.floorSQL()
	rows, err := s.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: activity: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	var ns int64
	var id string
	if err := rows.Scan(&ns, &id); err != nil {
		return nil, fmt.Errorf("sqlstore: activity: %w", err)
	}
	return &ActivityCursor{CreatedAt: time.Unix(0, ns).UTC(), ID: id}, rows.Err()
}

// floorSQL returns the query for the window's last row, read from the
// leading index alone. It skips to that row: this bounds a search, while
// pages themselves never skip rows.
func (q *activityQuery) floorSQL() (string, []any) {
	where, args := q.leading(true)
	args = append(args, q.window-1)
	if q.lead == idxTrigger {
		// A window of whole notifications: the floor's id "" keeps every
		// delivery of the oldest one in the page.
		return `SELECT n.created_at, '' FROM notifications n INDEXED BY ` + idxTrigger + whereClause(where) +
			` ORDER BY n.created_at DESC LIMIT 1 OFFSET ?`, args
	}
	return `SELECT d.created_at, d.id FROM deliveries d INDEXED BY ` + q.lead + whereClause(where) +
		` ORDER BY d.created_at DESC, d.id DESC LIMIT 1 OFFSET ?`, args
}

// sql returns the page's query: the ids and creation times of at most
// limit+1 deliveries, with their notification's subject, trigger and
// dataset.
func (q *activityQuery) sql() (string, []any) {
	f := q.f
	where, args := q.leading(false)
	if q.lead != idxRecipient && f.Recipient != "" {
		where, args = append(where, "d.recipient_target = ? COLLATE NOCASE"), append(args, f.Recipient)
	}
	if q.lead != idxState && f.State != "" {
		where, args = append(where, "d.state = ?"), append(args, f.State)
	}
	if q.lead != idxPartner && f.Partner != "" {
		where, args = append(where, "d.partner = ?"), append(args, f.Partner)
	}
	if q.lead != idxChannel && f.Channel != "" {
		where, args = append(where, "d.channel = ?"), append(args, f.Channel)
	}
	const cols = `SELECT d.id, d.created_at, n.subject, COALESCE(` + triggerExpr + `, ''),
		CASE WHEN ` + triggerExpr + ` IS NULL THEN '' ELSE COALESCE(json_extract(NULLIF(n.alert, ''), '$.dataset'), '') END`
	if q.lead == idxTrigger {
		if c := q.floor; c != nil {
			where, args = append(where, "n.created_at >= ?"), append(args, c.CreatedAt.UnixNano())
		}
		return cols + ` FROM notifications n INDEXED BY ` + idxTrigger + ` CROSS JOIN deliveries d ON d.notification_id = n.id` +
			whereClause(where) + ` ORDER BY n.created_at DESC, d.id DESC LIMIT ?`, append(args, q.limit+1)
	}
	if c := q.floor; c != nil {
		where, args = append(where, "(d.created_at, d.id) >= (?, ?)"), append(args, c.CreatedAt.UnixNano(), c.ID)
	}
	return cols + ` FROM deliveries d INDEXED BY ` + q.lead + ` CROSS JOIN notifications n ON n.id = d.notification_id` +
		whereClause(where) + ` ORDER BY d.created_at DESC, d.id DESC LIMIT ?`, append(args, q.limit+1)
}

func whereClause(where []string) string {
	if len(where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(where, " AND ")
}

// ReceivedEvent is a partner event with the time herald received it: the
// partner's own time may be coarser (whole seconds) or off.
type ReceivedEvent struct {
	herald.PartnerEvent
	ReceivedAt time.Time
}

// PartnerEvents returns the partner events matched to the delivery with
// id, in the order herald received them. An event that carries no time of
// its own gets the time it was received.
func (s *DB) PartnerEvents(ctx context.Context, deliveryID string) ([]ReceivedEvent, error) {
	rows, err := s.QueryContext(ctx, `SELECT record, received_at FROM partner_events WHERE delivery_id = ? ORDER BY received_at, event_id`, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: partner events: %w", err)
	}
	defer rows.Close()
	out := []ReceivedEvent{}
	for rows.Next() {
		var record string
		var received int64
		if err := rows.Scan(&record, &received); err != nil {
			return nil, fmt.Errorf("sqlstore: partner events: %w", err)
		}
		var ev herald.PartnerEvent
		if err := json.Unmarshal([]byte(record), &ev); err != nil {
			return nil, fmt.Errorf("sqlstore: partner events of %s: %w", deliveryID, err)
		}
		at := time.Unix(0, received).UTC()
		if ev.At.IsZero() {
			ev.At = at
		}
		out = append(out, ReceivedEvent{PartnerEvent: ev, ReceivedAt: at})
	}
	return out, rows.Err()
}
