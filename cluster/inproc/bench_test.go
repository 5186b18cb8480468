package inproc_test

// BenchmarkFailoverEpsilon measures rule 1's overhead ε over real loopback
// TCP, in real time (each iteration is one crash and failover, ~2-3 s):
//
//	go test -run '^$' -bench BenchmarkFailoverEpsilon -benchtime 20x ./cluster/inproc
//
// ε runs from the rule-1 deadline (DeclaredUnhealthy.Deadline, seen through
// Options.Observe) to the gateway's CONNECT/REPLACE of the new session (its
// unix_ns). Both are this process's wall clock. The breakdown metrics say
// where ε goes: timer-late (deadline → the loop's step), persist (the fenced
// shard-map write, PersistShardMap → Assign as the loop executes them) and
// assign-to-gw (Assign RPC sent → gateway accepted the session).

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/cluster/inproc"
	"github.com/mcsim/mcsim/gateway"
	"github.com/mcsim/mcsim/master/failover"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// benchObs is one core action with the step's time (at) and the wall time
// the loop reached it in its batch (wall): the loop executes a batch in
// order, so the wall time of an Assign is the time the persist before it
// returned.
type benchObs struct {
	at, wall time.Time
	action   failover.Action
}

type benchRecorder struct {
	mu      sync.Mutex
	entries []benchObs
}

func (r *benchRecorder) observe(_ string, at time.Time, a failover.Action) {
	wall := time.Now()
	r.mu.Lock()
	r.entries = append(r.entries, benchObs{at: at, wall: wall, action: a})
	r.mu.Unlock()
}

func (r *benchRecorder) since(i int) []benchObs {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.entries[i:])
}

func (r *benchRecorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

// failoverSample is one iteration's timeline, all relative to the deadline.
type failoverSample struct {
	eps, timerLate, persist, assignToGW, killToServed time.Duration
}

func BenchmarkFailoverEpsilon(b *testing.B) {
	const hb, ui = time.Second, 2 * time.Second
	var rec benchRecorder
	c, err := inproc.Start(inproc.Options{
		Masters: 1, Coreapps: 3, Shards: 1,
		HeartbeatInterval: hb, UnhealthyInterval: ui,
		Network: inproc.TCP{},
		DataDir: b.TempDir(),
		// Logging is off so that ε measures the cluster, not the test writer.
		Logger:  zerolog.Nop(),
		Observe: rec.observe,
	})
	if err != nil {
		b.Fatalf("start cluster: %v", err)
	}
	b.Cleanup(func() {
		if err := c.Close(); err != nil {
			b.Errorf("close cluster: %v", err)
		}
	})
	benchPoll(b, 10*time.Second, "shard 0 served", func() bool { return holder(c, 0) != "" })
	benchWaitHealthy(b, c, "coreapp-1", "coreapp-2", "coreapp-3")
	// As after every failover below: the first kill must find the first
	// holder confirmed (its Assign answered), or the shard moves at once as
	// "refused" instead of through rule 1.
	first, start := holder(c, 0), time.Now()
	benchPoll(b, 10*time.Second, "two heartbeats to the first holder", func() bool {
		n := 0
		for _, o := range rec.since(0) {
			if h, ok := o.action.(failover.SendHeartbeat); ok && h.Coreapp == first && o.at.After(start) {
				n++
			}
		}
		return n >= 2
	})

	var samples []failoverSample
	for b.Loop() {
		samples = append(samples, benchOneFailover(b, c, &rec, ui+hb+5*time.Second))
	}
	b.StopTimer()
	benchReportFailover(b, samples)
	if v := gateway.CheckLog(c.GatewayLog()); len(v) > 0 {
		b.Errorf("gateway log violations: %+v", v)
	}
}

// benchOneFailover kills shard 0's holder, waits until another coreapp serves
// it, restarts the victim as a standby and returns the timeline.
func benchOneFailover(b *testing.B, c *inproc.Cluster, rec *benchRecorder, limit time.Duration) failoverSample {
	b.Helper()
	victim := holder(c, 0)
	seq := uint64(len(c.GatewayLog())) + 1 // the gateway's seqs start at 1
	obsFrom := rec.len()
	t0 := time.Now()
	if err := c.KillCoreapp(victim); err != nil {
		b.Fatal(err)
	}
	var served *mcsimv1.GatewayEvent
	benchPoll(b, limit, "shard 0 served by another coreapp", func() bool {
		for _, e := range c.Gateway.Log(seq) {
			k := e.GetKind()
			if e.GetShard() == 0 && e.GetCoreappId() != victim &&
				(k == mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT || k == mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE) {
				served = e
				return true
			}
		}
		return false
	})
	servedAt := time.Unix(0, served.GetUnixNs())

	var du *failover.DeclaredUnhealthy
	var duObs, persistObs, assignObs *benchObs
	for _, o := range rec.since(obsFrom) {
		switch a := o.action.(type) {
		case failover.DeclaredUnhealthy:
			if a.Coreapp == victim && du == nil {
				du, duObs = &a, &o
			}
		case failover.PersistShardMap:
			if du != nil && persistObs == nil {
				persistObs = &o
			}
		case failover.Assign:
			if du != nil && assignObs == nil && a.Shard == 0 && a.Coreapp == served.GetCoreappId() {
				assignObs = &o
			}
		}
	}
	if du == nil || persistObs == nil || assignObs == nil {
		for _, o := range rec.since(obsFrom) {
			if _, ok := o.action.(failover.SendHeartbeat); ok {
				continue
			}
			b.Logf("after the kill, at +%v: %T %+v", o.at.Sub(t0), o.action, o.action)
		}
		b.Fatalf("shard 0 moved from %s to %s without DeclaredUnhealthy → PersistShardMap → Assign (got %v, %v, %v)",
			victim, served.GetCoreappId(), du != nil, persistObs != nil, assignObs != nil)
	}
	s := failoverSample{
		eps:          servedAt.Sub(du.Deadline),
		timerLate:    duObs.at.Sub(du.Deadline),
		persist:      assignObs.wall.Sub(persistObs.wall),
		assignToGW:   servedAt.Sub(assignObs.wall),
		killToServed: servedAt.Sub(t0),
	}

	// The victim comes back as a standby, so the next iteration always has
	// one besides the new holder.
	if err := c.StartCoreapp(victim); err != nil {
		b.Fatal(err)
	}
	benchWaitHealthy(b, c, victim)
	// The next kill must find the new holder confirmed: killed while its
	// Assign answer is still on the way, the shard moves at once as
	// "refused" (not through rule 1). Two heartbeats sent to it after the
	// gateway accepted its session put a heartbeat interval between.
	benchPoll(b, 3*limit, "two heartbeats to the new holder", func() bool {
		n := 0
		for _, o := range rec.since(obsFrom) {
			if h, ok := o.action.(failover.SendHeartbeat); ok && h.Coreapp == served.GetCoreappId() && o.at.After(servedAt) {
				n++
			}
		}
		return n >= 2
	})
	return s
}

// benchPoll checks cond every millisecond until it holds, failing after
// limit. Real time: this benchmark runs over real TCP, outside any bubble.
func benchPoll(b *testing.B, limit time.Duration, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("after %v: still waiting for %s", limit, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// benchWaitHealthy waits until the primary lists every id as healthy, that is,
// it heartbeated them since they (re)joined.
func benchWaitHealthy(b *testing.B, c *inproc.Cluster, ids ...string) {
	b.Helper()
	m := c.Master("master-1")
	benchPoll(b, 10*time.Second, "coreapps healthy", func() bool {
		st, err := m.Status(context.Background())
		if err != nil {
			return false
		}
		for _, id := range ids {
			if !slices.Contains(st.GetHealthyCoreapps(), id) {
				return false
			}
		}
		return true
	})
}

func benchReportFailover(b *testing.B, samples []failoverSample) {
	if len(samples) == 0 {
		return
	}
	col := func(f func(failoverSample) time.Duration) []time.Duration {
		out := make([]time.Duration, len(samples))
		for i, s := range samples {
			out[i] = f(s)
		}
		slices.Sort(out)
		return out
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	eps := col(func(s failoverSample) time.Duration { return s.eps })
	b.ReportMetric(ms(benchPercentile(eps, 0.50)), "eps-p50-ms")
	b.ReportMetric(ms(benchPercentile(eps, 0.99)), "eps-p99-ms")
	b.ReportMetric(ms(eps[len(eps)-1]), "eps-max-ms")
	b.ReportMetric(ms(benchPercentile(col(func(s failoverSample) time.Duration { return s.timerLate }), 0.5)), "timer-late-p50-ms")
	b.ReportMetric(ms(benchPercentile(col(func(s failoverSample) time.Duration { return s.persist }), 0.5)), "persist-p50-ms")
	b.ReportMetric(ms(benchPercentile(col(func(s failoverSample) time.Duration { return s.assignToGW }), 0.5)), "assign-to-gw-p50-ms")
	b.ReportMetric(ms(benchPercentile(col(func(s failoverSample) time.Duration { return s.killToServed }), 0.5)), "kill-to-served-p50-ms")
	// The per-op time is a whole crash cycle, which says nothing; the
	// metrics above are the result.
	b.ReportMetric(0, "ns/op")
	for i, s := range samples {
		b.Logf("failover %2d: eps=%v (timer-late=%v persist=%v assign-to-gw=%v) kill-to-served=%v",
			i+1, s.eps, s.timerLate, s.persist, s.assignToGW, s.killToServed)
	}
}

// benchPercentile is the nearest-rank q-quantile of sorted ds.
func benchPercentile(ds []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}
