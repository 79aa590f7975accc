package otlp

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// maxFlattenDepth is how many levels of nested key/value lists are
// flattened into dotted keys; a list nested deeper is stored as its JSON
// text.
const maxFlattenDepth = 5

// putAttrs adds every attribute of m to fields (see putValue), replacing
// fields already there.
func putAttrs(fields map[string]any, m pcommon.Map) {
	m.Range(func(k string, v pcommon.Value) bool {
		putValue(fields, k, v, 0)
		return true
	})
}

// putValue adds v to fields under key. Strings, booleans, integers and
// doubles are kept as they are; a key/value list is flattened, its entries
// put under key + "." + their own key, until depth (the number of lists
// already entered) reaches maxFlattenDepth, when the list is stored as its
// JSON text; arrays and bytes are stored as their JSON text (bytes as a
// base64 JSON string). Empty values are dropped.
func putValue(fields map[string]any, key string, v pcommon.Value, depth int) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		fields[key] = v.Str()
	case pcommon.ValueTypeInt:
		fields[key] = v.Int()
	case pcommon.ValueTypeDouble:
		fields[key] = v.Double()
	case pcommon.ValueTypeBool:
		fields[key] = v.Bool()
	case pcommon.ValueTypeMap:
		if depth >= maxFlattenDepth {
			fields[key] = jsonText(v)
			return
		}
		v.Map().Range(func(k string, mv pcommon.Value) bool {
			putValue(fields, key+"."+k, mv, depth+1)
			return true
		})
	case pcommon.ValueTypeSlice, pcommon.ValueTypeBytes:
		fields[key] = jsonText(v)
	}
}

// jsonText returns v as JSON text. Doubles that JSON cannot hold (NaN and
// the infinities) become the strings "NaN", "+Inf" and "-Inf".
func jsonText(v pcommon.Value) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rawValue(v)); err != nil {
		// Unreachable: rawValue returns only what encoding/json encodes.
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// rawValue returns v as a value encoding/json can encode.
func rawValue(v pcommon.Value) any {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return f
	case pcommon.ValueTypeBool:
		return v.Bool()
	case pcommon.ValueTypeMap:
		m := make(map[string]any, v.Map().Len())
		v.Map().Range(func(k string, mv pcommon.Value) bool {
			m[k] = rawValue(mv)
			return true
		})
		return m
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		a := make([]any, s.Len())
		for i := range s.Len() {
			a[i] = rawValue(s.At(i))
		}
		return a
	case pcommon.ValueTypeBytes:
		return v.Bytes().AsRaw() // encoding/json writes []byte as base64
	}
	return nil
}

// traceIDHex returns a trace ID as hex. A trace ID whose first 8 bytes are
// zero (a 64-bit ID padded by the sender) is shortened to its last 8
// bytes, 16 hex digits, as Honeycomb does.
func traceIDHex(id pcommon.TraceID) string {
	if [8]byte(id[:8]) == [8]byte{} {
		return hex.EncodeToString(id[8:])
	}
	return hex.EncodeToString(id[:])
}

// spanIDHex returns a span ID as 16 hex digits.
func spanIDHex(id pcommon.SpanID) string {
	return hex.EncodeToString(id[:])
}

// sampleRateKeys are the attributes that carry a sample rate, in the order
// they are looked at.
var sampleRateKeys = [...]string{"sampleRate", "SampleRate"}

// takeSampleRate removes the sampleRate and SampleRate fields from fields
// and returns the first one that holds a positive integer: an int64, a
// float64 rounded to the nearest integer, or a string holding either.
// ok is false if neither does.
func takeSampleRate(fields map[string]any) (rate int64, ok bool) {
	for _, k := range sampleRateKeys {
		v, present := fields[k]
		if !present {
			continue
		}
		delete(fields, k)
		if !ok {
			rate, ok = positiveInt(v)
		}
	}
	return rate, ok
}

// positiveInt returns v as a positive int64, if it is or holds one.
func positiveInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		if v >= 1 {
			return v, true
		}
	case float64:
		r := math.Round(v)
		if r >= 1 && r < math.MaxInt64 {
			return int64(r), true
		}
	case string:
		s := strings.TrimSpace(v)
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return positiveInt(n)
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return positiveInt(f)
		}
	}
	return 0, false
}

// thresholdSampleRate returns the sample rate that the OpenTelemetry
// consistent-probability sampling threshold in a W3C tracestate implies:
// the th sub-key of the "ot" member ("ot=th:c;rv:..."), or, failing that, a
// bare "th" member ("th=c"). A threshold T of up to 14 hex digits,
// right-padded with zeros to 14 (56 bits), rejects T in 2^56 traces, so
// each kept one stands for round(2^56 / (2^56 − T)). ok is false if
// there is no valid threshold.
func thresholdSampleRate(traceState string) (rate int64, ok bool) {
	var th string
	found := false
	for member := range strings.SplitSeq(traceState, ",") {
		key, value, _ := strings.Cut(strings.TrimSpace(member), "=")
		switch key {
		case "ot":
			for sub := range strings.SplitSeq(value, ";") {
				if t, isTh := strings.CutPrefix(sub, "th:"); isTh {
					th, found = t, true
				}
			}
		case "th":
			if !found {
				th = value
			}
		}
		if found {
			break
		}
	}
	if th == "" || len(th) > 14 {
		return 0, false
	}
	t, err := strconv.ParseUint(th+strings.Repeat("0", 14-len(th)), 16, 64)
	if err != nil {
		return 0, false
	}
	const maxAdjusted = 1 << 56
	r := math.Round(float64(maxAdjusted) / float64(maxAdjusted-t))
	return max(int64(r), 1), true
}
