package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// t0 is the tests' reference time (a func: no package-level vars).
func t0() time.Time { return time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC) }

func TestDecideAcquire(t *testing.T) {
	const ttl = 5 * time.Second
	held := Lease{Holder: "m1", Incarnation: "i1", Address: "a1", Epoch: 4, Expires: t0().Add(3 * time.Second)}
	for _, tc := range []struct {
		name    string
		cur     Lease
		who     string
		inc     string // the caller's incarnation
		now     time.Time
		granted bool
		want    Lease
	}{
		{"free (never taken)", Lease{}, "m1", "i1", t0(), true, Lease{Holder: "m1", Incarnation: "i1", Address: "addr", Epoch: 1, Expires: t0().Add(ttl)}},
		{"free (released at epoch 4)", Lease{Epoch: 4}, "m2", "i1", t0(), true, Lease{Holder: "m2", Incarnation: "i1", Address: "addr", Epoch: 5, Expires: t0().Add(ttl)}},
		{"held by other", held, "m2", "i1", t0(), false, held},
		{"held by other, one ns before expiry", held, "m2", "i1", held.Expires.Add(-1), false, held},
		{"expired exactly at now", held, "m2", "i1", held.Expires, true, Lease{Holder: "m2", Incarnation: "i1", Address: "addr", Epoch: 5, Expires: held.Expires.Add(ttl)}},
		{"expired long ago", held, "m2", "i1", t0().Add(time.Hour), true, Lease{Holder: "m2", Incarnation: "i1", Address: "addr", Epoch: 5, Expires: t0().Add(time.Hour + ttl)}},
		{"renew by holder", held, "m1", "i1", t0().Add(time.Second), true, Lease{Holder: "m1", Incarnation: "i1", Address: "addr", Epoch: 4, Expires: t0().Add(time.Second + ttl)}},
		{"holder after its own expiry gets a new epoch", held, "m1", "i1", held.Expires, true, Lease{Holder: "m1", Incarnation: "i1", Address: "addr", Epoch: 5, Expires: held.Expires.Add(ttl)}},
		{"same id, another incarnation, while the lease runs", held, "m1", "i2", t0().Add(time.Second), false, held},
		{"same id, another incarnation, once it lapsed", held, "m1", "i2", held.Expires, true, Lease{Holder: "m1", Incarnation: "i2", Address: "addr", Epoch: 5, Expires: held.Expires.Add(ttl)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decideAcquire(tc.cur, tc.who, tc.inc, "addr", ttl, tc.now)
			if got.Granted != tc.granted || !leaseEqual(got.Lease, tc.want) {
				t.Fatalf("decideAcquire = %+v, want granted=%v %+v", got, tc.granted, tc.want)
			}
			// A renewal is the live holder's grant at the same epoch.
			if renewal := tc.granted && tc.cur.Holder == tc.who && tc.want.Epoch == tc.cur.Epoch; got.Renewal != renewal {
				t.Errorf("Renewal = %v, want %v", got.Renewal, renewal)
			}
		})
	}
}

func TestDecideRelease(t *testing.T) {
	held := Lease{Holder: "m1", Address: "a1", Epoch: 4, Expires: t0()}
	for _, tc := range []struct {
		name  string
		cur   Lease
		who   string
		epoch uint64
		ok    bool
		want  Lease
	}{
		{"holder at its epoch", held, "m1", 4, true, Lease{Epoch: 4}},
		{"stale epoch", held, "m1", 3, false, held},
		{"future epoch", held, "m1", 5, false, held},
		{"other master", held, "m2", 4, false, held},
		{"already free", Lease{Epoch: 4}, "", 4, false, Lease{Epoch: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := decideRelease(tc.cur, tc.who, tc.epoch)
			if ok != tc.ok || !leaseEqual(got, tc.want) {
				t.Fatalf("decideRelease = %+v %v, want %+v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestAdmitShardMapWrite(t *testing.T) {
	held := Lease{Holder: "m1", Epoch: 4, Expires: t0().Add(time.Second)}
	old := &mcsimv1.ShardMap{Version: 7, MaxEpoch: 10, Shards: 2}
	good := &mcsimv1.ShardMap{MaxEpoch: 11, Shards: 2, Assignments: []*mcsimv1.ShardAssignment{
		{Shard: 0, CoreappId: "c1", Epoch: 11}, {Shard: 1, CoreappId: "c2", Epoch: 9},
	}}
	for _, tc := range []struct {
		name    string
		lease   Lease
		who     string
		epoch   uint64
		now     time.Time
		m       *mcsimv1.ShardMap
		wantErr error  // nil: admitted
		wantMsg string // substring of the error
	}{
		{"holder at its epoch", held, "m1", 4, t0(), good, nil, ""},
		{"same max_epoch", held, "m1", 4, t0(), &mcsimv1.ShardMap{MaxEpoch: 10, Shards: 2}, nil, ""},
		{"lease free", Lease{Epoch: 4}, "m1", 4, t0(), good, ErrNotLeaseHolder, "free"},
		{"wrong holder", held, "m2", 4, t0(), good, ErrNotLeaseHolder, `held by "m1"`},
		{"stale lease epoch", held, "m1", 3, t0(), good, ErrNotLeaseHolder, "current epoch is 4"},
		{"expired lease", held, "m1", 4, held.Expires, good, ErrNotLeaseHolder, "expired"},
		{"max_epoch goes down", held, "m1", 4, t0(), &mcsimv1.ShardMap{MaxEpoch: 9, Shards: 2}, ErrEpochRegression, "max_epoch"},
		{"nil map", held, "m1", 4, t0(), nil, nil, "shard_map: must not be nil"},
		{"no shards", held, "m1", 4, t0(), &mcsimv1.ShardMap{MaxEpoch: 10}, nil, "shard_map.shards"},
		{"shard out of range", held, "m1", 4, t0(), &mcsimv1.ShardMap{MaxEpoch: 10, Shards: 2, Assignments: []*mcsimv1.ShardAssignment{{Shard: 2}}}, nil, "assignments[0].shard"},
		{"shard twice", held, "m1", 4, t0(), &mcsimv1.ShardMap{MaxEpoch: 10, Shards: 2, Assignments: []*mcsimv1.ShardAssignment{{Shard: 1}, {Shard: 1}}}, nil, "appears twice"},
		{"assignment above max_epoch", held, "m1", 4, t0(), &mcsimv1.ShardMap{MaxEpoch: 10, Shards: 2, Assignments: []*mcsimv1.ShardAssignment{{Shard: 0, Epoch: 12}}}, nil, "assignments[0].epoch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := admitShardMapWrite(tc.lease, tc.who, tc.epoch, tc.now, old, tc.m)
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantMsg)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v does not wrap %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && (errors.Is(err, ErrNotLeaseHolder) || errors.Is(err, ErrEpochRegression)) {
				t.Fatalf("validation error %v wraps a fencing sentinel", err)
			}
		})
	}
}

func TestStoreLeaseLifecycle(t *testing.T) {
	s, _ := openTemp(t)
	const ttl = 5 * time.Second
	r, err := s.AcquireLease("m1", "", "a1", ttl, t0())
	if err != nil || !r.Granted || r.Lease.Epoch != 1 {
		t.Fatalf("first acquire: %+v %v", r, err)
	}
	if r, _ = s.AcquireLease("m2", "", "a2", ttl, t0().Add(time.Second)); r.Granted || r.Lease.Holder != "m1" || r.Lease.Address != "a1" {
		t.Fatalf("other master while held: %+v", r)
	}
	if r, _ = s.AcquireLease("m1", "", "a1", ttl, t0().Add(2*time.Second)); !r.Granted || r.Lease.Epoch != 1 || !r.Lease.Expires.Equal(t0().Add(7*time.Second)) {
		t.Fatalf("renew: %+v", r)
	}
	if ok, err := s.ReleaseLease("m1", 0); ok || err != nil {
		t.Fatalf("release with stale epoch: %v %v", ok, err)
	}
	if ok, err := s.ReleaseLease("m1", 1); !ok || err != nil {
		t.Fatalf("release: %v %v", ok, err)
	}
	if l := s.CurrentLease(); l.Holder != "" || l.Epoch != 1 {
		t.Fatalf("after release: %+v", l)
	}
	if r, _ = s.AcquireLease("m2", "", "a2", ttl, t0().Add(3*time.Second)); !r.Granted || r.Lease.Epoch != 2 {
		t.Fatalf("acquire after release: %+v", r)
	}
	// m2 stalls past expiry; m1 takes over with a larger epoch.
	if r, _ = s.AcquireLease("m1", "", "a1", ttl, t0().Add(8*time.Second)); !r.Granted || r.Lease.Epoch != 3 || r.Lease.Holder != "m1" {
		t.Fatalf("takeover after expiry: %+v", r)
	}
	if _, err := s.AcquireLease("", "", "a", ttl, t0()); err == nil || !strings.Contains(err.Error(), "master_id") {
		t.Fatalf("empty master_id: %v", err)
	}
	if _, err := s.AcquireLease("m1", "", "a", 0, t0()); err == nil || !strings.Contains(err.Error(), "ttl") {
		t.Fatalf("zero ttl: %v", err)
	}
}

func TestWriteShardMapFencing(t *testing.T) {
	s, _ := openTemp(t)
	const ttl = 5 * time.Second
	if m, err := s.ShardMap(); err != nil || m.GetVersion() != 0 || len(m.GetAssignments()) != 0 {
		t.Fatalf("initial shard map %v %v", m, err)
	}
	r1, _ := s.AcquireLease("m1", "", "a1", ttl, t0())
	m := &mcsimv1.ShardMap{MaxEpoch: 1, Shards: 1, Assignments: []*mcsimv1.ShardAssignment{{Shard: 0, CoreappId: "c1", Epoch: 1}}}
	v, err := s.WriteShardMap("m1", r1.Lease.Epoch, m, t0().Add(time.Second))
	if err != nil || v != 1 || m.Version != 1 {
		t.Fatalf("first write: version %d (m.Version %d), %v", v, m.Version, err)
	}

	// m1 lapses; m2 takes over at epoch 2.
	r2, _ := s.AcquireLease("m2", "", "a2", ttl, t0().Add(6*time.Second))
	if !r2.Granted || r2.Lease.Epoch != 2 {
		t.Fatalf("takeover: %+v", r2)
	}
	refused := []struct {
		name  string
		who   string
		epoch uint64
		now   time.Time
	}{
		{"old holder, stale epoch", "m1", 1, t0().Add(6 * time.Second)},
		{"wrong holder at current epoch", "m1", 2, t0().Add(6 * time.Second)},
		{"holder after expiry", "m2", 2, t0().Add(11 * time.Second)},
	}
	for _, tc := range refused {
		stale := &mcsimv1.ShardMap{MaxEpoch: 5, Shards: 1}
		if _, err := s.WriteShardMap(tc.who, tc.epoch, stale, tc.now); !errors.Is(err, ErrNotLeaseHolder) {
			t.Fatalf("%s: error %v, want ErrNotLeaseHolder", tc.name, err)
		}
		if stale.Version != 0 {
			t.Fatalf("%s: refused write set m.Version", tc.name)
		}
	}
	// Epochs never shrink, even for the rightful holder.
	if _, err := s.WriteShardMap("m2", 2, &mcsimv1.ShardMap{MaxEpoch: 0, Shards: 1}, t0().Add(7*time.Second)); !errors.Is(err, ErrEpochRegression) {
		t.Fatalf("lower max_epoch: %v, want ErrEpochRegression", err)
	}
	got, _ := s.ShardMap()
	if got.GetVersion() != 1 || got.GetMaxEpoch() != 1 || got.GetAssignments()[0].GetCoreappId() != "c1" {
		t.Fatalf("refused writes changed the map: %v", got)
	}
	m2 := &mcsimv1.ShardMap{MaxEpoch: 2, Shards: 1, Assignments: []*mcsimv1.ShardAssignment{{Shard: 0, CoreappId: "c2", Epoch: 2}}}
	if v, err := s.WriteShardMap("m2", 2, m2, t0().Add(7*time.Second)); err != nil || v != 2 {
		t.Fatalf("write by new holder: %d %v", v, err)
	}
	// The returned map is a copy: editing it does not edit the store.
	got, _ = s.ShardMap()
	got.Assignments[0].CoreappId = "scribble"
	if again, _ := s.ShardMap(); again.GetAssignments()[0].GetCoreappId() != "c2" {
		t.Fatal("ShardMap returned the store's own message")
	}
}

func leaseEqual(a, b Lease) bool {
	return a.Holder == b.Holder && a.Incarnation == b.Incarnation && a.Address == b.Address && a.Epoch == b.Epoch && a.Expires.Equal(b.Expires)
}
