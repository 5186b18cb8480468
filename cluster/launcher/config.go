// Package launcher runs a whole mcsim cluster on one machine: it is the
// logic of `mcsim up`, kept apart from cobra so that it can be tested and
// reused. The settings service and the gateway run inside the launcher's
// process; every master and coreapp is a child process of the mcsim binary
// (`mcsim master ...`, `mcsim coreapp ...`) started through cluster/procs,
// so a SIGKILL of the launcher takes every child with it (Pdeathsig).
//
// While the cluster runs, the launcher watches it the way an operator
// would: it polls the settings service's GET /v1/health and reads the
// gateway's event log (the impartial record of shard sessions), and turns
// both into a live status view or a stream of JSON events (see Event).
package launcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/mcsim/mcsim/gateway"
	"github.com/mcsim/mcsim/internal/exposure"
	"github.com/mcsim/mcsim/settings/service"
	"github.com/mcsim/mcsim/shard"
)

// Config configures one local cluster.
type Config struct {
	// Masters is how many master processes to run (master-1..N); ≥ 1.
	Masters int
	// Coreapps is how many coreapp processes to run (coreapp-1..N);
	// ≥ Shards. Coreapps beyond Shards are standbys.
	Coreapps int
	// Shards is the shard count set in the settings before any node
	// starts: 1, 2, 4, 8, 16 or 32.
	Shards int
	// DataDir holds the settings store and logs/<node-id>.log. One running
	// cluster per data dir.
	DataDir string
	// Store is the settings store (service.Config.Store): "" for bbolt in
	// DataDir, a postgres:// URL, or another bbolt directory.
	Store string
	// HTTPAddr is the settings service's HTTP API (port 0: a free port).
	HTTPAddr string
	// AdminPassword is the settings service's admin password; the launcher
	// logs in with it to read /v1/health.
	AdminPassword string
	// ClusterKey, when not empty, encrypts gossip (passed to the children
	// in the environment, not on their command line).
	ClusterKey string
	// HeartbeatInterval and UnhealthyInterval, when not zero, are PATCHed
	// into the settings (whole seconds) before any node starts.
	HeartbeatInterval, UnhealthyInterval time.Duration
	// Settings is a PATCH of /v1/settings/application applied before any
	// node starts (before HeartbeatInterval and UnhealthyInterval); nil
	// means none. A scenario's settings come this way.
	Settings json.RawMessage
	// Statuses are the gateway's status delays (zero: the defaults,
	// gateway.DefaultStatusDelays).
	Statuses gateway.StatusDelays
	// Binary is the mcsim executable the children run; "" means this
	// process's own executable.
	Binary string
	// JSON streams one JSON object per cluster event on Out instead of the
	// status view.
	JSON bool
	// Terminal says Out is a terminal: the status view is then redrawn in
	// place (cursor up over the previous frame, never clearing the screen)
	// while Foreground says so; otherwise a plain line is printed per
	// change.
	Terminal bool
	// Foreground reports whether this process is the terminal's foreground
	// process group (nil: always). A backgrounded `mcsim up &` must not
	// redraw over what the user is typing.
	Foreground func() bool
	// TermSize reports the terminal's columns and rows (nil or ok false:
	// 80×24). Frames are cut to fit, so no line wraps and no frame scrolls
	// into the scrollback.
	TermSize func() (cols, rows int, ok bool)
	// Out receives the URLs and the status view or event stream; Err
	// receives warnings.
	Out, Err io.Writer
	// PollInterval is how often the gateway log, the store's lease
	// decisions and the processes are looked at; 0 means 100 ms.
	PollInterval time.Duration
	// HealthInterval is how often /v1/health is read (roles and gateway
	// statuses for the view); 0 means DefaultHealthInterval.
	HealthInterval time.Duration
}

// DefaultConfig is the defaults: 2 masters, 3 coreapps (one
// standby), 2 shards, ./.mcsim, HTTP on 127.0.0.1:9090.
func DefaultConfig() Config {
	return Config{
		Masters:  2,
		Coreapps: 3,
		Shards:   2,
		DataDir:  "./.mcsim",
		HTTPAddr: "127.0.0.1:9090",
		Out:      os.Stdout,
		Err:      os.Stderr,
	}
}

// Validate reports every problem of the configuration, naming the flag
// each field comes from. It changes nothing.
func (c Config) Validate() error {
	var errs []error
	if err := shard.CountError(c.Shards); err != nil {
		errs = append(errs, fmt.Errorf("--shards: %w", err))
	}
	if c.Masters < 1 {
		errs = append(errs, fmt.Errorf("--masters: must be ≥ 1, got %d", c.Masters))
	}
	if c.Coreapps < c.Shards || c.Coreapps < 1 {
		errs = append(errs, fmt.Errorf("--coreapps: must be ≥ --shards (%d) so every shard has a coreapp, got %d", c.Shards, c.Coreapps))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data: must not be empty"))
	}
	if err := service.CheckStore(c.Store); err != nil {
		errs = append(errs, fmt.Errorf("--%w", err))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("--http: must be host:port, got %q: %v", c.HTTPAddr, err))
	} else if err := exposure.Check(exposure.Node{
		// The settings service refuses the password too, but only after
		// the data dir exists; a usage error must leave nothing behind.
		// Only --http can leave loopback: every other listener of up is
		// on 127.0.0.1, its gossip ring too, so an HTTP API opened to
		// other hosts needs a real password but no gossip key (the ring
		// never leaves this machine).
		Addrs:           []exposure.Addr{{Flag: "--http", Value: c.HTTPAddr}},
		Gossip:          false,
		DefaultPassword: c.AdminPassword == "" || c.AdminPassword == service.DefaultAdminPassword,
	}); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--heartbeat-interval", c.HeartbeatInterval}, {"--unhealthy-interval", c.UnhealthyInterval}} {
		if d.v < 0 || d.v%time.Second != 0 {
			errs = append(errs, fmt.Errorf("%s: must be a whole number of seconds ≥ 1 (0: keep the setting), got %v", d.flag, d.v))
		}
	}
	if c.Statuses != (gateway.StatusDelays{}) {
		if err := c.Statuses.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--status-*: %w", err))
		}
	}
	if c.HeartbeatInterval > 0 && c.UnhealthyInterval > 0 && c.UnhealthyInterval <= c.HeartbeatInterval {
		errs = append(errs, fmt.Errorf("--unhealthy-interval: must be > --heartbeat-interval (%v), got %v", c.HeartbeatInterval, c.UnhealthyInterval))
	}
	if c.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("PollInterval: must be ≥ 0, got %v", c.PollInterval))
	}
	if c.HealthInterval < 0 {
		errs = append(errs, fmt.Errorf("HealthInterval: must be ≥ 0, got %v", c.HealthInterval))
	}
	return errors.Join(errs...)
}

// Warnings are legal but risky choices, for stderr.
func (c Config) Warnings() []string {
	var w []string
	if c.Coreapps == c.Shards {
		w = append(w, fmt.Sprintf("--coreapps %d == --shards %d: no standby coreapp, so a failed coreapp's shards stay down until it returns", c.Coreapps, c.Shards))
	}
	return w
}
