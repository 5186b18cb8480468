// Package gateway is the simulated WhatsApp server of an mcsim cluster and
// its impartial witness. Coreapps open one session per shard; the gateway
// enforces fencing (only the newest shard epoch may hold a key, whatever the
// shard counts of the sessions, so a live shard-count change never serves a
// key twice at once) and logs every connect, replace, reject and disconnect
// with its time, so that checks of double ownership and downtime are made
// from what the gateway saw, not from what the nodes believe.
//
// An open stream is not service (rule 7): the gateway pings every session
// and logs it SILENT when it stops answering and HEARD when it answers
// again, so a paused or cut-off coreapp stops counting as serving even
// though its stream stays open (it keeps its keys: fencing is unchanged).
//
// Messages go through the same fencing: a message is accepted only on the
// open session holding its recipient's key, and each accepted message
// produces the statuses sent, delivered and read, offered to whichever
// session holds the key when they fall due (messages.go).
//
// The decisions live in Log, a pure state machine that takes the time as an
// argument; Server wraps it in a gRPC service.
package gateway

import (
	"fmt"
	"slices"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/shard"
)

// Fencing is per key bucket (shard.Buckets, rule 2) so that sessions of
// different shard counts are compared by the keys they cover. These two
// adapt the shard vocabulary to the wire's int32s; they also keep it in
// reach where a parameter named shard hides the package.

// buckets returns the buckets shard s of count n covers. s and n must be
// valid (ValidateRequest).
func buckets(s, n int32) []int { return shard.Covers(int(s), int(n)) }

// countError is shard.CountError for a wire count.
func countError(n int32) error { return shard.CountError(int(n)) }

// The liveness pace of every session. The gateway pings, the coreapp
// answers; both sides judge silence by the same SilentAfter, which the
// gateway announces in its ACCEPTED message.
//
// PingInterval bounds how well the log times the end of service: a session
// stopped between two pongs was last heard at most PingInterval before it
// stopped, so the downtime of a pause or partition reads at most
// PingInterval long (part of rule 1's ε). It is also the cost: each ping
// and pong wakes the gateway and a coreapp process. At 250 ms, with pings
// aligned so that the gateway wakes once per interval for all sessions, an
// idle 32-shard cluster spends about 4 % of one core more than without
// pings (1 in the gateway, 3 across 33 coreapps; README, "Measurements");
// 100 ms would more than double that for a resolution nobody needs at
// second-scale intervals.
//
// SilentAfter is three missed pings: one late pong on a loaded machine (a
// GC pause, a starved process) is no silence, three are. It only decides
// when SILENT is logged and when a coreapp stops claiming service; the
// downtime is measured from the last pong, whatever SilentAfter is. It is
// below the smallest unhealthy_interval (1 s), so a paused owner is silent
// before the master can fail it over (and Open logs an overdue session
// SILENT before replacing it in any case).
const (
	PingInterval = 250 * time.Millisecond
	SilentAfter  = 3 * PingInterval
)

// SessionID identifies one accepted session for the life of a Log.
type SessionID uint64

// Session is an accepted shard session: shard Shard of count Shards.
type Session struct {
	ID        SessionID
	CoreappID string
	Shard     int32
	Shards    int32
	Epoch     uint64
}

// Decision is the outcome of a session request.
type Decision struct {
	// Accepted says whether the session now holds its keys.
	Accepted bool
	// Session is the new session when Accepted.
	Session Session
	// Replaced are the open sessions that shared a bucket with the new one
	// and lost it, in the order of their REPLACE events.
	Replaced []Session
	// Reason says why a session was rejected.
	Reason string
	// Events are the log entries the request produced: one REJECT, one
	// CONNECT, or one REPLACE per replaced session, after a SILENT for
	// each replaced session that was overdue but not yet logged silent.
	Events []*mcsimv1.GatewayEvent
}

// assignment is what an epoch was first accepted for; an epoch names one
// assignment, so only that one may reconnect with it.
type assignment struct {
	coreappID     string
	shard, shards int32
}

// Log is the gateway's state: the open session holding each bucket, the
// newest epoch accepted per bucket, and the event log. It has no clock and
// no goroutines; callers pass the time of every request. It is not safe for
// concurrent use.
//
// Rules, for a session of shard s, count N, epoch e (it covers the buckets
// b % N == s):
//   - e > the newest epoch accepted on every bucket it covers: accepted.
//     Every open session holding one of those buckets is replaced (one
//     REPLACE event each, naming it); with none, CONNECT. The buckets'
//     newest epoch becomes e. After 2→4, new shard 2 (epoch 9) replaces the
//     open shard 0-of-2 (epoch 5); after 4→2, shard 0-of-2 replaces both
//     0-of-4 and 2-of-4.
//   - e < the newest on any of its buckets: rejected (REJECT event naming
//     the newer epoch).
//   - otherwise e equals the newest on some bucket: the same assignment
//     connecting again (for example after a broken stream). Accepted only
//     when e was first accepted for this coreapp, shard and count and no
//     session is open on its buckets; rejected when one is (the new one must
//     not silently replace it) or when e belongs to another assignment (a
//     master bug worth seeing in the log).
//
// Since a session of shard s of count N overlaps every session of shard s
// of any other count, open sessions have distinct shard numbers.
type Log struct {
	start    time.Time
	nextID   SessionID
	owner    [shard.Buckets]SessionID // 0: no open session
	newest   [shard.Buckets]uint64    // 0: never accepted (epochs are ≥ 1)
	epochs   map[uint64]assignment
	events   []*mcsimv1.GatewayEvent
	sessions map[SessionID]Session
	// heard is one hearing per open session, in id order: every pong
	// looks its session up and every silence check walks them all, which
	// a short sorted slice does cheaper than a map.
	heard []hearing
	hint  int // where in heard the last lookup found its session
	// unfenced: stale epochs are accepted (DisableEpochFencing).
	unfenced bool

	// Messages and status updates (messages.go).
	delays StatusDelays
	// gone are the sessions no longer open, with why, so that a message or
	// an ack arriving on one is refused or logged with its session named.
	gone     map[SessionID]goneSession
	statuses statusQueue
}

// DisableEpochFencing makes the log accept a session whose epoch is older
// than the newest on its buckets, as if the gateway had no fencing. It
// exists for the simulator's selftest (sim.Sabotage), which must show that
// the checkers catch what this lets through; a test keeps every other
// package from calling it.
func (l *Log) DisableEpochFencing() { l.unfenced = true }

// hearing is when an open session was last heard, and whether it is
// silent (logged SILENT and not heard since).
type hearing struct {
	id     SessionID
	last   time.Time
	silent bool
}

// hearing is open session id's hearing (nil: not open), valid until a
// session opens or closes.
func (l *Log) hearing(id SessionID) *hearing {
	// Lookups mostly go through the sessions in id order (a round of
	// pongs, a look at every session): the one after the last found is
	// tried first. A stale hint only costs the search.
	if i := l.hint + 1; i < len(l.heard) && l.heard[i].id == id {
		l.hint = i
		return &l.heard[i]
	}
	i, ok := l.hearingAt(id)
	if !ok {
		return nil
	}
	l.hint = i
	return &l.heard[i]
}

// hearingAt is where id's hearing is in heard, or would be.
func (l *Log) hearingAt(id SessionID) (int, bool) {
	lo, hi := 0, len(l.heard)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l.heard[m].id < id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(l.heard) && l.heard[lo].id == id
}

// NewLog returns an empty log whose monotonic timestamps count from start,
// with the default status delays (DefaultStatusDelays).
func NewLog(start time.Time) *Log {
	return NewLogWith(start, DefaultStatusDelays())
}

// NewLogWith is NewLog with the given status delays, which must pass
// StatusDelays.Validate.
func NewLogWith(start time.Time, delays StatusDelays) *Log {
	return &Log{
		start:    start,
		epochs:   make(map[uint64]assignment),
		sessions: make(map[SessionID]Session),
		delays:   delays,
		gone:     make(map[SessionID]goneSession),
		statuses: newStatusQueue(),
	}
}

// ValidateRequest checks a session request's fields. A request that fails it
// must not reach Open: it is bad input, not a fencing decision, and is not
// logged.
func ValidateRequest(coreappID string, shard, shards int32, epoch uint64) error {
	switch {
	case coreappID == "":
		return fmt.Errorf("coreapp_id: must not be empty")
	case countError(shards) != nil:
		return fmt.Errorf("shards: %w", countError(shards))
	case shard < 0 || shard >= shards:
		return fmt.Errorf("shard: must be in [0, %d) for shards %d, got %d", shards, shards, shard)
	case epoch == 0:
		return fmt.Errorf("epoch: must be ≥ 1, got 0")
	}
	return nil
}

// Open decides a session request made at now and logs the outcome. The
// request must pass ValidateRequest.
func (l *Log) Open(now time.Time, coreappID string, shard, shards int32, epoch uint64) Decision {
	bs := buckets(shard, shards)
	reject := func(reason string) Decision {
		ev := l.append(now, &mcsimv1.GatewayEvent{
			Kind:      mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REJECT,
			Shard:     shard,
			Shards:    shards,
			Epoch:     epoch,
			CoreappId: coreappID,
			Reason:    reason,
		})
		return Decision{Reason: reason, Events: []*mcsimv1.GatewayEvent{ev}}
	}
	var newest uint64
	var open []SessionID // open sessions on our buckets, in bucket order, once each
	for _, b := range bs {
		newest = max(newest, l.newest[b])
		if id := l.owner[b]; id != 0 && !slices.Contains(open, id) {
			open = append(open, id)
		}
	}
	switch {
	case epoch < newest && !l.unfenced:
		return reject(fmt.Sprintf("stale epoch %d for shard %d of %d: newest is %d", epoch, shard, shards, newest))
	case epoch == newest:
		if a := l.epochs[epoch]; a != (assignment{coreappID, shard, shards}) {
			return reject(fmt.Sprintf("epoch %d belongs to coreapp %q shard %d of %d", epoch, a.coreappID, a.shard, a.shards))
		}
		if len(open) > 0 {
			h := l.sessions[open[0]]
			return reject(fmt.Sprintf("epoch %d for shard %d of %d is already open by coreapp %q", epoch, shard, shards, h.CoreappID))
		}
	}
	l.nextID++
	s := Session{ID: l.nextID, CoreappID: coreappID, Shard: shard, Shards: shards, Epoch: epoch}
	l.sessions[s.ID] = s
	// The request is the first thing heard. Ids only grow, so this
	// mostly appends.
	i, _ := l.hearingAt(s.ID)
	l.heard = slices.Insert(l.heard, i, hearing{id: s.ID, last: now})
	if _, ok := l.epochs[epoch]; !ok {
		l.epochs[epoch] = assignment{coreappID, shard, shards}
	}
	d := Decision{Accepted: true, Session: s}
	// Silences first: a session's REPLACE events stay consecutive (CheckLog
	// reads them as one acceptance).
	for _, id := range open {
		if ev, ok := l.silence(now, id); ok {
			d.Events = append(d.Events, ev)
		}
	}
	for _, id := range open {
		old := l.sessions[id]
		l.release(old)
		l.gone[id] = goneSession{old, fmt.Sprintf("replaced by coreapp %q shard %d of %d at epoch %d", coreappID, shard, shards, epoch)}
		d.Replaced = append(d.Replaced, old)
		d.Events = append(d.Events, l.append(now, &mcsimv1.GatewayEvent{
			Kind:              mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE,
			Shard:             shard,
			Shards:            shards,
			Epoch:             epoch,
			CoreappId:         coreappID,
			ReplacedCoreappId: old.CoreappID,
			ReplacedEpoch:     old.Epoch,
			ReplacedShard:     old.Shard,
			ReplacedShards:    old.Shards,
		}))
	}
	for _, b := range bs {
		l.owner[b] = s.ID
		l.newest[b] = epoch
	}
	if len(open) == 0 {
		d.Events = append(d.Events, l.append(now, &mcsimv1.GatewayEvent{
			Kind:      mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT,
			Shard:     shard,
			Shards:    shards,
			Epoch:     epoch,
			CoreappId: coreappID,
		}))
	}
	return d
}

// release forgets open session s and frees the buckets it holds.
func (l *Log) release(s Session) {
	delete(l.sessions, s.ID)
	if i, ok := l.hearingAt(s.ID); ok {
		l.heard = slices.Delete(l.heard, i, i+1)
	}
	for _, b := range buckets(s.Shard, s.Shards) {
		if l.owner[b] == s.ID {
			l.owner[b] = 0
		}
	}
}

// Close ends a session at now. It logs a DISCONNECT (after a SILENT if the
// session was overdue but not yet logged silent) and frees its buckets
// only when the session is still open; a replaced session already lost them
// (its REPLACE event says so), so closing it logs nothing. It reports
// whether an event was logged.
func (l *Log) Close(now time.Time, id SessionID) (*mcsimv1.GatewayEvent, bool) {
	s, ok := l.sessions[id]
	if !ok {
		return nil, false
	}
	l.silence(now, id)
	l.release(s)
	l.gone[id] = goneSession{s, "closed"}
	return l.append(now, &mcsimv1.GatewayEvent{
		Kind:      mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT,
		Shard:     s.Shard,
		Shards:    s.Shards,
		Epoch:     s.Epoch,
		CoreappId: s.CoreappID,
	}), true
}

// Heard records that open session id answered at now (a pong). A silent
// session serves again: the HEARD event is logged and returned. Anything
// else (a session that is not open, or was not silent) logs nothing.
func (l *Log) Heard(now time.Time, id SessionID) (*mcsimv1.GatewayEvent, bool) {
	h := l.hearing(id)
	if h == nil {
		return nil, false
	}
	h.last = now
	if !h.silent {
		return nil, false
	}
	h.silent = false
	return l.append(now, l.sessionEvent(mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_HEARD, id)), true
}

// sessionEvent is an event of kind about open session id.
func (l *Log) sessionEvent(kind mcsimv1.GatewayEventKind, id SessionID) *mcsimv1.GatewayEvent {
	s := l.sessions[id]
	return &mcsimv1.GatewayEvent{Kind: kind, Shard: s.Shard, Shards: s.Shards, Epoch: s.Epoch, CoreappId: s.CoreappID}
}

// Tick logs SILENT for every open session not heard for SilentAfter at now,
// in session order, and returns those events. A silent session keeps its
// keys: it is still open, only no longer counted as serving.
func (l *Log) Tick(now time.Time) []*mcsimv1.GatewayEvent {
	if !l.anyOverdue(now) {
		return nil // the common case: a pong came since the check was set
	}
	var out []*mcsimv1.GatewayEvent
	for i := 0; i < len(l.heard); i++ { // in id order
		if ev, ok := l.silence(now, l.heard[i].id); ok {
			out = append(out, ev)
		}
	}
	return out
}

// anyOverdue says whether silence would log anything at now.
func (l *Log) anyOverdue(now time.Time) bool {
	// Heard at or before cutoff is now.Sub(last) >= SilentAfter, with one
	// Add per look instead of a Sub per session.
	cutoff := now.Add(-SilentAfter)
	for i := range l.heard {
		if h := &l.heard[i]; !h.silent && !h.last.After(cutoff) {
			return true
		}
	}
	return false
}

// silence logs SILENT for open session id if it is overdue at now. Open and
// Close call it for the sessions they end, so that a session ended after
// SilentAfter without a pong is logged silent first whatever the timers
// did: its service ended when it was last heard, not when it was ended.
func (l *Log) silence(now time.Time, id SessionID) (*mcsimv1.GatewayEvent, bool) {
	h := l.hearing(id)
	if h == nil || h.silent || now.Sub(h.last) < SilentAfter {
		return nil, false
	}
	h.silent = true
	ev := l.sessionEvent(mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_SILENT, id)
	ev.LastHeardMonoNs, ev.LastHeardUnixNs = int64(h.last.Sub(l.start)), h.last.UnixNano()
	return l.append(now, ev), true
}

// Deadline is when open session id turns silent if it is not heard before;
// false when it is not open or already silent (only Heard can end that).
func (l *Log) Deadline(id SessionID) (time.Time, bool) {
	h := l.hearing(id)
	if h == nil || h.silent {
		return time.Time{}, false
	}
	return h.last.Add(SilentAfter), true
}

// LastHeard is when open session id was last heard, and whether it is
// silent now.
func (l *Log) LastHeard(id SessionID) (last time.Time, silent, open bool) {
	h := l.hearing(id)
	if h == nil {
		return time.Time{}, false, false
	}
	return h.last, h.silent, true
}

// Since returns the events with seq ≥ seq (0 and 1 both mean from the
// start). The events are shared, not copied: logged events are never
// changed, and callers must not change them either.
func (l *Log) Since(seq uint64) []*mcsimv1.GatewayEvent {
	if seq > 0 {
		seq--
	}
	if seq >= uint64(len(l.events)) {
		return nil
	}
	out := make([]*mcsimv1.GatewayEvent, len(l.events)-int(seq))
	copy(out, l.events[seq:])
	return out
}

// Holders returns the open sessions by shard number. Open sessions never
// share a shard number (see Log), so this is exact; callers that use one
// shard count read it as "who serves shard s". During a count change it
// may mix counts: Session.Shards says which.
func (l *Log) Holders() map[int32]Session {
	out := make(map[int32]Session, len(l.sessions))
	for _, s := range l.sessions {
		out[s.Shard] = s
	}
	return out
}

func (l *Log) append(now time.Time, ev *mcsimv1.GatewayEvent) *mcsimv1.GatewayEvent {
	ev.Seq = uint64(len(l.events)) + 1
	ev.MonoNs = int64(now.Sub(l.start))
	ev.UnixNs = now.UnixNano()
	l.events = append(l.events, ev)
	return ev
}
