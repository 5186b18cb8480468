package main

import (
	"os"
	"strings"
	"testing"
)

// Off loopback every command refuses, with exit 2 and the flag to change
// named, the two things loopback tolerates: the default admin password
// and an unencrypted gossip ring; and a node announcing a wildcard
// address. Nothing is started or created (the data dir stays absent).
func TestOffLoopbackRefusals(t *testing.T) {
	for _, env := range []string{clusterKeyEnv, passwordEnv} {
		t.Setenv(env, "") // restored after the test
		os.Unsetenv(env)
	}
	data := t.TempDir() + "/never-created"
	node := []string{"--settings", "10.0.0.1:9091", "--join", "10.0.0.1:9092"}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{append([]string{"coreapp", "--gateway", "10.0.0.1:9300", "--grpc", "10.0.0.5:0"}, node...),
			[]string{`--cluster-key: required off loopback (--grpc "10.0.0.5:0" is not loopback)`}},
		{append([]string{"master", "--grpc", "0.0.0.0:0", "--gossip", "0.0.0.0:0", "--cluster-key", "k"}, node...),
			[]string{`--advertise: required when --grpc "0.0.0.0:0" listens on every interface`}},
		{append([]string{"master", "--advertise", "10.0.0.5"}, node...),
			[]string{`--cluster-key: required off loopback (--advertise "10.0.0.5" is not loopback)`}},
		{append([]string{"coreapp", "--gateway", "10.0.0.1:9300", "--advertise", "10.0.0.5:9401", "--cluster-key", "k"}, node...),
			[]string{`--advertise: a host without a port`}},
		{[]string{"gateway", "--grpc", "0.0.0.0:0"}, []string{`--advertise: required when --grpc "0.0.0.0:0"`}},
		{[]string{"settings", "serve", "--data", data, "--http", "0.0.0.0:0", "--advertise", "10.0.0.5"},
			[]string{`--cluster-key: required off loopback (--http "0.0.0.0:0" is not loopback)`, `--admin-password: the default password is allowed only on loopback`}},
		{[]string{"settings", "serve", "--data", data, "--grpc", "0.0.0.0:0", "--admin-password", "s3cret", "--cluster-key", "k"},
			[]string{`--advertise: required when --grpc "0.0.0.0:0" listens on every interface`}},
		{[]string{"up", "--data", data, "--http", "0.0.0.0:0"},
			[]string{`--admin-password`, `--http "0.0.0.0:0"`}},
	} {
		code, out := run(t, tc.args...)
		if code != exitUsage {
			t.Errorf("mcsim %v: exit %d, want %d; output %q", tc.args, code, exitUsage, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("mcsim %v: output %q, want it to contain %q", tc.args, out, w)
			}
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("a refused command created its data dir %s (stat: %v)", data, err)
	}
}

// The help's off-loopback example is accepted as written (its variables
// set), and refused without them, naming both flags: the example and the
// rules cannot drift apart.
func TestServeHelpOffLoopbackExample(t *testing.T) {
	c, _ := settingsServe()
	var line string
	for _, l := range strings.Split(c.Example, "\n") {
		if strings.Contains(l, "0.0.0.0") && strings.Contains(l, "mcsim settings serve") {
			line = strings.TrimSpace(l)
		}
	}
	if line == "" {
		t.Fatalf("no off-loopback example in:\n%s", c.Example)
	}
	envPart, flags, _ := strings.Cut(line, "mcsim settings serve")
	for _, withEnv := range []bool{true, false} {
		for _, env := range []string{clusterKeyEnv, passwordEnv} {
			t.Setenv(env, "")
			os.Unsetenv(env)
		}
		if withEnv {
			for _, kv := range strings.Fields(envPart) {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
		}
		c, f := settingsServe()
		if err := c.ParseFlags(strings.Fields(flags)); err != nil {
			t.Fatalf("example %q: %v", line, err)
		}
		_, err := f.config(c)
		switch {
		case withEnv && err != nil:
			t.Errorf("example %q refused: %v", line, err)
		case !withEnv && (err == nil || !strings.Contains(err.Error(), "--cluster-key") || !strings.Contains(err.Error(), "--admin-password")):
			t.Errorf("example %q without its variables: %v, want --cluster-key and --admin-password refused", line, err)
		}
	}
}
