package membership

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
)

// maxDatagram is the largest UDP payload (65,535 minus the IP and UDP
// headers): the read buffer never truncates a packet, whatever a peer's
// UDPBufferSize.
const maxDatagram = 65507

// netTransport is memberlist's NetTransport (UDP for packets, one TCP
// connection per stream, both on one address and port) with one change: it
// reads every UDP packet into one buffer that lives as long as the
// transport, and hands memberlist a copy of exactly the packet's length.
// NetTransport (memberlist v0.7.0) allocates a fresh 64 KiB buffer for
// every packet it reads, although gossip packets are at most UDPBufferSize
// (1,400 bytes): on an idle loopback cluster that was about a third of
// every node's allocations, and the garbage collector's work with them.
// The copy cannot be avoided by reusing buffers: memberlist keeps some
// packets (alive, suspect, dead) queued after handling returns.
type netTransport struct {
	tcp      *net.TCPListener
	udp      *net.UDPConn
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	logger   *log.Logger
	// faults, if not nil, is the node's fault layer: every packet sent,
	// stream dialed and stream accepted goes through it.
	faults   Faults
	wg       sync.WaitGroup
	shutdown atomic.Bool
}

var _ memberlist.NodeAwareTransport = (*netTransport)(nil)

// newNetTransport listens on host:port, TCP and UDP on the same port; port
// 0 picks a free one (retried, like memberlist does, when the UDP port of
// the chosen TCP port is taken). host must be an IP address or a name that
// resolves to one. faults may be nil.
func newNetTransport(host string, port int, logger *log.Logger, faults Faults) (*netTransport, error) {
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	addr, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(host, fmt.Sprint(port)))
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", host, err)
	}
	tries := 1
	if port == 0 {
		tries = 10
	}
	for {
		t, err := listenNet(addr)
		if err == nil {
			t.logger = logger
			t.faults = faults
			t.wg.Add(2)
			go t.tcpListen()
			go t.udpListen()
			return t, nil
		}
		if tries--; tries == 0 || !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
	}
}

func listenNet(addr *net.TCPAddr) (*netTransport, error) {
	tcp, err := net.ListenTCP("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("TCP listener on %v: %w", addr, err)
	}
	port := tcp.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: addr.IP, Port: port, Zone: addr.Zone})
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("UDP listener on %v port %d: %w", addr.IP, port, err)
	}
	// A large receive window, as NetTransport asks for (2 MiB, halved
	// until the kernel accepts).
	for size := 2 << 20; size > 0; size /= 2 {
		if udp.SetReadBuffer(size) == nil {
			break
		}
	}
	return &netTransport{
		tcp:      tcp,
		udp:      udp,
		packetCh: make(chan *memberlist.Packet),
		streamCh: make(chan net.Conn),
	}, nil
}

// FinalAdvertiseAddr is the address given, else the one listened on (a
// private address of this host when listening on every interface). An
// address given with port 0 gets the port listened on (Config.AdvertiseHost
// with a port picked at bind time).
func (t *netTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		if port == 0 {
			port = t.tcp.Addr().(*net.TCPAddr).Port
		}
		adv := net.ParseIP(ip)
		if adv == nil {
			return nil, 0, fmt.Errorf("failed to parse advertise address %q", ip)
		}
		if v4 := adv.To4(); v4 != nil {
			adv = v4
		}
		return adv, port, nil
	}
	bound := t.tcp.Addr().(*net.TCPAddr)
	adv := bound.IP
	if adv.IsUnspecified() {
		private, err := sockaddr.GetPrivateIP()
		if err != nil {
			return nil, 0, fmt.Errorf("failed to get interface addresses: %w", err)
		}
		if private == "" {
			return nil, 0, errors.New("no private IP address found, and explicit IP not provided")
		}
		if adv = net.ParseIP(private); adv == nil {
			return nil, 0, fmt.Errorf("failed to parse advertise address %q", private)
		}
	}
	if v4 := adv.To4(); v4 != nil {
		adv = v4
	}
	return adv, bound.Port, nil
}

// WriteTo sends one packet.
func (t *netTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends one packet. An IP:port address is parsed without
// allocating; a name is resolved.
func (t *netTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	ap, err := netip.ParseAddrPort(a.Addr)
	if err != nil {
		ua, rerr := net.ResolveUDPAddr("udp", a.Addr)
		if rerr != nil {
			return time.Time{}, rerr
		}
		ap = ua.AddrPort()
	}
	if t.faults != nil {
		// The layer may send later, after memberlist has reused b: it
		// sends a copy then.
		err = t.faults.SendPacket(a.Addr, b, func(p []byte) error {
			_, err := t.udp.WriteToUDPAddrPort(p, ap)
			return err
		})
		return time.Now(), err
	}
	_, err = t.udp.WriteToUDPAddrPort(b, ap)
	return time.Now(), err
}

// PacketCh delivers the packets read.
func (t *netTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout opens a stream.
func (t *netTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream. Through a fault layer, timeout also
// bounds the wait for a cut link to heal, as it bounds a TCP connect that
// gets no answer.
func (t *netTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.faults != nil {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, timeout)
		}
		defer cancel()
		return t.faults.DialContext(ctx, "tcp", a.Addr)
	}
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", a.Addr)
}

// StreamCh delivers the accepted streams.
func (t *netTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown closes both listeners and waits for their goroutines.
func (t *netTransport) Shutdown() error {
	t.shutdown.Store(true)
	_ = t.tcp.Close()
	_ = t.udp.Close()
	t.wg.Wait()
	return nil
}

func (t *netTransport) tcpListen() {
	defer t.wg.Done()
	const baseDelay, maxDelay = 5 * time.Millisecond, time.Second
	var delay time.Duration
	for {
		conn, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.shutdown.Load() {
				return
			}
			delay = min(max(2*delay, baseDelay), maxDelay)
			t.logger.Printf("[ERR] memberlist: Error accepting TCP connection: %v", err)
			time.Sleep(delay) // backoff on a failing accept, as NetTransport does
			continue
		}
		delay = 0
		if t.faults != nil {
			t.streamCh <- t.faults.WrapAccepted(conn)
			continue
		}
		t.streamCh <- conn
	}
}

func (t *netTransport) udpListen() {
	defer t.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, ap, err := t.udp.ReadFromUDPAddrPort(buf)
		ts := time.Now()
		if err != nil {
			if t.shutdown.Load() {
				return
			}
			t.logger.Printf("[ERR] memberlist: Error reading UDP packet: %v", err)
			continue
		}
		if n < 1 {
			t.logger.Printf("[ERR] memberlist: UDP packet too short (%d bytes) %s", n, ap)
			continue
		}
		from := net.UDPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		t.packetCh <- &memberlist.Packet{Buf: append([]byte(nil), buf[:n]...), From: from, Timestamp: ts}
	}
}
