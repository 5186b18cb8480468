package scenarios

import (
	"encoding/json"
	"fmt"
	"time"
)

// Scenario is one parsed and validated scenario file.
type Scenario struct {
	Name        string
	Description string
	Cluster     Cluster
	// Settings is the PATCH body applied before the nodes start (nil: none).
	Settings json.RawMessage
	// Workload is the traffic put through the cluster (nil: none).
	Workload *Workload
	Steps    []Step
	// Checks are the invariants judged over the run, in Invariants order.
	Checks []string
	// File is where it was read from ("" for the embedded library: then
	// Name says it).
	File string
}

// Cluster is the topology a scenario starts.
type Cluster struct {
	Masters, Coreapps, Shards int
}

// DefaultCluster is SCENARIOS.md's default shape.
func DefaultCluster() Cluster { return Cluster{Masters: 2, Coreapps: 3, Shards: 2} }

// Step is one step: exactly one action and its fields.
type Step struct {
	Index     int
	Line, Col int    // of the step's first key
	Action    string // the action key: "kill", "wait", "expect", …

	// Node is the selector of kill, stop, pause, resume, restart,
	// isolate and heal (heal: all has none).
	Node *Selector
	// What is the value of wait (served, primary, stable), start (coreapp,
	// master), heal ("all" or "" with Node) and expect (failover, …).
	What string
	// Duration is the value of sleep.
	Duration time.Duration
	// Groups is the value of partition.
	Groups [][]Selector
	// Link is the value of delay and loss.
	Link *Link
	// Clock is the value of clock.
	Clock *ClockSkew
	// Set is the PATCH body of set.
	Set json.RawMessage
	// Shards is the value of shards.
	Shards int
	// Nemesis is the value of nemesis.
	Nemesis *Nemesis
	// Webhook is the value of webhook.
	Webhook *WebhookPatch

	// Expectation fields (expect).
	Shard  int // -1: none given
	After  string
	Within *Bound
	Max    int // callbacks_lost's max; -1: none given

	// Common fields.
	As      string
	For     time.Duration // 0: not given
	Timeout time.Duration // 0: the default

	// Comment is written above the step by Render (one "# " line per
	// line); Parse keeps no comments, so it is "" in a parsed scenario.
	Comment string
}

// Link is a one-way network fault (delay, loss).
type Link struct {
	From    Selector
	To      []Selector
	Latency time.Duration
	Jitter  time.Duration
	Percent float64
}

// ClockSkew makes one node's clock run at Rate.
type ClockSkew struct {
	Node Selector
	Rate float64
}

// Nemesis is a seeded schedule of random faults.
type Nemesis struct {
	Faults  []string
	Every   time.Duration
	MaxDown int // -1: the spare count
}

// Selector names a node when its step begins.
type Selector struct {
	Kind  string // id, primary, secondary, owner, standby, random, settings, gateway
	ID    string // Kind id: "coreapp-2"
	Shard int    // Kind owner
	Role  string // Kind random: "coreapp" or "master"
}

// The selector kinds.
const (
	SelID        = "id"
	SelPrimary   = "primary"
	SelSecondary = "secondary"
	SelOwner     = "owner"
	SelStandby   = "standby"
	SelRandom    = "random"
	SelSettings  = "settings"
	SelGateway   = "gateway"
)

func (s Selector) String() string {
	switch s.Kind {
	case SelID:
		return s.ID
	case SelOwner:
		return fmt.Sprintf("owner(%d)", s.Shard)
	case SelRandom:
		return "random(" + s.Role + ")"
	}
	return s.Kind
}

// Bound is what a timed expectation is judged against: a named bound
// (rule1, lease, rule5), resolved with the intervals in force at the
// mark, or a fixed range.
type Bound struct {
	Named    string
	Min, Max time.Duration
}

func (b Bound) String() string {
	if b.Named != "" {
		return b.Named
	}
	if b.Min == 0 {
		return "≤ " + b.Max.String()
	}
	return fmt.Sprintf("[%v, %v]", b.Min, b.Max)
}

// The invariants of SCENARIOS.md, in the order they are judged.
var Invariants = []string{"single_owner", "epoch_monotonic", "single_primary", "no_false_failover", "liveness"}
