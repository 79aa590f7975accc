package otlp

import (
	"maps"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"herald"
)

// UnknownLogSource is the dataset of log records whose resource has no
// service.name when the request names no dataset either.
const UnknownLogSource = "unknown_log_source"

// Logs decodes an ExportLogsServiceRequest (already decompressed) in enc
// and maps each log record to an event, grouped by dataset name: the
// trimmed resource attribute service.name, else headerDataset (the
// x-honeycomb-dataset header, "" if absent), else UnknownLogSource.
//
// A record's event has, later fields replacing earlier ones: severity
// (trace, debug, info, warn, error or fatal from the severity number,
// else unspecified), severity_code, severity_text (if set), flags,
// event.name (if set), the body (a string as body, a key/value list
// flattened as body.*, anything else as its JSON text under body),
// trace.trace_id with meta.annotation_type "span_event" (if the record
// has a trace ID), trace.parent_id (if it has a span ID),
// meta.signal_type "log"; then the resource fields, the scope fields and
// the record's attributes, as for spans (see Traces). Its time is the
// record's timestamp, else its observed timestamp, else now, the time the
// request was received. Its sample rate is the sampleRate or SampleRate
// attribute (removed from the fields) if that is a positive integer, else
// 1.
//
// Errors: a body that cannot be parsed gets an EMALFORMED *herald.Error
// with the message "failed to parse OTLP request body".
func Logs(body []byte, enc Encoding, headerDataset string, now time.Time) (map[string][]herald.Event, error) {
	req := plogotlp.NewExportRequest()
	if err := unmarshal(req, body, enc); err != nil {
		return nil, err
	}
	out := map[string][]herald.Event{}
	rls := req.Logs().ResourceLogs()
	for i := range rls.Len() {
		rl := rls.At(i)
		dataset := logDataset(rl.Resource().Attributes(), headerDataset)
		res := resourceFields(rl.Resource(), rl.SchemaUrl())
		sls := rl.ScopeLogs()
		for j := range sls.Len() {
			sl := sls.At(j)
			scope := scopeFields(sl.Scope(), sl.SchemaUrl())
			records := sl.LogRecords()
			for k := range records.Len() {
				out[dataset] = append(out[dataset], logEvent(records.At(k), res, scope, now))
			}
		}
	}
	return out, nil
}

// logDataset returns the dataset of a resource's log records.
func logDataset(res pcommon.Map, headerDataset string) string {
	if v, ok := res.Get("service.name"); ok && v.Type() == pcommon.ValueTypeStr {
		if name := strings.TrimSpace(v.Str()); name != "" {
			return name
		}
	}
	if headerDataset != "" {
		return headerDataset
	}
	return UnknownLogSource
}

// severity returns the name of the range a severity number is in.
func severity(n plog.SeverityNumber) string {
	switch {
	case n >= 1 && n <= 4:
		return "trace"
	case n >= 5 && n <= 8:
		return "debug"
	case n >= 9 && n <= 12:
		return "info"
	case n >= 13 && n <= 16:
		return "warn"
	case n >= 17 && n <= 20:
		return "error"
	case n >= 21 && n <= 24:
		return "fatal"
	}
	return "unspecified"
}

// logEvent returns the event of one log record.
func logEvent(lr plog.LogRecord, res, scope map[string]any, now time.Time) herald.Event {
	f := map[string]any{
		"severity":         severity(lr.SeverityNumber()),
		"severity_code":    int64(lr.SeverityNumber()),
		"flags":            int64(lr.Flags()),
		"meta.signal_type": "log",
	}
	if s := lr.SeverityText(); s != "" {
		f["severity_text"] = s
	}
	if s := lr.EventName(); s != "" {
		f["event.name"] = s
	}
	switch body := lr.Body(); body.Type() {
	case pcommon.ValueTypeEmpty:
	case pcommon.ValueTypeStr, pcommon.ValueTypeMap:
		putValue(f, "body", body, 0)
	default:
		f["body"] = jsonText(body)
	}
	if id := lr.TraceID(); !id.IsEmpty() {
		f["trace.trace_id"] = traceIDHex(id)
		f["meta.annotation_type"] = "span_event"
	}
	if id := lr.SpanID(); !id.IsEmpty() {
		f["trace.parent_id"] = spanIDHex(id)
	}
	maps.Copy(f, res)
	maps.Copy(f, scope)
	putAttrs(f, lr.Attributes())

	rate, ok := takeSampleRate(f)
	if !ok {
		rate = 1
	}

	t := now
	if ts := lr.Timestamp(); ts != 0 {
		t = ts.AsTime()
	} else if ts := lr.ObservedTimestamp(); ts != 0 {
		t = ts.AsTime()
	}
	return herald.Event{Time: t, SampleRate: rate, Fields: f}
}
