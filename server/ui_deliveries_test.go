package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/clock"
	"herald/notify"
	"herald/provider/sendgrid"
	"herald/server"
	"herald/sqlstore"
)

type deliveriesBundle struct {
	url string
	key string
	db  *sqlstore.DB
	clk *clock.Fake
}

// setupDeliveries starts herald's API and UI over a real SQLite file, with
// one email partner that is never called (no delivery is worked on) and
// the clock at t0.
func setupDeliveries(t *testing.T) *deliveriesBundle {
	t.Helper()
	ctx := context.Background()
	clk := clock.NewFake(t0)
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "herald.db"), clk)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	p, err := sendgrid.New(sendgrid.Config{Name: "sendgrid-main", APIKey: "SG.secret-not-shown", From: "a@example.com"})
	require.NoError(t, err)
	svc, err := notify.New(notify.Config{Store: db, Channels: map[string][]herald.Provider{"email": {p}}, Clock: clk,
		Enqueue: func(context.Context, *sql.Tx, []string) error { return nil }})
	require.NoError(t, err)
	_, key, err := db.CreateAPIKey(ctx, herald.KeyConfiguration, "test")
	require.NoError(t, err)
	h := server.NewServer(server.Deps{Logger: slog.New(slog.DiscardHandler), Keys: db, Notifier: svc, Reader: db,
		Sessions: db, UIStore: db, Clock: clk, Metrics: http.NotFoundHandler(),
		Breakers: func() map[string]notify.BreakerState {
			return map[string]notify.BreakerState{"sendgrid-main": "closed"}
		}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &deliveriesBundle{url: srv.URL, key: key, db: db, clk: clk}
}

// browse returns a browser signed in with the bundle's key.
func (b *deliveriesBundle) browse(t *testing.T) *browser {
	t.Helper()
	br := newBrowser(t, b.url)
	_, page := br.get("/ui/signin")
	resp, _ := br.post("/ui/signin", url.Values{"key": {b.key}, "token": {field(t, page, "token")}, "next": {"/ui/deliveries"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	return br
}

// notify stores a notification created at, to recipients, about trigger
// (none when ""), and returns its deliveries' ids.
func (b *deliveriesBundle) notify(t *testing.T, id string, at time.Time, trigger string, recipients ...string) []string {
	t.Helper()
	n := &herald.Notification{ID: id, Subject: "subject of " + id, Text: "t", CreatedAt: at}
	if trigger != "" {
		n.Metadata = map[string]string{herald.MetaTriggerID: trigger}
		n.Alert = &herald.Alert{Dataset: "web", Summary: "latency"}
	}
	var ids []string
	for i, r := range recipients {
		rc := herald.Recipient{Type: "email", Target: r}
		n.Recipients = append(n.Recipients, rc)
		ids = append(ids, fmt.Sprintf("dlv_%s_%d", strings.TrimPrefix(id, "ntf_"), i))
		n.Deliveries = append(n.Deliveries, herald.Delivery{ID: ids[i], Channel: "email", Recipient: rc})
	}
	_, _, err := b.db.CreateNotification(context.Background(), n, "h", func(context.Context, *sql.Tx, []string) error { return nil })
	require.NoError(t, err)
	return ids
}

// move changes a delivery as decide says.
func (b *deliveriesBundle) move(t *testing.T, id string, decide func(d *herald.Delivery) sqlstore.Change) {
	t.Helper()
	_, err := b.db.Update(context.Background(), id, func(d *herald.Delivery) (sqlstore.Change, error) { return decide(d), nil })
	require.NoError(t, err)
}

var (
	rowLink   = regexp.MustCompile(`<th scope="row"><a href="/ui/deliveries/([^"]+)">`)
	olderLink = regexp.MustCompile(`<a href="([^"]+)" rel="next">Older`)
)

// list follows a listing's "Older" links from path and returns the
// deliveries' ids in order and how many pages it read.
func list(t *testing.T, br *browser, path string) ([]string, int) {
	t.Helper()
	var ids []string
	for pages := 1; pages < 100; pages++ {
		resp, page := br.get(path)
		require.Equal(t, http.StatusOK, resp.StatusCode, page)
		for _, m := range rowLink.FindAllStringSubmatch(page, -1) {
			ids = append(ids, m[1])
		}
		m := olderLink.FindStringSubmatch(page)
		if m == nil {
			require.Contains(t, page, "End of the list.")
			return ids, pages
		}
		path = html.UnescapeString(m[1])
		require.Contains(t, path, "before=")
	}
	t.Fatal("the list never ended")
	return nil, 0
}

func TestUIDeliveriesListFiltersAndPages(t *testing.T) {
	t.Parallel()
	b := setupDeliveries(t)
	// 70 notifications a minute apart, every fifth to two people at one
	// instant; every third about a trigger; every fourth delivery failed.
	var all, failed, ops, trigger []string
	for i := range 70 {
		at := t0.Add(-time.Duration(i) * time.Minute)
		to := []string{fmt.Sprintf("user%d@example.com", i%6)}
		if i%5 == 0 {
			to = append(to, "Ops@Example.com")
		}
		trg := ""
		if i%3 == 0 {
			trg = "trg_a"
		}
		ids := b.notify(t, fmt.Sprintf("ntf_%02d", i), at, trg, to...)
		// Newest first; at one instant by id, descending.
		slices.Reverse(ids)
		for _, id := range ids {
			all = append(all, id)
			if len(all)%4 == 0 {
				b.move(t, id, func(d *herald.Delivery) sqlstore.Change {
					d.Reason = "rejected by every partner"
					return sqlstore.Change{To: herald.StateFailed, Cause: "no partner accepted it"}
				})
				failed = append(failed, id)
			}
			if strings.HasSuffix(id, "_1") {
				ops = append(ops, id)
			}
			if trg != "" {
				trigger = append(trigger, id)
			}
		}
	}
	br := b.browse(t)

	resp, page := br.get("/ui/deliveries")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, page, "<h1>Deliveries</h1>")
	require.Contains(t, page, `aria-current="page">Deliveries`)
	require.Contains(t, page, `<option value="sendgrid-main">`, "the configured partners are offered")
	require.Len(t, rowLink.FindAllString(page, -1), 50, "50 a page")

	got, pages := list(t, br, "/ui/deliveries")
	require.Equal(t, all, got, "every delivery once, newest first")
	require.Equal(t, 2, pages)

	got, pages = list(t, br, "/ui/deliveries?limit=7")
	require.Equal(t, all, got, "no gap or duplicate at page edges, even between deliveries of one instant")
	require.Equal(t, 12, pages, "84 deliveries, 7 a page")

	got, _ = list(t, br, "/ui/deliveries?state=failed&limit=5")
	require.Equal(t, failed, got)
	_, page = br.get("/ui/deliveries?state=failed&limit=5")
	require.Contains(t, page, `<span class="state state-failed">failed</span>`)
	require.NotContains(t, page, "state-queued", "only failed deliveries")
	require.Contains(t, page, `<option selected>failed</option>`, "the form shows the filter")
	require.Contains(t, page, `<title>Deliveries (filtered) · herald</title>`)

	got, _ = list(t, br, "/ui/deliveries?recipient=ops%40EXAMPLE.com&limit=4")
	require.Equal(t, ops, got, "recipients match ignoring case")

	got, _ = list(t, br, "/ui/deliveries?trigger=trg_a&limit=9")
	require.Equal(t, trigger, got)
	_, page = br.get("/ui/deliveries?trigger=trg_a")
	require.Contains(t, page, `<a href="/ui/triggers/web/trg_a"><code>trg_a</code></a>`)
	require.Contains(t, page, "subject of ntf_00")

	got, _ = list(t, br, "/ui/deliveries?trigger=trg_a&state=failed&channel=email&partner=&limit=2")
	require.Equal(t, intersect(trigger, failed), got)

	// Since is inclusive, until exclusive; datetime-local values are UTC.
	since, until := t0.Add(-20*time.Minute), t0.Add(-10*time.Minute)
	got, _ = list(t, br, "/ui/deliveries?since="+since.Format("2006-01-02T15:04")+"&until="+url.QueryEscape(until.Format(time.RFC3339)))
	var window []string
	for i := 11; i <= 20; i++ {
		for _, id := range all {
			if strings.HasPrefix(id, fmt.Sprintf("dlv_%02d_", i)) {
				window = append(window, id)
			}
		}
	}
	require.Equal(t, window, got)
	_, page = br.get("/ui/deliveries?since=" + since.Format("2006-01-02T15:04"))
	require.Contains(t, page, `value="`+since.Format("2006-01-02T15:04:05")+`"`, "the form shows the time back")

	_, page = br.get("/ui/deliveries?partner=nobody")
	require.Contains(t, page, "No delivery matches these filters.")
	require.Contains(t, page, `<a href="/ui/deliveries">Clear filters</a>`)
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func TestUIDeliveriesRefusesBadFiltersClearly(t *testing.T) {
	t.Parallel()
	b := setupDeliveries(t)
	b.notify(t, "ntf_01", t0, "", "a@example.com")
	br := b.browse(t)
	for query, want := range map[string]string{
		"state=lost":                        `State: unknown delivery state &#34;lost&#34;`,
		"channel=fax":                       `Channel: unknown channel &#34;fax&#34;`,
		"since=yesterday":                   `Since: &#34;yesterday&#34; is not a time`,
		"since=2026-11-24&until=2026-11-23": `Until: must be after since`,
		"before=not-a-cursor":               `Page: not a cursor from a page of this list`,
		"limit=0":                           `Page size: &#34;0&#34; is not a number from 1 to 200`,
	} {
		resp, page := br.get("/ui/deliveries?" + query)
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, query)
		require.Contains(t, page, "These filters cannot be applied", query)
		require.Contains(t, page, want, query)
		require.Contains(t, page, `role="search"`, "the form stays, to fix the filter")
		require.NotContains(t, page, "dlv_01_0", "no list under a refused filter")
	}
}

func TestUIDeliveryPageShowsItsTimeline(t *testing.T) {
	t.Parallel()
	b := setupDeliveries(t)
	ids := b.notify(t, "ntf_01", t0, "trg_a", "a@example.com", "b@example.com")
	failed, accepted := ids[0], ids[1]
	br := b.browse(t)

	// Still queued: the page watches it.
	resp, page := br.get("/ui/deliveries/" + failed)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, page, `data-refresh="2"`)
	require.Contains(t, page, `<span class="state state-queued">queued</span>`)
	require.NotContains(t, page, "/retry", "only a failed delivery can be retried")
	require.Contains(t, page, "subject of ntf_01")
	require.Contains(t, page, `<a href="/1/notifications/ntf_01">JSON</a>`)
	require.Contains(t, page, `<a href="/ui/triggers/web/trg_a"><code>trg_a</code></a>`)
	require.Contains(t, page, `<a href="/ui/deliveries/`+accepted+`">`, "the notification's other delivery")

	// One attempt, rejected: the delivery fails.
	b.clk.Advance(time.Second)
	b.move(t, failed, func(d *herald.Delivery) sqlstore.Change {
		return sqlstore.Change{To: herald.StateSending, Cause: "attempt 1"}
	})
	started := b.clk.Now()
	b.clk.Advance(182 * time.Millisecond)
	b.move(t, failed, func(d *herald.Delivery) sqlstore.Change {
		d.Attempts, d.Partner, d.LastOutcome, d.Reason = 1, "sendgrid-main", herald.OutcomeRejected, "rejected: the sender is not verified"
		return sqlstore.Change{To: herald.StateFailed, Cause: "rejected by sendgrid-main", Attempt: &herald.Attempt{
			ID: "att_1", Number: 1, Partner: "sendgrid-main", StartedAt: started, Duration: 182 * time.Millisecond,
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
			Result: herald.Result{Outcome: herald.OutcomeRejected, Reason: "unverified_sender", Status: 403, PartnerSide: true,
				RateLimit: map[string]string{"X-RateLimit-Remaining": "599"},
				Request:   "POST https://api.sendgrid.com/v3/mail/send (412 bytes; metadata keys: herald_delivery_id)",
				Response:  `{"errors":[{"message":"<script>alert(1)</script> sender not verified"}]}`}}}
	})
	resp, page = br.get("/ui/deliveries/" + failed)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotContains(t, page, `data-refresh`, "a final state: nothing to watch")
	for _, want := range []string{
		`<span class="state state-failed">failed</span> — rejected: the sender is not verified`,
		`<strong>Attempt 1</strong> through sendgrid-main: <span class="state state-rejected">rejected</span> (unverified_sender), the partner's side`,
		`<dt>HTTP status</dt><dd>403</dd>`,
		`<dt>Latency</dt><dd>182 ms</dd>`,
		`<dt>X-RateLimit-Remaining</dt><dd><code>599</code></dd>`,
		`<dt>Trace id</dt><dd><code>4bf92f3577b34da6a3ce929d0e0e4736</code></dd>`,
		`POST https://api.sendgrid.com/v3/mail/send (412 bytes; metadata keys: herald_delivery_id)`,
		`&lt;script&gt;alert(1)&lt;/script&gt; sender not verified`,
		`state <strong>sending</strong> → <span class="state state-failed">failed</span>:`,
		`<form method="post" action="/ui/deliveries/` + failed + `/retry" data-confirm=`,
		`<dt>Judgement</dt><dd><span class="state state-bad">bad</span>, judged`,
	} {
		require.Contains(t, page, want)
	}
	require.NotContains(t, page, "<script>alert", "partner text is escaped")
	require.NotContains(t, page, "SG.secret-not-shown")
	// In time order: sending, the attempt, failed.
	require.Less(t, strings.Index(page, "attempt 1"), strings.Index(page, "<strong>Attempt 1</strong>"))
	require.Less(t, strings.Index(page, "<strong>Attempt 1</strong>"), strings.Index(page, "rejected by sendgrid-main"))

	// Accepted, then a partner's events: deferred, then delivered.
	b.move(t, accepted, func(d *herald.Delivery) sqlstore.Change {
		return sqlstore.Change{To: herald.StateSending, Cause: "attempt 1"}
	})
	b.move(t, accepted, func(d *herald.Delivery) sqlstore.Change {
		d.Attempts, d.Partner, d.PartnerMessageID = 1, "sendgrid-main", "msg-77"
		return sqlstore.Change{To: herald.StateAccepted, Cause: "accepted by sendgrid-main", Attempt: &herald.Attempt{
			ID: "att_2", Number: 1, Partner: "sendgrid-main", StartedAt: b.clk.Now(), Duration: 90 * time.Millisecond,
			Result: herald.Result{Outcome: herald.OutcomeAccepted, Reason: "ok", Status: 202, MessageID: "msg-77"}}}
	})
	_, page = br.get("/ui/deliveries/" + accepted)
	require.Contains(t, page, `data-refresh="2"`, "accepted is not delivered: keep watching")
	b.clk.Advance(time.Minute)
	_, err := b.db.ApplyPartnerEvent(context.Background(), "sendgrid-main", herald.PartnerEvent{EventID: "ev-1", Type: herald.PartnerDeferred,
		PartnerType: "deferred", MessageID: "msg-77", At: b.clk.Now(), Reason: "mailbox busy"})
	require.NoError(t, err)
	b.clk.Advance(time.Minute)
	_, err = b.db.ApplyPartnerEvent(context.Background(), "sendgrid-main", herald.PartnerEvent{EventID: "ev-2", Type: herald.PartnerDelivered,
		PartnerType: "delivered", MessageID: "msg-77", At: b.clk.Now()})
	require.NoError(t, err)
	_, page = br.get("/ui/deliveries/" + accepted)
	require.NotContains(t, page, `data-refresh`)
	require.Contains(t, page, `<dt>Partner message id</dt><dd><code>msg-77</code></dd>`)
	require.Contains(t, page, `<strong>Partner event</strong> “deferred” (deferred): mailbox busy`)
	require.Contains(t, page, `<strong>Partner event</strong> “delivered” (delivered)`)
	require.Less(t, strings.Index(page, "“deferred”"), strings.Index(page, "“delivered”"))
	require.NotContains(t, page, "/retry")

	resp, page = br.get("/ui/deliveries/dlv_nope")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Contains(t, page, `no delivery &#34;dlv_nope&#34;`)
}

func TestUIRetryAFailedDelivery(t *testing.T) {
	t.Parallel()
	b := setupDeliveries(t)
	ids := b.notify(t, "ntf_01", t0, "", "a@example.com", "b@example.com")
	b.move(t, ids[0], func(d *herald.Delivery) sqlstore.Change {
		return sqlstore.Change{To: herald.StateFailed, Cause: "no partner accepted it"}
	})
	br := b.browse(t)
	_, page := br.get("/ui/deliveries/" + ids[0])
	csrf := field(t, page, "csrf")

	resp, _ := br.post("/ui/deliveries/"+ids[0]+"/retry", url.Values{})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "no CSRF token, no retry")
	d, err := b.db.GetDelivery(context.Background(), ids[0])
	require.NoError(t, err)
	require.Equal(t, herald.StateFailed, d.State)

	resp, _ = br.post("/ui/deliveries/"+ids[0]+"/retry", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	loc := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(loc, "/ui/deliveries/"+ids[0]+"?flash="), loc)
	resp, page = br.get(loc)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, page, `<p class="flash" role="status">Retry requested: the delivery is queued again.</p>`)
	require.Contains(t, page, `<span class="state state-queued">queued</span>`)
	require.Contains(t, page, `data-refresh="2"`)
	require.Contains(t, page, "retry requested", "the transition is in the timeline")

	// Not failed: refused, said so on its page.
	resp, _ = br.post("/ui/deliveries/"+ids[1]+"/retry", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, page = br.get(resp.Header.Get("Location"))
	require.Contains(t, page, "Not retried: delivery "+ids[1]+" is queued; only a failed delivery can be retried.")

	resp, _ = br.post("/ui/deliveries/dlv_nope/retry", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestUISendANotification(t *testing.T) {
	t.Parallel()
	b := setupDeliveries(t)
	br := b.browse(t)
	_, page := br.get("/ui/deliveries")
	require.Contains(t, page, "No delivery yet.")
	require.Contains(t, page, `<form method="post" action="/ui/notifications"`)
	form := url.Values{"recipient": {"jo@example.com"}, "subject": {"Hello from the UI"}, "text": {"It works."}}

	resp, _ := br.post("/ui/notifications", form)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "no CSRF token, no notification")

	form.Set("csrf", field(t, page, "csrf"))
	resp, _ = br.post("/ui/notifications", form)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	loc := resp.Header.Get("Location")
	require.Regexp(t, `^/ui/deliveries/dlv_[0-9a-z]{26}\?flash=Notification\+ntf_`, loc)
	resp, page = br.get(loc)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, page, "created: its delivery to jo@example.com is queued.")
	require.Contains(t, page, "<dt>Recipient</dt><dd>jo@example.com</dd>")
	require.Contains(t, page, "Hello from the UI")
	require.Contains(t, page, `data-refresh="2"`)

	_, page = br.get("/ui/deliveries")
	require.Contains(t, page, "Hello from the UI")

	form.Set("recipient", "Jo <jo@example.com>")
	resp, page = br.post("/ui/notifications", form)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, page, `Not sent. Recipient: &#34;Jo &lt;jo@example.com&gt;&#34; is not a bare email address`)
	require.Contains(t, page, `value="Jo &lt;jo@example.com&gt;"`, "the form keeps what was typed")
	require.Contains(t, page, `<textarea name="text" rows="3" cols="40" required>It works.</textarea>`)
	require.Contains(t, page, "Hello from the UI", "the list is still shown")
}
