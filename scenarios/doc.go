// Package scenarios reads, checks and runs chaos scenario scripts: a
// cluster shape, the settings it starts with, a list of steps (faults,
// changes, waits, expectations) and the invariants judged over the whole
// run. ../shared/SCENARIOS.md is the contract for the file format, the
// commands and their --json events.
//
// A file is parsed into a YAML tree that keeps every node's line and
// column (goccy/go-yaml's AST), then decoded and validated by hand, so
// every problem is reported at once as "file:line:col: path: message",
// with what was expected. Nothing here runs anything: the runner talks to
// a Target (the real multi-process cluster, later the simulator) and the
// checkers judge only what the gateway witnessed and the nodes reported.
//
// A failing nemesis run is made into a small reproduction without any
// target here: its Outcome holds the schedule it drew, Shrink makes the
// schedule smaller while a caller's judge still sees it fail,
// ExplicitScenario writes a schedule out as plain steps, and Render
// writes any scenario back as a file.
package scenarios
