package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	libhoney "github.com/honeycombio/libhoney-go"
	"github.com/honeycombio/libhoney-go/transmission"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"herald"
	"herald/clock"
	"herald/eventstore"
	"herald/notify"
	"herald/server"
	"herald/sqlstore"
)

// t0 is "now" for the events tests: events are sent a minute before it.
var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

type eventsBundle struct {
	url    string
	key    string // configuration
	ingest string
	events *eventstore.DuckDB
	db     *sqlstore.DB
}

// setupEvents starts herald's API over real SQLite and DuckDB files, with
// the clock at t0.
func setupEvents(t testing.TB, cfg eventstore.Config) *eventsBundle {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlstore.Open(ctx, filepath.Join(dir, "herald.db"), clock.NewFake(t0))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	cfg.Path = filepath.Join(dir, "events.duckdb")
	events, err := eventstore.Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { events.Close() })
	svc, err := notify.New(notify.Config{Store: db, Channels: map[string][]herald.Provider{},
		Enqueue: func(context.Context, *sql.Tx, []string) error { return nil }})
	require.NoError(t, err)
	_, key, err := db.CreateAPIKey(ctx, herald.KeyConfiguration, "test")
	require.NoError(t, err)
	_, ingest, err := db.CreateAPIKey(ctx, herald.KeyIngest, "test")
	require.NoError(t, err)
	eval, err := notify.NewEvaluator(notify.EvaluatorConfig{Store: db, Events: events, Clock: clock.NewFake(t0),
		Enqueue: func(context.Context, *sql.Tx, []string) error { return nil }})
	require.NoError(t, err)
	slos, err := notify.NewSLOs(notify.SLOsConfig{Store: db, Events: events, Clock: clock.NewFake(t0), Logger: slog.New(slog.DiscardHandler),
		Enqueue: func(context.Context, *sql.Tx, []string) error { return nil }})
	require.NoError(t, err)
	require.NoError(t, slos.EnsureDeliverySLOs(ctx))
	h := server.NewServer(server.Deps{Logger: slog.New(slog.DiscardHandler), Keys: db, Notifier: svc, Reader: db,
		Events: events, Queries: db, Triggers: db, Evaluations: db, Evaluator: eval, Markers: db, PartnerEvents: db,
		SLOs: db, SLOEngine: slos, Sessions: db, UIStore: db, Canaries: db, Clock: clock.NewFake(t0), Metrics: http.NotFoundHandler()})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &eventsBundle{url: srv.URL, key: key, ingest: ingest, events: events, db: db}
}

// do sends a request and returns the status and body.
func (b *eventsBundle) do(t *testing.T, method, path, key string, body io.Reader, headers ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, b.url+path, body)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("X-Honeycomb-Team", key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, out
}

// query runs spec over dataset through the Query Data API, as the
// Terraform client does, and returns the result rows.
func (b *eventsBundle) query(t *testing.T, dataset, spec string) []map[string]any {
	t.Helper()
	status, body := b.do(t, "POST", "/1/queries/"+dataset, b.key, strings.NewReader(spec))
	require.Equal(t, http.StatusOK, status, "%s", body)
	var q struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &q))
	status, body = b.do(t, "POST", "/1/query_results/"+dataset, b.key, strings.NewReader(`{"query_id":"`+q.ID+`"}`))
	require.Equal(t, http.StatusCreated, status, "%s", body)
	var created struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &created))
	status, body = b.do(t, "GET", "/1/query_results/"+dataset+"/"+created.ID, b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", body)
	var res struct {
		Complete bool
		Data     struct {
			Results []struct{ Data map[string]any }
		}
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	require.NoError(t, d.Decode(&res))
	require.True(t, res.Complete)
	out := make([]map[string]any, len(res.Data.Results))
	for i, r := range res.Data.Results {
		for k, v := range r.Data {
			if n, ok := v.(json.Number); ok {
				r.Data[k] = n.String()
			}
		}
		out[i] = r.Data
	}
	return out
}

// TestLibhoneyGo sends events with Honeycomb's own Go SDK, as libhoney-go
// sends by default (JSON, zstd) and as Refinery sends (msgpack, zstd), and
// reads them back through the query API.
func TestLibhoneyGo(t *testing.T) {
	t.Parallel()
	for _, msgpack := range []bool{false, true} {
		t.Run(fmt.Sprintf("msgpack=%v", msgpack), func(t *testing.T) {
			t.Parallel()
			b := setupEvents(t, eventstore.Config{})
			tx := &transmission.Honeycomb{MaxBatchSize: 50, BatchTimeout: 10 * time.Millisecond, MaxConcurrentBatches: 4,
				PendingWorkCapacity: 1000, BlockOnSend: true, BlockOnResponse: true, EnableMsgpackEncoding: msgpack}
			client, err := libhoney.NewClient(libhoney.ClientConfig{APIKey: b.ingest, Dataset: "Checkout Service",
				APIHost: b.url, Transmission: tx})
			require.NoError(t, err)
			var statuses []int
			done := make(chan struct{})
			go func() {
				defer close(done)
				for r := range client.TxResponses() {
					require.NoError(t, r.Err)
					statuses = append(statuses, r.StatusCode)
				}
			}()
			for i := range 120 {
				ev := client.NewEvent()
				ev.Timestamp = t0.Add(-time.Minute)
				ev.AddField("route", []string{"/cart", "/pay", "/home"}[i%3])
				ev.AddField("duration_ms", float64(i))
				ev.AddField("status", 200+300*(i%2))
				ev.AddField("user", map[string]any{"id": i % 10})
				if i%4 == 0 {
					// Sampled by the sender: sent as is, with its rate.
					ev.SampleRate = 4
				}
				require.NoError(t, ev.SendPresampled())
			}
			client.Close()
			<-done
			require.Len(t, statuses, 120)
			for _, s := range statuses {
				require.Equal(t, http.StatusAccepted, s)
			}
			require.Equal(t, []map[string]any{
				// 40 events a route; 10 of each route's sent with sample rate 4.
				{"route": "/cart", "COUNT": "70", "MAX(duration_ms)": "117", "COUNT_DISTINCT(user)": "10"},
				{"route": "/home", "COUNT": "70", "MAX(duration_ms)": "119", "COUNT_DISTINCT(user)": "10"},
				{"route": "/pay", "COUNT": "70", "MAX(duration_ms)": "118", "COUNT_DISTINCT(user)": "10"},
			}, b.query(t, "checkout-service", `{"calculations":[{"op":"COUNT"},{"op":"MAX","column":"duration_ms"},{"op":"COUNT_DISTINCT","column":"user"}],
				"breakdowns":["route"],"orders":[{"column":"route"}],"time_range":600}`))
			require.Equal(t, []map[string]any{{"COUNT": "12"}}, b.query(t, "checkout-service",
				`{"filters":[{"column":"status","op":">=","value":500},{"column":"user","op":"contains","value":"\"id\":1"}],"time_range":600}`))
		})
	}
}

func zstdBody(t testing.TB, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	return enc.EncodeAll(b, nil)
}

func gzipBody(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// TestBatchAnswers: the positional status array, and a msgpack batch with
// native timestamps built as Refinery builds it.
func TestBatchAnswers(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{MaxColumns: 4})
	body := `[{"time":"2026-11-24T11:59:00Z","data":{"a":1}},` +
		`{"data":"not an object"},` +
		`{"time":1795521540,"samplerate":2,"data":{"b":"x","__reserved":1}},` +
		`{"data":{"c":1,"d":2,"e":3,"f":4}},` + // would make 6 columns
		`{"time":"1795521540000","data":{"b":"y"}}]`
	status, out := b.do(t, "POST", "/1/batch/answers", b.ingest, bytes.NewReader(gzipBody(t, []byte(body))), "Content-Encoding", "gzip")
	require.Equal(t, http.StatusOK, status, "%s", out)
	var got []map[string]any
	require.NoError(t, json.Unmarshal(out, &got))
	require.Len(t, got, 5)
	require.Equal(t, 202.0, got[0]["status"])
	require.Equal(t, 400.0, got[1]["status"])
	require.Equal(t, 400.0, got[2]["status"])
	require.Equal(t, 400.0, got[3]["status"])
	require.Equal(t, "Dataset has too many columns.", got[3]["error"])
	require.Equal(t, 202.0, got[4]["status"])
	require.Equal(t, []map[string]any{{"COUNT": "2"}}, b.query(t, "answers", `{"time_range":600}`))

	mp, err := msgpack.Marshal([]map[string]any{
		{"time": t0.Add(-30 * time.Second), "samplerate": 3, "data": map[string]any{"b": "z", "n": 7}},
	})
	require.NoError(t, err)
	status, out = b.do(t, "POST", "/1/batch/answers", b.key, bytes.NewReader(zstdBody(t, mp)),
		"Content-Type", "application/msgpack", "Content-Encoding", "zstd")
	require.Equal(t, http.StatusOK, status, "%s", out)
	require.JSONEq(t, `[{"status":202}]`, string(out))
	require.Equal(t, []map[string]any{{"COUNT": "3", "SUM(n)": "21"}},
		b.query(t, "answers", `{"calculations":[{"op":"COUNT"},{"op":"SUM","column":"n"}],"time_range":45}`))
}

// TestEventsEndpoint: /1/events with its headers.
func TestEventsEndpoint(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{})
	status, out := b.do(t, "POST", "/1/events/single", b.ingest, strings.NewReader(`{"ms": 5, "ok": true}`),
		"X-Honeycomb-Event-Time", "2026-11-24T11:59:30Z", "X-Honeycomb-Samplerate", "5")
	require.Equal(t, http.StatusOK, status, "%s", out)
	require.Empty(t, out)
	require.Equal(t, []map[string]any{{"COUNT": "5", "SUM(ms)": "25"}},
		b.query(t, "single", `{"calculations":[{"op":"COUNT"},{"op":"SUM","column":"ms"}],"time_range":60}`))
}

// TestEventErrors: whole-request errors answer as Honeycomb's events API
// does, and store nothing.
func TestEventErrors(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{})
	for _, c := range []struct {
		name    string
		path    string
		key     string
		body    []byte
		headers []string
		status  int
		message string
	}{
		{"no key", "/1/batch/e", "", []byte(`[]`), nil, 401, ""},
		{"unknown key", "/1/batch/e", "nope", []byte(`[]`), nil, 401, ""},
		{"empty", "/1/batch/e", b.ingest, nil, nil, 400, "Request body should not be empty."},
		{"malformed", "/1/batch/e", b.ingest, []byte(`[{"data":`), nil, 400, "Request body is malformed and cannot be read."},
		{"not an array", "/1/batch/e", b.ingest, []byte(`{"data":{}}`), nil, 400, "Request body is malformed and cannot be read."},
		{"bad encoding", "/1/batch/e", b.ingest, []byte(`[]`), []string{"Content-Encoding", "br"}, 400, ""},
		{"corrupt zstd", "/1/batch/e", b.ingest, []byte("not zstd"), []string{"Content-Encoding", "zstd"}, 400, "Request body is malformed and cannot be read."},
		{"too large", "/1/events/e", b.ingest, []byte(`{"a":"` + strings.Repeat("x", herald.MaxEventBytes+2048) + `"}`), nil, 400, "Request body is too large."},
		{"bad samplerate", "/1/events/e", b.ingest, []byte(`{"a":1}`), []string{"X-Honeycomb-Samplerate", "-3"}, 400, ""},
		{"slash in name", "/1/events/a%2Fb", b.ingest, []byte(`{"a":1}`), nil, 400, ""},
	} {
		status, out := b.do(t, "POST", c.path, c.key, bytes.NewReader(c.body), c.headers...)
		require.Equal(t, c.status, status, "%s: %s", c.name, out)
		var e map[string]any
		require.NoError(t, json.Unmarshal(out, &e), c.name)
		require.NotEmpty(t, e["error"], c.name)
		if c.message != "" {
			require.Equal(t, c.message, e["error"], c.name)
		}
	}
	ds, err := b.events.Datasets(context.Background())
	require.NoError(t, err)
	require.Empty(t, ds)
}

// TestOverloadAnswers429: when the writer's queue is full, the batch is
// refused whole with 429 and a Retry-After, which libhoney-go honours.
func TestOverloadAnswers429(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{MaxPending: 1})
	status, out := b.do(t, "POST", "/1/batch/o", b.ingest, strings.NewReader(`[{"data":{"a":1}},{"data":{"a":2}}]`))
	require.Equal(t, http.StatusTooManyRequests, status, "%s", out)
}

// TestDatasetsAPI: list, get and create, in Honeycomb's shapes; ingest
// keys may not use it.
func TestDatasetsAPI(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{})
	status, out := b.do(t, "POST", "/1/datasets", b.key, strings.NewReader(`{"name":"My Dataset!","description":"d"}`))
	require.Equal(t, http.StatusCreated, status, "%s", out)
	var ds map[string]any
	require.NoError(t, json.Unmarshal(out, &ds))
	require.Equal(t, "my-dataset-", ds["slug"])
	require.Equal(t, "My Dataset!", ds["name"])
	status, _ = b.do(t, "POST", "/1/datasets", b.key, strings.NewReader(`{"name":"my dataset!"}`))
	require.Equal(t, http.StatusOK, status)
	status, out = b.do(t, "GET", "/1/datasets/my-dataset-", b.key, nil)
	require.Equal(t, http.StatusOK, status, "%s", out)
	status, out = b.do(t, "GET", "/1/datasets", b.key, nil)
	require.Equal(t, http.StatusOK, status)
	var list []map[string]any
	require.NoError(t, json.Unmarshal(out, &list))
	require.Len(t, list, 1)
	status, _ = b.do(t, "GET", "/1/datasets", b.ingest, nil)
	require.Equal(t, http.StatusForbidden, status)
	status, _ = b.do(t, "POST", "/1/datasets", b.key, strings.NewReader(`{"name":""}`))
	require.Equal(t, http.StatusUnprocessableEntity, status)
	status, _ = b.do(t, "GET", "/1/datasets/nope", b.key, nil)
	require.Equal(t, http.StatusNotFound, status)
}

// TestQueryAPI: the query data flow's shapes and errors.
func TestQueryAPI(t *testing.T) {
	t.Parallel()
	b := setupEvents(t, eventstore.Config{})
	status, out := b.do(t, "POST", "/1/batch/q", b.ingest, strings.NewReader(
		`[{"time":"2026-11-24T11:58:30Z","data":{"ms":10}},{"time":"2026-11-24T11:59:30Z","data":{"ms":30}}]`))
	require.Equal(t, http.StatusOK, status, "%s", out)

	status, out = b.do(t, "POST", "/1/queries/q", b.key, strings.NewReader(`{"calculations":[{"op":"AVG","column":"ms"}],"time_range":120,"granularity":60}`))
	require.Equal(t, http.StatusOK, status, "%s", out)
	var q map[string]any
	require.NoError(t, json.Unmarshal(out, &q))
	id := q["id"].(string)
	status, out = b.do(t, "GET", "/1/queries/q/"+id, b.key, nil)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"id":"`+id+`","calculations":[{"op":"AVG","column":"ms"}],"time_range":120,"granularity":60}`, string(out))

	req, err := http.NewRequest("POST", b.url+"/1/query_results/q", strings.NewReader(`{"query_id":"`+id+`"}`))
	require.NoError(t, err)
	req.Header.Set("X-Honeycomb-Team", b.key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	out, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", out)
	var res struct {
		ID       string `json:"id"`
		Complete bool   `json:"complete"`
		Data     herald.QueryData
		Links    map[string]string
	}
	require.NoError(t, json.Unmarshal(out, &res))
	require.Equal(t, "/1/query_results/q/"+res.ID, resp.Header.Get("Location"))
	require.True(t, res.Complete)
	require.Equal(t, []herald.ResultRow{{Data: map[string]any{"AVG(ms)": 20.0}}}, res.Data.Results)
	require.Equal(t, []herald.SeriesPoint{
		{Time: t0.Add(-2 * time.Minute), Data: map[string]any{"AVG(ms)": 10.0}},
		{Time: t0.Add(-time.Minute), Data: map[string]any{"AVG(ms)": 30.0}},
	}, res.Data.Series)

	for _, c := range []struct {
		path, body string
		status     int
	}{
		{"/1/queries/q", `{"calculations":[{"op":"HEATMAP","column":"ms"}]}`, 422},
		{"/1/queries/q", `{"calculations":[{"op":"CONCURRENCY"}]}`, 422},
		{"/1/queries/q", `{"calculated_fields":[{"name":"x","expression":"1"}]}`, 422},
		{"/1/queries/q", `{"limit":1001}`, 422},
		{"/1/queries/q", `{"calculations":`, 400},
		{"/1/queries/nope", `{}`, 404},
		{"/1/query_results/q", `{"query_id":"qry_nope"}`, 404},
		{"/1/query_results/q", `{}`, 422},
		{"/1/query_results/q", `{"query_id":"` + id + `","limit":1001}`, 422},
	} {
		status, out := b.do(t, "POST", c.path, b.key, strings.NewReader(c.body))
		require.Equal(t, c.status, status, "%s %s: %s", c.path, c.body, out)
	}
	// curl's default content type is read as JSON; another type is refused.
	status, out = b.do(t, "POST", "/1/queries/q", b.key, strings.NewReader(`{}`), "Content-Type", "application/x-www-form-urlencoded")
	require.Equal(t, http.StatusOK, status, "%s", out)
	status, out = b.do(t, "POST", "/1/queries/q", b.key, strings.NewReader(`{}`), "Content-Type", "text/xml")
	require.Equal(t, http.StatusBadRequest, status, "%s", out)
	// __all__ answers across datasets.
	require.Equal(t, []map[string]any{{"COUNT": "2"}}, b.query(t, "__all__", `{"time_range":600}`))
}

// TestLibhoneyJS sends events with libhoney-js (JSON, uncompressed), run
// by Node.js from testdata/libhoney-js. CI installs its packages; a
// machine without Node.js or them skips, unless HERALD_REQUIRE_NODE is set.
func TestLibhoneyJS(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "libhoney-js")
	node, err := exec.LookPath("node")
	if _, serr := os.Stat(filepath.Join(dir, "node_modules", "libhoney")); err != nil || serr != nil {
		if os.Getenv("HERALD_REQUIRE_NODE") != "" {
			t.Fatalf("Node.js and libhoney-js are required: run npm ci in %s", dir)
		}
		t.Skipf("Node.js or libhoney-js missing: run npm ci in %s", dir)
	}
	b := setupEvents(t, eventstore.Config{})
	cmd := exec.Command(node, "send.js", b.url, b.ingest, "web", strconv.FormatInt(t0.Add(-time.Minute).UnixMilli(), 10))
	cmd.Dir = dir
	out, err := cmd.Output()
	require.NoError(t, err, "%s", out)
	var statuses []any
	require.NoError(t, json.Unmarshal(out, &statuses), "%s", out)
	require.Len(t, statuses, 25)
	for _, s := range statuses {
		require.Equal(t, 202.0, s)
	}
	// 13 on /cart (one standing for 10), 12 on /pay.
	require.Equal(t, []map[string]any{
		{"route": "/cart", "COUNT": "22", "MIN(duration_ms)": "0.5", "COUNT_DISTINCT(ok)": "2"},
		{"route": "/pay", "COUNT": "12", "MIN(duration_ms)": "1.5", "COUNT_DISTINCT(ok)": "2"},
	}, b.query(t, "web", `{"calculations":[{"op":"COUNT"},{"op":"MIN","column":"duration_ms"},{"op":"COUNT_DISTINCT","column":"ok"}],
		"breakdowns":["route"],"orders":[{"column":"route"}],"time_range":600}`))
}
