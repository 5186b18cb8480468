package membership

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// deliveryBound is how soon, in virtual time, a master must see a
// coreapp's join or graceful leave: at once, in the round trips of a
// direct push/pull (no latency on memNet), never a gossip round later
// (GossipInterval is 500 ms in the local tuning).
const deliveryBound = time.Millisecond

// Joins and graceful leaves reach the masters directly, not by gossip: in
// a cluster of a seed, 2 masters and 8 coreapps, each of 5 new coreapps is
// Joined at both masters, and each of 5 leaving coreapps LeftGracefully,
// within deliveryBound of its Start or Leave, whatever the phase of the
// gossip and probe timers (the rounds are spread over 1.3 s).
func TestJoinAndLeaveReachMastersAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := newTestNet(t)
		seed := mustStart(t, mn, nodeSpec{id: "settings", role: RoleSettings})
		seeds := []string{seed.LocalNode().GossipAddr}
		masters := []*Member{
			mustStart(t, mn, nodeSpec{id: "master-1", role: RoleMaster, grpc: "127.0.0.1:9001", seeds: seeds}),
			mustStart(t, mn, nodeSpec{id: "master-2", role: RoleMaster, grpc: "127.0.0.1:9002", seeds: seeds}),
		}
		all := []string{"settings", "master-1", "master-2"}
		coreapps := map[string]*Member{}
		for i := 1; i <= 8; i++ {
			id := fmt.Sprintf("coreapp-%d", i)
			coreapps[id] = mustStart(t, mn, nodeSpec{id: id, role: RoleCoreapp, grpc: fmt.Sprintf("127.0.0.1:%d", 9100+i), seeds: seeds})
			all = append(all, id)
		}
		for _, m := range masters {
			waitJoinedAll(t, m, all...)
		}
		time.Sleep(5 * time.Second) // virtual: every view settled

		for r := range 5 {
			time.Sleep(time.Duration(130+r*70) * time.Millisecond) // another phase of the timers

			id := fmt.Sprintf("coreapp-%d", 20+r)
			start := time.Now()
			mustStart(t, mn, nodeSpec{id: id, role: RoleCoreapp, grpc: fmt.Sprintf("127.0.0.1:%d", 9200+r), seeds: seeds})
			for _, m := range masters {
				waitFor(t, m, Joined, id)
				if d := time.Since(start); d > deliveryBound {
					t.Errorf("round %d: %s saw %s join %v after its Start, want ≤ %v", r, m.LocalNode().ID, id, d, deliveryBound)
				}
			}

			leaver := fmt.Sprintf("coreapp-%d", r+1)
			start = time.Now()
			if err := coreapps[leaver].Leave(time.Second); err != nil {
				t.Fatal(err)
			}
			for _, m := range masters {
				waitFor(t, m, LeftGracefully, leaver)
				if d := time.Since(start); d > deliveryBound {
					t.Errorf("round %d: %s saw %s leave %v after its Leave began, want ≤ %v", r, m.LocalNode().ID, leaver, d, deliveryBound)
				}
			}
			_ = coreapps[leaver].Shutdown()
		}
	})
}

// A coreapp that leaves before gossip told it of a master that joined
// after it (seen on real processes: a coreapp stopped 3 s after it
// started knew only the seed) still reaches that master as a graceful
// leave, not a failure: the master must get the "leaving" mark before
// the leave itself, and the coreapp learns of the master only from the
// push/pull of its goodbye. Without the second round of that push/pull
// the master reports Failed and waits out unhealthy_interval (rule 1)
// instead of handing the shards over at once (rule 5).
func TestLeaveReachesAMasterTheLeaverDidNotKnow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := newTestNet(t)
		seed := mustStart(t, mn, nodeSpec{id: "settings", role: RoleSettings})
		seeds := []string{seed.LocalNode().GossipAddr}
		c := mustStart(t, mn, nodeSpec{id: "coreapp-1", role: RoleCoreapp, grpc: "127.0.0.1:9101", seeds: seeds})
		m := mustStart(t, mn, nodeSpec{id: "master-1", role: RoleMaster, grpc: "127.0.0.1:9001", seeds: seeds})
		waitJoinedAll(t, m, "settings", "coreapp-1", "master-1")
		if slices.ContainsFunc(c.Members(), func(n Node) bool { return n.ID == "master-1" }) {
			t.Fatal("the coreapp already knows the master: the test would not test the case")
		}
		// The master hears nothing by gossip from now on: what reaches it
		// before the leave must come by the goodbye's push/pull.
		mn.deafen(m.LocalNode().GossipAddr)
		if err := c.Leave(time.Second); err != nil {
			t.Fatal(err)
		}
		e, before := waitForEither(t, m, "coreapp-1", LeftGracefully, Failed)
		if e.Kind != LeftGracefully {
			t.Errorf("master-1 saw coreapp-1 %v, want %v (events before: %v)", e.Kind, LeftGracefully, before)
		}
	})
}
