package scenarios

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const crashYAML = `name: coreapp-crash
description: The owner of shard 0 crashes; a standby serves it within rule 1.
cluster:
  masters: 2
  coreapps: 3
  shards: 2
settings:
  heartbeat_interval: 1
  unhealthy_interval: 3
steps:
  - wait: served
    timeout: 15s
  - kill: owner(0)
    as: crash
  - expect: failover
    shard: 0
    after: crash
    within: rule1
  - delay: {from: primary, to: [owner(1), standby], latency: 400ms, jitter: 100ms}
    for: 10s
  - partition: [[master-1], [coreapp-1, gateway]]
  - clock: {node: primary, rate: 0.5}
    for: 20s
  - nemesis: {faults: [kill, pause, partition], every: 5s, max_down: 1}
    for: 2m
  - set: {unhealthy_interval: 5}
  - expect: takeover
    after: crash
    within: [2s, 4s]
  - sleep: 2s
checks: all
`

func TestParseTheContractsExample(t *testing.T) {
	sc, err := Parse("crash.yaml", []byte(crashYAML))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != "coreapp-crash" || sc.Cluster != (Cluster{2, 3, 2}) || string(sc.Settings) != `{"heartbeat_interval":1,"unhealthy_interval":3}` {
		t.Errorf("header = %q %+v %s", sc.Name, sc.Cluster, sc.Settings)
	}
	want := []string{"wait", "kill", "expect", "delay", "partition", "clock", "nemesis", "set", "expect", "sleep"}
	if len(sc.Steps) != len(want) {
		t.Fatalf("%d steps, want %d", len(sc.Steps), len(want))
	}
	for i, st := range sc.Steps {
		if st.Action != want[i] {
			t.Errorf("steps[%d] = %s, want %s", i, st.Action, want[i])
		}
	}
	s := sc.Steps
	if s[0].What != "served" || s[0].Timeout != 15*time.Second {
		t.Errorf("wait = %+v", s[0])
	}
	if s[1].Node.String() != "owner(0)" || s[1].As != "crash" {
		t.Errorf("kill = %+v", s[1])
	}
	if s[2].What != "failover" || s[2].Shard != 0 || s[2].After != "crash" || s[2].Within.Named != "rule1" {
		t.Errorf("expect = %+v", s[2])
	}
	if l := s[3].Link; l.From.Kind != SelPrimary || len(l.To) != 2 || l.Latency != 400*time.Millisecond || l.Jitter != 100*time.Millisecond || s[3].For != 10*time.Second {
		t.Errorf("delay = %+v %+v", s[3], l)
	}
	if g := s[4].Groups; len(g) != 2 || g[1][1].Kind != SelGateway {
		t.Errorf("partition = %+v", g)
	}
	if s[5].Clock.Rate != 0.5 || s[6].Nemesis.MaxDown != 1 || len(s[6].Nemesis.Faults) != 3 {
		t.Errorf("clock %+v nemesis %+v", s[5].Clock, s[6].Nemesis)
	}
	if b := s[8].Within; b.Min != 2*time.Second || b.Max != 4*time.Second {
		t.Errorf("range bound = %+v", b)
	}
	if len(sc.Checks) != len(Invariants) {
		t.Errorf("checks: all = %v", sc.Checks)
	}
}

// Every broken file gets every problem, each at its line and column,
// naming the field and what was expected.
func TestParseErrorsNameTheFileLineColumnAndField(t *testing.T) {
	const head = "name: t\nsteps:\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"contract's selector typo", head + "  - wait: served\n  - kill: coreap-1\n",
			[]string{`x.yaml:4:11: steps[1].kill: unknown node selector "coreap-1" (want master-N, coreapp-N, primary, secondary, owner(S), standby, random(coreapp|master))`}},
		{"unknown top-level key", "name: t\nstep:\n  - sleep: 1s\n",
			[]string{`x.yaml:2:1: unknown key "step" (want name, description, cluster, settings, workload, steps, checks)`, `x.yaml:1:1: steps: required`}},
		{"workload rate without a unit", "name: t\nworkload: {rate: 200}\nsteps:\n  - sleep: 1s\n",
			[]string{`x.yaml:2:18: workload.rate: want a string, got the number 200`}},
		{"workload rate per minute", "name: t\nworkload: {rate: 12/m}\nsteps:\n  - sleep: 1s\n",
			[]string{`x.yaml:2:18: workload.rate: want messages per second as N/s with 0 < N ≤ 100000, e.g. 200/s, got "12/m"`}},
		{"webhook fail above 100%", "name: t\nworkload: {rate: 10/s, webhook: {fail: 130%}}\nsteps:\n  - sleep: 1s\n",
			[]string{`x.yaml:2:40: workload.webhook.fail: must be 0%..100%, got 130%`}},
		{"webhook step without a workload", head + "  - webhook: {down: true}\n",
			[]string{`x.yaml:3:15: steps[0].webhook: needs a workload: section`}},
		{"expect errors without a workload", head + "  - kill: coreapp-1\n    as: crash\n  - expect: errors\n    after: crash\n    within: rule1\n",
			[]string{`x.yaml:5:13: steps[1].expect: expect: errors needs a workload: section`}},
		{"callbacks_lost without max", "name: t\nworkload: {rate: 10/s}\nsteps:\n  - expect: callbacks_lost\n",
			[]string{`x.yaml:4:13: steps[0]: expect: callbacks_lost needs max`}},
		{"traffic invariant without a workload", head + "  - sleep: 1s\nchecks: [backoff]\n",
			[]string{`x.yaml:4:10: checks[0]: backoff judges traffic: it needs a workload: section`}},
		{"webhooks.url with a workload", "name: t\nworkload: {rate: 10/s}\nsettings: {webhooks: {url: 'https://x.example/cb'}}\nsteps:\n  - sleep: 1s\n",
			[]string{`settings.webhooks.url: not with a workload`}},
		{"unknown action", head + "  - explode: coreapp-1\n",
			[]string{`x.yaml:3:5: steps[0]: unknown action "explode" (want one of clock, delay, expect`}},
		{"two actions", head + "  - kill: coreapp-1\n    stop: coreapp-2\n",
			[]string{`x.yaml:4:5: steps[0]: one action per step: "kill" and "stop" are both here`}},
		{"a sibling the action does not take", head + "  - kill: coreapp-1\n    for: 3s\n",
			[]string{`x.yaml:4:5: steps[0]: unknown key "for" for kill (want as)`}},
		{"a number for a duration", head + "  - sleep: 3\n",
			[]string{`x.yaml:3:12: steps[0].sleep: want a duration such as 500ms, 3s or 2m, got the number 3 (write 3s)`}},
		{"a negative duration", head + "  - pause: coreapp-1\n    for: -1s\n",
			[]string{`x.yaml:4:10: steps[0].for: want a positive duration`}},
		{"node beyond the cluster", head + "  - kill: coreapp-4\n",
			[]string{`x.yaml:3:11: steps[0].kill: no coreapp-4: the cluster has coreapp-1..coreapp-3 at this step`}},
		{"a started node counts", head + "  - start: coreapp\n  - kill: coreapp-4\n", nil},
		{"owner of a shard that does not exist", head + "  - kill: owner(2)\n",
			[]string{`x.yaml:3:11: steps[0].kill: no shard 2: the cluster has 2 shards at this step (0..1)`}},
		{"after a live shard change it does", head + "  - shards: 4\n  - start: coreapp\n  - kill: owner(3)\n",
			[]string{`x.yaml:3:13: steps[0].shards: 4 shards need at least 4 coreapps; the cluster has 3 at this step`}},
		{"random of nothing", head + "  - kill: random(gateway)\n",
			[]string{`x.yaml:3:11: steps[0].kill: random needs coreapp or master: node selector "random(gateway)"`}},
		{"the gateway cannot be killed", head + "  - kill: gateway\n",
			[]string{`x.yaml:3:11: steps[0].kill: gateway is not a master or coreapp`}},
		{"mark used before it is set", head + "  - expect: failover\n    shard: 0\n    after: crash\n    within: rule1\n  - kill: owner(0)\n    as: crash\n",
			[]string{`x.yaml:5:12: steps[0].after: no earlier step is marked "crash"`}},
		{"mark set twice", head + "  - kill: owner(0)\n    as: a\n  - kill: owner(1)\n    as: a\n",
			[]string{`x.yaml:6:9: steps[1].as: mark "a" already names steps[0]`}},
		{"failover without its fields", head + "  - expect: failover\n",
			[]string{"x.yaml:3:13: steps[0]: expect: failover needs shard", "needs after", "needs within"}},
		{"bad bound", head + "  - kill: owner(0)\n    as: c\n  - expect: failover\n    shard: 0\n    after: c\n    within: soon\n",
			[]string{`x.yaml:8:13: steps[1].within: want rule1, lease, rule5, a duration (4s) or a range [3s, 4s], got "soon"`}},
		{"jitter beyond the latency", head + "  - delay: {from: primary, to: coreapp-1, latency: 100ms, jitter: 200ms}\n",
			[]string{`x.yaml:3:67: steps[0].delay.jitter: must not exceed latency 100ms, got 200ms`}},
		{"backwards range", head + "  - expect: served\n    within: [4s, 3s]\n",
			[]string{`x.yaml:4:13: steps[0].within: range [4s, 3s] ends before it starts`}},
		{"settings checked as the service does", "name: t\nsettings:\n  heartbeat_interval: 5\n  unhealthy_interval: 3\nsteps:\n  - sleep: 1s\n",
			[]string{`x.yaml:4:23: settings.unhealthy_interval: must be greater than heartbeat_interval (5), got 3`}},
		{"a live set is checked against the settings in force", "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n  - set: {heartbeat_interval: 4}\n",
			[]string{`x.yaml:4:31: steps[0].set.heartbeat_interval: must be less than unhealthy_interval (3), got 4`}},
		{"settings field unknown", "name: t\nsettings:\n  heartbeat_intervall: 5\nsteps:\n  - sleep: 1s\n",
			[]string{`x.yaml:3:24: settings.heartbeat_intervall: unknown field`}},
		{"bad shard count", "name: t\ncluster: {shards: 3}\nsteps:\n  - sleep: 1s\n",
			[]string{`x.yaml:2:19: cluster.shards: must be one of 1, 2, 4, 8, 16, 32, got 3`}},
		{"not enough coreapps", "name: t\ncluster: {shards: 4}\nsteps:\n  - sleep: 1s\n",
			[]string{`cluster.coreapps: must be ≥ shards (4) so every shard has a coreapp, got 3`}},
		{"bad name", "name: Crash Test\nsteps:\n  - sleep: 1s\n",
			[]string{`x.yaml:1:7: name: must be lowercase letters, digits and '-', got "Crash Test"`}},
		{"unknown invariant", head + "  - sleep: 1s\nchecks: [single_owner, no_double]\n",
			[]string{`x.yaml:4:24: checks[1]: unknown invariant "no_double"`}},
		{"loss percent", head + "  - loss: {from: primary, to: coreapp-1, percent: 150}\n",
			[]string{`x.yaml:3:51: steps[0].loss.percent: must be in (0, 100], got 150`}},
		{"YAML syntax", "name: t\nsteps:\n  - kill: [coreapp-1\n",
			[]string{`x.yaml:3:`, `YAML:`}},
		{"duplicate key", "name: t\nname: u\nsteps:\n  - sleep: 1s\n",
			[]string{`x.yaml:2:1`, `"name"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.yaml))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("want no error, got\n%v", err)
				}
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %v, want a *ParseError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("errors:\n%v\nwant one containing %q", err, w)
				}
			}
		})
	}
}
