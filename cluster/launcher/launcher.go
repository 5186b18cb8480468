package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/mcsim/mcsim/cluster/procs"
	"github.com/mcsim/mcsim/gateway"
	"github.com/mcsim/mcsim/internal/faultnet"
	"github.com/mcsim/mcsim/internal/grpcopts"
	"github.com/mcsim/mcsim/internal/logging"
	"github.com/mcsim/mcsim/membership"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/client"
	"github.com/mcsim/mcsim/settings/service"
	"github.com/mcsim/mcsim/settings/store/pgstore"
)

// ConfigError is returned by Run when the configuration is invalid:
// nothing was started. The CLI maps it to exit code 2.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// stopGrace is how long a child gets after SIGTERM before SIGKILL. A
// coreapp's graceful stop (gossip leave, then closing sessions) takes
// about a second on loopback.
const stopGrace = 5 * time.Second

// Addrs are where the running cluster can be reached.
type Addrs struct {
	// HTTP is the settings service's HTTP API (host:port).
	HTTP string `json:"http"`
	// GRPC is the settings service's gRPC address.
	GRPC string `json:"grpc"`
	// Gossip is the seed every node joins.
	Gossip string `json:"gossip"`
	// Gateway is the gateway's gRPC address.
	Gateway string `json:"gateway"`
}

// cluster is one running cluster; Run owns it.
type cluster struct {
	cfg    Config
	log    zerolog.Logger
	addrs  Addrs
	api    *client.Client
	gw     *gateway.Server
	sup    *procs.Supervisor
	files  []io.Closer
	events *emitter
	// nextSeq is the first gateway event not yet shown.
	nextSeq uint64
	// leases is the store's record of the lease; nextLease the first
	// decision not yet shown.
	leases    leaseRecord
	nextLease int

	// faults is the fault table and the layers of the settings service
	// and the gateway (faults.go).
	faults faultTable

	logDir       string // DATA/logs
	stopGateway  func()
	stopSettings func() error
	stopOnce     sync.Once
}

// Run starts the cluster, shows its status until ctx ends, then stops it:
// masters first (so stopping coreapps have nobody to wait for), then
// coreapps, then the gateway and the settings service. A configuration problem is a
// *ConfigError; a data dir already in use fails before any process starts.
func Run(ctx context.Context, cfg Config) (err error) {
	c, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	c.watch(ctx)
	c.events.stopping()
	err = c.Stop()
	c.events.stopped()
	return err
}

// Cluster is a running local cluster: the settings service and the
// gateway in this process, every master and coreapp a child process. mcsim
// up runs one; the scenario runner's procs target drives one.
type Cluster = cluster

// Start starts a cluster and returns once every node announced itself
// ready. On an error everything it started is stopped again.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Err == nil {
		cfg.Err = io.Discard
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.HealthInterval == 0 {
		cfg.HealthInterval = DefaultHealthInterval
	}
	if cfg.AdminPassword == "" {
		cfg.AdminPassword = service.DefaultAdminPassword
	}
	if err := cfg.Validate(); err != nil {
		return nil, &ConfigError{Err: err}
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(cfg.Err, "mcsim up: warning:", w)
	}
	if cfg.Binary == "" {
		if cfg.Binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("mcsim up: finding the mcsim binary: %w", err)
		}
	}
	c := &cluster{cfg: cfg}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	c.logDir = filepath.Join(cfg.DataDir, "logs")
	if err := os.MkdirAll(c.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("mcsim up: --data %s: %w", cfg.DataDir, err)
	}
	if pgstore.IsURL(cfg.Store) {
		if err := c.lockDataDir(); err != nil {
			return nil, err
		}
	}
	if c.log, err = c.openLog(filepath.Join(c.logDir, "launcher.log"), "launcher", "launcher"); err != nil {
		return nil, err
	}

	if err := c.startSettings(ctx); err != nil {
		return nil, err
	}
	if err := c.configure(ctx); err != nil {
		return nil, err
	}
	if c.stopGateway, err = c.startGateway(); err != nil {
		return nil, err
	}
	c.sup = procs.New(c.log)
	c.events = newEmitter(cfg)
	c.events.urls(c.addrs)
	c.loadPreviousOwners(ctx, time.Now())
	if err := c.startNodes(ctx); err != nil {
		return nil, err
	}
	c.events.clusterStarted()
	return c, nil
}

// Stop stops the cluster: masters first (with no master left, stopping
// coreapps have nobody to hand their shards to and close their sessions at
// once instead of waiting for a handover), then coreapps, then the gateway
// and the settings service. It is safe to call twice.
func (c *cluster) Stop() error {
	var err error
	c.stopOnce.Do(func() {
		// Nothing held in this process's layers may slow the stop; the
		// children's go with them.
		c.healLocal()
		c.closeControl()
		if c.sup != nil {
			c.stopNodes("master")
			c.stopNodes("coreapp")
			c.drainGateway()
			_ = c.sup.Close(stopGrace)
		}
		if c.stopGateway != nil {
			c.stopGateway()
		}
		if c.stopSettings != nil {
			err = c.stopSettings()
		}
		c.closeFiles()
	})
	return err
}

// openLog opens DATA/logs/<name>.log for an in-process component.
func (c *cluster) openLog(path, nodeID, role string) (zerolog.Logger, error) {
	f, err := openLogFile(path)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("mcsim up: opening log %s: %w", path, err)
	}
	c.files = append(c.files, f)
	return logging.New(f, logging.JSON, zerolog.InfoLevel).With().
		Str("node_id", nodeID).Str("role", role).Logger(), nil
}

// lockDataDir holds DATA/up.lock for the life of this process, so a
// second 'mcsim up' on the same --data fails at once, as the bbolt store's
// own lock makes it fail when the store is in --data. With the store in
// PostgreSQL nothing else would stop it, and two launchers would write the
// same logs. The kernel drops the lock when the process dies.
func (c *cluster) lockDataDir() error {
	path := filepath.Join(c.cfg.DataDir, "up.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("mcsim up: --data %s: %w", c.cfg.DataDir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		return fmt.Errorf("mcsim up: data dir %s is in use by another mcsim up (lock held on %s): %w", c.cfg.DataDir, path, err)
	}
	c.files = append(c.files, f)
	return nil
}

func (c *cluster) closeFiles() {
	for _, f := range c.files {
		_ = f.Close()
	}
}

// startSettings runs the settings service in a goroutine and waits until
// it listens. A locked data dir (another `mcsim up`) fails here, before
// any child exists.
//
// The service runs until everything else has stopped (Stop ends it last),
// so it gets its own context, not ctx.
func (c *cluster) startSettings(ctx context.Context) error {
	log, err := c.openLog(filepath.Join(c.logDir, "settings.log"), service.NodeID, "settings")
	if err != nil {
		return err
	}
	svcCtx, stopSvc := context.WithCancel(context.Background())
	done := make(chan error, 1)
	scfg := service.DefaultConfig()
	scfg.HTTPAddr = c.cfg.HTTPAddr
	scfg.GRPCAddr = "127.0.0.1:0"
	scfg.GossipAddr = "127.0.0.1:0"
	scfg.DataDir = c.cfg.DataDir
	scfg.Store = c.cfg.Store
	scfg.AdminPassword = c.cfg.AdminPassword
	scfg.Logger = log
	scfg.OnLease = c.leases.add
	scfg.Faults = faultnet.New(service.NodeID)
	c.faults.settings = scfg.Faults
	if c.cfg.ClusterKey != "" {
		scfg.ClusterKey = membership.KeyFromPassphrase(c.cfg.ClusterKey)
	}
	ready := make(chan service.Addrs, 1)
	runErr := make(chan error, 1)
	go func() {
		err := service.Run(svcCtx, scfg, func(a service.Addrs) { ready <- a })
		runErr <- err
		done <- err
	}()
	// Set only now: Stop waits for done, which only this goroutine sends.
	c.stopSettings = func() error {
		stopSvc()
		return <-done
	}
	select {
	case a := <-ready:
		c.addrs.HTTP, c.addrs.GRPC, c.addrs.Gossip = a.HTTP, a.GRPC, a.Gossip
	case err := <-runErr:
		return fmt.Errorf("mcsim up: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
	c.api = client.New(c.addrs.HTTP, c.cfg.AdminPassword, &http.Client{Timeout: 2 * time.Second})
	return nil
}

// configure writes the intervals and the shard count before any node
// starts, so the first primary begins with the wanted map.
func (c *cluster) configure(ctx context.Context) error {
	if len(c.cfg.Settings) > 0 {
		if _, err := c.api.Patch(ctx, c.cfg.Settings); err != nil {
			return fmt.Errorf("mcsim up: applying the settings %s: %w", c.cfg.Settings, err)
		}
	}
	patch := map[string]int{}
	if c.cfg.HeartbeatInterval > 0 {
		patch["heartbeat_interval"] = int(c.cfg.HeartbeatInterval / time.Second)
	}
	if c.cfg.UnhealthyInterval > 0 {
		patch["unhealthy_interval"] = int(c.cfg.UnhealthyInterval / time.Second)
	}
	if len(patch) > 0 {
		b, _ := json.Marshal(patch)
		if _, err := c.api.Patch(ctx, b); err != nil {
			return fmt.Errorf("mcsim up: setting intervals %s: %w", b, err)
		}
	}
	b, _ := json.Marshal(map[string]int{"shards": c.cfg.Shards})
	if _, err := c.api.Do(ctx, "POST", "/v1/account/shards", b); err != nil {
		return fmt.Errorf("mcsim up: setting the shard count to %d: %w", c.cfg.Shards, err)
	}
	return nil
}

// startGateway serves the gateway in this process on a free port.
func (c *cluster) startGateway() (stop func(), err error) {
	log, err := c.openLog(filepath.Join(c.logDir, "gateway.log"), "gateway", "gateway")
	if err != nil {
		return nil, err
	}
	if c.gw, err = gateway.NewWithConfig(gateway.Config{Logger: log, Statuses: c.cfg.Statuses}); err != nil {
		return nil, err // Validate caught it already
	}
	c.faults.gateway = faultnet.New("gateway")
	s := grpc.NewServer(grpcopts.Server()...)
	c.gw.Register(s)
	mcsimv1.RegisterFaultServiceServer(s, faultnet.NewServer(c.faults.gateway, nil))
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mcsim up: gateway listen: %w", err)
	}
	l := c.faults.gateway.Listen(raw)
	go func() { _ = s.Serve(l) }()
	c.addrs.Gateway = l.Addr().String()
	return s.Stop, nil
}

// ChildRuntimeEnv is the Go runtime settings every master and coreapp is
// started with, except those the launcher's own environment (environ, as
// from os.Environ) already sets, which the children inherit unchanged:
//
//   - GOMAXPROCS=1: a node is one event loop and a few gRPC and gossip
//     goroutines, idle nearly all the time; with more Ps the runtime wakes
//     extra threads to look for work at every timer and packet, which on a
//     2-core machine running 36 processes is only scheduling noise.
//   - GOGC=50: a node's live heap is a few MiB and, once gossip stopped
//     allocating 64 KiB per packet, it allocates little, so collecting at
//     half the default growth keeps each process about 0.5 MiB smaller for
//     a negligible cost.
//
// README, "Measurements", has the figures (BenchmarkIdleCluster).
func ChildRuntimeEnv(environ []string) []string {
	var out []string
	for _, kv := range []string{"GOMAXPROCS=1", "GOGC=50"} {
		key, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(environ, func(e string) bool { return strings.HasPrefix(e, key+"=") }) {
			out = append(out, kv)
		}
	}
	return out
}

// startNodes starts every master and coreapp at once: the slowest part of
// a start is each process's own start-up, which overlaps.
func (c *cluster) startNodes(ctx context.Context) error {
	var specs []procs.Spec
	for i := 1; i <= c.cfg.Masters; i++ {
		specs = append(specs, c.spec("master", i))
	}
	for i := 1; i <= c.cfg.Coreapps; i++ {
		specs = append(specs, c.spec("coreapp", i))
	}
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, spec := range specs {
		wg.Go(func() {
			p, err := c.sup.Start(ctx, spec)
			if err != nil {
				errs[i] = err
				return
			}
			c.events.nodeStarted(p)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mcsim up: starting nodes: %w", err)
	}
	return nil
}

// spec is how the n-th master or coreapp is started.
func (c *cluster) spec(role string, n int) procs.Spec {
	env := ChildRuntimeEnv(os.Environ())
	if c.cfg.ClusterKey != "" {
		env = append(env, "MCSIM_CLUSTER_KEY="+c.cfg.ClusterKey)
	}
	id := role + "-" + strconv.Itoa(n)
	logFile := filepath.Join(c.logDir, id+".log")
	args := []string{role, "--id", id, "--settings", c.addrs.GRPC, "--join", c.addrs.Gossip, "--log-file", logFile}
	if role == "master" {
		// The first assignment waits for every coreapp (see master
		// --expect-coreapps), not for the first ones to join.
		args = append(args, "--expect-coreapps", strconv.Itoa(c.cfg.Coreapps))
	} else {
		args = append(args, "--gateway", c.addrs.Gateway)
	}
	return procs.Spec{Name: id, Path: c.cfg.Binary, Args: args, Env: env, LogFile: logFile}
}

// stopNodes stops every live process of a role in parallel and waits.
func (c *cluster) stopNodes(role string) {
	if c.events == nil {
		return
	}
	var wg sync.WaitGroup
	for _, p := range c.sup.Procs() {
		if roleOf(p.Name()) == role {
			wg.Go(func() { _ = p.Stop(stopGrace) })
		}
	}
	wg.Wait()
	c.events.pollExits(c.sup.Procs())
}
