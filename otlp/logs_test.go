package otlp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"herald"
)

// testLogs returns two resources: api, with a traced string-body record
// and a key/value-body record that has only an observed timestamp; and one
// without service.name, with an integer body, no timestamps and a
// SampleRate attribute.
func testLogs() plog.Logs {
	ld := plog.NewLogs()

	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "api")
	rl.Resource().Attributes().PutStr("deployment.environment.name", "prod")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("io.opentelemetry.logback")
	sl.Scope().SetVersion("2.0")

	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(ts(0))
	lr.SetObservedTimestamp(ts(time.Second))
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.SetSeverityText("INFO")
	lr.Body().SetStr("hello world")
	lr.SetTraceID(pcommon.TraceID{0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	lr.SetSpanID(pcommon.SpanID{0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8})
	lr.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
	lr.Attributes().PutStr("http.route", "/cart")

	lr2 := sl.LogRecords().AppendEmpty()
	lr2.SetObservedTimestamp(ts(3 * time.Second))
	lr2.SetSeverityNumber(plog.SeverityNumberError3)
	lr2.SetEventName("user.login")
	body := lr2.Body().SetEmptyMap()
	body.PutStr("msg", "hi")
	body.PutEmptyMap("user").PutInt("id", 7)
	body.PutEmptySlice("roles").AppendEmpty().SetStr("admin")

	rl2 := ld.ResourceLogs().AppendEmpty()
	rl2.Resource().Attributes().PutStr("host.name", "h2")
	lr3 := rl2.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr3.SetSeverityNumber(plog.SeverityNumberFatal4)
	lr3.Body().SetInt(42)
	lr3.Attributes().PutDouble("SampleRate", 3.6)
	lr4 := rl2.ScopeLogs().At(0).LogRecords().AppendEmpty()
	lr4.SetTimestamp(ts(5 * time.Second))
	lr4.SetSeverityNumber(plog.SeverityNumber(30))
	lr4.SetSpanID(pcommon.SpanID{1})

	return ld
}

func wantLogs(now time.Time, dataset string) map[string][]herald.Event {
	scope := map[string]any{
		"service.name":                      "api",
		"deployment.environment.name":       "prod",
		"library.name":                      "io.opentelemetry.logback",
		"library.version":                   "2.0",
		"telemetry.instrumentation_library": true,
	}
	with := func(base, f map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range f {
			out[k] = v
		}
		return out
	}
	return map[string][]herald.Event{
		"api": {
			{Time: t0, SampleRate: 1, Fields: with(scope, map[string]any{
				"severity":             "info",
				"severity_code":        int64(9),
				"severity_text":        "INFO",
				"flags":                int64(1),
				"body":                 "hello world",
				"trace.trace_id":       "0102030405060708",
				"trace.parent_id":      "a1a2a3a4a5a6a7a8",
				"meta.annotation_type": "span_event",
				"meta.signal_type":     "log",
				"http.route":           "/cart",
			})},
			{Time: t0.Add(3 * time.Second), SampleRate: 1, Fields: with(scope, map[string]any{
				"severity":         "error",
				"severity_code":    int64(19),
				"flags":            int64(0),
				"event.name":       "user.login",
				"body.msg":         "hi",
				"body.user.id":     int64(7),
				"body.roles":       `["admin"]`,
				"meta.signal_type": "log",
			})},
		},
		dataset: {
			{Time: now, SampleRate: 4, Fields: map[string]any{
				"host.name":        "h2",
				"severity":         "fatal",
				"severity_code":    int64(24),
				"flags":            int64(0),
				"body":             "42",
				"meta.signal_type": "log",
			}},
			{Time: t0.Add(5 * time.Second), SampleRate: 1, Fields: map[string]any{
				"host.name":        "h2",
				"severity":         "unspecified",
				"severity_code":    int64(30),
				"flags":            int64(0),
				"trace.parent_id":  "0100000000000000",
				"meta.signal_type": "log",
			}},
		},
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	bodies := bothEncodings(t, plogotlp.NewExportRequestFromLogs(testLogs()))
	for enc, body := range bodies {
		for header, dataset := range map[string]string{"": "unknown_log_source", "fromheader": "fromheader"} {
			t.Run(enc.String()+"/"+dataset, func(t *testing.T) {
				t.Parallel()
				got, err := Logs(body, enc, header, now)
				require.NoError(t, err)
				require.Equal(t, wantLogs(now, dataset), got)
				requireValidEvents(t, got)
			})
		}
	}
}

func TestSeverity(t *testing.T) {
	t.Parallel()
	for n, want := range map[plog.SeverityNumber]string{
		-1: "unspecified", 0: "unspecified",
		1: "trace", 4: "trace", 5: "debug", 8: "debug", 9: "info", 12: "info",
		13: "warn", 16: "warn", 17: "error", 20: "error", 21: "fatal", 24: "fatal",
		25: "unspecified",
	} {
		require.Equal(t, want, severity(n), int(n))
	}
}

func TestLogDataset(t *testing.T) {
	t.Parallel()
	m := pcommon.NewMap()
	require.Equal(t, "hdr", logDataset(m, "hdr"))
	require.Equal(t, "unknown_log_source", logDataset(m, ""))
	m.PutStr("service.name", "  ")
	require.Equal(t, "hdr", logDataset(m, "hdr"))
	m.PutStr("service.name", " svc ")
	require.Equal(t, "svc", logDataset(m, "hdr"))
}

// fuzzSeedLogs returns a small request that still has every part the
// mapping reads; small seeds keep the fuzzer's minimization fast.
func fuzzSeedLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "s")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetSeverityNumber(plog.SeverityNumberWarn)
	lr.SetTraceID(pcommon.TraceID{15: 1})
	lr.Body().SetEmptyMap().PutEmptyMap("m").PutStr("k", "v")
	lr.Attributes().PutDouble("SampleRate", 2.5)
	return ld
}

func FuzzLogs(f *testing.F) {
	for _, body := range bothEncodings(f, plogotlp.NewExportRequestFromLogs(fuzzSeedLogs())) {
		f.Add(body)
	}
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":99,"body":{"arrayValue":{"values":[{"doubleValue":1.5}]}},"attributes":[{"key":"sampleRate","value":{"stringValue":"-4"}}]}]}]}]}`))
	f.Add([]byte{})
	now := time.Unix(1_700_000_000, 0).UTC()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, enc := range []Encoding{Protobuf, JSON} {
			got, err := Logs(body, enc, "hdr", now)
			if err != nil {
				require.Equal(t, herald.EMALFORMED, herald.ErrorCode(err))
				continue
			}
			requireValidEvents(t, got)
		}
	})
}
