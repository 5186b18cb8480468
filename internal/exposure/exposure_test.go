package exposure

import (
	"strings"
	"testing"
)

// TestCheck is the refusal rules as a table: each row a node's flags and
// the flags its errors must name ("" for none). A row that expects no
// error fails if any rule fires, and one that expects an error fails if
// the rule is missing, so every rule is shown both firing and silent.
func TestCheck(t *testing.T) {
	loop := []Addr{{"--grpc", "127.0.0.1:0", true}, {"--gossip", "127.0.0.1:0", true}, {"--metrics", "127.0.0.1:0", true}}
	lan := []Addr{{"--grpc", "10.0.0.5:9401", true}, {"--gossip", "10.0.0.5:7946", true}, {"--metrics", "127.0.0.1:0", true}}
	any := []Addr{{"--grpc", "0.0.0.0:9401", true}, {"--gossip", "0.0.0.0:7946", true}}
	for _, tc := range []struct {
		name string
		node Node
		want []string // substrings, one per expected error; none: no error
	}{
		{"loopback without a key: the embedded default", Node{Addrs: loop, Gossip: true}, nil},
		{"loopback with the default password", Node{Addrs: loop, DefaultPassword: true}, nil},
		{"loopback node advertising loopback", Node{Addrs: loop, Advertise: "127.0.0.1", Gossip: true}, nil},
		{"LAN address, key given", Node{Addrs: lan, Gossip: true, ClusterKey: "k"}, nil},
		{"LAN address, no key", Node{Addrs: lan, Gossip: true},
			[]string{`--cluster-key: required off loopback (--grpc "10.0.0.5:9401" is not loopback)`}},
		{"the gateway has no gossip: no key needed", Node{Addrs: []Addr{{"--grpc", "10.0.0.5:9300", true}}}, nil},
		{"an HTTP API on every interface is not announced: no --advertise needed", Node{Addrs: []Addr{{"--http", "0.0.0.0:9090", false}}, Gossip: true, ClusterKey: "k"}, nil},
		{"...but it is off loopback", Node{Addrs: []Addr{{"--http", "0.0.0.0:9090", false}}, Gossip: true},
			[]string{`--cluster-key: required off loopback (--http "0.0.0.0:9090" is not loopback)`}},
		{"every interface with --advertise, key given", Node{Addrs: any, Advertise: "10.0.0.5", Gossip: true, ClusterKey: "k"}, nil},
		{"every interface without --advertise", Node{Addrs: any, Gossip: true, ClusterKey: "k"},
			[]string{`--advertise: required when --grpc "0.0.0.0:9401" listens on every interface`}},
		{"empty host is every interface", Node{Addrs: []Addr{{"--grpc", ":9401", true}}},
			[]string{`--advertise: required when --grpc ":9401"`}},
		{"loopback binds but a LAN --advertise: still off loopback", Node{Addrs: loop, Advertise: "10.0.0.5", Gossip: true},
			[]string{`--cluster-key: required off loopback (--advertise "10.0.0.5" is not loopback)`}},
		{"--advertise by name", Node{Addrs: any, Advertise: "coreapp-1", Gossip: true, ClusterKey: "k"}, nil},
		{"--advertise with a port", Node{Addrs: loop, Advertise: "10.0.0.5:9401", ClusterKey: "k", Gossip: true},
			[]string{`--advertise: a host without a port`}},
		{"--advertise a wildcard", Node{Addrs: any, Advertise: "0.0.0.0", ClusterKey: "k", Gossip: true},
			[]string{`--advertise: must be an IP address or a host name`}},
		{"settings off loopback with the default password and no key", Node{Addrs: lan, Gossip: true, DefaultPassword: true},
			[]string{`--cluster-key: required off loopback`, `--admin-password: the default password is allowed only on loopback (--grpc "10.0.0.5:9401" is not loopback)`}},
		{"settings off loopback with its own password and a key", Node{Addrs: lan, Gossip: true, ClusterKey: "k"}, nil},
		{"every rule at once", Node{Addrs: any, Gossip: true, DefaultPassword: true},
			[]string{"--advertise: required", "--cluster-key: required", "--admin-password: the default password"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.node)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Check refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check accepted; want errors %q", tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("Check gave %d errors, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		})
	}
}
