package store

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/shard"
)

// The input rules of the record writes, shared by every backend (bbolt
// here, PostgreSQL in pgstore) so that a write one backend refuses the
// other refuses too, with the same words. Each names the field and
// changes nothing: backends check before they open a transaction.

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
