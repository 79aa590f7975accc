package sandbox

// The generic webhook receiver: any number of named endpoints that record
// what they receive and answer 200, for herald's webhook channel. Faults make
// a receiver slow, failing, silent (stall: a receiver that times out) or
// hanging up.

import (
	"encoding/json"
	"net/http"
)

type hookAPI struct{ s *Server }

func (s *Server) hookRoutes(mux *http.ServeMux) {
	api := hookAPI{s}
	mux.Handle("POST /_sandbox/hooks/{name}", s.receive(api, api.handle))
}

func (hookAPI) partner() Partner { return Webhook }

// statusError answers {"ok":false,"error":"<status text>"}, the shape of
// the receiver's success answer.
func (hookAPI) statusError(status int) response {
	body, _ := json.Marshal(map[string]any{"ok": false, "error": http.StatusText(status)})
	return jsonResponse(status, body)
}

// throttled answers 429 with Retry-After: 1, as a typical receiver behind a
// rate limiter does.
func (api hookAPI) throttled(verdict) response {
	resp := api.statusError(http.StatusTooManyRequests)
	resp.header.Set("Retry-After", "1")
	return resp
}

func (hookAPI) successStatus() int { return http.StatusOK }

// handle answers POST /_sandbox/hooks/{name}: faults, the rate limit of the
// receiver, then 200 {"ok":true}. Any body is accepted; a JSON one is also
// recorded parsed.
func (api hookAPI) handle(w http.ResponseWriter, r *http.Request, n note) {
	s := api.s
	name := r.PathValue("name")
	n.set(func(n *Notification) { n.Name = name })
	body, fx, ok := s.begin(w, r, api)
	if !ok {
		return
	}
	if !s.limit(w, api, name) {
		return
	}
	n.set(func(n *Notification) {
		if json.Valid(body) {
			n.JSON = json.RawMessage(body)
		}
		n.Accepted = true
	})
	s.metrics.accepted.WithLabelValues(string(Webhook)).Inc()
	s.finish(w, api, fx, jsonResponse(http.StatusOK, []byte(`{"ok":true}`)))
}
