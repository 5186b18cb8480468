package gateway

import (
	"reflect"
	"testing"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

const (
	kConnect    = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT
	kReplace    = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE
	kReject     = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REJECT
	kDisconnect = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT
)

// ev builds a hand-written log entry of a session of count 4; seq is filled
// in by logOf.
func ev(kind mcsimv1.GatewayEventKind, shard int32, coreapp string, epoch uint64) *mcsimv1.GatewayEvent {
	return evN(kind, shard, 4, coreapp, epoch)
}

// evN builds a hand-written log entry of shard shard of count shards.
func evN(kind mcsimv1.GatewayEventKind, shard, shards int32, coreapp string, epoch uint64) *mcsimv1.GatewayEvent {
	return &mcsimv1.GatewayEvent{Kind: kind, Shard: shard, Shards: shards, CoreappId: coreapp, Epoch: epoch}
}

func replace(shard int32, coreapp string, epoch uint64, old string, oldEpoch uint64) *mcsimv1.GatewayEvent {
	return replaceN(shard, 4, coreapp, epoch, shard, 4, old, oldEpoch)
}

// replaceN builds a REPLACE of shard oldShard of oldShards by shard of shards.
func replaceN(shard, shards int32, coreapp string, epoch uint64, oldShard, oldShards int32, old string, oldEpoch uint64) *mcsimv1.GatewayEvent {
	e := evN(kReplace, shard, shards, coreapp, epoch)
	e.ReplacedCoreappId, e.ReplacedEpoch, e.ReplacedShard, e.ReplacedShards = old, oldEpoch, oldShard, oldShards
	return e
}

func logOf(evs ...*mcsimv1.GatewayEvent) []*mcsimv1.GatewayEvent {
	for i, e := range evs {
		e.Seq = uint64(i + 1)
	}
	return evs
}

type vio struct {
	kind  ViolationKind
	seq   uint64
	shard int32
}

func TestCheckLog(t *testing.T) {
	tests := []struct {
		name string
		log  []*mcsimv1.GatewayEvent
		want []vio
	}{
		{name: "empty"},
		{
			name: "failover by disconnect then connect",
			log: logOf(
				ev(kConnect, 0, "a", 1),
				ev(kDisconnect, 0, "a", 1),
				ev(kConnect, 0, "b", 2),
			),
		},
		{
			name: "failover by replace",
			log: logOf(
				ev(kConnect, 0, "a", 1),
				replace(0, "b", 2, "a", 1),
				ev(kDisconnect, 0, "b", 2),
			),
		},
		{
			name: "rejects and other shards do not count",
			log: logOf(
				ev(kConnect, 0, "a", 5),
				ev(kConnect, 1, "b", 1),
				ev(kReject, 0, "c", 4),
				ev(kDisconnect, 0, "a", 5),
				ev(kConnect, 0, "a", 5), // same assignment reconnecting
			),
		},
		{
			name: "two connects of one shard",
			log: logOf(
				ev(kConnect, 0, "a", 1),
				ev(kConnect, 0, "b", 2),
			),
			want: []vio{{DoubleSession, 2, 0}},
		},
		{
			name: "replace names the wrong session, the real holder stays open",
			log: logOf(
				ev(kConnect, 3, "a", 1),
				replace(3, "c", 2, "b", 1),
			),
			want: []vio{{DoubleSession, 2, 3}},
		},
		{
			name: "older epoch accepted after a newer one",
			log: logOf(
				ev(kConnect, 0, "a", 3),
				ev(kDisconnect, 0, "a", 3),
				ev(kConnect, 0, "b", 2),
			),
			want: []vio{{StaleEpoch, 3, 0}},
		},
		{
			name: "stale replace is both violations",
			log: logOf(
				ev(kConnect, 0, "a", 3),
				ev(kConnect, 0, "b", 2),
			),
			want: []vio{{StaleEpoch, 2, 0}, {DoubleSession, 2, 0}},
		},
		{
			name: "disconnect of someone else does not free the shard",
			log: logOf(
				ev(kConnect, 0, "a", 1),
				ev(kDisconnect, 0, "b", 1),
				ev(kConnect, 0, "b", 2),
			),
			want: []vio{{DoubleSession, 3, 0}},
		},
		// Shard-count changes: sessions of different counts are judged by
		// the key buckets they cover.
		{
			name: "2→4: new shard 2 replaces 0-of-2, then 0-of-4 connects",
			log: logOf(
				evN(kConnect, 0, 2, "a", 1),
				evN(kConnect, 1, 2, "b", 2),
				replaceN(2, 4, "c", 5, 0, 2, "a", 1),
				evN(kConnect, 0, 4, "a", 3),
				replaceN(1, 4, "b", 4, 1, 2, "b", 2),
				evN(kConnect, 3, 4, "d", 6),
			),
		},
		{
			name: "2→4: new shard 2 connects while 0-of-2 is open",
			log: logOf(
				evN(kConnect, 0, 2, "a", 1),
				evN(kConnect, 2, 4, "c", 5),
			),
			want: []vio{{DoubleSession, 2, 2}},
		},
		{
			name: "2→4: 0-of-4 connecting does not overlap 1-of-2",
			log: logOf(
				evN(kConnect, 1, 2, "b", 2),
				evN(kConnect, 0, 4, "a", 3),
				evN(kConnect, 3, 4, "a", 4),
			),
			want: []vio{{DoubleSession, 3, 3}},
		},
		{
			name: "4→2: 0-of-2 replaces both 0-of-4 and 2-of-4",
			log: logOf(
				evN(kConnect, 0, 4, "a", 1),
				evN(kConnect, 2, 4, "c", 2),
				replaceN(0, 2, "a", 5, 0, 4, "a", 1),
				replaceN(0, 2, "a", 5, 2, 4, "c", 2),
				evN(kDisconnect, 0, 2, "a", 5),
			),
		},
		{
			name: "4→2: 0-of-2 replaces only 0-of-4, 2-of-4 stays open",
			log: logOf(
				evN(kConnect, 0, 4, "a", 1),
				evN(kConnect, 2, 4, "c", 2),
				replaceN(0, 2, "a", 5, 0, 4, "a", 1),
			),
			want: []vio{{DoubleSession, 3, 0}},
		},
		{
			name: "1→32: 5-of-32 while 0-of-1 is open; 32→1: 0-of-1 while 31-of-32 is open",
			log: logOf(
				evN(kConnect, 0, 1, "a", 1),
				evN(kConnect, 5, 32, "b", 2),
				evN(kDisconnect, 0, 1, "a", 1),
				evN(kConnect, 31, 32, "c", 3),
				evN(kConnect, 0, 1, "a", 4),
			),
			want: []vio{{DoubleSession, 2, 5}, {DoubleSession, 5, 0}, {DoubleSession, 5, 0}},
		},
		{
			name: "32→1 by replacing every open session",
			log: logOf(
				evN(kConnect, 5, 32, "b", 2),
				evN(kConnect, 31, 32, "c", 3),
				replaceN(0, 1, "a", 4, 5, 32, "b", 2),
				replaceN(0, 1, "a", 4, 31, 32, "c", 3),
			),
		},
		{
			name: "stale epoch on one bucket of a coarser shard",
			log: logOf(
				evN(kConnect, 3, 4, "a", 7),
				evN(kDisconnect, 3, 4, "a", 7),
				evN(kConnect, 1, 2, "b", 5), // covers 3-of-4's buckets
			),
			want: []vio{{StaleEpoch, 3, 1}},
		},
		{
			name: "same count, other shard: no overlap",
			log: logOf(
				evN(kConnect, 0, 8, "a", 1),
				evN(kConnect, 4, 8, "b", 2),
				evN(kConnect, 7, 8, "c", 3),
			),
		},
		{
			name: "invalid shard count",
			log:  logOf(evN(kConnect, 0, 3, "a", 1)),
			want: []vio{{BadEvent, 1, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []vio
			for _, v := range CheckLog(tt.log) {
				got = append(got, vio{v.Kind, v.Seq, v.Shard})
				if v.Detail == "" {
					t.Errorf("violation without detail: %v", v)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("CheckLog = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLogDecisions steps the pure Log by hand.
func TestLogDecisions(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLog(start)
	// Steps of 100 ms: every session is ended before SilentAfter without a
	// pong, so no SILENT comes between these decisions.
	at := func(s int) time.Time { return start.Add(time.Duration(s) * 100 * time.Millisecond) }

	a := l.Open(at(1), "a", 0, 4, 1)
	if !a.Accepted || len(a.Replaced) != 0 || len(a.Events) != 1 || a.Events[0].GetKind() != kConnect {
		t.Fatalf("first open: %+v", a)
	}
	if d := l.Open(at(2), "b", 0, 4, 1); d.Accepted {
		t.Fatalf("same epoch while open accepted: %+v", d)
	}
	b := l.Open(at(3), "b", 0, 4, 2)
	if !b.Accepted || len(b.Replaced) != 1 || b.Replaced[0].ID != a.Session.ID || len(b.Events) != 1 ||
		b.Events[0].GetKind() != kReplace || b.Events[0].GetReplacedCoreappId() != "a" || b.Events[0].GetReplacedEpoch() != 1 ||
		b.Events[0].GetReplacedShard() != 0 || b.Events[0].GetReplacedShards() != 4 {
		t.Fatalf("replace: %+v", b)
	}
	if _, ok := l.Close(at(4), a.Session.ID); ok {
		t.Fatalf("closing a replaced session logged an event")
	}
	if d := l.Open(at(5), "a", 0, 4, 1); d.Accepted || d.Reason != "stale epoch 1 for shard 0 of 4: newest is 2" {
		t.Fatalf("stale: %+v", d)
	}
	if ev, ok := l.Close(at(6), b.Session.ID); !ok || ev.GetKind() != kDisconnect {
		t.Fatalf("close holder: %v %v", ev, ok)
	}
	if d := l.Open(at(7), "c", 0, 4, 2); d.Accepted {
		t.Fatalf("another coreapp reusing epoch 2 accepted: %+v", d)
	}
	if d := l.Open(at(8), "b", 0, 4, 2); !d.Accepted || d.Events[0].GetKind() != kConnect {
		t.Fatalf("same assignment reconnecting refused: %+v", d)
	}

	evs := l.Since(0)
	wantKinds := []mcsimv1.GatewayEventKind{kConnect, kReject, kReplace, kReject, kDisconnect, kReject, kConnect}
	wantSecs := []int{1, 2, 3, 5, 6, 7, 8}
	if len(evs) != len(wantKinds) {
		t.Fatalf("got %d events, want %d: %v", len(evs), len(wantKinds), evs)
	}
	for i, e := range evs {
		if e.GetSeq() != uint64(i+1) || e.GetKind() != wantKinds[i] ||
			e.GetMonoNs() != int64(at(wantSecs[i]).Sub(start)) ||
			e.GetUnixNs() != at(wantSecs[i]).UnixNano() {
			t.Errorf("event %d = %v, want seq %d kind %v at step %d", i, e, i+1, wantKinds[i], wantSecs[i])
		}
	}
	if got := l.Since(6); len(got) != 2 || got[0].GetSeq() != 6 {
		t.Errorf("Since(6) = %v", got)
	}
	if got := l.Since(100); len(got) != 0 {
		t.Errorf("Since(100) = %v", got)
	}
	if v := CheckLog(evs); len(v) != 0 {
		t.Errorf("the gateway's own log has violations: %v", v)
	}
}

func TestValidateRequest(t *testing.T) {
	for _, tc := range []struct {
		id            string
		shard, shards int32
		epoch         uint64
		ok            bool
	}{
		{"a", 0, 1, 1, true},
		{"a", 31, 32, 1, true},
		{"", 0, 1, 1, false},
		{"a", -1, 1, 1, false},
		{"a", 0, 1, 0, false},
		{"a", 0, 0, 1, false},
		{"a", 0, 3, 1, false},
		{"a", 0, 64, 1, false},
		{"a", 4, 4, 1, false},
	} {
		if err := ValidateRequest(tc.id, tc.shard, tc.shards, tc.epoch); (err == nil) != tc.ok {
			t.Errorf("ValidateRequest(%q, %d, %d, %d) = %v", tc.id, tc.shard, tc.shards, tc.epoch, err)
		}
	}
}
