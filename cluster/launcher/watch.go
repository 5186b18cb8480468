package launcher

import (
	"context"
	"fmt"
	"time"

	"github.com/mcsim/mcsim/health"
)

// watch feeds the emitter until ctx ends: the gateway log, the store's
// lease decisions and process exits every PollInterval (all in this
// process, so cheap), /v1/health every HealthInterval (a Status call to
// every node).
func (c *cluster) watch(ctx context.Context) {
	t := time.NewTicker(c.cfg.PollInterval)
	defer t.Stop()
	lastErr := ""
	var lastHealth time.Time
	for {
		c.drainGateway()
		c.drainLeases()
		c.events.pollExits(c.sup.Procs())
		if time.Since(lastHealth) < c.cfg.HealthInterval {
			c.events.render()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			continue
		}
		lastHealth = time.Now()
		entries, lease, err := c.health(ctx)
		if ctx.Err() != nil {
			return
		}
		// A failing health endpoint is reported once per distinct error,
		// not every 250 ms.
		switch {
		case err != nil && err.Error() != lastErr:
			lastErr = err.Error()
			c.events.health(nil, err)
		case err == nil:
			lastErr = ""
			c.events.health(entries, nil)
			c.events.leaseWait(entries, lease)
		}
		c.events.render()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// drainLeases shows the store's lease decisions not yet shown.
func (c *cluster) drainLeases() {
	if evs := c.leases.since(c.nextLease); len(evs) > 0 {
		c.events.lease(evs)
		c.nextLease += len(evs)
	}
}

// drainGateway shows the gateway events not yet shown.
func (c *cluster) drainGateway() {
	if evs := c.gw.Log(max(c.nextSeq, 1)); len(evs) > 0 {
		c.events.gateway(evs)
		c.nextSeq = evs[len(evs)-1].GetSeq() + 1
	}
}

func (c *cluster) health(ctx context.Context) (map[string]health.Entry, *health.Lease, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	b, err := c.api.Do(ctx, "GET", "/v1/health", nil)
	if err != nil {
		return nil, nil, err
	}
	entries, err := health.Decode(b)
	if err != nil {
		return nil, nil, fmt.Errorf("GET /v1/health: decoding %q: %w", b, err)
	}
	lease, err := health.DecodeLease(b)
	if err != nil {
		return nil, nil, fmt.Errorf("GET /v1/health: decoding %q: %w", b, err)
	}
	return entries, lease, nil
}
