package procs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// drainTimeout bounds how long an exited process's Done waits for the rest
// of its stdout to reach the log. The pipe normally hits EOF as the child
// exits; only a grandchild that inherited it could hold it open.
const drainTimeout = 2 * time.Second

// Proc is one child process started by a Supervisor. Its methods are safe
// for concurrent use. Signals go to the process itself, not its process
// group: mcsim nodes do not spawn children of their own.
type Proc struct {
	spec   Spec // with defaults applied; reused by Restart
	cmd    *exec.Cmd
	ready  Ready
	logger zerolog.Logger

	// stopping is set before a deliberate Stop/Kill so that the exit is not
	// reported as unexpected.
	stopping atomic.Bool
	// paused is set between a successful Pause and Resume: a paused
	// process answers nothing, so callers skip it rather than wait.
	paused  atomic.Bool
	done    chan struct{}
	exitErr error // written once, before done is closed
}

// Name is the node id the process was started as (Spec.Name).
func (p *Proc) Name() string { return p.spec.Name }

// Ready is what the child announced. PID is the child's own pid if it
// reported one, else the pid the Supervisor started.
func (p *Proc) Ready() Ready { return p.ready }

// PID is the pid of the started process.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited, been reaped, and its output
// has been copied to the log file.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether Done is closed.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitErr is the result of waiting for the process: nil for exit status 0,
// an *exec.ExitError otherwise (exit code or signal). It is nil while the
// process runs; read it after Done is closed.
func (p *Proc) ExitErr() error {
	if !p.Exited() {
		return nil
	}
	return p.exitErr
}

// Stop asks the process to exit with SIGTERM and kills it with SIGKILL if it
// is still running after grace. It returns once the process has exited; nil
// means it is gone (how it ended is in ExitErr). Stopping an exited process
// is a no-op. A paused process is resumed after SIGTERM so it can act on it.
func (p *Proc) Stop(grace time.Duration) error {
	if grace < 0 {
		return fmt.Errorf("procs: stop %s: grace: must be >= 0, got %s", p.Name(), grace)
	}
	if p.Exited() {
		return nil
	}
	p.stopping.Store(true)
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	if sig, err := resumeSignal(); err == nil {
		_ = p.signal(sig) // best effort: only matters if it was paused
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	p.logger.Warn().Dur("grace_ms", grace).Msg("process still running after SIGTERM; killing")
	return p.Kill()
}

// Kill sends SIGKILL and returns once the process has exited. Killing an
// exited process is a no-op.
func (p *Proc) Kill() error {
	p.stopping.Store(true)
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// Pause freezes the process with SIGSTOP: it keeps its sockets but answers
// nothing, like a stalled host. It is an error if the process has exited.
func (p *Proc) Pause() error {
	sig, err := pauseSignal()
	if err != nil {
		return err
	}
	if err := p.signalLive(sig, "pause"); err != nil {
		return err
	}
	p.paused.Store(true)
	return nil
}

// Paused says whether the process is paused (Pause, and no Resume yet).
func (p *Proc) Paused() bool { return p.paused.Load() }

// Resume thaws a paused process with SIGCONT. It is an error if the process
// has exited.
func (p *Proc) Resume() error {
	sig, err := resumeSignal()
	if err != nil {
		return err
	}
	if err := p.signalLive(sig, "resume"); err != nil {
		return err
	}
	p.paused.Store(false)
	return nil
}

// signal sends sig; a process that has already exited is not an error.
// os.Process.Signal uses a pidfd on Linux, so a reaped pid that the kernel
// reused can never be hit.
func (p *Proc) signal(sig os.Signal) error {
	err := p.cmd.Process.Signal(sig)
	if err == nil || errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return fmt.Errorf("procs: %s (pid %d): send %v: %w", p.Name(), p.PID(), sig, err)
}

func (p *Proc) signalLive(sig os.Signal, what string) error {
	err := p.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) || (err == nil && p.Exited()) {
		return fmt.Errorf("procs: %s %s (pid %d): process has exited", what, p.Name(), p.PID())
	}
	if err != nil {
		return fmt.Errorf("procs: %s %s (pid %d): %w", what, p.Name(), p.PID(), err)
	}
	return nil
}

// readyResult is what readOutput hands to Start: the parsed ready line or
// why it was unusable.
type readyResult struct {
	ready Ready
	err   error
}

// readOutput appends the child's stdout to the log, except the ready line,
// which it hands to Start. It owns stdout and logf and closes both at EOF.
func (p *Proc) readOutput(stdout, logf *os.File, readyc chan<- readyResult, copied chan<- struct{}) {
	defer close(copied)
	defer logf.Close()
	defer stdout.Close()
	br := bufio.NewReader(stdout)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			r, ok, perr := parseReady(line)
			if ok {
				readyc <- readyResult{ready: r, err: perr}
				break
			}
			_, _ = logf.Write(line)
		}
		if err != nil {
			return
		}
	}
	_, _ = io.Copy(logf, br)
}

// wait reaps the process, lets its output drain, then publishes the exit.
func (p *Proc) wait(copied <-chan struct{}) {
	err := p.cmd.Wait()
	t := time.NewTimer(drainTimeout)
	select {
	case <-copied:
	case <-t.C:
	}
	t.Stop()
	p.exitErr = err
	if p.stopping.Load() {
		p.logger.Info().AnErr("exit", err).Msg("process exited")
	} else {
		p.logger.Warn().AnErr("exit", err).Str("log_file", p.spec.LogFile).Msg("process exited unexpectedly")
	}
	close(p.done)
}
