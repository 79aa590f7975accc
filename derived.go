package herald

import "time"

// DerivedColumn is a column computed from each event of a dataset by an
// expression in Honeycomb's derived-column language (reference:
// honeycomb-api.md §6; the language herald evaluates is in
// docs/derived-columns.md). Queries name it by its alias wherever they
// may name a column; a boolean one is an SLI.
type DerivedColumn struct {
	ID string `json:"id"`
	// Alias is unique in its dataset and never changes: 1–255
	// characters, and not the name of one of the dataset's columns.
	Alias      string `json:"alias"`
	Expression string `json:"expression"`
	// Description has at most 1023 characters.
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// SLIMinute counts the events of one minute by what an SLI made of them,
// each event weighted by its sample rate.
type SLIMinute struct {
	// Minute is the start of the minute, in UTC.
	Minute time.Time
	// Good counts the events the SLI found true, Bad those it found
	// false, and Excluded those it found null.
	Good, Bad, Excluded int64
}
