package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcsim/mcsim/cluster/gateway"
	"github.com/mcsim/mcsim/cluster/procs"
	"github.com/mcsim/mcsim/coreapp"
	"github.com/mcsim/mcsim/internal/logging"
	"github.com/mcsim/mcsim/master"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// nodeFlags are the flags every node process (gateway, coreapp, master)
// shares.
type nodeFlags struct {
	id        string
	grpcAddr  string
	settings  string
	logFile   string
	logFormat string
}

func (f *nodeFlags) register(c *cobra.Command, role string) {
	c.Flags().StringVar(&f.id, "id", role, "node id (node_id in logs, the name other nodes know it by)")
	c.Flags().StringVar(&f.grpcAddr, "grpc", "127.0.0.1:0", "gRPC listen address (port 0: pick a free one and announce it)")
	c.Flags().StringVar(&f.logFile, "log-file", "", "append logs to this file instead of stderr")
	c.Flags().StringVar(&f.logFormat, "log-format", "json", `log format: "json" or "console"`)
	if role != "gateway" {
		c.Flags().StringVar(&f.settings, "settings", "127.0.0.1:9091", "gRPC address of the settings service")
	}
}

// logger opens the node's log at the level the settings give (log_level,
// or debug with verbose_logging), read once at start: both are
// restart-required.
func (f *nodeFlags) logger(role string, snap *mcsimv1.Snapshot) (zerolog.Logger, io.Closer, error) {
	format, err := logging.ParseFormat(f.logFormat)
	if err != nil {
		return zerolog.Nop(), nil, usageErr("%v", err)
	}
	var w io.Writer = os.Stderr
	var closer io.Closer = io.NopCloser(nil)
	if f.logFile != "" {
		if err := os.MkdirAll(filepath.Dir(f.logFile), 0o755); err != nil {
			return zerolog.Nop(), nil, err
		}
		file, err := os.OpenFile(f.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return zerolog.Nop(), nil, err
		}
		w, closer = file, file
	}
	level := zerolog.InfoLevel
	if snap != nil {
		var lvl string
		_ = json.Unmarshal([]byte(snap.GetRestartRequired()["log_level"]), &lvl)
		level = logging.Level(lvl, snap.GetRestartRequired()["verbose_logging"] == "true")
	}
	return logging.New(w, format, level).With().Str("node_id", f.id).Str("role", role).Logger(), closer, nil
}

func dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(master.FastReconnect()))
}

// firstSnapshot waits for the settings service (it may still be starting)
// and returns its current snapshot.
func firstSnapshot(ctx context.Context, client mcsimv1.SettingsServiceClient, addr string) (*mcsimv1.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		resp, err := client.Get(ctx, &mcsimv1.GetRequest{}, grpc.WaitForReady(true))
		if err == nil {
			return resp.GetSnapshot(), nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("settings service at %s not reachable: %w", addr, err)
		}
	}
}

// serveNode listens, announces the ready line on stdout, serves until ctx
// ends, then stops the server.
func serveNode(ctx context.Context, f *nodeFlags, s *grpc.Server, out io.Writer, extra procs.Ready) (stop func(), err error) {
	l, err := net.Listen("tcp", f.grpcAddr)
	if err != nil {
		return nil, fmt.Errorf("--grpc %s: %w", f.grpcAddr, err)
	}
	go func() { _ = s.Serve(l) }()
	extra.NodeID, extra.GRPC, extra.PID = f.id, l.Addr().String(), os.Getpid()
	if err := procs.WriteReady(out, extra); err != nil {
		s.Stop()
		return nil, err
	}
	return s.GracefulStop, nil
}

func newGatewayCommand() *cobra.Command {
	var f nodeFlags
	c := &cobra.Command{
		Use:   "gateway",
		Short: "Run the gateway: the simulated WhatsApp server and witness of shard sessions",
		Long: `Run the gateway. Coreapps open one session per shard; the gateway accepts only
the newest epoch of a shard and logs every connect, replace, reject and
disconnect. It prints one ready line (JSON) on stdout once it serves.`,
		Example: `  mcsim gateway --grpc 127.0.0.1:9300`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, closer, err := f.logger("gateway", nil)
			if err != nil {
				return err
			}
			defer closer.Close()
			gw := gateway.New(log)
			s := grpc.NewServer()
			gw.Register(s)
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
Ctrl-C) stops it gracefully: its shards are handed over at once. It prints
one ready line (JSON) on stdout once it serves.`,
		Example: `  mcsim coreapp --id coreapp-1 --settings 127.0.0.1:9091 --gateway 127.0.0.1:9300 --grpc 127.0.0.1:9401`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if gatewayAddr == "" {
				return usageErr("--gateway: the gateway's gRPC address is required")
			}
			sconn, err := dial(f.settings)
			if err != nil {
				return usageErr("--settings %q: %v", f.settings, err)
			}
			defer sconn.Close()
			settingsClient := mcsimv1.NewSettingsServiceClient(sconn)
			snap, err := firstSnapshot(ctx, settingsClient, f.settings)
			if err != nil {
				return &exitError{code: exitTransprt, msg: "mcsim coreapp: " + err.Error()}
			}
			log, closer, err := f.logger("coreapp", snap)
			if err != nil {
				return err
			}
			defer closer.Close()
			gconn, err := dial(gatewayAddr)
			if err != nil {
				return usageErr("--gateway %q: %v", gatewayAddr, err)
			}
			defer gconn.Close()
			node, err := coreapp.New(coreapp.Config{
				ID:              f.id,
				GatewayClient:   mcsimv1.NewGatewayServiceClient(gconn),
				Settings:        settingsClient,
				Logger:          log,
				PID:             os.Getpid(),
				RestartRequired: snap.GetRestartRequired(),
			})
			if err != nil {
				return usageErr("%v", err)
			}
			s := grpc.NewServer()
			node.Register(s)
			runCtx, cancelRun := context.WithCancel(context.Background())
			defer cancelRun()
			go func() { _ = node.Run(runCtx) }()
			_, err = serveNode(ctx, &f, s, cmd.OutOrStdout(), procs.Ready{})
			if err != nil {
				return &exitError{code: exitFailure, msg: "mcsim coreapp: " + err.Error()}
			}
			log.Info().Msg("coreapp serving")
			<-ctx.Done()
			stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := node.Stop(stopCtx); err != nil {
				log.Warn().Err(err).Msg("graceful stop incomplete")
			}
			s.Stop()
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
	c := &cobra.Command{
		Use:   "master",
		Short: "Run a master node: competes for the lease; the primary heartbeats coreapps and fails shards over",
		Long: `Run a master. It competes for the master lease in the settings store; the
primary heartbeats every coreapp each heartbeat_interval, declares one
unhealthy after unhealthy_interval without an answer, and moves its shards
to standbys. Secondaries take over when the primary's lease expires. It
prints one ready line (JSON) on stdout once it serves.`,
		Example: `  # two coreapps known statically
  mcsim master --id master-1 --settings 127.0.0.1:9091 \
    --coreapp coreapp-1=127.0.0.1:9401 --coreapp coreapp-2=127.0.0.1:9402`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			static, err := parseCoreappFlags(coreapps)
			if err != nil {
				return err
			}
			sconn, err := dial(f.settings)
			if err != nil {
				return usageErr("--settings %q: %v", f.settings, err)
			}
			defer sconn.Close()
			settingsClient := mcsimv1.NewSettingsServiceClient(sconn)
			snap, err := firstSnapshot(ctx, settingsClient, f.settings)
			if err != nil {
				return &exitError{code: exitTransprt, msg: "mcsim master: " + err.Error()}
			}
			log, closer, err := f.logger("master", snap)
			if err != nil {
				return err
			}
			defer closer.Close()
			l, err := net.Listen("tcp", f.grpcAddr)
			if err != nil {
				return &exitError{code: exitFailure, msg: fmt.Sprintf("mcsim master: --grpc %s: %v", f.grpcAddr, err)}
			}
			node, err := master.New(master.Config{
				ID:              f.id,
				Address:         l.Addr().String(),
				Settings:        settingsClient,
				Coordination:    mcsimv1.NewCoordinationServiceClient(sconn),
				LeaseTTL:        leaseTTL,
				RenewInterval:   renew,
				Logger:          log,
				PID:             os.Getpid(),
				RestartRequired: snap.GetRestartRequired(),
			})
			if err != nil {
				l.Close()
				return usageErr("%v", err)
			}
			s := grpc.NewServer()
			node.Register(s)
			go func() { _ = s.Serve(l) }()
			for _, ca := range static {
				node.CoreappJoined(ca.id, ca.addr)
			}
			if err := procs.WriteReady(cmd.OutOrStdout(), procs.Ready{NodeID: f.id, GRPC: l.Addr().String(), PID: os.Getpid()}); err != nil {
				return err
			}
			err = node.Run(ctx)
			s.Stop()
			return err
		},
	}
	f.register(c, "master")
	c.Flags().StringArrayVar(&coreapps, "coreapp", nil, "a coreapp to heartbeat, as ID=HOST:PORT (repeatable)")
	c.Flags().DurationVar(&leaseTTL, "lease-ttl", 0, "master lease TTL (0: unhealthy_interval, live)")
	c.Flags().DurationVar(&renew, "lease-renew", 0, "lease renewal interval (0: heartbeat_interval, live)")
	return c
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
