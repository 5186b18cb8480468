// Package procs supervises the OS processes of a local mcsim cluster: every
// master and coreapp that `mcsim up` launches runs as its own process of the
// same binary, and chaos scenarios kill, pause and resume them through this
// package.
//
// The contract with a child is small. The child binds its listeners on port
// 0, then prints ONE JSON line on stdout announcing the real addresses
// (WriteReady). The Supervisor waits for that line, so there is no race for
// free ports and no polling of health endpoints to know a node is up. Every
// other byte the child writes (stderr from the start, stdout after the ready
// line) is appended to the child's log file.
//
// Linux only. Two kernel features keep a cluster from leaking processes:
//
//   - Pdeathsig = SIGKILL: if the launcher dies, even by SIGKILL, the kernel
//     kills every child. The kernel tracks the parent THREAD, not the
//     process: a child gets the signal when the OS thread that forked it
//     exits. Go threads come and go, so the Supervisor forks every child
//     from one goroutine locked to its OS thread (runtime.LockOSThread) that
//     lives until Close. Close ends that goroutine, which ends the thread:
//     any child still alive then is killed by the kernel.
//   - Setpgid: each child is the leader of its own process group, so a
//     Ctrl-C in the terminal (SIGINT to the foreground group) reaches only the
//     launcher, which then stops the children itself, in its own order.
//
// On other systems Start returns an error; the rest of the package compiles
// so that importers build everywhere.
package procs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Ready is what a child announces on stdout, as one JSON line, once it is
// serving:
//
//	{"ready":{"node_id":"coreapp-1","grpc":"127.0.0.1:41234","gossip":"127.0.0.1:41235","pid":1234}}
type Ready struct {
	NodeID string `json:"node_id"`
	GRPC   string `json:"grpc"`
	Gossip string `json:"gossip,omitempty"`
	HTTP   string `json:"http,omitempty"`
	PID    int    `json:"pid"`
}

// readyLine is the envelope that tells a ready line apart from any other
// JSON a child might print (such as a log line on stdout).
type readyLine struct {
	Ready *Ready `json:"ready"`
}

// WriteReady is the child side of the contract: it writes r as one JSON line
// in a single Write, so it cannot interleave with other output. Call it once,
// after every listener is bound. r.NodeID must be set; r.PID should be
// os.Getpid() (the Supervisor fills it in when it is 0).
func WriteReady(w io.Writer, r Ready) error {
	if r.NodeID == "" {
		return errors.New("procs: ready.node_id: must not be empty")
	}
	b, err := json.Marshal(readyLine{Ready: &r})
	if err != nil {
		return fmt.Errorf("procs: encode ready line: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("procs: write ready line: %w", err)
	}
	return nil
}

// parseReady reports whether line is a ready line. ok is false for any other
// output (it goes to the log). err is set when the line is a ready envelope
// but its contents are unusable.
func parseReady(line []byte) (r Ready, ok bool, err error) {
	line = bytes.TrimSpace(line)
	if !bytes.HasPrefix(line, []byte("{")) || !bytes.Contains(line, []byte(`"ready"`)) {
		return Ready{}, false, nil
	}
	var env readyLine
	if json.Unmarshal(line, &env) != nil || env.Ready == nil {
		return Ready{}, false, nil
	}
	if env.Ready.NodeID == "" {
		return Ready{}, true, fmt.Errorf("ready line %q: node_id: must not be empty", line)
	}
	return *env.Ready, true, nil
}
