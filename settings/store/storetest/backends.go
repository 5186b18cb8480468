package storetest

import (
	"testing"

	"github.com/mcsim/mcsim/settings/store"
	"github.com/mcsim/mcsim/settings/store/pgstore"
	"github.com/mcsim/mcsim/settings/store/pgstore/pgtest"
)

// Bolt is the embedded bbolt backend: a temp dir per test, one Store per
// dir at a time.
var Bolt = Backend{
	Name: "bbolt",
	New: func(t testing.TB) func() (store.Backend, error) {
		dir := t.TempDir()
		return func() (store.Backend, error) { return store.Open(dir) }
	},
}

// Postgres is the PostgreSQL backend: a fresh schema per test in the
// database of MCSIM_TEST_POSTGRES (pgtest: skipped without it, failed in
// CI); any number of Stores may share it. The suite steps a fixed clock
// through the lease rules, so leases are judged by the callers' now
// (pgstore.Options.CallerClock) rather than the database's clock; pgstore's
// own tests cover the database's clock.
var Postgres = Backend{
	Name: "postgres",
	New: func(t testing.TB) func() (store.Backend, error) {
		dsn := pgtest.Schema(t)
		return func() (store.Backend, error) { return pgstore.OpenWith(dsn, pgstore.Options{CallerClock: true}) }
	},
	Shared: true,
}

// Backends is every backend, the table the suite runs over.
var Backends = []Backend{Bolt, Postgres}
