package membership

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/internal/faultnet"
)

var _ Faults = (*faultnet.Layer)(nil)

// Two members on real loopback sockets, each with its fault layer, as in
// a node process: they join through the layers (the streams carry the
// preamble, the acceptor strips it), a cut both ways makes each see the
// other fail although both still run, and the heal lets them see each
// other alive again. Real time: only waits for events, each bounded by
// waitTimeout. Two members, because with a third reaching both, indirect
// probes would keep the cut pair alive, as they should.
func TestFaultLayerPartitionsGossip(t *testing.T) {
	start := func(id string, layer *faultnet.Layer, seeds []string) *Member {
		m, err := Start(Config{
			Node:           Node{ID: id, Role: RoleCoreapp, GRPCAddr: "127.0.0.1:1"},
			BindAddr:       "127.0.0.1:0",
			Join:           seeds,
			Tuning:         TuningLocal,
			RejoinInterval: 200 * time.Millisecond,
			Logger:         zerolog.Nop(),
			Faults:         layer,
		})
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		t.Cleanup(func() { _ = m.Shutdown() })
		return m
	}
	la, lb := faultnet.New("a"), faultnet.New("b")
	a := start("a", la, nil)
	b := start("b", lb, []string{a.LocalNode().GossipAddr})
	waitJoinedAll(t, a, "a", "b")
	waitJoinedAll(t, b, "a", "b")

	book := map[string][]string{"a": {a.LocalNode().GossipAddr}, "b": {b.LocalNode().GossipAddr}}
	set := func(links ...faultnet.Link) {
		t.Helper()
		for _, l := range []*faultnet.Layer{la, lb} {
			if err := l.Set(faultnet.Table{Links: links, Book: book, Seed: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	set(faultnet.Link{From: "a", To: "b", Cut: true}, faultnet.Link{From: "b", To: "a", Cut: true})
	waitFor(t, a, Failed, "b")
	waitFor(t, b, Failed, "a")
	assertMembers(t, a, "a")
	assertMembers(t, b, "b")

	set()
	waitFor(t, a, Joined, "b")
	waitFor(t, b, Joined, "a")
	assertMembers(t, a, "a", "b")
	assertMembers(t, b, "a", "b")
}

// A fault layer with a transport of the caller's own is refused: the
// layer would silently apply to nothing.
func TestFaultsNeedTheSocketTransport(t *testing.T) {
	mn := newMemNet()
	tr := mn.newTransport()
	defer tr.Shutdown()
	err := Config{Node: Node{ID: "a", Role: RoleMaster}, Transport: tr, Faults: faultnet.New("a")}.Validate()
	if err == nil {
		t.Fatal("Validate accepted Faults with a Transport")
	}
}
