package grpcopts

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// recordingListener keeps every byte its connections read (client to
// server) and write (server to client).
type recordingListener struct {
	net.Listener
	mu      sync.Mutex
	in, out bytes.Buffer
}

type recordingConn struct {
	net.Conn
	l *recordingListener
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return recordingConn{Conn: c, l: l}, nil
}

func (c recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.l.mu.Lock()
	c.l.in.Write(p[:n])
	c.l.mu.Unlock()
	return n, err
}

func (c recordingConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.out.Write(p)
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

// pings counts the HTTP/2 PING frames (not their acks) in a byte stream.
func pings(t *testing.T, b []byte) int {
	t.Helper()
	b = bytes.TrimPrefix(b, []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	n := 0
	for len(b) >= 9 {
		length := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		if b[3] == 0x6 && b[4]&0x1 == 0 {
			n++
		}
		if len(b) < 9+length {
			t.Fatalf("truncated HTTP/2 frame: %d bytes left, frame says %d", len(b)-9, length)
		}
		b = b[9+length:]
	}
	return n
}

// Unary calls between nodes send no PING: with the options, neither side
// probes the connection's bandwidth after each message (about a third of
// an idle node's gRPC wake-ups without them).
func TestNoBandwidthProbes(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := &recordingListener{Listener: l}
	s := grpc.NewServer(Server()...)
	healthpb.RegisterHealthServer(s, health.NewServer())
	go func() { _ = s.Serve(rl) }()
	defer s.Stop()
	conn, err := grpc.NewClient(l.Addr().String(), append(Dial(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	client := healthpb.NewHealthClient(conn)
	for range 20 {
		if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	s.Stop()
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if n := pings(t, rl.in.Bytes()); n != 0 {
		t.Errorf("the client sent %d PING frames in 20 calls, want 0", n)
	}
	if n := pings(t, rl.out.Bytes()); n != 0 {
		t.Errorf("the server sent %d PING frames in 20 calls, want 0", n)
	}
}
