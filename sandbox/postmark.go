package sandbox

// Placeholder: the postmark simulator is being written.

import (
	"net/http"
	"time"
)

type postmarkAPI struct{ s *Server }

func (s *Server) postmarkRoutes(mux *http.ServeMux) {}

func (postmarkAPI) partner() Partner                              { return "postmark" }
func (postmarkAPI) statusError(status int) response               { return response{status: status} }
func (postmarkAPI) throttled(v verdict) response                  { return response{status: 429} }
func (postmarkAPI) metadataRejected(key, value string) response   { return response{status: 400} }
func (postmarkAPI) successStatus() int                            { return 200 }
func (postmarkAPI) finalFate(*Message) Fate                       { return FateDelivered }
func (postmarkAPI) testModeEvents() bool                          { return false }
func (postmarkAPI) payloads(*Message, []Event) ([]payload, error) { return nil, nil }
func (postmarkAPI) retrySchedule() []time.Duration                { return nil }
func (postmarkAPI) stopsRetrying(int) bool                        { return false }
