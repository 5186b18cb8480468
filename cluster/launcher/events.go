package launcher

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcsim/mcsim/cluster/procs"
	"github.com/mcsim/mcsim/gateway"
	"github.com/mcsim/mcsim/health"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/service"
)

// Event is one line of `mcsim up --json`: a JSON object with "time"
// (RFC 3339, UTC, nanoseconds) and "event", plus the fields of its kind.
// Fields that do not apply are omitted.
//
//	urls               http, grpc, gossip, gateway: where the cluster is (always first)
//	node_started       node, role, pid, grpc, gossip, metrics (URL)
//	node_exited        node, role, pid, error (how it ended, "" for a clean exit)
//	cluster_started    every node is up (after all node_started)
//	gateway_connect    shard, shards, epoch, coreapp: the gateway accepted a session
//	gateway_replace    shard, shards, epoch, coreapp, from, from_shard, from_shards, from_epoch:
//	                   a newer epoch replaced a session (from_shard differs from shard
//	                   after a shard-count change; one line per replaced session)
//	gateway_reject     shard, shards, epoch, coreapp, reason
//	gateway_disconnect shard, shards, epoch, coreapp: a session holding its shard ended
//	gateway_silent     shard, shards, epoch, coreapp, last_heard: the gateway stopped
//	                   hearing a session (no pong for gateway.SilentAfter); it still
//	                   holds its keys but no longer serves (rule 7)
//	gateway_heard      shard, shards, epoch, coreapp: a silent session answered again
//	role_change        node, from, to (roles as in /v1/health; from "" on first sight)
//	failover           shard, from, to, epoch, downtime_ms: a shard moved to another
//	                   coreapp after its first assignment; downtime_ms runs from the
//	                   last moment the gateway heard the old owner to the first moment
//	                   it heard the new one (gateway.Failover; 0 when the new session
//	                   replaced a live one). After a restart on the same data dir, the
//	                   first connect of a shard the stored map gave to a previous run's
//	                   coreapp is a failover from it (also to the same id: a new
//	                   process), timed from the gateway's start
//	takeover           node, from, lease_epoch: the store granted the lease to a master
//	                   other than its last holder (timed by the store's grant)
//	lease_wait         node, epoch, remaining_ms: no master is primary while the lease of
//	                   node (a previous run's, after a restart on the same data dir) runs
//	                   remaining_ms more by the store's clock; once per holder and epoch
//	health_error       error: GET /v1/health failed
//	stopping           Ctrl-C or SIGTERM arrived; the nodes are being stopped
//	stopped            failovers, takeovers, longest_downtime_ms and its shard
//	                   (these two only after a failover): the run's summary (last line)
type Event struct {
	Time       string `json:"time"`
	Event      string `json:"event"`
	HTTP       string `json:"http,omitempty"`
	GRPC       string `json:"grpc,omitempty"`
	Gossip     string `json:"gossip,omitempty"`
	Gateway    string `json:"gateway,omitempty"`
	Node       string `json:"node,omitempty"`
	Role       string `json:"role,omitempty"`
	PID        int    `json:"pid,omitempty"`
	Metrics    string `json:"metrics,omitempty"`
	Shard      *int32 `json:"shard,omitempty"`
	Shards     int32  `json:"shards,omitempty"`
	Epoch      uint64 `json:"epoch,omitempty"`
	Coreapp    string `json:"coreapp,omitempty"`
	From       string `json:"from,omitempty"`
	FromShard  *int32 `json:"from_shard,omitempty"`
	FromShards int32  `json:"from_shards,omitempty"`
	FromEpoch  uint64 `json:"from_epoch,omitempty"`
	To         string `json:"to,omitempty"`
	Reason     string `json:"reason,omitempty"`
	LastHeard  string `json:"last_heard,omitempty"`
	DowntimeMS *int64 `json:"downtime_ms,omitempty"`
	// RemainingMS is lease_wait's time left on the lease.
	RemainingMS *int64 `json:"remaining_ms,omitempty"`
	LeaseEpoch  uint64 `json:"lease_epoch,omitempty"`
	Error       string `json:"error,omitempty"`
	// The "stopped" summary.
	Failovers         *int   `json:"failovers,omitempty"`
	Takeovers         *int   `json:"takeovers,omitempty"`
	LongestDowntimeMS *int64 `json:"longest_downtime_ms,omitempty"`
}

// nodeView is what the status view shows of one node.
type nodeView struct {
	role, status, metrics, err string
	shards                     []int
	pid                        int
	exited                     bool
	exit                       string
}

type holder struct {
	coreapp string
	epoch   uint64
	silent  bool // the gateway does not hear it: not serving
}

// emitter keeps the cluster's state as seen from outside (health and the
// gateway log) and reports each change: as JSON lines, plain lines, or a
// view redrawn in place.
type emitter struct {
	cfg   Config
	mu    sync.Mutex
	addrs Addrs
	nodes map[string]*nodeView
	// shards: who holds each shard now per the gateway; witness derives
	// the failovers and their downtime from the same events.
	shards  map[int32]holder
	witness gateway.Service
	// previous are the owners the stored map of a previous run gave (see
	// previousOwners): a shard's first connect is a failover from them,
	// even by the same coreapp id (a new process); the gateway of this run
	// never saw their sessions, so the witness cannot tell.
	previous map[int32]previousOwner
	recent   []string
	dirty    bool
	now      func() time.Time
	// lastHolder is the master the store last granted the lease to.
	lastHolder string
	// note says why there is no primary (health.PrimaryNote); waitingFor
	// is the lease (holder/epoch) a lease_wait was last reported for.
	note, waitingFor string
	// frameLines is how many lines the last frame drawn in place took (0:
	// none on screen to draw over).
	frameLines int
	tally      tally
}

func newEmitter(cfg Config) *emitter {
	return &emitter{
		cfg: cfg, nodes: map[string]*nodeView{},
		shards: map[int32]holder{}, previous: map[int32]previousOwner{}, now: time.Now,
	}
}

func roleOf(id string) string {
	role, _, _ := strings.Cut(id, "-")
	return role
}

// emit writes ev in JSON mode, or its plain line when not on a terminal.
// Callers hold mu.
func (e *emitter) emitLocked(ev Event, at time.Time) {
	e.dirty = true
	ev.Time = at.UTC().Format(time.RFC3339Nano)
	switch {
	case e.cfg.JSON:
		b, _ := json.Marshal(ev)
		_, _ = e.cfg.Out.Write(append(b, '\n'))
	case !e.inPlaceLocked():
		fmt.Fprintln(e.cfg.Out, at.Format("15:04:05.000"), plain(ev))
		e.frameLines = 0 // the next frame starts below this line
	}
}

func plain(ev Event) string {
	shard := func() string {
		if ev.Shard == nil {
			return ""
		}
		return fmt.Sprintf("shard %d", *ev.Shard)
	}
	switch ev.Event {
	case "node_started":
		return fmt.Sprintf("%s started: pid %d, metrics %s", ev.Node, ev.PID, ev.Metrics)
	case "node_exited":
		return fmt.Sprintf("%s exited (pid %d) %s", ev.Node, ev.PID, ev.Error)
	case "cluster_started":
		return "all nodes started"
	case "gateway_connect":
		return fmt.Sprintf("gateway: %s connected by %s (epoch %d)", shard(), ev.Coreapp, ev.Epoch)
	case "gateway_replace":
		return fmt.Sprintf("gateway: %s: %s (epoch %d) replaced %s (epoch %d)", shard(), ev.Coreapp, ev.Epoch, ev.From, ev.FromEpoch)
	case "gateway_reject":
		return fmt.Sprintf("gateway: %s: rejected %s (epoch %d): %s", shard(), ev.Coreapp, ev.Epoch, ev.Reason)
	case "gateway_disconnect":
		return fmt.Sprintf("gateway: %s: %s (epoch %d) disconnected", shard(), ev.Coreapp, ev.Epoch)
	case "gateway_silent":
		return fmt.Sprintf("gateway: %s: %s (epoch %d) silent, not serving (last heard %s)", shard(), ev.Coreapp, ev.Epoch, ev.LastHeard)
	case "gateway_heard":
		return fmt.Sprintf("gateway: %s: %s (epoch %d) heard again, serving", shard(), ev.Coreapp, ev.Epoch)
	case "role_change":
		return fmt.Sprintf("%s: role %s → %s", ev.Node, orDash(ev.From), ev.To)
	case "failover":
		return fmt.Sprintf("FAILOVER %s: %s → %s (epoch %d), %d ms without service", shard(), ev.From, ev.To, ev.Epoch, *ev.DowntimeMS)
	case "takeover":
		return fmt.Sprintf("TAKEOVER: %s is primary (was %s), lease epoch %d", ev.Node, ev.From, ev.LeaseEpoch)
	case "health_error":
		return "health: " + ev.Error
	case "lease_wait":
		return health.PrimaryNote(nil, &health.Lease{Holder: ev.Node, Epoch: ev.Epoch, RemainingMS: *ev.RemainingMS})
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (e *emitter) urls(a Addrs) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addrs = a
	if e.cfg.JSON {
		e.emitLocked(Event{Event: "urls", HTTP: "http://" + a.HTTP, GRPC: a.GRPC, Gossip: a.Gossip, Gateway: a.Gateway}, e.now())
		return
	}
	if e.inPlaceLocked() {
		e.dirty = true // the first frame starts with the header
		return
	}
	fmt.Fprint(e.cfg.Out, e.headerLocked())
}

func (e *emitter) headerLocked() string {
	a := e.addrs
	var b strings.Builder
	fmt.Fprintf(&b, "mcsim cluster (data %s, logs in %s/logs)\n", e.cfg.DataDir, e.cfg.DataDir)
	// A password the user chose is not echoed; the public default is.
	password := "from --admin-password or MCSIM_ADMIN_PASSWORD"
	if e.cfg.AdminPassword == "" || e.cfg.AdminPassword == service.DefaultAdminPassword {
		password = fmt.Sprintf("%q (the default)", service.DefaultAdminPassword)
	}
	fmt.Fprintf(&b, "  HTTP API  http://%s   (GET /v1/health, /v1/settings/application)\n", a.HTTP)
	fmt.Fprintf(&b, "  admin     password %s\n", password)
	fmt.Fprintf(&b, "  gRPC      %s\n  gateway   %s\n  gossip    %s\n", a.GRPC, a.Gateway, a.Gossip)
	return b.String()
}

func (e *emitter) nodeStarted(p *procs.Proc) {
	r := p.Ready()
	e.mu.Lock()
	defer e.mu.Unlock()
	metrics := ""
	if r.HTTP != "" {
		metrics = "http://" + r.HTTP + "/metrics"
	}
	e.nodes[p.Name()] = &nodeView{pid: p.PID(), metrics: metrics, role: roleOf(p.Name())}
	e.emitLocked(Event{Event: "node_started", Node: p.Name(), Role: roleOf(p.Name()), PID: p.PID(),
		GRPC: r.GRPC, Gossip: r.Gossip, Metrics: metrics}, e.now())
}

// clusterStarted ends the start-up: every node announced itself ready.
func (e *emitter) clusterStarted() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.emitLocked(Event{Event: "cluster_started"}, e.now())
}

// pollExits reports processes that ended since the last call.
func (e *emitter) pollExits(ps []*procs.Proc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range ps {
		n := e.nodes[p.Name()]
		if n == nil || n.exited || !p.Exited() {
			continue
		}
		n.exited = true
		if err := p.ExitErr(); err != nil {
			n.exit = err.Error()
		}
		e.emitLocked(Event{Event: "node_exited", Node: p.Name(), Role: roleOf(p.Name()), PID: n.pid, Error: n.exit}, e.now())
	}
}

// gateway folds the gateway's new events into the shard map and reports
// the failovers gateway.Service derives from them: a shard's session taken
// over by another coreapp (REPLACE), or a shard connected again by another
// coreapp after its session ended, timed from when the old owner was last
// heard.
func (e *emitter) gateway(evs []*mcsimv1.GatewayEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range evs {
		at := time.Unix(0, g.GetUnixNs())
		shard := g.GetShard()
		ev := Event{Shard: &shard, Shards: g.GetShards(), Epoch: g.GetEpoch(), Coreapp: g.GetCoreappId()}
		f, failover := e.witness.Step(g)
		switch g.GetKind() {
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT:
			ev.Event = "gateway_connect"
			e.emitLocked(ev, at)
			if prev, ok := e.previous[shard]; ok && !failover {
				e.failoverLocked(shard, prev.coreapp, g.GetCoreappId(), g.GetEpoch(), at.Sub(prev.since).Milliseconds(), at)
			}
			delete(e.previous, shard)
			e.shards[shard] = holder{coreapp: g.GetCoreappId(), epoch: g.GetEpoch()}
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE:
			ev.Event, ev.From, ev.FromEpoch = "gateway_replace", g.GetReplacedCoreappId(), g.GetReplacedEpoch()
			from := g.GetReplacedShard()
			ev.FromShard, ev.FromShards = &from, g.GetReplacedShards()
			e.emitLocked(ev, at)
			if from != shard {
				// A shard-count change: the replaced session's shard number
				// means other keys; it is gone, not failed over.
				delete(e.shards, from)
			}
			delete(e.previous, shard)
			e.shards[shard] = holder{coreapp: g.GetCoreappId(), epoch: g.GetEpoch()}
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REJECT:
			ev.Event, ev.Reason = "gateway_reject", g.GetReason()
			e.emitLocked(ev, at)
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_DISCONNECT:
			ev.Event = "gateway_disconnect"
			e.emitLocked(ev, at)
			delete(e.shards, shard)
		case mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_SILENT, mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_HEARD:
			silent := g.GetKind() == mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_SILENT
			ev.Event = "gateway_heard"
			if silent {
				ev.Event = "gateway_silent"
				ev.LastHeard = time.Unix(0, g.GetLastHeardUnixNs()).UTC().Format(time.RFC3339Nano)
			}
			e.emitLocked(ev, at)
			if h, ok := e.shards[shard]; ok && h.coreapp == g.GetCoreappId() && h.epoch == g.GetEpoch() {
				h.silent = silent
				e.shards[shard] = h
			}
		}
		if failover {
			e.failoverLocked(f.Shard, f.From, f.To, f.Epoch, f.Downtime().Milliseconds(), at)
		}
	}
}

func (e *emitter) failoverLocked(shard int32, from, to string, epoch uint64, ms int64, at time.Time) {
	e.emitLocked(Event{Event: "failover", Shard: &shard, From: from, To: to, Epoch: epoch, DowntimeMS: &ms}, at)
	e.tally.failover(shard, ms)
	e.noteLocked(at, fmt.Sprintf("shard %d: %s → %s (epoch %d), %d ms without service", shard, from, to, epoch, ms))
}

func (e *emitter) noteLocked(at time.Time, s string) {
	e.recent = append(e.recent, at.Format("15:04:05.000")+"  "+s)
	if len(e.recent) > 8 {
		e.recent = e.recent[len(e.recent)-8:]
	}
}

// health folds one /v1/health answer in: role changes and takeovers are
// reported; the rest only feeds the view.
func (e *emitter) health(entries map[string]health.Entry, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	at := e.now()
	if err != nil {
		e.emitLocked(Event{Event: "health_error", Error: err.Error()}, at)
		return
	}
	for key, h := range entries {
		id := health.NodeID(key)
		n := e.nodes[id]
		if n == nil {
			n = &nodeView{role: roleOf(id)}
			e.nodes[id] = n
		}
		role := h.Role
		if role != n.role && !(n.role == roleOf(id) && role == "coreapp") {
			from := n.role
			if from == roleOf(id) {
				from = ""
			}
			e.emitLocked(Event{Event: "role_change", Node: id, From: from, To: role}, at)
		}
		if n.status != h.GatewayStatus || !slices.Equal(n.shards, h.Shards) || n.err != h.Error {
			e.dirty = true
		}
		n.role, n.status, n.shards, n.err = role, h.GatewayStatus, h.Shards, h.Error
		if h.PID != 0 {
			n.pid = h.PID
		}
		if h.Metrics != "" {
			n.metrics = h.Metrics
		}
	}
}
