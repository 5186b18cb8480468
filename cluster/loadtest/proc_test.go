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

func TestParseMemoryDetail(t *testing.T) {
	status := []byte("Name:\tmcsim\nVmRSS:\t   3072 kB\nRssAnon:\t   1024 kB\nRssFile:\t   2048 kB\nRssShmem:\t0 kB\n")
	rollup := []byte("00400000-7fff [rollup]\nRss:    3072 kB\nPss:    1500 kB\nPss_Anon: 1024 kB\n")
	d, err := parseMemoryDetail(status, rollup)
	if err != nil {
		t.Fatal(err)
	}
	if want := (MemoryDetail{RSS: 3072 << 10, Anon: 1024 << 10, File: 2048 << 10, PSS: 1500 << 10}); d != want {
		t.Errorf("got %+v, want %+v", d, want)
	}
	if _, err := parseMemoryDetail(status, []byte("Rss: 3072 kB\n")); err == nil {
		t.Error("a rollup without Pss must be an error")
	}
	if d, err := MemoryOf(os.Getpid()); err != nil || d.RSS <= 0 || d.PSS <= 0 {
		t.Errorf("MemoryOf(self) = %+v, %v", d, err)
	}
}

func TestContextSwitchesOfSelf(t *testing.T) {
	n, err := ContextSwitches(os.Getpid())
	if err != nil || n <= 0 {
		t.Fatalf("ContextSwitches(self) = %d, %v; want > 0", n, err)
	}
	var v, i int64
	if err := readSwitches([]byte("voluntary_ctxt_switches:\t7\nnonvoluntary_ctxt_switches:\t3\n"), &v, &i); err != nil || v != 7 || i != 3 {
		t.Errorf("readSwitches = %d, %d, %v; want 7, 3", v, i, err)
	}
}
