package failover

import (
	"testing"
	"time"
)

// Two coreapps share a deadline and both answers arrived before it, but
// the driver only gets to them at the deadline, one after the other.
// Stepping them one by one fires the second's deadline while stepping the
// first (a false failover); applying both and then stepping once does not.
func TestApplyQueuedAnswersBeforeDeadlines(t *testing.T) {
	cfg := Config{HeartbeatInterval: time.Second, UnhealthyInterval: 3 * time.Second, Shards: 1}
	setup := func(t *testing.T) (*Core, time.Time) {
		c, err := New(cfg, ShardMap{MaxEpoch: 1, Assignments: []Assignment{{Shard: 0, Coreapp: "a", Epoch: 1}}}, base)
		if err != nil {
			t.Fatal(err)
		}
		mustStep := func(at time.Time, ev Event) {
			if _, err := c.Step(at, ev); err != nil {
				t.Fatal(err)
			}
		}
		mustStep(base, CoreappJoined{ID: "b"}) // seq 1 to a and b at 0
		// Every later heartbeat goes unanswered until 3s (the deadline of
		// seq 1), when the answers to seq 3 (sent at 2s) are processed.
		for at := time.Second; at < 3*time.Second; at += time.Second {
			mustStep(base.Add(at), Tick{})
		}
		return c, base.Add(3 * time.Second)
	}
	answers := []Event{
		HeartbeatAnswered{ID: "b", Seq: 3},
		HeartbeatAnswered{ID: "a", Seq: 3, Shards: []ServedShard{{Shard: 0, Epoch: 1}}},
	}
	declared := func(acts []Action) int {
		n := 0
		for _, a := range acts {
			if _, ok := a.(DeclaredUnhealthy); ok {
				n++
			}
		}
		return n
	}

	t.Run("step each: the first fires the other's deadline", func(t *testing.T) {
		c, at := setup(t)
		n := 0
		for _, ev := range answers {
			acts, err := c.Step(at, ev)
			if err != nil {
				t.Fatal(err)
			}
			n += declared(acts)
		}
		if n != 1 {
			t.Fatalf("declared %d, want 1 (this is why drivers Apply queued events)", n)
		}
	})
	t.Run("apply all, then step", func(t *testing.T) {
		c, at := setup(t)
		for _, ev := range answers {
			if err := c.Apply(at, ev); err != nil {
				t.Fatal(err)
			}
		}
		acts, err := c.Step(at, Tick{})
		if err != nil {
			t.Fatal(err)
		}
		if n := declared(acts); n != 0 {
			t.Fatalf("declared %d coreapps whose answers were applied before the deadline", n)
		}
		if got := c.ShardMap().Owner(0); got != "a" {
			t.Fatalf("shard 0 owner %q, want a", got)
		}
	})
	t.Run("apply rejects bad input and changes nothing", func(t *testing.T) {
		c, at := setup(t)
		if err := c.Apply(at, HeartbeatAnswered{ID: "zz", Seq: 1}); err == nil {
			t.Fatal("Apply accepted an unknown coreapp")
		}
		if err := c.Apply(at.Add(-2*time.Second), Tick{}); err == nil {
			t.Fatal("Apply accepted a time going backwards")
		}
	})
}
