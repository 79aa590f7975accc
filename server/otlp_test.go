package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"herald/eventstore"
)

// capture keeps a copy of every request body a client sends.
type capture struct {
	next   http.RoundTripper
	bodies [][]byte
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	c.bodies = append(c.bodies, body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	return c.next.RoundTrip(r)
}

// sendSpans sends three spans of service "shop" with the OpenTelemetry Go
// SDK's OTLP/HTTP exporter (protobuf) and returns the bodies it sent.
func sendSpans(t *testing.T, url, key string) [][]byte {
	t.Helper()
	ctx := context.Background()
	c := &capture{next: http.DefaultTransport}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(url+"/v1/traces"),
		otlptracehttp.WithHeaders(map[string]string{"x-honeycomb-team": key}),
		otlptracehttp.WithHTTPClient(&http.Client{Transport: c}))
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "shop"))))
	tracer := tp.Tracer("shop/checkout")
	start := t0.Add(-time.Minute)
	ctx, root := tracer.Start(ctx, "GET /cart", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
		trace.WithAttributes(attribute.String("http.route", "/cart"), attribute.Int("http.response.status_code", 200)))
	_, db := tracer.Start(ctx, "SELECT carts", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start.Add(10*time.Millisecond)),
		trace.WithLinks(trace.Link{SpanContext: root.SpanContext()}))
	db.RecordError(errors.New("deadlock detected"), trace.WithTimestamp(start.Add(30*time.Millisecond)))
	db.SetStatus(codes.Error, "deadlock")
	db.End(trace.WithTimestamp(start.Add(40 * time.Millisecond)))
	_, cache := tracer.Start(ctx, "GET cache", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start.Add(41*time.Millisecond)))
	cache.End(trace.WithTimestamp(start.Add(46 * time.Millisecond)))
	root.End(trace.WithTimestamp(start.Add(120 * time.Millisecond)))
	require.NoError(t, tp.Shutdown(context.Background()))
	require.NotEmpty(t, c.bodies)
	return c.bodies
}

// checkSpans asserts what the spans of sendSpans read back as.
func checkSpans(t *testing.T, b *eventsBundle) {
	t.Helper()
	require.Equal(t, []map[string]any{
		{"name": "GET /cart", "type": "server", "SUM(duration_ms)": "120", "COUNT": "1"},
		{"name": "GET cache", "type": "client", "SUM(duration_ms)": "5", "COUNT": "1"},
		{"name": "SELECT carts", "type": "client", "SUM(duration_ms)": "30", "COUNT": "1"},
	}, b.query(t, "shop", `{"calculations":[{"op":"SUM","column":"duration_ms"},{"op":"COUNT"}],"breakdowns":["name","type"],
		"filters":[{"column":"meta.annotation_type","op":"does-not-exist"}],"orders":[{"column":"name"}],"time_range":600}`))
	require.Equal(t, []map[string]any{{"exception.message": "deadlock detected", "status_message": "deadlock", "COUNT": "1"}},
		b.query(t, "shop", `{"breakdowns":["exception.message","status_message"],"filters":[{"column":"error","op":"=","value":true}],"time_range":600}`))
	require.Equal(t, []map[string]any{
		{"meta.annotation_type": "link", "parent_name": "SELECT carts", "COUNT": "1"},
		{"meta.annotation_type": "span_event", "parent_name": "SELECT carts", "COUNT": "1"},
	}, b.query(t, "shop", `{"breakdowns":["meta.annotation_type","parent_name"],"filters":[{"column":"meta.annotation_type","op":"exists"}],
		"orders":[{"column":"meta.annotation_type"}],"time_range":600}`))
	// Children point at the root.
	require.Equal(t, []map[string]any{{"COUNT": "2"}}, b.query(t, "shop",
		`{"filters":[{"column":"trace.parent_id","op":"exists"},{"column":"meta.annotation_type","op":"does-not-exist"}],"time_range":600}`))
}

// TestOTelGoExporter: spans from the OpenTelemetry Go SDK's OTLP/HTTP
// exporter, in protobuf as it sends them, and the same request in OTLP
// JSON (re-encoded by the collector's own pdata), read back exactly.
func TestOTelGoExporter(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{})
	bodies := sendSpans(t, b.url, b.ingest)
	checkSpans(t, b)

	j := setupEvents(t, eventstore.Config{})
	for _, body := range bodies {
		req := ptraceotlp.NewExportRequest()
		require.NoError(t, req.UnmarshalProto(body))
		js, err := req.MarshalJSON()
		require.NoError(t, err)
		require.Contains(t, string(js), `"traceId":"`, "OTLP JSON carries hex ids")
		status, out := j.do(t, "POST", "/v1/traces", j.ingest, bytes.NewReader(gzipBody(t, js)),
			"Content-Type", "application/json", "Content-Encoding", "gzip")
		require.Equal(t, http.StatusOK, status, "%s", out)
		resp := ptraceotlp.NewExportResponse()
		require.NoError(t, resp.UnmarshalJSON(out))
		require.Zero(t, resp.PartialSuccess().RejectedSpans())
	}
	checkSpans(t, j)
}

// TestOTLPLogs: log records, routed by service.name or the dataset header.
func TestOTLPLogs(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{})
	logs := plog.NewLogs()
	named := logs.ResourceLogs().AppendEmpty()
	named.Resource().Attributes().PutStr("service.name", "api")
	rec := named.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	rec.SetTimestamp(pcommonTime(t0.Add(-time.Minute)))
	rec.SetSeverityNumber(plog.SeverityNumberError)
	rec.Body().SetStr("payment failed")
	anon := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	anon.SetTimestamp(pcommonTime(t0.Add(-time.Minute)))
	anon.Body().SetStr("hello")
	body, err := plogotlp.NewExportRequestFromLogs(logs).MarshalProto()
	require.NoError(t, err)
	status, out := b.do(t, "POST", "/v1/logs", b.ingest, bytes.NewReader(body),
		"Content-Type", "application/x-protobuf", "X-Honeycomb-Dataset", "misc")
	require.Equal(t, http.StatusOK, status, "%s", out)
	require.Equal(t, []map[string]any{{"severity": "error", "body": "payment failed", "COUNT": "1"}},
		b.query(t, "api", `{"breakdowns":["severity","body"],"time_range":600}`))
	require.Equal(t, []map[string]any{{"body": "hello", "COUNT": "1"}}, b.query(t, "misc", `{"breakdowns":["body"],"time_range":600}`))
}

// TestOTLPErrors: the answers of §2 — 415 as text, the rest as a
// google.rpc.Status in the request's encoding.
func TestOTLPErrors(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{})
	status, out := b.do(t, "POST", "/v1/traces", b.ingest, strings.NewReader("x"), "Content-Type", "text/plain")
	require.Equal(t, http.StatusUnsupportedMediaType, status, "%s", out)
	status, out = b.do(t, "POST", "/v1/traces", "", strings.NewReader("{}"), "Content-Type", "application/json")
	require.Equal(t, http.StatusUnauthorized, status)
	require.JSONEq(t, `{"code":16,"message":"missing 'x-honeycomb-team' header"}`, string(out))
	status, _ = b.do(t, "POST", "/v1/logs", "nope", strings.NewReader("{}"), "Content-Type", "application/json")
	require.Equal(t, http.StatusUnauthorized, status)
	status, out = b.do(t, "POST", "/v1/traces", b.ingest, strings.NewReader("{not json"), "Content-Type", "application/json")
	require.Equal(t, http.StatusBadRequest, status)
	require.JSONEq(t, `{"code":3,"message":"failed to parse OTLP request body"}`, string(out))
	status, _ = b.do(t, "POST", "/v1/traces/", b.ingest, strings.NewReader("{}"), "Content-Type", "application/json")
	require.Equal(t, http.StatusOK, status, "a trailing slash is accepted")
}

func pcommonTime(at time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(at) }
