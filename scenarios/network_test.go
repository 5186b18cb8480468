package scenarios

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// show is a fault table as a test reads it: one link per word.
func show(links []NetLink) string {
	var out []string
	for _, l := range links {
		w := l.From + ">" + l.To
		if l.Cut {
			w += ":cut"
		}
		if l.Latency > 0 {
			w += fmt.Sprintf(":%v±%v", l.Latency, l.Jitter)
		}
		if l.LossPercent > 0 {
			w += fmt.Sprintf(":%g%%", l.LossPercent)
		}
		out = append(out, w)
	}
	return "[" + strings.Join(out, " ") + "]"
}

// The tables the runner sets, step by step: what each network step puts
// in force, how faults on one link compose, and what heal and `for` take
// away. Every run ends by giving every node an empty table, whatever the
// runner believes is in force: a run leaves no fault.
func TestNetworkStepsSetTheTable(t *testing.T) {
	const head = "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n"
	for _, tc := range []struct {
		name, steps string
		tables      []string
	}{
		{"a partition both ways, healed by its for",
			"  - partition: [[primary], [owner(1)]]\n    for: 2s\n  - sleep: 3s\n",
			[]string{"[coreapp-2>master-1:cut master-1>coreapp-2:cut]", "[]", "[]"}},
		{"settings and gateway may be named",
			"  - partition: [[coreapp-1], [settings, gateway]]\n  - heal: all\n",
			[]string{"[coreapp-1>gateway:cut coreapp-1>settings:cut gateway>coreapp-1:cut settings>coreapp-1:cut]", "[]", "[]"}},
		{"isolate cuts a node from every other, settings and gateway too",
			"  - isolate: coreapp-3\n    for: 1s\n  - sleep: 2s\n",
			[]string{"[coreapp-1>coreapp-3:cut coreapp-2>coreapp-3:cut coreapp-3>coreapp-1:cut coreapp-3>coreapp-2:cut coreapp-3>gateway:cut coreapp-3>master-1:cut coreapp-3>master-2:cut coreapp-3>settings:cut gateway>coreapp-3:cut master-1>coreapp-3:cut master-2>coreapp-3:cut settings>coreapp-3:cut]", "[]", "[]"}},
		{"delay and loss are one way; on one link they compose",
			"  - delay: {from: primary, to: [coreapp-1, coreapp-2], latency: 400ms, jitter: 100ms}\n  - loss: {from: master-1, to: coreapp-1, percent: 50}\n  - delay: {from: master-1, to: coreapp-1, latency: 100ms}\n  - loss: {from: master-1, to: coreapp-1, percent: 50}\n",
			[]string{
				"[master-1>coreapp-1:400ms±100ms master-1>coreapp-2:400ms±100ms]",
				"[master-1>coreapp-1:400ms±100ms:50% master-1>coreapp-2:400ms±100ms]",
				"[master-1>coreapp-1:500ms±100ms:50% master-1>coreapp-2:400ms±100ms]",
				"[master-1>coreapp-1:500ms±100ms:75% master-1>coreapp-2:400ms±100ms]",
				"[]", "[]"}},
		{"heal SEL ends only the faults that touch it",
			"  - partition: [[coreapp-1], [master-1]]\n  - delay: {from: coreapp-2, to: master-2, latency: 1s}\n  - heal: coreapp-2\n  - sleep: 1s\n",
			[]string{"[coreapp-1>master-1:cut master-1>coreapp-1:cut]",
				"[coreapp-1>master-1:cut coreapp-2>master-2:1s±0s master-1>coreapp-1:cut]",
				"[coreapp-1>master-1:cut master-1>coreapp-1:cut]", "[]", "[]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.failoverAfter = 0
			out, _ := runFake(t, f, head+tc.steps+"checks: [single_owner]\n")
			var got []string
			for _, tb := range f.tables {
				got = append(got, show(tb))
			}
			if !slices.Equal(got, tc.tables) {
				t.Errorf("tables:\n got %q\nwant %q", got, tc.tables)
			}
			if !out.OK {
				t.Errorf("outcome %+v", out)
			}
		})
	}
}

// A partition is a fault for no_false_failover on every node it touches,
// until it heals; a declaration it does not explain is still caught.
func TestNetworkFaultsExplainDeclarations(t *testing.T) {
	f := newFake()
	out, evs := runFake(t, f, "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n  - partition: [[primary], [owner(0)]]\n    as: cut\n  - expect: failover\n    shard: 0\n    after: cut\n    within: rule1\n  - heal: all\nchecks: [no_false_failover]\n")
	if !out.OK {
		t.Errorf("outcome %+v", out)
	}
	steps := eventsOf(evs, "step")
	if steps[0]["action"] != "partition" || steps[0]["phase"] != "begin" {
		t.Errorf("first step event %v", steps[0])
	}

	f = newFake()
	f.at(5*time.Second, func() {
		f.declarations = append(f.declarations, Declaration{At: f.now, Master: "master-1", Coreapp: "coreapp-2"})
	})
	out, _ = runFake(t, f, "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n  - delay: {from: coreapp-3, to: master-2, latency: 2s}\n  - sleep: 6s\nchecks: [no_false_failover]\n")
	assertViolation(t, out, "no_false_failover", "master-1 declared coreapp-2 unhealthy")
}

// A clock step sets the node's rate, and its for sets it back; the run
// sets back every clock still skewed at its end.
func TestClockSkewIsUndone(t *testing.T) {
	f := newFake()
	out, evs := runFake(t, f, "name: t\nsteps:\n  - clock: {node: primary, rate: 0.5}\n    for: 2s\n  - clock: {node: coreapp-2, rate: 1.5}\n  - sleep: 3s\nchecks: [single_owner]\n")
	// At the end every clock a step skewed is set back, master-1's again.
	want := []string{"master-1@0s=0.5", "coreapp-2@0s=1.5", "master-1@2s=1", "coreapp-2@3s=1", "master-1@3s=1"}
	if !slices.Equal(f.clocks, want) || !out.OK {
		t.Errorf("clocks %v, want %v (outcome %+v)", f.clocks, want, out)
	}
	if s := eventsOf(evs, "step"); s[0]["node"] != "master-1" {
		t.Errorf("the clock step names %v, want master-1", s[0]["node"])
	}
}

// A nemesis with network faults heals each before the next and ends with
// an empty table.
func TestNemesisNetworkFaultsHealBeforeTheNext(t *testing.T) {
	f := newFake()
	f.failoverAfter, f.takeoverAfter = 0, 0
	out, _ := runFake(t, f, "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n  - nemesis: {faults: [partition, isolate, delay, loss, clock], every: 4s}\n    for: 60s\nchecks: [single_owner]\n")
	if !out.OK {
		t.Errorf("outcome %+v", out)
	}
	if len(f.tables) < 4 {
		t.Fatalf("%d tables set in 60 s, want one per fault and its heal", len(f.tables)+len(f.clocks))
	}
	for i, tb := range f.tables {
		if i%2 == 1 && len(tb) != 0 {
			t.Errorf("table %d = %s: a fault not healed before the next", i, show(tb))
		}
	}
	if last := f.tables[len(f.tables)-1]; len(last) != 0 {
		t.Errorf("last table %s, want empty", show(last))
	}
}

// The coreapps' half of single_primary: commands accepted in growing lease
// epochs hold; a coreapp that took a deposed master's command after the
// new primary's is caught, and refusals do not count.
func TestFencedCommands(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	good := []Command{
		{At: at(0), Coreapp: "coreapp-1", Master: "master-1", Kind: "assign", LeaseEpoch: 1, Accepted: true},
		{At: at(5), Coreapp: "coreapp-1", Master: "master-2", Kind: "release", LeaseEpoch: 2, Accepted: true},
		// The deposed master, its clock slow, still sends: refused.
		{At: at(6), Coreapp: "coreapp-1", Master: "master-1", Kind: "assign", LeaseEpoch: 1, Accepted: false},
		// Another coreapp has its own history.
		{At: at(7), Coreapp: "coreapp-2", Master: "master-1", Kind: "assign", LeaseEpoch: 1, Accepted: true},
	}
	// A restarted coreapp remembers no lease epoch: its new run starts
	// over (run 1), and what it accepts is judged on its own.
	good = append(good, Command{At: at(8), Coreapp: "coreapp-1", Run: 1, Master: "master-1", Kind: "assign", LeaseEpoch: 1, Accepted: true})
	if v := checkFencedCommands(good); len(v) != 0 {
		t.Errorf("violations on a good history: %v", v)
	}
	bad := slices.Clone(good)
	bad[2].Accepted = true
	v := checkFencedCommands(bad)
	if len(v) != 1 || v[0].Invariant != "single_primary" ||
		!strings.Contains(v[0].Details, "coreapp-1 accepted assign from master-1 at lease epoch 1 (21:00:06.000) after accepting release from master-2 at lease epoch 2") {
		t.Errorf("violations on a bad history: %v", v)
	}
	// A heartbeat of the new primary raises the bar as a command does.
	heard := []Command{
		{At: at(0), Coreapp: "coreapp-3", Master: "master-1", Kind: "heartbeat", LeaseEpoch: 1, Accepted: true},
		{At: at(5), Coreapp: "coreapp-3", Master: "master-2", Kind: "heartbeat", LeaseEpoch: 2, Accepted: true},
		{At: at(6), Coreapp: "coreapp-3", Master: "master-1", Kind: "assign", LeaseEpoch: 1, Accepted: false},
	}
	if v := checkFencedCommands(heard); len(v) != 0 {
		t.Errorf("violations when the old epoch was refused: %v", v)
	}
	heard[2].Accepted = true
	if v := checkFencedCommands(heard); len(v) != 1 || !strings.Contains(v[0].Details, "coreapp-3 accepted assign from master-1 at lease epoch 1 (21:00:06.000) after a heartbeat from master-2 at lease epoch 2") {
		t.Errorf("violations when a coreapp took the old epoch after the new primary's heartbeat: %v", v)
	}
	// And through a run: the fake's coreapp reports it.
	f := newFake()
	f.commands = bad
	out, _ := runFake(t, f, "name: t\nsteps:\n  - sleep: 1s\nchecks: [single_primary]\n")
	assertViolation(t, out, "single_primary", "coreapp-1 accepted assign from master-1 at lease epoch 1")
}

// isolated is the table of isolate: coreapp-3 in the default cluster, as
// the fake logs it.
const isolated = "coreapp-1>coreapp-3 coreapp-2>coreapp-3 coreapp-3>coreapp-1 coreapp-3>coreapp-2 coreapp-3>gateway coreapp-3>master-1 coreapp-3>master-2 coreapp-3>settings gateway>coreapp-3 master-1>coreapp-3 master-2>coreapp-3 settings>coreapp-3"

// Findings of the review of the fault layer, each a test that failed
// before its fix.
func TestNetworkReviewFindings(t *testing.T) {
	const head = "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n"
	t.Run("a restart does not end a clock skew's fault window", func(t *testing.T) {
		f := newFake()
		f.at(12*time.Second, func() {
			f.declarations = append(f.declarations, Declaration{At: f.now, Master: "master-1", Coreapp: "coreapp-2"})
		})
		out, _ := runFake(t, f, head+"  - clock: {node: master-1, rate: 2}\n    for: 20s\n  - sleep: 1s\n  - restart: master-1\n  - sleep: 14s\nchecks: [no_false_failover]\n")
		if !out.OK {
			t.Errorf("outcome %+v", out)
		}
	})
	t.Run("isolating one coreapp excuses no false failover of another", func(t *testing.T) {
		f := newFake()
		f.at(5*time.Second, func() {
			f.declarations = append(f.declarations, Declaration{At: f.now, Master: "master-1", Coreapp: "coreapp-2"})
		})
		out, _ := runFake(t, f, head+"  - isolate: coreapp-3\n    for: 1s\n  - sleep: 6s\nchecks: [no_false_failover]\n")
		assertViolation(t, out, "no_false_failover", "master-1 declared coreapp-2 unhealthy")
	})
	t.Run("heal SEL leaves a fault that only cuts SEL's links to another", func(t *testing.T) {
		f := newFake()
		f.failoverAfter = 0
		runFake(t, f, head+"  - isolate: coreapp-3\n  - heal: coreapp-1\n  - pause: coreapp-2\n  - heal: coreapp-3\n")
		want := []string{"network [" + isolated + "]", "pause coreapp-2", "network []", "resume coreapp-2", "network []"}
		if !slices.Equal(f.log, want) {
			t.Errorf("log %q\nwant %q: the isolation healed only by heal: coreapp-3", f.log, want)
		}
	})
	t.Run("a push that fails halfway is rolled back and healed at the end", func(t *testing.T) {
		f := newFake()
		f.failoverAfter, f.failNetwork = 0, 1
		out, _ := runFake(t, f, head+"  - partition: [[coreapp-1], [master-1]]\n  - sleep: 1s\n")
		var got []string
		for _, tb := range f.tables {
			got = append(got, show(tb))
		}
		want := []string{"[coreapp-1>master-1:cut master-1>coreapp-1:cut]", "[]", "[]"}
		if out.OK || out.Aborted == "" || !slices.Equal(got, want) {
			t.Errorf("outcome %+v, tables %q, want the failed step to fail the run and %q", out, got, want)
		}
	})
}
