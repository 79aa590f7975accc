package herald

import (
	"context"
	"strings"
	"time"
)

// Event is one event as herald stores it: when it happened, how many
// events it stands for, and its fields.
//
// Field values are string, int64, float64 or bool; nothing else. Decoders
// turn nested objects and arrays into their JSON text and drop nulls.
type Event struct {
	Time time.Time
	// SampleRate is how many events this one stands for; at least 1.
	SampleRate int64
	Fields     map[string]any
}

// Limits on what an event may hold. They follow Honeycomb's documented
// limits, so a client that works there works here.
const (
	// MaxEventBytes is the largest event, as uncompressed JSON.
	MaxEventBytes = 1_000_000
	// MaxEventFields is the most fields one event may have.
	MaxEventFields = 2000
	// MaxStringBytes is the longest string value; longer strings are
	// refused, never truncated.
	MaxStringBytes = 64 * 1024
)

// Column types. A column takes the type of the first value it sees. An
// integer column that meets a float becomes a float column; any other
// disagreement makes it a string column, its earlier values kept as their
// text. Nothing is dropped.
const (
	TypeString  = "string"
	TypeInteger = "integer"
	TypeFloat   = "float"
	TypeBoolean = "boolean"
)

// ValueType returns the column type of an event field value, or "" for a
// value an Event may not hold.
func ValueType(v any) string {
	switch v.(type) {
	case string:
		return TypeString
	case int64:
		return TypeInteger
	case float64:
		return TypeFloat
	case bool:
		return TypeBoolean
	}
	return ""
}

// MergeType returns the type a column of type have becomes when it meets
// a value of type got.
func MergeType(have, got string) string {
	switch {
	case have == got:
		return have
	case have == TypeInteger && got == TypeFloat, have == TypeFloat && got == TypeInteger:
		return TypeFloat
	}
	return TypeString
}

// AllDatasets is the dataset name that means every dataset, for queries.
const AllDatasets = "__all__"

// Dataset is a named set of events, in Honeycomb's shape.
type Dataset struct {
	Name        string `json:"name"`
	Slug        string `json:"slug"`
	Description string `json:"description"`
	// ExpandJSONDepth is kept for compatibility; herald stores nested
	// JSON as its text.
	ExpandJSONDepth     int        `json:"expand_json_depth"`
	RegularColumnsCount int        `json:"regular_columns_count"`
	CreatedAt           time.Time  `json:"created_at"`
	LastWrittenAt       *time.Time `json:"last_written_at"`
	// RetentionDays is how long events are kept; herald's own field.
	RetentionDays int `json:"retention_days"`
}

// Column is one column of a dataset.
type Column struct {
	Name string `json:"key_name"`
	Type string `json:"type"`
}

// DatasetSlug returns the slug of a dataset name: lower case, with every
// character other than a–z and 0–9 replaced by "-". Dataset names are
// case-insensitive because their slugs are.
func DatasetSlug(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// ValidDatasetName returns an EINVALID error unless name can name a
// dataset: 1–255 characters, no slash, not the reserved __all__ or
// __deliveries__.
func ValidDatasetName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return Invalid("name", "missing", "a dataset needs a name")
	case len(name) > 255:
		return Invalid("name", "invalid", "a dataset name has at most 255 characters")
	case strings.Contains(name, "/"):
		return Invalid("name", "invalid", "a dataset name may not contain a slash")
	case strings.EqualFold(name, AllDatasets):
		return Invalid("name", "invalid", "%s is reserved: it means every dataset", AllDatasets)
	case strings.EqualFold(name, DeliveryDataset):
		return Invalid("name", "invalid", "%s is reserved: it holds herald's delivery SLOs", DeliveryDataset)
	}
	return nil
}

// RunOptions says how to run a query.
type RunOptions struct {
	// Now is the end of relative time ranges.
	Now time.Time
	// Series asks for the time series beside the results.
	Series bool
}

// WriteResult says what became of each event of a Write, by position.
type WriteResult struct {
	// Errors has one entry per event: nil if it was stored, else why not
	// (an *Error).
	Errors []error
}

// EventStore keeps events and answers queries over them. Implementations
// are safe for concurrent use.
type EventStore interface {
	// Write stores events in the dataset named name, creating the dataset
	// first if create is true. When it returns a nil error, every event
	// without an error in the result is on disk. Events are refused one
	// by one (an event that would take the dataset over its column limit,
	// say); a returned error means none was stored. Returns ENOTFOUND if
	// the dataset does not exist and create is false, EUNAVAILABLE if the
	// store is overloaded or closed.
	Write(ctx context.Context, name string, events []Event, create bool) (WriteResult, error)

	// CreateDataset creates a dataset, or returns the existing one with
	// created false.
	CreateDataset(ctx context.Context, d Dataset) (ds Dataset, created bool, err error)
	// Dataset returns the dataset with this name or slug, or ENOTFOUND.
	Dataset(ctx context.Context, name string) (Dataset, error)
	// Datasets lists the datasets, by name.
	Datasets(ctx context.Context) ([]Dataset, error)
	// Columns lists a dataset's columns, by name; ENOTFOUND if it does
	// not exist.
	Columns(ctx context.Context, name string) ([]Column, error)

	// Run answers q over the dataset named name (or AllDatasets). Returns
	// EINVALID for a query that breaks a rule and ENOTFOUND for an
	// unknown dataset.
	Run(ctx context.Context, name string, q Query, opt RunOptions) (*QueryData, error)

	// CreateDerivedColumn adds a derived column to the dataset and returns
	// it with its id and times. Returns ENOTFOUND for an unknown dataset,
	// EINVALID for __all__, an alias out of rules (or the name of one of
	// the dataset's columns) or an expression that does not parse or
	// check (the message gives the position), ECONFLICT if the dataset
	// has a derived column with that alias.
	CreateDerivedColumn(ctx context.Context, dataset string, dc DerivedColumn) (DerivedColumn, error)
	// DerivedColumns lists a dataset's derived columns, by alias;
	// ENOTFOUND for an unknown dataset.
	DerivedColumns(ctx context.Context, dataset string) ([]DerivedColumn, error)
	// DerivedColumn returns the dataset's derived column with this id, or
	// ENOTFOUND.
	DerivedColumn(ctx context.Context, dataset, id string) (DerivedColumn, error)
	// UpdateDerivedColumn replaces the expression and description of the
	// derived column dc.ID and returns it. Returns ENOTFOUND if there is
	// none, EINVALID if dc.Alias is set and differs (aliases never
	// change) or for an expression that does not parse or check.
	UpdateDerivedColumn(ctx context.Context, dataset string, dc DerivedColumn) (DerivedColumn, error)
	// DeleteDerivedColumn deletes the derived column, or returns
	// ENOTFOUND.
	DeleteDerivedColumn(ctx context.Context, dataset, id string) error
	// SLICounts counts, per whole minute of event time in [start, end),
	// the events for which the derived column alias is true (good),
	// false (bad) and null (excluded), each weighted by its sample rate.
	// Minutes without events are left out; minutes are in order. Returns
	// ENOTFOUND for an unknown dataset and EINVALID unless alias names a
	// boolean derived column of it.
	SLICounts(ctx context.Context, dataset, alias string, start, end time.Time) ([]SLIMinute, error)

	// DeleteExpired deletes the events each dataset's retention no longer
	// keeps at now, and returns how many.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
}
