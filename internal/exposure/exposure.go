// Package exposure holds the rules for a node whose addresses leave this
// machine: what loopback tolerates (the public default admin password, an
// unencrypted gossip ring, announcing a wildcard address) is refused as soon
// as one address a node binds or announces is not loopback. Check is pure:
// the commands (settings serve, up, master, coreapp, gateway) call it with
// their flags before anything listens, so a refusal is a usage error that
// changes nothing.
package exposure

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/mcsim/mcsim/internal/loopback"
)

// Addr is one address a node listens on, named by its flag.
type Addr struct {
	// Flag is the command-line flag it comes from ("--grpc").
	Flag string
	// Value is host:port; a wildcard host ("", 0.0.0.0, ::) means every
	// interface, which only --advertise can name to others.
	Value string
	// Announced says the node tells others this address (in gossip or its
	// ready line), so a wildcard host there needs --advertise. The
	// settings service's HTTP API is only ever given to people.
	Announced bool
}

// Node is what the rules look at.
type Node struct {
	// Addrs are the node's listen addresses.
	Addrs []Addr
	// Advertise is the --advertise host ("": none): what the node
	// announces instead of the host it binds.
	Advertise string
	// Gossip says the node is in the gossip ring (every node but the
	// gateway); ClusterKey is the passphrase that encrypts it.
	Gossip     bool
	ClusterKey string
	// DefaultPassword says the node serves the settings API with the
	// public default admin password (settings serve and up only).
	DefaultPassword bool
}

// Rule texts end with the way out; the flags they name are the ones a
// person would change.
const (
	keyFix      = "set --cluster-key or MCSIM_CLUSTER_KEY (the same on every node)"
	passwordFix = "set --admin-password or MCSIM_ADMIN_PASSWORD"
)

// OffLoopback returns the first listen address that is not loopback (a
// wildcard host counts: it listens on every interface), else the
// --advertise host when it is not loopback, or ok false when all are. An
// address that does not parse is left to the flag's own check.
func (n Node) OffLoopback() (Addr, bool) {
	for _, a := range n.Addrs {
		if h, _, err := net.SplitHostPort(a.Value); err == nil && !loopback.Host(h) {
			return a, true
		}
	}
	if n.Advertise != "" && !loopback.Host(n.Advertise) {
		return Addr{Flag: "--advertise", Value: n.Advertise}, true
	}
	return Addr{}, false
}

// Check reports every rule n breaks, each naming the flag to change:
//
//   - --advertise must be a host (IP or name), not host:port;
//   - an announced address on every interface needs --advertise (the
//     wildcard means nothing to another host);
//   - off loopback, gossip must be encrypted (--cluster-key);
//   - off loopback, the default admin password is refused.
func Check(n Node) error {
	var errs []error
	if n.Advertise != "" {
		if err := checkHost(n.Advertise); err != nil {
			errs = append(errs, err)
		}
	}
	if n.Advertise == "" {
		for _, a := range n.Addrs {
			if host, _, err := net.SplitHostPort(a.Value); err == nil && a.Announced && wildcard(host) {
				errs = append(errs, fmt.Errorf("--advertise: required when %s %q listens on every interface: give the address other hosts reach this node at (for example --advertise 10.0.0.5)", a.Flag, a.Value))
				break
			}
		}
	}
	off, isOff := n.OffLoopback()
	if !isOff {
		return errors.Join(errs...)
	}
	why := fmt.Sprintf("%s %q is not loopback", off.Flag, off.Value)
	if n.Gossip && n.ClusterKey == "" {
		errs = append(errs, fmt.Errorf("--cluster-key: required off loopback (%s): gossip would be unencrypted and open to anyone on the network; %s", why, keyFix))
	}
	if n.DefaultPassword {
		errs = append(errs, fmt.Errorf("--admin-password: the default password is allowed only on loopback (%s); %s", why, passwordFix))
	}
	return errors.Join(errs...)
}

// checkHost accepts an IP address or a DNS name, not host:port.
func checkHost(h string) error {
	if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
		return nil
	}
	if _, _, err := net.SplitHostPort(h); err == nil {
		return fmt.Errorf("--advertise: a host without a port (the ports are those of --grpc, --gossip, --metrics), got %q", h)
	}
	if wildcard(h) || strings.ContainsAny(h, " /:@") || strings.HasPrefix(h, "-") || strings.HasSuffix(h, "-") {
		return fmt.Errorf("--advertise: must be an IP address or a host name other hosts can reach, got %q", h)
	}
	return nil
}

// wildcard reports whether a bind host means every interface.
func wildcard(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}
