package launcher

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcsim/mcsim/cluster/procs"
	"github.com/mcsim/mcsim/internal/faultnet"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// The cluster's fault table (partitions, delays, loss, clock rates), kept
// here and given whole to every node: the settings service's and the
// gateway's layers directly (they run in this process), every master and
// coreapp through its FaultService. The control connections say nothing
// about who they are, so the fault layers never fault them.

// faultPushTimeout bounds one node's answer to a new table; a node that
// does not answer in time (paused) is told again when it resumes.
const faultPushTimeout = 2 * time.Second

// faultTable is what SetFaults last set.
type faultTable struct {
	mu    sync.Mutex
	links []*mcsimv1.FaultLink
	rates map[string]float64
	seed  int64
	set   bool
	// conns are the control connections, by gRPC address (a restarted
	// node listens elsewhere and gets a new one).
	conns map[string]*grpc.ClientConn
	// settings and gateway are the layers of the nodes in this process.
	settings, gateway *faultnet.Layer
}

// SetFaults replaces the cluster's fault table: links faulted (none: every
// link healthy) and clock rates by node id (absent: real time). Every node
// gets it at once, except paused ones, which answer nothing: give it to
// them with PushFaults when they resume. It returns once every node has it.
func (c *cluster) SetFaults(ctx context.Context, links []*mcsimv1.FaultLink, rates map[string]float64, seed int64) error {
	ft := &c.faults
	ft.mu.Lock()
	ft.links, ft.rates, ft.seed, ft.set = links, maps.Clone(rates), seed, true
	ft.mu.Unlock()
	return c.faultsToAll(ctx)
}

// PushFaults gives the current table again to the named nodes (after a
// resume), and to the nodes in this process.
func (c *cluster) PushFaults(ctx context.Context, ids ...string) error {
	if !c.faultsSet() {
		return nil
	}
	return c.pushFaults(ctx, ids)
}

func (c *cluster) faultsSet() bool {
	c.faults.mu.Lock()
	defer c.faults.mu.Unlock()
	return c.faults.set
}

// faultsAfterStart tells every node about a node that (re)started: it
// listens on new addresses, which the book must name, and it starts with
// no faults.
func (c *cluster) faultsAfterStart(ctx context.Context) error {
	if !c.faultsSet() {
		return nil
	}
	return c.faultsToAll(ctx)
}

// faultsToAll gives the table to every running node that is not paused.
func (c *cluster) faultsToAll(ctx context.Context) error {
	var ids []string
	for _, p := range c.sup.Procs() {
		if !p.Exited() && !p.Paused() {
			ids = append(ids, p.Name())
		}
	}
	return c.pushFaults(ctx, ids)
}

// pushFaults sets the in-process layers and sends the table to ids.
func (c *cluster) pushFaults(ctx context.Context, ids []string) error {
	ft := &c.faults
	ft.mu.Lock()
	req := &mcsimv1.SetFaultsRequest{Links: ft.links, Seed: ft.seed, Book: c.book()}
	rates := maps.Clone(ft.rates)
	layers := map[string]*faultnet.Layer{"settings": ft.settings, "gateway": ft.gateway}
	ft.mu.Unlock()

	var errs []error
	table, tableErr := faultnet.FromProto(req)
	for _, id := range slices.Sorted(maps.Keys(layers)) {
		if l := layers[id]; l != nil {
			err := tableErr
			if err == nil {
				err = l.Set(table)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", id, err))
			}
		}
	}
	c.closeStaleControl()
	results := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		p := c.sup.Lookup(id)
		if p == nil || p.Exited() {
			continue
		}
		one := &mcsimv1.SetFaultsRequest{Links: req.Links, Seed: req.Seed, Book: req.Book, ClockRate: rates[id]}
		conn, err := c.controlConn(p)
		if err != nil {
			results[i] = fmt.Errorf("%s: %w", id, err)
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, faultPushTimeout)
			defer cancel()
			if _, err := mcsimv1.NewFaultServiceClient(conn).SetFaults(cctx, one); err != nil {
				results[i] = fmt.Errorf("%s: %w", id, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, results...)...)
}

// book is every node's addresses by id. Callers hold faults.mu.
func (c *cluster) book() map[string]*mcsimv1.NodeAddresses {
	book := map[string]*mcsimv1.NodeAddresses{
		"settings": {Addresses: []string{c.addrs.GRPC, c.addrs.Gossip}},
		"gateway":  {Addresses: []string{c.addrs.Gateway}},
	}
	for _, p := range c.sup.Procs() {
		// A node that exited keeps no address: the OS may give its ports
		// to another node, and one address named twice is refused.
		if p.Exited() {
			continue
		}
		r := p.Ready()
		var as []string
		for _, a := range []string{r.GRPC, r.Gossip} {
			if a != "" {
				as = append(as, a)
			}
		}
		book[p.Name()] = &mcsimv1.NodeAddresses{Addresses: as}
	}
	return book
}

// controlConn is the control connection to a node's gRPC address: plain
// gRPC, no fault layer, so no preamble and never faulted.
func (c *cluster) controlConn(p *procs.Proc) (*grpc.ClientConn, error) {
	addr := p.Ready().GRPC
	ft := &c.faults
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if conn := ft.conns[addr]; conn != nil {
		return conn, nil
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	if ft.conns == nil {
		ft.conns = map[string]*grpc.ClientConn{}
	}
	ft.conns[addr] = conn
	return conn, nil
}

// closeStaleControl closes the control connections to addresses no
// running node listens on (its node exited, or restarted elsewhere).
func (c *cluster) closeStaleControl() {
	live := map[string]bool{}
	for _, p := range c.sup.Procs() {
		if !p.Exited() {
			live[p.Ready().GRPC] = true
		}
	}
	ft := &c.faults
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for a, conn := range ft.conns {
		if !live[a] {
			_ = conn.Close()
			delete(ft.conns, a)
		}
	}
}

// closeControl closes the control connections (Stop).
func (c *cluster) closeControl() {
	ft := &c.faults
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for _, conn := range ft.conns {
		_ = conn.Close()
	}
	ft.conns = nil
}

// healLocal heals the layers in this process (Stop).
func (c *cluster) healLocal() {
	for _, l := range []*faultnet.Layer{c.faults.settings, c.faults.gateway} {
		if l != nil {
			_ = l.Set(faultnet.Table{})
		}
	}
}
