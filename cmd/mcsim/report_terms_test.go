package main

import (
	"slices"
	"testing"
	"time"

	"github.com/mcsim/mcsim/report"
	"github.com/mcsim/mcsim/scenarios"
)

// The store's grants as lease terms and takeovers: a term ends at the
// next holder's grant, or earlier when its last renewal expired before
// it; a release ends it at once; the first grant is no takeover.
func TestLeaseTerms(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := func(x float64) time.Time { return t0.Add(time.Duration(x * float64(time.Second))) }
	rel := func(at time.Time) time.Duration { return at.Sub(t0) }
	grants := []scenarios.LeaseGrant{
		{At: s(0), Master: "master-2", Epoch: 1, Expires: s(3)},
		{At: s(1), Master: "master-2", Epoch: 1, Expires: s(4), Renewal: true},
		{At: s(2), Master: "master-2", Epoch: 1, Expires: s(5), Renewal: true},
		// master-2 killed at 2.5: its lease lapses at 5, master-1 takes it at 5.2.
		{At: s(5.2), Master: "master-1", Epoch: 2, Expires: s(8.2)},
		{At: s(6), Master: "master-1", Epoch: 2, Released: true},
		{At: s(6.1), Master: "master-2", Epoch: 3, Expires: s(9.1)},
	}
	terms, takeovers := leaseTerms(grants, rel)
	wantTerms := []report.Term{
		{Master: "master-2", Epoch: 1, Start: 0, End: 5 * time.Second},
		{Master: "master-1", Epoch: 2, Start: 5200 * time.Millisecond, End: 6 * time.Second},
		{Master: "master-2", Epoch: 3, Start: 6100 * time.Millisecond, End: 9100 * time.Millisecond},
	}
	if !slices.Equal(terms, wantTerms) {
		t.Errorf("terms\n%+v\nwant\n%+v", terms, wantTerms)
	}
	wantTakeovers := []report.Takeover{
		{From: "master-2", To: "master-1", LeaseEpoch: 2, At: 5200 * time.Millisecond},
		{From: "master-1", To: "master-2", LeaseEpoch: 3, At: 6100 * time.Millisecond},
	}
	if !slices.Equal(takeovers, wantTakeovers) {
		t.Errorf("takeovers\n%+v\nwant\n%+v", takeovers, wantTakeovers)
	}
}
