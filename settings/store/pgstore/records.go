package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcsim/mcsim/settings/store"
)

// Media providers and admin tokens: read from the database on demand,
// every change committed before the method returns (as the bbolt store's
// records.go).

// Providers returns every media provider, name -> its JSON document.
func (s *Store) Providers() (map[string][]byte, error) {
	ctx, done, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := s.pool.Query(ctx, `SELECT name, doc FROM mcsim_providers`)
	if err != nil {
		return nil, fmt.Errorf("store: providers: %w", err)
	}
	out := make(map[string][]byte)
	var (
		name string
		doc  []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &doc}, func() error {
		out[name] = append([]byte(nil), doc...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: providers: %w", err)
	}
	return out, nil
}

// PutProviders adds or replaces the providers in one transaction.
func (s *Store) PutProviders(items map[string][]byte) error {
	if err := store.CheckProviders(items); err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	return s.inTx("put providers", func(ctx context.Context, tx pgx.Tx) error {
		for name, doc := range items {
			if _, err := tx.Exec(ctx, `INSERT INTO mcsim_providers (name, doc) VALUES ($1, $2)
				ON CONFLICT (name) DO UPDATE SET doc = EXCLUDED.doc`, name, doc); err != nil {
				return fmt.Errorf("provider %q: %w", name, err)
			}
		}
		return nil
	})
}

// DeleteProvider removes one provider; an error wrapping store.ErrNotFound
// if there is none of that name.
func (s *Store) DeleteProvider(name string) error {
	return s.inTx("delete provider", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM mcsim_providers WHERE name = $1`, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return refuse(fmt.Errorf("store: delete provider: %w: provider %q", store.ErrNotFound, name))
		}
		return nil
	})
}

// PutToken stores a token hash with its expiry and prunes expired ones
// (by this Store's clock), as store.Store.PutToken.
func (s *Store) PutToken(hash []byte, expires time.Time) error {
	if err := store.CheckToken(hash, expires); err != nil {
		return err
	}
	now := s.now()
	return s.inTx("put token", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM mcsim_tokens WHERE expires_unix_nano <= $1`, now.UnixNano()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO mcsim_tokens (hash, expires_unix_nano) VALUES ($1, $2)
			ON CONFLICT (hash) DO UPDATE SET expires_unix_nano = EXCLUDED.expires_unix_nano`, hash, expires.UnixNano())
		return err
	})
}

// TokenExpiry returns the expiry stored for a token hash, false if unknown.
func (s *Store) TokenExpiry(hash []byte) (time.Time, bool, error) {
	ctx, done, err := s.begin()
	if err != nil {
		return time.Time{}, false, err
	}
	defer done()
	var n int64
	err = s.pool.QueryRow(ctx, `SELECT expires_unix_nano FROM mcsim_tokens WHERE hash = $1`, hash).Scan(&n)
	switch {
	case err == pgx.ErrNoRows:
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("store: token expiry: %w", err)
	}
	return time.Unix(0, n).UTC(), true, nil
}
