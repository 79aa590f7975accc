package sandbox

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the sandbox's own Prometheus series, on a registry of its own.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	accepted *prometheus.CounterVec
	faults   *prometheus.CounterVec
	webhooks *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_sandbox_requests_total",
			Help: "Requests the sandbox answered, by partner and answer (HTTP status, SMTP reply code, or \"dropped\").",
		}, []string{"partner", "code"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_sandbox_messages_accepted_total",
			Help: "Messages the sandbox accepted into its mailbox, and notifications a channel accepted, by partner.",
		}, []string{"partner"}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_sandbox_faults_fired_total",
			Help: "Injected faults that fired, by partner and kind.",
		}, []string{"partner", "kind"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_sandbox_webhook_attempts_total",
			Help: "Event webhook attempts, by partner and outcome (delivered, retrying, gave_up).",
		}, []string{"partner", "outcome"}),
	}
	m.reg.MustRegister(m.requests, m.accepted, m.faults, m.webhooks)
	for _, p := range Partners {
		m.accepted.WithLabelValues(string(p))
		for _, o := range []string{"delivered", "retrying", "gave_up"} {
			if p.sendsEventWebhooks() {
				m.webhooks.WithLabelValues(string(p), o)
			}
		}
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// count wraps a partner's handler so every answer is counted — as its
// status is written, so a client that reads /metrics right after its answer
// sees it counted.
func (m *metrics) count(p Partner, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, count: func(code string) { m.requests.WithLabelValues(string(p), code).Inc() }}
		defer func() {
			if rec.status == 0 {
				rec.count("dropped") // hung up without an answer
			}
		}()
		h.ServeHTTP(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	count  func(code string)
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		r.count(strconv.Itoa(code))
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection to drop it.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
