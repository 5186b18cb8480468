package membership

import (
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// waitTimeout bounds every wait for an event. Inside a synctest bubble it is
// virtual time, so it costs nothing when things work.
const waitTimeout = 30 * time.Second

// newTestNet returns an in-memory network for a test running in a synctest
// bubble. memberlist's Shutdown does not wait for its goroutines (a probe
// waiting for its timeout, a stream handler waiting for its deadline), and
// a bubble stops its clock once the test function returns, so the last
// cleanup (registered first, run after every node's Shutdown) lets virtual
// time run on until they have all returned.
func newTestNet(t *testing.T) *memNet {
	t.Cleanup(func() { time.Sleep(10 * time.Second) })
	return newMemNet()
}

// nodeSpec is what a test node is started with.
type nodeSpec struct {
	id      string
	role    Role
	grpc    string
	metrics string
	seeds   []string
	key     []byte
	addr    string // "" = a fresh address
}

// startNode starts a member on the in-memory network and shuts it down at
// the end of the test.
func startNode(t *testing.T, mn *memNet, s nodeSpec) (*Member, error) {
	t.Helper()
	tr := mn.newTransport()
	if s.addr != "" {
		tr = mn.transportAt(s.addr)
	}
	m, err := Start(Config{
		Node:       Node{ID: s.id, Role: s.role, GRPCAddr: s.grpc, MetricsAddr: s.metrics, PID: 4242},
		Join:       s.seeds,
		ClusterKey: s.key,
		Tuning:     TuningLocal,
		Logger:     zerolog.Nop(),
		Transport:  tr,
	})
	if err != nil {
		_ = tr.Shutdown()
		return nil, err
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m, nil
}

func mustStart(t *testing.T, mn *memNet, s nodeSpec) *Member {
	t.Helper()
	m, err := startNode(t, mn, s)
	if err != nil {
		t.Fatalf("start %s: %v", s.id, err)
	}
	return m
}

// waitFor reads m's events until one matches, failing the test after
// waitTimeout. Events before the match are returned too, for assertions
// about what did not happen first.
func waitFor(t *testing.T, m *Member, kind EventKind, id string) (Event, []Event) {
	t.Helper()
	return waitForEither(t, m, id, kind)
}

// waitJoinedAll waits until m has seen Joined for each id (in any order).
func waitJoinedAll(t *testing.T, m *Member, want ...string) {
	t.Helper()
	waitAll(t, m, Joined, want...)
}

// waitAll waits until m has seen an event of kind for each id (in any
// order).
func waitAll(t *testing.T, m *Member, kind EventKind, want ...string) {
	t.Helper()
	missing := slices.Clone(want)
	deadline := time.After(waitTimeout)
	for len(missing) > 0 {
		select {
		case e, ok := <-m.Events():
			if !ok {
				t.Fatalf("%s: events closed", m.LocalNode().ID)
			}
			if e.Kind == kind {
				missing = slices.DeleteFunc(missing, func(id string) bool { return id == e.Node.ID })
			}
		case <-deadline:
			t.Fatalf("%s: never saw %v for %v; members %v", m.LocalNode().ID, kind, missing, ids(m.Members()))
		}
	}
}

func ids(nodes []Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

func assertMembers(t *testing.T, m *Member, want ...string) {
	t.Helper()
	if got := ids(m.Members()); !slices.Equal(got, want) {
		t.Fatalf("%s: Members = %v, want %v", m.LocalNode().ID, got, want)
	}
}

// waitForEither reads m's events until one about id is of one of kinds,
// failing the test after waitTimeout; the events before it are returned
// too.
func waitForEither(t *testing.T, m *Member, id string, kinds ...EventKind) (Event, []Event) {
	t.Helper()
	var before []Event
	deadline := time.After(waitTimeout)
	for {
		select {
		case e, ok := <-m.Events():
			if !ok {
				t.Fatalf("%s: events closed while waiting for %v %s", m.LocalNode().ID, kinds, id)
			}
			if e.Node.ID == id && slices.Contains(kinds, e.Kind) {
				return e, before
			}
			before = append(before, e)
		case <-deadline:
			t.Fatalf("%s: no %v event for %s within %v; members %v; other events %v",
				m.LocalNode().ID, kinds, id, waitTimeout, ids(m.Members()), before)
		}
	}
}
