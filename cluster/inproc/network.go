package inproc

import (
	"context"
	"fmt"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/mcsim/mcsim/master"
)

// Network is how the nodes of an in-process cluster reach each other:
// in-memory pipes (Bufconn, for testing/synctest bubbles, where real sockets
// would leave virtual time) or real loopback TCP (for measurements).
type Network interface {
	// Listen opens a listener for the named node and returns its address.
	Listen(name string) (net.Listener, string, error)
	// Dial opens a client connection to an address Listen returned.
	Dial(addr string) (*grpc.ClientConn, error)
}

// Bufconn is an in-memory network: addresses are node names.
type Bufconn struct {
	mu        sync.Mutex
	listeners map[string]*bufconn.Listener
}

// NewBufconn returns an empty in-memory network.
func NewBufconn() *Bufconn { return &Bufconn{listeners: map[string]*bufconn.Listener{}} }

// Listen opens (or re-opens, after a node restart) the listener of name.
func (b *Bufconn) Listen(name string) (net.Listener, string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := bufconn.Listen(1 << 20)
	b.listeners[name] = l
	return l, name, nil
}

// Dial connects lazily: each new transport looks the listener up again, so
// a restarted node is reached at its new listener.
func (b *Bufconn) Dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///"+addr, append(master.CoreappDialOptions(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			b.mu.Lock()
			l := b.listeners[addr]
			b.mu.Unlock()
			if l == nil {
				return nil, fmt.Errorf("bufconn: no listener %q", addr)
			}
			return l.DialContext(ctx)
		}))...)
}

// TCP is real loopback TCP on free ports.
type TCP struct{}

// Listen opens 127.0.0.1:0.
func (TCP) Listen(string) (net.Listener, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	return l, l.Addr().String(), nil
}

// Dial connects to addr over TCP, as a master does (master.DialCoreapp).
func (TCP) Dial(addr string) (*grpc.ClientConn, error) { return master.DialCoreapp(addr) }
