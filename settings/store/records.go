package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// This file holds the records that are not part of the watched State:
// media providers and the admin account's bearer tokens. They are read from
// disk on demand (they are small and read rarely), and every change is
// fsynced before the method returns.

// Providers returns every media provider, name -> its opaque JSON document.
// The map is the caller's; it is unordered (sort the names to list them).
func (s *Store) Providers() (map[string][]byte, error) {
	out := make(map[string][]byte)
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketProviders)).ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: providers: %w", err)
	}
	return out, nil
}

// PutProviders adds or replaces the given providers, all in one
// transaction: either all are stored or none. Every name must be non-empty
// and every document valid JSON, else nothing changes.
func (s *Store) PutProviders(items map[string][]byte) error {
	if err := CheckProviders(items); err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return ErrClosed
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketProviders))
		for name, doc := range items {
			if err := b.Put([]byte(name), doc); err != nil {
				return fmt.Errorf("provider %q: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put providers: %w", err)
	}
	return nil
}

// DeleteProvider removes one provider; an error wrapping ErrNotFound if
// there is none of that name.
func (s *Store) DeleteProvider(name string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return ErrClosed
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketProviders))
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("%w: provider %q", ErrNotFound, name)
		}
		return b.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("store: delete provider: %w", err)
	}
	return nil
}

// PutToken stores the SHA-256 hash of a bearer token (never the token) with
// its expiry, and prunes the tokens that have expired by the store's clock.
// Pruning only removes what TokenExpiry would report as expired anyway, so
// it needs no caller clock.
func (s *Store) PutToken(hash []byte, expires time.Time) error {
	if err := CheckToken(hash, expires); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return ErrClosed
	}
	now := s.now()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketTokens))
		// Collect first: deleting under a live cursor skips keys in bbolt.
		var stale [][]byte
		err := b.ForEach(func(k, v []byte) error {
			exp, err := decodeUint64(v)
			if err != nil || !now.Before(time.Unix(0, int64(exp))) {
				stale = append(stale, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return b.Put(bytes.Clone(hash), encodeUint64(uint64(expires.UnixNano())))
	})
	if err != nil {
		return fmt.Errorf("store: put token: %w", err)
	}
	return nil
}

// TokenExpiry returns the expiry stored for a token hash, and false if the
// hash is unknown (never stored, or pruned). Whether it has expired is for
// the caller to judge with its clock.
func (s *Store) TokenExpiry(hash []byte) (time.Time, bool, error) {
	var (
		exp   time.Time
		found bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket([]byte(bucketTokens)).Get(hash)
		if v == nil {
			return nil
		}
		n, err := decodeUint64(v)
		if err != nil {
			return fmt.Errorf("token record: %w", err)
		}
		exp, found = time.Unix(0, int64(n)).UTC(), true
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store: token expiry: %w", err)
	}
	return exp, found, nil
}
