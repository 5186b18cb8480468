package settings

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// encoding/json decodes an escaped lone surrogate to U+FFFD without an
// error; the value stored would then be one the client never sent. Every
// body the service parses refuses it with 1009 naming where it is, echoes
// the literal as sent and never shows a U+FFFD.
func TestLoneSurrogatesAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string // each in the single error's details
	}{
		{"high alone", `{"webhooks":{"url":"https://example.com/\ud800"}}`,
			[]string{`webhooks.url: must be valid Unicode text (\ud800 is a lone UTF-16 surrogate), got "https://example.com/\ud800"`}},
		{"low alone", `{"webhooks":{"url":"https://example.com/\udc00"}}`,
			[]string{`webhooks.url:`, `\udc00 is a lone`}},
		{"high then not low", `{"webhooks":{"url":"https://example.com/\uD800\u0041"}}`,
			[]string{`webhooks.url:`, `\uD800 is a lone`, `got "https://example.com/\uD800\u0041"`}},
		{"high then high then low", `{"log_level":"\ud800\ud800\udc00"}`,
			[]string{`log_level:`, `\ud800 is a lone`}},
		{"high at the end", `{"log_level":"info\ud800"}`, []string{`log_level:`, `\ud800 is a lone`}},
		{"low then high", `{"log_level":"\udc00\ud800"}`, []string{`log_level:`, `\udc00 is a lone`}},
		{"escaped backslash is not an escape, the next one is", `{"log_level":"\\ud800\ud800"}`, []string{`log_level:`}},
		{"in an array", `{"media":{"auto_download":["image","\udfff"]}}`,
			[]string{`media.auto_download[1]: must be valid Unicode text (\udfff is a lone UTF-16 surrogate), got "\udfff"`}},
		{"in a millisecond string", `{"callback_backoff_delay_ms":"1\ud800"}`, []string{`callback_backoff_delay_ms:`}},
		{"as a group's value", `{"webhooks":"\ud800"}`, []string{`webhooks: must be an object, got "\ud800"`}},
		{"in a key", `{"webhooks":{"\ud800":1}}`,
			[]string{`webhooks.\ud800: a field name must be valid Unicode text (\ud800 is a lone UTF-16 surrogate)`}},
		{"in a top-level key", `{"log\udc00":"info"}`, []string{`log\udc00: a field name`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := Defaults("1")
			next, errs := Patch(cur, []byte(tc.body))
			if len(errs) != 1 || errs[0].Code != CodeInvalidValue || errs[0].Status != 400 {
				t.Fatalf("Patch(%s) errs = %v, want one 400/1009", tc.body, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs[0].Details, w) {
					t.Errorf("details %q\nwant it to contain %q", errs[0].Details, w)
				}
			}
			if strings.ContainsRune(errs[0].Details, utf8.RuneError) {
				t.Errorf("details %q contain U+FFFD", errs[0].Details)
			}
			if !reflect.DeepEqual(next, cur) {
				t.Errorf("a refused PATCH changed the document")
			}
		})
	}
}

// What is not a lone surrogate is still accepted: a proper pair, an
// escaped U+FFFD, a U+FFFD sent as UTF-8, an escaped backslash before "u".
func TestValidEscapesStillAccepted(t *testing.T) {
	for _, u := range []string{
		`https://example.com/\ud83d\ude00`,
		`https://example.com/\uD83D\uDE00x`,
		`https://example.com/\ufffd`,
		"https://example.com/\uFFFD",
		`https://example.com/a\\ud800`,
	} {
		body := `{"webhooks":{"url":"` + u + `"}}`
		if _, errs := Patch(Defaults("1"), []byte(body)); errs != nil {
			t.Errorf("Patch(%s) errs = %v, want accepted", body, errs)
		}
	}
}

func TestLoneSurrogatesInProviders(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`[{"name":"a","type":"www","config":{"bearer":"t\ud800"}}]`,
			`media.providers[0].config.bearer: must be valid Unicode text (\ud800 is a lone UTF-16 surrogate), got "t\ud800"`},
		{`[{"name":"ok","type":"www","config":{"bearer":"t"}},{"name":"b\udc00","type":"www","config":{"bearer":"t"}}]`,
			`media.providers[1].name: must be valid Unicode text (\udc00`},
		{`[{"name":"a","type":"www","config":{"basic":{"username":"u","password":"\ud800x"}}}]`,
			`media.providers[0].config.basic.password:`},
		{`[{"name":"a","type":"www","config":{"bearer":"t"},"\ud800":1}]`,
			`media.providers[0].\ud800: a field name`},
	} {
		list, errs := ParseProviders([]byte(tc.body))
		if list != nil || len(errs) != 1 || errs[0].Code != CodeInvalidValue || !strings.Contains(errs[0].Details, tc.want) {
			t.Errorf("ParseProviders(%s) = %v, %v\nwant one 1009 containing %q", tc.body, list, errs, tc.want)
			continue
		}
		if strings.ContainsRune(errs[0].Details, utf8.RuneError) {
			t.Errorf("details %q contain U+FFFD", errs[0].Details)
		}
	}
}

// Two keys with different lone surrogates are different keys (both decode
// to U+FFFD), and a duplicate one is named by its literal.
func TestLoneSurrogateKeysAndDuplicates(t *testing.T) {
	_, errs := Patch(Defaults("1"), []byte(`{"\ud800":1,"\udc00":2}`))
	if len(errs) != 2 || errs[0].Code != CodeInvalidValue || errs[1].Code != CodeInvalidValue {
		t.Errorf("errs = %v, want two 1009", errs)
	}
	_, errs = Patch(Defaults("1"), []byte(`{"\ud800":1,"\ud800":2}`))
	if len(errs) != 1 || errs[0].Code != CodeInvalidRequest || !strings.Contains(errs[0].Details, `duplicate key "\\ud800"`) ||
		strings.ContainsRune(errs[0].Details, utf8.RuneError) {
		t.Errorf("errs = %v, want one 1025 naming the duplicate key by its literal", errs)
	}
}

// The invalid-UTF-8 answer locates the bad byte in hex instead of echoing it.
func TestInvalidUTF8Located(t *testing.T) {
	_, errs := Patch(Defaults("1"), []byte("{\"log_level\":\"in\xfffo\"}"))
	want := "request body is not valid UTF-8: byte 0xFF at offset 16"
	if len(errs) != 1 || errs[0].Code != CodeInvalidRequest || errs[0].Details != want {
		t.Errorf("errs = %v, want one 1025 %q", errs, want)
	}
}
