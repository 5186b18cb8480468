package launcher

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// A cluster restarted on the same data dir starts from the stored shard
// map: its owners are the previous run's coreapps, gone with that run (a
// coreapp restarted under the same id is a new process and a standby).
// The new primary fails each of their shards over, but this run's gateway
// never saw the old sessions, so the gateway log alone shows only a first
// connect. The launcher reads the stored map before any node starts and
// counts the first connect of such a shard as a failover from its stored
// owner (even to a coreapp of the same id), timed from the gateway's
// start: the gateway saw no session of it before.

// loadPreviousOwners reads the stored shard map from the settings
// service and hands its owners to the emitter. A failure only costs the
// failover lines of a restart: it is reported, not fatal.
func (c *cluster) loadPreviousOwners(ctx context.Context, since time.Time) {
	conn, err := grpc.NewClient(c.addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.log.Warn().Err(err).Msg("cannot read the stored shard map; failovers of a previous run's shards will not be shown")
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := mcsimv1.NewCoordinationServiceClient(conn).GetShardMap(ctx, &mcsimv1.GetShardMapRequest{})
	if err != nil {
		c.log.Warn().Err(err).Msg("cannot read the stored shard map; failovers of a previous run's shards will not be shown")
		return
	}
	c.events.previousOwners(resp.GetShardMap(), since)
}

// previousOwner is a shard's owner in a previous run's stored map.
type previousOwner struct {
	coreapp string
	since   time.Time // the gateway's start: when this run began to watch
}

// previousOwners records the stored map's owners as the shards' last
// owners, their sessions ended at since (the gateway's start).
func (e *emitter) previousOwners(m *mcsimv1.ShardMap, since time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var owners []string
	for _, a := range m.GetAssignments() {
		s := a.GetShard()
		if a.GetCoreappId() == "" || int(s) >= e.cfg.Shards {
			continue
		}
		e.previous[s] = previousOwner{coreapp: a.GetCoreappId(), since: since}
		owners = append(owners, fmt.Sprintf("%d → %s (epoch %d)", s, a.GetCoreappId(), a.GetEpoch()))
	}
	if len(owners) > 0 {
		e.noteLocked(since, "shards of a previous run (stored map): "+strings.Join(owners, ", "))
	}
}
