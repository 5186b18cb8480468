package service

import (
	"strings"
	"testing"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v, want nil", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want []string // each must appear in the error; none means valid
	}{
		{"loopback v4 with default password", func(c *Config) { c.HTTPAddr, c.GRPCAddr = "127.0.0.5:0", "127.0.0.1:0" }, nil},
		{"loopback v6 and localhost", func(c *Config) { c.HTTPAddr, c.GRPCAddr = "[::1]:9090", "localhost:9091" }, nil},
		{"all interfaces with default password", func(c *Config) { c.HTTPAddr = ":9090" },
			[]string{`http_addr is ":9090" (all interfaces)`, "--admin-password", "MCSIM_ADMIN_PASSWORD"}},
		{"0.0.0.0 gRPC with default password", func(c *Config) { c.GRPCAddr = "0.0.0.0:9091" },
			[]string{`grpc_addr is "0.0.0.0:9091"`, "--admin-password"}},
		{"public host with default password, both", func(c *Config) { c.HTTPAddr, c.GRPCAddr = "10.0.0.1:9090", "example.com:9091" },
			[]string{`http_addr is "10.0.0.1:9090" (not loopback)`, `grpc_addr is "example.com:9091" (not loopback)`}},
		{"gossip on all interfaces with default password", func(c *Config) { c.GossipAddr = "0.0.0.0:9092" },
			[]string{`gossip_addr is "0.0.0.0:9092" (all interfaces)`, "--admin-password"}},
		{"gossip off with default password", func(c *Config) { c.GossipAddr = "" }, nil},
		{"gossip on all interfaces with an explicit password", func(c *Config) { c.GossipAddr, c.AdminPassword = ":9092", "hunter2-long" }, nil},
		{"all interfaces with an explicit password", func(c *Config) { c.HTTPAddr, c.GRPCAddr, c.AdminPassword = ":9090", ":9091", "hunter2-long" }, nil},
		{"empty password", func(c *Config) { c.AdminPassword = "" }, []string{"admin_password: must not be empty"}},
		{"no port", func(c *Config) { c.HTTPAddr = "127.0.0.1" }, []string{`http_addr: must be host:port`, `"127.0.0.1"`}},
		{"bad port", func(c *Config) { c.GRPCAddr = "127.0.0.1:http" }, []string{`grpc_addr: port must be a number from 0 to 65535, got "http"`}},
		{"port too big", func(c *Config) { c.GRPCAddr = "127.0.0.1:70000" }, []string{`grpc_addr: port must be a number`, `"70000"`}},
		{"same address twice", func(c *Config) { c.GRPCAddr = c.HTTPAddr }, []string{`grpc_addr: must differ from http_addr, both are "127.0.0.1:9090"`}},
		{"no data dir", func(c *Config) { c.DataDir = " " }, []string{`data_dir: must be a directory path, got " "`}},
		{"postgres store, no data dir needed", func(c *Config) { c.DataDir, c.Store = "", "postgres://u@127.0.0.1:5433/db" }, nil},
		{"postgresql:// store", func(c *Config) { c.Store = "postgresql://u@db/x" }, nil},
		{"store path", func(c *Config) { c.DataDir, c.Store = "", "/tmp/mc" }, nil},
		{"store of another scheme", func(c *Config) { c.Store = "mysql://u@db/x" }, []string{`store: must be a postgres:// (or postgresql://) URL or a directory path, got scheme "mysql"`}},
		{"store with a typo in the scheme", func(c *Config) { c.Store = "postgress://u@db/x" }, []string{`got scheme "postgress"`}},
		{"bad wa_id", func(c *Config) { c.WAID = "+1 631" }, []string{`wa_id: must be 1 to 15 digits`, `"+1 631"`}},
		{"a second service on a shared store", func(c *Config) {
			c.Store, c.NodeID, c.Join = "postgres://u@127.0.0.1:5433/db", "settings-2", []string{"127.0.0.1:9092"}
		}, nil},
		{"join with bbolt", func(c *Config) { c.NodeID, c.Join = "settings-2", []string{"127.0.0.1:9092"} },
			[]string{`join: another settings service can be joined only with a shared store`, `"./.mcsim"`}},
		{"join under the first one's id", func(c *Config) { c.Store, c.Join = "postgres://u@db/x", []string{"127.0.0.1:9092"} },
			[]string{`id: a service that joins another needs its own id (not the default "settings"`}},
		{"join without gossip", func(c *Config) {
			c.Store, c.NodeID, c.Join, c.GossipAddr = "postgres://u@db/x", "s2", []string{"127.0.0.1:9092"}, ""
		}, []string{`join: needs gossip`}},
		{"join a bad address", func(c *Config) { c.Store, c.NodeID, c.Join = "postgres://u@db/x", "s2", []string{"db"} },
			[]string{`join: must be host:port`, `"db"`}},
		{"bad id", func(c *Config) { c.NodeID = "settings 2" }, []string{`id: must be 1 to 64 letters`, `"settings 2"`}},
		{"every problem at once", func(c *Config) {
			*c = Config{HTTPAddr: "nope", GRPCAddr: "0.0.0.0:9091", AdminPassword: DefaultAdminPassword}
		}, []string{"http_addr: must be host:port", "grpc_addr is \"0.0.0.0:9091\"", "data_dir:", "wa_id:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error mentioning %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v\nwant it to mention %q", err, w)
				}
			}
		})
	}
}

// An unparsable address is reported once, not also as "not loopback".
func TestValidateBadAddressNotAlsoLoopbackError(t *testing.T) {
	c := DefaultConfig()
	c.HTTPAddr = "garbage"
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "admin_password") {
		t.Fatalf("Validate() = %v, want only the http_addr problem", err)
	}
}

// Listeners not given follow the ones given (DefaultConfig's layout of
// consecutive ports), so no unset listener stays on a default port.
func TestFollow(t *testing.T) {
	type addrs struct{ http, grpc, gossip string }
	for _, tc := range []struct {
		name  string
		given addrs // "-" for not given
		want  addrs
	}{
		{"nothing given", addrs{"-", "-", "-"}, addrs{"127.0.0.1:9090", "127.0.0.1:9091", "127.0.0.1:9092"}},
		{"http and grpc (the help example)", addrs{"127.0.0.1:8080", "127.0.0.1:8081", "-"}, addrs{"127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8082"}},
		{"http only", addrs{"127.0.0.1:8080", "-", "-"}, addrs{"127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8082"}},
		{"grpc only: http before it", addrs{"-", "127.0.0.1:7001", "-"}, addrs{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"}},
		{"gossip only", addrs{"-", "-", "127.0.0.1:7002"}, addrs{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"}},
		{"http and gossip apart", addrs{"127.0.0.1:8080", "-", "127.0.0.1:7000"}, addrs{"127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:7000"}},
		{"port 0 spreads", addrs{"127.0.0.1:0", "-", "-"}, addrs{"127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"}},
		{"out of range is port 0", addrs{"127.0.0.1:65535", "-", "-"}, addrs{"127.0.0.1:65535", "127.0.0.1:0", "127.0.0.1:0"}},
		{"below range is port 0", addrs{"-", "127.0.0.1:1", "-"}, addrs{"127.0.0.1:0", "127.0.0.1:1", "127.0.0.1:2"}},
		{"hosts stay", addrs{"0.0.0.0:8080", "-", "-"}, addrs{"0.0.0.0:8080", "127.0.0.1:8081", "127.0.0.1:8082"}},
		{"gossip off stays off", addrs{"127.0.0.1:8080", "-", ""}, addrs{"127.0.0.1:8080", "127.0.0.1:8081", ""}},
		{"gossip off is no anchor", addrs{"-", "-", ""}, addrs{"127.0.0.1:9090", "127.0.0.1:9091", ""}},
		{"unparsable is no anchor", addrs{"nope", "-", "-"}, addrs{"nope", "127.0.0.1:9091", "127.0.0.1:9092"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			set := func(dst *string, v string) bool {
				if v == "-" {
					return false
				}
				*dst = v
				return true
			}
			h, g, m := set(&c.HTTPAddr, tc.given.http), set(&c.GRPCAddr, tc.given.grpc), set(&c.GossipAddr, tc.given.gossip)
			got := c.Follow(h, g, m)
			if (addrs{got.HTTPAddr, got.GRPCAddr, got.GossipAddr}) != tc.want {
				t.Errorf("Follow = %+v, want %+v", addrs{got.HTTPAddr, got.GRPCAddr, got.GossipAddr}, tc.want)
			}
		})
	}
}
