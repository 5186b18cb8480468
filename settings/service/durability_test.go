package service

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/settings/store/pgstore/pgtest"
)

// The durability test runs the service as a child process: this test
// binary re-executed with childEnv=1. TestMain sends the child to
// runChild before any test runs.
const (
	childEnv        = "MCSIM_SERVICE_CHILD"
	childDataDirEnv = "MCSIM_SERVICE_CHILD_DATA_DIR"
	readyPrefix     = "MCSIM_SERVICE_READY "
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild is the child's main: the whole service on free loopback ports,
// announcing its addresses on stdout, until killed or signalled.
func runChild() int {
	cfg := testConfig(os.Getenv(childDataDirEnv))
	cfg.Logger = zerolog.New(os.Stderr).With().Timestamp().Str("role", "settings").Logger()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, cfg, func(a Addrs) {
		fmt.Printf("%shttp=%s grpc=%s\n", readyPrefix, a.HTTP, a.GRPC)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// child is one service process.
type child struct {
	cmd      *exec.Cmd
	httpAddr string
	waitOnce sync.Once
}

// startChild starts the service on dir and waits for its ready line. Its
// log goes to logPath, shown if the test fails.
func startChild(t *testing.T, dir, logPath string) *child {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childDataDirEnv+"="+dir)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	c := &child{cmd: cmd}
	t.Cleanup(c.kill)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, readyPrefix); ok {
			for _, f := range strings.Fields(rest) {
				if v, ok := strings.CutPrefix(f, "http="); ok {
					c.httpAddr = v
				}
			}
			break
		}
	}
	if c.httpAddr == "" {
		c.kill()
		t.Fatalf("child exited without announcing its address; its log:\n%s", readLog(logPath))
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return c
}

// kill sends SIGKILL (no chance to clean up) and reaps the process.
func (c *child) kill() {
	c.waitOnce.Do(func() {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	})
}

func readLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// TestDurabilityAcrossSIGKILL streams PATCHes at a service process, kills
// it with SIGKILL at a random moment, restarts it on the same data dir and
// checks that the last acknowledged value survived (or the one in flight at
// the kill, which may or may not have committed). Three kills.
func TestDurabilityAcrossSIGKILL(t *testing.T) {
	durabilityAcrossSIGKILL(t, t.TempDir())
}

// TestDurabilityAcrossSIGKILLPostgres is the same with the store in
// PostgreSQL (MCSIM_TEST_POSTGRES, see package pgtest).
func TestDurabilityAcrossSIGKILLPostgres(t *testing.T) {
	durabilityAcrossSIGKILL(t, pgtest.Schema(t))
}

// durabilityAcrossSIGKILL runs the kills on the store at dir (a bbolt
// data dir or a postgres:// URL).
func durabilityAcrossSIGKILL(t *testing.T, dir string) {
	if testing.Short() {
		t.Skip("starts service processes")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MCSIM_DURABILITY_SEED"); s != "" {
		if _, err := fmt.Sscan(s, &seed); err != nil {
			t.Fatalf("MCSIM_DURABILITY_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (rerun with MCSIM_DURABILITY_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	logPath := filepath.Join(t.TempDir(), "service.log")
	failWithLog := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\nservice log:\n%s", append(args, readLog(logPath))...)
	}

	// Each PATCH sets a value never used before, so the value GET shows
	// names exactly the PATCH that wrote it. Values stay above the default
	// callback_backoff_delay_ms (3000), which must not exceed them.
	const base = 100000
	next := 1
	lastAcked, inFlight := 0, 0 // 0: none yet
	const kills = 3
	for round := 0; round <= kills; round++ {
		c := startChild(t, dir, logPath)
		a := newAPI(c.httpAddr)
		a.login(t, DefaultAdminPassword)

		got := a.maxBackoff(t)
		switch {
		case lastAcked == 0 && got == 900000:
		case got == lastAcked:
		case got == inFlight && inFlight != 0:
			t.Logf("round %d: the PATCH in flight at the kill (%d) had committed", round, inFlight)
		default:
			failWithLog("round %d: after SIGKILL and restart GET shows %d, want the last acknowledged %d (or %d, in flight at the kill)",
				round, got, lastAcked, inFlight)
		}
		if got == inFlight {
			lastAcked = inFlight
		}
		if round == kills {
			a.close()
			c.kill()
			break
		}

		// Kill after a random number of acknowledged PATCHes, from another
		// goroutine, so the kill lands at a random point of the next
		// PATCH: before it is read, while it commits, or before the answer.
		killAfter := 1 + rng.IntN(120)
		var killed sync.WaitGroup
		killing := false
		for acks := 0; ; {
			v := base + next
			next++
			inFlight = v
			code, body, err := a.setMaxBackoff(v)
			if err != nil {
				if !killing {
					failWithLog("round %d: PATCH %d failed before the kill: %v", round, v, err)
				}
				break
			}
			if code != 200 {
				failWithLog("round %d: PATCH %d = %d %s, want 200", round, v, code, body)
			}
			lastAcked, acks = v, acks+1
			if acks == killAfter {
				killing = true
				killed.Go(c.kill)
			}
		}
		killed.Wait()
		a.close()
		t.Logf("round %d: killed after %d acknowledged PATCHes; last acknowledged %d, in flight %d", round, killAfter, lastAcked, inFlight)
	}
}
