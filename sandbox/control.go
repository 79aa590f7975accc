package sandbox

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// routes is the whole HTTP surface: the partners' APIs, the control API
// under /_sandbox/, and /metrics.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.sendgridRoutes(mux)
	s.postmarkRoutes(mux)
	s.mailgunRoutes(mux)
	s.sesRoutes(mux)
	s.slackRoutes(mux)
	s.pagerdutyRoutes(mux)
	s.hookRoutes(mux)

	mux.HandleFunc("GET /_sandbox/{$}", s.handleIndex)
	mux.HandleFunc("GET /_sandbox/messages", s.handleMessages)
	mux.HandleFunc("DELETE /_sandbox/messages", s.handleClearMessages)
	mux.HandleFunc("GET /_sandbox/messages/{id}", s.handleMessage)
	mux.HandleFunc("POST /_sandbox/messages/{id}/events", s.handleEmit)
	mux.HandleFunc("GET /_sandbox/faults", s.handleFaults)
	mux.HandleFunc("POST /_sandbox/faults", s.handleAddFault)
	mux.HandleFunc("DELETE /_sandbox/faults", s.handleClearFaults)
	mux.HandleFunc("DELETE /_sandbox/faults/{id}", s.handleRemoveFault)
	mux.HandleFunc("GET /_sandbox/webhooks", s.handleWebhooks)
	mux.HandleFunc("PUT /_sandbox/webhooks/{partner}", s.handleSetWebhook)
	mux.HandleFunc("DELETE /_sandbox/webhooks/{partner}", s.handleSetWebhook)
	mux.HandleFunc("GET /_sandbox/webhooks/attempts", s.handleWebhookAttempts)
	mux.HandleFunc("GET /_sandbox/limits", s.handleLimits)
	mux.HandleFunc("PUT /_sandbox/limits/{partner}", s.handleSetLimit)
	mux.HandleFunc("GET /_sandbox/keys", s.handleKeys)
	mux.HandleFunc("GET /_sandbox/ses/signing-cert.pem", s.handleSNSCert)
	mux.HandleFunc("GET /_sandbox/notifications", s.handleNotifications)
	mux.HandleFunc("DELETE /_sandbox/notifications", s.handleClearNotifications)
	mux.HandleFunc("POST /_sandbox/reset", s.handleReset)
	mux.Handle("GET /metrics", s.metrics.handler())
	return mux
}

// controlError is the control API's error body.
type controlError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeControlError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, controlError{Error: fmt.Sprintf(format, args...)})
}

// decodeControl reads a JSON body of at most 1 MiB into v, refusing
// unknown fields so that a typo is an error, not a silent no-op.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeControlError(w, http.StatusBadRequest, "invalid JSON body: %v", err)
		return false
	}
	return true
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"partners": Partners,
		"endpoints": []string{
			"GET /_sandbox/messages?partner=&to=&subject=&q=&message_id=&metadata_key=&metadata_value=&fate=",
			"GET /_sandbox/messages/{id}", "DELETE /_sandbox/messages",
			"POST /_sandbox/messages/{id}/events",
			"GET /_sandbox/faults", "POST /_sandbox/faults", "DELETE /_sandbox/faults", "DELETE /_sandbox/faults/{id}",
			"GET /_sandbox/webhooks", "PUT /_sandbox/webhooks/{partner}", "DELETE /_sandbox/webhooks/{partner}",
			"GET /_sandbox/webhooks/attempts",
			"GET /_sandbox/limits", "PUT /_sandbox/limits/{partner}",
			"GET /_sandbox/keys", "GET /_sandbox/ses/signing-cert.pem", "POST /_sandbox/reset",
			"GET /_sandbox/notifications?channel=&name=", "DELETE /_sandbox/notifications",
		},
		"channels": map[Partner]string{
			Slack:     "POST /services/{T}/{B}/{token}",
			PagerDuty: "POST /v2/enqueue",
			Webhook:   "POST /_sandbox/hooks/{name}",
		},
	})
}

func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := MessageFilter{
		Partner:       Partner(q.Get("partner")),
		To:            q.Get("to"),
		Subject:       q.Get("subject"),
		Text:          q.Get("q"),
		MessageID:     q.Get("message_id"),
		MetadataKey:   q.Get("metadata_key"),
		MetadataValue: q.Get("metadata_value"),
		Fate:          Fate(q.Get("fate")),
	}
	if f.Partner != "" {
		if _, err := ParsePartner(string(f.Partner)); err != nil {
			writeControlError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": s.Messages(f)})
}

// Messages returns copies of the mailbox's messages that match f, oldest first.
func (s *Server) Messages(f MessageFilter) []Message { return s.mailbox.list(f) }

// Message returns the message whose sandbox id or partner message id is id.
func (s *Server) Message(id string) (Message, bool) { return s.mailbox.get(id) }

func (s *Server) handleMessage(w http.ResponseWriter, r *http.Request) {
	m, ok := s.mailbox.get(r.PathValue("id"))
	if !ok {
		writeControlError(w, http.StatusNotFound, "no message %q", r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) handleClearMessages(w http.ResponseWriter, r *http.Request) {
	s.mailbox.clear()
	w.WriteHeader(http.StatusNoContent)
}

// EmitRequest asks for an event on an accepted message.
type EmitRequest struct {
	// Type is the event: delivered, bounced, dropped, deferred or complained.
	Type Fate `json:"type"`
	// Recipient limits the event to one recipient; empty means all.
	Recipient string `json:"recipient,omitempty"`
}

// Emit records an event of req.Type for the message with the given id and
// sends the partner's webhook for it now.
func (s *Server) Emit(id string, req EmitRequest) ([]Event, error) {
	if _, ok := ParseFate(string(req.Type)); !ok {
		return nil, fmt.Errorf("event type %q: want delivered, bounced, dropped, deferred or complained", req.Type)
	}
	m, ok := s.mailbox.get(id)
	if !ok {
		return nil, errNotFound
	}
	api := s.partnerAPI(m.Partner)
	if api == nil {
		return nil, fmt.Errorf("%s sends no event webhooks", m.Partner)
	}
	return s.emit(api, m.ID, req.Type, req.Recipient, 1)
}

func (s *Server) handleEmit(w http.ResponseWriter, r *http.Request) {
	var req EmitRequest
	if !decodeControl(w, r, &req) {
		return
	}
	evs, err := s.Emit(r.PathValue("id"), req)
	switch {
	case errors.Is(err, errNotFound):
		writeControlError(w, http.StatusNotFound, "no message %q", r.PathValue("id"))
	case err != nil:
		writeControlError(w, http.StatusUnprocessableEntity, "%v", err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"events": evs})
	}
}

// partnerAPI returns the pipeline view of an HTTP partner, nil for SMTP.
func (s *Server) partnerAPI(p Partner) partnerAPI {
	switch p {
	case SendGrid:
		return sendgridAPI{s}
	case Postmark:
		return postmarkAPI{s}
	case Mailgun:
		return mailgunAPI{s}
	case SES:
		return sesAPI{s}
	}
	return nil
}

// AddFault installs f and returns it with its id.
func (s *Server) AddFault(f Fault) (Fault, error) {
	if err := f.validate(); err != nil {
		return Fault{}, err
	}
	return s.faults.add(f), nil
}

// Faults lists the installed faults.
func (s *Server) Faults() []Fault { return s.faults.list() }

// RemoveFault removes the fault with the given id; it reports whether one was.
func (s *Server) RemoveFault(id string) bool { return s.faults.remove(id) }

func (s *Server) handleFaults(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"faults": s.faults.list()})
}

func (s *Server) handleAddFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if !decodeControl(w, r, &f) {
		return
	}
	f, err := s.AddFault(f)
	if err != nil {
		writeControlError(w, http.StatusUnprocessableEntity, "%v", err)
		return
	}
	s.log.Info("sandbox fault added", "id", f.ID, "kind", f.Kind, "partner", f.Partner)
	writeJSON(w, http.StatusCreated, f)
}

func (s *Server) handleRemoveFault(w http.ResponseWriter, r *http.Request) {
	if !s.faults.remove(r.PathValue("id")) {
		writeControlError(w, http.StatusNotFound, "no fault %q", r.PathValue("id"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleClearFaults(w http.ResponseWriter, r *http.Request) {
	s.faults.clear()
	w.WriteHeader(http.StatusNoContent)
}

// SetWebhook points partner p's event webhooks at url; an empty url stops them.
func (s *Server) SetWebhook(p Partner, url string) error {
	if _, err := ParsePartner(string(p)); err != nil {
		return err
	}
	if !p.sendsEventWebhooks() {
		return fmt.Errorf("%s has no event webhook", p)
	}
	if url != "" {
		if err := checkWebhookURL(url); err != nil {
			return fmt.Errorf("url: %w", err)
		}
	}
	s.hooks.setTarget(p, url)
	return nil
}

// WebhookAttempts returns the most recent event webhook attempts, oldest first.
func (s *Server) WebhookAttempts() []WebhookAttempt { return s.hooks.attemptList() }

func (s *Server) handleWebhooks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"targets": s.hooks.targetList()})
}

func (s *Server) handleSetWebhook(w http.ResponseWriter, r *http.Request) {
	var body struct {
		URL string `json:"url"`
	}
	if r.Method == http.MethodPut && !decodeControl(w, r, &body) {
		return
	}
	if r.Method == http.MethodPut && body.URL == "" {
		writeControlError(w, http.StatusUnprocessableEntity, "url is required; DELETE removes a target")
		return
	}
	if err := s.SetWebhook(Partner(r.PathValue("partner")), body.URL); err != nil {
		writeControlError(w, http.StatusUnprocessableEntity, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"targets": s.hooks.targetList()})
}

func (s *Server) handleWebhookAttempts(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"attempts": s.hooks.attemptList()})
}

func (s *Server) handleLimits(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"limits": s.limits.all()})
}

// SetLimit sets partner p's rate limit; a zero rate removes it.
func (s *Server) SetLimit(p Partner, rate Rate) error {
	if _, err := ParsePartner(string(p)); err != nil {
		return err
	}
	if rate.PerSecond < 0 || rate.Burst < 0 {
		return errors.New("per_second and burst must not be negative")
	}
	s.limits.set(p, rate)
	return nil
}

func (s *Server) handleSetLimit(w http.ResponseWriter, r *http.Request) {
	var rate Rate
	if !decodeControl(w, r, &rate) {
		return
	}
	if err := s.SetLimit(Partner(r.PathValue("partner")), rate); err != nil {
		writeControlError(w, http.StatusUnprocessableEntity, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"limits": s.limits.all()})
}

// Keys are the public halves and shared secrets a webhook receiver needs to
// verify the sandbox's event webhooks.
type Keys struct {
	// SendGridPublicKey is the base64 DER (PKIX) ECDSA key, as SendGrid's
	// signed-webhook settings return it.
	SendGridPublicKey string `json:"sendgrid_public_key"`
	// MailgunWebhookSigningKey is the HMAC key of Mailgun's signatures.
	MailgunWebhookSigningKey string `json:"mailgun_webhook_signing_key"`
	// SESSigningCertPEM is the certificate that signs SNS notifications.
	SESSigningCertPEM string `json:"ses_signing_cert_pem"`
	// SESTopicARN is the topic named in SNS notifications.
	SESTopicARN string `json:"ses_topic_arn"`
}

// Keys returns the verification keys of the sandbox's webhooks.
func (s *Server) Keys() Keys {
	der, err := x509.MarshalPKIXPublicKey(&s.keys.sendgrid.PublicKey)
	if err != nil {
		panic(err) // a P-256 key always marshals
	}
	return Keys{
		SendGridPublicKey:        base64.StdEncoding.EncodeToString(der),
		MailgunWebhookSigningKey: s.cfg.Credentials.MailgunWebhookSigningKey,
		SESSigningCertPEM:        string(s.keys.snsCert),
		SESTopicARN:              s.cfg.Credentials.SESTopicARN,
	}
}

func (s *Server) handleKeys(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Keys())
}

func (s *Server) handleSNSCert(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(s.keys.snsCert)
}

// Reset empties the mailbox and the notification store, removes every fault
// and forgets webhook attempts.
func (s *Server) Reset() {
	s.mailbox.clear()
	s.notes.clear()
	s.faults.clear()
	s.hooks.mu.Lock()
	s.hooks.attempts = nil
	s.hooks.mu.Unlock()
}

func (s *Server) handleReset(w http.ResponseWriter, r *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

// queryBool reads a partner's boolean form value ("yes", "true", "1").
func queryBool(v string) bool {
	switch strings.ToLower(v) {
	case "yes", "true", "1", "on":
		return true
	}
	return false
}
