package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/shard"
)

// This file keeps the pending status callbacks of callback_persist: a
// coreapp puts a callback before it acknowledges the status to the gateway
// and deletes it once the receiver answered 200, so a shard's next owner
// lists what its last owner did not deliver. Plain storage: which coreapp
// posts what, and when, is decided by package callbacks.
//
// Each callback is stored under a sequence number taken when it was first
// kept (bucketCallbacks), so List returns them in that order and a
// successor retries them oldest first; bucketCallbackIDs maps an id to its
// sequence so Put overwrites in place and Delete finds it.

// The callback writes go through bbolt's db.Batch, not wmu: they touch
// only the callback buckets and publish nothing, and under load every
// coreapp writes at once (a put per status batch, a delete per delivery
// window), so concurrent callers share one transaction and one fsync
// (BatchDelay, store.go). A write returns only once its transaction
// committed, so an answer still means durable. db.Batch may run a
// function twice (when another in its batch fails, it is retried alone):
// these only read and write inside their transaction, so a second run
// does the same.

// PutCallbacks keeps the callbacks, all in one fsync'd transaction
// (possibly shared with other callers' callback writes): either all are
// kept or none. A callback whose id is already kept replaces it in
// its place (the order is the order ids were first kept). Every id and
// recipient must be non-empty, else nothing changes.
func (s *Store) PutCallbacks(cbs []*mcsimv1.PendingCallback) error {
	if err := CheckCallbacks(cbs); err != nil {
		return err
	}
	if len(cbs) == 0 {
		return nil
	}
	err := s.db.Batch(func(tx *bolt.Tx) error {
		byseq, byid := tx.Bucket([]byte(bucketCallbacks)), tx.Bucket([]byte(bucketCallbackIDs))
		for _, cb := range cbs {
			v, err := proto.Marshal(cb)
			if err != nil {
				return fmt.Errorf("callback %q: %w", cb.GetId(), err)
			}
			key := byid.Get([]byte(cb.GetId()))
			if key == nil {
				seq, err := byseq.NextSequence()
				if err != nil {
					return err
				}
				key = binary.BigEndian.AppendUint64(nil, seq)
				if err := byid.Put([]byte(cb.GetId()), key); err != nil {
					return err
				}
			}
			if err := byseq.Put(key, v); err != nil {
				return fmt.Errorf("callback %q: %w", cb.GetId(), err)
			}
		}
		return nil
	})
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	if err != nil {
		return fmt.Errorf("store: put callbacks: %w", err)
	}
	return nil
}

// DeleteCallbacks forgets the callbacks of the given ids in one fsync'd
// transaction (possibly shared, as PutCallbacks'); ids not kept are ignored (a callback delivered twice, by a
// coreapp and by its successor, is deleted twice).
func (s *Store) DeleteCallbacks(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	err := s.db.Batch(func(tx *bolt.Tx) error {
		byseq, byid := tx.Bucket([]byte(bucketCallbacks)), tx.Bucket([]byte(bucketCallbackIDs))
		for _, id := range ids {
			key := byid.Get([]byte(id))
			if key == nil {
				continue
			}
			// Copied: the key's memory belongs to the transaction's page,
			// which the deletes below may change.
			key = append([]byte(nil), key...)
			if err := byseq.Delete(key); err != nil {
				return err
			}
			if err := byid.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	if err != nil {
		return fmt.Errorf("store: delete callbacks: %w", err)
	}
	return nil
}

// ListCallbacks returns the kept callbacks whose recipient falls in shard
// of count shards (shard.BucketOf of the recipient is one of
// shard.Covers(shard, shards)), in the order they were first kept.
func (s *Store) ListCallbacks(sh, shards int) ([]*mcsimv1.PendingCallback, error) {
	if err := CheckCallbackShard(sh, shards); err != nil {
		return nil, err
	}
	var out []*mcsimv1.PendingCallback
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketCallbacks)).ForEach(func(k, v []byte) error {
			cb := &mcsimv1.PendingCallback{}
			if err := proto.Unmarshal(v, cb); err != nil {
				return fmt.Errorf("callback at %x: %w", k, err)
			}
			// shard.Of is BucketOf mod shards, the bucket's shard under
			// shard.Covers.
			if shard.Of(cb.GetRecipientId(), shards) == sh {
				out = append(out, cb)
			}
			return nil
		})
	})
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return nil, ErrClosed
	}
	if err != nil {
		return nil, fmt.Errorf("store: list callbacks: %w", err)
	}
	return out, nil
}
