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
// can never grant the lease to two masters. They are judged at the
// database's clock, read after the lock (lease.go), so every process
// decides by one clock. Nothing is trusted from memory for a write: every
// read-modify-write reads its row under a lock in its own transaction
// (read committed, named, whatever the server's default).
//
// Watching: every change of the watched state bumps its revision and sends
// NOTIFY (delivered at commit, in commit order) on a channel named after
// the schema. Each Store listens on one dedicated connection and, on a
// notification, reads the state and publishes it if it is newer than what
// it has, so the Watch streams of every process see every acknowledged
// change in revision order (a slow one skips revisions, never goes back).
// Open listens before its first read, and after the listening connection
// is lost it reconnects and re-reads once: changes made meanwhile are not
// missed. There is no polling loop; a quiet connection is pinged, so one
// that died silently is replaced within seconds.
//
// Durability: a method returns success only after COMMIT returned, and
// every session sets synchronous_commit=on (whatever the server's
// default), so the commit is flushed to the WAL first. A session left
// idle inside a transaction (its process hung holding a row lock) is ended
// by the server after Options.IdleInTransactionTimeout. A SIGKILL of a settings process loses nothing it
// acknowledged; a database restart fails the calls made while it is down
// (the nodes retry them) and loses nothing committed.
//
// The schema is created and migrated by Open (schema.go).
package pgstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
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
	// callerClock: leases are judged by the callers' now (Options).
	callerClock bool
	// listenSlice, listenPing: see the constants.
	listenSlice, listenPing time.Duration
	onRelisten              func()

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

// Options tune Open. The zero value is what the settings service uses.
type Options struct {
	// CallerClock judges leases by the now each call passes instead of the
	// database's clock. Only for tests that drive time (the shared
	// storetest suite steps a fixed clock): with several processes whose
	// clocks differ it can grant the lease to a second master while the
	// first still holds it.
	CallerClock bool
	// IdleInTransactionTimeout is the server's idle_in_transaction_session_timeout
	// for this Store's sessions: a session left inside a transaction that
	// long (its process paused, dead or cut off while holding a row lock)
	// is ended by the server, releasing its locks. Zero means
	// DefaultIdleInTransactionTimeout.
	IdleInTransactionTimeout time.Duration
	// LockTimeout is the server's lock_timeout: a statement waiting that
	// long for a row lock fails with a clear error before the call's own
	// deadline (opTimeout). Zero means DefaultLockTimeout.
	LockTimeout time.Duration

	// afterListen, in tests only, runs between LISTEN and the first read.
	afterListen func()
	// listenSlice and listenPing, in tests only, replace the listener's
	// quiet-connection check times.
	listenSlice, listenPing time.Duration
	// onRelisten, in tests only, runs after each LISTEN of a reconnect.
	onRelisten func()
}

// Defaults of Options. The idle timeout is below the shortest lease TTL a
// master uses (unhealthy_interval, at least 2 s since it must exceed
// heartbeat_interval >= 1 s), so a dead lock holder cannot outlast a lease
// term; our transactions are a few statements with no wait between them,
// so a live one is never idle that long (one cut off fails its call, which
// the caller retries). The lock timeout is below
// opTimeout, so a call stuck behind a lock says so.
const (
	DefaultIdleInTransactionTimeout = 1 * time.Second
	DefaultLockTimeout              = 5 * time.Second
)

// Open is OpenWith(dsn, Options{}).
func Open(dsn string) (*Store, error) { return OpenWith(dsn, Options{}) }

// OpenWith connects to the database at dsn (a postgres:// URL; libpq
// parameters such as sslmode, search_path and pgx's pool_max_conns in its
// query), creates or migrates the schema, starts listening for changes and
// reads the state. It fails with an *UnreachableError when the server
// cannot be reached within connectTimeout, and with a *SchemaError when
// the database's schema is newer than this program's.
//
// Every session runs with synchronous_commit=on (an acknowledged write is
// flushed to the WAL whatever the server's default; the URL may not turn
// it off) and with o's idle-in-transaction and lock timeouts.
func OpenWith(dsn string, o Options) (*Store, error) {
	red := Redact(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: postgres URL %s: %w", red, err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	if err := setSessionParams(cfg.ConnConfig.RuntimeParams, o); err != nil {
		return nil, fmt.Errorf("store: postgres URL %s: %w", red, err)
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
		pool: pool, dsn: red, channel: channelName(schema), callerClock: o.CallerClock,
		listenSlice: cmp.Or(o.listenSlice, listenSlice), listenPing: cmp.Or(o.listenPing, listenPing),
		onRelisten: o.onRelisten,
		ctx:        sctx, cancel: scancel, now: time.Now, changed: make(chan struct{}),
	}
	// LISTEN before the first read: a change committed after the read is
	// then announced, and one committed before it is in what we read. In
	// the other order a change committed in between would reach neither.
	conn, err := s.listen(ctx)
	if err != nil {
		scancel()
		pool.Close()
		return nil, err
	}
	fail := func(err error) (*Store, error) {
		_ = conn.Close(context.Background())
		scancel()
		pool.Close()
		return nil, err
	}
	if o.afterListen != nil {
		o.afterListen()
	}
	st, err := s.readState(ctx, pool)
	if err != nil {
		return fail(err)
	}
	s.state = st
	if _, _, err := s.readLease(ctx); err != nil {
		return fail(err)
	}
	s.wg.Go(func() { s.listenLoop(conn) })
	return s, nil
}

// setSessionParams sets the session settings every connection starts
// with. Durability and lock release must not depend on the server's
// defaults, so they are ours; the URL may set the timeouts (their own
// Options win) but not switch synchronous_commit off.
func setSessionParams(p map[string]string, o Options) error {
	switch v := p["synchronous_commit"]; v {
	case "", "on", "remote_apply", "remote_write", "local":
		if v == "" {
			p["synchronous_commit"] = "on"
		}
	default:
		return fmt.Errorf("synchronous_commit: must be on (or remote_apply, remote_write, local) so an acknowledged write is durable, got %q", v)
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	if o.IdleInTransactionTimeout > 0 || p["idle_in_transaction_session_timeout"] == "" {
		p["idle_in_transaction_session_timeout"] = ms(cmp.Or(o.IdleInTransactionTimeout, DefaultIdleInTransactionTimeout))
	}
	if o.LockTimeout > 0 || p["lock_timeout"] == "" {
		p["lock_timeout"] = ms(cmp.Or(o.LockTimeout, DefaultLockTimeout))
	}
	return nil
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

// txOptions: read committed, named rather than left to the server's
// default. The row locks (SELECT … FOR UPDATE) are what make each
// read-modify-write serial across processes; under a stricter default
// (serializable, repeatable read) the second of two concurrent lockers
// would fail with a serialization error instead of reading what the
// first committed.
var txOptions = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// inTx runs fn in one read-committed transaction and commits. The rows fn
// reads to decide are locked by fn (SELECT … FOR UPDATE), which is what
// makes each read-modify-write serial across processes.
func (s *Store) inTx(what string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, done, err := s.begin()
	if err != nil {
		return err
	}
	defer done()
	err = pgx.BeginTxFunc(ctx, s.pool, txOptions, func(tx pgx.Tx) error { return fn(ctx, tx) })
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
