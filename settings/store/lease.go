package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/mcsim/mcsim/coord"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// This file holds the master lease and the shard map it fences (DESIGN.md
// rules 2 and 3). The rules are package coord's, shared by every store
// backend; the methods here only load, let coord decide, persist and
// publish. Time is always the caller's: the store never reads a clock to
// judge a lease.

// Lease is the master lease (coord's, so every backend keeps the same one).
type Lease = coord.Lease

// LeaseResult is the answer to AcquireLease: the lease after the request,
// and whether the caller holds it.
type LeaseResult = coord.LeaseResult

// AcquireLease takes, renews or is refused the master lease by the rules of
// coord.Acquire, judged at now (the caller's clock). A granted lease is on
// disk (fsynced) before this returns; a refusal writes nothing.
func (s *Store) AcquireLease(masterID, incarnation, address string, ttl time.Duration, now time.Time) (LeaseResult, error) {
	if err := coord.CheckAcquire(masterID, ttl); err != nil {
		return LeaseResult{}, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return LeaseResult{}, ErrClosed
	}
	res := coord.Acquire(s.lease, masterID, incarnation, address, ttl, now)
	if !res.Granted {
		return res, nil
	}
	if err := s.putLease(res.Lease); err != nil {
		return LeaseResult{}, fmt.Errorf("store: acquire lease: %w", err)
	}
	return res, nil
}

// ReleaseLease gives the lease up if masterID holds it at exactly epoch, and
// reports whether it did. The epoch is kept: the next holder gets epoch+1.
func (s *Store) ReleaseLease(masterID string, epoch uint64) (bool, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	next, ok := coord.Release(s.lease, masterID, epoch)
	if !ok {
		return false, nil
	}
	if err := s.putLease(next); err != nil {
		return false, fmt.Errorf("store: release lease: %w", err)
	}
	return true, nil
}

// CurrentLease returns the lease as last committed (from memory). Whether
// it has lapsed is for the caller to judge with its clock.
func (s *Store) CurrentLease() Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lease
}

// putLease persists l and then publishes it. Caller holds wmu.
func (s *Store) putLease(l Lease) error {
	b, err := encodeLease(l)
	if err != nil {
		return err
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(keyLease), b)
	}); err != nil {
		return err
	}
	s.mu.Lock()
	s.lease = l
	s.mu.Unlock()
	return nil
}

// ShardMap returns a copy of the stored shard map: an empty map (version 0)
// if none was ever written.
func (s *Store) ShardMap() (*mcsimv1.ShardMap, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return proto.Clone(s.shardMap).(*mcsimv1.ShardMap), nil
}

// WriteShardMap stores m if coord.AdmitShardMapWrite admits it (masterID holds the
// lease at exactly leaseEpoch, not lapsed at now; max_epoch not lower than
// stored). The stored version is the old one plus one; on success m.Version
// is set to it too and it is returned. On refusal nothing changes and m is
// untouched. The write is on disk (fsynced) before this returns.
func (s *Store) WriteShardMap(masterID string, leaseEpoch uint64, m *mcsimv1.ShardMap, now time.Time) (uint64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	old := s.shardMap
	if err := coord.AdmitShardMapWrite(s.lease, masterID, leaseEpoch, now, old, m); err != nil {
		return 0, err
	}
	next := proto.Clone(m).(*mcsimv1.ShardMap)
	next.Version = old.GetVersion() + 1
	b, err := proto.Marshal(next)
	if err != nil {
		return 0, fmt.Errorf("store: write shard map: encode: %w", err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(keyShardMap), b)
	}); err != nil {
		return 0, fmt.Errorf("store: write shard map: %w", err)
	}
	s.mu.Lock()
	s.shardMap = next
	s.mu.Unlock()
	m.Version = next.Version
	return next.Version, nil
}

// leaseRecord is the on-disk form of a Lease (JSON, so a person can read it
// with bbolt's CLI). Expires is Unix nanoseconds, 0 for the zero time.
type leaseRecord struct {
	Holder          string `json:"holder"`
	Incarnation     string `json:"incarnation,omitempty"`
	Address         string `json:"address"`
	Epoch           uint64 `json:"epoch"`
	ExpiresUnixNano int64  `json:"expires_unix_nano"`
}

func encodeLease(l Lease) ([]byte, error) {
	r := leaseRecord{Holder: l.Holder, Incarnation: l.Incarnation, Address: l.Address, Epoch: l.Epoch}
	if !l.Expires.IsZero() {
		r.ExpiresUnixNano = l.Expires.UnixNano()
	}
	return json.Marshal(r)
}

func decodeLease(b []byte) (Lease, error) {
	if b == nil {
		return Lease{}, nil
	}
	var r leaseRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return Lease{}, err
	}
	l := Lease{Holder: r.Holder, Incarnation: r.Incarnation, Address: r.Address, Epoch: r.Epoch}
	if r.ExpiresUnixNano != 0 {
		l.Expires = time.Unix(0, r.ExpiresUnixNano).UTC()
	}
	return l, nil
}
