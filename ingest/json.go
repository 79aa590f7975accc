package ingest

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"herald"
)

// The JSON path reads the body in a single pass that both checks it
// against the JSON grammar, exactly as json.Valid would (nesting depth
// included), and decodes it: no value is read twice, and one bad element
// cannot disturb the next. A body that turns out not to be JSON fails as
// a whole, whatever its elements decoded to so far.

// maxNestingDepth is encoding/json's limit on nested arrays and objects;
// json.Valid refuses deeper input, and so does this scanner.
const maxNestingDepth = 10000

// batchJSON is Batch for JSON bodies.
func batchJSON(body []byte, now time.Time) ([]herald.Event, []error, error) {
	if emptyBody(body) {
		return nil, nil, herald.Errorf(herald.EMALFORMED, msgEmpty)
	}
	d := jsonDecoder{b: body}
	i := skipWS(body, 0)
	if body[i] != '[' {
		return nil, nil, herald.Errorf(herald.EMALFORMED, msgMalformed)
	}
	var (
		events = []herald.Event{}
		errs   = []error{}
	)
	i = skipWS(body, i+1)
	if i < len(body) && body[i] == ']' {
		i++
	} else {
		for {
			if i >= len(body) {
				return nil, nil, herald.Errorf(herald.EMALFORMED, msgMalformed)
			}
			start := i
			ev, end, err := d.element(i, now)
			if end < 0 {
				return nil, nil, herald.Errorf(herald.EMALFORMED, msgMalformed)
			}
			if len(events) == 0 {
				// Guess the number of elements from the size of the
				// first, allowing at most a slot (56 bytes) or so for
				// each 64 bytes of the body.
				n := len(body) / max(end-start, 64)
				n += n/8 + 1
				events, errs = make([]herald.Event, 0, n), make([]error, 0, n)
			}
			events = append(events, ev)
			errs = append(errs, err)
			i = skipWS(body, end)
			if i < len(body) && body[i] == ',' {
				i = skipWS(body, i+1)
				continue
			}
			if i < len(body) && body[i] == ']' {
				i++
				break
			}
			return nil, nil, herald.Errorf(herald.EMALFORMED, msgMalformed)
		}
	}
	if skipWS(body, i) != len(body) {
		return nil, nil, herald.Errorf(herald.EMALFORMED, msgMalformed)
	}
	return events, errs, nil
}

// singleJSON decodes the fields of a /1/events JSON body.
func singleJSON(body []byte) (map[string]any, error) {
	if emptyBody(body) {
		return nil, herald.Errorf(herald.EMALFORMED, msgEmpty)
	}
	d := jsonDecoder{b: body}
	i := skipWS(body, 0)
	if body[i] != '{' {
		return nil, herald.Errorf(herald.EMALFORMED, msgMalformed)
	}
	m, end, err := d.fields(i, 0)
	if end < 0 || skipWS(body, end) != len(body) {
		return nil, herald.Errorf(herald.EMALFORMED, msgMalformed)
	}
	return m, err
}

// jsonDecoder checks and decodes one JSON body, reusing its scratch space
// and the names and values it has seen: the events of a batch mostly
// repeat one another's field names, and many fields repeat the value they
// had in the event before.
//
// Its methods take and return offsets into the body; an offset below 0
// means the body is not valid JSON.
type jsonDecoder struct {
	b   []byte
	buf bytes.Buffer
	// names maps the text of short field names to what is known of them.
	names map[string]*name
	// order holds the names of the last object decoded, by position: the
	// events of a batch mostly list the same fields in the same order,
	// and comparing a name with the one before costs less than looking
	// it up.
	order []*name
	// pairs holds the fields of the object being decoded, in order, until
	// it is known how big a map they need.
	pairs []pair
	// stack holds the closing brackets of the values skip is inside.
	stack []byte
}

// name is a field name seen in the body, with the last short string and
// the last number it held, boxed, so that a repeated name or value costs
// no allocation.
type name struct {
	key string
	str string
	val any // str, boxed
	num any // an int64 or a float64
}

// pair is one field of an object; a nil val stands for null.
type pair struct {
	key string
	val any
}

// Bounds of jsonDecoder's cache of names, and of the strings it keeps.
const (
	maxInternLen     = 64
	maxInternStrings = 4096
)

// name returns the string the quoted JSON string raw, the field at
// position pos of its object, holds, and its entry in the cache if it has
// one; esc and hi say whether raw holds a backslash or a byte above 0x7f,
// as scanString reported.
func (d *jsonDecoder) name(raw []byte, pos int, esc, hi bool) (string, *name, error) {
	in := raw[1 : len(raw)-1]
	if esc || len(in) > maxInternLen || hi && !utf8.Valid(in) {
		s, err := unquote(raw)
		return s, nil, err
	}
	if pos < len(d.order) {
		if n := d.order[pos]; n != nil && n.key == string(in) {
			return n.key, n, nil
		}
	}
	n, ok := d.names[string(in)]
	if !ok {
		s := string(in)
		if d.names == nil {
			d.names = make(map[string]*name, 32)
		}
		if len(d.names) >= maxInternStrings {
			return s, nil, nil
		}
		n = &name{key: s}
		d.names[s] = n
	}
	if pos < len(d.order) {
		d.order[pos] = n
	} else if pos == len(d.order) && pos < herald.MaxEventFields {
		d.order = append(d.order, n)
	}
	return n.key, n, nil
}

// strValue returns the string the quoted JSON string raw, the value of
// field n (nil if not cached), holds, boxed, and its length; esc and hi
// are as for name.
func (d *jsonDecoder) strValue(n *name, raw []byte, esc, hi bool) (any, int, error) {
	in := raw[1 : len(raw)-1]
	if esc || len(in) > maxInternLen || hi && !utf8.Valid(in) {
		s, err := unquote(raw)
		return s, len(s), err
	}
	if n != nil && n.val != nil && n.str == string(in) {
		return n.val, len(in), nil
	}
	s := string(in)
	var v any = s
	if n != nil {
		n.str, n.val = s, v
	}
	return v, len(s), nil
}

// intValue returns i boxed, as field n (nil if not cached) last held it
// if it can.
func intValue(n *name, i int64) any {
	if n == nil {
		return i
	}
	if x, ok := n.num.(int64); ok && x == i {
		return n.num
	}
	n.num = i
	return n.num
}

// floatValue is intValue for floats.
func floatValue(n *name, f float64) any {
	if n == nil {
		return f
	}
	if x, ok := n.num.(float64); ok && math.Float64bits(x) == math.Float64bits(f) {
		return n.num
	}
	n.num = f
	return n.num
}

// element decodes the batch element that starts at d.b[i], and returns
// the offset just past it.
func (d *jsonDecoder) element(i int, now time.Time) (herald.Event, int, error) {
	b := d.b
	if b[i] != '{' {
		end := d.skip(i, 1)
		return herald.Event{}, end, herald.Invalid("data", "incorrect_type", "each event must be an object")
	}
	var (
		hasData, dataObj bool
		dataNull         bool
		fields           map[string]any
		fieldsErr        error
		tm, rate         []byte
	)
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return herald.Event{}, -1, nil
			}
			kStart := i
			i, _, _ = scanString(b, i)
			if i < 0 {
				return herald.Event{}, -1, nil
			}
			key := b[kStart:i]
			i = skipWS(b, i)
			if i >= len(b) || b[i] != ':' {
				return herald.Event{}, -1, nil
			}
			i = skipWS(b, i+1)
			if i >= len(b) {
				return herald.Event{}, -1, nil
			}
			vStart := i
			switch {
			case keyIs(key, "data"):
				hasData = true
				if b[i] == '{' {
					dataObj, dataNull = true, false
					fields, i, fieldsErr = d.fields(i, 2)
				} else {
					dataObj, dataNull = false, b[i] == 'n'
					fields, fieldsErr = nil, nil
					i = d.skip(i, 2)
				}
			case keyIs(key, "time"):
				i = d.skip(i, 2)
				if i >= 0 {
					tm = b[vStart:i]
				}
			case keyIs(key, "samplerate"):
				i = d.skip(i, 2)
				if i >= 0 {
					rate = b[vStart:i]
				}
			default:
				i = d.skip(i, 2)
			}
			if i < 0 {
				return herald.Event{}, -1, nil
			}
			i = skipWS(b, i)
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return herald.Event{}, -1, nil
		}
	}
	end := i

	if !hasData || dataNull {
		return herald.Event{}, end, herald.Invalid("data", "missing", "each event needs data")
	}
	if !dataObj {
		return herald.Event{}, end, herald.Invalid("data", "incorrect_type", "data must be an object")
	}
	ev := herald.Event{Time: now.UTC(), SampleRate: 1}
	if rate != nil && rate[0] != 'n' {
		if rate[0] == '"' || rate[0] == '{' || rate[0] == '[' || rate[0] == 't' || rate[0] == 'f' {
			return herald.Event{}, end, errSampleRate()
		}
		f, isInt, n, err := parseNumber(rate, !bytes.ContainsAny(rate, ".eE"))
		switch {
		case err != nil:
			return herald.Event{}, end, errSampleRate()
		case isInt && n < 0:
			return herald.Event{}, end, errSampleRate()
		case isInt:
			ev.SampleRate = max(n, 1)
		default:
			r, ok := sampleRateOf(f)
			if !ok {
				return herald.Event{}, end, errSampleRate()
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
	if fieldsErr != nil {
		return herald.Event{}, end, fieldsErr
	}
	ev.Fields = fields
	return ev, end, nil
}

// fields decodes the object of event fields at d.b[i], inside depth
// arrays and objects, checks the event rules, and returns the offset just
// past the object.
//
// Once the object breaks a rule it is only checked, not decoded: its
// error is that of the first rule broken, reading in order, except that
// an object over herald.MaxEventBytes is always "Event is too large.".
func (d *jsonDecoder) fields(i, depth int) (map[string]any, int, error) {
	b := d.b
	start := i
	depth++
	if depth > maxNestingDepth {
		return nil, -1, nil
	}
	var (
		m     map[string]any // once there are too many pairs to hold
		pairs = d.pairs[:0]
		live  int // pairs that are not null
		pos   int // the position of the field
		err   error
	)
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return nil, -1, nil
			}
			kStart := i
			var kEsc, kHi bool
			i, kEsc, kHi = scanString(b, i)
			if i < 0 {
				return nil, -1, nil
			}
			kEnd := i
			i = skipWS(b, i)
			if i >= len(b) || b[i] != ':' {
				return nil, -1, nil
			}
			i = skipWS(b, i+1)
			if i >= len(b) {
				return nil, -1, nil
			}
			vStart := i
			var (
				key  string
				n    *name
				kerr bool // the name cannot be read
				v    any
				slen = -1 // the length of a string value
				verr bool // the value cannot be read
				nerr bool // the number is out of range
			)
			if err == nil {
				var e error
				key, n, e = d.name(b[kStart:kEnd], pos, kEsc, kHi)
				kerr = e != nil
			}
			switch c := b[i]; c {
			case '"':
				var esc, hi bool
				i, esc, hi = scanString(b, i)
				if i < 0 {
					return nil, -1, nil
				}
				if err == nil {
					var e error
					v, slen, e = d.strValue(n, b[vStart:i], esc, hi)
					verr = e != nil
				}
			case '{', '[':
				i = d.skip(i, depth)
				if i < 0 {
					return nil, -1, nil
				}
				if err == nil {
					d.buf.Reset()
					if e := json.Compact(&d.buf, b[vStart:i]); e != nil {
						verr = true
					} else {
						s := d.buf.String()
						v, slen = s, len(s)
					}
				}
			case 't':
				if i = literal(b, i, "true"); i < 0 {
					return nil, -1, nil
				}
				v = true
			case 'f':
				if i = literal(b, i, "false"); i < 0 {
					return nil, -1, nil
				}
				v = false
			case 'n':
				if i = literal(b, i, "null"); i < 0 {
					return nil, -1, nil
				}
			default:
				var isInt bool
				i, isInt = scanNumber(b, i)
				if i < 0 {
					return nil, -1, nil
				}
				if err == nil {
					num := b[vStart:i]
					if x, ok := parseSmallInt(num, isInt); ok {
						v = intValue(n, x)
					} else if f, isInt, x, e := parseNumber(num, isInt); e != nil {
						nerr = true
					} else if isInt {
						v = intValue(n, x)
					} else {
						v = floatValue(n, f)
					}
				}
			}
			if err == nil {
				switch {
				case kerr:
					err = herald.Invalid("data", "invalid", "a field name cannot be read")
				case v == nil && !verr && !nerr: // null
					if m != nil {
						delete(m, key)
					} else {
						pairs = append(pairs, pair{key: key})
					}
				case verr:
					err = herald.Invalid(key, "invalid", "the value of %q cannot be read", key)
				case nerr:
					err = herald.Invalid(key, "invalid", "the number in %q is out of range", key)
				default:
					if err = checkName(key); err != nil {
						break
					}
					if slen > herald.MaxStringBytes {
						err = checkString(key, v.(string))
						break
					}
					if m != nil {
						m[key] = v
						if len(m) > herald.MaxEventFields {
							err = errTooManyFields()
						}
						break
					}
					pairs = append(pairs, pair{key: key, val: v})
					live++
				}
				if m == nil && len(pairs) > herald.MaxEventFields {
					// Past this many, duplicates decide whether there are
					// too many fields: count them in a map.
					m = make(map[string]any, live)
					for _, p := range pairs {
						if p.val == nil {
							delete(m, p.key)
							continue
						}
						m[p.key] = p.val
						if len(m) > herald.MaxEventFields && err == nil {
							err = errTooManyFields()
						}
					}
				}
				if err == nil && i-start > herald.MaxEventBytes {
					err = errEventTooLarge()
				}
			}
			pos++
			i = skipWS(b, i)
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return nil, -1, nil
		}
	}
	d.pairs = pairs[:0]
	if i-start > herald.MaxEventBytes {
		return nil, i, errEventTooLarge()
	}
	if err != nil {
		return nil, i, err
	}
	if m == nil {
		m = make(map[string]any, live)
		for _, p := range pairs {
			if p.val == nil {
				delete(m, p.key)
			} else {
				m[p.key] = p.val
			}
		}
	}
	return m, i, nil
}

// skip checks the value at d.b[i], inside depth arrays and objects, and
// returns the offset just past it.
func (d *jsonDecoder) skip(i, depth int) int {
	b := d.b
	stack := d.stack[:0]
	for {
		// A value starts at i.
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; c {
		case '{', '[':
			if depth+len(stack)+1 > maxNestingDepth {
				return -1
			}
			i = skipWS(b, i+1)
			if c == '{' {
				stack = append(stack, '}')
				if i < len(b) && b[i] == '}' {
					i++
					stack = stack[:len(stack)-1]
					break
				}
				if i = objectKey(b, i); i < 0 {
					return -1
				}
				continue
			}
			stack = append(stack, ']')
			if i < len(b) && b[i] == ']' {
				i++
				stack = stack[:len(stack)-1]
				break
			}
			continue
		case '"':
			i, _, _ = scanString(b, i)
		case 't':
			i = literal(b, i, "true")
		case 'f':
			i = literal(b, i, "false")
		case 'n':
			i = literal(b, i, "null")
		default:
			i, _ = scanNumber(b, i)
		}
		// A value ends at i: go on to the next one, or close brackets.
		for {
			if i < 0 {
				return -1
			}
			if len(stack) == 0 {
				d.stack = stack[:0]
				return i
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return -1
			}
			closer := stack[len(stack)-1]
			if b[i] == closer {
				i++
				stack = stack[:len(stack)-1]
				continue
			}
			if b[i] != ',' {
				return -1
			}
			i = skipWS(b, i+1)
			if closer == '}' {
				i = objectKey(b, i)
			}
			break
		}
		if i < 0 {
			return -1
		}
	}
}

// objectKey checks the key and colon of an object member at b[i] and
// returns the offset of its value, past any white space.
func objectKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i, _, _ = scanString(b, i); i < 0 {
		return -1
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipWS(b, i+1)
}

// skipWS returns the offset of the first byte at or after i that is not
// JSON white space.
func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// plain marks the bytes a JSON string may hold as they are, that need no
// decoding: printable ASCII but the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString checks the JSON string at b[i], which starts with a quote,
// and returns the offset just past it, whether it holds an escape, and
// whether it holds a byte above 0x7f (which may not be valid UTF-8; JSON
// allows it all the same).
func scanString(b []byte, i int) (end int, esc, hi bool) {
	i++
	for {
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i >= len(b) {
			return -1, false, false
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, esc, hi
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return -1, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return -1, false, false
				}
				i += 6
			default:
				return -1, false, false
			}
		case c < 0x20:
			return -1, false, false
		default:
			hi = true
			i++
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// literal checks that b[i:] starts with the literal lit and returns the
// offset just past it.
func literal(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// scanNumber checks the JSON number at b[i] and returns the offset just
// past it, and whether it is an integer: no fraction, no exponent.
func scanNumber(b []byte, i int) (end int, isInt bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i++
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return -1, false
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return -1, false
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return -1, false
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	return i, isInt
}

// parseSmallInt parses a valid JSON integer of at most 18 digits, which
// always fits an int64; ok is false for anything else.
func parseSmallInt(b []byte, isInt bool) (n int64, ok bool) {
	if !isInt {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) > 18 {
		return 0, false
	}
	for _, c := range b {
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// parseNumber parses a valid JSON number literal: an int64 if it has no
// '.', 'e' or 'E' (intSyntax, as scanNumber reports) and fits, else a
// float64. A float out of range is an error.
func parseNumber(b []byte, intSyntax bool) (f float64, isInt bool, n int64, err error) {
	if intSyntax {
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
	in := raw[1 : len(raw)-1]
	if bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		return string(in), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}
