package main

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// run executes the CLI in-process and returns its exit code as main would
// compute it, with what it printed and the error main would print.
func run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	if err == nil {
		return exitOK, out.String()
	}
	var ex *exitError
	if errors.As(err, &ex) {
		return ex.code, out.String() + ex.msg
	}
	return exitUsage, out.String() + err.Error()
}

// Usage errors exit 2 before anything is sent; an unreachable service
// exits 3.
func TestClientExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"settings", "get", "--url", "ht!tp://x"}, exitUsage},
		{[]string{"settings", "get", "--url", "ftp://127.0.0.1:1"}, exitUsage},
		{[]string{"status", "--url", "http://"}, exitUsage},
		{[]string{"settings", "patch"}, exitUsage},
		{[]string{"settings", "patch", "{}", "-f", "x.json"}, exitUsage},
		{[]string{"settings", "patch", "-f", "/nonexistent/x.json"}, exitUsage},
		{[]string{"settings", "get", "--no-such-flag"}, exitUsage},
		{[]string{"settings", "get", "--url", "127.0.0.1:1", "--timeout", "2s"}, exitTransprt},
	} {
		if got, _ := run(t, tc.args...); got != tc.want {
			t.Errorf("mcsim %v: exit %d, want %d", tc.args, got, tc.want)
		}
	}
}

// The CLI keeps the README's word: an unknown subcommand, a negative
// duration, an address that is not host:port, or the default password off
// loopback is exit 2 with the offending flag or word named, and nothing
// is started, connected to or created.
func TestUsageErrorsNameWhatIsWrong(t *testing.T) {
	data := t.TempDir() + "/never-created"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"settings", "bogus"}, `unknown command "bogus" for "mcsim settings"`},
		{[]string{"settings", "gett"}, "did you mean get?"},
		{[]string{"completion", "tcsh"}, `unknown command "tcsh" for "mcsim completion"`},
		{[]string{"settings", "get", "--timeout", "-1s"}, `"--timeout" flag: must not be negative`},
		{[]string{"master", "--lease-ttl", "-2s"}, `"--lease-ttl" flag: must not be negative`},
		{[]string{"up", "--heartbeat-interval", "-1s", "--data", data}, `"--heartbeat-interval" flag: must not be negative`},
		{[]string{"coreapp", "--gateway", "bogus"}, `--gateway: must be host:port`},
		{[]string{"coreapp", "--gateway", "127.0.0.1:0"}, `--gateway: must name a host and a non-zero port`},
		{[]string{"coreapp", "--gateway", "127.0.0.1:1", "--settings", "x"}, `--settings: must be host:port`},
		{[]string{"master", "--join", "127.0.0.1"}, `--join: must be host:port`},
		{[]string{"gateway", "--grpc", "127.0.0.1:99999"}, `--grpc: port must be a number 0-65535`},
		{[]string{"up", "--http", "0.0.0.0:0", "--data", data}, `--admin-password: the default password`},
		{[]string{"gateway", "--status-read", "10ms"}, `status delay read: must be ≥ delivered (300ms), got 10ms`},
		{[]string{"gateway", "--status-sent", "-1s"}, `"--status-sent" flag: must not be negative`},
		{[]string{"up", "--status-resend", "0", "--data", data}, `status resend: must be > 0, got 0s`},
	} {
		code, out := run(t, tc.args...)
		if code != exitUsage || !strings.Contains(out, tc.want) {
			t.Errorf("mcsim %v: exit %d, output %q; want exit %d with %q", tc.args, code, out, exitUsage, tc.want)
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("a refused up created its data dir %s (stat: %v)", data, err)
	}
}

// A group command without a subcommand prints its help and succeeds.
func TestGroupCommandWithoutSubcommandPrintsHelp(t *testing.T) {
	code, out := run(t, "settings")
	if code != exitOK || !strings.Contains(out, "Available Commands") {
		t.Errorf("mcsim settings: exit %d, output %q; want 0 and the help", code, out)
	}
}

// Shell completion offers the values of enumerated flags.
func TestCompletionOffersEnumeratedValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"up", "--shards", ""}, []string{"1", "2", "4", "8", "16", "32"}},
		{[]string{"settings", "serve", "--log-format", ""}, []string{"json", "console"}},
		{[]string{"settings", "serve", "--log-level", ""}, []string{"info", "warning", "error", "fatal"}},
		{[]string{"coreapp", "--log-format", ""}, []string{"json", "console"}},
	} {
		_, out := run(t, append([]string{cobra.ShellCompRequestCmd}, tc.args...)...)
		got := strings.Fields(out)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("completing mcsim %v: got %q, want %q among them", tc.args, out, w)
			}
		}
	}
}

// A flag given on the command line wins, even as ""; otherwise the
// environment variable; otherwise the flag's default.
func TestFlagOrEnv(t *testing.T) {
	const env = "MCSIM_TEST_FLAG_OR_ENV"
	for _, tc := range []struct {
		name   string
		args   []string
		envSet bool
		want   string
	}{
		{"default", nil, false, "dflt"},
		{"env over default", nil, true, "from-env"},
		{"flag over env", []string{"--key", "from-flag"}, true, "from-flag"},
		{"empty flag over env", []string{"--key", ""}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.envSet {
				t.Setenv(env, "from-env")
			}
			var got string
			cmd := &cobra.Command{Use: "x", RunE: func(cmd *cobra.Command, _ []string) error {
				v, _ := cmd.Flags().GetString("key")
				got = flagOrEnv(cmd, "key", v, env)
				return nil
			}}
			cmd.Flags().String("key", "dflt", "")
			cmd.SetArgs(tc.args)
			if err := cmd.Execute(); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("flagOrEnv = %q, want %q", got, tc.want)
			}
		})
	}
}

// Every command a user can run shows examples in its --help (help itself
// excepted: cobra's, with nothing to show).
func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() != "help" && c.Example == "" {
			t.Errorf("%q has no examples in --help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand())
}
