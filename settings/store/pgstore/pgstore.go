// Package pgstore keeps the settings store in PostgreSQL: the same records
// as the embedded bbolt store (settings/store) — the settings document and
// shard count with their revision, media providers, admin tokens, the
// master lease, the fenced shard map and the pending callbacks — behind the
// same store.Backend, so several settings service processes can serve one
// database.
//
// Decisions are not written twice: lease grants and shard-map fencing are
// package coord's, judged on the lease row read (and locked, SELECT … FOR
// UPDATE) in the transaction that writes the decision, so two processes
// can never grant the lease to two masters. Nothing is trusted from memory
// for a write: every read-modify-write reads its row under a lock in its
// own transaction.
//
// Watching: every change of the watched state bumps its revision and sends
// NOTIFY (delivered at commit, in commit order) on a channel named after
// the schema. Each Store listens on one dedicated connection and, on a
// notification, reads the state and publishes it if it is newer than what
// it has, so the Watch streams of every process see every acknowledged
// change in revision order (a slow one skips revisions, never goes back).
// After the listening connection is lost it reconnects and re-reads once:
// changes made meanwhile are not missed. There is no polling loop.
//
// Durability: a method returns success only after COMMIT returned, and the
// server's synchronous_commit (on by default) means the commit is flushed
// to the WAL first. A SIGKILL of a settings process loses nothing it
// acknowledged; a database restart fails the calls made while it is down
// (the nodes retry them) and loses nothing committed.
//
// The schema is created and migrated by Open (schema.go).
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcsim/mcsim/settings/store"
)

// IsURL reports whether spec names a PostgreSQL database (a postgres:// or
// postgresql:// URL) rather than a bbolt data dir.
func IsURL(spec string) bool {
	return strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://")
}

// Redact is the URL with its password replaced, fit for logs and errors.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// opTimeout bounds one store call. A call still waiting then (the database
// is down or a lock is stuck) fails, and its caller (a node, an admin)
// retries; the bound keeps a request from hanging the service.
const opTimeout = 10 * time.Second

// connectTimeout bounds Open's first contact with the database, so a wrong
// or unreachable URL fails the start with a clear error at once.
const connectTimeout = 10 * time.Second

// defaultMaxConns is the pool size unless the URL sets pool_max_conns:
// every master's lease renewal and every coreapp's callback write is a
// transaction of its own, so pgxpool's default (4 on this machine's
// cores) would queue them behind each other.
const defaultMaxConns = 16

// Store is a store.Backend on one PostgreSQL database (and schema).
type Store struct {
	pool    *pgxpool.Pool
	dsn     string // redacted
	channel string // the NOTIFY channel of this schema

	// ctx ends the listener at Close.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// now prunes expired tokens (housekeeping); tests may replace it.
	now func() time.Time

	closeMu sync.RWMutex
	closed  bool

	// mu guards the last state and lease read, published to Latest's
	// watchers in revision order.
	mu      sync.Mutex
	state   store.State
	changed chan struct{}
	lease   store.Lease
}

var _ store.Backend = (*Store)(nil)

// UnreachableError says the database could not be reached at Open.
type UnreachableError struct {
	URL string // redacted
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("store: postgres %s is unreachable: %v (is the server running and the URL right?)", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Open connects to the database at dsn (a postgres:// URL; libpq
// parameters such as sslmode, search_path and pgx's pool_max_conns in its
// query), creates or migrates the schema, reads the state and starts
// listening for changes. It fails with an *UnreachableError when the
// server cannot be reached within connectTimeout, and with a
// *SchemaError when the database's schema is newer than this program's.
func Open(dsn string) (*Store, error) {
	red := Redact(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: postgres URL %s: %w", red, err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("store: postgres %s: %w", red, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, &UnreachableError{URL: red, Err: err}
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: postgres %s: %w", red, err)
	}
	var schema string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: postgres %s: current schema: %w", red, err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	s := &Store{
		pool: pool, dsn: red, channel: channelName(schema),
		ctx: sctx, cancel: scancel, now: time.Now, changed: make(chan struct{}),
	}
	st, err := s.readState(ctx, pool)
	if err != nil {
		scancel()
		pool.Close()
		return nil, err
	}
	s.state = st
	if _, err := s.readLease(ctx); err != nil {
		scancel()
		pool.Close()
		return nil, err
	}
	// The listener's first LISTEN is in place before Open returns, so no
	// change committed after Open is missed.
	conn, err := s.listen(ctx)
	if err != nil {
		scancel()
		pool.Close()
		return nil, err
	}
	s.wg.Go(func() { s.listenLoop(conn) })
	return s, nil
}

// channelName is the NOTIFY channel of a schema's store. Cut to
// PostgreSQL's identifier limit (63 bytes): LISTEN would cut a longer one
// silently and pg_notify would refuse it. Two schemas whose names agree in
// their first 48 bytes share a channel, which costs only extra reads: a
// notification is a hint to read, never the data.
func channelName(schema string) string {
	const maxIdent = 63
	name := "mcsim_settings_" + schema
	if len(name) > maxIdent {
		name = name[:maxIdent]
	}
	return name
}

// Close stops listening and closes the pool. State and Latest keep
// answering from the last read; writes return store.ErrClosed.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.pool.Close()
	return nil
}

// begin marks a call in progress (Close waits for none, but a call that
// started before Close finishes against the pool it saw) and gives it
// its deadline; done must be called.
func (s *Store) begin() (context.Context, func(), error) {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return nil, nil, store.ErrClosed
	}
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	return ctx, func() { cancel(); s.closeMu.RUnlock() }, nil
}

// inTx runs fn in one read-committed transaction and commits. The rows fn
// reads to decide are locked by fn (SELECT … FOR UPDATE), which is what
// makes each read-modify-write serial across processes.
func (s *Store) inTx(what string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, done, err := s.begin()
	if err != nil {
		return err
	}
	defer done()
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error { return fn(ctx, tx) })
	var pt *passThrough
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pt):
		return pt.err
	default:
		return fmt.Errorf("store: %s: %w", what, err)
	}
}

// passThrough carries an error fn decided (a refusal, the caller's own
// error) out of inTx as it is, unlike a database error, which inTx wraps.
// Either way the transaction is rolled back.
type passThrough struct{ err error }

func (p *passThrough) Error() string { return p.err.Error() }

func refuse(err error) error { return &passThrough{err: err} }
