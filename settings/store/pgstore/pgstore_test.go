package pgstore_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcsim/mcsim/settings/store"
	"github.com/mcsim/mcsim/settings/store/pgstore"
	"github.com/mcsim/mcsim/settings/store/pgstore/pgtest"
	"github.com/mcsim/mcsim/settings/store/storetest"
)

// The behaviour suite runs in settings/store/storetest; these are what only
// PostgreSQL has: the schema's versions and the URL.

func TestOpenMigratesOnceAndReopens(t *testing.T) {
	dsn := pgtest.Schema(t)
	for range 2 {
		s, err := pgstore.Open(dsn)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
	}
	if v := version(t, dsn); v != pgstore.SchemaVersion() {
		t.Fatalf("recorded schema version %d, want %d", v, pgstore.SchemaVersion())
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	dsn := pgtest.Schema(t)
	s, err := pgstore.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	exec(t, dsn, `INSERT INTO mcsim_schema_migrations (version) VALUES ($1)`, pgstore.SchemaVersion()+1)
	_, err = pgstore.Open(dsn)
	var se *pgstore.SchemaError
	if !errors.As(err, &se) || se.Found != pgstore.SchemaVersion()+1 || !strings.Contains(err.Error(), "newer than this mcsim's") {
		t.Fatalf("Open on a newer schema = %v, want a SchemaError naming both versions", err)
	}
}

func TestOlderSchemaIsMigrated(t *testing.T) {
	dsn := pgtest.Schema(t)
	// Version 0: the migrations table alone, as an interrupted first start
	// would leave it if DDL were not transactional.
	exec(t, dsn, `CREATE TABLE mcsim_schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`)
	s, err := pgstore.Open(dsn)
	if err != nil {
		t.Fatalf("Open on schema version 0: %v", err)
	}
	defer s.Close()
	if st := s.State(); st.Shards != 1 || st.Revision != 0 {
		t.Fatalf("state after migration = %+v", st)
	}
}

func TestUnreachableIsNamed(t *testing.T) {
	// Port 1 on loopback: nothing listens there.
	_, err := pgstore.Open("postgres://nobody:pw@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	var ue *pgstore.UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("Open on a closed port = %v, want an UnreachableError", err)
	}
	if strings.Contains(err.Error(), ":pw@") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("error %q must name the server and hide the password", err)
	}
}

func TestIsURL(t *testing.T) {
	for spec, want := range map[string]bool{
		"postgres://u@h/db": true, "postgresql://u@h/db": true,
		"./.mcsim": false, "/var/lib/mcsim": false, "mysql://u@h/db": false,
	} {
		if got := pgstore.IsURL(spec); got != want {
			t.Errorf("IsURL(%q) = %v, want %v", spec, got, want)
		}
	}
}

func exec(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func version(t *testing.T, dsn string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v int
	if err := conn.QueryRow(context.Background(), `SELECT max(version) FROM mcsim_schema_migrations`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestConnectionsLostAsInARestart: every connection of two Stores is
// terminated by the server (what a database restart does to them). Calls
// during the loss may fail and are retried, as nodes do; afterwards a
// change through A reaches B's watcher (its listener reconnected and
// re-read), and nothing acknowledged before is lost.
func TestConnectionsLostAsInARestart(t *testing.T) {
	dsn := pgtest.Schema(t)
	a, err := pgstore.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := pgstore.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	before, err := a.UpdateApplication(storetest.Bump)
	if err != nil {
		t.Fatal(err)
	}
	if n := pgtest.TerminateConnections(t, dsn); n < 2 {
		t.Fatalf("%d connections ended, want at least the two listeners", n)
	}

	_, changed := b.Latest()
	var (
		after    store.State
		failures int
	)
	for {
		after, err = a.UpdateApplication(storetest.Bump)
		if err == nil {
			break
		}
		if failures++; failures > 20 {
			t.Fatalf("still failing after %d retries: %v", failures, err)
		}
	}
	t.Logf("%d failed calls before the pool reconnected", failures)
	if after.Revision != before.Revision+1 {
		t.Fatalf("revision after the loss = %d, want %d", after.Revision, before.Revision+1)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("B's watcher never saw the change made after the connections were lost")
	}
	if st, _ := b.Latest(); st.Revision != after.Revision {
		t.Fatalf("B's Latest = %d, want %d", st.Revision, after.Revision)
	}
}

// TestLongSchemaName: a schema name at PostgreSQL's 63-byte limit still
// gets its watchers notified (the channel name is cut to fit).
func TestLongSchemaName(t *testing.T) {
	base := pgtest.Schema(t)
	long := "s" + strings.Repeat("x", 62)
	exec(t, base, `CREATE SCHEMA `+long)
	t.Cleanup(func() { exec(t, base, `DROP SCHEMA `+long+` CASCADE`) })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", long)
	u.RawQuery = q.Encode()
	dsn := u.String()
	a, err := pgstore.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := pgstore.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, changed := b.Latest()
	if _, err := a.UpdateApplication(storetest.Bump); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification on a 63-byte schema's channel")
	}
}
