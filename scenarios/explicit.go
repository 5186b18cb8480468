package scenarios

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ExplicitScenario is sc with every nemesis step replaced by explicit
// steps that do to the cluster what the nemesis does with schedule (a
// run's Outcome.Schedule, or a smaller one from Shrink): the same faults,
// on the same nodes, with the same parameters, at the same offsets from
// the step's start. The steps before and after each nemesis step are kept
// as they are. A nemesis step with no fault in schedule becomes a sleep
// for its whole length.
//
// For each fault, in order:
//
//	sleep: (until the fault's offset)
//	kill|stop: NODE        → sleep: UNDO, restart: NODE
//	pause: NODE            → sleep: UNDO, resume: NODE
//	restart: NODE            (nothing to undo)
//	partition: [[NODE], [settings, every other master]]
//	isolate: NODE
//	delay: {from: NODE, to: [every other node, gateway, settings],
//	        latency: heartbeat/2, jitter: heartbeat/4}
//	loss: {from: NODE, to: [every other node, gateway, settings], percent: 30}
//	                       → sleep: UNDO, heal: NODE
//	clock: {node: NODE, rate: 0.5} → sleep: UNDO, clock: {node: NODE, rate: 1}
//
// and after the last one a sleep until the nemesis step's `for` ends. The
// first of them carries the nemesis step's `as`. The heartbeat interval
// is the one in force at the nemesis step (the settings, then every
// earlier set step).
//
// What the explicit form cannot say, and so judges differently: a nemesis
// partition, delay or loss counts as a fault on its victim only
// (nemesis.go), the same step written out counts on every node it names
// (no_false_failover then excuses more, never less). And a replay draws
// nothing from the seed where the nemesis drew its schedule, so steps
// after it that draw (random(…), standby) may pick other nodes. A caller
// that shrinks should therefore judge the explicit scenario itself, so the
// file it writes is the one it saw fail.
//
// The name, description, cluster, settings and checks are sc's (a caller
// writing a file may rename it). The result is checked as Parse checks a
// file (it is rendered and parsed again); an error says which fault does
// not fit: a kind the nemesis does not draw, faults that overlap or
// outlast the step, a fault of a step that is not a nemesis, a node the
// cluster does not have, or a heal that would also end an earlier step's
// network fault the nemesis would have left alone.
func ExplicitScenario(sc *Scenario, schedule []ScheduledFault) (*Scenario, error) {
	byStep := map[int][]ScheduledFault{}
	for _, f := range schedule {
		if f.Step < 0 || f.Step >= len(sc.Steps) || sc.Steps[f.Step].Action != "nemesis" {
			return nil, fmt.Errorf("%v: steps[%d] is not a nemesis step", f, f.Step)
		}
		byStep[f.Step] = append(byStep[f.Step], f)
	}
	out := *sc
	out.Steps, out.File = nil, ""
	hb, ui := IntervalsIn(sc.Settings, 5*time.Second, 30*time.Second)
	masters, coreapps := sc.Cluster.Masters, sc.Cluster.Coreapps
	for i, st := range sc.Steps {
		switch st.Action {
		case "set":
			hb, ui = IntervalsIn(st.Set, hb, ui)
		case "start":
			if st.What == "master" {
				masters++
			} else {
				coreapps++
			}
		}
		if st.Action != "nemesis" {
			out.Steps = append(out.Steps, st)
			continue
		}
		faults := slices.Clone(byStep[i])
		slices.SortStableFunc(faults, func(a, b ScheduledFault) int { return cmp.Compare(a.At, b.At) })
		if err := checkReplayable(sc.Steps, i, faults); err != nil {
			return nil, err
		}
		u := unroller{nemesis: st, hb: hb, masters: masters, coreapps: coreapps}
		out.Steps = append(out.Steps, u.steps(faults)...)
	}
	for i := range out.Steps {
		out.Steps[i].Index = i
	}
	parsed, err := Parse(sc.Name+".yaml", Render(&out, ""))
	if err != nil {
		return nil, fmt.Errorf("the nemesis written out as steps is not a valid scenario: %w", err)
	}
	for i := range out.Steps {
		out.Steps[i].Line, out.Steps[i].Col = parsed.Steps[i].Line, parsed.Steps[i].Col
	}
	return &out, nil
}

// nemesisTotal is how long a nemesis step lasts: its for, else a minute.
func nemesisTotal(st Step) time.Duration {
	if st.For == 0 {
		return time.Minute
	}
	return st.For
}

// checkReplayable says whether faults (sorted) can stand for the nemesis
// of steps[k] as explicit steps.
func checkReplayable(steps []Step, k int, faults []ScheduledFault) error {
	total := nemesisTotal(steps[k])
	var end time.Duration
	network := false
	for _, f := range faults {
		switch {
		case !slices.Contains(nemesisFaults, f.Kind):
			return fmt.Errorf("%v: the nemesis has no fault %q (want %s)", f, f.Kind, strings.Join(nemesisFaults, ", "))
		case f.Kind == "restart" && f.Undo != 0:
			return fmt.Errorf("%v: a restart has nothing to undo", f)
		case f.Kind != "restart" && f.Undo <= 0:
			return fmt.Errorf("%v: a %s must be undone after some time", f, f.Kind)
		case f.At < end:
			return fmt.Errorf("%v: starts before the fault before it is undone (at +%v)", f, end)
		case f.At+f.Undo > total:
			return fmt.Errorf("%v: outlasts the nemesis step (%v)", f, total)
		}
		end = f.At + f.Undo
		network = network || isNetworkFault(f.Kind)
	}
	if !network {
		return nil
	}
	if i, ok := lingeringNetworkStep(steps, k); ok {
		return fmt.Errorf("steps[%d] (%s) may still be in force when the nemesis of steps[%d] heals a fault: heal NODE would end it too, where the nemesis ends only its own (heal: all before the nemesis step makes it replayable)", i, steps[i].Action, k)
	}
	return nil
}

func isNetworkFault(kind string) bool {
	return kind == "partition" || kind == "isolate" || kind == "delay" || kind == "loss"
}

// lingeringNetworkStep finds a network step before steps[k] whose fault
// may still be in force when steps[k] begins: not ended by a heal: all,
// and without a for that surely ran out. Surely: the sleeps between them
// (and the steps that take a known time) add up to it at least.
func lingeringNetworkStep(steps []Step, k int) (int, bool) {
	for i := k - 1; i >= 0; i-- {
		st := steps[i]
		if st.Action == "heal" && st.What == "all" {
			return 0, false
		}
		if !isNetworkFault(st.Action) {
			continue
		}
		if st.For == 0 || minElapsed(steps[i+1:k]) < st.For {
			return i, true
		}
	}
	return 0, false
}

// minElapsed is the least time steps take: the ones that last a known
// time; waits and expectations may take none.
func minElapsed(steps []Step) time.Duration {
	var d time.Duration
	for _, st := range steps {
		switch {
		case st.Action == "sleep":
			d += st.Duration
		case st.Action == "nemesis":
			d += nemesisTotal(st)
		case st.Action == "expect" && st.What == "no_failover":
			d += st.For
		}
	}
	return d
}

// unroller writes one nemesis step's faults out as steps.
type unroller struct {
	nemesis           Step
	hb                time.Duration
	masters, coreapps int
	out               []Step
}

func (u *unroller) steps(faults []ScheduledFault) []Step {
	total := nemesisTotal(u.nemesis)
	var cursor time.Duration // from the nemesis step's start
	for n, f := range faults {
		u.sleep(f.At-cursor, "")
		do, undo := u.fault(f)
		do.Comment = fmt.Sprintf("fault %d of %d at +%s: %s %s", n+1, len(faults), durationText(f.At), f.Kind, f.Node)
		if f.Undo > 0 {
			do.Comment += fmt.Sprintf(", undone %s later", durationText(f.Undo))
		}
		u.add(do)
		cursor = f.At
		if f.Undo > 0 {
			u.sleep(f.Undo, "")
			u.add(undo)
			cursor += f.Undo
		}
	}
	u.sleep(total-cursor, fmt.Sprintf("the rest of the nemesis's %s", durationText(total)))
	if len(u.out) > 0 {
		u.out[0].As = u.nemesis.As
		intro := fmt.Sprintf("%s for %s (steps[%d] of the original),\nits schedule written out (times from its start):", describeNemesis(u.nemesis.Nemesis), durationText(total), u.nemesis.Index)
		u.out[0].Comment = strings.TrimSuffix(intro+"\n"+u.out[0].Comment, "\n")
	}
	return u.out
}

func describeNemesis(n *Nemesis) string {
	return "nemesis " + actionText(Step{Action: "nemesis", Nemesis: n})
}

func (u *unroller) add(st Step) {
	st.Shard = -1
	u.out = append(u.out, st)
}

// sleep adds a sleep of d, if there is any time to let pass.
func (u *unroller) sleep(d time.Duration, comment string) {
	if d > 0 {
		u.add(Step{Action: "sleep", Duration: d, Comment: comment})
	}
}

// fault is the step that does f and the one that undoes it (when it is
// undone).
func (u *unroller) fault(f ScheduledFault) (do, undo Step) {
	victim := Selector{Kind: SelID, ID: f.Node}
	heal := Step{Action: "heal", Node: &victim}
	switch f.Kind {
	case "kill", "stop":
		return Step{Action: f.Kind, Node: &victim}, Step{Action: "restart", Node: &victim}
	case "pause":
		return Step{Action: "pause", Node: &victim}, Step{Action: "resume", Node: &victim}
	case "restart":
		return Step{Action: "restart", Node: &victim}, Step{}
	case "clock":
		return Step{Action: "clock", Clock: &ClockSkew{Node: victim, Rate: nemesisClockRate}},
			Step{Action: "clock", Clock: &ClockSkew{Node: victim, Rate: 1}}
	case "partition":
		side := []Selector{{Kind: SelSettings}}
		for _, id := range u.nodes("master") {
			if id != f.Node {
				side = append(side, Selector{Kind: SelID, ID: id})
			}
		}
		return Step{Action: "partition", Groups: [][]Selector{{victim}, side}}, heal
	case "isolate":
		return Step{Action: "isolate", Node: &victim}, heal
	}
	// delay, loss: everything the victim sends, to every other node.
	var to []Selector
	for _, id := range append(u.nodes("master"), u.nodes("coreapp")...) {
		if id != f.Node {
			to = append(to, Selector{Kind: SelID, ID: id})
		}
	}
	to = append(to, Selector{Kind: SelGateway}, Selector{Kind: SelSettings})
	link := &Link{From: victim, To: to}
	if f.Kind == "delay" {
		link.Latency, link.Jitter = nemesisDelay(u.hb)
	} else {
		link.Percent = nemesisLossPercent
	}
	return Step{Action: f.Kind, Link: link}, heal
}

// nodes are the ids of a role's nodes at the nemesis step: the cluster's
// and those earlier start steps added.
func (u *unroller) nodes(role string) []string {
	n := u.coreapps
	if role == "master" {
		n = u.masters
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", role, i+1)
	}
	return ids
}
