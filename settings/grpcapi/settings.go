package grpcapi

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings"
	"github.com/mcsim/mcsim/settings/store"
)

// settingsServer serves Get and Watch from the store's in-memory state.
type settingsServer struct {
	mcsimv1.UnimplementedSettingsServiceServer
	cfg Config

	// stopping is closed by Services.Shutdown to end every Watch stream.
	stopping chan struct{}

	// The newest snapshot built so far, wrapped as the message Watch sends.
	// Building one decodes the stored document and renders its JSON; when a
	// change wakes 100 watchers, the first builds it and the other 99 share
	// it. The message is never modified after it is cached, so concurrent
	// Sends may marshal it. (Each stream still runs its own proto marshal
	// of the shared message: about a microsecond for a few KB, negligible
	// next to the write syscall per connection; sharing the encoded bytes
	// would need grpc's experimental PreparedMsg, which is tied to one
	// stream's codec and compressor.)
	mu     sync.Mutex
	cached *mcsimv1.WatchResponse
}

func newSettingsServer(cfg Config) *settingsServer {
	return &settingsServer{cfg: cfg, stopping: make(chan struct{})}
}

// Get returns the current snapshot.
func (s *settingsServer) Get(ctx context.Context, _ *mcsimv1.GetRequest) (*mcsimv1.GetResponse, error) {
	snap, err := s.snapshot(s.cfg.Store.State())
	if err != nil {
		return nil, err
	}
	return &mcsimv1.GetResponse{Snapshot: snap}, nil
}

// Watch sends the current snapshot, then the newest one after every change.
// It only ever sends a snapshot whose revision is above the last one sent,
// and always the newest the store has when the watcher is ready for it: a
// watcher that was slow to read skips revisions instead of falling behind.
func (s *settingsServer) Watch(req *mcsimv1.WatchRequest, stream grpc.ServerStreamingServer[mcsimv1.WatchResponse]) error {
	ctx := stream.Context()
	log := s.cfg.Logger.With().Str("watcher", req.GetNodeId()).Logger()
	log.Debug().Msg("watch opened")
	defer log.Debug().Msg("watch closed")

	sent := false
	var last uint64
	for {
		st, changed := s.cfg.Store.Latest()
		if !sent || st.Revision > last {
			msg, err := s.watchResponse(st)
			if err != nil {
				return err
			}
			// The cache may hold a newer revision than st (another watcher
			// built it meanwhile); it is just as whole and newer, so send
			// it. It is never older: the cache returns the newer of the two.
			if err := stream.Send(msg); err != nil {
				return err
			}
			sent, last = true, msg.GetSnapshot().GetRevision()
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.stopping:
			return status.Error(codes.Unavailable, "settings service is shutting down; reconnect")
		}
	}
}

// snapshot returns the snapshot of st, or a newer cached one.
func (s *settingsServer) snapshot(st store.State) (*mcsimv1.Snapshot, error) {
	msg, err := s.watchResponse(st)
	return msg.GetSnapshot(), err
}

// watchResponse returns the message carrying the snapshot of st, or a newer
// cached one. Built at most once per revision.
func (s *settingsServer) watchResponse(st store.State) (*mcsimv1.WatchResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cached != nil && s.cached.GetSnapshot().GetRevision() >= st.Revision {
		return s.cached, nil
	}
	snap, err := buildSnapshot(st, s.cfg.WAID)
	if err != nil {
		s.cfg.Logger.Error().Err(err).Uint64("revision", st.Revision).Msg("stored settings do not decode")
		return nil, status.Errorf(codes.Internal, "settings at revision %d: %v", st.Revision, err)
	}
	s.cached = &mcsimv1.WatchResponse{Snapshot: snap}
	return s.cached, nil
}

// buildSnapshot renders one store state as the wire snapshot.
func buildSnapshot(st store.State, waID string) (*mcsimv1.Snapshot, error) {
	// Decode gives the defaults for a store that was never written.
	app, err := settings.Decode(st.Application, waID)
	if err != nil {
		return nil, err
	}
	return &mcsimv1.Snapshot{
		Revision:                 st.Revision,
		HeartbeatIntervalSeconds: int64(app.HeartbeatInterval().Seconds()),
		UnhealthyIntervalSeconds: int64(app.UnhealthyInterval().Seconds()),
		Shards:                   int32(st.Shards),
		RestartRequired:          app.RestartRequired(),
		ApplicationJson:          string(app.JSON()),
	}, nil
}
