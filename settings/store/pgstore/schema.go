package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema's versions, in order: migrations[i] takes the
// schema from version i to i+1. Append only; never edit a released one
// (a database at version i+1 already ran it).
var migrations = []string{
	// 1: the records of the bbolt store, one table each. Singletons (the
	// watched state, the lease, the shard map) are one row with id 1,
	// created here so every write is an UPDATE of a row it locked.
	`CREATE TABLE mcsim_state (
		id          int PRIMARY KEY CHECK (id = 1),
		revision    bigint NOT NULL,
		application bytea,
		shards      int NOT NULL
	);
	INSERT INTO mcsim_state VALUES (1, 0, NULL, 1);
	CREATE TABLE mcsim_lease (
		id                int PRIMARY KEY CHECK (id = 1),
		holder            text NOT NULL,
		incarnation       text NOT NULL,
		address           text NOT NULL,
		epoch             bigint NOT NULL,
		expires_unix_nano bigint NOT NULL
	);
	INSERT INTO mcsim_lease VALUES (1, '', '', '', 0, 0);
	CREATE TABLE mcsim_shard_map (
		id  int PRIMARY KEY CHECK (id = 1),
		map bytea NOT NULL
	);
	INSERT INTO mcsim_shard_map VALUES (1, '');
	CREATE TABLE mcsim_providers (
		name text PRIMARY KEY,
		doc  bytea NOT NULL
	);
	CREATE TABLE mcsim_tokens (
		hash              bytea PRIMARY KEY,
		expires_unix_nano bigint NOT NULL
	);
	CREATE TABLE mcsim_callbacks (
		seq  bigserial PRIMARY KEY,
		id   text NOT NULL UNIQUE,
		body bytea NOT NULL
	);`,
}

// SchemaVersion is the schema version this program creates and expects:
// one per migration (a function, so nothing outside can change it).
func SchemaVersion() int { return len(migrations) }

// migrationLock is the advisory lock key serializing migrations of one
// database: two settings processes starting at once migrate once.
const migrationLock = 0x6d6373696d // "mcsim"

// SchemaError says the database's schema is one this program cannot use.
type SchemaError struct {
	Found, Want int
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("schema is version %d, newer than this mcsim's %d: a newer mcsim migrated it; run that version (or a new database)", e.Found, e.Want)
}

// migrate brings the schema from its recorded version (0 for an empty
// database) to SchemaVersion, each migration followed by
// its version row, in one transaction under an advisory lock (DDL is
// transactional: a failed migration leaves the old version whole). A newer schema than
// SchemaVersion is refused with a *SchemaError and left alone. Read
// committed (txOptions): the version is read after the lock is taken, so
// it must be read in a snapshot taken then, not at the transaction's start.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginTxFunc(ctx, pool, txOptions, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return fmt.Errorf("schema: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS mcsim_schema_migrations (
			version    int PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("schema: create mcsim_schema_migrations: %w", err)
		}
		var found int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM mcsim_schema_migrations`).Scan(&found); err != nil {
			return fmt.Errorf("schema: read version: %w", err)
		}
		if found > SchemaVersion() {
			return &SchemaError{Found: found, Want: SchemaVersion()}
		}
		for v := found; v < SchemaVersion(); v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("schema: migrating from version %d to %d: %w", v, v+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO mcsim_schema_migrations (version) VALUES ($1)`, v+1); err != nil {
				return fmt.Errorf("schema: record version %d: %w", v+1, err)
			}
		}
		return nil
	})
}
