package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"herald"
)

// The JSON path validates the whole body once with json.Valid, then walks
// it with a small scanner that trusts that validity: no value is decoded
// twice, elements and fields are sub-slices of the body, and one bad
// element cannot disturb the next.

// batchJSON is Batch for JSON bodies.
func batchJSON(body []byte, now time.Time) ([]herald.Event, []error, error) {
	if emptyBody(body) {
		return nil, nil, herald.Errorf(herald.EMALFORMED, msgEmpty)
	}
	if !json.Valid(body) {
		return nil, nil, herald.Errorf(herald.EMALFORMED, msgMalformed)
	}
	s := scanner{b: body}
	s.ws()
	if s.peek() != '[' {
		return nil, nil, herald.Errorf(herald.EMALFORMED, msgMalformed)
	}
	var (
		d      jsonDecoder
		events []herald.Event
		errs   []error
	)
	err := s.array(func(elem []byte) {
		ev, err := d.element(elem, now)
		events = append(events, ev)
		errs = append(errs, err)
	})
	if err != nil {
		return nil, nil, herald.Errorf(herald.EMALFORMED, msgMalformed)
	}
	if events == nil {
		events, errs = []herald.Event{}, []error{}
	}
	return events, errs, nil
}

// singleJSON decodes the fields of a /1/events JSON body.
func singleJSON(body []byte) (map[string]any, error) {
	if emptyBody(body) {
		return nil, herald.Errorf(herald.EMALFORMED, msgEmpty)
	}
	if !json.Valid(body) {
		return nil, herald.Errorf(herald.EMALFORMED, msgMalformed)
	}
	s := scanner{b: body}
	s.ws()
	if s.peek() != '{' {
		return nil, herald.Errorf(herald.EMALFORMED, msgMalformed)
	}
	var d jsonDecoder
	return d.fields(s.value())
}

// jsonDecoder decodes elements and fields of a valid JSON body, reusing
// its scratch buffer and the strings it has seen: the events of a batch
// mostly repeat one another's field names and many of their values.
type jsonDecoder struct {
	buf     bytes.Buffer
	strings map[string]string
}

// Bounds of jsonDecoder's string cache.
const (
	maxInternLen     = 64
	maxInternStrings = 4096
)

// str returns the string a valid quoted JSON string holds, from the cache
// when it can.
func (d *jsonDecoder) str(raw []byte) (string, error) {
	in := raw[1 : len(raw)-1]
	if len(in) > maxInternLen || bytes.IndexByte(in, '\\') >= 0 || !utf8.Valid(in) {
		return unquote(raw)
	}
	if s, ok := d.strings[string(in)]; ok {
		return s, nil
	}
	s := string(in)
	if d.strings == nil {
		d.strings = make(map[string]string)
	}
	if len(d.strings) < maxInternStrings {
		d.strings[s] = s
	}
	return s, nil
}

// element decodes one batch element.
func (d *jsonDecoder) element(elem []byte, now time.Time) (herald.Event, error) {
	ev := herald.Event{Time: now.UTC(), SampleRate: 1}
	if elem[0] != '{' {
		return herald.Event{}, herald.Invalid("data", "incorrect_type", "each event must be an object")
	}
	var (
		data, tm, rate []byte
		s              = scanner{b: elem}
	)
	err := s.object(func(key, val []byte) error {
		switch {
		case keyIs(key, "data"):
			data = val
		case keyIs(key, "time"):
			tm = val
		case keyIs(key, "samplerate"):
			rate = val
		}
		return nil
	})
	if err != nil {
		return herald.Event{}, herald.Invalid("data", "invalid", "the event cannot be read")
	}
	if data == nil || data[0] == 'n' {
		return herald.Event{}, herald.Invalid("data", "missing", "each event needs data")
	}
	if data[0] != '{' {
		return herald.Event{}, herald.Invalid("data", "incorrect_type", "data must be an object")
	}
	if rate != nil && rate[0] != 'n' {
		if rate[0] == '"' || rate[0] == '{' || rate[0] == '[' || rate[0] == 't' || rate[0] == 'f' {
			return herald.Event{}, errSampleRate()
		}
		f, isInt, n, err := parseNumber(rate)
		switch {
		case err != nil:
			return herald.Event{}, errSampleRate()
		case isInt && n < 0:
			return herald.Event{}, errSampleRate()
		case isInt:
			ev.SampleRate = max(n, 1)
		default:
			r, ok := sampleRateOf(f)
			if !ok {
				return herald.Event{}, errSampleRate()
			}
			ev.SampleRate = r
		}
	}
	if tm != nil {
		switch tm[0] {
		case '"':
			str, err := unquote(tm)
			if err == nil {
				ev.Time = ParseTime(str, now)
			}
		case 'n', 't', 'f', '{', '[':
		default:
			ev.Time = ParseTime(json.Number(tm), now)
		}
	}
	fields, err := d.fields(data)
	if err != nil {
		return herald.Event{}, err
	}
	ev.Fields = fields
	return ev, nil
}

// fields decodes a valid JSON object of event fields and checks the event
// rules.
func (d *jsonDecoder) fields(obj []byte) (map[string]any, error) {
	if len(obj) > herald.MaxEventBytes {
		return nil, errEventTooLarge()
	}
	m := make(map[string]any, min(len(obj)/24, herald.MaxEventFields))
	s := scanner{b: obj}
	err := s.object(func(rawKey, val []byte) error {
		key, err := d.str(rawKey)
		if err != nil {
			return herald.Invalid("data", "invalid", "a field name cannot be read")
		}
		var v any
		switch val[0] {
		case 'n':
			delete(m, key)
			return nil
		case 't':
			v = true
		case 'f':
			v = false
		case '"':
			str, err := d.str(val)
			if err != nil {
				return herald.Invalid(key, "invalid", "the value of %q cannot be read", key)
			}
			v = str
		case '{', '[':
			d.buf.Reset()
			if err := json.Compact(&d.buf, val); err != nil {
				return herald.Invalid(key, "invalid", "the value of %q cannot be read", key)
			}
			v = d.buf.String()
		default:
			f, isInt, n, err := parseNumber(val)
			switch {
			case err != nil:
				return herald.Invalid(key, "invalid", "the number in %q is out of range", key)
			case isInt:
				v = n
			default:
				v = f
			}
		}
		if err := checkName(key); err != nil {
			return err
		}
		if str, ok := v.(string); ok {
			if err := checkString(key, str); err != nil {
				return err
			}
		}
		m[key] = v
		if len(m) > herald.MaxEventFields {
			return errTooManyFields()
		}
		return nil
	})
	if errors.Is(err, errBadJSON) {
		return nil, herald.Invalid("data", "invalid", "the event cannot be read")
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// parseNumber parses a JSON number literal: an int64 if it has no '.',
// 'e' or 'E' and fits, else a float64. A float out of range is an error.
func parseNumber(b []byte) (f float64, isInt bool, n int64, err error) {
	if bytes.IndexAny(b, ".eE") < 0 {
		if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
			return 0, true, n, nil
		}
	}
	f, err = strconv.ParseFloat(string(b), 64)
	return f, false, 0, err
}

// keyIs reports whether a quoted JSON key matches name, ignoring case as
// encoding/json does for struct fields.
func keyIs(raw []byte, name string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return len(raw) == len(name)+2 && bytes.EqualFold(raw[1:len(raw)-1], []byte(name))
	}
	s, err := unquote(raw)
	return err == nil && bytes.EqualFold([]byte(s), []byte(name))
}

// unquote returns the string a valid quoted JSON string holds.
func unquote(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", errBadJSON
	}
	in := raw[1 : len(raw)-1]
	if bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		return string(in), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// errBadJSON reports JSON the scanner cannot follow; it never happens for
// input json.Valid accepted.
var errBadJSON = errors.New("ingest: unexpected JSON")

// scanner walks JSON that json.Valid has accepted. It checks bounds but
// not grammar; on input that is not valid JSON it returns errBadJSON or
// garbage, never panics.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// skipString moves past the string starting at s.i.
func (s *scanner) skipString() {
	start := s.i
	s.i++ // the opening quote
	for {
		j := bytes.IndexByte(s.b[s.i:], '"')
		if j < 0 {
			s.i = len(s.b)
			return
		}
		s.i += j
		// The quote closes the string unless an odd number of
		// backslashes escape it.
		k := s.i - 1
		for k > start && s.b[k] == '\\' {
			k--
		}
		s.i++
		if (s.i-2-k)%2 == 0 {
			return
		}
	}
}

// value returns the value starting at s.i and moves past it.
func (s *scanner) value() []byte {
	start := s.i
	switch s.peek() {
	case '"':
		s.skipString()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.i++
			if depth == 0 {
				break
			}
		}
	default:
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.b[start:s.i]
			}
			s.i++
		}
	}
	return s.b[start:s.i]
}

// object calls fn with each quoted key and value of the object at s.i,
// stopping at fn's first error.
func (s *scanner) object(fn func(key, val []byte) error) error {
	if s.peek() != '{' {
		return errBadJSON
	}
	s.i++
	s.ws()
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if s.peek() != '"' {
			return errBadJSON
		}
		key := s.value()
		s.ws()
		if s.peek() != ':' {
			return errBadJSON
		}
		s.i++
		s.ws()
		val := s.value()
		if len(val) == 0 {
			return errBadJSON
		}
		if err := fn(key, val); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errBadJSON
		}
	}
}

// array calls fn with each element of the array at s.i.
func (s *scanner) array(fn func(elem []byte)) error {
	if s.peek() != '[' {
		return errBadJSON
	}
	s.i++
	s.ws()
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		s.ws()
		val := s.value()
		if len(val) == 0 {
			return errBadJSON
		}
		fn(val)
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return errBadJSON
		}
	}
}
