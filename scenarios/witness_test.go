package scenarios

import (
	"testing"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Sessions follows each session from its open to its close: a
// disconnect, a replacement by a newer epoch, or still open; silences
// from the last moment the gateway heard the session to the next.
func TestWitnessSessions(t *testing.T) {
	at := func(s float64) int64 {
		return time.Unix(100, 0).Add(time.Duration(s * float64(time.Second))).UnixNano()
	}
	ev := func(seq uint64, s float64, kind mcsimv1.GatewayEventKind, shard int32, epoch uint64, coreapp string) *mcsimv1.GatewayEvent {
		return &mcsimv1.GatewayEvent{Seq: seq, UnixNs: at(s), Kind: kind, Shard: shard, Shards: 2, Epoch: epoch, CoreappId: coreapp}
	}
	const (
		connect    = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT
		replace    = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE
		disconnect = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT
		silent     = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_SILENT
		heard      = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_HEARD
	)
	silence := ev(4, 3, silent, 0, 1, "coreapp-1")
	silence.LastHeardUnixNs = at(2.75)
	takeover := ev(6, 7, replace, 0, 3, "coreapp-3")
	takeover.ReplacedShard, takeover.ReplacedShards, takeover.ReplacedEpoch, takeover.ReplacedCoreappId = 0, 2, 1, "coreapp-1"
	var w Witness
	w.Fold([]*mcsimv1.GatewayEvent{
		ev(1, 0, connect, 0, 1, "coreapp-1"),
		ev(2, 0.1, connect, 1, 2, "coreapp-2"),
		ev(3, 1, silent, 1, 9, "coreapp-9"), // no such session: ignored
		silence,
		ev(5, 4, heard, 0, 1, "coreapp-1"),
		takeover,
		ev(7, 8, disconnect, 1, 2, "coreapp-2"),
	})
	got := w.Sessions()
	ts := func(s float64) time.Time { return time.Unix(0, at(s)) }
	want := []SessionSeen{
		{Shard: 0, Shards: 2, Coreapp: "coreapp-1", Epoch: 1, Start: ts(0), End: ts(7), Silent: []Span{{Start: ts(2.75), End: ts(4)}}},
		{Shard: 1, Shards: 2, Coreapp: "coreapp-2", Epoch: 2, Start: ts(0.1), End: ts(8)},
		{Shard: 0, Shards: 2, Coreapp: "coreapp-3", Epoch: 3, Start: ts(7)},
	}
	if len(got) != len(want) {
		t.Fatalf("%d sessions, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, wnt := got[i], want[i]
		if g.Shard != wnt.Shard || g.Shards != wnt.Shards || g.Coreapp != wnt.Coreapp || g.Epoch != wnt.Epoch ||
			!g.Start.Equal(wnt.Start) || !g.End.Equal(wnt.End) || len(g.Silent) != len(wnt.Silent) {
			t.Errorf("session %d: %+v, want %+v", i, g, wnt)
			continue
		}
		for j := range wnt.Silent {
			if !g.Silent[j].Start.Equal(wnt.Silent[j].Start) || !g.Silent[j].End.Equal(wnt.Silent[j].End) {
				t.Errorf("session %d silence %d: %+v, want %+v", i, j, g.Silent[j], wnt.Silent[j])
			}
		}
	}
}
