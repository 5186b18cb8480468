package store

import "testing"

// BenchmarkUpdateApplication is the cost of one PATCH at the store: a
// serialized read-modify-write of a small document, committed and fsynced
// (bbolt defaults) on the temp dir's file system.
func BenchmarkUpdateApplication(b *testing.B) {
	s, _ := openTemp(b)
	for b.Loop() {
		if _, err := s.UpdateApplication(bump); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkState is the cost of reading the watched state from memory.
func BenchmarkState(b *testing.B) {
	s, _ := openTemp(b)
	if _, err := s.UpdateApplication(bump); err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if s.State().Revision != 1 {
				b.Fatal("wrong revision")
			}
		}
	})
}
