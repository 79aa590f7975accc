package sandbox

// Amazon SES API v2 SendEmail, as documented at
// https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html
// and modelled in aws-sdk-go-v2/service/sesv2 (reference/providers.md §4),
// with its events published through a configuration set to an SNS HTTP/S
// subscription.

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"time"
)

type sesAPI struct{ s *Server }

func (s *Server) sesRoutes(mux *http.ServeMux) {
	api := sesAPI{s}
	mux.Handle("POST /v2/email/outbound-emails", s.metrics.count(SES, api.stamp(http.HandlerFunc(api.handleSend))))
}

// stamp adds what every AWS answer carries: x-amzn-RequestId, and a Date
// in the service's clock, from which the SDK corrects its clock skew after
// an InvalidSignatureException (aws/retry clock skew correction).
func (api sesAPI) stamp(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", api.s.clock.Now().UTC().Format(http.TimeFormat))
		w.Header().Set("X-Amzn-Requestid", api.s.uuid())
		h.ServeHTTP(w, r)
	})
}

// Limits of SendEmail.
const (
	// https://docs.aws.amazon.com/ses/latest/dg/quotas.html: 40 MB per
	// message with API v2, and 50 recipients per message.
	sesMaxMessageSize = 40 << 20
	sesMaxRecipients  = 50
	// types.MessageTag: name and value of at most 256 characters.
	sesMaxTagLen = 256
	// types.MessageHeader: a name of at most 126 characters, a value of at
	// most 995, both together at most 996.
	sesMaxHeaderName     = 126
	sesMaxHeaderValue    = 995
	sesMaxHeaderCombined = 996
	// Configuration set names: "Configuration set name cannot exceed 64
	// characters."
	sesMaxConfigSetName = 64
)

// sesError is the REST-JSON error shape: the exception name in
// X-Amzn-ErrorType and {"message": …} as the body, which is how the SDK's
// restjson1 deserializer identifies the error.
func sesError(status int, typ, format string, args ...any) response {
	body, _ := json.Marshal(map[string]string{"message": fmt.Sprintf(format, args...)})
	r := jsonResponse(status, body)
	r.header.Set("X-Amzn-ErrorType", typ)
	return r
}

func sesBadRequest(format string, args ...any) *response {
	r := sesError(http.StatusBadRequest, "BadRequestException", format, args...)
	return &r
}

// sesValidation is the AWS-wide message for a member that fails its model
// constraint.
func sesValidation(value, at, constraint string) *response {
	return sesBadRequest("1 validation error detected: Value %s at '%s' failed to satisfy constraint: %s", value, at, constraint)
}

func sesNull(at string) *response {
	return sesValidation("null", at, "Member must not be null")
}

func (sesAPI) partner() Partner { return SES }

// statusError answers with the exception the SES v2 model maps to each
// status, or AWS's common errors for the others
// (https://docs.aws.amazon.com/ses/latest/APIReference/CommonErrors.html).
func (api sesAPI) statusError(status int) response {
	switch status {
	case http.StatusBadRequest:
		return sesError(status, "BadRequestException", "The input you provided is invalid.")
	case http.StatusUnauthorized:
		return sesError(status, "UnrecognizedClientException", "The security token included in the request is invalid.")
	case http.StatusForbidden:
		return sesError(status, "AccessDeniedException", "User: arn:aws:iam::%s:user/herald-sandbox is not authorized to perform: ses:SendEmail", api.accountID())
	case http.StatusNotFound:
		return sesError(status, "NotFoundException", "The resource you attempted to access doesn't exist.")
	case http.StatusConflict:
		return sesError(status, "ConcurrentModificationException", "The resource is being modified by another operation or thread.")
	case http.StatusRequestEntityTooLarge:
		return sesError(status, "RequestEntityTooLargeException", "Request Entity Too Large")
	case http.StatusTooManyRequests:
		return api.throttled(verdict{})
	case http.StatusInternalServerError:
		return sesError(status, "InternalServiceErrorException", "The request couldn't be processed because an error occurred with the Amazon SES API v2.")
	case http.StatusServiceUnavailable:
		return sesError(status, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
	}
	if status >= 500 {
		return sesError(status, "InternalFailure", "The request processing has failed because of an unknown error, exception or failure.")
	}
	return sesError(status, "BadRequestException", "The input you provided is invalid.")
}

// throttled is SES v2's answer to a send over the account's sending rate
// (alphagov/notifications-api#4310).
func (sesAPI) throttled(verdict) response {
	return sesError(http.StatusTooManyRequests, "TooManyRequestsException", "Maximum sending rate exceeded.")
}

// metadataRejected answers as SES answers a tag value it refuses.
func (sesAPI) metadataRejected(key, value string) response {
	return *sesBadRequest("Invalid tag value <%s>: only alphanumeric ASCII characters, '_', and '-' are allowed.", value)
}

func (sesAPI) successStatus() int { return http.StatusOK }

// SES has no test switch; the mailbox simulator is its test mode.
func (sesAPI) testModeEvents() bool { return true }

// SES publishes to SNS, whose default HTTP/S delivery policy retries a
// failed delivery three times, 20 seconds apart
// (https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.retry.html).
var sesRetries = []time.Duration{20 * time.Second, 20 * time.Second, 20 * time.Second}

func (sesAPI) retrySchedule() []time.Duration { return sesRetries }

// stopsRetrying: SNS counts only "a status code outside the range of
// 200–4xx" (or no answer) as a failed delivery
// (https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.prepare.html),
// so a 4xx answer ends the delivery, never to be retried.
func (sesAPI) stopsRetrying(status int) bool { return status >= 400 && status < 500 }

const sesSimulatorDomain = "simulator.amazonses.com"

// simulatorBox returns the mailbox simulator address's box (success,
// bounce, ooto, complaint, suppressionlist), labels removed, or "".
// https://docs.aws.amazon.com/ses/latest/dg/send-an-email-from-console.html#send-email-simulator
func simulatorBox(addr string) string {
	a := strings.ToLower(strings.TrimSpace(bareAddress(addr)))
	at := strings.LastIndexByte(a, '@')
	if at < 0 || a[at+1:] != sesSimulatorDomain {
		return ""
	}
	box, _, _ := strings.Cut(a[:at], "+")
	return box
}

// finalFate follows the mailbox simulator. One fate covers the whole
// message: a bounce or suppressionlist recipient makes every recipient
// bounce, otherwise a complaint recipient makes them complain.
func (sesAPI) finalFate(m *Message) Fate {
	fate := FateDelivered
	for _, r := range m.recipients() {
		switch simulatorBox(r) {
		case "bounce", "suppressionlist":
			return FateBounced
		case "complaint":
			fate = FateComplained
		}
	}
	return fate
}

// accountID is the AWS account of the simulated topic's ARN.
func (api sesAPI) accountID() string {
	parts := strings.Split(api.s.cfg.Credentials.SESTopicARN, ":")
	if len(parts) >= 6 && parts[4] != "" {
		return parts[4]
	}
	return "000000000000"
}

// sesID is SES's id format: a millisecond timestamp, a UUID and a suffix,
// e.g. 0100018c1d5e3f4a-6f0e9c2a-1b2c-4d3e-8f90-a1b2c3d4e5f6-000000.
func (api sesAPI) sesID(at time.Time) string {
	return fmt.Sprintf("0100%012x-%s-000000", at.UnixMilli(), api.s.uuid())
}

// auth verifies the SigV4 signature; it returns the access key id for the
// rate limit, or AWS's 403 answer.
func (api sesAPI) auth(r *http.Request, body []byte) (string, *response) {
	cr := api.s.cfg.Credentials
	v := sigv4Verifier{accessKeyID: cr.SESAccessKeyID, secret: cr.SESSecretAccessKey, region: cr.SESRegion, service: "ses"}
	akid, err := v.verify(r, body, api.s.clock.Now())
	if err != nil {
		resp := sesError(http.StatusForbidden, err.Type, "%s", err.Message)
		return "", &resp
	}
	return akid, nil
}

func (api sesAPI) handleSend(w http.ResponseWriter, r *http.Request) {
	s := api.s
	body, fx, ok := s.begin(w, r, api)
	if !ok {
		return
	}
	akid, fail := api.auth(r, body)
	if fail != nil {
		s.write(w, SES, *fail)
		return
	}
	if !s.limit(w, api, akid) {
		return
	}
	if len(body) > sesMaxMessageSize {
		s.write(w, SES, sesError(http.StatusBadRequest, "MessageRejected", "Message length is more than %d bytes long: '%d'.", sesMaxMessageSize, len(body)))
		return
	}
	m, fail := parseSESSendEmail(body)
	if fail != nil {
		s.write(w, SES, *fail)
		return
	}
	if key, value, bad := fx.rejectsMetadata(m.Metadata); bad {
		s.write(w, SES, api.metadataRejected(key, value))
		return
	}
	if !s.senderVerified(m.From) {
		s.write(w, SES, sesError(http.StatusBadRequest, "MessageRejected",
			"Email address is not verified. The following identities failed the check in region %s: %s",
			strings.ToUpper(s.cfg.Credentials.SESRegion), bareAddress(m.From)))
		return
	}
	m.MessageID = api.sesID(s.clock.Now())
	s.accept(api, m, fx)
	ok200, _ := json.Marshal(map[string]string{"MessageId": m.MessageID})
	s.finish(w, api, fx, jsonResponse(http.StatusOK, ok200))
}

// The SendEmail request body. Pointers tell a missing member from an empty
// one, as the model's "must not be null" constraints do.
type sesSendEmail struct {
	FromEmailAddress *string
	Destination      *struct {
		ToAddresses  []string
		CcAddresses  []string
		BccAddresses []string
	}
	ReplyToAddresses []string
	Content          *struct {
		Simple *struct {
			Subject *sesContent
			Body    *struct {
				Text *sesContent
				Html *sesContent
			}
			Headers     []sesNameValue
			Attachments []sesAttachment
		}
		Raw *struct {
			Data []byte // a blob: base64 in JSON
		}
		Template *struct {
			TemplateName    *string
			TemplateArn     *string
			TemplateData    *string
			TemplateContent *struct {
				Subject *string
				Text    *string
				Html    *string
			}
			Headers     []sesNameValue
			Attachments []sesAttachment
		}
	}
	EmailTags            []sesNameValue
	ConfigurationSetName *string
}

type sesContent struct {
	Data    *string
	Charset *string
}

// sesNameValue is a MessageTag or a MessageHeader.
type sesNameValue struct {
	Name  *string
	Value *string
}

type sesAttachment struct {
	RawContent []byte
	FileName   *string
}

// sesShape lists the members of each structure, by their exact names:
// AWS's JSON protocols match member names case-sensitively and ignore
// unknown members, so "emailTags" is silently dropped, as it is by SES.
type sesShape map[string]sesShape

var (
	sesContentShape    = sesShape{"Data": nil, "Charset": nil}
	sesNameValueShape  = sesShape{"Name": nil, "Value": nil}
	sesAttachmentShape = sesShape{"RawContent": nil, "ContentDisposition": nil, "FileName": nil,
		"ContentDescription": nil, "ContentId": nil, "ContentTransferEncoding": nil, "ContentType": nil}
	sesSendEmailShape = sesShape{
		"FromEmailAddress": nil, "FromEmailAddressIdentityArn": nil,
		"Destination":      {"ToAddresses": nil, "CcAddresses": nil, "BccAddresses": nil},
		"ReplyToAddresses": nil, "FeedbackForwardingEmailAddress": nil, "FeedbackForwardingEmailAddressIdentityArn": nil,
		"Content": {
			"Simple": {"Subject": sesContentShape, "Body": {"Text": sesContentShape, "Html": sesContentShape},
				"Headers": sesNameValueShape, "Attachments": sesAttachmentShape},
			"Raw": {"Data": nil},
			"Template": {"TemplateName": nil, "TemplateArn": nil, "TemplateData": nil,
				"TemplateContent": {"Subject": nil, "Text": nil, "Html": nil},
				"Headers":         sesNameValueShape, "Attachments": sesAttachmentShape},
		},
		"EmailTags": sesNameValueShape, "ConfigurationSetName": nil,
		"ListManagementOptions": {"ContactListName": nil, "TopicName": nil},
		"EndpointId":            nil, "TenantName": nil,
	}
)

// prune deletes the members shape does not name, in place.
func (shape sesShape) prune(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			inner, known := shape[k]
			if !known {
				delete(v, k)
				continue
			}
			if inner != nil {
				inner.prune(sub)
			}
		}
	case []any:
		for _, e := range v {
			shape.prune(e)
		}
	}
}

// parseSESSendEmail validates a SendEmail body as SES does, stopping at the
// first error, and returns the message it describes.
func parseSESSendEmail(body []byte) (*Message, *response) {
	var generic any
	if err := json.Unmarshal(body, &generic); err != nil {
		return nil, sesBadRequest("Unable to parse the request body as JSON: %s", jsonErrorText(err))
	}
	if _, ok := generic.(map[string]any); !ok {
		return nil, sesBadRequest("Unable to parse the request body as JSON: expected an object, got %s", jsonType(json.RawMessage(bytes.TrimSpace(body))))
	}
	sesSendEmailShape.prune(generic)
	pruned, err := json.Marshal(generic)
	if err != nil {
		return nil, sesBadRequest("Unable to parse the request body as JSON.")
	}
	var req sesSendEmail
	if err := json.Unmarshal(pruned, &req); err != nil {
		return nil, sesBadRequest("Unable to parse the request body as JSON: %s", jsonErrorText(err))
	}

	m := &Message{Headers: map[string]string{}}
	c := req.Content
	if c == nil {
		return nil, sesNull("content")
	}
	kinds := 0
	for _, set := range []bool{c.Simple != nil, c.Raw != nil, c.Template != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return nil, sesBadRequest("Exactly one of Simple, Raw or Template content must be specified.")
	}
	var tags []sesNameValue
	tags = append(tags, req.EmailTags...)
	configSet := req.ConfigurationSetName
	from := deref(req.FromEmailAddress)
	var to, cc, bcc []string
	if d := req.Destination; d != nil {
		to, cc, bcc = d.ToAddresses, d.CcAddresses, d.BccAddresses
	}

	switch {
	case c.Simple != nil:
		s := c.Simple
		if s.Subject == nil {
			return nil, sesNull("content.simple.subject")
		}
		if s.Subject.Data == nil {
			return nil, sesNull("content.simple.subject.data")
		}
		if s.Body == nil {
			return nil, sesNull("content.simple.body")
		}
		if s.Body.Text == nil && s.Body.Html == nil {
			return nil, sesBadRequest("The message body must contain Text or Html content.")
		}
		for _, part := range []struct {
			at string
			c  *sesContent
		}{{"content.simple.body.text.data", s.Body.Text}, {"content.simple.body.html.data", s.Body.Html}} {
			if part.c != nil && part.c.Data == nil {
				return nil, sesNull(part.at)
			}
		}
		m.Subject = *s.Subject.Data
		if s.Body.Text != nil {
			m.Text = *s.Body.Text.Data
		}
		if s.Body.Html != nil {
			m.HTML = *s.Body.Html.Data
		}
		if fail := checkSESHeaders("content.simple.headers", s.Headers, len(req.ReplyToAddresses) > 0, m.Headers); fail != nil {
			return nil, fail
		}
		if fail := checkSESAttachments("content.simple.attachments", s.Attachments); fail != nil {
			return nil, fail
		}
	case c.Template != nil:
		t := c.Template
		if t.TemplateName == nil && t.TemplateArn == nil && t.TemplateContent == nil {
			return nil, sesBadRequest("A template name, template ARN or template content must be specified.")
		}
		if tc := t.TemplateContent; tc != nil {
			var data map[string]any
			if t.TemplateData != nil {
				json.Unmarshal([]byte(*t.TemplateData), &data) // bad data fails later, as a Rendering Failure
			}
			m.Subject = renderSESTemplate(deref(tc.Subject), data)
			m.Text = renderSESTemplate(deref(tc.Text), data)
			m.HTML = renderSESTemplate(deref(tc.Html), data)
		}
		if fail := checkSESHeaders("content.template.headers", t.Headers, len(req.ReplyToAddresses) > 0, m.Headers); fail != nil {
			return nil, fail
		}
		if fail := checkSESAttachments("content.template.attachments", t.Attachments); fail != nil {
			return nil, fail
		}
	case c.Raw != nil:
		if c.Raw.Data == nil {
			return nil, sesNull("content.raw.data")
		}
		raw, fail := parseSESRaw(c.Raw.Data)
		if fail != nil {
			return nil, fail
		}
		m.Subject, m.Text, m.HTML = raw.subject, raw.text, raw.html
		maps.Copy(m.Headers, raw.headers)
		if from == "" {
			from = raw.from
		}
		if req.Destination == nil {
			to, cc, bcc = raw.to, raw.cc, raw.bcc
		}
		tags = append(tags, raw.tags...)
		if configSet == nil && raw.configSet != "" {
			configSet = &raw.configSet
		}
	}

	if from == "" {
		return nil, sesBadRequest("Missing required header 'From'.")
	}
	if fail := checkSESAddress(from); fail != nil {
		return nil, fail
	}
	for _, list := range [][]string{to, cc, bcc, req.ReplyToAddresses} {
		for _, a := range list {
			if fail := checkSESAddress(a); fail != nil {
				return nil, fail
			}
		}
	}
	total := len(to) + len(cc) + len(bcc)
	if total == 0 {
		return nil, sesBadRequest("At least one recipient is required in ToAddresses, CcAddresses or BccAddresses.")
	}
	if total > sesMaxRecipients {
		return nil, sesBadRequest("Recipient count exceeds %d.", sesMaxRecipients)
	}
	metadata, fail := checkSESTags(tags)
	if fail != nil {
		return nil, fail
	}
	if configSet != nil {
		switch name := *configSet; {
		case name == "":
			return nil, sesBadRequest("Configuration set name must be specified.")
		case len(name) > sesMaxConfigSetName:
			return nil, sesBadRequest("Configuration set name cannot exceed %d characters.", sesMaxConfigSetName)
		case !sesTagText(name):
			return nil, sesBadRequest("Invalid configuration set name <%s>: only alphanumeric ASCII characters, '_', and '-' are allowed.", name)
		}
		m.Headers["X-SES-CONFIGURATION-SET"] = *configSet
	}
	if len(req.ReplyToAddresses) > 0 {
		m.Headers["Reply-To"] = strings.Join(req.ReplyToAddresses, ", ")
	}
	m.From, m.To, m.Cc, m.Bcc = from, slices.Clone(to), slices.Clone(cc), slices.Clone(bcc)
	if len(metadata) > 0 {
		m.Metadata = metadata
	}
	if len(m.Headers) == 0 {
		m.Headers = nil
	}
	return m, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// jsonErrorText describes a decoding error without echoing the input.
func jsonErrorText(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("syntax error at offset %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("unexpected %s for member %s", typ.Value, typ.Field)
	}
	return "malformed JSON"
}

// sesTagText reports whether s holds only ASCII letters, digits, '_' and
// '-', the characters of tag names and values and configuration set names.
func sesTagText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// sesFeedbackTags may carry a colon: the two fine-grained feedback tags
// (https://docs.aws.amazon.com/ses/latest/dg/monitor-using-event-publishing.html#event-publishing-fine-grained-feedback).
var sesFeedbackTags = []string{"ses:feedback-id-a", "ses:feedback-id-b"}

// checkSESTags applies types.MessageTag's rules, which only the server
// enforces, and returns the tags as metadata.
func checkSESTags(tags []sesNameValue) (map[string]string, *response) {
	out := map[string]string{}
	for _, t := range tags {
		if t.Name == nil || *t.Name == "" {
			return nil, sesBadRequest("The tag name must be specified.")
		}
		if t.Value == nil || *t.Value == "" {
			return nil, sesBadRequest("The tag value must be specified.")
		}
		name, value := *t.Name, *t.Value
		if len(name) > sesMaxTagLen {
			return nil, sesBadRequest("Tag name cannot exceed %d characters.", sesMaxTagLen)
		}
		if !sesTagText(name) && !slices.Contains(sesFeedbackTags, name) {
			return nil, sesBadRequest("Invalid tag name <%s>: only alphanumeric ASCII characters, '_', and '-' are allowed.", name)
		}
		if len(value) > sesMaxTagLen {
			return nil, sesBadRequest("Tag value cannot exceed %d characters.", sesMaxTagLen)
		}
		if !sesTagText(value) {
			return nil, sesBadRequest("Invalid tag value <%s>: only alphanumeric ASCII characters, '_', and '-' are allowed.", value)
		}
		out[name] = value
	}
	return out, nil
}

// sesOnceHeaders may appear only once in a message
// (https://docs.aws.amazon.com/ses/latest/dg/header-fields.html).
var sesOnceHeaders = []string{"accept-language", "acceptlanguage", "archived-at", "auto-submitted", "bounces-to",
	"comments", "content-alternative", "content-base", "content-class", "content-description", "content-disposition",
	"content-duration", "content-id", "content-language", "content-length", "content-location", "content-md5",
	"content-transfer-encoding", "content-type", "date", "delivered-to", "disposition-notification-options",
	"disposition-notification-to", "dkim-signature", "domainkey-signature", "errors-to", "from", "importance",
	"in-reply-to", "keywords", "list-archive", "list-help", "list-id", "list-owner", "list-post", "list-subscribe",
	"list-unsubscribe", "list-unsubscribe-post", "message-context", "message-id", "mime-version", "organization",
	"original-from", "original-message-id", "original-recipient", "original-subject", "precedence", "priority",
	"references", "reply-to", "return-path", "return-receipt-to", "sender", "solicitation", "sensitivity", "subject",
	"thread-index", "thread-topic", "user-agent", "vbr-info"}

// sesBuiltHeaders are the once-only headers SES writes itself when it
// builds a Simple or Template message.
var sesBuiltHeaders = []string{"from", "subject", "mime-version", "content-type", "content-transfer-encoding"}

// checkSESHeaders applies types.MessageHeader's rules and the once-only
// rule, and adds the headers to out.
func checkSESHeaders(at string, headers []sesNameValue, replyTo bool, out map[string]string) *response {
	seen := map[string]bool{}
	for _, name := range sesBuiltHeaders {
		seen[name] = true
	}
	if replyTo {
		seen["reply-to"] = true
	}
	for i, h := range headers {
		field := fmt.Sprintf("%s.%d.member", at, i+1)
		if h.Name == nil {
			return sesNull(field + ".name")
		}
		if h.Value == nil {
			return sesNull(field + ".value")
		}
		name, value := *h.Name, *h.Value
		if len(name) < 1 || len(name) > sesMaxHeaderName {
			return sesValidation(quoteValue(name), field+".name", fmt.Sprintf("Member must have length less than or equal to %d", sesMaxHeaderName))
		}
		for j := 0; j < len(name); j++ {
			if c := name[j]; c < 33 || c > 126 || c == ':' {
				return sesValidation(quoteValue(name), field+".name", "Member must satisfy regular expression pattern: ^[!-9;-@A-~]+$")
			}
		}
		if len(value) < 1 || len(value) > sesMaxHeaderValue {
			return sesValidation(quoteValue(value), field+".value", fmt.Sprintf("Member must have length less than or equal to %d", sesMaxHeaderValue))
		}
		for j := 0; j < len(value); j++ {
			if c := value[j]; c < 32 || c > 126 {
				return sesValidation(quoteValue(value), field+".value", "Member must satisfy regular expression pattern: [ -~]*")
			}
		}
		if len(name)+len(value) > sesMaxHeaderCombined {
			return sesBadRequest("The combined length of the header name and value must not exceed %d characters.", sesMaxHeaderCombined)
		}
		lower := strings.ToLower(name)
		if seen[lower] && slices.Contains(sesOnceHeaders, lower) {
			return sesBadRequest("Duplicate header '%s'.", name)
		}
		seen[lower] = true
		out[name] = value
	}
	return nil
}

// quoteValue quotes a value for a validation message, shortened so that a
// huge value does not come back whole.
func quoteValue(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return "'" + s + "'"
}

func checkSESAttachments(at string, list []sesAttachment) *response {
	for i, a := range list {
		field := fmt.Sprintf("%s.%d.member", at, i+1)
		if a.FileName == nil {
			return sesNull(field + ".fileName")
		}
		if a.RawContent == nil {
			return sesNull(field + ".rawContent")
		}
	}
	return nil
}

// checkSESAddress checks one address, "addr" or "Name <addr>", with the
// messages SES gives (they are JavaMail's InternetAddress checks).
func checkSESAddress(s string) *response {
	spec := strings.TrimSpace(s)
	if i := strings.LastIndexByte(spec, '<'); i >= 0 {
		j := strings.IndexByte(spec[i:], '>')
		if j < 0 {
			return sesBadRequest("Missing '>'")
		}
		spec = spec[i+1 : i+j]
	}
	at := strings.LastIndexByte(spec, '@')
	if at < 0 {
		return sesBadRequest("Missing final '@domain'")
	}
	local, domain := spec[:at], spec[at+1:]
	switch {
	case local == "":
		return sesBadRequest("Missing local name")
	case domain == "":
		return sesBadRequest("Missing domain")
	}
	quoted := strings.HasPrefix(local, `"`) && strings.HasSuffix(local, `"`) && len(local) > 1
	for i := 0; i < len(local); i++ {
		c := local[i]
		switch {
		case c <= ' ' || c >= 0x7f:
			return sesBadRequest("Local address contains control or whitespace")
		case !quoted && strings.IndexByte("()<>,;:\\\"[]@", c) >= 0:
			return sesBadRequest("Local address contains illegal character")
		}
	}
	for i := 0; i < len(domain); i++ {
		c := domain[i]
		switch {
		case c <= ' ' || c >= 0x7f:
			return sesBadRequest("Domain contains control or whitespace")
		case strings.IndexByte("()<>,;:\\\"[]@", c) >= 0:
			return sesBadRequest("Domain contains illegal character")
		}
	}
	if strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return sesBadRequest("Domain contains dot-dot")
	}
	return nil
}

// renderSESTemplate replaces {{name}} with the template data's value, the
// "simple substitution" SES applies to inline template content.
func renderSESTemplate(tmpl string, data map[string]any) string {
	if tmpl == "" || len(data) == 0 {
		return tmpl
	}
	var b strings.Builder
	for {
		i := strings.Index(tmpl, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(tmpl[i:], "}}")
		if j < 0 {
			break
		}
		b.WriteString(tmpl[:i])
		name := strings.TrimSpace(tmpl[i+2 : i+j])
		if v, ok := data[name]; ok {
			fmt.Fprint(&b, v)
		}
		tmpl = tmpl[i+j+2:]
	}
	b.WriteString(tmpl)
	return b.String()
}

// sesRaw is what the sandbox reads from a raw MIME message.
type sesRaw struct {
	from                string
	to, cc, bcc         []string
	subject, text, html string
	headers             map[string]string
	tags                []sesNameValue
	configSet           string
}

// sesRawSkipped are headers SES builds from the message's addresses and
// structure; the rest are kept in the mailbox.
var sesRawSkipped = []string{"From", "To", "Cc", "Bcc", "Subject", "Mime-Version", "Content-Type",
	"Content-Transfer-Encoding", "X-Ses-Message-Tags", "X-Ses-Configuration-Set"}

// parseSESRaw reads a raw message: its addresses, subject, text and HTML
// parts, and the X-SES-MESSAGE-TAGS and X-SES-CONFIGURATION-SET headers
// (https://docs.aws.amazon.com/ses/latest/dg/event-publishing-send-email.html),
// which SES removes before sending.
func parseSESRaw(data []byte) (*sesRaw, *response) {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return nil, sesBadRequest("The raw message is not a valid MIME message: it must contain a header and a body, separated by one blank line.")
	}
	h := msg.Header
	dec := new(mime.WordDecoder)
	decode := func(v string) string {
		if d, err := dec.DecodeHeader(v); err == nil {
			return d
		}
		return v
	}
	raw := &sesRaw{subject: decode(h.Get("Subject")), headers: map[string]string{}, from: strings.TrimSpace(h.Get("From"))}
	for _, f := range []struct {
		name string
		dst  *[]string
	}{{"To", &raw.to}, {"Cc", &raw.cc}, {"Bcc", &raw.bcc}} {
		if h.Get(f.name) == "" {
			continue
		}
		list, err := h.AddressList(f.name)
		if err != nil {
			return nil, sesBadRequest("Illegal address in header '%s'.", f.name)
		}
		for _, a := range list {
			if a.Name == "" {
				*f.dst = append(*f.dst, a.Address)
			} else {
				*f.dst = append(*f.dst, a.Name+" <"+a.Address+">")
			}
		}
	}
	for name, vs := range h {
		if !slices.Contains(sesRawSkipped, name) && len(vs) > 0 {
			raw.headers[name] = decode(vs[0])
		}
	}
	raw.configSet = strings.TrimSpace(h.Get("X-Ses-Configuration-Set"))
	if v := h.Get("X-Ses-Message-Tags"); v != "" {
		for pair := range strings.SplitSeq(v, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(pair), "=")
			name, value = strings.TrimSpace(name), strings.TrimSpace(value)
			raw.tags = append(raw.tags, sesNameValue{Name: &name, Value: &value})
		}
	}
	raw.text, raw.html = mimeText(h, msg.Body, 0)
	return raw, nil
}

// headerGetter is mail.Header or textproto.MIMEHeader.
type headerGetter interface{ Get(string) string }

// mimeText returns the first text/plain and text/html parts that are not
// attachments, decoding base64 and quoted-printable.
func mimeText(h headerGetter, body io.Reader, depth int) (text, html string) {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", ""
	}
	if strings.HasPrefix(mt, "multipart/") {
		if depth >= 5 || params["boundary"] == "" {
			return "", ""
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return text, html
			}
			t, hm := mimeText(p.Header, p, depth+1)
			if text == "" {
				text = t
			}
			if html == "" {
				html = hm
			}
		}
	}
	if d, _, _ := mime.ParseMediaType(h.Get("Content-Disposition")); d == "attachment" {
		return "", ""
	}
	if mt != "text/plain" && mt != "text/html" {
		return "", ""
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable": // multipart parts arrive decoded already
		body = quotedprintable.NewReader(body)
	}
	b, _ := io.ReadAll(io.LimitReader(body, sesMaxMessageSize))
	if mt == "text/plain" {
		return string(b), ""
	}
	return "", string(b)
}

// payloads renders SES events as SNS notifications, one HTTP POST per
// event. With a configuration set the SES record is an event-publishing
// record (eventType, and mail.tags carrying the EmailTags); without one,
// SES has no event destination and only sends identity feedback
// notifications (notificationType, Bounce/Complaint/Delivery only, no tags).
// https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html
func (api sesAPI) payloads(m *Message, evs []Event) ([]payload, error) {
	configSet := m.Headers["X-SES-CONFIGURATION-SET"]
	var out []payload
	rejected := false
	for _, ev := range evs {
		if ev.Type == FateDropped {
			if rejected {
				continue // a Reject is about the message, not a recipient
			}
			rejected = true
		}
		record, ok, err := api.record(m, ev, configSet)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		pl, err := api.notification(record, ev.At)
		if err != nil {
			return nil, err
		}
		out = append(out, pl)
	}
	return out, nil
}

func sesTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// record renders the SES JSON record of one event; ok is false when SES
// publishes nothing for it.
func (api sesAPI) record(m *Message, ev Event, configSet string) (record []byte, ok bool, err error) {
	from := bareAddress(m.From)
	domain := from[strings.LastIndexByte(from, '@')+1:]
	account := api.accountID()
	region := api.s.cfg.Credentials.SESRegion
	var destination []string
	for _, r := range m.recipients() {
		destination = append(destination, bareAddress(r))
	}
	headers := []map[string]string{{"name": "From", "value": m.From}}
	if len(m.To) > 0 {
		headers = append(headers, map[string]string{"name": "To", "value": strings.Join(m.To, ", ")})
	}
	headers = append(headers, map[string]string{"name": "Subject", "value": m.Subject},
		map[string]string{"name": "MIME-Version", "value": "1.0"})
	for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
		if k != "X-SES-CONFIGURATION-SET" {
			headers = append(headers, map[string]string{"name": k, "value": m.Headers[k]})
		}
	}
	common := map[string]any{"from": []string{m.From}, "messageId": m.MessageID, "subject": m.Subject}
	if len(m.To) > 0 {
		common["to"] = m.To
	}
	mailObj := map[string]any{
		"timestamp":        sesTime(m.ReceivedAt),
		"source":           m.From,
		"sourceArn":        fmt.Sprintf("arn:aws:ses:%s:%s:identity/%s", region, account, domain),
		"sendingAccountId": account,
		"messageId":        m.MessageID,
		"destination":      destination,
		"headersTruncated": false,
		"headers":          headers,
		"commonHeaders":    common,
	}
	rec := map[string]any{"mail": mailObj}
	typeKey := "eventType"
	if configSet == "" {
		typeKey = "notificationType"
		mailObj["sourceIp"] = "127.0.0.1"
		mailObj["callerIdentity"] = "herald-sandbox"
	} else {
		tags := map[string][]string{
			"ses:configuration-set": {configSet},
			"ses:from-domain":       {domain},
			"ses:source-ip":         {"127.0.0.1"},
			"ses:caller-identity":   {"herald-sandbox"},
		}
		for k, v := range m.Metadata {
			tags[k] = []string{v}
		}
		mailObj["tags"] = tags
	}
	rcpt := ev.Recipient
	feedbackID := api.sesID(ev.At)
	switch ev.Type {
	case FateDelivered:
		rec[typeKey] = "Delivery"
		rec["delivery"] = map[string]any{
			"timestamp":            sesTime(ev.At),
			"processingTimeMillis": ev.At.Sub(m.ReceivedAt).Milliseconds(),
			"recipients":           []string{rcpt},
			"smtpResponse":         "250 2.6.0 Message received",
			"remoteMtaIp":          "127.0.0.1",
			"reportingMTA":         "a8-70.smtp-out.amazonses.com",
		}
	case FateBounced:
		rec[typeKey] = "Bounce"
		subType := "General"
		recipient := map[string]any{"emailAddress": rcpt, "action": "failed", "status": "5.1.1", "diagnosticCode": "smtp; " + ev.Reason}
		bounce := map[string]any{"bounceType": "Permanent", "timestamp": sesTime(ev.At), "feedbackId": feedbackID}
		if simulatorBox(rcpt) == "suppressionlist" {
			subType = "OnAccountSuppressionList"
			recipient["diagnosticCode"] = "Amazon SES did not send the message to this address because it is on the suppression list for your account. For more information about removing addresses from the suppression list, see the Amazon SES Developer Guide at https://docs.aws.amazon.com/ses/latest/DeveloperGuide/sending-email-suppression-list.html"
		} else {
			bounce["reportingMTA"] = "dsn; a8-70.smtp-out.amazonses.com"
		}
		bounce["bounceSubType"] = subType
		bounce["bouncedRecipients"] = []any{recipient}
		rec["bounce"] = bounce
	case FateComplained:
		rec[typeKey] = "Complaint"
		rec["complaint"] = map[string]any{
			"feedbackId":            feedbackID,
			"complaintSubType":      nil,
			"complainedRecipients":  []any{map[string]string{"emailAddress": rcpt}},
			"timestamp":             sesTime(ev.At),
			"userAgent":             "Amazon SES Mailbox Simulator",
			"complaintFeedbackType": "abuse",
			"arrivalDate":           sesTime(ev.At),
		}
	case FateDeferred:
		if configSet == "" {
			return nil, false, nil // no feedback notification for delays
		}
		rec[typeKey] = "DeliveryDelay"
		status, diag := "4.0.0", ev.Reason
		if f := strings.Fields(ev.Reason); len(f) > 1 {
			status = f[1]
		}
		rec["deliveryDelay"] = map[string]any{
			"timestamp":      sesTime(ev.At),
			"delayType":      "RecipientServerError",
			"expirationTime": sesTime(ev.At.Add(10 * time.Minute)),
			"delayedRecipients": []any{map[string]string{
				"emailAddress": rcpt, "status": status, "diagnosticCode": "smtp; " + diag,
			}},
		}
	case FateDropped:
		if configSet == "" {
			return nil, false, nil // no feedback notification for rejects
		}
		rec[typeKey] = "Reject"
		rec["reject"] = map[string]string{"reason": "Bad content"}
	default:
		return nil, false, fmt.Errorf("ses: no event for %q", ev.Type)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, false, fmt.Errorf("ses: encode event: %w", err)
	}
	return b, true, nil
}

// snsNotification is the SNS HTTP/S envelope of a Notification.
// https://docs.aws.amazon.com/sns/latest/dg/http-notification-json.html
type snsNotification struct {
	Type             string `json:"Type"`
	MessageID        string `json:"MessageId"`
	TopicArn         string `json:"TopicArn"`
	Message          string `json:"Message"`
	Timestamp        string `json:"Timestamp"`
	SignatureVersion string `json:"SignatureVersion"`
	Signature        string `json:"Signature"`
	SigningCertURL   string `json:"SigningCertURL"`
	UnsubscribeURL   string `json:"UnsubscribeURL"`
}

// snsStringToSign is the canonical string SNS signs for a Notification:
// "name\nvalue\n" for Message, MessageId, Subject (when present),
// Timestamp, TopicArn and Type, in that order.
// https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
func snsStringToSign(n snsNotification) string {
	return "Message\n" + n.Message + "\nMessageId\n" + n.MessageID + "\nTimestamp\n" + n.Timestamp +
		"\nTopicArn\n" + n.TopicArn + "\nType\n" + n.Type + "\n"
}

// subscriptionARN is the simulated HTTP/S subscription of the topic.
func (api sesAPI) subscriptionARN() string {
	topic := api.s.cfg.Credentials.SESTopicARN
	sum := sha256.Sum256([]byte(topic + "\x00" + api.s.cfg.PublicURL))
	h := fmt.Sprintf("%x", sum[:16])
	return topic + ":" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// notification wraps an SES record in a signed SNS envelope. SNS keeps the
// envelope, MessageId included, across retries.
func (api sesAPI) notification(record []byte, at time.Time) (payload, error) {
	topic := api.s.cfg.Credentials.SESTopicARN
	sub := api.subscriptionARN()
	n := snsNotification{
		Type:             "Notification",
		MessageID:        api.s.uuid(),
		TopicArn:         topic,
		Message:          string(record),
		Timestamp:        sesTime(at),
		SignatureVersion: "2",
		SigningCertURL:   api.s.cfg.PublicURL + "/_sandbox/ses/signing-cert.pem",
		UnsubscribeURL:   api.s.cfg.PublicURL + "/?Action=Unsubscribe&SubscriptionArn=" + sub,
	}
	sum := sha256.Sum256([]byte(snsStringToSign(n)))
	sig, err := rsa.SignPKCS1v15(rand.Reader, api.s.keys.sns, crypto.SHA256, sum[:])
	if err != nil {
		return payload{}, fmt.Errorf("ses: sign notification: %w", err)
	}
	n.Signature = base64.StdEncoding.EncodeToString(sig)
	body, err := json.Marshal(n)
	if err != nil {
		return payload{}, fmt.Errorf("ses: encode notification: %w", err)
	}
	return payload{body: body, header: http.Header{
		"Content-Type":               {"text/plain; charset=UTF-8"},
		"X-Amz-Sns-Message-Type":     {"Notification"},
		"X-Amz-Sns-Message-Id":       {n.MessageID},
		"X-Amz-Sns-Topic-Arn":        {topic},
		"X-Amz-Sns-Subscription-Arn": {sub},
	}}, nil
}
