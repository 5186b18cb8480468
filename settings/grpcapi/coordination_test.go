package grpcapi

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/store"
)

func TestLeaseAcquireRenewExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, stop := newEnv(t)
		defer stop()
		acquire := func(id string, ttl time.Duration) *mcsimv1.AcquireLeaseResponse {
			t.Helper()
			r, err := e.coord.AcquireLease(t.Context(), &mcsimv1.AcquireLeaseRequest{MasterId: id, TtlMs: ttl.Milliseconds(), Address: id + ":7000"})
			if err != nil {
				t.Fatalf("AcquireLease(%s): %v", id, err)
			}
			return r
		}

		a := acquire("m1", 10*time.Second)
		if !a.GetGranted() || a.GetHolder() != "m1" || a.GetLeaseEpoch() != 1 || a.GetRemainingMs() != 10000 || a.GetHolderAddress() != "m1:7000" {
			t.Fatalf("first acquire = %v, want granted to m1 at epoch 1 with 10000 ms left", a)
		}
		b := acquire("m2", 10*time.Second)
		if b.GetGranted() || b.GetHolder() != "m1" || b.GetLeaseEpoch() != 1 || b.GetHolderAddress() != "m1:7000" {
			t.Fatalf("m2 while m1 holds = %v, want refused, holder m1 epoch 1", b)
		}

		time.Sleep(6 * time.Second) // virtual
		if r := acquire("m2", 10*time.Second); r.GetGranted() || r.GetRemainingMs() != 4000 {
			t.Fatalf("m2 after 6 s = %v, want refused with 4000 ms left", r)
		}
		if r := acquire("m1", 10*time.Second); !r.GetGranted() || r.GetLeaseEpoch() != 1 || r.GetRemainingMs() != 10000 {
			t.Fatalf("m1 renewal = %v, want granted, same epoch 1, 10000 ms left", r)
		}

		time.Sleep(10 * time.Second) // m1 missed its renewal: lapsed
		c := acquire("m2", 10*time.Second)
		if !c.GetGranted() || c.GetHolder() != "m2" || c.GetLeaseEpoch() != 2 {
			t.Fatalf("m2 after the lease lapsed = %v, want granted at epoch 2", c)
		}

		// Stale release does nothing; the holder's release frees it and the
		// next holder gets a larger epoch.
		if r, err := e.coord.ReleaseLease(t.Context(), &mcsimv1.ReleaseLeaseRequest{MasterId: "m1", LeaseEpoch: 1}); err != nil || r.GetReleased() {
			t.Fatalf("stale ReleaseLease(m1, 1) = %v, %v; want not released", r, err)
		}
		if r, err := e.coord.ReleaseLease(t.Context(), &mcsimv1.ReleaseLeaseRequest{MasterId: "m2", LeaseEpoch: 2}); err != nil || !r.GetReleased() {
			t.Fatalf("ReleaseLease(m2, 2) = %v, %v; want released", r, err)
		}
		if r := acquire("m1", 10*time.Second); !r.GetGranted() || r.GetLeaseEpoch() != 3 {
			t.Fatalf("m1 after release = %v, want granted at epoch 3", r)
		}
		// The store's own record of its decisions: what a scenario judges
		// single_primary and times takeovers by. Refusals are not in it.
		if got, want := e.leases.String(), "m1:1:grant m1:1:renew m2:2:grant m2:2:release m1:3:grant"; got != want {
			t.Errorf("OnLease saw %q, want %q", got, want)
		}
	})
}

func TestLeaseBadRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, stop := newEnv(t)
		defer stop()
		for _, tc := range []struct {
			req   *mcsimv1.AcquireLeaseRequest
			field string
		}{
			{&mcsimv1.AcquireLeaseRequest{MasterId: "m1", TtlMs: 0}, "ttl_ms"},
			{&mcsimv1.AcquireLeaseRequest{MasterId: "m1", TtlMs: -5}, "ttl_ms"},
			{&mcsimv1.AcquireLeaseRequest{TtlMs: 1000}, "master_id"},
		} {
			_, err := e.coord.AcquireLease(t.Context(), tc.req)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("AcquireLease(%v) = %v, want InvalidArgument naming %s", tc.req, err, tc.field)
			}
		}
		if l := e.st.CurrentLease(); l.Holder != "" || l.Epoch != 0 {
			t.Errorf("lease after bad requests = %+v, want untouched", l)
		}
		if _, err := e.coord.ReleaseLease(t.Context(), &mcsimv1.ReleaseLeaseRequest{}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ReleaseLease without master_id = %v, want InvalidArgument", err)
		}
	})
}

func shardMap(maxEpoch uint64, owners ...string) *mcsimv1.ShardMap {
	m := &mcsimv1.ShardMap{MaxEpoch: maxEpoch, Shards: int32(len(owners))}
	for i, o := range owners {
		m.Assignments = append(m.Assignments, &mcsimv1.ShardAssignment{Shard: int32(i), CoreappId: o, Epoch: maxEpoch})
	}
	return m
}

func TestWriteShardMapFencedByLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, stop := newEnv(t)
		defer stop()
		ctx := t.Context()
		if _, err := e.coord.AcquireLease(ctx, &mcsimv1.AcquireLeaseRequest{MasterId: "m1", TtlMs: 5000}); err != nil {
			t.Fatal(err)
		}
		w1, err := e.coord.WriteShardMap(ctx, &mcsimv1.WriteShardMapRequest{MasterId: "m1", LeaseEpoch: 1, ShardMap: shardMap(1, "c1", "c2")})
		if err != nil {
			t.Fatalf("WriteShardMap by the holder: %v", err)
		}

		time.Sleep(6 * time.Second) // m1's lease lapses; m2 takes over
		a, err := e.coord.AcquireLease(ctx, &mcsimv1.AcquireLeaseRequest{MasterId: "m2", TtlMs: 5000})
		if err != nil || !a.GetGranted() || a.GetLeaseEpoch() != 2 {
			t.Fatalf("m2 takeover = %v, %v; want granted at epoch 2", a, err)
		}

		// The old primary, still believing, writes with its stale epoch.
		_, err = e.coord.WriteShardMap(ctx, &mcsimv1.WriteShardMapRequest{MasterId: "m1", LeaseEpoch: 1, ShardMap: shardMap(2, "c3", "c2")})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("write with stale lease epoch = %v, want FailedPrecondition", err)
		}
		t.Logf("stale write refused: %v", err)
		// m2 at a wrong epoch is refused too.
		if _, err := e.coord.WriteShardMap(ctx, &mcsimv1.WriteShardMapRequest{MasterId: "m2", LeaseEpoch: 1, ShardMap: shardMap(2, "c3", "c2")}); status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("m2 at epoch 1 = %v, want FailedPrecondition", err)
		}

		w2, err := e.coord.WriteShardMap(ctx, &mcsimv1.WriteShardMapRequest{MasterId: "m2", LeaseEpoch: 2, ShardMap: shardMap(2, "c3", "c2")})
		if err != nil {
			t.Fatalf("write at the current epoch: %v", err)
		}
		if w2.GetVersion() <= w1.GetVersion() {
			t.Fatalf("version %d after %d, want it to grow", w2.GetVersion(), w1.GetVersion())
		}
		got, err := e.coord.GetShardMap(ctx, &mcsimv1.GetShardMapRequest{})
		if err != nil {
			t.Fatal(err)
		}
		m := got.GetShardMap()
		if m.GetVersion() != w2.GetVersion() || m.GetMaxEpoch() != 2 || m.GetAssignments()[0].GetCoreappId() != "c3" {
			t.Fatalf("GetShardMap = %v, want m2's map at version %d", m, w2.GetVersion())
		}

		// Epochs only grow: a lower max_epoch is refused even from the holder.
		if _, err := e.coord.WriteShardMap(ctx, &mcsimv1.WriteShardMapRequest{MasterId: "m2", LeaseEpoch: 2, ShardMap: shardMap(1, "c1", "c2")}); status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("max_epoch going down = %v, want FailedPrecondition", err)
		}
	})
}

func TestWriteShardMapValidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, stop := newEnv(t)
		defer stop()
		ctx := t.Context()
		if _, err := e.coord.AcquireLease(ctx, &mcsimv1.AcquireLeaseRequest{MasterId: "m1", TtlMs: 5000}); err != nil {
			t.Fatal(err)
		}
		gap := shardMap(3, "a", "b")
		gap.Assignments[1].Shard = 5
		highEpoch := shardMap(3, "a", "b")
		highEpoch.Assignments[0].Epoch = 4
		short := shardMap(3, "a", "b")
		short.Shards = 4
		three := shardMap(3, "a", "b", "c")
		for _, tc := range []struct {
			name  string
			m     *mcsimv1.ShardMap
			field string
		}{
			{"nil map", nil, "shard_map"},
			{"shards not a valid count", three, "shard_map.shards"},
			{"fewer assignments than shards", short, "shard_map.assignments"},
			{"shard out of order", gap, "shard_map.assignments[1].shard"},
			{"epoch above max_epoch", highEpoch, "shard_map.assignments[0].epoch"},
		} {
			_, err := e.coord.WriteShardMap(ctx, &mcsimv1.WriteShardMapRequest{MasterId: "m1", LeaseEpoch: 1, ShardMap: tc.m})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.field+":") {
				t.Errorf("%s: %v, want InvalidArgument naming %s", tc.name, err, tc.field)
			}
		}
		if _, err := e.coord.WriteShardMap(ctx, &mcsimv1.WriteShardMapRequest{LeaseEpoch: 1, ShardMap: shardMap(1, "a")}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("no master_id: %v, want InvalidArgument", err)
		}
		got, err := e.coord.GetShardMap(ctx, &mcsimv1.GetShardMapRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetShardMap().GetVersion() != 0 {
			t.Errorf("shard map after only bad writes = %v, want untouched (version 0)", got.GetShardMap())
		}
	})
}

// skewedStore judges leases by a clock skew ahead of the caller's, as
// pgstore judges by the database's clock whatever the settings process's
// clock says.
type skewedStore struct {
	store.Backend
	skew time.Duration
}

func (s skewedStore) AcquireLease(masterID, incarnation, address string, ttl time.Duration, now time.Time) (store.LeaseResult, error) {
	return s.Backend.AcquireLease(masterID, incarnation, address, ttl, now.Add(s.skew))
}

// TestRemainingIsOnTheStoresClock: the time left is measured on the clock
// the store judged by, so a settings process whose clock is behind the
// store's neither shortens a fresh lease nor reports a lapsed one as live.
func TestRemainingIsOnTheStoresClock(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	local := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	c := &coordinationServer{cfg: Config{Store: skewedStore{st, 3 * time.Second}, Logger: zerolog.Nop(), Now: func() time.Time { return local }}}
	for _, step := range []struct {
		who         string
		wantGranted bool
		wantLeft    int64
	}{
		{"m1", true, 10000},  // fresh grant: the whole ttl, not ttl-3s
		{"m2", false, 10000}, // refused: as much as the holder has
	} {
		r, err := c.AcquireLease(t.Context(), &mcsimv1.AcquireLeaseRequest{MasterId: step.who, TtlMs: 10000})
		if err != nil || r.GetGranted() != step.wantGranted || r.GetRemainingMs() != step.wantLeft {
			t.Fatalf("%s: %v, %v; want granted=%v with %d ms left", step.who, r, err, step.wantGranted, step.wantLeft)
		}
	}
}
