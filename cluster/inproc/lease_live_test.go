package inproc_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mcsim/mcsim/cluster/inproc"
)

// Rule 6 for the lease: a live change of the intervals renews the lease at
// once with the new TTL and reschedules renewals, so the takeover bound
// after a change is the new TTL + the new heartbeat_interval, not the old
// TTL. The cluster starts on the defaults (5 s / 30 s), the PATCH goes to
// 1 s / 3 s, and the primary is killed within the old renew interval.
func TestTakeoverAfterLiveIntervalChange(t *testing.T) {
	const (
		oldHeartbeat, oldUnhealthy = 5 * time.Second, 30 * time.Second
		newHeartbeat, newUnhealthy = time.Second, 3 * time.Second
		// The new TTL + the new renew interval, plus the lease round trips
		// and the store's whole-millisecond remaining.
		bound = newUnhealthy + newHeartbeat + 10*time.Millisecond
	)
	tests := []struct {
		patchPhase time.Duration // when in the primary's 5 s renewal cycle the PATCH lands
		kill       time.Duration // kill of the primary after the PATCH
	}{
		{patchPhase: 100 * time.Millisecond, kill: 500 * time.Millisecond},
		{patchPhase: 100 * time.Millisecond, kill: 4500 * time.Millisecond},
		{patchPhase: 2500 * time.Millisecond, kill: 1700 * time.Millisecond},
		{patchPhase: 4900 * time.Millisecond, kill: 50 * time.Millisecond},
		{patchPhase: 4900 * time.Millisecond, kill: 3300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("patch=%v/kill=%v", tt.patchPhase, tt.kill), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var log actionLog
				c := startCluster(t, inproc.Options{Masters: 2, Coreapps: 3, Shards: 2,
					HeartbeatInterval: oldHeartbeat, UnhealthyInterval: oldUnhealthy, Observe: log.observe})
				ids := []string{"master-1", "master-2"}
				waitUntil(t, 10*time.Second, "both shards served", allServed(c, 2))
				var old string
				waitUntil(t, 10*time.Second, "a primary", func() bool { old = primary(t, c, ids...); return old != "" })
				// The masters started at the bubble's start, a whole second:
				// their renewals come every 5 s from then.
				now := time.Now()
				at := now.Truncate(oldHeartbeat).Add(oldHeartbeat + tt.patchPhase)
				time.Sleep(at.Sub(now))
				noFailover := expectNoFailover(c, &log, "the takeover")

				if err := c.Patch(fmt.Sprintf(`{"heartbeat_interval": %d, "unhealthy_interval": %d}`,
					int(newHeartbeat.Seconds()), int(newUnhealthy.Seconds()))); err != nil {
					t.Fatal(err)
				}
				time.Sleep(tt.kill)
				t0 := time.Now()
				if err := c.KillMaster(old); err != nil {
					t.Fatal(err)
				}
				next, tTake := takeover(t, c, &log, ids, old, t0, oldUnhealthy+oldHeartbeat)
				if d := tTake.Sub(t0); d > bound {
					t.Errorf("%s took over %v after the kill; after a live change to %v / %v the bound is new TTL + new heartbeat = %v",
						next, d, newHeartbeat, newUnhealthy, bound)
				}
				time.Sleep(2*newUnhealthy + newHeartbeat)
				noFailover(t)
				assertWitnessClean(t, c)
			})
		})
	}
}
