// Package otlp turns OTLP/HTTP export request bodies into herald events,
// following Honeycomb's OTLP ingest: each resource's service.name picks
// the dataset, and each span, span event, link and log record becomes one
// event whose fields use Honeycomb's names (trace.trace_id, duration_ms,
// meta.signal_type and so on).
//
// The functions here are pure: they read a decompressed body and return
// events. Headers, decompression, size limits and status codes belong to
// the HTTP handler that calls them.
package otlp

import (
	"encoding/json"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"herald"
)

// Encoding of an OTLP/HTTP body, from its Content-Type.
type Encoding int

// The encodings OTLP/HTTP allows.
const (
	// Protobuf is the binary protobuf encoding (application/x-protobuf).
	Protobuf Encoding = iota + 1
	// JSON is OTLP's JSON encoding of the protobuf messages
	// (application/json).
	JSON
)

// String returns the encoding's canonical content type, or "" for an
// unknown encoding.
func (e Encoding) String() string {
	switch e {
	case Protobuf:
		return "application/x-protobuf"
	case JSON:
		return "application/json"
	}
	return ""
}

// ParseContentType maps a Content-Type header to an Encoding:
// application/protobuf and application/x-protobuf are Protobuf,
// application/json is JSON. Parameters (such as charset) and case are
// ignored. Anything else returns 0, false; the handler answers 415.
func ParseContentType(ct string) (Encoding, bool) {
	mt, _, _ := strings.Cut(ct, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "application/protobuf", "application/x-protobuf":
		return Protobuf, true
	case "application/json":
		return JSON, true
	}
	return 0, false
}

// MalformedMessage is the message of the EMALFORMED error returned for a
// body that cannot be parsed, as Honeycomb words it.
const MalformedMessage = "failed to parse OTLP request body"

// request is what ptraceotlp.ExportRequest and plogotlp.ExportRequest have
// in common.
type request interface {
	UnmarshalProto([]byte) error
	UnmarshalJSON([]byte) error
}

// unmarshal decodes body into req. It returns an EMALFORMED *herald.Error
// if the body cannot be parsed, and an EINTERNAL one for an unknown
// encoding (a bug in the caller).
func unmarshal(req request, body []byte, enc Encoding) error {
	var err error
	switch enc {
	case Protobuf:
		err = req.UnmarshalProto(body)
	case JSON:
		err = req.UnmarshalJSON(body)
	default:
		return herald.Errorf(herald.EINTERNAL, "otlp: unknown encoding %d", int(enc))
	}
	if err != nil {
		return &herald.Error{Code: herald.EMALFORMED, Message: MalformedMessage, Err: err}
	}
	return nil
}

// TracesResponse returns an ExportTraceServiceResponse encoded in enc
// (JSON for an unknown encoding). With rejected > 0 it carries OTLP's
// partial success: how many spans were refused, and why.
func TracesResponse(enc Encoding, rejected int64, message string) []byte {
	resp := ptraceotlp.NewExportResponse()
	if rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(rejected)
		resp.PartialSuccess().SetErrorMessage(message)
	}
	var b []byte
	if enc == Protobuf {
		b, _ = resp.MarshalProto()
	} else {
		b, _ = resp.MarshalJSON()
	}
	return nonNil(b)
}

// LogsResponse is TracesResponse for logs.
func LogsResponse(enc Encoding, rejected int64, message string) []byte {
	resp := plogotlp.NewExportResponse()
	if rejected > 0 {
		resp.PartialSuccess().SetRejectedLogRecords(rejected)
		resp.PartialSuccess().SetErrorMessage(message)
	}
	var b []byte
	if enc == Protobuf {
		b, _ = resp.MarshalProto()
	} else {
		b, _ = resp.MarshalJSON()
	}
	return nonNil(b)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Status returns a google.rpc.Status with code (a gRPC code, such as 3 for
// INVALID_ARGUMENT) and message, encoded in enc: protobuf, or JSON such as
// {"code":3,"message":"..."} (also for an unknown encoding). OTLP/HTTP
// servers answer errors with it.
func Status(enc Encoding, code int32, message string) []byte {
	if enc == Protobuf {
		var b []byte
		if code != 0 {
			b = protowire.AppendTag(b, 1, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(int64(code)))
		}
		if message != "" {
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendString(b, message)
		}
		return nonNil(b)
	}
	b, _ := json.Marshal(struct {
		Code    int32  `json:"code"`
		Message string `json:"message"`
	}{code, message})
	return b
}
