package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"herald"
)

// The msgpack path first skips over each element of the array, which
// checks its structure and finds its bounds, then decodes the element on
// its own, so that an element msgpack can frame but herald cannot use
// (a map with a non-string key, an unknown extension) fails alone.

// batchMsgpack is Batch for msgpack bodies.
func batchMsgpack(body []byte, now time.Time) ([]herald.Event, []error, error) {
	if len(body) == 0 {
		return nil, nil, herald.Errorf(herald.EMALFORMED, msgEmpty)
	}
	r := bytes.NewReader(body)
	dec := msgpack.NewDecoder(r)
	n, err := dec.DecodeArrayLen()
	if err != nil || n < 0 {
		return nil, nil, &herald.Error{Code: herald.EMALFORMED, Message: msgMalformed, Err: err}
	}
	// Every element takes at least a byte.
	events := make([]herald.Event, 0, min(n, r.Len()))
	errs := make([]error, 0, min(n, r.Len()))
	var d msgpackDecoder
	for range n {
		start := len(body) - r.Len()
		if err := dec.Skip(); err != nil {
			return nil, nil, &herald.Error{Code: herald.EMALFORMED, Message: msgMalformed, Err: err}
		}
		ev, err := d.element(body[start:len(body)-r.Len()], now)
		events = append(events, ev)
		errs = append(errs, err)
	}
	if r.Len() != 0 {
		return nil, nil, herald.Errorf(herald.EMALFORMED, msgMalformed)
	}
	return events, errs, nil
}

// singleMsgpack decodes the fields of a /1/events msgpack body.
func singleMsgpack(body []byte) (map[string]any, error) {
	if len(body) == 0 {
		return nil, herald.Errorf(herald.EMALFORMED, msgEmpty)
	}
	// Skip first: it checks the structure without allocating for the
	// lengths the input claims.
	dec := msgpack.NewDecoder(bytes.NewReader(body))
	if err := dec.Skip(); err != nil {
		return nil, &herald.Error{Code: herald.EMALFORMED, Message: msgMalformed, Err: err}
	}
	var d msgpackDecoder
	v, err := d.decode(body)
	m, ok := v.(map[string]any)
	if err != nil || !ok {
		return nil, &herald.Error{Code: herald.EMALFORMED, Message: msgMalformed, Err: err}
	}
	return d.fields(m)
}

// msgpackDecoder decodes msgpack values, reusing its decoder and scratch
// space.
type msgpackDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
	num []byte
}

// decode decodes the single msgpack value b holds; maps have string keys.
func (d *msgpackDecoder) decode(b []byte) (any, error) {
	d.r.Reset(b)
	if d.dec == nil {
		d.dec = msgpack.NewDecoder(&d.r)
	} else {
		d.dec.ResetReader(&d.r)
	}
	d.dec.SetMapDecoder(decodeMap)
	v, err := d.dec.DecodeInterface()
	if err == nil && d.r.Len() != 0 {
		return nil, errTrailing
	}
	return v, err
}

// errTrailing reports bytes after the msgpack value.
var errTrailing = errors.New("ingest: trailing bytes after the msgpack value")

// decodeMap decodes a msgpack map with string keys. Unlike the library's
// own, it sizes the map by what it reads, not by the length the input
// claims.
func decodeMap(dec *msgpack.Decoder) (any, error) {
	n, err := dec.DecodeMapLen()
	if err != nil || n < 0 {
		return nil, err
	}
	m := make(map[string]any, min(n, 64))
	for range n {
		k, err := dec.DecodeString()
		if err != nil {
			return nil, err
		}
		v, err := dec.DecodeInterface()
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

// element decodes one batch element.
func (d *msgpackDecoder) element(raw []byte, now time.Time) (herald.Event, error) {
	v, err := d.decode(raw)
	if err != nil {
		return herald.Event{}, &herald.Error{Code: herald.EINVALID, Message: "data: the event cannot be read",
			Fields: []herald.FieldError{{Field: "data", Code: "invalid", Description: "the event cannot be read"}}, Err: err}
	}
	elem, ok := v.(map[string]any)
	if !ok {
		return herald.Event{}, herald.Invalid("data", "incorrect_type", "each event must be an object")
	}
	ev := herald.Event{Time: now.UTC(), SampleRate: 1}
	if r, ok := elem["samplerate"]; ok && r != nil {
		rate, ok := msgpackRate(r)
		if !ok {
			return herald.Event{}, errSampleRate()
		}
		ev.SampleRate = rate
	}
	if t, ok := elem["time"]; ok && t != nil {
		ev.Time = ParseTime(t, now)
	}
	data, ok := elem["data"]
	if !ok || data == nil {
		return herald.Event{}, herald.Invalid("data", "missing", "each event needs data")
	}
	m, ok := data.(map[string]any)
	if !ok {
		return herald.Event{}, herald.Invalid("data", "incorrect_type", "data must be an object")
	}
	if ev.Fields, err = d.fields(m); err != nil {
		return herald.Event{}, err
	}
	return ev, nil
}

// msgpackRate converts a decoded samplerate to a rate of at least 1.
func msgpackRate(v any) (int64, bool) {
	var n int64
	switch v := v.(type) {
	case int8:
		n = int64(v)
	case int16:
		n = int64(v)
	case int32:
		n = int64(v)
	case int64:
		n = v
	case uint8:
		n = int64(v)
	case uint16:
		n = int64(v)
	case uint32:
		n = int64(v)
	case uint64:
		if v > math.MaxInt64 {
			return 0, false
		}
		n = int64(v)
	case float32:
		return sampleRateOf(float64(v))
	case float64:
		return sampleRateOf(v)
	default:
		return 0, false
	}
	if n < 0 {
		return 0, false
	}
	return max(n, 1), true
}

// fields normalizes decoded msgpack fields in place and checks the event
// rules. The event's size is that of its data as compact JSON, counted
// without encoding it.
func (d *msgpackDecoder) fields(m map[string]any) (map[string]any, error) {
	size := 2 // {}
	for k, v := range m {
		if v == nil {
			delete(m, k)
			continue
		}
		if err := checkName(k); err != nil {
			return nil, err
		}
		var (
			out  any
			vlen int
		)
		switch v := v.(type) {
		case string:
			out, vlen = v, jsonStringLen(v)
		case []byte:
			s := string(v)
			out, vlen = s, jsonStringLen(s)
		case bool:
			out, vlen = v, 5
		case int8:
			out, vlen = d.int(int64(v))
		case int16:
			out, vlen = d.int(int64(v))
		case int32:
			out, vlen = d.int(int64(v))
		case int64:
			out, vlen = d.int(v)
		case uint8:
			out, vlen = d.int(int64(v))
		case uint16:
			out, vlen = d.int(int64(v))
		case uint32:
			out, vlen = d.int(int64(v))
		case uint64:
			if v <= math.MaxInt64 {
				out, vlen = d.int(int64(v))
			} else {
				out, vlen = d.float(float64(v))
			}
		case float32:
			out, vlen = d.float(float64(v))
		case float64:
			out, vlen = d.float(v)
		case time.Time:
			s := v.UTC().Format(time.RFC3339Nano)
			out, vlen = s, len(s)+2
		default: // maps, slices
			b, err := json.Marshal(v)
			if err != nil {
				return nil, herald.Invalid(k, "invalid", "the value of %q cannot be stored: %v", k, err)
			}
			out, vlen = string(b), len(b)
		}
		if f, ok := out.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return nil, herald.Invalid(k, "invalid", "the value of %q is not a finite number", k)
		}
		if s, ok := out.(string); ok {
			if err := checkString(k, s); err != nil {
				return nil, err
			}
		}
		m[k] = out
		size += jsonStringLen(k) + 1 + vlen + 1 // "key":value,
	}
	if len(m) > herald.MaxEventFields {
		return nil, errTooManyFields()
	}
	if size-1 > herald.MaxEventBytes {
		return nil, errEventTooLarge()
	}
	return m, nil
}

func (d *msgpackDecoder) int(n int64) (any, int) {
	d.num = strconv.AppendInt(d.num[:0], n, 10)
	return n, len(d.num)
}

func (d *msgpackDecoder) float(f float64) (any, int) {
	d.num = strconv.AppendFloat(d.num[:0], f, 'g', -1, 64)
	return f, len(d.num)
}

// jsonStringLen returns the length of s as a quoted JSON string, as
// encoding/json writes it.
func jsonStringLen(s string) int {
	n := len(s) + 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n++
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 5
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 5 // \ufffd
		case r == '\u2028' || r == '\u2029':
			n += 3
		}
		i += size
	}
	return n
}
