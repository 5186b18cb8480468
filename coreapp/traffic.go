package coreapp

import (
	"context"
	"errors"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mcsim/mcsim/coreapp/books"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// StatusHandler takes charge of the status updates the gateway offers on
// the session of shard (of count shards). The session's worker hands it
// every update queued since its last call as one batch (at most
// MaxStatusBatch), and acknowledges to the gateway, in one status_ack,
// those TakeStatuses returned a nil error for, only once it returned: so
// a handler that persists callbacks makes them durable first, and may do
// so for the whole batch at once. The answer has one error per update, in
// order; an error leaves its status unacknowledged and the gateway offers
// it again (to this session after its resend interval, or to the shard's
// next owner). Calls for one session come one at a time, in the order the
// gateway offered the updates; sessions are handled concurrently. ctx
// ends with the session.
type StatusHandler interface {
	TakeStatuses(ctx context.Context, shard, shards int32, us []*mcsimv1.StatusUpdate) []error
}

// errNoAnswer fails a status the handler's answer has no error slot for.
var errNoAnswer = errors.New("the status handler gave no answer for it")

// MaxStatusBatch bounds one TakeStatuses call, so a backlog becomes
// several store writes of a bounded size rather than one huge RPC.
const MaxStatusBatch = 1000

// sessionIO is what goes over an accepted session's stream besides pings:
// messages out and their acks back, status updates in and their acks
// out. A client stream takes one writer at a time, so every Send on it
// (pongs included) holds sendMu; mu guards the rest and is never held
// while writing.
type sessionIO struct {
	sendMu sync.Mutex

	mu     sync.Mutex
	stream grpc.BidiStreamingClient[mcsimv1.SessionRequest, mcsimv1.SessionResponse] // nil until accepted
	ended  bool
	// waiters are the Sends waiting for the gateway's ack, by message id;
	// the gateway answers a session's messages in order, so the first
	// waiter of an id gets the first ack of it.
	waiters map[string][]chan *mcsimv1.MessageAck
	// statuses are offered updates not yet handed to the handler; ready
	// has a token while it is not empty.
	statuses []*mcsimv1.StatusUpdate
	ready    chan struct{}
}

func newSessionIO() *sessionIO {
	return &sessionIO{waiters: map[string][]chan *mcsimv1.MessageAck{}, ready: make(chan struct{}, 1)}
}

// send writes req on the stream, one writer at a time.
func (io *sessionIO) send(req *mcsimv1.SessionRequest) error {
	io.mu.Lock()
	st := io.stream
	io.mu.Unlock()
	if st == nil {
		return errors.New("session not open")
	}
	io.sendMu.Lock()
	defer io.sendMu.Unlock()
	return st.Send(req)
}

// accepted makes the stream available to Sends.
func (io *sessionIO) accepted(st grpc.BidiStreamingClient[mcsimv1.SessionRequest, mcsimv1.SessionResponse]) {
	io.mu.Lock()
	defer io.mu.Unlock()
	io.stream = st
}

// end fails every Send still waiting: the stream is gone, so its ack will
// never come (nil on the channel).
func (io *sessionIO) end() {
	io.mu.Lock()
	defer io.mu.Unlock()
	io.ended = true
	for id, ws := range io.waiters {
		for _, w := range ws {
			close(w)
		}
		delete(io.waiters, id)
	}
}

// answer hands the gateway's ack to the first Send waiting for its id.
func (io *sessionIO) answer(a *mcsimv1.MessageAck) {
	io.mu.Lock()
	defer io.mu.Unlock()
	ws := io.waiters[a.GetId()]
	if len(ws) == 0 {
		return // its Send gave up
	}
	ws[0] <- a
	if len(ws) == 1 {
		delete(io.waiters, a.GetId())
	} else {
		io.waiters[a.GetId()] = ws[1:]
	}
}

// forget drops waiter w of id (its Send gave up or failed to write).
func (io *sessionIO) forget(id string, w chan *mcsimv1.MessageAck) {
	io.mu.Lock()
	defer io.mu.Unlock()
	ws := io.waiters[id]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(io.waiters, id)
	} else {
		io.waiters[id] = ws
	}
}

// message sends m and waits for the gateway's ack or ctx. The error is a
// gRPC status: FailedPrecondition when m surely was not sent, Unavailable
// or the context's when the outcome is unknown.
func (io *sessionIO) message(ctx context.Context, m *mcsimv1.OutboundMessage) (*mcsimv1.MessageAck, error) {
	w := make(chan *mcsimv1.MessageAck, 1)
	io.mu.Lock()
	if io.ended || io.stream == nil {
		io.mu.Unlock()
		return nil, status.Error(codes.FailedPrecondition, books.NotPrimary+"the shard's gateway session ended")
	}
	io.waiters[m.GetId()] = append(io.waiters[m.GetId()], w)
	io.mu.Unlock()
	if err := io.send(&mcsimv1.SessionRequest{Message: m}); err != nil {
		io.forget(m.GetId(), w)
		return nil, status.Errorf(codes.Unavailable, "gateway session: %v (the message may or may not have been sent)", err)
	}
	select {
	case a, ok := <-w:
		if !ok {
			return nil, status.Error(codes.Unavailable, "gateway session ended before the gateway answered (the message may or may not have been accepted)")
		}
		return a, nil
	case <-ctx.Done():
		io.forget(m.GetId(), w)
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// offer queues a status update for the session's status worker.
func (io *sessionIO) offer(u *mcsimv1.StatusUpdate) {
	io.mu.Lock()
	defer io.mu.Unlock()
	io.statuses = append(io.statuses, u)
	select {
	case io.ready <- struct{}{}:
	default:
	}
}

// Send implements mcsimv1.CoreAppServiceServer: the books say whether the
// recipient's shard is ours and served (books.Route), then the message
// goes out on that shard's session and the answer waits for the gateway's
// ack (or the caller's deadline).
func (n *Node) Send(ctx context.Context, req *mcsimv1.SendRequest) (*mcsimv1.SendResponse, error) {
	if req.GetMessageId() == "" {
		return nil, status.Error(codes.InvalidArgument, "message_id: must not be empty")
	}
	refused := func(err error) error {
		n.m.messagesRefused.Inc()
		n.logger.Debug().Str("message_id", req.GetMessageId()).Str("to", req.GetTo()).Err(err).Msg("message refused")
		return err
	}
	n.mu.Lock()
	r, refuse := n.books.Route(req.GetCoreappId(), req.GetTo(), req.GetShards())
	var s *session
	if refuse == nil {
		s = n.sessions[sessionKey{r.Shard, r.Epoch}]
	}
	n.mu.Unlock()
	if refuse != nil {
		return nil, refused(status.Error(refuse.Code, refuse.Reason))
	}
	if s == nil { // the books hold it, so its handle runs: a bug if not
		return nil, refused(status.Errorf(codes.Internal, "shard %d epoch %d: no session handle", r.Shard, r.Epoch))
	}
	ack, err := s.io.message(ctx, &mcsimv1.OutboundMessage{Id: req.GetMessageId(), To: req.GetTo(), Body: req.GetBody()})
	if err != nil {
		return nil, refused(err)
	}
	if !ack.GetAccepted() {
		reason := ack.GetReason()
		if !strings.HasPrefix(reason, books.NotPrimary) {
			reason = books.NotPrimary + "the gateway refused the message: " + reason
		}
		return nil, refused(status.Error(codes.FailedPrecondition, reason))
	}
	n.m.messagesSent.Inc()
	s.lg.Debug().Str("message_id", req.GetMessageId()).Str("to", req.GetTo()).Msg("message sent")
	return &mcsimv1.SendResponse{Shard: r.Shard, Epoch: r.Epoch}, nil
}

// takeStatuses hands the statuses offered on session s to the handler, a
// batch of all those queued at a time, and acknowledges those it took in
// one status_ack, until the session ends.
func (n *Node) takeStatuses(s *session) {
	defer n.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.io.ready:
		}
		batch := s.io.takeBatch()
		if len(batch) == 0 {
			continue
		}
		n.m.statusesReceived.Add(float64(len(batch)))
		if n.stopping() {
			// Its successors take its shards at once (rule 5), and the
			// gateway offers what nobody acknowledged to each new holder:
			// taken here, a status would die with this process when
			// callbacks live in memory.
			n.m.statusesDeclined.Add(float64(len(batch)))
			continue
		}
		var taken []string
		if n.cfg.Statuses == nil {
			n.m.statusesDropped.Add(float64(len(batch)))
			for _, u := range batch {
				taken = append(taken, u.GetId())
			}
		} else {
			errs := n.cfg.Statuses.TakeStatuses(s.ctx, s.shard, s.shards, batch)
			failed, firstID, firstErr := 0, "", error(nil)
			for i, u := range batch {
				var err error
				if i < len(errs) {
					err = errs[i]
				} else {
					err = errNoAnswer
				}
				if err == nil {
					taken = append(taken, u.GetId())
					continue
				}
				if failed++; failed == 1 {
					firstID, firstErr = u.GetId(), err
				}
			}
			if failed > 0 {
				// One line a batch: a store that is down fails every status.
				n.m.statusesFailed.Add(float64(failed))
				s.lg.Warn().Int("statuses", failed).Str("status_id", firstID).Err(firstErr).
					Msg("statuses not taken: the gateway will offer them again")
			}
		}
		if len(taken) > 0 {
			// A lost ack only means the statuses are offered again.
			_ = s.io.send(&mcsimv1.SessionRequest{StatusAck: taken})
		}
	}
}

// stopping says whether Stop has begun.
func (n *Node) stopping() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.books.Stopped()
}

// takeBatch takes the statuses queued for the worker, at most
// MaxStatusBatch of them; the token stays while more are queued.
func (io *sessionIO) takeBatch() []*mcsimv1.StatusUpdate {
	io.mu.Lock()
	defer io.mu.Unlock()
	n := min(len(io.statuses), MaxStatusBatch)
	batch := io.statuses[:n:n]
	io.statuses = io.statuses[n:]
	if len(io.statuses) == 0 {
		io.statuses = nil
		return batch
	}
	select {
	case io.ready <- struct{}{}:
	default:
	}
	return batch
}
