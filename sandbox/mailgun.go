package sandbox

// Placeholder: the mailgun simulator is being written.

import (
	"net/http"
	"time"
)

type mailgunAPI struct{ s *Server }

func (s *Server) mailgunRoutes(mux *http.ServeMux) {}

func (mailgunAPI) partner() Partner                              { return "mailgun" }
func (mailgunAPI) statusError(status int) response               { return response{status: status} }
func (mailgunAPI) throttled(v verdict) response                  { return response{status: 429} }
func (mailgunAPI) metadataRejected(key, value string) response   { return response{status: 400} }
func (mailgunAPI) successStatus() int                            { return 200 }
func (mailgunAPI) finalFate(*Message) Fate                       { return FateDelivered }
func (mailgunAPI) testModeEvents() bool                          { return false }
func (mailgunAPI) payloads(*Message, []Event) ([]payload, error) { return nil, nil }
func (mailgunAPI) retrySchedule() []time.Duration                { return nil }
func (mailgunAPI) stopsRetrying(int) bool                        { return false }
