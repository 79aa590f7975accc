package sandbox_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"herald/clock"
	"herald/sandbox"
)

// The default SES credentials of sandbox.Credentials.
const (
	sesKeyID  = "AKIASANDBOXEXAMPLE"
	sesSecret = "sandbox-ses-secret"
)

// sesMessageID is the SES message id format.
var sesMessageID = regexp.MustCompile(`^0100[0-9a-f]{12}-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}-000000$`)

// clockSigner is the SDK's own SigV4 signer, signing at the sandbox's fake
// time instead of the wall clock. It records the signing name the SDK asks
// for.
type clockSigner struct {
	clock   *clock.Fake
	signer  *v4.Signer
	service *atomic.Value
}

func (c clockSigner) SignHTTP(ctx context.Context, cr aws.Credentials, r *http.Request, payloadHash, service, region string, _ time.Time, opts ...func(*v4.SignerOptions)) error {
	c.service.Store(service)
	return c.signer.SignHTTP(ctx, cr, r, payloadHash, service, region, c.clock.Now(), opts...)
}

// sesOpts configures sesClient.
type sesOpts struct {
	keyID, secret string
	// retryer replaces the SDK's default retryer when set.
	retryer aws.Retryer
	// wallClock signs with the SDK's own clock instead of the sandbox's.
	wallClock bool
	// count, when set, counts the HTTP requests the SDK makes.
	count *atomic.Int32
}

// sesClient returns the official SES v2 client pointed at the sandbox.
func sesClient(b *bundle, o sesOpts) (*sesv2.Client, *atomic.Value) {
	if o.keyID == "" {
		o.keyID = sesKeyID
	}
	if o.secret == "" {
		o.secret = sesSecret
	}
	service := &atomic.Value{}
	opts := sesv2.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(b.sb.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(o.keyID, o.secret, ""),
		Retryer:      o.retryer,
	}
	if !o.wallClock {
		opts.HTTPSignerV4 = clockSigner{clock: b.clock, signer: v4.NewSigner(), service: service}
	}
	if o.count != nil {
		opts.HTTPClient = &http.Client{Transport: countingTransport{n: o.count}}
	}
	return sesv2.New(opts), service
}

type countingTransport struct{ n *atomic.Int32 }

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// simpleEmail is a valid SendEmail input.
func simpleEmail(to string, tags ...types.MessageTag) *sesv2.SendEmailInput {
	return &sesv2.SendEmailInput{
		FromEmailAddress: aws.String("Alerts <alerts@example.com>"),
		Destination:      &types.Destination{ToAddresses: []string{to}},
		Content: &types.EmailContent{Simple: &types.Message{
			Subject: &types.Content{Data: aws.String("Trigger fired")},
			Body:    &types.Body{Text: &types.Content{Data: aws.String("p99 latency is high")}},
		}},
		EmailTags:            tags,
		ConfigurationSetName: aws.String("herald"),
	}
}

func tag(name, value string) types.MessageTag {
	return types.MessageTag{Name: aws.String(name), Value: aws.String(value)}
}

// apiError returns the SDK's error code and HTTP status of err.
func apiError(t *testing.T, err error) (code string, status int) {
	t.Helper()
	require.Error(t, err)
	var ae smithy.APIError
	require.True(t, errors.As(err, &ae), "not an API error: %v", err)
	var re *awshttp.ResponseError
	require.True(t, errors.As(err, &re), "no HTTP response: %v", err)
	return ae.ErrorCode(), re.HTTPStatusCode()
}

func addFault(t *testing.T, b *bundle, f sandbox.Fault) {
	t.Helper()
	f.Partner = sandbox.SES
	_, err := b.sb.AddFault(f)
	require.NoError(t, err)
}

func TestSESSendAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	client, service := sesClient(b, sesOpts{})
	in := simpleEmail("oncall@example.com", tag("notification_id", "6f1c2a9e-7d41-4b0a-9d3e-2f5b8c7a1e90"), tag("team", "sre"))
	in.Content.Simple.Headers = []types.MessageHeader{{Name: aws.String("X-Herald-Trigger"), Value: aws.String("latency")}}

	out, err := client.SendEmail(context.Background(), in)
	require.NoError(t, err)
	require.NotNil(t, out.MessageId)
	require.Regexp(t, sesMessageID, *out.MessageId)
	require.Equal(t, "ses", service.Load(), "sesv2 signs with signing name ses")

	m, ok := b.sb.Message(*out.MessageId)
	require.True(t, ok)
	require.Equal(t, sandbox.SES, m.Partner)
	require.Equal(t, "Alerts <alerts@example.com>", m.From)
	require.Equal(t, []string{"oncall@example.com"}, m.To)
	require.Equal(t, "Trigger fired", m.Subject)
	require.Equal(t, "p99 latency is high", m.Text)
	require.Equal(t, map[string]string{"notification_id": "6f1c2a9e-7d41-4b0a-9d3e-2f5b8c7a1e90", "team": "sre"}, m.Metadata)
	require.Equal(t, "herald", m.Headers["X-SES-CONFIGURATION-SET"])
	require.Equal(t, "latency", m.Headers["X-Herald-Trigger"])
}

func TestSESRawAndTemplateContent(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	client, _ := sesClient(b, sesOpts{})
	raw := "From: Alerts <alerts@example.com>\r\nTo: oncall@example.com\r\nSubject: =?UTF-8?B?w4ljaGVj?=\r\n" +
		"X-SES-MESSAGE-TAGS: notification_id=n-1, team=sre\r\nX-SES-CONFIGURATION-SET: herald\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b1\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte("plain body")) + "\r\n" +
		"--b1\r\nContent-Type: text/html\r\n\r\n<p>html body</p>\r\n--b1--\r\n"
	out, err := client.SendEmail(context.Background(), &sesv2.SendEmailInput{Content: &types.EmailContent{Raw: &types.RawMessage{Data: []byte(raw)}}})
	require.NoError(t, err)
	m, ok := b.sb.Message(*out.MessageId)
	require.True(t, ok)
	require.Equal(t, "Alerts <alerts@example.com>", m.From)
	require.Equal(t, []string{"oncall@example.com"}, m.To)
	require.Equal(t, "Échec", m.Subject)
	require.Equal(t, "plain body", m.Text)
	require.Equal(t, "<p>html body</p>", m.HTML)
	require.Equal(t, map[string]string{"notification_id": "n-1", "team": "sre"}, m.Metadata)
	require.Equal(t, "herald", m.Headers["X-SES-CONFIGURATION-SET"])

	qp := "From: alerts@example.com\r\nTo: oncall@example.com\r\nSubject: qp\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nlatency =3D 3s"
	out, err = client.SendEmail(context.Background(), &sesv2.SendEmailInput{Content: &types.EmailContent{Raw: &types.RawMessage{Data: []byte(qp)}}})
	require.NoError(t, err)
	m, _ = b.sb.Message(*out.MessageId)
	require.Equal(t, "latency = 3s", m.Text)

	noFrom := "To: oncall@example.com\r\nSubject: s\r\n\r\nbody"
	_, err = client.SendEmail(context.Background(), &sesv2.SendEmailInput{Content: &types.EmailContent{Raw: &types.RawMessage{Data: []byte(noFrom)}}},
		func(o *sesv2.Options) { o.Retryer = aws.NopRetryer{} })
	code, _ := apiError(t, err)
	require.Equal(t, "BadRequestException", code)
	require.Contains(t, err.Error(), "Missing required header 'From'.")

	out, err = client.SendEmail(context.Background(), &sesv2.SendEmailInput{
		FromEmailAddress: aws.String("alerts@example.com"),
		Destination:      &types.Destination{BccAddresses: []string{"audit@example.com"}},
		Content: &types.EmailContent{Template: &types.Template{
			TemplateContent: &types.EmailTemplateContent{Subject: aws.String("{{trigger}} fired"), Text: aws.String("value {{value}}")},
			TemplateData:    aws.String(`{"trigger":"latency","value":42}`),
		}},
	})
	require.NoError(t, err)
	m, _ = b.sb.Message(*out.MessageId)
	require.Equal(t, "latency fired", m.Subject)
	require.Equal(t, "value 42", m.Text)
	require.Equal(t, []string{"audit@example.com"}, m.Bcc)
}

// The SDK checks a tag for nil only; SES refuses the characters (§4.2), the
// closest analogue of the incident.
func TestSESTagValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	client, _ := sesClient(b, sesOpts{retryer: aws.NopRetryer{}})
	for _, tc := range []struct {
		tag     types.MessageTag
		message string
	}{
		{tag("notification_id", "a@b.c"), "Invalid tag value <a@b.c>: only alphanumeric ASCII characters, '_', and '-' are allowed."},
		{tag("url", "https://example.com"), "Invalid tag value <https://example.com>"},
		{tag("trigger", "p99 latency"), "Invalid tag value <p99 latency>"},
		{tag("version", "1.2"), "Invalid tag value <1.2>"},
		{tag("team.name", "sre"), "Invalid tag name <team.name>"},
		{tag("team", strings.Repeat("x", 257)), "Tag value cannot exceed 256 characters."},
		{tag("team", ""), "The tag value must be specified."},
	} {
		_, err := client.SendEmail(context.Background(), simpleEmail("oncall@example.com", tc.tag))
		code, status := apiError(t, err)
		require.Equal(t, "BadRequestException", code, *tc.tag.Value)
		require.Equal(t, http.StatusBadRequest, status)
		var bre *types.BadRequestException
		require.True(t, errors.As(err, &bre))
		require.Contains(t, bre.ErrorMessage(), tc.message)
	}
	require.Empty(t, b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.SES}))

	_, err := client.SendEmail(context.Background(), simpleEmail("oncall@example.com",
		tag("notification_id", "6f1c2a9e-7d41-4b0a-9d3e-2f5b8c7a1e90"), tag("ses:feedback-id-a", "campaign_7"), tag("x", strings.Repeat("y", 256))))
	require.NoError(t, err)
}

func TestSESValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	client, _ := sesClient(b, sesOpts{retryer: aws.NopRetryer{}})
	many := make([]string, 51)
	for i := range many {
		many[i] = "r" + strings.Repeat("x", i) + "@example.com"
	}
	for name, tc := range map[string]struct {
		change  func(*sesv2.SendEmailInput)
		message string
	}{
		"missing at":       {func(in *sesv2.SendEmailInput) { in.Destination.ToAddresses = []string{"oncall"} }, "Missing final '@domain'"},
		"bad domain":       {func(in *sesv2.SendEmailInput) { in.Destination.ToAddresses = []string{"oncall@exa(mple).com"} }, "Domain contains illegal character"},
		"non-ascii domain": {func(in *sesv2.SendEmailInput) { in.Destination.ToAddresses = []string{"oncall@exämple.com"} }, "Domain contains control or whitespace"},
		"51 recipients":    {func(in *sesv2.SendEmailInput) { in.Destination.ToAddresses = many }, "Recipient count exceeds 50."},
		"no recipients":    {func(in *sesv2.SendEmailInput) { in.Destination = nil }, "At least one recipient"},
		"no from":          {func(in *sesv2.SendEmailInput) { in.FromEmailAddress = nil }, "Missing required header 'From'."},
		"header colon": {func(in *sesv2.SendEmailInput) {
			in.Content.Simple.Headers = []types.MessageHeader{{Name: aws.String("X:Y"), Value: aws.String("v")}}
		}, "^[!-9;-@A-~]+$"},
		"header too long": {func(in *sesv2.SendEmailInput) {
			in.Content.Simple.Headers = []types.MessageHeader{{Name: aws.String("X-A"), Value: aws.String(strings.Repeat("v", 996))}}
		}, "less than or equal to 995"},
		"duplicate subject": {func(in *sesv2.SendEmailInput) {
			in.Content.Simple.Headers = []types.MessageHeader{{Name: aws.String("Subject"), Value: aws.String("x")}}
		}, "Duplicate header 'Subject'."},
		"bad config set":    {func(in *sesv2.SendEmailInput) { in.ConfigurationSetName = aws.String("herald.prod") }, "Invalid configuration set name <herald.prod>"},
		"two content kinds": {func(in *sesv2.SendEmailInput) { in.Content.Raw = &types.RawMessage{Data: []byte("x")} }, "Exactly one of Simple, Raw or Template"},
		"newline in header": {func(in *sesv2.SendEmailInput) {
			in.Content.Simple.Headers = []types.MessageHeader{{Name: aws.String("X-A"), Value: aws.String("a\r\nBcc: x@evil.example")}}
		}, "[ -~]*"},
		"empty body content": {func(in *sesv2.SendEmailInput) { in.Content.Simple.Body = &types.Body{} }, "must contain Text or Html"},
	} {
		in := simpleEmail("oncall@example.com")
		tc.change(in)
		_, err := client.SendEmail(context.Background(), in)
		code, status := apiError(t, err)
		require.Equal(t, "BadRequestException", code, name)
		require.Equal(t, http.StatusBadRequest, status, name)
		require.Contains(t, err.Error(), tc.message, name)
	}
}

func TestSESAuthFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)

	client, _ := sesClient(b, sesOpts{secret: "wrong-secret", retryer: aws.NopRetryer{}})
	_, err := client.SendEmail(context.Background(), simpleEmail("oncall@example.com"))
	code, status := apiError(t, err)
	require.Equal(t, "InvalidSignatureException", code)
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, err.Error(), "The request signature we calculated does not match the signature you provided.")
	require.NotContains(t, err.Error(), sesSecret)
	require.NotContains(t, err.Error(), "wrong-secret")

	client, _ = sesClient(b, sesOpts{keyID: "AKIAUNKNOWN", retryer: aws.NopRetryer{}})
	_, err = client.SendEmail(context.Background(), simpleEmail("oncall@example.com"))
	code, status = apiError(t, err)
	require.Equal(t, "UnrecognizedClientException", code)
	require.Equal(t, http.StatusForbidden, status)

	// Without an Authorization header, and with one of the wrong shape.
	for auth, want := range map[string]string{
		"":                         "MissingAuthenticationTokenException",
		"Bearer " + sesSecret:      "IncompleteSignatureException",
		"AWS4-HMAC-SHA256 garbage": "IncompleteSignatureException",
	} {
		req, _ := http.NewRequest(http.MethodPost, b.sb.URL+"/v2/email/outbound-emails", strings.NewReader(`{}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		require.Equal(t, want, resp.Header.Get("X-Amzn-ErrorType"))
		require.NotContains(t, string(body), sesSecret)
		var e struct{ Message string }
		require.NoError(t, json.Unmarshal(body, &e))
		require.NotEmpty(t, e.Message)
	}

	// A signature for another region or service.
	for _, scope := range [][2]string{{"us-west-2", "ses"}, {"us-east-1", "email"}} {
		resp := sesSignedRequest(t, b, `{}`, b.clock.Now(), scope[0], scope[1])
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		require.Equal(t, "InvalidSignatureException", resp.Header.Get("X-Amzn-ErrorType"))
	}
}

// sesSignedRequest posts body to SendEmail, signed by the SDK's signer at at
// for region and service.
func sesSignedRequest(t *testing.T, b *bundle, body string, at time.Time, region, service string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.sb.URL+"/v2/email/outbound-emails", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256([]byte(body))
	cr := aws.Credentials{AccessKeyID: sesKeyID, SecretAccessKey: sesSecret}
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), cr, req, hex.EncodeToString(sum[:]), service, region, at))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestSESClockSkew(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	body := `{"FromEmailAddress":"alerts@example.com","Destination":{"ToAddresses":["oncall@example.com"]},"Content":{"Simple":{"Subject":{"Data":"s"},"Body":{"Text":{"Data":"t"}}}}}`

	resp := sesSignedRequest(t, b, body, b.clock.Now().Add(-16*time.Minute), "us-east-1", "ses")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Equal(t, "InvalidSignatureException", resp.Header.Get("X-Amzn-ErrorType"))
	msg, _ := io.ReadAll(resp.Body)
	require.Contains(t, string(msg), "Signature expired: 20261124T114400Z is now earlier than 20261124T114500Z (20261124T120000Z - 15 min.)")

	resp = sesSignedRequest(t, b, body, b.clock.Now().Add(14*time.Minute), "us-east-1", "ses")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The sandbox's Date header is in its own clock, so the SDK signing
	// with the wall clock is refused once, corrects its skew from Date, and
	// succeeds on its retry, as against AWS.
	b.clock.Advance(50 * 365 * 24 * time.Hour)
	var n atomic.Int32
	client, _ := sesClient(b, sesOpts{wallClock: true, count: &n})
	out, err := client.SendEmail(context.Background(), simpleEmail("oncall@example.com"))
	require.NoError(t, err)
	require.NotNil(t, out.MessageId)
	require.EqualValues(t, 2, n.Load())
}

// §4.4: an empty 2xx body is success to the SDK, with no MessageId.
func TestSESHiddenEmptyBody(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	addFault(t, b, sandbox.Fault{Kind: sandbox.FaultEmptyBody, Times: 1})
	client, _ := sesClient(b, sesOpts{retryer: aws.NopRetryer{}})

	out, err := client.SendEmail(context.Background(), simpleEmail("oncall@example.com"))
	require.NoError(t, err, "the SDK hides the failure")
	require.Nil(t, out.MessageId)
	require.Len(t, b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.SES}), 1, "yet SES accepted the message")
}

func TestSESThrottle(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Limits = map[sandbox.Partner]sandbox.Rate{sandbox.SES: {PerSecond: 1, Burst: 1}}
	})
	client, _ := sesClient(b, sesOpts{retryer: aws.NopRetryer{}})
	_, err := client.SendEmail(context.Background(), simpleEmail("oncall@example.com"))
	require.NoError(t, err)

	_, err = client.SendEmail(context.Background(), simpleEmail("oncall@example.com"))
	code, status := apiError(t, err)
	require.Equal(t, "TooManyRequestsException", code)
	require.Equal(t, http.StatusTooManyRequests, status)
	var tmr *types.TooManyRequestsException
	require.True(t, errors.As(err, &tmr))
	require.Equal(t, "Maximum sending rate exceeded.", tmr.ErrorMessage())

	b.clock.Advance(time.Second)
	_, err = client.SendEmail(context.Background(), simpleEmail("oncall@example.com"))
	require.NoError(t, err)
}

// §4.4 and §7.9: the default retryer makes three attempts on a 5xx, and
// SendEmail has no idempotency key, so a lost answer sends twice.
func TestSESDefaultRetryerDuplicates(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	addFault(t, b, sandbox.Fault{Kind: sandbox.FaultStatus, Status: http.StatusInternalServerError})
	var n atomic.Int32
	client, _ := sesClient(b, sesOpts{count: &n})
	_, err := client.SendEmail(context.Background(), simpleEmail("oncall@example.com"))
	code, status := apiError(t, err)
	require.Equal(t, "InternalServiceErrorException", code)
	require.Equal(t, http.StatusInternalServerError, status)
	require.EqualValues(t, 3, n.Load())
	require.Equal(t, 3, sesMetric(t, b, "500"))

	b.sb.Reset()
	addFault(t, b, sandbox.Fault{Kind: sandbox.FaultDropConnection, Times: 1})
	out, err := client.SendEmail(context.Background(), simpleEmail("oncall@example.com"))
	require.NoError(t, err)
	msgs := b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.SES})
	require.Len(t, msgs, 2, "the retry after the dropped answer sent the message again")
	require.Equal(t, *out.MessageId, msgs[1].MessageID)
	require.NotEqual(t, msgs[0].MessageID, msgs[1].MessageID)
}

// sesMetric reads herald_sandbox_requests_total for SES and code.
func sesMetric(t *testing.T, b *bundle, code string) int {
	t.Helper()
	resp, err := http.Get(b.sb.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	want := `herald_sandbox_requests_total{code="` + code + `",partner="ses"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), want); ok {
			var n int
			require.NoError(t, json.Unmarshal([]byte(v), &n))
			return n
		}
	}
	return 0
}

func TestSESGatewayAndStatusFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	client, _ := sesClient(b, sesOpts{retryer: aws.NopRetryer{}})

	addFault(t, b, sandbox.Fault{Kind: sandbox.FaultGateway502, Times: 1})
	_, err := client.SendEmail(context.Background(), simpleEmail("oncall@example.com"))
	require.Error(t, err)
	var re *awshttp.ResponseError
	require.True(t, errors.As(err, &re))
	require.Equal(t, http.StatusBadGateway, re.HTTPStatusCode())

	for status, want := range map[int]string{400: "BadRequestException", 404: "NotFoundException", 429: "TooManyRequestsException", 503: "ServiceUnavailable"} {
		addFault(t, b, sandbox.Fault{Kind: sandbox.FaultStatus, Status: status, Times: 1})
		_, err := client.SendEmail(context.Background(), simpleEmail("oncall@example.com"))
		code, got := apiError(t, err)
		require.Equal(t, want, code)
		require.Equal(t, status, got)
	}

	addFault(t, b, sandbox.Fault{Kind: sandbox.FaultRejectMetadata, Key: "team", Value: "sre", Times: 1})
	_, err = client.SendEmail(context.Background(), simpleEmail("oncall@example.com", tag("team", "sre")))
	code, status := apiError(t, err)
	require.Equal(t, "BadRequestException", code)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, err.Error(), "Invalid tag value <sre>")
	require.Empty(t, b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.SES}))
}

func TestSESUnverifiedSender(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) { c.VerifiedSenders = []string{"verified.example.com"} })
	client, _ := sesClient(b, sesOpts{retryer: aws.NopRetryer{}})
	_, err := client.SendEmail(context.Background(), simpleEmail("oncall@example.com"))
	code, status := apiError(t, err)
	require.Equal(t, "MessageRejected", code)
	require.Equal(t, http.StatusBadRequest, status)
	var mr *types.MessageRejected
	require.True(t, errors.As(err, &mr))
	require.Equal(t, "Email address is not verified. The following identities failed the check in region US-EAST-1: alerts@example.com", mr.ErrorMessage())
}

// AWS matches member names exactly and ignores unknown ones: tags sent as
// "emailTags" are lost without an error.
func TestSESMemberNamesAreCaseSensitive(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	body := `{"FromEmailAddress":"alerts@example.com","Destination":{"ToAddresses":["oncall@example.com"]},` +
		`"Content":{"Simple":{"Subject":{"Data":"s"},"Body":{"Text":{"Data":"t"}}}},"emailTags":[{"Name":"team","Value":"sre"}]}`
	resp := sesSignedRequest(t, b, body, b.clock.Now(), "us-east-1", "ses")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out struct{ MessageId string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	m, ok := b.sb.Message(out.MessageId)
	require.True(t, ok)
	require.Empty(t, m.Metadata)
}

// sesEvent is an SNS notification and the SES record inside it.
type sesEvent struct {
	envelope map[string]string
	record   map[string]any
}

// nextSESEvent reads the next SES webhook and checks its SNS signature
// against the certificate its SigningCertURL serves.
func nextSESEvent(t *testing.T, b *bundle) sesEvent {
	t.Helper()
	h := b.hooks.next(t)
	require.Equal(t, "/ses", h.Path)
	require.Equal(t, "Notification", h.Header.Get("X-Amz-Sns-Message-Type"))
	require.Equal(t, "text/plain; charset=UTF-8", h.Header.Get("Content-Type"))
	var env map[string]string
	require.NoError(t, json.Unmarshal(h.Body, &env))
	require.Equal(t, env["MessageId"], h.Header.Get("X-Amz-Sns-Message-Id"))
	require.Equal(t, b.sb.Keys().SESTopicARN, env["TopicArn"])
	require.Equal(t, env["TopicArn"], h.Header.Get("X-Amz-Sns-Topic-Arn"))
	require.Equal(t, "2", env["SignatureVersion"])

	resp, err := http.Get(env["SigningCertURL"])
	require.NoError(t, err)
	pemBytes, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	block, _ := pem.Decode(pemBytes)
	require.NotNil(t, block)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	canonical := ""
	for _, k := range []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"} {
		if v, ok := env[k]; ok {
			canonical += k + "\n" + v + "\n"
		}
	}
	sig, err := base64.StdEncoding.DecodeString(env["Signature"])
	require.NoError(t, err)
	require.NoError(t, cert.CheckSignature(x509.SHA256WithRSA, []byte(canonical), sig), "SNS signature")

	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(env["Message"]), &rec), "Message is the SES record as a string")
	return sesEvent{envelope: env, record: rec}
}

func (e sesEvent) get(path ...string) any {
	var v any = e.record
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

func TestSESWebhookDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	client, _ := sesClient(b, sesOpts{})
	out, err := client.SendEmail(context.Background(), simpleEmail("success@simulator.amazonses.com", tag("notification_id", "n-42")))
	require.NoError(t, err)
	b.clock.Advance(0)

	ev := nextSESEvent(t, b)
	require.Equal(t, "Delivery", ev.get("eventType"))
	require.Equal(t, *out.MessageId, ev.get("mail", "messageId"))
	require.Equal(t, []any{"n-42"}, ev.get("mail", "tags", "notification_id"))
	require.Equal(t, []any{"herald"}, ev.get("mail", "tags", "ses:configuration-set"))
	require.Equal(t, []any{"example.com"}, ev.get("mail", "tags", "ses:from-domain"))
	require.Equal(t, []any{"success@simulator.amazonses.com"}, ev.get("delivery", "recipients"))
	require.Equal(t, "2026-11-24T12:00:00.000Z", ev.envelope["Timestamp"])
	b.hooks.none(t)
	m, _ := b.sb.Message(*out.MessageId)
	require.Equal(t, sandbox.FateDelivered, m.Fate)
}

func TestSESSimulatorEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	client, _ := sesClient(b, sesOpts{})
	send := func(to string) string {
		out, err := client.SendEmail(context.Background(), simpleEmail(to, tag("notification_id", "n-1")))
		require.NoError(t, err)
		b.clock.Advance(0)
		return *out.MessageId
	}

	id := send("bounce+label@simulator.amazonses.com")
	ev := nextSESEvent(t, b)
	require.Equal(t, "Bounce", ev.get("eventType"))
	require.Equal(t, id, ev.get("mail", "messageId"))
	require.Equal(t, "Permanent", ev.get("bounce", "bounceType"))
	require.Equal(t, "General", ev.get("bounce", "bounceSubType"))
	rcpt := ev.get("bounce", "bouncedRecipients").([]any)[0].(map[string]any)
	require.Equal(t, "bounce+label@simulator.amazonses.com", rcpt["emailAddress"])
	require.Equal(t, "5.1.1", rcpt["status"])

	send("suppressionlist@simulator.amazonses.com")
	ev = nextSESEvent(t, b)
	require.Equal(t, "Bounce", ev.get("eventType"))
	require.Equal(t, "OnAccountSuppressionList", ev.get("bounce", "bounceSubType"))

	send("complaint@simulator.amazonses.com")
	require.Equal(t, "Delivery", nextSESEvent(t, b).get("eventType"))
	ev = nextSESEvent(t, b)
	require.Equal(t, "Complaint", ev.get("eventType"))
	require.Equal(t, "abuse", ev.get("complaint", "complaintFeedbackType"))

	send("ooto@simulator.amazonses.com")
	require.Equal(t, "Delivery", nextSESEvent(t, b).get("eventType"))

	addFault(t, b, sandbox.Fault{Kind: sandbox.FaultAcceptThenFail, Fate: sandbox.FateDeferred, Times: 1})
	send("oncall@example.com")
	ev = nextSESEvent(t, b)
	require.Equal(t, "DeliveryDelay", ev.get("eventType"))
	require.Equal(t, "4.7.1", ev.get("deliveryDelay", "delayedRecipients").([]any)[0].(map[string]any)["status"])

	addFault(t, b, sandbox.Fault{Kind: sandbox.FaultAcceptThenFail, Fate: sandbox.FateDropped, Times: 1})
	in := simpleEmail("a@example.com")
	in.Destination.CcAddresses = []string{"b@example.com"}
	out, err := client.SendEmail(context.Background(), in)
	require.NoError(t, err)
	b.clock.Advance(0)
	ev = nextSESEvent(t, b)
	require.Equal(t, "Reject", ev.get("eventType"))
	require.Equal(t, *out.MessageId, ev.get("mail", "messageId"))
	b.hooks.none(t) // one Reject for the message, not one per recipient
}

// Without a configuration set SES has no event destination: it sends
// identity feedback notifications, and they carry no tags (§4.6, §7.14).
func TestSESWithoutConfigurationSet(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	client, _ := sesClient(b, sesOpts{})
	in := simpleEmail("bounce@simulator.amazonses.com", tag("notification_id", "n-1"))
	in.ConfigurationSetName = nil
	out, err := client.SendEmail(context.Background(), in)
	require.NoError(t, err)
	b.clock.Advance(0)
	ev := nextSESEvent(t, b)
	require.Equal(t, "Bounce", ev.get("notificationType"))
	require.Nil(t, ev.get("eventType"))
	require.Equal(t, *out.MessageId, ev.get("mail", "messageId"))
	require.Nil(t, ev.get("mail", "tags"))
}

// SNS retries a failed delivery 3 times, 20 s apart, with the same
// MessageId; a 4xx answer is final.
func TestSESWebhookRetries(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	client, _ := sesClient(b, sesOpts{})
	b.hooks.answer(500, 503, 500, 500)
	_, err := client.SendEmail(context.Background(), simpleEmail("oncall@example.com"))
	require.NoError(t, err)
	b.clock.Advance(0)
	first := nextSESEvent(t, b)
	for range 3 {
		b.clock.Advance(19 * time.Second)
		b.hooks.none(t)
		b.clock.Advance(time.Second)
		require.Equal(t, first.envelope["MessageId"], nextSESEvent(t, b).envelope["MessageId"])
	}
	b.clock.Advance(time.Hour)
	b.hooks.none(t)
	attempts := b.sb.WebhookAttempts()
	require.Len(t, attempts, 4)
	require.Equal(t, "gave_up", attempts[3].Outcome)

	b.hooks.answer(403)
	_, err = client.SendEmail(context.Background(), simpleEmail("oncall@example.com"))
	require.NoError(t, err)
	b.clock.Advance(0)
	nextSESEvent(t, b)
	b.clock.Advance(time.Hour)
	b.hooks.none(t)

	addFault(t, b, sandbox.Fault{Kind: sandbox.FaultDuplicateWebhooks, Times: 1})
	_, err = client.SendEmail(context.Background(), simpleEmail("oncall@example.com"))
	require.NoError(t, err)
	b.clock.Advance(0)
	a, c := nextSESEvent(t, b), nextSESEvent(t, b)
	require.Equal(t, a.envelope["MessageId"], c.envelope["MessageId"], "SNS redelivers with the same MessageId")
}

// sesFuzzServer is a sandbox served in-process, with events never sent.
func sesFuzzServer(f *testing.F) (*sandbox.Server, *clock.Fake) {
	f.Helper()
	c := clock.NewFake(t0)
	s, err := sandbox.New(sandbox.Config{Clock: c, Seed: 1, MaxMessages: 10,
		Faults: []sandbox.Fault{{Kind: sandbox.FaultNeverConfirm, Partner: sandbox.SES}}})
	require.NoError(f, err)
	return s, c
}

// requireSESAnswer fails unless rec holds an answer SES could give: a 200
// with a MessageId, or a documented error status with X-Amzn-ErrorType
// and a {"message"} body.
func requireSESAnswer(t *testing.T, rec *httptest.ResponseRecorder, statuses ...int) {
	t.Helper()
	require.Contains(t, statuses, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	require.NotContains(t, rec.Body.String(), sesSecret)
	if rec.Code == http.StatusOK {
		var ok struct{ MessageId string }
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ok))
		require.Regexp(t, sesMessageID, ok.MessageId)
		return
	}
	require.NotEmpty(t, rec.Header().Get("X-Amzn-ErrorType"))
	var e map[string]string
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
	require.NotEmpty(t, e["message"])
}

func FuzzSESSendEmailBody(f *testing.F) {
	for _, seed := range []string{
		`{"FromEmailAddress":"a@example.com","Destination":{"ToAddresses":["b@example.com"]},"Content":{"Simple":{"Subject":{"Data":"s"},"Body":{"Text":{"Data":"t"}}}},"EmailTags":[{"Name":"n","Value":"v"}],"ConfigurationSetName":"c"}`,
		`{"FromEmailAddress":"a@example.com","Destination":{"ToAddresses":["b@example.com"]},"Content":{"Simple":{"Subject":{"Data":"s"},"Body":{"Html":{"Data":"<p>"}},"Headers":[{"Name":"X-A","Value":"b"}]}}}`,
		`{"Content":{"Raw":{"Data":"RnJvbTogYUBleGFtcGxlLmNvbQ0KVG86IGJAZXhhbXBsZS5jb20NClN1YmplY3Q6IHMNCg0KYm9keQ=="}}}`,
		`{"FromEmailAddress":"a@example.com","Destination":{"BccAddresses":["b@example.com"]},"Content":{"Template":{"TemplateContent":{"Subject":"{{x}}"},"TemplateData":"{\"x\":1}"}}}`,
		`{"FromEmailAddress":"a@example.com","Destination":{"ToAddresses":["b@example.com"]},"Content":{"Simple":{"Subject":{"Data":"s"},"Body":{"Text":{"Data":"t"}}}},"EmailTags":[{"Name":"n","Value":"a@b.c"}]}`,
		`{"Content":{"Simple":null,"Raw":{"Data":"!!"}}}`,
		`[]`, `null`, `{"Destination":{"ToAddresses":"x"}}`, ``,
	} {
		f.Add(seed)
	}
	s, c := sesFuzzServer(f)
	signer := v4.NewSigner()
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "http://email.us-east-1.amazonaws.com/v2/email/outbound-emails", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		sum := sha256.Sum256([]byte(body))
		cr := aws.Credentials{AccessKeyID: sesKeyID, SecretAccessKey: sesSecret}
		require.NoError(t, signer.SignHTTP(context.Background(), cr, req, hex.EncodeToString(sum[:]), "ses", "us-east-1", c.Now()))
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		requireSESAnswer(t, rec, http.StatusOK, http.StatusBadRequest)
	})
}

func FuzzSESAuthorization(f *testing.F) {
	s, c := sesFuzzServer(f)
	body := `{"FromEmailAddress":"a@example.com","Destination":{"ToAddresses":["b@example.com"]},"Content":{"Simple":{"Subject":{"Data":"s"},"Body":{"Text":{"Data":"t"}}}}}`
	valid := httptest.NewRequest(http.MethodPost, "http://email.us-east-1.amazonaws.com/v2/email/outbound-emails", strings.NewReader(body))
	sum := sha256.Sum256([]byte(body))
	require.NoError(f, v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: sesKeyID, SecretAccessKey: sesSecret},
		valid, hex.EncodeToString(sum[:]), "ses", "us-east-1", c.Now()))
	amzDate := valid.Header.Get("X-Amz-Date")
	for _, seed := range []string{
		valid.Header.Get("Authorization"),
		"AWS4-HMAC-SHA256 Credential=AKIASANDBOXEXAMPLE/20261124/us-east-1/ses/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
		"AWS4-HMAC-SHA256 Credential=AKIASANDBOXEXAMPLE/20261124/us-east-1/ses, SignedHeaders=host, Signature=00",
		"AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/e,Credential=a/b/c/d/e",
		"AWS4-HMAC-SHA256 ,,,=,",
		"Bearer x", "", "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 Signature",
	} {
		f.Add(seed, amzDate)
	}
	f.Fuzz(func(t *testing.T, auth, date string) {
		req := httptest.NewRequest(http.MethodPost, "http://email.us-east-1.amazonaws.com/v2/email/outbound-emails", strings.NewReader(body))
		if strings.ContainsAny(auth, "\r\n") || strings.ContainsAny(date, "\r\n") {
			return // not expressible as a header
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-Amz-Date", date)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		requireSESAnswer(t, rec, http.StatusOK, http.StatusForbidden)
		if rec.Code == http.StatusForbidden {
			require.Contains(t, []string{"MissingAuthenticationTokenException", "IncompleteSignatureException",
				"UnrecognizedClientException", "InvalidSignatureException"}, rec.Header().Get("X-Amzn-ErrorType"))
		}
	})
}
