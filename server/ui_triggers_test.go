package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/clock"
	"herald/eventstore"
	"herald/notify"
	"herald/server"
	"herald/sqlstore"
)

// pagesBundle is herald's API and web UI over real SQLite and DuckDB
// files, with the clock at t0 and a browser signed in; the stores, the
// trigger evaluator and the SLO engine are at hand to make history.
type pagesBundle struct {
	br     *browser
	clock  *clock.Fake
	db     *sqlstore.DB
	events *eventstore.DuckDB
	eval   *notify.Evaluator
	slos   *notify.SLOs
}

func setupPages(t *testing.T) *pagesBundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	b := &pagesBundle{clock: clock.NewFake(t0)}
	var err error
	b.db, err = sqlstore.Open(ctx, filepath.Join(dir, "herald.db"), b.clock)
	require.NoError(t, err)
	t.Cleanup(func() { b.db.Close() })
	b.events, err = eventstore.Open(ctx, eventstore.Config{Path: filepath.Join(dir, "events.duckdb"), Clock: b.clock})
	require.NoError(t, err)
	t.Cleanup(func() { b.events.Close() })
	enqueue := func(context.Context, *sql.Tx, []string) error { return nil }
	svc, err := notify.New(notify.Config{Store: b.db, Channels: map[string][]herald.Provider{}, Enqueue: enqueue, Clock: b.clock})
	require.NoError(t, err)
	b.eval, err = notify.NewEvaluator(notify.EvaluatorConfig{Store: b.db, Events: b.events, Clock: b.clock, Enqueue: enqueue})
	require.NoError(t, err)
	b.slos, err = notify.NewSLOs(notify.SLOsConfig{Store: b.db, Events: b.events, Clock: b.clock, Logger: slog.New(slog.DiscardHandler), Enqueue: enqueue})
	require.NoError(t, err)
	h := server.NewServer(server.Deps{Logger: slog.New(slog.DiscardHandler), Keys: b.db, Notifier: svc, Reader: b.db,
		Events: b.events, Queries: b.db, Triggers: b.db, Evaluations: b.db, Evaluator: b.eval, Markers: b.db, PartnerEvents: b.db,
		SLOs: b.db, SLOEngine: b.slos, Sessions: b.db, UIStore: b.db, Canaries: b.db, Clock: b.clock, Metrics: http.NotFoundHandler()})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	_, key, err := b.db.CreateAPIKey(ctx, herald.KeyConfiguration, "ui")
	require.NoError(t, err)
	b.br = newBrowser(t, srv.URL)
	b.br.signIn(key)
	return b
}

// page GETs path and requires status.
func (b *pagesBundle) page(path string, status int) string {
	b.br.t.Helper()
	resp, body := b.br.get(path)
	require.Equal(b.br.t, status, resp.StatusCode, "%s", body)
	return body
}

// write stores events in dataset, creating it.
func (b *pagesBundle) write(t *testing.T, dataset string, evs ...herald.Event) {
	t.Helper()
	res, err := b.events.Write(context.Background(), dataset, evs, true)
	require.NoError(t, err)
	for _, err := range res.Errors {
		require.NoError(t, err)
	}
}

// trigger normalizes and saves t.
func (b *pagesBundle) trigger(t *testing.T, tr herald.Trigger) herald.Trigger {
	t.Helper()
	tr, err := tr.Normalize()
	require.NoError(t, err)
	tr, err = b.db.SaveTrigger(context.Background(), tr)
	require.NoError(t, err)
	return tr
}

// evaluate runs trigger id's evaluation at each instant, as the scheduler
// would.
func (b *pagesBundle) evaluate(t *testing.T, id string, at ...time.Time) {
	t.Helper()
	ctx := context.Background()
	for _, now := range at {
		sts, err := b.db.ScheduledTriggers(ctx)
		require.NoError(t, err)
		found := false
		for _, st := range sts {
			if st.Trigger.ID == id {
				found = true
				_, err := b.eval.Evaluate(ctx, st, now, 0)
				require.NoError(t, err)
			}
		}
		require.True(t, found, "trigger %s is scheduled", id)
	}
}

var deliveryLink = regexp.MustCompile(`href="/ui/deliveries/(dlv_[^"]+)"`)

func TestUITriggers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupPages(t)
	page := b.page("/ui/triggers", http.StatusOK)
	require.Contains(t, page, "No trigger yet.")
	require.Contains(t, page, `aria-current="page">Triggers`)

	hook, err := b.db.CreateDestination(ctx, herald.Destination{Type: "webhook", Details: herald.DestinationDetails{
		WebhookName: "ops-bridge", WebhookURL: "https://hooks.example.com/secret-path?tok=abc123", WebhookSecret: "s3cr3t-webhook",
		WebhookHeaders: []herald.WebhookHeader{{Header: "Authorization", Value: "Bearer xyz789"}}}})
	require.NoError(t, err)
	pd, err := b.db.CreateDestination(ctx, herald.Destination{Type: "pagerduty", Details: herald.DestinationDetails{
		PagerDutyIntegrationName: "on-call", PagerDutyIntegrationKey: "R0UT1NGK3Y0123456789abcdefABCDEF"}})
	require.NoError(t, err)

	// Twelve 5-minute windows: web grows by one request a window and
	// breaches COUNT > 5 from the seventh; api and five quiet services stay
	// under it.
	var at []time.Time
	for i := range 12 {
		end := t0.Add(time.Duration(i-11) * 5 * time.Minute)
		at = append(at, end)
		var evs []herald.Event
		add := func(service string, n int) {
			for range n {
				evs = append(evs, herald.Event{Time: end.Add(-2 * time.Minute), SampleRate: 1, Fields: map[string]any{"service": service}})
			}
		}
		add("web", i)
		add("api", 2)
		for _, s := range []string{"w1", "w2", "w3", "w4", "w5"} {
			add(s, 1)
		}
		b.write(t, "api", evs...)
	}
	tr := b.trigger(t, herald.Trigger{Name: "Web traffic spike", Description: "too many requests", DatasetSlug: "api",
		Query:     &herald.Query{Calculations: []herald.Calculation{{Op: "COUNT"}}, Breakdowns: []string{"service"}, Filters: []herald.Filter{{Column: "service", Op: "exists"}}},
		Threshold: &herald.Threshold{Op: ">", Value: 5}, Frequency: 300,
		Recipients: []herald.TriggerRecipient{{ID: hook.ID}, {ID: pd.ID, Details: &herald.RecipientOptions{PagerDutySeverity: "warning"}},
			{Type: "email", Target: "oncall@example.com"}}})
	b.evaluate(t, tr.ID, at...)
	quiet := b.trigger(t, herald.Trigger{Name: "Everything quiet", DatasetSlug: herald.AllDatasets, Disabled: true,
		Query:     &herald.Query{Calculations: []herald.Calculation{{Op: "COUNT"}}},
		Threshold: &herald.Threshold{Op: "<", Value: 1, ExceededLimit: 2}, Frequency: 900,
		EvaluationSchedule: &herald.EvaluationSchedule{Window: struct {
			DaysOfWeek []string `json:"days_of_week"`
			StartTime  string   `json:"start_time"`
			EndTime    string   `json:"end_time"`
		}{DaysOfWeek: []string{"monday", "friday"}, StartTime: "09:00", EndTime: "17:00"}}})

	page = b.page("/ui/triggers", http.StatusOK)
	require.Contains(t, page, "2 trigger(s), 1 triggered.")
	require.Contains(t, page, `<a href="/ui/triggers/api/`+tr.ID+`">Web traffic spike</a>`)
	require.Contains(t, page, `<a href="/ui/triggers/__all__/`+quiet.ID+`">Everything quiet</a>`)
	require.Contains(t, page, `<span class="state state-triggered">triggered</span>`)
	require.Contains(t, page, `<span class="state state-disabled">disabled</span>`)
	require.Contains(t, page, `<span class="state state-breached">breached</span>`, "the last evaluation breached")
	require.Contains(t, page, "every 5m")
	require.Contains(t, page, "<code>COUNT &gt; 5</code>")
	require.Contains(t, page, `<code>COUNT &lt; 1</code> <span class="muted">2 times in a row</span>`)
	require.Contains(t, page, `every 15m <span class="muted">in a weekly window</span>`)
	require.Less(t, strings.Index(page, "Everything quiet"), strings.Index(page, "Web traffic spike"), "__all__ sorts before api")

	page = b.page("/ui/triggers/api/"+tr.ID, http.StatusOK)
	require.Contains(t, page, "<h1>Web traffic spike</h1>")
	require.Contains(t, page, "<code>COUNT &gt; 5</code>, at one evaluation")
	require.Contains(t, page, "<dd>every 5m</dd>")
	require.Contains(t, page, "<code>service exists</code>")
	require.Contains(t, page, "the last 5m at each evaluation")
	require.Contains(t, page, "<summary>The query as JSON</summary>")
	require.Contains(t, page, "&#34;breakdowns&#34;")
	// Recipients by type and name or host, and never a secret.
	require.Contains(t, page, `<strong>webhook</strong> ops-bridge <span class="muted">(hooks.example.com)</span>`)
	require.Contains(t, page, "<strong>pagerduty</strong> on-call · severity warning")
	require.Contains(t, page, "<strong>email</strong> oncall@example.com")
	for _, secret := range []string{"s3cr3t-webhook", "secret-path", "abc123", "xyz789", "R0UT1NGK3Y"} {
		require.NotContains(t, page, secret)
	}
	// The chart: the six groups with the largest values against the
	// threshold; the seventh is left out and said so.
	require.Contains(t, page, "<svg")
	require.Contains(t, page, "COUNT at each evaluation")
	require.Contains(t, page, "Threshold: COUNT &gt; 5")
	for _, g := range []string{"service=web", "service=api", "service=w1", "service=w4"} {
		require.Contains(t, page, g)
	}
	require.NotContains(t, page, "service=w5")
	require.Contains(t, page, "The newest 12 evaluation(s) against the threshold (dashed); the 1 group(s) with the smallest values are not drawn.")
	// The table: the newest first, its values and the notification of the
	// evaluation that fired.
	require.Contains(t, page, "service=web: 11 (breached)<br>service=api: 2<br>service=w1: 1<br><span class=\"muted\">and 4 more</span>")
	evs, err := b.db.Evaluations(ctx, tr.ID, 100)
	require.NoError(t, err)
	require.Len(t, evs, 12)
	fired := evs[5]
	require.Equal(t, herald.EvalTriggered, fired.Notify)
	n, err := b.db.GetNotification(ctx, fired.NotificationID)
	require.NoError(t, err)
	require.Contains(t, page, `<a href="/ui/deliveries/`+n.Deliveries[0].ID+`">`+n.ID+`</a>`)
	require.Contains(t, page, `<a href="/ui/deliveries?trigger=`+tr.ID+`">`)

	// Send test: refused without the form's token, then a test
	// notification to every recipient, named and linked on the way back.
	resp, _ := b.br.post("/ui/triggers/api/"+tr.ID+"/test", url.Values{})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = b.br.post("/ui/triggers/api/"+tr.ID+"/test", url.Values{"csrf": {field(t, page, "csrf")}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	next := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(next, "/ui/triggers/api/"+tr.ID+"?sent=ntf_"), next)
	sent := strings.TrimPrefix(next, "/ui/triggers/api/"+tr.ID+"?sent=")
	test, err := b.db.GetNotification(ctx, sent)
	require.NoError(t, err)
	require.True(t, test.Alert.IsTest)
	require.Len(t, test.Deliveries, 3)
	page = b.page(next, http.StatusOK)
	require.Contains(t, page, fmt.Sprintf(`<p class="flash" role="status">Sent test notification %s to 3 recipient(s).</p>`, sent))
	require.Contains(t, page, `Follow its first delivery: <a href="/ui/deliveries/`+test.Deliveries[0].ID+`">`)
	require.Len(t, deliveryLink.FindAllString(page, -1), 2, "the test's delivery and the evaluation's")
	evs, err = b.db.Evaluations(ctx, tr.ID, 100)
	require.NoError(t, err)
	require.Len(t, evs, 12, "a test is not an evaluation")
	// Another trigger's notification is not reported as this one's test.
	page = b.page("/ui/triggers/__all__/"+quiet.ID+"?sent="+sent, http.StatusOK)
	require.NotContains(t, page, "Sent test notification")

	// A trigger without recipients has no one to test.
	require.Contains(t, page, "<dd>every 15m, on Monday, Friday from 09:00 to 17:00 UTC</dd>")
	require.Contains(t, page, "Not evaluated yet.")
	require.Contains(t, page, "No data", "an empty chart says so")
	resp, _ = b.br.post("/ui/triggers/__all__/"+quiet.ID+"/test", url.Values{"csrf": {field(t, page, "csrf")}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	page = b.page(resp.Header.Get("Location"), http.StatusOK)
	require.Contains(t, page, "This trigger has no recipient: there is no one to send a test to.")

	page = b.page("/ui/triggers/api/trg_nope", http.StatusNotFound)
	require.Contains(t, page, `no trigger &#34;trg_nope&#34;`)
	b.page("/ui/triggers/nope/"+tr.ID, http.StatusNotFound)
	resp, _ = b.br.post("/ui/triggers/api/trg_nope/test", url.Values{"csrf": {field(t, page, "csrf")}})
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}
