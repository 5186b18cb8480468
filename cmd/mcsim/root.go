package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/mcsim/mcsim/internal/logging"
	"github.com/mcsim/mcsim/internal/version"
	"github.com/mcsim/mcsim/settings"
)

// Exit codes scripts can rely on.
const (
	exitOK       = 0 // success
	exitFailure  = 1 // the operation ran and failed (API error envelope on stderr, failed check)
	exitUsage    = 2 // bad flags or arguments; nothing was done
	exitTransprt = 3 // the service could not be reached
)

// exitError carries an exit code out of a command; main prints msg (if any)
// to stderr and exits with code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, msg: "mcsim: " + fmt.Sprintf(format, args...)}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "mcsim",
		Short: "Simulate the multiconnect cluster of the WhatsApp Business On-Premises API",
		Long: `mcsim simulates the multiconnect cluster of the WhatsApp Business On-Premises
API: a settings service implementing /v1/settings/application, masters that
heartbeat coreapps over gRPC and fail their shards over, coreapps, and a
gateway that witnesses every shard session.`,
		Example: `  # a local cluster: settings service, gateway, 2 masters, 3 coreapps, 2 shards
  mcsim up

  # in another terminal: the cluster table, then read and change settings
  mcsim status
  mcsim settings get
  mcsim settings patch '{"heartbeat_interval": 1, "unhealthy_interval": 3}'`,
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr("%v (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(newSettingsCommand(), newGatewayCommand(), newCoreappCommand(), newMasterCommand(), newUpCommand())
	root.AddCommand(newStatusCommand(), newScenarioCommand(), newWebhookSinkCommand(), newLoadCommand(), newBenchCommand(), newSweepCommand())
	// cobra adds its completion commands at Execute; add them now so that
	// they get examples like every other command.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Example = `  source <(mcsim completion bash)
  mcsim completion zsh > "${fpath[1]}/_mcsim"
  mcsim completion fish > ~/.config/fish/completions/mcsim.fish`
		examples := map[string]string{
			"bash":       `  source <(mcsim completion bash)`,
			"zsh":        `  mcsim completion zsh > "${fpath[1]}/_mcsim"`,
			"fish":       `  mcsim completion fish > ~/.config/fish/completions/mcsim.fish`,
			"powershell": `  mcsim completion powershell | Out-String | Invoke-Expression`,
		}
		for _, sub := range c.Commands() {
			sub.Example = examples[sub.Name()]
		}
	}
	refuseUnknownSubcommands(root)
	return root
}

// logFlags are the logging flags shared by every long-running command.
// --log-level takes the values of the log_level setting and
// --verbose-logging is verbose_logging, so a level means the same on the
// command line and in the API.
type logFlags struct {
	format  string
	level   string
	verbose bool
}

func (f *logFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.format, "log-format", "json", `log format on stderr: "json" or "console"`)
	c.Flags().StringVar(&f.level, "log-level", "info", "log level, as the log_level setting: "+quotedList(settings.LogLevels()))
	c.Flags().BoolVar(&f.verbose, "verbose-logging", false, "log at debug level, ignoring --log-level (as the verbose_logging setting)")
	completeValues(c, "log-format", "json", "console")
	completeValues(c, "log-level", settings.LogLevels()...)
}

func (f *logFlags) logger(w io.Writer) (zerolog.Logger, error) {
	format, err := logging.ParseFormat(f.format)
	if err != nil {
		return zerolog.Nop(), usageErr("%v", err)
	}
	if !slices.Contains(settings.LogLevels(), f.level) {
		return zerolog.Nop(), usageErr("--log-level: must be one of %s, got %q", quotedList(settings.LogLevels()), f.level)
	}
	return logging.New(w, format, logging.Level(f.level, f.verbose)), nil
}

// quotedList renders values as "a", "b" or "c".
func quotedList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = strconv.Quote(v)
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// flagOrEnv is the one rule for flags that an environment variable can
// also set: the flag when given on the command line (even as ""), else the
// variable when set, else the flag's default.
func flagOrEnv(cmd *cobra.Command, flag, value, env string) string {
	if cmd.Flags().Changed(flag) {
		return value
	}
	return envOr(env, value)
}

// envOr returns the environment variable's value, or def when it is unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}
