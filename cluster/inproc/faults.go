package inproc

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// Link is a set of a coreapp's connections that a fault can cut.
type Link int

const (
	// GatewayLink is the coreapp's connection to the gateway (its shard
	// sessions).
	GatewayLink Link = 1 << iota
	// MasterLink is the masters' connections to the coreapp (heartbeats,
	// assignments).
	MasterLink
)

// gate holds the traffic of a link while it is cut, in both directions, as
// a firewall dropping packets would: the connections stay open, nothing
// passes, and what was held flows once the cut heals (TCP would resend
// it). A paused process is seen the same way from outside.
type gate struct {
	mu    sync.Mutex
	cut   bool
	open  chan struct{} // closed while not cut
	conns map[*gatedConn]struct{}
}

func newGate() *gate {
	g := &gate{open: make(chan struct{}), conns: map[*gatedConn]struct{}{}}
	close(g.open)
	return g
}

// closeAll closes every connection through g, as the death of the process
// behind it would. A gRPC server's Stop cannot do it for a connection
// whose handshake is held by a cut: Stop would wait for it forever.
func (g *gate) closeAll() {
	g.mu.Lock()
	conns := make([]*gatedConn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (g *gate) set(cut bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case cut && !g.cut:
		g.open = make(chan struct{})
	case !cut && g.cut:
		close(g.open)
	}
	g.cut = cut
}

// wait returns once the link is not cut, or done is closed.
func (g *gate) wait(done <-chan struct{}) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	case <-done:
	}
}

// gatedListener passes every accepted connection through a gate.
type gatedListener struct {
	net.Listener
	g *gate
}

func (l gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	gc := &gatedConn{Conn: c, g: l.g, closed: make(chan struct{})}
	l.g.mu.Lock()
	l.g.conns[gc] = struct{}{}
	l.g.mu.Unlock()
	return gc, nil
}

// gatedConn neither delivers what it reads nor writes while its gate is
// cut. A read that was already waiting when the cut began holds its data
// until the cut heals.
type gatedConn struct {
	net.Conn
	g      *gate
	once   sync.Once
	closed chan struct{}
}

func (c *gatedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.g.wait(c.closed)
	return n, err
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.g.wait(c.closed)
	return c.Conn.Write(p)
}

func (c *gatedConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.g.mu.Lock()
		delete(c.g.conns, c)
		c.g.mu.Unlock()
	})
	return c.Conn.Close()
}

// CutCoreapp cuts the links of coreapp id until HealCoreapp: GatewayLink
// alone is a coreapp cut off from the gateway (iptables on the gateway's
// port), GatewayLink|MasterLink a full partition. Its process runs on: it
// notices the gateway's silence itself.
func (c *Cluster) CutCoreapp(id string, links Link) error {
	return c.setLinks(id, links, true)
}

// HealCoreapp ends every cut of coreapp id.
func (c *Cluster) HealCoreapp(id string) error {
	return c.setLinks(id, GatewayLink|MasterLink, false)
}

// FreezeCoreapp pauses coreapp id for d, as SIGSTOP then SIGCONT would seen
// from outside: for d nothing it sends leaves and nothing sent to it is
// read (heartbeats and pongs stop), then everything held flows. It returns
// at once. Unlike a stopped process, its own timers still run, so it
// notices the gateway's silence during the pause rather than after.
func (c *Cluster) FreezeCoreapp(id string, d time.Duration) error {
	if err := c.setLinks(id, GatewayLink|MasterLink, true); err != nil {
		return err
	}
	time.AfterFunc(d, func() { _ = c.HealCoreapp(id) })
	return nil
}

// CutMasterFromStore cuts master id's link to the settings service until
// HealMaster: its lease renewals, shard-map writes and settings watch
// hang, while it still reaches the coreapps. A primary so cut keeps acting
// until its lease runs out by its own clock (rule 3), while the store lets
// the lease lapse after the TTL by its own.
func (c *Cluster) CutMasterFromStore(id string) error { return c.setStoreLink(id, true) }

// HealMaster ends the cut of master id's link to the settings service.
func (c *Cluster) HealMaster(id string) error { return c.setStoreLink(id, false) }

func (c *Cluster) setStoreLink(id string, cut bool) error {
	c.mu.Lock()
	rm := c.masters[id]
	c.mu.Unlock()
	if rm == nil {
		return fmt.Errorf("inproc: no running master %q", id)
	}
	rm.storeGate.set(cut)
	return nil
}

func (c *Cluster) setLinks(id string, links Link, cut bool) error {
	c.mu.Lock()
	rc := c.coreapps[id]
	c.mu.Unlock()
	if rc == nil {
		return fmt.Errorf("inproc: no running coreapp %q", id)
	}
	if links&GatewayLink != 0 {
		rc.gwGate.set(cut)
	}
	if links&MasterLink != 0 {
		rc.inGate.set(cut)
	}
	return nil
}
