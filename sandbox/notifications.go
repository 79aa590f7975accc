package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Notification is one request a notification channel (Slack, PagerDuty or
// the webhook receiver) received, whatever it answered, kept for inspection
// at GET /_sandbox/notifications. Headers are recorded as sent, secrets
// included: tests need them.
type Notification struct {
	// ID is the sandbox's own id for the request.
	ID      string  `json:"id"`
	Channel Partner `json:"channel"`
	// ReceivedAt is when the request arrived, in the sandbox's clock.
	ReceivedAt time.Time   `json:"received_at"`
	Method     string      `json:"method"`
	Path       string      `json:"path"`
	Query      string      `json:"query,omitempty"`
	Header     http.Header `json:"header"`
	// Body is the raw request body.
	Body string `json:"body"`
	// Name is the webhook receiver's name, from /_sandbox/hooks/{name}.
	Name string `json:"name,omitempty"`
	// Slack is the parsed payload of a Slack request, when it parsed.
	Slack *SlackMessage `json:"slack,omitempty"`
	// PagerDuty is the parsed event of a PagerDuty request, when it parsed.
	PagerDuty *PagerDutyEvent `json:"pagerduty,omitempty"`
	// JSON is a webhook receiver's body when it is JSON.
	JSON json.RawMessage `json:"json,omitempty"`
	// Accepted is set when the channel took the notification: Slack posted
	// it, PagerDuty processed the event, the receiver recorded it. A
	// request refused by validation, the rate limit or a fault is not.
	Accepted bool `json:"accepted"`
	// Answer is what the sandbox answered; nil while it still holds the
	// request (a latency or stall fault).
	Answer *Answer `json:"answer"`
}

// Answer is the response a notification channel gave.
type Answer struct {
	// Status is the HTTP status; 0 when there was none.
	Status int         `json:"status"`
	Header http.Header `json:"header,omitempty"`
	// Body is the response body, up to its first 64 KiB.
	Body string `json:"body"`
	// Dropped is set when no answer went out: the sandbox closed the
	// connection (drop_connection, stall) or the client gave up first.
	Dropped bool `json:"dropped,omitempty"`
}

// maxAnswerKept caps the answer body a notification keeps.
const maxAnswerKept = 64 << 10

// notifications keeps what the channels received, oldest first, up to a
// cap. It is safe for concurrent use.
type notifications struct {
	mu    sync.Mutex
	max   int
	seq   int
	notes []*Notification
	byID  map[string]*Notification
}

func newNotifications(max int) *notifications {
	return &notifications{max: max, byID: map[string]*Notification{}}
}

// add stores n with a new id. Past the cap the oldest tenth is forgotten
// at once, as in the mailbox.
func (ns *notifications) add(n *Notification) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	ns.seq++
	n.ID = strconv.Itoa(ns.seq)
	ns.notes = append(ns.notes, n)
	ns.byID[n.ID] = n
	if len(ns.notes) > ns.max+ns.max/10 {
		drop := len(ns.notes) - ns.max
		for _, old := range ns.notes[:drop] {
			delete(ns.byID, old.ID)
		}
		ns.notes = slices.Delete(ns.notes, 0, drop)
	}
}

// update runs f on the stored notification with the given id under the
// lock; a notification forgotten meanwhile is not updated.
func (ns *notifications) update(id string, f func(*Notification)) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if n, ok := ns.byID[id]; ok {
		f(n)
	}
}

// NotificationFilter selects notifications. Empty fields match all.
type NotificationFilter struct {
	Channel Partner
	// Name matches the webhook receiver's name.
	Name string
}

// list returns copies of the matching notifications, oldest first.
func (ns *notifications) list(f NotificationFilter) []Notification {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	out := []Notification{}
	for _, n := range ns.notes {
		if (f.Channel == "" || n.Channel == f.Channel) && (f.Name == "" || n.Name == f.Name) {
			out = append(out, n.clone())
		}
	}
	return out
}

func (ns *notifications) clear() {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	ns.notes = nil
	ns.byID = map[string]*Notification{}
}

// clone copies n deeply enough that the copy shares nothing the store
// writes to later. The parsed Slack and PagerDuty values are set once and
// never changed, so they are shared.
func (n *Notification) clone() Notification {
	c := *n
	c.Header = n.Header.Clone()
	c.JSON = slices.Clone(n.JSON)
	if n.Answer != nil {
		a := *n.Answer
		a.Header = n.Answer.Header.Clone()
		c.Answer = &a
	}
	return c
}

// Notifications returns copies of the notifications that match f, oldest
// first.
func (s *Server) Notifications(f NotificationFilter) []Notification { return s.notes.list(f) }

// ClearNotifications empties the notification store.
func (s *Server) ClearNotifications() { s.notes.clear() }

func (s *Server) handleNotifications(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := NotificationFilter{Channel: Partner(q.Get("channel")), Name: q.Get("name")}
	if f.Channel != "" && !slices.Contains(Channels, f.Channel) {
		writeControlError(w, http.StatusBadRequest, "unknown channel %q (want one of slack, pagerduty, webhook)", f.Channel)
		return
	}
	writeJSON(w, http.StatusOK, s.Notifications(f))
}

func (s *Server) handleClearNotifications(w http.ResponseWriter, r *http.Request) {
	s.notes.clear()
	w.WriteHeader(http.StatusNoContent)
}

// note is the handle a channel's handler has on the notification its
// request is being recorded as.
type note struct {
	ns *notifications
	id string
}

// set runs f on the recorded notification.
func (n note) set(f func(*Notification)) { n.ns.update(n.id, f) }

// receive wraps a channel's handler: it reads the body, records the request
// in the notification store before anything else happens to it (so a
// stalled request is visible while it is held), counts it, and records the
// answer once the handler is done. The handler reads the body again from
// r.Body, and fills in what it parsed through its note.
func (s *Server) receive(api service, h func(w http.ResponseWriter, r *http.Request, n note)) http.Handler {
	p := api.partner()
	return s.metrics.count(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				s.write(w, p, api.statusError(http.StatusRequestEntityTooLarge))
			}
			return
		}
		n := &Notification{Channel: p, ReceivedAt: s.clock.Now(), Method: r.Method, Path: r.URL.Path,
			Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(body)}
		s.notes.add(n)
		nt := note{ns: s.notes, id: n.ID}
		rec := &answerRecorder{ResponseWriter: w}
		defer func() {
			// Deferred so that a handler ended by http.ErrAbortHandler
			// (a dropped connection) still records it.
			a := rec.answer()
			nt.set(func(n *Notification) { n.Answer = &a })
			s.log.Debug("sandbox notification", "channel", p, "id", n.ID, "status", a.Status, "dropped", a.Dropped)
		}()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h(rec, r, nt)
	}))
}

// answerRecorder keeps the status, headers and the start of the body a
// channel's handler writes.
type answerRecorder struct {
	http.ResponseWriter
	status int
	header http.Header
	body   bytes.Buffer
}

func (a *answerRecorder) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
		a.header = a.ResponseWriter.Header().Clone()
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *answerRecorder) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.WriteHeader(http.StatusOK)
	}
	if room := maxAnswerKept - a.body.Len(); room > 0 {
		a.body.Write(b[:min(len(b), room)])
	}
	return a.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection to drop it.
func (a *answerRecorder) Unwrap() http.ResponseWriter { return a.ResponseWriter }

func (a *answerRecorder) answer() Answer {
	if a.status == 0 {
		return Answer{Dropped: true}
	}
	return Answer{Status: a.status, Header: a.header, Body: a.body.String()}
}
