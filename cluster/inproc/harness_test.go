package inproc_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/cluster/inproc"
	"github.com/mcsim/mcsim/gateway"
	"github.com/mcsim/mcsim/master/failover"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// The tests of this package run inside testing/synctest bubbles: time is
// virtual, so "wait 5 s" below costs nothing and every bound is exact.

// startCluster starts a cluster in a bubble and closes it when the test ends.
func startCluster(t *testing.T, opts inproc.Options) *inproc.Cluster {
	t.Helper()
	return startClusterLogging(t, opts, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
}

// startClusterLogging is startCluster with the nodes' logger.
func startClusterLogging(t *testing.T, opts inproc.Options, log zerolog.Logger) *inproc.Cluster {
	t.Helper()
	opts.DataDir = t.TempDir()
	opts.Logger = log
	c, err := inproc.Start(opts)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close cluster: %v", err)
		}
	})
	return c
}

// waitUntil advances virtual time in small steps until cond holds, failing
// the test after limit (of virtual time).
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v (virtual): still waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// holder is the coreapp holding shard s at the gateway ("" if none).
func holder(c *inproc.Cluster, s int) string {
	return c.Gateway.Sessions()[int32(s)].CoreappID
}

func allServed(c *inproc.Cluster, shards int) func() bool {
	return func() bool { return len(c.Gateway.Sessions()) == shards }
}

// servedAgainAt is the time the gateway accepted a session of shard s by
// a coreapp other than from, after seq.
func servedAgainAt(c *inproc.Cluster, s int, from string) (time.Time, string, bool) {
	for _, e := range c.GatewayLog() {
		if e.GetShard() != int32(s) || e.GetCoreappId() == from {
			continue
		}
		if k := e.GetKind(); k == mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT || k == mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE {
			return time.Unix(0, e.GetUnixNs()), e.GetCoreappId(), true
		}
	}
	return time.Time{}, "", false
}

// assertWitnessClean checks the gateway's log with the impartial checker:
// no shard served twice at once, no stale epoch accepted.
func assertWitnessClean(t *testing.T, c *inproc.Cluster) {
	t.Helper()
	if v := gateway.CheckLog(c.GatewayLog()); len(v) > 0 {
		t.Errorf("gateway log violations: %+v", v)
	}
}

// primary returns the id of the master that says it is primary ("" if none).
func primary(t *testing.T, c *inproc.Cluster, ids ...string) string {
	t.Helper()
	found := ""
	for _, id := range ids {
		m := c.Master(id)
		if m == nil {
			continue
		}
		st, err := m.Status(context.Background())
		if err != nil {
			continue
		}
		if st.GetRole() == mcsimv1.MasterRole_MASTER_ROLE_PRIMARY {
			if found != "" {
				t.Errorf("two masters say they are primary: %s and %s", found, id)
			}
			found = id
		}
	}
	return found
}

// actionLog records the core actions of every master, for assertions.
type actionLog struct {
	mu      sync.Mutex
	entries []loggedAction
}

type loggedAction struct {
	master string
	at     time.Time
	action failover.Action
}

func (l *actionLog) observe(master string, at time.Time, a failover.Action) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, loggedAction{master, at, a})
}

func (l *actionLog) count(pred func(failover.Action) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.entries {
		if pred(e.action) {
			n++
		}
	}
	return n
}

func isUnhealthy(a failover.Action) bool { _, ok := a.(failover.DeclaredUnhealthy); return ok }
func isFailover(a failover.Action) bool  { _, ok := a.(failover.Failover); return ok }
