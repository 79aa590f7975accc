package notify

import (
	"context"
	"time"

	"herald"
)

// BurnDown returns how o's error budget was spent over its current
// period: points instants evenly spaced, each on a whole minute, from the
// start of the period's window to its end (the minute up to which its
// judgements are complete, as Status reads them). At each instant t the
// budget left is
//
//	100 · (1 − bad[start, t) / ((1 − target) · total[start, end)))
//
// so the budget is that of the whole window and the last point is Status's
// BudgetRemaining. With no judgements in the window every point is 100.
// points below 2 count as 2; there is at most one point per minute. It
// loads o's judgements first if o has not been evaluated yet, and returns
// the errors of the stores it reads. Safe for concurrent use.
func (s *SLOs) BurnDown(ctx context.Context, o herald.SLO, points int) ([]herald.BudgetPoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	run, err := s.current(ctx, o)
	if err != nil {
		return nil, err
	}
	period := o.Period()
	minutes := int64(period / time.Minute)
	points = int(min(max(int64(points), 2), minutes+1))
	end := run.loadedTo
	start := end.Add(-period)
	budget := (1 - o.Target()) * float64(run.bkt.Sum(end, period).Total())
	out := make([]herald.BudgetPoint, points)
	for i := range out {
		t := start.Add(time.Duration(int64(i)*minutes/int64(points-1)) * time.Minute)
		out[i] = herald.BudgetPoint{At: t, Remaining: 100}
		if budget > 0 {
			bad := run.bkt.Sum(t, t.Sub(start)).Bad
			out[i].Remaining = round(100 * (1 - float64(bad)/budget))
		}
	}
	return out, nil
}
