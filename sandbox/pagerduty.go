package sandbox

// The PagerDuty Events API v2, as documented at
// https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ (the
// event's fields and limits) and
// https://developer.pagerduty.com/docs/events-api-v2/overview/ (202, 400,
// 429 and 5xx; events of at most 512 KB) and
// https://developer.pagerduty.com/docs/events-api-v2/rate-limits/ (about
// 120 events a minute per integration key).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"
)

type pagerdutyAPI struct{ s *Server }

func (s *Server) pagerdutyRoutes(mux *http.ServeMux) {
	api := pagerdutyAPI{s}
	mux.Handle("POST /v2/enqueue", s.receive(api, api.handle))
}

// PagerDutyEvent is an Events API v2 event as the sandbox parsed it.
type PagerDutyEvent struct {
	RoutingKey  string `json:"routing_key"`
	EventAction string `json:"event_action"`
	// DedupKey is the key the event was processed under: the one sent, or
	// the one the sandbox generated for a trigger without one.
	DedupKey  string            `json:"dedup_key,omitempty"`
	Payload   *PagerDutyPayload `json:"payload,omitempty"`
	Links     []PagerDutyLink   `json:"links,omitempty"`
	Images    []PagerDutyImage  `json:"images,omitempty"`
	Client    string            `json:"client,omitempty"`
	ClientURL string            `json:"client_url,omitempty"`
}

// PagerDutyPayload is a trigger event's payload, in the PagerDuty Common
// Event Format.
type PagerDutyPayload struct {
	Summary       string          `json:"summary"`
	Source        string          `json:"source"`
	Severity      string          `json:"severity"`
	Timestamp     string          `json:"timestamp,omitempty"`
	Component     string          `json:"component,omitempty"`
	Group         string          `json:"group,omitempty"`
	Class         string          `json:"class,omitempty"`
	CustomDetails json.RawMessage `json:"custom_details,omitempty"`
}

// PagerDutyLink is one entry of an event's links.
type PagerDutyLink struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// PagerDutyImage is one entry of an event's images.
type PagerDutyImage struct {
	Src  string `json:"src"`
	Href string `json:"href,omitempty"`
	Alt  string `json:"alt,omitempty"`
}

// PagerDuty's documented limits.
const (
	pagerdutyRoutingKeyLen = 32
	pagerdutyMaxDedupKey   = 255
	pagerdutyMaxSummary    = 1024
	pagerdutyMaxEvent      = 512 << 10
)

// pagerdutyInvalid is PagerDuty's 400: {"status","message","errors"}.
func pagerdutyInvalid(status int, errs ...string) response {
	body, _ := json.Marshal(map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": errs})
	return jsonResponse(status, body)
}

func (pagerdutyAPI) partner() Partner { return PagerDuty }

func (api pagerdutyAPI) statusError(status int) response {
	switch status {
	case http.StatusBadRequest:
		return pagerdutyInvalid(status, "Event object is invalid")
	case http.StatusRequestEntityTooLarge:
		return pagerdutyInvalid(status, "Event object is too large: events are limited to 512 KB")
	case http.StatusTooManyRequests:
		return api.throttled(verdict{})
	}
	// PagerDuty documents no body for other errors; the sandbox answers
	// the same shape with the status text.
	body, _ := json.Marshal(map[string]string{"status": "error", "message": http.StatusText(status)})
	return jsonResponse(status, body)
}

// throttled is PagerDuty's 429, with no Retry-After: PagerDuty advises
// retrying with a backoff.
func (pagerdutyAPI) throttled(verdict) response {
	return jsonResponse(http.StatusTooManyRequests, []byte(`{"status":"throttle event","message":"Requests for this service are arriving too quickly. Please retry later."}`))
}

func (pagerdutyAPI) successStatus() int { return http.StatusAccepted }

// handle answers POST /v2/enqueue: faults, size, JSON, the rate limit of
// the routing key, then validation.
func (api pagerdutyAPI) handle(w http.ResponseWriter, r *http.Request, n note) {
	s := api.s
	body, fx, ok := s.begin(w, r, api)
	if !ok {
		return
	}
	if len(body) > pagerdutyMaxEvent {
		s.write(w, PagerDuty, pagerdutyInvalid(http.StatusBadRequest, "Event object is too large: events are limited to 512 KB"))
		return
	}
	ev, errs := parsePagerDutyEvent(body)
	if ev != nil && !s.limit(w, api, ev.RoutingKey) {
		return
	}
	if len(errs) > 0 {
		if ev != nil {
			n.set(func(n *Notification) { n.PagerDuty = ev })
		}
		s.write(w, PagerDuty, pagerdutyInvalid(http.StatusBadRequest, errs...))
		return
	}
	if ev.DedupKey == "" {
		ev.DedupKey = s.randomString(32, "0123456789abcdef")
	}
	n.set(func(n *Notification) { n.PagerDuty = ev; n.Accepted = true })
	s.metrics.accepted.WithLabelValues(string(PagerDuty)).Inc()
	out, _ := json.Marshal(map[string]string{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
	s.finish(w, api, fx, jsonResponse(http.StatusAccepted, out))
}

// parsePagerDutyEvent reads an event and checks it. It returns the event
// when the body is a JSON object of the right shape (nil otherwise), and
// every problem found, in PagerDuty's wording: an event with problems is
// refused as a whole. A trigger's dedup_key may be empty: PagerDuty
// generates one.
func parsePagerDutyEvent(body []byte) (*PagerDutyEvent, []string) {
	if !utf8.Valid(body) {
		return nil, []string{"Event object is not valid UTF-8"}
	}
	var ev PagerDutyEvent
	if !isObject(body) || json.Unmarshal(body, &ev) != nil {
		return nil, []string{"Event object is not valid JSON"}
	}
	var errs []string
	missing := func(field string) { errs = append(errs, fmt.Sprintf("'%s' is missing or blank", field)) }
	switch n := utf8.RuneCountInString(ev.RoutingKey); {
	case n == 0:
		missing("routing_key")
	case n != pagerdutyRoutingKeyLen:
		errs = append(errs, fmt.Sprintf("Length of 'routing_key' is incorrect (should be %d characters)", pagerdutyRoutingKeyLen))
	}
	switch ev.EventAction {
	case "":
		missing("event_action")
	case "trigger", "acknowledge", "resolve":
	default:
		errs = append(errs, "'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')")
	}
	if utf8.RuneCountInString(ev.DedupKey) > pagerdutyMaxDedupKey {
		errs = append(errs, fmt.Sprintf("Length of 'dedup_key' is incorrect (should be at most %d characters)", pagerdutyMaxDedupKey))
	}
	if ev.DedupKey == "" && (ev.EventAction == "acknowledge" || ev.EventAction == "resolve") {
		missing("dedup_key")
	}
	if ev.EventAction == "trigger" {
		errs = append(errs, checkPagerDutyPayload(ev.Payload)...)
	}
	for i, l := range ev.Links {
		if l.Href == "" {
			missing(fmt.Sprintf("links[%d].href", i))
		}
	}
	for i, img := range ev.Images {
		if img.Src == "" {
			missing(fmt.Sprintf("images[%d].src", i))
		}
	}
	return &ev, errs
}

// pagerdutyTimestamps are the forms of payload.timestamp the sandbox
// accepts: ISO 8601 with a colon in the offset or without (as in
// PagerDuty's own example, "2015-07-17T08:42:58.315+0000").
var pagerdutyTimestamps = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700"}

func checkPagerDutyPayload(p *PagerDutyPayload) []string {
	if p == nil {
		return []string{"'payload' is missing or blank"}
	}
	var errs []string
	switch n := utf8.RuneCountInString(p.Summary); {
	case n == 0:
		errs = append(errs, "'payload.summary' is missing or blank")
	case n > pagerdutyMaxSummary:
		errs = append(errs, fmt.Sprintf("Length of 'payload.summary' is incorrect (should be at most %d characters)", pagerdutyMaxSummary))
	}
	if p.Source == "" {
		errs = append(errs, "'payload.source' is missing or blank")
	}
	switch p.Severity {
	case "":
		errs = append(errs, "'payload.severity' is missing or blank")
	case "critical", "error", "warning", "info":
	default:
		errs = append(errs, "'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')")
	}
	if p.Timestamp != "" {
		valid := false
		for _, layout := range pagerdutyTimestamps {
			if _, err := time.Parse(layout, p.Timestamp); err == nil {
				valid = true
				break
			}
		}
		if !valid {
			errs = append(errs, "'payload.timestamp' is invalid (must be an ISO 8601 timestamp)")
		}
	}
	return errs
}
