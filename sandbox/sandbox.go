// Package sandbox simulates herald's email partners — SendGrid, Postmark,
// Mailgun, Amazon SES v2 and SMTP — and its notification channels — Slack
// incoming webhooks, the PagerDuty Events API v2 and a generic webhook
// receiver — over real HTTP and SMTP. It answers as each service documents,
// including the answers that hide a failure, keeps a mailbox of the messages
// and a store of the notifications it received, sends each email partner's
// signed event webhooks, and takes scripted faults through a control API
// under /_sandbox/.
//
// See docs/sandbox.md for the user's guide.
package sandbox

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"herald/clock"
)

// Partner names one simulated partner. The values are the `kind` names of
// herald's configuration.
type Partner string

// The partners the sandbox simulates: the email partners, then the
// notification channels (Slack, PagerDuty and the generic webhook receiver),
// whose requests go to the notification store instead of the mailbox.
const (
	SendGrid  Partner = "sendgrid"
	Postmark  Partner = "postmark"
	Mailgun   Partner = "mailgun"
	SES       Partner = "ses"
	SMTP      Partner = "smtp"
	Slack     Partner = "slack"
	PagerDuty Partner = "pagerduty"
	Webhook   Partner = "webhook"
)

// Partners lists every simulated partner, in a stable order.
var Partners = []Partner{SendGrid, Postmark, Mailgun, SES, SMTP, Slack, PagerDuty, Webhook}

// Channels lists the notification channels among Partners.
var Channels = []Partner{Slack, PagerDuty, Webhook}

// ParsePartner returns the Partner named s, or an error naming the choices.
func ParsePartner(s string) (Partner, error) {
	for _, p := range Partners {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown partner %q (want one of sendgrid, postmark, mailgun, ses, smtp, slack, pagerduty, webhook)", s)
}

// sendsEventWebhooks reports whether p posts event webhooks: every email
// partner but SMTP does; the notification channels do not.
func (p Partner) sendsEventWebhooks() bool {
	switch p {
	case SendGrid, Postmark, Mailgun, SES:
		return true
	}
	return false
}

// Credentials are the secrets the sandbox accepts. Each field defaults to
// the value documented in docs/sandbox.md, so tests and users can rely on it.
type Credentials struct {
	// SendGridAPIKey is the accepted `Authorization: Bearer` key.
	// Defaults to "SG.sandbox".
	SendGridAPIKey string
	// PostmarkServerToken is the accepted X-Postmark-Server-Token. The
	// documented test token POSTMARK_API_TEST is always accepted as well and
	// puts the send in test mode. Defaults to "sandbox-postmark-token".
	PostmarkServerToken string
	// MailgunAPIKey is the basic-auth password for user "api".
	// Defaults to "sandbox-mailgun-key".
	MailgunAPIKey string
	// MailgunDomains are the sending domains that exist; any other domain
	// answers 404 "Domain not found". Defaults to ["mg.example.com"].
	MailgunDomains []string
	// MailgunWebhookSigningKey signs Mailgun event webhooks.
	// Defaults to "sandbox-mailgun-signing-key".
	MailgunWebhookSigningKey string
	// SESAccessKeyID and SESSecretAccessKey are the SigV4 credentials SES
	// requests must be signed with. Default to "AKIASANDBOXEXAMPLE" and
	// "sandbox-ses-secret".
	SESAccessKeyID     string
	SESSecretAccessKey string
	// SESRegion is the region requests must be signed for. Defaults to "us-east-1".
	SESRegion string
	// SESTopicARN is the SNS topic named in SES event notifications.
	// Defaults to "arn:aws:sns:us-east-1:000000000000:herald-sandbox".
	SESTopicARN string
	// SMTPUsername and SMTPPassword are the accepted AUTH PLAIN/LOGIN
	// credentials. Default to "sandbox" and "sandbox-smtp-password".
	SMTPUsername string
	SMTPPassword string
	// SlackTokens are the incoming-webhook tokens (the last segment of
	// /services/{T}/{B}/{token}) that exist; any other answers 403
	// invalid_token. Defaults to nil, which accepts every token except one
	// starting with "bad".
	SlackTokens []string
}

// Rate is a partner's simulated rate limit: PerSecond sustained with bursts
// of Burst requests, counted per credential. A zero PerSecond means no limit.
type Rate struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
}

// Config configures a Server. The zero value is usable: every field has a
// documented default.
type Config struct {
	// Logger receives structured logs. Defaults to a logger that discards.
	Logger *slog.Logger
	// Clock stamps messages and events and schedules event webhooks and
	// their retries. Defaults to clock.Real().
	Clock clock.Clock
	// Seed seeds the random source used for probabilistic faults and ids.
	// Defaults to 0, which picks a random seed.
	Seed uint64
	// Credentials are the accepted secrets. See Credentials for defaults.
	Credentials Credentials
	// VerifiedSenders lists sender addresses or whole domains ("@example.com"
	// or "example.com") that each partner treats as verified. Defaults to
	// nil, which verifies every sender.
	VerifiedSenders []string
	// Webhooks maps a partner to the URL its event webhooks are posted to.
	// Postmark's basic auth goes in the URL's userinfo, as Postmark does it.
	// Defaults to none: events are recorded in the mailbox only.
	Webhooks map[Partner]string
	// EventDelay is how long after acceptance a message's final event
	// (delivered, bounced, …) happens. Defaults to 0: at once.
	EventDelay time.Duration
	// WebhookTimeout bounds one webhook POST. Defaults to 10s.
	WebhookTimeout time.Duration
	// Limits sets a rate limit per partner. Defaults to none.
	Limits map[Partner]Rate
	// Faults are installed at start, as if posted to /_sandbox/faults.
	Faults []Fault
	// MaxMessages caps the mailbox, and separately the notification store;
	// the oldest entries are forgotten first, a tenth at a time once one is
	// 10% over the cap. Defaults to 10,000.
	MaxMessages int
	// PublicURL is the base URL clients reach the sandbox at; SES event
	// notifications name their signing certificate under it. Defaults to
	// the HTTP address Start or Listen bound.
	PublicURL string
	// HTTPClient posts event webhooks. Defaults to a client with
	// WebhookTimeout and no redirects (partners do not follow them).
	HTTPClient *http.Client
}

// WithDefaults returns a copy of c with every unset field given its default.
func (c Config) WithDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if c.Seed == 0 {
		c.Seed = mrand.Uint64()
	}
	cr := &c.Credentials
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&cr.SendGridAPIKey, "SG.sandbox")
	def(&cr.PostmarkServerToken, "sandbox-postmark-token")
	def(&cr.MailgunAPIKey, "sandbox-mailgun-key")
	def(&cr.MailgunWebhookSigningKey, "sandbox-mailgun-signing-key")
	def(&cr.SESAccessKeyID, "AKIASANDBOXEXAMPLE")
	def(&cr.SESSecretAccessKey, "sandbox-ses-secret")
	def(&cr.SESRegion, "us-east-1")
	def(&cr.SESTopicARN, "arn:aws:sns:us-east-1:000000000000:herald-sandbox")
	def(&cr.SMTPUsername, "sandbox")
	def(&cr.SMTPPassword, "sandbox-smtp-password")
	if len(cr.MailgunDomains) == 0 {
		cr.MailgunDomains = []string{"mg.example.com"}
	}
	if c.WebhookTimeout == 0 {
		c.WebhookTimeout = 10 * time.Second
	}
	if c.MaxMessages == 0 {
		c.MaxMessages = 10000
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{
			Timeout: c.WebhookTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	return c
}

func (c Config) validate() error {
	if c.EventDelay < 0 {
		return errors.New("sandbox: EventDelay must not be negative")
	}
	if c.MaxMessages < 0 {
		return errors.New("sandbox: MaxMessages must not be negative")
	}
	for p, u := range c.Webhooks {
		if _, err := ParsePartner(string(p)); err != nil {
			return fmt.Errorf("sandbox: webhooks: %w", err)
		}
		if !p.sendsEventWebhooks() {
			return fmt.Errorf("sandbox: webhooks: %s has no event webhook", p)
		}
		if err := checkWebhookURL(u); err != nil {
			return fmt.Errorf("sandbox: webhooks: %s: %w", p, err)
		}
	}
	for p, r := range c.Limits {
		if _, err := ParsePartner(string(p)); err != nil {
			return fmt.Errorf("sandbox: limits: %w", err)
		}
		if r.PerSecond < 0 || r.Burst < 0 {
			return fmt.Errorf("sandbox: limits: %s: rate and burst must not be negative", p)
		}
	}
	for i, f := range c.Faults {
		if err := f.validate(); err != nil {
			return fmt.Errorf("sandbox: faults[%d]: %w", i, err)
		}
	}
	return nil
}

// Server is the simulator. Its Handler serves every partner's HTTP API, the
// control API and /metrics; ServeSMTP serves the SMTP partner. A Server is
// safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	clock   clock.Clock
	mailbox *mailbox
	notes   *notifications
	faults  *faultSet
	limits  *limiter
	hooks   *dispatcher
	metrics *metrics
	keys    *keys
	handler http.Handler

	rmu sync.Mutex
	rnd *mrand.Rand
}

// keys are the signing keys the sandbox generates at start.
type keys struct {
	sendgrid *ecdsa.PrivateKey
	sns      *rsa.PrivateKey
	snsCert  []byte // PEM
	tls      tls.Certificate
}

// New returns a Server for cfg after applying defaults and validating it.
func New(cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	k, err := generateKeys()
	if err != nil {
		return nil, fmt.Errorf("sandbox: generate keys: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		clock:   cfg.Clock,
		mailbox: newMailbox(cfg.MaxMessages),
		notes:   newNotifications(cfg.MaxMessages),
		faults:  &faultSet{},
		limits:  newLimiter(cfg.Clock, cfg.Limits),
		metrics: newMetrics(),
		keys:    k,
		rnd:     mrand.New(mrand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
	}
	s.hooks = newDispatcher(s, cfg.Webhooks)
	for _, f := range cfg.Faults {
		s.faults.add(f)
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the HTTP handler serving every partner API, the control
// API under /_sandbox/ and /metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// float64 returns a random number in [0,1).
func (s *Server) float64() float64 {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return s.rnd.Float64()
}

// randomString returns n random characters from alphabet.
func (s *Server) randomString(n int, alphabet string) string {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[s.rnd.IntN(len(alphabet))]
	}
	return string(b)
}

// uuid returns a random version-4 UUID string.
func (s *Server) uuid() string {
	const hex = "0123456789abcdef"
	h := s.randomString(32, hex)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-" + string(hex[8+int(h[16])%4]) + h[17:20] + "-" + h[20:32]
}

// senderVerified reports whether addr is a verified sender.
func (s *Server) senderVerified(addr string) bool {
	if len(s.cfg.VerifiedSenders) == 0 {
		return true
	}
	addr = strings.ToLower(strings.TrimSpace(bareAddress(addr)))
	domain := addr[strings.LastIndexByte(addr, '@')+1:]
	for _, v := range s.cfg.VerifiedSenders {
		v = strings.ToLower(strings.TrimPrefix(v, "@"))
		if v == addr || v == domain {
			return true
		}
	}
	return false
}

// bareAddress returns the address inside "Name <addr>", or s itself.
func bareAddress(s string) string {
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			return s[i+1 : i+j]
		}
	}
	return s
}

func generateKeys() (*keys, error) {
	sg, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sns, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	snsCert, err := selfSignedPEM(sns, "sns.sandbox.herald")
	if err != nil {
		return nil, err
	}
	tlsCert, err := selfSignedTLS()
	if err != nil {
		return nil, err
	}
	return &keys{sendgrid: sg, sns: sns, snsCert: snsCert, tls: tlsCert}, nil
}

// Running is a sandbox started by Start, listening on loopback.
type Running struct {
	// Server is the running simulator, for direct inspection in tests.
	*Server
	// URL is the base URL of the HTTP APIs, e.g. "http://127.0.0.1:41234".
	// Point every HTTP partner's base_url at it.
	URL string
	// SMTPAddr is the SMTP server's host:port.
	SMTPAddr string

	httpSrv *http.Server
	smtp    io.Closer
	done    chan struct{}
}

// Start starts a Server for cfg on free loopback ports, HTTP and SMTP, for
// use in Go tests and embedded setups. It stops when ctx is done or Close is
// called.
func Start(ctx context.Context, cfg Config) (*Running, error) {
	return Listen(ctx, cfg, "127.0.0.1:0", "127.0.0.1:0")
}

// Listen is Start on the given addresses; an empty smtpAddr starts no SMTP
// server.
func Listen(ctx context.Context, cfg Config, httpAddr, smtpAddr string) (*Running, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return nil, fmt.Errorf("sandbox: listen http: %w", err)
	}
	r := &Running{
		Server:  s,
		URL:     "http://" + hl.Addr().String(),
		httpSrv: &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)},
		done:    make(chan struct{}),
	}
	if s.cfg.PublicURL == "" {
		s.cfg.PublicURL = r.URL
	}
	if smtpAddr != "" {
		sl, err := net.Listen("tcp", smtpAddr)
		if err != nil {
			hl.Close()
			return nil, fmt.Errorf("sandbox: listen smtp: %w", err)
		}
		r.SMTPAddr = sl.Addr().String()
		r.smtp = s.ServeSMTP(sl)
	}
	go func() {
		if err := r.httpSrv.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("sandbox http server stopped", "error", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			r.Close()
		case <-r.done:
		}
	}()
	s.log.Info("sandbox listening", "http", r.URL, "smtp", r.SMTPAddr)
	return r, nil
}

// Close stops the servers and pending webhooks. It is safe to call twice.
func (r *Running) Close() error {
	select {
	case <-r.done:
		return nil
	default:
		close(r.done)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.httpSrv.Shutdown(ctx)
	if r.smtp != nil {
		err = errors.Join(err, r.smtp.Close())
	}
	r.hooks.close()
	return err
}
