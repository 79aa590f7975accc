package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"herald"
	"herald/sqlstore"
)

// seedJudged inserts n judged deliveries spread over the 30 days before
// t0 (a 2 % bad, 1 % excluded mix over three channels and four partners),
// straight into the tables, many rows per statement.
func seedJudged(b *testing.B, db *sqlstore.DB, n int) {
	b.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO notifications (id, subject, text_body, html_body, metadata, recipients, trace_parent, created_at, request_hash, idempotency_key, alert)
		VALUES ('n-seed', 's', 't', '', '{}', '[]', '', 0, '', NULL, '')`); err != nil {
		b.Fatal(err)
	}
	channels := []string{"email", "email", "email", "webhook", "slack"}
	partners := []string{"sendgrid-main", "postmark-backup", "ses-eu", "mailgun"}
	const per = 500
	span := int64(30 * 24 * time.Hour)
	for i := 0; i < n; i += per {
		var sb strings.Builder
		sb.WriteString(`INSERT INTO deliveries (id, notification_id, channel, recipient_type, recipient_target, state, partner, round_started_at, created_at, updated_at, judged_at, judgement) VALUES `)
		args := make([]any, 0, per*9)
		for j := i; j < min(i+per, n); j++ {
			if j > i {
				sb.WriteString(",")
			}
			sb.WriteString("(?, 'n-seed', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			created := t0.UnixNano() - span + int64(j)*(span/int64(n))
			state, judgement := "delivered", "good"
			switch {
			case j%50 == 0:
				state, judgement = "failed", "bad"
			case j%100 == 1:
				state, judgement = "bounced", "excluded"
			}
			ch := channels[j%len(channels)]
			args = append(args, fmt.Sprintf("dlv_%09d", j), ch, ch, fmt.Sprintf("user%d@example.com", j%5000), state,
				partners[j%len(partners)], created, created, created+int64(time.Second), created+int64(time.Second), judgement)
		}
		if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkOverview measures the UI overview's reads over n stored
// deliveries (HERALD_BENCH_DELIVERIES, default 10,000; the UI is meant to
// stay fast at 1,000,000).
func BenchmarkOverview(b *testing.B) {
	n := 10_000
	if v, err := strconv.Atoi(os.Getenv("HERALD_BENCH_DELIVERIES")); err == nil && v > 0 {
		n = v
	}
	db, _, _ := open(b)
	start := time.Now()
	seedJudged(b, db, n)
	b.Logf("seeded %d deliveries in %v", n, time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	for _, c := range []struct {
		name       string
		span, step time.Duration
	}{{"series-6h", 6 * time.Hour, 15 * time.Minute}, {"series-24h", 24 * time.Hour, time.Hour}, {"series-7d", 7 * 24 * time.Hour, 6 * time.Hour}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := db.DeliverySeries(ctx, t0.Add(-c.span), t0, c.step); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// What the SLO engine reads: a 30-day load at start, then a minute.
	b.Run("slo-load-30d", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.DeliveryJudgements(ctx, t0.Add(-30*24*time.Hour), t0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("slo-latency-load-30d", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.LatencyJudgements(ctx, "email", 5*time.Minute, t0.Add(-30*24*time.Hour), t0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("slo-minute", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.DeliveryJudgements(ctx, t0.Add(-time.Minute), t0); err != nil {
				b.Fatal(err)
			}
			if _, err := db.LatencyJudgements(ctx, "email", 5*time.Minute, t0.Add(-time.Minute), t0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("newest-failures", func(b *testing.B) {
		for b.Loop() {
			ds, err := db.ListDeliveries(ctx, sqlstore.DeliveryFilter{Judgement: herald.JudgedBad, Limit: 10})
			if err != nil || len(ds) != 10 {
				b.Fatal(err, len(ds))
			}
		}
	})
}
