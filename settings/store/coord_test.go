package store

import (
	"time"

	"github.com/mcsim/mcsim/coord"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// The rule tests in lease_test.go predate package coord, which now owns the
// rules; these names bind them to coord's, so they go on checking the rules
// this store runs.

func decideAcquire(cur Lease, masterID, incarnation, address string, ttl time.Duration, now time.Time) LeaseResult {
	return coord.Acquire(cur, masterID, incarnation, address, ttl, now)
}

func decideRelease(cur Lease, masterID string, epoch uint64) (Lease, bool) {
	return coord.Release(cur, masterID, epoch)
}

func admitShardMapWrite(cur Lease, masterID string, leaseEpoch uint64, now time.Time, old, m *mcsimv1.ShardMap) error {
	return coord.AdmitShardMapWrite(cur, masterID, leaseEpoch, now, old, m)
}
