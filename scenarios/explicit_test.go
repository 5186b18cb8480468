package scenarios

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// timedTarget is the fake with a transcript of everything done to the
// cluster, each line with its offset from the cluster's start.
type timedTarget struct {
	*fakeTarget
	t0   time.Time
	done []string
}

func newTimed() *timedTarget {
	f := newFake()
	return &timedTarget{fakeTarget: f, t0: f.now}
}

func (t *timedTarget) note(format string, args ...any) {
	t.done = append(t.done, fmt.Sprintf("+%v ", t.now.Sub(t.t0))+fmt.Sprintf(format, args...))
}

func (t *timedTarget) Kill(ctx context.Context, id string) error {
	t.note("kill %s", id)
	return t.fakeTarget.Kill(ctx, id)
}

func (t *timedTarget) Stop(ctx context.Context, id string) error {
	t.note("stop %s", id)
	return t.fakeTarget.Stop(ctx, id)
}

func (t *timedTarget) Pause(ctx context.Context, id string) error {
	t.note("pause %s", id)
	return t.fakeTarget.Pause(ctx, id)
}

func (t *timedTarget) Resume(ctx context.Context, id string) error {
	t.note("resume %s", id)
	return t.fakeTarget.Resume(ctx, id)
}

func (t *timedTarget) Restart(ctx context.Context, id string) error {
	t.note("restart %s", id)
	return t.fakeTarget.Restart(ctx, id)
}

func (t *timedTarget) Network(ctx context.Context, links []NetLink) error {
	t.note("network %v", links)
	return t.fakeTarget.Network(ctx, links)
}

func (t *timedTarget) Clock(ctx context.Context, id string, rate float64) error {
	t.note("clock %s %v", id, rate)
	return t.fakeTarget.Clock(ctx, id, rate)
}

// soakYAML is nemesis-soak with every fault, drawn often.
const soakYAML = `name: soak
cluster: {masters: 2, coreapps: 4, shards: 2}
settings: {heartbeat_interval: 2, unhealthy_interval: 6}
steps:
  - wait: stable
  - nemesis: {faults: [kill, stop, pause, restart, partition, isolate, delay, loss, clock], every: 3s}
    for: 45s
    as: chaos
  - sleep: 5s
checks: all
`

// A run's nemesis leaves its schedule in the Outcome: the faults it did,
// in order, one at a time, timed from the nemesis step's start.
func TestRunRecordsTheNemesisSchedule(t *testing.T) {
	tt := newTimed()
	sc, err := Parse("soak.yaml", []byte(soakYAML))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Run(t.Context(), tt, sc, Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Schedule) < 5 {
		t.Fatalf("schedule %v: want the faults of 45 s at every ~3 s", out.Schedule)
	}
	// The nemesis starts when wait: stable ends; the fake is stable at
	// once, after one unhealthy_interval.
	start := 6 * time.Second
	var end time.Duration
	var did []string
	for i, f := range out.Schedule {
		if f.Step != 1 || f.At < end || f.At+f.Undo > 45*time.Second {
			t.Errorf("schedule[%d] = %v: not of steps[1], or overlapping the one before (ends +%v), or past its end", i, f, end)
		}
		if want := 1500 * time.Millisecond; f.Kind == "restart" && f.Undo != 0 || f.Kind != "restart" && f.Undo != want && f.At+f.Undo != 45*time.Second {
			t.Errorf("schedule[%d] = %v: want undone every/2 later", i, f)
		}
		end = f.At + f.Undo
		did = append(did, fmt.Sprintf("+%v %s %s", start+f.At, f.Kind, f.Node))
	}
	// Each drawn fault is what the target saw first at that moment.
	var first []string
	seen := map[string]bool{}
	for _, line := range tt.done {
		at, _, _ := strings.Cut(line, " ")
		if !seen[at] {
			seen[at] = true
			first = append(first, line)
		}
	}
	for _, d := range did {
		at, what, _ := strings.Cut(d, " ")
		kind, node, _ := strings.Cut(what, " ")
		i := slices.IndexFunc(first, func(l string) bool { return strings.HasPrefix(l, at+" ") })
		if i < 0 {
			t.Errorf("%s: the target saw nothing then\n%s", d, strings.Join(tt.done, "\n"))
			continue
		}
		if l := first[i]; !strings.Contains(l, kind+" "+node) && !strings.HasPrefix(strings.TrimPrefix(l, at+" "), "network") {
			t.Errorf("%s: the target saw %q", d, l)
		}
	}
	// A scenario without a nemesis has no schedule.
	out, _ = runFake(t, newFake(), "name: t\nsteps:\n  - sleep: 1s\n")
	if out.Schedule != nil {
		t.Errorf("schedule %v without a nemesis", out.Schedule)
	}
}

// The nemesis written out as steps does to the cluster exactly what the
// nemesis did, at the same moments: every fault kind, over seeds.
func TestExplicitScenarioReplaysTheNemesis(t *testing.T) {
	sc, err := Parse("soak.yaml", []byte(soakYAML))
	if err != nil {
		t.Fatal(err)
	}
	sch := compileSchema(t)
	kinds := map[string]bool{}
	for seed := uint64(1); seed <= 6; seed++ {
		nem := newTimed()
		out, err := Run(t.Context(), nem, sc, Options{Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range out.Schedule {
			kinds[f.Kind] = true
		}
		ex, err := ExplicitScenario(sc, out.Schedule)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if slices.ContainsFunc(ex.Steps, func(st Step) bool { return st.Action == "nemesis" }) {
			t.Fatalf("seed %d: a nemesis step is left", seed)
		}
		if err := sch.Validate(yamlAsJSON(t, Render(ex, "replay"))); err != nil {
			t.Errorf("seed %d: not valid by the schema: %v", seed, err)
		}
		rep := newTimed()
		exOut, err := Run(t.Context(), rep, ex, Options{Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if a, b := strings.Join(nem.done, "\n"), strings.Join(rep.done, "\n"); a != b {
			t.Errorf("seed %d: the nemesis did\n%s\nits steps did\n%s\nthe steps:\n%s", seed, a, b, Render(ex, ""))
		}
		if exOut.Duration != out.Duration || fmt.Sprint(exOut.Violations) != fmt.Sprint(out.Violations) {
			t.Errorf("seed %d: the replay took %v with %v; the nemesis run %v with %v", seed, exOut.Duration, exOut.Violations, out.Duration, out.Violations)
		}
		if exOut.Schedule != nil {
			t.Errorf("seed %d: the replay drew %v", seed, exOut.Schedule)
		}
	}
	for _, k := range nemesisFaults {
		if !kinds[k] {
			t.Errorf("no seed drew a %s: the replay of it is untested", k)
		}
	}
}

// A restarted running coreapp that is then declared unhealthy is judged
// alike whether a nemesis or a restart step restarted it: the restart
// explains the declaration.
func TestARestartStepExplainsADeclarationAsTheNemesisRestartDoes(t *testing.T) {
	f := newFake()
	f.at(1500*time.Millisecond, func() {
		f.declarations = append(f.declarations, Declaration{At: f.now, Master: "master-1", Coreapp: "coreapp-2"})
	})
	out, _ := runFake(t, f, "name: t\nsettings: {heartbeat_interval: 1, unhealthy_interval: 3}\nsteps:\n  - sleep: 1s\n  - restart: coreapp-2\n  - sleep: 2s\nchecks: [no_false_failover]\n")
	if len(out.Violations) != 0 {
		t.Errorf("violations %v", out.Violations)
	}
}

// TestExplicitTranscripts runs testdata/explicit/*.txt. Regenerate with
// go test ./scenarios -run TestExplicitTranscripts -rewrite and review
// the diff.
//
//	scenario            the input is a scenario file; prints ok or the
//	                    problems
//	explicit            the input is a schedule, one fault a line as
//	                    ScheduledFault prints it ("steps[1] +3s kill
//	                    coreapp-2 for 3s"); prints the scenario with its
//	                    nemesis written out as steps, or the error
func TestExplicitTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata/explicit", func(t *testing.T, path string) {
		var sc *Scenario
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "scenario":
				var err error
				if sc, err = Parse("t.yaml", []byte(d.Input)); err != nil {
					return err.Error() + "\n"
				}
				return "ok\n"
			case "explicit":
				var schedule []ScheduledFault
				for line := range strings.SplitSeq(strings.TrimSpace(d.Input), "\n") {
					if line != "" {
						schedule = append(schedule, parseFault(t, d.Pos, line))
					}
				}
				ex, err := ExplicitScenario(sc, schedule)
				if err != nil {
					return "error: " + err.Error() + "\n"
				}
				return string(Render(ex, ""))
			}
			t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
			return ""
		})
	})
}

// parseFault reads a fault as ScheduledFault.String writes it.
func parseFault(t *testing.T, pos, line string) ScheduledFault {
	t.Helper()
	var f ScheduledFault
	var at, undo string
	n, _ := fmt.Sscanf(line, "steps[%d] +%s %s %s for %s", &f.Step, &at, &f.Kind, &f.Node, &undo)
	if n < 4 {
		t.Fatalf("%s: %q: want steps[N] +AT KIND NODE [for UNDO]", pos, line)
	}
	var err error
	if f.At, err = time.ParseDuration(at); err != nil {
		t.Fatalf("%s: %q: %v", pos, line, err)
	}
	if n == 5 {
		if f.Undo, err = time.ParseDuration(undo); err != nil {
			t.Fatalf("%s: %q: %v", pos, line, err)
		}
	}
	if got := f.String(); got != line {
		t.Fatalf("%s: %q reads back as %q", pos, line, got)
	}
	return f
}
