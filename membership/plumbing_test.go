package membership

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// syncBuffer is a bytes.Buffer that memberlist's goroutines may write to
// while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestMemberlistLogLevels(t *testing.T) {
	var buf syncBuffer
	l := newMemberlistLogger(zerolog.New(&buf).Level(zerolog.DebugLevel))
	l.Printf("[DEBUG] memberlist: Stream connection from=%s", "x")
	l.Printf("[INFO] memberlist: Marking %s as failed", "c")
	l.Printf("[WARN] memberlist: Refuting a dead message")
	l.Printf("[ERR] memberlist: Failed to send ping")
	l.Printf("[ERR] Failed to shutdown transport")
	l.Printf("no prefix at all")

	want := []struct{ level, msg string }{
		{"debug", "Stream connection from=x"},
		{"info", "Marking c as failed"},
		{"warn", "Refuting a dead message"},
		{"error", "Failed to send ping"},
		{"error", "Failed to shutdown transport"},
		{"info", "no prefix at all"},
	}
	got := buf.lines(t)
	if len(got) != len(want) {
		t.Fatalf("got %d log lines, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i]["level"] != w.level || got[i]["message"] != w.msg || got[i]["component"] != "memberlist" {
			t.Errorf("line %d = %v, want level=%s message=%q component=memberlist", i, got[i], w.level, w.msg)
		}
	}
}

func TestMemberlistLogsRespectLevel(t *testing.T) {
	var buf syncBuffer
	l := newMemberlistLogger(zerolog.New(&buf).Level(zerolog.WarnLevel))
	l.Printf("[DEBUG] memberlist: chatter")
	l.Printf("[INFO] memberlist: more chatter")
	l.Printf("[WARN] memberlist: something odd")
	if got := buf.lines(t); len(got) != 1 || got[0]["message"] != "something odd" {
		t.Fatalf("at warn level got %v, want only the warning", got)
	}
}

func TestEventQueueKeepsEverythingForASlowReader(t *testing.T) {
	q := newEventQueue()
	const n = 10000
	for i := range n {
		q.push(Event{Kind: Joined, Node: Node{PID: i}})
	}
	for i := range n {
		e := <-q.out
		if e.Node.PID != i {
			t.Fatalf("event %d has PID %d: out of order or lost", i, e.Node.PID)
		}
	}
	q.close()
	q.push(Event{Kind: Failed}) // after close: dropped, must not panic or block
	if _, ok := <-q.out; ok {
		t.Fatal("out not closed after close")
	}
	q.close() // idempotent
}

// One test over real loopback sockets: port 0 is resolved, TCP and UDP
// work, and memberlist's own log lines reach zerolog. Real time, so it only
// waits for events (with a generous bound), never for time to pass.
func TestRealSocketsJoinAndLogRouting(t *testing.T) {
	var buf syncBuffer
	logger := zerolog.New(&buf).Level(zerolog.DebugLevel)
	start := func(id string, seeds []string) *Member {
		// The node's logger carries node_id; memberlist's lines must keep it.
		logger := logger.With().Str("node_id", id).Logger()
		m, err := Start(Config{
			Node:     Node{ID: id, Role: RoleCoreapp, GRPCAddr: "127.0.0.1:1"},
			BindAddr: "127.0.0.1:0",
			Join:     seeds,
			Tuning:   TuningLocal,
			Logger:   logger,
		})
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		t.Cleanup(func() { _ = m.Shutdown() })
		return m
	}
	a := start("a", nil)
	if strings.HasSuffix(a.LocalNode().GossipAddr, ":0") || a.LocalNode().GossipAddr == "" {
		t.Fatalf("GossipAddr = %q, want the port actually bound", a.LocalNode().GossipAddr)
	}
	b := start("b", []string{a.LocalNode().GossipAddr})
	waitJoinedAll(t, a, "a", "b")
	waitJoinedAll(t, b, "a", "b")
	assertMembers(t, a, "a", "b")

	var sawMemberlistDebug bool
	for _, l := range buf.lines(t) {
		if l["component"] == "memberlist" && l["level"] == "debug" && l["node_id"] != nil {
			sawMemberlistDebug = true
		}
		if msg, _ := l["message"].(string); strings.HasPrefix(msg, "[") {
			t.Errorf("level prefix not stripped: %v", l)
		}
	}
	if !sawMemberlistDebug {
		t.Fatalf("no memberlist debug line with component=memberlist and node_id in:\n%v", buf.lines(t))
	}
}

func TestTuningFor(t *testing.T) {
	for _, tc := range []struct {
		bind string
		want Tuning
	}{
		{"127.0.0.1:7946", TuningLocal},
		{"127.0.0.2:0", TuningLocal},
		{"[::1]:7946", TuningLocal},
		{"localhost:7946", TuningLocal},
		{"LocalHost:7946", TuningLocal},
		{"0.0.0.0:7946", TuningLAN},
		{":7946", TuningLAN},
		{"10.0.0.5:7946", TuningLAN},
		{"node-1.example:7946", TuningLAN},
		{"127.0.0.1", TuningLAN}, // no port: does not parse
	} {
		if got := TuningFor(tc.bind); got != tc.want {
			t.Errorf("TuningFor(%q) = %q, want %q", tc.bind, got, tc.want)
		}
	}
}

// The local tuning is what TuningLocal's doc and the README say: the
// idle cost of a 36-process cluster depends on it (README, "Measurements").
func TestLocalTuningValues(t *testing.T) {
	c := memberlistConfig(TuningLocal)
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"GossipInterval", c.GossipInterval, 500 * time.Millisecond},
		{"ProbeInterval", c.ProbeInterval, time.Second},
		{"ProbeTimeout", c.ProbeTimeout, 100 * time.Millisecond},
		{"PushPullInterval", c.PushPullInterval, 3 * time.Second},
		{"DeadNodeReclaimTime", c.DeadNodeReclaimTime, 10 * time.Millisecond},
		{"EnableCompression", c.EnableCompression, false},
	} {
		if tc.got != tc.want {
			t.Errorf("local tuning %s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if lan := memberlistConfig(TuningLAN); !lan.EnableCompression || lan.GossipInterval != 200*time.Millisecond {
		t.Errorf("LAN tuning changed: compression %v, gossip %v; want memberlist's defaults", lan.EnableCompression, lan.GossipInterval)
	}
}
