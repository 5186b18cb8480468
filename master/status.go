package master

import (
	"context"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/mcsim/mcsim/master/failover"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings"
)

// Register serves MasterService and the standard gRPC health service on s.
func (n *Node) Register(s *grpc.Server) {
	mcsimv1.RegisterMasterServiceServer(s, statusServer{n: n})
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	h.SetServingStatus(mcsimv1.MasterService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, h)
}

type statusServer struct {
	mcsimv1.UnimplementedMasterServiceServer
	n *Node
}

// Status asks the loop for its state, so the answer is what the loop
// believes at that moment.
func (s statusServer) Status(ctx context.Context, _ *mcsimv1.MasterServiceStatusRequest) (*mcsimv1.MasterServiceStatusResponse, error) {
	q := statusQuery{reply: make(chan *mcsimv1.MasterServiceStatusResponse, 1)}
	select {
	case s.n.events <- q:
	case <-s.n.done:
		return nil, status.Error(codes.Unavailable, "master is stopping")
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	select {
	case r := <-q.reply:
		return r, nil
	case <-s.n.done:
		return nil, status.Error(codes.Unavailable, "master is stopping")
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// Status returns the loop's state; for in-process callers.
func (n *Node) Status(ctx context.Context) (*mcsimv1.MasterServiceStatusResponse, error) {
	return statusServer{n: n}.Status(ctx, nil)
}

func (n *Node) status() *mcsimv1.MasterServiceStatusResponse {
	r := &mcsimv1.MasterServiceStatusResponse{
		MasterId:   n.cfg.ID,
		Role:       mcsimv1.MasterRole_MASTER_ROLE_SECONDARY,
		LeaseEpoch: n.mc.Lease().Epoch(),
		Pid:        int64(n.cfg.PID),
	}
	if n.snap != nil && n.started != nil {
		r.PendingRestart = settings.PendingRestart(n.started, n.snap.GetRestartRequired())
	}
	if core := n.mc.Core(); core != nil && n.mc.Lease().Held(n.clk.Now()) {
		r.Role = mcsimv1.MasterRole_MASTER_ROLE_PRIMARY
		r.ShardMap = shardMapToProto(core.ShardMap(), n.peers)
		r.UnassignedShards = n.unassignedShards(r.ShardMap)
		for _, c := range core.Coreapps() {
			if c.Healthy {
				r.HealthyCoreapps = append(r.HealthyCoreapps, c.ID)
			} else {
				r.UnhealthyCoreapps = append(r.UnhealthyCoreapps, c.ID)
			}
		}
	}
	return r
}

// unassignedShard is what the primary remembers of a shard without owner.
type unassignedShard struct {
	since     time.Time
	noStandby bool
}

// The reasons of MasterServiceStatusResponse.unassigned_shards.
const (
	ReasonNoStandby     = "no healthy standby"
	ReasonBeingAssigned = "being assigned"
)

// unassignedShards lists the shards of m without an owner, lowest first.
func (n *Node) unassignedShards(m *mcsimv1.ShardMap) []*mcsimv1.UnassignedShard {
	var out []*mcsimv1.UnassignedShard
	for _, a := range m.GetAssignments() {
		if a.GetCoreappId() != "" {
			continue
		}
		u := n.unassigned[int(a.GetShard())]
		us := &mcsimv1.UnassignedShard{Shard: a.GetShard(), Reason: ReasonBeingAssigned}
		if !u.since.IsZero() {
			us.SinceUnixMs = u.since.UnixMilli()
		}
		if u.noStandby {
			us.Reason = ReasonNoStandby
		}
		out = append(out, us)
	}
	slices.SortFunc(out, func(a, b *mcsimv1.UnassignedShard) int { return int(a.GetShard() - b.GetShard()) })
	return out
}

// shardMapToProto converts the core's map for the store, with each owner's
// gRPC address from peers (see ShardAssignment.coreapp_address).
func shardMapToProto(m failover.ShardMap, peers map[string]*peer) *mcsimv1.ShardMap {
	p := &mcsimv1.ShardMap{MaxEpoch: m.MaxEpoch, Shards: int32(len(m.Assignments))}
	for _, a := range m.Assignments {
		pa := &mcsimv1.ShardAssignment{Shard: int32(a.Shard), CoreappId: a.Coreapp, Epoch: a.Epoch}
		if pr := peers[a.Coreapp]; a.Coreapp != "" && pr != nil {
			pa.CoreappAddress = pr.addr
		}
		p.Assignments = append(p.Assignments, pa)
	}
	return p
}

// shardMapFromProto converts the stored map; a never-written map (no
// assignments) becomes an empty map the core fills with the configured
// shard count.
func shardMapFromProto(p *mcsimv1.ShardMap) failover.ShardMap {
	m := failover.ShardMap{MaxEpoch: p.GetMaxEpoch()}
	for _, a := range p.GetAssignments() {
		m.Assignments = append(m.Assignments, failover.Assignment{Shard: int(a.GetShard()), Coreapp: a.GetCoreappId(), Epoch: a.GetEpoch()})
	}
	return m
}
