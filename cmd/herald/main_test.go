package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald/sandbox"
)

// logLines is an io.Writer that hands each JSON log line to a channel.
type logLines struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	every bytes.Buffer
	lines chan map[string]any
}

func newLogLines() *logLines { return &logLines{lines: make(chan map[string]any, 10000)} }

// all returns everything logged so far.
func (l *logLines) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.every.String()
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.every.Write(p)
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadBytes('\n')
		if err != nil {
			l.buf.Write(line)
			return len(p), nil
		}
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			select {
			case l.lines <- m:
			default:
			}
		}
	}
}

// waitFor returns the first log line whose msg is msg.
func (l *logLines) waitFor(t *testing.T, msg string) map[string]any {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-l.lines:
			if m["msg"] == msg {
				return m
			}
		case <-timeout:
			t.Fatalf("no log line %q", msg)
		}
	}
}

func noEnv(string) string { return "" }

func TestRunSandboxServesAndStops(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	logs := newLogLines()
	done := make(chan error, 1)
	env := map[string]string{"HERALD_SANDBOX_SENDGRID_API_KEY": "SG.from-env"}
	go func() {
		done <- run(ctx, []string{"herald", "sandbox", "--listen", "127.0.0.1:0", "--smtp-listen", "off",
			"--fault", "status=503,partner=postmark", "--limit", "sendgrid=5/10"},
			func(k string) string { return env[k] }, io.Discard, logs)
	}()
	url := logs.waitFor(t, "sandbox listening")["http"].(string)

	resp, err := http.Get(url + "/_sandbox/faults")
	require.NoError(t, err)
	var faults struct{ Faults []sandbox.Fault }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&faults))
	resp.Body.Close()
	require.Len(t, faults.Faults, 1)
	require.Equal(t, sandbox.FaultStatus, faults.Faults[0].Kind)
	require.Equal(t, 503, faults.Faults[0].Status)

	req, _ := http.NewRequest("POST", url+"/v3/mail/send", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer SG.from-env")
	req.Header.Set("Accept", "application/json")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "the key from the environment is accepted; the empty mail is not")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("herald sandbox did not stop")
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"herald"}, "a command is required"},
		{[]string{"herald", "nope"}, `unknown command "nope"`},
		{[]string{"herald", "sandbox", "--fault", "status=200"}, "status fault needs a status from 400 to 599"},
		{[]string{"herald", "sandbox", "--fault", "explode"}, `unknown fault kind "explode"`},
		{[]string{"herald", "sandbox", "--webhook", "sendgrid"}, "want partner=value"},
		{[]string{"herald", "sandbox", "--webhook", "smtp=http://x"}, "smtp has no event webhook"},
		{[]string{"herald", "sandbox", "--webhook", "postmark=ftp://x"}, "absolute http or https URL"},
		{[]string{"herald", "sandbox", "--limit", "sparkpost=1"}, `unknown partner "sparkpost"`},
		{[]string{"herald", "sandbox", "--limit", "ses=0"}, "positive number"},
		{[]string{"herald", "sandbox", "--limit", "ses=1/x"}, "burst must be a positive whole number"},
		{[]string{"herald", "sandbox", "--log-level", "loud"}, "--log-level"},
		{[]string{"herald", "sandbox", "extra"}, `unexpected argument "extra"`},
		{[]string{"herald", "sandbox", "--listen", "256.0.0.1:1"}, "listen http"},
	} {
		err := run(context.Background(), tc.args, noEnv, io.Discard, io.Discard)
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
}

// herald refuses to start when a delivery SLO's burn alerts would travel
// the path they report on.
func TestServeRefusesAFallbackOnTheFailingPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for body, want := range map[string]string{
		"slos:\n  fallback:\n    - {type: pagerduty, integration_key: R0UT1NGK3Y0123456789abcdefABCDEF}\n": "the pagerduty delivery SLO's alerts would travel the path it watches",
		"partners:\n  - {name: sg, kind: sendgrid, api_key: k, from: a@example.com}\n  - {name: pm, kind: postmark, server_token: t, from: a@example.com}\n" +
			"slos:\n  delivery: {channels: [email]}\n  fallback:\n    - {type: email, to: oncall@example.com, partner: pm}\n": "the email delivery SLO's alerts would travel the path it watches",
	} {
		path := filepath.Join(dir, "c.yaml")
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
		err := run(context.Background(), []string{"herald", "serve", "--config", path, "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, noEnv, io.Discard, io.Discard)
		require.ErrorContains(t, err, want, body)
	}
}

func TestRunHelpAndVersion(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"herald", "version"}, noEnv, &out, &errOut))
	require.True(t, strings.HasPrefix(out.String(), "herald "))

	err := run(context.Background(), []string{"herald", "sandbox", "--help"}, noEnv, &out, &errOut)
	require.True(t, errors.Is(err, flag.ErrHelp))
	require.Contains(t, errOut.String(), "reject_metadata")
	require.Contains(t, errOut.String(), "/_sandbox/")
}

func TestEnvironmentOverridesDefaults(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"herald", "sandbox"},
		func(k string) string {
			if k == "HERALD_SANDBOX_FAULT" {
				return "status=503,partner=ses; bogus"
			}
			return ""
		}, io.Discard, io.Discard)
	require.ErrorContains(t, err, `fault "bogus": unknown fault kind`)
}

// FuzzLoadConfig: any configuration file either loads into a valid
// configuration or is refused with an error; it never panics.
func FuzzLoadConfig(f *testing.F) {
	for _, seed := range []string{
		"listen: \":8080\"\npartners:\n  - {name: a, kind: sendgrid, api_key: k, from: a@example.com}\nchannels: {email: [a]}\n",
		"partners:\n  - name: x\n    kind: ses\n    region: us-east-1\n",
		"delivery: {max_attempts: -1, max_age: 5m}\n", "api_key: ${NOPE}\n", "- a\n- b\n", ":\n", "",
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		path := filepath.Join(dir, "herald.yaml")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(path, func(string) string { return "" })
		if err == nil && (cfg.Listen == "" || cfg.DataDir == "") {
			t.Fatalf("loaded without defaults: %+v", cfg)
		}
	})
}

func TestLoadConfigNamesTheBadKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for body, want := range map[string]string{
		"partners:\n  - {name: a, kind: sendgrid, from: a@example.com}\n":                                     "partners[0] (a).api_key is required for kind sendgrid",
		"partners:\n  - {name: a, kind: sparkpost, from: a@example.com}\n":                                    `partners[0] (a).kind: "sparkpost" is not one of`,
		"partners:\n  - {name: a, kind: sendgrid, api_key: k, domain: d, from: a@example.com}\n":              "partners[0] (a).domain does not apply to kind sendgrid",
		"partners:\n  - {name: a, kind: sendgrid, api_key: k, from: a@example.com}\nchannels: {email: [b]}\n": `channels.email: no partner named "b"`,
		"partners:\n  - name: a\n    kind: sendgrid\n    api_key: ${SG_KEY}\n    from: a@example.com\n":       "environment variables not set: SG_KEY",
		"listen: :1\ncolour: blue\n":  "field colour not found",
		"delivery: {max_age: soon}\n": `"soon" is not a duration`,
		"partners:\n  - {name: a, kind: sendgrid, api_key: k, from: a@example.com, webhook_signing_key: s}\n":   "partners[0] (a).webhook_signing_key does not apply to kind sendgrid",
		"partners:\n  - {name: a, kind: postmark, server_token: k, from: a@example.com, webhook_username: u}\n": "partners[0] (a).webhook_username and webhook_password go together",
		"webhooks: {allow_networks: [10.0.0.0/33]}\n":                                                           `webhooks.allow_networks[0]: "10.0.0.0/33" is not a CIDR prefix`,
		"partners:\n  - {kind: smtp, host: h, from: a@b.c}\n":                                                   "partners[0].name is required",
		"slos: {fallback: [{type: sms, to: a@example.com}]}\n":                                                  "slos.fallback[0].type: email, webhook, slack or pagerduty",
		"slos: {fallback: [{type: pagerduty, url: https://x}]}\n":                                               "slos.fallback[0].url does not apply to type pagerduty",
		"slos: {fallback: [{type: email, to: a@example.com, partner: nope}]}\n":                                 `slos.fallback[0].partner: no partner named "nope"`,
		"slos: {delivery: {target: 100}}\n":                                                                     "slos.delivery.target: a percentage above 0 and below 100",
		"slos: {heartbeat: {url: hc-ping.example/x}}\n":                                                         "slos.heartbeat.url: an absolute http(s) URL",
	} {
		path := filepath.Join(dir, "c.yaml")
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
		_, err := loadConfig(path, noEnv)
		require.ErrorContains(t, err, want, body)
	}
	// A secret from the environment is a string, whatever it contains.
	path := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("partners:\n  - name: a\n    kind: sendgrid\n    api_key: ${SG_KEY}\n    from: a@example.com\n"), 0o600))
	cfg, err := loadConfig(path, func(k string) string { return map[string]string{"SG_KEY": `x", kind: "smtp`}[k] })
	require.NoError(t, err)
	require.Equal(t, `x", kind: "smtp`, cfg.Partners[0].APIKey)
	require.Equal(t, "sendgrid", cfg.Partners[0].Kind)
}

func TestKeysCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"herald", "keys"}, args...), noEnv, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	secret, msg, err := keys("create", "--data-dir", dir, "--kind", "ingest", "--name", "collector")
	require.NoError(t, err)
	require.Regexp(t, `^hcxik_[a-z0-9]+\n$`, secret)
	require.Contains(t, msg, "shown only this once")
	id := strings.Fields(msg)[3]

	list, _, err := keys("list", "--data-dir", dir)
	require.NoError(t, err)
	require.Contains(t, list, id)
	require.Contains(t, list, "collector")
	require.NotContains(t, list, strings.TrimSpace(secret), "the secret is never shown again")

	_, _, err = keys("revoke", "--data-dir", dir, id)
	require.NoError(t, err)
	asJSON, _, err := keys("list", "--data-dir", dir, "--json")
	require.NoError(t, err)
	require.Contains(t, asJSON, `"revoked_at"`)

	_, _, err = keys("revoke", "--data-dir", dir, "hcxik_nope")
	require.ErrorContains(t, err, "no API key")
	_, _, err = keys("create", "--data-dir", dir, "--kind", "admin", "--name", "x")
	require.ErrorContains(t, err, "kind")
	_, _, err = keys("rotate")
	require.ErrorContains(t, err, `unknown subcommand "rotate"`)
}
