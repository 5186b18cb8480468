package main

import (
	"errors"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mcsim/mcsim/cluster/launcher"
	"github.com/mcsim/mcsim/shard"
)

func newUpCommand() *cobra.Command {
	cfg := launcher.DefaultConfig()
	var pollMS, healthMS int
	c := &cobra.Command{
		Use:   "up",
		Short: "Run a whole local cluster: settings service, gateway, masters and coreapps",
		Long: `Run a local mcsim cluster. The settings service and the gateway run in this
process; every master (master-1..N) and coreapp (coreapp-1..N) is a child
process of this binary. Ports other than --http are picked free. Each node
logs to DATA/logs/<node-id>.log (settings.log, gateway.log, launcher.log for
the parts in this process). Each master and coreapp serves its own
Prometheus metrics; their URLs are printed at start (and listed in
GET /v1/health as "metrics").

Before any node starts, the shard count is set (POST /v1/account/shards) and,
when given, heartbeat_interval and unhealthy_interval are PATCHed into the
settings. Then it prints the URLs and a live status view (shard → coreapp and
epoch, per the gateway; each node's role and gateway status, per
GET /v1/health, read every --health-ms; recent failovers and takeovers, read
from the gateway's log and the store's lease grants every --poll-ms). On a
terminal, while 'mcsim up' is the foreground job, the view is redrawn in
place below what the terminal showed (never clearing the screen, cut to the
terminal's width and height, so no frame lands in the scrollback);
otherwise (a pipe, a file, 'mcsim up &') one plain line is printed per
change. On Ctrl-C it prints "stopping…" at once and, once every node has
stopped, a summary: failovers, takeovers, the longest downtime.

Ctrl-C or SIGTERM stops the cluster: masters first (coreapps keep serving),
then coreapps, then the gateway and the settings service; exit status 0. If the
launcher is killed (even by SIGKILL) the kernel kills every child. A second
'mcsim up' on the same --data fails before starting anything.

--json prints one JSON object per line per cluster event instead of the
view. Every object has "time" (RFC 3339, UTC) and "event"; the kinds:

  urls               http, grpc, gossip, gateway  (always the first line)
  node_started       node, role, pid, grpc, gossip, metrics (URL of /metrics)
  node_exited        node, role, pid, error ("" for a clean exit)
  cluster_started    every node announced itself ready
  gateway_connect    shard, shards, epoch, coreapp
  gateway_replace    shard, shards, epoch, coreapp, from, from_epoch,
                     from_shard, from_shards (the session replaced; shards is
                     the shard count a session was opened with)
  gateway_reject     shard, shards, epoch, coreapp, reason
  gateway_disconnect shard, shards, epoch, coreapp
  gateway_silent     shard, shards, epoch, coreapp, last_heard: the gateway no
                     longer hears the session (no pong for 750 ms; it pings every
                     250 ms): still open, not serving
  gateway_heard      shard, shards, epoch, coreapp: a silent session answered again
  role_change        node, from ("" on first sight), to  (roles as in /v1/health)
  failover           shard, from, to, epoch, downtime_ms: the shard moved to
                     another coreapp after its first assignment; downtime_ms runs
                     from the last moment the gateway heard the old owner to the
                     first moment it heard the new one (0 when the new session
                     replaced a live one); after a restart on the same --data, a
                     shard's first connect is a failover from the previous run's
                     owner in the stored map, timed from the gateway's start
  takeover           node, from, lease_epoch: the store granted the lease to
                     another master (timed by the store's grant, to the ms)
  lease_wait         node, epoch, remaining_ms: no master is primary while the
                     lease of node runs (a previous run's, after a restart on
                     the same --data); once per lease
  health_error       error: GET /v1/health failed (once per distinct error)
  stopping           Ctrl-C or SIGTERM arrived; the nodes are being stopped
  stopped            failovers, takeovers, and after a failover
                     longest_downtime_ms and its shard: the summary (last line)

Exit status: 0 after a stop by signal, 1 when the cluster could not start
(for example the data dir is in use), 2 for bad flags (nothing started).`,
		Example: `  # the default cluster: 2 masters, 3 coreapps, 2 shards, HTTP on 127.0.0.1:9090
  mcsim up

  # 32 shards, one standby, fast failover, events for a script
  mcsim up --shards 32 --coreapps 33 --heartbeat-interval 1s --unhealthy-interval 3s --json

  # the settings store in PostgreSQL (logs still in --data)
  mcsim up --store 'postgres://postgres@127.0.0.1:5433/mcsim?sslmode=disable'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.ClusterKey = flagOrEnv(cmd, "cluster-key", cfg.ClusterKey, clusterKeyEnv)
			cfg.AdminPassword = flagOrEnv(cmd, "admin-password", cfg.AdminPassword, passwordEnv)
			cfg.Out, cfg.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if f, ok := cfg.Out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				fd := int(f.Fd())
				cfg.Terminal = true
				cfg.Foreground = func() bool { return foreground(fd) }
				cfg.TermSize = func() (int, int, bool) {
					w, h, err := term.GetSize(fd)
					return w, h, err == nil
				}
			}
			if pollMS < 10 {
				return usageErr("--poll-ms: must be ≥ 10, got %d", pollMS)
			}
			cfg.PollInterval = msDuration(pollMS)
			if healthMS < 100 {
				return usageErr("--health-ms: must be ≥ 100, got %d", healthMS)
			}
			cfg.HealthInterval = msDuration(healthMS)
			if err := cfg.Statuses.Validate(); err != nil { // all zero would mean the defaults to Run
				return usageErr("up: %v", err)
			}
			err := launcher.Run(cmd.Context(), cfg)
			var ce *launcher.ConfigError
			switch {
			case err == nil:
				return nil
			case errors.As(err, &ce):
				return usageErr("up: %v", ce.Err)
			default:
				return &exitError{code: exitFailure, msg: err.Error()}
			}
		},
	}
	fl := c.Flags()
	fl.IntVar(&cfg.Masters, "masters", cfg.Masters, "number of masters (≥ 1)")
	fl.IntVar(&cfg.Coreapps, "coreapps", cfg.Coreapps, "number of coreapps (≥ --shards; the extra ones are standbys)")
	fl.IntVar(&cfg.Shards, "shards", cfg.Shards, "number of shards: 1, 2, 4, 8, 16 or 32")
	fl.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory (settings store, logs/)")
	fl.StringVar(&cfg.Store, "store", "", "the settings store: a postgres:// URL (PostgreSQL) or a bbolt directory (default: --data); logs stay in --data")
	fl.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "settings service HTTP address (port 0: pick a free one; see the first output line)")
	fl.StringVar(&cfg.AdminPassword, "admin-password", "", "settings service admin password (or "+passwordEnv+"; default: the service's default, loopback only)")
	fl.StringVar(&cfg.ClusterKey, "cluster-key", "", "passphrase that encrypts gossip (default: $"+clusterKeyEnv+")")
	durationFlag(fl, &cfg.HeartbeatInterval, "heartbeat-interval", 0, "set heartbeat_interval before nodes start (whole seconds; 0: keep the stored setting)")
	durationFlag(fl, &cfg.UnhealthyInterval, "unhealthy-interval", 0, "set unhealthy_interval before nodes start (whole seconds; 0: keep the stored setting)")
	statusDelayFlags(fl, &cfg.Statuses)
	fl.BoolVar(&cfg.JSON, "json", false, "print cluster events as JSON lines instead of the status view")
	fl.IntVar(&pollMS, "poll-ms", 100, "how often to read the gateway log and the store's lease grants (failovers, takeovers), in milliseconds")
	fl.IntVar(&healthMS, "health-ms", 1000, "how often to read /v1/health (roles, gateway statuses: one Status call to every node), in milliseconds")
	var counts []string
	for _, n := range shard.Counts() {
		counts = append(counts, strconv.Itoa(n))
	}
	completeValues(c, "shards", counts...)
	return c
}

func msDuration(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }
