package sandbox

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"

	"herald/clock"
)

// payload is one webhook request a partner sends.
type payload struct {
	body   []byte
	header http.Header
	// sign, when set, authenticates each attempt as it goes out (SendGrid
	// signs the timestamp of the attempt, Postmark uses the URL's userinfo).
	sign func(h http.Header, body []byte, now time.Time)
	// once, when set, is never retried (Mailgun does not retry delivered
	// notifications).
	once bool
}

// WebhookAttempt is one POST of an event webhook, kept for inspection at
// GET /_sandbox/webhooks/attempts.
type WebhookAttempt struct {
	Partner Partner `json:"partner"`
	// URL is the target with any password removed.
	URL       string    `json:"url"`
	MessageID string    `json:"message_id"`
	Attempt   int       `json:"attempt"`
	At        time.Time `json:"at"`
	// Status is the receiver's HTTP status, 0 when the request failed.
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
	// Outcome is "delivered", "retrying" or "gave_up".
	Outcome string `json:"outcome"`
}

const maxAttemptsKept = 1000

// dispatcher posts event webhooks and retries them on each partner's
// schedule, in the sandbox's clock.
type dispatcher struct {
	s      *Server
	clock  clock.Clock
	client *http.Client

	mu       sync.Mutex
	targets  map[Partner]string
	timers   map[*timerRef]struct{}
	attempts []WebhookAttempt
	closed   bool
	ctx      context.Context
	cancel   context.CancelFunc
}

type timerRef struct{ t clock.Timer }

func newDispatcher(s *Server, targets map[Partner]string) *dispatcher {
	ctx, cancel := context.WithCancel(context.Background())
	d := &dispatcher{s: s, clock: s.clock, client: s.cfg.HTTPClient, targets: map[Partner]string{},
		timers: map[*timerRef]struct{}{}, ctx: ctx, cancel: cancel}
	for p, u := range targets {
		d.targets[p] = u
	}
	return d
}

// checkWebhookURL accepts an absolute http or https URL.
func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an absolute http or https URL")
	}
	return nil
}

func (d *dispatcher) setTarget(p Partner, u string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if u == "" {
		delete(d.targets, p)
	} else {
		d.targets[p] = u
	}
}

func (d *dispatcher) targetList() map[Partner]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[Partner]string{}
	for p, u := range d.targets {
		out[p] = redactURL(u)
	}
	return out
}

func (d *dispatcher) attemptList() []WebhookAttempt {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]WebhookAttempt{}, d.attempts...)
}

func (d *dispatcher) hasTarget(p Partner) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.targets[p]
	return ok
}

// after runs f once delay has passed in the sandbox's clock, unless the
// dispatcher is closed first.
func (d *dispatcher) after(delay time.Duration, f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	ref := &timerRef{}
	ref.t = d.clock.AfterFunc(delay, func() {
		d.mu.Lock()
		delete(d.timers, ref)
		closed := d.closed
		d.mu.Unlock()
		if !closed {
			f()
		}
	})
	d.timers[ref] = struct{}{}
}

// send posts pl to the partner's target now, then retries on failure.
// Without a target it does nothing: the events stay in the mailbox.
func (d *dispatcher) send(api partnerAPI, messageID string, pl payload) {
	d.mu.Lock()
	target, ok := d.targets[api.partner()]
	d.mu.Unlock()
	if ok {
		d.attempt(api, target, messageID, pl, 1)
	}
}

func (d *dispatcher) attempt(api partnerAPI, target, messageID string, pl payload, n int) {
	p := api.partner()
	status, err := d.post(target, pl)
	rec := WebhookAttempt{Partner: p, URL: redactURL(target), MessageID: messageID, Attempt: n, At: d.clock.Now(), Status: status}
	if err != nil {
		rec.Error = err.Error()
	}
	schedule := api.retrySchedule()
	switch {
	case err == nil && status >= 200 && status < 300:
		rec.Outcome = "delivered"
	case (err == nil && api.stopsRetrying(status)) || n > len(schedule) || pl.once:
		rec.Outcome = "gave_up"
	default:
		rec.Outcome = "retrying"
		d.after(schedule[n-1], func() { d.attempt(api, target, messageID, pl, n+1) })
	}
	d.s.metrics.webhooks.WithLabelValues(string(p), rec.Outcome).Inc()
	d.s.log.Debug("sandbox webhook", "partner", p, "url", rec.URL, "attempt", n, "status", status, "outcome", rec.Outcome, "error", rec.Error)
	d.mu.Lock()
	d.attempts = append(d.attempts, rec)
	if len(d.attempts) > maxAttemptsKept {
		d.attempts = d.attempts[len(d.attempts)-maxAttemptsKept:]
	}
	d.mu.Unlock()
}

func (d *dispatcher) post(target string, pl payload) (int, error) {
	u, err := url.Parse(target)
	if err != nil {
		return 0, err
	}
	user := u.User
	u.User = nil
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, u.String(), bytes.NewReader(pl.body))
	if err != nil {
		return 0, err
	}
	for k, vs := range pl.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("User-Agent", "herald-sandbox")
	if user != nil {
		pw, _ := user.Password()
		req.SetBasicAuth(user.Username(), pw)
	}
	if pl.sign != nil {
		pl.sign(req.Header, pl.body, d.clock.Now())
	}
	resp, err := d.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is recorded apart, without its password
		}
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// close cancels pending retries and in-flight posts.
func (d *dispatcher) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	for ref := range d.timers {
		ref.t.Stop()
	}
	d.timers = nil
	d.cancel()
}

// redactURL removes the password from a URL for display.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}
