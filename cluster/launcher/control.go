package launcher

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/mcsim/mcsim/cluster/procs"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/client"
	"github.com/mcsim/mcsim/settings/grpcapi"
)

// What a program driving a Cluster (the scenario runner) reads and does.
// The witnesses are the gateway's log and the store's lease record, both
// in this process and on this machine's clock.

// Addrs are where the cluster can be reached.
func (c *cluster) Addrs() Addrs { return c.addrs }

// API is a logged-in client of the settings service's HTTP API.
func (c *cluster) API() *client.Client { return c.api }

// DataDir is the cluster's data directory (logs in DataDir/logs).
func (c *cluster) DataDir() string { return c.cfg.DataDir }

// GatewayLog returns the gateway's events from seq on (1 is the first).
func (c *cluster) GatewayLog(seq uint64) []*mcsimv1.GatewayEvent { return c.gw.Log(max(seq, 1)) }

// LeasesSince returns the store's lease decisions from the i-th on (0:
// all), in time order: a poller keeps its count and copies only what is
// new.
func (c *cluster) LeasesSince(i int) []grpcapi.LeaseEvent { return c.leases.since(i) }

// Proc is the latest process of a node id, or nil.
func (c *cluster) Proc(id string) *procs.Proc { return c.sup.Lookup(id) }

// Restart starts a node again under its id (stopping it first if it still
// runs): a coreapp comes back as a standby, a master as a new incarnation.
// It comes back on the addresses it had (gRPC, gossip, metrics), as a
// restarted process on a host with a fixed configuration does: peers
// reach it on the connections they redial, and gossip takes the new
// incarnation at the same address at once, where a new address under the
// old name waits until the old one is declared dead (several seconds). If
// an address was taken meanwhile it starts on free ports instead.
func (c *cluster) Restart(ctx context.Context, id string) error {
	p := c.sup.Lookup(id)
	if p == nil {
		return fmt.Errorf("restart %s: no such node", id)
	}
	role, n, _ := strings.Cut(id, "-")
	num, err := strconv.Atoi(n)
	if err != nil || (role != "master" && role != "coreapp") {
		return fmt.Errorf("restart %s: not a master or coreapp", id)
	}
	spec, r := c.spec(role, num), p.Ready()
	if r.GRPC != "" && r.Gossip != "" && r.HTTP != "" {
		spec.Args = append(spec.Args, "--grpc", r.GRPC, "--gossip", r.Gossip, "--metrics", r.HTTP)
	}
	np, err := c.sup.RestartAs(ctx, p, spec)
	if err != nil && ctx.Err() == nil && p.Exited() && c.sup.Lookup(id) == p {
		// The old addresses could not be bound: free ports, then.
		np, err = c.sup.RestartAs(ctx, p, c.spec(role, num))
	}
	if err != nil {
		return fmt.Errorf("restart %s: %w", id, err)
	}
	c.events.nodeStarted(np)
	if err := c.faultsAfterStart(ctx); err != nil {
		return fmt.Errorf("restarted %s, but the fault table did not reach every node: %w", id, err)
	}
	return nil
}

// StartNode starts a new master or coreapp with the next free id.
func (c *cluster) StartNode(ctx context.Context, role string) (string, error) {
	next := 1
	for _, p := range c.sup.Procs() {
		if r, n, ok := strings.Cut(p.Name(), "-"); ok && r == role {
			if i, err := strconv.Atoi(n); err == nil && i >= next {
				next = i + 1
			}
		}
	}
	p, err := c.sup.Start(ctx, c.spec(role, next))
	if err != nil {
		return "", fmt.Errorf("start %s: %w", role, err)
	}
	c.events.nodeStarted(p)
	if err := c.faultsAfterStart(ctx); err != nil {
		return p.Name(), fmt.Errorf("started %s, but the fault table did not reach every node: %w", p.Name(), err)
	}
	return p.Name(), nil
}
