package pgstore_test

import (
	"errors"
	"testing"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/store"
	"github.com/mcsim/mcsim/settings/store/pgstore"
	"github.com/mcsim/mcsim/settings/store/pgstore/pgtest"
)

// TestLeaseIsJudgedByTheDatabaseClock: two settings processes on one
// database whose clocks are off by tens of seconds, one behind and one
// ahead. The lease is granted and judged by the database's clock alone:
// the process ahead does not see the first master's term as lapsed and
// grant a second master the lease while the first still holds it; the
// expiry is the database's now + ttl whatever the granting caller's clock;
// the holder's shard-map write is judged by the same clock.
func TestLeaseIsJudgedByTheDatabaseClock(t *testing.T) {
	dsn := pgtest.Schema(t)
	open := func() *pgstore.Store {
		s, err := pgstore.Open(dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	behind, ahead := open(), open()
	const ttl = time.Minute // nothing lapses during the test by the true clock
	wall := time.Now()
	near := func(what string, got time.Time) {
		t.Helper()
		// The database runs on this machine: its clock is ours, give or
		// take the test's own duration.
		if d := got.Sub(wall); d < -5*time.Second || d > 30*time.Second {
			t.Fatalf("%s = %s, %s from this machine's clock; want the database's clock", what, got.Format(time.RFC3339Nano), d)
		}
	}

	first, err := behind.AcquireLease("m1", "i1", "m1:7000", ttl, wall.Add(-30*time.Second))
	if err != nil || !first.Granted || first.Lease.Epoch != 1 {
		t.Fatalf("m1 through the process 30 s behind: %+v, %v; want granted at epoch 1", first, err)
	}

	// By the process ahead, m1's term (by its caller's clock it ended at
	// wall+30s) lapsed 15 s ago. By the database's clock it runs for
	// another minute.
	res, err := ahead.AcquireLease("m2", "i2", "m2:7000", ttl, wall.Add(45*time.Second))
	if err != nil || res.Granted || res.Lease.Holder != "m1" || res.Lease.Epoch != 1 {
		t.Fatalf("m2 through the process 45 s ahead: %+v, %v; want refused, m1 still holding epoch 1", res, err)
	}
	if l := ahead.CurrentLease(); l.Holder != "m1" || l.Epoch != 1 {
		t.Fatalf("lease after m2 asked = %+v, want m1's", l)
	}
	near("m1's grant judged at", first.Now)
	if got := first.Lease.Expires.Sub(first.Now); got != ttl {
		t.Fatalf("expiry - judged at = %s, want the ttl %s", got, ttl)
	}
	near("m1's expiry - ttl", first.Lease.Expires.Add(-ttl))

	// Readers (GET /v1/health, the holder metric) get the same clock with
	// the lease, through store.LeaseNow.
	l, at := store.LeaseNow(ahead, func() time.Time { return wall.Add(45 * time.Second) })
	if l.Holder != "m1" || l.Epoch != 1 {
		t.Fatalf("LeaseNow lease = %+v, want m1's", l)
	}
	near("LeaseNow's time", at)

	m := &mcsimv1.ShardMap{Shards: 1, MaxEpoch: 1, Assignments: []*mcsimv1.ShardAssignment{{Shard: 0, CoreappId: "c1", Epoch: 1}}}
	if _, err := ahead.WriteShardMap("m1", 1, m, wall.Add(90*time.Second)); err != nil {
		t.Fatalf("m1's shard-map write through the process 90 s ahead: %v; want admitted (the lease runs by the database's clock)", err)
	}
	if _, err := behind.WriteShardMap("m2", 1, m, wall.Add(90*time.Second)); !errors.Is(err, store.ErrNotLeaseHolder) {
		t.Fatalf("m2's shard-map write: %v, want ErrNotLeaseHolder", err)
	}
}
