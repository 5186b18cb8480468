package inproc_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/cluster/inproc"
	"github.com/mcsim/mcsim/gateway"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// The honest witness (rule 7) end to end, in virtual time: a paused or
// cut-off owner stops counting as serving when the gateway stops hearing
// it, and the failover's downtime runs from when it was last heard.

// failoverOf is the gateway's failover of shard s away from coreapp from.
func failoverOf(c *inproc.Cluster, s int32, from string) (gateway.Failover, bool) {
	for _, f := range gateway.Failovers(c.GatewayLog()) {
		if f.Shard == s && f.From == from {
			return f, true
		}
	}
	return gateway.Failover{}, false
}

// kindsOf lists the kinds of the gateway's events about coreapp id.
func kindsOf(c *inproc.Cluster, id string) []string {
	var out []string
	for _, e := range c.GatewayLog() {
		if e.GetCoreappId() == id {
			out = append(out, strings.TrimPrefix(e.GetKind().String(), "GATEWAY_EVENT_KIND_"))
		}
	}
	return out
}

// A paused owner (longer than unhealthy_interval): the gateway logs it
// SILENT SilentAfter after its last pong, while it still holds its keys;
// the coreapp itself reports its shard not served; the failover's downtime
// runs from the last pong, inside rule 1's window (before rule 7 the
// gateway counted the frozen stream as serving and reported 0 ms).
func TestPausedOwnerIsSilentAndItsDowntimeCountsFromLastHeard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const hb, ui = time.Second, 3 * time.Second
		c := startCluster(t, inproc.Options{Masters: 1, Coreapps: 3, Shards: 1, HeartbeatInterval: hb, UnhealthyInterval: ui})
		waitUntil(t, 10*time.Second, "shard served", allServed(c, 1))
		time.Sleep(3300 * time.Millisecond)
		synctest.Wait()
		victim := holder(c, 0)
		t0 := time.Now()
		if err := c.FreezeCoreapp(victim, ui+2*time.Second); err != nil {
			t.Fatal(err)
		}

		time.Sleep(gateway.SilentAfter)
		synctest.Wait()
		if got := kindsOf(c, victim); !slices.Equal(got, []string{"CONNECT", "SILENT"}) {
			t.Fatalf("gateway log of the paused %s = %v, want CONNECT SILENT", victim, got)
		}
		if holder(c, 0) != victim {
			t.Fatalf("the silent session lost its keys before any failover: %v", c.Gateway.Sessions())
		}
		st, err := c.Coreapp(victim).Status(context.Background(), &mcsimv1.StatusRequest{})
		if err != nil || st.GetGatewayStatus() != mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTING || len(st.GetShards()) != 1 {
			t.Errorf("paused %s reports %v %v, want its shard kept but connecting (not served)", victim, st, err)
		}

		waitUntil(t, ui+hb+time.Second, "shard 0 failed over", func() bool { h := holder(c, 0); return h != "" && h != victim })
		f, ok := failoverOf(c, 0, victim)
		if !ok {
			t.Fatalf("no failover from %s in %v", victim, c.GatewayLog())
		}
		lastHeard := time.Unix(0, f.ServedUntilUnixNs)
		if lastHeard.After(t0) || t0.Sub(lastHeard) > gateway.PingInterval {
			t.Errorf("last heard at t0%v, want within one ping before the pause", lastHeard.Sub(t0))
		}
		if d := f.Downtime(); d < ui || d > ui+hb+gateway.PingInterval {
			t.Errorf("downtime %v; rule 1 allows [%v, %v] (+ one ping of last-heard resolution)", d, ui, ui+hb+gateway.PingInterval)
		}
		assertWitnessClean(t, c)
	})
}

// Figures: the downtime the gateway measures for a pause longer than
// unhealthy_interval, a partition (the owner cut from the gateway and the
// master) and a crash, n of each at phases spread over a heartbeat and a
// ping, all inside rule 1's window [unhealthy, unhealthy+heartbeat] plus
// one ping of last-heard resolution (ε is 0 in virtual time). -v prints
// them:
//
//	go test -run TestDowntimeFigures -v ./cluster/inproc
func TestDowntimeFigures(t *testing.T) {
	const hb, ui, n = time.Second, 3 * time.Second, 10
	faults := []struct {
		name string
		do   func(c *inproc.Cluster, id string) error
	}{
		{"pause", func(c *inproc.Cluster, id string) error { return c.FreezeCoreapp(id, ui+2*time.Second) }},
		{"partition", func(c *inproc.Cluster, id string) error {
			if err := c.CutCoreapp(id, inproc.GatewayLink|inproc.MasterLink); err != nil {
				return err
			}
			time.AfterFunc(ui+2*time.Second, func() { _ = c.HealCoreapp(id) })
			return nil
		}},
		{"crash", func(c *inproc.Cluster, id string) error { return c.KillCoreapp(id) }},
	}
	for _, fault := range faults {
		t.Run(fault.name, func(t *testing.T) {
			var got []time.Duration
			for i := range n {
				synctest.Test(t, func(t *testing.T) {
					c := startQuietCluster(t, inproc.Options{Masters: 1, Coreapps: 2, Shards: 1, HeartbeatInterval: hb, UnhealthyInterval: ui})
					waitUntil(t, 10*time.Second, "shard served", allServed(c, 1))
					// Phases: 10 points over a heartbeat, offset within a ping.
					time.Sleep(3*time.Second + time.Duration(i)*(hb/n) + time.Duration(i)*37*time.Millisecond)
					victim := holder(c, 0)
					if err := fault.do(c, victim); err != nil {
						t.Fatal(err)
					}
					waitUntil(t, ui+hb+time.Second, "shard 0 failed over", func() bool { h := holder(c, 0); return h != "" && h != victim })
					f, ok := failoverOf(c, 0, victim)
					if !ok {
						t.Fatalf("no failover from %s in %v", victim, c.GatewayLog())
					}
					d := f.Downtime()
					if d < ui || d > ui+hb+gateway.PingInterval {
						t.Errorf("%s: downtime %v outside [%v, %v]", fault.name, d, ui, ui+hb+gateway.PingInterval)
					}
					got = append(got, d)
					assertWitnessClean(t, c)
				})
			}
			slices.Sort(got)
			ms := make([]string, len(got))
			for i, d := range got {
				ms[i] = fmt.Sprint(d.Milliseconds())
			}
			t.Logf("%s, heartbeat %v, unhealthy %v: downtime_ms n=%d min %d median %d max %d: %s",
				fault.name, hb, ui, len(got), got[0].Milliseconds(), got[len(got)/2].Milliseconds(), got[len(got)-1].Milliseconds(), strings.Join(ms, " "))
		})
	}
}

// startQuietCluster is startCluster without logs, so that -v shows the
// figures alone.
func startQuietCluster(t *testing.T, opts inproc.Options) *inproc.Cluster {
	t.Helper()
	return startClusterLogging(t, opts, zerolog.Nop())
}

// A coreapp cut from the gateway alone (the master still hears it): the
// gateway logs it SILENT, the coreapp reports its shard not served
// (connecting) but keeps it, since only the master decides failover and it
// sees a healthy coreapp; when the cut heals both sides hear each other
// again.
func TestCutFromGatewayOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := startCluster(t, inproc.Options{Masters: 1, Coreapps: 2, Shards: 1, HeartbeatInterval: time.Second, UnhealthyInterval: 3 * time.Second})
		waitUntil(t, 10*time.Second, "shard served", allServed(c, 1))
		time.Sleep(time.Second)
		victim := holder(c, 0)
		status := func() mcsimv1.GatewayStatus {
			st, err := c.Coreapp(victim).Status(context.Background(), &mcsimv1.StatusRequest{})
			if err != nil || len(st.GetShards()) != 1 {
				t.Fatalf("status of %s: %v %v, want its one shard kept", victim, st, err)
			}
			return st.GetGatewayStatus()
		}
		if err := c.CutCoreapp(victim, inproc.GatewayLink); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		if got := kindsOf(c, victim); !slices.Equal(got, []string{"CONNECT", "SILENT"}) {
			t.Errorf("gateway log of %s while cut = %v, want CONNECT SILENT", victim, got)
		}
		if s := status(); s != mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTING {
			t.Errorf("%s cut from the gateway reports %v, want connecting", victim, s)
		}
		if err := c.HealCoreapp(victim); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if got := kindsOf(c, victim); !slices.Equal(got, []string{"CONNECT", "SILENT", "HEARD"}) {
			t.Errorf("gateway log of %s after healing = %v, want CONNECT SILENT HEARD", victim, got)
		}
		if s := status(); s != mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED {
			t.Errorf("%s after healing reports %v, want connected", victim, s)
		}
		if h := holder(c, 0); h != victim {
			t.Errorf("shard 0 moved to %s: the master saw a healthy coreapp", h)
		}
		assertWitnessClean(t, c)
	})
}
