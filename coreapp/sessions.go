package coreapp

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mcsim/mcsim/coreapp/books"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Assign implements mcsimv1.CoreAppServiceServer. It answers once the
// gateway has accepted the shard's session, so a successful answer means the
// shard is served. If the caller gives up first, the session keeps opening;
// the master learns the outcome from the next heartbeat answer.
func (n *Node) Assign(ctx context.Context, req *mcsimv1.AssignRequest) (resp *mcsimv1.AssignResponse, err error) {
	defer func() {
		if err != nil {
			n.m.assignsRefused.Inc()
		} else {
			n.m.assignsAccepted.Inc()
		}
	}()
	lg := n.logger.With().Int32("shard", req.GetShard()).Uint64("epoch", req.GetEpoch()).
		Str("master_id", req.GetMasterId()).Uint64("lease_epoch", req.GetLeaseEpoch()).Logger()

	n.mu.Lock()
	acts := n.stepLocked(books.AssignAsked{Coreapp: req.GetCoreappId(), LeaseEpoch: req.GetLeaseEpoch(),
		Shard: req.GetShard(), Shards: req.GetShards(), Epoch: req.GetEpoch()})
	if err := refusal(acts); err != nil {
		if verdict(acts) {
			lg.Warn().Err(err).Msg("assign refused")
		}
		n.mu.Unlock()
		return nil, err
	}
	var s *session
	for _, a := range acts {
		if o, ok := a.(books.OpenSession); ok {
			s = n.newSessionLocked(o)
		}
	}
	result := make(chan error, 1)
	n.wg.Add(1)
	// Logged under the lock: the order of these lines is the order the
	// coreapp accepted commands in, which single_primary judges.
	lg.Info().Msg("assigned: opening gateway session")
	n.mu.Unlock()

	go n.runSession(s, result)
	select {
	case err := <-result:
		if err != nil {
			lg.Warn().Err(err).Msg("assign failed")
			return nil, err
		}
		lg.Info().Msg("shard served")
		return &mcsimv1.AssignResponse{}, nil
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// Release implements mcsimv1.CoreAppServiceServer; the books decide (see
// package books). It returns once the session's stream is closed on this
// side; the gateway logs the disconnect when it sees the stream end.
func (n *Node) Release(_ context.Context, req *mcsimv1.ReleaseRequest) (*mcsimv1.ReleaseResponse, error) {
	lg := n.logger.With().Int32("shard", req.GetShard()).Uint64("epoch", req.GetEpoch()).
		Str("master_id", req.GetMasterId()).Uint64("lease_epoch", req.GetLeaseEpoch()).Logger()

	n.mu.Lock()
	defer n.mu.Unlock()
	acts := n.stepLocked(books.ReleaseAsked{Coreapp: req.GetCoreappId(), LeaseEpoch: req.GetLeaseEpoch(),
		Shard: req.GetShard(), Epoch: req.GetEpoch()})
	if err := refusal(acts); err != nil {
		if verdict(acts) {
			lg.Warn().Err(err).Msg("release refused")
		}
		return nil, err
	}
	// Under the lock, as in Assign: the lines keep the order of acceptance.
	if closes(acts) {
		n.m.releases.Inc()
		lg.Info().Msg("released: session closed")
	} else {
		lg.Info().Msg("release of a shard not held: nothing to do")
	}
	return &mcsimv1.ReleaseResponse{}, nil
}

// refusal is the RPC error of a refused command, nil if it was accepted.
func refusal(acts []books.Action) error {
	for _, a := range acts {
		if r, ok := a.(books.Refuse); ok {
			return status.Error(r.Code, r.Reason)
		}
	}
	return nil
}

// verdict reports whether the refusal judged the master's command, which
// the log records (a malformed or misdirected request is not judged).
func verdict(acts []books.Action) bool {
	for _, a := range acts {
		if r, ok := a.(books.Refuse); ok {
			return r.Verdict
		}
	}
	return false
}

// closes reports whether acts close a session.
func closes(acts []books.Action) bool {
	for _, a := range acts {
		if _, ok := a.(books.CloseSession); ok {
			return true
		}
	}
	return false
}

// stepLocked steps the books at the node's now and carries out what is the
// same whoever stepped: closing sessions, status changes, the served gauge
// and the silence timer. The caller carries out the rest (answers, opening
// sessions) and logs its own verdicts. Caller holds mu.
func (n *Node) stepLocked(ev books.Event) []books.Action {
	now := n.cfg.Clock.Now()
	acts, err := n.books.Step(now, ev)
	if err != nil {
		// Only an event type the books do not know: a bug here, not input.
		n.logger.Error().Err(err).Msg("books refused an event")
		return nil
	}
	for _, a := range acts {
		switch a := a.(type) {
		case books.CloseSession:
			if s := n.sessions[sessionKey{a.Shard, a.Epoch}]; s != nil {
				s.cancel()
			}
		case books.SetStatus:
			lg := n.sessionLogger(a.Shard, a.Epoch)
			if a.Status == mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED {
				lg.Info().Int64("silence_ms", a.Silence.Milliseconds()).Msg("gateway heard again: shard served")
			} else {
				lg.Warn().Int64("silence_ms", a.Silence.Milliseconds()).Msg("gateway not heard: shard not served")
			}
		}
	}
	n.m.shardsServed.Set(float64(n.books.ServedCount()))
	n.armLocked(now)
	return acts
}

// step is stepLocked taking mu; it reports whether the books dropped the
// shard.
func (n *Node) step(ev books.Event) (dropped bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range n.stepLocked(ev) {
		if _, ok := a.(books.Dropped); ok {
			dropped = true
		}
	}
	return dropped
}

// armLocked sets the one timer of the node at the books' NextWake (the
// gateway's silence is timed by the node's own clock, as a real process
// would time it). Caller holds mu.
func (n *Node) armLocked(now time.Time) {
	w := n.books.NextWake()
	if w.IsZero() {
		if n.wake != nil {
			n.wake.Stop()
		}
		return
	}
	if n.wake == nil {
		n.wake = n.cfg.Clock.AfterFunc(w.Sub(now), n.tick)
		return
	}
	n.wake.Reset(w.Sub(now))
}

// tick is the timer set by armLocked.
func (n *Node) tick() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stepLocked(books.Tick{})
}

// newSessionLocked makes the handle of a session the books opened; its
// goroutine is runSession. Caller holds mu.
func (n *Node) newSessionLocked(o books.OpenSession) *session {
	ctx, cancel := context.WithCancel(n.ctx)
	s := &session{shard: o.Shard, shards: o.Shards, epoch: o.Epoch, ctx: ctx, cancel: cancel, io: newSessionIO(),
		lg: n.logger.With().Int32("shard", o.Shard).Int32("shards", o.Shards).Uint64("epoch", o.Epoch).Logger()}
	n.sessions[sessionKey{o.Shard, o.Epoch}] = s
	return s
}

// sessionLogger is the logger of the session of shard at epoch.
func (n *Node) sessionLogger(shard int32, epoch uint64) zerolog.Logger {
	if s := n.sessions[sessionKey{shard, epoch}]; s != nil {
		return s.lg
	}
	return n.logger.With().Int32("shard", shard).Uint64("epoch", epoch).Logger()
}

// runSession holds one shard's gateway session until it ends, and tells
// the books what the gateway says. It reports the gateway's first answer on
// result (nil: accepted), then keeps reading so it sees a REPLACED message
// or the stream breaking.
func (n *Node) runSession(s *session, result chan<- error) {
	defer n.wg.Done()
	defer func() {
		n.mu.Lock()
		delete(n.sessions, sessionKey{s.shard, s.epoch})
		n.mu.Unlock()
	}()
	defer s.cancel()
	defer s.io.end()
	lg := s.lg
	ended := books.SessionEnded{Shard: s.shard, Epoch: s.epoch}

	stream, err := n.cfg.GatewayClient.Session(s.ctx)
	if err == nil {
		err = stream.Send(&mcsimv1.SessionRequest{CoreappId: n.cfg.ID, Shard: s.shard, Shards: s.shards, Epoch: s.epoch})
	}
	var first *mcsimv1.SessionResponse
	if err == nil {
		first, err = stream.Recv()
	}
	rejected := books.SessionRejected{Shard: s.shard, Epoch: s.epoch}
	switch {
	case err != nil:
		n.step(rejected)
		result <- status.Errorf(codes.Unavailable, "gateway session for shard %d: %v", s.shard, err)
		return
	case first.GetState() == mcsimv1.SessionState_SESSION_STATE_REJECTED:
		n.step(rejected)
		result <- status.Errorf(codes.FailedPrecondition, "gateway rejected shard %d epoch %d: %s",
			s.shard, s.epoch, first.GetReason())
		return
	case first.GetState() != mcsimv1.SessionState_SESSION_STATE_ACCEPTED:
		n.step(rejected)
		result <- status.Errorf(codes.Internal, "gateway answered %v for shard %d, want ACCEPTED",
			first.GetState(), s.shard)
		return
	}
	// Sends may use the stream before the books call the shard served;
	// none will (Route asks for CONNECTED), but the stream is ready.
	s.io.accepted(stream)
	n.wg.Add(1)
	go n.takeStatuses(s)
	n.step(books.SessionAccepted{Shard: s.shard, Epoch: s.epoch,
		SilentAfter: time.Duration(first.GetSilentAfterMs()) * time.Millisecond})
	n.m.sessionsOpened.Inc()
	defer n.m.sessionsEnded.Inc()
	if n.cfg.Webhooks != nil {
		// Here rather than in Assign: a session whose Assign caller gave
		// up is served all the same, and its kept callbacks with it.
		n.cfg.Webhooks.Adopt(s.shard, s.shards)
	}
	result <- nil

	for {
		msg, err := stream.Recv()
		if err != nil {
			if n.step(ended) {
				lg.Warn().Err(err).Msg("gateway session ended: shard dropped")
			}
			return
		}
		if p := msg.GetPing(); p != 0 {
			// The pong first: the gateway times service by it.
			_ = s.io.send(&mcsimv1.SessionRequest{Pong: p})
			n.step(books.GatewayPinged{Shard: s.shard, Epoch: s.epoch})
			continue
		}
		if a := msg.GetMessageAck(); a != nil {
			s.io.answer(a)
			continue
		}
		if u := msg.GetStatus(); u != nil {
			s.io.offer(u)
			continue
		}
		if msg.GetState() == mcsimv1.SessionState_SESSION_STATE_REPLACED {
			if n.step(books.SessionReplaced{Shard: s.shard, Epoch: s.epoch}) {
				lg.Warn().Str("reason", msg.GetReason()).Msg("gateway session replaced: shard dropped")
			}
		}
	}
}
