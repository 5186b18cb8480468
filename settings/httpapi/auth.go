package httpapi

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/mcsim/mcsim/settings"
)

// adminUser is the only account (SETTINGS.md: every call goes through the
// admin account).
const adminUser = "admin"

// expiresLayout renders expires_after the way the seed does:
// "2026-11-29 10:00:00+00:00" (always UTC, numeric offset, never "Z").
const expiresLayout = "2006-01-02 15:04:05-07:00"

// tokenBytes is the entropy of a bearer token.
const tokenBytes = 32

type loginUser struct {
	Token        string `json:"token"`
	ExpiresAfter string `json:"expires_after"`
}

type loginAnswer struct {
	Users []loginUser `json:"users"`
	Meta  meta        `json:"meta"`
}

// login exchanges the admin's Basic credentials for a bearer token.
//
// The request body is ignored (decided): the seed authenticates with Basic
// auth alone, and the real API's optional {"new_password":…} is out of scope,
// since the admin password comes from the service's configuration. Not
// reading it also means a login never fails on a body it does not need.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	deny := func(details string) {
		// RFC 9110: a 401 must say which scheme would be accepted.
		w.Header().Set("WWW-Authenticate", `Basic realm="mcsim", charset="UTF-8"`)
		s.writeErrors(w, settings.Errors{settings.AccessDenied(details)})
	}
	if !ok {
		deny("Authorization: expected Basic credentials of the admin account")
		return
	}
	// Both checks always run, on fixed-length digests, so neither the
	// timing nor the answer tells which part was wrong or how long the
	// password is.
	userOK := subtle.ConstantTimeCompare(digest(user), digest(adminUser))
	passOK := subtle.ConstantTimeCompare(digest(pass), digest(s.password))
	if userOK&passOK != 1 {
		deny("bad user name or password")
		return
	}

	raw := make([]byte, tokenBytes)
	if _, err := rand.Read(raw); err != nil {
		s.writeInternal(w, r, "could not create a token", err)
		return
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	expires := s.now().UTC().Add(TokenTTL)
	// Only the digest is stored: a copy of the database does not hand out
	// live tokens.
	if err := s.store.PutToken(digest(token), expires); err != nil {
		s.writeInternal(w, r, "could not store the token", err)
		return
	}
	s.writeJSON(w, http.StatusOK, loginAnswer{
		Users: []loginUser{{Token: token, ExpiresAfter: expires.Format(expiresLayout)}},
		Meta:  newMeta(),
	})
}

// authed wraps a settings handler with the bearer-token check.
func (s *server) authed(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		deny := func(details string) {
			// RFC 9110: a 401 must say which scheme would be accepted.
			w.Header().Set("WWW-Authenticate", `Bearer realm="mcsim"`)
			s.writeErrors(w, settings.Errors{settings.AccessDenied(details)})
		}
		if !ok {
			deny("Authorization: expected a Bearer token from POST /v1/users/login")
			return
		}
		expires, found, err := s.store.TokenExpiry(digest(token))
		if err != nil {
			s.writeInternal(w, r, "could not check the token", err)
			return
		}
		if !found {
			deny("the token is not valid")
			return
		}
		if !s.now().Before(expires) {
			deny("the token has expired; log in again")
			return
		}
		next(w, r)
	})
}

// bearer extracts the token of "Authorization: Bearer <token>" (scheme
// case-insensitive, as RFC 9110 says).
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func digest(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}
