package scenarios

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Network faults and clock skew, as the runner keeps them. The runner owns
// the whole fault table of the cluster: each partition, isolate, delay and
// loss step adds a netFault (its links and the nodes it touches); heal,
// a `for` running out and the end of the run remove them; after every
// change the target gets the whole table again (Target.Network), so a
// target never has to work out what changed, and a node that missed a
// change (paused, restarted) is simply given the table again.
//
// Links compose when two faults hit the same one-way link: a cut wins,
// latencies and jitters add (two slow hops in a row), losses combine as
// independent chances (1 − (1−p)(1−q)).

// NetLink is a fault on everything one node sends to another: `settings`
// and `gateway` name the settings service and the gateway.
type NetLink struct {
	From, To        string
	Cut             bool
	Latency, Jitter time.Duration
	LossPercent     float64
}

// netFault is one network fault in force: the step (or nemesis draw)
// that made it, its links, and the nodes it touches: those it names (a
// partition's groups, isolate's node, delay's and loss's from and to; a
// nemesis's victim). heal SEL ends the faults touching SEL, and each
// touched node has a fault window for no_false_failover. Isolating X
// touches X, not every node it is cut from: otherwise isolating one
// coreapp would excuse a false failover of any other.
type netFault struct {
	id      int
	kind    string
	links   []NetLink
	touches []string
	until   time.Time // zero: until healed
}

// clockSkew is one node's clock running at rate, until a time (zero:
// until the run ends or another clock step sets it).
type clockSkew struct {
	rate  float64
	until time.Time
}

// table is the merged fault table: one link per (from, to), sorted.
func (r *runner) table() []NetLink {
	merged := map[[2]string]NetLink{}
	for _, f := range r.netFaults {
		for _, l := range f.links {
			k := [2]string{l.From, l.To}
			m, ok := merged[k]
			if !ok {
				merged[k] = l
				continue
			}
			m.Cut = m.Cut || l.Cut
			m.Latency += l.Latency
			m.Jitter += l.Jitter
			m.LossPercent = 100 - (100-m.LossPercent)*(100-l.LossPercent)/100
			merged[k] = m
		}
	}
	keys := slices.SortedFunc(maps.Keys(merged), func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
	out := make([]NetLink, 0, len(keys))
	for _, k := range keys {
		out = append(out, merged[k])
	}
	return out
}

// addNet puts a network fault in force and records its fault windows.
func (r *runner) addNet(ctx context.Context, f netFault, at time.Time) error {
	r.netSeq++
	f.id = r.netSeq
	r.netFaults = append(r.netFaults, f)
	if err := r.t.Network(ctx, r.table()); err != nil {
		// Some nodes may have taken it: give every node the table
		// without it again (best effort; the end of the run heals all).
		r.netFaults = r.netFaults[:len(r.netFaults)-1]
		_ = r.t.Network(ctx, r.table())
		return fmt.Errorf("%s: %w", f.kind, err)
	}
	for _, n := range f.touches {
		r.faults = append(r.faults, fault{node: n, kind: f.kind, start: at, net: f.id})
	}
	return nil
}

// healNet ends the network faults for which drop says so.
func (r *runner) healNet(ctx context.Context, drop func(netFault) bool) error {
	var ended []int
	kept := r.netFaults[:0:0]
	for _, f := range r.netFaults {
		if drop(f) {
			ended = append(ended, f.id)
			continue
		}
		kept = append(kept, f)
	}
	if len(ended) == 0 {
		return nil
	}
	r.netFaults = kept
	if err := r.t.Network(ctx, r.table()); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	now := r.t.Now()
	for i := range r.faults {
		if f := &r.faults[i]; f.net != 0 && f.end.IsZero() && slices.Contains(ended, f.net) {
			f.end = now
		}
	}
	return nil
}

// setClock sets a node's clock rate; rate 1 ends a skew.
func (r *runner) setClock(ctx context.Context, id string, rate float64, until time.Time) error {
	if rate != 1 {
		r.skewed[id] = true
	}
	if err := r.t.Clock(ctx, id, rate); err != nil {
		return fmt.Errorf("clock %s: %w", id, err)
	}
	r.endFault(id, "clock")
	delete(r.clocks, id)
	if rate != 1 {
		r.clocks[id] = clockSkew{rate: rate, until: until}
		r.faults = append(r.faults, fault{node: id, kind: "clock", start: r.t.Now()})
	}
	return nil
}

// netDue ends the network faults and clock skews whose `for` ran out.
func (r *runner) netDue(ctx context.Context) error {
	now := r.t.Now()
	if slices.ContainsFunc(r.netFaults, func(f netFault) bool { return !f.until.IsZero() && !now.Before(f.until) }) {
		if err := r.healNet(ctx, func(f netFault) bool { return !f.until.IsZero() && !now.Before(f.until) }); err != nil {
			return fmt.Errorf("healing the network faults whose for ran out: %w", err)
		}
		r.progress("network faults healed (their time ran out)")
	}
	if !anyDue(r.clocks, now, func(c clockSkew) time.Time { return c.until }) {
		return nil // the common case, without sorting on every look
	}
	for _, id := range slices.Sorted(maps.Keys(r.clocks)) {
		if c := r.clocks[id]; !c.until.IsZero() && !now.Before(c.until) {
			if err := r.setClock(ctx, id, 1, time.Time{}); err != nil {
				return fmt.Errorf("setting back the clock whose for ran out: %w", err)
			}
			r.progress("clock of %s back to real time", id)
		}
	}
	return nil
}

// healEverything ends every network fault and clock skew: a run leaves
// none behind. Once any network fault was set it gives every node an
// empty table, whatever the runner believes is in force (a push that
// failed halfway may have left a fault on some node); every clock a step
// ever skewed is set back. It tries all of it and reports every failure.
func (r *runner) healEverything(ctx context.Context) error {
	var errs []error
	if r.netSeq > 0 {
		if err := r.healNet(ctx, func(netFault) bool { return true }); err != nil {
			errs = append(errs, err)
		}
		if err := r.t.Network(ctx, nil); err != nil {
			errs = append(errs, fmt.Errorf("heal: %w", err))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(r.skewed)) {
		if err := r.setClock(ctx, id, 1, time.Time{}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// resolveAll resolves selectors that may also name the settings service
// and the gateway.
func (r *runner) resolveAll(ctx context.Context, sels []Selector) ([]string, error) {
	var out []string
	for _, s := range sels {
		id, err := r.resolveInfra(ctx, s)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

func (r *runner) resolveInfra(ctx context.Context, s Selector) (string, error) {
	switch s.Kind {
	case SelSettings:
		return "settings", nil
	case SelGateway:
		return "gateway", nil
	}
	return r.resolve(ctx, s)
}

// everyone is every node of the cluster now, with the settings service
// and the gateway, sorted.
func (r *runner) everyone(ctx context.Context) ([]string, error) {
	nodes, err := r.t.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster: %w", err)
	}
	ids := slices.Sorted(maps.Keys(nodes))
	return append(ids, "gateway", "settings"), nil
}

// cut is every link between the groups, both ways.
func cut(groups [][]string) []NetLink {
	var out []NetLink
	for i, a := range groups {
		for j, b := range groups {
			if i == j {
				continue
			}
			for _, x := range a {
				for _, y := range b {
					out = append(out, NetLink{From: x, To: y, Cut: true})
				}
			}
		}
	}
	return out
}

// networkStep runs partition, isolate, delay, loss and heal; it returns
// the node the step event names ("" if none).
func (r *runner) networkStep(ctx context.Context, st Step, node string, at time.Time) (string, error) {
	until := time.Time{}
	if st.For > 0 {
		until = at.Add(st.For)
	}
	switch st.Action {
	case "partition":
		var groups [][]string
		var all []string
		for _, g := range st.Groups {
			ids, err := r.resolveAll(ctx, g)
			if err != nil {
				return "", err
			}
			for _, id := range ids {
				if slices.Contains(all, id) {
					return "", fmt.Errorf("partition: %s is in two groups", id)
				}
				all = append(all, id)
			}
			groups = append(groups, ids)
		}
		r.progress("partition %v", groups)
		return "", r.addNet(ctx, netFault{kind: "partition", links: cut(groups), touches: all, until: until}, at)
	case "isolate":
		id := node
		others, err := r.everyone(ctx)
		if err != nil {
			return "", err
		}
		others = slices.DeleteFunc(others, func(o string) bool { return o == id })
		return id, r.addNet(ctx, netFault{kind: "isolate", links: cut([][]string{{id}, others}), touches: []string{id}, until: until}, at)
	case "delay", "loss":
		from := node
		to, err := r.resolveAll(ctx, st.Link.To)
		if err != nil {
			return "", err
		}
		var links []NetLink
		for _, t := range to {
			if t == from {
				continue
			}
			links = append(links, NetLink{From: from, To: t, Latency: st.Link.Latency, Jitter: st.Link.Jitter, LossPercent: st.Link.Percent})
		}
		if len(links) == 0 {
			return from, fmt.Errorf("%s: from %s to %v is no link", st.Action, from, to)
		}
		r.progress("%s from %s to %v", st.Action, from, to)
		return from, r.addNet(ctx, netFault{kind: st.Action, links: links, touches: append([]string{from}, to...), until: until}, at)
	case "heal":
		if st.Node == nil {
			return "", r.healNet(ctx, func(netFault) bool { return true })
		}
		id := node
		return id, r.healNet(ctx, func(f netFault) bool { return slices.Contains(f.touches, id) })
	}
	return "", fmt.Errorf("%s: not a network step", st.Action)
}
