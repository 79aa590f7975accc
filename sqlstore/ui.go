package sqlstore

import (
	"context"
	"fmt"
	"time"

	"herald"
)

// JudgementBucket is how the deliveries of one channel and partner judged
// in one time bucket came out.
type JudgementBucket struct {
	Start    time.Time
	Channel  string
	Partner  string
	Good     int64
	Bad      int64
	Excluded int64
}

// seriesKey names one closed bucket of DeliverySeries.
type seriesKey struct {
	start int64 // Unix ns
	step  time.Duration
}

// seriesSettled is how long after a bucket ends its judgements are taken
// as final: a transaction that stamped a judgement just before the end may
// still be committing.
const seriesSettled = time.Minute

// maxSeriesBuckets bounds the cache of closed buckets.
const maxSeriesBuckets = 20_000

// DeliverySeries returns the judgements made in [from, to) per channel,
// partner and bucket of step (from a multiple of step), ordered by bucket,
// channel and partner: the delivery success the UI charts. Judgements are
// only ever stamped with the time they are made, so a bucket that ended
// more than a minute ago never changes: those are computed once and kept,
// and each call reads only the buckets still open.
func (s *DB) DeliverySeries(ctx context.Context, from, to time.Time, step time.Duration) ([]JudgementBucket, error) {
	if step <= 0 || !from.Before(to) {
		return nil, herald.Invalid("step", "invalid", "want a positive step and from before to")
	}
	settled := time.Unix(0, s.now()).Add(-seriesSettled)
	var out []JudgementBucket
	missing := from // the first bucket not found in the cache
	s.seriesMu.Lock()
	for b := from; b.Before(to) && !b.Add(step).After(settled); b = b.Add(step) {
		cached, ok := s.series[seriesKey{b.UnixNano(), step}]
		if !ok {
			break
		}
		out = append(out, cached...)
		missing = b.Add(step)
	}
	s.seriesMu.Unlock()
	if !missing.Before(to) {
		return out, nil
	}
	fresh, err := s.deliverySeries(ctx, missing, to, step)
	if err != nil {
		return nil, err
	}
	s.seriesMu.Lock()
	if s.series == nil || len(s.series) > maxSeriesBuckets {
		s.series = map[seriesKey][]JudgementBucket{}
	}
	for b := missing; b.Before(to) && !b.Add(step).After(settled); b = b.Add(step) {
		var in []JudgementBucket
		for _, j := range fresh {
			if j.Start.Equal(b) {
				in = append(in, j)
			}
		}
		s.series[seriesKey{b.UnixNano(), step}] = in
	}
	s.seriesMu.Unlock()
	return append(out, fresh...), nil
}

func (s *DB) deliverySeries(ctx context.Context, from, to time.Time, step time.Duration) ([]JudgementBucket, error) {
	rows, err := s.QueryContext(ctx, `SELECT (judged_at - ?) / ? AS b, channel, partner,
		SUM(judgement = 'good'), SUM(judgement = 'bad'), SUM(judgement = 'excluded')
		FROM deliveries WHERE judged_at >= ? AND judged_at < ? GROUP BY b, channel, partner ORDER BY b, channel, partner`,
		from.UnixNano(), int64(step), from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: delivery series: %w", err)
	}
	defer rows.Close()
	var out []JudgementBucket
	for rows.Next() {
		var j JudgementBucket
		var b int64
		if err := rows.Scan(&b, &j.Channel, &j.Partner, &j.Good, &j.Bad, &j.Excluded); err != nil {
			return nil, fmt.Errorf("sqlstore: delivery series: %w", err)
		}
		j.Start = from.Add(time.Duration(b) * step).UTC()
		out = append(out, j)
	}
	return out, rows.Err()
}
