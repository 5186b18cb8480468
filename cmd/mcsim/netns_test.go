//go:build linux

package main

// A cluster across hosts, on this machine: every "host" is a network
// namespace of its own, linked to a bridge in a switch namespace by a veth
// pair, with an address only inside the namespaces the test makes. The
// settings service and the gateway run on host 0, masters and coreapps
// spread over hosts 1-3, every node bound on 0.0.0.0 and announcing its
// host's address with --advertise, gossip encrypted and the admin password
// set (off loopback both are required).
//
// The test process itself stays in the root namespace, which gets no
// address: it builds the network, then runs itself again inside host 0
// (MCSIM_NETNS_CHILD) to drive the cluster from there, and removes every
// namespace, and every process left in one, on every exit path.
//
//	sudo go test -run TestClusterAcrossNetworkNamespaces -v ./cmd/mcsim
//
// MCSIM_NETNS_RUNS=20 repeats the crash and the primary kill 20 times
// (scripts/netns-failover.sh prints the figures); MCSIM_NETNS_LOOPBACK=1
// runs the same cluster with every node in host 0 on 127.0.0.1, the
// loopback baseline. With MCSIM_TEST_POSTGRES set (as CI sets it) the
// settings service runs on PostgreSQL: a server of its own started inside
// host 0 by scripts/test-postgres.sh (the one MCSIM_TEST_POSTGRES names is
// in the root namespace, which no host can reach); bbolt otherwise.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcsim/mcsim/cluster/procs"
	"github.com/mcsim/mcsim/gateway"
	"github.com/mcsim/mcsim/health"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/client"
)

const (
	netnsChildEnv    = "MCSIM_NETNS_CHILD"
	netnsRunsEnv     = "MCSIM_NETNS_RUNS"
	netnsLoopbackEnv = "MCSIM_NETNS_LOOPBACK"
	netnsPostgresEnv = "MCSIM_TEST_POSTGRES"
	netnsCIEnv       = "MCSIM_CI"
	// netnsSubnet is the hosts' network; it exists only inside the
	// test's namespaces, so it cannot clash with the machine's.
	netnsSubnet = "10.213.0."
)

// netnsPlan is what the child needs to know, passed as JSON.
type netnsPlan struct {
	Bin      string
	Data     string
	Hosts    []netnsHost // [0]: settings and gateway
	Loopback bool
	Runs     int
	// Postgres runs the settings service on a PostgreSQL server of its
	// own inside host 0 (MCSIM_TEST_POSTGRES set: PostgreSQL is there to
	// be used); otherwise on bbolt.
	Postgres bool
}

type netnsHost struct{ NS, IP string }

func TestClusterAcrossNetworkNamespaces(t *testing.T) {
	if raw := os.Getenv(netnsChildEnv); raw != "" {
		var plan netnsPlan
		if err := json.Unmarshal([]byte(raw), &plan); err != nil {
			t.Fatalf("%s: %v", netnsChildEnv, err)
		}
		runNetnsCluster(t, plan)
		return
	}
	if testing.Short() {
		t.Skip("starts a real cluster in network namespaces")
	}
	skip := func(why string) {
		if os.Getenv(netnsCIEnv) != "" {
			t.Fatalf("cannot run the network namespace test, and in CI (%s set) it must not be skipped: %s", netnsCIEnv, why)
		}
		t.Skip("skipped: " + why)
	}
	if os.Geteuid() != 0 {
		skip("needs root to create network namespaces (run it with sudo)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skip("the ip command (Debian package iproute2) is not installed")
	}
	plan := netnsPlan{Bin: buildMcsim(t), Data: t.TempDir(), Runs: 1, Loopback: os.Getenv(netnsLoopbackEnv) != "",
		Postgres: os.Getenv(netnsPostgresEnv) != ""}
	if v := os.Getenv(netnsRunsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a whole number ≥ 1", netnsRunsEnv, v)
		}
		plan.Runs = n
	}

	removeStaleNetns(t)
	n := newNetnsNetwork(t, 4)
	defer n.remove()
	if err := n.build(); err != nil {
		n.remove()
		skip(err.Error())
	}
	plan.Hosts = n.hosts

	b, _ := json.Marshal(plan)
	ctx, cancel := context.WithTimeout(t.Context(), netnsBudget(plan.Runs))
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.hosts[0].NS, os.Args[0],
		"-test.run", "^TestClusterAcrossNetworkNamespaces$", "-test.v", "-test.count", "1")
	cmd.Env = append(os.Environ(), netnsChildEnv+"="+string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		// The child's own verdict lines would read as this test's.
		if !strings.HasPrefix(strings.TrimSpace(line), "--- ") && !strings.HasPrefix(line, "=== ") && line != "PASS" && line != "FAIL" {
			t.Log(line)
		}
	}
	if err != nil {
		t.Fatalf("the cluster run inside %s failed: %v", n.hosts[0].NS, err)
	}
}

// netnsBudget is how long the cluster run may take: start, the checks
// (each within a few seconds), restarts.
func netnsBudget(runs int) time.Duration { return time.Duration(50+runs*25) * time.Second }

// netnsNetwork is the test's namespaces: a switch with a bridge and one
// namespace per host, named after this process so parallel runs cannot
// meet.
type netnsNetwork struct {
	t      *testing.T
	prefix string
	hosts  []netnsHost
	once   sync.Once
}

func newNetnsNetwork(t *testing.T, hosts int) *netnsNetwork {
	n := &netnsNetwork{t: t, prefix: fmt.Sprintf("mcsim%d", os.Getpid())}
	for i := range hosts {
		n.hosts = append(n.hosts, netnsHost{NS: fmt.Sprintf("%s-h%d", n.prefix, i), IP: netnsSubnet + strconv.Itoa(i+1)})
	}
	t.Cleanup(n.remove)
	return n
}

func (n *netnsNetwork) sw() string { return n.prefix + "-sw" }

// build makes the namespaces and links; an error says what the machine
// does not allow.
func (n *netnsNetwork) build() error {
	ipc := func(args ...string) error {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	steps := [][]string{{"netns", "add", n.sw()},
		{"-n", n.sw(), "link", "add", "br0", "type", "bridge"},
		{"-n", n.sw(), "link", "set", "br0", "up"}}
	for i, h := range n.hosts {
		port := "h" + strconv.Itoa(i)
		steps = append(steps,
			[]string{"netns", "add", h.NS},
			[]string{"-n", n.sw(), "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
			[]string{"-n", n.sw(), "link", "set", port, "master", "br0", "up"},
			[]string{"-n", h.NS, "addr", "add", h.IP + "/24", "dev", "eth0"},
			[]string{"-n", h.NS, "link", "set", "eth0", "up"},
			[]string{"-n", h.NS, "link", "set", "lo", "up"})
	}
	for _, s := range steps {
		if err := ipc(s...); err != nil {
			return fmt.Errorf("cannot build the test network: %w", err)
		}
	}
	return nil
}

// remove kills every process left in the namespaces and deletes them
// (the veth pairs and the bridge go with them). Safe to call twice.
func (n *netnsNetwork) remove() {
	n.once.Do(func() {
		for _, ns := range append(hostNames(n.hosts), n.sw()) {
			out, _ := exec.Command("ip", "netns", "pids", ns).Output()
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil && !bytes.Contains(out, []byte("No such file")) {
				n.t.Logf("ip netns del %s: %v: %s", ns, err, bytes.TrimSpace(out))
			}
		}
	})
}

// removeStaleNetns removes the namespaces of earlier runs whose test
// process is gone: a test killed by a signal runs neither its cleanups nor
// its defers. A namespace of a live process (a parallel run) is left alone.
func removeStaleNetns(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	stale := map[int][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, "mcsim")
		if !ok {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		stale[pid] = append(stale[pid], name)
	}
	// A PostgreSQL an earlier run started in its host 0 (startNetnsPostgres,
	// named by that child's pid) is stopped and its data dir removed.
	dirs, _ := filepath.Glob("/tmp/mcsim-pg-netns-*")
	for _, dir := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(dir, "/tmp/mcsim-pg-netns-"))
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		t.Logf("removing the PostgreSQL of an earlier run (pid %d, gone): %s", pid, dir)
		if script, err := filepath.Abs("../../scripts/test-postgres.sh"); err == nil {
			stop := exec.Command("bash", script, "stop")
			stop.Env = append(os.Environ(), "MCSIM_PG_DIR="+dir)
			_ = stop.Run()
		}
		_ = os.RemoveAll(dir)
	}
	for pid, names := range stale {
		t.Logf("removing the namespaces of an earlier run (pid %d, gone): %v", pid, names)
		n := &netnsNetwork{t: t, prefix: fmt.Sprintf("mcsim%d", pid)}
		for _, name := range names {
			if !strings.HasSuffix(name, "-sw") {
				n.hosts = append(n.hosts, netnsHost{NS: name})
			}
		}
		n.remove()
	}
}

func hostNames(hs []netnsHost) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.NS)
	}
	return out
}

// netnsCluster is the running cluster, seen from host 0.
type netnsCluster struct {
	t        *testing.T
	rng      *rand.Rand // the kills' phase in the heartbeat cycle
	plan     netnsPlan
	api      *client.Client
	sup      *procs.Supervisor
	gateway  string // gRPC address
	settings string // gRPC address
	gossip   string
	book     map[string]*mcsimv1.NodeAddresses
	control  map[string]string // node id → gRPC address for FaultService
}

// The cluster's timings: rule 1 moves a crashed coreapp's shards within
// unhealthy + heartbeat of the crash; rule 3 lets a secondary take the
// lease within TTL (unhealthy) + heartbeat of the primary's death. Both
// get tolerance more for real time on a loaded 2-core machine (process
// scheduling, the 20 ms poll, assign + connect), as the loopback tests do.
const (
	nsHeartbeat = time.Second
	nsUnhealthy = 2 * time.Second
	nsTolerance = 2 * time.Second
	nsPassword  = "netns-test-password"
	nsKey       = "netns-test-gossip-key"
)

func runNetnsCluster(t *testing.T, plan netnsPlan) {
	// Within the parent's budget, so a wait that never ends fails here
	// with what it saw, not by the parent's kill.
	ctx, cancel := context.WithTimeout(t.Context(), netnsBudget(plan.Runs)-10*time.Second)
	defer cancel()
	c := startNetnsCluster(ctx, t, plan)
	defer c.sup.Close(2 * time.Second)

	var failovers, takeovers []time.Duration
	for run := range plan.Runs {
		failovers = append(failovers, c.crashFailover(ctx, run))
		// The killed primary comes back for the next run's takeover; the
		// cut below needs no second master.
		takeovers = append(takeovers, c.primaryTakeover(ctx, run, run < plan.Runs-1))
	}
	cut := c.cutFailover(ctx)
	if v := gateway.CheckLog(gatewayLog(ctx, t, c.gateway)); len(v) > 0 {
		t.Errorf("gateway log violations: %v", v)
	}
	mode, store := "netns", "bbolt"
	if plan.Loopback {
		mode = "loopback"
	}
	if plan.Postgres {
		store = "postgres"
	}
	ms := func(ds []time.Duration) string {
		var s []string
		for _, d := range ds {
			s = append(s, strconv.FormatInt(d.Milliseconds(), 10))
		}
		return strings.Join(s, ",")
	}
	// One line for scripts/netns-failover.sh.
	t.Logf("FIGURES mode=%s store=%s failover_ms=%s takeover_ms=%s cut_failover_ms=%d", mode, store, ms(failovers), ms(takeovers), cut.Milliseconds())
}

func startNetnsCluster(ctx context.Context, t *testing.T, plan netnsPlan) *netnsCluster {
	h0 := plan.Hosts[0]
	bind, advertise := "0.0.0.0", []string{"--advertise", h0.IP}
	if plan.Loopback {
		h0.IP, bind, advertise = "127.0.0.1", "127.0.0.1", nil
	}
	c := &netnsCluster{t: t, plan: plan, sup: procs.New(zerolog.Nop()), rng: rand.New(rand.NewPCG(1, 13)),
		settings: h0.IP + ":9091", gossip: h0.IP + ":9092", book: map[string]*mcsimv1.NodeAddresses{}, control: map[string]string{}}
	env := []string{passwordEnv + "=" + nsPassword, clusterKeyEnv + "=" + nsKey, "GOMAXPROCS=1"}

	// The settings service, on this host (the child runs in host 0).
	args := append([]string{"settings", "serve", "--http", bind + ":9090", "--grpc", bind + ":9091", "--gossip", bind + ":9092",
		"--log-format", "json"}, advertise...)
	if plan.Postgres {
		args = append(args, "--store", startNetnsPostgres(t))
	} else {
		args = append(args, "--data", filepath.Join(plan.Data, "settings"))
	}
	startSettingsProcess(ctx, t, plan.Bin, args, env, filepath.Join(plan.Data, "settings.log"))
	c.api = client.New("http://"+h0.IP+":9090", nsPassword, &http.Client{Timeout: 2 * time.Second})
	patch := fmt.Sprintf(`{"heartbeat_interval": %d, "unhealthy_interval": %d}`, nsHeartbeat/time.Second, nsUnhealthy/time.Second)
	if _, err := c.api.Patch(ctx, []byte(patch)); err != nil {
		t.Fatalf("PATCH %s: %v", patch, err)
	}
	if _, err := c.api.Do(ctx, "POST", "/v1/account/shards", []byte(`{"shards": 2}`)); err != nil {
		t.Fatalf("POST /v1/account/shards: %v", err)
	}
	c.book["settings"] = &mcsimv1.NodeAddresses{Addresses: []string{c.settings, c.gossip}}
	c.control["settings"] = c.settings

	gw, err := c.sup.Start(ctx, procs.Spec{Name: "gateway", Path: plan.Bin, Env: env, LogFile: filepath.Join(plan.Data, "gateway.log"),
		Args: append([]string{"gateway", "--grpc", bind + ":9300"}, advertise...)})
	if err != nil {
		t.Fatal(err)
	}
	c.gateway = gw.Ready().GRPC
	c.book["gateway"] = &mcsimv1.NodeAddresses{Addresses: []string{c.gateway}}
	c.control["gateway"] = c.gateway

	// Masters on hosts 1 and 2, coreapps on hosts 1, 2 and 3.
	place := []struct {
		id   string
		host int
	}{{"master-1", 1}, {"master-2", 2}, {"coreapp-1", 1}, {"coreapp-2", 2}, {"coreapp-3", 3}}
	var wg sync.WaitGroup
	errs := make([]error, len(place))
	for i, p := range place {
		wg.Go(func() { _, errs[i] = c.sup.Start(ctx, c.spec(p.id, p.host)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.sup.Procs() {
		c.learn(p)
	}
	pollHealth(ctx, t, c.api, "both shards served and one primary", func(h map[string]health.Entry) bool {
		_, _, ok0 := holderOf(h, 0)
		_, _, ok1 := holderOf(h, 1)
		return ok0 && ok1 && len(mastersByRole(h, "primary_master")) == 1 && len(mastersByRole(h, "secondary_master")) == 1
	})
	if plan.Loopback {
		t.Logf("cluster up: every node in %s on 127.0.0.1", h0.NS)
	} else {
		t.Logf("cluster up: settings and gateway on %s, masters and coreapps on %v", h0.NS, hostNames(plan.Hosts[1:]))
	}
	return c
}

// spec runs a master or coreapp in its host's namespace, bound on every
// interface and announcing the host's address.
func (c *netnsCluster) spec(id string, host int) procs.Spec {
	h := c.plan.Hosts[host]
	bind, advertise := "0.0.0.0", []string{"--advertise", h.IP}
	settingsHost := c.plan.Hosts[0].IP
	if c.plan.Loopback {
		h = c.plan.Hosts[0]
		bind, advertise, settingsHost = "127.0.0.1", nil, "127.0.0.1"
	}
	role, _, _ := strings.Cut(id, "-")
	logFile := filepath.Join(c.plan.Data, id+".log")
	args := []string{"netns", "exec", h.NS, c.plan.Bin, role, "--id", id,
		"--settings", settingsHost + ":9091", "--join", settingsHost + ":9092",
		"--grpc", bind + ":0", "--gossip", bind + ":0", "--metrics", bind + ":0", "--log-file", logFile}
	args = append(args, advertise...)
	if role == "master" {
		args = append(args, "--expect-coreapps", "3")
	} else {
		args = append(args, "--gateway", c.gateway)
	}
	return procs.Spec{Name: id, Path: "ip", Args: args, LogFile: logFile,
		Env: []string{clusterKeyEnv + "=" + nsKey, "GOMAXPROCS=1"}}
}

// learn records a started node's announced addresses: the fault table's
// book and the control address.
func (c *netnsCluster) learn(p *procs.Proc) {
	r := p.Ready()
	addrs := []string{r.GRPC}
	if r.Gossip != "" {
		addrs = append(addrs, r.Gossip)
	}
	c.book[p.Name()] = &mcsimv1.NodeAddresses{Addresses: addrs}
	c.control[p.Name()] = r.GRPC
	if !c.plan.Loopback && !strings.HasPrefix(r.GRPC, netnsSubnet) {
		c.t.Errorf("%s announces gRPC %q, want its host's address (%s…)", p.Name(), r.GRPC, netnsSubnet)
	}
}

// restart starts a killed node again in its namespace and waits until the
// settings service's health view lists it.
func (c *netnsCluster) restart(ctx context.Context, p *procs.Proc) {
	start := time.Now()
	np, err := c.sup.Restart(ctx, p)
	if err != nil {
		c.t.Fatalf("restarting %s: %v", p.Name(), err)
	}
	defer func() {
		c.t.Logf("%s restarted, seen by the settings service after %v", np.Name(), time.Since(start).Round(time.Millisecond))
	}()
	c.learn(np)
	pollHealth(ctx, c.t, c.api, np.Name()+" back", func(h map[string]health.Entry) bool {
		for k, e := range h {
			if health.NodeID(k) == np.Name() && e.PID == np.PID() && e.Role != "" && e.Role != "unknown" {
				return true
			}
		}
		return false
	})
}

// served waits for the gateway to accept a session of shard from another
// coreapp than from, after seq, and returns when (the gateway's clock).
func (c *netnsCluster) served(ctx context.Context, shard int32, from string, seq uint64) time.Time {
	for tick := time.NewTicker(20 * time.Millisecond); ; {
		for _, ev := range eventsAfter(gatewayLog(ctx, c.t, c.gateway), seq) {
			if ev.GetShard() == shard && ev.GetCoreappId() != from &&
				(ev.GetKind() == mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_CONNECT || ev.GetKind() == mcsimv1.GatewayEventKind_GATEWAY_EVENT_KIND_REPLACE) {
				tick.Stop()
				return time.Unix(0, ev.GetUnixNs())
			}
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("shard %d never served by another coreapp than %s: %v", shard, from, ctx.Err())
		case <-tick.C:
		}
	}
}

// atRandomPhase waits a seeded fraction of heartbeat_interval, so that a
// kill falls at a random phase of the heartbeat cycle (as mcsim bench
// does): the waits before it end on events that follow heartbeats.
func (c *netnsCluster) atRandomPhase(ctx context.Context) {
	tm := time.NewTimer(time.Duration(c.rng.Int64N(int64(nsHeartbeat))))
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

// crashFailover SIGKILLs the coreapp serving shard 0 and times, by the
// gateway, until another one serves it (rule 1).
func (c *netnsCluster) crashFailover(ctx context.Context, run int) time.Duration {
	h := pollHealth(ctx, c.t, c.api, "shard 0 served", func(h map[string]health.Entry) bool { _, _, ok := holderOf(h, 0); return ok })
	key, _, _ := holderOf(h, 0)
	victim := c.sup.Lookup(health.NodeID(key))
	seq := lastSeq(gatewayLog(ctx, c.t, c.gateway))
	c.atRandomPhase(ctx)
	if err := victim.Kill(); err != nil {
		c.t.Fatal(err)
	}
	killed := time.Now()
	took := c.served(ctx, 0, victim.Name(), seq).Sub(killed)
	c.t.Logf("run %d: %s killed; shard 0 served again after %v", run, victim.Name(), took.Round(time.Millisecond))
	if bound := nsUnhealthy + nsHeartbeat + nsTolerance; took > bound {
		c.t.Errorf("run %d: failover took %v, want ≤ %v (unhealthy %v + heartbeat %v + tolerance %v)", run, took, bound, nsUnhealthy, nsHeartbeat, nsTolerance)
	}
	c.restart(ctx, victim)
	return took
}

// primaryTakeover SIGKILLs the primary master and times until the other
// one is primary (rule 3).
func (c *netnsCluster) primaryTakeover(ctx context.Context, run int, restart bool) time.Duration {
	h := pollHealth(ctx, c.t, c.api, "a primary and a secondary", func(h map[string]health.Entry) bool {
		return len(mastersByRole(h, "primary_master")) == 1 && len(mastersByRole(h, "secondary_master")) == 1
	})
	primary := c.sup.Lookup(health.NodeID(mastersByRole(h, "primary_master")[0]))
	secondaryKey := mastersByRole(h, "secondary_master")[0]
	c.atRandomPhase(ctx)
	if err := primary.Kill(); err != nil {
		c.t.Fatal(err)
	}
	killed := time.Now()
	pollHealth(ctx, c.t, c.api, secondaryKey+" primary", func(h map[string]health.Entry) bool { return h[secondaryKey].Role == "primary_master" })
	took := time.Since(killed)
	c.t.Logf("run %d: primary %s killed; %s primary after %v", run, primary.Name(), health.NodeID(secondaryKey), took.Round(time.Millisecond))
	if bound := nsUnhealthy + nsHeartbeat + nsTolerance; took > bound {
		c.t.Errorf("run %d: takeover took %v, want ≤ %v (lease TTL %v + heartbeat %v + tolerance %v)", run, took, bound, nsUnhealthy, nsHeartbeat, nsTolerance)
	}
	if restart {
		c.restart(ctx, primary)
	} else {
		// Nothing listens at its addresses any more.
		delete(c.book, primary.Name())
		delete(c.control, primary.Name())
	}
	return took
}

// cutFailover cuts the primary master and the coreapp serving shard 1 apart
// (both ways, in the nodes' fault layers, as the scenario runner's
// partition does) and times until another coreapp serves shard 1; then
// heals.
func (c *netnsCluster) cutFailover(ctx context.Context) time.Duration {
	h := pollHealth(ctx, c.t, c.api, "shard 1 served and a primary", func(h map[string]health.Entry) bool {
		_, _, ok := holderOf(h, 1)
		return ok && len(mastersByRole(h, "primary_master")) == 1
	})
	key, _, _ := holderOf(h, 1)
	victim, primary := health.NodeID(key), health.NodeID(mastersByRole(h, "primary_master")[0])
	seq := lastSeq(gatewayLog(ctx, c.t, c.gateway))
	c.setFaults(ctx, []*mcsimv1.FaultLink{{From: primary, To: victim, Cut: true}, {From: victim, To: primary, Cut: true}})
	cut := time.Now()
	took := c.served(ctx, 1, victim, seq).Sub(cut)
	c.t.Logf("%s | %s cut; shard 1 served by another coreapp after %v", primary, victim, took.Round(time.Millisecond))
	if bound := nsUnhealthy + nsHeartbeat + nsTolerance; took > bound {
		c.t.Errorf("failover after the cut took %v, want ≤ %v", took, bound)
	}
	c.setFaults(ctx, nil)
	return took
}

// setFaults gives the fault table to every node over plain control
// connections (no preamble: never faulted), as the launcher does.
func (c *netnsCluster) setFaults(ctx context.Context, links []*mcsimv1.FaultLink) {
	for _, id := range slices.Sorted(maps.Keys(c.control)) {
		conn, err := grpc.NewClient(c.control[id], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			c.t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = mcsimv1.NewFaultServiceClient(conn).SetFaults(cctx, &mcsimv1.SetFaultsRequest{Links: links, Book: c.book, Seed: 1})
		cancel()
		conn.Close()
		if err != nil {
			c.t.Fatalf("SetFaults on %s (%s): %v", id, c.control[id], err)
		}
	}
}

// startNetnsPostgres starts a throwaway PostgreSQL server in this
// process's namespace (host 0: the child runs there) with
// scripts/test-postgres.sh, on host 0's own loopback, and returns its DSN;
// the server and its data dir go when the test ends. The server
// MCSIM_TEST_POSTGRES names is in the root namespace, which no host can
// reach: none gets an address there.
func startNetnsPostgres(t *testing.T) string {
	script, err := filepath.Abs("../../scripts/test-postgres.sh")
	if err != nil {
		t.Fatal(err)
	}
	// Not under t.TempDir(): the postgres user must reach it.
	dir := fmt.Sprintf("/tmp/mcsim-pg-netns-%d", os.Getpid())
	env := append(os.Environ(), "MCSIM_PG_PORT=5433", "MCSIM_PG_DIR="+dir, "MCSIM_PG_DB=mcsim_netns")
	start := time.Now()
	cmd := exec.Command("bash", script, "start")
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Cleanup(func() {
		stop := exec.Command("bash", script, "stop")
		stop.Env = env
		_ = stop.Run()
		_ = os.RemoveAll(dir)
	})
	if err != nil {
		t.Fatalf("starting PostgreSQL in host 0: %v\n%s", err, stderr.Bytes())
	}
	dsn := strings.TrimSpace(string(out))
	t.Logf("PostgreSQL in host 0 (%s) after %v", dsn, time.Since(start).Round(time.Millisecond))
	return dsn
}

// startSettingsProcess runs settings serve and waits for its ready line;
// the process is killed when the test ends (and, should the test process
// die, with the namespaces).
func startSettingsProcess(ctx context.Context, t *testing.T, bin string, args, env []string, logFile string) {
	log, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "settings service ready") {
				ready <- sc.Text()
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-ready:
		t.Log(line)
	case <-time.After(15 * time.Second):
		b, _ := os.ReadFile(logFile)
		t.Fatalf("settings serve %v: no ready line in 15 s; log:\n%s", args, b)
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
}
