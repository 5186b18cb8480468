package faultnet

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"time"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Table is the fault table of the whole cluster. Every node is handed the
// same table and applies only the links whose From is itself.
type Table struct {
	// Links are the faulted links; a link not listed is healthy.
	Links []Link
	// Book maps every node id to the addresses (host:port) it listens on,
	// gRPC and gossip: how a node knows whom a dialed address belongs to.
	Book map[string][]string
	// Seed seeds the node's jitter and loss choices.
	Seed int64
}

// Link is a fault on everything From sends to To.
type Link struct {
	From, To string
	// Cut: nothing From sends reaches To until the link heals. Streams
	// hold their bytes, datagrams are dropped, new connections wait.
	Cut bool
	// Latency is added to everything sent, give or take up to Jitter
	// (uniformly). Streams stay in order.
	Latency, Jitter time.Duration
	// LossPercent (0 to 100) of datagrams are dropped; the same share of
	// a stream's transmissions are lost and retransmitted after a timeout,
	// each retransmission judged under the table in force at its time.
	LossPercent float64
}

// maxID is the longest node id a preamble can carry (one length byte).
const maxID = 255

// Validate reports every problem with the table, each naming its field as
// the proto does (links[2].loss_percent), with its value.
func (t Table) Validate() error {
	var errs []error
	seen := make(map[[2]string]int, len(t.Links))
	for i, l := range t.Links {
		f := fmt.Sprintf("links[%d]", i)
		if l.From == "" {
			errs = append(errs, fmt.Errorf("%s.from: must not be empty", f))
		}
		if l.To == "" {
			errs = append(errs, fmt.Errorf("%s.to: must not be empty", f))
		}
		if l.From != "" && l.From == l.To {
			errs = append(errs, fmt.Errorf("%s.to: %q is the same node as from", f, l.To))
		}
		if j, dup := seen[[2]string{l.From, l.To}]; dup {
			errs = append(errs, fmt.Errorf("%s: %s→%s is already links[%d]", f, l.From, l.To, j))
		} else {
			seen[[2]string{l.From, l.To}] = i
		}
		if l.Latency < 0 {
			errs = append(errs, fmt.Errorf("%s.latency_us: %v is negative", f, l.Latency))
		}
		if l.Jitter < 0 {
			errs = append(errs, fmt.Errorf("%s.jitter_us: %v is negative", f, l.Jitter))
		}
		// A jitter above the latency would ask for bytes delivered before
		// they were sent; clamping at zero would skew the distribution the
		// scenario asked for, so it is refused instead.
		if l.Jitter > l.Latency && l.Latency >= 0 {
			errs = append(errs, fmt.Errorf("%s.jitter_us: %v is more than latency_us %v", f, l.Jitter, l.Latency))
		}
		if math.IsNaN(l.LossPercent) || l.LossPercent < 0 || l.LossPercent > 100 {
			errs = append(errs, fmt.Errorf("%s.loss_percent: %v outside 0..100", f, l.LossPercent))
		}
	}
	owner := make(map[string]string)
	for _, id := range sortedKeys(t.Book) {
		f := fmt.Sprintf("book[%q]", id)
		if id == "" {
			errs = append(errs, fmt.Errorf("%s: node id must not be empty", f))
		}
		if len(id) > maxID {
			errs = append(errs, fmt.Errorf("%s: node id is %d bytes, at most %d", f, len(id), maxID))
		}
		for j, a := range t.Book[id] {
			if _, _, err := net.SplitHostPort(a); err != nil {
				errs = append(errs, fmt.Errorf("%s.addresses[%d]: %q is not host:port", f, j, a))
				continue
			}
			for _, k := range addrKeys(a) {
				if o, taken := owner[k]; taken && o != id {
					errs = append(errs, fmt.Errorf("%s.addresses[%d]: %s is also node %q's", f, j, a, o))
					break
				}
				owner[k] = id
			}
		}
	}
	return errors.Join(errs...)
}

// addrKeys are the strings an address is found under: as written, and for
// an IP address also in canonical form (so [::ffff:127.0.0.1]:80 and
// 127.0.0.1:80 are one address).
func addrKeys(a string) []string {
	ap, err := netip.ParseAddrPort(a)
	if err != nil {
		return []string{a}
	}
	c := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	if c == a {
		return []string{a}
	}
	return []string{a, c}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// FromProto converts the control API's request to a Table and validates
// it. The clock rate is not part of the table: the caller hands it to the
// node's clock.
func FromProto(req *mcsimv1.SetFaultsRequest) (Table, error) {
	var errs []error
	t := Table{Seed: req.GetSeed()}
	// Microseconds beyond this overflow a time.Duration.
	const maxUs = math.MaxInt64 / int64(time.Microsecond)
	for i, pl := range req.GetLinks() {
		if pl.GetLatencyUs() > maxUs {
			errs = append(errs, fmt.Errorf("links[%d].latency_us: %d is too large", i, pl.GetLatencyUs()))
		}
		if pl.GetJitterUs() > maxUs {
			errs = append(errs, fmt.Errorf("links[%d].jitter_us: %d is too large", i, pl.GetJitterUs()))
		}
		t.Links = append(t.Links, Link{
			From:        pl.GetFrom(),
			To:          pl.GetTo(),
			Cut:         pl.GetCut(),
			Latency:     time.Duration(pl.GetLatencyUs()) * time.Microsecond,
			Jitter:      time.Duration(pl.GetJitterUs()) * time.Microsecond,
			LossPercent: pl.GetLossPercent(),
		})
	}
	if len(req.GetBook()) > 0 {
		t.Book = make(map[string][]string, len(req.GetBook()))
		for id, na := range req.GetBook() {
			t.Book[id] = slices.Clone(na.GetAddresses())
		}
	}
	if len(errs) > 0 {
		return Table{}, errors.Join(errs...)
	}
	if err := t.Validate(); err != nil {
		return Table{}, err
	}
	return t, nil
}

// clone copies the table deeply, so a caller's later changes to its slices
// cannot reach the table in force.
func (t Table) clone() Table {
	c := Table{Links: slices.Clone(t.Links), Seed: t.Seed}
	if t.Book != nil {
		c.Book = make(map[string][]string, len(t.Book))
		for id, as := range t.Book {
			c.Book[id] = slices.Clone(as)
		}
	}
	return c
}
