// Package ingest decodes the bodies of Honeycomb's event-ingest requests,
// POST /1/events/{dataset} and POST /1/batch/{dataset}, into herald
// events. It holds pure functions: no HTTP, no clock, no state.
//
// Bodies are JSON or msgpack, as libhoney and Refinery send them. Field
// values become string, int64, float64 or bool; nested objects and arrays
// become their JSON text; nulls are dropped. Each event is checked against
// herald's per-event limits, and a batch reports its errors by position.
package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"herald"
)

// Messages of whole-request errors, as Honeycomb words them.
const (
	msgEmpty     = "Request body should not be empty."
	msgMalformed = "Request body is malformed and cannot be read."
	msgTooLarge  = "Request body is too large."
)

// maxZstdWindow bounds the memory a zstd stream may ask for.
const maxZstdWindow = 64 << 20

// Decompress returns the decoded body for a Content-Encoding of "",
// "identity", "gzip" or "zstd" (case-insensitive), reading at most limit
// decompressed bytes. It makes a zstd decoder for the call; a server uses a
// Decompressor, which shares one.
//
// Errors are *herald.Error: EMALFORMED for an unknown encoding or a
// corrupt stream, ETOOLARGE when the body holds more than limit bytes
// (or when body is an http.MaxBytesReader that hit its own limit).
func Decompress(body io.Reader, encoding string, limit int64) ([]byte, error) {
	return (&Decompressor{}).Decompress(body, encoding, limit)
}

// MaxDecompressed is the most a Decompressor's shared zstd decoder will
// produce from one body.
const MaxDecompressed = 20 << 20

// Decompressor decompresses request bodies with one zstd decoder shared by
// every call (making a decoder per request costs more than decoding a
// 50-event batch). Safe for concurrent use; the zero value makes a decoder
// per call. Close releases the shared decoder.
type Decompressor struct {
	zstd *zstd.Decoder
}

// NewDecompressor returns a Decompressor with a shared zstd decoder that
// refuses to produce more than MaxDecompressed bytes from one body.
func NewDecompressor() (*Decompressor, error) {
	d, err := zstd.NewReader(nil, zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderMaxMemory(MaxDecompressed+1))
	if err != nil {
		return nil, fmt.Errorf("ingest: zstd decoder: %w", err)
	}
	return &Decompressor{zstd: d}, nil
}

// Close releases the shared decoder.
func (d *Decompressor) Close() {
	if d.zstd != nil {
		d.zstd.Close()
	}
}

// Decompress is the package's Decompress, with the shared decoder.
func (d *Decompressor) Decompress(body io.Reader, encoding string, limit int64) ([]byte, error) {
	var r io.Reader
	switch enc := strings.ToLower(strings.TrimSpace(encoding)); enc {
	case "", "identity":
		r = body
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, readError(err)
		}
		defer zr.Close()
		r = zr
	case "zstd":
		if d.zstd != nil && limit <= MaxDecompressed {
			compressed, err := io.ReadAll(body)
			if err != nil {
				return nil, readError(err)
			}
			b, err := d.zstd.DecodeAll(compressed, nil)
			if err != nil {
				return nil, readError(err)
			}
			if int64(len(b)) > limit {
				return nil, herald.Errorf(herald.ETOOLARGE, msgTooLarge)
			}
			return b, nil
		}
		zr, err := zstd.NewReader(body,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(maxZstdWindow),
			zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, &herald.Error{Code: herald.EINTERNAL, Message: "cannot start a zstd decoder", Err: err}
		}
		defer zr.Close()
		r = zr
	default:
		return nil, herald.Errorf(herald.EMALFORMED, "unsupported Content-Encoding %q: use gzip, zstd or none", encoding)
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, readError(err)
	}
	if int64(len(b)) > limit {
		return nil, herald.Errorf(herald.ETOOLARGE, msgTooLarge)
	}
	return b, nil
}

// readError classifies a failure to read or decompress a body.
func readError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return &herald.Error{Code: herald.ETOOLARGE, Message: msgTooLarge, Err: err}
	}
	return &herald.Error{Code: herald.EMALFORMED, Message: msgMalformed, Err: err}
}

// isMsgpack reports whether a Content-Type names msgpack; media type
// parameters are ignored and anything else means JSON.
func isMsgpack(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	return strings.EqualFold(mt, "application/msgpack") || strings.EqualFold(mt, "application/x-msgpack")
}

// Single decodes a POST /1/events/{dataset} body: one flat JSON object, or
// a msgpack map if contentType is application/msgpack or
// application/x-msgpack (parameters ignored; anything else, "" included,
// means JSON).
//
// eventTime is the X-Honeycomb-Event-Time header, read by ParseTime ("" or
// unparseable means now). sampleRate is the X-Honeycomb-Samplerate header:
// "" or "0" means 1, anything but a non-negative integer is EINVALID.
//
// Errors are *herald.Error: EMALFORMED "Request body should not be
// empty." or "Request body is malformed and cannot be read.", or the error
// of the event rule the body breaks (EINVALID, or ETOOLARGE "Event is too
// large.").
func Single(body []byte, contentType, eventTime, sampleRate string, now time.Time) (herald.Event, error) {
	rate := int64(1)
	if sampleRate != "" {
		n, err := strconv.ParseInt(sampleRate, 10, 64)
		if err != nil || n < 0 {
			return herald.Event{}, herald.Invalid("X-Honeycomb-Samplerate", "invalid", "the sample rate must be a positive integer, not %q", sampleRate)
		}
		if n > 0 {
			rate = n
		}
	}
	var (
		fields map[string]any
		err    error
	)
	if isMsgpack(contentType) {
		fields, err = singleMsgpack(body)
	} else {
		fields, err = singleJSON(body)
	}
	if err != nil {
		return herald.Event{}, err
	}
	t := now.UTC()
	if eventTime != "" {
		t = ParseTime(eventTime, now)
	}
	return herald.Event{Time: t, SampleRate: rate, Fields: fields}, nil
}

// Batch decodes a POST /1/batch/{dataset} body: a JSON array (or msgpack
// array, by contentType as for Single) of objects {"time": …,
// "samplerate": …, "data": {…}}.
//
// It returns one event and one error per element, by position; errs[i] is
// nil when events[i] is good, else an *herald.Error (EINVALID, or
// ETOOLARGE "Event is too large."), and a bad element never affects the
// others. An element must be an object with an object "data"; a missing
// "samplerate" or 0 means 1, a negative or non-integer one is EINVALID; a
// missing or unparseable "time" means now.
//
// A whole-request error, EMALFORMED "Request body should not be empty." or
// "Request body is malformed and cannot be read." (not an array, or not
// JSON or msgpack at all), is returned as err, with nil events and errs.
func Batch(body []byte, contentType string, now time.Time) (events []herald.Event, errs []error, err error) {
	if isMsgpack(contentType) {
		return batchMsgpack(body, now)
	}
	return batchJSON(body, now)
}

// emptyBody reports whether body holds nothing but JSON whitespace.
func emptyBody(body []byte) bool {
	return len(bytes.TrimLeft(body, " \t\r\n")) == 0
}

// errTooManyFields is the error of an event with too many fields.
func errTooManyFields() error { return herald.Errorf(herald.EINVALID, "Event has too many columns.") }

// errEventTooLarge is the error of an event over herald.MaxEventBytes.
func errEventTooLarge() error { return herald.Errorf(herald.ETOOLARGE, "Event is too large.") }

// checkName returns the error for a field name an event may not use.
func checkName(name string) error {
	switch {
	case name == "":
		return herald.Invalid("", "invalid", "field names may not be empty")
	case strings.HasPrefix(name, "__"):
		return herald.Invalid(name, "invalid", "field names starting with __ are reserved")
	}
	return nil
}

// checkString returns the error for a string value over the limit.
func checkString(name, s string) error {
	if len(s) > herald.MaxStringBytes {
		return herald.Invalid(name, "invalid", "the value of %q is %d bytes long; strings may hold at most %d bytes", name, len(s), herald.MaxStringBytes)
	}
	return nil
}

// sampleRateOf converts a decoded samplerate to a rate of at least 1.
func sampleRateOf(f float64) (int64, bool) {
	if f != f || f < 0 || f >= 1<<63 || f != float64(int64(f)) {
		return 0, false
	}
	if f == 0 {
		return 1, true
	}
	return int64(f), true
}

func errSampleRate() error {
	return herald.Invalid("samplerate", "invalid", "samplerate must be a non-negative integer")
}
