package httpapi

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcsim/mcsim/internal/grpcopts"
	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Coreapps is the front door's pool of gRPC client connections to coreapps,
// one per address, opened on first use and kept: a message rate of hundreds
// per second must not pay a TCP and HTTP/2 handshake each. It is safe for
// concurrent use. Close it with the service.
type Coreapps struct {
	opts []grpc.DialOption

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

// maxIdleCoreapps is how many connections the pool keeps before it drops
// those to addresses the current shard map no longer names: restarted
// coreapps on fresh ports must not grow it without bound.
const maxIdleCoreapps = 64

// NewCoreapps returns an empty pool whose connections use the project's
// gRPC client options (fixed windows, plain TCP, a reconnect backoff capped
// at 1 s so a coreapp restarted at the same address is reached again at
// once, as the master's links do) followed by extra: the service's fault
// layer dialer, or a test's in-memory one.
func NewCoreapps(extra ...grpc.DialOption) *Coreapps {
	opts := append(grpcopts.Dial(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}),
	)
	return &Coreapps{opts: append(opts, extra...), conns: map[string]*grpc.ClientConn{}}
}

// errPoolClosed is a Send after Close (a request racing the service's stop).
var errPoolClosed = errors.New("the coreapp connection pool is closed")

// client returns the CoreAppService client of addr. inMap says whether an
// address is named by the current shard map; the pool drops the others when
// it has grown past maxIdleCoreapps.
func (p *Coreapps) client(addr string, inMap func(string) bool) (mcsimv1.CoreAppServiceClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errPoolClosed
	}
	if c, ok := p.conns[addr]; ok {
		return mcsimv1.NewCoreAppServiceClient(c), nil
	}
	if len(p.conns) >= maxIdleCoreapps {
		for a, c := range p.conns {
			if !inMap(a) {
				_ = c.Close()
				delete(p.conns, a)
			}
		}
	}
	// Lazy: NewClient connects on the first call, so holding the lock here
	// costs no network round trip.
	c, err := grpc.NewClient(addr, p.opts...)
	if err != nil {
		return nil, fmt.Errorf("coreapp address %q: %w", addr, err)
	}
	p.conns[addr] = c
	return mcsimv1.NewCoreAppServiceClient(c), nil
}

// Close closes every connection; later sends fail (as 500s, never silently).
func (p *Coreapps) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	var errs []error
	for a, c := range p.conns {
		errs = append(errs, c.Close())
		delete(p.conns, a)
	}
	return errors.Join(errs...)
}

// size is the number of open connections (for tests).
func (p *Coreapps) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}
