package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"herald"
	"herald/queue"
	"herald/sandbox"
	"herald/sqlstore"
)

// The pipeline benchmarks run the real herald serve in-process against a
// sandbox on loopback, with SQLite, and report notifications/s and
// latency; BenchmarkRiverNoop is the queue's own ceiling on this machine.
// Run them together for comparable figures:
//
//	go test ./cmd/herald -run '^$' -bench 'Pipeline|RiverNoop' -benchtime 2000x

type pipeline struct {
	url, key string
	sb       *sandbox.Running
	stop     context.CancelFunc
	done     chan error
}

func startPipeline(b *testing.B, tracing bool) *pipeline {
	b.Helper()
	sb, err := sandbox.Start(context.Background(), sandbox.Config{MaxMessages: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	cfg := filepath.Join(dir, "herald.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("partners:\n  - {name: sendgrid-main, kind: sendgrid, api_key: SG.sandbox, base_url: %q, from: alerts@example.com}\n", sb.URL)), 0o600)
	env := map[string]string{"HERALD_API_KEY": "bench-key-0123456789abcdef"}
	if tracing {
		collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
		}))
		b.Cleanup(collector.Close)
		env["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.URL
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := newLogLines()
	p := &pipeline{key: env["HERALD_API_KEY"], sb: sb, stop: cancel, done: make(chan error, 1)}
	go func() {
		p.done <- run(ctx, []string{"herald", "serve", "--listen", "127.0.0.1:0", "--config", cfg, "--data-dir", filepath.Join(dir, "data"), "--log-level", "info"},
			func(k string) string { return env[k] }, io.Discard, logs)
	}()
	deadline := time.After(30 * time.Second)
	for p.url == "" {
		select {
		case m := <-logs.lines:
			if a, ok := m["addr"].(string); ok && m["msg"] == "herald listening" {
				p.url = "http://" + a
			}
		case <-deadline:
			b.Fatal("herald did not start")
		}
	}
	b.Cleanup(func() { cancel(); <-p.done; sb.Close() })
	return p
}

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func (p *pipeline) post(i int) (time.Time, error) {
	body, _ := json.Marshal(notification(fmt.Sprintf("user%d@example.com", i), map[string]string{"team": "platform", "n": fmt.Sprint(i)}))
	req, _ := http.NewRequest("POST", p.url+"/1/notifications", bytes.NewReader(body))
	req.Header.Set("X-Honeycomb-Team", p.key)
	resp, err := benchClient.Do(req)
	if err != nil {
		return time.Time{}, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return time.Time{}, fmt.Errorf("status %d", resp.StatusCode)
	}
	return time.Now(), nil
}

// waitAccepted waits until the partner holds n messages.
func (p *pipeline) waitAccepted(b *testing.B, n int) {
	for deadline := time.Now().Add(5 * time.Minute); len(p.sb.Messages(sandbox.MessageFilter{})) < n; {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d notifications reached the partner", len(p.sb.Messages(sandbox.MessageFilter{})), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkPipelineThroughput: API → queue → adapter → sandbox, as fast as
// 16 clients can post.
func BenchmarkPipelineThroughput(b *testing.B) {
	for _, tracing := range []bool{false, true} {
		b.Run(fmt.Sprintf("tracing_exported=%v", tracing), func(b *testing.B) {
			p := startPipeline(b, tracing)
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := int(next.Add(1)); i <= b.N; i = int(next.Add(1)) {
						if _, err := p.post(i); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			p.waitAccepted(b, b.N)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notifications/s")
		})
	}
}

// BenchmarkPipelineLatency: notifications posted at 100/s; the time from
// the API's 202 to the partner's acceptance.
func BenchmarkPipelineLatency(b *testing.B) {
	for _, tracing := range []bool{false, true} {
		b.Run(fmt.Sprintf("tracing_exported=%v", tracing), func(b *testing.B) {
			p := startPipeline(b, tracing)
			accepted := make([]time.Time, b.N)
			b.ResetTimer()
			tick := time.NewTicker(10 * time.Millisecond)
			var wg sync.WaitGroup
			for i := range b.N {
				<-tick.C
				wg.Add(1)
				go func() {
					defer wg.Done()
					at, err := p.post(i)
					if err != nil {
						b.Error(err)
					}
					accepted[i] = at
				}()
			}
			tick.Stop()
			wg.Wait()
			p.waitAccepted(b, b.N)
			b.StopTimer()
			var lat []time.Duration
			for _, m := range p.sb.Messages(sandbox.MessageFilter{}) {
				var i int
				fmt.Sscan(m.Metadata["n"], &i)
				lat = append(lat, m.ReceivedAt.Sub(accepted[i]))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99_ms")
		})
	}
}

type noop struct {
	left atomic.Int64
	done chan struct{}
}

func (n *noop) Deliver(context.Context, string) (time.Duration, error) {
	if n.left.Add(-1) == 0 {
		close(n.done)
	}
	return 0, nil
}

// BenchmarkRiverNoop: River's own rate on the same SQLite set-up, with jobs
// that do nothing — the ceiling the pipeline is measured against.
func BenchmarkRiverNoop(b *testing.B) {
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(b.TempDir(), "herald.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := queue.Migrate(ctx, db.DB); err != nil {
		b.Fatal(err)
	}
	in, err := queue.NewInserter(db.DB, nil)
	if err != nil {
		b.Fatal(err)
	}
	h := &noop{done: make(chan struct{})}
	h.left.Store(int64(b.N))
	w, err := queue.NewWorkers(db.DB, h, queue.Config{PollInterval: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer w.Stop(ctx)
	b.ResetTimer()
	for i := range b.N {
		// One job per transaction, as the API inserts them.
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := in.EnqueueTx(ctx, tx, []string{herald.NewID("dlv_", time.Now()) + fmt.Sprint(i)}); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	<-h.done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}
