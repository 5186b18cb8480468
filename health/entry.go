package health

import (
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcsim/mcsim/membership"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// The role names of the health answer.
const (
	RolePrimaryMaster   = "primary_master"
	RoleSecondaryMaster = "secondary_master"
	RoleCoreapp         = "coreapp"
	// RoleUnknown is the role of a node that did not answer: its metadata
	// says master or coreapp, but only the node itself knows whether a
	// master is primary, and guessing would mislead a failover script.
	RoleUnknown = "unknown"
)

// The gateway_status names of the health answer.
const (
	GatewayConnected     = "connected"
	GatewayConnecting    = "connecting"
	GatewayDisconnected  = "disconnected"
	GatewayUninitialized = "uninitialized"
)

// Entry is one node in the health answer (GET /v1/health); it is the one
// definition of that JSON shape: settings/httpapi.HealthEntry is an alias
// and `mcsim status` decodes into it.
type Entry struct {
	Role           string   `json:"role"`
	GatewayStatus  string   `json:"gateway_status"`
	Shards         []int    `json:"shards"`
	PID            int      `json:"pid"`
	PendingRestart []string `json:"pending_restart"`
	Metrics        string   `json:"metrics,omitempty"`
	Error          string   `json:"error,omitempty"`
	// State is StateAlive for a node that answered; otherwise why it did
	// not, and Since (RFC 3339, milliseconds) since when.
	State string `json:"state,omitempty"`
	Since string `json:"since,omitempty"`
	// UnassignedShards (the primary master only) are the shards of its map
	// without an owner.
	UnassignedShards []UnassignedShard `json:"unassigned_shards,omitempty"`
}

// UnassignedShard is a shard the primary has no owner for: since when
// (RFC 3339 ms; "" if the primary does not know) and why.
type UnassignedShard struct {
	Shard  int    `json:"shard"`
	Since  string `json:"since,omitempty"`
	Reason string `json:"reason"`
}

// The states of a health entry.
const (
	// StateAlive: in gossip, and it answered its Status call.
	StateAlive = "alive"
	// StateUnreachable: in gossip, but its Status call failed.
	StateUnreachable = "unreachable"
	// StateFailed: gossip's failure detector lost it (crash, kill, pause or
	// partition); it is listed until it joins again.
	StateFailed = "failed"
	// StateLeft: it left the gossip cluster gracefully (SIGTERM).
	StateLeft = "left"
)

// TimeFormat is the layout of Since: RFC 3339 with milliseconds, UTC.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Key is the health answer's key of a node: "<grpc host>:<node-id>", e.g.
// "127.0.0.1:coreapp-2". A node without a gRPC address falls back to its
// gossip host, so it is still listed under a stable name.
func Key(n membership.Node) string {
	return hostOf(n.GRPCAddr, n.GossipAddr) + ":" + n.ID
}

// NodeID is the node id part of a health key (the inverse of Key). The
// host may itself hold colons (IPv6); node ids do not.
func NodeID(key string) string {
	return key[strings.LastIndexByte(key, ':')+1:]
}

// Decode reads a GET /v1/health answer into its entries by key.
func Decode(body []byte) (map[string]Entry, error) {
	var ans struct {
		Health map[string]Entry `json:"health"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, err
	}
	if ans.Health == nil {
		return nil, errors.New(`no "health" object`)
	}
	return ans.Health, nil
}

// FormatShards renders a shard list for people: "0,1", or "-" for none.
func FormatShards(shards []int) string {
	if len(shards) == 0 {
		return "-"
	}
	parts := make([]string, len(shards))
	for i, s := range shards {
		parts[i] = strconv.Itoa(s)
	}
	return strings.Join(parts, ",")
}

func hostOf(addrs ...string) string {
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" {
			return h
		}
	}
	return "unknown"
}

// MasterRoleName names a master's role. A master that has not decided
// yet (unspecified) does not hold the lease, so it is a secondary.
func MasterRoleName(r mcsimv1.MasterRole) string {
	if r == mcsimv1.MasterRole_MASTER_ROLE_PRIMARY {
		return RolePrimaryMaster
	}
	return RoleSecondaryMaster
}

// GatewayStatusName is the enum name lower-cased without its prefix
// (GATEWAY_STATUS_CONNECTED → "connected"). Unspecified, and any value
// newer than this code, is "uninitialized": the node reported no session.
func GatewayStatusName(s mcsimv1.GatewayStatus) string {
	switch s {
	case mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTED,
		mcsimv1.GatewayStatus_GATEWAY_STATUS_CONNECTING,
		mcsimv1.GatewayStatus_GATEWAY_STATUS_DISCONNECTED,
		mcsimv1.GatewayStatus_GATEWAY_STATUS_UNINITIALIZED:
		return strings.ToLower(strings.TrimPrefix(s.String(), "GATEWAY_STATUS_"))
	}
	return GatewayUninitialized
}

// FromMaster is a master's entry. Masters hold no gateway session, so
// their gateway_status is always "disconnected" and they serve no shards.
// The PID is the master's own answer, or its gossip metadata's if it
// reported none.
func FromMaster(n membership.Node, r *mcsimv1.MasterServiceStatusResponse) Entry {
	e := base(n)
	e.Role = MasterRoleName(r.GetRole())
	e.GatewayStatus = GatewayDisconnected
	if pid := int(r.GetPid()); pid != 0 {
		e.PID = pid
	}
	e.PendingRestart = sortedStrings(r.GetPendingRestart())
	for _, u := range r.GetUnassignedShards() {
		us := UnassignedShard{Shard: int(u.GetShard()), Reason: u.GetReason()}
		if ms := u.GetSinceUnixMs(); ms != 0 {
			us.Since = time.UnixMilli(ms).UTC().Format(TimeFormat)
		}
		e.UnassignedShards = append(e.UnassignedShards, us)
	}
	return e
}

// FromCoreapp is a coreapp's entry: its shards (ascending, including those
// still connecting or cut off from the gateway: the assignment), its
// overall gateway status (connecting while any of them is not served) and
// pending restarts.
func FromCoreapp(n membership.Node, r *mcsimv1.StatusResponse) Entry {
	e := base(n)
	e.Role = RoleCoreapp
	e.GatewayStatus = GatewayStatusName(r.GetGatewayStatus())
	for _, s := range r.GetShards() {
		e.Shards = append(e.Shards, int(s.GetShard()))
	}
	slices.Sort(e.Shards)
	if pid := int(r.GetPid()); pid != 0 {
		e.PID = pid
	}
	e.PendingRestart = sortedStrings(r.GetPendingRestart())
	return e
}

// Unreachable is the entry of a node that did not answer in time: what
// gossip knows (PID, metrics URL) and why. Its gateway_status is
// "disconnected": whatever the node last had, nobody can count on it now.
func Unreachable(n membership.Node, err error) Entry {
	e := base(n)
	e.Role = RoleUnknown
	e.GatewayStatus = GatewayDisconnected
	e.Error = "unreachable: " + err.Error()
	e.State = StateUnreachable
	return e
}

// Gone is the entry of a node gossip no longer has: failed or left since
// the given time. A coreapp is still a coreapp; a master's role is
// unknown (it is not primary, whatever it was).
func Gone(n membership.Node, state string, since time.Time) Entry {
	e := base(n)
	e.Role = RoleUnknown
	if n.Role == membership.RoleCoreapp {
		e.Role = RoleCoreapp
	}
	e.GatewayStatus = GatewayDisconnected
	e.State, e.Since = state, since.UTC().Format(TimeFormat)
	if state == StateLeft {
		e.Error = "left the gossip cluster"
	} else {
		e.Error = "lost by gossip (crashed, paused or cut off)"
	}
	return e
}

// base is what membership metadata alone says about a node. Shards and
// PendingRestart are empty, not nil, so the JSON shows [] rather than null.
func base(n membership.Node) Entry {
	e := Entry{PID: n.PID, Shards: []int{}, PendingRestart: []string{}, State: StateAlive}
	if n.MetricsAddr != "" {
		e.Metrics = "http://" + n.MetricsAddr + "/metrics"
	}
	return e
}

func sortedStrings(s []string) []string {
	out := append([]string{}, s...)
	slices.Sort(out)
	return out
}
