package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/clock"
)

var activityT0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// activityFixture is what setupActivity stored, as the list should show it.
type activityFixture struct {
	id, recipient, partner, trigger string
	channel                         string
	state                           herald.DeliveryState
	created                         time.Time
}

// setupActivity stores 60 notifications of one to three deliveries a
// minute apart (some at the same instant), a quarter of them about one of
// two triggers, and moves the deliveries to a mix of states and partners.
func setupActivity(t *testing.T) (*DB, []activityFixture) {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "herald.db"), clock.NewFake(activityT0))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	noEnqueue := func(context.Context, *sql.Tx, []string) error { return nil }
	pool := []string{"Ops@Example.com", "a@example.com", "b@example.com", "c@example.com"}
	var all []activityFixture
	k := 0
	created := activityT0
	for i := range 60 {
		if i%10 != 3 { // every tenth shares its instant with the one before
			created = created.Add(-time.Minute)
		}
		n := &herald.Notification{ID: fmt.Sprintf("ntf_%02d", i), Subject: fmt.Sprintf("subject %d", i), Text: "t", CreatedAt: created}
		trigger := ""
		if i%4 == 0 {
			trigger = map[bool]string{true: "trg_a", false: "trg_b"}[i%8 == 0]
			n.Metadata = map[string]string{herald.MetaTriggerID: trigger}
			n.Alert = &herald.Alert{Dataset: "web", Summary: "s"}
		}
		for j := range i%3 + 1 {
			rc := herald.Recipient{Type: "email", Target: pool[(i+j)%len(pool)]}
			if i%7 == 0 {
				rc = herald.Recipient{Type: "webhook", Target: "dst_hook"}
			}
			n.Recipients = append(n.Recipients, rc)
			// Ids out of creation order, so ties are broken by id alone.
			n.Deliveries = append(n.Deliveries, herald.Delivery{ID: fmt.Sprintf("dlv_%d_%02d", j, i), Channel: rc.Type, Recipient: rc})
			all = append(all, activityFixture{id: n.Deliveries[j].ID, recipient: rc.Target, trigger: trigger, channel: rc.Type,
				state: herald.StateQueued, created: created})
		}
		_, _, err := db.CreateNotification(ctx, n, "h", noEnqueue)
		require.NoError(t, err)
	}
	for i := range all {
		a := &all[i]
		switch k++; k % 5 {
		case 0:
			a.state = herald.StateFailed
		case 1, 2:
			a.state, a.partner = herald.StateAccepted, map[int]string{1: "p1", 2: "p2"}[k%5]
		default:
			continue
		}
		if a.state == herald.StateAccepted {
			_, err := db.Update(ctx, a.id, func(d *herald.Delivery) (Change, error) {
				return Change{To: herald.StateSending, Cause: "attempt"}, nil
			})
			require.NoError(t, err)
		}
		_, err := db.Update(ctx, a.id, func(d *herald.Delivery) (Change, error) {
			d.Partner = a.partner
			return Change{To: a.state, Cause: "test"}, nil
		})
		require.NoError(t, err)
	}
	return db, all
}

// expect is the list f should give, computed the slow way.
func expect(all []activityFixture, f ActivityFilter) []string {
	var out []activityFixture
	for _, a := range all {
		if (f.State == "" || a.state == f.State) && (f.Channel == "" || a.channel == f.Channel) &&
			(f.Partner == "" || a.partner == f.Partner) && (f.Recipient == "" || strings.EqualFold(a.recipient, strings.TrimSpace(f.Recipient))) &&
			(f.TriggerID == "" || a.trigger == f.TriggerID) &&
			(f.Since.IsZero() || !a.created.Before(f.Since)) && (f.Until.IsZero() || a.created.Before(f.Until)) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b activityFixture) int {
		return cmp.Or(b.created.Compare(a.created), cmp.Compare(b.id, a.id))
	})
	ids := []string{}
	for _, a := range out {
		ids = append(ids, a.id)
	}
	return ids
}

// walk reads every page of f, limit at a time, with a window of window
// rows, and returns the ids in order and how many pages were partial.
func walk(t *testing.T, db *DB, f ActivityFilter, window int) (ids []string, partial int) {
	t.Helper()
	ids = []string{}
	for range 1000 {
		page, err := db.activity(context.Background(), f, window)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Deliveries), f.Limit)
		for _, r := range page.Deliveries {
			require.NotEmpty(t, r.NotificationID, "the delivery is read whole")
			require.True(t, strings.HasPrefix(r.Subject, "subject "))
			ids = append(ids, r.ID)
		}
		if page.Partial {
			partial++
		}
		if page.Next == nil {
			return ids, partial
		}
		// Through the URL form, as the UI carries it.
		f.Before, err = DecodeActivityCursor(page.Next.String())
		require.NoError(t, err)
	}
	t.Fatal("the list never ended")
	return nil, 0
}

func TestActivityPagesEveryFilterWithoutGapsOrDuplicates(t *testing.T) {
	t.Parallel()
	db, all := setupActivity(t)
	since, until := activityT0.Add(-50*time.Minute), activityT0.Add(-12*time.Minute)
	for _, f := range []ActivityFilter{
		{},
		{State: herald.StateFailed},
		{State: herald.StateQueued},
		{Partner: "p1"},
		{Channel: "webhook"},
		{Recipient: " ops@EXAMPLE.com "},
		{TriggerID: "trg_a"},
		{TriggerID: "trg_b", State: herald.StateAccepted},
		{TriggerID: "trg_a", Recipient: "a@example.com", Since: since},
		{Recipient: "b@example.com", State: herald.StateFailed},
		{State: herald.StateAccepted, Channel: "email", Partner: "p2"},
		{Partner: "p1", Since: since, Until: until},
		{Since: since},
		{Until: until},
		{TriggerID: "trg_b", Until: until},
		{TriggerID: "trg_none"},
		{Partner: "nobody", State: herald.StateFailed},
	} {
		name := fmt.Sprintf("%+v", f)
		want := expect(all, f)
		for _, limit := range []int{1, 4, 200} {
			f.Limit = limit
			got, partial := walk(t, db, f, ActivityWindow)
			require.Equal(t, want, got, "%s, %d a page", name, limit)
			require.Zero(t, partial, name)
			// A window smaller than the list still gives every delivery once.
			got, _ = walk(t, db, f, 3)
			require.Equal(t, want, got, "%s, %d a page, window 3", name, limit)
		}
	}

	page, err := db.Activity(context.Background(), ActivityFilter{Limit: 200})
	require.NoError(t, err)
	require.Len(t, page.Deliveries, len(all))
	trigger := map[string]string{}
	for _, a := range all {
		trigger[a.id] = a.trigger
	}
	for _, r := range page.Deliveries {
		require.Equal(t, trigger[r.ID], r.TriggerID, r.ID)
		require.Equal(t, map[bool]string{true: "web", false: ""}[r.TriggerID != ""], r.TriggerDataset, r.ID)
	}
}

func TestActivityCombinedSearchStopsAtItsWindow(t *testing.T) {
	t.Parallel()
	db, all := setupActivity(t)
	// Few failed deliveries are webhooks: windows of 3 fill no page, and
	// their pages, partial, still add up to the whole list.
	f := ActivityFilter{State: herald.StateFailed, Channel: "webhook"}
	want := expect(all, f)
	f.Limit = 50
	got, partial := walk(t, db, f, 3)
	require.Equal(t, want, got)
	require.Positive(t, partial)

	page, err := db.activity(context.Background(), ActivityFilter{TriggerID: "trg_a", Partner: "nobody"}, 2)
	require.NoError(t, err)
	require.Empty(t, page.Deliveries)
	require.True(t, page.Partial)
	require.NotNil(t, page.Next)

	// Alone, a filter reads its own index: never partial.
	page, err = db.activity(context.Background(), ActivityFilter{State: herald.StateFailed, Limit: 2}, 1)
	require.NoError(t, err)
	require.Len(t, page.Deliveries, 2)
	require.False(t, page.Partial)
}

func TestActivityRefusesBadFilters(t *testing.T) {
	t.Parallel()
	db, _ := setupActivity(t)
	ctx := context.Background()
	for _, f := range []ActivityFilter{
		{State: "lost"},
		{Channel: "fax"},
		{Since: activityT0, Until: activityT0},
	} {
		_, err := db.Activity(ctx, f)
		require.Equal(t, herald.EINVALID, herald.ErrorCode(err), "%+v", f)
	}
	for _, token := range []string{"", "%%%", "bm90IGEgY3Vyc29y", "P19fLng"} {
		_, err := DecodeActivityCursor(token)
		require.Equal(t, herald.EINVALID, herald.ErrorCode(err), token)
	}
	c := ActivityCursor{CreatedAt: activityT0.Add(123), ID: "dlv_x"}
	got, err := DecodeActivityCursor(c.String())
	require.NoError(t, err)
	require.Equal(t, c, *got)
	require.Regexp(t, `^[A-Za-z0-9_-]+$`, c.String())

	q, err := newActivityQuery(ActivityFilter{Limit: 1000})
	require.NoError(t, err)
	require.Equal(t, 200, q.limit, "at most 200 a page")
	page, err := db.Activity(ctx, ActivityFilter{})
	require.NoError(t, err)
	require.Len(t, page.Deliveries, 50, "50 by default")
}

// TestActivityReadsIndexesOnly proves, for every combination of filters,
// that a page is read from its leading index in order — no table scan, no
// sort of the matching rows — so it stays fast however many deliveries
// are stored.
func TestActivityReadsIndexesOnly(t *testing.T) {
	t.Parallel()
	db, _ := setupActivity(t)
	plan := func(query string, args []any) string {
		rows, err := db.Query(`EXPLAIN QUERY PLAN `+query, args...)
		require.NoError(t, err, query)
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
			lines = append(lines, detail)
		}
		require.NoError(t, rows.Err())
		return strings.Join(lines, "\n")
	}
	cursor := &ActivityCursor{CreatedAt: activityT0, ID: "dlv_x"}
	for mask := range 1 << 8 {
		f := ActivityFilter{}
		set := func(bit int) bool { return mask&(1<<bit) != 0 }
		if set(0) {
			f.TriggerID = "trg_a"
		}
		if set(1) {
			f.Recipient = "a@example.com"
		}
		if set(2) {
			f.State = herald.StateFailed
		}
		if set(3) {
			f.Partner = "p1"
		}
		if set(4) {
			f.Channel = "email"
		}
		if set(5) {
			f.Since = activityT0.Add(-time.Hour)
		}
		if set(6) {
			f.Until = activityT0
		}
		if set(7) {
			f.Before = cursor
		}
		q, err := newActivityQuery(f)
		require.NoError(t, err)
		q.window, q.floor = ActivityWindow, &ActivityCursor{CreatedAt: activityT0.Add(-time.Hour), ID: "dlv_y"}
		if !q.combined() {
			q.floor = nil
		}
		got := plan(q.sql())
		name := fmt.Sprintf("%+v:\n%s", f, got)
		require.NotRegexp(t, `(?m)^SCAN \w+$`, got, name)
		if q.lead == idxTrigger {
			require.Regexp(t, `^(SCAN|SEARCH) n USING INDEX notifications_trigger`, got, name)
			require.Contains(t, got, "SEARCH d USING INDEX deliveries_notification (notification_id=?)", name)
			// Only the deliveries of notifications created at one instant
			// are sorted among themselves.
			got = strings.ReplaceAll(got, "USE TEMP B-TREE FOR LAST TERM OF ORDER BY", "")
		} else {
			require.Regexp(t, `^(SCAN|SEARCH) d USING INDEX `+q.lead+`\b`, got, name)
		}
		require.NotContains(t, got, "TEMP B-TREE", name)
		if q.combined() {
			got := plan(q.floorSQL())
			require.Contains(t, got, "USING COVERING INDEX", "%+v: %s", f, got)
			require.NotContains(t, got, "TEMP B-TREE", "%+v: %s", f, got)
		}
	}
}

func TestPartnerEventsOfADelivery(t *testing.T) {
	t.Parallel()
	db, all := setupActivity(t)
	ctx := context.Background()
	var accepted string
	for _, a := range all {
		if a.state == herald.StateAccepted && a.partner == "p1" {
			accepted = a.id
			break
		}
	}
	evs, err := db.PartnerEvents(ctx, accepted)
	require.NoError(t, err)
	require.Empty(t, evs)
	at := activityT0.Add(time.Minute)
	_, err = db.ApplyPartnerEvent(ctx, "p1", herald.PartnerEvent{EventID: "e1", Type: herald.PartnerDeferred, PartnerType: "deferred",
		DeliveryID: accepted, At: at, Reason: "mailbox busy"})
	require.NoError(t, err)
	_, err = db.ApplyPartnerEvent(ctx, "p1", herald.PartnerEvent{EventID: "e2", Type: herald.PartnerDelivered, PartnerType: "delivered",
		DeliveryID: accepted})
	require.NoError(t, err)
	evs, err = db.PartnerEvents(ctx, accepted)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, "mailbox busy", evs[0].Reason)
	require.Equal(t, at, evs[0].At)
	require.Equal(t, herald.PartnerDelivered, evs[1].Type)
	require.Equal(t, activityT0, evs[1].At, "no time of its own: when it was received")
}

// A cursor comes back from the browser: anything may arrive.
func FuzzDecodeActivityCursor(f *testing.F) {
	f.Add(ActivityCursor{CreatedAt: time.Unix(0, 1764500000000000000), ID: "dlv_01"}.String())
	f.Add("")
	f.Add("not-base64!")
	f.Add("LTEuZA")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := DecodeActivityCursor(token)
		if err != nil {
			if herald.ErrorCode(err) != herald.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		again, err := DecodeActivityCursor(c.String())
		if err != nil || !again.CreatedAt.Equal(c.CreatedAt) || again.ID != c.ID {
			t.Fatalf("%+v does not round-trip: %+v, %v", c, again, err)
		}
	})
}
