package eventstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"herald"
	"herald/expr"
)

// Derived columns are kept in the catalog table herald_derived_columns and
// in memory, parsed, by dataset id and alias. Their expressions are
// compiled into a query only when it names them (derivedsql.go).

// maxDescription is the longest description of a derived column, in
// characters.
const maxDescription = 1023

// derived is a derived column as the store holds it. A published entry is
// never changed, only replaced.
type derived struct {
	herald.DerivedColumn
	node     expr.Node // nil if the saved expression no longer parses
	parseErr error
}

func newDerived(dc herald.DerivedColumn) *derived {
	n, err := expr.Parse(dc.Expression)
	return &derived{DerivedColumn: dc, node: n, parseErr: err}
}

// loadDerived reads the derived columns of the catalog into memory.
func (s *DuckDB) loadDerived(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, dataset_id, alias, expression, description, created_at, updated_at
		FROM herald_derived_columns`)
	if err != nil {
		return fmt.Errorf("eventstore: load derived columns: %w", err)
	}
	defer rows.Close()
	all := map[int64]map[string]*derived{}
	for rows.Next() {
		var dc herald.DerivedColumn
		var id int64
		if err := rows.Scan(&dc.ID, &id, &dc.Alias, &dc.Expression, &dc.Description, &dc.CreatedAt, &dc.UpdatedAt); err != nil {
			return fmt.Errorf("eventstore: load derived columns: %w", err)
		}
		dc.CreatedAt, dc.UpdatedAt = dc.CreatedAt.UTC(), dc.UpdatedAt.UTC()
		d := newDerived(dc)
		if d.node == nil {
			s.cfg.Logger.Warn("event store: a saved derived column no longer parses", "alias", dc.Alias, "id", dc.ID, "err", d.parseErr)
		}
		if all[id] == nil {
			all[id] = map[string]*derived{}
		}
		all[id][dc.Alias] = d
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("eventstore: load derived columns: %w", err)
	}
	s.mu.Lock()
	s.derived = all
	s.mu.Unlock()
	return nil
}

// derivedDataset returns the dataset a derived column belongs to, with
// its derived columns.
func (s *DuckDB) derivedDataset(name string) (*dataset, map[string]*derived, error) {
	if name == herald.AllDatasets {
		return nil, nil, herald.Invalid("dataset", "invalid", "a derived column belongs to one dataset: environment-wide derived columns (%s) are not supported", herald.AllDatasets)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.datasets[herald.DatasetSlug(name)]
	if d == nil {
		return nil, nil, herald.Errorf(herald.ENOTFOUND, "dataset %q not found", name)
	}
	return d, s.derived[d.id], nil
}

// byID finds a derived column of a dataset by its id.
func byID(all map[string]*derived, dataset, id string) (*derived, error) {
	for _, d := range all {
		if d.ID == id {
			return d, nil
		}
	}
	return nil, herald.Errorf(herald.ENOTFOUND, "derived column %q not found in dataset %q", id, dataset)
}

// publish replaces the derived columns of a dataset: set (nil to delete)
// the one with this alias.
func (s *DuckDB) publish(datasetID int64, alias string, d *derived) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := maps.Clone(s.derived[datasetID])
	if next == nil {
		next = map[string]*derived{}
	}
	if d == nil {
		delete(next, alias)
	} else {
		next[alias] = d
	}
	s.derived[datasetID] = next
}

// checkDerived checks a derived column's description and expression
// against the dataset d (and its other derived columns, all), and returns
// the parsed expression.
func (s *DuckDB) checkDerived(ctx context.Context, d *dataset, all map[string]*derived, dc herald.DerivedColumn) (expr.Node, error) {
	if utf8.RuneCountInString(dc.Description) > maxDescription {
		return nil, herald.Invalid("description", "invalid", "at most %d characters", maxDescription)
	}
	if strings.TrimSpace(dc.Expression) == "" {
		return nil, herald.Invalid("expression", "missing", "a derived column needs an expression")
	}
	n, err := expr.Parse(dc.Expression)
	if err != nil {
		return nil, herald.Invalid("expression", "invalid", "%v", err)
	}
	if _, err := expr.Check(n, func(name string) expr.Type {
		if c := d.cols[name]; c != nil {
			return expr.Type(c.typ)
		}
		return expr.Null
	}); err != nil {
		return nil, herald.Invalid("expression", "invalid", "%v", err)
	}
	var bad error
	expr.Walk(n, func(n expr.Node) {
		if bad != nil {
			return
		}
		switch n := n.(type) {
		case *expr.Column:
			if all[n.Name] != nil {
				bad = herald.Invalid("expression", "invalid", "at column %d: $%s is a derived column; an expression reads event fields only", n.At, n.Name)
			}
		case *expr.Call:
			if n.Name != "REG_MATCH" {
				return
			}
			// Go's regular expressions and DuckDB's are both RE2, but
			// ask DuckDB, which runs them.
			lit := n.Args[1].(*expr.Literal)
			var ok bool
			if err := s.db.QueryRowContext(ctx, "SELECT regexp_matches(CAST(? AS VARCHAR), CAST(? AS VARCHAR))", "", lit.Value).Scan(&ok); err != nil {
				bad = herald.Invalid("expression", "invalid", "at column %d: REG_MATCH: the regular expression is not one herald can run", lit.At)
				if ctx.Err() != nil {
					bad = ctx.Err()
				}
			}
		}
	})
	if bad != nil {
		return nil, bad
	}
	return n, nil
}

// CreateDerivedColumn implements herald.EventStore.
func (s *DuckDB) CreateDerivedColumn(ctx context.Context, dataset string, dc herald.DerivedColumn) (herald.DerivedColumn, error) {
	s.derivedMu.Lock()
	defer s.derivedMu.Unlock()
	d, all, err := s.derivedDataset(dataset)
	if err != nil {
		return herald.DerivedColumn{}, err
	}
	switch n := utf8.RuneCountInString(dc.Alias); {
	case strings.TrimSpace(dc.Alias) == "":
		return herald.DerivedColumn{}, herald.Invalid("alias", "missing", "a derived column needs an alias")
	case n > 255 || !utf8.ValidString(dc.Alias):
		return herald.DerivedColumn{}, herald.Invalid("alias", "invalid", "at most 255 characters of UTF-8")
	case d.cols[dc.Alias] != nil:
		return herald.DerivedColumn{}, herald.Invalid("alias", "invalid", "dataset %q has a column named %q; a derived column needs another name", d.meta.Name, dc.Alias)
	case all[dc.Alias] != nil:
		return herald.DerivedColumn{}, &herald.Error{Code: herald.ECONFLICT,
			Message: fmt.Sprintf("dataset %q already has a derived column with alias %q", d.meta.Name, dc.Alias),
			Fields:  []herald.FieldError{{Field: "alias", Code: "already_exists", Description: "another derived column of the dataset has this alias"}}}
	}
	n, err := s.checkDerived(ctx, d, all, dc)
	if err != nil {
		return herald.DerivedColumn{}, err
	}
	now := s.now().Truncate(time.Microsecond) // as the catalog keeps it
	dc.ID, dc.CreatedAt, dc.UpdatedAt = herald.NewID("dc_", now), now, now
	if _, err := s.db.ExecContext(ctx, `INSERT INTO herald_derived_columns
		(id, dataset_id, alias, expression, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		dc.ID, d.id, dc.Alias, dc.Expression, dc.Description, now, now); err != nil {
		return herald.DerivedColumn{}, fmt.Errorf("eventstore: create derived column: %w", err)
	}
	s.publish(d.id, dc.Alias, &derived{DerivedColumn: dc, node: n})
	return dc, nil
}

// DerivedColumns implements herald.EventStore.
func (s *DuckDB) DerivedColumns(_ context.Context, dataset string) ([]herald.DerivedColumn, error) {
	_, all, err := s.derivedDataset(dataset)
	if err != nil {
		return nil, err
	}
	out := make([]herald.DerivedColumn, 0, len(all))
	for _, d := range all {
		out = append(out, d.DerivedColumn)
	}
	slices.SortFunc(out, func(a, b herald.DerivedColumn) int { return strings.Compare(a.Alias, b.Alias) })
	return out, nil
}

// DerivedColumn implements herald.EventStore.
func (s *DuckDB) DerivedColumn(_ context.Context, dataset, id string) (herald.DerivedColumn, error) {
	_, all, err := s.derivedDataset(dataset)
	if err != nil {
		return herald.DerivedColumn{}, err
	}
	d, err := byID(all, dataset, id)
	if err != nil {
		return herald.DerivedColumn{}, err
	}
	return d.DerivedColumn, nil
}

// UpdateDerivedColumn implements herald.EventStore.
func (s *DuckDB) UpdateDerivedColumn(ctx context.Context, dataset string, dc herald.DerivedColumn) (herald.DerivedColumn, error) {
	s.derivedMu.Lock()
	defer s.derivedMu.Unlock()
	d, all, err := s.derivedDataset(dataset)
	if err != nil {
		return herald.DerivedColumn{}, err
	}
	old, err := byID(all, dataset, dc.ID)
	if err != nil {
		return herald.DerivedColumn{}, err
	}
	if dc.Alias != "" && dc.Alias != old.Alias {
		return herald.DerivedColumn{}, herald.Invalid("alias", "invalid", "the alias of a derived column cannot change (it is %q)", old.Alias)
	}
	n, err := s.checkDerived(ctx, d, all, dc)
	if err != nil {
		return herald.DerivedColumn{}, err
	}
	now := s.now().Truncate(time.Microsecond)
	dc.Alias, dc.CreatedAt, dc.UpdatedAt = old.Alias, old.CreatedAt, now
	if _, err := s.db.ExecContext(ctx, `UPDATE herald_derived_columns SET expression = ?, description = ?, updated_at = ? WHERE id = ?`,
		dc.Expression, dc.Description, now, dc.ID); err != nil {
		return herald.DerivedColumn{}, fmt.Errorf("eventstore: update derived column: %w", err)
	}
	s.publish(d.id, dc.Alias, &derived{DerivedColumn: dc, node: n})
	return dc, nil
}

// DeleteDerivedColumn implements herald.EventStore.
func (s *DuckDB) DeleteDerivedColumn(ctx context.Context, dataset, id string) error {
	s.derivedMu.Lock()
	defer s.derivedMu.Unlock()
	d, all, err := s.derivedDataset(dataset)
	if err != nil {
		return err
	}
	old, err := byID(all, dataset, id)
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM herald_derived_columns WHERE id = ?`, id); err != nil {
		return fmt.Errorf("eventstore: delete derived column: %w", err)
	}
	s.publish(d.id, old.Alias, nil)
	return nil
}

// SLICounts implements herald.EventStore.
func (s *DuckDB) SLICounts(ctx context.Context, dataset, alias string, start, end time.Time) ([]herald.SLIMinute, error) {
	d, all, err := s.derivedDataset(dataset)
	if err != nil {
		return nil, err
	}
	dc := all[alias]
	if dc == nil {
		return nil, herald.Invalid("alias", "invalid", "dataset %q has no derived column with alias %q", d.meta.Name, alias)
	}
	src := source{table: d.table(), derived: &sqlb{}}
	typ, err := derivedColumn(src.derived, d, dc, physicalName(0))
	if err != nil {
		return nil, err
	}
	if typ != herald.TypeBoolean {
		return nil, herald.Invalid("alias", "invalid", "derived column %q is a %s, not a boolean: an SLI is true, false or null", alias, typ)
	}
	var out []herald.SLIMinute
	err = s.scan(ctx, sliCounts(src, physicalName(0), start, end), func(row []any) {
		m, _ := row[0].(int64)
		good, _ := row[1].(int64)
		bad, _ := row[2].(int64)
		excluded, _ := row[3].(int64)
		out = append(out, herald.SLIMinute{Minute: time.UnixMicro(m * 60_000_000).UTC(), Good: good, Bad: bad, Excluded: excluded})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
