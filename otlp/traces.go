package otlp

import (
	"maps"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"herald"
)

// UnknownService is the dataset of spans whose resource has no usable
// service.name.
const UnknownService = "unknown_service"

// instrumentationPrefixes are the scope-name prefixes of the
// OpenTelemetry instrumentation libraries (Go contrib, Java, JavaScript);
// spans from such a scope get telemetry.instrumentation_library: true.
var instrumentationPrefixes = [...]string{
	"go.opentelemetry.io/contrib/instrumentation",
	"io.opentelemetry.",
	"@opentelemetry/instrumentation",
}

// exceptionKeys are the attributes copied from a span's first "exception"
// span event onto the span's own event when the span lacks them.
var exceptionKeys = [...]string{"exception.message", "exception.type", "exception.stacktrace", "exception.escaped"}

// Traces decodes an ExportTraceServiceRequest (already decompressed) in
// enc and maps each span, span event and link to an event, grouped by
// dataset name: the trimmed resource attribute service.name, or
// UnknownService if it is missing, not a string, empty, or starts with
// "unknown_service".
//
// A span's event has, later fields replacing earlier ones: trace.trace_id,
// trace.span_id, trace.parent_id (if the span has a parent), name,
// span.kind and type, duration_ms (meta.invalid_duration if negative),
// status_code, error (if the status is ERROR), status_message and
// trace.trace_state (if set), span.num_links, span.num_events,
// meta.signal_type "trace"; then the resource attributes and
// resource.schema_url; then the scope fields library.name,
// library.version, scope.schema_url, telemetry.instrumentation_library
// and the scope attributes; then the span attributes. Its time is the
// span start. Its sample rate is the sampleRate or SampleRate attribute
// (removed from the fields) if that is a positive integer, else the one
// the tracestate's sampling threshold implies, else 1.
//
// Each span event becomes an event (meta.annotation_type "span_event")
// with the span's IDs and name, the resource and scope fields and its own
// attributes, at its own time; each link an event (meta.annotation_type
// "link") with the span's and the linked span's IDs and its own
// attributes, at the span start. Both take the span's sample rate and go
// to the span's dataset.
//
// Errors: a body that cannot be parsed gets an EMALFORMED *herald.Error
// with the message "failed to parse OTLP request body".
func Traces(body []byte, enc Encoding) (map[string][]herald.Event, error) {
	req := ptraceotlp.NewExportRequest()
	if err := unmarshal(req, body, enc); err != nil {
		return nil, err
	}
	out := map[string][]herald.Event{}
	rss := req.Traces().ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		dataset := traceDataset(rs.Resource().Attributes())
		res := resourceFields(rs.Resource(), rs.SchemaUrl())
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			ss := sss.At(j)
			scope := scopeFields(ss.Scope(), ss.SchemaUrl())
			spans := ss.Spans()
			for k := range spans.Len() {
				out[dataset] = appendSpan(out[dataset], spans.At(k), res, scope)
			}
		}
	}
	return out, nil
}

// traceDataset returns the dataset of a resource's spans.
func traceDataset(res pcommon.Map) string {
	v, ok := res.Get("service.name")
	if !ok || v.Type() != pcommon.ValueTypeStr {
		return UnknownService
	}
	name := strings.TrimSpace(v.Str())
	if name == "" || strings.HasPrefix(name, UnknownService) {
		return UnknownService
	}
	return name
}

// resourceFields returns a resource's attributes and, if set, its
// resource.schema_url.
func resourceFields(r pcommon.Resource, schemaURL string) map[string]any {
	f := map[string]any{}
	putAttrs(f, r.Attributes())
	if schemaURL != "" {
		f["resource.schema_url"] = schemaURL
	}
	return f
}

// scopeFields returns an instrumentation scope's fields: library.name,
// library.version and scope.schema_url when set,
// telemetry.instrumentation_library for a known instrumentation library,
// and the scope's attributes.
func scopeFields(s pcommon.InstrumentationScope, schemaURL string) map[string]any {
	f := map[string]any{}
	if name := s.Name(); name != "" {
		f["library.name"] = name
		for _, p := range instrumentationPrefixes {
			if strings.HasPrefix(name, p) {
				f["telemetry.instrumentation_library"] = true
				break
			}
		}
	}
	if v := s.Version(); v != "" {
		f["library.version"] = v
	}
	if schemaURL != "" {
		f["scope.schema_url"] = schemaURL
	}
	putAttrs(f, s.Attributes())
	return f
}

// spanKind returns the lower-case name of a span kind.
func spanKind(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindServer:
		return "server"
	case ptrace.SpanKindClient:
		return "client"
	case ptrace.SpanKindProducer:
		return "producer"
	case ptrace.SpanKindConsumer:
		return "consumer"
	case ptrace.SpanKindInternal:
		return "internal"
	}
	return "unspecified"
}

// sinceMillis returns the milliseconds from start to t, 0 if t is before
// start, and whether t is before start.
func sinceMillis(start, t pcommon.Timestamp) (ms float64, negative bool) {
	if t < start {
		return 0, true
	}
	return float64(t-start) / 1e6, false
}

// appendSpan appends the events of one span (its own, then its span
// events', then its links') to events.
func appendSpan(events []herald.Event, span ptrace.Span, res, scope map[string]any) []herald.Event {
	traceID := traceIDHex(span.TraceID())
	spanID := spanIDHex(span.SpanID())
	start := span.StartTimestamp()
	startTime := start.AsTime()
	kind := spanKind(span.Kind())

	f := map[string]any{
		"trace.trace_id":   traceID,
		"trace.span_id":    spanID,
		"name":             span.Name(),
		"span.kind":        kind,
		"type":             kind,
		"status_code":      int64(span.Status().Code()),
		"span.num_links":   int64(span.Links().Len()),
		"span.num_events":  int64(span.Events().Len()),
		"meta.signal_type": "trace",
	}
	if p := span.ParentSpanID(); !p.IsEmpty() {
		f["trace.parent_id"] = spanIDHex(p)
	}
	duration, invalid := sinceMillis(start, span.EndTimestamp())
	f["duration_ms"] = duration
	if invalid {
		f["meta.invalid_duration"] = true
	}
	if span.Status().Code() == ptrace.StatusCodeError {
		f["error"] = true
	}
	if msg := span.Status().Message(); msg != "" {
		f["status_message"] = msg
	}
	traceState := span.TraceState().AsRaw()
	if traceState != "" {
		f["trace.trace_state"] = traceState
	}
	maps.Copy(f, res)
	maps.Copy(f, scope)
	putAttrs(f, span.Attributes())

	rate, ok := takeSampleRate(f)
	if !ok {
		rate, ok = thresholdSampleRate(traceState)
	}
	if !ok {
		rate = 1
	}

	events = append(events, herald.Event{Time: startTime, SampleRate: rate, Fields: f})

	sawException := false
	sevs := span.Events()
	for i := range sevs.Len() {
		sev := sevs.At(i)
		since, _ := sinceMillis(start, sev.Timestamp())
		ef := map[string]any{
			"trace.trace_id":                traceID,
			"trace.parent_id":               spanID,
			"name":                          sev.Name(),
			"parent_name":                   span.Name(),
			"meta.annotation_type":          "span_event",
			"meta.time_since_span_start_ms": since,
			"meta.signal_type":              "trace",
		}
		maps.Copy(ef, res)
		maps.Copy(ef, scope)
		attrs := map[string]any{}
		putAttrs(attrs, sev.Attributes())
		maps.Copy(ef, attrs)
		for _, k := range sampleRateKeys {
			delete(ef, k)
		}
		if sev.Name() == "exception" && !sawException {
			sawException = true
			for _, k := range exceptionKeys {
				if v, ok := attrs[k]; ok {
					if _, has := f[k]; !has {
						f[k] = v
					}
				}
			}
		}
		events = append(events, herald.Event{Time: sev.Timestamp().AsTime(), SampleRate: rate, Fields: ef})
	}

	links := span.Links()
	for i := range links.Len() {
		l := links.At(i)
		lf := map[string]any{
			"trace.trace_id":       traceID,
			"trace.parent_id":      spanID,
			"trace.link.trace_id":  traceIDHex(l.TraceID()),
			"trace.link.span_id":   spanIDHex(l.SpanID()),
			"parent_name":          span.Name(),
			"meta.annotation_type": "link",
			"meta.signal_type":     "trace",
		}
		putAttrs(lf, l.Attributes())
		for _, k := range sampleRateKeys {
			delete(lf, k)
		}
		events = append(events, herald.Event{Time: startTime, SampleRate: rate, Fields: lf})
	}
	return events
}
