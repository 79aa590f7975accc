package eventstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"herald"
	"herald/eventstore"
	"herald/eventstore/storetest"
)

func openDuckDB(t *testing.T, path string, maxColumns int) *eventstore.DuckDB {
	t.Helper()
	s, err := eventstore.Open(context.Background(), eventstore.Config{Path: path, MaxColumns: maxColumns})
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, maxColumns int) herald.EventStore {
		s := openDuckDB(t, filepath.Join(t.TempDir(), "events.duckdb"), maxColumns)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestReopen: what a write acknowledged is there after a restart, the
// catalog with it.
func TestReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.duckdb")
	s := openDuckDB(t, path, 0)
	res, err := s.Write(ctx, "Orders", []herald.Event{
		{Time: storetest.T0.Add(-time.Minute), SampleRate: 1, Fields: map[string]any{"n": int64(1)}},
		{Time: storetest.T0.Add(-time.Minute), SampleRate: 1, Fields: map[string]any{"n": 2.5, "s": "x"}},
	}, true)
	require.NoError(t, err)
	require.Equal(t, []error{nil, nil}, res.Errors)
	require.NoError(t, s.Close())

	s = openDuckDB(t, path, 0)
	defer s.Close()
	ds, err := s.Dataset(ctx, "orders")
	require.NoError(t, err)
	require.NotNil(t, ds.LastWrittenAt, "kept across the restart")
	cols, err := s.Columns(ctx, "orders")
	require.NoError(t, err)
	require.Equal(t, []herald.Column{{Name: "n", Type: herald.TypeFloat}, {Name: "s", Type: herald.TypeString}}, cols)
	d, err := s.Run(ctx, "Orders", herald.Query{Calculations: []herald.Calculation{{Op: "SUM", Column: "n"}}}, herald.RunOptions{Now: storetest.T0})
	require.NoError(t, err)
	require.Equal(t, []herald.ResultRow{{Data: map[string]any{"SUM(n)": 3.5}}}, d.Results)
	// New columns continue after the old ones.
	_, err = s.Write(ctx, "orders", []herald.Event{{Time: storetest.T0, SampleRate: 1, Fields: map[string]any{"t": true}}}, false)
	require.NoError(t, err)
	cols, err = s.Columns(ctx, "orders")
	require.NoError(t, err)
	require.Len(t, cols, 3)
}

// TestOverload: beyond MaxPending waiting events, a write is refused at
// once with EUNAVAILABLE, and nothing of it is stored.
func TestOverload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := eventstore.Open(ctx, eventstore.Config{Path: filepath.Join(t.TempDir(), "e.duckdb"), MaxPending: 2})
	require.NoError(t, err)
	defer s.Close()
	events := make([]herald.Event, 3)
	for i := range events {
		events[i] = herald.Event{Time: storetest.T0, SampleRate: 1, Fields: map[string]any{"a": "b"}}
	}
	_, err = s.Write(ctx, "x", events, true)
	require.Equal(t, herald.EUNAVAILABLE, herald.ErrorCode(err))
	_, err = s.Dataset(ctx, "x")
	require.Equal(t, herald.ENOTFOUND, herald.ErrorCode(err))
	_, err = s.Write(ctx, "x", events[:2], true)
	require.NoError(t, err)
}

// TestDerivedReopen: derived columns are kept in the catalog, and a
// restarted store evaluates them.
func TestDerivedReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.duckdb")
	s := openDuckDB(t, path, 0)
	_, err := s.Write(ctx, "orders", []herald.Event{{Time: storetest.T0.Add(-time.Minute), SampleRate: 3, Fields: map[string]any{"ms": int64(80)}}}, true)
	require.NoError(t, err)
	dc, err := s.CreateDerivedColumn(ctx, "orders", herald.DerivedColumn{Alias: "fast", Expression: "LT($ms, 100)", Description: "d"})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s = openDuckDB(t, path, 0)
	defer s.Close()
	got, err := s.DerivedColumns(ctx, "orders")
	require.NoError(t, err)
	require.Equal(t, []herald.DerivedColumn{dc}, got)
	counts, err := s.SLICounts(ctx, "orders", "fast", storetest.T0.Add(-time.Hour), storetest.T0)
	require.NoError(t, err)
	require.Equal(t, []herald.SLIMinute{{Minute: storetest.T0.Add(-time.Minute), Good: 3}}, counts)
	_, err = s.CreateDerivedColumn(ctx, "orders", herald.DerivedColumn{Alias: "fast", Expression: "true"})
	require.Equal(t, herald.ECONFLICT, herald.ErrorCode(err), "the alias is still taken")
}

// TestDerivedRegexp: a pattern Go's regexp takes but DuckDB's RE2 does not
// is refused when the derived column is created, not when it is queried.
func TestDerivedRegexp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openDuckDB(t, filepath.Join(t.TempDir(), "events.duckdb"), 0)
	defer s.Close()
	_, err := s.Write(ctx, "logs", []herald.Event{{Time: storetest.T0, SampleRate: 1, Fields: map[string]any{"msg": "x"}}}, true)
	require.NoError(t, err)
	_, err = s.CreateDerivedColumn(ctx, "logs", herald.DerivedColumn{Alias: "named", Expression: "REG_MATCH($msg, `(?<word>x)`)"})
	require.Equal(t, herald.EINVALID, herald.ErrorCode(err))
	require.ErrorContains(t, err, "at column 17: REG_MATCH")
	_, err = s.CreateDerivedColumn(ctx, "logs", herald.DerivedColumn{Alias: "named", Expression: "REG_MATCH($msg, `(?P<word>x)`)"})
	require.NoError(t, err)
}
