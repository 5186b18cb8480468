package loadtest

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// The command name holds spaces and a ')': fields count from the last one.
	line := []byte("42 (my (odd) cmd) S 1 42 42 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 8 0 1234 0 0")
	got, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3800 * time.Millisecond; got != want {
		t.Errorf("utime 250 + stime 130 ticks = %v, want %v", got, want)
	}
	if _, err := parseStatCPU([]byte("42 (x) S 1 2")); err == nil {
		t.Error("a truncated stat line must be an error")
	}
}

func TestParseStatusMemory(t *testing.T) {
	rss, peak, err := parseStatusMemory([]byte("Name:\tmcsim\nVmHWM:\t   2048 kB\nVmRSS:\t   1024 kB\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rss != 1024<<10 || peak != 2048<<10 {
		t.Errorf("rss, peak = %d, %d; want %d, %d", rss, peak, 1024<<10, 2048<<10)
	}
	if _, _, err := parseStatusMemory([]byte("VmRSS:\t1024 kB\n")); err == nil {
		t.Error("a status without VmHWM must be an error")
	}
}

// The readers work on a live process (this one).
func TestReadersOnSelf(t *testing.T) {
	if _, err := CPUTime(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	rss, peak, err := Memory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || peak < rss {
		t.Errorf("rss=%d peak=%d: want 0 < rss <= peak", rss, peak)
	}
}
