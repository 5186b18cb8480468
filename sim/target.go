package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mcsim/mcsim/scenarios"
	"github.com/mcsim/mcsim/shard"
)

// DefaultEpsilon is ε on the simulator (SCENARIOS.md): the model's
// latencies and fsyncs, no scheduler.
const DefaultEpsilon = 50 * time.Millisecond

// Config configures a simulated run.
type Config struct {
	// Seed seeds every random choice of the world.
	Seed uint64
	// Sabotage disables safety mechanisms (selftest only).
	Sabotage Sabotage
}

// Target is the simulator as a scenarios.Target: virtual time, one
// thread, the same witnesses as on real processes.
type Target struct {
	cfg     Config
	w       *World
	shards  int
	witness scenarios.Witness
	seen    int       // gateway events folded into the witness
	started time.Time // when Start returned: the runner's time zero
}

var _ scenarios.Target = (*Target)(nil)

// New returns a Target; Start builds its world.
func New(cfg Config) *Target { return &Target{cfg: cfg} }

// Name implements scenarios.Target.
func (t *Target) Name() string { return "sim" }

// Where implements scenarios.Target: a simulated run keeps no files.
func (t *Target) Where() string { return "" }

// World is the run's world (benchmarks read its counters).
func (t *Target) World() *World { return t.w }

// startWait bounds how long Start, Restart and StartNode wait for a node
// to be ready (its settings read) in virtual time.
const startWait = 30 * time.Second

// Start implements scenarios.Target: the settings service and the gateway
// first, then every master and coreapp, each process starting a few
// moments apart; it returns once every node has
// read its settings.
func (t *Target) Start(ctx context.Context, c scenarios.Cluster, settingsBody json.RawMessage) error {
	if err := shard.CountError(c.Shards); err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	w := newWorld(t.cfg.Seed, t.cfg.Sabotage)
	t.w, t.shards = w, c.Shards
	w.store = newStore(w, c.Shards)
	w.store.p.up = true
	if len(settingsBody) > 0 {
		if err := w.store.patch(settingsBody); err != nil {
			return err
		}
	}
	w.gw = newGateway(w)
	for i := 1; i <= c.Masters; i++ {
		w.masters = append(w.masters, newMaster(w, fmt.Sprintf("master-%d", i), c.Coreapps))
	}
	for i := 1; i <= c.Coreapps; i++ {
		w.addCoreapp(newCoreapp(w, fmt.Sprintf("coreapp-%d", i)))
	}
	// The masters' start times spread over a heartbeat interval and more:
	// the heartbeat phase (when in its cycle a fault strikes) is the
	// seed's, as SCENARIOS.md asks, not the same in every run.
	for _, m := range w.masters {
		w.after(w.uniform(5*time.Millisecond, 1500*time.Millisecond), m.start)
	}
	for _, c := range w.coreapps {
		w.after(w.uniform(5*time.Millisecond, 300*time.Millisecond), c.start)
	}
	err := t.runUntil(ctx, w.now.Add(startWait), t.allReady)
	t.started = w.now
	return err
}

func (t *Target) allReady() bool {
	for _, m := range t.w.masters {
		if !m.p.up || !m.haveSnap {
			return false
		}
	}
	for _, c := range t.w.coreapps {
		if !c.p.up || !c.ready {
			return false
		}
	}
	return true
}

// runUntil runs the world until cond holds (checked every millisecond of
// virtual time) or deadline passes (an error).
func (t *Target) runUntil(ctx context.Context, deadline time.Time, cond func() bool) error {
	for !cond() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !t.w.now.Before(deadline) {
			return fmt.Errorf("not ready after %v of virtual time", startWait)
		}
		t.w.runUntil(t.w.now.Add(time.Millisecond))
	}
	return nil
}

// Close implements scenarios.Target: nothing outlives a simulated run.
func (t *Target) Close() error { return nil }

// Now implements scenarios.Target: virtual time.
func (t *Target) Now() time.Time {
	if t.w == nil {
		return epoch()
	}
	return t.w.now
}

// Sleep implements scenarios.Target: d of virtual time passes.
func (t *Target) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.w.runUntil(t.w.now.Add(d))
	return nil
}

// Nodes implements scenarios.Target: roles as /v1/health reports them
// (a master that acts as primary, the shards a coreapp serves and hears
// the gateway on).
func (t *Target) Nodes(context.Context) (map[string]scenarios.NodeState, error) {
	out := map[string]scenarios.NodeState{}
	for _, m := range t.w.masters {
		role := "secondary_master"
		if m.primary() {
			role = "primary_master"
		}
		out[m.p.id] = scenarios.NodeState{ID: m.p.id, Role: role, Up: m.p.up && !m.p.paused}
	}
	for _, c := range t.w.coreapps {
		st := scenarios.NodeState{ID: c.p.id, Role: "coreapp", Up: c.p.up && !c.p.paused}
		if c.p.up {
			st.Shards = c.served()
		}
		out[c.p.id] = st
	}
	return out, nil
}

func (t *Target) refresh() {
	evs := t.w.gw.log.Since(uint64(t.seen) + 1)
	t.seen += len(evs)
	t.witness.Fold(evs)
}

// Served implements scenarios.Target.
func (t *Target) Served() map[int]string {
	t.refresh()
	return t.witness.Served(t.shards)
}

// Failovers implements scenarios.Target.
func (t *Target) Failovers() []scenarios.FailoverSeen {
	t.refresh()
	return t.witness.Failovers()
}

// Sessions are every gateway session so far (scenarios.SessionWitness),
// for reports.
func (t *Target) Sessions() []scenarios.SessionSeen {
	t.refresh()
	return t.witness.Sessions()
}

// Violations implements scenarios.Target: the gateway's log, then the
// simulator's ground truth (truth.go).
func (t *Target) Violations() []scenarios.Violation {
	t.refresh()
	return append(t.witness.Violations(), t.w.truth.violations...)
}

// Grants implements scenarios.Target. The records are appended to, never
// changed, so the caller may keep the slice (capped at its length).
func (t *Target) Grants() []scenarios.LeaseGrant { return capped(t.w.grants) }

// Declarations implements scenarios.Target.
func (t *Target) Declarations() []scenarios.Declaration { return capped(t.w.declarations) }

// Commands implements scenarios.Target.
func (t *Target) Commands() []scenarios.Command { return capped(t.w.commands) }

func capped[T any](s []T) []T { return s[:len(s):len(s)] }

func (t *Target) node(id string) (*proc, error) {
	if m := t.w.masterByID(id); m != nil {
		return m.p, nil
	}
	if c := t.w.coreappByID(id); c != nil {
		return c.p, nil
	}
	return nil, fmt.Errorf("%s: no such node", id)
}

// Kill implements scenarios.Target: a crash, no goodbye.
func (t *Target) Kill(_ context.Context, id string) error {
	p, err := t.node(id)
	if err != nil {
		return err
	}
	if !p.up {
		return fmt.Errorf("kill %s: not running", id)
	}
	if m := t.w.masterByID(id); m != nil {
		m.crash()
	} else {
		t.w.coreappByID(id).crash()
	}
	return nil
}

// Stop implements scenarios.Target: SIGTERM, and the wait for the process
// to exit (a coreapp hands its shards over first, rule 5).
func (t *Target) Stop(ctx context.Context, id string) error {
	p, err := t.node(id)
	if err != nil {
		return err
	}
	if !p.up {
		return fmt.Errorf("stop %s: not running", id)
	}
	p.resume() // SIGTERM to a stopped process: the supervisor continues it
	if m := t.w.masterByID(id); m != nil {
		m.stop()
	} else {
		t.w.coreappByID(id).stop()
	}
	return t.runUntil(ctx, t.w.now.Add(startWait), func() bool { return !p.up })
}

// Pause implements scenarios.Target: SIGSTOP.
func (t *Target) Pause(_ context.Context, id string) error {
	p, err := t.node(id)
	if err != nil {
		return err
	}
	if !p.up {
		return fmt.Errorf("pause %s: not running", id)
	}
	p.paused = true
	return nil
}

// Resume implements scenarios.Target: SIGCONT.
func (t *Target) Resume(_ context.Context, id string) error {
	p, err := t.node(id)
	if err != nil {
		return err
	}
	p.resume()
	return nil
}

// Restart implements scenarios.Target: stop (SIGTERM, as the supervisor
// does; SIGKILL if it has not exited after the grace) and start again,
// waiting until the new process has read its settings.
func (t *Target) Restart(ctx context.Context, id string) error {
	p, err := t.node(id)
	if err != nil {
		return err
	}
	if p.up {
		p.resume()
		if m := t.w.masterByID(id); m != nil {
			m.stop()
		} else {
			t.w.coreappByID(id).stop()
		}
		_ = t.runUntil(ctx, t.w.now.Add(5*time.Second), func() bool { return !p.up })
		if p.up {
			_ = t.Kill(ctx, id)
		}
	}
	return t.startProc(ctx, id)
}

func (t *Target) startProc(ctx context.Context, id string) error {
	var ready func() bool
	if m := t.w.masterByID(id); m != nil {
		m.start()
		ready = func() bool { return m.haveSnap }
	} else {
		c := t.w.coreappByID(id)
		c.start()
		ready = func() bool { return c.ready }
	}
	if err := t.runUntil(ctx, t.w.now.Add(startWait), ready); err != nil {
		if t.w.net.cut(id, "settings") || t.w.net.cut("settings", id) {
			return fmt.Errorf("%s: %w (the scenario cuts it from the settings service: a node cannot start without reading its settings)", id, err)
		}
		return fmt.Errorf("%s: %w", id, err)
	}
	return nil
}

// StartNode implements scenarios.Target.
func (t *Target) StartNode(ctx context.Context, role string) (string, error) {
	switch role {
	case "master":
		id := fmt.Sprintf("master-%d", len(t.w.masters)+1)
		t.w.masters = append(t.w.masters, newMaster(t.w, id, len(t.w.coreapps)))
		return id, t.startProc(ctx, id)
	case "coreapp":
		id := fmt.Sprintf("coreapp-%d", len(t.w.coreapps)+1)
		t.w.addCoreapp(newCoreapp(t.w, id))
		return id, t.startProc(ctx, id)
	}
	return "", fmt.Errorf("start: %q: want master or coreapp", role)
}

// Patch implements scenarios.Target: the settings API's PATCH.
func (t *Target) Patch(_ context.Context, body json.RawMessage) error {
	return t.w.store.patch(body)
}

// SetShards implements scenarios.Target.
func (t *Target) SetShards(_ context.Context, n int) error {
	if err := shard.CountError(n); err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	t.w.store.setShards(n)
	t.shards = n
	return nil
}

// Network implements scenarios.Target.
func (t *Target) Network(_ context.Context, links []scenarios.NetLink) error {
	t.w.net.set(links)
	return nil
}

// Clock implements scenarios.Target.
func (t *Target) Clock(_ context.Context, id string, rate float64) error {
	p, err := t.node(id)
	if err != nil {
		return err
	}
	if rate <= 0 {
		return fmt.Errorf("clock %s: rate must be > 0, got %g", id, rate)
	}
	p.setRate(rate)
	return nil
}

// AllServed implements the runner's allServer: Served's verdict on every
// shard below n, cached with it until the gateway's log moves.
func (t *Target) AllServed(n int) bool {
	t.refresh()
	return t.witness.AllServed(t.shards, n)
}
