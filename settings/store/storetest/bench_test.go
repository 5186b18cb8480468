package storetest

import "testing"

// BenchmarkUpdateApplication is one PATCH at the store on each backend: a
// serialized read-modify-write committed durably (bbolt: fsync of the
// file; postgres: COMMIT with synchronous_commit, on loopback).
func BenchmarkUpdateApplication(b *testing.B) {
	for _, be := range Backends {
		b.Run(be.Name, func(b *testing.B) {
			s, _ := be.Open(b)
			for b.Loop() {
				if _, err := s.UpdateApplication(Bump); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
