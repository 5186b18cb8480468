// Package procstarget is the scenario runner's procs target: a real local
// cluster (every master and coreapp a child process, started by the
// launcher of mcsim up) driven by signals, and read from its impartial
// witnesses: the gateway's log (sessions, silence, failovers, fencing
// violations) and the settings store's lease record (grants and takeovers),
// both kept in this process on this machine's clock, plus the masters'
// logs for the coreapps they declared unhealthy and the coreapps' logs for
// the commands they accepted and refused.
package procstarget

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mcsim/mcsim/cluster/launcher"
	"github.com/mcsim/mcsim/cluster/procs"
	"github.com/mcsim/mcsim/health"
	"github.com/mcsim/mcsim/internal/logging"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/scenarios"
)

// Config configures a Target.
type Config struct {
	// Binary is the mcsim executable the nodes run.
	Binary string
	// Parent is where the run's data dir is made ("": the system's
	// temporary directory).
	Parent string
	// Keep keeps the data dir and logs after Close.
	Keep bool
	// Seed seeds the nodes' fault layers (jitter and loss).
	Seed uint64
}

// stopGrace is how long a node stopped by Close gets before SIGKILL.
const stopGrace = 5 * time.Second

// Target is one run's cluster. It implements scenarios.Target.
type Target struct {
	cfg Config
	dir string
	c   *launcher.Cluster

	mu       sync.Mutex
	shards   int
	nextSeq  uint64
	witness  scenarios.Witness
	paused   map[string]bool
	logRead  map[string]int64 // node log → bytes read
	logRuns  map[string]int   // node log → processes started in it so far
	declared []scenarios.Declaration
	commands []scenarios.Command
	// grants are the store's lease decisions converted so far: the runner
	// asks for them on every look, so only the new ones are copied.
	grants []scenarios.LeaseGrant
	closed bool
	// links and rates are the fault table in force (Network, Clock).
	links []*mcsimv1.FaultLink
	rates map[string]float64
	// traffic is the scenario's workload (traffic.go); nil: none.
	traffic *traffic
}

var _ scenarios.Target = (*Target)(nil)

// New returns a Target; Start starts its cluster.
func New(cfg Config) (*Target, error) {
	if cfg.Binary == "" {
		return nil, errors.New("procstarget: Config.Binary is required")
	}
	return &Target{cfg: cfg, paused: map[string]bool{}, logRead: map[string]int64{}, logRuns: map[string]int{}, rates: map[string]float64{}}, nil
}

// Name implements scenarios.Target.
func (t *Target) Name() string { return "procs" }

// Where implements scenarios.Target.
func (t *Target) Where() string { return t.dir }

// Start implements scenarios.Target.
func (t *Target) Start(ctx context.Context, c scenarios.Cluster, settings json.RawMessage) error {
	dir, err := os.MkdirTemp(t.cfg.Parent, "mcsim-scenario-")
	if err != nil {
		return err
	}
	t.dir = dir
	t.shards = c.Shards
	cl, err := launcher.Start(ctx, launcher.Config{
		Masters: c.Masters, Coreapps: c.Coreapps, Shards: c.Shards,
		DataDir: dir, HTTPAddr: "127.0.0.1:0", Binary: t.cfg.Binary, Settings: settings,
		Out: io.Discard, Err: io.Discard,
	})
	if err != nil {
		return err
	}
	t.c = cl
	return nil
}

// Close implements scenarios.Target: every paused node is resumed (so a
// SIGTERM reaches it), every process stopped, and the data dir removed
// unless kept.
func (t *Target) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	paused := slices.Sorted(maps.Keys(t.paused))
	t.mu.Unlock()
	t.closeTraffic()
	var err error
	if t.c != nil {
		for _, id := range paused {
			if p := t.c.Proc(id); p != nil {
				_ = p.Resume()
			}
		}
		err = t.c.Stop()
	}
	if t.dir != "" && !t.cfg.Keep {
		if rerr := os.RemoveAll(t.dir); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// Now implements scenarios.Target: the wall clock, the one the gateway
// and the store stamp their records with.
func (t *Target) Now() time.Time { return time.Now() }

// Sleep implements scenarios.Target.
func (t *Target) Sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refresh folds the gateway's new events in. Callers hold mu.
func (t *Target) refreshLocked() {
	evs := t.c.GatewayLog(max(t.nextSeq, 1))
	if len(evs) > 0 {
		t.nextSeq = evs[len(evs)-1].GetSeq() + 1
	}
	t.witness.Fold(evs)
}

// Served implements scenarios.Target: the shards of the current count
// whose session the gateway hears.
func (t *Target) Served() map[int]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refreshLocked()
	return t.witness.Served(t.shards)
}

// Failovers implements scenarios.Target.
func (t *Target) Failovers() []scenarios.FailoverSeen {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refreshLocked()
	return t.witness.Failovers()
}

// Sessions are every gateway session so far (scenarios.SessionWitness),
// for reports.
func (t *Target) Sessions() []scenarios.SessionSeen {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refreshLocked()
	return t.witness.Sessions()
}

// Violations implements scenarios.Target: the gateway log's fencing
// violations (gateway.CheckLog), named by the invariant they break.
func (t *Target) Violations() []scenarios.Violation {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refreshLocked()
	return t.witness.Violations()
}

// Grants implements scenarios.Target: the store's grants, renewals and
// releases.
func (t *Target) Grants() []scenarios.LeaseGrant {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ev := range t.c.LeasesSince(len(t.grants)) {
		t.grants = append(t.grants, scenarios.LeaseGrant{At: ev.At, Master: ev.Master, Epoch: ev.Epoch, Expires: ev.Expires,
			Renewal: ev.Renewal, Released: ev.Released})
	}
	// The caller may keep the slice: elements are never changed, only
	// appended after its length.
	return t.grants[:len(t.grants):len(t.grants)]
}

// Declarations implements scenarios.Target: the "coreapp declared
// unhealthy" lines of the masters' logs, read as they grow.
func (t *Target) Declarations() []scenarios.Declaration {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.readLogsLocked()
	out := slices.Clone(t.declared)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// Commands implements scenarios.Target: the assigns and releases the
// coreapps' logs say they accepted or refused, read as they grow.
func (t *Target) Commands() []scenarios.Command {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.readLogsLocked()
	out := slices.Clone(t.commands)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// commandLines are the coreapp log messages that report a verdict on a
// master's command.
var commandLines = map[string]struct {
	kind     string
	accepted bool
}{
	"assigned: opening gateway session":          {"assign", true},
	"assign refused":                             {"assign", false},
	"released: session closed":                   {"release", true},
	"release of a shard not held: nothing to do": {"release", true},
	"release refused":                            {"release", false},
	"heard a newer lease epoch":                  {"heartbeat", true},
}

// readLogsLocked reads what the masters' and coreapps' logs added since
// the last look.
func (t *Target) readLogsLocked() {
	for _, role := range []string{"master", "coreapp"} {
		files, _ := filepath.Glob(filepath.Join(t.dir, "logs", role+"-*.log"))
		for _, f := range files {
			t.readLogLocked(f)
		}
	}
}

func (t *Target) readLogLocked(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(t.logRead[path], io.SeekStart); err != nil {
		return
	}
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return // a partial last line is read again next time
		}
		t.logRead[path] += int64(len(line))
		if !strings.Contains(string(line), "unhealthy") && !strings.Contains(string(line), "lease_epoch") && !strings.Contains(string(line), procs.StartMarker) {
			continue
		}
		var l struct {
			Time       string `json:"time"`
			NodeID     string `json:"node_id"`
			Coreapp    string `json:"coreapp"`
			MasterID   string `json:"master_id"`
			LeaseEpoch uint64 `json:"lease_epoch"`
			Message    string `json:"message"`
		}
		if json.Unmarshal(line, &l) != nil {
			continue
		}
		at, err := time.Parse(logging.TimeFormat, l.Time)
		if err != nil {
			continue
		}
		if l.Message == procs.StartMarker {
			t.logRuns[path]++
			continue
		}
		if l.Message == "coreapp declared unhealthy" {
			t.declared = append(t.declared, scenarios.Declaration{At: at, Master: l.NodeID, Coreapp: l.Coreapp})
			continue
		}
		if c, ok := commandLines[l.Message]; ok && strings.HasPrefix(l.NodeID, "coreapp-") {
			// The first marker starts run 0.
			t.commands = append(t.commands, scenarios.Command{At: at, Coreapp: l.NodeID, Run: t.logRuns[path] - 1, Master: l.MasterID,
				Kind: c.kind, LeaseEpoch: l.LeaseEpoch, Accepted: c.accepted})
		}
	}
}

// Health is /v1/health by node id: what the settings service's gossip
// member sees (State: failed or left once gossip gave a node up) and each
// live node's own Status (role, shards, pending restart-required
// settings), read over control connections the fault layers never fault.
// Tests read what Nodes leaves out through it.
func (t *Target) Health(ctx context.Context) (map[string]health.Entry, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	b, err := t.c.API().Do(ctx, "GET", "/v1/health", nil)
	if err != nil {
		return nil, err
	}
	entries, err := health.Decode(b)
	if err != nil {
		return nil, err
	}
	out := make(map[string]health.Entry, len(entries))
	for key, e := range entries {
		out[health.NodeID(key)] = e
	}
	return out, nil
}

// Nodes implements scenarios.Target: every node the supervisor started,
// with its role from /v1/health (unknown when it does not answer).
func (t *Target) Nodes(ctx context.Context) (map[string]scenarios.NodeState, error) {
	entries, err := t.Health(ctx)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]scenarios.NodeState{}
	for id, e := range entries {
		out[id] = scenarios.NodeState{ID: id, Role: e.Role, Shards: e.Shards, Up: e.State == "" || e.State == health.StateAlive}
	}
	for id, n := range out {
		p := t.c.Proc(id)
		n.Up = n.Up && p != nil && !p.Exited() && !t.paused[id]
		out[id] = n
	}
	return out, nil
}

func (t *Target) proc(id string) (procHandle, error) {
	p := t.c.Proc(id)
	if p == nil {
		return nil, fmt.Errorf("%s: no such node", id)
	}
	return p, nil
}

type procHandle interface {
	Kill() error
	Stop(time.Duration) error
	Pause() error
	Resume() error
}

// Kill implements scenarios.Target (SIGKILL).
func (t *Target) Kill(_ context.Context, id string) error {
	p, err := t.proc(id)
	if err != nil {
		return err
	}
	return p.Kill()
}

// Stop implements scenarios.Target (SIGTERM; it returns once the node
// has exited).
func (t *Target) Stop(_ context.Context, id string) error {
	p, err := t.proc(id)
	if err != nil {
		return err
	}
	return p.Stop(stopGrace)
}

// Pause implements scenarios.Target (SIGSTOP).
func (t *Target) Pause(_ context.Context, id string) error {
	p, err := t.proc(id)
	if err != nil {
		return err
	}
	if err := p.Pause(); err != nil {
		return err
	}
	t.mu.Lock()
	t.paused[id] = true
	t.mu.Unlock()
	return nil
}

// Resume implements scenarios.Target (SIGCONT).
func (t *Target) Resume(ctx context.Context, id string) error {
	p, err := t.proc(id)
	if err != nil {
		return err
	}
	t.mu.Lock()
	delete(t.paused, id)
	t.mu.Unlock()
	if err := p.Resume(); err != nil {
		return err
	}
	// It may have missed a change of the fault table while stopped.
	return t.c.PushFaults(ctx, id)
}

// Restart implements scenarios.Target.
func (t *Target) Restart(ctx context.Context, id string) error {
	t.mu.Lock()
	delete(t.paused, id)
	cut := slices.ContainsFunc(t.links, func(l *mcsimv1.FaultLink) bool {
		return l.GetCut() && (l.GetFrom() == id && l.GetTo() == "settings" || l.GetFrom() == "settings" && l.GetTo() == id)
	})
	t.mu.Unlock()
	err := t.c.Restart(ctx, id)
	if err != nil && cut {
		// A node starts by reading its settings; the scenario's own cut
		// keeps it from them, so it never becomes ready.
		return fmt.Errorf("%w (the scenario cuts %s from the settings service: a node cannot start without reading its settings)", err, id)
	}
	return err
}

// StartNode implements scenarios.Target.
func (t *Target) StartNode(ctx context.Context, role string) (string, error) {
	return t.c.StartNode(ctx, role)
}

// Patch implements scenarios.Target.
func (t *Target) Patch(ctx context.Context, body json.RawMessage) error {
	_, err := t.c.API().Patch(ctx, body)
	return err
}

// SetShards implements scenarios.Target.
func (t *Target) SetShards(ctx context.Context, n int) error {
	b, _ := json.Marshal(map[string]int{"shards": n})
	if _, err := t.c.API().Do(ctx, "POST", "/v1/account/shards", b); err != nil {
		return err
	}
	t.mu.Lock()
	t.shards = n
	t.mu.Unlock()
	return nil
}

// Network implements scenarios.Target: the table goes to every node's
// fault layer (the paused ones get it when they resume).
func (t *Target) Network(ctx context.Context, links []scenarios.NetLink) error {
	pl := make([]*mcsimv1.FaultLink, 0, len(links))
	for _, l := range links {
		pl = append(pl, &mcsimv1.FaultLink{From: l.From, To: l.To, Cut: l.Cut,
			LatencyUs: l.Latency.Microseconds(), JitterUs: l.Jitter.Microseconds(), LossPercent: l.LossPercent})
	}
	t.mu.Lock()
	t.links = pl
	t.mu.Unlock()
	return t.push(ctx)
}

// Clock implements scenarios.Target.
func (t *Target) Clock(ctx context.Context, id string, rate float64) error {
	if t.c.Proc(id) == nil {
		return fmt.Errorf("%s: no such node (a clock runs slow or fast only on a master or coreapp)", id)
	}
	t.mu.Lock()
	if rate == 1 {
		delete(t.rates, id)
	} else {
		t.rates[id] = rate
	}
	t.mu.Unlock()
	return t.push(ctx)
}

func (t *Target) push(ctx context.Context) error {
	t.mu.Lock()
	links, rates := t.links, maps.Clone(t.rates)
	t.mu.Unlock()
	return t.c.SetFaults(ctx, links, rates, int64(t.cfg.Seed))
}
