package sandbox

// Postmark's Email API, as documented at
// https://postmarkapp.com/developer/api/email-api and
// https://postmarkapp.com/developer/api/overview (reference/providers.md §2).

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

type postmarkAPI struct{ s *Server }

// postmarkTestToken validates a request and sends nothing.
const postmarkTestToken = "POSTMARK_API_TEST"

func (s *Server) postmarkRoutes(mux *http.ServeMux) {
	api := postmarkAPI{s}
	mux.Handle("POST /email", s.metrics.count(Postmark, http.HandlerFunc(api.handleSend)))
	mux.Handle("POST /email/batch", s.metrics.count(Postmark, http.HandlerFunc(api.handleBatch)))
}

// postmarkError is Postmark's error body: {"ErrorCode", "Message"}.
func postmarkError(status, code int, format string, args ...any) response {
	body, _ := json.Marshal(map[string]any{"ErrorCode": code, "Message": fmt.Sprintf(format, args...)})
	return jsonResponse(status, body)
}

func (postmarkAPI) partner() Partner { return Postmark }

func (postmarkAPI) statusError(status int) response {
	switch status {
	case http.StatusUnauthorized:
		return postmarkError(status, 10, "The Server Token you provided in the X-Postmark-Server-Token request header was invalid. Please verify that you are using a valid token.")
	case http.StatusUnprocessableEntity:
		return postmarkError(status, 300, "Invalid email request.")
	case http.StatusRequestEntityTooLarge:
		return postmarkError(status, 300, "Payload too large.")
	case http.StatusServiceUnavailable:
		return postmarkError(status, 100, "Maintenance. The Postmark API is offline for maintenance.")
	}
	return postmarkError(status, 0, "%s", http.StatusText(status))
}

func (postmarkAPI) throttled(verdict) response {
	return postmarkError(http.StatusTooManyRequests, 429, "Rate limit exceeded: too many requests. Please slow down and try again.")
}

func (postmarkAPI) metadataRejected(key, value string) response {
	return postmarkError(http.StatusUnprocessableEntity, 300, "Invalid metadata: the value of the field '%s' was rejected.", key)
}

func (postmarkAPI) successStatus() int { return http.StatusOK }

func (postmarkAPI) finalFate(*Message) Fate { return FateDelivered }

func (postmarkAPI) testModeEvents() bool { return false }

// Postmark retries a webhook 10 times over about 10.5 hours; a 403 stops it
// (https://postmarkapp.com/developer/webhooks/webhooks-overview).
var postmarkRetries = []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute,
	15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour}

func (postmarkAPI) retrySchedule() []time.Duration { return postmarkRetries }

func (postmarkAPI) stopsRetrying(status int) bool { return status == http.StatusForbidden }

// auth returns the token (for the rate limit) and whether it is the test
// token, or the answer to send.
func (api postmarkAPI) auth(r *http.Request) (string, bool, *response) {
	token := r.Header.Get("X-Postmark-Server-Token")
	switch {
	case token == "":
		resp := postmarkError(http.StatusUnauthorized, 10, "No Account or Server API tokens were supplied in the HTTP headers. Please add a header for either X-Postmark-Server-Token or X-Postmark-Account-Token.")
		return "", false, &resp
	case token == postmarkTestToken:
		return token, true, nil
	case subtle.ConstantTimeCompare([]byte(token), []byte(api.s.cfg.Credentials.PostmarkServerToken)) != 1:
		resp := api.statusError(http.StatusUnauthorized)
		return "", false, &resp
	}
	return token, false, nil
}

// postmarkEmail is one message of /email and /email/batch.
type postmarkEmail struct {
	From          string
	To            string
	Cc            string
	Bcc           string
	Subject       string
	Tag           string
	HtmlBody      string
	TextBody      string
	ReplyTo       string
	Headers       []struct{ Name, Value string }
	Metadata      json.RawMessage
	MessageStream string
	TrackOpens    json.RawMessage
	TrackLinks    string
	Attachments   json.RawMessage
}

// Postmark's limits (https://postmarkapp.com/support/article/1125; the
// metadata caps are recalled, not confirmed: reference/providers.md §8).
const (
	postmarkMaxRecipients   = 50
	postmarkMaxMetadata     = 10
	postmarkMaxMetadataKey  = 20
	postmarkMaxMetadataVal  = 80
	postmarkMaxTag          = 1000
	postmarkMaxBody         = 5 << 20
	postmarkMaxMessage      = 10 << 20
	postmarkMaxBatch        = 500
	postmarkMaxBatchRequest = 50 << 20
)

// postmarkResult is one message's answer.
type postmarkResult struct {
	ErrorCode   int
	Message     string
	MessageID   string `json:",omitempty"`
	SubmittedAt string `json:",omitempty"`
	To          string `json:",omitempty"`
}

// decode runs the shared steps of both endpoints — faults, auth, rate
// limit, size — and decodes the body into v. It reports whether the send is
// in test mode, or ok=false when it has already answered.
func (api postmarkAPI) decode(w http.ResponseWriter, r *http.Request, maxSize int, v any) (fx *applied, test, ok bool) {
	s := api.s
	body, fx, ok := s.begin(w, r, api)
	if !ok {
		return nil, false, false
	}
	token, test, fail := api.auth(r)
	if fail != nil {
		s.write(w, Postmark, *fail)
		return nil, false, false
	}
	if !s.limit(w, api, token) {
		return nil, false, false
	}
	if len(body) > maxSize {
		s.write(w, Postmark, api.statusError(http.StatusRequestEntityTooLarge))
		return nil, false, false
	}
	if !utf8.Valid(body) || json.Unmarshal(body, v) != nil {
		s.write(w, Postmark, postmarkError(http.StatusUnprocessableEntity, 402, "Received invalid JSON input."))
		return nil, false, false
	}
	return fx, test, true
}

func (api postmarkAPI) handleSend(w http.ResponseWriter, r *http.Request) {
	var e postmarkEmail
	fx, test, ok := api.decode(w, r, postmarkMaxMessage, &e)
	if !ok {
		return
	}
	res, m := api.one(e, fx, test)
	if res.ErrorCode != 0 {
		api.s.write(w, Postmark, postmarkError(http.StatusUnprocessableEntity, res.ErrorCode, "%s", res.Message))
		return
	}
	out, _ := json.Marshal(res)
	api.s.accept(api, m, fx)
	api.s.finish(w, api, fx, jsonResponse(http.StatusOK, out))
}

func (api postmarkAPI) handleBatch(w http.ResponseWriter, r *http.Request) {
	s := api.s
	var batch []postmarkEmail
	fx, test, ok := api.decode(w, r, postmarkMaxBatchRequest, &batch)
	if !ok {
		return
	}
	if len(batch) > postmarkMaxBatch {
		s.write(w, Postmark, postmarkError(http.StatusUnprocessableEntity, 410, "Too many batch messages: at most %d messages may be sent in one batch.", postmarkMaxBatch))
		return
	}
	// A batch answers 200 with a result per message, each with its own
	// ErrorCode: a failed item does not fail the request.
	results := make([]postmarkResult, len(batch))
	for i, e := range batch {
		res, m := api.one(e, fx, test)
		results[i] = res
		if res.ErrorCode == 0 {
			s.accept(api, m, fx)
		}
	}
	out, _ := json.Marshal(results)
	s.finish(w, api, fx, jsonResponse(http.StatusOK, out))
}

// one validates one message and, when it is valid, returns its success
// result and the message to accept.
func (api postmarkAPI) one(e postmarkEmail, fx *applied, test bool) (postmarkResult, *Message) {
	fail := func(code int, format string, args ...any) (postmarkResult, *Message) {
		return postmarkResult{ErrorCode: code, Message: fmt.Sprintf(format, args...)}, nil
	}
	if strings.TrimSpace(e.From) == "" {
		return fail(300, "Invalid 'From' address: ''.")
	}
	if _, err := mail.ParseAddress(e.From); err != nil {
		return fail(300, "Invalid 'From' address: '%s'.", e.From)
	}
	var rcpts []string
	for _, field := range []struct{ name, list string }{{"To", e.To}, {"Cc", e.Cc}, {"Bcc", e.Bcc}} {
		if strings.TrimSpace(field.list) == "" {
			continue
		}
		addrs, err := mail.ParseAddressList(field.list)
		if err != nil {
			return fail(300, "Error parsing '%s': Illegal email address '%s'. It must contain the '@' symbol.", field.name, strings.TrimSpace(field.list))
		}
		for _, a := range addrs {
			rcpts = append(rcpts, a.Address)
		}
	}
	if len(rcpts) == 0 {
		return fail(300, "Zero recipients specified")
	}
	if len(rcpts) > postmarkMaxRecipients {
		return fail(300, "Maximum of %d recipients allowed per message.", postmarkMaxRecipients)
	}
	if e.TextBody == "" && e.HtmlBody == "" {
		return fail(300, "Provide either email TextBody or HtmlBody or both.")
	}
	if len(e.TextBody) > postmarkMaxBody || len(e.HtmlBody) > postmarkMaxBody {
		return fail(300, "The TextBody and HtmlBody are limited to 5 MB each.")
	}
	if len(e.Tag) > postmarkMaxTag {
		return fail(300, "The Tag may be at most %d characters.", postmarkMaxTag)
	}
	md, res, bad := postmarkMetadata(e.Metadata)
	if bad {
		return res, nil
	}
	if key, value, refused := fx.rejectsMetadata(md); refused {
		var r postmarkResult
		json.Unmarshal(api.metadataRejected(key, value).body, &r)
		return r, nil
	}
	if !api.s.senderVerified(e.From) {
		return fail(400, "The 'From' address you supplied (%s) is not a Sender Signature on your account. Please add and confirm this address in order to be able to use it in the 'From' field of your messages.", e.From)
	}
	id := api.s.uuid()
	m := &Message{MessageID: id, From: e.From, Subject: e.Subject, Text: e.TextBody, HTML: e.HtmlBody, Metadata: md, TestMode: test}
	m.To, m.Cc, m.Bcc = splitList(e.To), splitList(e.Cc), splitList(e.Bcc)
	if e.Tag != "" {
		m.Tags = []string{e.Tag}
	}
	if len(e.Headers) > 0 {
		m.Headers = map[string]string{}
		for _, h := range e.Headers {
			m.Headers[h.Name] = h.Value
		}
	}
	res = postmarkResult{ErrorCode: 0, Message: "OK", MessageID: id, To: e.To,
		SubmittedAt: api.s.clock.Now().Format("2006-01-02T15:04:05.0000000-07:00")}
	if test {
		res.Message = "Test job accepted"
	}
	return res, m
}

// postmarkMetadata checks Metadata: an object of string values, keys unique
// case-insensitively, at most 10 fields, keys ≤ 20 and values ≤ 80
// characters.
func postmarkMetadata(raw json.RawMessage) (map[string]string, postmarkResult, bool) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, postmarkResult{}, false
	}
	fail := func(format string, args ...any) (map[string]string, postmarkResult, bool) {
		return nil, postmarkResult{ErrorCode: 300, Message: fmt.Sprintf(format, args...)}, true
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return fail("Metadata must be an object of string values.")
	}
	if len(obj) > postmarkMaxMetadata {
		return fail("Metadata may have at most %d fields.", postmarkMaxMetadata)
	}
	md := map[string]string{}
	seen := map[string]bool{}
	for k, v := range obj {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return fail("Metadata value for field '%s' must be a string.", k)
		}
		switch lower := strings.ToLower(k); {
		case k == "" || utf8.RuneCountInString(k) > postmarkMaxMetadataKey:
			return fail("Metadata field names must be 1 to %d characters; '%s' is not.", postmarkMaxMetadataKey, k)
		case utf8.RuneCountInString(s) > postmarkMaxMetadataVal:
			return fail("Metadata values may be at most %d characters; the value of '%s' is longer.", postmarkMaxMetadataVal, k)
		case seen[lower]:
			return fail("Metadata field names must be unique (case-insensitively); '%s' is repeated.", k)
		default:
			seen[lower] = true
			md[k] = s
		}
	}
	return md, postmarkResult{}, false
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// payloads renders Postmark's webhooks: one JSON object per event, with the
// message's Metadata and Tag echoed, authenticated by the basic auth in the
// target URL (the dispatcher adds it).
func (api postmarkAPI) payloads(m *Message, evs []Event) ([]payload, error) {
	tag := ""
	if len(m.Tags) > 0 {
		tag = m.Tags[0]
	}
	md := m.Metadata
	if md == nil {
		md = map[string]string{}
	}
	var out []payload
	for i, ev := range evs {
		at := ev.At.UTC().Format(time.RFC3339)
		e := map[string]any{"MessageID": m.MessageID, "MessageStream": "outbound", "ServerID": 1, "Tag": tag, "Metadata": md}
		bounce := func(typ string, code int, inactive bool, desc string) {
			e["RecordType"], e["ID"], e["Type"], e["TypeCode"], e["Name"] = "Bounce", 4000000000+int64(i), typ, code, typ
			e["Email"], e["From"], e["Subject"], e["BouncedAt"] = ev.Recipient, m.From, m.Subject, at
			e["Inactive"], e["CanActivate"], e["DumpAvailable"] = inactive, true, false
			e["Description"], e["Details"] = desc, ev.Reason
		}
		switch ev.Type {
		case FateDelivered:
			e["RecordType"], e["Recipient"], e["DeliveredAt"], e["Details"] = "Delivery", ev.Recipient, at, "smtp;250 2.0.0 OK"
		case FateBounced:
			bounce("HardBounce", 1, true, "The server was unable to deliver your message (ex: unknown user, mailbox not found).")
		case FateDeferred:
			bounce("Transient", 2, false, "The server could not temporarily deliver your message (ex: Message is delayed due to network troubles).")
		case FateDropped:
			bounce("Blocked", 100006, false, "The recipient's server blocked this message.")
		case FateComplained:
			bounce("SpamComplaint", 100001, true, "The subscriber explicitly marked this email as spam.")
			e["RecordType"] = "SpamComplaint"
		default:
			return nil, fmt.Errorf("postmark: no event for %q", ev.Type)
		}
		body, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("postmark: encode event: %w", err)
		}
		out = append(out, payload{body: body, header: contentType("application/json")})
	}
	return out, nil
}
