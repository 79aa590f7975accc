package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"herald/clock"
)

// HeartbeatConfig configures a Heartbeat.
type HeartbeatConfig struct {
	// URL is pinged (GET) while herald is healthy: a dead man's switch
	// such as a healthchecks service, which alerts when the pings stop.
	// It may hold a secret token, so it is never logged whole. Required.
	URL string
	// Healthy reports whether herald is healthy at now, and why not.
	// Required.
	Healthy func(now time.Time) (bool, string)
	// Every is the time between pings. Defaults to 1m.
	Every time.Duration
	// Client defaults to a client with a 10 s timeout.
	Client *http.Client
	// Clock defaults to clock.Real().
	Clock  clock.Clock
	Logger *slog.Logger
}

// Heartbeat pings a URL while herald is healthy, and stays silent while it
// is not, so whoever watches the URL hears of herald being down or its
// delivery SLOs paging even when every path herald itself could alert
// through is failing.
type Heartbeat struct {
	cfg  HeartbeatConfig
	host string
}

// NewHeartbeat checks cfg and returns a Heartbeat.
func NewHeartbeat(cfg HeartbeatConfig) (*Heartbeat, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("notify: heartbeat: the URL must be an absolute http(s) URL")
	}
	if cfg.Healthy == nil {
		return nil, errors.New("notify: heartbeat: Healthy is required")
	}
	cfg.Every = cmp.Or(cfg.Every, time.Minute)
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	return &Heartbeat{cfg: cfg, host: u.Host}, nil
}

// Beat pings the URL if herald is healthy at now. It reports whether it
// pinged, and an error when the ping failed; errors name the URL's host
// only.
func (h *Heartbeat) Beat(ctx context.Context, now time.Time) (bool, error) {
	if ok, why := h.cfg.Healthy(now); !ok {
		h.cfg.Logger.Warn("heartbeat withheld: herald is not healthy", "reason", why, "heartbeat_host", h.host)
		return false, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.cfg.URL, nil)
	if err != nil {
		return false, fmt.Errorf("notify: heartbeat to %s: %w", h.host, err)
	}
	resp, err := h.cfg.Client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the url.Error repeats the whole URL
		}
		return false, fmt.Errorf("notify: heartbeat to %s: %w", h.host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return false, fmt.Errorf("notify: heartbeat to %s: status %d", h.host, resp.StatusCode)
	}
	return true, nil
}

// Run beats every interval until ctx ends.
func (h *Heartbeat) Run(ctx context.Context) {
	every(ctx, h.cfg.Every, h.cfg.Logger, "heartbeat failed", func(ctx context.Context) error {
		_, err := h.Beat(ctx, h.cfg.Clock.Now())
		return err
	})
}
