package shard

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"testing"
)

func TestCountRule(t *testing.T) {
	var s []string
	for _, n := range Counts() {
		s = append(s, fmt.Sprint(n))
	}
	if want := "must be one of " + strings.Join(s, ", "); CountRule != want {
		t.Fatalf("CountRule = %q, want %q (from Counts)", CountRule, want)
	}
	if !slices.Equal(Counts(), []int{1, 2, 4, 8, 16, 32}) {
		t.Fatalf("Counts() = %v", Counts())
	}
	c := Counts()
	c[0] = 99
	if Counts()[0] != 1 {
		t.Fatal("Counts shares its slice")
	}
}

func TestValidCount(t *testing.T) {
	for n := -2; n <= 2*Buckets; n++ {
		want := slices.Contains(Counts(), n)
		if got := ValidCount(n); got != want {
			t.Errorf("ValidCount(%d) = %v, want %v", n, got, want)
		}
		if err := CountError(n); (err == nil) != want {
			t.Errorf("CountError(%d) = %v", n, err)
		}
	}
	if got, want := CountError(3).Error(), "must be one of 1, 2, 4, 8, 16, 32, got 3"; got != want {
		t.Fatalf("CountError(3) = %q, want %q", got, want)
	}
}

// TestCovers checks rule 2's partition: for every count, the shards' buckets
// are disjoint and cover all Buckets, each b with b mod n = s; Overlap
// agrees with Covers.
func TestCovers(t *testing.T) {
	for _, n := range Counts() {
		seen := make([]int, Buckets)
		for s := range n {
			for _, b := range Covers(s, n) {
				seen[b]++
				if b%n != s {
					t.Errorf("Covers(%d, %d) lists bucket %d", s, n, b)
				}
			}
		}
		for b, k := range seen {
			if k != 1 {
				t.Errorf("count %d: bucket %d covered %d times", n, b, k)
			}
		}
	}
	for _, n := range Counts() {
		for _, m := range Counts() {
			for a := range n {
				for b := range m {
					common := false
					for _, x := range Covers(a, n) {
						common = common || slices.Contains(Covers(b, m), x)
					}
					if got := Overlap(a, n, b, m); got != common {
						t.Errorf("Overlap(%d/%d, %d/%d) = %v, want %v", a, n, b, m, got, common)
					}
				}
			}
		}
	}
	if got := Covers(1, 8); !slices.Equal(got, []int{1, 9, 17, 25}) {
		t.Fatalf("Covers(1, 8) = %v", got)
	}
}

func TestCheckMap(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n        int
		maxEpoch uint64
		entries  []Assignment
		want     []Problem
	}{
		{"empty", 2, 0, nil, nil},
		{"dense and sound", 2, 5, []Assignment{{0, "c1", 5}, {1, "", 0}}, nil},
		{"sparse: only place is broken", 4, 5, []Assignment{{2, "c1", 3}}, []Problem{{0, OutOfPlace}}},
		{"out of range", 2, 5, []Assignment{{0, "c1", 1}, {2, "c2", 2}, {-1, "", 0}},
			[]Problem{{1, OutOfRange}, {1, OutOfPlace}, {2, OutOfRange}, {2, OutOfPlace}}},
		{"repeated", 2, 5, []Assignment{{1, "c1", 1}, {1, "c2", 2}}, []Problem{{0, OutOfPlace}, {1, Repeated}}},
		{"epochs", 2, 5, []Assignment{{0, "c1", 6}, {1, "c2", 0}},
			[]Problem{{0, AboveMaxEpoch}, {1, OwnedWithoutEpoch}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckMap(tc.n, tc.maxEpoch, tc.entries)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("CheckMap = %v, want %v", got, tc.want)
			}
		})
	}
	ps := []Problem{{0, OutOfPlace}, {1, Repeated}, {2, AboveMaxEpoch}}
	if p, ok := First(ps, AboveMaxEpoch, Repeated); !ok || p != (Problem{1, Repeated}) {
		t.Fatalf("First = %v %v, want the earliest of the asked faults", p, ok)
	}
	if _, ok := First(ps, OwnedWithoutEpoch); ok {
		t.Fatal("First found a fault that is not there")
	}
}

func TestBucketOfIsFNV1a(t *testing.T) {
	for _, k := range []string{"", "16315551234", "1", "447700900123", "99999999999999"} {
		h := fnv.New32a()
		h.Write([]byte(k))
		if got, want := BucketOf(k), int(h.Sum32()%Buckets); got != want {
			t.Errorf("BucketOf(%q) = %d, want %d", k, got, want)
		}
		for _, n := range Counts() {
			if got := Of(k, n); got != BucketOf(k)%n || !slices.Contains(Covers(got, n), BucketOf(k)) {
				t.Errorf("Of(%q, %d) = %d does not cover bucket %d", k, n, got, BucketOf(k))
			}
		}
	}
}

func TestBucketOfSpreadsRecipients(t *testing.T) {
	var count [Buckets]int
	for i := range 32000 {
		count[BucketOf(fmt.Sprintf("1631555%05d", i))]++
	}
	for b, c := range count {
		if c < 800 || c > 1200 {
			t.Errorf("bucket %d holds %d of 32000 recipients, want about 1000", b, c)
		}
	}
}
