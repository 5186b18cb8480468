package membership

import (
	"context"
	"net"
	"slices"
	"time"
)

// rejoinLoop retries, every interval, the seeds and known peers that are not
// alive. memberlist stops probing and gossiping to a node once it has been
// dead for GossipToTheDeadTime, so without this two sides of a healed
// partition would never talk again. One goroutine, one Join at a time: a
// slow or unreachable address delays the next attempt, never the node.
func (m *Member) rejoinLoop() {
	defer close(m.loopDone)
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		for _, addr := range m.rejoinTargets() {
			select {
			case <-m.stop:
				return
			default:
			}
			// Join does a push/pull exchange. If the peer has us as dead
			// (or we it), each side refutes with a higher incarnation and
			// the next round's exchange makes both alive again.
			if n, err := m.ml.Join([]string{addr}); err != nil {
				m.log.Debug().Err(err).Str("gossip_addr", addr).Msg("rejoin attempt failed")
			} else if n > 0 {
				m.log.Debug().Str("gossip_addr", addr).Msg("rejoin attempt reached peer")
			}
		}
	}
}

// rejoinTargets lists, sorted and without duplicates, the addresses worth a
// Join: known peers that are not alive and seeds where no alive member
// lives, never our own address.
func (m *Member) rejoinTargets() []string {
	m.mu.Lock()
	aliveAddrs := make(map[string]bool, len(m.alive))
	for _, n := range m.alive {
		aliveAddrs[n.GossipAddr] = true
	}
	var out []string
	for id, addr := range m.known {
		if _, ok := m.alive[id]; !ok && !aliveAddrs[addr] {
			out = append(out, addr)
		}
	}
	m.mu.Unlock()
	aliveAddrs[m.local.GossipAddr] = true

	for _, seed := range m.seeds {
		if !m.seedAlive(seed, aliveAddrs) {
			out = append(out, seed)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// seedAlive reports whether a live member (or this node) is at seed. Seeds
// given by host name are resolved, with a short timeout so that a broken
// resolver cannot stall the loop; on failure the seed counts as not alive
// and is simply retried.
func (m *Member) seedAlive(seed string, aliveAddrs map[string]bool) bool {
	if aliveAddrs[seed] {
		return true
	}
	host, port, err := net.SplitHostPort(seed)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		return aliveAddrs[net.JoinHostPort(ip.String(), port)]
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.interval)
	defer cancel()
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if aliveAddrs[net.JoinHostPort(ip, port)] {
			return true
		}
	}
	return false
}
