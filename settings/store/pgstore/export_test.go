package pgstore

import (
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// OpenAfterListen is OpenWith with fn run between LISTEN and the first
// read of the state: what a change committed by another process while
// this one starts looks like.
func OpenAfterListen(dsn string, o Options, fn func()) (*Store, error) {
	o.afterListen = fn
	return OpenWith(dsn, o)
}

// OpenListenChecks is OpenWith with the listener checking a quiet
// connection after slice, its ping bounded by ping.
func OpenListenChecks(dsn string, o Options, slice, ping time.Duration) (*Store, error) {
	o.listenSlice, o.listenPing = slice, ping
	return OpenWith(dsn, o)
}

// OpenOnRelisten is OpenWith with fn run after each LISTEN of the
// listener's reconnects.
func OpenOnRelisten(dsn string, o Options, fn func()) (*Store, error) {
	o.onRelisten = fn
	return OpenWith(dsn, o)
}

// Pool is the Store's connection pool, for tests that act as one of its
// sessions (a transaction left hanging).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
