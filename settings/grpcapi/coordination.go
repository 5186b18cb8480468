package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mcsim/mcsim/coord"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/store"
	"github.com/mcsim/mcsim/shard"
)

// coordinationServer serves the master lease, the shard map and the pending
// status callbacks (callback_persist). The rules (who may take the lease,
// which writes are fenced off) live in the store; this layer checks the
// requests and maps the store's answers to codes.
type coordinationServer struct {
	mcsimv1.UnimplementedCoordinationServiceServer
	cfg Config
}

// AcquireLease takes or renews the lease and always reports the holder.
func (c *coordinationServer) AcquireLease(ctx context.Context, req *mcsimv1.AcquireLeaseRequest) (*mcsimv1.AcquireLeaseResponse, error) {
	if req.GetMasterId() == "" {
		return nil, invalid("master_id", "a non-empty master id", req.GetMasterId())
	}
	if req.GetTtlMs() <= 0 {
		return nil, invalid("ttl_ms", "a lease duration in milliseconds > 0", req.GetTtlMs())
	}
	res, err := c.cfg.Store.AcquireLease(req.GetMasterId(), req.GetIncarnation(), req.GetAddress(), time.Duration(req.GetTtlMs())*time.Millisecond, c.cfg.Now())
	if err != nil {
		return nil, c.internal("acquire lease", err)
	}
	l := res.Lease
	// The store's clock, which Expires is on: a store shared by several
	// processes (PostgreSQL) judges by the database's clock, not ours.
	now := res.Now
	if now.IsZero() {
		now = c.cfg.Now()
	}
	if res.Granted {
		c.cfg.Logger.Debug().Str("master", l.Holder).Uint64("lease_epoch", l.Epoch).Msg("lease granted")
		if c.cfg.OnLease != nil {
			c.cfg.OnLease(LeaseEvent{At: now, Master: l.Holder, Epoch: l.Epoch, Expires: l.Expires, Renewal: res.Renewal})
		}
	}
	remaining := max(l.Expires.Sub(now), 0)
	if l.Holder == "" {
		remaining = 0
	}
	return &mcsimv1.AcquireLeaseResponse{
		Granted:       res.Granted,
		Holder:        l.Holder,
		LeaseEpoch:    l.Epoch,
		RemainingMs:   remaining.Milliseconds(),
		HolderAddress: l.Address,
	}, nil
}

// ReleaseLease gives the lease up if the caller holds it at that epoch.
func (c *coordinationServer) ReleaseLease(ctx context.Context, req *mcsimv1.ReleaseLeaseRequest) (*mcsimv1.ReleaseLeaseResponse, error) {
	if req.GetMasterId() == "" {
		return nil, invalid("master_id", "a non-empty master id", req.GetMasterId())
	}
	ok, err := c.cfg.Store.ReleaseLease(req.GetMasterId(), req.GetLeaseEpoch())
	if err != nil {
		return nil, c.internal("release lease", err)
	}
	if ok {
		c.cfg.Logger.Info().Str("master", req.GetMasterId()).Uint64("lease_epoch", req.GetLeaseEpoch()).Msg("lease released")
		if c.cfg.OnLease != nil {
			c.cfg.OnLease(LeaseEvent{At: c.cfg.Now(), Master: req.GetMasterId(), Epoch: req.GetLeaseEpoch(), Released: true})
		}
	}
	return &mcsimv1.ReleaseLeaseResponse{Released: ok}, nil
}

// GetShardMap returns the stored shard map (empty, version 0, until the
// first write).
func (c *coordinationServer) GetShardMap(ctx context.Context, _ *mcsimv1.GetShardMapRequest) (*mcsimv1.GetShardMapResponse, error) {
	m, err := c.cfg.Store.ShardMap()
	if err != nil {
		return nil, c.internal("read shard map", err)
	}
	if m == nil {
		m = &mcsimv1.ShardMap{}
	}
	return &mcsimv1.GetShardMapResponse{ShardMap: m}, nil
}

// WriteShardMap replaces the shard map if the caller holds the lease at
// lease_epoch.
func (c *coordinationServer) WriteShardMap(ctx context.Context, req *mcsimv1.WriteShardMapRequest) (*mcsimv1.WriteShardMapResponse, error) {
	if req.GetMasterId() == "" {
		return nil, invalid("master_id", "a non-empty master id", req.GetMasterId())
	}
	if err := validateShardMap(req.GetShardMap()); err != nil {
		return nil, err
	}
	v, err := c.cfg.Store.WriteShardMap(req.GetMasterId(), req.GetLeaseEpoch(), req.GetShardMap(), c.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotLeaseHolder), errors.Is(err, store.ErrEpochRegression):
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	case err != nil:
		return nil, c.internal("write shard map", err)
	}
	c.cfg.Logger.Info().Str("master", req.GetMasterId()).Uint64("lease_epoch", req.GetLeaseEpoch()).
		Uint64("version", v).Uint64("max_epoch", req.GetShardMap().GetMaxEpoch()).Msg("shard map written")
	return &mcsimv1.WriteShardMapResponse{Version: v}, nil
}

// validateShardMap checks a whole map: a valid shard count, exactly one
// assignment per shard in shard order, and no epoch above max_epoch (so
// max_epoch stays a safe floor for the next assignment).
func validateShardMap(m *mcsimv1.ShardMap) error {
	if m == nil {
		return invalid("shard_map", "a shard map", nil)
	}
	if !shard.ValidCount(int(m.GetShards())) {
		return invalid("shard_map.shards", fmt.Sprintf("one of %v", shard.Counts()), m.GetShards())
	}
	if got := len(m.GetAssignments()); got != int(m.GetShards()) {
		return invalid("shard_map.assignments", fmt.Sprintf("one assignment per shard (%d)", m.GetShards()), fmt.Sprintf("%d assignments", got))
	}
	p, bad := shard.First(shard.CheckMap(int(m.GetShards()), m.GetMaxEpoch(), coord.Assignments(m)), shard.OutOfPlace, shard.AboveMaxEpoch)
	if !bad {
		return nil
	}
	i, a := p.Index, m.GetAssignments()[p.Index]
	if p.Fault == shard.OutOfPlace {
		return invalid(fmt.Sprintf("shard_map.assignments[%d].shard", i), fmt.Sprintf("shard %d (assignments in shard order 0..%d)", i, m.GetShards()-1), a.GetShard())
	}
	return invalid(fmt.Sprintf("shard_map.assignments[%d].epoch", i), fmt.Sprintf("<= max_epoch %d", m.GetMaxEpoch()), a.GetEpoch())
}

// invalid is an INVALID_ARGUMENT naming the field and what was expected.
func invalid(field, expected string, got any) error {
	return status.Errorf(codes.InvalidArgument, "%s: must be %s, got %v", field, expected, got)
}

// internal logs a store failure and hides its details from the caller.
func (c *coordinationServer) internal(op string, err error) error {
	c.cfg.Logger.Error().Err(err).Str("op", op).Msg("store failure")
	return status.Errorf(codes.Internal, "%s: store failure", op)
}

// PutCallbacks keeps pending status callbacks; it answers once they are
// committed (fsync'd), so a coreapp may then acknowledge the status.
func (c *coordinationServer) PutCallbacks(ctx context.Context, req *mcsimv1.PutCallbacksRequest) (*mcsimv1.PutCallbacksResponse, error) {
	for i, cb := range req.GetCallbacks() {
		if cb.GetId() == "" {
			return nil, invalid(fmt.Sprintf("callbacks[%d].id", i), `a non-empty id ("<message id>/<status>")`, `""`)
		}
		if cb.GetRecipientId() == "" {
			return nil, invalid(fmt.Sprintf("callbacks[%d].recipient_id", i), "a non-empty recipient (it places the callback in a shard)", `""`)
		}
	}
	if err := c.cfg.Store.PutCallbacks(req.GetCallbacks()); err != nil {
		return nil, c.internal("put callbacks", err)
	}
	return &mcsimv1.PutCallbacksResponse{}, nil
}

// DeleteCallbacks forgets delivered callbacks; unknown ids are ignored.
func (c *coordinationServer) DeleteCallbacks(ctx context.Context, req *mcsimv1.DeleteCallbacksRequest) (*mcsimv1.DeleteCallbacksResponse, error) {
	if err := c.cfg.Store.DeleteCallbacks(req.GetIds()); err != nil {
		return nil, c.internal("delete callbacks", err)
	}
	return &mcsimv1.DeleteCallbacksResponse{}, nil
}

// ListCallbacks returns the kept callbacks of one shard, oldest first.
func (c *coordinationServer) ListCallbacks(ctx context.Context, req *mcsimv1.ListCallbacksRequest) (*mcsimv1.ListCallbacksResponse, error) {
	n := int(req.GetShards())
	if !shard.ValidCount(n) {
		return nil, invalid("shards", fmt.Sprintf("one of %v", shard.Counts()), req.GetShards())
	}
	if s := req.GetShard(); s < 0 || int(s) >= n {
		return nil, invalid("shard", fmt.Sprintf("in [0, %d)", n), s)
	}
	cbs, err := c.cfg.Store.ListCallbacks(int(req.GetShard()), n)
	if err != nil {
		return nil, c.internal("list callbacks", err)
	}
	return &mcsimv1.ListCallbacksResponse{Callbacks: cbs}, nil
}
