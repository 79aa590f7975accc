// Package ses sends herald's email through Amazon SES API v2 SendEmail.
//
// Unlike herald's other HTTP partners, SES is reached through the AWS SDK
// (aws-sdk-go-v2 service/sesv2), which herald keeps for SigV4 signing and
// the REST-JSON wire protocol (docs/adr/0001). The SDK is not trusted to
// decide the outcome, because it hides two failures (reference/providers.md
// §4.4, §7 cases 8 and 9):
//
//   - an empty 2xx body is success to it, with a nil MessageId;
//   - its default retryer re-sends SendEmail — which has no idempotency
//     key — up to three times on a 5xx, a throttle or a lost answer.
//
// So the SDK is configured with its retryer off (aws.NopRetryer: one HTTP
// request per Send, never more), its clock-skew correction off, and with
// herald's own HTTP client, and every Send records the raw exchange itself.
//
// How the exchange is captured: the SDK's Options.HTTPClient is, for each
// Send, a small recorder wrapping Config.HTTPClient (provider.NewHTTPClient
// by default, so otelhttp sees every request). The recorder sends with
// provider.Do — the same bookkeeping as every other adapter: whether the
// request was written, the status, the headers, up to 1 MiB of the body —
// and hands the SDK a copy of the answer to deserialize. A smithy
// deserialize middleware could see the same response, but only by placing
// itself at the right point of the SDK's middleware stack, whose step
// names and order are internal and change between SDK versions; the
// HTTPClient seam is a documented one-method interface and sits exactly on
// the wire. The recorder also refuses a second request within one Send, so
// even a retryer switched back on could not send the message twice.
//
// The outcome is then decided by Classify from the recorded exchange, with
// the SDK's typed output and error as a cross-check: accepted needs a 200
// whose JSON body carries a non-empty MessageId and which the SDK decoded to
// the same id.
//
// Requests are signed at Config.Clock's time. The SDK's clock-skew
// correction learns an offset from a refused attempt's Date header in order
// to retry it; with retries off it would only shift later requests away
// from herald's clock, so it is disabled and a host clock more than 15
// minutes off is answered InvalidSignatureException ("Signature expired" or
// "Signature not yet current"), classified rejected/auth on the partner's
// side, with SES's message in the result.
//
// Tags: metadata travels as EmailTags, whose names and values SES limits to
// [A-Za-z0-9_-]{1,256}; CheckMetadata refuses anything else before it is
// sent, never rewriting a value. SES returns tags only in configuration-set
// events: without a ConfigurationSetName, SES's events are identity
// notifications that carry no tags at all, so herald's correlation ids are
// lost on the way back without an error (reference/providers.md §4.6, §7
// case 14). Configure a configuration set with an SNS event destination.
//
// API: https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html
package ses

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"herald"
	"herald/clock"
	"herald/provider"
)

// Config configures an Amazon SES partner.
type Config struct {
	// Name is the partner's configured name. Required.
	Name string
	// Region is the AWS region of the SES account, e.g. "us-east-1".
	// Required: it is part of every signature, and of the endpoint when
	// BaseURL is empty.
	Region string
	// AccessKeyID and SecretAccessKey are static IAM credentials allowed
	// ses:SendEmail. Required.
	AccessKeyID     string
	SecretAccessKey string
	// BaseURL overrides the endpoint, e.g. a sandbox's URL. Defaults to the
	// SDK's endpoint for Region (https://email.<region>.amazonaws.com).
	BaseURL string
	// From is the verified sender address. Required.
	From string
	// ConfigurationSetName names the SES configuration set the messages are
	// sent with. Optional, but without one SES's events are identity
	// notifications that carry no tags, so herald's correlation ids never
	// come back: configure a set with an SNS event destination.
	// https://docs.aws.amazon.com/ses/latest/dg/monitor-using-event-publishing.html
	ConfigurationSetName string
	// Timeout bounds one send. Defaults to 10s.
	Timeout time.Duration
	// HTTPClient sends the requests. Defaults to provider.NewHTTPClient
	// with Timeout and the global tracer provider.
	HTTPClient *http.Client
	// Clock signs requests and reads Retry-After dates. Defaults to
	// clock.Real().
	Clock clock.Clock
}

// Provider is an Amazon SES partner. It is safe for concurrent use.
type Provider struct {
	cfg    Config
	client *sesv2.Client
	url    string
}

// sendPath is SendEmail's path (API_SendEmail.html).
const sendPath = "/v2/email/outbound-emails"

// configSetName is SES's rule for configuration set names: "up to 64
// alphanumeric characters, including letters, numbers, hyphens (-) and
// underscores (_) only"
// (https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_CreateConfigurationSet.html).
var configSetName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// New returns an Amazon SES partner for cfg. It makes no request.
func New(cfg Config) (*Provider, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	switch {
	case cfg.Name == "":
		return nil, errors.New("ses: name is required")
	case cfg.Region == "":
		return nil, fmt.Errorf("ses %s: region is required", cfg.Name)
	case cfg.AccessKeyID == "" || cfg.SecretAccessKey == "":
		return nil, fmt.Errorf("ses %s: access_key_id and secret_access_key are required", cfg.Name)
	case cfg.From == "":
		return nil, fmt.Errorf("ses %s: from is required", cfg.Name)
	case cfg.ConfigurationSetName != "" && !configSetName.MatchString(cfg.ConfigurationSetName):
		return nil, fmt.Errorf("ses %s: configuration_set_name %q: SES allows only 1 to 64 of A-Z a-z 0-9 _ -", cfg.Name, cfg.ConfigurationSetName)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = provider.NewHTTPClient(cfg.Timeout, nil)
	}
	opts := sesv2.Options{
		Region:      cfg.Region,
		Credentials: credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		// SendEmail is not idempotent: one attempt, herald decides the rest.
		Retryer:                    aws.NopRetryer{},
		RetryMaxAttempts:           1,
		DisableClockSkewCorrection: true,
		HTTPSignerV4:               clockSigner{signer: v4.NewSigner(), clock: cfg.Clock},
		HTTPClient:                 cfg.HTTPClient,
	}
	url := "https://email." + cfg.Region + ".amazonaws.com" + sendPath
	if cfg.BaseURL != "" {
		base := strings.TrimRight(cfg.BaseURL, "/")
		opts.BaseEndpoint = aws.String(base)
		url = base + sendPath
	}
	return &Provider{cfg: cfg, client: sesv2.New(opts), url: url}, nil
}

// clockSigner is the SDK's SigV4 signer, signing at herald's clock's time
// instead of the SDK's.
type clockSigner struct {
	signer *v4.Signer
	clock  clock.Clock
}

// SignHTTP signs r as v4.Signer does, at the clock's time.
func (s clockSigner) SignHTTP(ctx context.Context, cr aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, opts ...func(*v4.SignerOptions)) error {
	return s.signer.SignHTTP(ctx, cr, r, payloadHash, service, region, s.clock.Now(), opts...)
}

// Name returns the configured name.
func (p *Provider) Name() string { return p.cfg.Name }

// Kind returns "ses".
func (p *Provider) Kind() string { return "ses" }

// maxTag is the most characters of a tag's name or value.
const maxTag = 256

// CheckMetadata applies SES's MessageTag rules to md
// (https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_MessageTag.html):
// names and values are 1 to 256 characters of A-Z a-z 0-9 _ -. The SDK
// checks tags for nil only and SES answers anything else with a 400, so
// herald enforces the rule before sending: a name must already follow it
// (names are the user's to choose), and a value that does not is encoded
// reversibly by EncodeTagValue; a value too long to fit once encoded is
// refused.
func (p *Provider) CheckMetadata(md map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if err := checkTag(k); err != "" {
			return herald.Invalid("metadata."+k, "invalid", "ses tag names %s; %q does not", err, k)
		}
		if len(EncodeTagValue(md[k])) > maxTag {
			return herald.Invalid("metadata."+k, "invalid", "ses tag values are at most %d characters; the value of %q does not fit, even encoded (at most %d bytes can be)", maxTag, k, maxEncodable)
		}
	}
	return nil
}

// encodedPrefix marks a tag value EncodeTagValue encoded.
const encodedPrefix = "b64-"

// maxEncodable is the longest value, in bytes, that fits a tag once encoded.
const maxEncodable = (maxTag - len(encodedPrefix)) * 3 / 4

// EncodeTagValue returns v as an SES tag value: unchanged when it already
// follows SES's rule and does not start with "b64-"; otherwise "b64-" and
// its unpadded base64url, whose characters SES accepts. Partner events carry
// the encoded value; DecodeTagValue reverses it.
func EncodeTagValue(v string) string {
	if checkTag(v) == "" && !strings.HasPrefix(v, encodedPrefix) {
		return v
	}
	return encodedPrefix + base64.RawURLEncoding.EncodeToString([]byte(v))
}

// DecodeTagValue reverses EncodeTagValue.
func DecodeTagValue(v string) (string, error) {
	rest, ok := strings.CutPrefix(v, encodedPrefix)
	if !ok {
		return v, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("ses: decode tag value: %w", err)
	}
	return string(b), nil
}

// checkTag returns the rule s breaks, or "".
func checkTag(s string) string {
	const rule = "must be 1 to 256 characters of A-Z a-z 0-9 _ -"
	if s == "" || len(s) > maxTag {
		return rule
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return rule
		}
	}
	return ""
}

// input returns the SendEmail input for e: Simple content in UTF-8 (SES
// assumes 7-bit ASCII otherwise;
// https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_Content.html),
// one To address, and the metadata as EmailTags sorted by name.
func (p *Provider) input(e *herald.Email) *sesv2.SendEmailInput {
	utf8 := func(s string) *types.Content {
		return &types.Content{Data: aws.String(s), Charset: aws.String("UTF-8")}
	}
	body := &types.Body{}
	if e.Text != "" {
		body.Text = utf8(e.Text)
	}
	if e.HTML != "" {
		body.Html = utf8(e.HTML)
	}
	in := &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(p.cfg.From),
		Destination:      &types.Destination{ToAddresses: []string{e.To}},
		Content:          &types.EmailContent{Simple: &types.Message{Subject: utf8(e.Subject), Body: body}},
	}
	for _, k := range slices.Sorted(maps.Keys(e.Metadata)) {
		in.EmailTags = append(in.EmailTags, types.MessageTag{Name: aws.String(k), Value: aws.String(EncodeTagValue(e.Metadata[k]))})
	}
	if p.cfg.ConfigurationSetName != "" {
		in.ConfigurationSetName = aws.String(p.cfg.ConfigurationSetName)
	}
	return in
}

// Send makes one attempt to hand e to SES: exactly one HTTP request at most.
func (p *Provider) Send(ctx context.Context, e *herald.Email) herald.Result {
	if err := p.CheckMetadata(e.Metadata); err != nil { // fail closed: never send what SES would refuse
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "encode", Request: provider.Summary(http.MethodPost, p.url, 0, e.Metadata),
			Error: "ses: " + err.Error()}
	}
	rec := &recorder{client: p.cfg.HTTPClient}
	out, err := p.client.SendEmail(ctx, p.input(e), func(o *sesv2.Options) { o.HTTPClient = rec })
	r := Classify(rec.x, out, err, p.cfg.Clock.Now())
	url, size := p.url, 0
	if rec.req != nil {
		url, size = rec.req.URL.String(), int(max(rec.req.ContentLength, 0))
	}
	r.Request = provider.Summary(http.MethodPost, url, size, e.Metadata)
	return r
}

// errSecondRequest is what the recorder answers a second request within one
// Send: SendEmail must never be sent twice by the SDK.
var errSecondRequest = errors.New("ses: a second request within one send was refused: SendEmail is not idempotent")

// recorder is the SDK's HTTP client for one Send: it sends the request with
// provider.Do, keeps the exchange, and gives the SDK a copy of the answer.
// It sends at most one request. It is used by one goroutine at a time, the
// SDK's and then Send's.
type recorder struct {
	client *http.Client
	req    *http.Request
	x      provider.Exchange
}

// Do implements sesv2.HTTPClient.
func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	if r.req != nil {
		return nil, errSecondRequest
	}
	r.req = req
	r.x = provider.Do(r.client, req)
	if r.x.Err != nil {
		return nil, r.x.Err
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", r.x.Status, http.StatusText(r.x.Status)),
		StatusCode:    r.x.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        r.x.Header,
		Body:          io.NopCloser(bytes.NewReader(r.x.Body)),
		ContentLength: int64(len(r.x.Body)),
		Request:       req,
	}, nil
}

// Waits SES names in words but not in a header, used when no Retry-After
// comes with a throttling answer.
const (
	// RateLimitWait follows a "Maximum sending rate exceeded": the rate is
	// per second (https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas.html).
	RateLimitWait = time.Second
	// QuotaWait follows an exhausted sending quota ("Daily message quota
	// exceeded", or LimitExceededException): SES advises waiting "up to 10
	// minutes" before retrying
	// (https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas-errors.html),
	// and the 24-hour quota is rolling, so capacity returns gradually.
	QuotaWait = 10 * time.Minute
)

// authErrors are AWS's answers to a request whose credentials or signature
// were refused (https://docs.aws.amazon.com/ses/latest/APIReference-V2/CommonErrors.html).
var authErrors = []string{"InvalidSignatureException", "UnrecognizedClientException", "IncompleteSignatureException",
	"MissingAuthenticationTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredTokenException",
	"MissingAuthenticationToken", "NotAuthorized", "RequestExpired"}

// throttleErrors are the names SES gives a send over its rate or quota: v2's
// TooManyRequestsException, and the Throttling of its v1 documentation
// (https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas-errors.html).
var throttleErrors = []string{"TooManyRequestsException", "ThrottlingException", "Throttling"}

// Classify decides the outcome of one SendEmail exchange from the whole
// raw response x, with the SDK's output and error as a cross-check
// (reference/providers.md §4.3, §4.4, §7 cases 8, 9 and 13). The SES
// exceptions of SendEmail are those of
// https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html#API_SendEmail_Errors:
//
//	200 {"MessageId": non-empty}, decoded alike by the SDK   accepted    ok
//	2xx with no body, or JSON without a MessageId            unknown     missing_message_id
//	2xx whose body is not JSON, or the SDK disagrees         unknown     unexpected_body
//	other 2xx                                                unknown     unexpected_status
//	BadRequestException                                      rejected    validation
//	MessageRejected "…not verified…"                         rejected    unverified_sender (partner side)
//	MessageRejected, otherwise                               rejected    validation
//	MailFromDomainNotVerifiedException                       rejected    unverified_sender (partner side)
//	AccountSuspendedException                                rejected    account_suspended (partner side)
//	SendingPausedException                                   rejected    sending_paused (partner side)
//	NotFoundException (a configuration set that is missing)  rejected    config (partner side)
//	InvalidSignatureException, UnrecognizedClientException…  rejected    auth (partner side)
//	AccessDeniedException (IAM)                              rejected    forbidden (partner side)
//	TooManyRequestsException "…Daily message quota…"         throttled   quota_exceeded (partner side), Retry-After or QuotaWait
//	TooManyRequestsException, other 429                      throttled   rate_limited (partner side), Retry-After or RateLimitWait
//	LimitExceededException                                   throttled   quota_exceeded (partner side), Retry-After or QuotaWait
//	5xx, InternalServiceErrorException, a gateway's HTML     transient   server_error (partner side)
//	no answer                                                provider.TransportFailure: transient before
//	                                                         the request was written, unknown after
//
// LimitExceededException is a quota, not a verdict on the message: it is
// throttled rather than rejected, with a long wait, and marked partner side
// because another partner may have room. The reasons quota_exceeded,
// account_suspended, sending_paused, config and unexpected_status are this
// provider's additions to herald.ReasonsByOutcome.
func Classify(x provider.Exchange, out *sesv2.SendEmailOutput, sdkErr error, now time.Time) herald.Result {
	switch {
	case x.Status == 0 && x.Err == nil && sdkErr == nil:
		// The SDK claims success without a request: never accepted.
		return herald.Result{Outcome: herald.OutcomeUnknown, Reason: "missing_message_id", Error: "ses: the sdk returned success without making a request"}
	case x.Status == 0 && x.Err == nil:
		// The SDK failed before handing a request to the HTTP client:
		// nothing was sent.
		if errors.Is(sdkErr, context.DeadlineExceeded) || errors.Is(sdkErr, context.Canceled) {
			return provider.TransportFailure(provider.Exchange{Err: sdkErr})
		}
		return herald.Result{Outcome: herald.OutcomeRejected, Reason: "config", PartnerSide: true,
			Error: "ses: request not sent: " + sdkErr.Error()}
	case x.Err != nil:
		return provider.TransportFailure(x)
	}
	r := herald.Result{Status: x.Status, Response: provider.Excerpt(x.Body), RateLimit: provider.RateLimitHeaders(x.Header)}
	if x.Status >= 200 && x.Status < 300 {
		return success(r, x, out, sdkErr)
	}
	code, msg := errorOf(x)
	throttle := x.Status == http.StatusTooManyRequests || slices.Contains(throttleErrors, code)
	r.Outcome, r.Reason, r.PartnerSide = provider.ByStatus(x.Status)
	switch {
	case code == "BadRequestException":
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "validation", false
	case code == "MessageRejected" && strings.Contains(strings.ToLower(msg), "not verified"):
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "unverified_sender", true
	case code == "MessageRejected":
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "validation", false
	case code == "MailFromDomainNotVerifiedException":
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "unverified_sender", true
	case code == "AccountSuspendedException":
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "account_suspended", true
	case code == "SendingPausedException":
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "sending_paused", true
	case code == "NotFoundException":
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "config", true
	case slices.Contains(authErrors, code):
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "auth", true
	case code == "AccessDeniedException":
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeRejected, "forbidden", true
	case code == "LimitExceededException", throttle && strings.Contains(strings.ToLower(msg), "quota"):
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeThrottled, "quota_exceeded", true
	case throttle:
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeThrottled, "rate_limited", true
	case code == "InternalServiceErrorException", code == "InternalFailure", code == "ServiceUnavailable":
		r.Outcome, r.Reason, r.PartnerSide = herald.OutcomeTransient, "server_error", true
	}
	switch {
	case code != "" && msg != "":
		r.Error = fmt.Sprintf("ses %d %s: %s", x.Status, code, msg)
	case code != "":
		r.Error = fmt.Sprintf("ses %d %s", x.Status, code)
	default:
		r.Error = fmt.Sprintf("ses %d with a body that is not its error shape", x.Status)
	}
	if r.Outcome == herald.OutcomeThrottled {
		r.RetryAfter = provider.RetryAfter(x.Header, now)
		switch {
		case r.RetryAfter > 0:
		case r.Reason == "quota_exceeded":
			r.RetryAfter = QuotaWait
		default:
			r.RetryAfter = RateLimitWait
		}
	}
	return r
}

// success classifies a 2xx answer: accepted only for a 200 whose body
// carries a MessageId that the SDK decoded too.
func success(r herald.Result, x provider.Exchange, out *sesv2.SendEmailOutput, sdkErr error) herald.Result {
	var body struct {
		MessageId *string
	}
	trimmed := strings.TrimSpace(string(x.Body))
	switch {
	case x.Status != http.StatusOK:
		r.Outcome, r.Reason, r.Error = herald.OutcomeUnknown, "unexpected_status", fmt.Sprintf("ses answered %d, which it does not document for SendEmail", x.Status)
	case trimmed == "":
		r.Outcome, r.Reason, r.Error = herald.OutcomeUnknown, "missing_message_id", "ses answered 200 with an empty body: no MessageId"
	case json.Unmarshal(x.Body, &body) != nil:
		r.Outcome, r.Reason, r.Error = herald.OutcomeUnknown, "unexpected_body", "ses answered 200 with a body that is not JSON"
	case body.MessageId == nil || *body.MessageId == "":
		r.Outcome, r.Reason, r.Error = herald.OutcomeUnknown, "missing_message_id", "ses answered 200 without a MessageId"
	case sdkErr != nil:
		r.Outcome, r.Reason, r.Error = herald.OutcomeUnknown, "unexpected_body", "ses answered 200 but the sdk could not read it: "+sdkErr.Error()
	case out == nil || out.MessageId == nil || *out.MessageId != *body.MessageId:
		r.Outcome, r.Reason, r.Error = herald.OutcomeUnknown, "unexpected_body", "ses answered 200 but the sdk read another MessageId"
	default:
		r.Outcome, r.Reason, r.MessageID = herald.OutcomeAccepted, "ok", *body.MessageId
	}
	return r
}

// errorOf returns the exception name and message of an error answer, read
// as the SDK's REST-JSON protocol reads them: the X-Amzn-ErrorType header,
// else the body's __type, else its code, without any ":uri" suffix or
// "namespace#" prefix; the message from the body's message member, in any
// case. (The SDK's typed error adds nothing to this: where the raw answer
// names no exception it says "UnknownError".)
func errorOf(x provider.Exchange) (code, msg string) {
	var body struct {
		Type    string `json:"__type"`
		Code    any    `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(x.Body, &body) // a body that is not JSON has neither
	code = x.Header.Get("X-Amzn-ErrorType")
	if code == "" {
		code = body.Type
	}
	if s, ok := body.Code.(string); ok && code == "" {
		code = s
	}
	code, _, _ = strings.Cut(code, ":")
	if _, after, found := strings.Cut(code, "#"); found {
		code = after
	}
	return strings.TrimSpace(code), strings.TrimSpace(body.Message)
}
