package gateway

import (
	"fmt"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// ViolationKind names a broken fencing invariant.
type ViolationKind string

const (
	// DoubleSession: two sessions of one shard were open at the same time.
	DoubleSession ViolationKind = "double_session"
	// StaleEpoch: a session was accepted with an epoch older than one
	// accepted before for the same shard.
	StaleEpoch ViolationKind = "stale_epoch"
)

// Violation is one broken invariant found in a gateway log.
type Violation struct {
	Kind  ViolationKind
	Seq   uint64 // the event that broke it
	Shard int32
	// Detail says what was seen, for people.
	Detail string
}

func (v Violation) String() string {
	return fmt.Sprintf("seq %d shard %d: %s: %s", v.Seq, v.Shard, v.Kind, v.Detail)
}

type openSession struct {
	coreappID string
	epoch     uint64
}

// CheckLog replays a gateway log and reports every violation of the fencing
// invariants: (a) two sessions of one shard open at once, (b) a session
// accepted with an epoch older than one accepted before for that shard. It
// trusts nothing but the log, so it can judge logs from a real gateway, a
// simulated one, or a hand-written test. Events must be in log order.
func CheckLog(events []*mcsimv1.GatewayEvent) []Violation {
	var out []Violation
	open := make(map[int32][]openSession)
	maxEpoch := make(map[int32]uint64)
	remove := func(shard int32, s openSession) {
		list := open[shard]
		for i, o := range list {
			if o == s {
				open[shard] = append(list[:i:i], list[i+1:]...)
				return
			}
		}
	}
	accept := func(ev *mcsimv1.GatewayEvent) {
		s := openSession{coreappID: ev.GetCoreappId(), epoch: ev.GetEpoch()}
		shard := ev.GetShard()
		if m, ok := maxEpoch[shard]; ok && s.epoch < m {
			out = append(out, Violation{Kind: StaleEpoch, Seq: ev.GetSeq(), Shard: shard,
				Detail: fmt.Sprintf("coreapp %q accepted with epoch %d after epoch %d", s.coreappID, s.epoch, m)})
		} else {
			maxEpoch[shard] = s.epoch
		}
		for _, o := range open[shard] {
			out = append(out, Violation{Kind: DoubleSession, Seq: ev.GetSeq(), Shard: shard,
				Detail: fmt.Sprintf("coreapp %q epoch %d accepted while coreapp %q epoch %d is open",
					s.coreappID, s.epoch, o.coreappID, o.epoch)})
		}
		open[shard] = append(open[shard], s)
	}
	for _, ev := range events {
		switch ev.GetKind() {
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT:
			accept(ev)
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE:
			remove(ev.GetShard(), openSession{coreappID: ev.GetReplacedCoreappId(), epoch: ev.GetReplacedEpoch()})
			accept(ev)
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT:
			remove(ev.GetShard(), openSession{coreappID: ev.GetCoreappId(), epoch: ev.GetEpoch()})
		}
	}
	return out
}
