package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"herald/sandbox"
)

const sandboxUsage = `Usage: herald sandbox [flags]

Runs the partner simulator: SendGrid, Postmark, Mailgun and Amazon SES v2,
Slack incoming webhooks (/services/…), PagerDuty Events API v2 (/v2/enqueue)
and webhook receivers (/_sandbox/hooks/{name}) over HTTP on --listen, and SMTP
on --smtp-listen. Point a partner's base_url at the HTTP address. The mailbox, faults, webhook targets and rate limits are
managed through the control API under /_sandbox/ (see docs/sandbox.md):

  curl -s localhost:9025/_sandbox/messages
  curl -s -X POST localhost:9025/_sandbox/faults -d '{"partner":"sendgrid","kind":"status","status":503}'

Every flag can also be set with an environment variable named
HERALD_SANDBOX_<FLAG>, e.g. HERALD_SANDBOX_LISTEN; repeatable flags take a
semicolon-separated list there.

Fault specs (--fault, repeatable) are a kind followed by settings:
  status=503,partner=sendgrid,probability=0.5   answer 503 half the time
  latency,delay=2s                              answer every partner 2s late
  stall,partner=postmark                        never answer
  empty_body | garbage_body | html_body         2xx with a broken body
  gateway_502                                   nginx's HTML 502
  drop_connection                               accept, then hang up
  accept_then_fail,fate=bounced                 accept; the event says bounced
  never_confirm                                 accept; no event ever
  duplicate_webhooks,copies=3                   every webhook three times
  reject_metadata,key=team,value=a b            refuse a metadata value
Settings: partner, status, probability (p), delay, fate, key, value, copies, times.

Flags:
`

// runSandbox is `herald sandbox`.
func runSandbox(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), sandboxUsage)
		fs.PrintDefaults()
	}
	var (
		listen     = fs.String("listen", "127.0.0.1:9025", "HTTP `address` of the partner APIs and the control API")
		smtpListen = fs.String("smtp-listen", "127.0.0.1:2525", "SMTP `address`; \"off\" runs no SMTP server")
		publicURL  = fs.String("public-url", "", "base `URL` clients reach the sandbox at (default: http://<listen>)")
		eventDelay = fs.Duration("event-delay", 0, "time from acceptance to a message's final event")
		seed       = fs.Uint64("seed", 0, "seed for probabilistic faults and ids (default: random)")
		logLevel   = fs.String("log-level", "info", "log `level`: debug, info, warn or error")
		logFormat  = fs.String("log-format", "json", "log `format`: json or text")
		webhooks   listFlag
		faults     listFlag
		limits     listFlag
		senders    listFlag
		domains    listFlag
		cr         sandbox.Credentials
	)
	fs.Var(&webhooks, "webhook", "`partner=URL` to post that partner's event webhooks to (repeatable)")
	fs.Var(&faults, "fault", "a fault `spec` to install at start (repeatable; see above)")
	fs.Var(&limits, "limit", "`partner=RATE[/BURST]` requests per second per credential, e.g. sendgrid=10/20 (repeatable)")
	fs.Var(&senders, "verified-sender", "verified sender `address or domain` (repeatable; default: every sender is verified)")
	fs.Var(&domains, "mailgun-domain", "Mailgun sending `domain` that exists (repeatable; default mg.example.com)")
	fs.StringVar(&cr.SendGridAPIKey, "sendgrid-api-key", "", "accepted SendGrid API `key` (default SG.sandbox)")
	fs.StringVar(&cr.PostmarkServerToken, "postmark-server-token", "", "accepted Postmark server `token` (default sandbox-postmark-token)")
	fs.StringVar(&cr.MailgunAPIKey, "mailgun-api-key", "", "accepted Mailgun API `key` (default sandbox-mailgun-key)")
	fs.StringVar(&cr.MailgunWebhookSigningKey, "mailgun-signing-key", "", "Mailgun webhook signing `key` (default sandbox-mailgun-signing-key)")
	fs.StringVar(&cr.SESAccessKeyID, "ses-access-key-id", "", "SES SigV4 access key `id` (default AKIASANDBOXEXAMPLE)")
	fs.StringVar(&cr.SESSecretAccessKey, "ses-secret-access-key", "", "SES SigV4 secret `key` (default sandbox-ses-secret)")
	fs.StringVar(&cr.SESRegion, "ses-region", "", "SES `region` requests are signed for (default us-east-1)")
	fs.StringVar(&cr.SESTopicARN, "ses-topic-arn", "", "SNS topic `ARN` named in SES events")
	fs.StringVar(&cr.SMTPUsername, "smtp-username", "", "SMTP AUTH `user` (default sandbox)")
	fs.StringVar(&cr.SMTPPassword, "smtp-password", "", "SMTP AUTH `password` (default sandbox-smtp-password)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sandbox: unexpected argument %q", fs.Arg(0))
	}
	if err := envDefaults(fs, "HERALD_SANDBOX_", getenv); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	cfg := sandbox.Config{
		Logger:          log,
		Seed:            *seed,
		Credentials:     cr,
		VerifiedSenders: senders,
		EventDelay:      *eventDelay,
		PublicURL:       *publicURL,
		Webhooks:        map[sandbox.Partner]string{},
		Limits:          map[sandbox.Partner]sandbox.Rate{},
	}
	cfg.Credentials.MailgunDomains = domains
	for _, w := range webhooks {
		p, u, err := partnerValue(w)
		if err != nil {
			return fmt.Errorf("sandbox: --webhook %w", err)
		}
		cfg.Webhooks[p] = u
	}
	for _, l := range limits {
		p, v, err := partnerValue(l)
		if err != nil {
			return fmt.Errorf("sandbox: --limit %w", err)
		}
		rate, err := parseRate(v)
		if err != nil {
			return fmt.Errorf("sandbox: --limit %s: %w", l, err)
		}
		cfg.Limits[p] = rate
	}
	for _, spec := range faults {
		f, err := sandbox.ParseFault(spec)
		if err != nil {
			return fmt.Errorf("sandbox: --fault: %w", err)
		}
		cfg.Faults = append(cfg.Faults, f)
	}
	if *smtpListen == "off" {
		*smtpListen = ""
	}
	r, err := sandbox.Listen(ctx, cfg, *listen, *smtpListen)
	if err != nil {
		return err
	}
	defer r.Close()
	<-ctx.Done()
	log.Info("sandbox stopping")
	return nil
}

// partnerValue splits "partner=value".
func partnerValue(s string) (sandbox.Partner, string, error) {
	name, v, ok := strings.Cut(s, "=")
	if !ok || v == "" {
		return "", "", fmt.Errorf("%q: want partner=value", s)
	}
	p, err := sandbox.ParsePartner(name)
	if err != nil {
		return "", "", fmt.Errorf("%q: %w", s, err)
	}
	return p, v, nil
}

// parseRate reads "RATE" or "RATE/BURST"; the burst defaults to the rate
// rounded up.
func parseRate(s string) (sandbox.Rate, error) {
	rs, bs, hasBurst := strings.Cut(s, "/")
	rate, err := strconv.ParseFloat(rs, 64)
	if err != nil || rate <= 0 || rate > 1e9 {
		return sandbox.Rate{}, errors.New("the rate must be a positive number of requests per second")
	}
	r := sandbox.Rate{PerSecond: rate, Burst: int(rate + 0.999999)}
	if hasBurst {
		b, err := strconv.Atoi(bs)
		if err != nil || b < 1 {
			return sandbox.Rate{}, errors.New("the burst must be a positive whole number")
		}
		r.Burst = b
	}
	return r, nil
}
