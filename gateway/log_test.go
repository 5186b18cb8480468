package gateway

import (
	"strings"
	"testing"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// TestLogShardCountChange steps the pure Log through live shard-count
// changes: sessions are fenced on the keys they cover, not on shard numbers.
func TestLogShardCountChange(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLog(start)
	sec := 0
	open := func(coreapp string, shard, shards int32, epoch uint64) Decision {
		t.Helper()
		sec++
		now := start.Add(time.Duration(sec) * time.Second)
		for _, h := range l.Holders() { // every open session answers its pings
			l.Heard(now, h.ID)
		}
		return l.Open(now, coreapp, shard, shards, epoch)
	}
	wantReplaced := func(d Decision, want ...Session) {
		t.Helper()
		if !d.Accepted || len(d.Replaced) != len(want) {
			t.Fatalf("decision %+v, want accepted replacing %d", d, len(want))
		}
		for i, w := range want {
			r, e := d.Replaced[i], d.Events[i]
			if r.ID != w.ID || e.GetKind() != kReplace || e.GetReplacedCoreappId() != w.CoreappID ||
				e.GetReplacedShard() != w.Shard || e.GetReplacedShards() != w.Shards || e.GetReplacedEpoch() != w.Epoch ||
				e.GetShard() != d.Session.Shard || e.GetShards() != d.Session.Shards || e.GetEpoch() != d.Session.Epoch {
				t.Errorf("replaced[%d] = %+v, event %v, want %+v", i, r, e, w)
			}
		}
	}

	// Count 2: a holds 0-of-2, b holds 1-of-2.
	a0 := open("a", 0, 2, 1)
	b1 := open("b", 1, 2, 2)
	if !a0.Accepted || !b1.Accepted || a0.Events[0].GetKind() != kConnect || a0.Events[0].GetShards() != 2 {
		t.Fatalf("count 2: %+v %+v", a0, b1)
	}

	// 2→4. New shard 2 (keys of 0-of-2) comes first: it replaces 0-of-2.
	c2 := open("c", 2, 4, 5)
	wantReplaced(c2, a0.Session)
	// 0-of-4 at its new epoch: nothing open on its keys any more.
	a0n := open("a", 0, 4, 3)
	if !a0n.Accepted || len(a0n.Replaced) != 0 || a0n.Events[0].GetKind() != kConnect {
		t.Fatalf("0-of-4: %+v", a0n)
	}
	// 1-of-4 replaces 1-of-2 on the same coreapp; 3-of-4 then connects.
	wantReplaced(open("b", 1, 4, 4), b1.Session)
	d3 := open("d", 3, 4, 6)
	if !d3.Accepted || d3.Events[0].GetKind() != kConnect {
		t.Fatalf("3-of-4: %+v", d3)
	}
	// The old count's sessions cannot come back: 0-of-2 at its old epoch
	// is stale on every bucket now.
	if d := open("a", 0, 2, 1); d.Accepted || !strings.Contains(d.Reason, "newest is 5") {
		t.Fatalf("old 0-of-2 came back: %+v", d)
	}
	// A stale epoch on one bucket rejects: 1-of-2 at epoch 5 covers
	// 3-of-4's buckets (epoch 6).
	if d := open("b", 1, 2, 5); d.Accepted || d.Reason != "stale epoch 5 for shard 1 of 2: newest is 6" {
		t.Fatalf("stale on one bucket: %+v", d)
	}

	// 4→2: 0-of-2 replaces both 0-of-4 and 2-of-4, in bucket order.
	wantReplaced(open("a", 0, 2, 7), a0n.Session, c2.Session)
	if h := l.Holders(); len(h) != 3 || h[0].Shards != 2 || h[1].Shards != 4 || h[3].Shards != 4 {
		t.Fatalf("holders = %v", h)
	}

	// 2→1 then 1→32: one session replaces all, then one fine shard
	// replaces the whole.
	all := open("a", 0, 1, 8)
	if !all.Accepted || len(all.Replaced) != 3 {
		t.Fatalf("0-of-1: %+v", all)
	}
	wantReplaced(open("e", 17, 32, 9), all.Session)
	if d := open("a", 0, 32, 8); d.Accepted {
		t.Fatalf("0-of-32 at the epoch of 0-of-1 accepted: %+v", d)
	}

	if v := CheckLog(l.Since(0)); len(v) != 0 {
		t.Errorf("the gateway's own log has violations: %v", v)
	}
	for _, e := range l.Since(0) {
		if e.GetShards() == 0 {
			t.Errorf("event without shards: %v", e)
		}
	}
}

// TestLogSameEpochReconnectAcrossCounts: an epoch names one assignment,
// including its count, so the same coreapp and shard number with another
// count may not reuse it.
func TestLogSameEpochReconnectAcrossCounts(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLog(start)
	a := l.Open(start, "a", 1, 4, 3)
	l.Close(start, a.Session.ID)
	if d := l.Open(start, "a", 1, 2, 3); d.Accepted || !strings.Contains(d.Reason, "belongs to coreapp \"a\" shard 1 of 4") {
		t.Fatalf("other count reused the epoch: %+v", d)
	}
	if d := l.Open(start, "a", 1, 4, 3); !d.Accepted || d.Events[0].GetKind() != mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT {
		t.Fatalf("same assignment reconnecting: %+v", d)
	}
}
