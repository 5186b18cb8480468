package main

import (
	"bytes"
	"errors"
	"testing"
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
