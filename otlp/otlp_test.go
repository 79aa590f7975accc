package otlp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"herald"
)

func TestParseContentType(t *testing.T) {
	t.Parallel()
	for ct, want := range map[string]Encoding{
		"application/protobuf":             Protobuf,
		"application/x-protobuf":           Protobuf,
		"Application/X-Protobuf":           Protobuf,
		"application/json":                 JSON,
		"application/json; charset=utf-8":  JSON,
		" application/json ;charset=UTF-8": JSON,
		"":                                 0,
		"text/plain":                       0,
		"application/jsonx":                0,
		"application/grpc":                 0,
	} {
		got, ok := ParseContentType(ct)
		require.Equal(t, want, got, ct)
		require.Equal(t, want != 0, ok, ct)
	}
}

func TestBadBody(t *testing.T) {
	t.Parallel()
	for _, enc := range []Encoding{Protobuf, JSON} {
		body := []byte("{not otlp\xff\x00")
		_, err := Traces(body, enc)
		require.Equal(t, herald.EMALFORMED, herald.ErrorCode(err))
		require.ErrorContains(t, err, MalformedMessage)
		_, err = Logs(body, enc, "", time.Now())
		require.Equal(t, herald.EMALFORMED, herald.ErrorCode(err))
	}
	_, err := Traces(nil, 0)
	require.Equal(t, herald.EINTERNAL, herald.ErrorCode(err))
}

func TestEmptyBody(t *testing.T) {
	t.Parallel()
	got, err := Traces(nil, Protobuf)
	require.NoError(t, err)
	require.Empty(t, got)
	got, err = Logs([]byte("{}"), JSON, "d", time.Now())
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestResponses(t *testing.T) {
	t.Parallel()

	tr := ptraceotlp.NewExportResponse()
	require.NoError(t, tr.UnmarshalJSON(TracesResponse(JSON, 0, "")))
	require.NoError(t, tr.UnmarshalProto(TracesResponse(Protobuf, 0, "")))
	require.Zero(t, tr.PartialSuccess().RejectedSpans())
	require.NoError(t, tr.UnmarshalProto(TracesResponse(Protobuf, 2, "too many columns")))
	require.EqualValues(t, 2, tr.PartialSuccess().RejectedSpans())
	require.Equal(t, "too many columns", tr.PartialSuccess().ErrorMessage())

	lr := plogotlp.NewExportResponse()
	require.NoError(t, lr.UnmarshalJSON(LogsResponse(JSON, 0, "")))
	require.NoError(t, lr.UnmarshalProto(LogsResponse(Protobuf, 0, "")))
	require.NotNil(t, LogsResponse(Protobuf, 0, ""))
	require.NoError(t, lr.UnmarshalJSON(LogsResponse(JSON, 1, "bad")))
	require.EqualValues(t, 1, lr.PartialSuccess().RejectedLogRecords())
}

func TestStatus(t *testing.T) {
	t.Parallel()
	require.JSONEq(t, `{"code":3,"message":"failed to parse OTLP request body"}`,
		string(Status(JSON, 3, MalformedMessage)))

	for _, code := range []int32{0, 3, 16, -1} {
		var s status.Status
		require.NoError(t, proto.Unmarshal(Status(Protobuf, code, "nope é"), &s))
		require.Equal(t, code, s.GetCode())
		require.Equal(t, "nope é", s.GetMessage())
	}
}

func TestThresholdSampleRate(t *testing.T) {
	t.Parallel()
	for ts, want := range map[string]int64{
		"ot=th:0":               1,
		"ot=th:8":               2,
		"ot=th:c":               4,
		"ot=rv:abcdef;th:fc":    64,
		"vendor=x, ot=th:c":     4,
		"th=8":                  2,
		"th=8,ot=th:c":          4,
		"ot=th:ffffffffffffff":  1 << 56,
		"ot=th:00000000000001":  1,
		"":                      0,
		"ot=th:":                0,
		"ot=th:zz":              0,
		"ot=th:-1":              0,
		"ot=th:123456789abcdef": 0, // 15 digits
		"ot=rv:00000000000000":  0,
		"other=th:8":            0,
	} {
		got, ok := thresholdSampleRate(ts)
		require.Equal(t, want, got, ts)
		require.Equal(t, want != 0, ok, ts)
	}
}

func TestTakeSampleRate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fields map[string]any
		want   int64
	}{
		{map[string]any{"sampleRate": int64(5)}, 5},
		{map[string]any{"SampleRate": "20"}, 20},
		{map[string]any{"sampleRate": " 7.6 "}, 8},
		{map[string]any{"sampleRate": 2.5}, 3},
		{map[string]any{"sampleRate": 0.4}, 0},
		{map[string]any{"sampleRate": int64(0), "SampleRate": int64(9)}, 9},
		{map[string]any{"sampleRate": int64(3), "SampleRate": int64(9)}, 3},
		{map[string]any{"sampleRate": int64(-3)}, 0},
		{map[string]any{"sampleRate": "many"}, 0},
		{map[string]any{"sampleRate": true}, 0},
		{map[string]any{"sampleRate": 1e300}, 0},
		{map[string]any{"other": int64(4)}, 0},
	} {
		got, ok := takeSampleRate(tc.fields)
		require.Equal(t, tc.want, got, tc.fields)
		require.Equal(t, tc.want != 0, ok, tc.fields)
		require.NotContains(t, tc.fields, "sampleRate")
		require.NotContains(t, tc.fields, "SampleRate")
	}
}

// requireValidEvents checks what every event must satisfy.
func requireValidEvents(t testing.TB, got map[string][]herald.Event) {
	t.Helper()
	for dataset, events := range got {
		require.NotEmpty(t, dataset)
		for _, e := range events {
			require.GreaterOrEqual(t, e.SampleRate, int64(1))
			for k, v := range e.Fields {
				require.NotEmpty(t, herald.ValueType(v), "field %q has type %T", k, v)
			}
		}
	}
}

// bothEncodings returns a request body in each encoding.
func bothEncodings(t testing.TB, m interface {
	MarshalProto() ([]byte, error)
	MarshalJSON() ([]byte, error)
}) map[Encoding][]byte {
	t.Helper()
	pb, err := m.MarshalProto()
	require.NoError(t, err)
	js, err := m.MarshalJSON()
	require.NoError(t, err)
	return map[Encoding][]byte{Protobuf: pb, JSON: js}
}
