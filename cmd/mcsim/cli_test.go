package main

import (
	"bytes"
	"errors"
	"testing"

	"github.com/spf13/cobra"
)

// run executes the CLI in-process and returns its exit code as main would
// compute it, with stdout.
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
		return ex.code, out.String()
	}
	return exitUsage, out.String()
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
