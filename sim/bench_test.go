package sim

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mcsim/mcsim/scenarios"
)

// BenchmarkVirtualTime is the simulator's speed on the cluster (2
// masters, 33 coreapps, 32 shards, heartbeat 1 s, unhealthy 3 s) under a
// random nemesis for ten simulated minutes per run: simulated seconds
// per wall second on one core, events per second, allocations per event.
//
//	go test -run '^$' -bench VirtualTime -benchtime 5x ./sim/
func BenchmarkVirtualTime(b *testing.B) {
	benchSoak(b, "testdata/soak-33.yaml", 0)
}

// BenchmarkThousandCoreapps: the same nemesis on 1,000 coreapps (32
// shards), for one simulated minute per run.
func BenchmarkThousandCoreapps(b *testing.B) {
	benchSoak(b, "testdata/soak-33.yaml", 1000)
}

func benchSoak(b *testing.B, file string, coreapps int) {
	sc, err := scenarios.LoadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	if coreapps > 0 {
		sc.Cluster.Coreapps = coreapps
		for i := range sc.Steps {
			if sc.Steps[i].Action == "nemesis" {
				sc.Steps[i].For = time.Minute
			}
		}
	}
	b.ReportAllocs()
	var simulated time.Duration
	var events uint64
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		tg := New(Config{Seed: uint64(i + 1)})
		out, err := scenarios.Run(context.Background(), tg, sc, scenarios.Options{Seed: uint64(i + 1), Epsilon: DefaultEpsilon})
		if err != nil {
			b.Fatal(err)
		}
		if !out.OK {
			b.Fatalf("seed %d: %s", i+1, fmt.Sprint(out.Violations, out.Expectations, out.Aborted))
		}
		simulated += out.Duration
		events += tg.World().events
	}
	wall := time.Since(start)
	b.ReportMetric(simulated.Seconds()/wall.Seconds(), "sim-s/s")
	b.ReportMetric(float64(events)/wall.Seconds(), "events/s")
	b.ReportMetric(float64(events)/float64(b.N), "events/op")
}

// BenchmarkWorkload is the simulator's speed with traffic: the
// crash-under-load scenario (3 coreapps, 2 shards, 200 messages a second,
// a coreapp crash, callbacks in memory) from start to drain.
//
//	go test -run '^$' -bench Workload -benchtime 3x ./sim/
func BenchmarkWorkload(b *testing.B) {
	benchSoak(b, "testdata/traffic/crash-under-load.yaml", 0)
}

// BenchmarkWorkloadPersist is the same with callback_persist on: the
// store saturates, statuses pile up at the gateway, and its log's offers
// (which read every pending status) dominate.
func BenchmarkWorkloadPersist(b *testing.B) {
	benchSoak(b, "testdata/traffic/crash-under-load-persist.yaml", 0)
}
