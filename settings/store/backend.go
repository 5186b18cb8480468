package store

import (
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Backend is what the settings service needs from a store: the watched
// state, the records, the master lease and the fenced shard map, the
// pending callbacks. *Store (bbolt, embedded, one process) is the default;
// package settings/store/pgstore keeps the same in PostgreSQL, where
// several settings processes may share one database.
//
// Every backend keeps the same contract, checked by the one suite in
// settings/store/storetest against each:
//   - a write returns only once committed durably; a refusal (a rule, a
//     bad argument, the caller's fn) changes nothing. An I/O error means
//     the write was not acknowledged (on PostgreSQL a connection lost
//     during COMMIT leaves it unknown whether it committed, as with any
//     database client; the caller retries);
//   - the lease and shard-map rules are package coord's (never re-written
//     in a backend), judged on the lease as committed, read in the same
//     transaction that writes the decision, at the store's clock: the now
//     the caller passes (bbolt, one process), or a clock of the store's
//     own when several processes share it (pgstore: the database's; see
//     LeaseClock), reported in LeaseResult.Now;
//   - Latest never goes back a revision and, once a write is acknowledged
//     by any process sharing the store, soon shows that revision or a
//     later one.
//
// State and CurrentLease have no error: a backend that reads them remotely
// answers from its last good read when the read fails.
type Backend interface {
	// State is the current watched state.
	State() State
	// Latest is State plus a channel closed as soon as a newer state
	// exists (see Store.Latest).
	Latest() (State, <-chan struct{})
	// UpdateApplication: see Store.UpdateApplication.
	UpdateApplication(fn func(cur []byte) ([]byte, error)) (State, error)
	// SetShards: see Store.SetShards.
	SetShards(n int) (State, error)
	// UpdateShards: see Store.UpdateShards.
	UpdateShards(n int) (State, bool, error)

	Providers() (map[string][]byte, error)
	PutProviders(items map[string][]byte) error
	DeleteProvider(name string) error
	PutToken(hash []byte, expires time.Time) error
	TokenExpiry(hash []byte) (time.Time, bool, error)

	AcquireLease(masterID, incarnation, address string, ttl time.Duration, now time.Time) (LeaseResult, error)
	ReleaseLease(masterID string, epoch uint64) (bool, error)
	CurrentLease() Lease
	ShardMap() (*mcsimv1.ShardMap, error)
	WriteShardMap(masterID string, leaseEpoch uint64, m *mcsimv1.ShardMap, now time.Time) (uint64, error)

	PutCallbacks(cbs []*mcsimv1.PendingCallback) error
	DeleteCallbacks(ids []string) error
	ListCallbacks(sh, shards int) ([]*mcsimv1.PendingCallback, error)

	// Close releases the backend; writes afterwards return ErrClosed.
	Close() error
}

var _ Backend = (*Store)(nil)

// LeaseClock is a Backend that judges the lease by a clock of its own
// rather than its callers' (pgstore: the database's, so every settings
// process sharing it decides by one clock) and can read that clock with
// the lease.
type LeaseClock interface {
	// CurrentLeaseAt is CurrentLease and the store's clock read with it;
	// a zero time when the clock could not be read, or when the backend
	// judges by its callers' clock after all (a test mode).
	CurrentLeaseAt() (Lease, time.Time)
}

// LeaseNow is b's current lease and the time to judge it at (is it
// running, how long is left): the store's own clock when b judges by one
// (LeaseClock), else local(). Judging a lease the store granted by
// another clock than the store's would be off by the clocks' difference.
func LeaseNow(b Backend, local func() time.Time) (Lease, time.Time) {
	if lc, ok := b.(LeaseClock); ok {
		if l, now := lc.CurrentLeaseAt(); !now.IsZero() {
			return l, now
		}
	}
	return b.CurrentLease(), local()
}
