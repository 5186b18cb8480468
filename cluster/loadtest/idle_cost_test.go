package loadtest

// BenchmarkIdleCluster: what the biggest real topology costs the machine
// while it does nothing, and how fast gossip still delivers what it must.
//
//	go test -run '^$' -bench BenchmarkIdleCluster -benchtime 1x ./cluster/loadtest
//	go test -run '^$' -bench BenchmarkIdleCluster -benchtime 1x ./cluster/loadtest -idle-binary /tmp/mcsim-base/mcsim
//
// It runs `mcsim up --masters 2 --coreapps 33 --shards 32` (36 processes:
// the launcher with the settings service and the gateway, 2 masters, 33
// coreapps; default intervals, 5 s and 30 s) from a freshly built binary
// (or -idle-binary), waits until the gateway has seen all 32 shards
// connected, lets it settle for -idle-settle, then samples /proc of every
// process over -idle-window. Reported: cpu-% (utime+stime of all 36
// processes, in % of one core), rss-MiB (sum of VmRSS, what the issue
// measured: it counts the pages of the shared binary once per process),
// pss-MiB (sum of Pss: every page counted once), anon-MiB (sum of RssAnon:
// memory the processes own), and per role: launcher-cpu-%, master-cpu-%,
// coreapp-cpu-% (mean of one process), coreapp-rss-MiB, and
// coreapp-switches/s (context switches of one coreapp's threads per second:
// its wake-ups, a figure that depends little on the machine's load, unlike
// CPU time on a shared machine).
//
// Then -idle-rounds rounds of: SIGTERM one coreapp (a graceful leave) and
// time until both masters log it as left_gracefully (leave-ms); start one
// more coreapp by hand, with the environment the launcher gives its
// children (read from /proc), and time from its exec until both masters
// log it joined (join-ms). Both are read from the masters' log files as
// the lines appear (polled every 2 ms), so they do not depend on the log's
// timestamp precision. p50 and max are reported.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	idleBinary = flag.String("idle-binary", "", "BenchmarkIdleCluster: the mcsim binary to measure (default: build ./cmd/mcsim)")
	idleWindow = flag.Duration("idle-window", 10*time.Second, "BenchmarkIdleCluster: length of the sampled window")
	idleSettle = flag.Duration("idle-settle", 5*time.Second, "BenchmarkIdleCluster: wait after all shards are served, before the window")
	idleRounds = flag.Int("idle-rounds", 5, "BenchmarkIdleCluster: graceful leaves and joins timed after the window")
	idleUpArgs = flag.String("idle-up-args", "", "BenchmarkIdleCluster: more arguments for mcsim up, space-separated (e.g. \"--poll-ms 1000\")")
)

const (
	idleMasters  = 2
	idleCoreapps = 33
	idleShards   = 32
)

// upEvent is the part of `mcsim up --json` lines the benchmark reads.
type upEvent struct {
	Event   string `json:"event"`
	GRPC    string `json:"grpc"`
	Gossip  string `json:"gossip"`
	Gateway string `json:"gateway"`
	Node    string `json:"node"`
	Role    string `json:"role"`
	PID     int    `json:"pid"`
}

func BenchmarkIdleCluster(b *testing.B) {
	dir := b.TempDir()
	bin := *idleBinary
	if bin == "" {
		bin = filepath.Join(dir, "mcsim")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/mcsim/mcsim/cmd/mcsim").CombinedOutput(); err != nil {
			b.Fatalf("go build ./cmd/mcsim: %v\n%s", err, out)
		}
	}
	data := filepath.Join(dir, "data")
	args := append([]string{"up", "--masters", fmt.Sprint(idleMasters), "--coreapps", fmt.Sprint(idleCoreapps),
		"--shards", fmt.Sprint(idleShards), "--json", "--data", data, "--http", "127.0.0.1:0"}, strings.Fields(*idleUpArgs)...)
	up := exec.Command(bin, args...)
	stdout, err := up.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	upErr, err := os.Create(filepath.Join(dir, "up.stderr"))
	if err != nil {
		b.Fatal(err)
	}
	up.Stderr = upErr
	if err := up.Start(); err != nil {
		b.Fatal(err)
	}
	var extra []*exec.Cmd // coreapps started by hand; stopped before the launcher
	b.Cleanup(func() {
		for _, c := range extra {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range extra {
			_ = c.Wait()
		}
		_ = up.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = up.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = up.Process.Kill()
			<-done
		}
		upErr.Close()
	})

	// Read the event stream until all shards are connected, then keep
	// draining it so the launcher never blocks on its stdout.
	var urls upEvent
	pids := map[string]int{"launcher": up.Process.Pid}
	connected := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	deadline := time.Now().Add(90 * time.Second)
	for len(connected) < idleShards && sc.Scan() {
		var ev upEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			b.Fatalf("mcsim up --json: %q: %v", sc.Text(), err)
		}
		switch ev.Event {
		case "urls":
			urls = ev
		case "node_started":
			pids[ev.Node] = ev.PID
		case "gateway_connect":
			connected[sc.Text()] = true
		}
		if time.Now().After(deadline) {
			b.Fatalf("not every shard served after 90 s (see %s)", upErr.Name())
		}
	}
	if len(connected) < idleShards {
		b.Fatalf("mcsim up stopped before serving every shard: %v (see %s)", sc.Err(), upErr.Name())
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if want := 1 + idleMasters + idleCoreapps; len(pids) != want {
		b.Fatalf("%d processes known, want %d", len(pids), want)
	}
	time.Sleep(*idleSettle) // real processes: there is no virtual time to use here

	for b.Loop() {
		cpu0 := map[string]time.Duration{}
		sw0 := map[string]int64{}
		for name, pid := range pids {
			if cpu0[name], err = CPUTime(pid); err != nil {
				b.Fatal(err)
			}
			if sw0[name], err = ContextSwitches(pid); err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		time.Sleep(*idleWindow)
		elapsed := time.Since(start)
		var total, launcher, masters, coreapps time.Duration
		var mem MemoryDetail
		var coreappRSS, coreappSwitches int64
		for name, pid := range pids {
			c, err := CPUTime(pid)
			if err != nil {
				b.Fatal(err)
			}
			sw, err := ContextSwitches(pid)
			if err != nil {
				b.Fatal(err)
			}
			d, err := MemoryOf(pid)
			if err != nil {
				b.Fatal(err)
			}
			used := c - cpu0[name]
			total += used
			mem.RSS, mem.PSS, mem.Anon, mem.File = mem.RSS+d.RSS, mem.PSS+d.PSS, mem.Anon+d.Anon, mem.File+d.File
			switch roleOf(name) {
			case "launcher":
				launcher += used
			case "master":
				masters += used
			default:
				coreapps += used
				coreappRSS += d.RSS
				coreappSwitches += sw - sw0[name]
			}
		}
		pct := func(d time.Duration, n int) float64 { return 100 * float64(d) / float64(elapsed) / float64(n) }
		mib := func(v int64) float64 { return float64(v) / (1 << 20) }
		b.ReportMetric(pct(total, 1), "cpu-%")
		b.ReportMetric(mib(mem.RSS), "rss-MiB")
		b.ReportMetric(mib(mem.PSS), "pss-MiB")
		b.ReportMetric(mib(mem.Anon), "anon-MiB")
		b.ReportMetric(pct(launcher, 1), "launcher-cpu-%")
		b.ReportMetric(pct(masters, idleMasters), "master-cpu-%")
		b.ReportMetric(pct(coreapps, idleCoreapps), "coreapp-cpu-%")
		b.ReportMetric(mib(coreappRSS)/idleCoreapps, "coreapp-rss-MiB")
		b.ReportMetric(float64(coreappSwitches)/idleCoreapps/elapsed.Seconds(), "coreapp-switches/s")
		b.ReportMetric(0, "ns/op")
		b.Logf("over %v: %.1f%% of one core; RSS %.0f MiB (anon %.0f, file %.0f), PSS %.0f MiB",
			elapsed.Round(time.Millisecond), pct(total, 1), mib(mem.RSS), mib(mem.Anon), mib(mem.File), mib(mem.PSS))
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("loadavg after the window: %s", strings.TrimSpace(string(load)))
	}
	if *idleRounds <= 0 {
		return
	}

	// Graceful leaves and joins, as the masters see them.
	logs := filepath.Join(data, "logs")
	masterLogs := make([]string, idleMasters)
	for i := range masterLogs {
		masterLogs[i] = filepath.Join(logs, fmt.Sprintf("master-%d.log", i+1))
	}
	env, err := procEnviron(pids["coreapp-1"])
	if err != nil {
		b.Fatal(err)
	}
	var leaves, joins []time.Duration
	for r := range *idleRounds {
		victim := fmt.Sprintf("coreapp-%d", r+1)
		marks := logSizes(b, masterLogs)
		t0 := time.Now()
		if err := syscall.Kill(pids[victim], syscall.SIGTERM); err != nil {
			b.Fatal(err)
		}
		leaves = append(leaves, awaitLines(b, masterLogs, marks, victim, "left_gracefully", t0))

		id := fmt.Sprintf("coreapp-%d", idleCoreapps+r+1)
		logFile := filepath.Join(logs, id+".log")
		cmd := exec.Command(bin, "coreapp", "--id", id, "--settings", urls.GRPC, "--join", urls.Gossip,
			"--gateway", urls.Gateway, "--log-file", logFile)
		cmd.Env = env
		marks = logSizes(b, masterLogs)
		t0 = time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		extra = append(extra, cmd)
		joins = append(joins, awaitLines(b, masterLogs, marks, id, "joined", t0))
		time.Sleep(2 * time.Second) // let the handover and the new member settle
	}
	b.Logf("graceful leave seen by both masters: %v", leaves)
	b.Logf("join seen by both masters (from exec): %v", joins)
	b.ReportMetric(ms(median(leaves)), "leave-p50-ms")
	b.ReportMetric(ms(slices.Max(leaves)), "leave-max-ms")
	b.ReportMetric(ms(median(joins)), "join-p50-ms")
	b.ReportMetric(ms(slices.Max(joins)), "join-max-ms")
}

func roleOf(name string) string {
	role, _, _ := strings.Cut(name, "-")
	return role
}

// procEnviron is the environment of a running process.
func procEnviron(pid int) ([]string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return nil, err
	}
	var env []string
	for kv := range bytes.SplitSeq(bytes.TrimRight(raw, "\x00"), []byte{0}) {
		env = append(env, string(kv))
	}
	return env, nil
}

func logSizes(b *testing.B, files []string) []int64 {
	out := make([]int64, len(files))
	for i, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = st.Size()
	}
	return out
}

// awaitLines polls the master logs from the given offsets until each has a
// "membership changed" line about peer with the event, and returns the
// time from t0 until the last of them appeared.
func awaitLines(b *testing.B, files []string, from []int64, peer, event string, t0 time.Time) time.Duration {
	b.Helper()
	want := [][]byte{[]byte(`"peer":"` + peer + `"`), []byte(`"event":"` + event + `"`)}
	seen := make([]bool, len(files))
	var last time.Duration
	deadline := t0.Add(40 * time.Second)
	for pending := len(files); pending > 0; {
		for i, f := range files {
			if seen[i] {
				continue
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			for line := range bytes.SplitSeq(raw[from[i]:], []byte{'\n'}) {
				if bytes.Contains(line, want[0]) && bytes.Contains(line, want[1]) {
					seen[i], last = true, time.Since(t0)
					pending--
					break
				}
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s %s: not in every master log after 40 s", peer, event)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return last
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
