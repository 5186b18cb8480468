// Package service runs the whole settings service process: the bbolt store,
// the HTTP settings API (/v1/users/login, /v1/settings/application,
// /v1/health, /v1/account/shards, /metrics) with the front door
// (POST /v1/messages), the gRPC services (settings
// watch, master lease, shard map, health) and its membership in the gossip
// cluster, of which it is the seed (node id "settings"), started and stopped
// together. cmd/mcsim and the local cluster launcher call Run.
package service

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/internal/faultnet"
	"github.com/mcsim/mcsim/internal/loopback"
	"github.com/mcsim/mcsim/settings/grpcapi"
	"github.com/mcsim/mcsim/settings/store/pgstore"
)

// DefaultAdminPassword is the admin password used when none is given. It is
// public knowledge, so Validate allows it only on loopback listeners.
const DefaultAdminPassword = "secret"

// Config is the settings service's configuration.
type Config struct {
	// HTTPAddr is the host:port of the HTTP settings API. Port 0 picks a
	// free port (Run reports the actual address through ready).
	HTTPAddr string
	// GRPCAddr is the host:port of the gRPC services; port 0 as above.
	GRPCAddr string
	// DataDir holds settings.db. One service per data dir: a second one
	// fails at once. Used only when Store is "".
	DataDir string
	// Store is where the store lives: "" for the embedded bbolt store in
	// DataDir; a postgres:// or postgresql:// URL for a PostgreSQL
	// database, which several services may share (settings/store/pgstore);
	// any other value is a bbolt data dir path, as DataDir.
	Store string
	// WAID is the account's phone number (wa_id), shown read-only in the
	// application settings.
	WAID string
	// AdminPassword is the password of the admin account.
	AdminPassword string
	// GossipAddr is the host:port where the service joins the memberlist
	// cluster as its seed (role "settings"): every master and coreapp passes
	// this address as --join. Port 0 picks a free port; "" runs without
	// membership (then /v1/health lists nothing).
	GossipAddr string
	// Advertise, when not empty, is the host (IP or name) other hosts reach
	// the service at: its gossip announces it with the bound port (needed
	// when GossipAddr is on every interface). Empty: the bound address.
	Advertise string
	// ClusterKey encrypts gossip (16, 24 or 32 bytes, see
	// membership.KeyFromPassphrase); nil means no encryption.
	ClusterKey []byte
	// NodeID is the service's name in the gossip cluster; "" is NodeID
	// ("settings"). Several services sharing one PostgreSQL store need
	// one each, since gossip knows a node by its name.
	NodeID string
	// Join lists gossip addresses of another settings service of the same
	// cluster to join at start. Empty: this service is the cluster's
	// first seed. Only with a shared store (a postgres:// Store): two
	// bbolt files would be two sources of truth in one cluster.
	Join []string
	// Logger receives the service's logs; the caller adds node_id and role.
	Logger zerolog.Logger
	// OnLease, if set, is told of every lease grant, renewal and release
	// the store decides (grpcapi.Config.OnLease): mcsim up and the scenario
	// runner time takeovers and judge single_primary by it.
	OnLease func(grpcapi.LeaseEvent)
	// Faults is the service's fault layer (nil: none): the gRPC
	// connections the nodes open to it and its gossip go through it, and
	// its gRPC server answers FaultService, and so do the front door's
	// Send calls to coreapps (POST /v1/messages, a data path). The HTTP API
	// and /v1/health's own calls to the nodes are control paths and never
	// faulted.
	Faults *faultnet.Layer
}

// DefaultConfig is a service for one developer's machine: loopback only,
// so the well-known default password is acceptable.
func DefaultConfig() Config {
	return Config{
		// Loopback: nothing off this machine can reach the service, which is
		// what makes the default password acceptable.
		HTTPAddr: "127.0.0.1:9090",
		// The next port up, also loopback.
		GRPCAddr: "127.0.0.1:9091",
		// And the next one: the seed address of the gossip cluster.
		GossipAddr: "127.0.0.1:9092",
		// Relative to the working directory, hidden, like a tool's cache.
		DataDir: "./.mcsim",
		// A made-up US test number (+1 631 555 1019, a 555 number): it
		// looks like a real wa_id and belongs to nobody.
		WAID: "16315551019",
		// Allowed only while every listener is on loopback (SETTINGS.md).
		AdminPassword: DefaultAdminPassword,
		// Discards everything; callers pass their own.
		Logger: zerolog.Nop(),
	}
}

// Follow moves the listeners the caller did not set along with those it did,
// keeping DefaultConfig's layout of consecutive ports (HTTP, gRPC = HTTP + 1,
// gossip = gRPC + 1). A service given other ports then binds none of the
// defaults and runs beside a default one, instead of failing on the one
// port it was not told about. Each listener not set follows the nearest set
// one before it in that order, else the nearest after it; it keeps its own
// host. A port 0 (or one the layout would push out of range) gives port 0:
// a free port. An unparsable or empty address is never followed (Validate
// reports the first; "" is gossip turned off) and gossip turned off stays
// off.
func (c Config) Follow(httpSet, grpcSet, gossipSet bool) Config {
	addrs := []*string{&c.HTTPAddr, &c.GRPCAddr, &c.GossipAddr}
	set := []bool{httpSet, grpcSet, gossipSet}
	anchor := func(i int) int {
		for j := i - 1; j >= 0; j-- {
			if set[j] && *addrs[j] != "" {
				return j
			}
		}
		for j := i + 1; j < len(addrs); j++ {
			if set[j] && *addrs[j] != "" {
				return j
			}
		}
		return -1
	}
	for i, addr := range addrs {
		if set[i] || *addr == "" {
			continue
		}
		if a := anchor(i); a >= 0 {
			*addr = shiftPort(*addr, *addrs[a], i-a)
		}
	}
	return c
}

// shiftPort is addr's host with from's port moved by delta; port 0 when
// from's port is 0 or the result is not a port. addr unchanged when either
// does not parse.
func shiftPort(addr, from string, delta int) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	_, p, err := net.SplitHostPort(from)
	if err != nil {
		return addr
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return addr
	}
	next := port + delta
	if port == 0 || next < 1 || next > 65535 {
		next = 0
	}
	return net.JoinHostPort(host, strconv.Itoa(next))
}

// StoreSpec is the store Run opens: Store, or DataDir when Store is "".
func (c Config) StoreSpec() string {
	if c.Store != "" {
		return c.Store
	}
	return c.DataDir
}

// CheckStore reports a --store value that is neither a PostgreSQL URL nor a
// directory path (no other scheme: a typo such as "postgress://" must not
// become a directory of that name).
func CheckStore(spec string) error {
	if spec == "" || pgstore.IsURL(spec) {
		return nil
	}
	if i := strings.Index(spec, "://"); i >= 0 {
		return fmt.Errorf("store: must be a postgres:// (or postgresql://) URL or a directory path, got scheme %q", spec[:i])
	}
	if strings.TrimSpace(spec) == "" {
		return fmt.Errorf("store: must be a postgres:// URL or a directory path, got %q", spec)
	}
	return nil
}

// Validate reports every problem of c, each with its value, or nil. It only
// checks; it changes nothing and touches neither the network nor the disk.
func (c Config) Validate() error {
	var errs []error
	httpHost, httpPort, httpErr := checkAddr("http_addr", c.HTTPAddr)
	grpcHost, grpcPort, grpcErr := checkAddr("grpc_addr", c.GRPCAddr)
	for _, err := range []error{httpErr, grpcErr} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if httpPort != 0 && httpPort == grpcPort && httpHost == grpcHost {
		errs = append(errs, fmt.Errorf("grpc_addr: must differ from http_addr, both are %q", c.GRPCAddr))
	}
	var gHost string
	var gErr error
	if c.GossipAddr != "" {
		// Gossip uses TCP and UDP on its port; clashing with the HTTP or
		// gRPC TCP port would fail at listen time with a vaguer message.
		var gPort int
		gHost, gPort, gErr = checkAddr("gossip_addr", c.GossipAddr)
		switch {
		case gErr != nil:
			errs = append(errs, gErr)
		case gPort != 0 && ((gPort == httpPort && gHost == httpHost) || (gPort == grpcPort && gHost == grpcHost)):
			errs = append(errs, fmt.Errorf("gossip_addr: must differ from http_addr and grpc_addr, got %q", c.GossipAddr))
		}
	}
	switch len(c.ClusterKey) {
	case 0, 16, 24, 32:
	default:
		errs = append(errs, fmt.Errorf("cluster_key: must be 16, 24 or 32 bytes (or none), got %d bytes", len(c.ClusterKey)))
	}
	if c.Store == "" && strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, fmt.Errorf("data_dir: must be a directory path, got %q", c.DataDir))
	}
	if err := CheckStore(c.Store); err != nil {
		errs = append(errs, err)
	}
	if c.NodeID != "" && !validNodeID(c.NodeID) {
		errs = append(errs, fmt.Errorf("id: must be 1 to 64 letters, digits, '-', '_' or '.', got %q", c.NodeID))
	}
	if len(c.Join) > 0 {
		if !pgstore.IsURL(c.Store) {
			errs = append(errs, fmt.Errorf("join: another settings service can be joined only with a shared store (--store postgres://…); with a bbolt store each service is its own source of truth, got store %q", c.StoreSpec()))
		}
		if c.GossipAddr == "" {
			errs = append(errs, errors.New("join: needs gossip (gossip_addr), which is off"))
		}
		if c.ID() == NodeID {
			errs = append(errs, fmt.Errorf("id: a service that joins another needs its own id (not the default %q, which the first one has)", NodeID))
		}
		for _, a := range c.Join {
			if _, _, err := checkAddr("join", a); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if !validWAID(c.WAID) {
		errs = append(errs, fmt.Errorf("wa_id: must be 1 to 15 digits (country code and number, no +), got %q", c.WAID))
	}
	switch {
	case c.AdminPassword == "":
		errs = append(errs, errors.New("admin_password: must not be empty; set --admin-password or MCSIM_ADMIN_PASSWORD"))
	case c.AdminPassword == DefaultAdminPassword:
		// SETTINGS.md: "only when every listener is on loopback", and the
		// gossip seed is a listener too (off when GossipAddr is "").
		type listener struct {
			name, addr, host string
			err              error
		}
		listeners := []listener{{"http_addr", c.HTTPAddr, httpHost, httpErr}, {"grpc_addr", c.GRPCAddr, grpcHost, grpcErr}}
		if c.GossipAddr != "" {
			listeners = append(listeners, listener{"gossip_addr", c.GossipAddr, gHost, gErr})
		}
		for _, l := range listeners {
			// An unparsable address was reported above; judging its host
			// would only add noise.
			if l.err == nil && !loopback.Host(l.host) {
				errs = append(errs, fmt.Errorf("admin_password: the default password %q is allowed only on loopback listeners, but %s is %q (%s); set --admin-password or MCSIM_ADMIN_PASSWORD",
					DefaultAdminPassword, l.name, l.addr, hostDesc(l.host)))
			}
		}
	}
	return errors.Join(errs...)
}

// ID is the service's gossip name: NodeID unless the config names one.
func (c Config) ID() string {
	if c.NodeID == "" {
		return NodeID
	}
	return c.NodeID
}

func validNodeID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// checkAddr parses a listen address; the host may be empty (all interfaces).
func checkAddr(field, addr string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s: must be host:port (for example 127.0.0.1:9090), got %q: %v", field, addr, err)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%s: port must be a number from 0 to 65535, got %q in %q", field, p, addr)
	}
	return host, port, nil
}

func hostDesc(host string) string {
	if host == "" || host == "0.0.0.0" || host == "::" {
		return "all interfaces"
	}
	return "not loopback"
}

func validWAID(s string) bool {
	if len(s) < 1 || len(s) > 15 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
