package otlp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"herald"
)

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

func ts(d time.Duration) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t0.Add(d)) }

// testTraces returns two resources: checkout, with a failing server span
// (exception events, a link, every attribute type) and a client span with
// a sampleRate attribute and a negative duration; and one without
// service.name, with a span sampled by tracestate threshold.
func testTraces() ptrace.Traces {
	td := ptrace.NewTraces()

	rs := td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	rs.Resource().Attributes().PutStr("service.name", " checkout ")
	rs.Resource().Attributes().PutStr("host.name", "h1")
	rs.Resource().Attributes().PutStr("shadowed", "resource")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.SetSchemaUrl("https://opentelemetry.io/schemas/1.24.0")
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	ss.Scope().SetVersion("0.72.0")

	span := ss.Spans().AppendEmpty()
	span.SetTraceID(pcommon.TraceID{0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	span.SetSpanID(pcommon.SpanID{0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8})
	span.SetParentSpanID(pcommon.SpanID{0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8})
	span.SetName("GET /cart")
	span.SetKind(ptrace.SpanKindServer)
	span.SetStartTimestamp(ts(0))
	span.SetEndTimestamp(ts(1500 * time.Microsecond))
	span.Status().SetCode(ptrace.StatusCodeError)
	span.Status().SetMessage("boom")
	span.TraceState().FromRaw("ot=th:8")
	a := span.Attributes()
	a.PutInt("http.response.status_code", 500)
	a.PutDouble("ratio", 0.5)
	a.PutBool("cached", false)
	a.PutStr("shadowed", "span")
	a.PutStr("exception.type", "SpanOwnType")
	a.PutEmpty("nothing")
	nested := a.PutEmptyMap("nested")
	nested.PutStr("a", "x")
	nested.PutEmptyMap("b").PutInt("c", 1)
	deep := a.PutEmptyMap("d1").PutEmptyMap("d2").PutEmptyMap("d3").PutEmptyMap("d4").PutEmptyMap("d5")
	deep.PutEmptyMap("d6").PutStr("k", "v")
	tags := a.PutEmptySlice("tags")
	tags.AppendEmpty().SetStr("a")
	tags.AppendEmpty().SetInt(2)
	a.PutEmptyBytes("raw").FromRaw([]byte{1, 2, 3})

	ev := span.Events().AppendEmpty()
	ev.SetName("exception")
	ev.SetTimestamp(ts(500 * time.Microsecond))
	ev.Attributes().PutStr("exception.message", "oops")
	ev.Attributes().PutStr("exception.type", "OopsError")
	ev.Attributes().PutBool("exception.escaped", true)
	ev2 := span.Events().AppendEmpty()
	ev2.SetName("exception")
	ev2.SetTimestamp(ts(time.Millisecond))
	ev2.Attributes().PutStr("exception.stacktrace", "second")

	link := span.Links().AppendEmpty()
	link.SetTraceID(pcommon.TraceID{0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	link.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	link.Attributes().PutStr("link.kind", "follows")

	span2 := ss.Spans().AppendEmpty()
	span2.SetTraceID(pcommon.TraceID{0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	span2.SetSpanID(pcommon.SpanID{0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8})
	span2.SetName("charge")
	span2.SetKind(ptrace.SpanKindClient)
	span2.SetStartTimestamp(ts(time.Second))
	span2.SetEndTimestamp(ts(0))
	span2.Status().SetCode(ptrace.StatusCodeOk)
	span2.TraceState().FromRaw("ot=th:c")
	span2.Attributes().PutStr("sampleRate", "10")

	rs2 := td.ResourceSpans().AppendEmpty()
	rs2.Resource().Attributes().PutStr("k8s.pod.name", "p-1")
	ss2 := rs2.ScopeSpans().AppendEmpty()
	ss2.Scope().SetName("mylib")
	ss2.Scope().Attributes().PutStr("scope.attr", "s")
	span3 := ss2.Spans().AppendEmpty()
	span3.SetTraceID(pcommon.TraceID{0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20})
	span3.SetSpanID(pcommon.SpanID{0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8})
	span3.SetName("work")
	span3.SetKind(ptrace.SpanKindInternal)
	span3.SetStartTimestamp(ts(2 * time.Second))
	span3.SetEndTimestamp(ts(2*time.Second + 250*time.Millisecond))
	span3.TraceState().FromRaw("vendor=1,ot=rv:00112233445566;th:c")

	return td
}

func wantTraces() map[string][]herald.Event {
	resource := map[string]any{
		"service.name":        " checkout ",
		"host.name":           "h1",
		"shadowed":            "resource",
		"resource.schema_url": "https://opentelemetry.io/schemas/1.26.0",
	}
	scope := map[string]any{
		"library.name":                      "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
		"library.version":                   "0.72.0",
		"scope.schema_url":                  "https://opentelemetry.io/schemas/1.24.0",
		"telemetry.instrumentation_library": true,
	}
	with := func(fields ...map[string]any) map[string]any {
		out := map[string]any{}
		for _, f := range fields {
			for k, v := range f {
				out[k] = v
			}
		}
		return out
	}
	return map[string][]herald.Event{
		"checkout": {
			{Time: t0, SampleRate: 2, Fields: with(resource, scope, map[string]any{
				"trace.trace_id":            "0102030405060708",
				"trace.span_id":             "a1a2a3a4a5a6a7a8",
				"trace.parent_id":           "b1b2b3b4b5b6b7b8",
				"name":                      "GET /cart",
				"span.kind":                 "server",
				"type":                      "server",
				"duration_ms":               1.5,
				"status_code":               int64(2),
				"error":                     true,
				"status_message":            "boom",
				"trace.trace_state":         "ot=th:8",
				"span.num_links":            int64(1),
				"span.num_events":           int64(2),
				"meta.signal_type":          "trace",
				"http.response.status_code": int64(500),
				"ratio":                     0.5,
				"cached":                    false,
				"shadowed":                  "span",
				"nested.a":                  "x",
				"nested.b.c":                int64(1),
				"d1.d2.d3.d4.d5.d6":         `{"k":"v"}`,
				"tags":                      `["a",2]`,
				"raw":                       `"AQID"`,
				"exception.type":            "SpanOwnType",
				"exception.message":         "oops",
				"exception.escaped":         true,
			})},
			{Time: t0.Add(500 * time.Microsecond), SampleRate: 2, Fields: with(resource, scope, map[string]any{
				"trace.trace_id":                "0102030405060708",
				"trace.parent_id":               "a1a2a3a4a5a6a7a8",
				"name":                          "exception",
				"parent_name":                   "GET /cart",
				"meta.annotation_type":          "span_event",
				"meta.time_since_span_start_ms": 0.5,
				"meta.signal_type":              "trace",
				"exception.message":             "oops",
				"exception.type":                "OopsError",
				"exception.escaped":             true,
			})},
			{Time: t0.Add(time.Millisecond), SampleRate: 2, Fields: with(resource, scope, map[string]any{
				"trace.trace_id":                "0102030405060708",
				"trace.parent_id":               "a1a2a3a4a5a6a7a8",
				"name":                          "exception",
				"parent_name":                   "GET /cart",
				"meta.annotation_type":          "span_event",
				"meta.time_since_span_start_ms": 1.0,
				"meta.signal_type":              "trace",
				"exception.stacktrace":          "second",
			})},
			{Time: t0, SampleRate: 2, Fields: map[string]any{
				"trace.trace_id":       "0102030405060708",
				"trace.parent_id":      "a1a2a3a4a5a6a7a8",
				"trace.link.trace_id":  "ff0102030405060708090a0b0c0d0e0f",
				"trace.link.span_id":   "0102030405060708",
				"parent_name":          "GET /cart",
				"meta.annotation_type": "link",
				"meta.signal_type":     "trace",
				"link.kind":            "follows",
			}},
			{Time: t0.Add(time.Second), SampleRate: 10, Fields: with(resource, scope, map[string]any{
				"trace.trace_id":        "0102030405060708",
				"trace.span_id":         "c1c2c3c4c5c6c7c8",
				"name":                  "charge",
				"span.kind":             "client",
				"type":                  "client",
				"duration_ms":           0.0,
				"meta.invalid_duration": true,
				"status_code":           int64(1),
				"trace.trace_state":     "ot=th:c",
				"span.num_links":        int64(0),
				"span.num_events":       int64(0),
				"meta.signal_type":      "trace",
			})},
		},
		"unknown_service": {
			{Time: t0.Add(2 * time.Second), SampleRate: 4, Fields: map[string]any{
				"k8s.pod.name":      "p-1",
				"library.name":      "mylib",
				"scope.attr":        "s",
				"trace.trace_id":    "10000000000000000000000000000020",
				"trace.span_id":     "d1d2d3d4d5d6d7d8",
				"name":              "work",
				"span.kind":         "internal",
				"type":              "internal",
				"duration_ms":       250.0,
				"status_code":       int64(0),
				"trace.trace_state": "vendor=1,ot=rv:00112233445566;th:c",
				"span.num_links":    int64(0),
				"span.num_events":   int64(0),
				"meta.signal_type":  "trace",
			}},
		},
	}
}

func TestTraces(t *testing.T) {
	t.Parallel()
	bodies := bothEncodings(t, ptraceotlp.NewExportRequestFromTraces(testTraces()))
	for enc, body := range bodies {
		t.Run(enc.String(), func(t *testing.T) {
			t.Parallel()
			got, err := Traces(body, enc)
			require.NoError(t, err)
			require.Equal(t, wantTraces(), got)
			requireValidEvents(t, got)
		})
	}
}

func TestTracesDataset(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"":                     "unknown_service",
		"  ":                   "unknown_service",
		"unknown_service":      "unknown_service",
		"unknown_service:java": "unknown_service",
		" cart\t":              "cart",
		"my unknown_service":   "my unknown_service",
	} {
		m := pcommon.NewMap()
		m.PutStr("service.name", name)
		require.Equal(t, want, traceDataset(m), name)
	}
	m := pcommon.NewMap()
	m.PutInt("service.name", 3)
	require.Equal(t, "unknown_service", traceDataset(m))
	require.Equal(t, "unknown_service", traceDataset(pcommon.NewMap()))
}

func TestTracesSampleRate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		traceState string
		attrs      func(pcommon.Map)
		want       int64
	}{
		{"default", "", func(pcommon.Map) {}, 1},
		{"int attribute", "ot=th:8", func(m pcommon.Map) { m.PutInt("sampleRate", 20) }, 20},
		{"SampleRate attribute", "", func(m pcommon.Map) { m.PutDouble("SampleRate", 3.4) }, 3},
		{"zero attribute falls back to threshold", "ot=th:c", func(m pcommon.Map) { m.PutInt("sampleRate", 0) }, 4},
		{"threshold", "ot=th:fc", func(pcommon.Map) {}, 64},
		{"bad threshold", "ot=th:xyz", func(pcommon.Map) {}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			td := ptrace.NewTraces()
			span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			span.SetTraceID(pcommon.TraceID{1})
			span.SetSpanID(pcommon.SpanID{1})
			span.TraceState().FromRaw(tc.traceState)
			tc.attrs(span.Attributes())
			ev := span.Events().AppendEmpty()
			ev.Attributes().PutInt("sampleRate", 99)
			span.Links().AppendEmpty()
			body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
			require.NoError(t, err)

			got, err := Traces(body, Protobuf)
			require.NoError(t, err)
			require.Len(t, got["unknown_service"], 3)
			for _, e := range got["unknown_service"] {
				require.Equal(t, tc.want, e.SampleRate)
				require.NotContains(t, e.Fields, "sampleRate")
				require.NotContains(t, e.Fields, "SampleRate")
			}
		})
	}
}

// fuzzSeedTraces returns a small request that still has every part the
// mapping reads; small seeds keep the fuzzer's minimization fast.
func fuzzSeedTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "s")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("io.opentelemetry.x")
	span := ss.Spans().AppendEmpty()
	span.SetTraceID(pcommon.TraceID{15: 1})
	span.SetSpanID(pcommon.SpanID{1})
	span.SetEndTimestamp(1e6)
	span.TraceState().FromRaw("ot=th:8")
	span.Attributes().PutEmptyMap("m").PutInt("n", 1)
	span.Attributes().PutEmptySlice("a").AppendEmpty().SetDouble(1.5)
	span.Attributes().PutStr("sampleRate", "3")
	span.Events().AppendEmpty().SetName("exception")
	span.Links().AppendEmpty().SetSpanID(pcommon.SpanID{2})
	return td
}

func FuzzTraces(f *testing.F) {
	for _, body := range bothEncodings(f, ptraceotlp.NewExportRequestFromTraces(fuzzSeedTraces())) {
		f.Add(body)
	}
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00000000000000000000000000000001","spanId":"0000000000000001","startTimeUnixNano":"5","endTimeUnixNano":"1","kind":9,"traceState":"ot=th:1"}]}]}]}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, enc := range []Encoding{Protobuf, JSON} {
			got, err := Traces(body, enc)
			if err != nil {
				require.Equal(t, herald.EMALFORMED, herald.ErrorCode(err))
				continue
			}
			requireValidEvents(t, got)
		}
	})
}
