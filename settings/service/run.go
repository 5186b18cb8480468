package service

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/mcsim/mcsim/internal/faultnet"
	"github.com/mcsim/mcsim/internal/grpcopts"
	"github.com/mcsim/mcsim/membership"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
	"github.com/mcsim/mcsim/settings/grpcapi"
	"github.com/mcsim/mcsim/settings/httpapi"
	"github.com/mcsim/mcsim/settings/store"
	"github.com/mcsim/mcsim/settings/store/pgstore"
)

// HTTP server limits. The API takes small JSON bodies from a handful of
// admins and nodes, so anything slow is a stuck or hostile client.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// shutdownGrace is how long a stop waits for requests in flight before
// cutting connections.
const shutdownGrace = 5 * time.Second

// grpcOptions: keepalive pings make the server notice dead watchers (a
// killed node's Watch stream) instead of holding them forever; the
// enforcement policy lets nodes ping idle connections as often as every 5 s
// so they notice a dead service just as fast.
func grpcOptions() []grpc.ServerOption {
	return append(grpcopts.Server(),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
}

// NodeID is the settings service's name in the gossip cluster.
const NodeID = "settings"

// leaveTimeout bounds each of the two gossip rounds of a graceful leave.
const leaveTimeout = time.Second

// Addrs are the addresses the service actually listens on (port 0
// resolved). Gossip is empty when Config.GossipAddr is "".
type Addrs struct {
	HTTP, GRPC, Gossip string
}

// Run validates cfg, opens the store, serves HTTP and gRPC and (with a
// GossipAddr) joins the gossip cluster as its seed, until ctx is cancelled;
// then it leaves the cluster, stops both servers gracefully and closes the
// store. ready, if not nil, is called once everything is listening, with the
// actual addresses (useful with port 0). Run returns nil after a stop by
// ctx, or the first error that kept it from starting or serving.
func Run(ctx context.Context, cfg Config, ready func(Addrs)) (err error) {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("settings service: invalid configuration:\n%w", err)
	}
	log := cfg.Logger

	st, where, err := openStore(cfg.StoreSpec())
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("settings service: close store: %w", cerr)
		}
	}()

	var lc net.ListenConfig
	httpLn, err := lc.Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("settings service: http_addr %s: %w", cfg.HTTPAddr, err)
	}
	grpcLn, err := lc.Listen(ctx, "tcp", cfg.GRPCAddr)
	if err != nil {
		_ = httpLn.Close()
		return fmt.Errorf("settings service: grpc_addr %s: %w", cfg.GRPCAddr, err)
	}
	addrs := Addrs{HTTP: httpLn.Addr().String(), GRPC: grpcLn.Addr().String()}
	if cfg.Faults != nil {
		grpcLn = cfg.Faults.Listen(grpcLn)
	}

	// Membership starts before the servers: its metadata needs the actual
	// gRPC address, and the health endpoint needs the member list.
	var member *membership.Member
	if cfg.GossipAddr != "" {
		member, err = startMembership(cfg, addrs.GRPC, log)
		if err != nil {
			_ = httpLn.Close()
			_ = grpcLn.Close()
			return fmt.Errorf("settings service: %w", err)
		}
		addrs.Gossip = member.LocalNode().GossipAddr
	}
	// One private registry for the whole service, served on HTTP /metrics.
	reg := prometheus.NewRegistry()
	// The front door's links to coreapps carry messages, a data path: they
	// go through the fault layer so scenario faults apply to them too.
	var coreappDial []grpc.DialOption
	if cfg.Faults != nil {
		coreappDial = append(coreappDial, grpc.WithContextDialer(cfg.Faults.GRPCDialer()))
	}
	coreapps := httpapi.NewCoreapps(coreappDial...)
	defer func() { _ = coreapps.Close() }()
	hcfg := httpapi.Config{
		Store: st, WAID: cfg.WAID, AdminPassword: cfg.AdminPassword, Logger: log, Now: time.Now, Metrics: reg,
		Coreapps: coreapps,
	}
	agg, err := newHealth(member, log)
	var handler http.Handler
	var watches grpc.StreamServerInterceptor
	if err == nil {
		if agg != nil {
			hcfg.Health = agg.Health
		}
		handler, err = httpapi.New(hcfg)
	}
	if err == nil {
		watches, err = watchGauge(reg)
	}
	if err != nil {
		_ = httpLn.Close()
		_ = grpcLn.Close()
		if agg != nil {
			agg.Close()
		}
		if member != nil {
			_ = member.Shutdown()
		}
		return fmt.Errorf("settings service: %w", err)
	}

	httpSrv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// net/http's own errors (TLS handshakes, panics) go to our logger,
		// not to the standard library's global one.
		ErrorLog: stdlog.New(log.With().Str("component", "http").Logger(), "", 0),
	}
	grpcSrv := grpc.NewServer(append(grpcOptions(), grpc.ChainStreamInterceptor(watches))...)
	services := grpcapi.Register(grpcSrv, grpcapi.Config{Store: st, WAID: cfg.WAID, Logger: log, Now: time.Now, OnLease: cfg.OnLease})
	if cfg.Faults != nil {
		mcsimv1.RegisterFaultServiceServer(grpcSrv, faultnet.NewServer(cfg.Faults, nil))
	}

	// Both servers report into failed; the first error (or ctx) stops all.
	failed := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := httpSrv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("settings service: http: %w", err)
		}
	})
	wg.Go(func() {
		if err := grpcSrv.Serve(grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			failed <- fmt.Errorf("settings service: grpc: %w", err)
		}
	})

	log.Info().Str("http_addr", addrs.HTTP).Str("grpc_addr", addrs.GRPC).Str("gossip_addr", addrs.Gossip).
		Str("store", where).Uint64("revision", st.State().Revision).Msg("settings service started")
	if ready != nil {
		ready(addrs)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-failed:
	}
	log.Info().Msg("settings service stopping")
	if member != nil {
		// Leave first, so the nodes stop counting on the seed before its
		// servers go away; a failed leave only makes them notice later.
		if err := member.Leave(leaveTimeout); err != nil {
			log.Warn().Err(err).Msg("leaving the gossip cluster")
		}
		_ = member.Shutdown()
	}
	stop(httpSrv, grpcSrv, services)
	wg.Wait()
	if agg != nil {
		agg.Close()
	}
	log.Info().Msg("settings service stopped")
	return runErr
}

// openStore opens the store spec names: a postgres:// URL (pgstore) or a
// bbolt data dir. where is spec fit for logs (no password).
func openStore(spec string) (st store.Backend, where string, err error) {
	if pgstore.IsURL(spec) {
		where = pgstore.Redact(spec)
		pg, err := pgstore.Open(spec)
		if err != nil {
			return nil, where, fmt.Errorf("settings service: %w", err)
		}
		return pg, where, nil
	}
	bolt, err := store.Open(spec)
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return nil, spec, fmt.Errorf("settings service: %w; stop that service or choose another --data dir", err)
		}
		return nil, spec, fmt.Errorf("settings service: open store in %s: %w", spec, err)
	}
	return bolt, spec, nil
}

// stop shuts both servers down, giving requests in flight shutdownGrace
// to finish. Watch streams are ended first (they never end on their own).
func stop(httpSrv *http.Server, grpcSrv *grpc.Server, services *grpcapi.Services) {
	services.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := httpSrv.Shutdown(ctx); err != nil {
			_ = httpSrv.Close()
		}
	})
	wg.Go(func() {
		done := make(chan struct{})
		go func() { grpcSrv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			grpcSrv.Stop()
			<-done
		}
	})
	wg.Wait()
}
