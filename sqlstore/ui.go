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

// DeliverySeries returns the judgements made in [from, to) per channel,
// partner and bucket of step, ordered by bucket, channel and partner: the
// delivery success the UI charts. It reads the judged_at index.
func (s *DB) DeliverySeries(ctx context.Context, from, to time.Time, step time.Duration) ([]JudgementBucket, error) {
	if step <= 0 {
		return nil, herald.Invalid("step", "invalid", "must be positive")
	}
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
