package procs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/mcsim/mcsim/internal/logging"
)

const (
	// DefaultReadyTimeout is how long Start waits for the ready line when
	// Spec.ReadyTimeout is 0.
	DefaultReadyTimeout = 10 * time.Second
	// DefaultStopGrace is the SIGTERM grace Restart gives a process that is
	// still running.
	DefaultStopGrace = 5 * time.Second
	// logTailBytes is how much of the log a failed Start quotes.
	logTailBytes = 4096
)

// ErrClosed is returned by Start and Restart after Close.
// StartMarker is the message of the line the supervisor writes at the top
// of each run of a node in its log file.
const StartMarker = "procs: starting a run of the node"

var ErrClosed = errors.New("procs: supervisor is closed")

// Spec says how to run one child.
type Spec struct {
	// Name is the node id, e.g. "coreapp-1". Required; the child must
	// announce the same node_id. At most one live process per Name.
	Name string
	// Path is the binary; "" means this binary (os.Executable()).
	Path string
	// Args are the arguments after the program name, e.g.
	// ["coreapp", "--id", "coreapp-1"].
	Args []string
	// Env is added to the launcher's environment; a later entry for the
	// same key wins.
	Env []string
	// LogFile receives the child's stderr and every stdout line except the
	// ready line, appended. Required. Missing directories are created.
	LogFile string
	// ReadyTimeout bounds the wait for the ready line; 0 means
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// withDefaults validates s and fills in the defaults.
func (s Spec) withDefaults() (Spec, error) {
	var errs []error
	if strings.TrimSpace(s.Name) == "" {
		errs = append(errs, errors.New("spec.Name: must not be empty"))
	}
	if s.LogFile == "" {
		errs = append(errs, fmt.Errorf("spec.LogFile: must not be empty (node %q)", s.Name))
	}
	if s.ReadyTimeout < 0 {
		errs = append(errs, fmt.Errorf("spec.ReadyTimeout: must be >= 0 (0 means %s), got %s", DefaultReadyTimeout, s.ReadyTimeout))
	}
	for i, kv := range s.Env {
		if !strings.Contains(kv, "=") {
			errs = append(errs, fmt.Errorf("spec.Env[%d]: must be KEY=VALUE, got %q", i, kv))
		}
	}
	if len(errs) > 0 {
		return Spec{}, fmt.Errorf("procs: invalid spec: %w", errors.Join(errs...))
	}
	if s.ReadyTimeout == 0 {
		s.ReadyTimeout = DefaultReadyTimeout
	}
	if s.Path == "" {
		exe, err := os.Executable()
		if err != nil {
			return Spec{}, fmt.Errorf("procs: spec.Path is empty and this binary's path is unknown: %w", err)
		}
		s.Path = exe
	}
	s.Args = append([]string(nil), s.Args...)
	s.Env = append([]string(nil), s.Env...)
	return s, nil
}

// Supervisor starts child processes and keeps track of them. All children
// are forked by one goroutine pinned to its OS thread, so that their
// Pdeathsig fires when the launcher dies and not when some Go thread
// happens to exit (see the package comment). Create it with New and end it
// with Close.
type Supervisor struct {
	logger zerolog.Logger

	forks      chan forkRequest
	quit       chan struct{}
	forkerDone chan struct{}

	mu       sync.Mutex
	closed   bool
	starting map[string]bool
	procs    []*Proc // latest process per name, in first-start order
}

type forkRequest struct {
	cmd   *exec.Cmd
	reply chan error
}

// New returns a Supervisor and starts its forking goroutine.
func New(logger zerolog.Logger) *Supervisor {
	s := &Supervisor{
		logger:     logger,
		forks:      make(chan forkRequest),
		quit:       make(chan struct{}),
		forkerDone: make(chan struct{}),
		starting:   make(map[string]bool),
	}
	go s.forker()
	return s
}

// forker runs every fork on one OS thread. It never calls
// runtime.UnlockOSThread: when it returns (Close), the Go runtime ends the
// thread, and the kernel SIGKILLs any child still alive.
func (s *Supervisor) forker() {
	runtime.LockOSThread()
	defer close(s.forkerDone)
	for {
		select {
		case req := <-s.forks:
			req.reply <- req.cmd.Start()
		case <-s.quit:
			return
		}
	}
}

func (s *Supervisor) fork(cmd *exec.Cmd) error {
	reply := make(chan error, 1)
	select {
	case s.forks <- forkRequest{cmd: cmd, reply: reply}:
		return <-reply
	case <-s.quit:
		return ErrClosed
	}
}

// Start runs spec and waits for the child's ready line. If the child exits
// first, stays silent past spec.ReadyTimeout, announces another node id, or
// ctx ends, the child is killed and the error quotes the end of its log.
// ctx only bounds the start: once ready, the process lives until stopped.
func (s *Supervisor) Start(ctx context.Context, spec Spec) (*Proc, error) {
	spec, err := spec.withDefaults()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if s.starting[spec.Name] {
		s.mu.Unlock()
		return nil, fmt.Errorf("procs: spec.Name: %q is already being started", spec.Name)
	}
	if old := s.lookupLocked(spec.Name); old != nil && !old.Exited() {
		s.mu.Unlock()
		return nil, fmt.Errorf("procs: spec.Name: %q is already running (pid %d)", spec.Name, old.PID())
	}
	s.starting[spec.Name] = true
	s.mu.Unlock()

	p, err := s.start(ctx, spec)

	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.starting, spec.Name)
	if err != nil {
		return nil, err
	}
	for i, old := range s.procs {
		if old.Name() == spec.Name {
			s.procs[i] = p
			return p, nil
		}
	}
	s.procs = append(s.procs, p)
	return p, nil
}

func (s *Supervisor) start(ctx context.Context, spec Spec) (*Proc, error) {
	attr, err := sysProcAttr()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(spec.LogFile), 0o755); err != nil {
		return nil, fmt.Errorf("procs: start %s: spec.LogFile: %w", spec.Name, err)
	}
	logf, err := os.OpenFile(spec.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("procs: start %s: spec.LogFile: %w", spec.Name, err)
	}
	// A header separates runs of the same node (Restart appends), and the
	// offset after it is where a failed start's log tail begins. It is a
	// JSON line like the node's own, so `jq . node.log` reads every line.
	marker := logging.New(logf, logging.JSON, zerolog.InfoLevel)
	marker.Info().Str("node_id", spec.Name).Str("path", spec.Path).Strs("args", spec.Args).Msg(StartMarker)
	var offset int64
	if fi, err := logf.Stat(); err == nil {
		offset = fi.Size()
	}
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("procs: start %s: %w", spec.Name, err)
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout = stdoutW
	cmd.Stderr = logf
	cmd.SysProcAttr = attr
	err = s.fork(cmd)
	stdoutW.Close() // the child has its copy; EOF must mean the child is gone
	if err != nil {
		stdout.Close()
		logf.Close()
		return nil, fmt.Errorf("procs: start %s: %w", spec.Name, err)
	}

	pid := cmd.Process.Pid
	p := &Proc{
		spec:   spec,
		cmd:    cmd,
		logger: s.logger.With().Str("proc", spec.Name).Int("pid", pid).Logger(),
		done:   make(chan struct{}),
	}
	readyc := make(chan readyResult, 1)
	copied := make(chan struct{})
	go p.readOutput(stdout, logf, readyc, copied)
	go p.wait(copied)

	timer := time.NewTimer(spec.ReadyTimeout)
	defer timer.Stop()
	var fail error
	select {
	case res := <-readyc:
		switch {
		case res.err != nil:
			fail = res.err
		case res.ready.NodeID != spec.Name:
			fail = fmt.Errorf("announced node_id %q, expected %q", res.ready.NodeID, spec.Name)
		default:
			p.ready = res.ready
			if p.ready.PID == 0 {
				p.ready.PID = pid
			}
			p.logger.Info().Str("grpc", p.ready.GRPC).Str("gossip", p.ready.Gossip).
				Str("http", p.ready.HTTP).Msg("process ready")
			return p, nil
		}
	case <-p.done:
		fail = fmt.Errorf("exited before it was ready (%s)", exitString(p.exitErr))
	case <-timer.C:
		fail = fmt.Errorf("not ready after %s", spec.ReadyTimeout)
	case <-ctx.Done():
		fail = ctx.Err()
	}
	_ = p.Kill()
	return nil, fmt.Errorf("procs: start %s (pid %d): %w; %s", spec.Name, pid, fail, logTail(spec.LogFile, offset))
}

func exitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// logTail quotes the end of this run's part of the log (from offset on).
func logTail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("log %s unreadable: %v", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("log %s unreadable: %v", path, err)
	}
	from, cut := offset, false
	if fi.Size()-from > logTailBytes {
		from, cut = fi.Size()-logTailBytes, true
	}
	b, err := io.ReadAll(io.NewSectionReader(f, from, fi.Size()-from))
	if err != nil {
		return fmt.Sprintf("log %s unreadable: %v", path, err)
	}
	text := strings.TrimRight(string(b), "\n")
	if text == "" {
		return fmt.Sprintf("log %s: (empty)", path)
	}
	if cut {
		text = "..." + text
	}
	return fmt.Sprintf("log %s ends with:\n%s", path, text)
}

// Restart starts p's spec again as a new process. If p is still running it
// is stopped first (DefaultStopGrace). p must be the latest process of its
// name.
func (s *Supervisor) Restart(ctx context.Context, p *Proc) (*Proc, error) {
	return s.RestartAs(ctx, p, p.spec)
}

// RestartAs is Restart with another spec for the new process (its name
// must be p's): a restart that keeps the node's addresses, for example.
func (s *Supervisor) RestartAs(ctx context.Context, p *Proc, spec Spec) (*Proc, error) {
	if spec.Name != p.Name() {
		return nil, fmt.Errorf("procs: restart %s as %q: the name must stay", p.Name(), spec.Name)
	}
	if err := p.Stop(DefaultStopGrace); err != nil {
		return nil, err
	}
	s.mu.Lock()
	cur := s.lookupLocked(p.Name())
	s.mu.Unlock()
	if cur != p {
		return nil, fmt.Errorf("procs: restart %s: this process was already replaced", p.Name())
	}
	return s.Start(ctx, spec)
}

// StopAll stops every running process in parallel (see Proc.Stop) and
// returns once all have exited.
func (s *Supervisor) StopAll(grace time.Duration) error {
	procs := s.Procs()
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.Stop(grace) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close stops every process (StopAll), refuses further starts and ends the
// forking thread. Calling it again is a no-op.
func (s *Supervisor) Close(grace time.Duration) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.StopAll(grace)
	close(s.quit)
	<-s.forkerDone
	return err
}

// Procs returns the latest process of every name started, in the order the
// names were first started, including processes that have exited.
func (s *Supervisor) Procs() []*Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Proc(nil), s.procs...)
}

// Lookup returns the latest process started under name, or nil.
func (s *Supervisor) Lookup(name string) *Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookupLocked(name)
}

func (s *Supervisor) lookupLocked(name string) *Proc {
	for _, p := range s.procs {
		if p.Name() == name {
			return p
		}
	}
	return nil
}
