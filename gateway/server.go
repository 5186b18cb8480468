package gateway

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Server is the gateway's gRPC service around a Log. One mutex guards the
// log; no lock is held while sending on a stream. Its one timer of its own
// offers status updates when the Log says they fall due (NextWake).
type Server struct {
	mcsimv1.UnimplementedGatewayServiceServer

	logger zerolog.Logger
	start  time.Time // the log's start; pings fall on multiples of PingInterval from it

	mu  sync.Mutex
	log *Log
	// replaced gets a message for a session's stream when a newer epoch
	// takes any of its keys. Buffered (1): the one message is never lost and the
	// gateway never blocks on a slow stream.
	replaced map[SessionID]chan *mcsimv1.SessionResponse
	// changed is closed (and replaced) whenever an event is appended, so
	// watchers read the log at their own pace instead of being fed.
	changed chan struct{}
	// outboxes hold what each open session's stream is to carry besides
	// pings: message acks and status offers. The session's handler is the
	// stream's one writer.
	outboxes map[SessionID]*outbox
	wake     *time.Timer // at log.NextWake; nil until first needed
}

// outbox is a session's queue of messages to send; ready has a token
// whenever queue is not empty. Guarded by Server.mu.
type outbox struct {
	queue []*mcsimv1.SessionResponse
	ready chan struct{}
}

func (o *outbox) push(m *mcsimv1.SessionResponse) {
	o.queue = append(o.queue, m)
	select {
	case o.ready <- struct{}{}:
	default:
	}
}

// Config configures a gateway.
type Config struct {
	// Logger is the node's logger, already carrying node_id and role.
	Logger zerolog.Logger
	// Statuses are the status delays (DefaultStatusDelays when zero).
	Statuses StatusDelays
}

// New returns a gateway with the default status delays whose clock starts
// now. logger is the node's logger, already carrying node_id and role.
func New(logger zerolog.Logger) *Server {
	s, _ := NewWithConfig(Config{Logger: logger}) // the defaults are valid
	return s
}

// NewWithConfig returns a gateway whose clock starts now.
func NewWithConfig(cfg Config) (*Server, error) {
	if cfg.Statuses == (StatusDelays{}) {
		cfg.Statuses = DefaultStatusDelays()
	}
	if err := cfg.Statuses.Validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	start := time.Now()
	return &Server{
		logger:   cfg.Logger,
		start:    start,
		log:      NewLogWith(start, cfg.Statuses),
		replaced: make(map[SessionID]chan *mcsimv1.SessionResponse),
		changed:  make(chan struct{}),
		outboxes: make(map[SessionID]*outbox),
	}, nil
}

// Register serves GatewayService and the standard gRPC health service on g.
func (s *Server) Register(g *grpc.Server) {
	mcsimv1.RegisterGatewayServiceServer(g, s)
	// Every node serves grpc.health.v1, so grpc_health_probe works on all.
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	h.SetServingStatus(mcsimv1.GatewayService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, h)
}

// Sessions returns the open sessions by shard number (see Log.Holders:
// exact, as open sessions never share a shard number; with one shard count
// in use it is the holder of each shard).
func (s *Server) Sessions() map[int32]Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.Holders()
}

// Log returns the events with seq ≥ since (0: all).
func (s *Server) Log(since uint64) []*mcsimv1.GatewayEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.Since(since)
}

// notifyLocked wakes every watcher. Callers hold s.mu.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Session implements mcsimv1.GatewayServiceServer. The first request opens
// the session; once accepted, the handler pings it every PingInterval and a
// second goroutine reads its pongs, so that the log knows when it was last
// heard and logs SILENT on time (a timer SilentAfter past the last pong,
// not at the next ping).
func (s *Server) Session(stream grpc.BidiStreamingServer[mcsimv1.SessionRequest, mcsimv1.SessionResponse]) error {
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	if err := ValidateRequest(req.GetCoreappId(), req.GetShard(), req.GetShards(), req.GetEpoch()); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	lg := s.logger.With().Str("coreapp", req.GetCoreappId()).Int32("shard", req.GetShard()).
		Int32("shards", req.GetShards()).Uint64("epoch", req.GetEpoch()).Logger()

	s.mu.Lock()
	now := time.Now()
	d := s.log.Open(now, req.GetCoreappId(), req.GetShard(), req.GetShards(), req.GetEpoch())
	var mine chan *mcsimv1.SessionResponse
	var out *outbox
	if d.Accepted {
		for _, r := range d.Replaced {
			if ch, ok := s.replaced[r.ID]; ok {
				ch <- &mcsimv1.SessionResponse{
					State: mcsimv1.SessionState_SESSION_STATE_REPLACED,
					Reason: fmt.Sprintf("shard %d of %d taken by coreapp %q with shard %d of %d at newer epoch %d",
						r.Shard, r.Shards, req.GetCoreappId(), req.GetShard(), req.GetShards(), req.GetEpoch()),
				}
				delete(s.replaced, r.ID)
			}
		}
		mine = make(chan *mcsimv1.SessionResponse, 1)
		s.replaced[d.Session.ID] = mine
		for _, r := range d.Replaced {
			delete(s.outboxes, r.ID)
		}
		out = &outbox{ready: make(chan struct{}, 1)}
		s.outboxes[d.Session.ID] = out
		// Statuses pending on the keys it takes are offered to it now
		// (queued behind ACCEPTED, which the handler sends first).
		s.offerLocked(now)
	}
	s.notifyLocked()
	s.mu.Unlock()

	if !d.Accepted {
		lg.Info().Str("reason", d.Reason).Msg("session rejected")
		return stream.Send(&mcsimv1.SessionResponse{State: mcsimv1.SessionState_SESSION_STATE_REJECTED, Reason: d.Reason})
	}
	for _, r := range d.Replaced {
		lg.Info().Str("replaced_coreapp", r.CoreappID).Int32("replaced_shard", r.Shard).
			Int32("replaced_shards", r.Shards).Uint64("replaced_epoch", r.Epoch).
			Msg("session replaced an older one")
	}
	if len(d.Replaced) == 0 {
		lg.Info().Msg("session connected")
	}

	id := d.Session.ID
	if err := stream.Send(&mcsimv1.SessionResponse{
		State:          mcsimv1.SessionState_SESSION_STATE_ACCEPTED,
		PingIntervalMs: PingInterval.Milliseconds(),
		SilentAfterMs:  SilentAfter.Milliseconds(),
	}); err != nil {
		s.close(id, lg)
		return err
	}
	// Pongs are read apart from the pings, so that a ping stuck on a full
	// stream never delays hearing one. Each pong pushes the silence timer
	// back (a Reset wakes nobody), so it fires only when the session is
	// due to turn silent, on time.
	silence := time.NewTimer(SilentAfter)
	defer silence.Stop()
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			traffic := false
			if m := req.GetMessage(); m != nil {
				s.message(id, m, lg)
				traffic = true
			}
			if acks := req.GetStatusAck(); len(acks) > 0 {
				s.ack(id, acks)
				traffic = true
			}
			// Only pongs are heard (a request that carries nothing else
			// is one, as before messages existed): sending is no answer
			// to a ping.
			if req.GetPong() != 0 || !traffic {
				s.heard(id, lg)
				silence.Reset(SilentAfter)
			}
		}
	}()
	// Every session is pinged at the same instants, multiples of
	// PingInterval since the gateway started: the gateway wakes once per
	// interval for all of them and their pongs come back together, which
	// costs less than one staggered ticker per session.
	nextPing := func() time.Duration { return PingInterval - time.Since(s.start)%PingInterval }
	ping := time.NewTimer(nextPing())
	defer ping.Stop()
	var seq uint64
	for {
		select {
		case msg := <-mine:
			// The REPLACE event is already logged; the shard is no longer
			// ours, so there is nothing to close.
			lg.Info().Str("reason", msg.GetReason()).Msg("session closed: replaced")
			return stream.Send(msg)
		case <-recvErr:
			s.close(id, lg)
			return nil
		case <-stream.Context().Done():
			s.close(id, lg)
			return nil
		case <-ping.C:
			seq++
			if err := stream.Send(&mcsimv1.SessionResponse{Ping: seq}); err != nil {
				s.close(id, lg)
				return err
			}
			ping.Reset(nextPing())
		case <-silence.C:
			s.tick()
		case <-out.ready:
			s.mu.Lock()
			q := out.queue
			out.queue = nil
			s.mu.Unlock()
			for _, m := range q {
				if err := stream.Send(m); err != nil {
					s.close(id, lg)
					return err
				}
			}
		}
	}
}

// message decides a message sent on session id and queues its ack.
func (s *Server) message(id SessionID, m *mcsimv1.OutboundMessage, lg zerolog.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	d := s.log.Message(now, id, m)
	if o := s.outboxes[id]; o != nil {
		o.push(&mcsimv1.SessionResponse{MessageAck: d.Ack})
	}
	if d.Event != nil {
		s.notifyLocked()
	}
	s.armLocked(now)
	if !d.Ack.GetAccepted() {
		lg.Info().Str("message_id", m.GetId()).Str("to", m.GetTo()).Str("reason", d.Ack.GetReason()).Msg("message refused")
	}
}

// ack records the statuses session id took charge of.
func (s *Server) ack(id SessionID, ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if len(s.log.Ack(now, id, ids)) > 0 {
		s.notifyLocked()
	}
	s.armLocked(now)
}

// offerLocked queues every status due at now on its holder's stream and
// sets the timer for the next. Caller holds s.mu.
func (s *Server) offerLocked(now time.Time) {
	for _, o := range s.log.Due(now) {
		if ob := s.outboxes[o.Session]; ob != nil {
			ob.push(&mcsimv1.SessionResponse{Status: o.Update})
		}
	}
	s.armLocked(now)
}

// armLocked sets the status timer at the log's NextWake. Caller holds s.mu.
func (s *Server) armLocked(now time.Time) {
	w := s.log.NextWake()
	if w.IsZero() {
		if s.wake != nil {
			s.wake.Stop()
		}
		return
	}
	d := max(w.Sub(now), 0)
	if s.wake == nil {
		s.wake = time.AfterFunc(d, s.offer)
		return
	}
	s.wake.Reset(d)
}

// offer is the status timer.
func (s *Server) offer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offerLocked(time.Now())
}

// heard records a pong of session id.
func (s *Server) heard(id SessionID, lg zerolog.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, _, _ := s.log.LastHeard(id)
	ev, ok := s.log.Heard(time.Now(), id)
	if !ok {
		return
	}
	s.notifyLocked()
	lg.Info().Int64("silence_ms", time.Unix(0, ev.GetUnixNs()).Sub(last).Milliseconds()).Msg("session heard again: serving")
}

// tick logs every session that fell silent (any session: the Log decides
// for all of them at once).
func (s *Server) tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	evs := s.log.Tick(time.Now())
	if len(evs) == 0 {
		return
	}
	s.notifyLocked()
	for _, ev := range evs {
		s.logger.Warn().Str("coreapp", ev.GetCoreappId()).Int32("shard", ev.GetShard()).
			Int32("shards", ev.GetShards()).Uint64("epoch", ev.GetEpoch()).
			Int64("silence_ms", time.Duration(ev.GetMonoNs()-ev.GetLastHeardMonoNs()).Milliseconds()).
			Msg("session silent: not serving")
	}
}

// close ends a session whose stream ended.
func (s *Server) close(id SessionID, lg zerolog.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.replaced, id)
	delete(s.outboxes, id)
	if _, ok := s.log.Close(time.Now(), id); ok {
		s.notifyLocked()
		lg.Info().Msg("session disconnected")
	}
}

// Events implements mcsimv1.GatewayServiceServer.
func (s *Server) Events(_ context.Context, req *mcsimv1.EventsRequest) (*mcsimv1.EventsResponse, error) {
	return &mcsimv1.EventsResponse{Events: s.Log(req.GetSinceSeq())}, nil
}

// WatchEvents implements mcsimv1.GatewayServiceServer. Each watcher reads
// the log at its own pace, so a slow watcher never blocks the gateway.
func (s *Server) WatchEvents(req *mcsimv1.WatchEventsRequest, stream grpc.ServerStreamingServer[mcsimv1.WatchEventsResponse]) error {
	next := req.GetSinceSeq()
	if next == 0 {
		next = 1
	}
	for {
		s.mu.Lock()
		evs := s.log.Since(next)
		changed := s.changed
		s.mu.Unlock()
		for _, ev := range evs {
			if err := stream.Send(&mcsimv1.WatchEventsResponse{Event: ev}); err != nil {
				return err
			}
			next = ev.GetSeq() + 1
		}
		if len(evs) > 0 {
			continue // more may have come while sending
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		}
	}
}
