package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
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
