package httpapi_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

const providersPath = "/v1/settings/application/media/providers"

// providers returns settings.application.media.providers of a GET.
func providers(t *testing.T, e *env) []map[string]any {
	t.Helper()
	a := e.do(http.MethodGet, providersPath, "")
	if a.status != http.StatusOK {
		t.Fatalf("GET providers: HTTP %d: %s", a.status, a.body)
	}
	var v struct {
		Settings struct {
			Application struct {
				Media struct {
					Providers []map[string]any `json:"providers"`
				} `json:"media"`
			} `json:"application"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("GET providers: %v: %s", err, a.body)
	}
	if v.Settings.Application.Media.Providers == nil {
		t.Fatalf("GET providers: no providers array: %s", a.body)
	}
	return v.Settings.Application.Media.Providers
}

func providerNames(t *testing.T, e *env) []string {
	t.Helper()
	names := []string{}
	for _, p := range providers(t, e) {
		names = append(names, p["name"].(string))
	}
	return names
}

// TestProviders is a transcript of the providers' life.
func TestProviders(t *testing.T) {
	e := newEnv(t)
	ok := func(method, path, body string) {
		t.Helper()
		if a := e.do(method, path, body); a.status != http.StatusOK {
			t.Fatalf("%s %s %s: HTTP %d: %s", method, path, body, a.status, a.body)
		}
	}
	want := func(list string) {
		t.Helper()
		got := providers(t, e)
		w := mustJSON(t, list)
		gotAny := make([]any, len(got))
		for i, p := range got {
			gotAny[i] = p
		}
		if !reflect.DeepEqual(gotAny, w) {
			t.Errorf("providers:\n%s\nwant:\n%s", pretty(got), pretty(w))
		}
	}

	// Empty at first: an array, not null.
	want(`[]`)

	// Add two; GET lists them by name with secrets redacted.
	ok(http.MethodPost, providersPath, `[
		{"name":"zeta","type":"www","config":{"bearer":"zeta-token-123"}},
		{"name":"alpha","type":"www","config":{"basic":{"username":"bob","password":"alpha-pw-456"}}}]`)
	want(`[
		{"name":"alpha","type":"www","config":{"basic":{"username":"bob","password":"********"}}},
		{"name":"zeta","type":"www","config":{"bearer":"********"}}]`)
	if a := e.do(http.MethodGet, providersPath, ""); strings.Contains(string(a.body), "zeta-token-123") || strings.Contains(string(a.body), "alpha-pw-456") {
		t.Errorf("GET leaks a secret: %s", a.body)
	}

	// Posting an existing name replaces it, whole; others stay.
	ok(http.MethodPost, providersPath, `[{"name":"zeta","type":"www","config":{"basic":{"username":"carol","password":"p"}}}]`)
	want(`[
		{"name":"alpha","type":"www","config":{"basic":{"username":"bob","password":"********"}}},
		{"name":"zeta","type":"www","config":{"basic":{"username":"carol","password":"********"}}}]`)

	// Delete one.
	ok(http.MethodDelete, providersPath+"/alpha", "")
	want(`[{"name":"zeta","type":"www","config":{"basic":{"username":"carol","password":"********"}}}]`)

	// Delete it again: 404.
	wantError(t, e.do(http.MethodDelete, providersPath+"/alpha", ""), http.StatusNotFound, 1006, "alpha")
	// A name that can never exist is absent too: 404 (SETTINGS.md: "404 if
	// absent"), naming the rule; a long one is not echoed whole.
	wantError(t, e.do(http.MethodDelete, providersPath+"/bad.name", ""), http.StatusNotFound, 1006, `"bad.name"`, "letter, digit")
	if a := e.do(http.MethodDelete, providersPath+"/"+strings.Repeat("n", 5000), ""); a.status != http.StatusNotFound || len(a.body) > 600 {
		t.Errorf("DELETE of a 5000-char name: HTTP %d, %d bytes: want a short 404", a.status, len(a.body))
	}

	// A batch with one bad provider: nothing of it lands.
	a := e.do(http.MethodPost, providersPath, `[
		{"name":"new1","type":"www","config":{"bearer":"t"}},
		{"type":"www","config":{"bearer":"t"}},
		{"name":"zeta","type":"ftp","config":{"bearer":"t"}}]`)
	if a.status != http.StatusBadRequest {
		t.Errorf("bad batch: HTTP %d: %s", a.status, a.body)
	}
	errs := errorsOf(t, a)
	if len(errs) != 2 || errs[0].Code != 1008 || !strings.Contains(errs[0].Details, "media.providers[1].name") ||
		errs[1].Code != 1009 || !strings.Contains(errs[1].Details, "media.providers[2].type") {
		t.Errorf("bad batch errors: %s", a.body)
	}
	want(`[{"name":"zeta","type":"www","config":{"basic":{"username":"carol","password":"********"}}}]`)

	// Not an array, not JSON.
	wantError(t, e.do(http.MethodPost, providersPath, `{"name":"x"}`), http.StatusBadRequest, 1025)
	wantError(t, e.do(http.MethodPost, providersPath, `[{`), http.StatusBadRequest, 1025)
	want(`[{"name":"zeta","type":"www","config":{"basic":{"username":"carol","password":"********"}}}]`)

	// The providers never show up in, nor are touched by, the application
	// document.
	if app := e.application(); app["media"] != nil && app["media"].(map[string]any)["providers"] != nil {
		t.Errorf("application document shows providers: %v", app["media"])
	}
}
