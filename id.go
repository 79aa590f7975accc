package herald

import (
	"crypto/rand"
	"time"
)

// idAlphabet is Crockford's base32, lower case: ids sort by time as text.
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// NewID returns a new identifier: prefix, then 10 characters of
// millisecond time and 16 random characters (80 bits), so that ids sort
// by creation time and never collide in practice.
func NewID(prefix string, now time.Time) string {
	out := make([]byte, len(prefix)+26)
	copy(out, prefix)
	ms := uint64(now.UnixMilli())
	for i := 9; i >= 0; i-- {
		out[len(prefix)+i] = idAlphabet[ms&31]
		ms >>= 5
	}
	var random [16]byte
	rand.Read(random[:]) // never fails (crypto/rand)
	for i, c := range random {
		out[len(prefix)+10+i] = idAlphabet[c&31]
	}
	return string(out)
}
