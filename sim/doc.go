// Package sim is the deterministic simulator: the cluster's pure machines
// (master/primary with master/lease and master/failover, coreapp/books,
// coord, gateway.Log) driven by a discrete-event loop in virtual time
// instead of by goroutines, gRPC and the wall clock.
//
// One World is one run. It has one thread, one event heap ordered by
// (time, sequence), and one seeded PCG source from which every random
// choice is drawn (network latency and jitter, loss, gossip delays, process
// start times). No decision reads a map in iteration order, starts a
// goroutine or looks at the wall clock, so the same seed gives the same
// run, event for event: `mcsim scenario run FILE --target sim --seed N
// --json` prints the same bytes every time.
//
// The adapters (master.go, coreapp.go, gateway.go, store.go) do for the
// machines what the real drivers do: deliver events, carry out actions.
// Every message between nodes goes through the network model (net.go):
// per-link latency with jitter, loss, one-way cuts that hold a stream's
// messages until the heal, exactly the semantics of internal/faultnet on
// real processes. Process faults (crash, pause, restart, graceful stop)
// and per-node clock rates are modelled in node.go; membership (join,
// graceful leave, relayed around cuts) in membership.go with the delays
// measured on real processes.
//
// What only a simulator can see, when an answer reached a host and which
// lease a master could prove, feeds the ground-truth checks of truth.go
// (rules 2, 3 and 4). Explore (explore.go) runs seeds on every core,
// Shrink (shrink.go) makes a failing run small, and Selftest (selftest.go)
// proves every check can fail.
//
// Target (target.go) is the scenarios.Target of the simulator: the scenario
// runner drives it exactly as it drives real processes. It is also a
// scenarios.TrafficTarget: a scenario's workload runs in virtual time
// (traffic.go: the load generator of `mcsim load` and the front door;
// messages.go: Send on the coreapps and gateway.Log's messages and status
// offers; callbacks.go: each coreapp's callbacks.Outbox, callback_persist
// in the store; receiver.go: the webhook receiver). Without a workload none
// of it runs and a run is what it was before traffic existed, byte for
// byte.
//
// Sabotage (sabotage.go) disables one safety mechanism at a time for
// `mcsim scenario selftest`; only this package reaches those switches.
package sim
