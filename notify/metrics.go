package notify

import (
	"github.com/prometheus/client_golang/prometheus"

	"herald"
)

// Metrics are the delivery pipeline's Prometheus series. Create them with
// NewMetrics on the registry /metrics serves.
type Metrics struct {
	attempts   *prometheus.CounterVec
	finished   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	duplicates *prometheus.CounterVec
	breaker    *prometheus.GaugeVec
}

// NewMetrics registers the pipeline's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_delivery_attempts_total",
			Help: "Attempts to hand a delivery to a partner, by partner, channel, outcome and reason.",
		}, []string{"partner", "channel", "outcome", "reason"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_deliveries_finished_total",
			Help: "Deliveries that left the sending pipeline, by channel and the state they left in (accepted or failed; later states come from partner events).",
		}, []string{"channel", "state"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_delivery_attempt_duration_seconds",
			Help:    "Duration of one attempt, by partner, channel and outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"partner", "channel", "outcome"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_delivery_possible_duplicates_total",
			Help: "Attempts made after an attempt whose outcome was unknown: the recipient may get the message twice.",
		}, []string{"channel"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_partner_breaker_open",
			Help: "1 while a partner's circuit breaker is open, else 0.",
		}, []string{"partner"}),
	}
	reg.MustRegister(m.attempts, m.finished, m.duration, m.duplicates, m.breaker)
	return m
}

// precreate makes every series a dashboard expects exist at zero.
func (m *Metrics) precreate(channels map[string][]herald.Provider) {
	for ch, ps := range channels {
		for _, s := range []herald.DeliveryState{herald.StateAccepted, herald.StateFailed} {
			m.finished.WithLabelValues(ch, string(s))
		}
		m.duplicates.WithLabelValues(ch)
		for _, p := range ps {
			m.breaker.WithLabelValues(p.Name())
			for o, reasons := range herald.ReasonsByOutcome {
				m.duration.WithLabelValues(p.Name(), ch, string(o))
				for _, r := range reasons {
					m.attempts.WithLabelValues(p.Name(), ch, string(o), r)
				}
			}
		}
	}
}
