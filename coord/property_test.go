package coord

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// TestRandomRuns drives the rules with random requests from three masters
// (each with two incarnations) at times that only move forward, and checks
// what fencing rests on after every request: the epoch never goes down,
// every new term has a larger epoch than any before, a renewal keeps it,
// and a shard-map write is admitted only from the lease's live holder at
// its epoch, with max_epoch never going down.
func TestRandomRuns(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		var cur Lease
		old := &mcsimv1.ShardMap{}
		now := t0()
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d at %s: %s", seed, now.Sub(t0()), fmt.Sprintf(format, args...))
		}
		for range 300 {
			now = now.Add(time.Duration(r.IntN(3000)) * time.Millisecond)
			id := fmt.Sprintf("m%d", r.IntN(3))
			switch r.IntN(3) {
			case 0:
				inc := fmt.Sprintf("i%d", r.IntN(2))
				res := Acquire(cur, id, inc, id+":7000", time.Duration(1+r.IntN(5))*time.Second, now)
				switch {
				case !res.Granted && res.Lease != cur:
					fail("a refusal changed the lease: %+v -> %+v", cur, res.Lease)
				case res.Renewal && (res.Lease.Epoch != cur.Epoch || Lapsed(cur, now) || cur.Holder != id || cur.Incarnation != inc):
					fail("renewal %+v of %+v by %s/%s", res.Lease, cur, id, inc)
				case res.Granted && !res.Renewal && (res.Lease.Epoch != cur.Epoch+1 || !Lapsed(cur, now)):
					fail("new term %+v over %+v", res.Lease, cur)
				case res.Granted && !res.Lease.Expires.After(now):
					fail("granted a lease already lapsed: %+v", res.Lease)
				}
				cur = res.Lease
			case 1:
				epoch := cur.Epoch - uint64(r.IntN(2))
				next, ok := Release(cur, id, epoch)
				if ok != (cur.Holder == id && cur.Epoch == epoch) || next.Epoch != cur.Epoch {
					fail("release by %s at %d of %+v: %+v %v", id, epoch, cur, next, ok)
				}
				cur = next
			case 2:
				epoch := cur.Epoch - uint64(r.IntN(2))
				m := &mcsimv1.ShardMap{Shards: 1, MaxEpoch: old.GetMaxEpoch() + uint64(r.IntN(2))}
				if r.IntN(4) == 0 && m.MaxEpoch > 0 {
					m.MaxEpoch-- // sometimes below the stored one
				}
				err := AdmitShardMapWrite(cur, id, epoch, now, old, m)
				live := cur.Holder == id && cur.Epoch == epoch && !Lapsed(cur, now)
				switch {
				case err == nil && (!live || m.GetMaxEpoch() < old.GetMaxEpoch()):
					fail("admitted a write by %s at %d, lease %+v, max_epoch %d over %d", id, epoch, cur, m.GetMaxEpoch(), old.GetMaxEpoch())
				case live != !errors.Is(err, ErrNotLeaseHolder):
					fail("write by %s at %d, lease %+v: %v", id, epoch, cur, err)
				}
				if err == nil {
					old = m
				}
			}
		}
	}
}
