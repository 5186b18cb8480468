package gateway

import (
	"slices"
	"testing"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// TestDuplicateSendsFires: a hand-written bad history (m1 accepted by the
// old owner and again by the new one after a failover) is caught, with
// both acceptances named; a refusal and a single acceptance are not.
func TestDuplicateSendsFires(t *testing.T) {
	msg := func(seq uint64, kind mcsimv1.GatewayEventKind, coreapp, id string) *mcsimv1.GatewayEvent {
		return &mcsimv1.GatewayEvent{Seq: seq, Kind: kind, CoreappId: coreapp, Shard: 0, Shards: 2, MessageId: id, RecipientId: "15550000100"}
	}
	const ok, no = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE, mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE_REJECTED
	bad := []*mcsimv1.GatewayEvent{
		msg(1, ok, "a", "m1"),
		msg(2, no, "a", "m2"),
		msg(3, ok, "b", "m2"),
		msg(4, ok, "b", "m1"),
		msg(5, ok, "b", "m1"),
	}
	got := DuplicateSends(bad)
	if len(got) != 1 || got[0].MessageID != "m1" || !slices.Equal(got[0].Seqs, []uint64{1, 4, 5}) {
		t.Fatalf("DuplicateSends = %+v, want m1 at seqs 1, 4, 5", got)
	}
	if got := DuplicateSends(bad[:4]); len(got) != 1 || !slices.Equal(got[0].Seqs, []uint64{1, 4}) {
		t.Fatalf("DuplicateSends of the first four = %+v", got)
	}
	if got := DuplicateSends(bad[:3]); len(got) != 0 {
		t.Fatalf("a refusal then an acceptance counted as a duplicate: %+v", got)
	}
}

// TestTrafficOfALog reads a real Log's traffic: counts per id (the
// duplicate included) and the STATUS events, one per acknowledged status.
func TestTrafficOfALog(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLog(t0)
	a := l.Open(t0, "a", 0, 2, 1).Session.ID
	l.Message(t0, a, &mcsimv1.OutboundMessage{Id: "m1", To: "15550000100"})
	l.Message(t0, a, &mcsimv1.OutboundMessage{Id: "m2", To: "15550000101"}) // bucket 7: not shard 0's
	l.Message(t0, a, &mcsimv1.OutboundMessage{Id: "m1", To: "15550000100"})
	now := t0.Add(time.Second)
	var ids []string
	for _, o := range l.Due(now) {
		ids = append(ids, o.Update.GetId())
	}
	l.Ack(now, a, ids)
	l.Ack(now, a, ids)

	tr := TrafficOf(l.Since(0))
	if tr.Accepted["m1"] != 2 || tr.Rejected["m2"] != 1 || len(tr.Accepted) != 1 {
		t.Errorf("accepted %v rejected %v", tr.Accepted, tr.Rejected)
	}
	var st []string
	for _, e := range tr.Statuses {
		st = append(st, e.GetMessageId()+"/"+e.GetStatus())
	}
	if !slices.Equal(st, []string{"m1/sent", "m1/delivered", "m1/read"}) {
		t.Errorf("statuses %v", st)
	}
	if d := DuplicateSends(l.Since(0)); len(d) != 1 || d[0].MessageID != "m1" {
		t.Errorf("duplicates %+v", d)
	}
	if v := CheckLog(l.Since(0)); len(v) != 0 {
		t.Errorf("traffic events broke the fencing check: %v", v)
	}
}
