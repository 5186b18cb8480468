package procs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// patience bounds every wait in these tests; it is a deadline for a hang,
// not a measure of speed.
const patience = 10 * time.Second

// noRaceExitDelay stops a -race child from sleeping a second at exit (the
// race runtime's default atexit_sleep_ms), which would slow every Stop.
const noRaceExitDelay = "GORACE=atexit_sleep_ms=0"

func newSupervisor(t *testing.T) *Supervisor {
	t.Helper()
	s := New(zerolog.New(zerolog.NewTestWriter(t)))
	t.Cleanup(func() {
		if err := s.Close(time.Second); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// childSpec runs this test binary as a child in the given mode. The log
// goes to a directory that does not exist yet, so Start must create it.
func childSpec(t *testing.T, name, mode string) Spec {
	return Spec{
		Name:    name,
		Env:     []string{childModeEnv + "=" + mode, childNameEnv + "=" + name, noRaceExitDelay},
		LogFile: filepath.Join(t.TempDir(), "logs", name+".log"),
	}
}

func mustStart(t *testing.T, s *Supervisor, spec Spec) *Proc {
	t.Helper()
	p, err := s.Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("Start(%s): %v", spec.Name, err)
	}
	return p
}

func waitDone(t *testing.T, p *Proc) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(patience):
		t.Fatalf("%s (pid %d) did not exit within %s", p.Name(), p.PID(), patience)
	}
}

// procState is the state letter of /proc/PID/stat (R, S, T, Z, ...).
func procState(pid int) (byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may itself contain ") ".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, b)
	}
	return b[i+2], nil
}

// poll calls cond until it is true or patience runs out.
func poll(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.NewTimer(patience)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, last := cond()
		if ok {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("%s: not true within %s (last: %s)", what, patience, last)
		case <-tick.C:
		}
	}
}

func waitState(t *testing.T, pid int, want string, cond func(byte) bool) {
	t.Helper()
	poll(t, fmt.Sprintf("pid %d state %s", pid, want), func() (bool, string) {
		st, err := procState(pid)
		if err != nil {
			return false, err.Error()
		}
		return cond(st), string(st)
	})
}

func killedBy(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStartReadyAndStop(t *testing.T) {
	s := newSupervisor(t)
	spec := childSpec(t, "coreapp-1", "ready")
	p := mustStart(t, s, spec)

	r := p.Ready()
	want := Ready{NodeID: "coreapp-1", GRPC: "127.0.0.1:41234", Gossip: "127.0.0.1:41235", PID: p.PID()}
	if r != want {
		t.Fatalf("Ready() = %+v, want %+v", r, want)
	}
	if got := s.Procs(); len(got) != 1 || got[0] != p {
		t.Fatalf("Procs() = %v, want [p]", got)
	}
	if s.Lookup("coreapp-1") != p || s.Lookup("nobody") != nil {
		t.Fatal("Lookup does not find the process by name")
	}
	if p.Exited() || p.ExitErr() != nil {
		t.Fatal("a ready process reports an exit")
	}
	// Its own process group, so a terminal's Ctrl-C reaches only the launcher.
	if pgid, err := syscall.Getpgid(p.PID()); err != nil || pgid != p.PID() {
		t.Fatalf("child pgid = %d, %v; want its own group %d", pgid, err, p.PID())
	}

	if err := p.Stop(patience); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	waitDone(t, p)
	if err := p.ExitErr(); err != nil {
		t.Fatalf("child honouring SIGTERM exited with %v, want status 0", err)
	}
	log := readLog(t, spec.LogFile)
	for _, line := range []string{
		StartMarker,
		"child coreapp-1: mode ready on stderr",
		"child coreapp-1: stdout before ready",
		"child coreapp-1: stdout after ready",
		"child coreapp-1: got SIGTERM, exiting",
	} {
		if !strings.Contains(log, line) {
			t.Errorf("log lacks %q:\n%s", line, log)
		}
	}
	if strings.Contains(log, `"ready"`) {
		t.Errorf("the ready line leaked into the log:\n%s", log)
	}
	if err := p.Stop(time.Second); err != nil {
		t.Fatalf("Stop of an exited process: %v", err)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	s := newSupervisor(t)
	p := mustStart(t, s, childSpec(t, "coreapp-stubborn", "ignore-term"))
	if err := p.Stop(50 * time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	waitDone(t, p)
	if !killedBy(p.ExitErr(), syscall.SIGKILL) {
		t.Fatalf("ExitErr = %v, want killed by SIGKILL", p.ExitErr())
	}
}

func TestKill(t *testing.T) {
	s := newSupervisor(t)
	p := mustStart(t, s, childSpec(t, "coreapp-1", "ready"))
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	waitDone(t, p)
	if !killedBy(p.ExitErr(), syscall.SIGKILL) {
		t.Fatalf("ExitErr = %v, want killed by SIGKILL", p.ExitErr())
	}
	if err := p.Pause(); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("Pause of a dead process = %v, want an error saying it exited", err)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill of a dead process: %v", err)
	}
}

func TestPauseResume(t *testing.T) {
	s := newSupervisor(t)
	p := mustStart(t, s, childSpec(t, "master-1", "ready"))
	if err := p.Pause(); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	waitState(t, p.PID(), "T (stopped)", func(st byte) bool { return st == 'T' })
	if err := p.Resume(); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	waitState(t, p.PID(), "not T", func(st byte) bool { return st != 'T' && st != 't' })

	// A paused process still gets to honour SIGTERM: Stop resumes it.
	if err := p.Pause(); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	waitState(t, p.PID(), "T (stopped)", func(st byte) bool { return st == 'T' })
	if err := p.Stop(patience); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := p.ExitErr(); err != nil {
		t.Fatalf("paused child stopped with %v, want a clean exit after SIGTERM", err)
	}
}

var pidInError = regexp.MustCompile(`\(pid (\d+)\)`)

func requireGone(t *testing.T, err error) {
	t.Helper()
	m := pidInError.FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("error does not name the pid: %v", err)
	}
	pid, _ := strconv.Atoi(m[1])
	// Start reaped the child before returning, so the pid is already free.
	if kerr := syscall.Kill(pid, 0); !errors.Is(kerr, syscall.ESRCH) {
		t.Fatalf("child pid %d still exists after a failed Start (kill 0: %v)", pid, kerr)
	}
}

func TestCrashBeforeReady(t *testing.T) {
	s := newSupervisor(t)
	_, err := s.Start(context.Background(), childSpec(t, "coreapp-crash", "crash"))
	if err == nil {
		t.Fatal("Start of a crashing child succeeded")
	}
	for _, want := range []string{"exited before it was ready", "exit status 3", "boom, crashing before ready", "stdout before ready"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	requireGone(t, err)
	if got := s.Procs(); len(got) != 0 {
		t.Fatalf("Procs() after a failed start = %v, want none", got)
	}
}

func TestReadyTimeoutKillsChild(t *testing.T) {
	s := newSupervisor(t)
	spec := childSpec(t, "coreapp-slow", "slow")
	spec.ReadyTimeout = 200 * time.Millisecond
	_, err := s.Start(context.Background(), spec)
	if err == nil {
		t.Fatal("Start of a child that never gets ready succeeded")
	}
	for _, want := range []string{"not ready after 200ms", "mode slow on stderr"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	requireGone(t, err)
}

func TestContextCancelKillsChild(t *testing.T) {
	s := newSupervisor(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Start(ctx, childSpec(t, "coreapp-slow", "slow"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a cancelled context = %v, want context.Canceled", err)
	}
	requireGone(t, err)
}

func TestWrongNodeIDRejected(t *testing.T) {
	s := newSupervisor(t)
	_, err := s.Start(context.Background(), childSpec(t, "coreapp-1", "wrong-name"))
	if err == nil || !strings.Contains(err.Error(), `announced node_id "someone-else", expected "coreapp-1"`) {
		t.Fatalf("Start = %v, want a node_id mismatch error", err)
	}
	requireGone(t, err)
}

func TestInvalidSpec(t *testing.T) {
	s := newSupervisor(t)
	_, err := s.Start(context.Background(), Spec{ReadyTimeout: -time.Second, Env: []string{"NOEQUALS"}})
	if err == nil {
		t.Fatal("Start accepted an invalid spec")
	}
	for _, want := range []string{"spec.Name", "spec.LogFile", "spec.ReadyTimeout", "-1s", `spec.Env[0]`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if len(s.Procs()) != 0 {
		t.Fatal("an invalid spec changed the supervisor")
	}
}

func TestMissingBinary(t *testing.T) {
	s := newSupervisor(t)
	spec := childSpec(t, "coreapp-1", "ready")
	spec.Path = filepath.Join(t.TempDir(), "no-such-binary")
	_, err := s.Start(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "no-such-binary") {
		t.Fatalf("Start of a missing binary = %v, want an error naming it", err)
	}
	if len(s.Procs()) != 0 {
		t.Fatal("a failed start changed the supervisor")
	}
}

func TestDuplicateNameRefused(t *testing.T) {
	s := newSupervisor(t)
	spec := childSpec(t, "coreapp-1", "ready")
	p := mustStart(t, s, spec)
	_, err := s.Start(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second Start of a running name = %v, want 'already running'", err)
	}
	if s.Lookup("coreapp-1") != p || p.Exited() {
		t.Fatal("the refused start disturbed the running process")
	}
}

func TestRestart(t *testing.T) {
	s := newSupervisor(t)
	spec := childSpec(t, "coreapp-1", "ready")
	p1 := mustStart(t, s, spec)
	if err := p1.Kill(); err != nil {
		t.Fatal(err)
	}
	p2, err := s.Restart(context.Background(), p1)
	if err != nil {
		t.Fatalf("Restart after Kill: %v", err)
	}
	if p2.PID() == p1.PID() || p2.Ready().PID != p2.PID() {
		t.Fatalf("restart pids: old %d, new %d, announced %d", p1.PID(), p2.PID(), p2.Ready().PID)
	}
	// Restarting a running process stops it first.
	p3, err := s.Restart(context.Background(), p2)
	if err != nil {
		t.Fatalf("Restart of a running process: %v", err)
	}
	waitDone(t, p2)
	if p2.ExitErr() != nil {
		t.Fatalf("running process was not stopped gracefully: %v", p2.ExitErr())
	}
	if p3.PID() == p2.PID() || s.Lookup("coreapp-1") != p3 || len(s.Procs()) != 1 {
		t.Fatalf("after restart: pid %d (was %d), Procs %v", p3.PID(), p2.PID(), s.Procs())
	}
	if _, err := s.Restart(context.Background(), p1); err == nil {
		t.Fatal("Restart of a replaced process succeeded")
	}
	if n := strings.Count(readLog(t, spec.LogFile), StartMarker); n != 3 {
		t.Fatalf("log has %d run headers, want 3 (appended across restarts)", n)
	}
	// RestartAs runs another spec under the same name, never another name.
	other := spec
	other.Name = "coreapp-2"
	if _, err := s.RestartAs(context.Background(), p3, other); err == nil || !strings.Contains(err.Error(), "the name must stay") {
		t.Fatalf("RestartAs under another name: %v", err)
	}
	if p3.Exited() {
		t.Fatal("a refused RestartAs stopped the process")
	}
	withArg := spec
	withArg.Args = append(slices.Clone(spec.Args), "--extra")
	p4, err := s.RestartAs(context.Background(), p3, withArg)
	if err != nil || s.Lookup("coreapp-1") != p4 {
		t.Fatalf("RestartAs: %v", err)
	}
}

// TestStartFromDyingThread starts a child from a goroutine whose OS thread
// then exits. Were the child forked on that thread, Pdeathsig would kill it;
// the Supervisor forks on its own pinned thread, so it lives on.
func TestStartFromDyingThread(t *testing.T) {
	s := newSupervisor(t)
	type result struct {
		p   *Proc
		err error
	}
	got := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		p, err := s.Start(context.Background(), childSpec(t, "coreapp-1", "ready"))
		got <- result{p, err}
	}()
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	// Starting and stopping a second child gives the dying thread time to
	// go; if the first child was tied to it, it is dead by now.
	p2 := mustStart(t, s, childSpec(t, "coreapp-2", "ready"))
	if err := p2.Stop(patience); err != nil {
		t.Fatal(err)
	}
	if err := r.p.Stop(patience); err != nil {
		t.Fatal(err)
	}
	if err := r.p.ExitErr(); err != nil {
		t.Fatalf("child started from a dying thread ended with %v, want a clean SIGTERM exit", err)
	}
}

func TestStopAll(t *testing.T) {
	s := newSupervisor(t)
	ps := []*Proc{
		mustStart(t, s, childSpec(t, "master-1", "ready")),
		mustStart(t, s, childSpec(t, "coreapp-1", "ready")),
		mustStart(t, s, childSpec(t, "coreapp-2", "ignore-term")),
	}
	if err := s.StopAll(100 * time.Millisecond); err != nil {
		t.Fatalf("StopAll: %v", err)
	}
	for _, p := range ps {
		if !p.Exited() {
			t.Fatalf("%s still running after StopAll returned", p.Name())
		}
	}
	if !killedBy(ps[2].ExitErr(), syscall.SIGKILL) {
		t.Fatalf("the SIGTERM-ignoring child ended with %v, want SIGKILL", ps[2].ExitErr())
	}
}

func TestCloseRefusesStart(t *testing.T) {
	s := New(zerolog.New(zerolog.NewTestWriter(t)))
	p := mustStart(t, s, childSpec(t, "coreapp-1", "ready"))
	if err := s.Close(patience); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !p.Exited() {
		t.Fatal("Close left a child running")
	}
	if _, err := s.Start(context.Background(), childSpec(t, "coreapp-2", "ready")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(patience); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestNoOrphans kills a launcher with SIGKILL (no chance to clean up) and
// checks that the kernel takes its supervised grandchild down with it.
func TestNoOrphans(t *testing.T) {
	dir := t.TempDir()
	launcher := exec.Command(os.Args[0])
	launcher.Env = append(os.Environ(), childModeEnv+"=launcher", childNameEnv+"=launcher", childDirEnv+"="+dir, noRaceExitDelay)
	var stderr bytes.Buffer
	launcher.Stderr = &stderr
	out, err := launcher.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := launcher.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = launcher.Process.Kill() })

	type pidOrErr struct {
		pid int
		err error
	}
	got := make(chan pidOrErr, 1)
	go func() {
		pid, err := readPIDLine(out)
		got <- pidOrErr{pid, err}
	}()
	var grandchild int
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("reading the grandchild pid: %v; launcher stderr:\n%s", r.err, stderr.String())
		}
		grandchild = r.pid
	case <-time.After(patience):
		t.Fatal("launcher did not report its grandchild")
	}
	if err := syscall.Kill(grandchild, 0); err != nil {
		t.Fatalf("grandchild %d not alive before the launcher dies: %v", grandchild, err)
	}

	if err := launcher.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = launcher.Wait()

	// Reparented to init (or a subreaper) that may not reap it at once, a
	// dead grandchild can linger as a zombie; that counts as dead.
	poll(t, fmt.Sprintf("grandchild %d dead", grandchild), func() (bool, string) {
		if err := syscall.Kill(grandchild, 0); errors.Is(err, syscall.ESRCH) {
			return true, "ESRCH"
		}
		st, err := procState(grandchild)
		if err != nil {
			return os.IsNotExist(err), err.Error()
		}
		return st == 'Z', "state " + string(st)
	})
}

func TestWriteReadyRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	want := Ready{NodeID: "coreapp-1", GRPC: "127.0.0.1:1", HTTP: "127.0.0.1:2", PID: 42}
	if err := WriteReady(&buf, want); err != nil {
		t.Fatal(err)
	}
	line := buf.String()
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
		t.Fatalf("ready output is not one line: %q", line)
	}
	if !strings.HasPrefix(line, `{"ready":{"node_id":"coreapp-1","grpc":"127.0.0.1:1","http":"127.0.0.1:2","pid":42}}`) {
		t.Fatalf("ready line = %q", line)
	}
	got, ok, err := parseReady([]byte(line))
	if !ok || err != nil || got != want {
		t.Fatalf("parseReady = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	if err := WriteReady(&buf, Ready{GRPC: "x"}); err == nil || !strings.Contains(err.Error(), "node_id") {
		t.Fatalf("WriteReady without node_id = %v, want an error naming node_id", err)
	}
	for _, other := range []string{"hello", `{"level":"info","msg":"ready"}`, `{"ready":true}`, `{"ready":null}`, ""} {
		if _, ok, _ := parseReady([]byte(other)); ok {
			t.Errorf("parseReady(%q) took it for a ready line", other)
		}
	}
	if _, ok, err := parseReady([]byte(`{"ready":{"grpc":"x"}}`)); !ok || err == nil {
		t.Errorf("ready envelope without node_id: ok=%v err=%v, want ok with error", ok, err)
	}
}
