// Package gateway is the simulated WhatsApp server of an mcsim cluster and
// its impartial witness. Coreapps open one session per shard; the gateway
// enforces fencing (only the newest shard epoch may hold a shard) and logs
// every connect, replace, reject and disconnect with its time, so that
// checks of double ownership and downtime are made from what the gateway
// saw, not from what the nodes believe.
//
// The decisions live in Log, a pure state machine that takes the time as an
// argument; Server wraps it in a gRPC service.
package gateway

import (
	"fmt"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// SessionID identifies one accepted session for the life of a Log.
type SessionID uint64

// Session is an accepted shard session.
type Session struct {
	ID        SessionID
	CoreappID string
	Shard     int32
	Epoch     uint64
}

// Decision is the outcome of a session request.
type Decision struct {
	// Accepted says whether the session now holds the shard.
	Accepted bool
	// Session is the new session when Accepted.
	Session Session
	// Replaced is the session that lost the shard, when HasReplaced.
	Replaced    Session
	HasReplaced bool
	// Reason says why a session was rejected.
	Reason string
	// Event is the log entry the request produced.
	Event *mcsimv1.GatewayEvent
}

// epochOwner remembers who was accepted with the newest epoch of a shard.
type epochOwner struct {
	epoch     uint64
	coreappID string
}

// Log is the gateway's state: the session holding each shard, the newest
// epoch accepted per shard, and the event log. It has no clock and no
// goroutines; callers pass the time of every request. It is not safe for
// concurrent use.
//
// Rules:
//   - epoch > newest accepted for the shard: accepted; a session holding the
//     shard is replaced (REPLACE event), otherwise CONNECT.
//   - epoch < newest: rejected (REJECT event).
//   - epoch == newest: the same assignment connecting again (for example after
//     a broken stream). Accepted only when the shard is free and the coreapp
//     is the one that was accepted with that epoch; rejected when a session
//     with that epoch is still open (the new one must not silently replace
//     it) or when another coreapp claims the epoch (an epoch names one
//     assignment, so a second owner is a master bug worth seeing in the log).
type Log struct {
	start    time.Time
	nextID   SessionID
	holders  map[int32]Session
	newest   map[int32]epochOwner
	events   []*mcsimv1.GatewayEvent
	sessions map[SessionID]Session
}

// NewLog returns an empty log whose monotonic timestamps count from start.
func NewLog(start time.Time) *Log {
	return &Log{
		start:    start,
		holders:  make(map[int32]Session),
		newest:   make(map[int32]epochOwner),
		sessions: make(map[SessionID]Session),
	}
}

// ValidateRequest checks a session request's fields. A request that fails it
// must not reach Open: it is bad input, not a fencing decision, and is not
// logged.
func ValidateRequest(coreappID string, shard int32, epoch uint64) error {
	switch {
	case coreappID == "":
		return fmt.Errorf("coreapp_id: must not be empty")
	case shard < 0:
		return fmt.Errorf("shard: must be ≥ 0, got %d", shard)
	case epoch == 0:
		return fmt.Errorf("epoch: must be ≥ 1, got 0")
	}
	return nil
}

// Open decides a session request made at now and logs the outcome.
func (l *Log) Open(now time.Time, coreappID string, shard int32, epoch uint64) Decision {
	newest, seen := l.newest[shard]
	holder, held := l.holders[shard]
	reject := func(reason string) Decision {
		ev := l.append(now, &mcsimv1.GatewayEvent{
			Kind:      mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REJECT,
			Shard:     shard,
			Epoch:     epoch,
			CoreappId: coreappID,
			Reason:    reason,
		})
		return Decision{Reason: reason, Event: ev}
	}
	if seen {
		switch {
		case epoch < newest.epoch:
			return reject(fmt.Sprintf("stale epoch %d for shard %d: newest is %d", epoch, shard, newest.epoch))
		case epoch == newest.epoch && held:
			return reject(fmt.Sprintf("epoch %d for shard %d is already open by coreapp %q", epoch, shard, holder.CoreappID))
		case epoch == newest.epoch && coreappID != newest.coreappID:
			return reject(fmt.Sprintf("epoch %d for shard %d belongs to coreapp %q", epoch, shard, newest.coreappID))
		}
	}
	l.nextID++
	s := Session{ID: l.nextID, CoreappID: coreappID, Shard: shard, Epoch: epoch}
	l.holders[shard] = s
	l.sessions[s.ID] = s
	l.newest[shard] = epochOwner{epoch: epoch, coreappID: coreappID}
	d := Decision{Accepted: true, Session: s}
	ev := &mcsimv1.GatewayEvent{
		Kind:      mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT,
		Shard:     shard,
		Epoch:     epoch,
		CoreappId: coreappID,
	}
	if held {
		delete(l.sessions, holder.ID)
		d.Replaced, d.HasReplaced = holder, true
		ev.Kind = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE
		ev.ReplacedCoreappId = holder.CoreappID
		ev.ReplacedEpoch = holder.Epoch
	}
	d.Event = l.append(now, ev)
	return d
}

// Close ends a session at now. It logs a DISCONNECT and frees the shard only
// when the session still holds it; a replaced session already lost the shard
// (its REPLACE event says so), so closing it logs nothing. It reports whether
// an event was logged.
func (l *Log) Close(now time.Time, id SessionID) (*mcsimv1.GatewayEvent, bool) {
	s, ok := l.sessions[id]
	if !ok {
		return nil, false
	}
	delete(l.sessions, id)
	delete(l.holders, s.Shard)
	return l.append(now, &mcsimv1.GatewayEvent{
		Kind:      mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT,
		Shard:     s.Shard,
		Epoch:     s.Epoch,
		CoreappId: s.CoreappID,
	}), true
}

// Holding reports whether session id still holds its shard.
func (l *Log) Holding(id SessionID) bool {
	_, ok := l.sessions[id]
	return ok
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

// Len returns the number of events logged.
func (l *Log) Len() int { return len(l.events) }

// Holders returns the session holding each shard.
func (l *Log) Holders() map[int32]Session {
	out := make(map[int32]Session, len(l.holders))
	for k, v := range l.holders {
		out[k] = v
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
