package scenarios

import (
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sameScenario says how two parsed scenarios differ ("" if they do not),
// ignoring where each step was in its file.
func sameScenario(a, b *Scenario) string {
	var diffs []string
	if a.Name != b.Name || a.Description != b.Description || a.Cluster != b.Cluster {
		diffs = append(diffs, fmt.Sprintf("header %q %q %+v vs %q %q %+v", a.Name, a.Description, a.Cluster, b.Name, b.Description, b.Cluster))
	}
	if string(a.Settings) != string(b.Settings) {
		diffs = append(diffs, fmt.Sprintf("settings %s vs %s", a.Settings, b.Settings))
	}
	if fmt.Sprint(a.Checks) != fmt.Sprint(b.Checks) {
		diffs = append(diffs, fmt.Sprintf("checks %v vs %v", a.Checks, b.Checks))
	}
	if len(a.Steps) != len(b.Steps) {
		return strings.Join(append(diffs, fmt.Sprintf("%d steps vs %d", len(a.Steps), len(b.Steps))), "\n")
	}
	for i := range a.Steps {
		x, y := a.Steps[i], b.Steps[i]
		x.Line, x.Col, y.Line, y.Col = 0, 0, 0, 0
		if !reflect.DeepEqual(x, y) {
			diffs = append(diffs, fmt.Sprintf("steps[%d]: %+v\nvs         %+v", i, x, y))
		}
	}
	return strings.Join(diffs, "\n")
}

// Every library scenario, the contract's example and some awkward ones
// read back as themselves once written, are valid by the schema, and
// write the same text again.
func TestRenderRoundTrips(t *testing.T) {
	sch := compileSchema(t)
	files := map[string]string{"contract.yaml": crashYAML}
	names, err := fs.Glob(library, "library/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		b, err := fs.ReadFile(library, n)
		if err != nil {
			t.Fatal(err)
		}
		files[path.Base(n)] = string(b)
	}
	files["traffic.yaml"] = `name: traffic
settings: {callback_persist: false, callback_backoff_delay_ms: "1500"}
workload: {rate: 12.5/s, recipients: 300, webhook: {fail: 2.5%, latency: 0s}}
steps:
  - kill: owner(0)
    as: crash
  - webhook: {down: true, latency: 200ms}
    for: 20s
  - webhook: {fail: 30%}
  - expect: errors
    after: crash
    within: [1s, 4s]
  - expect: callbacks_lost
    max: 3
checks: [acked_reached, backoff]
`
	files["awkward.yaml"] = `name: "123"
description: "Two  spaces, a colon: here, # not a comment,\nand a second line; \"quotes\", 'apostrophes', ≤ 3s"
cluster: {masters: 3, coreapps: 5, shards: 4}
settings:
  heartbeat_interval: 2
  webhooks: {url: "http://localhost:9/x?a=1&b=[2]", max_concurrent_requests: 6}
steps:
  - start: master
    as: "on"
  - start: coreapp
  - shards: 2
  - set: {unhealthy_interval: 7}
  - wait: primary
    timeout: 1500ms
  - expect: no_failover
  - pause: random(coreapp)
    for: 1m30s
  - resume: secondary
  - stop: standby
  - heal: owner(1)
  - heal: all
  - partition: [[gateway, settings], [master-4], [coreapp-6, primary]]
    for: 2h
  - delay: {from: settings, to: gateway, latency: 1.25s}
  - loss: {from: gateway, to: [coreapp-1], percent: 0.001}
    for: 250us
  - clock: {node: random(master), rate: 1.0625}
  - expect: served
    after: "on"
    within: [1s, 2.5s]
  - expect: takeover
    after: "on"
    within: rule5
  - expect: no_failover
    for: 3s
  - nemesis: {faults: [clock], every: 1ns, max_down: 0}
checks: [epoch_monotonic, liveness]
`
	files["no-checks.yaml"] = "name: no-checks\nsettings: {}\nsteps:\n  - sleep: 1s\nchecks: []\n"
	for name, text := range files {
		t.Run(name, func(t *testing.T) {
			first, err := Parse(name, []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			out := Render(first, "made by TestRenderRoundTrips\n\nfrom "+name)
			again, err := Parse(name, out)
			if err != nil {
				t.Fatalf("%v\nin\n%s", err, out)
			}
			if d := sameScenario(first, again); d != "" {
				t.Errorf("read back differently:\n%s\nfrom\n%s", d, out)
			}
			if err := sch.Validate(yamlAsJSON(t, out)); err != nil {
				t.Errorf("not valid by the schema: %v\n%s", err, out)
			}
			if out2 := Render(again, "made by TestRenderRoundTrips\n\nfrom "+name); string(out2) != string(out) {
				t.Errorf("written again differently:\n%s\nthen\n%s", out, out2)
			}
			if !strings.HasPrefix(string(out), "# made by TestRenderRoundTrips\n#\n# from "+name+"\nname: ") {
				t.Errorf("header:\n%s", out)
			}
		})
	}
}

// Durations are written in one unit, exactly.
func TestDurationText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2 * time.Minute:                       "2m",
		90 * time.Second:                      "90s",
		500 * time.Millisecond:                "500ms",
		2500 * time.Millisecond:               "2.5s",
		3046875 * time.Microsecond:            "3.046875s",
		7123456789:                            "7.123456789s",
		1500:                                  "0.0000015s",
		3 * time.Hour:                         "3h",
		time.Hour + time.Nanosecond:           "3600.000000001s",
		-1500 * time.Millisecond:              "-1.5s",
		-61500 * time.Millisecond:             "-61.5s",
		61*time.Second + 100*time.Millisecond: "61.1s",
	} {
		got := durationText(d)
		if got != want {
			t.Errorf("%d ns: %q, want %q", int64(d), got, want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != d {
			t.Errorf("%q reads back as %v (%v)", got, back, err)
		}
	}
}
