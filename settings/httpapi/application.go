package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/mcsim/mcsim/settings"
)

// getAnswer is GET /v1/settings/application.
type getAnswer struct {
	Settings struct {
		Application json.RawMessage `json:"application"`
	} `json:"settings"`
	Meta meta `json:"meta"`
}

func (s *server) getApplication(w http.ResponseWriter, r *http.Request) {
	// Decode gives the defaults for a store that was never written.
	app, err := settings.Decode(s.store.State().Application, s.waID)
	if err != nil {
		s.writeInternal(w, r, "could not read the stored settings", err)
		return
	}
	var a getAnswer
	a.Settings.Application = app.JSON()
	a.Meta = newMeta()
	s.writeJSON(w, http.StatusOK, a)
}

// patchApplication merges the body into the stored document. The merge runs
// inside the store's read-modify-write, so concurrent PATCHes of different
// fields all land, and the 200 is written only after the store returned,
// i.e. after fsync.
func (s *server) patchApplication(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	_, err := s.store.UpdateApplication(func(cur []byte) ([]byte, error) {
		return settings.PatchStored(cur, s.waID, body)
	})
	if err != nil {
		if es, ok := asErrors(err); ok {
			s.writeErrors(w, es)
			return
		}
		s.writeInternal(w, r, "could not store the settings", err)
		return
	}
	s.writeMeta(w)
}

// resetApplication writes the defaults. Media providers live apart and are
// not touched (SETTINGS.md, decided).
func (s *server) resetApplication(w http.ResponseWriter, r *http.Request) {
	_, err := s.store.UpdateApplication(func([]byte) ([]byte, error) {
		return settings.Defaults(s.waID).Encode(), nil
	})
	if err != nil {
		s.writeInternal(w, r, "could not store the settings", err)
		return
	}
	s.writeMeta(w)
}

// readBody reads at most MaxBodyBytes; on failure it has already answered.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.writeErrors(w, settings.Errors{settings.TooLarge(MaxBodyBytes)})
			return nil, false
		}
		// The client went away or sent a broken chunked body; there is
		// probably nobody to answer, but try.
		s.writeErrors(w, settings.Errors{settings.InvalidRequest("could not read the request body")})
		return nil, false
	}
	return body, true
}
