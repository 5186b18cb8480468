package httpapi

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"

	"github.com/mcsim/mcsim/cluster/health"
	"github.com/mcsim/mcsim/settings"
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
	l := s.store.CurrentLease()
	lease := health.LeaseAt(l.Holder, l.Epoch, l.Expires, s.now())
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
// only validates and stores (after fsync, like every write).
func (s *server) postShards(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	n, errs := parseShardsBody(body)
	if len(errs) > 0 {
		s.writeErrors(w, errs)
		return
	}
	if _, err := s.store.SetShards(n); err != nil {
		s.writeInternal(w, r, "could not store the shard count", err)
		return
	}
	s.writeMeta(w)
}

// parseShardsBody reads {"shards": N}. Every problem is reported at once:
// not a JSON object (1025), an unknown field (1010 each), no "shards"
// (1008), or a value that is not one of the allowed counts (1009). Only an
// integer literal counts: 2.0, "2" and 2e0 are refused, as the settings
// PATCH refuses them for integer fields.
func parseShardsBody(body []byte) (int, settings.Errors) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return 0, settings.Errors{settings.InvalidRequest(`the body must be a JSON object like {"shards": 2}`)}
	}
	var errs settings.Errors
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if k != "shards" {
			errs = append(errs, settings.NotRequired(k, `unknown field (the body is {"shards": N})`))
		}
	}
	raw, ok := fields["shards"]
	if !ok {
		return 0, append(errs, settings.MissingParameter("shards"))
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(raw)))
	if err != nil {
		return 0, append(errs, settings.InvalidValue("shards", "must be one of 1, 2, 4, 8, 16, 32", raw))
	}
	if e := settings.ValidateShards(n); e != nil {
		errs = append(errs, *e)
	}
	return n, errs
}
