package httpapi_test

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
)

const appPath = "/v1/settings/application"

// defaultsJSON is SETTINGS.md "Fields", column "default", as GET shows it.
const defaultsJSON = `{
  "axolotl_context_striping_disabled": false,
  "callback_backoff_delay_ms": 3000,
  "max_callback_backoff_delay_ms": 900000,
  "callback_persist": true,
  "garbagecollector_enable": {"messages": true, "media": false},
  "heartbeat_interval": 5,
  "unhealthy_interval": 30,
  "media": {"auto_download": []},
  "notify_user_change_number": false,
  "pass_through": false,
  "show_security_notifications": false,
  "skip_referral_media_download": false,
  "webhooks": {
    "url": "",
    "max_concurrent_requests": 6,
    "message": {"sent": true, "delivered": true, "read": true}
  },
  "verbose_logging": false,
  "log_level": "info",
  "wa_id": "16315551019"
}`

// withChanges returns the defaults with some dotted paths replaced.
func withChanges(t *testing.T, changes map[string]any) map[string]any {
	t.Helper()
	d := mustJSON(t, defaultsJSON).(map[string]any)
	for path, v := range changes {
		parts := strings.Split(path, ".")
		obj := d
		for _, p := range parts[:len(parts)-1] {
			obj = obj[p].(map[string]any)
		}
		obj[parts[len(parts)-1]] = v
	}
	return d
}

func wantApplication(t *testing.T, e *env, want map[string]any) {
	t.Helper()
	if got := e.application(); !reflect.DeepEqual(got, want) {
		t.Errorf("GET application:\n%s\nwant:\n%s", pretty(got), pretty(want))
	}
}

func TestGetDefaults(t *testing.T) {
	e := newEnv(t)
	a := e.do(http.MethodGet, appPath, "")
	want := mustJSON(t, `{"settings":{"application":`+defaultsJSON+`},"meta":{"api_status":"stable","version":"0.1.0"}}`)
	if got := mustJSON(t, string(a.body)); a.status != http.StatusOK || !reflect.DeepEqual(got, want) {
		t.Errorf("HTTP %d\n%s\nwant:\n%s", a.status, pretty(got), pretty(want))
	}
}

// TestPatch is a transcript: each step PATCHes a body and says what GET must
// show afterwards (relative to the defaults, cumulative).
func TestPatch(t *testing.T) {
	e := newEnv(t)
	state := map[string]any{}
	for _, step := range []struct {
		body string
		set  map[string]any
	}{
		{`{"webhooks":{"message":{"read":false}}}`, map[string]any{"webhooks.message.read": false}},
		{`{"heartbeat_interval":7,"unhealthy_interval":40}`, map[string]any{"heartbeat_interval": 7.0, "unhealthy_interval": 40.0}},
		{`{"callback_backoff_delay_ms":"5000"}`, map[string]any{"callback_backoff_delay_ms": 5000.0}},
		{`{"media":{"auto_download":["image","audio"]}}`, map[string]any{"media.auto_download": []any{"image", "audio"}}},
		{`{"media":{"auto_download":["video"]}}`, map[string]any{"media.auto_download": []any{"video"}}},
		{`{"webhooks":{"url":"https://example.com/hook?auth=x&y=1","max_concurrent_requests":12}}`,
			map[string]any{"webhooks.url": "https://example.com/hook?auth=x&y=1", "webhooks.max_concurrent_requests": 12.0}},
		{`{"webhooks":{"url":"http://127.0.0.1:9000/cb"}}`, map[string]any{"webhooks.url": "http://127.0.0.1:9000/cb"}},
		{`{"garbagecollector_enable":{"media":true},"log_level":"warning","verbose_logging":true}`,
			map[string]any{"garbagecollector_enable.media": true, "log_level": "warning", "verbose_logging": true}},
		{`{"pass_through":false}`, nil},
		{`{}`, nil},
		{`{"db_garbagecollector_enable":false}`, map[string]any{"db_garbagecollector_enable": false}},
	} {
		a := e.do(http.MethodPatch, appPath, step.body)
		if a.status != http.StatusOK || strings.TrimSpace(string(a.body)) != `{"meta":{"api_status":"stable","version":"0.1.0"}}` {
			t.Fatalf("PATCH %s: HTTP %d: %s", step.body, a.status, a.body)
		}
		for k, v := range step.set {
			state[k] = v
		}
		wantApplication(t, e, withChanges(t, state))
	}
}

func TestPatchRejected(t *testing.T) {
	// One service for all cases: each must leave it at the defaults.
	e := newEnv(t)
	type want struct {
		code  int
		field string // must start the details
	}
	for _, tc := range []struct {
		name string
		body string
		errs []want // in the order of the envelope (sorted by field)
	}{
		{"wrong type bool", `{"callback_persist":"yes"}`, []want{{1009, "callback_persist"}}},
		{"wrong type int", `{"heartbeat_interval":"five"}`, []want{{1009, "heartbeat_interval"}}},
		{"fractional int", `{"heartbeat_interval":1.5}`, []want{{1009, "heartbeat_interval"}}},
		{"zero interval", `{"heartbeat_interval":0}`, []want{{1009, "heartbeat_interval"}}},
		{"unhealthy not above heartbeat", `{"unhealthy_interval":5}`, []want{{1009, "unhealthy_interval"}}},
		{"backoff above max", `{"callback_backoff_delay_ms":900001}`, []want{{1009, "callback_backoff_delay_ms"}}},
		{"array expected", `{"media":{"auto_download":"image"}}`, []want{{1009, "media.auto_download"}}},
		{"not in set", `{"media":{"auto_download":["gif"]}}`, []want{{1009, "media.auto_download"}}},
		{"duplicate in array", `{"media":{"auto_download":["image","image"]}}`, []want{{1009, "media.auto_download"}}},
		{"max concurrent", `{"webhooks":{"max_concurrent_requests":7}}`, []want{{1009, "webhooks.max_concurrent_requests"}}},
		{"plain http url", `{"webhooks":{"url":"http://example.com/cb"}}`, []want{{1009, "webhooks.url"}}},
		{"log level", `{"log_level":"debug"}`, []want{{1009, "log_level"}}},
		{"null", `{"heartbeat_interval":null}`, []want{{1009, "heartbeat_interval"}}},
		{"pass_through re-enabled", `{"pass_through":true}`, []want{{1009, "pass_through"}}},
		{"object expected", `{"webhooks":true}`, []want{{1009, "webhooks"}}},
		{"read-only wa_id", `{"wa_id":"123"}`, []want{{1010, "wa_id"}}},
		{"unknown field", `{"bogus":1}`, []want{{1010, "bogus"}}},
		{"unknown nested field", `{"webhooks":{"message":{"seen":true}}}`, []want{{1010, "webhooks.message.seen"}}},
		{"good and bad", `{"heartbeat_interval":7,"log_level":"loud"}`, []want{{1009, "log_level"}}},
		{"several at once", `{"wa_id":"1","log_level":"loud","heartbeat_interval":"five","bogus":true,"webhooks":{"max_concurrent_requests":5,"message":{"read":"no"}}}`,
			[]want{{1010, "bogus"}, {1009, "heartbeat_interval"}, {1009, "log_level"}, {1010, "wa_id"}, {1009, "webhooks.max_concurrent_requests"}, {1009, "webhooks.message.read"}}},
		{"not JSON", `{"heartbeat_interval":`, []want{{1025, ""}}},
		{"plain text", `hello`, []want{{1025, ""}}},
		{"array body", `[{"heartbeat_interval":7}]`, []want{{1025, ""}}},
		{"number body", `42`, []want{{1025, ""}}},
		{"empty body", ``, []want{{1025, ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.do(http.MethodPatch, appPath, tc.body)
			if a.status != http.StatusBadRequest {
				t.Errorf("HTTP %d, want 400: %s", a.status, a.body)
			}
			got := errorsOf(t, a)
			if len(got) != len(tc.errs) {
				t.Fatalf("%d errors, want %d: %s", len(got), len(tc.errs), a.body)
			}
			for i, w := range tc.errs {
				if got[i].Code != w.code || !strings.HasPrefix(got[i].Details, w.field) {
					t.Errorf("error %d = %d %q, want code %d naming %q", i, got[i].Code, got[i].Details, w.code, w.field)
				}
			}
			// All or nothing: the good fields did not land either.
			wantApplication(t, e, withChanges(t, nil))
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t)
	big := `{"webhooks":{"url":"https://example.com/` + strings.Repeat("a", 1<<20) + `"}}`
	for _, path := range []string{appPath, providersPath} {
		a := e.do(map[string]string{appPath: http.MethodPatch, providersPath: http.MethodPost}[path], path, big)
		wantError(t, a, http.StatusRequestEntityTooLarge, 1025)
	}
	wantApplication(t, e, withChanges(t, nil))
	// Exactly at the limit is read (and then judged on its content).
	atLimit := `{"bogus":"` + strings.Repeat("a", 1<<20-len(`{"bogus":""}`)) + `"}`
	a := e.do(http.MethodPatch, appPath, atLimit)
	wantError(t, a, http.StatusBadRequest, 1010, "bogus")
}

func TestRouting(t *testing.T) {
	e := newEnv(t)
	tok := e.login()
	for _, tc := range []struct {
		method, path string
		status, code int
		allow        string
	}{
		{http.MethodGet, "/", 404, 1006, ""},
		{http.MethodGet, "/v1/nope", 404, 1006, ""},
		{http.MethodGet, "/v1/settings/application/", 404, 1006, ""},
		{http.MethodGet, "/v1/settings/application/x", 404, 1006, ""},
		{http.MethodGet, "/v1//settings/application", 404, 1006, ""},
		{http.MethodGet, "/v1/settings/../settings/application", 404, 1006, ""},
		{http.MethodGet, "/v1/settings/application/media/providers/a/b", 404, 1006, ""},
		{http.MethodPut, appPath, 405, 1025, "DELETE, GET, HEAD, PATCH"},
		{http.MethodPost, appPath, 405, 1025, "DELETE, GET, HEAD, PATCH"},
		{http.MethodPatch, providersPath, 405, 1025, "GET, HEAD, POST"},
		{http.MethodGet, providersPath + "/p1", 405, 1025, "DELETE"},
		{http.MethodDelete, "/v1/users/login", 405, 1025, "POST"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			a := e.request(tc.method, tc.path, tok, nil)
			wantError(t, a, tc.status, tc.code)
			if got := a.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestDeleteResets(t *testing.T) {
	e := newEnv(t)
	for _, body := range []string{
		`{"heartbeat_interval":9,"unhealthy_interval":90,"log_level":"error","verbose_logging":true,"callback_persist":false}`,
		`{"webhooks":{"max_concurrent_requests":24,"url":"https://example.com/x","message":{"sent":false}}}`,
		`{"garbagecollector_enable":{"messages":false},"media":{"auto_download":["voice"]},"db_garbagecollector_enable":false}`,
	} {
		if a := e.do(http.MethodPatch, appPath, body); a.status != http.StatusOK {
			t.Fatalf("PATCH %s: HTTP %d: %s", body, a.status, a.body)
		}
	}
	if a := e.do(http.MethodPost, providersPath, `[{"name":"keep","type":"www","config":{"bearer":"t"}}]`); a.status != http.StatusOK {
		t.Fatalf("POST providers: HTTP %d: %s", a.status, a.body)
	}
	a := e.do(http.MethodDelete, appPath, "")
	if a.status != http.StatusOK || strings.TrimSpace(string(a.body)) != `{"meta":{"api_status":"stable","version":"0.1.0"}}` {
		t.Fatalf("DELETE: HTTP %d: %s", a.status, a.body)
	}
	// Every field is back, deprecated ones hidden again.
	wantApplication(t, e, withChanges(t, nil))
	if names := providerNames(t, e); !reflect.DeepEqual(names, []string{"keep"}) {
		t.Errorf("providers after DELETE: %v, want [keep]", names)
	}
}

// TestConcurrentPatches: 20 clients PATCH 20 different fields at once; the
// store's read-modify-write must not lose any of them.
func TestConcurrentPatches(t *testing.T) {
	e := newEnv(t)
	tok := e.login()
	changes := map[string]any{
		"axolotl_context_striping_disabled":                  true,
		"callback_backoff_delay_ms":                          4000.0,
		"max_callback_backoff_delay_ms":                      800000.0,
		"callback_persist":                                   false,
		"db_garbagecollector_enable":                         false,
		"garbagecollector_enable.messages":                   false,
		"garbagecollector_enable.media":                      true,
		"heartbeat_interval":                                 10.0,
		"unhealthy_interval":                                 60.0,
		"media.auto_download":                                []any{"sticker"},
		"notify_user_change_number":                          true,
		"show_security_notifications":                        true,
		"skip_referral_media_download":                       true,
		"webhooks.url":                                       "https://example.com/cb",
		"webhooks.max_concurrent_requests":                   18.0,
		"webhooks.message.sent":                              false,
		"webhooks.message.delivered":                         false,
		"webhooks.message.read":                              false,
		"verbose_logging":                                    true,
		"webhook_payload_conversation_pricingmodel_disabled": true,
	}
	if len(changes) != 20 {
		t.Fatalf("%d changes, want 20", len(changes))
	}
	var wg sync.WaitGroup
	results := make(chan string, len(changes))
	for path, v := range changes {
		wg.Go(func() {
			body := nest(path, v)
			a := e.request(http.MethodPatch, appPath, tok, []byte(body))
			if a.status != http.StatusOK {
				results <- fmt.Sprintf("PATCH %s: HTTP %d: %s", body, a.status, a.body)
			}
		})
	}
	wg.Wait()
	close(results)
	for r := range results {
		t.Error(r)
	}
	wantApplication(t, e, withChanges(t, changes))
}

// nest turns a dotted path and a value into a PATCH body.
func nest(path string, v any) string {
	body := pretty(v)
	parts := strings.Split(path, ".")
	for i := len(parts) - 1; i >= 0; i-- {
		body = fmt.Sprintf("{%q:%s}", parts[i], body)
	}
	return body
}

// Answers are not HTML-escaped: a webhook URL with & reads the same in GET
// and in the "got" of an error as it was sent.
func TestAnswersAreNotHTMLEscaped(t *testing.T) {
	e := newEnv(t)
	const url = "https://hooks.example/cb?auth=a<b>&x=1"
	if a := e.do(http.MethodPatch, "/v1/settings/application", `{"webhooks":{"url":"`+url+`"}}`); a.status != http.StatusOK {
		t.Fatalf("PATCH: HTTP %d: %s", a.status, a.body)
	}
	if a := e.do(http.MethodGet, "/v1/settings/application", ""); !strings.Contains(string(a.body), `"url":"`+url+`"`) {
		t.Errorf("GET does not show the URL verbatim: %s", a.body)
	}
	a := e.do(http.MethodPatch, "/v1/settings/application", `{"webhooks":{"url":"http://hooks.example/?a=1&b=2"}}`)
	if !strings.Contains(string(a.body), `?a=1&b=2`) {
		t.Errorf("error details escape the rejected URL: %s", a.body)
	}
}

// RFC 9110: every 401 names the scheme that would be accepted.
func TestUnauthorizedCarriesWWWAuthenticate(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, path, auth, scheme string }{
		{http.MethodGet, "/v1/settings/application", "", "Bearer"},
		{http.MethodGet, "/v1/settings/application", "Bearer nope", "Bearer"},
		{http.MethodPost, "/v1/settings/application/media/providers", "Basic YWRtaW46c2VjcmV0", "Bearer"},
		{http.MethodPost, "/v1/users/login", "", "Basic"},
		{http.MethodPost, "/v1/users/login", "Basic YWRtaW46d3Jvbmc=", "Basic"},
	} {
		a := e.request(c.method, c.path, c.auth, nil)
		if a.status != http.StatusUnauthorized {
			t.Errorf("%s %s [%s]: HTTP %d, want 401", c.method, c.path, c.auth, a.status)
			continue
		}
		if h := a.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, c.scheme+" ") {
			t.Errorf("%s %s [%s]: WWW-Authenticate %q, want the %s scheme", c.method, c.path, c.auth, h, c.scheme)
		}
	}
	if a := e.do(http.MethodGet, "/v1/settings/application", ""); a.header.Get("WWW-Authenticate") != "" {
		t.Errorf("a 200 carries WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
	}
}
