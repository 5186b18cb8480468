package scenarios

import (
	"math"
	"slices"
)

// Distribution summarises one timed expectation over several runs
// (SCENARIOS.md: the "distribution" event).
type Distribution struct {
	Expect                            int
	What                              string
	N                                 int
	MinMS, P50MS, P90MS, P99MS, MaxMS float64
	Bound                             string
	Outside                           int // runs whose measure failed its bound
}

// Distributions folds the timed expectations of several runs of one
// scenario, by step index, in step order.
func Distributions(outs []Outcome) []Distribution {
	byIndex := map[int]*Distribution{}
	values := map[int][]float64{}
	var order []int
	for _, o := range outs {
		for _, e := range o.Expectations {
			if e.Measured == nil {
				continue
			}
			d, ok := byIndex[e.Index]
			if !ok {
				d = &Distribution{Expect: e.Index, What: e.What, Bound: e.Bound}
				byIndex[e.Index] = d
				order = append(order, e.Index)
			}
			if !e.OK {
				d.Outside++
			}
			if e.OK || *e.Measured > 0 {
				values[e.Index] = append(values[e.Index], ms(*e.Measured))
			}
		}
	}
	slices.Sort(order)
	out := make([]Distribution, 0, len(order))
	for _, i := range order {
		d := byIndex[i]
		v := values[i]
		slices.Sort(v)
		d.N = len(v)
		if d.N > 0 {
			d.MinMS, d.MaxMS = v[0], v[len(v)-1]
			d.P50MS, d.P90MS, d.P99MS = percentile(v, 0.50), percentile(v, 0.90), percentile(v, 0.99)
		}
		out = append(out, *d)
	}
	return out
}

// percentile of sorted values, nearest rank (a measured value, never an
// interpolation between two runs).
func percentile(sorted []float64, q float64) float64 {
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}
