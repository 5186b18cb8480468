package sim

import (
	"errors"
	"time"

	"github.com/mcsim/mcsim/callbacks"
	"github.com/mcsim/mcsim/coreapp"
	"github.com/mcsim/mcsim/coreapp/books"
	"github.com/mcsim/mcsim/gateway"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Messages and status updates between the coreapps and the gateway, as
// the real coreapp (coreapp/traffic.go) and gateway server do them: a
// Send is routed by books.Route and goes out on the shard's session,
// answered once the gateway's gateway.Log decided it; the statuses the
// log offers are taken by the coreapp's status worker (callbacks.go) and
// acknowledged on the session. Nothing here runs without a workload.

// coreappTraffic is a coreapp run's traffic state.
type coreappTraffic struct {
	// sends are the Sends waiting for the gateway's ack, per session, in
	// the order sent (the gateway answers a session's messages in order).
	sends map[sessKey][]pendingSend
	// workers take the statuses offered on each session, one at a time.
	workers map[sessKey]*statusWorker
	hooks   *hooks
	// opening are the shard counts of the sessions asked for and not yet
	// answered.
	opening map[sessKey]int32
}

type pendingSend struct {
	id      string
	respond func(any, error)
}

// statusWorker is a session's status worker: it hands the offered
// statuses queued to the poster as one batch, and acknowledges the batch
// once taken.
type statusWorker struct {
	queue []*mcsimv1.StatusUpdate
	busy  bool
}

// errSessionEnded is a Send whose session ended before the gateway's ack:
// the message may or may not have been accepted (Unavailable).
var errSessionEnded = errors.New("gateway session ended before the gateway answered (the message may or may not have been accepted)")

// traffic is the run's traffic state, made on first use.
func (c *coreappNode) traffic() *coreappTraffic {
	if c.tr == nil {
		c.tr = &coreappTraffic{sends: map[sessKey][]pendingSend{}, workers: map[sessKey]*statusWorker{}, opening: map[sessKey]int32{}}
	}
	return c.tr
}

// send is CoreAppService.Send: the books say whether the recipient's shard
// is ours and served; the message goes out on that session and the
// answer waits for the gateway's ack.
func (c *coreappNode) send(req sendRequest, respond func(any, error)) {
	r, refuse := c.b.Route(req.coreapp, req.to, req.shards)
	if refuse != nil {
		respond(nil, errors.New(refuse.Reason))
		return
	}
	k := sessKey{r.Shard, r.Epoch}
	id, ok := c.sessions.get(k)
	if !ok {
		respond(nil, errors.New("no session handle"))
		return
	}
	ct := c.traffic()
	ct.sends[k] = append(ct.sends[k], pendingSend{id: req.id, respond: respond})
	run, gw := c.p.run, c.w.gw
	m := &mcsimv1.OutboundMessage{Id: req.id, To: req.to}
	c.w.net.stream(c.p.id, gw.p.id, func() { gw.message(c, run, id, k, m) })
}

// messageAcked is the gateway's ack of a message on session k: the first
// Send waiting for its id is answered.
func (c *coreappNode) messageAcked(k sessKey, a *mcsimv1.MessageAck) {
	if c.tr == nil {
		return
	}
	ws := c.tr.sends[k]
	for i, s := range ws {
		if s.id != a.GetId() {
			continue
		}
		c.tr.sends[k] = append(ws[:i:i], ws[i+1:]...)
		if a.GetAccepted() {
			s.respond(nil, nil)
		} else {
			s.respond(nil, errors.New(books.NotPrimary+"the gateway refused the message: "+a.GetReason()))
		}
		return
	}
}

// sessionOpening notes the shard count of a session being opened.
func (c *coreappNode) sessionOpening(a books.OpenSession) {
	if c.tr != nil {
		c.tr.opening[sessKey{a.Shard, a.Epoch}] = a.Shards
	}
}

// sessionAccepted is the gateway's acceptance of session k: the poster
// adopts what the shard's last owner kept, as the real coreapp has it do
// each time the gateway accepts a session.
func (c *coreappNode) sessionAccepted(k sessKey) {
	if c.tr == nil {
		return
	}
	shards, ok := c.tr.opening[k]
	delete(c.tr.opening, k)
	if ok {
		c.adoptCallbacks(k.shard, shards)
	}
}

// sessionEnded fails the Sends still waiting on session k, and forgets
// its statuses not yet taken (the stream is gone).
func (c *coreappNode) sessionEnded(k sessKey) {
	if c.tr == nil {
		return
	}
	ws := c.tr.sends[k]
	delete(c.tr.sends, k)
	delete(c.tr.workers, k)
	for _, s := range ws {
		s.respond(nil, errSessionEnded)
	}
}

// statusOffered is a status update the gateway offers on session k.
func (c *coreappNode) statusOffered(k sessKey, u *mcsimv1.StatusUpdate) {
	if _, open := c.sessions.get(k); !open {
		return
	}
	if c.b.Stopped() {
		// As the real coreapp: a stopping one leaves offers for its
		// successors (coreapp.Node.takeStatuses).
		return
	}
	ct := c.traffic()
	wk := ct.workers[k]
	if wk == nil {
		wk = &statusWorker{}
		ct.workers[k] = wk
	}
	wk.queue = append(wk.queue, u)
	if !wk.busy {
		c.takeBatch(k, wk)
	}
}

// takeBatch hands the statuses queued on session k to the poster as one
// batch (at most coreapp.MaxStatusBatch), then acknowledges those taken
// in one ack, and goes on while more came meanwhile.
func (c *coreappNode) takeBatch(k sessKey, wk *statusWorker) {
	if c.b.Stopped() {
		wk.queue = nil // left for the successors, as statusOffered does
		return
	}
	n := min(len(wk.queue), coreapp.MaxStatusBatch)
	batch := wk.queue[:n:n]
	wk.queue, wk.busy = wk.queue[n:], true
	c.takeStatuses(batch, func(taken []string) {
		if c.tr == nil || c.tr.workers[k] != wk {
			return // the session ended
		}
		wk.busy = false
		c.ackStatuses(k, taken)
		if len(wk.queue) > 0 {
			c.takeBatch(k, wk)
		}
	})
}

// ackStatuses sends the ack of taken statuses on session k.
func (c *coreappNode) ackStatuses(k sessKey, ids []string) {
	id, open := c.sessions.get(k)
	if len(ids) == 0 || !open {
		return
	}
	gw := c.w.gw
	c.w.net.stream(c.p.id, gw.p.id, func() { gw.ack(id, ids) })
}

// statusOf is the outbox's status of an update.
func statusOf(u *mcsimv1.StatusUpdate) callbacks.Status {
	return callbacks.Status{ID: u.GetId(), MessageID: u.GetMessageId(), Recipient: u.GetRecipientId(),
		Kind: callbacks.Kind(u.GetStatus()), At: time.Unix(u.GetTimestampUnix(), 0)}
}

// message is a message arriving on session id: the log decides, the ack
// goes back on the session.
func (g *gatewayNode) message(c *coreappNode, run int, id gateway.SessionID, k sessKey, m *mcsimv1.OutboundMessage) {
	d := g.log.Message(g.w.now, id, m)
	g.w.net.stream(g.p.id, c.p.id, func() { c.p.deliver(run, func() { c.messageAcked(k, d.Ack) }) })
	// Its statuses fall due no sooner than the first delay: an offer
	// pending before that needs no new look.
	if d.Ack.GetAccepted() && (g.offerAt.IsZero() || g.offerAt.After(g.w.now.Add(g.delays.Sent))) {
		g.armOffers()
	}
}

// ack is a coreapp's status ack on session id. It only ends statuses, so
// the pending offer stays right (at worst it finds nothing due).
func (g *gatewayNode) ack(id gateway.SessionID, ids []string) {
	g.log.Ack(g.w.now, id, ids)
}

// offerStatuses offers every status due now to its holder's session and
// sets the timer for the next (the server's offerLocked). It runs after
// each accepted session too, so a new holder is offered what is pending
// on its keys right behind its ACCEPTED.
func (g *gatewayNode) offerStatuses() {
	if g.w.traffic == nil {
		return
	}
	for _, o := range g.log.Due(g.w.now) {
		i := g.index(o.Session)
		if i < 0 {
			continue
		}
		s, u := g.open[i], o.Update
		c := s.coreapp
		k := sessKey{s.shard, s.epoch}
		g.w.net.stream(g.p.id, c.p.id, func() { c.p.deliver(s.run, func() { c.statusOffered(k, u) }) })
	}
	g.armOffers()
}

// armOffers sets the status timer at the log's NextWake (one pending:
// the earliest).
func (g *gatewayNode) armOffers() {
	next := g.log.NextWake()
	if next.IsZero() {
		return
	}
	if next.Before(g.w.now) {
		next = g.w.now
	}
	if !g.offerAt.IsZero() && !next.Before(g.offerAt) {
		return
	}
	g.offerAt = next
	g.w.at(next, func() {
		if !g.offerAt.Equal(next) {
			return
		}
		g.offerAt = time.Time{}
		g.offerStatuses()
	})
}
