package httpapi

import (
	"fmt"
	"testing"
)

// The pool keeps one connection per address, drops those the map no
// longer names once it has grown past maxIdleCoreapps, and refuses after
// Close.
func TestCoreappsPool(t *testing.T) {
	p := NewCoreapps()
	named := func(addr string) bool { return addr == "127.0.0.1:1" }
	for range 3 {
		if _, err := p.client("127.0.0.1:1", named); err != nil {
			t.Fatal(err)
		}
	}
	if p.size() != 1 {
		t.Fatalf("%d connections for one address, want 1", p.size())
	}
	for i := range maxIdleCoreapps + 5 {
		if _, err := p.client(fmt.Sprintf("127.0.0.1:%d", 1000+i), named); err != nil {
			t.Fatal(err)
		}
	}
	if p.size() > maxIdleCoreapps {
		t.Errorf("%d connections, want at most %d", p.size(), maxIdleCoreapps)
	}
	p.mu.Lock()
	_, kept := p.conns["127.0.0.1:1"]
	p.mu.Unlock()
	if !kept {
		t.Errorf("the connection to an address the map names was dropped")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.client("127.0.0.1:1", named); err == nil || p.size() != 0 {
		t.Errorf("after Close: err %v, %d connections; want an error and none", err, p.size())
	}
}
