package ingest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"herald"
)

// requireGoodEvent checks what every event without an error must satisfy.
func requireGoodEvent(t *testing.T, ev herald.Event) {
	t.Helper()
	require.GreaterOrEqual(t, ev.SampleRate, int64(1))
	require.Equal(t, time.UTC, ev.Time.Location())
	require.LessOrEqual(t, len(ev.Fields), herald.MaxEventFields)
	for k, v := range ev.Fields {
		require.NotEmpty(t, k)
		require.NotEqual(t, "", herald.ValueType(v), "field %q holds %T", k, v)
		if s, ok := v.(string); ok {
			require.LessOrEqual(t, len(s), herald.MaxStringBytes)
		}
	}
}

// requireLikeStdlib checks the fields decoded from data against
// encoding/json's reading of it.
func requireLikeStdlib(t *testing.T, data []byte, fields map[string]any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var want map[string]any
	require.NoError(t, dec.Decode(&want))
	for k, w := range want {
		if w == nil {
			continue // dropped, unless a later duplicate set it
		}
		got, ok := fields[k]
		require.True(t, ok, "field %q missing", k)
		switch w := w.(type) {
		case json.Number:
			switch g := got.(type) {
			case int64:
				require.Equal(t, string(w), json.Number(mustJSON(t, g)).String())
			case float64:
				f, err := w.Float64()
				require.NoError(t, err)
				require.Equal(t, f, g)
			default:
				t.Fatalf("field %q: number decoded as %T", k, got)
			}
		case map[string]any, []any:
			s, ok := got.(string)
			require.True(t, ok)
			dec := json.NewDecoder(bytes.NewReader([]byte(s)))
			dec.UseNumber()
			var g any
			require.NoError(t, dec.Decode(&g))
			require.True(t, reflect.DeepEqual(w, g), "field %q: %s", k, s)
		default:
			require.Equal(t, w, got, "field %q", k)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func FuzzBatchJSON(f *testing.F) {
	for _, s := range []string{
		`[{"time": "2025-03-04T10:15:30.123456789Z", "samplerate": 4, "data": {"service.name": "checkout", "duration_ms": 41.7, "http.status_code": 200}}, {"data": {"error": "timeout"}}]`,
		`[{"data": {"a": {"b": [1, 2, null]}, "c": null, "d": "\u00e9\"", "e": -1e5, "f": true}}]`,
		`[1, "x", null, {"data": 1}, {"data": {"__x": 1}}, {"DATA": {"a": 1}, "Time": 1700000000.5}]`,
		`[{"data": {"a": 1, "a": null}, "samplerate": 1.0}]`,
		`[]`, ``, `{}`, `[{"data": {"k": 18446744073709551616}}]`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		events, errs, err := Batch(body, "application/json", now)
		if err != nil {
			require.Equal(t, herald.EMALFORMED, herald.ErrorCode(err))
			require.Nil(t, events)
			require.Nil(t, errs)
			return
		}
		require.True(t, json.Valid(body))
		require.Equal(t, len(events), len(errs))
		var elems []json.RawMessage
		require.NoError(t, json.Unmarshal(body, &elems))
		require.Len(t, elems, len(events))
		for i, ev := range events {
			if errs[i] != nil {
				require.Contains(t, []string{herald.EINVALID, herald.ETOOLARGE}, herald.ErrorCode(errs[i]))
				continue
			}
			requireGoodEvent(t, ev)
			var elem struct {
				Data json.RawMessage `json:"data"`
			}
			require.NoError(t, json.Unmarshal(elems[i], &elem))
			requireLikeStdlib(t, elem.Data, ev.Fields)
		}
	})
}

func FuzzBatchMsgpack(f *testing.F) {
	ts := time.Date(2025, 3, 4, 10, 15, 30, 123456789, time.UTC)
	for _, v := range []any{
		[]map[string]any{{"time": ts, "samplerate": 4, "data": map[string]any{"a": 1, "b": "x", "c": 41.7, "d": true, "e": nil, "f": []any{1, 2}}}},
		[]any{1, "x", nil, map[string]any{"data": 1}, map[string]any{"data": map[string]any{"__x": 1}}},
		[]any{map[string]any{"data": map[string]any{"u": uint64(1 << 63), "b": []byte("x"), "t": ts}, "samplerate": 1.0, "time": "1700000000"}},
		[]any{},
	} {
		b, err := msgpack.Marshal(v)
		require.NoError(f, err)
		f.Add(b)
	}
	now := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		events, errs, err := Batch(body, "application/msgpack", now)
		if err != nil {
			require.Equal(t, herald.EMALFORMED, herald.ErrorCode(err))
			require.Nil(t, events)
			return
		}
		require.Equal(t, len(events), len(errs))
		for i, ev := range events {
			if errs[i] != nil {
				require.Contains(t, []string{herald.EINVALID, herald.ETOOLARGE}, herald.ErrorCode(errs[i]))
				continue
			}
			requireGoodEvent(t, ev)
		}
	})
}

func FuzzSingle(f *testing.F) {
	f.Add([]byte(`{"a": 1, "b": {"c": [true]}, "d": null}`), false, "1700000000123", "3")
	f.Add([]byte(`[1]`), false, "", "")
	f.Add([]byte{0x81, 0xa1, 'a', 0x01}, true, "2025-03-04T10:15:30Z", "0")
	now := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte, mp bool, eventTime, sampleRate string) {
		ct := "application/json"
		if mp {
			ct = "application/msgpack"
		}
		ev, err := Single(body, ct, eventTime, sampleRate, now)
		if err != nil {
			require.Contains(t, []string{herald.EMALFORMED, herald.EINVALID, herald.ETOOLARGE}, herald.ErrorCode(err))
			return
		}
		requireGoodEvent(t, ev)
		if !mp {
			requireLikeStdlib(t, body, ev.Fields)
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2025-03-04T10:15:30.123456789Z", "1700000000", "1700000000123", "1700000000.25", "-1e9", "NaN", "0x1p30", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		for _, v := range []any{s, json.Number(s)} {
			got := ParseTime(v, now)
			require.Equal(t, time.UTC, got.Location())
			require.True(t, got.Year() >= 1 && got.Year() <= 9999, "%v", got)
		}
	})
}
