package sandbox

// SendGrid v3 Mail Send, as documented at
// https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send and
// https://docs.sendgrid.com/api-reference/mail-send/limitations
// (reference/providers.md §1).

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

type sendgridAPI struct{ s *Server }

func (s *Server) sendgridRoutes(mux *http.ServeMux) {
	api := sendgridAPI{s}
	mux.Handle("POST /v3/mail/send", s.metrics.count(SendGrid, http.HandlerFunc(api.handleSend)))
	mux.Handle("GET /v3/user/webhooks/event/settings/signed", s.metrics.count(SendGrid, http.HandlerFunc(api.handleSignedSettings)))
}

const sendgridHelp = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"

// sendgridError is one entry of SendGrid's {"errors": […]} body.
type sendgridError struct {
	Message string  `json:"message"`
	Field   *string `json:"field"`
	Help    *string `json:"help"`
}

func sgErr(field, help, format string, args ...any) sendgridError {
	e := sendgridError{Message: fmt.Sprintf(format, args...)}
	if field != "" {
		e.Field = &field
	}
	if help != "" {
		h := sendgridHelp + "#message." + help
		e.Help = &h
	}
	return e
}

func sendgridErrors(status int, errs ...sendgridError) response {
	body, _ := json.Marshal(map[string]any{"errors": errs})
	return jsonResponse(status, body)
}

func (sendgridAPI) partner() Partner { return SendGrid }

func (sendgridAPI) statusError(status int) response {
	switch status {
	case http.StatusUnauthorized:
		return sendgridErrors(status, sgErr("", "", "authorization required"))
	case http.StatusForbidden:
		return sendgridErrors(status, sgErr("", "", "access forbidden"))
	case http.StatusRequestEntityTooLarge:
		return sendgridErrors(status, sgErr("", "", "The JSON payload you have included in your request is too large. Please limit your payload to 30MB."))
	}
	return sendgridErrors(status, sgErr("", "", "%s", strings.ToLower(http.StatusText(status))))
}

func (sendgridAPI) throttled(v verdict) response {
	r := sendgridErrors(http.StatusTooManyRequests, sgErr("", "", "too many requests"))
	r.header.Set("X-RateLimit-Limit", strconv.Itoa(v.limit))
	r.header.Set("X-RateLimit-Remaining", "0")
	r.header.Set("X-RateLimit-Reset", strconv.FormatInt(ceilUnix(v.reset), 10))
	return r
}

// ceilUnix is t in whole Unix seconds, rounded up, so that waiting until
// then is always long enough.
func ceilUnix(t time.Time) int64 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return sec
}

func (sendgridAPI) metadataRejected(key, value string) response {
	return sendgridErrors(http.StatusBadRequest,
		sgErr("custom_args", "custom_args", "The custom_args value for the key %q is invalid.", key))
}

func (sendgridAPI) successStatus() int { return http.StatusAccepted }

func (sendgridAPI) finalFate(*Message) Fate { return FateDelivered }

func (sendgridAPI) testModeEvents() bool { return false }

// SendGrid retries any non-2xx answer with backoff for up to 24 hours.
var sendgridRetries = []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute,
	8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 8 * time.Hour}

func (sendgridAPI) retrySchedule() []time.Duration { return sendgridRetries }

func (sendgridAPI) stopsRetrying(int) bool { return false }

// sendgridAuth checks the bearer key; it returns the key for the rate
// limit, or the answer to send.
func (api sendgridAPI) auth(r *http.Request) (string, *response) {
	h := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || key == "" {
		resp := sendgridErrors(http.StatusUnauthorized, sgErr("", "", "authorization required"))
		return "", &resp
	}
	if subtle.ConstantTimeCompare([]byte(key), []byte(api.s.cfg.Credentials.SendGridAPIKey)) != 1 {
		resp := sendgridErrors(http.StatusUnauthorized, sgErr("", "", "The provided authorization grant is invalid, expired, or revoked"))
		return "", &resp
	}
	return key, nil
}

func (api sendgridAPI) handleSignedSettings(w http.ResponseWriter, r *http.Request) {
	if _, fail := api.auth(r); fail != nil {
		api.s.write(w, SendGrid, *fail)
		return
	}
	body, _ := json.Marshal(map[string]any{"enabled": true, "public_key": api.s.Keys().SendGridPublicKey})
	api.s.write(w, SendGrid, jsonResponse(http.StatusOK, body))
}

// sendgridMail is the part of the v3 mail/send body the sandbox checks.
// Fields whose type SendGrid validates are json.RawMessage, so a wrong type
// becomes a field error rather than a decode failure.
type sendgridMail struct {
	Personalizations []sendgridPersonalization `json:"personalizations"`
	From             *sendgridAddress          `json:"from"`
	ReplyTo          *sendgridAddress          `json:"reply_to"`
	Subject          string                    `json:"subject"`
	Content          []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"content"`
	TemplateID   string          `json:"template_id"`
	Headers      json.RawMessage `json:"headers"`
	Categories   json.RawMessage `json:"categories"`
	CustomArgs   json.RawMessage `json:"custom_args"`
	SendAt       int64           `json:"send_at"`
	MailSettings struct {
		SandboxMode struct {
			Enable json.RawMessage `json:"enable"`
		} `json:"sandbox_mode"`
	} `json:"mail_settings"`
}

type sendgridPersonalization struct {
	To         []sendgridAddress `json:"to"`
	Cc         []sendgridAddress `json:"cc"`
	Bcc        []sendgridAddress `json:"bcc"`
	Subject    string            `json:"subject"`
	Headers    json.RawMessage   `json:"headers"`
	CustomArgs json.RawMessage   `json:"custom_args"`
	SendAt     int64             `json:"send_at"`
}

type sendgridAddress struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

func (a sendgridAddress) String() string {
	if a.Name == "" {
		return a.Email
	}
	return a.Name + " <" + a.Email + ">"
}

// sendgridReservedHeaders may not be set through headers.
var sendgridReservedHeaders = []string{"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
	"content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc"}

const (
	sendgridMaxCustomArgs  = 10000
	sendgridMaxCategories  = 10
	sendgridMaxCategoryLen = 255
	sendgridMaxRecipients  = 1000
	sendgridMaxAddressLen  = 320
	sendgridMaxSize        = 30 << 20
	sendgridMaxSendAhead   = 72 * time.Hour
)

func (api sendgridAPI) handleSend(w http.ResponseWriter, r *http.Request) {
	s := api.s
	body, fx, ok := s.begin(w, r, api)
	if !ok {
		return
	}
	key, fail := api.auth(r)
	if fail != nil {
		s.write(w, SendGrid, *fail)
		return
	}
	if r.Header.Get("Accept") == "" {
		s.write(w, SendGrid, sendgridErrors(http.StatusNotAcceptable, sgErr("", "", "Missing Accept header. For example: Accept: application/json")))
		return
	}
	if !s.limit(w, api, key) {
		return
	}
	if len(body) >= sendgridMaxSize {
		s.write(w, SendGrid, api.statusError(http.StatusRequestEntityTooLarge))
		return
	}
	if !utf8.Valid(body) {
		s.write(w, SendGrid, sendgridErrors(http.StatusUnsupportedMediaType, sgErr("", "", "Invalid UTF-8 in request")))
		return
	}
	msgs, test, errs := api.parse(body)
	if len(errs) > 0 {
		s.write(w, SendGrid, sendgridErrors(http.StatusBadRequest, errs...))
		return
	}
	for _, m := range msgs {
		if key, value, bad := fx.rejectsMetadata(m.Metadata); bad {
			s.write(w, SendGrid, api.metadataRejected(key, value))
			return
		}
	}
	if !s.senderVerified(msgs[0].From) {
		s.write(w, SendGrid, sendgridErrors(http.StatusForbidden, sgErr("from", "from",
			"The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved. Visit https://sendgrid.com/docs/for-developers/sending-email/sender-identity/ to see the Sender Identity requirements")))
		return
	}
	id := s.randomString(22, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
	for _, m := range msgs {
		m.MessageID = id
		m.TestMode = test
		s.accept(api, m, fx)
	}
	ok200 := response{status: http.StatusAccepted, header: http.Header{"X-Message-Id": {id}}}
	if test {
		ok200.status = http.StatusOK
	}
	s.finish(w, api, fx, ok200)
}

// parse validates a mail/send body the way SendGrid does, collecting every
// field error, and returns one message per personalization.
func (api sendgridAPI) parse(body []byte) ([]*Message, bool, []sendgridError) {
	var mail sendgridMail
	if err := json.Unmarshal(body, &mail); err != nil {
		return nil, false, []sendgridError{sgErr("", "", "Bad Request")}
	}
	var errs []sendgridError
	add := func(e sendgridError) { errs = append(errs, e) }

	test := false
	if en := mail.MailSettings.SandboxMode.Enable; len(en) > 0 && string(en) != "null" {
		if err := json.Unmarshal(en, &test); err != nil {
			add(sgErr("mail_settings.sandbox_mode.enable", "mail_settings.sandbox_mode.enable", "The mail_settings.sandbox_mode.enable parameter must be a boolean."))
		}
	}
	if mail.From == nil || mail.From.Email == "" {
		add(sgErr("from.email", "from", "The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter.  e.g. {\"email\" : \"example@example.com\"}  or {\"email\" : \"example@example.com\", \"name\" : \"Example Recipient\"}."))
	} else if !validEmail(mail.From.Email) {
		add(sgErr("from.email", "from", "The from email does not contain a valid address."))
	}
	if len(mail.Personalizations) == 0 {
		add(sgErr("personalizations", "personalizations", "The personalizations field is required and must have at least one personalization."))
	}
	if len(mail.Personalizations) > sendgridMaxRecipients {
		add(sgErr("personalizations", "personalizations", "The personalizations field has too many personalizations; at most %d are allowed.", sendgridMaxRecipients))
	}
	if mail.TemplateID == "" {
		if len(mail.Content) == 0 {
			add(sgErr("content", "content", "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block. We typically suggest both text/plain and text/html blocks are included, but only one block is required."))
		}
		for i, c := range mail.Content {
			if c.Value == "" {
				add(sgErr(fmt.Sprintf("content.%d.value", i), "content.value", "The content value must be a string at least one character in length."))
			}
			if c.Type == "" {
				add(sgErr(fmt.Sprintf("content.%d.type", i), "content.type", "The content type must be provided and be at least one character."))
			}
			if i > 0 && c.Type == "text/plain" {
				add(sgErr(fmt.Sprintf("content.%d.type", i), "content.type", "The text/plain content type must be the first content block."))
			}
		}
	}
	headers := api.checkHeaders("headers", mail.Headers, add)
	tags := api.checkCategories(mail.Categories, add)
	global := api.checkCustomArgs("custom_args", mail.CustomArgs, add)
	api.checkSendAt("send_at", mail.SendAt, add)

	seen := map[string]bool{}
	total := 0
	var msgs []*Message
	for i, p := range mail.Personalizations {
		at := fmt.Sprintf("personalizations.%d", i)
		if len(p.To) == 0 {
			add(sgErr(at+".to", "personalizations.to", "The to array is required for all personalization objects, and must have at least one email object with a valid email address."))
		}
		for _, group := range []struct {
			kind string
			list []sendgridAddress
		}{{"to", p.To}, {"cc", p.Cc}, {"bcc", p.Bcc}} {
			kind, list := group.kind, group.list
			for j, a := range list {
				total++
				field := fmt.Sprintf("%s.%s.%d.email", at, kind, j)
				lower := strings.ToLower(a.Email)
				switch {
				case !validEmail(a.Email) || len(a.Email) > sendgridMaxAddressLen:
					add(sgErr(field, "personalizations."+kind, "Does not contain a valid address."))
				case seen[lower]:
					add(sgErr(field, "personalizations", "Each email address in the personalization block should be unique between to, cc, and bcc. We found the first duplicate instance of [%s] in the personalizations.%d.%s field.", a.Email, i, kind))
				}
				seen[lower] = true
			}
		}
		subject := p.Subject
		if subject == "" {
			subject = mail.Subject
		}
		if subject == "" && mail.TemplateID == "" {
			add(sgErr("subject", "subject", "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined."))
		}
		phead := api.checkHeaders(at+".headers", p.Headers, add)
		pargs := api.checkCustomArgs(at+".custom_args", p.CustomArgs, add)
		api.checkSendAt(at+".send_at", p.SendAt, add)
		merged := map[string]string{}
		for k, v := range global {
			merged[k] = v
		}
		for k, v := range pargs {
			merged[k] = v
		}
		if size := customArgsSize(merged); size > sendgridMaxCustomArgs {
			add(sgErr(at+".custom_args", "custom_args", "The custom arguments for this personalization, merged with the global custom arguments, total %d bytes; they may be no more than %d bytes.", size, sendgridMaxCustomArgs))
		}
		allHeaders := map[string]string{}
		for k, v := range headers {
			allHeaders[k] = v
		}
		for k, v := range phead {
			allHeaders[k] = v
		}
		m := &Message{
			To: addresses(p.To), Cc: addresses(p.Cc), Bcc: addresses(p.Bcc),
			Subject: subject, Tags: tags, Headers: allHeaders,
		}
		if mail.From != nil {
			m.From = mail.From.String()
		}
		if len(merged) > 0 {
			m.Metadata = merged
		}
		for _, c := range mail.Content {
			switch c.Type {
			case "text/plain":
				m.Text = c.Value
			case "text/html":
				m.HTML = c.Value
			}
		}
		msgs = append(msgs, m)
	}
	if total > sendgridMaxRecipients {
		add(sgErr("personalizations", "personalizations", "The total number of recipients must be no more than %d. This includes all recipients defined within the to, cc, and bcc parameters, across each object that you include in the personalizations array.", sendgridMaxRecipients))
	}
	return msgs, test, errs
}

func addresses(list []sendgridAddress) []string {
	out := make([]string, 0, len(list))
	for _, a := range list {
		out = append(out, a.String())
	}
	return out
}

// checkCustomArgs requires an object whose values are all strings.
func (api sendgridAPI) checkCustomArgs(field string, raw json.RawMessage, add func(sendgridError)) map[string]string {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		add(sgErr(field, "custom_args", "The %s parameter must be an object whose values are strings.", field))
		return nil
	}
	out := make(map[string]string, len(obj))
	keys := slices.Sorted(maps.Keys(obj))
	for _, k := range keys {
		var v string
		if err := json.Unmarshal(obj[k], &v); err != nil {
			add(sgErr(field+"."+k, "custom_args", "Invalid type. Expected: string, given: %s.", jsonType(obj[k])))
			continue
		}
		out[k] = v
	}
	return out
}

// customArgsSize is the size SendGrid counts: the args as a JSON object.
func customArgsSize(args map[string]string) int {
	if len(args) == 0 {
		return 0
	}
	b, _ := json.Marshal(args)
	return len(b)
}

func (api sendgridAPI) checkCategories(raw json.RawMessage, add func(sendgridError)) []string {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var cats []string
	if err := json.Unmarshal(raw, &cats); err != nil {
		add(sgErr("categories", "categories", "The categories parameter must be an array of strings."))
		return nil
	}
	if len(cats) > sendgridMaxCategories {
		add(sgErr("categories", "categories", "Too many categories. You may include no more than %d categories per request.", sendgridMaxCategories))
	}
	seen := map[string]bool{}
	for i, c := range cats {
		field := fmt.Sprintf("categories.%d", i)
		switch {
		case len(c) > sendgridMaxCategoryLen:
			add(sgErr(field, "categories", "A category cannot have more than %d characters.", sendgridMaxCategoryLen))
		case !isASCII(c):
			add(sgErr(field, "categories", "Categories may only contain ASCII characters."))
		case seen[c]:
			add(sgErr(field, "categories", "Each category must be unique; %q appears more than once.", c))
		}
		seen[c] = true
	}
	return cats
}

func (api sendgridAPI) checkHeaders(field string, raw json.RawMessage, add func(sendgridError)) map[string]string {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		add(sgErr(field, "headers", "The headers parameter must be an object of header names and string values."))
		return nil
	}
	out := map[string]string{}
	seen := map[string]bool{}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		lower := strings.ToLower(k)
		var v string
		switch {
		case json.Unmarshal(obj[k], &v) != nil:
			add(sgErr(field+"."+k, "headers", "Invalid type. Expected: string, given: %s.", jsonType(obj[k])))
		case k == "" || !isASCII(k) || strings.ContainsAny(k, " \t:"):
			add(sgErr(field, "headers", "Header names must be ASCII and may not contain spaces; %q is invalid.", k))
		case slices.Contains(sendgridReservedHeaders, lower):
			add(sgErr(field+"."+k, "headers", "The header %q is reserved and cannot be set.", k))
		case seen[lower]:
			add(sgErr(field+"."+k, "headers", "The header %q is set more than once.", k))
		default:
			out[k] = v
		}
		seen[lower] = true
	}
	return out
}

func (api sendgridAPI) checkSendAt(field string, at int64, add func(sendgridError)) {
	if at == 0 {
		return
	}
	if time.Unix(at, 0).After(api.s.clock.Now().Add(sendgridMaxSendAhead)) {
		add(sgErr(field, "send_at", "The send_at parameter may not be more than 72 hours in the future."))
	}
}

// payloads renders SendGrid's event webhook: one JSON array per batch,
// custom args flattened to the top level (reserved keys win), signed with
// ECDSA over the timestamp and the raw body at each attempt.
func (api sendgridAPI) payloads(m *Message, evs []Event) ([]payload, error) {
	var batch []map[string]any
	for _, ev := range evs {
		e := map[string]any{}
		for k, v := range m.Metadata {
			e[k] = v
		}
		e["email"] = ev.Recipient
		e["timestamp"] = ev.At.Unix()
		e["smtp-id"] = "<" + m.MessageID + "@ismtpd0001p1iad2.sendgrid.net>"
		e["sg_event_id"] = base64.RawURLEncoding.EncodeToString([]byte(ev.ID))
		e["sg_message_id"] = m.MessageID + ".filterdrecv-" + strings.ReplaceAll(ev.ID, "-", "")[:12] + "-1-0.0"
		if len(m.Tags) > 0 {
			e["category"] = m.Tags
		}
		switch ev.Type {
		case FateDelivered:
			e["event"] = "delivered"
			e["response"] = "250 2.0.0 OK"
		case FateBounced:
			e["event"] = "bounce"
			e["type"] = "bounce"
			e["status"] = "5.1.1"
			e["reason"] = ev.Reason
		case FateDropped:
			e["event"] = "dropped"
			e["reason"] = ev.Reason
			e["status"] = "5.0.0"
		case FateDeferred:
			e["event"] = "deferred"
			e["response"] = ev.Reason
			e["attempt"] = "1"
		case FateComplained:
			e["event"] = "spamreport"
		default:
			return nil, fmt.Errorf("sendgrid: no event for %q", ev.Type)
		}
		batch = append(batch, e)
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return nil, fmt.Errorf("sendgrid: encode events: %w", err)
	}
	key := api.s.keys.sendgrid
	return []payload{{
		body:   body,
		header: contentType("application/json"),
		sign: func(h http.Header, body []byte, now time.Time) {
			ts := strconv.FormatInt(now.Unix(), 10)
			h.Set("X-Twilio-Email-Event-Webhook-Timestamp", ts)
			h.Set("X-Twilio-Email-Event-Webhook-Signature", signSendGrid(key, ts, body))
		},
	}}, nil
}

// signSendGrid is base64(DER(ECDSA(SHA-256(timestamp ‖ body)))).
func signSendGrid(key *ecdsa.PrivateKey, ts string, body []byte) string {
	sum := sha256.Sum256(append([]byte(ts), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		panic(err) // only a broken random source fails here
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// validEmail is a permissive check: something@something.something, no
// spaces, no angle brackets.
func validEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.ContainsAny(s, " \t\r\n<>,;") {
		return false
	}
	return strings.Contains(s[at+1:], ".")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// jsonType names a JSON value's type as validators do.
func jsonType(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "null"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	if bytes.ContainsAny(raw, ".eE") {
		return "number"
	}
	return "integer"
}
