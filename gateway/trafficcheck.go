package gateway

import (
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// The witness of traffic: what the gateway's log says about messages and
// status updates, trusting nothing but the log (as CheckLog does), for the
// scenario layer to hold against what clients were answered and what the
// webhook receiver got.

// DuplicateSend is a message id the gateway accepted more than once,
// which breaks no_duplicate_send.
type DuplicateSend struct {
	MessageID string
	// Seqs are the MESSAGE events that accepted it, in log order.
	Seqs []uint64
}

// DuplicateSends returns every message id accepted (MESSAGE) more than
// once, in the order of their second acceptance. Refusals
// (MESSAGE_REJECTED) do not count: a refused message was not sent.
func DuplicateSends(events []*mcsimv1.GatewayEvent) []DuplicateSend {
	seqs := map[string][]uint64{}
	var order []string
	for _, ev := range events {
		if ev.GetKind() != mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE {
			continue
		}
		id := ev.GetMessageId()
		seqs[id] = append(seqs[id], ev.GetSeq())
		if len(seqs[id]) == 2 {
			order = append(order, id)
		}
	}
	out := make([]DuplicateSend, 0, len(order))
	for _, id := range order {
		out = append(out, DuplicateSend{MessageID: id, Seqs: seqs[id]})
	}
	return out
}

// Traffic is what a gateway log says about messages.
type Traffic struct {
	// Accepted counts the acceptances (MESSAGE) of each message id; 1 is
	// the only right count (acked_reached: every message answered 201
	// reached the gateway exactly once).
	Accepted map[string]int
	// Rejected counts the refusals (MESSAGE_REJECTED) of each message id.
	Rejected map[string]int
	// Statuses are the STATUS events, in log order: one per status a
	// coreapp took charge of, the statuses its callbacks report.
	Statuses []*mcsimv1.GatewayEvent
}

// TrafficOf reads the traffic out of a gateway log.
func TrafficOf(events []*mcsimv1.GatewayEvent) Traffic {
	t := Traffic{Accepted: map[string]int{}, Rejected: map[string]int{}}
	for _, ev := range events {
		switch ev.GetKind() {
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE:
			t.Accepted[ev.GetMessageId()]++
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE_REJECTED:
			t.Rejected[ev.GetMessageId()]++
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_STATUS:
			t.Statuses = append(t.Statuses, ev)
		}
	}
	return t
}
