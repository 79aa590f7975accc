package eventstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/duckdb/duckdb-go/v2"

	"herald"
)

// groupEvents is about how many events one commit takes: enough that the
// cost of a commit is shared, few enough that a commit stays short.
const groupEvents = 50_000

// writeRequest is one unit of work for a writer: events to store, a
// dataset to create, or expired events to delete.
type writeRequest struct {
	ctx    context.Context
	name   string
	events []herald.Event
	// errs has an entry per event: what the checks made before queueing
	// found wrong with it.
	errs []error
	// autoCreate creates the dataset named name if it does not exist.
	autoCreate bool
	create     *herald.Dataset
	expireAt   *time.Time
	// ddl says the request may change the catalog, so its commit must run
	// alone. Catalog entries only grow and widen, so a request found not
	// to need a change never comes to need one.
	ddl  bool
	done chan writeResponse
}

type writeResponse struct {
	errs    []error
	dataset herald.Dataset
	created bool
	deleted int64
	err     error
}

// Write implements herald.EventStore.
func (s *DuckDB) Write(ctx context.Context, name string, events []herald.Event, create bool) (herald.WriteResult, error) {
	if err := herald.ValidDatasetName(name); err != nil {
		return herald.WriteResult{}, err
	}
	r := &writeRequest{name: name, events: events, autoCreate: create, errs: make([]error, len(events))}
	// The checks that need no lock run here, in the caller's goroutine, in
	// parallel with other callers; so does the question of whether the
	// catalog must change.
	s.mu.RLock()
	d := s.datasets[herald.DatasetSlug(name)]
	s.mu.RUnlock()
	r.ddl = d == nil
	for i, e := range events {
		var change bool
		change, r.errs[i] = checkEvent(e, d)
		r.ddl = r.ddl || change
	}
	res, err := s.submit(ctx, r)
	if err != nil {
		return herald.WriteResult{}, err
	}
	return herald.WriteResult{Errors: res.errs}, nil
}

// checkEvent refuses an event with no fields, a value an Event may not
// hold, or names or strings that are not UTF-8 (the database would refuse
// it, and with it the whole commit). It also reports whether storing the
// event would add or widen a column of d (a nil d: the dataset is new).
func checkEvent(e herald.Event, d *dataset) (change bool, err error) {
	if len(e.Fields) == 0 {
		return false, herald.Errorf(herald.EINVALID, "Event has no fields.")
	}
	for name, v := range e.Fields {
		typ := herald.ValueType(v)
		switch typ {
		case "":
			return false, herald.Errorf(herald.EINVALID, "field %q: a %T is not a value an event may hold", name, v)
		case herald.TypeString:
			if !utf8.ValidString(v.(string)) {
				return false, herald.Errorf(herald.EINVALID, "field %q: the value is not valid UTF-8", name)
			}
		}
		var c *column
		if d != nil {
			c = d.cols[name]
		}
		if c == nil {
			// Names already in the catalog were checked when they came.
			if !utf8.ValidString(name) {
				return false, herald.Errorf(herald.EINVALID, "field name %q is not valid UTF-8", name)
			}
			change = true
		} else if herald.MergeType(c.typ, typ) != c.typ {
			change = true
		}
	}
	return change, nil
}

// DeleteExpired implements herald.EventStore. It also writes each
// dataset's last-written time to the catalog.
func (s *DuckDB) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.submit(ctx, &writeRequest{expireAt: &now, ddl: true})
	if err != nil {
		return 0, err
	}
	s.saveWrittenAt(ctx)
	return res.deleted, nil
}

// submit hands r to a writer and waits for its answer. It refuses with
// EUNAVAILABLE when the writers' queue is full or the store is closing.
func (s *DuckDB) submit(ctx context.Context, r *writeRequest) (writeResponse, error) {
	n := int64(len(r.events))
	if s.queued.Add(n) > int64(s.cfg.MaxPending) && n > 0 {
		s.queued.Add(-n)
		return writeResponse{}, herald.Errorf(herald.EUNAVAILABLE, "the event store is overloaded; try again shortly")
	}
	r.ctx = ctx
	r.done = make(chan writeResponse, 1)
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		s.queued.Add(-n)
		return writeResponse{}, herald.Errorf(herald.EUNAVAILABLE, "the event store is closing")
	}
	select {
	case s.writes <- r:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		s.queued.Add(-n)
		return writeResponse{}, ctx.Err()
	}
	s.closeMu.RUnlock()
	// Every queued request is answered: the writers empty the queue
	// before they stop, and nothing is queued once Close has begun.
	res := <-r.done
	return res, res.err
}

// writer commits queued requests in groups until the store stops.
func (s *DuckDB) writer(conn *sql.Conn) {
	defer s.writers.Done()
	defer conn.Close()
	for {
		var first *writeRequest
		select {
		case first = <-s.writes:
		case <-s.stop:
			for {
				select {
				case r := <-s.writes:
					s.commit(conn, []*writeRequest{r})
				default:
					return
				}
			}
		}
		group := []*writeRequest{first}
		n := len(first.events)
	drain:
		for n < groupEvents {
			select {
			case r := <-s.writes:
				group = append(group, r)
				n += len(r.events)
			default:
				break drain
			}
		}
		s.commit(conn, group)
	}
}

// commit runs a group of requests in one transaction and answers each.
func (s *DuckDB) commit(conn *sql.Conn, group []*writeRequest) {
	live := group[:0:0]
	ddl := false
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			s.answer(r, writeResponse{err: err})
			continue
		}
		live = append(live, r)
		ddl = ddl || r.ddl
	}
	if len(live) == 0 {
		return
	}
	if ddl {
		s.schema.Lock()
		defer s.schema.Unlock()
	} else {
		s.schema.RLock()
		defer s.schema.RUnlock()
	}
	ctx := context.Background()
	t := &txn{s: s, conn: conn, ddl: ddl, touched: map[string]*dataset{}, appends: map[*dataset][]herald.Event{}}
	responses := make([]writeResponse, len(live))
	err := t.run(ctx, live, responses)
	if err != nil {
		s.cfg.Logger.Error("event store write failed", "err", err, "requests", len(live))
		if _, rerr := conn.ExecContext(ctx, "ROLLBACK"); rerr != nil {
			s.cfg.Logger.Error("event store rollback failed", "err", rerr)
		}
		if ddl {
			// The working copies are dropped; read back what the
			// database holds.
			if lerr := s.load(ctx); lerr != nil {
				s.cfg.Logger.Error("event store catalog reload failed", "err", lerr)
			}
		}
		for _, r := range live {
			s.answer(r, writeResponse{err: fmt.Errorf("eventstore: write: %w", err)})
		}
		return
	}
	if ddl {
		s.mu.Lock()
		maps.Copy(s.datasets, t.touched)
		s.mu.Unlock()
	}
	for i, r := range live {
		s.answer(r, responses[i])
	}
}

func (s *DuckDB) answer(r *writeRequest, res writeResponse) {
	s.queued.Add(-int64(len(r.events)))
	r.done <- res
}

// saveWrittenAt writes to the catalog the last-written times it does not
// have yet. The catalog's copy is informational; keeping it out of the
// commits that append keeps those commits from conflicting on it.
func (s *DuckDB) saveWrittenAt(ctx context.Context) {
	s.schema.Lock()
	defer s.schema.Unlock()
	s.mu.RLock()
	all := make([]*dataset, 0, len(s.datasets))
	for _, d := range s.datasets {
		all = append(all, d)
	}
	s.mu.RUnlock()
	for _, d := range all {
		d.written.mu.Lock()
		last, saved := d.written.last, d.written.saved
		d.written.mu.Unlock()
		if !last.After(saved) {
			continue
		}
		if _, err := s.db.ExecContext(ctx, "UPDATE herald_datasets SET last_written_at = ? WHERE id = ?", last, d.id); err != nil {
			s.cfg.Logger.Error("event store: saving last_written_at failed", "dataset", d.meta.Slug, "err", err)
			continue
		}
		d.written.mu.Lock()
		d.written.saved = last
		d.written.mu.Unlock()
	}
}

// txn is one group commit in progress. A commit that may change the
// catalog (ddl) works on copies of the entries it touches, so a rollback
// leaves the cache as it was; one that only appends reads the published
// entries, which cannot change while it holds the schema lock shared.
type txn struct {
	s       *DuckDB
	conn    *sql.Conn
	ddl     bool
	touched map[string]*dataset
	appends map[*dataset][]herald.Event
}

func (t *txn) exec(ctx context.Context, query string, args ...any) error {
	_, err := t.conn.ExecContext(ctx, query, args...)
	return err
}

func (t *txn) run(ctx context.Context, group []*writeRequest, responses []writeResponse) error {
	if err := t.exec(ctx, "BEGIN TRANSACTION"); err != nil {
		return err
	}
	now := t.s.now()
	for i, r := range group {
		switch {
		case r.create != nil:
			d, created, err := t.dataset(ctx, r.create.Name, true, *r.create, now)
			if err != nil {
				return err
			}
			responses[i] = writeResponse{dataset: d.info(), created: created}
		case r.expireAt != nil:
			n, err := t.expire(ctx, *r.expireAt)
			if err != nil {
				return err
			}
			responses[i] = writeResponse{deleted: n}
		case !t.ddl:
			t.s.mu.RLock()
			d := t.s.datasets[herald.DatasetSlug(r.name)]
			t.s.mu.RUnlock()
			for j, e := range r.events {
				if r.errs[j] == nil {
					t.appends[d] = append(t.appends[d], e)
				}
			}
			responses[i] = writeResponse{errs: r.errs}
		default:
			d, _, err := t.dataset(ctx, r.name, r.autoCreate, herald.Dataset{Name: r.name}, now)
			if errors.Is(err, errNoDataset) {
				responses[i] = writeResponse{err: herald.Errorf(herald.ENOTFOUND, "dataset %q not found", r.name)}
				continue
			}
			if err != nil {
				return err
			}
			if err := t.admit(ctx, d, r.events, r.errs); err != nil {
				return err
			}
			responses[i] = writeResponse{errs: r.errs}
		}
	}
	for d, events := range t.appends {
		if err := t.append(d, events); err != nil {
			return err
		}
	}
	if err := t.exec(ctx, "COMMIT"); err != nil {
		return err
	}
	for d := range t.appends {
		d.written.set(now)
	}
	return nil
}

var errNoDataset = errors.New("no such dataset")

// dataset returns the working copy of the dataset named name, creating it
// if create is true.
func (t *txn) dataset(ctx context.Context, name string, create bool, spec herald.Dataset, now time.Time) (*dataset, bool, error) {
	slug := herald.DatasetSlug(name)
	if d := t.touched[slug]; d != nil {
		return d, false, nil
	}
	t.s.mu.RLock()
	cur := t.s.datasets[slug]
	nextID := t.s.maxID()
	t.s.mu.RUnlock()
	for _, d := range t.touched {
		nextID = max(nextID, d.id)
	}
	if cur != nil {
		d := &dataset{id: cur.id, meta: cur.meta, cols: map[string]*column{}, nextCol: cur.nextCol, written: cur.written}
		for _, c := range cur.order {
			cc := *c
			d.cols[c.name] = &cc
			d.order = append(d.order, &cc)
		}
		t.touched[slug] = d
		return d, false, nil
	}
	if !create {
		return nil, false, errNoDataset
	}
	retention := spec.RetentionDays
	if retention == 0 {
		retention = t.s.cfg.RetentionDays
	}
	d := &dataset{id: nextID + 1, cols: map[string]*column{}, written: &writtenAt{}, meta: herald.Dataset{
		Name: name, Slug: slug, Description: spec.Description, ExpandJSONDepth: spec.ExpandJSONDepth,
		CreatedAt: now, RetentionDays: retention,
	}}
	if err := t.exec(ctx, `INSERT INTO herald_datasets (id, slug, name, description, expand_json_depth, retention_days, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, d.id, slug, name, spec.Description, spec.ExpandJSONDepth, retention, now); err != nil {
		return nil, false, err
	}
	// The table name is built from herald's own integer id, never from the
	// dataset's name.
	if err := t.exec(ctx, "CREATE TABLE "+d.table()+" (__time_us BIGINT NOT NULL, __samplerate BIGINT NOT NULL)"); err != nil {
		return nil, false, err
	}
	t.touched[slug] = d
	return d, true, nil
}

func (s *DuckDB) maxID() int64 {
	var id int64
	for _, d := range s.datasets {
		id = max(id, d.id)
	}
	return id
}

// admit checks each event against the dataset's column limit, adds and
// widens columns as the events need, and queues the admitted events for
// appending. It records in errs why an event is refused.
func (t *txn) admit(ctx context.Context, d *dataset, events []herald.Event, errs []error) error {
	for i, e := range events {
		if errs[i] != nil {
			continue
		}
		fresh := 0
		for name := range e.Fields {
			if d.cols[name] == nil {
				fresh++
			}
		}
		if len(d.order)+fresh > t.s.cfg.MaxColumns {
			errs[i] = herald.Errorf(herald.EINVALID, "Dataset has too many columns.")
			continue
		}
		for name, v := range e.Fields {
			got := herald.ValueType(v)
			c := d.cols[name]
			if c == nil {
				d.nextCol++
				c = &column{name: name, physical: "c" + strconv.Itoa(d.nextCol), typ: got}
				if err := t.exec(ctx, "ALTER TABLE "+d.table()+" ADD COLUMN "+c.physical+" "+duckType(got)); err != nil {
					return err
				}
				if err := t.exec(ctx, "INSERT INTO herald_columns (dataset_id, name, physical, type, position) VALUES (?, ?, ?, ?, ?)",
					d.id, name, c.physical, got, len(d.order)); err != nil {
					return err
				}
				d.cols[name] = c
				d.order = append(d.order, c)
				continue
			}
			if merged := herald.MergeType(c.typ, got); merged != c.typ {
				if err := t.exec(ctx, "ALTER TABLE "+d.table()+" ALTER COLUMN "+c.physical+" SET DATA TYPE "+duckType(merged)); err != nil {
					return err
				}
				if err := t.exec(ctx, "UPDATE herald_columns SET type = ? WHERE dataset_id = ? AND name = ?", merged, d.id, name); err != nil {
					return err
				}
				c.typ = merged
			}
		}
		t.appends[d] = append(t.appends[d], e)
	}
	return nil
}

// append writes events to d's table with DuckDB's appender, converting
// each value to its column's final type.
func (t *txn) append(d *dataset, events []herald.Event) error {
	return rawConn(t.conn, func(dc driver.Conn) error {
		a, err := duckdb.NewAppenderFromConn(dc, "", d.table())
		if err != nil {
			return err
		}
		row := make([]driver.Value, 2+len(d.order))
		for _, e := range events {
			row[0] = e.Time.UnixMicro()
			row[1] = max(e.SampleRate, 1)
			for i, c := range d.order {
				row[2+i] = convert(e.Fields[c.name], c.typ)
			}
			if err := a.AppendRow(row...); err != nil {
				a.Close()
				return err
			}
		}
		return a.Close()
	})
}

// convert returns v as a value of a column of type typ, or nil for none.
func convert(v any, typ string) driver.Value {
	if v == nil {
		return nil
	}
	switch typ {
	case herald.TypeString:
		switch v := v.(type) {
		case string:
			return v
		case int64:
			return strconv.FormatInt(v, 10)
		case float64:
			return strconv.FormatFloat(v, 'g', -1, 64)
		case bool:
			return strconv.FormatBool(v)
		}
	case herald.TypeFloat:
		switch v := v.(type) {
		case float64:
			return v
		case int64:
			return float64(v)
		}
	}
	return v
}

// expire deletes, in every dataset, the events older than its retention.
func (t *txn) expire(ctx context.Context, now time.Time) (int64, error) {
	t.s.mu.RLock()
	all := make([]*dataset, 0, len(t.s.datasets))
	for _, d := range t.s.datasets {
		all = append(all, d)
	}
	t.s.mu.RUnlock()
	var total int64
	for _, d := range all {
		if d.meta.RetentionDays == 0 {
			continue
		}
		cutoff := now.Add(-time.Duration(d.meta.RetentionDays) * 24 * time.Hour).UnixMicro()
		res, err := t.conn.ExecContext(ctx, "DELETE FROM "+d.table()+" WHERE __time_us < ?", cutoff)
		if err != nil {
			return 0, err
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}
