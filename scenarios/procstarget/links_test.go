package procstarget_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcsim/mcsim/health"
	"github.com/mcsim/mcsim/scenarios"
	"github.com/mcsim/mcsim/scenarios/procstarget"
)

// The fault layer must reach every link a node has, on real processes,
// including connections opened before the fault (the cluster below is
// started, and every gRPC connection and gossip peer established, before
// any fault is set), and a heal must remove it completely. One cluster
// serves every case, in order; each case ends with the cluster healed and
// stable again, which is itself part of what it shows.
//
// The intervals: heartbeat 1 s, unhealthy 3 s (so rule 1 is [3 s, 4 s],
// the lease TTL 3 s); the gateway calls a session silent after 750 ms
// without a pong; gossip on loopback probes every second. The bounds below
// add generous slack for a loaded 2-core machine; the measured times are
// logged.
func TestFaultsReachEveryLink(t *testing.T) {
	bin := buildBinary(t)
	tg, err := procstarget.New(procstarget.Config{Binary: bin, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tg.Close() })
	ctx := t.Context()
	settings := json.RawMessage(`{"heartbeat_interval":1,"unhealthy_interval":3}`)
	if err := tg.Start(ctx, scenarios.Cluster{Masters: 2, Coreapps: 3, Shards: 2}, settings); err != nil {
		t.Fatalf("start: %v", err)
	}
	c := &linkCluster{ctx: ctx, tg: tg,
		nodes: []string{"master-1", "master-2", "coreapp-1", "coreapp-2", "coreapp-3"}}
	c.stable(t)

	// Order matters only for speed: the cheap cases that must change
	// nothing first, the ones that move shards and the lease last.
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"delay-is-not-death", c.delayIsNotDeath},
		{"slow-clock-is-not-death", c.slowClock},
		{"watch-link", c.watchLink},
		{"paused-node-gets-the-table", c.pausedNode},
		{"gateway-one-way", c.gatewayOneWay},
		{"isolate-owner", c.isolateOwner},
		{"master-settings-cut", c.masterSettingsCut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A case that fails half-way leaves no fault to the next one.
			t.Cleanup(func() {
				_ = tg.Network(ctx, nil)
				for _, id := range c.nodes {
					_ = tg.Clock(ctx, id, 1)
				}
			})
			tc.run(t)
		})
	}
}

// linkCluster is the running cluster the cases share.
type linkCluster struct {
	ctx   context.Context
	tg    *procstarget.Target
	nodes []string // every master and coreapp
}

const (
	poll = 50 * time.Millisecond
	// rule1Max is unhealthy + heartbeat; slack is what a loaded machine
	// may add to any bound (scheduling, gRPC backoff, log flushing).
	rule1Max = 4 * time.Second
	slack    = 3 * time.Second
)

// waitFor polls cond until it holds or d passes (failing t with what),
// and returns how long it took.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(poll)
	}
}

// holdsFor fails t as soon as bad returns a reason within d.
func holdsFor(t testing.TB, d time.Duration, bad func() string) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(poll) {
		if why := bad(); why != "" {
			t.Fatal(why)
		}
	}
}

// stable waits for every shard served, one primary, every node alive in
// gossip, and no coreapp serving what the gateway does not hear.
func (c *linkCluster) stable(t testing.TB) {
	t.Helper()
	waitFor(t, 30*time.Second, "every shard served, one primary, every node alive", func() bool {
		if len(c.tg.Served()) != 2 {
			return false
		}
		h, err := c.tg.Health(c.ctx)
		if err != nil {
			return false
		}
		primaries := 0
		for _, id := range c.nodes {
			e, ok := h[id]
			if !ok || e.State != health.StateAlive || e.Error != "" {
				return false
			}
			if e.Role == health.RolePrimaryMaster {
				primaries++
			}
		}
		return primaries == 1
	})
}

func (c *linkCluster) health(t testing.TB) map[string]health.Entry {
	t.Helper()
	h, err := c.tg.Health(c.ctx)
	if err != nil {
		t.Fatalf("/v1/health: %v", err)
	}
	return h
}

func (c *linkCluster) primary(t testing.TB) string {
	t.Helper()
	for id, e := range c.health(t) {
		if e.Role == health.RolePrimaryMaster {
			return id
		}
	}
	t.Fatal("no primary master")
	return ""
}

func (c *linkCluster) network(t testing.TB, links []scenarios.NetLink) {
	t.Helper()
	if err := c.tg.Network(c.ctx, links); err != nil {
		t.Fatalf("Network(%v): %v", links, err)
	}
}

// heal ends every network fault; the cluster must then settle.
func (c *linkCluster) heal(t testing.TB) {
	t.Helper()
	c.network(t, nil)
}

// cut is a partition of a from every peer in others, both ways.
func cut(a string, others ...string) []scenarios.NetLink {
	var out []scenarios.NetLink
	for _, o := range others {
		if o != a {
			out = append(out, scenarios.NetLink{From: a, To: o, Cut: true}, scenarios.NetLink{From: o, To: a, Cut: true})
		}
	}
	return out
}

// noChange fails when a coreapp is declared unhealthy after nDecl
// declarations or the store grants a new lease term after nGrants.
func (c *linkCluster) noChange(nDecl, nGrants int) func() string {
	return func() string {
		if d := c.tg.Declarations(); len(d) > nDecl {
			return fmt.Sprintf("%s declared %s unhealthy at %s", d[nDecl].Master, d[nDecl].Coreapp, d[nDecl].At.Format(time.RFC3339Nano))
		}
		for _, g := range c.tg.Grants()[nGrants:] {
			if !g.Renewal && !g.Released {
				return fmt.Sprintf("the store granted a new lease term to %s (epoch %d)", g.Master, g.Epoch)
			}
		}
		return ""
	}
}

// slowRTTs is how many answered heartbeats of a master took longer than
// 250 ms (mcsim_master_heartbeat_rtt_seconds: count minus the le="0.25"
// bucket), read from its /metrics.
func slowRTTs(ctx context.Context, metricsURL string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	const name = "mcsim_master_heartbeat_rtt_seconds"
	count, fast := -1, -1
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		field := func() int {
			n, _ := strconv.Atoi(line[strings.LastIndexByte(line, ' ')+1:])
			return n
		}
		switch {
		case strings.HasPrefix(line, name+"_count "):
			count = field()
		case strings.HasPrefix(line, name+`_bucket{le="0.25"} `):
			fast = field()
		}
	}
	if count < 0 || fast < 0 {
		return 0, fmt.Errorf("%s: no %s histogram", metricsURL, name)
	}
	return count - fast, sc.Err()
}

// A one-way delay on an open link slows it and nothing more: with the
// owner of shard 0 answering the primary's heartbeats 400 ms late, nobody
// is declared unhealthy for 6 s (slow is not dead), and the primary's
// heartbeat round trips do take more than 250 ms, which shows the delay
// reached the already open master ↔ coreapp connection. With the masters
// dialing coreapps without the layer (no preamble, so the coreapp cannot
// tell who calls), no round trip passed 250 ms and this failed.
func (c *linkCluster) delayIsNotDeath(t *testing.T) {
	owner, primary := c.tg.Served()[0], c.primary(t)
	metrics := c.health(t)[primary].Metrics
	before, err := slowRTTs(c.ctx, metrics)
	if err != nil {
		t.Fatal(err)
	}
	nDecl, nGrants := len(c.tg.Declarations()), len(c.tg.Grants())
	c.network(t, []scenarios.NetLink{{From: owner, To: primary, Latency: 400 * time.Millisecond}})
	holdsFor(t, 6*time.Second, c.noChange(nDecl, nGrants))
	after, err := slowRTTs(c.ctx, metrics)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s → %s +400 ms: %d heartbeat round trips over 250 ms in 6 s (before: %d), no declaration", owner, primary, after-before, before)
	if after-before < 3 {
		t.Errorf("only %d of %s's heartbeat round trips took over 250 ms while %s answered 400 ms late: the delay did not reach the open link", after-before, primary, owner)
	}
	c.heal(t)
	// Healed, round trips are fast again: at most the heartbeats in flight
	// at the heal are still slow.
	healed, _ := slowRTTs(c.ctx, metrics)
	holdsFor(t, 3*time.Second, c.noChange(nDecl, nGrants))
	if again, _ := slowRTTs(c.ctx, metrics); again-healed > 1 {
		t.Errorf("%d slow round trips after the heal: the delay was not removed", again-healed)
	}
}

// A slow clock on the primary is not a fault anyone should act on: at
// half speed its heartbeats go every 2 s of real time and its rule-1
// deadline is 6 s of real time (it can only declare later, never
// earlier), and it renews the lease every 2 s, within the store's 3 s TTL,
// which runs on the store's clock. For 5 s nothing is declared and no
// other master takes over; rate 1 restores it. (This case shows the clock
// reaching the node does no harm; that the rate is applied at all is
// internal/clock's and the clock-skew-primary scenario's business.)
func (c *linkCluster) slowClock(t *testing.T) {
	primary := c.primary(t)
	nDecl, nGrants := len(c.tg.Declarations()), len(c.tg.Grants())
	if err := c.tg.Clock(c.ctx, primary, 0.5); err != nil {
		t.Fatal(err)
	}
	holdsFor(t, 5*time.Second, c.noChange(nDecl, nGrants))
	if err := c.tg.Clock(c.ctx, primary, 1); err != nil {
		t.Fatal(err)
	}
	holdsFor(t, 2*time.Second, c.noChange(nDecl, nGrants))
	if p := c.primary(t); p != primary {
		t.Errorf("primary %s, want %s still", p, primary)
	}
}

// The coreapp ↔ settings Watch link: a coreapp cut from the settings
// service only does not receive a restart-required change (its
// pending_restart, from its own Status over an unfaulted read, stays
// without it) while the others do; after the heal it does, on the Watch
// stream opened before the cut (held bytes delivered) or a new one. With
// the nodes dialing the settings service without the layer, or with the
// launcher not setting the settings service's own layer, the cut coreapp
// listed it as soon as the others and this failed.
func (c *linkCluster) watchLink(t *testing.T) {
	served := c.tg.Served()
	var victim string
	for _, id := range []string{"coreapp-1", "coreapp-2", "coreapp-3"} {
		if served[0] != id && served[1] != id {
			victim = id // a standby: the cut moves nothing
		}
	}
	pending := func(id string) bool {
		return slices.Contains(c.health(t)[id].PendingRestart, "verbose_logging")
	}
	if pending(victim) {
		t.Fatalf("%s already has verbose_logging pending", victim)
	}
	c.network(t, cut(victim, "settings"))
	if err := c.tg.Patch(c.ctx, json.RawMessage(`{"verbose_logging":true}`)); err != nil {
		t.Fatal(err)
	}
	// The others hear of it: the change was made and Watch works.
	others := waitFor(t, 10*time.Second, "the other coreapps list verbose_logging pending", func() bool {
		for _, id := range []string{"coreapp-1", "coreapp-2", "coreapp-3"} {
			if id != victim && !pending(id) {
				return false
			}
		}
		return true
	})
	holdsFor(t, 2*time.Second, func() string {
		if pending(victim) {
			return victim + " received the change although cut from the settings service"
		}
		return ""
	})
	c.heal(t)
	after := waitFor(t, 15*time.Second, victim+" lists verbose_logging pending after the heal", func() bool { return pending(victim) })
	t.Logf("%s cut from settings: others had the change in %v, %s not within 2 s more; after the heal in %v", victim, others, victim, after)
	// Back to the start's value, so pending_restart is empty again.
	if err := c.tg.Patch(c.ctx, json.RawMessage(`{"verbose_logging":false}`)); err != nil {
		t.Fatal(err)
	}
	c.stable(t)
}

// A node paused when the table changes gets it as it resumes, and the
// change does not wait for it: a standby, paused, is cut one way from the
// primary (standby → primary: a fault only the standby's own layer
// applies, to its heartbeat answers); Network returns at once (a push
// that waited for the frozen node would take the 2 s push timeout and
// fail); resumed, the standby applies the cut, so the primary declares it
// unhealthy within rule 1 of the resume. Without the push on resume
// (Target.Resume → PushFaults) it answered every heartbeat, nothing was
// declared and this failed. The declaration moves no shard.
func (c *linkCluster) pausedNode(t *testing.T) {
	served := c.tg.Served()
	var standby string
	for _, id := range []string{"coreapp-1", "coreapp-2", "coreapp-3"} {
		if served[0] != id && served[1] != id {
			standby = id
		}
	}
	primary := c.primary(t)
	nDecl := len(c.tg.Declarations())
	if err := c.tg.Pause(c.ctx, standby); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = c.tg.Resume(c.ctx, standby)
		}
	})
	start := time.Now()
	c.network(t, []scenarios.NetLink{{From: standby, To: primary, Cut: true}})
	push := time.Since(start)
	if push > time.Second {
		t.Errorf("Network took %v with %s paused: it waited for the frozen node", push, standby)
	}
	if err := c.tg.Resume(c.ctx, standby); err != nil {
		t.Fatalf("resume %s: %v", standby, err)
	}
	resumed = true
	at := time.Now()
	var decl scenarios.Declaration
	waitFor(t, rule1Max+slack, primary+" declares the resumed "+standby+" unhealthy", func() bool {
		for _, d := range c.tg.Declarations()[nDecl:] {
			if d.Coreapp == standby {
				decl = d
				return true
			}
		}
		return false
	})
	t.Logf("%s paused: Network returned in %v; resumed, declared by %s %v later", standby, push, decl.Master, decl.At.Sub(at))
	c.heal(t)
	c.stable(t)
}

// A one-way cut gateway → owner of shard 1, on the session stream open
// since the start, is applied by the gateway's own layer (in the
// launcher's process, fed by SetFaults): its pings are held, so the
// session is silent at the gateway within ~1 s although the owner's side
// is untouched. The heal delivers what was held and the same session is
// heard again (no new session, no failover): a heal restores an open
// connection rather than leaving it to be replaced. With the launcher not
// setting the gateway's layer, the pings went on, the session never went
// silent and this failed. Silence this short moves nothing: the master
// hears the owner's heartbeats all along.
func (c *linkCluster) gatewayOneWay(t *testing.T) {
	owner := c.tg.Served()[1]
	nFail, nDecl, nGrants, nCmd := len(c.tg.Failovers()), len(c.tg.Declarations()), len(c.tg.Grants()), len(c.tg.Commands())
	c.network(t, []scenarios.NetLink{{From: "gateway", To: owner, Cut: true}})
	silent := waitFor(t, 2500*time.Millisecond, "the gateway stops hearing "+owner+"'s shard 1 session", func() bool {
		return c.tg.Served()[1] != owner
	})
	at := time.Now()
	c.heal(t)
	heard := time.Since(at) + waitFor(t, 3*time.Second, "the same session of "+owner+" heard again", func() bool {
		return c.tg.Served()[1] == owner
	})
	t.Logf("gateway → %s cut: silent in %v; healed, heard again in %v", owner, silent, heard)
	if f := c.tg.Failovers(); len(f) > nFail {
		t.Errorf("a failover during a 1 s one-way gateway cut: %+v", f[nFail:])
	}
	if why := c.noChange(nDecl, nGrants)(); why != "" {
		t.Error(why)
	}
	// The same session: no assign or release reached any coreapp.
	if cmds := c.tg.Commands(); len(cmds) > nCmd {
		t.Errorf("commands during a 1 s one-way gateway cut: %+v", cmds[nCmd:])
	}
}

// Isolating the owner of shard 0 cuts every link it has, the connections
// it opened before the cut included (the session, the Watch, the
// heartbeat connection and the gossip peers were all open long before):
//   - gateway: its session goes silent at the gateway within ~1 s (with
//     the coreapp's gateway connection dialed without the layer, so that
//     neither side knows the peer, pongs kept coming and this failed);
//   - heartbeats: the primary declares it unhealthy and shard 0 is served
//     by another coreapp within rule 1 (with the masters dialing coreapps
//     without the layer, heartbeats were answered, nothing was declared
//     and this failed);
//   - gossip: the settings service's gossip member gives it up (failed in
//     /v1/health) within memberlist's failure detection (with the
//     children's memberlist transports unwrapped it stayed alive, the
//     other nodes relaying the settings service's indirect probes, and
//     this failed).
//
// After the heal it is alive in gossip again and comes back serving
// nothing: a standby. A partitioned node looks partitioned to everyone.
func (c *linkCluster) isolateOwner(t *testing.T) {
	owner := c.tg.Served()[0]
	primary := c.primary(t)
	nDecl := len(c.tg.Declarations())
	at := time.Now()
	c.network(t, cut(owner, append(slices.Clone(c.nodes), "settings", "gateway")...))

	silent := waitFor(t, 2500*time.Millisecond, "the gateway stops hearing "+owner+"'s shard 0 session", func() bool {
		return c.tg.Served()[0] != owner
	})
	var decl scenarios.Declaration
	waitFor(t, rule1Max+slack, primary+" declares "+owner+" unhealthy", func() bool {
		for _, d := range c.tg.Declarations()[nDecl:] {
			if d.Coreapp == owner {
				decl = d
				return true
			}
		}
		return false
	})
	if decl.Master != primary {
		t.Errorf("%s declared %s, want the primary %s", decl.Master, owner, primary)
	}
	var next string
	failover := time.Since(at) + waitFor(t, rule1Max+slack, "shard 0 served by another coreapp", func() bool {
		next = c.tg.Served()[0]
		return next != "" && next != owner
	})
	var state string
	gossip := time.Since(at) + waitFor(t, 15*time.Second, "the settings service's gossip gives "+owner+" up", func() bool {
		state = c.health(t)[owner].State
		return state == health.StateFailed
	})
	t.Logf("isolated %s: silent at the gateway in %v, declared by %s in %v, shard 0 served by %s in %v, %s in gossip in %v",
		owner, silent, decl.Master, decl.At.Sub(at), next, failover, state, gossip)
	if d := decl.At.Sub(at); d < 3*time.Second-250*time.Millisecond {
		t.Errorf("declared %v after the cut: before unhealthy_interval", d)
	}

	c.heal(t)
	var e health.Entry
	alive := waitFor(t, 20*time.Second, owner+" alive in gossip, answering, serving nothing", func() bool {
		e = c.health(t)[owner]
		return e.State == health.StateAlive && e.Error == "" && len(e.Shards) == 0
	})
	t.Logf("healed: %s alive in gossip and serving nothing after %v", owner, alive)
	for s, id := range c.tg.Served() {
		if id == owner {
			t.Errorf("after the heal %s serves shard %d at the gateway, want a standby", owner, s)
		}
	}
	c.stable(t)

	// The heal is complete: the healed coreapp is the only standby, so a
	// graceful stop of shard 0's owner (rule 5) hands the shard to it,
	// which needs the primary's assign to reach it and its new session to
	// reach the gateway, both over links it had before the cut. A link
	// left cut would leave shard 0 unserved here.
	now := c.tg.Served()[0]
	before, err := c.tg.Health(c.ctx)
	if err != nil {
		t.Fatal(err)
	}
	at = time.Now()
	// Stop returns once the process exited, which with a standby is after
	// the handover.
	if err := c.tg.Stop(c.ctx, now); err != nil {
		t.Fatalf("stop %s: %v", now, err)
	}
	handover := time.Since(at) + waitFor(t, 5*time.Second, "shard 0 handed to the healed "+owner, func() bool { return c.tg.Served()[0] == owner })
	t.Logf("%s stopped: shard 0 served by the healed %s %v after the SIGTERM", now, owner, handover)
	if err := c.tg.Restart(c.ctx, now); err != nil {
		t.Fatalf("restart %s: %v", now, err)
	}
	c.stable(t)
	// A restart keeps the node's addresses (gossip takes a new
	// incarnation at the same address at once, and peers redial the
	// same gRPC address); a node that came back elsewhere waited for its
	// old self to be declared dead before anyone heard of it.
	after, err := c.tg.Health(c.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b, a := before[now].Metrics, after[now].Metrics; b == "" || a != b {
		t.Errorf("%s restarted at metrics %q, was %q: a restart keeps the node's addresses", now, a, b)
	}
}

// A master ↔ settings cut (the primary from the settings service only,
// every other link intact) faults the lease link: its renewals no longer
// reach the store, which grants a new term to the other master within the
// lease bound (TTL 3 s + renewal 1 s). With the nodes dialing the settings
// service without the layer the renewals went on, no new term was granted
// and this failed.
// After the heal the old primary is a secondary.
func (c *linkCluster) masterSettingsCut(t *testing.T) {
	old := c.primary(t)
	nGrants := len(c.tg.Grants())
	at := time.Now()
	c.network(t, cut(old, "settings"))
	var g scenarios.LeaseGrant
	took := waitFor(t, rule1Max+slack, "the store grants the lease to another master", func() bool {
		for _, x := range c.tg.Grants()[nGrants:] {
			if !x.Renewal && !x.Released && x.Master != old {
				g = x
				return true
			}
		}
		return false
	})
	t.Logf("%s cut from settings: the store granted %s epoch %d after %v (%v by the store's record)", old, g.Master, g.Epoch, took, g.At.Sub(at))
	c.heal(t)
	waitFor(t, 15*time.Second, old+" a secondary, "+g.Master+" the primary", func() bool {
		h := c.health(t)
		return h[old].Role == health.RoleSecondaryMaster && h[g.Master].Role == health.RolePrimaryMaster
	})
	c.stable(t)
}
