package httpapi_test

import (
	"bytes"
	"net/http"
	"testing"
	"unicode/utf8"
)

// Every JSON body the service parses answers invalid UTF-8 and escaped lone
// surrogates the same way: invalid UTF-8 is 1025 locating the byte, a lone
// surrogate is 1009 naming the field; the answer never carries a U+FFFD
// (the bytes are shown escaped), and nothing changes.
func TestBadUnicodeOnEveryBody(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		mention                  []string
	}{
		{"PATCH invalid UTF-8", http.MethodPatch, "/v1/settings/application", "{\"log_level\":\"in\xfffo\"}",
			1025, []string{"request body is not valid UTF-8: byte 0xFF at offset 16"}},
		{"PATCH lone high surrogate", http.MethodPatch, "/v1/settings/application", `{"webhooks":{"url":"https://example.com/\ud800"}}`,
			1009, []string{`webhooks.url: must be valid Unicode text (\ud800 is a lone UTF-16 surrogate), got "https://example.com/\ud800"`}},
		{"PATCH lone low surrogate", http.MethodPatch, "/v1/settings/application", `{"webhooks":{"url":"https://example.com/\udc00"}}`,
			1009, []string{`webhooks.url:`, `\udc00 is a lone`}},
		{"providers invalid UTF-8", http.MethodPost, "/v1/settings/application/media/providers", "[{\"name\":\"a\",\"type\":\"www\",\"config\":{\"bearer\":\"t\xc3\"}}]",
			1025, []string{"not valid UTF-8: byte 0xC3 at offset"}},
		{"providers lone surrogate", http.MethodPost, "/v1/settings/application/media/providers", `[{"name":"a","type":"www","config":{"bearer":"t\ud800"}}]`,
			1009, []string{`media.providers[0].config.bearer: must be valid Unicode text (\ud800`}},
		{"shards invalid UTF-8 in a key", http.MethodPost, "/v1/account/shards", "{\"sh\xffards\": 2}",
			1025, []string{"request body is not valid UTF-8: byte 0xFF at offset 4"}},
		{"shards invalid UTF-8 in a value", http.MethodPost, "/v1/account/shards", "{\"cc\": \"1\xfe\", \"phone_number\": \"6315551019\", \"shards\": 2}",
			1025, []string{"byte 0xFE at offset 9"}},
		{"shards lone surrogate", http.MethodPost, "/v1/account/shards", `{"cc": "1", "phone_number": "6315551019\ud800", "shards": 2}`,
			1009, []string{`phone_number: must be valid Unicode text (\ud800 is a lone UTF-16 surrogate), got "6315551019\ud800"`}},
		{"shards lone surrogate in a key", http.MethodPost, "/v1/account/shards", `{"\udc00": 1, "shards": 2}`,
			1009, []string{`\udc00: a field name must be valid Unicode text`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			before := e.store.State().Revision
			a := e.do(tc.method, tc.path, tc.body)
			wantError(t, a, http.StatusBadRequest, tc.code, tc.mention...)
			if bytes.ContainsRune(a.body, utf8.RuneError) || bytes.Contains(a.body, []byte(`\ufffd`)) {
				t.Errorf("answer carries U+FFFD: %s", a.body)
			}
			if got := e.store.State().Revision; got != before {
				t.Errorf("revision moved from %d to %d on a refused body", before, got)
			}
			if p, _ := e.store.Providers(); len(p) != 0 {
				t.Errorf("providers stored: %v", p)
			}
		})
	}
}
