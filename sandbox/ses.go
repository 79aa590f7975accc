package sandbox

// Placeholder: the ses simulator is being written.

import (
	"net/http"
	"time"
)

type sesAPI struct{ s *Server }

func (s *Server) sesRoutes(mux *http.ServeMux) {}

func (sesAPI) partner() Partner                              { return "ses" }
func (sesAPI) statusError(status int) response               { return response{status: status} }
func (sesAPI) throttled(v verdict) response                  { return response{status: 429} }
func (sesAPI) metadataRejected(key, value string) response   { return response{status: 400} }
func (sesAPI) successStatus() int                            { return 200 }
func (sesAPI) finalFate(*Message) Fate                       { return FateDelivered }
func (sesAPI) testModeEvents() bool                          { return false }
func (sesAPI) payloads(*Message, []Event) ([]payload, error) { return nil, nil }
func (sesAPI) retrySchedule() []time.Duration                { return nil }
func (sesAPI) stopsRetrying(int) bool                        { return false }
