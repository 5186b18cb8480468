package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// This file holds the master lease and the shard map it fences (DESIGN.md
// rules 2 and 3). The rules are the pure functions decideAcquire,
// decideRelease and admitShardMapWrite; the methods only load, decide,
// persist and publish. Time is always the caller's: the store never reads a
// clock to judge a lease.

// Lease is the master lease.
type Lease struct {
	// Holder is the master holding it; "" when free (never taken, or released).
	Holder string
	// Address is the holder's published gRPC address.
	Address string
	// Incarnation names the holder's process run; only it may renew.
	Incarnation string
	// Epoch grows by one with every new holder and never goes down, not even
	// on release, so a later holder always gets a larger epoch.
	Epoch uint64
	// Expires is when the lease lapses unless renewed (wall clock, no
	// monotonic reading, so it means the same after a restart).
	Expires time.Time
}

// LeaseResult is the answer to AcquireLease: the lease after the request,
// and whether the caller holds it.
type LeaseResult struct {
	Lease   Lease
	Granted bool
	// Renewal: granted to its live holder (same id and incarnation), so
	// no new term began.
	Renewal bool
}

// leaseLapsed reports whether anyone may take the lease at now: it is free,
// or its expiry is not after now.
func leaseLapsed(l Lease, now time.Time) bool {
	return l.Holder == "" || !now.Before(l.Expires)
}

// decideAcquire is the acquire/renew rule. A lapsed lease goes to masterID
// with Epoch+1 (even if masterID held it before it lapsed: in between
// another master may have acted on the gap, so the old epoch is not
// trusted). The live holder, the same master id and incarnation, renews:
// same epoch, Expires = now+ttl, address updated. Anyone else is refused
// and gets the current lease; that includes the holder's id with another
// incarnation (the master restarted while its old lease runs: the old
// process may be paused rather than dead, so the new one waits for the
// lease to lapse like any other master and then gets a new epoch).
func decideAcquire(cur Lease, masterID, incarnation, address string, ttl time.Duration, now time.Time) LeaseResult {
	expires := now.Add(ttl).Round(0).UTC()
	switch {
	case leaseLapsed(cur, now):
		return LeaseResult{Lease: Lease{Holder: masterID, Incarnation: incarnation, Address: address, Epoch: cur.Epoch + 1, Expires: expires}, Granted: true}
	case cur.Holder == masterID && cur.Incarnation == incarnation:
		return LeaseResult{Lease: Lease{Holder: masterID, Incarnation: incarnation, Address: address, Epoch: cur.Epoch, Expires: expires}, Granted: true, Renewal: true}
	default:
		return LeaseResult{Lease: cur, Granted: false}
	}
}

// decideRelease is the release rule: only masterID at exactly the current
// epoch may release; the epoch is kept so the next holder gets a larger one.
// A stale epoch (an older term of the same master) releases nothing.
func decideRelease(cur Lease, masterID string, epoch uint64) (Lease, bool) {
	if cur.Holder == "" || cur.Holder != masterID || cur.Epoch != epoch {
		return cur, false
	}
	return Lease{Epoch: cur.Epoch}, true
}

// admitShardMapWrite is the fencing rule for shard-map writes: masterID must
// hold the lease at exactly leaseEpoch and it must not have lapsed at now.
// Then m must be well formed and must not lower max_epoch below old's.
// Refusals for the lease wrap ErrNotLeaseHolder; a lower max_epoch wraps
// ErrEpochRegression.
func admitShardMapWrite(cur Lease, masterID string, leaseEpoch uint64, now time.Time, old, m *mcsimv1.ShardMap) error {
	switch {
	case cur.Holder == "":
		return fmt.Errorf("%w: %q asked at lease epoch %d but the lease is free", ErrNotLeaseHolder, masterID, leaseEpoch)
	case cur.Holder != masterID:
		return fmt.Errorf("%w: %q asked but the lease is held by %q (epoch %d)", ErrNotLeaseHolder, masterID, cur.Holder, cur.Epoch)
	case cur.Epoch != leaseEpoch:
		return fmt.Errorf("%w: %q asked at lease epoch %d but the current epoch is %d", ErrNotLeaseHolder, masterID, leaseEpoch, cur.Epoch)
	case !now.Before(cur.Expires):
		return fmt.Errorf("%w: lease of %q (epoch %d) expired at %s, now is %s", ErrNotLeaseHolder, masterID, cur.Epoch, cur.Expires.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
	}
	if err := validateShardMap(m); err != nil {
		return err
	}
	if m.GetMaxEpoch() < old.GetMaxEpoch() {
		return fmt.Errorf("%w: shard_map.max_epoch: must be >= stored %d, got %d", ErrEpochRegression, old.GetMaxEpoch(), m.GetMaxEpoch())
	}
	return nil
}

// validateShardMap checks what the store can check alone: a shard count,
// one entry at most per shard in range, and no assignment epoch above
// max_epoch (which is what makes max_epoch a safe floor for the next one).
func validateShardMap(m *mcsimv1.ShardMap) error {
	if m == nil {
		return fmt.Errorf("store: shard_map: must not be nil")
	}
	if m.GetShards() < 1 {
		return fmt.Errorf("store: shard_map.shards: must be >= 1, got %d", m.GetShards())
	}
	seen := make(map[int32]bool, len(m.GetAssignments()))
	for i, a := range m.GetAssignments() {
		if a.GetShard() < 0 || a.GetShard() >= m.GetShards() {
			return fmt.Errorf("store: shard_map.assignments[%d].shard: must be in [0, %d), got %d", i, m.GetShards(), a.GetShard())
		}
		if seen[a.GetShard()] {
			return fmt.Errorf("store: shard_map.assignments[%d].shard: shard %d appears twice", i, a.GetShard())
		}
		seen[a.GetShard()] = true
		if a.GetEpoch() > m.GetMaxEpoch() {
			return fmt.Errorf("store: shard_map.assignments[%d].epoch: must be <= max_epoch %d, got %d", i, m.GetMaxEpoch(), a.GetEpoch())
		}
	}
	return nil
}

// AcquireLease takes, renews or is refused the master lease by the rules of
// decideAcquire, judged at now (the caller's clock). A granted lease is on
// disk (fsynced) before this returns; a refusal writes nothing.
func (s *Store) AcquireLease(masterID, incarnation, address string, ttl time.Duration, now time.Time) (LeaseResult, error) {
	if masterID == "" {
		return LeaseResult{}, fmt.Errorf("store: master_id: must not be empty")
	}
	if ttl <= 0 {
		return LeaseResult{}, fmt.Errorf("store: ttl: must be > 0, got %s", ttl)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return LeaseResult{}, ErrClosed
	}
	res := decideAcquire(s.lease, masterID, incarnation, address, ttl, now)
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
	next, ok := decideRelease(s.lease, masterID, epoch)
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

// WriteShardMap stores m if admitShardMapWrite admits it (masterID holds the
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
	if err := admitShardMapWrite(s.lease, masterID, leaseEpoch, now, old, m); err != nil {
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
