package gateway

import (
	"fmt"
	"slices"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// ViolationKind names a broken fencing invariant.
type ViolationKind string

const (
	// DoubleSession: two open sessions covered a common key bucket at the
	// same time (the same shard, or overlapping shards of two counts).
	DoubleSession ViolationKind = "double_session"
	// StaleEpoch: a session was accepted with an epoch older than one
	// accepted before on a key bucket it covers.
	StaleEpoch ViolationKind = "stale_epoch"
	// BadEvent: an accept or disconnect without a valid shard and shard
	// count, so the keys it covers are unknown.
	BadEvent ViolationKind = "bad_event"
)

// Violation is one broken invariant found in a gateway log.
type Violation struct {
	Kind   ViolationKind
	Seq    uint64 // the event that broke it
	Shard  int32
	Shards int32
	// Detail says what was seen, for people.
	Detail string
}

func (v Violation) String() string {
	return fmt.Sprintf("seq %d shard %d of %d: %s: %s", v.Seq, v.Shard, v.Shards, v.Kind, v.Detail)
}

type openSession struct {
	coreappID     string
	shard, shards int32
	epoch         uint64
}

func (o openSession) String() string {
	return fmt.Sprintf("coreapp %q shard %d of %d epoch %d", o.coreappID, o.shard, o.shards, o.epoch)
}

func sessionOf(ev *mcsimv1.GatewayEvent) openSession {
	return openSession{ev.GetCoreappId(), ev.GetShard(), ev.GetShards(), ev.GetEpoch()}
}

func (o openSession) valid() bool {
	return ValidShardCount(o.shards) && o.shard >= 0 && o.shard < o.shards
}

// CheckLog replays a gateway log and reports every violation of the fencing
// invariants, judged per key bucket (see MaxShards) so that sessions of
// different shard counts are compared by the keys they cover: (a) two open
// sessions covering a common bucket, (b) a session accepted with an epoch
// older than one accepted before on a bucket it covers. It trusts nothing
// but the log, so it can judge logs from a real gateway, a simulated one, or
// a hand-written test. Events must be in log order. Consecutive REPLACE
// events of one session are one acceptance (a session replacing several,
// after a shard-count decrease): all the replaced sessions leave first.
func CheckLog(events []*mcsimv1.GatewayEvent) []Violation {
	var out []Violation
	var open []openSession
	var maxEpoch [MaxShards]uint64
	vio := func(kind ViolationKind, ev *mcsimv1.GatewayEvent, detail string) {
		out = append(out, Violation{Kind: kind, Seq: ev.GetSeq(), Shard: ev.GetShard(), Shards: ev.GetShards(), Detail: detail})
	}
	remove := func(s openSession) {
		if i := slices.Index(open, s); i >= 0 {
			open = slices.Delete(open, i, i+1)
		}
	}
	accept := func(ev *mcsimv1.GatewayEvent) {
		s := sessionOf(ev)
		if !s.valid() {
			vio(BadEvent, ev, fmt.Sprintf("%v accepted: shard or shards invalid", s))
			return
		}
		bs := buckets(s.shard, s.shards)
		var newest uint64
		for _, b := range bs {
			newest = max(newest, maxEpoch[b])
		}
		if s.epoch < newest {
			vio(StaleEpoch, ev, fmt.Sprintf("%v accepted after epoch %d on a key it covers", s, newest))
		}
		for _, b := range bs {
			maxEpoch[b] = max(maxEpoch[b], s.epoch)
		}
		for _, o := range open {
			if overlap(s, o) {
				vio(DoubleSession, ev, fmt.Sprintf("%v accepted while %v is open", s, o))
			}
		}
		open = append(open, s)
	}
	for i := 0; i < len(events); i++ {
		ev := events[i]
		switch ev.GetKind() {
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT:
			accept(ev)
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE:
			s := sessionOf(ev)
			for {
				remove(openSession{ev.GetReplacedCoreappId(), ev.GetReplacedShard(), ev.GetReplacedShards(), ev.GetReplacedEpoch()})
				if i+1 == len(events) || events[i+1].GetKind() != ev.GetKind() || sessionOf(events[i+1]) != s {
					break
				}
				i++
				ev = events[i]
			}
			accept(ev)
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT:
			remove(sessionOf(ev))
		}
	}
	return out
}

// overlap reports whether two valid sessions cover a common bucket: shard
// a of count n and shard b of count m do iff a ≡ b modulo the smaller count
// (the counts are powers of two).
func overlap(x, y openSession) bool {
	m := min(x.shards, y.shards)
	return x.shard%m == y.shard%m
}
