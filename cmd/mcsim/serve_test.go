package main

import (
	"net"
	"strings"
	"testing"

	"github.com/mcsim/mcsim/settings/service"
)

// The help's own example with other ports must run beside a default
// service: the configuration its flags give binds none of the default
// ports (it used to keep gossip on 9092). The example line is read from
// the help itself, so help and behaviour cannot drift apart.
func TestServeHelpExampleBindsNoDefaultPort(t *testing.T) {
	c, f := settingsServe()
	var line string
	for _, l := range strings.Split(c.Example, "\n") {
		if strings.Contains(l, "mcsim settings serve --http 127.0.0.1:8080") {
			line = strings.TrimSpace(l)
		}
	}
	if line == "" {
		t.Fatalf("no example with other ports in:\n%s", c.Example)
	}
	args := strings.Fields(strings.TrimPrefix(line, "mcsim settings serve"))
	if err := c.ParseFlags(args); err != nil {
		t.Fatalf("example %q: %v", line, err)
	}
	cfg, err := f.config(c)
	if err != nil {
		t.Fatalf("example %q: %v", line, err)
	}
	def := service.DefaultConfig()
	defaults := map[string]bool{}
	for _, a := range []string{def.HTTPAddr, def.GRPCAddr, def.GossipAddr} {
		_, p, _ := net.SplitHostPort(a)
		defaults[p] = true
	}
	for name, a := range map[string]string{"http": cfg.HTTPAddr, "grpc": cfg.GRPCAddr, "gossip": cfg.GossipAddr} {
		_, p, err := net.SplitHostPort(a)
		if err != nil || defaults[p] {
			t.Errorf("example %q: %s listens on %q, a default port", line, name, a)
		}
	}
	if cfg.DataDir == def.DataDir {
		t.Errorf("example %q: data dir %q is the default one", line, cfg.DataDir)
	}
}
