package gateway

import (
	"slices"
	"testing"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// TestTrafficInALog: a real Log logs every acceptance (the duplicate
// included: the scenario witness judges no_duplicate_send), every refusal,
// and one STATUS per acknowledged status, and none of them is judged by
// the fencing check.
func TestTrafficInALog(t *testing.T) {
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

	accepted, rejected := map[string]int{}, map[string]int{}
	var st []string
	for _, e := range l.Since(0) {
		switch e.GetKind() {
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE:
			accepted[e.GetMessageId()]++
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE_REJECTED:
			rejected[e.GetMessageId()]++
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_STATUS:
			st = append(st, e.GetMessageId()+"/"+e.GetStatus())
		}
	}
	if accepted["m1"] != 2 || rejected["m2"] != 1 || len(accepted) != 1 {
		t.Errorf("accepted %v rejected %v", accepted, rejected)
	}
	if !slices.Equal(st, []string{"m1/sent", "m1/delivered", "m1/read"}) {
		t.Errorf("statuses %v", st)
	}
	if v := CheckLog(l.Since(0)); len(v) != 0 {
		t.Errorf("traffic events broke the fencing check: %v", v)
	}
}
