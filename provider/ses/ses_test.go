package ses_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/stretchr/testify/require"

	"herald"
	"herald/clock"
	"herald/provider"
	"herald/provider/ses"
	"herald/sandbox"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// The sandbox's default SES credentials (docs/sandbox.md).
const (
	keyID  = "AKIASANDBOXEXAMPLE"
	secret = "sandbox-ses-secret"
)

// messageID is SES's message id format.
var messageID = regexp.MustCompile(`^0100[0-9a-f]{12}-[0-9a-f-]{36}-000000$`)

type bundle struct {
	sb    *sandbox.Running
	clock *clock.Fake
	cfg   ses.Config
	p     *ses.Provider
}

// setup starts a sandbox on a fake clock and an SES partner pointed at it,
// signing with the same clock.
func setup(t *testing.T, change func(*sandbox.Config), changeP func(*ses.Config)) *bundle {
	t.Helper()
	fake := clock.NewFake(t0)
	cfg := sandbox.Config{Clock: fake, Seed: 1}
	if change != nil {
		change(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); sb.Close() })
	pc := ses.Config{Name: "ses-main", Region: "us-east-1", AccessKeyID: keyID, SecretAccessKey: secret,
		BaseURL: sb.URL, From: "alerts@example.com", ConfigurationSetName: "herald", Timeout: 2 * time.Second, Clock: fake}
	if changeP != nil {
		changeP(&pc)
	}
	p, err := ses.New(pc)
	require.NoError(t, err)
	return &bundle{sb: sb, clock: fake, cfg: pc, p: p}
}

func email() *herald.Email {
	return &herald.Email{To: "oncall@example.com", Subject: "CPU high", Text: "p99 above 2s",
		Metadata: map[string]string{"team": "platform", herald.MetaNotificationID: "ntf_01jb2c3d4e5f6g7h8j9k0m1n2p", herald.MetaDeliveryID: "dlv_01jb2c3d4e5f6g7h8j9k0m1n2q"}}
}

func TestAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, nil)
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
	require.Equal(t, "ok", r.Reason)
	require.Equal(t, 200, r.Status)
	require.Regexp(t, messageID, r.MessageID)
	require.True(t, strings.HasPrefix(r.Request, "POST "+b.sb.URL+"/v2/email/outbound-emails body="), r.Request)
	require.Contains(t, r.Request, "metadata_keys=[herald_delivery_id,herald_notification_id,team]")

	msgs := b.sb.Messages(sandbox.MessageFilter{MessageID: r.MessageID})
	require.Len(t, msgs, 1)
	m := msgs[0]
	require.Equal(t, email().Metadata, m.Metadata, "every tag arrived as sent, herald's ids included")
	require.Equal(t, "herald", m.Headers["X-SES-CONFIGURATION-SET"])
	require.Equal(t, []string{"oncall@example.com"}, m.To)
	require.Equal(t, "alerts@example.com", m.From)
	require.Equal(t, "CPU high", m.Subject)
	require.Equal(t, "p99 above 2s", m.Text)
}

// The mailbox simulator's addresses are accepted like any other: what
// becomes of the message is told later, by an event (reference/providers.md
// §4.5, §7 case 12). Accepted is not delivered.
func TestSimulatorAddressesAreAcceptedTheirFateComesLater(t *testing.T) {
	t.Parallel()
	for box, fate := range map[string]sandbox.Fate{
		"success":         sandbox.FateDelivered,
		"bounce":          sandbox.FateBounced,
		"complaint":       sandbox.FateComplained,
		"suppressionlist": sandbox.FateBounced,
	} {
		t.Run(box, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil, nil)
			e := email()
			e.To = box + "+herald@simulator.amazonses.com"
			r := b.p.Send(context.Background(), e)
			require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
			m, ok := b.sb.Message(r.MessageID)
			require.True(t, ok)
			require.Equal(t, sandbox.FateAccepted, m.Fate, "nothing is known yet")

			b.clock.Advance(time.Millisecond)
			m, _ = b.sb.Message(r.MessageID)
			require.Equal(t, fate, m.Fate)
		})
	}
}

// tap records the bodies and headers of the requests its client sends, on
// their way to the sandbox.
type tap struct {
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
}

func (tp *tap) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	tp.mu.Lock()
	tp.bodies = append(tp.bodies, body)
	tp.headers = append(tp.headers, r.Header.Clone())
	tp.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// The request as it left herald, byte for byte: AWS's member names (which
// are case-sensitive — "emailTags" would be dropped silently), UTF-8
// content, tags sorted by name, the configuration set; signed at herald's
// clock's time.
func TestRequestGolden(t *testing.T) {
	t.Parallel()
	tp := &tap{}
	b := setup(t, nil, func(c *ses.Config) { c.HTTPClient = &http.Client{Transport: tp} })
	e := &herald.Email{To: "oncall@example.com", Subject: "CPU high ✓", Text: "p99 above 2s", HTML: "<p>p99 above 2s</p>",
		Metadata: map[string]string{"team": "platform-infra", herald.MetaNotificationID: "ntf_1", herald.MetaDeliveryID: "dlv_1"}}
	r := b.p.Send(context.Background(), e)
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
	require.Len(t, tp.bodies, 1)
	golden(t, "request.json", tp.bodies[0])
	require.Contains(t, r.Request, "body="+strconv.Itoa(len(tp.bodies[0]))+"B")

	h := tp.headers[0]
	require.Equal(t, "20261124T120000Z", h.Get("X-Amz-Date"), "signed at the injected clock's time")
	require.Contains(t, h.Get("Authorization"), "Credential="+keyID+"/20261124/us-east-1/ses/aws4_request")
	require.NotContains(t, h.Get("Authorization"), secret)
	require.Equal(t, "application/json", h.Get("Content-Type"))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(got))
}

// metric reads one sample of the sandbox's /metrics.
func metric(t *testing.T, b *bundle, series string) int {
	t.Helper()
	resp, err := http.Get(b.sb.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			n, err := strconv.Atoi(v)
			require.NoError(t, err)
			return n
		}
	}
	return 0
}

// firedFor is the series counting how often an SES fault fired: once per
// request that reached the sandbox while the fault was installed.
func firedFor(kind sandbox.FaultKind) string {
	return `herald_sandbox_faults_fired_total{kind="` + string(kind) + `",partner="ses"}`
}

// Each of SES's answers, as the sandbox gives them, and the outcome herald
// takes from it (reference/providers.md §4.3, §4.4, §7 cases 8, 9, 13). The
// faults stay installed for as long as the test runs, so every retry the
// SDK made would meet them again and be counted: exactly one request
// reaches the sandbox per Send.
func TestClassifiesEveryAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		fault       sandbox.Fault
		outcome     herald.Outcome
		reason      string
		partnerSide bool
		errContains string
		// accepted is how many copies the sandbox's mailbox holds after.
		accepted  int
		retryWait time.Duration
	}{
		{"incident: a tag value refused", sandbox.Fault{Kind: sandbox.FaultRejectMetadata, Key: "team"},
			herald.OutcomeRejected, "validation", false, "ses 400 BadRequestException: Invalid tag value <platform>: only alphanumeric ASCII characters", 0, 0},
		{"500", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 500}, herald.OutcomeTransient, "server_error", true, "ses 500 InternalServiceErrorException: The request couldn't be processed", 0, 0},
		{"503", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 503}, herald.OutcomeTransient, "server_error", true, "ses 503 ServiceUnavailable", 0, 0},
		{"nginx 502 page", sandbox.Fault{Kind: sandbox.FaultGateway502}, herald.OutcomeTransient, "server_error", true, "ses 502 with a body that is not its error shape", 0, 0},
		{"400", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 400}, herald.OutcomeRejected, "validation", false, "ses 400 BadRequestException: The input you provided is invalid.", 0, 0},
		{"401", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 401}, herald.OutcomeRejected, "auth", true, "UnrecognizedClientException", 0, 0},
		{"403 IAM", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 403}, herald.OutcomeRejected, "forbidden", true, "AccessDeniedException: User: arn:aws:iam::", 0, 0},
		{"404", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 404}, herald.OutcomeRejected, "config", true, "NotFoundException", 0, 0},
		{"413", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 413}, herald.OutcomeRejected, "too_large", false, "RequestEntityTooLargeException", 0, 0},
		{"429", sandbox.Fault{Kind: sandbox.FaultStatus, Status: 429}, herald.OutcomeThrottled, "rate_limited", true, "TooManyRequestsException: Maximum sending rate exceeded.", 0, ses.RateLimitWait},
		{"200 with no body", sandbox.Fault{Kind: sandbox.FaultEmptyBody}, herald.OutcomeUnknown, "missing_message_id", false, "empty body", 1, 0},
		{"200 with garbage", sandbox.Fault{Kind: sandbox.FaultGarbageBody}, herald.OutcomeUnknown, "unexpected_body", false, "not JSON", 1, 0},
		{"200 with an HTML page", sandbox.Fault{Kind: sandbox.FaultHTMLBody}, herald.OutcomeUnknown, "unexpected_body", false, "not JSON", 1, 0},
		{"connection dropped after the request", sandbox.Fault{Kind: sandbox.FaultDropConnection}, herald.OutcomeUnknown, "connection_lost_after_send", true, "", 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fault.Partner = sandbox.SES
			b := setup(t, func(c *sandbox.Config) { c.Faults = []sandbox.Fault{tc.fault} }, nil)
			r := b.p.Send(context.Background(), email())
			require.Equal(t, tc.outcome, r.Outcome, "%+v", r)
			require.Equal(t, tc.reason, r.Reason)
			require.Equal(t, tc.partnerSide, r.PartnerSide)
			require.Contains(t, r.Error, tc.errContains)
			require.Equal(t, tc.retryWait, r.RetryAfter)
			require.Empty(t, r.MessageID)
			require.NotEmpty(t, r.Request)

			require.Len(t, b.sb.Messages(sandbox.MessageFilter{Partner: sandbox.SES}), tc.accepted,
				"a lost answer leaves one copy with the partner, never two")
			if tc.fault.Kind != sandbox.FaultRejectMetadata { // reject_metadata is not counted as fired
				require.Equal(t, 1, metric(t, b, firedFor(tc.fault.Kind)), "exactly one request reached SES: the SDK's retryer is off")
			}
		})
	}
}

// A partner that never answers: the request was written, so the outcome is
// unknown, not a failure to retry blindly (§7 case 13).
func TestStallPastTheTimeoutIsUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) { c.Faults = []sandbox.Fault{{Partner: sandbox.SES, Kind: sandbox.FaultStall}} },
		func(c *ses.Config) { c.Timeout = 200 * time.Millisecond })
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeUnknown, r.Outcome, "%+v", r)
	require.Equal(t, "timeout_after_send", r.Reason)
	require.True(t, r.PartnerSide)
	require.Empty(t, b.sb.Messages(sandbox.MessageFilter{}))
}

// A deadline from the caller counts the same as the client's timeout.
func TestCallerDeadlineAfterSendIsUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) { c.Faults = []sandbox.Fault{{Partner: sandbox.SES, Kind: sandbox.FaultStall}} }, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r := b.p.Send(ctx, email())
	require.Equal(t, herald.OutcomeUnknown, r.Outcome, "%+v", r)
	require.Equal(t, "timeout_after_send", r.Reason)
}

// Nobody listening: nothing was sent, so it is transient and safe to retry.
func TestConnectionRefusedIsTransient(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, nil)
	require.NoError(t, b.sb.Close())
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeTransient, r.Outcome, "%+v", r)
	require.Equal(t, "connection", r.Reason)
	require.True(t, r.PartnerSide)
}

func TestWrongCredentialsAreRefusedAndNeverShown(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, nil)
	for name, tc := range map[string]struct {
		keyID, secret, exception string
	}{
		"wrong secret":   {keyID, "wrong-secret-7f3a9c", "InvalidSignatureException: The request signature we calculated does not match"},
		"unknown key id": {"AKIAUNKNOWNEXAMPLE", "another-secret-1b2c", "UnrecognizedClientException"},
	} {
		cfg := b.cfg
		cfg.AccessKeyID, cfg.SecretAccessKey = tc.keyID, tc.secret
		p, err := ses.New(cfg)
		require.NoError(t, err)
		r := p.Send(context.Background(), email())
		require.Equal(t, herald.OutcomeRejected, r.Outcome, name)
		require.Equal(t, "auth", r.Reason, name)
		require.True(t, r.PartnerSide, "%s: another partner may succeed", name)
		require.Equal(t, http.StatusForbidden, r.Status, name)
		require.Contains(t, r.Error, "ses 403 "+tc.exception, name)
		all := r.Error + r.Response + r.Request + r.MessageID + strings.Join(mapValues(r.RateLimit), "")
		require.NotContains(t, all, tc.secret, name)
		require.NotContains(t, all, secret, name)
	}
	require.Empty(t, b.sb.Messages(sandbox.MessageFilter{}))
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// herald signs with its own clock and does not let the SDK shift it: a
// clock off by more than 15 minutes is refused by SES, and the result says
// why.
func TestSkewedClockIsRefusedWithTheReason(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(c *ses.Config) { c.Clock = clock.NewFake(t0.Add(20 * time.Minute)) })
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeRejected, r.Outcome)
	require.Equal(t, "auth", r.Reason)
	require.Contains(t, r.Error, "InvalidSignatureException: Signature not yet current: 20261124T122000Z")
}

func TestUnverifiedSender(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) { c.VerifiedSenders = []string{"verified.example.com"} }, nil)
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeRejected, r.Outcome)
	require.Equal(t, "unverified_sender", r.Reason)
	require.True(t, r.PartnerSide, "another partner may have this sender verified")
	require.Equal(t, "ses 400 MessageRejected: Email address is not verified. The following identities failed the check in region US-EAST-1: alerts@example.com", r.Error)
}

func TestThrottledByTheSendingRate(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *sandbox.Config) {
		c.Limits = map[sandbox.Partner]sandbox.Rate{sandbox.SES: {PerSecond: 1, Burst: 1}}
	}, nil)
	require.Equal(t, herald.OutcomeAccepted, b.p.Send(context.Background(), email()).Outcome)
	r := b.p.Send(context.Background(), email())
	require.Equal(t, herald.OutcomeThrottled, r.Outcome)
	require.Equal(t, "rate_limited", r.Reason)
	require.Equal(t, http.StatusTooManyRequests, r.Status)
	require.True(t, r.PartnerSide)
	// SES names no wait; its rate is per second.
	require.Equal(t, ses.RateLimitWait, r.RetryAfter)
	require.Contains(t, r.Error, "TooManyRequestsException: Maximum sending rate exceeded.")

	b.clock.Advance(r.RetryAfter)
	require.Equal(t, herald.OutcomeAccepted, b.p.Send(context.Background(), email()).Outcome)
}

// §4.2, §7 case 8: SES refuses tags outside [A-Za-z0-9_-]{1,256}, and the
// SDK does not check; herald refuses them at its API, naming the key and
// the rule, and never sends them.
func TestCheckMetadata(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, nil)
	require.NoError(t, b.p.CheckMetadata(email().Metadata))
	require.NoError(t, b.p.CheckMetadata(map[string]string{"A-z_09": strings.Repeat("x", 256)}))
	// Values SES's rule refuses are encoded, not refused: the incident's
	// kind of value travels.
	require.NoError(t, b.p.CheckMetadata(map[string]string{"owner": "a@b.c", "trigger": "x y", "version": "1.2",
		"url": "https://example.com", "team": "équipe", "empty": ""}))
	for _, tc := range []struct {
		md    map[string]string
		field string
		rule  string
	}{
		{map[string]string{"team": strings.Repeat("é", 100)}, "metadata.team", "even encoded"},
		{map[string]string{"team.name": "sre"}, "metadata.team.name", "must be 1 to 256 characters of A-Z a-z 0-9 _ -"},
		{map[string]string{"ses:feedback-id": "a"}, "metadata.ses:feedback-id", "must be 1 to 256 characters of A-Z a-z 0-9 _ -"},
	} {
		err := b.p.CheckMetadata(tc.md)
		require.Equal(t, herald.EINVALID, herald.ErrorCode(err), "%v", tc.md)
		var he *herald.Error
		require.True(t, errors.As(err, &he))
		require.Equal(t, tc.field, he.Fields[0].Field)
		require.Contains(t, err.Error(), tc.rule)
	}

	// Send fails closed on what CheckMetadata refuses: nothing is sent.
	e := email()
	e.Metadata["team.name"] = "sre"
	r := b.p.Send(context.Background(), e)
	require.Equal(t, herald.OutcomeRejected, r.Outcome)
	require.Equal(t, "encode", r.Reason)
	require.Contains(t, r.Error, "metadata.team.name")
	require.Equal(t, 0, metric(t, b, `herald_sandbox_requests_total{code="200",partner="ses"}`))
	require.Equal(t, 0, metric(t, b, `herald_sandbox_requests_total{code="400",partner="ses"}`))
}

// A value outside SES's rule reaches SES encoded — SES accepts it — and
// decodes back to what was sent.
func TestTagValuesAreEncodedReversibly(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, nil)
	e := email()
	e.Metadata["owner"] = "oncall@example.com"
	e.Metadata["note"] = "b64-looks-encoded"
	r := b.p.Send(context.Background(), e)
	require.Equal(t, herald.OutcomeAccepted, r.Outcome, r.Error)
	msgs := b.sb.Messages(sandbox.MessageFilter{MessageID: r.MessageID})
	require.Len(t, msgs, 1)
	for k, want := range e.Metadata {
		got, err := ses.DecodeTagValue(msgs[0].Metadata[k])
		require.NoError(t, err)
		require.Equal(t, want, got, k)
	}
	require.Equal(t, "platform", msgs[0].Metadata["team"], "a value SES accepts is sent as it is")
	require.True(t, strings.HasPrefix(msgs[0].Metadata["owner"], "b64-"))
}

// Answers SES documents for SendEmail that the sandbox has no fault for,
// in SES's own shape: the exception in X-Amzn-ErrorType, {"message"} as the
// body (https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html#API_SendEmail_Errors).
func TestClassifyDocumentedAnswers(t *testing.T) {
	t.Parallel()
	exception := func(status int, typ, msg string, extra ...string) provider.Exchange {
		h := http.Header{"Content-Type": {"application/json"}, "X-Amzn-Requestid": {"6f0e9c2a"}}
		if typ != "" {
			h.Set("X-Amzn-ErrorType", typ)
		}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return provider.Exchange{Sent: true, Status: status, Header: h, Body: []byte(`{"message":"` + msg + `"}`)}
	}
	ok := func(body string) provider.Exchange {
		return provider.Exchange{Sent: true, Status: 200, Header: http.Header{}, Body: []byte(body)}
	}
	id := "0100019a8b7c6d5e-6f0e9c2a-1b2c-4d3e-8f90-a1b2c3d4e5f6-000000"
	for _, tc := range []struct {
		name        string
		x           provider.Exchange
		out         *sesv2.SendEmailOutput
		sdkErr      error
		outcome     herald.Outcome
		reason      string
		partnerSide bool
		wait        time.Duration
	}{
		{"accepted", ok(`{"MessageId":"` + id + `"}`), &sesv2.SendEmailOutput{MessageId: aws.String(id)}, nil,
			herald.OutcomeAccepted, "ok", false, 0},
		{"the SDK read no MessageId", ok(`{"MessageId":"` + id + `"}`), &sesv2.SendEmailOutput{}, nil,
			herald.OutcomeUnknown, "unexpected_body", false, 0},
		{"the SDK failed on a 200", ok(`{"MessageId":"` + id + `"}`), nil, errors.New("deserialization failed"),
			herald.OutcomeUnknown, "unexpected_body", false, 0},
		{"empty MessageId", ok(`{"MessageId":""}`), &sesv2.SendEmailOutput{MessageId: aws.String("")}, nil,
			herald.OutcomeUnknown, "missing_message_id", false, 0},
		{"JSON without MessageId", ok(`{}`), &sesv2.SendEmailOutput{}, nil,
			herald.OutcomeUnknown, "missing_message_id", false, 0},
		{"204", provider.Exchange{Sent: true, Status: 204, Header: http.Header{}}, &sesv2.SendEmailOutput{}, nil,
			herald.OutcomeUnknown, "unexpected_status", false, 0},
		{"MessageRejected content", exception(400, "MessageRejected", "Message length is more than 40 MB"), nil, nil,
			herald.OutcomeRejected, "validation", false, 0},
		{"MAIL FROM domain", exception(400, "MailFromDomainNotVerifiedException", "Mail from domain mail.example.com is not verified"), nil, nil,
			herald.OutcomeRejected, "unverified_sender", true, 0},
		{"account suspended", exception(400, "AccountSuspendedException", "Account is suspended"), nil, nil,
			herald.OutcomeRejected, "account_suspended", true, 0},
		{"sending paused", exception(400, "SendingPausedException", "Sending is paused for this account"), nil, nil,
			herald.OutcomeRejected, "sending_paused", true, 0},
		{"LimitExceededException", exception(400, "LimitExceededException", "Daily message quota exceeded."), nil, nil,
			herald.OutcomeThrottled, "quota_exceeded", true, ses.QuotaWait},
		{"429 daily quota", exception(429, "TooManyRequestsException", "Daily message quota exceeded."), nil, nil,
			herald.OutcomeThrottled, "quota_exceeded", true, ses.QuotaWait},
		{"429 with Retry-After", exception(429, "TooManyRequestsException", "Maximum sending rate exceeded.", "Retry-After", "7"), nil, nil,
			herald.OutcomeThrottled, "rate_limited", true, 7 * time.Second},
		{"type in the body, with a namespace", provider.Exchange{Sent: true, Status: 400, Header: http.Header{},
			Body: []byte(`{"__type":"com.amazonaws.sesv2#SendingPausedException","Message":"paused"}`)}, nil, nil,
			herald.OutcomeRejected, "sending_paused", true, 0},
		{"header with a uri suffix", exception(403, "InvalidSignatureException:http://internal.amazon.com/coral/", "Signature expired"), nil, nil,
			herald.OutcomeRejected, "auth", true, 0},
		{"InternalFailure", exception(500, "InternalFailure", "unknown error"), nil, nil,
			herald.OutcomeTransient, "server_error", true, 0},
		{"written, then the connection reset", provider.Exchange{Sent: true, Err: syscall.ECONNRESET}, nil, nil,
			herald.OutcomeUnknown, "connection_lost_after_send", true, 0},
		{"refused before it was written", provider.Exchange{Err: syscall.ECONNREFUSED}, nil, nil,
			herald.OutcomeTransient, "connection", true, 0},
		{"the SDK failed before sending", provider.Exchange{}, nil, errors.New("resolve endpoint: bad url"),
			herald.OutcomeRejected, "config", true, 0},
		{"cancelled before sending", provider.Exchange{}, nil, context.DeadlineExceeded,
			herald.OutcomeTransient, "timeout", true, 0},
	} {
		r := ses.Classify(tc.x, tc.out, tc.sdkErr, t0)
		require.Equal(t, tc.outcome, r.Outcome, "%s: %+v", tc.name, r)
		require.Equal(t, tc.reason, r.Reason, tc.name)
		require.Equal(t, tc.partnerSide, r.PartnerSide, tc.name)
		require.Equal(t, tc.wait, r.RetryAfter, tc.name)
		if tc.outcome == herald.OutcomeAccepted {
			require.Equal(t, id, r.MessageID)
		} else {
			require.Empty(t, r.MessageID, tc.name)
			require.NotEmpty(t, r.Error, tc.name)
		}
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	full := ses.Config{Name: "a", Region: "us-east-1", AccessKeyID: "k", SecretAccessKey: "s", From: "a@example.com"}
	_, err := ses.New(full)
	require.NoError(t, err)
	for name, change := range map[string]func(*ses.Config){
		"name":       func(c *ses.Config) { c.Name = "" },
		"region":     func(c *ses.Config) { c.Region = "" },
		"key id":     func(c *ses.Config) { c.AccessKeyID = "" },
		"secret":     func(c *ses.Config) { c.SecretAccessKey = "" },
		"from":       func(c *ses.Config) { c.From = "" },
		"config set": func(c *ses.Config) { c.ConfigurationSetName = "herald.prod" },
	} {
		cfg := full
		change(&cfg)
		_, err := ses.New(cfg)
		require.Error(t, err, name)
	}
}

// FuzzTagValue: every value CheckMetadata accepts encodes to what SES takes
// and decodes back to itself.
func FuzzTagValue(f *testing.F) {
	for _, seed := range []string{"platform", "a@b.c", "", "b64-x", "é", strings.Repeat("z", 189)} {
		f.Add(seed)
	}
	allowed := regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
	p, err := ses.New(ses.Config{Name: "ses", Region: "us-east-1", AccessKeyID: "a", SecretAccessKey: "s", From: "a@example.com"})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, v string) {
		if p.CheckMetadata(map[string]string{"k": v}) != nil {
			return
		}
		enc := ses.EncodeTagValue(v)
		if !allowed.MatchString(enc) {
			t.Fatalf("%q encodes to %q, which SES refuses", v, enc)
		}
		dec, err := ses.DecodeTagValue(enc)
		if err != nil || dec != v {
			t.Fatalf("%q → %q → %q, %v", v, enc, dec, err)
		}
	})
}
