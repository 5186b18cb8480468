package inproc_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mcsim/mcsim/cluster/inproc"
	"github.com/mcsim/mcsim/master/failover"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Tests of high-availability masters (DESIGN.md rules 2, 3 and 4): a
// secondary takes over from a dead, paused or stopped primary, the old
// primary never acts again, and taking over causes no failover by itself.
// Every cluster here uses heartbeat 1s and unhealthy 3s, so the lease TTL
// is 3s and it is renewed every 1s.

const (
	haHeartbeat = time.Second
	haUnhealthy = 3 * time.Second
	haTTL       = haUnhealthy // the lease TTL defaults to unhealthy_interval
	haRenew     = haHeartbeat // and is renewed every heartbeat_interval
)

// haCluster starts masters master-1..master-m, 3 coreapps and 2 shards,
// waits for both shards to be served and a primary to exist, and returns
// the master ids and the primary.
func haCluster(t *testing.T, masters int, log *actionLog) (*inproc.Cluster, []string, string) {
	t.Helper()
	c := startCluster(t, inproc.Options{Masters: masters, Coreapps: 3, Shards: 2,
		HeartbeatInterval: haHeartbeat, UnhealthyInterval: haUnhealthy, Observe: log.observe})
	ids := make([]string, masters)
	for i := range ids {
		ids[i] = fmt.Sprintf("master-%d", i+1)
	}
	waitUntil(t, 10*time.Second, "both shards served", allServed(c, 2))
	var p string
	waitUntil(t, 10*time.Second, "a primary", func() bool { p = primary(t, c, ids...); return p != "" })
	return c, ids, p
}

// sleepToPhase sleeps to the next instant that is phase past a whole second
// (the bubble's clock starts on a whole second, and so do the renewal and
// heartbeat cycles), so faults land at a chosen point of the cycle.
func sleepToPhase(phase time.Duration) {
	now := time.Now()
	at := now.Truncate(time.Second).Add(phase)
	if !at.After(now) {
		at = at.Add(time.Second)
	}
	time.Sleep(at.Sub(now))
}

// firstBy is the first action of master (any master but `not` when master
// is "") at or after from that pred accepts.
func (l *actionLog) firstBy(master, not string, from time.Time, pred func(failover.Action) bool) (loggedAction, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.entries {
		if (master != "" && e.master != master) || (not != "" && e.master == not) || e.at.Before(from) {
			continue
		}
		if pred(e.action) {
			return e, true
		}
	}
	return loggedAction{}, false
}

// after lists master's actions strictly after from.
func (l *actionLog) after(master string, from time.Time) []loggedAction {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loggedAction
	for _, e := range l.entries {
		if e.master == master && e.at.After(from) {
			out = append(out, e)
		}
	}
	return out
}

func isHeartbeat(a failover.Action) bool { _, ok := a.(failover.SendHeartbeat); return ok }
func isStall(a failover.Action) bool     { _, ok := a.(failover.StallDetected); return ok }

func masterStatus(t *testing.T, c *inproc.Cluster, id string) *mcsimv1.MasterServiceStatusResponse {
	t.Helper()
	m := c.Master(id)
	if m == nil {
		t.Fatalf("master %s is not running", id)
	}
	st, err := m.Status(context.Background())
	if err != nil {
		t.Fatalf("status of %s: %v", id, err)
	}
	return st
}

// takeover waits for a primary other than old and returns it with the time
// of its first heartbeat at or after from (the moment it started acting).
func takeover(t *testing.T, c *inproc.Cluster, log *actionLog, ids []string, old string, from time.Time, limit time.Duration) (string, time.Time) {
	t.Helper()
	var next string
	waitUntil(t, limit, "a new primary", func() bool {
		next = primary(t, c, ids...)
		return next != "" && next != old
	})
	e, ok := log.firstBy(next, "", from, isHeartbeat)
	if !ok {
		t.Fatalf("%s says it is primary but sent no heartbeat since %v", next, from)
	}
	if other, ok := log.firstBy("", old, from, isHeartbeat); ok && other.at.Before(e.at) {
		t.Fatalf("%s heartbeated at %v, before the new primary %s did", other.master, other.at, next)
	}
	return next, e.at
}

// expectNoFailover records the cluster (2 shards) now; the check it
// returns fails the test if, since then, cause declared a coreapp
// unhealthy, failed a shard over, changed a session at the gateway or moved
// a shard to another holder.
func expectNoFailover(c *inproc.Cluster, log *actionLog, cause string) func(*testing.T) {
	gw, unhealthy, failovers := len(c.GatewayLog()), log.count(isUnhealthy), log.count(isFailover)
	holders := []string{holder(c, 0), holder(c, 1)}
	return func(t *testing.T) {
		t.Helper()
		if n := log.count(isUnhealthy) - unhealthy; n != 0 {
			t.Errorf("%d coreapps declared unhealthy because of %s", n, cause)
		}
		if n := log.count(isFailover) - failovers; n != 0 {
			t.Errorf("%d shards failed over because of %s", n, cause)
		}
		if n := len(c.GatewayLog()) - gw; n != 0 {
			t.Errorf("the gateway saw %d session changes during %s; want none", n, cause)
		}
		if got := []string{holder(c, 0), holder(c, 1)}; !slices.Equal(got, holders) {
			t.Errorf("holders %v after %s, want %v", got, cause, holders)
		}
	}
}

// A killed primary (no lease release) is replaced within TTL + renew
// interval of the kill, and taking over alone fails nothing over.
func TestKilledPrimaryReplacedWithoutFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log actionLog
		c, ids, old := haCluster(t, 3, &log)
		sleepToPhase(700 * time.Millisecond)
		noFailover := expectNoFailover(c, &log, "the takeover")

		t0 := time.Now()
		if err := c.KillMaster(old); err != nil {
			t.Fatal(err)
		}
		next, at := takeover(t, c, &log, ids, old, t0, haTTL+haRenew+time.Second)
		if d := at.Sub(t0); d > haTTL+haRenew {
			t.Errorf("%s took over %v after the kill; rule 3 allows TTL + renew interval = %v", next, d, haTTL+haRenew)
		}

		// Give a false failover every chance to happen: two unhealthy
		// intervals past the takeover.
		time.Sleep(2*haUnhealthy + haHeartbeat)
		if p := primary(t, c, ids...); p != next {
			t.Errorf("primary is %q, want %s to stay primary", p, next)
		}
		noFailover(t)
		assertWitnessClean(t, c)
	})
}

// A secondary that gossip has not told about the shard owners yet (it
// joined before them, and memberlist's push-pull has not come round) still
// takes over without a failover: it dials the owners at the addresses the
// old primary stored with the shard map. Without them its heartbeats had
// nowhere to go, and rule 1 moved the shards of live owners (seen in the
// end-to-end test on a loaded machine).
func TestTakeoverBeforeGossipShowsTheOwnersFailsNothingOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log actionLog
		c, _, old := haCluster(t, 1, &log)
		if err := c.StartMasterSeeing("master-2"); err != nil {
			t.Fatal(err)
		}
		ids := []string{old, "master-2"}
		time.Sleep(2 * haRenew) // master-2 is a secondary now
		noFailover := expectNoFailover(c, &log, "the takeover")

		t0 := time.Now()
		if err := c.KillMaster(old); err != nil {
			t.Fatal(err)
		}
		next, _ := takeover(t, c, &log, ids, old, t0, haTTL+haRenew+time.Second)
		if next != "master-2" {
			t.Fatalf("primary after the kill is %s, want master-2", next)
		}
		time.Sleep(2*haUnhealthy + haHeartbeat)
		noFailover(t)
		assertWitnessClean(t, c)
	})
}

// A master restarted under its own id while its old lease still runs is a
// new holder (a new incarnation): it acts only once that lease has lapsed,
// and under a larger lease epoch, so the old process (had it been paused
// rather than killed) and the new one never share an epoch (rule 3).
func TestRestartedMasterWaitsForItsOldLeaseAndTakesANewEpoch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log actionLog
		c, _, id := haCluster(t, 1, &log)
		sleepToPhase(500 * time.Millisecond) // mid-way between renewals
		before := masterStatus(t, c, id).GetLeaseEpoch()
		noFailover := expectNoFailover(c, &log, "the restart")

		t0 := time.Now()
		if err := c.KillMaster(id); err != nil {
			t.Fatal(err)
		}
		if err := c.StartMaster(id); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, haTTL+haRenew+time.Second, "the restarted master is primary", func() bool { return primary(t, c, id) == id })
		e, ok := log.firstBy(id, "", t0, isHeartbeat)
		if !ok {
			t.Fatal("the restarted master is primary but sent no heartbeat")
		}
		// The old lease was renewed at most one renew interval before t0.
		if earliest := t0.Add(haTTL - haRenew); e.at.Before(earliest) {
			t.Errorf("the restarted master acted at t0+%v, before its old lease could have lapsed (t0+%v)", e.at.Sub(t0), earliest.Sub(t0))
		}
		if after := masterStatus(t, c, id).GetLeaseEpoch(); after <= before {
			t.Errorf("lease epoch %d after the restart, want > %d", after, before)
		}
		time.Sleep(2*haUnhealthy + haHeartbeat)
		noFailover(t)
		assertWitnessClean(t, c)
	})
}

// A primary paused past its TTL (SIGSTOP) while a coreapp crashes: the
// secondary takes over and fails the shard over; when the old primary
// resumes it steps down before it sends anything, so none of its
// (stale) decisions reaches a coreapp, the store or the gateway.
func TestPrimaryPausedPastTTLStepsDownOnResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log actionLog
		c, ids, old := haCluster(t, 2, &log)
		oldEpoch := masterStatus(t, c, old).GetLeaseEpoch()
		sleepToPhase(300 * time.Millisecond)
		victim := holder(c, 0)

		// Long enough for the takeover and the failover to happen while the
		// old primary is paused.
		const pause = 12 * time.Second
		tf := time.Now()
		if err := c.FreezeMaster(old, pause); err != nil {
			t.Fatal(err)
		}
		if err := c.KillCoreapp(victim); err != nil {
			t.Fatal(err)
		}
		// Status of a paused master blocks until it resumes (as a stopped
		// process would not answer): ask only the other one.
		others := slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == old })
		next, tTake := takeover(t, c, &log, others, old, tf, haTTL+haRenew+time.Second)
		if d := tTake.Sub(tf); d > haTTL+haRenew {
			t.Errorf("takeover %v after the pause began; want <= %v", d, haTTL+haRenew)
		}
		waitUntil(t, haUnhealthy+haHeartbeat+time.Second, "shard 0 failed over by the new primary", func() bool {
			h := holder(c, 0)
			return h != "" && h != victim
		})
		if !time.Now().Before(tf.Add(pause)) {
			t.Fatalf("the failover came after the old primary resumed; the test needs a longer pause")
		}
		newEpoch := masterStatus(t, c, next).GetLeaseEpoch()
		if newEpoch <= oldEpoch {
			t.Fatalf("new primary %s holds lease epoch %d, want > %d", next, newEpoch, oldEpoch)
		}

		// Let the old primary resume and run for a while.
		time.Sleep(time.Until(tf.Add(pause)) + 3*haUnhealthy)
		if acts := log.after(old, tf); len(acts) > 0 {
			t.Errorf("the paused primary acted after it resumed with a lapsed lease (%d actions), first: %T %+v at pause+%v",
				len(acts), acts[0].action, acts[0].action, acts[0].at.Sub(tf))
		}
		if st := masterStatus(t, c, old); st.GetRole() != mcsimv1.MasterRole_MASTER_ROLE_SECONDARY {
			t.Errorf("resumed %s says it is %v, want secondary", old, st.GetRole())
		}
		if p := primary(t, c, ids...); p != next {
			t.Errorf("primary is %q after the resume, want %s", p, next)
		}
		assertWitnessClean(t, c)
	})
}

// A pause shorter than the TTL changes nothing: same primary at the same
// lease epoch, no coreapp blamed for heartbeats the master never sent
// (rule 4: it notices the gap in its own clock), no session change.
func TestPrimaryPausedWithinTTLKeepsLeaseAndBlamesNobody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log actionLog
		c, ids, old := haCluster(t, 2, &log)
		epoch := masterStatus(t, c, old).GetLeaseEpoch()
		sleepToPhase(300 * time.Millisecond)
		gwBefore := len(c.GatewayLog())

		// Paused 0.3s after a renewal for 1.5s: it resumes 1.8s into a 3s
		// lease, and 0.8s past its core's next wake-up (a stall: more than
		// half a heartbeat interval).
		tf := time.Now()
		if err := c.FreezeMaster(old, 1500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * haUnhealthy)
		if p := primary(t, c, ids...); p != old {
			t.Errorf("primary is %q after a pause shorter than the TTL, want %s", p, old)
		}
		if got := masterStatus(t, c, old).GetLeaseEpoch(); got != epoch {
			t.Errorf("lease epoch %d after the pause, want %d (no takeover)", got, epoch)
		}
		if _, ok := log.firstBy(old, "", tf, isStall); !ok {
			t.Errorf("%s did not notice its own pause (no StallDetected)", old)
		}
		if n := log.count(isUnhealthy); n != 0 {
			t.Errorf("%d coreapps declared unhealthy after the master's own pause", n)
		}
		if n := log.count(isFailover); n != 0 {
			t.Errorf("%d shards failed over after the master's own pause", n)
		}
		if n := len(c.GatewayLog()) - gwBefore; n != 0 {
			t.Errorf("the gateway saw %d session changes; want none", n)
		}
		assertWitnessClean(t, c)
	})
}

// The primary and a coreapp die together. The new primary starts fresh
// unhealthy clocks when it takes over (its first heartbeat to the dead
// coreapp is sent then), so rule 1 applies from the takeover: the shard is
// served again within [takeover + unhealthy, takeover + unhealthy +
// heartbeat], and the takeover itself is within TTL + renew of the kill.
func TestPrimaryAndCoreappKilledTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log actionLog
		c, ids, old := haCluster(t, 2, &log)
		sleepToPhase(450 * time.Millisecond)
		victim := holder(c, 1)

		t0 := time.Now()
		if err := c.KillMaster(old); err != nil {
			t.Fatal(err)
		}
		if err := c.KillCoreapp(victim); err != nil {
			t.Fatal(err)
		}
		next, tTake := takeover(t, c, &log, ids, old, t0, haTTL+haRenew+time.Second)
		if d := tTake.Sub(t0); d > haTTL+haRenew {
			t.Errorf("takeover %v after the kill; want <= %v", d, haTTL+haRenew)
		}
		waitUntil(t, haUnhealthy+haHeartbeat+time.Second, "shard 1 failed over", func() bool {
			h := holder(c, 1)
			return h != "" && h != victim
		})
		at, by, _ := servedAgainAt(c, 1, victim)
		earliest, latest := tTake.Add(haUnhealthy), tTake.Add(haUnhealthy+haHeartbeat)
		if at.Before(earliest) || at.After(latest) {
			t.Errorf("shard 1 served again by %s at takeover+%v (kill+%v); want [takeover+%v, takeover+%v]",
				by, at.Sub(tTake), at.Sub(t0), haUnhealthy, haUnhealthy+haHeartbeat)
		}
		if d := at.Sub(t0); d > haTTL+haRenew+haUnhealthy+haHeartbeat {
			t.Errorf("shard 1 served again %v after the kill; want <= TTL+renew+unhealthy+heartbeat = %v", d, haTTL+haRenew+haUnhealthy+haHeartbeat)
		}
		if e, ok := log.firstBy(next, "", t0, isFailover); !ok || e.action.(failover.Failover).Shard != 1 {
			t.Errorf("no failover of shard 1 by %s (first failover: %+v)", next, e.action)
		}
		if by == holder(c, 0) {
			t.Errorf("shard 1 went to %s, which serves shard 0: it must go to a standby", by)
		}
		assertWitnessClean(t, c)
	})
}

// After a takeover the old master's term is fenced end to end: the
// settings service refuses a shard-map write and a lease release at its old
// lease epoch, over the cluster's own gRPC network.
func TestOldTermCannotWriteShardMapAfterTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log actionLog
		c, ids, old := haCluster(t, 2, &log)
		oldEpoch := masterStatus(t, c, old).GetLeaseEpoch()
		t0 := time.Now()
		if err := c.KillMaster(old); err != nil {
			t.Fatal(err)
		}
		next, _ := takeover(t, c, &log, ids, old, t0, haTTL+haRenew+time.Second)
		if e := masterStatus(t, c, next).GetLeaseEpoch(); e <= oldEpoch {
			t.Fatalf("new lease epoch %d, want > %d", e, oldEpoch)
		}

		coord := c.Coordination()
		ctx := context.Background()
		before, err := coord.GetShardMap(ctx, &mcsimv1.GetShardMapRequest{})
		if err != nil {
			t.Fatal(err)
		}
		// What the old primary would write on resuming: shard 0 to some
		// other coreapp at the next epoch.
		stale := &mcsimv1.ShardMap{Shards: 2, MaxEpoch: before.GetShardMap().GetMaxEpoch() + 1}
		for _, a := range before.GetShardMap().GetAssignments() {
			stale.Assignments = append(stale.Assignments, &mcsimv1.ShardAssignment{Shard: a.GetShard(), CoreappId: a.GetCoreappId(), Epoch: a.GetEpoch()})
		}
		stale.Assignments[0].CoreappId, stale.Assignments[0].Epoch = "coreapp-3", stale.GetMaxEpoch()
		_, err = coord.WriteShardMap(ctx, &mcsimv1.WriteShardMapRequest{LeaseEpoch: oldEpoch, MasterId: old, ShardMap: stale})
		if status.Code(err) != codes.FailedPrecondition {
			t.Errorf("shard-map write by %s at old lease epoch %d: got %v, want FailedPrecondition", old, oldEpoch, err)
		}
		rel, err := coord.ReleaseLease(ctx, &mcsimv1.ReleaseLeaseRequest{MasterId: old, LeaseEpoch: oldEpoch})
		if err != nil || rel.GetReleased() {
			t.Errorf("release by %s at old epoch %d: released=%v err=%v; want nothing released", old, oldEpoch, rel.GetReleased(), err)
		}
		after, err := coord.GetShardMap(ctx, &mcsimv1.GetShardMapRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if after.GetShardMap().GetMaxEpoch() != before.GetShardMap().GetMaxEpoch() {
			t.Errorf("max_epoch moved from %d to %d after a fenced write", before.GetShardMap().GetMaxEpoch(), after.GetShardMap().GetMaxEpoch())
		}
		if p := primary(t, c, ids...); p != next {
			t.Errorf("primary is %q after the old term's attempts, want %s", p, next)
		}
		assertWitnessClean(t, c)
	})
}

// With no master at all, coreapps keep serving what they serve: nobody
// takes their shards away.
func TestNoPrimaryCoreappsKeepServing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log actionLog
		c, ids, _ := haCluster(t, 2, &log)
		sessions := c.Gateway.Sessions()
		gwBefore := len(c.GatewayLog())
		for _, id := range ids {
			if err := c.KillMaster(id); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Hour)
		if got := c.Gateway.Sessions(); len(got) != len(sessions) {
			t.Errorf("%d sessions after an hour without a master, want %d", len(got), len(sessions))
		} else {
			for s, sess := range sessions {
				if got[s].CoreappID != sess.CoreappID {
					t.Errorf("shard %d held by %q after an hour without a master, want %q", s, got[s].CoreappID, sess.CoreappID)
				}
			}
		}
		if n := len(c.GatewayLog()) - gwBefore; n != 0 {
			t.Errorf("the gateway saw %d session changes without a master; want none", n)
		}
		assertWitnessClean(t, c)
	})
}

// A primary that stops gracefully releases the lease and leaves; a
// secondary hears of the leave and takes over at once (one lease round
// trip, no wait for its next poll), and nothing fails over.
func TestGracefulMasterStopReleasesLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log actionLog
		c, ids, old := haCluster(t, 2, &log)
		sleepToPhase(200 * time.Millisecond)
		gwBefore := len(c.GatewayLog())
		t0 := time.Now()
		if err := c.StopMaster(old); err != nil {
			t.Fatal(err)
		}
		_, tTake := takeover(t, c, &log, ids, old, t0, haTTL)
		// The stop was placed 200ms into the secondary's poll cycle, so
		// waiting for its next poll would take ~800ms.
		if d := tTake.Sub(t0); d > 10*time.Millisecond {
			t.Errorf("takeover %v after a graceful stop; want at once (<= 10ms: lease round trips only, no poll interval)", d)
		}
		time.Sleep(2 * haUnhealthy)
		if n := log.count(isFailover) + log.count(isUnhealthy); n != 0 {
			t.Errorf("%d failovers/unhealthy declarations after a graceful master stop; want none", n)
		}
		if n := len(c.GatewayLog()) - gwBefore; n != 0 {
			t.Errorf("the gateway saw %d session changes; want none", n)
		}
		assertWitnessClean(t, c)
	})
}

// TestTakeoverTimeVirtual measures, in virtual time, the time from the
// primary's death (KillMaster: no lease release) to the first heartbeat
// the new primary sends, over kills spread across the renewal cycle.
// Run: go test -run TestTakeoverTimeVirtual -v ./cluster/inproc
func TestTakeoverTimeVirtual(t *testing.T) {
	const runs = 27 // offsets 0, 37ms, ... 962ms: the whole renewal cycle
	var got []time.Duration
	for i := range runs {
		offset := time.Duration(i) * 37 * time.Millisecond
		// The secondary starts at its own phase, so its attempts are not
		// aligned with the primary's renewals (as in real clusters, where
		// masters start at unrelated times).
		secondary := time.Duration(i*211%1000) * time.Millisecond
		t.Run(fmt.Sprintf("kill=%v/secondary=%v", offset, secondary), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var log actionLog
				c, _, old := haCluster(t, 1, &log)
				sleepToPhase(secondary)
				if err := c.StartMaster("master-2"); err != nil {
					t.Fatal(err)
				}
				ids := []string{"master-1", "master-2"}
				time.Sleep(2 * haRenew) // master-2 is a secondary, polling
				if p := primary(t, c, ids...); p != old {
					t.Fatalf("primary %q, want %s", p, old)
				}
				sleepToPhase(offset)
				t0 := time.Now()
				if err := c.KillMaster(old); err != nil {
					t.Fatal(err)
				}
				_, at := takeover(t, c, &log, ids, old, t0, haTTL+haRenew+time.Second)
				d := at.Sub(t0)
				if d > haTTL+haRenew {
					t.Errorf("takeover %v; want <= TTL + renew interval = %v", d, haTTL+haRenew)
				}
				// A refused secondary retries when the store says the lease
				// lapses (plus 1ms for the store's whole milliseconds), not at
				// its next poll: the takeover fits in the TTL itself.
				if d > haTTL+time.Millisecond {
					t.Errorf("takeover %v; a secondary retrying at the lease's lapse takes over within TTL+1ms = %v", d, haTTL+time.Millisecond)
				}
				got = append(got, d)
			})
		})
	}
	if len(got) == 0 {
		return
	}
	slices.Sort(got)
	med := got[len(got)/2]
	if len(got)%2 == 0 {
		med = (got[len(got)/2-1] + got[len(got)/2]) / 2
	}
	t.Logf("takeover (kill -> first heartbeat of the new primary), virtual time, %d runs, TTL %v, renew %v: min %v, median %v, max %v",
		len(got), haTTL, haRenew, got[0], med, got[len(got)-1])
}
