package slo_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald/slo"
)

// Case 6: the provider accepts everything but no webhook ever arrives, so
// every attempt from minute 0 is judged bad at T_final.
func TestSilentProviderFailure(t *testing.T) {
	t.Parallel()
	silent := func(judgeAfter time.Duration) scenario {
		return scenario{
			rate: constRate(3000),
			bad:  func(e event) bool { return e.idx >= 0 },
			judge: func(e event) (int64, bool) {
				if e.idx < 0 {
					return e.ms, true
				}
				return e.ms + judgeAfter.Milliseconds(), true
			},
			until: 60,
		}
	}
	r := run(t, silent(15*time.Minute))
	require.Equal(t, slo.Counts{}, r.sum(15, 15*time.Minute), "nothing judged in minutes 0–14")
	require.Equal(t, int64(16), r.firstFiring(page1h))
	tr := r.transition(page1h, 16, slo.StateFiring)
	require.Equal(t, slo.Counts{Good: 2200, Bad: 50}, tr.Snapshot.Long)
	require.InDelta(t, 50.0/2250, float64(tr.Snapshot.Long.Bad)/float64(tr.Snapshot.Long.Total()), 1e-12) // 2.2 % > 1.44 %

	// Latency SLI with X = 5 min: judged bad at triggered_at + X.
	r = run(t, silent(5*time.Minute))
	require.Equal(t, int64(6), r.firstFiring(page1h))
}

// Case 7: 10 events/h and one bad event.
func TestLowTraffic(t *testing.T) {
	t.Parallel()
	r := run(t, scenario{rate: constRate(10), bad: func(e event) bool { return e.idx == 0 }, until: 6 * 60})
	require.InDelta(t, 100, slo.Burn(0.1, 0.999), 1e-9)
	c := r.sum(60, time.Hour)
	require.Equal(t, slo.Counts{Good: 9, Bad: 1}, c)
	require.InDelta(t, 1/7.2, 1-r.budget[60], 1e-9) // 13.9 %
	require.Equal(t, int64(-1), r.firstFiring(page1h), "MinBadEvents = 3")
	require.Equal(t, int64(-1), r.firstFiring(page6h))
	for _, a := range []string{ticket1d, ticket3d} {
		require.Equal(t, int64(1), r.firstFiring(a), a)
	}
	tr := r.transition(ticket3d, 1, slo.StateFiring)
	require.Equal(t, slo.Counts{Good: 719, Bad: 1}, tr.Snapshot.Long) // 0.139 % > 0.1 %
	require.Equal(t, slo.Counts{Good: 59, Bad: 1}, tr.Snapshot.Short) // 1/60
	tr = r.transition(ticket1d, 1, slo.StateFiring)
	require.Equal(t, slo.Counts{Good: 239, Bad: 1}, tr.Snapshot.Long) // 0.42 % > 0.3 %

	r = run(t, scenario{rate: constRate(10), bad: func(e event) bool { return e.idx >= 0 && e.idx < 3 }, until: 60})
	require.Equal(t, int64(13), r.firstFiring(page1h))

	warnings, err := slo.Validate(slo.SLO{Target: 0.999, Period: period, Alerts: slo.DefaultAlerts(period), ExpectedEventsPerHour: 10})
	require.NoError(t, err)
	// Both kinds: the budget (7.2 events < 10) and single-failure pages
	// (10/h < 70/h for 14.4×/1 h; the 6×/6 h page is warned about too).
	require.Len(t, warnings, 3)
	require.Contains(t, warnings[0], "7.2 events")
	require.Contains(t, warnings[1], `"page-1h": 10 events per 1h is below 69.44, so a single failure trips the page`)
	require.Contains(t, warnings[2], `"page-6h"`)
}

// Case 8: 1000/h by day, 100/h by night; one hour has 5 % bad events.
func TestVolumeAware(t *testing.T) {
	t.Parallel()
	dayNight := func(h int64) int64 {
		if hd := ((h % 24) + 24) % 24; hd >= 6 && hd < 18 {
			return 1000
		}
		return 100
	}
	sc := func(incidentHour int64, volumeAware bool) scenario {
		return scenario{
			rate:  dayNight,
			bad:   func(e event) bool { return e.hour == incidentHour && e.k%20 == 0 },
			until: 24 * 60,
			slo: slo.SLO{
				Alerts:     slo.DefaultAlerts(period),
				LowTraffic: slo.LowTrafficPolicy{VolumeAware: volumeAware},
			},
		}
	}
	// Night hour 0: 5 bad of 100.
	r := run(t, sc(0, false))
	require.InDelta(t, 396, 0.001*r.eng.PeriodTotalEstimate(at(24*60+1)), 1e-6)
	require.InDelta(t, 50, slo.Burn(float64(r.sum(60, time.Hour).Bad)/float64(r.sum(60, time.Hour).Total()), 0.999), 1e-6)
	fired := r.firstFiring(page1h)
	require.Equal(t, int64(25), fired, "ratio mode pages at the third bad event")
	short := r.transition(page1h, fired, slo.StateFiring).Snapshot.Short
	require.Equal(t, int64(1), short.Bad)
	require.InDelta(t, 0.12, float64(short.Bad)/float64(short.Total()), 0.01) // ≈12 %

	r = run(t, sc(0, true))
	require.Equal(t, int64(-1), r.firstFiring(page1h), "5/396 = 1.26 % < 2 %")

	// Day hour 12: 50 bad of 1000 spends 12.6 % and pages in both modes.
	require.InDelta(t, 0.126, 50.0/396, 5e-4)
	for _, va := range []bool{false, true} {
		r = run(t, sc(12, va))
		require.NotEqual(t, int64(-1), r.firstFiring(page1h), "volume aware %v", va)
	}
}

func exhaustionSLO(h time.Duration) slo.SLO {
	return slo.SLO{Alerts: []slo.BurnAlert{{Name: "exhaustion", Severity: slo.SeverityTicket, Kind: slo.KindExhaustionTime, Horizon: h}}}
}

// Case 9: exhaustion time, lookback = horizon/4.
func TestExhaustionTime(t *testing.T) {
	t.Parallel()
	r := run(t, scenario{rate: constRate(1000), bad: incident(50_000, 1<<40), until: 300, slo: exhaustionSLO(24 * time.Hour)})
	require.Equal(t, int64(173), r.firstFiring("exhaustion"))
	require.InDelta(t, 0.80, r.transition("exhaustion", 173, slo.StateFiring).Snapshot.BudgetRemaining, 0.002)

	r = run(t, scenario{rate: constRate(1000), bad: incident(1_000_000, 1<<40), until: 60, slo: exhaustionSLO(4 * time.Hour)})
	require.Equal(t, int64(9), r.firstFiring("exhaustion"))

	r = run(t, scenario{rate: constRate(1000), bad: incident(20_000, 1<<40), until: 800, slo: exhaustionSLO(24 * time.Hour)})
	require.Equal(t, int64(721), r.firstFiring("exhaustion"))

	// 50 % of the budget spent ten days ago.
	halfSpent := func(e event) bool {
		return (e.idx >= -240_000 && e.idx < -240_000+360) || incident(20_000, 1<<40)(e)
	}
	r = run(t, scenario{rate: constRate(1000), bad: halfSpent, until: 300, slo: exhaustionSLO(24 * time.Hour)})
	require.InDelta(t, 0.5, r.budget[0], 1e-9)
	require.Equal(t, int64(217), r.firstFiring("exhaustion"))
}

// Case 10: budget rate "2 % in 1 h" fires when the 14.4× long window does.
func TestBudgetRate(t *testing.T) {
	t.Parallel()
	alerts := func() []slo.BurnAlert {
		return append(slo.DefaultAlerts(period), slo.BurnAlert{
			Name: "rate", Severity: slo.SeverityPage, Kind: slo.KindBudgetRate, Window: time.Hour, DecreasePct: 2,
		})
	}
	for _, c := range []struct {
		rate, ppm, want int64
	}{{1000, 20_000, 43}, {3000, 20_000, 44}, {1000, 1_000_000, 1}} {
		r := run(t, scenario{rate: constRate(c.rate), bad: incident(c.ppm, c.rate), until: 90, slo: slo.SLO{Alerts: alerts()}})
		require.Equal(t, c.want, r.firstFiring(page1h))
		require.Equal(t, c.want, r.firstFiring("rate"))
	}
}

// Case 11: judgements stop for an hour.
func TestNoData(t *testing.T) {
	t.Parallel()
	sc := func(forDur time.Duration) scenario {
		alerts := slo.DefaultAlerts(period)
		alerts[0].For = forDur
		return scenario{
			rate:  constRate(1000),
			judge: func(e event) (int64, bool) { return e.ms, e.ms < 0 || e.ms >= time.Hour.Milliseconds() },
			until: 120,
			slo:   slo.SLO{Alerts: alerts},
		}
	}
	r := run(t, sc(0))
	for _, tr := range r.trans {
		require.Equal(t, slo.NoDataAlert, tr.Alert, "no burn alert: %v", tr)
	}
	for m, b := range r.budget {
		require.False(t, math.IsNaN(b), "minute %d", m)
		require.Equal(t, 1.0, b, "minute %d", m)
	}
	// The long window empties at minute 60: state unchanged, marked no data.
	require.False(t, r.last[59].NoData)
	require.True(t, r.last[60].NoData)
	require.Zero(t, r.last[60].LongBurn)
	// 14.4 × 0.001 × 60 min ≈ 52 s: the first evaluation after is minute 1.
	fired, resolved := r.episodes(slo.NoDataAlert)
	require.Equal(t, []int64{1}, fired)
	require.Equal(t, []int64{61}, resolved)

	// + For: 52 s + 2 min = 172.8 s → minute 3.
	r = run(t, sc(2*time.Minute))
	fired, _ = r.episodes(slo.NoDataAlert)
	require.Equal(t, []int64{3}, fired)

	// An SLO that never saw a judgement: no data, no NaN, no alert.
	b := slo.NewBuckets(period)
	eng, err := slo.NewEngine(slo.SLO{Target: 0.999, Period: period, Alerts: slo.DefaultAlerts(period)}, b)
	require.NoError(t, err)
	require.Empty(t, eng.Evaluate(at(0)))
	require.Equal(t, 1.0, eng.BudgetRemaining(at(0)))
	_, ok := b.Sum(at(0), time.Hour).Ratio()
	require.False(t, ok)
}

// Case 12: exclusions are not judged.
func TestExclusions(t *testing.T) {
	t.Parallel()
	b := slo.NewBuckets(period)
	// 1000 attempts: 30 recipient hard bounces (excluded, never judged),
	// 5 provider drops (bad), 965 delivered.
	b.AddCounts(at(0).Unix()/60, 965, 5)
	c := b.Sum(at(1), time.Hour)
	ratio, ok := c.Ratio()
	require.True(t, ok)
	require.InDelta(t, 0.9948, 1-ratio, 5e-5) // 965/970
	require.InDelta(t, 5.15, slo.Burn(ratio, 0.999), 5e-3)

	require.True(t, slo.ExclusionDrift(10, 1000, 30, 1000, 3), "1 % → 3 %")
	require.False(t, slo.ExclusionDrift(10, 1000, 20, 1000, 3), "1 % → 2 %")
}

// Case 13: validation.
func TestValidate(t *testing.T) {
	t.Parallel()
	fast := []slo.BurnAlert{{Name: "fast", Severity: slo.SeverityPage, Long: time.Hour, BurnRate: 14.4}}
	_, err := slo.Validate(slo.SLO{Target: 0.90, Period: period, Alerts: fast})
	require.ErrorIs(t, err, slo.ErrInvalid, "max burn 10")
	_, err = slo.Validate(slo.SLO{Target: 0.95, Period: period, Alerts: fast})
	require.NoError(t, err, "max burn 20")
	_, err = slo.Validate(slo.SLO{Target: 0.999, Period: period, Alerts: []slo.BurnAlert{{Name: "x", Long: time.Hour, Short: time.Hour, BurnRate: 2}}})
	require.ErrorIs(t, err, slo.ErrInvalid, "short ≥ long")
	_, err = slo.Validate(slo.SLO{Target: 0.999, Period: day, Alerts: []slo.BurnAlert{{Name: "x", Long: 3 * day, BurnRate: 2}}})
	require.ErrorIs(t, err, slo.ErrInvalid, "long > period")
	for _, target := range []float64{0, 1, -0.5, 1.5} {
		_, err = slo.Validate(slo.SLO{Target: target, Period: period})
		require.ErrorIs(t, err, slo.ErrInvalid, "target %v", target)
	}
	w, err := slo.Validate(slo.SLO{Target: 0.999, Period: period, Alerts: slo.DefaultAlerts(period), ExpectedEventsPerHour: 1000})
	require.NoError(t, err)
	require.Empty(t, w)
}

// Case 14: warm-up extrapolates the period total.
func TestWarmUp(t *testing.T) {
	t.Parallel()
	sc := scenario{
		rate:    constRate(1000),
		bad:     incident(20_000, 1000),
		history: 24 * 60,
		until:   90,
		slo: slo.SLO{
			Alerts: append(slo.DefaultAlerts(period), slo.BurnAlert{
				Name: "rate", Severity: slo.SeverityPage, Kind: slo.KindBudgetRate, Window: time.Hour, DecreasePct: 2,
			}),
			LowTraffic: slo.LowTrafficPolicy{VolumeAware: true},
		},
	}
	r := run(t, sc)
	require.InDelta(t, 720_000, r.eng.PeriodTotalEstimate(at(0)), 1e-6) // 24,000 / (1/30)
	// Not 30× more sensitive: both fire at minute 43 as with 30 days of
	// history, not at the first bad event.
	require.Equal(t, int64(43), r.firstFiring(page1h))
	require.Equal(t, int64(43), r.firstFiring("rate"))
}

// Case 15: ratios come from sums, never from averaged ratios.
func TestRatioFromSums(t *testing.T) {
	t.Parallel()
	b := slo.NewBuckets(period)
	m := at(0).Unix() / 60
	b.AddCounts(m, 2, 2)
	b.AddCounts(m+1, 40_000, 0)
	ratio, ok := b.Sum(at(2), 2*time.Minute).Ratio()
	require.True(t, ok)
	require.InDelta(t, 2.0/40_004, ratio, 1e-15) // 0.005 %, not 25 %
}

func TestBucketsRing(t *testing.T) {
	t.Parallel()
	b := slo.NewBuckets(10 * time.Minute)
	m := at(0).Unix() / 60
	for i := int64(0); i < 25; i++ {
		b.AddCounts(m+i, i, 1)
	}
	require.Equal(t, slo.Counts{Good: 24 + 23 + 22, Bad: 3}, b.Sum(at(25), 3*time.Minute))
	require.Equal(t, slo.Counts{Good: 15 + 16 + 17 + 18 + 19 + 20 + 21 + 22 + 23 + 24, Bad: 10}, b.Sum(at(25), 10*time.Minute))
	b.AddCounts(m+23, 100, 0) // late, still in the ring
	require.Equal(t, slo.Counts{Good: 24 + 123 + 22, Bad: 3}, b.Sum(at(25), 3*time.Minute))
	b.AddCounts(m+5, 100, 0) // older than the ring: dropped
	require.Equal(t, slo.Counts{Good: 24 + 123 + 22, Bad: 3}, b.Sum(at(25), 3*time.Minute))
	// A gap longer than the ring.
	b.AddCounts(m+100, 7, 2)
	require.Equal(t, slo.Counts{Good: 7, Bad: 2}, b.Sum(at(101), 10*time.Minute))
	require.Equal(t, slo.Counts{}, b.Sum(at(100), 10*time.Minute))
	require.Equal(t, slo.Counts{}, b.Sum(at(500), 10*time.Minute))
	// Add by timestamp.
	b.Add(at(101).Add(30*time.Second), false)
	require.Equal(t, slo.Counts{Good: 7, Bad: 3}, b.Sum(at(102), 10*time.Minute))
}
