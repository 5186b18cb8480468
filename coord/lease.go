package coord

import (
	"errors"
	"fmt"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/shard"
)

// Sentinel errors of refused shard-map writes; test with errors.Is. Their
// texts name the store because clients see them as the store's answer.
var (
	// ErrNotLeaseHolder: the writer does not hold the lease at the epoch
	// it claims, or the lease lapsed.
	ErrNotLeaseHolder = errors.New("store: not the lease holder")
	// ErrEpochRegression: the map's max_epoch is lower than the stored one
	// (epochs only grow, DESIGN.md rule 2).
	ErrEpochRegression = errors.New("store: shard map max_epoch went down")
)

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

// LeaseResult is the answer to an acquire: the lease after the request, and
// whether the caller holds it.
type LeaseResult struct {
	Lease   Lease
	Granted bool
	// Renewal: granted to its live holder (same id and incarnation), so
	// no new term began.
	Renewal bool
	// Now is the time the request was judged at, the clock Lease.Expires
	// is on. A caller reporting the time left measures it from here, not
	// from its own clock: a store shared by several processes judges by
	// one clock of its own (pgstore: the database's), which the caller's
	// may differ from.
	Now time.Time
}

// CheckAcquire reports a malformed acquire request: one no rule can judge.
func CheckAcquire(masterID string, ttl time.Duration) error {
	if masterID == "" {
		return fmt.Errorf("store: master_id: must not be empty")
	}
	if ttl <= 0 {
		return fmt.Errorf("store: ttl: must be > 0, got %s", ttl)
	}
	return nil
}

// Lapsed reports whether anyone may take the lease at now: it is free, or
// its expiry is not after now.
func Lapsed(l Lease, now time.Time) bool {
	return l.Holder == "" || !now.Before(l.Expires)
}

// Acquire is the acquire/renew rule (see the package doc). The expiry
// drops the monotonic reading and is UTC, so a persisted lease compares the
// same after a restart.
func Acquire(cur Lease, masterID, incarnation, address string, ttl time.Duration, now time.Time) LeaseResult {
	expires := now.Add(ttl).Round(0).UTC()
	switch {
	case Lapsed(cur, now):
		return LeaseResult{Lease: Lease{Holder: masterID, Incarnation: incarnation, Address: address, Epoch: cur.Epoch + 1, Expires: expires}, Granted: true, Now: now}
	case cur.Holder == masterID && cur.Incarnation == incarnation:
		return LeaseResult{Lease: Lease{Holder: masterID, Incarnation: incarnation, Address: address, Epoch: cur.Epoch, Expires: expires}, Granted: true, Renewal: true, Now: now}
	default:
		return LeaseResult{Lease: cur, Granted: false, Now: now}
	}
}

// Release is the release rule: it returns the lease after the request and
// whether it was released. A stale epoch (an older term of the same master)
// releases nothing.
func Release(cur Lease, masterID string, epoch uint64) (Lease, bool) {
	if cur.Holder == "" || cur.Holder != masterID || cur.Epoch != epoch {
		return cur, false
	}
	return Lease{Epoch: cur.Epoch}, true
}

// AdmitShardMapWrite is the fencing rule for shard-map writes: masterID
// must hold the lease at exactly leaseEpoch and it must not have lapsed at
// now. Then m must be well formed (CheckShardMap) and must not lower
// max_epoch below old's. Refusals for the lease wrap ErrNotLeaseHolder; a
// lower max_epoch wraps ErrEpochRegression; a malformed map wraps neither.
func AdmitShardMapWrite(cur Lease, masterID string, leaseEpoch uint64, now time.Time, old, m *mcsimv1.ShardMap) error {
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
	if err := CheckShardMap(m); err != nil {
		return err
	}
	if m.GetMaxEpoch() < old.GetMaxEpoch() {
		return fmt.Errorf("%w: shard_map.max_epoch: must be >= stored %d, got %d", ErrEpochRegression, old.GetMaxEpoch(), m.GetMaxEpoch())
	}
	return nil
}

// CheckShardMap checks what a store can check alone: a shard count, one
// entry at most per shard in range, and no assignment epoch above max_epoch
// (which is what makes max_epoch a safe floor for the next one). It is
// looser than the coordination service's check (any count >= 1, entries
// may be missing): the store keeps whatever that service admits.
func CheckShardMap(m *mcsimv1.ShardMap) error {
	if m == nil {
		return fmt.Errorf("store: shard_map: must not be nil")
	}
	if m.GetShards() < 1 {
		return fmt.Errorf("store: shard_map.shards: must be >= 1, got %d", m.GetShards())
	}
	p, bad := shard.First(shard.CheckMap(int(m.GetShards()), m.GetMaxEpoch(), Assignments(m)), shard.OutOfRange, shard.Repeated, shard.AboveMaxEpoch)
	if !bad {
		return nil
	}
	a := m.GetAssignments()[p.Index]
	switch p.Fault {
	case shard.OutOfRange:
		return fmt.Errorf("store: shard_map.assignments[%d].shard: must be in [0, %d), got %d", p.Index, m.GetShards(), a.GetShard())
	case shard.Repeated:
		return fmt.Errorf("store: shard_map.assignments[%d].shard: shard %d appears twice", p.Index, a.GetShard())
	default:
		return fmt.Errorf("store: shard_map.assignments[%d].epoch: must be <= max_epoch %d, got %d", p.Index, m.GetMaxEpoch(), a.GetEpoch())
	}
}

// Assignments is m's entries in the shard vocabulary.
func Assignments(m *mcsimv1.ShardMap) []shard.Assignment {
	out := make([]shard.Assignment, len(m.GetAssignments()))
	for i, a := range m.GetAssignments() {
		out[i] = shard.Assignment{Shard: int(a.GetShard()), Owner: a.GetCoreappId(), Epoch: a.GetEpoch()}
	}
	return out
}
