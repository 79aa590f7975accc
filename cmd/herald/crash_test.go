package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/sandbox"
)

// buildHerald compiles the real binary once per test run.
func buildHerald(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "herald")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// process is herald serve running as a child process.
type process struct {
	cmd *exec.Cmd
	url string
}

func startProcess(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "herald listening" {
				addr <- m["addr"].(string)
			}
		}
	}()
	select {
	case a := <-addr:
		return &process{cmd: cmd, url: "http://" + a}
	case <-time.After(30 * time.Second):
		t.Fatal("herald serve did not start")
		return nil
	}
}

// Crash safety: herald is killed with SIGKILL while attempts are in flight,
// then restarted. Every owed delivery completes; none is lost; a message
// reaches the partner more than once only where an attempt's outcome was
// unknown, and every such duplicate is counted on its delivery. Then a
// graceful stop (SIGTERM) with attempts in flight interrupts nothing.
func TestKilledWithAttemptsInFlightLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	t.Parallel()
	bin := buildHerald(t)
	sb, err := sandbox.Start(context.Background(), sandbox.Config{
		// Slow answers, so that attempts are in flight when the kill comes;
		// some of them are taken by the partner and their answer is lost.
		Faults: []sandbox.Fault{{Partner: sandbox.SendGrid, Kind: sandbox.FaultLatency, Delay: sandbox.Duration(150 * time.Millisecond)}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { sb.Close() })
	dir := t.TempDir()
	cfg := filepath.Join(dir, "herald.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
partners:
  - {name: sendgrid-main, kind: sendgrid, api_key: SG.sandbox, base_url: %q, from: alerts@example.com}
delivery: {attempt_timeout: 1s, workers: 8, backoff_base: 100ms}
`, sb.URL)), 0o600))
	env := []string{"HERALD_API_KEY=crash-test-key-0123456789", "HERALD_DATA_DIR=" + filepath.Join(dir, "data")}
	h := &heraldProc{key: "crash-test-key-0123456789"}

	p := startProcess(t, bin, env, "--config", cfg)
	h.url = p.url
	const total = 40
	var ids []string
	for i := range total {
		status, n := h.do(t, "POST", "/1/notifications", notification(fmt.Sprintf("user%d@example.com", i), nil))
		require.Equal(t, 202, status)
		ids = append(ids, firstDelivery(t, n))
	}
	var accepted atomic.Int32
	require.Eventually(t, func() bool {
		_, list := h.do(t, "GET", "/1/deliveries?state=accepted&limit=1000", nil)
		accepted.Store(int32(len(list["deliveries"].([]any))))
		return accepted.Load() >= 5
	}, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	p.cmd.Wait()
	require.Less(t, int(accepted.Load()), total, "killed before the work was done")

	p = startProcess(t, bin, env, "--config", cfg)
	h.url = p.url
	duplicates := 0
	for _, id := range ids {
		d := h.waitState(t, id, herald.StateAccepted)
		sent := len(sb.Messages(sandbox.MessageFilter{MetadataKey: herald.MetaDeliveryID, MetadataValue: id}))
		require.GreaterOrEqual(t, sent, 1, "delivery %s was lost", id)
		counted := int(d["possible_duplicates"].(float64))
		require.GreaterOrEqual(t, counted, sent-1, "delivery %s reached the partner %d times but counts %d possible duplicates", id, sent, counted)
		if sent > 1 {
			duplicates++
			var unknown bool
			for _, a := range d["attempts"].([]any) {
				unknown = unknown || a.(map[string]any)["outcome"] == "unknown"
			}
			require.True(t, unknown, "a duplicate without an unknown outcome: %v", d)
		}
	}
	t.Logf("%d deliveries, %d accepted before the kill, %d reached the partner twice (all counted)", total, accepted.Load(), duplicates)

	// A graceful stop with attempts in flight: they finish, nothing is
	// interrupted, and what was not started is done by the next run.
	var more []string
	for i := range 20 {
		status, n := h.do(t, "POST", "/1/notifications", notification(fmt.Sprintf("late%d@example.com", i), nil))
		require.Equal(t, 202, status)
		more = append(more, firstDelivery(t, n))
	}
	h.waitState(t, more[0], herald.StateAccepted)
	p.cmd.Process.Signal(syscall.SIGTERM)
	require.NoError(t, p.cmd.Wait(), "a SIGTERM stops herald cleanly")
	p = startProcess(t, bin, env, "--config", cfg)
	h.url = p.url
	for _, id := range more {
		d := h.waitState(t, id, herald.StateAccepted)
		for _, a := range d["attempts"].([]any) {
			require.NotEqual(t, "interrupted", a.(map[string]any)["reason"], "a graceful stop interrupts nothing")
		}
		require.Len(t, sb.Messages(sandbox.MessageFilter{MetadataKey: herald.MetaDeliveryID, MetadataValue: id}), 1)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	require.NoError(t, p.cmd.Wait())
}

// Ingest durability: herald is killed with SIGKILL while batches are
// arriving. After a restart every event it answered 202 for is there, once;
// events of the batches cut off may or may not be, never twice.
func TestKilledWhileIngestingKeepsAcknowledgedEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	t.Parallel()
	bin := buildHerald(t)
	dir := t.TempDir()
	env := []string{"HERALD_API_KEY=ingest-crash-key-0123456789", "HERALD_DATA_DIR=" + filepath.Join(dir, "data")}
	h := &heraldProc{key: "ingest-crash-key-0123456789"}
	p := startProcess(t, bin, env)
	h.url = p.url

	var acked, sent atomic.Int64
	var next atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				batch := make([]map[string]any, 50)
				for i := range batch {
					batch[i] = map[string]any{"data": map[string]any{"id": next.Add(1), "route": "/cart", "ms": 12.5}}
				}
				body, _ := json.Marshal(batch)
				req, _ := http.NewRequest("POST", h.url+"/1/batch/crash", bytes.NewReader(body))
				req.Header.Set("X-Honeycomb-Team", h.key)
				sent.Add(50)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the kill
				}
				var statuses []struct{ Status int }
				err = json.NewDecoder(resp.Body).Decode(&statuses)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					return
				}
				for _, s := range statuses {
					if s.Status == http.StatusAccepted {
						acked.Add(1)
					}
				}
			}
		}()
	}
	require.Eventually(t, func() bool { return acked.Load() >= 5000 }, 60*time.Second, 5*time.Millisecond)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	p.cmd.Wait()
	close(stop)
	wg.Wait()

	p = startProcess(t, bin, env)
	h.url = p.url
	status, q := h.do(t, "POST", "/1/queries/crash", map[string]any{
		"calculations": []map[string]any{{"op": "COUNT"}, {"op": "COUNT_DISTINCT", "column": "id"}}, "time_range": 3600})
	require.Equal(t, http.StatusOK, status, "%v", q)
	status, res := h.do(t, "POST", "/1/query_results/crash", map[string]any{"query_id": q["id"]})
	require.Equal(t, http.StatusCreated, status, "%v", res)
	row := res["data"].(map[string]any)["results"].([]any)[0].(map[string]any)["data"].(map[string]any)
	stored, distinct := int64(row["COUNT"].(float64)), int64(row["COUNT_DISTINCT(id)"].(float64))
	t.Logf("acknowledged %d, stored %d, sent %d", acked.Load(), stored, sent.Load())
	require.Equal(t, stored, distinct, "no event stored twice")
	require.GreaterOrEqual(t, stored, acked.Load(), "every acknowledged event survives the kill")
	require.LessOrEqual(t, stored, sent.Load())
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
}
