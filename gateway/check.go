package gateway

import (
	"fmt"
	"slices"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/shard"
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
	return shard.ValidCount(int(o.shards)) && o.shard >= 0 && o.shard < o.shards
}

// CheckLog replays a gateway log and reports every violation of the fencing
// invariants, judged per key bucket (shard.Buckets) so that sessions of
// different shard counts are compared by the keys they cover: (a) two open
// sessions covering a common bucket, (b) a session accepted with an epoch
// older than one accepted before on a bucket it covers. It trusts nothing
// but the log, so it can judge logs from a real gateway, a simulated one, or
// a hand-written test. Events must be in log order. Consecutive REPLACE
// events of one session are one acceptance (a session replacing several,
// after a shard-count decrease): all the replaced sessions leave first.
// A SILENT session is not serving (see Failovers for the downtime it costs)
// but it is still open and still holds its keys, so it counts here until
// its session ends: the fencing invariants do not depend on liveness.
func CheckLog(events []*mcsimv1.GatewayEvent) []Violation {
	var out []Violation
	var open []openSession
	var maxEpoch [shard.Buckets]uint64
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

// overlap reports whether two valid sessions cover a common bucket.
func overlap(x, y openSession) bool {
	return shard.Overlap(int(x.shard), int(x.shards), int(y.shard), int(y.shards))
}

// Failover is a shard passing from one coreapp to another, as the log
// shows it: a CONNECT by another coreapp after the shard's session ended,
// or a REPLACE of the shard's session by another coreapp.
type Failover struct {
	// Seq is the CONNECT or REPLACE that served the shard again.
	Seq    uint64
	Shard  int32
	Shards int32
	From   string
	To     string
	// Epoch is the new session's.
	Epoch uint64
	// ServedUntil is when From last served, on the log's clocks (mono_ns
	// and unix_ns): when it was last heard if it was silent when its
	// session ended or was replaced, else that end itself (a crash breaks
	// the stream at once; a handover replaces a live session).
	ServedUntilMonoNs, ServedUntilUnixNs int64
	// ServedAgain is when To was first heard: its session's acceptance.
	ServedAgainMonoNs, ServedAgainUnixNs int64
}

// Downtime is how long the shard was served by nobody: from the last moment
// the old owner was heard to the first moment the new one was.
func (f Failover) Downtime() time.Duration {
	return time.Duration(max(0, f.ServedAgainMonoNs-f.ServedUntilMonoNs))
}

// heardAt is a moment on both of the log's clocks.
type heardAt struct{ mono, unix int64 }

func eventTime(ev *mcsimv1.GatewayEvent) heardAt { return heardAt{ev.GetMonoNs(), ev.GetUnixNs()} }

// ended is a shard's previous owner once its session ended without a
// successor, and when it last served.
type ended struct {
	coreappID string
	until     heardAt
}

// Service follows a gateway log event by event and derives its failovers
// with their downtime. It trusts nothing but the log (the SILENT events
// carry the last-heard time), so the launcher can feed it a live stream
// and Failovers a finished log. The zero value is ready to use. Failovers
// are judged by shard number, as a person reads the map; a REPLACE across a
// shard-count change whose shard numbers differ is a re-map, not a failover.
type Service struct {
	silent map[openSession]heardAt // open sessions now silent: when last heard
	ended  map[int32]ended
}

// Step folds ev in and returns the failover it completes, if any. Events
// must come in log order.
func (w *Service) Step(ev *mcsimv1.GatewayEvent) (Failover, bool) {
	if w.silent == nil {
		w.silent, w.ended = map[openSession]heardAt{}, map[int32]ended{}
	}
	// until is when session s last served, if it ends at ev.
	until := func(s openSession) heardAt {
		at, silent := w.silent[s]
		delete(w.silent, s)
		if silent {
			return at
		}
		return eventTime(ev)
	}
	failover := func(from string, served heardAt) Failover {
		return Failover{
			Seq: ev.GetSeq(), Shard: ev.GetShard(), Shards: ev.GetShards(),
			From: from, To: ev.GetCoreappId(), Epoch: ev.GetEpoch(),
			ServedUntilMonoNs: served.mono, ServedUntilUnixNs: served.unix,
			ServedAgainMonoNs: ev.GetMonoNs(), ServedAgainUnixNs: ev.GetUnixNs(),
		}
	}
	shard := ev.GetShard()
	switch ev.GetKind() {
	case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_SILENT:
		w.silent[sessionOf(ev)] = heardAt{ev.GetLastHeardMonoNs(), ev.GetLastHeardUnixNs()}
	case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_HEARD:
		delete(w.silent, sessionOf(ev))
	case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT:
		w.ended[shard] = ended{ev.GetCoreappId(), until(sessionOf(ev))}
	case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT:
		prev, ok := w.ended[shard]
		delete(w.ended, shard)
		if ok && prev.coreappID != ev.GetCoreappId() {
			return failover(prev.coreappID, prev.until), true
		}
	case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE:
		old := openSession{ev.GetReplacedCoreappId(), ev.GetReplacedShard(), ev.GetReplacedShards(), ev.GetReplacedEpoch()}
		served := until(old)
		delete(w.ended, shard)
		if old.shard == shard && old.coreappID != ev.GetCoreappId() {
			return failover(old.coreappID, served), true
		}
	}
	return Failover{}, false
}

// Failovers replays a whole log (in order) and returns its failovers.
func Failovers(events []*mcsimv1.GatewayEvent) []Failover {
	var w Service
	var out []Failover
	for _, ev := range events {
		if f, ok := w.Step(ev); ok {
			out = append(out, f)
		}
	}
	return out
}
