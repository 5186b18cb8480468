package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/shard"
)

// The rules every backend (bbolt here, PostgreSQL in pgstore) shares, so
// that what one refuses or counts as a change the other does too, with
// the same words: the watched state's transitions (when the revision
// moves) and the input rules of the record writes. A check names the
// field and changes nothing: backends check before they write.

// NextApplication is the state after a write of the document out over
// cur, and whether it changed: the same bytes (nil staying nil, "no
// document") change nothing and keep the revision, so a PATCH that sets
// what is already set wakes no watcher.
func NextApplication(cur State, out []byte) (State, bool) {
	if bytes.Equal(out, cur.Application) && (out == nil) == (cur.Application == nil) {
		return cur, false
	}
	return State{Revision: cur.Revision + 1, Application: bytes.Clone(out), Shards: cur.Shards}, true
}

// CheckShards: a shard count of at least 1 (the caller checked it against
// the allowed values).
func CheckShards(n int) error {
	if n < 1 {
		return fmt.Errorf("store: shards: must be >= 1, got %d", n)
	}
	return nil
}

// NextShards is the state after setting the shard count to n over cur,
// and whether it changed (the same count keeps the revision).
func NextShards(cur State, n int) (State, bool) {
	if cur.Shards == n {
		return cur, false
	}
	return State{Revision: cur.Revision + 1, Application: cur.Application, Shards: n}, true
}

// CheckCallbacks: every callback has an id and a recipient.
func CheckCallbacks(cbs []*mcsimv1.PendingCallback) error {
	for i, cb := range cbs {
		if cb.GetId() == "" {
			return fmt.Errorf("store: callbacks[%d].id: must not be empty", i)
		}
		if cb.GetRecipientId() == "" {
			return fmt.Errorf("store: callbacks[%d].recipient_id: must not be empty", i)
		}
	}
	return nil
}

// CheckCallbackShard: shard sh of a valid count of shards.
func CheckCallbackShard(sh, shards int) error {
	if err := shard.CountError(shards); err != nil {
		return fmt.Errorf("store: list callbacks: shards: %w", err)
	}
	if sh < 0 || sh >= shards {
		return fmt.Errorf("store: list callbacks: shard: must be in [0, %d), got %d", shards, sh)
	}
	return nil
}

// CheckProviders: every provider has a name and a JSON document.
func CheckProviders(items map[string][]byte) error {
	for name, doc := range items {
		if name == "" {
			return fmt.Errorf("store: provider name: must not be empty")
		}
		if !json.Valid(doc) {
			return fmt.Errorf("store: provider %q: document must be valid JSON", name)
		}
	}
	return nil
}

// CheckToken: a SHA-256 hash (never the token itself) with an expiry.
func CheckToken(hash []byte, expires time.Time) error {
	if len(hash) != sha256.Size {
		return fmt.Errorf("store: token hash: must be a %d-byte SHA-256, got %d bytes", sha256.Size, len(hash))
	}
	if expires.IsZero() {
		return fmt.Errorf("store: token expires: must be set")
	}
	return nil
}
