// Package server is herald's HTTP API: NewServer returns the handler, and
// routes.go lists the whole surface. Handlers decode, call the domain, and
// encode; errors become one JSON shape that satisfies both Honeycomb's
// legacy {"error": …} and RFC 7807 problem details.
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"herald"
	"herald/clock"
	"herald/ingest"
	"herald/notify"
	"herald/sqlstore"
)

// Keys authenticates API keys.
type Keys interface {
	// AuthenticateAPIKey returns the live key with this secret, or
	// EUNAUTHORIZED.
	AuthenticateAPIKey(ctx context.Context, secret string) (herald.APIKey, error)
}

// Notifier creates notifications and retries deliveries; *notify.Service
// implements it.
type Notifier interface {
	Create(ctx context.Context, req notify.CreateRequest, idempotencyKey string) (*herald.Notification, bool, error)
	Retry(ctx context.Context, deliveryID string) (*herald.Delivery, error)
}

// Reader reads notifications and deliveries; *sqlstore.DB implements it.
type Reader interface {
	GetNotification(ctx context.Context, id string) (*herald.Notification, error)
	GetDelivery(ctx context.Context, id string) (*herald.Delivery, error)
	ListDeliveries(ctx context.Context, f sqlstore.DeliveryFilter) ([]herald.Delivery, error)
}

// Queries keeps saved queries and their results; *sqlstore.DB implements
// it.
type Queries interface {
	CreateQuery(ctx context.Context, dataset string, q herald.Query) (herald.Query, error)
	GetQuery(ctx context.Context, dataset, id string) (herald.Query, error)
	CreateQueryResult(ctx context.Context, r *herald.QueryResult) error
	GetQueryResult(ctx context.Context, dataset, id string) (*herald.QueryResult, error)
}

// Deps are what the API serves from. Every field is required except
// TracerProvider (defaults to the global one), Ready (defaults to always
// ready), Clock (defaults to the real clock) and Decompressor.
type Deps struct {
	Logger      *slog.Logger
	Keys        Keys
	Notifier    Notifier
	Reader      Reader
	Events      herald.EventStore
	Queries     Queries
	Triggers    Triggers
	Evaluations EvaluationReader
	Evaluator   Evaluator
	// Decompressor decompresses event bodies; nil makes a decoder per
	// request.
	Decompressor *ingest.Decompressor
	Markers      Markers
	// Hooks reads each partner's event webhook, by partner name;
	// PartnerEvents applies what they report; HookMetrics counts them
	// (nil: not counted).
	Hooks         map[string]herald.EventWebhook
	PartnerEvents EventSink
	HookMetrics   *HookMetrics
	Canaries      CanaryReader
	SLOs          SLOs
	SLOEngine     SLOEngine
	// Sessions keeps the web UI's sessions; UIStore answers its lists and
	// charts; Breakers reports each partner's circuit breaker; Mailbox,
	// when set, is the built-in sandbox's mailbox, shown in the UI.
	Sessions UISessions
	UIStore  UIStore
	Breakers func() map[string]notify.BreakerState
	Mailbox  Mailbox
	// templates are the UI's pages, parsed by NewServer.
	templates      uiTemplates
	Clock          clock.Clock
	Metrics        http.Handler
	Ready          func(ctx context.Context) error
	TracerProvider trace.TracerProvider
}

// NewServer returns herald's HTTP handler.
func NewServer(d Deps) http.Handler {
	if d.Ready == nil {
		d.Ready = func(context.Context) error { return nil }
	}
	if d.Clock == nil {
		d.Clock = clock.Real()
	}
	if d.Decompressor == nil {
		d.Decompressor = &ingest.Decompressor{}
	}
	if d.Sessions != nil {
		t, err := parseUITemplates()
		if err != nil {
			panic(err) // the templates are embedded: a test catches this
		}
		d.templates = t
	}
	mux := http.NewServeMux()
	addRoutes(mux, d)
	var opts []otelhttp.Option
	if d.TracerProvider != nil {
		opts = append(opts, otelhttp.WithTracerProvider(d.TracerProvider))
	}
	opts = append(opts, otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		if r.Pattern != "" {
			return r.Pattern
		}
		return r.Method
	}), otelhttp.WithFilter(func(r *http.Request) bool {
		return r.URL.Path != "/metrics" && r.URL.Path != "/healthz" && r.URL.Path != "/readyz"
	}))
	return otelhttp.NewHandler(recoverer(d.Logger, mux), "herald", opts...)
}

// recoverer answers 500 instead of dropping the connection when a handler
// panics, and logs it.
func recoverer(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "handler panicked", "panic", fmt.Sprint(v), "path", r.URL.Path)
				writeError(w, r, log, herald.Errorf(herald.EINTERNAL, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// encode writes v as JSON with status.
func encode[T any](w http.ResponseWriter, status int, v T) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// maxBody caps a JSON request body.
const maxBody = 1 << 20

// decode reads a JSON body of at most 1 MiB into a T, refusing unknown
// fields and trailing data. Errors are EMALFORMED, ETOOLARGE or EINVALID.
func decode[T any](r *http.Request) (T, error) {
	var v T
	// curl -d sends application/x-www-form-urlencoded unless told
	// otherwise; the body is still read as JSON, as Honeycomb's API does.
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") &&
		!strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return v, herald.Errorf(herald.EMALFORMED, "Content-Type must be application/json, got %q", ct)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return v, herald.Errorf(herald.EMALFORMED, "reading the body: %v", err)
	}
	if len(body) > maxBody {
		return v, herald.Errorf(herald.ETOOLARGE, "the body is over %d bytes", maxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return v, herald.Invalid(typeErr.Field, "incorrect_type", "want %s", typeErr.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return v, herald.Invalid(field, "invalid", "unknown field")
		}
		return v, herald.Errorf(herald.EMALFORMED, "the body is not valid JSON: %v", err)
	}
	if dec.More() {
		return v, herald.Errorf(herald.EMALFORMED, "the body has data after its JSON value")
	}
	return v, nil
}

// problem is herald's one error shape: Honeycomb's legacy {"error"} and
// RFC 7807 in one object.
type problem struct {
	Status     int                 `json:"status"`
	Type       string              `json:"type"`
	Title      string              `json:"title"`
	Error      string              `json:"error"`
	Detail     string              `json:"detail,omitempty"`
	TypeDetail []herald.FieldError `json:"type_detail,omitempty"`
}

// statuses maps error codes to HTTP statuses and problem types.
var statuses = map[string]struct {
	status int
	slug   string
	title  string
}{
	herald.EMALFORMED:    {http.StatusBadRequest, "unparseable", "The request body could not be parsed."},
	herald.EINVALID:      {http.StatusUnprocessableEntity, "validation-failed", "The provided input is invalid."},
	herald.EUNAUTHORIZED: {http.StatusUnauthorized, "unauthorized", "Unknown API key - check your credentials."},
	herald.EFORBIDDEN:    {http.StatusForbidden, "forbidden", "This API key may not do this."},
	herald.ENOTFOUND:     {http.StatusNotFound, "not-found", "The requested resource cannot be found."},
	herald.ECONFLICT:     {http.StatusConflict, "conflict", "The request conflicts with the resource's state."},
	herald.ETOOLARGE:     {http.StatusRequestEntityTooLarge, "payload-too-large", "The request body is too large."},
	herald.EUNAVAILABLE:  {http.StatusServiceUnavailable, "unavailable", "herald cannot serve this now."},
	herald.EINTERNAL:     {http.StatusInternalServerError, "internal", "Internal error."},
}

// writeError answers err in the one error shape. Internal errors are logged
// with their cause and shown without it.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	writeErrorStatus(w, r, log, err, 0)
}

// writeErrorStatus is writeError with the HTTP status set to status when
// it is not 0.
func writeErrorStatus(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error, status int) {
	code := herald.ErrorCode(err)
	st, ok := statuses[code]
	if !ok {
		st = statuses[herald.EINTERNAL]
	}
	if status != 0 {
		st.status = status
	}
	p := problem{Status: st.status, Type: "https://api.honeycomb.io/problems/" + st.slug, Title: st.title, Error: st.title}
	var he *herald.Error
	if errors.As(err, &he) && code != herald.EINTERNAL {
		p.Error, p.Detail, p.TypeDetail = he.Message, he.Message, he.Fields
	} else {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	encode(w, st.status, p)
}
