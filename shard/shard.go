// Package shard is the one vocabulary of shards every part of mcsim speaks:
// which shard counts a cluster may have, how keys fall into buckets, which
// buckets a shard covers (DESIGN.md rule 2), and the well-formedness of a
// shard map. It is pure (no I/O, no clock, no state): the settings service,
// the store, the masters, the coreapps, the gateway, the launcher and the
// scenario parser all judge a count or a map with the same code, so they
// cannot drift apart, and the error texts users and contracts see are
// written once.
package shard

import "fmt"

// Buckets is how many key buckets there are: the largest shard count. A key
// k falls in bucket hash(k) % Buckets. Every count divides Buckets, so a
// shard of any count covers whole buckets, and sessions of different counts
// (during a live count change) are compared bucket by bucket.
const Buckets = 32

// CountRule is the rule for a shard count as error messages state it.
// TestCountRule keeps it in step with Counts.
const CountRule = "must be one of 1, 2, 4, 8, 16, 32"

// Counts lists the shard counts a cluster may have, the powers of two up to
// Buckets the seed allows. A function, so no caller can change it.
func Counts() []int {
	var out []int
	for n := 1; n <= Buckets; n *= 2 {
		out = append(out, n)
	}
	return out
}

// ValidCount reports whether n is one of Counts.
func ValidCount(n int) bool {
	return n >= 1 && n <= Buckets && n&(n-1) == 0
}

// CountError is nil for a valid count, otherwise the error that states the
// rule and the value, with no field name: callers prefix their own.
func CountError(n int) error {
	if ValidCount(n) {
		return nil
	}
	return fmt.Errorf("%s, got %d", CountRule, n)
}

// Covers returns the buckets shard s of count n covers, ascending: those b
// with b mod n = s. s and n must be valid (ValidCount(n), 0 <= s < n).
func Covers(s, n int) []int {
	out := make([]int, 0, Buckets/n)
	for b := s; b < Buckets; b += n {
		out = append(out, b)
	}
	return out
}

// Overlap reports whether shard a of count n and shard b of count m cover a
// common bucket. Because counts are powers of two, the smaller divides the
// larger, and they do iff a and b agree modulo the smaller count.
func Overlap(a, n, b, m int) bool {
	k := min(n, m)
	return a%k == b%k
}

// BucketOf returns the bucket of key k (a message's recipient): the 32-bit
// FNV-1a hash of its bytes modulo Buckets. It is the one hash of mcsim
// (TRAFFIC.md: "documented once and used everywhere"): the front door
// routes by it, the gateway fences messages and offers status updates by
// it, the store files pending callbacks by it, and the simulator uses it.
// FNV-1a because it is in the standard library (hash/fnv, which
// TestBucketOfIsFNV1a compares against), needs no seed, so every process
// and every run agrees, and spreads digit strings evenly.
func BucketOf(key string) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % Buckets)
}

// Of returns the shard of count n key falls in: BucketOf(key) mod n, which
// is hash(key) mod n because n divides Buckets. n must be valid.
func Of(key string, n int) int { return BucketOf(key) % n }
