package herald

import "time"

// BudgetPoint is how much of an SLO's error budget was left at one
// instant of its current period: one point of its burn-down.
type BudgetPoint struct {
	At time.Time `json:"at"`
	// Remaining is the percentage of the period's budget left at At: 100
	// before the first bad judgement, 0 when spent, negative when
	// overspent. It is never NaN: with no judgements it is 100.
	Remaining float64 `json:"remaining"`
}
