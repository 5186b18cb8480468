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
// CI); any number of Stores may share it.
var Postgres = Backend{
	Name: "postgres",
	New: func(t testing.TB) func() (store.Backend, error) {
		dsn := pgtest.Schema(t)
		return func() (store.Backend, error) { return pgstore.Open(dsn) }
	},
	Shared: true,
}

// Backends is every backend, the table the suite runs over.
var Backends = []Backend{Bolt, Postgres}
