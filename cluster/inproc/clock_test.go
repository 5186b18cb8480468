package inproc_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/cluster/inproc"
	"github.com/mcsim/mcsim/internal/clock"
	"github.com/mcsim/mcsim/master/failover"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// lockedBuffer collects the nodes' logs for a test to read.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines(contains ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, line := range strings.Split(l.b.String(), "\n") {
		for _, c := range contains {
			if !strings.Contains(line, c) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

// Rule 3 with a slow clock: a master whose clock runs slow believes its
// lease longer than the store does. Here the primary P runs at rate 0.3 and
// is cut off from the store right after a renewal: the store lets its lease
// lapse after the TTL (3 s) and the secondary S takes over, while P, by its
// own clock, holds the lease for 10 s of real time. In that window P still
// acts: a coreapp it stopped hearing just before its last renewal reaches
// its unhealthy deadline, and P fails its shard over to the standby. The
// standby has heard from S by then, at a newer lease epoch, so it refuses
// P's assignment (the coreapps' lease-epoch fencing), and the gateway's
// witness sees every key owned by one session at a time.
func TestSlowClockDeposedPrimaryIsFenced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			hb, ui = time.Second, 3 * time.Second // the lease: TTL 3s, renewed every 1s
			rate   = 0.3
		)
		clocks := map[string]*clock.Skewed{}
		opts := inproc.Options{Masters: 2, Coreapps: 3, Shards: 2, HeartbeatInterval: hb, UnhealthyInterval: ui,
			Clocks: map[string]clock.Clock{}}
		for i := 1; i <= opts.Masters; i++ {
			id := fmt.Sprintf("master-%d", i)
			clocks[id] = clock.NewSkewed(clock.Real())
			opts.Clocks[id] = clocks[id]
		}
		// The action log in real time: a skewed master's own times would not
		// compare with the store's and the gateway's.
		var log actionLog
		opts.Observe = func(m string, _ time.Time, a failover.Action) { log.observe(m, time.Now(), a) }
		var logs lockedBuffer
		c := startClusterLogging(t, opts, zerolog.New(zerolog.MultiLevelWriter(&logs, zerolog.NewTestWriter(t))).Level(zerolog.WarnLevel))
		ids := []string{"master-1", "master-2"}
		waitUntil(t, 10*time.Second, "both shards served", allServed(c, 2))
		var p string
		waitUntil(t, 10*time.Second, "a primary", func() bool { p = primary(t, c, ids...); return p != "" })
		s := ids[0]
		if s == p {
			s = ids[1]
		}
		victim, other := holder(c, 0), holder(c, 1)
		standby := ""
		for i := 1; i <= opts.Coreapps; i++ {
			if id := fmt.Sprintf("coreapp-%d", i); id != victim && id != other {
				standby = id
			}
		}
		oldEpoch := masterStatus(t, c, p).GetLeaseEpoch()

		// The masters stop hearing the victim (it still serves at the
		// gateway). Wait for P's first heartbeat to it that goes unanswered,
		// then for a renewal of P's lease after that heartbeat: P's unhealthy
		// deadline for the victim then falls inside its last lease.
		t0 := time.Now()
		if err := c.CutCoreapp(victim, inproc.MasterLink); err != nil {
			t.Fatal(err)
		}
		toVictim := func(a failover.Action) bool {
			h, ok := a.(failover.SendHeartbeat)
			return ok && h.Coreapp == victim
		}
		var th time.Time
		waitUntil(t, 2*hb, "P heartbeats the victim", func() bool {
			e, ok := log.firstBy(p, "", t0, toVictim)
			th = e.at
			return ok
		})
		waitUntil(t, 2*hb, "P renews its lease after that heartbeat", func() bool {
			l := c.Store.CurrentLease()
			return l.Holder == p && l.Expires.After(th.Add(ui))
		})
		// Right after the renewal: P's clock slows and P loses the store.
		if err := clocks[p].SetRate(rate); err != nil {
			t.Fatal(err)
		}
		if err := c.CutMasterFromStore(p); err != nil {
			t.Fatal(err)
		}
		lastRenewal := c.Store.CurrentLease().Expires.Add(-ui)
		ownEnd := lastRenewal.Add(time.Duration(float64(ui) / rate))
		t.Logf("victim %s, standby %s; P=%s cut from the store %v after its last renewal; the store's lease ends at +%v, P's own at +%v (real)",
			victim, standby, p, time.Since(lastRenewal), ui, ownEnd.Sub(lastRenewal))

		var tTake time.Time
		waitUntil(t, ui+hb, "S takes over", func() bool {
			st := masterStatus(t, c, s)
			tTake = time.Now()
			return st.GetRole() == mcsimv1.MasterRole_MASTER_ROLE_PRIMARY
		})
		newEpoch := masterStatus(t, c, s).GetLeaseEpoch()
		// The hazard itself: P, deposed, still believes it is primary.
		if st := masterStatus(t, c, p); st.GetRole() != mcsimv1.MasterRole_MASTER_ROLE_PRIMARY {
			t.Fatalf("%s says %v when %s took over %v after its last renewal; with a clock at %v it should still believe its lease (the test proves nothing otherwise)",
				p, st.GetRole(), s, tTake.Sub(lastRenewal), rate)
		}
		if newEpoch <= oldEpoch {
			t.Fatalf("%s took over at lease epoch %d, want > %d", s, newEpoch, oldEpoch)
		}
		t.Logf("%s took over at +%v at lease epoch %d; %s still believes it is primary at epoch %d", s, tTake.Sub(lastRenewal), newEpoch, p, oldEpoch)

		// P steps down when its own clock says the lease ran out (or sooner,
		// when its fenced shard-map write fails); meanwhile it acts.
		waitUntil(t, ownEnd.Sub(time.Now())+hb, "P steps down", func() bool {
			return masterStatus(t, c, p).GetRole() != mcsimv1.MasterRole_MASTER_ROLE_PRIMARY
		})
		t.Logf("%s stepped down at +%v", p, time.Since(lastRenewal))
		// What the deposed master sent the coreapps after the takeover, each
		// of which a coreapp must refuse on the lease epoch (rule 2).
		refusedOnLease := func(coreapp, what string, shard int, epoch uint64) bool {
			return len(logs.lines(`"node_id":"`+coreapp+`"`, what+" refused", fmt.Sprintf(`"shard":%d,"epoch":%d,`, shard, epoch),
				fmt.Sprintf("lease epoch %d is older than lease epoch %d", oldEpoch, newEpoch))) > 0
		}
		var assigns []failover.Assign
		for _, e := range log.after(p, tTake) {
			switch a := e.action.(type) {
			case failover.Assign:
				assigns = append(assigns, a)
				t.Logf("deposed %s sent Assign shard %d epoch %d to %s at +%v (lease epoch %d)", p, a.Shard, a.Epoch, a.Coreapp, e.at.Sub(lastRenewal), oldEpoch)
			case failover.Release:
				// The deposed master learns from heartbeat answers that the
				// standby serves the shard at the new primary's epoch, and
				// tries to take it away: fenced, or the shard would go dark.
				t.Logf("deposed %s sent Release shard %d epoch %d to %s at +%v", p, a.Shard, a.Epoch, a.Coreapp, e.at.Sub(lastRenewal))
				if !refusedOnLease(a.Coreapp, "release", a.Shard, a.Epoch) {
					t.Errorf("%s did not refuse the deposed master's Release of shard %d epoch %d on its lease epoch", a.Coreapp, a.Shard, a.Epoch)
				}
			}
		}
		if len(assigns) == 0 {
			t.Fatalf("the deposed %s sent no assignment after %s took over; the test needs it to act (actions: %d)", p, s, len(log.after(p, tTake)))
		}
		for _, a := range assigns {
			// The coreapp refused it on the lease epoch (rule 2), so it never
			// opened a session with it at the gateway.
			if !refusedOnLease(a.Coreapp, "assign", a.Shard, a.Epoch) {
				t.Errorf("%s did not refuse the deposed master's Assign of shard %d epoch %d on its lease epoch", a.Coreapp, a.Shard, a.Epoch)
			}
			for _, ev := range c.GatewayLog() {
				if ev.GetCoreappId() == a.Coreapp && ev.GetShard() == int32(a.Shard) && ev.GetEpoch() == a.Epoch {
					t.Errorf("the gateway saw %v of the deposed master's shard %d epoch %d", ev.GetKind(), a.Shard, a.Epoch)
				}
			}
		}

		// Heal; the old primary comes back as a secondary and the new one
		// has moved the victim's shard.
		if err := c.HealMaster(p); err != nil {
			t.Fatal(err)
		}
		if err := clocks[p].SetRate(1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * ui)
		if got := primary(t, c, ids...); got != s {
			t.Errorf("primary %q after the heal, want %s", got, s)
		}
		if h := holder(c, 0); h == victim || h == "" {
			t.Errorf("shard 0 held by %q, want it failed over from %s by %s", h, victim, s)
		}
		assertWitnessClean(t, c)
	})
}
