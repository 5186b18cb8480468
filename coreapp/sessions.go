package coreapp

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mcsim/mcsim/internal/clock"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/shard"
)

// validateAssign checks an AssignRequest's fields. shards may be 0 (unknown
// to the sender, see sessionShards); when set, it is a count the gateway
// accepts (shard.ValidCount) and shard falls inside it.
func validateAssign(req *mcsimv1.AssignRequest) error {
	switch {
	case req.GetShard() < 0:
		return fmt.Errorf("shard: must be ≥ 0, got %d", req.GetShard())
	case req.GetShards() == 0 && req.GetShard() >= shard.Buckets:
		return fmt.Errorf("shard: must be < %d, got %d", shard.Buckets, req.GetShard())
	case req.GetEpoch() == 0:
		return fmt.Errorf("epoch: must be ≥ 1, got 0")
	case req.GetShards() < 0:
		return fmt.Errorf("shards: must be ≥ 0, got %d", req.GetShards())
	case req.GetShards() > 0 && !shard.ValidCount(int(req.GetShards())):
		return fmt.Errorf("shards: %s (or 0: unknown), got %d", shard.CountRule, req.GetShards())
	case req.GetShards() > 0 && req.GetShard() >= req.GetShards():
		return fmt.Errorf("shard: must be < shards (%d), got %d", req.GetShards(), req.GetShard())
	}
	return nil
}

// sessionShards is the shard count a session is opened with. A sender that
// does not know the count (0; the master always sends it) gets the finest,
// shard.Buckets, under which distinct shard numbers never share a key: the
// gateway then fences by shard number alone, as it did before counts were
// known.
func sessionShards(shards int32) int32 {
	if shards == 0 {
		return shard.Buckets
	}
	return shards
}

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
	if err := validateAssign(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := n.checkTarget(req.GetCoreappId()); err != nil {
		return nil, err
	}
	shard, epoch := req.GetShard(), req.GetEpoch()
	lg := n.logger.With().Int32("shard", shard).Uint64("epoch", epoch).
		Str("master_id", req.GetMasterId()).Uint64("lease_epoch", req.GetLeaseEpoch()).Logger()

	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil, status.Error(codes.Unavailable, "coreapp is stopping")
	}
	if err := n.fenceLocked(req.GetLeaseEpoch()); err != nil {
		n.mu.Unlock()
		lg.Warn().Err(err).Msg("assign refused")
		return nil, err
	}
	if seen := n.shardEpochs[shard]; epoch <= seen {
		n.mu.Unlock()
		err := status.Errorf(codes.FailedPrecondition,
			"shard %d epoch %d is not newer than epoch %d already seen", shard, epoch, seen)
		lg.Warn().Err(err).Msg("assign refused")
		return nil, err
	}
	n.leaseEpoch = max(n.leaseEpoch, req.GetLeaseEpoch())
	n.shardEpochs[shard] = epoch
	n.everAssigned = true
	sctx, cancel := context.WithCancel(n.ctx)
	s := &session{shard: shard, shards: sessionShards(req.GetShards()), epoch: epoch, state: mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTING, cancel: cancel}
	// An older session of the same shard on this node is left to the
	// gateway, which replaces it when this one is accepted; runSession
	// ends it whatever the gateway answers (see there).
	s.prev = n.sessions[shard]
	n.sessions[shard] = s
	result := make(chan error, 1)
	n.wg.Add(1)
	// Logged under the lock: the order of these lines is the order the
	// coreapp accepted commands in, which single_primary judges.
	lg.Info().Msg("assigned: opening gateway session")
	n.mu.Unlock()

	go n.runSession(sctx, s, result)
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

// checkTarget refuses a request meant for another coreapp ("" means any):
// the caller dialed an address that is no longer that coreapp's.
func (n *Node) checkTarget(id string) error {
	if id != "" && id != n.cfg.ID {
		return status.Errorf(codes.FailedPrecondition,
			"coreapp_id: this is coreapp %q, not %q (the address changed hands)", n.cfg.ID, id)
	}
	return nil
}

// fenceLocked refuses a request from a master older than one already seen.
func (n *Node) fenceLocked(leaseEpoch uint64) error {
	if leaseEpoch < n.leaseEpoch {
		return status.Errorf(codes.FailedPrecondition,
			"lease epoch %d is older than lease epoch %d already seen", leaseEpoch, n.leaseEpoch)
	}
	return nil
}

// Release implements mcsimv1.CoreAppServiceServer. It is fenced on the lease
// epoch like Assign, and the epoch must be the one the shard is held with.
// Releasing a shard the node does not hold succeeds and does nothing (it may
// already have been dropped, for example replaced). It returns once the
// session's stream is closed on this side; the gateway logs the disconnect
// when it sees the stream end.
func (n *Node) Release(_ context.Context, req *mcsimv1.ReleaseRequest) (*mcsimv1.ReleaseResponse, error) {
	shard, epoch := req.GetShard(), req.GetEpoch()
	if shard < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "shard: must be ≥ 0, got %d", shard)
	}
	if err := n.checkTarget(req.GetCoreappId()); err != nil {
		return nil, err
	}
	lg := n.logger.With().Int32("shard", shard).Uint64("epoch", epoch).
		Str("master_id", req.GetMasterId()).Uint64("lease_epoch", req.GetLeaseEpoch()).Logger()

	n.mu.Lock()
	if err := n.fenceLocked(req.GetLeaseEpoch()); err != nil {
		n.mu.Unlock()
		lg.Warn().Err(err).Msg("release refused")
		return nil, err
	}
	s, ok := n.sessions[shard]
	if ok && s.epoch != epoch {
		n.mu.Unlock()
		err := status.Errorf(codes.FailedPrecondition,
			"shard %d is held with epoch %d, not %d", shard, s.epoch, epoch)
		lg.Warn().Err(err).Msg("release refused")
		return nil, err
	}
	n.leaseEpoch = max(n.leaseEpoch, req.GetLeaseEpoch())
	if ok {
		n.forgetLocked(s)
		n.m.releases.Inc()
		s.cancel()
	}
	// Under the lock, as in Assign: the lines keep the order of acceptance.
	if ok {
		lg.Info().Msg("released: session closed")
	} else {
		lg.Info().Msg("release of a shard not held: nothing to do")
	}
	n.mu.Unlock()
	return &mcsimv1.ReleaseResponse{}, nil
}

// runSession holds one shard's gateway session until it ends. It reports the
// gateway's first answer on result (nil: accepted), then keeps reading so it
// sees a REPLACED message or the stream breaking, and drops the shard then.
func (n *Node) runSession(ctx context.Context, s *session, result chan<- error) {
	defer n.wg.Done()
	defer s.cancel()
	lg := n.logger.With().Int32("shard", s.shard).Int32("shards", s.shards).Uint64("epoch", s.epoch).Logger()

	stream, err := n.cfg.GatewayClient.Session(ctx)
	if err == nil {
		err = stream.Send(&mcsimv1.SessionRequest{CoreappId: n.cfg.ID, Shard: s.shard, Shards: s.shards, Epoch: s.epoch})
	}
	var first *mcsimv1.SessionResponse
	if err == nil {
		first, err = stream.Recv()
	}
	if s.prev != nil {
		// The older session is no longer in the node's books (heartbeats do
		// not list it, Release cannot reach it). If this one failed, it
		// would stay open at the gateway as an orphan the master cannot see;
		// if this one was accepted, the gateway has already replaced it.
		s.prev.cancel()
		s.prev = nil
	}
	switch {
	case err != nil:
		n.drop(s)
		result <- status.Errorf(codes.Unavailable, "gateway session for shard %d: %v", s.shard, err)
		return
	case first.GetState() == mcsimv1.SessionState_SESSION_STATE_REJECTED:
		n.drop(s)
		result <- status.Errorf(codes.FailedPrecondition, "gateway rejected shard %d epoch %d: %s",
			s.shard, s.epoch, first.GetReason())
		return
	case first.GetState() != mcsimv1.SessionState_SESSION_STATE_ACCEPTED:
		n.drop(s)
		result <- status.Errorf(codes.Internal, "gateway answered %v for shard %d, want ACCEPTED",
			first.GetState(), s.shard)
		return
	}
	silentAfter := time.Duration(first.GetSilentAfterMs()) * time.Millisecond
	n.mu.Lock()
	s.state = mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED
	s.lastPing = n.cfg.Clock.Now()
	n.countServedLocked()
	n.mu.Unlock()
	n.m.sessionsOpened.Inc()
	defer n.m.sessionsEnded.Inc()
	result <- nil

	// A shard is served only while the gateway is heard (rule 7): with no
	// ping for silentAfter the gateway cannot hear us either (we are cut
	// off, or it is paused), so the shard reads CONNECTING until a ping
	// comes again. The session and the assignment stay: the master decides
	// failover, and the gateway replaces the session if it does. The
	// silence is timed by our own clock, as a real process would time it.
	var silence clock.Timer
	if silentAfter > 0 {
		silence = n.cfg.Clock.AfterFunc(silentAfter, func() { n.unheard(s, silentAfter, lg) })
		defer silence.Stop()
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			if n.drop(s) {
				lg.Warn().Err(err).Msg("gateway session ended: shard dropped")
			}
			return
		}
		if p := msg.GetPing(); p != 0 {
			// The pong first: the gateway times service by it.
			_ = stream.Send(&mcsimv1.SessionRequest{Pong: p})
			n.pinged(s, lg)
			if silence != nil {
				silence.Reset(silentAfter)
			}
			continue
		}
		if msg.GetState() == mcsimv1.SessionState_SESSION_STATE_REPLACED {
			if n.drop(s) {
				lg.Warn().Str("reason", msg.GetReason()).Msg("gateway session replaced: shard dropped")
			}
		}
	}
}

// pinged notes a ping of s: the gateway hears us, so a shard that was not
// served is served again.
func (n *Node) pinged(s *session, lg zerolog.Logger) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.cfg.Clock.Now()
	last := s.lastPing
	s.lastPing = now
	if n.sessions[s.shard] != s || s.state != mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTING {
		return
	}
	s.state = mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED
	n.countServedLocked()
	lg.Info().Int64("silence_ms", now.Sub(last).Milliseconds()).Msg("gateway heard again: shard served")
}

// unheard is the silence timer of s: if no ping came for silentAfter (the
// timer may race a ping that just reset it), the shard is not served.
func (n *Node) unheard(s *session, silentAfter time.Duration, lg zerolog.Logger) {
	n.mu.Lock()
	defer n.mu.Unlock()
	since := clock.Since(n.cfg.Clock, s.lastPing)
	if since < silentAfter || n.sessions[s.shard] != s || s.state != mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED {
		return
	}
	s.state = mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTING
	n.countServedLocked()
	lg.Warn().Int64("silence_ms", since.Milliseconds()).Msg("gateway not heard: shard not served")
}

// drop forgets s if it is still the shard's session (a Release or a newer
// assignment of the same shard may have taken its place). It reports
// whether it did.
func (n *Node) drop(s *session) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sessions[s.shard] != s {
		return false
	}
	n.forgetLocked(s)
	return true
}

// forgetLocked removes s from the node's books. Caller holds mu.
func (n *Node) forgetLocked(s *session) {
	delete(n.sessions, s.shard)
	n.countServedLocked()
}

// countServedLocked sets the shards_served gauge: the shards whose session
// the gateway accepted and still hears, not those opening or cut off.
// Caller holds mu.
func (n *Node) countServedLocked() {
	served := 0
	for _, s := range n.sessions {
		if s.state == mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED {
			served++
		}
	}
	n.m.shardsServed.Set(float64(served))
}
