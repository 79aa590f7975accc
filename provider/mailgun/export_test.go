package mailgun

import (
	"strconv"
	"time"
)

// Remembered returns how many signature tokens w remembers.
func (w *EventWebhook) Remembered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.tokens.expiry)
}

// FillTokens remembers n made-up tokens until expires, as if n requests had
// been verified.
func (w *EventWebhook) FillTokens(n int, expires time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range n {
		w.tokens.add("filler-"+strconv.Itoa(i), expires)
	}
}
