package membership

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// Every cluster test runs memberlist over memNet inside a synctest bubble:
// its probe, gossip and suspicion timers run in virtual time, so a 30 s
// partition takes milliseconds.

func startThree(t *testing.T, mn *memNet, key []byte) (a, b, c *Member) {
	t.Helper()
	a = mustStart(t, mn, nodeSpec{id: "a", role: RoleSettings, grpc: "127.0.0.1:9000", key: key})
	seed := []string{a.LocalNode().GossipAddr}
	b = mustStart(t, mn, nodeSpec{id: "b", role: RoleMaster, grpc: "127.0.0.1:9001", seeds: seed, key: key})
	c = mustStart(t, mn, nodeSpec{id: "c", role: RoleCoreapp, grpc: "127.0.0.1:9002", metrics: "127.0.0.1:9102", seeds: seed, key: key})
	for _, m := range []*Member{a, b, c} {
		waitJoinedAll(t, m, "a", "b", "c")
	}
	return a, b, c
}

func TestThreeNodesSeeEachOtherWithMetadata(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := newTestNet(t)
		a, b, c := startThree(t, mn, nil)
		want := []Node{a.LocalNode(), b.LocalNode(), c.LocalNode()}
		for i, n := range want {
			if n.GossipAddr == "" || n.PID != 4242 {
				t.Fatalf("LocalNode %d = %+v: want GossipAddr set and PID 4242", i, n)
			}
		}
		if want[2].Role != RoleCoreapp || want[2].GRPCAddr != "127.0.0.1:9002" || want[2].MetricsAddr != "127.0.0.1:9102" {
			t.Fatalf("c.LocalNode() = %+v", want[2])
		}
		for _, m := range []*Member{a, b, c} {
			got := m.Members()
			if len(got) != len(want) {
				t.Fatalf("%s: Members = %+v, want %+v", m.LocalNode().ID, got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s: Members[%d] = %+v, want %+v", m.LocalNode().ID, i, got[i], want[i])
				}
			}
		}
	})
}

func TestFirstEventIsOwnJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := mustStart(t, newTestNet(t), nodeSpec{id: "a", role: RoleMaster})
		e := <-a.Events()
		if e.Kind != Joined || e.Node != a.LocalNode() {
			t.Fatalf("first event = %+v, want Joined %+v", e, a.LocalNode())
		}
	})
}

func TestGracefulLeaveIsLeftGracefully(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := newTestNet(t)
		a, b, c := startThree(t, mn, nil)
		if err := c.Leave(time.Second); err != nil {
			t.Fatalf("Leave: %v", err)
		}
		if err := c.Leave(time.Second); err != nil {
			t.Fatalf("second Leave: %v", err)
		}
		if err := c.Shutdown(); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if err := c.Leave(time.Second); err == nil {
			t.Fatal("Leave after Shutdown: want an error")
		}
		for _, m := range []*Member{a, b} {
			e, before := waitFor(t, m, LeftGracefully, "c")
			if e.Node.Role != RoleCoreapp || e.Node.GRPCAddr != "127.0.0.1:9002" {
				t.Fatalf("%s: LeftGracefully carries %+v, want c's metadata", m.LocalNode().ID, e.Node)
			}
			for _, x := range before {
				if x.Kind == Failed && x.Node.ID == "c" {
					t.Fatalf("%s: saw Failed(c) before LeftGracefully(c)", m.LocalNode().ID)
				}
			}
			assertMembers(t, m, "a", "b")
		}
	})
}

func TestCrashIsFailedNotLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := newTestNet(t)
		a, b, c := startThree(t, mn, nil)
		if err := c.Shutdown(); err != nil { // no Leave: a crash
			t.Fatalf("Shutdown: %v", err)
		}
		for _, m := range []*Member{a, b} {
			e, before := waitFor(t, m, Failed, "c")
			if e.Node.Role != RoleCoreapp {
				t.Fatalf("%s: Failed carries %+v", m.LocalNode().ID, e.Node)
			}
			for _, x := range before {
				if x.Kind == LeftGracefully {
					t.Fatalf("%s: saw %v for a crash", m.LocalNode().ID, x)
				}
			}
			assertMembers(t, m, "a", "b")
		}
	})
}

func TestEncryption(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := newTestNet(t)
		key := KeyFromPassphrase("let me in")
		a, b, c := startThree(t, mn, key)
		seed := []string{a.LocalNode().GossipAddr}

		for _, s := range []nodeSpec{
			{id: "nokey", role: RoleCoreapp, seeds: seed},
			{id: "wrongkey", role: RoleCoreapp, seeds: seed, key: KeyFromPassphrase("guess")},
			{id: "shortkey", role: RoleCoreapp, seeds: seed, key: KeyFromPassphrase("guess")[:16]},
		} {
			if _, err := startNode(t, mn, s); err == nil {
				t.Fatalf("%s: Start succeeded, want a join error", s.id)
			}
		}
		// Give gossip many rounds (virtual time) to let an intruder in if
		// it could.
		time.Sleep(10 * time.Second)
		for _, m := range []*Member{a, b, c} {
			assertMembers(t, m, "a", "b", "c")
		}
	})
}

func TestKeyedNodeCannotJoinPlainCluster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := newTestNet(t)
		a := mustStart(t, mn, nodeSpec{id: "a", role: RoleSettings})
		_, err := startNode(t, mn, nodeSpec{id: "k", role: RoleMaster, seeds: []string{a.LocalNode().GossipAddr},
			key: KeyFromPassphrase("secret")})
		if err == nil {
			t.Fatal("keyed node joined an unencrypted cluster")
		}
		assertMembers(t, a, "a")
	})
}

// A partition long enough that memberlist alone would never heal it (the
// nodes are dead to each other for longer than GossipToTheDeadTime) heals by
// the rejoin loop, with no Join call from the test.
func TestRejoinAfterPartitionHeals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := newTestNet(t)
		a, b, c := startThree(t, mn, nil)
		ab := []string{a.LocalNode().GossipAddr, b.LocalNode().GossipAddr}
		mn.partition(ab, []string{c.LocalNode().GossipAddr})

		waitFor(t, a, Failed, "c")
		waitFor(t, b, Failed, "c")
		waitAll(t, c, Failed, "a", "b")
		// The partition lasts well past memberlist's gossip-to-the-dead
		// window (5 s with TuningLocal).
		time.Sleep(4 * memberlistConfig(TuningLocal).GossipToTheDeadTime)
		assertMembers(t, a, "a", "b")
		assertMembers(t, c, "c")

		mn.heal()
		waitFor(t, a, Joined, "c")
		waitFor(t, b, Joined, "c")
		waitJoinedAll(t, c, "a", "b")
		for _, m := range []*Member{a, b, c} {
			assertMembers(t, m, "a", "b", "c")
		}
	})
}

// A crashed node restarted on its old address without any seeds comes back
// because the others keep knocking on that address.
func TestRestartedNodeWithoutSeedsIsRejoined(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := newTestNet(t)
		a, b, c := startThree(t, mn, nil)
		addr := c.LocalNode().GossipAddr
		if err := c.Shutdown(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, a, Failed, "c")
		waitFor(t, b, Failed, "c")
		// Down past memberlist's gossip-to-the-dead window, after which
		// nothing in memberlist itself would contact c's address again.
		time.Sleep(2 * memberlistConfig(TuningLocal).GossipToTheDeadTime)

		c2 := mustStart(t, mn, nodeSpec{id: "c", role: RoleCoreapp, grpc: "127.0.0.1:9999", addr: addr})
		waitJoinedAll(t, c2, "a", "b")
		for _, m := range []*Member{a, b} {
			e, _ := waitFor(t, m, Joined, "c")
			if e.Node.GRPCAddr != "127.0.0.1:9999" {
				t.Fatalf("%s: c rejoined with %+v, want the new gRPC address", m.LocalNode().ID, e.Node)
			}
		}
		assertMembers(t, a, "a", "b", "c")
	})
}

func TestShutdownClosesEventsAndIsIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := mustStart(t, newTestNet(t), nodeSpec{id: "a", role: RoleGateway})
		if err := a.Shutdown(); err != nil {
			t.Fatal(err)
		}
		if err := a.Shutdown(); err != nil {
			t.Fatal(err)
		}
		for range a.Events() { // must terminate: closed by Shutdown
		}
	})
}

func TestStartRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"empty", Config{}, []string{"Node.ID", "Node.Role", "BindAddr"}},
		{"bad fields", Config{
			Node:           Node{ID: "x", Role: "boss", GRPCAddr: "nope", MetricsAddr: "nope"},
			BindAddr:       "127.0.0.1:99999",
			Join:           []string{"host-without-port"},
			ClusterKey:     []byte("short"),
			RejoinInterval: -time.Second,
			Tuning:         "wan",
		}, []string{"Node.Role", "Node.GRPCAddr", "Node.MetricsAddr", "BindAddr", "Join[0]", "ClusterKey", "RejoinInterval", "Tuning"}},
		{"meta too big", Config{
			Node:     Node{ID: "x", Role: RoleCoreapp, GRPCAddr: strings.Repeat("h", 600) + ":1"},
			BindAddr: "127.0.0.1:0",
		}, []string{"Node:", "512"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Start(tc.cfg)
			if err == nil {
				_ = m.Shutdown()
				t.Fatal("Start accepted a bad config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestKeyFromPassphrase(t *testing.T) {
	k := KeyFromPassphrase("abc")
	if len(k) != 32 || string(k) != string(KeyFromPassphrase("abc")) || string(k) == string(KeyFromPassphrase("abd")) {
		t.Fatalf("KeyFromPassphrase: want a stable 32-byte key per phrase, got %x", k)
	}
	if KeyFromPassphrase("") != nil {
		t.Fatal(`KeyFromPassphrase("") must be nil (no encryption)`)
	}
}

func TestHasRole(t *testing.T) {
	nodes := []Node{{ID: "settings", Role: RoleSettings}, {ID: "coreapp-1", Role: RoleCoreapp}}
	if HasRole(nodes, RoleMaster) {
		t.Errorf("HasRole(%v, master) = true", nodes)
	}
	if !HasRole(nodes, RoleCoreapp) {
		t.Errorf("HasRole(%v, coreapp) = false", nodes)
	}
	if HasRole(nil, RoleMaster) {
		t.Error("HasRole(nil, master) = true")
	}
}
