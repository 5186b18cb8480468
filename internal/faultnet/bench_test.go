package faultnet

import (
	"io"
	"net"
	"testing"
)

// BenchmarkWriteNoFault is the cost of the layer on a link with no fault:
// a 1 KiB write on a raw net.Pipe against the same write through the
// layer, with a table in force that faults other links (so the lookup is
// a real one).
func BenchmarkWriteNoFault(b *testing.B) {
	buf := make([]byte, 1<<10)
	run := func(b *testing.B, w net.Conn, r net.Conn) {
		go func() { _, _ = io.Copy(io.Discard, r) }()
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := w.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		_ = w.Close()
	}
	b.Run("raw", func(b *testing.B) {
		w, r := net.Pipe()
		run(b, w, r)
	})
	b.Run("dialed", func(b *testing.B) {
		l := New("a")
		if err := l.Set(Table{Links: []Link{{From: "a", To: "c", Cut: true}}, Book: testBook}); err != nil {
			b.Fatal(err)
		}
		w, r := net.Pipe()
		c := newConn(w, l, addrB, false)
		run(b, c, r)
	})
	b.Run("accepted", func(b *testing.B) {
		l := New("b")
		if err := l.Set(Table{Links: []Link{{From: "b", To: "c", Cut: true}}, Book: testBook}); err != nil {
			b.Fatal(err)
		}
		w, r := net.Pipe()
		go func() { _, _ = r.Write(encodePreamble("a")) }()
		c := l.WrapAccepted(w).(*conn)
		c.sniffOnce()
		if c.peer != "a" {
			b.Fatalf("peer %q after the preamble", c.peer)
		}
		run(b, c, r)
	})
}

// discardConn is a net.Conn whose writes cost nothing: the layer's own
// cost, without a pipe's goroutine handoff around it.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkWriteNoFaultOverhead isolates the layer's cost per write on a
// link with no fault.
func BenchmarkWriteNoFaultOverhead(b *testing.B) {
	buf := make([]byte, 1<<10)
	l := New("a")
	if err := l.Set(Table{Links: []Link{{From: "a", To: "c", Cut: true}}, Book: testBook}); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    net.Conn
	}{
		{"raw", discardConn{}},
		{"layer", newConn(discardConn{}, l, addrB, false)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := tc.c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
