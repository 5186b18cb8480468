package membership

import (
	"net"
	"strconv"
	"testing"

	"github.com/rs/zerolog"
)

// A node bound on every interface announces the host it is told to, with
// the port it bound: what another host must dial. Without AdvertiseHost it
// would announce a private address of its own choosing (or the wildcard).
func TestAdvertiseHostWithTheBoundPort(t *testing.T) {
	for _, tc := range []struct{ advertise, want string }{
		{"127.0.0.1", "127.0.0.1"},
		{"localhost", "127.0.0.1"}, // a name is resolved once, at Start
	} {
		m, err := Start(Config{
			Node:          Node{ID: "coreapp-1", Role: RoleCoreapp, GRPCAddr: "127.0.0.1:9401"},
			BindAddr:      "0.0.0.0:0",
			AdvertiseHost: tc.advertise,
			Tuning:        TuningLocal,
			Logger:        zerolog.Nop(),
		})
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := net.SplitHostPort(m.LocalNode().GossipAddr)
		if err != nil {
			t.Fatal(err)
		}
		bound := m.transport.tcp.Addr().(*net.TCPAddr).Port
		if host != tc.want || port != strconv.Itoa(bound) {
			t.Errorf("AdvertiseHost %q: announces %s, want %s:%d", tc.advertise, m.LocalNode().GossipAddr, tc.want, bound)
		}
		_ = m.Shutdown()
	}
}

func TestAdvertiseHostThatDoesNotResolve(t *testing.T) {
	_, err := Start(Config{
		Node:          Node{ID: "coreapp-1", Role: RoleCoreapp},
		BindAddr:      "127.0.0.1:0",
		AdvertiseHost: "no-such-host.invalid",
		Logger:        zerolog.Nop(),
	})
	if err == nil {
		t.Fatal("Start accepted an advertise host that does not resolve")
	}
}
