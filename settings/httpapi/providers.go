package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"unicode/utf8"

	"github.com/mcsim/mcsim/settings"
	"github.com/mcsim/mcsim/settings/store"
)

// providersAnswer is GET /v1/settings/application/media/providers, nested
// the way the seed nests it.
type providersAnswer struct {
	Settings struct {
		Application struct {
			Media struct {
				Providers []settings.Provider `json:"providers"`
			} `json:"media"`
		} `json:"application"`
	} `json:"settings"`
	Meta meta `json:"meta"`
}

// getProviders lists the providers sorted by name, secrets redacted
// (SETTINGS.md, decided): a token that can read settings must not be a way
// to harvest the media hosts' credentials.
func (s *server) getProviders(w http.ResponseWriter, r *http.Request) {
	stored, err := s.store.Providers()
	if err != nil {
		s.writeInternal(w, r, "could not read the media providers", err)
		return
	}
	list := make([]settings.Provider, 0, len(stored))
	for name, b := range stored {
		var p settings.Provider
		if err := json.Unmarshal(b, &p); err != nil {
			s.writeInternal(w, r, "could not read the media providers", fmt.Errorf("provider %q: %w", name, err))
			return
		}
		list = append(list, p.Redacted())
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	var a providersAnswer
	a.Settings.Application.Media.Providers = list
	a.Meta = newMeta()
	s.writeJSON(w, http.StatusOK, a)
}

// postProviders adds or replaces the providers of the body, all or nothing:
// the whole array is validated before one store transaction writes it.
func (s *server) postProviders(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	list, errs := settings.ParseProviders(body)
	if len(errs) > 0 {
		s.writeErrors(w, errs)
		return
	}
	items := make(map[string][]byte, len(list))
	for _, p := range list {
		b, err := json.Marshal(p)
		if err != nil {
			s.writeInternal(w, r, "could not encode a media provider", err)
			return
		}
		// ParseProviders already refused a name twice in one body.
		items[p.Name] = b
	}
	if err := s.store.PutProviders(items); err != nil {
		s.writeInternal(w, r, "could not store the media providers", err)
		return
	}
	s.writeMeta(w)
}

// deleteProvider removes one provider. SETTINGS.md says 404 if absent, and
// a name that breaks the naming rule is absent by construction: it is
// 404/1006 too, with details naming the rule (more useful than a bare 404).
func (s *server) deleteProvider(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if e := settings.ValidateProviderName(name); e != nil {
		s.writeErrors(w, settings.Errors{settings.NotFound(fmt.Sprintf(
			"media.providers: no provider named %q (a name is 1 to 200 characters, each a letter, digit, '-' or '_')",
			shorten(name)))})
		return
	}
	err := s.store.DeleteProvider(name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.writeErrors(w, settings.Errors{settings.NotFound(fmt.Sprintf("media.providers: no provider named %q", name))})
	case err != nil:
		s.writeInternal(w, r, "could not delete the media provider", err)
	default:
		s.writeMeta(w)
	}
}

// shorten cuts a name from the request path for an error message, so a
// long path does not become a long answer.
func shorten(name string) string {
	const limit = 100
	if len(name) <= limit {
		return name
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut] + "…"
}
