package server_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/slo"
)

func TestUISLOs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupPages(t)
	page := b.page("/ui/slos", http.StatusOK)
	require.Contains(t, page, "No SLO yet.")
	require.Contains(t, page, `aria-current="page">SLOs`)

	// Two hours of checkouts, ten a minute; in the last ten minutes fifty
	// a minute more are slow.
	var evs []herald.Event
	for m := range 120 {
		at := t0.Add(time.Duration(m-120)*time.Minute + 10*time.Second)
		for range 10 {
			evs = append(evs, herald.Event{Time: at, SampleRate: 1, Fields: map[string]any{"duration_ms": 120.0}})
		}
		if m >= 110 {
			for range 50 {
				evs = append(evs, herald.Event{Time: at, SampleRate: 1, Fields: map[string]any{"duration_ms": 900.0}})
			}
		}
	}
	b.write(t, "checkout", evs...)
	_, err := b.events.CreateDerivedColumn(ctx, "checkout", herald.DerivedColumn{Alias: "sli.fast", Expression: "LTE($duration_ms, 300)"})
	require.NoError(t, err)
	o, err := herald.SLO{Name: "Checkout is fast", Description: "checkouts under 300 ms", Dataset: "checkout",
		SLI: herald.SLIRef{Alias: "sli.fast"}, TimePeriodDays: 30, TargetPerMillion: 999000}.Normalize()
	require.NoError(t, err)
	alerts, _ := slo.DefaultBurnAlerts(o)
	for i := range alerts {
		alerts[i].Recipients = []herald.TriggerRecipient{{Type: "email", Target: "payments@example.com"}}
		alerts[i], err = alerts[i].Normalize(o.Period(), true)
		require.NoError(t, err)
	}
	o, _, err = b.db.SaveSLO(ctx, o, alerts)
	require.NoError(t, err)
	require.NoError(t, b.slos.EnsureDeliverySLOs(ctx))
	// The engine runs once a minute through the slow spell: both pages
	// fire at once and notify; the tickets fire with them, held back.
	for at := t0.Add(-15 * time.Minute); !at.After(t0); at = at.Add(time.Minute) {
		require.NoError(t, b.slos.Tick(ctx, at))
	}
	st, err := b.slos.Status(ctx, o)
	require.NoError(t, err)
	require.Equal(t, herald.SLOTriggered, st.Status)
	events, err := b.db.BurnAlertEvents(ctx, o.ID, 100)
	require.NoError(t, err)
	require.Len(t, events, 4)

	page = b.page("/ui/slos", http.StatusOK)
	require.Contains(t, page, `<a href="/ui/slos/checkout/`+o.ID+`">Checkout is fast</a>`)
	require.Contains(t, page, `<span class="state state-triggered">triggered</span>`)
	require.Contains(t, page, `__deliveries__ <span class="muted">channel email</span>`, "the built-in delivery SLOs, with their channel")
	require.Contains(t, page, "Delivery latency: slack")
	require.Contains(t, page, `<td class="num">99.9 %</td>`)
	require.Contains(t, page, `<td class="num">30d</td>`)
	require.Contains(t, page, `<span class="state state-no_events">no_events</span>`)
	require.Less(t, strings.Index(page, "__deliveries__"), strings.Index(page, "Checkout is fast"), "by dataset")

	page = b.page("/ui/slos/checkout/"+o.ID, http.StatusOK)
	require.Contains(t, page, "<h1>Checkout is fast</h1>")
	require.Contains(t, page, "checkouts under 300 ms")
	require.Contains(t, page, "<code>sli.fast</code>")
	require.Contains(t, page, "<dd>1190 good, 450 bad in the period</dd>", "up to 11:59: a minute of ingest lag")
	require.Contains(t, page, `<p class="big">`+pct(st.Compliance)+`</p>`)
	require.Contains(t, page, `<p class="big">`+pct(st.BudgetRemaining)+`</p>`)
	// The burn-down: whole until the slow spell, then overspent; the
	// dashed line is the empty budget.
	require.Contains(t, page, "<svg")
	require.Contains(t, page, "Error budget remaining over the 30d period")
	require.Contains(t, page, "Threshold: budget spent (0 %)")
	require.Contains(t, page, `<th scope="col">budget remaining (%)</th>`)
	require.Contains(t, page, "<td>100</td>")
	require.True(t, strings.HasSuffix(strings.Split(page, "</tbody>")[0], "<td>"+strconv.FormatFloat(st.BudgetRemaining, 'f', -1, 64)+"</td></tr>"),
		"the burn-down ends at the budget left")
	// The burn alerts with each window's burn rate against its threshold.
	require.Contains(t, page, `<th scope="row">page 1h/5m<br><span class="muted">2% of the budget spent in 1h (burn rate 14.4)</span></th>`)
	require.Contains(t, page, "both windows burn faster than 14.4× the sustainable rate")
	require.Regexp(t, `1h: [0-9.]+ <strong>above</strong> 14.4 <span class="muted">\(450 bad of 1050\)</span><br>5m: [0-9.]+ <strong>above</strong> 14.4`, page)
	require.Contains(t, page, "ticket 3d/6h")
	require.Equal(t, 4, strings.Count(page, `<td><span class="state state-firing">firing</span></td>`))
	// The history, newest first: the pages notified, the tickets held back.
	require.Equal(t, 4, strings.Count(page, `<span class="state state-ok">ok</span> → <span class="state state-firing">firing</span>`))
	require.Equal(t, 2, strings.Count(page, "inhibited: a page of this SLO was firing"))
	links := regexp.MustCompile(`<a href="/ui/deliveries/(dlv_[0-9a-z]+)">(ntf_[0-9a-z]+)</a>`).FindAllStringSubmatch(page, -1)
	require.Len(t, links, 2, "the pages' notifications")
	for _, l := range links {
		n, err := b.db.GetNotification(ctx, l[2])
		require.NoError(t, err)
		require.Equal(t, l[1], n.Deliveries[0].ID)
		require.Equal(t, o.ID, n.Metadata["herald_slo_id"])
	}
	require.Regexp(t, `<td>1h [0-9.]+, 5m [0-9.]+</td>`, page, "the long window first")
	require.Regexp(t, `<td>3d [0-9.]+, 6h [0-9.]+</td>`, page)

	// A built-in delivery SLO, without traffic.
	list, err := b.db.ListSLOs(ctx, herald.DeliveryDataset)
	require.NoError(t, err)
	i := slices.IndexFunc(list, func(o herald.SLO) bool { return o.Channel == "pagerduty" && o.SLI.Alias == herald.SLIDelivered })
	require.GreaterOrEqual(t, i, 0)
	page = b.page("/ui/slos/__deliveries__/"+list[i].ID, http.StatusOK)
	require.Contains(t, page, "<h1>Delivery: pagerduty</h1>")
	require.Contains(t, page, `<span class="muted">(channel pagerduty)</span>`)
	require.Contains(t, page, `<span class="state state-no_events">no_events</span>`)
	require.Contains(t, page, "No alert has changed state yet.")
	require.Contains(t, page, "<td>100</td>", "no judgement: the budget is whole")
	require.NotContains(t, page, "NaN")

	page = b.page("/ui/slos/checkout/slo_nope", http.StatusNotFound)
	require.Contains(t, page, "slo_nope")
	b.page("/ui/slos/nope/"+o.ID, http.StatusNotFound)
	b.page("/ui/slos/__deliveries__/"+o.ID, http.StatusNotFound)
}

// pct is how the UI writes a percentage.
func pct(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) + " %" }
