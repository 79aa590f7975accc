package sandbox

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// response is one answer in a partner's own shape.
type response struct {
	status int
	header http.Header
	body   []byte
}

// service is what every simulated HTTP service — an email partner or a
// notification channel — gives the shared steps begin, limit and finish:
// its name and its own answers.
type service interface {
	partner() Partner
	// statusError answers an injected status fault in the service's error
	// shape for that status.
	statusError(status int) response
	// throttled answers a request refused by the rate limit.
	throttled(v verdict) response
	// successStatus is the status of an accepted request, used when a body
	// fault replaces the documented success body.
	successStatus() int
}

// partnerAPI is what each simulated email partner gives the shared
// pipeline beyond a service: its validation and how it turns events into
// webhooks.
type partnerAPI interface {
	service
	// metadataRejected answers a message whose metadata entry key=value
	// the partner refuses (the reject_metadata fault), exactly as it
	// answers a real validation failure of that field.
	metadataRejected(key, value string) response
	// finalFate returns the fate the partner gives an accepted message when
	// no fault decides otherwise (SES's simulator addresses, for example).
	finalFate(m *Message) Fate
	// testModeEvents reports whether a test-mode message still emits events.
	testModeEvents() bool
	// payloads renders the webhook requests the partner sends for evs.
	payloads(m *Message, evs []Event) ([]payload, error)
	// retrySchedule is the wait before each webhook retry.
	retrySchedule() []time.Duration
	// stopsRetrying reports whether a webhook answer ends retries although
	// it is not a success (Postmark's 403, Mailgun's 406).
	stopsRetrying(status int) bool
}

// maxRequestBody caps what the sandbox reads of one request; it is above
// every partner's documented size limit, so those limits answer in the
// partner's own shape first.
const maxRequestBody = 64 << 20

// begin runs what every partner request shares before authentication: it
// reads the body and fires the faults that do not depend on the message
// (latency, stall, gateway 502, status). It returns ok=false when it has
// already answered.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, api service) (body []byte, fx *applied, ok bool) {
	p := api.partner()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.write(w, p, api.statusError(http.StatusRequestEntityTooLarge))
		}
		return nil, nil, false
	}
	fx = s.faults.roll(p, s.float64)
	for _, f := range fx.faults {
		if f.Kind != FaultRejectMetadata {
			s.metrics.faults.WithLabelValues(string(p), string(f.Kind)).Inc()
		}
	}
	if f, ok := fx.has(FaultLatency); ok {
		if !sleep(r.Context(), time.Duration(f.Delay)) {
			return nil, nil, false
		}
	}
	if f, ok := fx.has(FaultStall); ok {
		d := time.Duration(f.Delay)
		if d == 0 {
			d = 24 * time.Hour
		}
		sleep(r.Context(), d)
		dropConnection(w)
		return nil, nil, false
	}
	if _, ok := fx.has(FaultGateway502); ok {
		s.write(w, p, gateway502())
		return nil, nil, false
	}
	if f, ok := fx.has(FaultStatus); ok {
		if f.Status == http.StatusTooManyRequests {
			s.write(w, p, api.throttled(verdict{limit: 1, reset: s.clock.Now().Add(time.Second)}))
		} else {
			s.write(w, p, api.statusError(f.Status))
		}
		return nil, nil, false
	}
	return body, fx, true
}

// limit spends one request of cred's rate limit; when none is left it
// answers the partner's throttling response and returns false.
func (s *Server) limit(w http.ResponseWriter, api service, cred string) bool {
	v := s.limits.take(api.partner(), cred)
	if !v.ok {
		s.write(w, api.partner(), api.throttled(v))
	}
	return v.ok
}

// accept stores m as accepted and schedules its events, as the faults fired
// for its request direct. m must have its partner fields and MessageID set.
func (s *Server) accept(api partnerAPI, m *Message, fx *applied) {
	p := api.partner()
	m.Partner = p
	m.ReceivedAt = s.clock.Now()
	s.metrics.accepted.WithLabelValues(string(p)).Inc()
	switch {
	case m.TestMode && !api.testModeEvents():
		m.Fate = FateTest
		s.mailbox.add(m)
		return
	case hasFault(fx, FaultNeverConfirm):
		m.Fate = FateUnconfirmed
		s.mailbox.add(m)
		return
	}
	fate := api.finalFate(m)
	if f, ok := fx.has(FaultAcceptThenFail); ok {
		fate = f.Fate
		if fate == "" {
			fate = FateBounced
		}
	}
	copies := 1
	if f, ok := fx.has(FaultDuplicateWebhooks); ok {
		copies = max(f.Copies, 2)
	}
	m.Fate = FateAccepted
	s.mailbox.add(m)
	id := m.ID
	s.hooks.after(s.cfg.EventDelay, func() { s.emit(api, id, fate, "", copies) })
}

func hasFault(fx *applied, k FaultKind) bool {
	_, ok := fx.has(k)
	return ok
}

// emit records events of type fate for the message id (for one recipient,
// or all when recipient is empty) and sends the partner's webhooks for them.
func (s *Server) emit(api partnerAPI, id string, fate Fate, recipient string, copies int) ([]Event, error) {
	var evs []Event
	var snapshot Message
	now := s.clock.Now()
	found := s.mailbox.update(id, func(m *Message) {
		for _, rcpt := range m.recipients() {
			if recipient != "" && !equalFoldAddress(rcpt, recipient) {
				continue
			}
			types := []Fate{fate}
			if fate == FateComplained {
				types = []Fate{FateDelivered, FateComplained}
			}
			for _, t := range types {
				evs = append(evs, Event{ID: s.uuid(), Type: t, Recipient: bareAddress(rcpt), At: now, Reason: reasonFor(t)})
			}
		}
		m.Events = append(m.Events, evs...)
		if len(evs) > 0 {
			m.Fate = fate
		}
		snapshot = m.clone()
	})
	if !found {
		return nil, errNotFound
	}
	if len(evs) == 0 {
		return nil, errors.New("no recipient of the message matches")
	}
	if !s.hooks.hasTarget(api.partner()) {
		return evs, nil // recorded in the mailbox; nobody to tell
	}
	pls, err := api.payloads(&snapshot, evs)
	if err != nil {
		s.log.Error("sandbox: render webhook", "partner", api.partner(), "error", err)
		return evs, err
	}
	for range copies {
		for _, pl := range pls {
			s.hooks.send(api, snapshot.MessageID, pl)
		}
	}
	return evs, nil
}

var errNotFound = errors.New("not found")

func equalFoldAddress(a, b string) bool {
	return strings.EqualFold(bareAddress(a), bareAddress(b))
}

// reasonFor is the bounce or drop text the simulated recipient server gives.
func reasonFor(f Fate) string {
	switch f {
	case FateBounced:
		return "550 5.1.1 The email account that you tried to reach does not exist"
	case FateDropped:
		return "Bounced Address"
	case FateDeferred:
		return "451 4.7.1 Greylisted, please try again later"
	}
	return ""
}

// finish answers an accepted send with ok, unless a body fault fired: then
// it answers the success status with an empty, garbage or HTML body, or
// drops the connection without an answer.
func (s *Server) finish(w http.ResponseWriter, api service, fx *applied, ok response) {
	p := api.partner()
	switch {
	case hasFault(fx, FaultDropConnection):
		dropConnection(w)
	case hasFault(fx, FaultEmptyBody):
		s.write(w, p, response{status: api.successStatus()})
	case hasFault(fx, FaultGarbageBody):
		s.write(w, p, response{status: api.successStatus(), header: contentType("application/json"), body: []byte("\x1f\x8b\x08garbage{\"Mess")})
	case hasFault(fx, FaultHTMLBody):
		s.write(w, p, response{status: api.successStatus(), header: contentType("text/html"), body: []byte("<html><body><h1>Service temporarily unavailable</h1></body></html>\n")})
	default:
		s.write(w, p, ok)
	}
}

// write sends resp.
func (s *Server) write(w http.ResponseWriter, p Partner, resp response) {
	for k, vs := range resp.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.status)
	w.Write(resp.body)
}

func contentType(ct string) http.Header { return http.Header{"Content-Type": {ct}} }

func jsonResponse(status int, body []byte) response {
	return response{status: status, header: contentType("application/json"), body: body}
}

// gateway502 is the page an nginx gateway in front of a partner answers.
func gateway502() response {
	return response{status: http.StatusBadGateway, header: contentType("text/html"), body: []byte(
		"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")}
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // closes the connection on HTTP/2 too
	}
	conn.Close()
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
