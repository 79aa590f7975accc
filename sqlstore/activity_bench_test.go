package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"herald"
	"herald/clock"
	"herald/sqlstore"
)

// activitySeed picks the seeded rows' values from a fixed sequence, so
// runs compare.
type activitySeed struct{ rng *rand.Rand }

// pick returns one of order, each as likely as its weight (of 100).
func (s *activitySeed) pick(weights map[string]int, order []string) string {
	roll := s.rng.IntN(100)
	for _, k := range order {
		if roll -= weights[k]; roll < 0 {
			return k
		}
	}
	return order[len(order)-1]
}

// seedActivity stores n deliveries spread over the 30 days before t0,
// straight into the tables, hundreds of rows per statement in one
// transaction: one notification per delivery, except that one in eight
// notifications is a trigger's (40 triggers) with one to three
// recipients. Email carries 85 % of them over three partners; 3 % fail,
// 2 % bounce, 1 % are dropped or unconfirmed; those of the last hour are
// still on their way. 30 % go to 20 team addresses, the rest to 50,000
// people.
func seedActivity(b *testing.B, db *sqlstore.DB, n int) {
	b.Helper()
	ctx := context.Background()
	s := &activitySeed{rng: rand.New(rand.NewPCG(1, 2))}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	const per = 400
	var nb, dlb strings.Builder
	var nargs, dargs []any
	flush := func() {
		if len(nargs) > 0 {
			if _, err := tx.ExecContext(ctx, nb.String(), nargs...); err != nil {
				b.Fatal(err)
			}
		}
		if len(dargs) > 0 {
			if _, err := tx.ExecContext(ctx, dlb.String(), dargs...); err != nil {
				b.Fatal(err)
			}
		}
		nb.Reset()
		dlb.Reset()
		nargs, dargs = nargs[:0], dargs[:0]
	}
	channels := map[string]int{"email": 85, "webhook": 8, "slack": 5, "pagerduty": 2}
	channelOrder := []string{"email", "webhook", "slack", "pagerduty"}
	emailPartners := map[string]int{"sendgrid-main": 60, "postmark-backup": 25, "ses-eu": 15}
	partnerOrder := []string{"sendgrid-main", "postmark-backup", "ses-eu"}
	span := int64(30 * 24 * time.Hour)
	start := t0.UnixNano() - span
	step := span / int64(n)
	recent := t0.Add(-time.Hour).UnixNano()
	for i, j := 0, 0; j < n; i++ {
		created := start + int64(j)*step
		nid := fmt.Sprintf("ntf_%09d", i)
		recipients, trigger := 1, ""
		md, alert := "{}", ""
		if i%8 == 0 {
			trigger = fmt.Sprintf("trg_%02d", s.rng.IntN(40))
			recipients = 1 + s.rng.IntN(3)
			m, _ := json.Marshal(map[string]string{herald.MetaTriggerID: trigger})
			md, alert = string(m), `{"dataset":"web","summary":"latency over 2s"}`
		}
		if nb.Len() == 0 {
			nb.WriteString(`INSERT INTO notifications (id, idempotency_key, request_hash, subject, text_body, html_body, metadata, recipients, trace_parent, created_at, alert) VALUES `)
		} else {
			nb.WriteString(",")
		}
		nb.WriteString("(?, NULL, '', ?, 't', '', ?, '[]', '', ?, ?)")
		nargs = append(nargs, nid, fmt.Sprintf("notification %d", i), md, created, alert)
		for r := 0; r < recipients && j < n; r, j = r+1, j+1 {
			ch := s.pick(channels, channelOrder)
			partner, target := ch, fmt.Sprintf("dst_%04d", s.rng.IntN(200))
			if ch == "email" {
				partner = s.pick(emailPartners, partnerOrder)
				if s.rng.IntN(100) < 30 {
					target = fmt.Sprintf("team%02d@example.com", s.rng.IntN(20))
				} else {
					target = fmt.Sprintf("user%05d@example.com", s.rng.IntN(50_000))
				}
			}
			var state herald.DeliveryState
			switch roll := s.rng.IntN(1000); {
			case created > recent:
				state = []herald.DeliveryState{herald.StateQueued, herald.StateSending, herald.StateAccepted}[s.rng.IntN(3)]
			case roll < 30:
				state = herald.StateFailed
			case roll < 50:
				state = herald.StateBounced
			case roll < 55:
				state = herald.StateDropped
			case roll < 60:
				state = herald.StateUnconfirmed
			default:
				state = herald.StateDelivered
			}
			if state == herald.StateQueued {
				partner = ""
			}
			if dlb.Len() == 0 {
				dlb.WriteString(`INSERT INTO deliveries (id, notification_id, channel, recipient_type, recipient_target, state, partner, attempts, round_started_at, created_at, updated_at) VALUES `)
			} else {
				dlb.WriteString(",")
			}
			dlb.WriteString("(?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)")
			dargs = append(dargs, herald.NewID("dlv_", time.Unix(0, created)), nid, ch, ch, target, state, partner, created, created, created+int64(2*time.Second))
		}
		if len(dargs) >= per*10 {
			flush()
		}
	}
	flush()
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkActivity1M measures the activity list's first page and a page
// 25 days back under each kind of filter, over HERALD_BENCH_DELIVERIES
// stored deliveries (default 10,000, so CI stays fast; the list is meant to
// stay fast at 1,000,000).
func BenchmarkActivity1M(b *testing.B) {
	n := 10_000
	if v, err := strconv.Atoi(os.Getenv("HERALD_BENCH_DELIVERIES")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(b.TempDir(), "herald.db"), clock.NewFake(t0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	began := time.Now()
	seedActivity(b, db, n)
	b.Logf("seeded %d deliveries in %v", n, time.Since(began).Round(time.Millisecond))
	deep := &sqlstore.ActivityCursor{CreatedAt: t0.Add(-25 * 24 * time.Hour)}
	for _, c := range []struct {
		name string
		f    sqlstore.ActivityFilter
	}{
		{"all", sqlstore.ActivityFilter{}},
		{"state=failed", sqlstore.ActivityFilter{State: herald.StateFailed}},
		{"partner", sqlstore.ActivityFilter{Partner: "postmark-backup"}},
		{"recipient", sqlstore.ActivityFilter{Recipient: "Team07@Example.com"}},
		{"trigger", sqlstore.ActivityFilter{TriggerID: "trg_07"}},
		{"channel+state", sqlstore.ActivityFilter{Channel: "slack", State: herald.StateFailed}},
		// Matches nothing: reads its whole window of the leading index.
		{"no-match-combination", sqlstore.ActivityFilter{State: herald.StateDelivered, Partner: "sendgrid-main", Channel: "pagerduty"}},
	} {
		for _, page := range []struct {
			name   string
			before *sqlstore.ActivityCursor
		}{{"first", nil}, {"deep", deep}} {
			f := c.f
			f.Before = page.before
			b.Run(c.name+"/"+page.name, func(b *testing.B) {
				rows := 0
				for b.Loop() {
					p, err := db.Activity(ctx, f)
					if err != nil {
						b.Fatal(err)
					}
					rows = len(p.Deliveries)
				}
				b.ReportMetric(float64(rows), "rows/page")
			})
		}
	}
}
