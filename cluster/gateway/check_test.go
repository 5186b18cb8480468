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

// ev builds a hand-written log entry; seq is filled in by logOf.
func ev(kind mcsimv1.GatewayEventKind, shard int32, coreapp string, epoch uint64) *mcsimv1.GatewayEvent {
	return &mcsimv1.GatewayEvent{Kind: kind, Shard: shard, CoreappId: coreapp, Epoch: epoch}
}

func replace(shard int32, coreapp string, epoch uint64, old string, oldEpoch uint64) *mcsimv1.GatewayEvent {
	e := ev(kReplace, shard, coreapp, epoch)
	e.ReplacedCoreappId, e.ReplacedEpoch = old, oldEpoch
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
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }

	a := l.Open(at(1), "a", 0, 1)
	if !a.Accepted || a.HasReplaced || a.Event.GetKind() != kConnect {
		t.Fatalf("first open: %+v", a)
	}
	if d := l.Open(at(2), "b", 0, 1); d.Accepted {
		t.Fatalf("same epoch while open accepted: %+v", d)
	}
	b := l.Open(at(3), "b", 0, 2)
	if !b.Accepted || !b.HasReplaced || b.Replaced.ID != a.Session.ID || b.Event.GetKind() != kReplace ||
		b.Event.GetReplacedCoreappId() != "a" || b.Event.GetReplacedEpoch() != 1 {
		t.Fatalf("replace: %+v", b)
	}
	if _, ok := l.Close(at(4), a.Session.ID); ok {
		t.Fatalf("closing a replaced session logged an event")
	}
	if d := l.Open(at(5), "a", 0, 1); d.Accepted || d.Reason != "stale epoch 1 for shard 0: newest is 2" {
		t.Fatalf("stale: %+v", d)
	}
	if ev, ok := l.Close(at(6), b.Session.ID); !ok || ev.GetKind() != kDisconnect {
		t.Fatalf("close holder: %v %v", ev, ok)
	}
	if d := l.Open(at(7), "c", 0, 2); d.Accepted {
		t.Fatalf("another coreapp reusing epoch 2 accepted: %+v", d)
	}
	if d := l.Open(at(8), "b", 0, 2); !d.Accepted || d.Event.GetKind() != kConnect {
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
			e.GetMonoNs() != int64(time.Duration(wantSecs[i])*time.Second) ||
			e.GetUnixNs() != at(wantSecs[i]).UnixNano() {
			t.Errorf("event %d = %v, want seq %d kind %v at %ds", i, e, i+1, wantKinds[i], wantSecs[i])
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
		id    string
		shard int32
		epoch uint64
		ok    bool
	}{
		{"a", 0, 1, true},
		{"", 0, 1, false},
		{"a", -1, 1, false},
		{"a", 0, 0, false},
	} {
		if err := ValidateRequest(tc.id, tc.shard, tc.epoch); (err == nil) != tc.ok {
			t.Errorf("ValidateRequest(%q, %d, %d) = %v", tc.id, tc.shard, tc.epoch, err)
		}
	}
}
