package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"herald"
)

var testNow = time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)

func requireCode(t *testing.T, code string, err error) {
	t.Helper()
	require.Error(t, err)
	var e *herald.Error
	require.True(t, errors.As(err, &e), "not an *herald.Error: %v", err)
	require.Equal(t, code, e.Code, "%v", err)
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	ts := time.Date(2025, 3, 4, 10, 15, 30, 123456789, time.UTC)
	tests := []struct {
		name string
		in   any
		want time.Time
	}{
		{"rfc3339nano", "2025-03-04T10:15:30.123456789Z", ts},
		{"rfc3339 with offset", "2025-03-04T11:15:30+01:00", time.Date(2025, 3, 4, 10, 15, 30, 0, time.UTC)},
		{"seconds", "1700000000", time.Unix(1700000000, 0).UTC()},
		{"milliseconds", "1700000000123", time.Unix(1700000000, 123_000_000).UTC()},
		{"microseconds", "1700000000123456", time.Unix(1700000000, 123_456_000).UTC()},
		{"nanoseconds", "1700000000123456789", time.Unix(1700000000, 123_456_789).UTC()},
		{"float string", "1700000000.25", time.Unix(1700000000, 250_000_000).UTC()},
		{"json integer", json.Number("1700000000"), time.Unix(1700000000, 0).UTC()},
		{"json float", json.Number("1700000000.5"), time.Unix(1700000000, 500_000_000).UTC()},
		{"msgpack integer", int64(1700000000), time.Unix(1700000000, 0).UTC()},
		{"msgpack time", ts.In(time.FixedZone("x", 3600)), ts},
		{"garbage", "yesterday", testNow},
		{"short digits", "12345", testNow},
		{"empty", "", testNow},
		{"nil", nil, testNow},
		{"bool", true, testNow},
		{"NaN", "NaN", testNow},
		{"out of range", json.Number("1e300"), testNow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ParseTime(tt.in, testNow)
			require.True(t, tt.want.Equal(got), "got %v, want %v", got, tt.want)
			require.Equal(t, time.UTC, got.Location())
		})
	}
}

func TestBatchJSONReferenceExample(t *testing.T) {
	t.Parallel()
	body := `[
  {"time": "2025-03-04T10:15:30.123456789Z", "samplerate": 4,
   "data": {"service.name": "checkout", "duration_ms": 41.7, "http.status_code": 200}},
  {"data": {"service.name": "checkout", "error": "timeout"}}
]`
	events, errs, err := Batch([]byte(body), "application/json", testNow)
	require.NoError(t, err)
	require.Equal(t, []error{nil, nil}, errs)
	require.Equal(t, []herald.Event{
		{
			Time:       time.Date(2025, 3, 4, 10, 15, 30, 123456789, time.UTC),
			SampleRate: 4,
			Fields:     map[string]any{"service.name": "checkout", "duration_ms": 41.7, "http.status_code": int64(200)},
		},
		{
			Time:       testNow,
			SampleRate: 1,
			Fields:     map[string]any{"service.name": "checkout", "error": "timeout"},
		},
	}, events)
}

func TestBatchJSONValues(t *testing.T) {
	t.Parallel()
	body := `[{"data": {"i": 9007199254740993, "neg": -3, "f": 41.7, "e": 1e3, "big": 18446744073709551616,
		"b": true, "nb": false, "s": "a\"b\u00e9\n", "nested": {"a": [1, 2, {"b": null}], "c": "d"},
		"arr": [ 1 , "x" ], "gone": null, "empty": {}, "utf": "h\u00e9llo"}}]`
	events, errs, err := Batch([]byte(body), "", testNow)
	require.NoError(t, err)
	require.NoError(t, errs[0])
	require.Equal(t, map[string]any{
		"i":      int64(9007199254740993),
		"neg":    int64(-3),
		"f":      41.7,
		"e":      1000.0,
		"big":    18446744073709551616.0,
		"b":      true,
		"nb":     false,
		"s":      "a\"bé\n",
		"nested": `{"a":[1,2,{"b":null}],"c":"d"}`,
		"arr":    `[1,"x"]`,
		"empty":  `{}`,
		"utf":    "héllo",
	}, events[0].Fields)
}

func TestBatchJSONPositionalErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", herald.MaxStringBytes+1)
	var many strings.Builder
	many.WriteString(`{`)
	for i := range herald.MaxEventFields + 1 {
		if i > 0 {
			many.WriteString(",")
		}
		many.WriteString(`"f` + strconv.Itoa(i) + `":1`)
	}
	many.WriteString(`}`)
	huge := `{"a":"` + strings.Repeat("y", 60_000) + `"`
	for i := range 20 {
		huge += `,"b` + strconv.Itoa(i) + `":"` + strings.Repeat("y", 60_000) + `"`
	}
	huge += `}`

	elems := []struct {
		json string
		code string // "" for a good event
	}{
		{`{"data": {"ok": 1}}`, ""},
		{`42`, herald.EINVALID},
		{`{"time": "2025-01-01T00:00:00Z"}`, herald.EINVALID},
		{`{"data": [1, 2]}`, herald.EINVALID},
		{`{"data": null}`, herald.EINVALID},
		{`{"data": {"ok": 2}, "samplerate": -1}`, herald.EINVALID},
		{`{"data": {"ok": 2}, "samplerate": 1.5}`, herald.EINVALID},
		{`{"data": {"ok": 2}, "samplerate": "4"}`, herald.EINVALID},
		{`{"data": {"ok": 3}, "samplerate": 0}`, ""},
		{`{"data": {"s": "` + long + `"}}`, herald.EINVALID},
		{`{"data": {"__reserved": 1}}`, herald.EINVALID},
		{`{"data": {"": 1}}`, herald.EINVALID},
		{`{"data": ` + many.String() + `}`, herald.EINVALID},
		{`{"data": ` + huge + `}`, herald.ETOOLARGE},
		{`{"data": {"n": 1e400}}`, herald.EINVALID},
		{`{"data": {"ok": 4}, "time": 1700000000, "samplerate": 10}`, ""},
	}
	parts := make([]string, len(elems))
	for i, e := range elems {
		parts[i] = e.json
	}
	events, errs, err := Batch([]byte("["+strings.Join(parts, ",")+"]"), "application/json; charset=utf-8", testNow)
	require.NoError(t, err)
	require.Len(t, events, len(elems))
	require.Len(t, errs, len(elems))
	for i, e := range elems {
		if e.code == "" {
			require.NoError(t, errs[i], "element %d", i)
			require.GreaterOrEqual(t, events[i].SampleRate, int64(1))
			continue
		}
		requireCode(t, e.code, errs[i])
	}
	require.Equal(t, int64(1), events[8].SampleRate)
	require.Equal(t, int64(10), events[15].SampleRate)
	require.Equal(t, time.Unix(1700000000, 0).UTC(), events[15].Time)

	var he *herald.Error
	require.ErrorAs(t, errs[9], &he)
	require.Equal(t, "s", he.Fields[0].Field)
	require.Contains(t, errs[10].Error(), "field names starting with __ are reserved")
	require.ErrorAs(t, errs[12], &he)
	require.Equal(t, "Event has too many columns.", he.Message)
	require.ErrorAs(t, errs[13], &he)
	require.Equal(t, "Event is too large.", he.Message)
}

func TestBatchWholeRequestErrors(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"application/json", "application/msgpack"} {
		for _, body := range []string{"", "  \n"} {
			if ct == "application/msgpack" && body != "" {
				continue
			}
			_, _, err := Batch([]byte(body), ct, testNow)
			requireCode(t, herald.EMALFORMED, err)
			require.Contains(t, err.Error(), "Request body should not be empty.")
		}
	}
	for _, body := range []string{`{"data": {}}`, `[{"data": {}}`, `[1,]`, `null`, `"x"`, `[{"data": {}}] x`, "\xff"} {
		events, errs, err := Batch([]byte(body), "application/json", testNow)
		requireCode(t, herald.EMALFORMED, err)
		require.Contains(t, err.Error(), "Request body is malformed and cannot be read.")
		require.Nil(t, events)
		require.Nil(t, errs)
	}
	for _, body := range [][]byte{{0xc1}, {0x80}, {0x92, 0x80}, {0x91, 0x80, 0x80}, []byte(`[{}]`)} {
		_, _, err := Batch(body, "application/x-msgpack", testNow)
		requireCode(t, herald.EMALFORMED, err)
	}
	events, errs, err := Batch([]byte(`[]`), "", testNow)
	require.NoError(t, err)
	require.Empty(t, events)
	require.Empty(t, errs)
}

func TestBatchMsgpack(t *testing.T) {
	t.Parallel()
	ts := time.Date(2025, 3, 4, 10, 15, 30, 123456789, time.UTC)
	body, err := msgpack.Marshal([]map[string]any{
		{"time": ts, "samplerate": 4, "data": map[string]any{
			"service.name": "checkout", "duration_ms": 41.7, "http.status_code": 200,
			"u8": uint8(7), "u64": uint64(1 << 63), "f32": float32(0.5), "ok": true,
			"bin": []byte("raw"), "when": ts, "nested": map[string]any{"a": []any{1, "x"}}, "gone": nil,
		}},
		{"data": map[string]any{"service.name": "checkout", "error": "timeout"}},
	})
	require.NoError(t, err)
	events, errs, err := Batch(body, "application/msgpack", testNow)
	require.NoError(t, err)
	require.Equal(t, []error{nil, nil}, errs)
	require.Equal(t, []herald.Event{
		{
			Time:       ts,
			SampleRate: 4,
			Fields: map[string]any{
				"service.name": "checkout", "duration_ms": 41.7, "http.status_code": int64(200),
				"u8": int64(7), "u64": float64(1 << 63), "f32": 0.5, "ok": true,
				"bin": "raw", "when": "2025-03-04T10:15:30.123456789Z", "nested": `{"a":[1,"x"]}`,
			},
		},
		{Time: testNow, SampleRate: 1, Fields: map[string]any{"service.name": "checkout", "error": "timeout"}},
	}, events)
	require.Equal(t, time.UTC, events[0].Time.Location())
}

func TestBatchMsgpackPositionalErrors(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	require.NoError(t, enc.EncodeArrayLen(8))
	require.NoError(t, enc.Encode(map[string]any{"data": map[string]any{"ok": 1}}))
	require.NoError(t, enc.Encode("not an object"))
	require.NoError(t, enc.Encode(map[string]any{"samplerate": 2}))
	require.NoError(t, enc.Encode(map[string]any{"data": map[string]any{"nan": 0.0 / zero()}}))
	require.NoError(t, enc.Encode(map[string]any{"data": map[int]any{1: "x"}}))
	require.NoError(t, enc.Encode(map[string]any{"data": map[string]any{"ok": 1}, "samplerate": -2}))
	require.NoError(t, enc.Encode(map[string]any{"data": map[string]any{"__x": 1}}))
	require.NoError(t, enc.Encode(map[string]any{"data": map[string]any{"ok": 2}, "samplerate": 0, "time": "1700000000"}))
	events, errs, err := Batch(buf.Bytes(), "application/msgpack", testNow)
	require.NoError(t, err)
	require.Len(t, events, 8)
	require.NoError(t, errs[0])
	for _, i := range []int{1, 2, 3, 4, 5, 6} {
		requireCode(t, herald.EINVALID, errs[i])
	}
	require.NoError(t, errs[7])
	require.Equal(t, herald.Event{Time: time.Unix(1700000000, 0).UTC(), SampleRate: 1, Fields: map[string]any{"ok": int64(2)}}, events[7])
}

func zero() float64 { return 0 }

func TestBatchMsgpackTooLarge(t *testing.T) {
	t.Parallel()
	data := map[string]any{}
	for i := range 20 {
		data["f"+strconv.Itoa(i)] = strings.Repeat("<", 10_000) // 6 bytes each as JSON
	}
	body, err := msgpack.Marshal([]any{map[string]any{"data": data}})
	require.NoError(t, err)
	_, errs, err := Batch(body, "application/msgpack", testNow)
	require.NoError(t, err)
	requireCode(t, herald.ETOOLARGE, errs[0])
}

func TestSingle(t *testing.T) {
	t.Parallel()
	ev, err := Single([]byte(` {"a": 1, "b": "x", "c": null} `), "", "1700000000.5", "20", testNow)
	require.NoError(t, err)
	require.Equal(t, herald.Event{
		Time:       time.Unix(1700000000, 500_000_000).UTC(),
		SampleRate: 20,
		Fields:     map[string]any{"a": int64(1), "b": "x"},
	}, ev)

	ev, err = Single([]byte(`{"a": 1}`), "application/json", "", "", testNow)
	require.NoError(t, err)
	require.Equal(t, testNow, ev.Time)
	require.Equal(t, int64(1), ev.SampleRate)

	ev, err = Single([]byte(`{"a": 1}`), "application/json", "2025-03-04T10:15:30Z", "0", testNow)
	require.NoError(t, err)
	require.Equal(t, time.Date(2025, 3, 4, 10, 15, 30, 0, time.UTC), ev.Time)
	require.Equal(t, int64(1), ev.SampleRate)

	mp, err := msgpack.Marshal(map[string]any{"a": 1, "t": true})
	require.NoError(t, err)
	ev, err = Single(mp, "application/msgpack; charset=utf-8", "", "3", testNow)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"a": int64(1), "t": true}, ev.Fields)
	require.Equal(t, int64(3), ev.SampleRate)

	for _, rate := range []string{"-1", "1.5", "x", " 2"} {
		_, err = Single([]byte(`{"a": 1}`), "", "", rate, testNow)
		requireCode(t, herald.EINVALID, err)
	}
	_, err = Single(nil, "", "", "", testNow)
	requireCode(t, herald.EMALFORMED, err)
	require.Contains(t, err.Error(), "Request body should not be empty.")
	for _, body := range []string{`[{"a": 1}]`, `{"a": `, `"x"`} {
		_, err = Single([]byte(body), "", "", "", testNow)
		requireCode(t, herald.EMALFORMED, err)
		require.Contains(t, err.Error(), "Request body is malformed and cannot be read.")
	}
	_, err = Single([]byte{0x91, 0x01}, "application/msgpack", "", "", testNow)
	requireCode(t, herald.EMALFORMED, err)
	_, err = Single([]byte(`{"__a": 1}`), "", "", "", testNow)
	requireCode(t, herald.EINVALID, err)
}

func TestDecompress(t *testing.T) {
	t.Parallel()
	plain := []byte(`[{"data": {"a": 1}}]`)

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err := zw.Write(plain)
	require.NoError(t, err)
	require.NoError(t, zw.Close())

	zenc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	zs := zenc.EncodeAll(plain, nil)
	bomb := zenc.EncodeAll(make([]byte, 10<<20), nil)
	require.NoError(t, zenc.Close())
	require.Less(t, len(bomb), 10_000)

	tests := []struct {
		name     string
		body     []byte
		encoding string
		limit    int64
		code     string
	}{
		{"identity", plain, "identity", 1 << 20, ""},
		{"none", plain, "", 1 << 20, ""},
		{"gzip", gz.Bytes(), "gzip", 1 << 20, ""},
		{"zstd", zs, "ZSTD", 1 << 20, ""},
		{"exact limit", plain, "", int64(len(plain)), ""},
		{"identity over limit", plain, "", int64(len(plain)) - 1, herald.ETOOLARGE},
		{"zstd bomb", bomb, "zstd", 1 << 20, herald.ETOOLARGE},
		{"unknown", plain, "br", 1 << 20, herald.EMALFORMED},
		{"corrupt gzip", gz.Bytes()[:len(gz.Bytes())-6], "gzip", 1 << 20, herald.EMALFORMED},
		{"not gzip", plain, "gzip", 1 << 20, herald.EMALFORMED},
		{"corrupt zstd", append([]byte{}, zs[:len(zs)-3]...), "zstd", 1 << 20, herald.EMALFORMED},
		{"not zstd", plain, "zstd", 1 << 20, herald.EMALFORMED},
	}
	shared, err := NewDecompressor()
	require.NoError(t, err)
	t.Cleanup(shared.Close)
	// Every case, through a fresh decoder and through the shared one, the
	// shared one used by the cases at once.
	for _, tt := range tests {
		for _, d := range []*Decompressor{{}, shared} {
			name := tt.name
			if d == shared {
				name += "/shared"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				got, err := d.Decompress(bytes.NewReader(tt.body), tt.encoding, tt.limit)
				checkDecompressed(t, tt.name, tt.code, plain, got, err)
			})
		}
	}
}

func checkDecompressed(t *testing.T, name, code string, plain, got []byte, err error) {
	t.Helper()
	if code == "" {
		require.NoError(t, err)
		require.Equal(t, plain, got)
		return
	}
	requireCode(t, code, err)
	switch {
	case code == herald.ETOOLARGE:
		require.Contains(t, err.Error(), "Request body is too large.")
	case name == "unknown":
		require.Contains(t, err.Error(), "unsupported Content-Encoding")
	default:
		require.Contains(t, err.Error(), "Request body is malformed and cannot be read.")
	}
}

// TestDecompressFailingReader: a reader that fails is malformed, not a
// panic.
func TestDecompressFailingReader(t *testing.T) {
	t.Parallel()
	_, err := Decompress(io.MultiReader(bytes.NewReader([]byte(`[{}]`)), errReader{}), "", 1<<20)
	requireCode(t, herald.EMALFORMED, err)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
