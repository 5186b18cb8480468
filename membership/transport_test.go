package membership

import (
	"bytes"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// pingPacket is memberlist's ping message (type 0, then a msgpack map
// {"SeqNo": seq, "Node": node}), what a peer's probe sends.
func pingPacket(seq uint8, node string) []byte {
	b := []byte{0, 0x82, 0xa5}
	b = append(b, "SeqNo"...)
	b = append(b, seq&0x7f, 0xa4)
	b = append(b, "Node"...)
	b = append(b, 0xa0|byte(len(node)))
	return append(b, node...)
}

// A member on real sockets, pinged the way a peer's probe pings it, must
// allocate little per packet: one probe round trip (read the ping, answer
// with an ack) costs a few hundred bytes of decoding and encoding, not the
// 64 KiB read buffer memberlist's NetTransport allocates for every packet
// nor the LZW table (64 KiB) that compressing every outgoing packet costs.
// Both were most of an idle node's garbage (README, "Measurements").
func TestProbeRoundTripAllocatesLittle(t *testing.T) {
	m, err := Start(Config{
		Node:     Node{ID: "a", Role: RoleCoreapp, GRPCAddr: "127.0.0.1:1"},
		BindAddr: "127.0.0.1:0",
		Tuning:   TuningLocal,
		Logger:   zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	raddr, err := net.ResolveUDPAddr("udp", m.LocalNode().GossipAddr)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	ack := make([]byte, 65536)
	roundTrip := func(seq uint8) {
		if _, err := peer.Write(pingPacket(seq, "a")); err != nil {
			t.Fatal(err)
		}
		// Real sockets: the bound is only against a hang.
		_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := peer.Read(ack)
		if err != nil {
			t.Fatalf("no ack to ping %d: %v", seq, err)
		}
		// ackRespMsg, or a compoundMsg or compressMsg around it.
		if n < 1 || (ack[0] != 2 && ack[0] != 7 && ack[0] != 9) {
			t.Fatalf("answer to ping %d: %q, want an ack", seq, ack[:n])
		}
	}
	for i := range 20 { // warm up: pools, the first log lines
		roundTrip(uint8(i))
	}
	const n = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		roundTrip(uint8(i))
	}
	runtime.ReadMemStats(&after)
	perPacket := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d bytes allocated per probe round trip (ping in, ack out)", perPacket)
	if perPacket > 8<<10 {
		t.Errorf("a probe round trip allocates %d bytes; want at most 8 KiB (NetTransport's read buffer alone is 64 KiB)", perPacket)
	}
}

// The transport reads into one buffer and copies each packet out at its
// own length: memberlist may keep the packet after handling it.
func TestTransportCopiesEachPacket(t *testing.T) {
	tr, err := newNetTransport("127.0.0.1", 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown()
	ip, port, err := tr.FinalAdvertiseAddr("", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !ip.Equal(net.IPv4(127, 0, 0, 1)) || port == 0 {
		t.Fatalf("advertises %v:%d, want 127.0.0.1 and the bound port", ip, port)
	}
	peer, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	first, second := bytes.Repeat([]byte{'x'}, 1000), []byte("yy")
	for _, p := range [][]byte{first, second} {
		if _, err := peer.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	got1, got2 := <-tr.PacketCh(), <-tr.PacketCh()
	if !bytes.Equal(got1.Buf, first) || !bytes.Equal(got2.Buf, second) {
		t.Fatalf("packets %q, %q: the second overwrote the first, or a copy is wrong", got1.Buf[:4], got2.Buf)
	}
	if cap(got1.Buf) > 2048 {
		t.Errorf("a 1,000-byte packet is held in a %d-byte buffer", cap(got1.Buf))
	}
	if got2.From.String() != peer.LocalAddr().String() {
		t.Errorf("From = %v, want %v", got2.From, peer.LocalAddr())
	}

	// And the way back: a packet to an IP:port address.
	if _, err := tr.WriteTo([]byte("ack"), peer.LocalAddr().String()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := peer.Read(buf)
	if err != nil || string(buf[:n]) != "ack" {
		t.Fatalf("read %q, %v; want \"ack\"", buf[:n], err)
	}
}
