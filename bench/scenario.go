package bench

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Config is a bench's cluster: the topology and interval flags of
// `mcsim up`.
type Config struct {
	Masters, Coreapps, Shards int
	Heartbeat, Unhealthy      time.Duration
	// Within, when not zero, is the bound the scenario's expectation is
	// judged by instead of the kind's rule (Windows' forced).
	Within time.Duration
}

// Validate names the flag at fault. The cluster shape and the settings
// are checked again, in full, when the generated scenario is parsed.
func (c Config) Validate() error {
	for _, iv := range []struct {
		flag string
		d    time.Duration
	}{{"--heartbeat-interval", c.Heartbeat}, {"--unhealthy-interval", c.Unhealthy}} {
		if iv.d < time.Second || iv.d%time.Second != 0 {
			return fmt.Errorf("%s: must be whole seconds ≥ 1s (it sets a setting in seconds), got %v", iv.flag, iv.d)
		}
	}
	return nil
}

// Phase is where in the heartbeat cycle a run's fault falls: a seeded
// fraction of the heartbeat interval, to the millisecond, waited out
// after the cluster is stable and before the fault. On real processes
// the cycle's phase is not known, only made to vary; a seed draws the
// same wait on every target.
func Phase(seed uint64, heartbeat time.Duration) time.Duration {
	rng := rand.New(rand.NewPCG(seed, seed^0x62656e6368))
	return time.Duration(rng.Int64N(int64(heartbeat/time.Millisecond))) * time.Millisecond
}

// ScenarioYAML is one run of a bench as a scenario file (SCENARIOS.md):
// wait for a stable cluster, wait out the phase, apply the kind's fault
// (marked "fault"), expect the kind's recovery within its rule, then wait
// until every shard is served again so that every shard that moved is in
// the gateway's record.
func ScenarioYAML(k Kind, c Config, phase time.Duration) []byte {
	hb, ui := c.Heartbeat, c.Unhealthy
	within := k.Rule()
	if c.Within > 0 {
		within = c.Within.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "name: bench-%s\n", k)
	fmt.Fprintf(&b, "description: mcsim bench %s, the fault %v into the heartbeat cycle.\n", k, phase)
	fmt.Fprintf(&b, "cluster: {masters: %d, coreapps: %d, shards: %d}\n", c.Masters, c.Coreapps, c.Shards)
	fmt.Fprintf(&b, "settings: {heartbeat_interval: %d, unhealthy_interval: %d}\n", hb/time.Second, ui/time.Second)
	b.WriteString("steps:\n")
	// stable waits for one quiet unhealthy_interval on top of the start.
	fmt.Fprintf(&b, "  - wait: stable\n    timeout: %v\n", 30*time.Second+2*(ui+hb))
	if phase > 0 {
		fmt.Fprintf(&b, "  - sleep: %v\n", phase)
	}
	switch k {
	case Failover:
		b.WriteString("  - kill: owner(0)\n    as: fault\n")
	case Takeover:
		b.WriteString("  - kill: primary\n    as: fault\n")
	case Handover:
		b.WriteString("  - stop: owner(0)\n    as: fault\n")
	case Pause:
		// Resumed after the latest moment rule 1 allows a failover,
		// with room for ε: past unhealthy_interval by a whole cycle.
		fmt.Fprintf(&b, "  - pause: owner(0)\n    for: %v\n    as: fault\n", ui+hb+2*time.Second)
	}
	if k == Takeover {
		fmt.Fprintf(&b, "  - expect: takeover\n    after: fault\n    within: %s\n", within)
	} else {
		fmt.Fprintf(&b, "  - expect: failover\n    shard: 0\n    after: fault\n    within: %s\n", within)
	}
	fmt.Fprintf(&b, "  - wait: served\n    timeout: %v\n", 10*time.Second+2*(ui+hb))
	b.WriteString("checks: all\n")
	return []byte(b.String())
}
