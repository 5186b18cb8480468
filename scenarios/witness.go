package scenarios

import (
	"time"

	"github.com/mcsim/mcsim/gateway"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Witness reads the gateway's log for a Target: who holds each shard and
// whether the gateway hears it (Served), the failovers it saw (Failovers)
// and the fencing invariants the log breaks (Violations). Every target
// reads the same log the same way, so their verdicts mean the same.
type Witness struct {
	events    []*mcsimv1.GatewayEvent
	holders   map[int32]holder // by shard number, of any count
	service   gateway.Service
	failovers []FailoverSeen
	// served caches Served for one shard count until the next event: the
	// runner asks on every look, and the simulator looks fifty times a
	// simulated second.
	served       map[int]string
	servedShards int
	// allFor is 1 + the count AllServed last judged the cached served
	// map against (0: none since it was built), allOK its verdict.
	allFor int
	allOK  bool
	// accepted and taken are the traffic the gateway saw: how often it
	// accepted each message id, and the status updates coreapps took
	// charge of.
	accepted map[string]int
	taken    []StatusTaken
}

type holder struct {
	coreapp string
	shards  int32
	epoch   uint64
	silent  bool
}

// Fold takes the log's next events, in order.
func (w *Witness) Fold(evs []*mcsimv1.GatewayEvent) {
	if w.holders == nil {
		w.holders = map[int32]holder{}
	}
	if len(evs) > 0 {
		w.served = nil
	}
	for _, ev := range evs {
		if w.foldTraffic(ev) {
			continue // not a session event: the fencing checks never see it
		}
		w.events = append(w.events, ev)
		if f, ok := w.service.Step(ev); ok {
			w.failovers = append(w.failovers, FailoverSeen{
				Shard: int(f.Shard), From: f.From, To: f.To, Epoch: f.Epoch,
				ServedUntil: time.Unix(0, f.ServedUntilUnixNs), ServedAgain: time.Unix(0, f.ServedAgainUnixNs),
			})
		}
		s := ev.GetShard()
		switch ev.GetKind() {
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT:
			w.holders[s] = holder{coreapp: ev.GetCoreappId(), shards: ev.GetShards(), epoch: ev.GetEpoch()}
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE:
			if from := ev.GetReplacedShard(); from != s {
				if h, ok := w.holders[from]; ok && h.epoch == ev.GetReplacedEpoch() {
					delete(w.holders, from)
				}
			}
			w.holders[s] = holder{coreapp: ev.GetCoreappId(), shards: ev.GetShards(), epoch: ev.GetEpoch()}
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT:
			if h, ok := w.holders[s]; ok && h.epoch == ev.GetEpoch() {
				delete(w.holders, s)
			}
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_SILENT, mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_HEARD:
			if h, ok := w.holders[s]; ok && h.epoch == ev.GetEpoch() {
				h.silent = ev.GetKind() == mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_SILENT
				w.holders[s] = h
			}
		}
	}
}

// foldTraffic takes a message or status event; false for any other.
func (w *Witness) foldTraffic(ev *mcsimv1.GatewayEvent) bool {
	switch ev.GetKind() {
	case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE:
		if w.accepted == nil {
			w.accepted = map[string]int{}
		}
		w.accepted[ev.GetMessageId()]++
	case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE_REJECTED:
	case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_STATUS:
		w.taken = append(w.taken, StatusTaken{At: time.Unix(0, ev.GetUnixNs()), ID: ev.GetMessageId() + "/" + ev.GetStatus(),
			MessageID: ev.GetMessageId(), Recipient: ev.GetRecipientId(), Status: ev.GetStatus(), Coreapp: ev.GetCoreappId()})
	default:
		return false
	}
	return true
}

// Served is who serves each shard of a count of shards now: a session of
// that count that the gateway hears. The map is shared until the next
// event changes it: callers must not change it.
func (w *Witness) Served(shards int) map[int]string {
	if w.served != nil && w.servedShards == shards {
		return w.served
	}
	out := map[int]string{}
	for s, h := range w.holders {
		if !h.silent && int(h.shards) == shards {
			out[int(s)] = h.coreapp
		}
	}
	w.served, w.servedShards, w.allFor = out, shards, 0
	return out
}

// AllServed says whether every shard below n is served in Served(shards),
// cached with it: the runner asks on every look.
func (w *Witness) AllServed(shards, n int) bool {
	served := w.Served(shards)
	if w.allFor != n+1 {
		w.allFor, w.allOK = n+1, true
		for s := range n {
			if served[s] == "" {
				w.allOK = false
				break
			}
		}
	}
	return w.allOK
}

// Accepted counts how many times the gateway accepted each message id
// (the caller must not change it); nil before the first message.
func (w *Witness) Accepted() map[string]int { return w.accepted }

// Taken are the status updates coreapps took charge of so far, in order
// (the caller may keep the slice but must not change it).
func (w *Witness) Taken() []StatusTaken { return w.taken[:len(w.taken):len(w.taken)] }

// Failovers are the failovers seen so far; the caller may keep the slice
// (it is only ever appended to) but must not change it.
func (w *Witness) Failovers() []FailoverSeen { return w.failovers[:len(w.failovers):len(w.failovers)] }

// FailoverCount is len(Failovers()) without the copy.
func (w *Witness) FailoverCount() int { return len(w.failovers) }

// Violations are the log's fencing violations (gateway.CheckLog), named
// by the invariant they break.
func (w *Witness) Violations() []Violation {
	at := map[uint64]time.Time{}
	for _, ev := range w.events {
		at[ev.GetSeq()] = time.Unix(0, ev.GetUnixNs())
	}
	var out []Violation
	for _, v := range gateway.CheckLog(w.events) {
		inv := "single_owner"
		if v.Kind == gateway.StaleEpoch || v.Kind == gateway.BadEvent {
			inv = "epoch_monotonic"
		}
		out = append(out, Violation{Invariant: inv, At: at[v.Seq], Details: "gateway: " + v.String()})
	}
	return out
}

// SessionSeen is one gateway session from its open to its close, as the
// gateway's log has it: the shard (of a count of shards) it covered, its
// coreapp and epoch, and the spans in which the gateway did not hear it.
// End zero: still open when asked.
type SessionSeen struct {
	Shard, Shards int
	Coreapp       string
	Epoch         uint64
	Start, End    time.Time
	// Silent are the spans from the last moment the gateway heard the
	// session until it heard it again (End zero: not heard again).
	Silent []Span
}

// Span is a stretch of time; End zero: not ended when asked.
type Span struct{ Start, End time.Time }

// Sessions are every session the log shows so far, in the order they
// opened. A report draws them; no verdict reads them.
func (w *Witness) Sessions() []SessionSeen {
	type key struct {
		shard, shards int32
		epoch         uint64
	}
	var out []SessionSeen
	open := map[key]int{}
	closeAt := func(k key, at time.Time) {
		if i, ok := open[k]; ok {
			out[i].End = at
			if n := len(out[i].Silent); n > 0 && out[i].Silent[n-1].End.IsZero() {
				out[i].Silent[n-1].End = at
			}
			delete(open, k)
		}
	}
	for _, ev := range w.events {
		at := time.Unix(0, ev.GetUnixNs())
		k := key{ev.GetShard(), ev.GetShards(), ev.GetEpoch()}
		switch ev.GetKind() {
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT, mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE:
			if ev.GetKind() == mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE {
				closeAt(key{ev.GetReplacedShard(), ev.GetReplacedShards(), ev.GetReplacedEpoch()}, at)
			}
			if _, ok := open[k]; !ok {
				open[k] = len(out)
				out = append(out, SessionSeen{Shard: int(k.shard), Shards: int(k.shards), Coreapp: ev.GetCoreappId(), Epoch: k.epoch, Start: at})
			}
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT:
			closeAt(k, at)
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_SILENT:
			if i, ok := open[k]; ok {
				from := at
				if ev.GetLastHeardUnixNs() != 0 {
					from = time.Unix(0, ev.GetLastHeardUnixNs())
				}
				out[i].Silent = append(out[i].Silent, Span{Start: from})
			}
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_HEARD:
			if i, ok := open[k]; ok {
				if n := len(out[i].Silent); n > 0 && out[i].Silent[n-1].End.IsZero() {
					out[i].Silent[n-1].End = at
				}
			}
		}
	}
	return out
}
