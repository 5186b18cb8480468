// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema in the database named by the environment variable
// MCSIM_TEST_POSTGRES (a postgres:// URL), dropped when the test ends.
//
// Without MCSIM_TEST_POSTGRES a test skips, saying how to run it; with
// MCSIM_CI set (as .ci/run does) it fails instead, so CI never passes
// without having run the PostgreSQL tests. An unreachable database fails
// the test either way. To run them locally:
//
//	export MCSIM_TEST_POSTGRES=$(scripts/test-postgres.sh start)
//	go test ./settings/...
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN and EnvCI are the environment variables read here.
const (
	EnvDSN = "MCSIM_TEST_POSTGRES"
	EnvCI  = "MCSIM_CI"
)

// DSN returns the database URL of MCSIM_TEST_POSTGRES, skipping the test
// when it is unset outside CI and failing it in CI.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn != "" {
		return dsn
	}
	msg := EnvDSN + " is not set: this test needs PostgreSQL. Run: export " + EnvDSN + "=$(scripts/test-postgres.sh start) (see README, \"PostgreSQL\")"
	if os.Getenv(EnvCI) != "" {
		t.Fatalf("%s, and %s is set: CI must run the PostgreSQL tests", msg, EnvCI)
	}
	t.Skip(msg)
	return ""
}

// Schema creates an empty schema in MCSIM_TEST_POSTGRES's database and
// returns a URL whose connections use it (search_path), so every test
// gets its own tables and NOTIFY channel. The schema is dropped at the
// end of the test.
func Schema(t testing.TB) string {
	t.Helper()
	dsn := DSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("%s=%s: cannot connect: %v", EnvDSN, redact(dsn), err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "mcsim_t_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return
		}
		defer func() { _ = c.Close(context.Background()) }()
		_, _ = c.Exec(ctx, "DROP SCHEMA "+name+" CASCADE")
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s: %v", EnvDSN, err)
	}
	q := u.Query()
	q.Set("search_path", name)
	// The connections of this test carry its schema's name, so
	// TerminateConnections can find them and no other test's.
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// TerminateConnections makes the server end every connection opened with
// dsn (a URL from Schema), as a database restart ends them, and returns
// how many it ended. The schema and its data stay.
func TerminateConnections(t testing.TB, dsn string) int {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	app := u.Query().Get("application_name")
	if app == "" {
		t.Fatalf("TerminateConnections: %s has no application_name (not from pgtest.Schema)", redact(dsn))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err != nil {
		t.Fatalf("terminate connections of %s: %v", app, err)
	}
	return n
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}
