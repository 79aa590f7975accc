package ingest

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Bounds of the epoch seconds ParseTime accepts: years 0001 to 9999.
const (
	minUnix = -62135596800
	maxUnix = 253402300799
)

// ParseTime parses an event time the way Honeycomb and Refinery do, and
// returns it in UTC.
//
// Strings may be RFC 3339 (with or without fractional seconds); all-digit
// strings are epoch seconds if 10 digits long, otherwise the first 10
// digits are seconds and the rest a fraction (milliseconds, microseconds,
// nanoseconds); other numeric strings ("1700000000.5") are epoch seconds.
// Numbers (json.Number, integers, floats) are epoch seconds, and a
// time.Time (a msgpack timestamp) is taken as is. Anything else, and any
// time outside the years 1–9999, means now.
func ParseTime(v any, now time.Time) time.Time {
	now = now.UTC()
	switch v := v.(type) {
	case time.Time:
		return v.UTC()
	case string:
		return parseTimeString(v, now)
	case []byte:
		return parseTimeString(string(v), now)
	case json.Number:
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return unixSeconds(n, 0, now)
		}
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			return unixFloat(f, now)
		}
	case int64:
		return unixSeconds(v, 0, now)
	case int:
		return unixSeconds(int64(v), 0, now)
	case int32:
		return unixSeconds(int64(v), 0, now)
	case uint64:
		if v <= math.MaxInt64 {
			return unixSeconds(int64(v), 0, now)
		}
	case uint32:
		return unixSeconds(int64(v), 0, now)
	case float64:
		return unixFloat(v, now)
	case float32:
		return unixFloat(float64(v), now)
	}
	return now
}

// parseTimeString parses the string forms of ParseTime.
func parseTimeString(s string, now time.Time) time.Time {
	if s == "" {
		return now
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC()
	}
	if allDigits(s) {
		if len(s) < 10 {
			return now
		}
		sec, err := strconv.ParseInt(s[:10], 10, 64)
		if err != nil {
			return now
		}
		// The fraction: its first nine digits, as nanoseconds.
		var nsec int64
		frac := s[10:]
		for i := range 9 {
			nsec *= 10
			if i < len(frac) {
				nsec += int64(frac[i] - '0')
			}
		}
		return unixSeconds(sec, nsec, now)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return now
	}
	return unixFloat(f, now)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// unixFloat returns the time f epoch seconds stand for, or now.
func unixFloat(f float64, now time.Time) time.Time {
	if math.IsNaN(f) || f < minUnix || f > maxUnix {
		return now
	}
	sec, frac := math.Modf(f)
	return unixSeconds(int64(sec), int64(math.Round(frac*1e9)), now)
}

// unixSeconds returns time.Unix(sec, nsec) in UTC, or now when sec is out
// of range.
func unixSeconds(sec, nsec int64, now time.Time) time.Time {
	if sec < minUnix || sec > maxUnix {
		return now
	}
	return time.Unix(sec, nsec).UTC()
}
