package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// realisticBatch is n events of 20 fields, as libhoney sends them.
func realisticBatch(n int, at time.Time) []map[string]any {
	batch := make([]map[string]any, n)
	for i := range batch {
		batch[i] = map[string]any{
			"time": at.Add(-time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano),
			"data": map[string]any{
				"service.name": "checkout", "name": "HTTP POST /api/cart/items",
				"trace.trace_id": fmt.Sprintf("%032x", i*7919), "trace.span_id": fmt.Sprintf("%016x", i*104729),
				"trace.parent_id": fmt.Sprintf("%016x", i*1299709), "http.method": "POST", "http.route": "/api/cart/items",
				"http.url":         fmt.Sprintf("https://shop.example.com/api/cart/items?id=%d", i),
				"http.status_code": 200 + i%3*100, "duration_ms": 12.5 + float64(i)*0.37, "db.rows": i * 3,
				"db.duration_ms": 3.25 + float64(i)*0.11, "user.id": 10000 + i, "cart.items": i % 12,
				"cart.total": 99.95 + float64(i), "error": i%10 == 0, "cache.hit": i%3 == 0,
				"host.name": "web-7f9c4d-abcde", "region": "eu-west-1", "meta.span_type": "root",
			},
		}
	}
	return batch
}

// BenchmarkIngestBatch runs the real herald serve in-process and posts
// 50-event JSON batches, zstd-compressed (once, ahead: the client's cost is
// not herald's), from 32 concurrent clients over loopback. Every 200 means
// the events are on disk.
//
//	go test ./cmd/herald -run '^$' -bench IngestBatch -benchtime 10000x
func BenchmarkIngestBatch(b *testing.B) {
	p := startPipeline(b, false)
	js, err := json.Marshal(realisticBatch(50, time.Now()))
	if err != nil {
		b.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		b.Fatal(err)
	}
	body := enc.EncodeAll(js, nil)
	b.SetBytes(int64(len(js)))
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", p.url+"/1/batch/bench", bytes.NewReader(body))
			req.Header.Set("X-Honeycomb-Team", p.key)
			req.Header.Set("Content-Encoding", "zstd")
			resp, err := benchClient.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*50)/b.Elapsed().Seconds(), "events/s")
}
