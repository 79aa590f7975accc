package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"herald"
	"herald/clock"
	"herald/eventstore"
	"herald/ingest"
	"herald/notify"
	"herald/provider"
	"herald/provider/mailgun"
	"herald/provider/pagerduty"
	"herald/provider/postmark"
	"herald/provider/sendgrid"
	"herald/provider/ses"
	"herald/provider/slack"
	"herald/provider/smtp"
	"herald/provider/webhook"
	"herald/queue"
	"herald/sandbox"
	"herald/server"
	"herald/sqlstore"
	"herald/telemetry"
)

const serveUsage = `Usage: herald serve [flags]

Runs herald: the HTTP API, the state store and the delivery workers. With no
partner configured, it starts the built-in sandbox as its email partner, so a
notification travels the whole path with no credentials.

Configuration comes from a YAML file (--config or HERALD_CONFIG; see
docs/configuration.md), then HERALD_LISTEN, HERALD_DATA_DIR, HERALD_LOG_LEVEL,
HERALD_LOG_FORMAT, then these flags. HERALD_API_KEY, when set, is accepted as
a configuration key. Tracing is exported over OTLP when the standard
OTEL_EXPORTER_OTLP_* variables are set.

Flags:
`

// runServe is `herald serve`.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), serveUsage); fs.PrintDefaults() }
	configPath := fs.String("config", getenv("HERALD_CONFIG"), "YAML configuration `file`")
	listen := fs.String("listen", "", "HTTP `address` (default :8080)")
	dataDir := fs.String("data-dir", "", "`directory` for herald's data (default ./herald-data)")
	logLevel := fs.String("log-level", "", "log `level`: debug, info, warn or error (default info)")
	logFormat := fs.String("log-format", "", "log `format`: json or text (default json)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	cfg, err := loadConfig(*configPath, getenv)
	if err != nil {
		return err
	}
	for flagValue, field := range map[*string]*string{listen: &cfg.Listen, dataDir: &cfg.DataDir, logLevel: &cfg.LogLevel, logFormat: &cfg.LogFormat} {
		if *flagValue != "" {
			*field = *flagValue
		}
	}
	base, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	log := slog.New(telemetry.LogHandler(base.Handler()))
	return serve(ctx, cfg, getenv, stdout, log)
}

func serve(ctx context.Context, cfg *Config, getenv func(string) string, stdout io.Writer, log *slog.Logger) error {
	if getenv("GOGC") == "" {
		// Ingest allocates many short-lived objects (decoded events)
		// while its live heap stays small; with Go's default of 100 the
		// collector runs so often that it takes a large share of the CPU.
		// 400 trades a few more megabytes for it. GOGC still wins.
		debug.SetGCPercent(400)
	}
	tracing, err := telemetry.Setup(ctx, "herald", buildVersion(), getenv)
	if err != nil {
		return err
	}
	defer tracing.Shutdown(context.WithoutCancel(ctx))

	db, err := sqlstore.Open(ctx, filepath.Join(cfg.DataDir, "herald.db"), clock.Real())
	if err != nil {
		return err
	}
	defer db.Close()
	if err := queue.Migrate(ctx, db.DB); err != nil {
		return err
	}
	if err := bootstrapKey(ctx, db, getenv, stdout, log); err != nil {
		return err
	}
	events, err := eventstore.Open(ctx, eventstore.Config{Path: filepath.Join(cfg.DataDir, "events.duckdb"),
		RetentionDays: cfg.Events.RetentionDays, MaxColumns: cfg.Events.MaxColumns, Logger: log.With("component", "eventstore")})
	if err != nil {
		return err
	}
	defer events.Close()

	var builtin *sandbox.Running // the built-in sandbox, when no partner is configured
	if len(cfg.Partners) == 0 {
		sb, err := sandbox.Listen(ctx, sandbox.Config{Logger: log.With("component", "sandbox")}, "127.0.0.1:0", "")
		if err != nil {
			return fmt.Errorf("serve: start the built-in sandbox: %w", err)
		}
		defer sb.Close()
		cfg.Partners = []PartnerConfig{{Name: "sandbox", Kind: "sendgrid", APIKey: "SG.sandbox", BaseURL: sb.URL, From: "herald@example.com",
			WebhookPublicKey: sb.Keys().SendGridPublicKey}}
		builtin = sb
		log.Warn("no partner is configured: the built-in sandbox is the email partner; nothing leaves this machine",
			"sandbox_url", sb.URL, "mailbox", sb.URL+"/_sandbox/messages")
	}
	partners, err := buildPartners(cfg.Partners, tracing)
	if err != nil {
		return err
	}
	channels := map[string][]herald.Provider{}
	if len(cfg.Channels) == 0 {
		channels["email"] = partners
	}
	for ch, names := range cfg.Channels {
		for _, n := range names {
			for _, p := range partners {
				if p.Name() == n {
					channels[ch] = append(channels[ch], p)
				}
			}
		}
	}
	reserve := map[string][]herald.Provider{}
	for _, p := range partners {
		if !slices.Contains(channels["email"], p) {
			reserve["email"] = append(reserve["email"], p)
		}
	}
	if err := addTriggerChannels(channels, cfg, db, tracing, log); err != nil {
		return err
	}
	hooks, deadlines, err := eventWebhooks(cfg.Partners)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	inserter, err := queue.NewInserter(db.DB, log)
	if err != nil {
		return err
	}
	d := cfg.Delivery
	svc, err := notify.New(notify.Config{
		Store: db, Enqueue: inserter.EnqueueTx, Channels: channels, Reserve: reserve,
		Policy: notify.RetryPolicy{MaxAttempts: d.MaxAttempts, MaxAge: time.Duration(d.MaxAge),
			Base: time.Duration(d.BackoffBase), Cap: time.Duration(d.BackoffCap)},
		Breaker:        notify.BreakerConfig{Failures: d.BreakerFailures, Cooldown: time.Duration(d.BreakerCooldown)},
		AttemptTimeout: time.Duration(d.AttemptTimeout),
		TracerProvider: tracing.Provider, Metrics: notify.NewMetrics(reg), Logger: log,
	})
	if err != nil {
		return err
	}
	jobTimeout := max(time.Duration(d.AttemptTimeout), 30*time.Second)*time.Duration(max(len(partners), 1)) + 10*time.Second
	workers, err := queue.NewWorkers(db.DB, svc, queue.Config{Workers: d.Workers, JobTimeout: jobTimeout,
		PollInterval: 50 * time.Millisecond, Logger: log.With("component", "queue")})
	if err != nil {
		return err
	}

	evaluator, err := notify.NewEvaluator(notify.EvaluatorConfig{Store: db, Events: events, Enqueue: inserter.EnqueueTx,
		BaseURL: cfg.PublicURL, TracerProvider: tracing.Provider, Logger: log.With("component", "triggers")})
	if err != nil {
		return err
	}
	scheduler, err := notify.NewScheduler(notify.SchedulerConfig{Evaluator: evaluator, Store: db, Logger: log.With("component", "scheduler")})
	if err != nil {
		return err
	}

	slos, err := newSLOs(ctx, *cfg, db, events, inserter.EnqueueTx, channels["email"], deadlines, log)
	if err != nil {
		return err
	}

	decompressor, err := ingest.NewDecompressor()
	if err != nil {
		return err
	}
	defer decompressor.Close()
	handler := server.NewServer(server.Deps{
		Decompressor: decompressor,
		Logger:       log, Keys: db, Notifier: svc, Reader: db, Events: events, Queries: db, Triggers: db,
		Evaluations: db, Evaluator: evaluator, Markers: db, PartnerEvents: db, Hooks: hooks, Canaries: db, SLOs: db, SLOEngine: slos,
		Sessions: db, UIStore: db, Breakers: svc.BreakerStates, Mailbox: mailbox(builtin),
		HookMetrics: server.NewHookMetrics(reg, slices.Sorted(maps.Keys(hooks))), TracerProvider: tracing.Provider,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Ready:   func(ctx context.Context) error { return db.PingContext(ctx) },
	})
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("serve: listen: %w", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	requeued, err := db.RequeueUnfinished(ctx, inserter.EnqueueTx)
	if err != nil {
		l.Close()
		return err
	}
	if requeued > 0 {
		log.Info("requeued deliveries a previous run left unfinished", "deliveries", requeued)
	}
	// Not ctx: cancelling River's start context cancels running jobs, and a
	// stop (SIGTERM) must let attempts in flight finish (workers.Stop).
	if err := workers.Start(context.WithoutCancel(ctx)); err != nil {
		l.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	// A marker for every start, so delivery success can be compared
	// across releases.
	if _, err := db.SaveMarker(ctx, herald.AllDatasets, herald.Marker{Type: "herald-start",
		Message: "herald " + buildVersion() + " started"}); err != nil {
		log.Error("writing the start marker failed", "error", err)
	}
	rcfg := notify.ReconcilerConfig{Store: db, Deadlines: deadlines, Logger: log.With("component", "reconciler")}
	if d.ResendUnconfirmed {
		rcfg.Resend = svc.Resend
	}
	reconciler, err := notify.NewReconciler(rcfg)
	if err != nil {
		l.Close()
		return err
	}
	go reconciler.Run(ctx, 2*time.Second)
	if cfg.Canaries.To != "" || len(cfg.Canaries.Recipients) > 0 {
		var dests []herald.Destination
		for _, id := range cfg.Canaries.Recipients {
			dest, err := db.GetDestination(ctx, id)
			if err == nil && dest.Type == "email" {
				err = errors.New("an email recipient; use canaries.to")
			}
			if err != nil {
				l.Close()
				return fmt.Errorf("serve: canaries.recipients: %s: %w", id, err)
			}
			dests = append(dests, dest)
		}
		var names []string
		confirms := map[string]bool{}
		for _, p := range channels["email"] {
			names = append(names, p.Name())
			_, confirms[p.Name()] = deadlines[p.Name()]
		}
		canaries, err := notify.NewCanaries(notify.CanaryConfig{Store: db, Enqueue: inserter.EnqueueTx, Partners: names,
			Confirms: confirms, To: cfg.Canaries.To, Recipients: dests, Every: time.Duration(cfg.Canaries.Every), Registerer: reg,
			Logger: log.With("component", "canaries")})
		if err != nil {
			l.Close()
			return err
		}
		go canaries.Run(ctx, 5*time.Second)
	}
	go slos.Run(ctx, 10*time.Second)
	if u := cfg.SLOs.Heartbeat.URL; u != "" {
		hb, err := notify.NewHeartbeat(notify.HeartbeatConfig{URL: u, Every: time.Duration(cfg.SLOs.Heartbeat.Every),
			Healthy: slos.Healthy, Logger: log.With("component", "heartbeat")})
		if err != nil {
			l.Close()
			return err
		}
		go hb.Run(ctx)
	}
	if builtin != nil {
		// The built-in sandbox reports what became of each message to
		// herald's own event webhook, signed, as SendGrid would.
		hook := "http://" + loopback(l.Addr()) + "/hooks/sandbox"
		if err := builtin.SetWebhook(sandbox.SendGrid, hook); err != nil {
			l.Close()
			return fmt.Errorf("serve: built-in sandbox webhook: %w", err)
		}
	}
	go expire(ctx, events, db, log)
	go scheduler.Run(ctx)
	names := make([]string, 0, len(partners))
	for _, p := range channels["email"] {
		names = append(names, p.Name())
	}
	log.Info("herald listening", "addr", l.Addr().String(), "data_dir", cfg.DataDir, "email_partners", names,
		"tracing_exported", tracing.Exporting, "version", buildVersion())

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("herald stopping: finishing in-flight attempts")
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err = errors.Join(srv.Shutdown(stopCtx), workers.Stop(stopCtx))
	log.Info("herald stopped")
	return err
}

// defaultConfirmWithin is a partner's confirmation deadline when its event
// webhook is configured and confirm_within is not.
const defaultConfirmWithin = time.Hour

// eventWebhooks makes the event webhook reader of each partner that has one
// configured, and its confirmation deadline.
func eventWebhooks(partners []PartnerConfig) (map[string]herald.EventWebhook, map[string]time.Duration, error) {
	hooks := map[string]herald.EventWebhook{}
	deadlines := map[string]time.Duration{}
	for _, p := range partners {
		if !p.HasEventWebhook() {
			continue
		}
		var h herald.EventWebhook
		var err error
		switch p.Kind {
		case "sendgrid":
			h, err = sendgrid.NewEventWebhook(sendgrid.EventWebhookConfig{PublicKey: p.WebhookPublicKey})
		case "mailgun":
			h, err = mailgun.NewEventWebhook(mailgun.EventWebhookConfig{SigningKey: p.WebhookSigningKey})
		case "postmark":
			h, err = postmark.NewEventWebhook(postmark.EventWebhookConfig{Username: p.WebhookUsername, Password: p.WebhookPassword})
		case "ses":
			h, err = ses.NewEventWebhook(ses.EventWebhookConfig{TopicARN: p.SNSTopicARN, CertHosts: p.SNSCertHosts})
		default:
			err = fmt.Errorf("event webhooks for kind %s are not supported yet", p.Kind)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("serve: partner %s: event webhook: %w", p.Name, err)
		}
		hooks[p.Name] = h
		deadlines[p.Name] = cmp.Or(time.Duration(p.ConfirmWithin), defaultConfirmWithin)
	}
	return hooks, deadlines, nil
}

// addTriggerChannels adds the webhook, Slack and PagerDuty channels that
// trigger notifications use. Each reads its recipient's URL and secrets
// from the store at send time.
func addTriggerChannels(channels map[string][]herald.Provider, cfg *Config, db *sqlstore.DB, tracing *telemetry.Tracing, log *slog.Logger) error {
	var allow []netip.Prefix
	for _, n := range cfg.Webhooks.AllowNetworks {
		allow = append(allow, netip.MustParsePrefix(n)) // checked by validate
	}
	wh, err := webhook.New(webhook.Config{Destinations: db, AllowNetworks: allow, TracerProvider: tracing.Provider,
		Logger: log.With("component", "webhook")})
	if err != nil {
		return err
	}
	sl, err := slack.New(slack.Config{Destinations: db, AllowNetworks: allow, TracerProvider: tracing.Provider})
	if err != nil {
		return err
	}
	pd, err := pagerduty.New(pagerduty.Config{BaseURL: cfg.PagerDuty.BaseURL, Destinations: db, TracerProvider: tracing.Provider})
	if err != nil {
		return err
	}
	channels["webhook"], channels["slack"], channels["pagerduty"] = []herald.Provider{wh}, []herald.Provider{sl}, []herald.Provider{pd}
	return nil
}

// expire deletes, every ten minutes until ctx ends, the events past their
// dataset's retention and the query results older than a day.
func expire(ctx context.Context, events *eventstore.DuckDB, db *sqlstore.DB, log *slog.Logger) {
	tick := time.NewTicker(10 * time.Minute)
	defer tick.Stop()
	for {
		now := time.Now()
		if n, err := events.DeleteExpired(ctx, now); err != nil && ctx.Err() == nil {
			log.Error("deleting expired events failed", "error", err)
		} else if n > 0 {
			log.Info("deleted expired events", "events", n)
		}
		if _, err := db.DeleteQueryResults(ctx, now.Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
			log.Error("deleting old query results failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// bootstrapKey makes sure the API can be used: HERALD_API_KEY becomes a
// configuration key; with neither that nor any key, one is created and
// printed once.
func bootstrapKey(ctx context.Context, db *sqlstore.DB, getenv func(string) string, stdout io.Writer, log *slog.Logger) error {
	if secret := getenv("HERALD_API_KEY"); secret != "" {
		k, err := db.ImportAPIKey(ctx, herald.KeyConfiguration, "HERALD_API_KEY", secret)
		if err != nil {
			return fmt.Errorf("serve: HERALD_API_KEY: %w", err)
		}
		log.Info("HERALD_API_KEY accepted as a configuration key", "key_id", k.ID)
		return nil
	}
	keys, err := db.ListAPIKeys(ctx)
	if err != nil || len(keys) > 0 {
		return err
	}
	k, secret, err := db.CreateAPIKey(ctx, herald.KeyConfiguration, "first key")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Created a configuration API key. It is shown only this once; keep it:\n\n    %s\n\nSend it as X-Honeycomb-Team or Authorization: Bearer. Manage keys with \"herald keys\".\n", secret)
	log.Info("created the first configuration API key", "key_id", k.ID)
	return nil
}

// buildPartners makes a Provider for each configured partner.
func buildPartners(list []PartnerConfig, tracing *telemetry.Tracing) ([]herald.Provider, error) {
	var out []herald.Provider
	for _, pc := range list {
		timeout := time.Duration(pc.Timeout)
		if timeout == 0 {
			timeout = 10 * time.Second
		}
		var p herald.Provider
		var err error
		switch pc.Kind {
		case "sendgrid":
			p, err = sendgrid.New(sendgrid.Config{Name: pc.Name, APIKey: pc.APIKey, BaseURL: pc.BaseURL, From: pc.From,
				Timeout: timeout, HTTPClient: providerClient(timeout, tracing)})
		case "mailgun":
			p, err = mailgun.New(mailgun.Config{Name: pc.Name, APIKey: pc.APIKey, Domain: pc.Domain, BaseURL: pc.BaseURL,
				From: pc.From, Timeout: timeout, HTTPClient: providerClient(timeout, tracing)})
		case "postmark":
			p, err = postmark.New(postmark.Config{Name: pc.Name, ServerToken: pc.ServerToken, MessageStream: pc.MessageStream,
				BaseURL: pc.BaseURL, From: pc.From, Timeout: timeout, HTTPClient: providerClient(timeout, tracing)})
		case "ses":
			p, err = ses.New(ses.Config{Name: pc.Name, Region: pc.Region, AccessKeyID: pc.AccessKeyID,
				SecretAccessKey: pc.SecretAccessKey, BaseURL: pc.BaseURL, From: pc.From,
				ConfigurationSetName: pc.ConfigurationSet, Timeout: timeout, HTTPClient: providerClient(timeout, tracing)})
		case "smtp":
			var tlsConfig *tls.Config
			if pc.TLSSkipVerify {
				tlsConfig = &tls.Config{InsecureSkipVerify: true} // the operator's explicit choice, for test servers
			}
			p, err = smtp.New(smtp.Config{Name: pc.Name, Host: pc.Host, Port: pc.Port, Username: pc.Username,
				Password: pc.Password, TLS: pc.TLS, TLSConfig: tlsConfig, From: pc.From, Timeout: timeout,
				TracerProvider: tracing.Provider})
		default:
			err = fmt.Errorf("partner %s: kind %s is not supported by this build", pc.Name, pc.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

func providerClient(timeout time.Duration, tracing *telemetry.Tracing) *http.Client {
	return provider.NewHTTPClient(timeout, tracing.Provider)
}

// loopback returns the address to reach a listener on this machine.
func loopback(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		if ok {
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
		}
		return a.String()
	}
	return tcp.String()
}

// newSLOs makes the SLO engine: the configured delivery SLOs (created on
// first start), their fallback recipients (made recipient records), and a
// warning when their burn alerts would reach no one.
func newSLOs(ctx context.Context, cfg Config, db *sqlstore.DB, events herald.EventStore, enqueue sqlstore.EnqueueFunc,
	email []herald.Provider, deadlines map[string]time.Duration, log *slog.Logger) (*notify.SLOs, error) {
	c := cfg.SLOs
	d := notify.DeliverySLOConfig{Channels: c.Delivery.Channels, PeriodDays: c.Delivery.PeriodDays,
		TargetPerMillion:        int(math.Round(c.Delivery.Target * 10000)),
		LatencyTargetPerMillion: int(math.Round(c.Delivery.LatencyTarget * 10000)),
		FinalWithin:             map[string]time.Duration{}, LatencyWithin: map[string]time.Duration{}}
	for ch, v := range c.Delivery.FinalWithin {
		d.FinalWithin[ch] = time.Duration(v)
	}
	for ch, v := range c.Delivery.LatencyWithin {
		d.LatencyWithin[ch] = time.Duration(v)
	}
	for _, p := range email {
		d.EmailPartners = append(d.EmailPartners, p.Name())
	}
	for _, p := range cfg.Partners {
		if _, ok := deadlines[p.Name]; !ok {
			d.Unconfirmed = append(d.Unconfirmed, p.Name)
			log.Warn("partner has no event webhook: its deliveries count as delivered at acceptance in the delivery SLOs; configure its webhook for verified outcomes",
				"partner", p.Name)
		}
	}
	for i, f := range c.Fallback {
		fb := notify.Fallback{Channel: f.Type, Target: f.To, Partner: f.Partner}
		if f.Type != "email" {
			dest := herald.Destination{Type: f.Type}
			switch f.Type {
			case "webhook":
				dest.Details.WebhookName, dest.Details.WebhookURL, dest.Details.WebhookSecret = "herald fallback", f.URL, f.Secret
			case "slack":
				dest.Details.WebhookURL = f.URL
			case "pagerduty":
				dest.Details.PagerDutyIntegrationName, dest.Details.PagerDutyIntegrationKey = "herald fallback", f.IntegrationKey
			}
			dest, err := db.EnsureDestination(ctx, dest)
			if err != nil {
				return nil, fmt.Errorf("config: slos.fallback[%d]: %w", i, err)
			}
			fb.Target = dest.ID
		}
		d.Fallback = append(d.Fallback, fb)
	}
	slos, err := notify.NewSLOs(notify.SLOsConfig{Store: db, Events: events, Enqueue: enqueue, Delivery: d,
		BaseURL: cfg.PublicURL, Logger: log.With("component", "slos")})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(d.Fallback) == 0 {
		log.Warn("no fallback recipient: the delivery SLOs' burn alerts are evaluated and shown but reach no one; set slos.fallback")
	}
	if err := slos.EnsureDeliverySLOs(ctx); err != nil {
		return nil, err
	}
	return slos, nil
}

// mailbox is the built-in sandbox's mailbox for the UI, or nil.
func mailbox(sb *sandbox.Running) server.Mailbox {
	if sb == nil {
		return nil
	}
	return sb.Server
}
