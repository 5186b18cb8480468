package shard

// The rules of a shard map, written once. Each reader of a map (the store,
// the coordination service, the master's core) words a broken rule its own
// way, because its messages are contracts of its own; CheckMap says which
// rules an entry breaks and leaves the words to the caller.

// Assignment is one entry of a shard map as the rules see it: shard Shard
// is served by Owner ("" for none) at Epoch.
type Assignment struct {
	Shard int
	Owner string
	Epoch uint64
}

// Fault names a map rule one entry breaks.
type Fault int

// The faults, in the order CheckMap reports them for one entry.
const (
	// OutOfRange: Shard is not in [0, n).
	OutOfRange Fault = iota + 1
	// Repeated: an earlier entry has the same (in-range) Shard; each shard
	// has one owner at most.
	Repeated
	// OutOfPlace: entry i is not shard i. Only maps that list every shard
	// in order (the dense form) must obey it.
	OutOfPlace
	// AboveMaxEpoch: Epoch exceeds the map's max_epoch, which then would
	// not be a safe floor for the next assignment's epoch.
	AboveMaxEpoch
	// OwnedWithoutEpoch: Owner is set but Epoch is 0; epochs start at 1, so
	// the gateway could not fence such an owner.
	OwnedWithoutEpoch
)

// Problem is one broken rule: the entry at Index breaks Fault.
type Problem struct {
	Index int
	Fault Fault
}

// CheckMap reports every rule the entries of a map of n shards with the
// given max_epoch break, by entry and then in Fault order. It does not
// judge n itself (see ValidCount): readers differ in what they accept.
func CheckMap(n int, maxEpoch uint64, entries []Assignment) []Problem {
	var out []Problem
	seen := make(map[int]bool, len(entries))
	for i, a := range entries {
		if a.Shard < 0 || a.Shard >= n {
			out = append(out, Problem{i, OutOfRange})
		} else if seen[a.Shard] {
			out = append(out, Problem{i, Repeated})
		} else {
			seen[a.Shard] = true
		}
		if a.Shard != i {
			out = append(out, Problem{i, OutOfPlace})
		}
		if a.Epoch > maxEpoch {
			out = append(out, Problem{i, AboveMaxEpoch})
		}
		if a.Owner != "" && a.Epoch == 0 {
			out = append(out, Problem{i, OwnedWithoutEpoch})
		}
	}
	return out
}

// First returns the first problem whose fault is one of faults, and whether
// there is one: for readers that refuse a map at its first broken rule and
// hold it to only some of the rules.
func First(ps []Problem, faults ...Fault) (Problem, bool) {
	for _, p := range ps {
		for _, f := range faults {
			if p.Fault == f {
				return p, true
			}
		}
	}
	return Problem{}, false
}
