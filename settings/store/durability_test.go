//go:build unix

package store

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The SIGKILL test re-executes this test binary as a child that writes to a
// store as fast as it can and reports each acknowledged write; the parent
// kills it at a random moment and checks that every acknowledged write
// survived.
const (
	childEnv    = "MCSIM_STORE_CHILD"     // "1" in the child
	childDirEnv = "MCSIM_STORE_CHILD_DIR" // the child's data dir
	seedEnv     = "MCSIM_STORE_SEED"      // replays a run's kill points
	childMaxOps = 100_000                 // bounds the child if nobody kills it
)

// TestDurabilityChild is the child half of TestSIGKILLKeepsAcknowledgedWrites;
// it does nothing in a normal run.
func TestDurabilityChild(t *testing.T) {
	if os.Getenv(childEnv) != "1" {
		t.Skip("helper process of TestSIGKILLKeepsAcknowledgedWrites")
	}
	s, err := Open(os.Getenv(childDirEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(2)
	}
	for range childMaxOps {
		st, err := s.UpdateApplication(bump)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child: update:", err)
			os.Exit(2)
		}
		// Only now, after UpdateApplication returned, is the value
		// acknowledged. os.Stdout is unbuffered: one write per line.
		fmt.Fprintf(os.Stdout, "ack %d\n", counter(t, st.Application))
	}
	os.Exit(3) // never killed: the parent reports it
}

func TestSIGKILLKeepsAcknowledgedWrites(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		t.Skip("running as the child")
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(seedEnv); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s: want an unsigned integer, got %q", seedEnv, v)
		}
	}
	t.Logf("seed %d (replay the kill points with %s=%d)", seed, seedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	// One dir for all rounds: each child starts on the file the previous
	// one was killed over, so recovery is followed by more writes.
	dir := t.TempDir()
	last := 0
	for round := range 5 {
		killAfter := 1 + rng.IntN(100)
		acked := runChildAndKill(t, dir, killAfter)
		if acked <= last {
			t.Fatalf("round %d: child acknowledged up to %d, but %d was already stored", round, acked, last)
		}
		s, err := Open(dir)
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		st := s.State()
		n := counter(t, st.Application)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// At most one write was in flight (committed but not yet printed).
		if n < acked || n > acked+1 {
			t.Fatalf("round %d: stored counter %d, last acknowledged %d (want %d or %d)", round, n, acked, acked, acked+1)
		}
		if st.Revision != uint64(n) {
			t.Fatalf("round %d: revision %d does not match counter %d", round, st.Revision, n)
		}
		t.Logf("round %d: killed after %d acks; last ack %d, stored %d", round, killAfter, acked, n)
		last = n
	}
}

// runChildAndKill starts a child writing to dir, SIGKILLs it once it has
// acknowledged killAfter writes, and returns the last value it acknowledged
// (including any printed between the decision and the kill).
func runChildAndKill(t *testing.T, dir string, killAfter int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1", childDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acks, last, killed := 0, 0, false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "ack ")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Errorf("child printed %q", sc.Text())
			continue
		}
		if last != 0 && n != last+1 {
			t.Errorf("child acknowledged %d after %d", n, last)
		}
		last = n
		acks++
		if acks == killAfter && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	// Wait closes the pipe, so it comes after reading to EOF (child dead).
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d acks without being killed: %v\nstderr:\n%s", acks, err, stderr.String())
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\nstderr:\n%s", err, stderr.String())
	}
	return last
}
