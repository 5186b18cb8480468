package gateway

import (
	"testing"
	"testing/synctest"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

const kStatus = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_STATUS

// TestServerMessagesAndStatuses runs the traffic over real streams in
// virtual time: a message accepted and acknowledged on the stream, its
// statuses offered at their delays, an acknowledged status logged once,
// an unacknowledged one offered again after Resend and then to the new
// holder after a failover, and a message on a replaced session refused.
func TestServerMessagesAndStatuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		gw, c := newGateway(t)
		a, first := open(t, c, "a", 0, 1) // shard 0 of 4: bucket 20 is its
		wantState(t, first, mcsimv1.SessionState_SESSION_STATE_ACCEPTED)
		recv := func(s session) *mcsimv1.SessionResponse {
			t.Helper()
			m, err := s.recv()
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		wantStatus := func(m *mcsimv1.SessionResponse, id string, at time.Duration) {
			t.Helper()
			if m.GetStatus().GetId() != id || time.Since(start) != at {
				t.Fatalf("at %v got %v, want status %s at %v", time.Since(start), m, id, at)
			}
		}

		time.Sleep(100 * time.Millisecond)
		if err := a.stream.Send(&mcsimv1.SessionRequest{Message: &mcsimv1.OutboundMessage{Id: "m1", To: "15550000100", Body: "hi"}}); err != nil {
			t.Fatal(err)
		}
		if ack := recv(a).GetMessageAck(); !ack.GetAccepted() || ack.GetId() != "m1" {
			t.Fatalf("ack = %v", ack)
		}
		// Not covered by shard 0 of 4 (bucket 7 is shard 3's): refused.
		_ = a.stream.Send(&mcsimv1.SessionRequest{Message: &mcsimv1.OutboundMessage{Id: "m2", To: "15550000101"}})
		if ack := recv(a).GetMessageAck(); ack.GetAccepted() || ack.GetReason() == "" {
			t.Fatalf("ack of a message off the session's keys = %v", ack)
		}

		wantStatus(recv(a), "m1/sent", 150*time.Millisecond)
		_ = a.stream.Send(&mcsimv1.SessionRequest{StatusAck: []string{"m1/sent"}})
		wantStatus(recv(a), "m1/delivered", 400*time.Millisecond)
		// delivered is not acknowledged: offered again a Resend later.
		wantStatus(recv(a), "m1/read", 1100*time.Millisecond)
		wantStatus(recv(a), "m1/delivered", 1400*time.Millisecond)

		// b takes shard 0: a is replaced, b is offered both pending
		// statuses at once, right after ACCEPTED.
		time.Sleep(100 * time.Millisecond)
		b, first := open(t, c, "b", 0, 2)
		wantState(t, first, mcsimv1.SessionState_SESSION_STATE_ACCEPTED)
		wantState(t, recv(a), mcsimv1.SessionState_SESSION_STATE_REPLACED)
		wantStatus(recv(b), "m1/delivered", 1500*time.Millisecond)
		wantStatus(recv(b), "m1/read", 1500*time.Millisecond)
		_ = b.stream.Send(&mcsimv1.SessionRequest{StatusAck: []string{"m1/delivered", "m1/read", "m1/read"}})
		time.Sleep(5 * time.Second)
		synctest.Wait()
		select {
		case m := <-b.msgs:
			t.Fatalf("offered after every status was acknowledged: %v", m)
		default:
		}

		var kinds []mcsimv1.GatewayEventKind
		var statuses []string
		for _, e := range gw.Log(0) {
			kinds = append(kinds, e.GetKind())
			if e.GetKind() == mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_STATUS {
				statuses = append(statuses, e.GetCoreappId()+":"+e.GetStatus())
			}
		}
		want := []mcsimv1.GatewayEventKind{kConnect, mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE,
			mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE_REJECTED, kStatus, kReplace, kStatus, kStatus}
		if len(kinds) != len(want) {
			t.Fatalf("events %v, want %v", kinds, want)
		}
		for i := range want {
			if kinds[i] != want[i] {
				t.Fatalf("events %v, want %v", kinds, want)
			}
		}
		if len(statuses) != 3 || statuses[0] != "a:sent" || statuses[1] != "b:delivered" || statuses[2] != "b:read" {
			t.Errorf("STATUS events %v", statuses)
		}
	})
}

// TestSendingIsNotBeingHeard: a coreapp that stops answering pings but
// keeps sending messages is logged SILENT all the same: only pongs time
// service (the messages are still accepted: a silent session holds its
// keys).
func TestSendingIsNotBeingHeard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw, c := newGateway(t)
		a, _ := open(t, c, "a", 0, 1)
		a.mute.Store(true)
		go func() { // acks and statuses are not this test's business
			for r := range a.msgs {
				if r.err != nil {
					return
				}
			}
		}()
		for i := range 10 {
			time.Sleep(100 * time.Millisecond)
			_ = a.stream.Send(&mcsimv1.SessionRequest{Message: &mcsimv1.OutboundMessage{Id: string(rune('a' + i)), To: "15550000100"}})
		}
		synctest.Wait()
		silent, accepted := 0, 0
		for _, e := range gw.Log(0) {
			switch e.GetKind() {
			case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_SILENT:
				silent++
			case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE:
				accepted++
			}
		}
		if silent != 1 || accepted != 10 {
			t.Fatalf("%d SILENT events (want 1), %d messages accepted (want 10): %v", silent, accepted, gw.Log(0))
		}
	})
}
