package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcsim/mcsim/internal/exposure"
	"github.com/mcsim/mcsim/internal/faultnet"
	"github.com/mcsim/mcsim/membership"
	"github.com/mcsim/mcsim/settings/client"
	"github.com/mcsim/mcsim/settings/service"
	"github.com/mcsim/mcsim/settings/store/pgstore"
)

const passwordEnv = "MCSIM_ADMIN_PASSWORD"

func newSettingsCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "settings",
		Short: "Run the settings service, or read and change its settings",
		Long: `The settings service is the cluster's shared source of truth: it serves the
/v1/settings/application API over HTTP and the settings, lease and shard map
over gRPC. The client commands log in as admin and print the JSON answer.`,
		Example: `  mcsim settings serve --data ./.mcsim &
  mcsim settings get
  mcsim settings patch '{"heartbeat_interval": 1, "unhealthy_interval": 3}'
  mcsim settings reset`,
	}
	c.AddCommand(newSettingsServeCommand(), newSettingsGetCommand(), newSettingsPatchCommand(), newSettingsResetCommand())
	return c
}

func newSettingsServeCommand() *cobra.Command {
	c, _ := settingsServe()
	return c
}

// serveFlags are the flags of settings serve.
type serveFlags struct {
	cfg        service.Config
	logs       logFlags
	clusterKey string
	noFaults   bool
}

// config is the service configuration the command line gives, validated;
// it touches neither the network nor the disk.
func (f *serveFlags) config(cmd *cobra.Command) (service.Config, error) {
	cfg := f.cfg
	log, err := f.logs.logger(os.Stderr)
	if err != nil {
		return cfg, err
	}
	cfg.Logger = log.With().Str("node_id", cfg.ID()).Str("role", "settings").Logger()
	cfg.AdminPassword = flagOrEnv(cmd, "admin-password", cfg.AdminPassword, passwordEnv)
	cfg.ClusterKey = membership.KeyFromPassphrase(flagOrEnv(cmd, "cluster-key", f.clusterKey, clusterKeyEnv))
	if !f.noFaults {
		cfg.Faults = faultnet.New(cfg.ID())
	}
	fl := cmd.Flags()
	if fl.Changed("store") && fl.Changed("data") {
		return cfg, usageErr("--store and --data both name the store: give one (--store takes a postgres:// URL or a directory, --data a directory)")
	}
	cfg = cfg.Follow(fl.Changed("http"), fl.Changed("grpc"), fl.Changed("gossip"))
	// The off-loopback rules first, naming flags; Validate below repeats
	// the password rule for the library's callers.
	if err := exposure.Check(f.exposure(cfg)); err != nil {
		return cfg, usageErr("%v", err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageErr("%v", err)
	}
	return cfg, nil
}

// exposure is what the off-loopback rules look at (internal/exposure):
// the three listeners after Follow, --advertise, the gossip key and the
// password.
func (f *serveFlags) exposure(cfg service.Config) exposure.Node {
	n := exposure.Node{
		Addrs:           []exposure.Addr{{Flag: "--http", Value: cfg.HTTPAddr}, {Flag: "--grpc", Value: cfg.GRPCAddr, Announced: true}},
		Advertise:       cfg.Advertise,
		DefaultPassword: cfg.AdminPassword == service.DefaultAdminPassword,
	}
	if cfg.GossipAddr != "" {
		n.Addrs = append(n.Addrs, exposure.Addr{Flag: "--gossip", Value: cfg.GossipAddr, Announced: true})
		n.Gossip = true
		n.ClusterKey = string(cfg.ClusterKey)
	}
	return n
}

// settingsServe builds settings serve and returns its flags too, so a test
// can see the configuration a command line gives without serving it.
func settingsServe() (*cobra.Command, *serveFlags) {
	f := &serveFlags{cfg: service.DefaultConfig()}
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the settings service (HTTP API and gRPC) on a bbolt data dir or PostgreSQL",
		Long: `Run the settings service. Every change is on disk (fsync) before it is
acknowledged. The admin password comes from --admin-password or the
MCSIM_ADMIN_PASSWORD environment variable; the default "secret" is accepted
only when every listener is on a loopback address. Off loopback gossip must
be encrypted too: --cluster-key (or MCSIM_CLUSTER_KEY) is required, and a
listener on every interface (0.0.0.0) needs --advertise HOST, the address
other hosts reach this one at.

The three listeners use consecutive ports (HTTP, gRPC = HTTP + 1, gossip =
gRPC + 1); those not given follow those given, so a service moved to other
ports binds none of the defaults and runs beside a default one: --http
127.0.0.1:8080 alone means gRPC on 8081 and gossip on 8082. Port 0 (or a
port the layout would push out of range) means a free port; the ready line
prints the actual addresses.

The store is embedded bbolt in --data by default. --store takes either a
postgres:// (or postgresql://) URL, to keep everything in PostgreSQL, or a
directory, the same as --data. On PostgreSQL the service creates or
migrates its tables itself (mcsim_* in the URL's schema, search_path), and
several settings services may serve one database: a change through any of
them reaches the watchers of all, and the master lease is granted by the
database's row locks.`,
		Example: `  # on the embedded defaults: HTTP 127.0.0.1:9090, gRPC 127.0.0.1:9091, gossip 127.0.0.1:9092, data ./.mcsim
  mcsim settings serve

  # other ports (gossip follows: 8082) and data dir, human-readable logs; runs beside a default service
  mcsim settings serve --http 127.0.0.1:8080 --grpc 127.0.0.1:8081 --data /tmp/mc --log-format console

  # on PostgreSQL (two services on one database: a second one on other ports,
  # with its own --id, joining the first one's gossip so the cluster sees both)
  mcsim settings serve --store 'postgres://postgres@127.0.0.1:5433/mcsim?sslmode=disable'
  mcsim settings serve --store 'postgres://postgres@127.0.0.1:5433/mcsim?sslmode=disable' --http 127.0.0.1:8080 --id settings-2 --join 127.0.0.1:9092

  # on every interface: a password and a gossip key are required, and --advertise names this host to the others
  MCSIM_ADMIN_PASSWORD=s3cret MCSIM_CLUSTER_KEY=k3y mcsim settings serve --http 0.0.0.0:9090 --grpc 0.0.0.0:9091 --gossip 0.0.0.0:9092 --advertise 10.0.0.5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(cmd)
			if err != nil {
				return err
			}
			err = service.Run(cmd.Context(), cfg, func(a service.Addrs) {
				gossip := a.Gossip
				if gossip == "" {
					gossip = "off"
				}
				where := "data " + cfg.StoreSpec()
				if pgstore.IsURL(cfg.StoreSpec()) {
					where = "store " + pgstore.Redact(cfg.StoreSpec())
				}
				fmt.Fprintf(cmd.OutOrStdout(), "settings service ready: http://%s (gRPC %s, gossip %s, %s)\n", a.HTTP, a.GRPC, gossip, where)
			})
			if err != nil {
				return &exitError{code: exitFailure, msg: "mcsim: " + err.Error()}
			}
			return nil
		},
	}
	fs := c.Flags()
	fs.StringVar(&f.cfg.HTTPAddr, "http", f.cfg.HTTPAddr, "HTTP listen address (host:port); not given while --grpc or --gossip is, it follows their port (-1, -2)")
	fs.StringVar(&f.cfg.GRPCAddr, "grpc", f.cfg.GRPCAddr, "gRPC listen address (host:port); not given, it follows the port of --http (+1) or --gossip (-1)")
	fs.StringVar(&f.cfg.DataDir, "data", f.cfg.DataDir, "data directory (bbolt store)")
	fs.StringVar(&f.cfg.Store, "store", "", "the store: a postgres:// URL (PostgreSQL, may be shared by several settings services) or a bbolt data directory (default: --data)")
	fs.StringVar(&f.cfg.WAID, "wa-id", f.cfg.WAID, "the account's wa_id, shown read-only in the settings")
	fs.StringVar(&f.cfg.AdminPassword, "admin-password", f.cfg.AdminPassword, "admin password (or "+passwordEnv+")")
	fs.StringVar(&f.cfg.GossipAddr, "gossip", f.cfg.GossipAddr, `gossip (memberlist) address, the --join seed of every node; not given, it follows the port of --grpc (+1) or --http (+2); port 0 picks one, "" turns membership off`)
	fs.StringVar(&f.clusterKey, "cluster-key", "", "passphrase encrypting gossip; every node needs the same (or "+clusterKeyEnv+"); required off loopback")
	fs.StringVar(&f.cfg.Advertise, "advertise", "", "host (IP or name) other hosts reach this service at, announced by its gossip with the bound port; required when --gossip is on every interface (0.0.0.0)")
	fs.StringVar(&f.cfg.NodeID, "id", service.NodeID, "this service's node id in the gossip cluster; a second service on the same PostgreSQL store needs its own")
	fs.StringSliceVar(&f.cfg.Join, "join", nil, "gossip address of another settings service on the same PostgreSQL store to join (repeatable); needs --store postgres://… and its own --id")
	fs.BoolVar(&f.noFaults, "no-fault-layer", false, "run without the fault layer: the scenario runner cannot partition or slow the service (for measuring the layer's cost)")
	f.logs.register(c)
	return c, f
}

// clientFlags are the flags of every command that talks to the HTTP API.
type clientFlags struct {
	url      string
	password string
	timeout  time.Duration
}

func (f *clientFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.url, "url", "http://127.0.0.1:9090", "base URL of the settings service")
	c.Flags().StringVar(&f.password, "admin-password", "secret", "admin password (or "+passwordEnv+")")
	durationFlag(c.Flags(), &f.timeout, "timeout", 10*time.Second, "give up after this long")
}

func (f *clientFlags) client(cmd *cobra.Command) (*client.Client, error) {
	if !strings.Contains(f.url, "://") {
		f.url = "http://" + f.url // a bare host:port, as the client accepts
	}
	u, err := url.Parse(f.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErr("--url: must be an http:// or https:// URL with a host, got %q", f.url)
	}
	pw := flagOrEnv(cmd, "admin-password", f.password, passwordEnv)
	return client.New(f.url, pw, &http.Client{Timeout: f.timeout}), nil
}

// printResult writes an API answer to stdout, indented, or turns an API
// error into its envelope on stderr with exit code 1 and a transport error
// into exit code 3.
func printResult(out io.Writer, body []byte, err error) error {
	if err != nil {
		var apiErr *client.APIError
		if errors.As(err, &apiErr) {
			return &exitError{code: exitFailure, msg: string(bytes.TrimSpace(apiErr.Body))}
		}
		return &exitError{code: exitTransprt, msg: "mcsim: " + err.Error()}
	}
	var buf bytes.Buffer
	body = bytes.TrimSpace(body)
	if json.Indent(&buf, body, "", "  ") != nil {
		buf.Reset()
		buf.Write(body)
	}
	buf.WriteByte('\n')
	_, werr := out.Write(buf.Bytes())
	return werr
}

func newSettingsGetCommand() *cobra.Command {
	var cf clientFlags
	c := &cobra.Command{
		Use:   "get",
		Short: "Print every current application setting (GET /v1/settings/application)",
		Example: `  mcsim settings get
  mcsim settings get --url http://127.0.0.1:8080 | jq .settings.application.heartbeat_interval`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd)
			if err != nil {
				return err
			}
			body, err := c.Get(cmd.Context())
			return printResult(cmd.OutOrStdout(), body, err)
		},
	}
	cf.register(c)
	return c
}

func newSettingsPatchCommand() *cobra.Command {
	var cf clientFlags
	var file string
	c := &cobra.Command{
		Use:   "patch ['<json>']",
		Short: "Change the settings present in a JSON object (PATCH /v1/settings/application)",
		Long: `Change the settings present in a JSON object, leaving the rest. Nested objects
merge, arrays are replaced whole. The change is all or nothing: on any bad
field the error envelope (one error per field) goes to stderr, nothing
changes and the exit code is 1.`,
		Example: `  mcsim settings patch '{"heartbeat_interval": 1, "unhealthy_interval": 3}'
  mcsim settings patch '{"webhooks": {"message": {"read": false}}}'
  mcsim settings patch -f change.json
  echo '{"log_level": "warning"}' | mcsim settings patch -f -`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body []byte
			switch {
			case len(args) == 1 && file != "":
				return usageErr("give the JSON as an argument or with -f, not both")
			case len(args) == 1:
				body = []byte(args[0])
			case file == "-":
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return usageErr("reading stdin: %v", err)
				}
				body = b
			case file != "":
				b, err := os.ReadFile(file)
				if err != nil {
					return usageErr("-f: %v", err)
				}
				body = b
			default:
				return usageErr("patch needs a JSON object: mcsim settings patch '{\"heartbeat_interval\": 1}' (or -f FILE)")
			}
			c, err := cf.client(cmd)
			if err != nil {
				return err
			}
			resp, err := c.Patch(cmd.Context(), body)
			return printResult(cmd.OutOrStdout(), resp, err)
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", `read the JSON object from FILE ("-" for stdin)`)
	cf.register(c)
	return c
}

func newSettingsResetCommand() *cobra.Command {
	var cf clientFlags
	c := &cobra.Command{
		Use:     "reset",
		Short:   "Reset every setting to its default (DELETE /v1/settings/application)",
		Example: `  mcsim settings reset`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client(cmd)
			if err != nil {
				return err
			}
			body, err := c.Reset(cmd.Context())
			return printResult(cmd.OutOrStdout(), body, err)
		},
	}
	cf.register(c)
	return c
}
