//go:build linux

package procs

import "syscall"

// sysProcAttr makes the child die with the thread that forked it (see the
// package comment for why that thread is pinned) and puts it in its own
// process group so terminal signals reach only the launcher. Go's forkExec
// also closes the race where the parent dies between fork and prctl: the
// child checks getppid after setting Pdeathsig and kills itself if the
// parent is already gone.
func sysProcAttr() (*syscall.SysProcAttr, error) {
	return &syscall.SysProcAttr{
		Pdeathsig: syscall.SIGKILL,
		Setpgid:   true,
	}, nil
}

// pauseSignal and resumeSignal freeze and thaw a process the way a stalled
// VM or a long GC pause would look from the outside.
func pauseSignal() (syscall.Signal, error)  { return syscall.SIGSTOP, nil }
func resumeSignal() (syscall.Signal, error) { return syscall.SIGCONT, nil }
