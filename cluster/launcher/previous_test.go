package launcher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// A cluster restarted on the same data dir: the stored map names the
// previous run's coreapps, which this run's gateway never saw. The new
// primary fails their shards over; each first connect is a failover from
// the stored owner, timed from the gateway's start, also when the new
// owner has the same id (a new process). Later connects are judged as
// usual.
func TestFailoversOfAPreviousRunsShards(t *testing.T) {
	var out bytes.Buffer
	cfg := DefaultConfig()
	cfg.JSON, cfg.Out, cfg.Shards = true, &out, 4
	e := newEmitter(cfg)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const (
		connect    = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT
		disconnect = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT
	)
	e.previousOwners(&mcsimv1.ShardMap{Shards: 4, MaxEpoch: 70, Assignments: []*mcsimv1.ShardAssignment{
		{Shard: 0, CoreappId: "coreapp-1", Epoch: 5},
		{Shard: 1, CoreappId: "coreapp-2", Epoch: 6},
		{Shard: 2}, // unassigned in the previous run: its first connect is a first assignment
		{Shard: 3, CoreappId: "coreapp-4", Epoch: 7},
	}}, t0)
	e.gateway([]*mcsimv1.GatewayEvent{
		gwEvent(1, t0.Add(4*time.Second), connect, 0, 71, "coreapp-3"),
		gwEvent(2, t0.Add(4100*time.Millisecond), connect, 1, 72, "coreapp-2"),
		gwEvent(3, t0.Add(4200*time.Millisecond), connect, 2, 73, "coreapp-5"),
		gwEvent(4, t0.Add(4300*time.Millisecond), connect, 3, 74, "coreapp-1"),
		// From here on, a reconnect by the same coreapp is no failover.
		gwEvent(5, t0.Add(9*time.Second), disconnect, 3, 74, "coreapp-1"),
		gwEvent(6, t0.Add(9500*time.Millisecond), connect, 3, 74, "coreapp-1"),
	})
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var ev Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if ev.Event == "failover" {
			got = append(got, fmt.Sprintf("shard %d: %s → %s epoch %d, %d ms", *ev.Shard, ev.From, ev.To, ev.Epoch, *ev.DowntimeMS))
		}
	}
	want := []string{
		"shard 0: coreapp-1 → coreapp-3 epoch 71, 4000 ms",
		"shard 1: coreapp-2 → coreapp-2 epoch 72, 4100 ms",
		"shard 3: coreapp-4 → coreapp-1 epoch 74, 4300 ms",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("failovers:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, w := range []string{"shard 0: coreapp-1 → coreapp-3", "shard 1: coreapp-2 → coreapp-2", "shard 3: coreapp-4 → coreapp-1"} {
		if !strings.Contains(strings.Join(e.recent, "\n"), w) {
			t.Errorf("the view's recent failovers %q lack %q", e.recent, w)
		}
	}
}
