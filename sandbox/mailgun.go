package sandbox

// Mailgun v3 Messages API and event webhooks, as documented at
// https://documentation.mailgun.com/docs/mailgun/api-reference/openapi-final/tag/Messages/,
// https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-http
// and https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/webhook-payloads
// (reference/providers.md §3).
//
// Where Mailgun does not document an answer, the sandbox's choice is marked
// "Sandbox choice" below and listed in docs/sandbox.md.

import (
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// mailgunAPI is the Mailgun partner as the shared pipeline sees it when no
// sending domain is known (events emitted through the control API).
type mailgunAPI struct{ s *Server }

// mailgunDomainAPI is mailgunAPI for one request to a sending domain, so
// that its 404 and 429 answers name the domain as Mailgun's do.
type mailgunDomainAPI struct {
	mailgunAPI
	domain string
}

func (s *Server) mailgunRoutes(mux *http.ServeMux) {
	api := mailgunAPI{s}
	mux.Handle("POST /v3/{domain}/messages", s.metrics.count(Mailgun, http.HandlerFunc(api.handleSend)))
}

// Limits from https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-http,
// the API reference's "Send options … are limited to 16 kB total" note and
// https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/track-tagging.
const (
	mailgunMaxOptions    = 16 << 10   // all o:, h: and v: parameters together
	mailgunMaxMessage    = 25 << 20   // text, html and attachments
	mailgunMaxRequest    = 54_945_382 // 52.4 MiB: the whole request
	mailgunMaxRecipients = 1000
	mailgunMaxTags       = 3
	mailgunMaxTagLen     = 128
)

// mailgunVariablesHeader carries template variables as a JSON object
// (https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-http
// "Attaching Metadata to Messages").
const mailgunVariablesHeader = "X-Mailgun-Variables"

// mailgunMessage is Mailgun's error body, {"message": "…"}.
func mailgunMessage(status int, format string, args ...any) response {
	body, _ := json.Marshal(map[string]string{"message": fmt.Sprintf(format, args...)})
	return jsonResponse(status, body)
}

// mailgunForbidden is Mailgun's answer to bad credentials: a plain-text
// body, not JSON.
func mailgunForbidden() response {
	return response{status: http.StatusUnauthorized, header: contentType("text/plain; charset=utf-8"), body: []byte("Forbidden")}
}

func (mailgunAPI) partner() Partner { return Mailgun }

func (api mailgunAPI) statusError(status int) response {
	return mailgunDomainAPI{api, ""}.statusError(status)
}

func (api mailgunDomainAPI) statusError(status int) response {
	switch status {
	case http.StatusUnauthorized:
		return mailgunForbidden()
	case http.StatusPaymentRequired:
		return mailgunMessage(status, "Request failed")
	case http.StatusNotFound:
		if api.domain != "" {
			return mailgunMessage(status, "Domain not found: %s", api.domain)
		}
	case http.StatusRequestEntityTooLarge:
		return mailgunMessage(status, "Request is too large: the limit is 52.4 MiB")
	}
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	return mailgunMessage(status, "%s", text)
}

func (api mailgunAPI) throttled(v verdict) response {
	return mailgunDomainAPI{api, ""}.throttled(v)
}

// throttled answers 429 "Domain <d> is not allowed to send: request limit
// exceeded, try again after <RFC 1123 date>" (reference/providers.md §3.3;
// https://documentation.mailgun.com/docs/mailgun/quickstart-guide/responses
// says to retry "as defined in the response"). Mailgun documents no
// Retry-After or rate-limit headers, so none are sent.
func (api mailgunDomainAPI) throttled(v verdict) response {
	after := time.Unix(ceilUnix(v.reset), 0).UTC().Format(http.TimeFormat)
	domain := "Domain"
	if api.domain != "" {
		domain = "Domain " + api.domain
	}
	return mailgunMessage(http.StatusTooManyRequests, "%s is not allowed to send: request limit exceeded, try again after %s", domain, after)
}

// metadataRejected answers as for a variable Mailgun refuses. Sandbox
// choice: Mailgun documents no per-variable rule, so the message names the
// parameter.
func (mailgunAPI) metadataRejected(key, value string) response {
	return mailgunMessage(http.StatusBadRequest, "'v:%s' parameter is not valid", key)
}

func (mailgunAPI) successStatus() int { return http.StatusOK }

func (mailgunAPI) finalFate(*Message) Fate { return FateDelivered }

// testModeEvents is true: with o:testmode Mailgun "will not actually deliver
// an email but will emit a delivered event with a 650 status code"
// (https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/pass-sending-options).
func (mailgunAPI) testModeEvents() bool { return true }

// mailgunRetries is the schedule of
// https://help.mailgun.com/hc/en-us/articles/202236504-Webhooks: 10 and 10
// minutes, 15 and 30 minutes, then 1, 2 and 4 hours. Delivered
// notifications are never retried (see payloads).
var mailgunRetries = []time.Duration{10 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour}

func (mailgunAPI) retrySchedule() []time.Duration { return mailgunRetries }

// stopsRetrying: a 406 Not Acceptable rejects the webhook for good.
func (mailgunAPI) stopsRetrying(status int) bool { return status == http.StatusNotAcceptable }

// authorized checks basic auth: user "api", password the API key.
func (api mailgunAPI) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	key := api.s.cfg.Credentials.MailgunAPIKey
	return ok && user == "api" && subtle.ConstantTimeCompare([]byte(pass), []byte(key)) == 1
}

// domain returns the configured sending domain equal to d, ignoring case.
func (api mailgunAPI) domain(d string) (string, bool) {
	for _, known := range api.s.cfg.Credentials.MailgunDomains {
		if strings.EqualFold(known, d) {
			return known, true
		}
	}
	return "", false
}

func (api mailgunAPI) handleSend(w http.ResponseWriter, r *http.Request) {
	s := api.s
	dapi := mailgunDomainAPI{api, r.PathValue("domain")}
	body, fx, ok := s.begin(w, r, dapi)
	if !ok {
		return
	}
	if !api.authorized(r) {
		s.write(w, Mailgun, mailgunForbidden())
		return
	}
	domain, known := api.domain(dapi.domain)
	if !known {
		s.write(w, Mailgun, mailgunMessage(http.StatusNotFound, "Domain not found: %s", dapi.domain))
		return
	}
	dapi.domain = domain
	// Mailgun's limits are per sending domain, as its 429 message says.
	if !s.limit(w, dapi, domain) {
		return
	}
	if len(body) > mailgunMaxRequest {
		s.write(w, Mailgun, dapi.statusError(http.StatusRequestEntityTooLarge))
		return
	}
	form, err := parseMailgunForm(r.Header, body)
	if err != nil {
		// Sandbox choice: Mailgun documents no answer to a body it cannot parse.
		s.write(w, Mailgun, mailgunMessage(http.StatusBadRequest, "Invalid request body: %v", err))
		return
	}
	m, fail := form.message()
	if fail != nil {
		s.write(w, Mailgun, *fail)
		return
	}
	if key, value, bad := fx.rejectsMetadata(m.Metadata); bad {
		s.write(w, Mailgun, api.metadataRejected(key, value))
		return
	}
	if m.From != "" && !s.senderVerified(m.From) {
		s.write(w, Mailgun, mailgunMessage(http.StatusBadRequest,
			"Domain %s is not allowed to send: the sender %s is not verified", domain, bareAddress(m.From)))
		return
	}
	id := "<" + s.clock.Now().UTC().Format("20060102150405") + "." + s.randomString(16, "0123456789abcdef") + "@" + domain + ">"
	m.MessageID = id
	s.accept(dapi, m, fx)
	ok200, _ := json.Marshal(map[string]string{"id": id, "message": "Queued. Thank you."})
	s.finish(w, dapi, fx, jsonResponse(http.StatusOK, ok200))
}

// mailgunParam is one form parameter, in request order.
type mailgunParam struct {
	name  string
	value string
	// size is the length of a file part (attachment or inline), whose
	// content the sandbox does not keep.
	size int
	file bool
}

// mailgunForm is a send request's parameters in request order; names may
// repeat (to, cc, bcc, o:tag, attachment).
type mailgunForm []mailgunParam

// parseMailgunForm reads a multipart/form-data or
// application/x-www-form-urlencoded body, gunzipping it first when
// Content-Encoding says gzip (Mailgun accepts both encodings and gzip). A
// body of any other type has no parameters, so it fails validation as one
// without a from.
func parseMailgunForm(h http.Header, body []byte) (mailgunForm, error) {
	if strings.EqualFold(strings.TrimSpace(h.Get("Content-Encoding")), "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		body, err = io.ReadAll(io.LimitReader(zr, mailgunMaxRequest+1))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if len(body) > mailgunMaxRequest {
			return nil, errors.New("gzip: body exceeds 52.4 MiB")
		}
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		return nil, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, fmt.Errorf("content type: %w", err)
	}
	switch mt {
	case "multipart/form-data":
		return parseMailgunMultipart(body, params["boundary"])
	case "application/x-www-form-urlencoded":
		return parseMailgunURLEncoded(string(body))
	}
	return nil, nil
}

func parseMailgunMultipart(body []byte, boundary string) (mailgunForm, error) {
	if boundary == "" {
		return nil, errors.New("multipart: no boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var form mailgunForm
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return form, nil
		}
		if err != nil {
			return nil, fmt.Errorf("multipart: %w", err)
		}
		name := part.FormName()
		if part.FileName() != "" {
			n, err := io.Copy(io.Discard, part)
			if err != nil {
				return nil, fmt.Errorf("multipart: %w", err)
			}
			form = append(form, mailgunParam{name: name, size: int(n), file: true})
			continue
		}
		v, err := io.ReadAll(part)
		if err != nil {
			return nil, fmt.Errorf("multipart: %w", err)
		}
		if name != "" {
			form = append(form, mailgunParam{name: name, value: string(v), size: len(v)})
		}
	}
}

// parseMailgunURLEncoded is url.ParseQuery keeping the parameters' order.
func parseMailgunURLEncoded(body string) (mailgunForm, error) {
	var form mailgunForm
	for piece := range strings.SplitSeq(body, "&") {
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return nil, fmt.Errorf("form: %w", err)
		}
		value, err := url.QueryUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("form: %w", err)
		}
		form = append(form, mailgunParam{name: name, value: value, size: len(value)})
	}
	return form, nil
}

// first returns the first non-empty value of the parameter name.
func (f mailgunForm) first(name string) string {
	for _, p := range f {
		if p.name == name && !p.file && p.value != "" {
			return p.value
		}
	}
	return ""
}

// values returns every non-empty value of the parameter name.
func (f mailgunForm) values(name string) []string {
	var out []string
	for _, p := range f {
		if p.name == name && !p.file && p.value != "" {
			out = append(out, p.value)
		}
	}
	return out
}

// message validates the form as Mailgun does, stopping at the first
// failure as Mailgun's single-message errors do, and returns the message
// it describes.
func (f mailgunForm) message() (*Message, *response) {
	bad := func(format string, args ...any) (*Message, *response) {
		r := mailgunMessage(http.StatusBadRequest, format, args...)
		return nil, &r
	}
	m := &Message{
		Subject: f.first("subject"),
		Text:    f.first("text"),
		HTML:    f.first("html"),
	}
	template := f.first("template")

	// From may be left out when a template supplies it (mailgun-go's
	// PlainMessage.IsValid: "From is not required if sending with a template
	// that has a pre-set From header").
	from := f.first("from")
	switch {
	case from == "" && template == "":
		return bad("'from' parameter is missing")
	case from != "":
		a, err := mail.ParseAddress(from)
		if err != nil {
			return bad("'from' parameter is not a valid address. please check documentation")
		}
		m.From = mailgunAddress(a)
	}

	// "You can use commas to separate multiple recipients"
	// (https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-http).
	lists := map[string]*[]string{"to": &m.To, "cc": &m.Cc, "bcc": &m.Bcc}
	for _, field := range []string{"to", "cc", "bcc"} {
		for _, v := range f.values(field) {
			list, err := mail.ParseAddressList(v)
			if err != nil {
				return bad("'%s' parameter is not a valid address. please check documentation", field)
			}
			for _, a := range list {
				*lists[field] = append(*lists[field], mailgunAddress(a))
			}
		}
	}
	if len(m.To) == 0 {
		return bad("'to' parameter is missing")
	}
	if n := len(m.recipients()); n > mailgunMaxRecipients {
		// Sandbox choice of wording: Mailgun documents the limit, not its message.
		return bad("Too many recipients: %d, the maximum is %d", n, mailgunMaxRecipients)
	}
	if m.Text == "" && m.HTML == "" && template == "" {
		return bad("Need at least one of 'text', 'html' or 'template' parameters specified")
	}

	size, options := len(m.Subject)+len(m.Text)+len(m.HTML), 0
	for _, p := range f {
		switch {
		case p.name == "attachment" || p.name == "inline" || p.name == "amp-html":
			size += p.size
		case strings.HasPrefix(p.name, "o:") || strings.HasPrefix(p.name, "h:") || strings.HasPrefix(p.name, "v:"):
			options += len(p.name) + len(p.value)
		}
	}
	if size > mailgunMaxMessage {
		// Sandbox choice of wording; the 25 MB limit is documented.
		r := mailgunMessage(http.StatusRequestEntityTooLarge, "Message size exceeds the 25 MB limit")
		return nil, &r
	}
	if options > mailgunMaxOptions {
		return bad("Send options (parameters starting with o:, h:, or v:) are limited to 16 kB total")
	}

	// Header names must be ASCII
	// (https://documentation.mailgun.com/docs/mailgun/api-reference/openapi-final/tag/Messages/).
	var variables map[string]string // from X-Mailgun-Variables
	for _, p := range f {
		name, ok := strings.CutPrefix(p.name, "h:")
		if !ok || p.file {
			continue
		}
		switch {
		case !isASCII(name):
			return bad("Header name must be pure ASCII: %s", name)
		case !mailgunHeaderName(name):
			// Sandbox choice: a name MIME cannot carry (empty, spaces,
			// control characters or a colon) is refused too.
			return bad("Header name is not valid: %q", name)
		}
		if strings.EqualFold(name, mailgunVariablesHeader) {
			vars, err := mailgunVariables(p.value)
			if err != nil {
				// Sandbox choice: Mailgun only says it "won't be able to
				// parse" such a header; the sandbox refuses it loudly.
				return bad("'%s' parameter is not a valid JSON", p.name)
			}
			if variables == nil {
				variables = map[string]string{}
			}
			maps.Copy(variables, vars)
		}
		if m.Headers == nil {
			m.Headers = map[string]string{}
		}
		m.Headers[name] = p.value
	}

	for _, p := range f {
		if p.name != "o:tag" || p.file {
			continue
		}
		if !isASCII(p.value) || len(p.value) > mailgunMaxTagLen {
			// Sandbox choice: the docs say tags "should be ascii only" with
			// at most 128 characters, without the error; the sandbox refuses.
			return bad("Tag must be ASCII and at most %d characters: %s", mailgunMaxTagLen, p.value)
		}
		if p.value == "" {
			continue
		}
		// "A single message may be marked with up to 3 tags." Sandbox
		// choice, from reports of Mailgun's behaviour: later tags are
		// dropped without an error.
		if len(m.Tags) < mailgunMaxTags {
			m.Tags = append(m.Tags, p.value)
		}
	}

	if rv := f.first("recipient-variables"); rv != "" {
		var obj map[string]json.RawMessage
		if !strings.HasPrefix(strings.TrimSpace(rv), "{") || json.Unmarshal([]byte(rv), &obj) != nil {
			return bad("'recipient-variables' parameter is not a valid JSON")
		}
	}

	// Metadata: X-Mailgun-Variables entries, then v: variables, which win
	// on a shared name (sandbox choice; Mailgun merges both into the
	// variables header).
	md := variables
	for _, p := range f {
		name, ok := strings.CutPrefix(p.name, "v:")
		if !ok || p.file || name == "" {
			continue
		}
		if md == nil {
			md = map[string]string{}
		}
		md[name] = p.value
	}
	if len(md) > 0 {
		m.Metadata = md
	}
	m.TestMode = queryBool(f.first("o:testmode"))
	return m, nil
}

// mailgunAddress renders an address as "Name <addr>" or "addr".
func mailgunAddress(a *mail.Address) string {
	if a.Name == "" {
		return a.Address
	}
	return a.Name + " <" + a.Address + ">"
}

// mailgunHeaderName reports whether s can be a MIME header name: printable
// ASCII without a colon (RFC 5322 §2.2).
func mailgunHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// mailgunVariables reads an X-Mailgun-Variables value: a JSON object whose
// values become strings, strings as they are and other values as compact
// JSON.
func mailgunVariables(v string) (map[string]string, error) {
	raw, err := mailgunRawVariables(v)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, rv := range raw {
		out[k] = mailgunVariableString(rv)
	}
	return out, nil
}

func mailgunRawVariables(v string) (map[string]json.RawMessage, error) {
	if !strings.HasPrefix(strings.TrimSpace(v), "{") {
		return nil, errors.New("not a JSON object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

func mailgunVariableString(rv json.RawMessage) string {
	var s string
	if json.Unmarshal(rv, &s) == nil {
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, rv) != nil {
		return string(rv)
	}
	return b.String()
}

// mailgunUserVariables is the event's user-variables: the message's
// variables, with X-Mailgun-Variables entries keeping their JSON type.
func mailgunUserVariables(m *Message) map[string]any {
	var raw map[string]json.RawMessage
	for k, v := range m.Headers {
		if strings.EqualFold(k, mailgunVariablesHeader) {
			raw, _ = mailgunRawVariables(v)
		}
	}
	uv := make(map[string]any, len(m.Metadata))
	for k, v := range m.Metadata {
		if rv, ok := raw[k]; ok && mailgunVariableString(rv) == v {
			uv[k] = rv
			continue
		}
		uv[k] = v
	}
	return uv
}

// payloads renders one webhook per event, {"signature": …, "event-data": …},
// signed with HMAC-SHA256 over timestamp ‖ token
// (https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks).
func (api mailgunAPI) payloads(m *Message, evs []Event) ([]payload, error) {
	mid := strings.Trim(m.MessageID, "<>")
	domain := mid[strings.LastIndexByte(mid, '@')+1:]
	tags := m.Tags
	if tags == nil {
		tags = []string{}
	}
	uv := mailgunUserVariables(m)
	var out []payload
	for _, ev := range evs {
		rcptDomain := ev.Recipient[strings.LastIndexByte(ev.Recipient, '@')+1:]
		data := map[string]any{
			"id":               mailgunEventID(ev.ID),
			"timestamp":        float64(ev.At.UnixMicro()) / 1e6,
			"recipient":        ev.Recipient,
			"recipient-domain": rcptDomain,
			"method":           "HTTP",
			"tags":             tags,
			"campaigns":        []any{},
			"user-variables":   uv,
			"flags": map[string]bool{
				"is-authenticated": true,
				"is-test-mode":     m.TestMode,
				"is-routed":        false,
				"is-system-test":   false,
			},
			"envelope": map[string]string{
				"sender":    bareAddress(m.From),
				"targets":   ev.Recipient,
				"transport": "smtp",
			},
			"message": map[string]any{
				"headers": map[string]string{
					"to":         strings.Join(m.To, ", "),
					"message-id": mid,
					"from":       m.From,
					"subject":    m.Subject,
				},
				"attachments": []any{},
				"size":        len(m.Subject) + len(m.Text) + len(m.HTML),
			},
			"domain": map[string]string{"name": domain},
		}
		code, enhanced, text := mailgunSMTPReply(ev.Reason)
		switch ev.Type {
		case FateDelivered:
			data["event"] = "delivered"
			data["log-level"] = "info"
			status := map[string]any{"code": 250, "message": "OK", "description": "", "attempt-no": 1,
				"session-seconds": 0.5, "mx-host": "mx." + rcptDomain, "tls": true, "certificate-verified": true, "utf8": true}
			if m.TestMode {
				status = map[string]any{"code": 650, "message": "", "description": "Test mode", "attempt-no": 1, "session-seconds": 0.0}
			}
			data["delivery-status"] = status
		case FateBounced:
			data["event"] = "failed"
			data["log-level"] = "error"
			data["severity"] = "permanent"
			data["reason"] = "bounce"
			data["delivery-status"] = map[string]any{"code": code, "enhanced-code": enhanced, "message": text,
				"description": "", "attempt-no": 1, "session-seconds": 0.5, "mx-host": "mx." + rcptDomain}
		case FateDropped:
			data["event"] = "failed"
			data["log-level"] = "error"
			data["severity"] = "permanent"
			data["reason"] = "suppress-bounce"
			data["delivery-status"] = map[string]any{"code": 605, "message": "",
				"description": "Not delivering to previously bounced address", "attempt-no": 1, "session-seconds": 0.0}
		case FateDeferred:
			data["event"] = "failed"
			data["log-level"] = "warn"
			data["severity"] = "temporary"
			data["reason"] = "generic"
			data["delivery-status"] = map[string]any{"code": code, "enhanced-code": enhanced, "message": text,
				"description": "", "attempt-no": 1, "session-seconds": 0.5, "retry-seconds": 600, "mx-host": "mx." + rcptDomain}
		case FateComplained:
			data["event"] = "complained"
			data["log-level"] = "warn"
		default:
			return nil, fmt.Errorf("mailgun: no event for %q", ev.Type)
		}
		body, err := json.Marshal(map[string]any{"signature": api.sign(), "event-data": data})
		if err != nil {
			return nil, fmt.Errorf("mailgun: encode event: %w", err)
		}
		// "Mailgun will retry … other than for delivery notification"
		// (https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/webhook-retries).
		out = append(out, payload{body: body, header: contentType("application/json"), once: ev.Type == FateDelivered})
	}
	return out, nil
}

// sign returns a webhook signature for now and a fresh random token.
func (api mailgunAPI) sign() map[string]string {
	ts := strconv.FormatInt(api.s.clock.Now().Unix(), 10)
	token := api.s.randomString(50, "0123456789abcdef")
	mac := hmac.New(sha256.New, []byte(api.s.cfg.Credentials.MailgunWebhookSigningKey))
	mac.Write([]byte(ts + token))
	return map[string]string{"timestamp": ts, "token": token, "signature": hex.EncodeToString(mac.Sum(nil))}
}

// mailgunEventID renders a sandbox event id (a UUID) in the shape of
// Mailgun's: 22 characters of URL-safe base64.
func mailgunEventID(id string) string {
	b, err := hex.DecodeString(strings.ReplaceAll(id, "-", ""))
	if err != nil {
		return id
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// mailgunSMTPReply splits "550 5.1.1 text" into its code, enhanced code and
// text.
func mailgunSMTPReply(reply string) (code int, enhanced, text string) {
	fields := strings.SplitN(reply, " ", 3)
	if len(fields) < 3 {
		return 0, "", reply
	}
	code, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0, "", reply
	}
	if slices.ContainsFunc([]byte(fields[1]), func(c byte) bool { return c != '.' && (c < '0' || c > '9') }) {
		return code, "", fields[1] + " " + fields[2]
	}
	return code, fields[1], fields[2]
}
