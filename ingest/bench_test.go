package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// benchBatch returns a batch of n realistic 20-field events, as libhoney
// would send them.
func benchBatch(n int) []map[string]any {
	ts := time.Date(2025, 3, 4, 10, 15, 30, 123456789, time.UTC)
	batch := make([]map[string]any, n)
	for i := range batch {
		batch[i] = map[string]any{
			"time":       ts.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano),
			"samplerate": 1 + i%4,
			"data": map[string]any{
				"service.name":     "checkout",
				"name":             "HTTP POST /api/cart/items",
				"trace.trace_id":   fmt.Sprintf("%032x", i*7919),
				"trace.span_id":    fmt.Sprintf("%016x", i*104729),
				"trace.parent_id":  fmt.Sprintf("%016x", i*1299709),
				"http.method":      "POST",
				"http.route":       "/api/cart/items",
				"http.url":         fmt.Sprintf("https://shop.example.com/api/cart/items?id=%d", i),
				"http.status_code": 200 + i%3*100,
				"duration_ms":      12.5 + float64(i)*0.37,
				"db.rows":          i * 3,
				"db.duration_ms":   3.25 + float64(i)*0.11,
				"user.id":          10000 + i,
				"cart.items":       i % 12,
				"cart.total":       99.95 + float64(i),
				"error":            i%10 == 0,
				"cache.hit":        i%3 == 0,
				"host.name":        "web-7f9c4d-abcde",
				"region":           "eu-west-1",
				"meta.span_type":   "root",
			},
		}
	}
	return batch
}

func BenchmarkBatchJSON(b *testing.B) {
	body, err := json.Marshal(benchBatch(50))
	require.NoError(b, err)
	now := time.Now()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		events, _, err := Batch(body, "application/json", now)
		if err != nil || len(events) != 50 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(50*b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkBatchMsgpack(b *testing.B) {
	var buf bytes.Buffer
	require.NoError(b, msgpack.NewEncoder(&buf).Encode(benchBatch(50)))
	body := buf.Bytes()
	now := time.Now()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		events, _, err := Batch(body, "application/msgpack", now)
		if err != nil || len(events) != 50 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(50*b.N)/b.Elapsed().Seconds(), "events/s")
}
