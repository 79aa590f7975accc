package sandbox_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald/clock"
	"herald/sandbox"
)

// t0 is the simulated start of every test.
var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// bundle is what setup starts for one test.
type bundle struct {
	sb    *sandbox.Running
	clock *clock.Fake
	hooks *receiver
}

// setup starts a sandbox on loopback with a fake clock and a webhook
// receiver that every HTTP partner posts its events to. change, if not nil,
// edits the configuration first.
func setup(t *testing.T, change func(*sandbox.Config)) *bundle {
	t.Helper()
	b := &bundle{clock: clock.NewFake(t0), hooks: newReceiver(t)}
	cfg := sandbox.Config{
		Clock: b.clock,
		Seed:  1,
		Webhooks: map[sandbox.Partner]string{
			sandbox.SendGrid: b.hooks.url + "/sendgrid",
			sandbox.Postmark: b.hooks.url + "/postmark",
			sandbox.Mailgun:  b.hooks.url + "/mailgun",
			sandbox.SES:      b.hooks.url + "/ses",
		},
	}
	if change != nil {
		change(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); sb.Close() })
	b.sb = sb
	return b
}

// hook is one webhook request the receiver got.
type hook struct {
	Path   string
	Header http.Header
	Body   []byte
	User   string
	Pass   string
}

// receiver records webhook requests and answers each with the next status
// of its script (200 once the script is used up).
type receiver struct {
	url string
	got chan hook

	mu     sync.Mutex
	script []int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan hook, 1000)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		u, p, _ := req.BasicAuth()
		r.got <- hook{Path: req.URL.Path, Header: req.Header.Clone(), Body: body, User: u, Pass: p}
		r.mu.Lock()
		status := http.StatusOK
		if len(r.script) > 0 {
			status, r.script = r.script[0], r.script[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// answer makes the next webhook requests answer these statuses in turn.
func (r *receiver) answer(statuses ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.script = append(r.script, statuses...)
}

// next returns the next webhook request, failing the test if none arrives.
// Webhooks are posted while the fake clock advances, so by the time
// Advance returns the request has been received.
func (r *receiver) next(t *testing.T) hook {
	t.Helper()
	select {
	case h := <-r.got:
		return h
	case <-time.After(5 * time.Second):
		t.Fatal("no webhook arrived")
		return hook{}
	}
}

// none fails the test if a webhook request is waiting.
func (r *receiver) none(t *testing.T) {
	t.Helper()
	select {
	case h := <-r.got:
		t.Fatalf("unexpected webhook to %s: %s", h.Path, h.Body)
	default:
	}
}

// serve runs one request through h in-process, with header name/value pairs.
func serve(h http.Handler, method, path string, body []byte, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
