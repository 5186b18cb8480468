package main

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
	"runtime/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcsim/mcsim/callbacks/poster"
	"github.com/mcsim/mcsim/cluster/procs"
	"github.com/mcsim/mcsim/coreapp"
	"github.com/mcsim/mcsim/gateway"
	"github.com/mcsim/mcsim/internal/clock"
	"github.com/mcsim/mcsim/internal/exposure"
	"github.com/mcsim/mcsim/internal/faultnet"
	"github.com/mcsim/mcsim/internal/grpcopts"
	"github.com/mcsim/mcsim/internal/logging"
	"github.com/mcsim/mcsim/master"
	"github.com/mcsim/mcsim/membership"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// nodeFlags are the flags every node process (gateway, coreapp, master)
// shares.
type nodeFlags struct {
	id         string
	grpcAddr   string
	advertise  string
	settings   string
	logFile    string
	logFormat  string
	gossip     string
	join       []string
	clusterKey string
	metrics    string

	// noFaults is --fault-layer=false: no fault layer at all (to measure
	// what it costs). faults is the layer, made once (layer).
	noFaults bool
	faults   *faultnet.Layer

	logOut io.Writer // --log-file opened once, or stderr
	// cpuProfile and memProfile are hidden flags for measuring a node
	// (README, "Measurements"): a CPU profile of the whole run, and the
	// allocation profile at exit.
	cpuProfile string
	memProfile string
}

// clusterKeyEnv names the environment variable read when --cluster-key is
// not given (by every node and by settings serve); `mcsim up` passes the key
// to its children this way so it does not show in ps.
const clusterKeyEnv = "MCSIM_CLUSTER_KEY"

func (f *nodeFlags) register(c *cobra.Command, role string) {
	c.Flags().StringVar(&f.id, "id", role, "node id (node_id in logs, the name other nodes know it by)")
	c.Flags().StringVar(&f.grpcAddr, "grpc", "127.0.0.1:0", "gRPC listen address (port 0: pick a free one and announce it)")
	c.Flags().StringVar(&f.advertise, "advertise", "", "host (IP or name) other hosts reach this node at, announced with the bound ports instead of the listen host; required when a listen address is on every interface (0.0.0.0)")
	c.Flags().StringVar(&f.logFile, "log-file", "", "append logs to this file instead of stderr")
	c.Flags().StringVar(&f.logFormat, "log-format", "json", `log format: "json" or "console"`)
	completeValues(c, "log-format", "json", "console")
	c.Flags().BoolVar(&f.noFaults, "no-fault-layer", false, "run without the fault layer: the scenario runner cannot partition, slow or skew this node (for measuring the layer's cost)")
	if role != "gateway" {
		c.Flags().StringVar(&f.settings, "settings", "127.0.0.1:9091", "gRPC address of the settings service")
		c.Flags().StringVar(&f.gossip, "gossip", "127.0.0.1:0", "gossip (memberlist) listen address, TCP and UDP (port 0: pick a free one and announce it)")
		c.Flags().StringArrayVar(&f.join, "join", nil, "gossip address of a cluster member to join, usually the settings service's --gossip (repeatable)")
		c.Flags().StringVar(&f.clusterKey, "cluster-key", "", "passphrase that encrypts gossip; every node needs the same one (default: $"+clusterKeyEnv+")")
		c.Flags().StringVar(&f.metrics, "metrics", "127.0.0.1:0", "HTTP listen address serving this node's Prometheus /metrics (port 0: pick a free one and announce it)")
		c.Flags().StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (for go tool pprof)")
		c.Flags().StringVar(&f.memProfile, "memprofile", "", "write the allocation profile to this file at exit (for go tool pprof)")
		_ = c.Flags().MarkHidden("cpuprofile")
		_ = c.Flags().MarkHidden("memprofile")
	}
}

// check validates the address flags before anything connects or listens,
// so a typo is exit 2 at once, not a dial that retries for 30 s, and
// applies the rules for a node off loopback (internal/exposure).
func (f *nodeFlags) check(cmd *cobra.Command, role string) error {
	var errs []string
	add := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	add(checkHostPort("--grpc", f.grpcAddr, false))
	if role != "gateway" {
		add(checkHostPort("--settings", f.settings, true))
		add(checkHostPort("--gossip", f.gossip, false))
		add(checkHostPort("--metrics", f.metrics, false))
		for _, j := range f.join {
			add(checkHostPort("--join", j, true))
		}
	}
	if len(errs) == 0 {
		add(exposure.Check(f.exposure(cmd, role)))
	}
	if len(errs) > 0 {
		return usageErr("%s", strings.Join(errs, "; "))
	}
	return nil
}

// exposure is what the off-loopback rules look at: the node's listen
// addresses, --advertise and whether its gossip is encrypted.
func (f *nodeFlags) exposure(cmd *cobra.Command, role string) exposure.Node {
	n := exposure.Node{Addrs: []exposure.Addr{{Flag: "--grpc", Value: f.grpcAddr, Announced: true}}, Advertise: f.advertise}
	if role != "gateway" {
		n.Addrs = append(n.Addrs, exposure.Addr{Flag: "--gossip", Value: f.gossip, Announced: true},
			exposure.Addr{Flag: "--metrics", Value: f.metrics, Announced: true})
		n.Gossip = true
		n.ClusterKey = flagOrEnv(cmd, "cluster-key", f.clusterKey, clusterKeyEnv)
	}
	return n
}

// announce is the address others reach a listener at: bound (host:port
// as listened on) with the --advertise host, if given.
func (f *nodeFlags) announce(bound string) string {
	if f.advertise == "" {
		return bound
	}
	_, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	return net.JoinHostPort(f.advertise, port)
}

// layer is the node's fault layer (nil with --no-fault-layer): every
// connection the node opens or accepts goes through it, and its gRPC
// server answers FaultService (serveFaults).
func (f *nodeFlags) layer() *faultnet.Layer {
	if f.noFaults {
		return nil
	}
	if f.faults == nil {
		f.faults = faultnet.New(f.id)
	}
	return f.faults
}

// dialOptions are what every gRPC client connection of the node adds:
// the fault layer's dialer.
func (f *nodeFlags) dialOptions() []grpc.DialOption {
	if l := f.layer(); l != nil {
		return []grpc.DialOption{grpc.WithContextDialer(l.GRPCDialer())}
	}
	return nil
}

// listen is net.Listen with the fault layer around what it accepts.
func (f *nodeFlags) listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil || f.layer() == nil {
		return ln, err
	}
	return f.layer().Listen(ln), nil
}

// serveFaults registers the fault layer's control API on s; setClock sets
// the node's clock rate (nil: the node's clock cannot be skewed).
func (f *nodeFlags) serveFaults(s *grpc.Server, setClock func(rate float64) error) {
	if l := f.layer(); l != nil {
		mcsimv1.RegisterFaultServiceServer(s, faultnet.NewServer(l, setClock))
	}
}

// profile starts the CPU profile of --cpuprofile; the returned function
// stops it and writes the allocation profile of --memprofile.
func (f *nodeFlags) profile() (stop func(), err error) {
	var cpu *os.File
	if f.cpuProfile != "" {
		if cpu, err = os.Create(f.cpuProfile); err != nil {
			return nil, usageErr("--cpuprofile: %v", err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, usageErr("--cpuprofile: %v", err)
		}
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
		}
		if f.memProfile != "" {
			if mem, err := os.Create(f.memProfile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(mem, 0)
				mem.Close()
			}
		}
	}, nil
}

// nodeRuntime is what every master and coreapp process runs besides its
// gRPC service: a metrics endpoint and a gossip membership.
type nodeRuntime struct {
	registry    *prometheus.Registry
	metricsAddr string
	metricsSrv  *http.Server
	member      *membership.Member
}

// listenMetrics serves the node's own registry on --metrics. Go runtime and
// process collectors come along: RSS and goroutines per node are what one
// looks at first when a cluster of 30 processes misbehaves.
func (f *nodeFlags) listenMetrics() (*nodeRuntime, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	l, err := net.Listen("tcp", f.metrics)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", f.metrics, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return &nodeRuntime{registry: reg, metricsAddr: f.announce(l.Addr().String()), metricsSrv: srv}, nil
}

// joinCluster starts gossip with this node's metadata. Loopback addresses get
// memberlist's fast local timings (joins and leaves seen within a second).
func (f *nodeFlags) joinCluster(cmd *cobra.Command, rt *nodeRuntime, log zerolog.Logger, role membership.Role, grpcAddr string) error {
	key := flagOrEnv(cmd, "cluster-key", f.clusterKey, clusterKeyEnv)
	var faults membership.Faults
	if l := f.layer(); l != nil {
		faults = l
	}
	m, err := membership.Start(membership.Config{
		Faults:        faults,
		Node:          membership.Node{ID: f.id, Role: role, GRPCAddr: grpcAddr, MetricsAddr: rt.metricsAddr, PID: os.Getpid()},
		BindAddr:      f.gossip,
		AdvertiseHost: f.advertise,
		Join:          f.join,
		ClusterKey:    membership.KeyFromPassphrase(key),
		Tuning:        membership.TuningFor(f.gossip),
		Logger:        log,
	})
	if err != nil {
		return fmt.Errorf("--gossip %s / --join %v: %w", f.gossip, f.join, err)
	}
	rt.member = m
	return nil
}

// ready announces the node's addresses once everything listens.
func (rt *nodeRuntime) ready(out io.Writer, id, grpcAddr string) error {
	return procs.WriteReady(out, procs.Ready{NodeID: id, GRPC: grpcAddr,
		Gossip: rt.member.LocalNode().GossipAddr, HTTP: rt.metricsAddr, PID: os.Getpid()})
}

// close stops gossip, first saying goodbye (peers see LeftGracefully) when
// leave is set, then the metrics endpoint.
func (rt *nodeRuntime) close(log zerolog.Logger, leave bool) {
	if rt.member != nil {
		if leave {
			if err := rt.member.Leave(time.Second); err != nil {
				log.Warn().Err(err).Msg("gossip leave incomplete")
			}
		}
		_ = rt.member.Shutdown()
	}
	_ = rt.metricsSrv.Close()
}

// tagged is base with the fields every line of a node carries, for the
// command's own lines.
func (f *nodeFlags) tagged(base zerolog.Logger, role string) zerolog.Logger {
	return base.With().Str("node_id", f.id).Str("role", role).Logger()
}

// nodeStart is what a master or coreapp reads before it starts: the
// settings service's connection and first snapshot, and the logger at the
// level that snapshot gives.
type nodeStart struct {
	conn     *grpc.ClientConn
	settings mcsimv1.SettingsServiceClient
	snap     *mcsimv1.Snapshot
	base     zerolog.Logger // without node fields, for packages that add their own
	log      zerolog.Logger // with node_id and role
}

func (f *nodeFlags) start(ctx context.Context, role string) (*nodeStart, error) {
	conn, err := dial(f.settings, f.dialOptions()...)
	if err != nil {
		return nil, usageErr("--settings %q: %v", f.settings, err)
	}
	st := &nodeStart{conn: conn, settings: mcsimv1.NewSettingsServiceClient(conn)}
	early, err := f.logger(nil) // the settings decide the level; until then, info
	if err != nil {
		conn.Close()
		return nil, err
	}
	if st.snap, err = firstSnapshot(ctx, st.settings, f.settings, f.tagged(early, role), f.waitNotice()); err != nil {
		conn.Close()
		return nil, &exitError{code: exitTransprt, msg: "mcsim " + role + ": " + err.Error()}
	}
	if st.base, err = f.logger(st.snap); err != nil {
		conn.Close()
		return nil, err
	}
	st.log = f.tagged(st.base, role)
	return st, nil
}

func (st *nodeStart) close() { st.conn.Close() }

// logger opens the node's log at the level the settings give (log_level,
// or debug with verbose_logging), read once at start: both are
// restart-required. The log file stays open until the process exits:
// goroutines that outlive the command (the gossip event follower,
// memberlist's own) may log a last line, which a closed file would lose.
func (f *nodeFlags) logger(snap *mcsimv1.Snapshot) (zerolog.Logger, error) {
	format, err := logging.ParseFormat(f.logFormat)
	if err != nil {
		return zerolog.Nop(), usageErr("%v", err)
	}
	if f.logOut == nil {
		f.logOut = os.Stderr
		if f.logFile != "" {
			if err := os.MkdirAll(filepath.Dir(f.logFile), 0o755); err != nil {
				return zerolog.Nop(), fmt.Errorf("--log-file: %w", err)
			}
			file, err := os.OpenFile(f.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				return zerolog.Nop(), fmt.Errorf("--log-file: %w", err)
			}
			f.logOut = file
		}
	}
	w := f.logOut
	level := zerolog.InfoLevel
	if snap != nil {
		var lvl string
		_ = json.Unmarshal([]byte(snap.GetRestartRequired()["log_level"]), &lvl)
		level = logging.Level(lvl, snap.GetRestartRequired()["verbose_logging"] == "true")
	}
	// Without node_id and role: the node packages (coreapp, master,
	// membership) add both themselves, and zerolog would repeat them.
	return logging.New(w, format, level), nil
}

func dial(addr string, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, append(append(grpcopts.Dial(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(master.FastReconnect())), extra...)...)
}

// settingsWait is how long a node waits for the settings service in
// silence, and then how often it says it is still waiting.
const (
	settingsWaitQuiet  = time.Second
	settingsWaitRepeat = 5 * time.Second
	settingsWaitGiveUp = 30 * time.Second
)

// firstSnapshot waits for the settings service (it may still be starting)
// and returns its current snapshot. A node that cannot reach it says so
// within a second, and again every few seconds, rather than sitting
// silent until it gives up.
func firstSnapshot(parent context.Context, client mcsimv1.SettingsServiceClient, addr string, log zerolog.Logger, notice io.Writer) (*mcsimv1.Snapshot, error) {
	ctx, cancel := context.WithTimeout(parent, settingsWaitGiveUp)
	defer cancel()
	type answer struct {
		snap *mcsimv1.Snapshot
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		for {
			resp, err := client.Get(ctx, &mcsimv1.GetRequest{}, grpc.WaitForReady(true))
			if err == nil || ctx.Err() != nil {
				got <- answer{resp.GetSnapshot(), err}
				return
			}
		}
	}()
	start := time.Now()
	tick := time.NewTimer(settingsWaitQuiet)
	defer tick.Stop()
	for {
		select {
		case a := <-got:
			switch {
			case a.err != nil && parent.Err() != nil:
				return nil, fmt.Errorf("stopped while waiting for the settings service at %s", addr)
			case a.err != nil:
				return nil, fmt.Errorf("settings service at %s not reachable after %v: %w", addr, settingsWaitGiveUp, a.err)
			}
			return a.snap, nil
		case <-tick.C:
			waited := time.Since(start).Round(time.Second)
			log.Warn().Str("settings_addr", addr).Dur("waited_ms", waited).Dur("give_up_after_ms", settingsWaitGiveUp).
				Msg("waiting for the settings service")
			if notice != nil {
				fmt.Fprintf(notice, "mcsim: waiting for the settings service at %s (%v so far; giving up after %v)\n", addr, waited, settingsWaitGiveUp)
			}
			tick.Reset(settingsWaitRepeat)
		}
	}
}

// waitNotice is where a node also tells a person that it is waiting for
// the settings service: stderr, when the log goes to a file and stderr is
// a terminal (otherwise the log line itself is on stderr, or stderr is a
// file nobody watches, like the node logs of mcsim up).
func (f *nodeFlags) waitNotice() io.Writer {
	if f.logFile != "" && logging.IsTerminal(os.Stderr) {
		return os.Stderr
	}
	return nil
}

// serveNode listens, announces the ready line on stdout, serves until ctx
// ends, then stops the server.
func serveNode(ctx context.Context, f *nodeFlags, s *grpc.Server, out io.Writer, extra procs.Ready) (stop func(), err error) {
	l, err := f.listen(f.grpcAddr)
	if err != nil {
		return nil, fmt.Errorf("--grpc %s: %w", f.grpcAddr, err)
	}
	go func() { _ = s.Serve(l) }()
	extra.NodeID, extra.GRPC, extra.PID = f.id, f.announce(l.Addr().String()), os.Getpid()
	if err := procs.WriteReady(out, extra); err != nil {
		s.Stop()
		return nil, err
	}
	return s.GracefulStop, nil
}

func newGatewayCommand() *cobra.Command {
	var f nodeFlags
	var delays gateway.StatusDelays
	c := &cobra.Command{
		Use:   "gateway",
		Short: "Run the gateway: the simulated WhatsApp server and witness of shard sessions",
		Long: `Run the gateway. Coreapps open one session per shard; the gateway accepts only
the newest epoch of a shard and logs every connect, replace, reject and
disconnect. It accepts a message only on the session holding its
recipient's key, logs it, and produces its status updates sent, delivered
and read after --status-sent, --status-delivered and --status-read,
offered to whichever session holds the key then until one acknowledges
it. It prints one ready line (JSON) on stdout once it serves.`,
		Example: `  mcsim gateway --grpc 127.0.0.1:9300`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(cmd, "gateway"); err != nil {
				return err
			}
			if err := delays.Validate(); err != nil { // all zero would mean the defaults to NewWithConfig
				return usageErr("%v", err)
			}
			base, err := f.logger(nil)
			if err != nil {
				return err
			}
			gw, err := gateway.NewWithConfig(gateway.Config{Logger: f.tagged(base, "gateway"), Statuses: delays})
			if err != nil {
				return usageErr("%v", err)
			}
			s := grpc.NewServer(grpcopts.Server()...)
			gw.Register(s)
			f.serveFaults(s, nil)
			stop, err := serveNode(cmd.Context(), &f, s, cmd.OutOrStdout(), procs.Ready{})
			if err != nil {
				return &exitError{code: exitFailure, msg: "mcsim gateway: " + err.Error()}
			}
			<-cmd.Context().Done()
			s.Stop()
			_ = stop
			return nil
		},
	}
	f.register(c, "gateway")
	statusDelayFlags(c.Flags(), &delays)
	return c
}

func newCoreappCommand() *cobra.Command {
	var f nodeFlags
	var gatewayAddr string
	c := &cobra.Command{
		Use:   "coreapp",
		Short: "Run a coreapp node: serves the shards the primary master assigns",
		Long: `Run a coreapp. It starts as a standby, answers the primary master's heartbeats,
and serves each assigned shard through one gateway session. SIGTERM (or
Ctrl-C) stops it gracefully: it leaves the gossip cluster first, so the
primary hands its shards over at once, then closes its sessions. It joins
the gossip cluster (--join, usually the settings service's gossip address)
so masters learn its gRPC address, and serves its metrics on --metrics. It
prints one ready line (JSON) on stdout once it serves:
  {"ready":{"node_id":"coreapp-1","grpc":"…","gossip":"…","http":"<metrics>","pid":…}}`,
		Example: `  mcsim coreapp --id coreapp-1 --settings 127.0.0.1:9091 --gateway 127.0.0.1:9300 \
    --join 127.0.0.1:9092 --grpc 127.0.0.1:9401 --metrics 127.0.0.1:9501`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if gatewayAddr == "" {
				return usageErr("--gateway: the gateway's gRPC address is required")
			}
			if err := checkHostPort("--gateway", gatewayAddr, true); err != nil {
				return usageErr("%v", err)
			}
			if err := f.check(cmd, "coreapp"); err != nil {
				return err
			}
			stopProfile, err := f.profile()
			if err != nil {
				return err
			}
			defer stopProfile()
			st, err := f.start(ctx, "coreapp")
			if err != nil {
				return err
			}
			defer st.close()
			settingsClient, snap, base, log := st.settings, st.snap, st.base, st.log
			gconn, err := dial(gatewayAddr, f.dialOptions()...)
			if err != nil {
				return usageErr("--gateway %q: %v", gatewayAddr, err)
			}
			defer gconn.Close()
			// Connect now, not at the first session: a standby's first
			// session is a failover, and a cold handshake would add to it.
			gconn.Connect()
			rt, err := f.listenMetrics()
			if err != nil {
				return &exitError{code: exitFailure, msg: "mcsim coreapp: " + err.Error()}
			}
			left := false
			defer func() { rt.close(log, !left) }()
			var node *coreapp.Node
			clk := clock.NewSkewed(clock.Real())
			// The webhook poster: configured by the node from the settings,
			// keeping callbacks through the settings service's store
			// (callback_persist); closed after the node stopped.
			wh, err := poster.New(poster.Config{CoreappID: f.id, Coord: mcsimv1.NewCoordinationServiceClient(st.conn),
				Logger: log, Registry: rt.registry, Clock: clk})
			if err != nil {
				return usageErr("%v", err)
			}
			defer wh.Close()
			node, err = coreapp.New(coreapp.Config{
				ID:              f.id,
				Webhooks:        wh,
				Clock:           clk,
				GatewayClient:   mcsimv1.NewGatewayServiceClient(gconn),
				Settings:        settingsClient,
				Logger:          base,
				PID:             os.Getpid(),
				RestartRequired: snap.GetRestartRequired(),
				Registry:        rt.registry,
				// Rule 5: leaving the gossip cluster makes the primary hand
				// the shards over at once; waiting (briefly) until the
				// successors' sessions replaced ours leaves no gap at the
				// gateway.
				OnLeave: func(ctx context.Context, served []*mcsimv1.ServedShard) {
					if rt.member == nil {
						return
					}
					left = true // rt.close must not leave a second time
					coreapp.HandOver(ctx, node, served, coreapp.Handover{
						Leave: rt.member.Leave,
						MasterAlive: func() bool {
							return membership.HasRole(rt.member.Members(), membership.RoleMaster)
						},
						Logger: log,
					})
				},
			})
			if err != nil {
				return usageErr("%v", err)
			}
			l, err := f.listen(f.grpcAddr)
			if err != nil {
				return &exitError{code: exitFailure, msg: fmt.Sprintf("mcsim coreapp: --grpc %s: %v", f.grpcAddr, err)}
			}
			s := grpc.NewServer(grpcopts.Server()...)
			node.Register(s)
			f.serveFaults(s, clk.SetRate)
			go func() { _ = s.Serve(l) }()
			defer s.Stop()
			runCtx, cancelRun := context.WithCancel(context.Background())
			runDone := make(chan struct{})
			go func() { defer close(runDone); _ = node.Run(runCtx) }()
			defer func() { cancelRun(); <-runDone }()
			if err := f.joinCluster(cmd, rt, log, membership.RoleCoreapp, f.announce(l.Addr().String())); err != nil {
				return &exitError{code: exitFailure, msg: "mcsim coreapp: " + err.Error()}
			}
			// A coreapp needs no one's address; drain so the queue stays empty.
			go func() {
				for range rt.member.Events() {
				}
			}()
			if err := rt.ready(cmd.OutOrStdout(), f.id, f.announce(l.Addr().String())); err != nil {
				return err
			}
			log.Info().Str("metrics_addr", rt.metricsAddr).Msg("coreapp serving")
			<-ctx.Done()
			stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := node.Stop(stopCtx); err != nil {
				log.Warn().Err(err).Msg("graceful stop incomplete")
			}
			return nil
		},
	}
	f.register(c, "coreapp")
	c.Flags().StringVar(&gatewayAddr, "gateway", "", "gRPC address of the gateway (required)")
	return c
}

func newMasterCommand() *cobra.Command {
	var f nodeFlags
	var coreapps []string
	var leaseTTL, renew time.Duration
	var expect int
	c := &cobra.Command{
		Use:   "master",
		Short: "Run a master node: competes for the lease; the primary heartbeats coreapps and fails shards over",
		Long: `Run a master. It competes for the master lease in the settings store; the
primary heartbeats every coreapp each heartbeat_interval, declares one
unhealthy after unhealthy_interval without an answer, and moves its shards
to standbys. Secondaries take over when the primary's lease expires, or at
once when the primary stops (SIGTERM releases the lease). Coreapps are
learned from the gossip cluster (--join; a graceful leave hands shards over
at once, a gossip failure is only logged) and from --coreapp. Metrics are
served on --metrics. It prints one ready line (JSON) on stdout once it
serves, like the coreapp's.`,
		Example: `  # coreapps learned through gossip
  mcsim master --id master-1 --settings 127.0.0.1:9091 --join 127.0.0.1:9092

  # two coreapps known statically
  mcsim master --id master-1 --settings 127.0.0.1:9091 \
    --coreapp coreapp-1=127.0.0.1:9401 --coreapp coreapp-2=127.0.0.1:9402`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := f.check(cmd, "master"); err != nil {
				return err
			}
			static, err := parseCoreappFlags(coreapps)
			if err != nil {
				return err
			}
			if err := checkLeaseFlags(leaseTTL, renew); err != nil {
				return err
			}
			if expect < 0 {
				return usageErr("--expect-coreapps %d: must be >= 0 (0: as many as shards)", expect)
			}
			stopProfile, err := f.profile()
			if err != nil {
				return err
			}
			defer stopProfile()
			st, err := f.start(ctx, "master")
			if err != nil {
				return err
			}
			defer st.close()
			settingsClient, snap, base, log := st.settings, st.snap, st.base, st.log
			if err := checkLeaseFlagAgainst(leaseTTL, renew, snap); err != nil {
				return err
			}
			rt, err := f.listenMetrics()
			if err != nil {
				return &exitError{code: exitFailure, msg: "mcsim master: " + err.Error()}
			}
			defer rt.close(log, true)
			l, err := f.listen(f.grpcAddr)
			if err != nil {
				return &exitError{code: exitFailure, msg: fmt.Sprintf("mcsim master: --grpc %s: %v", f.grpcAddr, err)}
			}
			clk := clock.NewSkewed(clock.Real())
			coreappDial := f.dialOptions()
			node, err := master.New(master.Config{
				ID:    f.id,
				Clock: clk,
				Dial: func(addr string) (*grpc.ClientConn, error) {
					return grpc.NewClient(addr, append(master.CoreappDialOptions(), coreappDial...)...)
				},
				Address:         f.announce(l.Addr().String()),
				Settings:        settingsClient,
				Coordination:    mcsimv1.NewCoordinationServiceClient(st.conn),
				LeaseTTL:        leaseTTL,
				RenewInterval:   renew,
				ExpectCoreapps:  expect,
				Logger:          base,
				PID:             os.Getpid(),
				RestartRequired: snap.GetRestartRequired(),
				Registry:        rt.registry,
			})
			if err != nil {
				l.Close()
				return usageErr("%v", err)
			}
			s := grpc.NewServer(grpcopts.Server()...)
			node.Register(s)
			f.serveFaults(s, clk.SetRate)
			go func() { _ = s.Serve(l) }()
			defer s.Stop()
			for _, ca := range static {
				node.CoreappJoined(ca.id, ca.addr)
			}
			if err := f.joinCluster(cmd, rt, log, membership.RoleMaster, f.announce(l.Addr().String())); err != nil {
				return &exitError{code: exitFailure, msg: "mcsim master: " + err.Error()}
			}
			go node.FollowMembership(rt.member.Events())
			if err := rt.ready(cmd.OutOrStdout(), f.id, f.announce(l.Addr().String())); err != nil {
				return err
			}
			// Run returns when ctx ends, releasing the lease; the deferred
			// close then leaves the gossip cluster.
			return node.Run(ctx)
		},
	}
	f.register(c, "master")
	c.Flags().StringArrayVar(&coreapps, "coreapp", nil, "a coreapp to heartbeat, as ID=HOST:PORT (repeatable)")
	durationFlag(c.Flags(), &leaseTTL, "lease-ttl", 0, "master lease TTL (0: unhealthy_interval, live); longer than the renewal interval")
	c.Flags().IntVar(&expect, "expect-coreapps", 0, "coreapps a fresh cluster's first assignment waits for, at most one heartbeat_interval (0: as many as shards)")
	durationFlag(c.Flags(), &renew, "lease-renew", 0, "lease renewal interval (0: heartbeat_interval, live); shorter than the TTL")
	return c
}

// checkLeaseFlags refuses lease timings that cannot work, before anything
// is connected: a renewal that is not shorter than the TTL lets the lease
// lapse between renewals (the master flaps between primary and secondary).
func checkLeaseFlags(ttl, renew time.Duration) error {
	switch {
	case ttl < 0:
		return usageErr("--lease-ttl %v: must be >= 0 (0: unhealthy_interval)", ttl)
	case renew < 0:
		return usageErr("--lease-renew %v: must be >= 0 (0: heartbeat_interval)", renew)
	case ttl > 0 && renew >= ttl:
		return usageErr("--lease-renew %v: must be shorter than --lease-ttl %v", renew, ttl)
	}
	return nil
}

// checkLeaseFlagAgainst is checkLeaseFlags for one flag given alone: the
// other side comes from the settings (read at start; a later live change
// that crosses them is handled by the master, see master.Config).
func checkLeaseFlagAgainst(ttl, renew time.Duration, snap *mcsimv1.Snapshot) error {
	hb := time.Duration(snap.GetHeartbeatIntervalSeconds()) * time.Second
	ui := time.Duration(snap.GetUnhealthyIntervalSeconds()) * time.Second
	switch {
	case ttl > 0 && renew == 0 && hb >= ttl:
		return usageErr("--lease-ttl %v: must be longer than the renewal interval, heartbeat_interval %v (or give --lease-renew)", ttl, hb)
	case renew > 0 && ttl == 0 && renew >= ui:
		return usageErr("--lease-renew %v: must be shorter than the lease TTL, unhealthy_interval %v (or give --lease-ttl)", renew, ui)
	}
	return nil
}

type staticCoreapp struct{ id, addr string }

func parseCoreappFlags(vals []string) ([]staticCoreapp, error) {
	var out []staticCoreapp
	var errs []error
	for _, v := range vals {
		id, addr, ok := strings.Cut(v, "=")
		if !ok || id == "" || addr == "" {
			errs = append(errs, fmt.Errorf("--coreapp %q: expected ID=HOST:PORT", v))
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("--coreapp %q: address: %v", v, err))
			continue
		}
		out = append(out, staticCoreapp{id, addr})
	}
	if len(errs) > 0 {
		return nil, usageErr("%v", errors.Join(errs...))
	}
	return out, nil
}
