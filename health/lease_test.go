package health

import (
	"testing"
	"time"
)

func TestPrimaryNote(t *testing.T) {
	primary := map[string]Entry{"127.0.0.1:master-1": {Role: RolePrimaryMaster}, "127.0.0.1:master-2": {Role: RoleSecondaryMaster}}
	waiting := map[string]Entry{"127.0.0.1:master-1": {Role: RoleSecondaryMaster}, "127.0.0.1:master-2": {Role: RoleSecondaryMaster},
		"127.0.0.1:coreapp-1": {Role: RoleCoreapp}}
	for _, tc := range []struct {
		name    string
		entries map[string]Entry
		lease   *Lease
		want    string
	}{
		{"a primary acts", primary, &Lease{Holder: "master-1", Epoch: 4, RemainingMS: 2500}, ""},
		{"restarted on the same data dir: the previous lease runs", waiting, &Lease{Holder: "master-1", Epoch: 3, RemainingMS: 23001},
			"no primary: waiting for the previous lease (master-1, epoch 3) to lapse, 24 s left"},
		{"under ten seconds, tenths (rounded up)", waiting, &Lease{Holder: "master-2", Epoch: 7, RemainingMS: 2401},
			"no primary: waiting for the previous lease (master-2, epoch 7) to lapse, 2.5 s left"},
		{"exactly ten seconds", waiting, &Lease{Holder: "master-2", Epoch: 7, RemainingMS: 10000},
			"no primary: waiting for the previous lease (master-2, epoch 7) to lapse, 10 s left"},
		{"the lease lapsed: a master takes it next", waiting, &Lease{Holder: "master-1", Epoch: 3},
			"no primary yet: the lease is free; a master takes it at its next try"},
		{"an older service sends no lease", waiting, nil, "no primary yet: the lease is free; a master takes it at its next try"},
		{"no masters and no lease: nothing to say", map[string]Entry{}, nil, ""},
		{"no masters listed yet, the lease runs", map[string]Entry{}, &Lease{Holder: "master-1", Epoch: 1, RemainingMS: 30000},
			"no primary: waiting for the previous lease (master-1, epoch 1) to lapse, 30 s left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PrimaryNote(tc.entries, tc.lease); got != tc.want {
				t.Errorf("PrimaryNote = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLeaseAt(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		holder  string
		expires time.Time
		want    int64
	}{
		{"master-1", now.Add(24*time.Second + 500*time.Microsecond), 24000},
		{"master-1", now, 0},
		{"master-1", now.Add(-time.Second), 0},
		{"", now.Add(time.Second), 0}, // released: free
	} {
		if got := LeaseAt(tc.holder, 3, tc.expires, now); got.RemainingMS != tc.want || got.Holder != tc.holder || got.Epoch != 3 {
			t.Errorf("LeaseAt(%q, expires now%+v) = %+v, want remaining %d ms", tc.holder, tc.expires.Sub(now), got, tc.want)
		}
	}
}

func TestDecodeLease(t *testing.T) {
	l, err := DecodeLease([]byte(`{"health": {}, "lease": {"holder": "master-1", "epoch": 3, "remaining_ms": 24000}}`))
	if err != nil || l == nil || *l != (Lease{Holder: "master-1", Epoch: 3, RemainingMS: 24000}) {
		t.Errorf("DecodeLease = %+v, %v", l, err)
	}
	if l, err := DecodeLease([]byte(`{"health": {}}`)); err != nil || l != nil {
		t.Errorf("DecodeLease without a lease = %+v, %v; want nil, nil", l, err)
	}
}
