package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcsim/mcsim/settings/httpapi"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestLogin(t *testing.T) {
	e := newEnv(t)

	t.Run("good", func(t *testing.T) {
		a := e.request(http.MethodPost, "/v1/users/login", basic("admin", testPassword), nil)
		if a.status != http.StatusOK {
			t.Fatalf("HTTP %d: %s", a.status, a.body)
		}
		var ans struct {
			Users []struct {
				Token        string `json:"token"`
				ExpiresAfter string `json:"expires_after"`
			} `json:"users"`
		}
		if err := json.Unmarshal(a.body, &ans); err != nil || len(ans.Users) != 1 {
			t.Fatalf("bad answer %s: %v", a.body, err)
		}
		u := ans.Users[0]
		if raw, err := base64.RawURLEncoding.DecodeString(u.Token); err != nil || len(raw) != 32 {
			t.Errorf("token %q: want 32 random bytes, base64url (%v)", u.Token, err)
		}
		want := e.clock.Now().Add(7*24*time.Hour).UTC().Format("2006-01-02 15:04:05") + "+00:00"
		if u.ExpiresAfter != want {
			t.Errorf("expires_after %q, want %q", u.ExpiresAfter, want)
		}
		// The token works.
		if g := e.request(http.MethodGet, "/v1/settings/application", "Bearer "+u.Token, nil); g.status != http.StatusOK {
			t.Errorf("GET with the new token: HTTP %d: %s", g.status, g.body)
		}
		// Two logins give two different tokens.
		if e.login() == "Bearer "+u.Token {
			t.Errorf("two logins returned the same token")
		}
	})

	for _, tc := range []struct {
		name string
		auth string
	}{
		{"missing header", ""},
		{"bad password", basic("admin", "wrong")},
		{"password prefix", basic("admin", testPassword[:3])},
		{"empty password", basic("admin", "")},
		{"wrong user", basic("root", testPassword)},
		{"bearer instead of basic", "Bearer " + testPassword},
		{"garbage", "Basic !!!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.request(http.MethodPost, "/v1/users/login", tc.auth, nil)
			wantError(t, a, http.StatusUnauthorized, 1005)
		})
	}

	t.Run("body is ignored", func(t *testing.T) {
		a := e.request(http.MethodPost, "/v1/users/login", basic("admin", testPassword), []byte(`not json at all`))
		if a.status != http.StatusOK {
			t.Errorf("HTTP %d: %s", a.status, a.body)
		}
	})

	t.Run("GET is 405", func(t *testing.T) {
		a := e.request(http.MethodGet, "/v1/users/login", basic("admin", testPassword), nil)
		wantError(t, a, http.StatusMethodNotAllowed, 1025)
		if got := a.header.Get("Allow"); got != "POST" {
			t.Errorf("Allow %q, want POST", got)
		}
	})
}

// settingsCalls is one call of every settings endpoint, each valid when
// authenticated.
var settingsCalls = []struct{ method, path, body string }{
	{http.MethodGet, "/v1/settings/application", ""},
	{http.MethodPatch, "/v1/settings/application", `{"heartbeat_interval":6}`},
	{http.MethodDelete, "/v1/settings/application", ""},
	{http.MethodGet, "/v1/settings/application/media/providers", ""},
	{http.MethodPost, "/v1/settings/application/media/providers", `[{"name":"p1","type":"www","config":{"bearer":"tok"}}]`},
	{http.MethodDelete, "/v1/settings/application/media/providers/p1", ""},
}

func TestSettingsNeedAToken(t *testing.T) {
	e := newEnv(t)
	good := e.login()
	for _, c := range settingsCalls {
		for _, auth := range []struct{ name, header string }{
			{"no header", ""},
			{"empty bearer", "Bearer "},
			{"unknown token", "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
			{"basic credentials", basic("admin", testPassword)},
			{"token without scheme", strings.TrimPrefix(good, "Bearer ")},
		} {
			t.Run(c.method+" "+c.path+"/"+auth.name, func(t *testing.T) {
				var body []byte
				if c.body != "" {
					body = []byte(c.body)
				}
				a := e.request(c.method, c.path, auth.header, body)
				wantError(t, a, http.StatusUnauthorized, 1005)
			})
		}
	}
	// Nothing above changed anything.
	if got := e.application()["heartbeat_interval"]; got != 5.0 {
		t.Errorf("heartbeat_interval %v after unauthenticated calls, want 5", got)
	}
}

func TestTokenExpires(t *testing.T) {
	e := newEnv(t)
	tok := e.login()
	e.clock.Advance(httpapi.TokenTTL - time.Second)
	for _, c := range settingsCalls {
		// Still valid one second before expiry.
		a := e.request(c.method, c.path, tok, []byte(c.body))
		if a.status == http.StatusUnauthorized {
			t.Errorf("%s %s one second before expiry: HTTP 401: %s", c.method, c.path, a.body)
		}
	}
	e.clock.Advance(time.Second)
	for _, c := range settingsCalls {
		a := e.request(c.method, c.path, tok, []byte(c.body))
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			wantError(t, a, http.StatusUnauthorized, 1005, "expired")
		})
	}
	// A new login works again.
	if a := e.request(http.MethodGet, "/v1/settings/application", e.login(), nil); a.status != http.StatusOK {
		t.Errorf("after re-login: HTTP %d: %s", a.status, a.body)
	}
}

func TestAccessLogNeverHoldsSecrets(t *testing.T) {
	e := newEnv(t)
	tok := e.login()
	e.request(http.MethodGet, "/v1/settings/application?auth=qsecret", tok, nil)
	e.request(http.MethodGet, "/v1/nowhere", "", nil)
	logs := e.logs.String()
	for _, secret := range []string{testPassword, strings.TrimPrefix(tok, "Bearer "), "qsecret"} {
		if strings.Contains(logs, secret) {
			t.Errorf("access log holds a secret %q:\n%s", secret, logs)
		}
	}
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines for 3 requests:\n%s", len(lines), logs)
	}
	var l map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &l); err != nil {
		t.Fatalf("log line is not JSON: %s", lines[2])
	}
	for k, want := range map[string]any{"method": "GET", "path": "/v1/nowhere", "status": 404.0} {
		if l[k] != want {
			t.Errorf("log %s = %v, want %v (%s)", k, l[k], want, lines[2])
		}
	}
	for _, k := range []string{"duration_ms", "remote_addr"} {
		if _, ok := l[k]; !ok {
			t.Errorf("log line without %s: %s", k, lines[2])
		}
	}
}
