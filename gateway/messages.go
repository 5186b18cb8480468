package gateway

import (
	"cmp"
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
// judges duplicates (no_duplicate_send), the gateway does not hide them.
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
	seq    uint64 // the order made
	due    time.Time
	// offered are the sessions it was offered to (any of them may
	// acknowledge it); last was offered it last, at lastOffer.
	offered   []SessionID
	last      SessionID
	lastOffer time.Time
	acked     bool
	// gen counts the changes of its wake time; only the index entry of
	// the current one is live.
	gen uint64
}

// statusQueue holds the pending statuses, indexed by the time each is to
// be offered next (wake), so Due and NextWake read only what is due
// rather than every pending status: under load thousands are pending
// (offered, not yet acknowledged) and both run after every offer.
//
// A status's wake changes only when it is offered (Due) or when its
// bucket changes holder (Open, Close, a replacement); the index keeps one
// live entry per status with a holder, and entries made stale by either
// change (or by the ack) stay in the heap until they surface and are
// dropped. Holder changes are found by comparing l.owner with holder, the
// owners the entries were made for, so no path that changes an owner
// needs to tell the index.
type statusQueue struct {
	byID map[string]*pendingStatus // unacked only
	// byBucket are the unacked statuses of each key bucket.
	byBucket [shard.Buckets]map[*pendingStatus]struct{}
	holder   [shard.Buckets]SessionID
	wakes    wakeHeap
	seq      uint64

	// scan makes Due and NextWake walk every pending status in order
	// (order), as they did before the index; for the test that shows the
	// index changes nothing.
	scan  bool
	order []*pendingStatus
}

func newStatusQueue() statusQueue {
	q := statusQueue{byID: map[string]*pendingStatus{}}
	for b := range q.byBucket {
		q.byBucket[b] = map[*pendingStatus]struct{}{}
	}
	return q
}

// wakeEntry says p is to be offered at at, if p's gen is still gen.
type wakeEntry struct {
	at  time.Time
	seq uint64
	gen uint64
	p   *pendingStatus
}

// wakeHeap is a min-heap of wake entries by time, then by the order the
// statuses were made.
type wakeHeap []wakeEntry

func (h wakeHeap) less(i, j int) bool {
	if c := h[i].at.Compare(h[j].at); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}

func (h *wakeHeap) push(e wakeEntry) {
	*h = append(*h, e)
	for i := len(*h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		(*h)[i], (*h)[parent] = (*h)[parent], (*h)[i]
		i = parent
	}
}

func (h *wakeHeap) pop() wakeEntry {
	old := *h
	top := old[0]
	n := len(old) - 1
	old[0] = old[n]
	old[n] = wakeEntry{}
	*h = old[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h.less(l, m) {
			m = l
		}
		if r < n && h.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		(*h)[i], (*h)[m] = (*h)[m], (*h)[i]
		i = m
	}
	return top
}

func (e wakeEntry) live() bool { return !e.p.acked && e.p.gen == e.gen }

// index gives p a new live entry at its wake, if it has one.
func (l *Log) index(p *pendingStatus) {
	p.gen++
	if w, ok := l.wake(p); ok {
		l.statuses.wakes.push(wakeEntry{at: w, seq: p.seq, gen: p.gen, p: p})
	}
}

// syncHolders re-indexes the statuses of every bucket whose holder
// changed since its entries were made.
func (l *Log) syncHolders() {
	q := &l.statuses
	for b := range q.holder {
		if q.holder[b] == l.owner[b] {
			continue
		}
		q.holder[b] = l.owner[b]
		for p := range q.byBucket[b] {
			l.index(p)
		}
	}
}

// dropStale pops the stale entries off the top of the index.
func (q *statusQueue) dropStale() {
	for len(q.wakes) > 0 && !q.wakes[0].live() {
		q.wakes.pop()
	}
}

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
		l.statuses.seq++
		p := &pendingStatus{bucket: b, seq: l.statuses.seq, due: due, update: &mcsimv1.StatusUpdate{
			Id: sid, MessageId: m.GetId(), RecipientId: m.GetTo(), Status: st, TimestampUnix: due.Unix()}}
		l.statuses.byID[sid] = p
		if l.statuses.scan {
			l.statuses.order = append(l.statuses.order, p)
			continue
		}
		l.statuses.byBucket[b][p] = struct{}{}
		l.index(p)
	}
	return MessageDecision{Ack: &mcsimv1.MessageAck{Id: m.GetId(), Accepted: true}, Event: l.append(now, ev)}
}

// Due returns the statuses to offer at now, in the order they were made,
// and records the offers: each due status whose bucket has a holder that
// was not the last offered it, or was offered it Resend ago or more.
func (l *Log) Due(now time.Time) []Offer {
	if l.statuses.scan {
		return l.dueScan(now)
	}
	l.syncHolders()
	q := &l.statuses
	var due []*pendingStatus
	for len(q.wakes) > 0 && !now.Before(q.wakes[0].at) {
		if e := q.wakes.pop(); e.live() {
			due = append(due, e.p)
		}
	}
	slices.SortFunc(due, func(a, b *pendingStatus) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]Offer, 0, len(due))
	for _, p := range due {
		out = append(out, l.offer(now, p))
		l.index(p)
	}
	q.dropStale()
	return out
}

// offer records that p is offered at now to its bucket's holder.
func (l *Log) offer(now time.Time, p *pendingStatus) Offer {
	h := l.owner[p.bucket]
	if !slices.Contains(p.offered, h) {
		p.offered = append(p.offered, h)
	}
	p.last, p.lastOffer = h, now
	return Offer{Session: h, Update: p.update}
}

// dueScan is Due walking every pending status (statusQueue.scan).
func (l *Log) dueScan(now time.Time) []Offer {
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
		out = append(out, l.offer(now, p))
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
	if !l.statuses.scan {
		l.syncHolders()
		l.statuses.dropStale()
		if len(l.statuses.wakes) == 0 {
			return time.Time{}
		}
		return l.statuses.wakes[0].at
	}
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
		delete(l.statuses.byBucket[p.bucket], p)
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
