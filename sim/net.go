package sim

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/mcsim/mcsim/scenarios"
)

// The network model. Every message names its sender and receiver by node
// id ("settings" and "gateway" for those two); the fault on that one-way
// link is the sender's, as in internal/faultnet:
//
//   - no fault: loopback latency, baseLatency ± baseJitter;
//   - a cut holds a stream's messages (in order, delivered after the
//     heal, as TCP retransmits them) and drops datagrams;
//   - delay adds latency ± uniform jitter; a stream stays in order;
//   - loss drops that share of datagrams; on a stream a lost message is
//     retransmitted after a retransmission timeout (200 ms, doubling),
//     each retransmission judged by the link as it is then (a heal in
//     between lets it through), and everything behind it on the stream
//     waits, because TCP loses no bytes and keeps them in order.
const (
	baseLatency = 100 * time.Microsecond
	baseJitter  = 50 * time.Microsecond
	rto         = 200 * time.Millisecond
)

type linkKey struct{ from, to string }

// linkID is a link by its nodes' numbers (network.node): its order state
// is looked up on every stream message, and an integer hashes cheaper
// than two strings.
type linkID uint64

type network struct {
	w      *World
	faults map[linkKey]scenarios.NetLink
	held   map[linkKey][]task // stream messages held by a cut
	// heldOrder lists the links with held messages in the order they were
	// first held, so a heal delivers them in a fixed order.
	heldOrder []linkKey
	// last is the last stream delivery per link, in nanoseconds since
	// the world's zero.
	last map[linkID]*int64
	// nodes numbers the nodes by id, from 1 (a proc keeps its number).
	nodes map[string]uint32
	// flying are the stream messages sent under a delay and not yet
	// delivered, per link, in order.
	flying map[linkKey][]*flight
	// stalled are the streams whose head message is being retransmitted,
	// with what waits behind it.
	stalled map[linkKey][]task
}

func newNetwork(w *World) *network {
	return &network{w: w, faults: map[linkKey]scenarios.NetLink{}, held: map[linkKey][]task{}, last: map[linkID]*int64{}, nodes: map[string]uint32{}, stalled: map[linkKey][]task{}, flying: map[linkKey][]*flight{}}
}

// latency draws one datagram's latency on a link with fault f.
func (n *network) latency(f scenarios.NetLink) time.Duration {
	d := n.w.uniform(baseLatency-baseJitter, baseLatency+baseJitter)
	if f.Latency > 0 || f.Jitter > 0 {
		d += n.w.uniform(f.Latency-f.Jitter, f.Latency+f.Jitter)
	}
	return d
}

// stream sends one message of a TCP stream from → to.
func (n *network) stream(from, to string, deliver func()) { n.streamTask(from, to, fn(deliver)) }

// node is the number of node id, given on first use.
func (n *network) node(id string) uint32 {
	x, ok := n.nodes[id]
	if !ok {
		x = uint32(len(n.nodes) + 1)
		n.nodes[id] = x
	}
	return x
}

// procNode is p's node number, looked up once per proc.
func (n *network) procNode(p *proc) uint32 {
	if p.node == 0 {
		p.node = n.node(p.id)
	}
	return p.node
}

func (n *network) link(from, to string) linkID {
	return linkID(n.node(from))<<32 | linkID(n.node(to))
}

// streamTask sends one message of a TCP stream from → to, delivered by
// running deliver.
func (n *network) streamTask(from, to string, deliver task) {
	n.streamOn(linkKey{from, to}, n.link(from, to), deliver)
}

// streamProcs is streamTask between two procs (a call's request and
// answer), whose node numbers need no lookup.
func (n *network) streamProcs(from, to *proc, deliver task) {
	n.streamOn(linkKey{from.id, to.id}, linkID(n.procNode(from))<<32|linkID(n.procNode(to)), deliver)
}

// streamOn sends deliver on link k, whose number is id.
func (n *network) streamOn(k linkKey, id linkID, deliver task) {
	if len(n.stalled) > 0 {
		if q, ok := n.stalled[k]; ok {
			n.stalled[k] = append(q, deliver)
			return
		}
	}
	var f scenarios.NetLink
	if len(n.faults) > 0 {
		f = n.faults[k]
	}
	if f.Cut {
		n.hold(k, deliver)
		return
	}
	if n.w.chance(f.LossPercent / 100) {
		n.stalled[k] = []task{deliver}
		n.w.after(rto, func() { n.retransmit(k, rto, 1) })
		return
	}
	n.send(k, id, f, deliver)
}

// send delivers one message after the link's latency, in order. A
// message sent under a delay stays in flight on its link: a change of
// the table re-times it under the new link (refly), as faultnet re-times
// its queued writes, so a heal releases it at once and a cut holds it.
func (n *network) send(k linkKey, id linkID, f scenarios.NetLink, deliver task) {
	base := n.w.uniform(baseLatency-baseJitter, baseLatency+baseJitter)
	if f.Latency == 0 && f.Jitter == 0 {
		n.schedule(id, n.w.nowNs+int64(base), deliver)
		return
	}
	fl := &flight{sent: n.w.now, base: base, deliver: deliver}
	if f.Jitter > 0 {
		fl.u = 2*n.w.rng.Float64() - 1
	}
	n.flying[k] = append(n.flying[k], fl)
	n.fly(k, id, fl, fl.arrival(f))
}

// schedule delivers at at (nanoseconds since the world's zero), or after
// the last message on the link.
func (n *network) schedule(id linkID, at int64, deliver task) {
	last := n.last[id]
	if last == nil {
		last = new(int64)
		*last = math.MinInt64
		n.last[id] = last
	}
	if at < *last {
		at = *last // a stream stays in order
	}
	*last = at
	n.w.atNs(at, deliver)
}

// flight is a stream message in flight under a delay.
type flight struct {
	sent    time.Time
	base    time.Duration // its loopback latency
	u       float64       // its share of the jitter, -1..1
	deliver task
	gen     int // bumped when re-timed: the older delivery is void
}

func (fl *flight) arrival(f scenarios.NetLink) time.Time {
	return fl.sent.Add(fl.base + f.Latency + time.Duration(fl.u*float64(f.Jitter)))
}

// fly schedules fl's delivery at at (in order on its link k, numbered
// id).
func (n *network) fly(k linkKey, id linkID, fl *flight, at time.Time) {
	fl.gen++
	gen := fl.gen
	n.schedule(id, n.w.sinceZero(at), fn(func() {
		if fl.gen != gen {
			return
		}
		q := n.flying[k]
		if i := slices.Index(q, fl); i >= 0 {
			n.flying[k] = slices.Delete(q, i, i+1)
		}
		fl.deliver.run()
	}))
}

// refly re-times what is in flight on link k under its new fault: a cut
// holds it, anything else delivers it when the new link would have (not
// before now), in order.
func (n *network) refly(k linkKey) {
	q := n.flying[k]
	if len(q) == 0 {
		return
	}
	delete(n.flying, k)
	f := n.faults[k]
	id := n.link(k.from, k.to)
	delete(n.last, id)
	for _, fl := range q {
		fl.gen++ // the scheduled delivery is void
		if f.Cut {
			n.hold(k, fl.deliver)
			continue
		}
		at := fl.arrival(f)
		if at.Before(n.w.now) {
			at = n.w.now
		}
		n.flying[k] = append(n.flying[k], fl)
		n.fly(k, id, fl, at)
	}
}

func (n *network) hold(k linkKey, m task) {
	if len(n.held[k]) == 0 {
		n.heldOrder = append(n.heldOrder, k)
	}
	n.held[k] = append(n.held[k], m)
}

// maxRetransmits is Linux's tcp_retries2 (and faultnet's): after that
// many losses a message goes through regardless, as faultnet lets it.
const maxRetransmits = 15

// retransmit is the losses-th retransmission of a stalled stream's head,
// timeout r after the one before, judged under the link as it is now.
func (n *network) retransmit(k linkKey, r time.Duration, losses int) {
	q := n.stalled[k]
	f := n.faults[k]
	switch {
	case f.Cut:
		delete(n.stalled, k)
		for _, m := range q {
			n.hold(k, m)
		}
		return
	case losses < maxRetransmits && n.w.chance(f.LossPercent/100):
		r = min(2*r, time.Minute)
		n.w.after(r, func() { n.retransmit(k, r, losses+1) })
		return
	}
	delete(n.stalled, k)
	n.send(k, n.link(k.from, k.to), f, q[0])
	for _, m := range q[1:] {
		n.streamTask(k.from, k.to, m)
	}
}

// flyingOrder is the links with messages in flight, sorted: set re-times
// them in an order that does not depend on map iteration.
func (n *network) flyingOrder() []linkKey {
	ks := make([]linkKey, 0, len(n.flying))
	for k, q := range n.flying {
		if len(q) > 0 {
			ks = append(ks, k)
		}
	}
	slices.SortFunc(ks, func(a, b linkKey) int {
		return cmp.Or(strings.Compare(a.from, b.from), strings.Compare(a.to, b.to))
	})
	return ks
}

// clear says whether from → to is as if no fault were there: no fault in
// the table and nothing held or stalled on it.
func (n *network) clear(from, to string) bool {
	k := linkKey{from, to}
	if _, ok := n.faults[k]; ok {
		return false
	}
	_, stalled := n.stalled[k]
	return !stalled && len(n.held[k]) == 0
}

// calm says whether every link is clear (no fault, nothing held or
// stalled anywhere): the gateway's ping round asks before asking clear
// of every link.
func (n *network) calm() bool { return len(n.faults) == 0 && len(n.stalled) == 0 && len(n.held) == 0 }

// cut says whether from → to is cut now.
func (n *network) cut(from, to string) bool { return n.faults[linkKey{from, to}].Cut }

// set replaces the fault table; links no longer cut deliver what they held.
func (n *network) set(links []scenarios.NetLink) {
	old := n.faults
	n.faults = make(map[linkKey]scenarios.NetLink, len(links))
	for _, l := range links {
		n.faults[linkKey{l.From, l.To}] = l
	}
	// Links whose fault changed re-time what is in flight on them, in
	// the order the links were first faulted.
	for _, k := range n.flyingOrder() {
		if old[k] != n.faults[k] {
			n.refly(k)
		}
	}
	var still []linkKey
	for _, k := range n.heldOrder {
		if n.faults[k].Cut {
			still = append(still, k)
			continue
		}
		msgs := n.held[k]
		delete(n.held, k)
		for _, m := range msgs {
			n.streamTask(k.from, k.to, m)
		}
	}
	n.heldOrder = still
}

// errTimeout and errRefused are the two ways a call fails in the model:
// no answer within the caller's deadline, or nobody listening.
var (
	errTimeout = errors.New("deadline exceeded")
	errRefused = errors.New("connection refused")
)

// call is one gRPC call from caller to callee: the request goes as a
// stream message; handle runs in the callee (held while it is paused) and
// returns the answer, which comes back the same way; reply runs in the
// caller with it, or with errTimeout once timeout (of the caller's clock)
// has passed, whichever is first. A callee that is down answers
// errRefused.
func (w *World) call(caller, callee *proc, timeout time.Duration, handle func() (any, error), reply func(any, error)) {
	f := &funcCall{sync: handle, replyFn: reply}
	w.callWith(&f.call, caller, callee, f, replyToLoop, timeout)
}

// callAt is call for a handler whose answer leaves only at a time it
// names (a store write: once its fsync is done).
func (w *World) callAt(caller, callee *proc, timeout time.Duration, handle func() (any, time.Time, error), reply func(any, error)) {
	f := &funcCall{at: handle, replyFn: reply}
	w.callWith(&f.call, caller, callee, f, replyToLoop, timeout)
}

// callAsync is a call whose handler answers later, through respond (a
// coreapp answers an Assign once the gateway answered its session).
func (w *World) callAsync(caller, callee *proc, timeout time.Duration, handle func(respond func(any, error)), reply func(any, error)) {
	f := &funcCall{async: handle, replyFn: reply}
	w.callWith(&f.call, caller, callee, f, replyToLoop, timeout)
}

// callBlocking is a call the caller's loop blocks on (it is busy until
// the answer): what else arrives meanwhile waits, as in the real loop.
func (w *World) callBlocking(caller, callee *proc, timeout time.Duration, handle func() (any, time.Time, error), reply func(any, error)) {
	caller.busy = true
	f := &funcCall{at: handle, replyFn: reply}
	w.callWith(&f.call, caller, callee, f, replyUnblocks, timeout)
}

// callFromOther is a call made by another goroutine of the caller than
// its loop (the map writer): its answer does not wait for the loop.
func (w *World) callFromOther(caller, callee *proc, timeout time.Duration, handle func() (any, time.Time, error), reply func(any, error)) {
	f := &funcCall{at: handle, replyFn: reply}
	w.callWith(&f.call, caller, callee, f, replyToOther, timeout)
}

// Where a call's answer goes in the caller.
const (
	replyToLoop   = iota // the loop's queue (held while paused or busy)
	replyUnblocks        // the answer the busy loop waits for
	replyToOther         // another goroutine (held only while paused)
)

// rpcUser is what a call does at its ends: its handler in the callee, and
// its caller's callbacks. A call's user embeds the call's rpc, so that a
// call is one allocation (the heartbeat, the most frequent call, is its
// own user: hbCall).
type rpcUser interface {
	// serve is the callee's handler: it answers through c.respond, at
	// once or later.
	serve(c *rpc)
	// arrived: the outcome reached the caller's host (not a timeout), even
	// if the caller cannot read it yet (paused or busy).
	arrived(v any, err error)
	// reply: the caller takes the outcome (the answer, a refusal, a reset
	// or errTimeout).
	reply(v any, err error)
}

// funcCall is a call whose handler and reply are funcs: the handler
// answers at once (sync), at a time it names (at: a store write, once
// its fsync is done) or later through respond (async).
type funcCall struct {
	call    rpc
	sync    func() (any, error)
	at      func() (any, time.Time, error)
	async   func(respond func(any, error))
	replyFn func(any, error)
}

func (f *funcCall) serve(c *rpc) {
	switch {
	case f.sync != nil:
		c.respond(f.sync())
	case f.at != nil:
		v, at, err := f.at()
		c.backV, c.backErr = v, err // what rpcLater answers, unless a reset came first
		c.caller.w.atTask(at, (*rpcLater)(c))
	default:
		f.async(c.respond)
	}
}

func (f *funcCall) arrived(any, error)     {}
func (f *funcCall) reply(v any, err error) { f.replyFn(v, err) }

// rpc is one call in flight. Its steps (the request's arrival, the
// callee's answer at a later time, the answer's arrival, the timeout, the
// reply in the caller) are tasks over this one struct, so that a call
// allocates nothing but its user.
type rpc struct {
	caller, callee *proc
	user           rpcUser
	callerRun      int32 // the caller's run
	timeout        int32 // the slot of its timeout event (-1: none)
	mode           uint8 // where the answer goes (replyToLoop, …)
	// answered: the callee answered, or its crash reset the connection
	// (later answers are void); done: the caller has its outcome;
	// registered: the callee's resets list holds it (proc.onCrash).
	answered, done, registered bool
	// back is the answer on its way back (or the reset, or the refusal),
	// and before that an at handler's answer until its time; out is the
	// outcome the caller gets.
	backV, outV     any
	backErr, outErr error
}

func (w *World) callWith(c *rpc, caller, callee *proc, user rpcUser, mode uint8, timeout time.Duration) {
	c.caller, c.callee, c.user, c.callerRun, c.mode, c.timeout = caller, callee, user, int32(caller.run), mode, -1
	if timeout > 0 {
		c.timeout = int32(w.afterTask(caller.globalDur(timeout), (*rpcTimeout)(c)))
	}
	w.net.streamProcs(caller, callee, (*rpcRequest)(c))
}

// The tasks of a call.
type (
	rpcRequest rpc // the request reaches the callee's host
	rpcHandle  rpc // the callee's loop runs the handler
	rpcLater   rpc // an at handler's answer leaves
	rpcBack    rpc // the answer (or reset, or refusal) reaches the caller's host
	rpcTimeout rpc // the caller's deadline passes
	rpcReply   rpc // the caller's loop (or other goroutine) takes the outcome
)

func (t *rpcRequest) run() {
	c := (*rpc)(t)
	if !c.callee.up {
		c.back(nil, errRefused)
		return
	}
	// If the callee dies before it answers, the caller sees the
	// connection reset, after the way back (reset).
	c.callee.onCrash(c)
	c.callee.deliverTask(c.callee.run, (*rpcHandle)(c))
}

func (t *rpcHandle) run() { t.user.serve((*rpc)(t)) }

func (t *rpcLater) run() { (*rpc)(t).respond(t.backV, t.backErr) }

// respond is the callee's answer: it goes back unless the connection was
// reset.
func (c *rpc) respond(v any, err error) {
	if c.answered {
		return
	}
	c.answered = true
	c.callee.forgetReset(c)
	c.back(v, err)
}

// reset is the callee's crash while it holds the call.
func (c *rpc) reset() {
	c.answered = true
	c.back(nil, errRefused)
}

// back sends an outcome on the stream back to the caller.
func (c *rpc) back(v any, err error) {
	c.backV, c.backErr = v, err
	c.caller.w.net.streamProcs(c.callee, c.caller, (*rpcBack)(c))
}

func (t *rpcBack) run()    { (*rpc)(t).finish(t.backV, t.backErr) }
func (t *rpcTimeout) run() { (*rpc)(t).finish(nil, errTimeout) }

// finish gives the caller its outcome, the first of the answer and the
// timeout.
func (c *rpc) finish(v any, err error) {
	if c.done {
		return
	}
	c.done = true
	if err != errTimeout {
		// The timeout has not come (it would have finished the call):
		// when it came it would find the call done.
		c.caller.w.cancel(int(c.timeout), (*rpcTimeout)(c))
	}
	caller, run := c.caller, int(c.callerRun)
	if err != errTimeout && caller.up && caller.run == run {
		c.user.arrived(v, err)
	}
	c.outV, c.outErr = v, err
	switch c.mode {
	case replyUnblocks:
		caller.answerBlocked(run, func() { c.user.reply(v, err) })
	case replyToOther:
		caller.deliverOther(run, func() { c.user.reply(v, err) })
	default:
		caller.deliverTask(run, (*rpcReply)(c))
	}
}

func (t *rpcReply) run() { t.user.reply(t.outV, t.outErr) }
