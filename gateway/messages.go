package gateway

import (
	"errors"
	"fmt"
	"slices"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/shard"
)

// Messages and their status updates, the traffic half of Log.
//
// A message is accepted on a session only while that session is open (not
// closed, not replaced) and holds the recipient's key bucket
// (shard.BucketOf(to)): the same fencing as sessions, so a message sent on
// a superseded session is refused and recorded (MESSAGE_REJECTED), never
// delivered twice by two owners. An accepted message is logged (MESSAGE)
// every time it is accepted, even with an id accepted before: the witness
// judges duplicates (DuplicateSends), the gateway does not hide them.
//
// Each accepted message produces the statuses sent, delivered and read,
// due StatusDelays after its acceptance. A due status is offered to the
// session holding its recipient's bucket at that moment, silent or not (a
// silent session still holds the key, and its coreapp may be alive behind
// a slow link), and again to every later holder, and again to the same
// holder every Resend, until a session it was offered to acknowledges it
// (status_ack). The first acknowledgement is logged (STATUS) and ends the
// status; later ones are not logged. So a status can reach a shard's new
// owner after a failover, and at-least-once is the promise: two owners may
// both take one status when the first acknowledges it late.

// StatusDelays are how long after a message's acceptance its statuses fall
// due, and how often an unacknowledged status is offered again.
type StatusDelays struct {
	Sent, Delivered, Read time.Duration
	// Resend is how long an offered status waits for its acknowledgement
	// before the same holder is offered it again (a new holder is offered
	// it at once). It covers a coreapp that could not take the status
	// (its status handler failed) and an offer lost on a broken stream.
	Resend time.Duration
}

// DefaultStatusDelays: sent soon after acceptance, delivered a moment
// later, read after a second, as a recipient online and reading would
// produce them; short enough that a failover test sees statuses cross it,
// long enough that the three are apart in the logs. An unacknowledged
// status is offered again every second, well below the smallest callback
// backoff a scenario would look at.
func DefaultStatusDelays() StatusDelays {
	return StatusDelays{Sent: 50 * time.Millisecond, Delivered: 300 * time.Millisecond, Read: time.Second, Resend: time.Second}
}

// Validate reports every problem: delays ≥ 0 and in the order sent ≤
// delivered ≤ read (a status never overtakes the one before it), Resend > 0.
func (d StatusDelays) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"sent", d.Sent}, {"delivered", d.Delivered}, {"read", d.Read}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("status delay %s: must be ≥ 0, got %v", f.name, f.v))
		}
	}
	if d.Delivered < d.Sent {
		errs = append(errs, fmt.Errorf("status delay delivered: must be ≥ sent (%v), got %v", d.Sent, d.Delivered))
	}
	if d.Read < d.Delivered {
		errs = append(errs, fmt.Errorf("status delay read: must be ≥ delivered (%v), got %v", d.Delivered, d.Read))
	}
	if d.Resend <= 0 {
		errs = append(errs, fmt.Errorf("status resend: must be > 0, got %v", d.Resend))
	}
	return errors.Join(errs...)
}

// StatusNames are the statuses a message produces, in order.
func StatusNames() []string { return []string{"sent", "delivered", "read"} }

func (d StatusDelays) of(status string) time.Duration {
	switch status {
	case "sent":
		return d.Sent
	case "delivered":
		return d.Delivered
	}
	return d.Read
}

// StatusID names status of message id (StatusUpdate.id).
func StatusID(messageID, status string) string { return messageID + "/" + status }

// goneSession is a session no longer open, and why.
type goneSession struct {
	Session
	why string
}

// pendingStatus is a status not yet acknowledged.
type pendingStatus struct {
	update *mcsimv1.StatusUpdate
	bucket int
	due    time.Time
	// offered are the sessions it was offered to (any of them may
	// acknowledge it); last was offered it last, at lastOffer.
	offered   []SessionID
	last      SessionID
	lastOffer time.Time
	acked     bool
}

// statusQueue holds the pending statuses in the order they were made, so
// offers come out in a deterministic order.
type statusQueue struct {
	order []*pendingStatus
	byID  map[string]*pendingStatus // unacked only
}

func newStatusQueue() statusQueue { return statusQueue{byID: map[string]*pendingStatus{}} }

// MessageDecision is the outcome of a message sent on a session.
type MessageDecision struct {
	// Ack answers the message on its session.
	Ack *mcsimv1.MessageAck
	// Event is the MESSAGE or MESSAGE_REJECTED logged; nil for a message
	// that fails ValidateMessage (bad input, not a fencing decision: not
	// logged, as a bad session request is not).
	Event *mcsimv1.GatewayEvent
}

// Offer is a status to send to a session.
type Offer struct {
	Session SessionID
	Update  *mcsimv1.StatusUpdate
}

// ValidateMessage checks a message's fields.
func ValidateMessage(m *mcsimv1.OutboundMessage) error {
	switch {
	case m.GetId() == "":
		return errors.New("message.id: must not be empty")
	case m.GetTo() == "":
		return errors.New("message.to: must not be empty")
	}
	return nil
}

// Message decides message m sent at now on session id and logs the
// outcome (see the rules above).
func (l *Log) Message(now time.Time, id SessionID, m *mcsimv1.OutboundMessage) MessageDecision {
	if err := ValidateMessage(m); err != nil {
		return MessageDecision{Ack: &mcsimv1.MessageAck{Id: m.GetId(), Reason: err.Error()}}
	}
	ev := &mcsimv1.GatewayEvent{MessageId: m.GetId(), RecipientId: m.GetTo()}
	b := shard.BucketOf(m.GetTo())
	s, open := l.sessions[id]
	var reason string
	switch {
	case !open:
		g, known := l.gone[id]
		s, reason = g.Session, fmt.Sprintf("session is not open: %s", g.why)
		if !known {
			reason = fmt.Sprintf("session %d is not open", id)
		}
	case !slices.Contains(buckets(s.Shard, s.Shards), b):
		reason = fmt.Sprintf("recipient %q is in key bucket %d, which shard %d of %d does not cover", m.GetTo(), b, s.Shard, s.Shards)
	case l.owner[b] != id:
		// Open sessions never share a bucket, so only a sabotaged log
		// (DisableEpochFencing) gets here; refused all the same.
		reason = fmt.Sprintf("key bucket %d is held by another session (newest epoch %d)", b, l.newest[b])
	}
	ev.Shard, ev.Shards, ev.Epoch, ev.CoreappId = s.Shard, s.Shards, s.Epoch, s.CoreappID
	if reason != "" {
		ev.Kind, ev.Reason = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE_REJECTED, reason
		return MessageDecision{Ack: &mcsimv1.MessageAck{Id: m.GetId(), Reason: reason}, Event: l.append(now, ev)}
	}
	ev.Kind = mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_MESSAGE
	for _, st := range StatusNames() {
		sid := StatusID(m.GetId(), st)
		if _, dup := l.statuses.byID[sid]; dup {
			continue // a duplicate while the first's statuses are pending: one set per id
		}
		due := now.Add(l.delays.of(st))
		p := &pendingStatus{bucket: b, due: due, update: &mcsimv1.StatusUpdate{
			Id: sid, MessageId: m.GetId(), RecipientId: m.GetTo(), Status: st, TimestampUnix: due.Unix()}}
		l.statuses.order = append(l.statuses.order, p)
		l.statuses.byID[sid] = p
	}
	return MessageDecision{Ack: &mcsimv1.MessageAck{Id: m.GetId(), Accepted: true}, Event: l.append(now, ev)}
}

// Due returns the statuses to offer at now, in the order they were made,
// and records the offers: each due status whose bucket has a holder that
// was not the last offered it, or was offered it Resend ago or more.
func (l *Log) Due(now time.Time) []Offer {
	var out []Offer
	acked := 0
	for _, p := range l.statuses.order {
		if p.acked {
			acked++
			continue
		}
		if w, ok := l.wake(p); !ok || now.Before(w) {
			continue
		}
		h := l.owner[p.bucket]
		if !slices.Contains(p.offered, h) {
			p.offered = append(p.offered, h)
		}
		p.last, p.lastOffer = h, now
		out = append(out, Offer{Session: h, Update: p.update})
	}
	if acked > len(l.statuses.order)/2 {
		l.statuses.order = slices.DeleteFunc(l.statuses.order, func(p *pendingStatus) bool { return p.acked })
	}
	return out
}

// wake is when p is to be offered next: at its due time to a holder not
// offered it last, Resend after the last offer to the same holder; false
// while its bucket has no holder (the next Open gives it one).
func (l *Log) wake(p *pendingStatus) (time.Time, bool) {
	h := l.owner[p.bucket]
	switch {
	case h == 0:
		return time.Time{}, false
	case p.last != h:
		return p.due, true
	}
	return p.lastOffer.Add(l.delays.Resend), true
}

// NextWake is when the next status is to be offered (Due); zero when none
// is waiting for a time. It may be in the past after an Open gave pending
// statuses a new holder: they are due at once. Silence is timed per
// session by Deadline.
func (l *Log) NextWake() time.Time {
	var w time.Time
	for _, p := range l.statuses.order {
		if p.acked {
			continue
		}
		if t, ok := l.wake(p); ok && (w.IsZero() || t.Before(w)) {
			w = t
		}
	}
	return w
}

// Ack records that session id took charge of the statuses named by ids,
// at now, and returns a STATUS event for each it ends. An id that is not
// pending (unknown, or acknowledged already) or was never offered to this
// session logs nothing.
func (l *Log) Ack(now time.Time, id SessionID, ids []string) []*mcsimv1.GatewayEvent {
	var out []*mcsimv1.GatewayEvent
	for _, sid := range ids {
		p, ok := l.statuses.byID[sid]
		if !ok || !slices.Contains(p.offered, id) {
			continue
		}
		p.acked = true
		delete(l.statuses.byID, sid)
		s, open := l.sessions[id]
		if !open {
			s = l.gone[id].Session
		}
		out = append(out, l.append(now, &mcsimv1.GatewayEvent{
			Kind:        mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_STATUS,
			Shard:       s.Shard,
			Shards:      s.Shards,
			Epoch:       s.Epoch,
			CoreappId:   s.CoreappID,
			MessageId:   p.update.GetMessageId(),
			RecipientId: p.update.GetRecipientId(),
			Status:      p.update.GetStatus(),
		}))
	}
	return out
}

// PendingStatuses is the number of statuses not yet acknowledged.
func (l *Log) PendingStatuses() int { return len(l.statuses.byID) }
