package server

import (
	"context"
	"io"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"herald"
	"herald/sqlstore"
)

// EventSink applies partner events to deliveries; *sqlstore.DB implements
// it.
type EventSink interface {
	ApplyPartnerEvent(ctx context.Context, partner string, ev herald.PartnerEvent) (sqlstore.EventResult, error)
}

// maxHookBody caps a partner event webhook body (SendGrid batches reach
// 768 KB).
const maxHookBody = 5 << 20

// handlePartnerHook is POST /hooks/{partner}: a partner's signed event
// webhook. A request that fails verification or cannot be read is refused
// (401, 400), logged and counted, and changes nothing; a verified one is
// applied event by event and answered 200, so the partner does not retry
// it. An event that matches no delivery yet is kept for when one does.
func handlePartnerHook(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		partner := r.PathValue("partner")
		hook, ok := d.Hooks[partner]
		if !ok {
			writeError(w, r, d.Logger, herald.Errorf(herald.ENOTFOUND, "no partner %q takes event webhooks here", partner))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHookBody))
		if err != nil {
			d.HookMetrics.count(partner, "malformed")
			writeError(w, r, d.Logger, herald.Errorf(herald.ETOOLARGE, "the body is over %d bytes", maxHookBody))
			return
		}
		events, err := hook.Parse(r.Context(), r, body)
		if err != nil {
			result := "refused"
			if herald.ErrorCode(err) == herald.EMALFORMED {
				result = "malformed"
			}
			d.HookMetrics.count(partner, result)
			d.Logger.WarnContext(r.Context(), "partner event webhook refused", "partner", partner, "result", result,
				"error", err, "remote_addr", r.RemoteAddr)
			writeError(w, r, d.Logger, err)
			return
		}
		for _, ev := range events {
			res, err := d.PartnerEvents.ApplyPartnerEvent(r.Context(), partner, ev)
			if err != nil {
				// The partner retries a non-2xx answer: nothing is lost.
				writeError(w, r, d.Logger, err)
				return
			}
			switch {
			case res.Duplicate:
				d.HookMetrics.count(partner, "duplicate")
			case res.DeliveryID == "":
				d.HookMetrics.count(partner, "unmatched")
			case !res.Applied:
				d.HookMetrics.count(partner, "pending")
			default:
				d.HookMetrics.count(partner, "applied")
			}
			d.Logger.DebugContext(r.Context(), "partner event", "partner", partner, "event_id", ev.EventID, "type", ev.PartnerType,
				"delivery_id", res.DeliveryID, "state", res.State, "duplicate", res.Duplicate)
			traceEvent(d, partner, ev, res)
		}
		w.WriteHeader(http.StatusOK)
	})
}

// HookMetrics counts partner event webhook requests and events by result.
type HookMetrics struct {
	results *prometheus.CounterVec
}

// NewHookMetrics registers herald_partner_events_total on reg, its series
// created for each partner so dashboards show zeros, not gaps.
func NewHookMetrics(reg prometheus.Registerer, partners []string) *HookMetrics {
	m := &HookMetrics{results: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_partner_events_total",
		Help: "Partner event webhook requests refused or malformed, and events applied, pending, unmatched or duplicate, by partner.",
	}, []string{"partner", "result"})}
	reg.MustRegister(m.results)
	for _, p := range partners {
		for _, r := range []string{"applied", "pending", "unmatched", "duplicate", "refused", "malformed"} {
			m.results.WithLabelValues(p, r)
		}
	}
	return m
}

func (m *HookMetrics) count(partner, result string) {
	if m != nil {
		m.results.WithLabelValues(partner, result).Inc()
	}
}

// CanaryReader reads canaries; *sqlstore.DB implements it.
type CanaryReader interface {
	Canaries(ctx context.Context, partner string, pending bool, limit int) ([]herald.Canary, error)
}

// handleCanaries is GET /1/canaries: the newest canaries first, of one
// partner with ?partner=, at most ?limit= (default 100, at most 1000).
func handleCanaries(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			var err error
			if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
				writeError(w, r, d.Logger, herald.Invalid("limit", "invalid", "between 1 and 1000"))
				return
			}
		}
		list, err := d.Canaries.Canaries(r.Context(), r.URL.Query().Get("partner"), false, limit)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		encode(w, http.StatusOK, list)
	})
}

// traceEvent records an applied event as a span of its notification's
// trace, beside the delivery's attempts.
func traceEvent(d Deps, partner string, ev herald.PartnerEvent, res sqlstore.EventResult) {
	if res.TraceParent == "" || res.Duplicate {
		return
	}
	tp := d.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": res.TraceParent})
	_, span := tp.Tracer("herald/server").Start(ctx, "notify.PartnerEvent", trace.WithAttributes(
		attribute.String("herald.partner", partner), attribute.String("herald.delivery.id", res.DeliveryID),
		attribute.String("herald.partner.event", ev.PartnerType), attribute.String("herald.partner.event_id", ev.EventID),
		attribute.String("herald.state", string(res.State))))
	span.End()
}
