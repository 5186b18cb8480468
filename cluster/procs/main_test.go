package procs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

// The children in these tests are this test binary, re-executed with
// childModeEnv set; TestMain turns it into the child before any test runs.
const (
	childModeEnv = "MCSIM_PROCS_CHILD"
	childNameEnv = "MCSIM_PROCS_CHILD_NAME"
	childDirEnv  = "MCSIM_PROCS_CHILD_DIR"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

// fakeReady is what the "ready" children announce.
func fakeReady(name string) Ready {
	return Ready{NodeID: name, GRPC: "127.0.0.1:41234", Gossip: "127.0.0.1:41235", PID: os.Getpid()}
}

// runChild is the child side. It blocks on signal channels, never on
// sleeps: a signal is what ends every child.
func runChild(mode string) int {
	name := os.Getenv(childNameEnv)
	fmt.Fprintf(os.Stderr, "child %s: mode %s on stderr\n", name, mode)
	fmt.Fprintf(os.Stdout, "child %s: stdout before ready\n", name)
	switch mode {
	case "ready":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		if err := WriteReady(os.Stdout, fakeReady(name)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(os.Stdout, "child %s: stdout after ready\n", name)
		<-term
		fmt.Fprintf(os.Stderr, "child %s: got SIGTERM, exiting\n", name)
		return 0
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		never := make(chan os.Signal, 1)
		signal.Notify(never, syscall.SIGUSR1)
		if err := WriteReady(os.Stdout, fakeReady(name)); err != nil {
			return 1
		}
		<-never
		return 0
	case "crash":
		fmt.Fprintf(os.Stderr, "child %s: boom, crashing before ready\n", name)
		return 3
	case "slow":
		never := make(chan os.Signal, 1)
		signal.Notify(never, syscall.SIGUSR1)
		<-never
		return 0
	case "wrong-name":
		never := make(chan os.Signal, 1)
		signal.Notify(never, syscall.SIGUSR1)
		_ = WriteReady(os.Stdout, fakeReady("someone-else"))
		<-never
		return 0
	case "launcher":
		return runLauncher(name)
	}
	fmt.Fprintf(os.Stderr, "unknown child mode %q\n", mode)
	return 2
}

// runLauncher plays `mcsim up`: it supervises a grandchild, prints its pid
// on stdout and waits to be killed.
func runLauncher(name string) int {
	s := New(zerolog.New(os.Stderr))
	p, err := s.Start(context.Background(), Spec{
		Name:    name + "-grandchild",
		Env:     []string{childModeEnv + "=ready", childNameEnv + "=" + name + "-grandchild", noRaceExitDelay},
		LogFile: filepath.Join(os.Getenv(childDirEnv), "grandchild.log"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stdout, "grandchild_pid=%d\n", p.PID())
	never := make(chan os.Signal, 1)
	signal.Notify(never, syscall.SIGUSR1)
	<-never
	return 0
}

// readPIDLine reads "grandchild_pid=N" from the launcher, skipping other lines.
func readPIDLine(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var pid int
		if _, err := fmt.Sscanf(sc.Text(), "grandchild_pid=%d", &pid); err == nil {
			return pid, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, io.ErrUnexpectedEOF
}
