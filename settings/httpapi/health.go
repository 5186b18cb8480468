package httpapi

import (
	"net/http"

	"github.com/mcsim/mcsim/health"
	"github.com/mcsim/mcsim/settings"
	"github.com/mcsim/mcsim/settings/store"
)

// HealthEntry is one node in the GET /v1/health answer. It is the health
// aggregator's own entry type, so the JSON shape has one definition and the
// service passes the aggregator's answer through unconverted.
type HealthEntry = health.Entry

// healthAnswer is GET /v1/health.
type healthAnswer struct {
	Health map[string]HealthEntry `json:"health"`
	// Lease is the master lease as the store holds it, so a client can say
	// why there is no primary (health.PrimaryNote).
	Lease health.Lease `json:"lease"`
	Meta  meta         `json:"meta"`
}

// getHealth asks the health source at the moment of the request; nothing
// is cached here (a failover must show within 100 ms). Without a source the
// service knows no cluster and answers an empty object, so a script's
// parsing does not depend on how the service was started.
func (s *server) getHealth(w http.ResponseWriter, r *http.Request) {
	entries := map[string]HealthEntry{}
	if s.health != nil {
		got, err := s.health(r.Context())
		if err != nil {
			s.writeInternal(w, r, "could not gather the cluster health", err)
			return
		}
		for k, e := range got {
			if e.Shards == nil {
				e.Shards = []int{}
			}
			if e.PendingRestart == nil {
				e.PendingRestart = []string{}
			}
			entries[k] = e
		}
	}
	// Judged by the store's clock, which granted it (the database's, on
	// PostgreSQL), not this process's.
	l, now := store.LeaseNow(s.store, s.now)
	lease := health.LeaseAt(l.Holder, l.Epoch, l.Expires, now)
	s.writeJSON(w, http.StatusOK, healthAnswer{Health: entries, Lease: lease, Meta: newMeta()})
}

// shardsAnswer is GET /v1/account/shards.
type shardsAnswer struct {
	Account struct {
		Shards int `json:"shards"`
	} `json:"account"`
	Meta meta `json:"meta"`
}

func (s *server) getShards(w http.ResponseWriter, _ *http.Request) {
	var a shardsAnswer
	a.Account.Shards = s.store.State().Shards
	a.Meta = newMeta()
	s.writeJSON(w, http.StatusOK, a)
}

// postShards changes the shard count. The masters see the new count in
// their settings watch and re-map the shards with new epochs; this handler
// only validates and stores (after fsync, like every write). A change is
// 201 Created, as the real API answers; the current count again is a no-op
// 200 (the real API documents no answer for it, and nothing was created).
func (s *server) postShards(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	n, errs := settings.ParseShardsRequest(body, s.waID)
	if len(errs) > 0 {
		s.writeErrors(w, errs)
		return
	}
	_, changed, err := s.store.UpdateShards(n)
	if err != nil {
		s.writeInternal(w, r, "could not store the shard count", err)
		return
	}
	status := http.StatusOK
	if changed {
		status = http.StatusCreated
	}
	s.writeJSON(w, status, struct {
		Meta meta `json:"meta"`
	}{newMeta()})
}
