package settings

import (
	"encoding/json"
	"strings"
	"testing"
)

// fieldCase is one PATCH of a single field (value is raw JSON) against the
// defaults. want is the compact JSON GET then shows for the field; empty
// means rejected with code.
type fieldCase struct {
	value string
	want  string
	code  int
	// detail, when set, must appear in the error's Details.
	detail string
}

func ok(value, want string) fieldCase { return fieldCase{value: value, want: want} }
func bad(value string, code int) fieldCase {
	return fieldCase{value: value, code: code}
}
func badWith(value string, code int, detail string) fieldCase {
	return fieldCase{value: value, code: code, detail: detail}
}

// nest builds {"a":{"b":value}} from "a.b".
func nest(path, value string) string {
	parts := strings.Split(path, ".")
	s := value
	for i := len(parts) - 1; i >= 0; i-- {
		k, _ := json.Marshal(parts[i])
		s = "{" + string(k) + ":" + s + "}"
	}
	return s
}

// lookup finds a dotted path in a JSON document and returns it compact.
func lookup(t *testing.T, doc []byte, path string) (string, bool) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatalf("bad JSON %s: %v", doc, err)
	}
	parts := strings.Split(path, ".")
	for i, p := range parts {
		raw, ok := m[p]
		if !ok {
			return "", false
		}
		if i == len(parts)-1 {
			return string(raw), true
		}
		m = nil
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s is not an object in %s", p, doc)
		}
	}
	return "", false
}

var boolCases = []fieldCase{
	ok("true", "true"), ok("false", "false"),
	bad(`"true"`, 1009), bad("1", 1009), bad("0", 1009), bad("{}", 1009), bad("[]", 1009), bad(`""`, 1009),
	badWith("null", 1009, "use DELETE"),
}

func millisCases(extra ...fieldCase) []fieldCase {
	return append([]fieldCase{
		bad("0", 1009), bad("-1", 1009), bad(`"0"`, 1009), bad(`"-5"`, 1009), bad(`"+5"`, 1009),
		bad("5.5", 1009), bad(`"5.5"`, 1009), bad("5.0", 1009), bad("1e3", 1009), bad("1e400", 1009),
		bad(`"abc"`, 1009), bad(`""`, 1009), bad(`" 5"`, 1009), bad("true", 1009), bad("[5]", 1009),
		bad("{}", 1009), badWith("null", 1009, "use DELETE"),
		badWith("99999999999999999999", 1009, "at most 9223372036854 milliseconds"),
		badWith(`"99999999999999999999"`, 1009, "at most"),
		badWith("-99999999999999999999", 1009, "≥ 1"),
	}, extra...)
}

func secondsCases(extra ...fieldCase) []fieldCase {
	return append([]fieldCase{
		bad("0", 1009), bad("-3", 1009), bad(`"5"`, 1009), bad("5.0", 1009), bad("5.5", 1009),
		bad("1e1", 1009), bad("1e400", 1009), bad("true", 1009), bad("{}", 1009), bad("[]", 1009),
		badWith("null", 1009, "use DELETE"),
		badWith("9223372037", 1009, "at most 9223372036 seconds"),
		badWith("99999999999999999999", 1009, "at most"),
	}, extra...)
}

func fieldTable() map[string][]fieldCase {
	t := map[string][]fieldCase{}
	for _, p := range []string{
		"axolotl_context_striping_disabled", "callback_persist", "db_garbagecollector_enable",
		"garbagecollector_enable.messages", "garbagecollector_enable.media", "notify_user_change_number",
		"show_security_notifications", "skip_referral_media_download",
		"webhook_payload_conversation_pricingmodel_disabled",
		"webhooks.message.sent", "webhooks.message.delivered", "webhooks.message.read", "verbose_logging",
	} {
		t[p] = boolCases
	}
	t["pass_through"] = []fieldCase{
		ok("false", "false"),
		badWith("true", 1009, "cannot be re-enabled"),
		bad(`"false"`, 1009), bad("0", 1009), badWith("null", 1009, "use DELETE"),
	}
	t["callback_backoff_delay_ms"] = millisCases(
		ok("1", "1"), ok("5000", "5000"), ok(`"5000"`, "5000"), ok(`"0300"`, "300"), ok("900000", "900000"),
		badWith("900001", 1009, "≤ max_callback_backoff_delay_ms (900000)"),
	)
	t["max_callback_backoff_delay_ms"] = millisCases(
		ok("3000", "3000"), ok(`"1000000"`, "1000000"), ok("9223372036854", "9223372036854"),
		badWith("2999", 1009, "≥ callback_backoff_delay_ms (3000)"),
		badWith("9223372036855", 1009, "at most"),
	)
	t["heartbeat_interval"] = secondsCases(
		ok("1", "1"), ok("29", "29"),
		badWith("30", 1009, "less than unhealthy_interval (30)"),
	)
	t["unhealthy_interval"] = secondsCases(
		ok("6", "6"), ok("9223372036", "9223372036"),
		badWith("5", 1009, "greater than heartbeat_interval (5)"),
	)
	t["media.auto_download"] = []fieldCase{
		ok("[]", "[]"), ok(`["image"]`, `["image"]`),
		ok(`["audio","document","voice","video","image","sticker"]`, `["audio","document","voice","video","image","sticker"]`),
		badWith(`["gif"]`, 1009, "element 0"), badWith(`["image","image"]`, 1009, `"image" appears twice`),
		bad(`"image"`, 1009), bad(`[null]`, 1009), bad(`[1]`, 1009), bad(`["Image"]`, 1009), bad(`[["image"]]`, 1009),
		bad("{}", 1009), badWith("null", 1009, "use DELETE"),
	}
	t["webhooks.url"] = []fieldCase{
		ok(`""`, `""`),
		ok(`"https://example.com/hook"`, `"https://example.com/hook"`),
		ok(`"https://example.com/hook?auth=secret&x=1"`, `"https://example.com/hook?auth=secret&x=1"`),
		ok(`"https://example.com:8443/"`, `"https://example.com:8443/"`),
		ok(`"http://127.0.0.1:8080/cb"`, `"http://127.0.0.1:8080/cb"`),
		ok(`"http://127.5.5.5/cb"`, `"http://127.5.5.5/cb"`),
		ok(`"http://localhost/x"`, `"http://localhost/x"`),
		ok(`"http://[::1]:9000/"`, `"http://[::1]:9000/"`),
		bad(`"http://example.com/"`, 1009), bad(`"http://10.0.0.1/"`, 1009),
		bad(`"http://localhost.evil.com/"`, 1009), bad(`"ftp://example.com/"`, 1009),
		bad(`"example.com"`, 1009), bad(`"/relative"`, 1009), bad(`"https://"`, 1009),
		bad(`"https://:443/"`, 1009), bad(`"https://a.com:99999/"`, 1009), bad(`"https:opaque"`, 1009),
		bad(`"https://exa mple.com/"`, 1009),
		bad(`"https://a.com/`+strings.Repeat("x", 2048)+`"`, 1009),
		bad("5", 1009), bad("true", 1009), bad("{}", 1009), badWith("null", 1009, "use DELETE"),
	}
	t["webhooks.max_concurrent_requests"] = []fieldCase{
		ok("6", "6"), ok("12", "12"), ok("18", "18"), ok("24", "24"),
		badWith("7", 1009, "one of 6, 12, 18, 24"), bad("0", 1009), bad("30", 1009), bad(`"6"`, 1009),
		bad("6.0", 1009), bad("true", 1009), badWith("null", 1009, "use DELETE"),
	}
	t["log_level"] = []fieldCase{
		ok(`"info"`, `"info"`), ok(`"warning"`, `"warning"`), ok(`"error"`, `"error"`), ok(`"fatal"`, `"fatal"`),
		bad(`"debug"`, 1009), bad(`"INFO"`, 1009), bad(`""`, 1009), bad("1", 1009), bad("[]", 1009),
		badWith("null", 1009, "use DELETE"),
	}
	t["wa_id"] = []fieldCase{badWith(`"15550001111"`, 1010, "read-only"), bad("null", 1010)}
	return t
}

// TestFieldTable covers every rule of SETTINGS.md "Fields", one PATCH of one
// field at a time against the defaults.
func TestFieldTable(t *testing.T) {
	table := fieldTable()
	for _, f := range schema() {
		if _, ok := table[f.path]; !ok {
			t.Errorf("schema field %s has no test cases", f.path)
		}
	}
	for path, cases := range table {
		for _, c := range cases {
			t.Run(path+"="+c.value[:min(len(c.value), 40)], func(t *testing.T) {
				cur := Defaults("15550001111")
				body := nest(path, c.value)
				got, errs := Patch(cur, []byte(body))
				if c.want != "" {
					if errs != nil {
						t.Fatalf("PATCH %s rejected: %v", body, errs)
					}
					v, found := lookup(t, got.JSON(), path)
					if !found || v != c.want {
						t.Fatalf("PATCH %s: GET shows %s=%s (found %v), want %s", body, path, v, found, c.want)
					}
					return
				}
				if len(errs) != 1 {
					t.Fatalf("PATCH %s: want exactly one error, got %v", body, errs)
				}
				e := errs[0]
				if e.Code != c.code || e.Status != 400 {
					t.Fatalf("PATCH %s: got %d/%d %q, want code %d status 400", body, e.Status, e.Code, e.Details, c.code)
				}
				if !strings.HasPrefix(e.Details, path+": ") {
					t.Fatalf("PATCH %s: details %q do not start with the full path %q", body, e.Details, path)
				}
				if c.detail != "" && !strings.Contains(e.Details, c.detail) {
					t.Fatalf("PATCH %s: details %q do not mention %q", body, e.Details, c.detail)
				}
				if string(got.Encode()) != string(cur.Encode()) {
					t.Fatalf("PATCH %s rejected but changed the document", body)
				}
			})
		}
	}
}

func TestSeedExampleDetails(t *testing.T) {
	_, errs := Patch(Defaults("1"), []byte(`{"heartbeat_interval":"five"}`))
	want := `heartbeat_interval: must be an integer number of seconds ≥ 1, got "five"`
	if len(errs) != 1 || errs[0].Details != want || errs[0].Title != "Parameter value is not valid" {
		t.Fatalf("got %+v, want details %q", errs, want)
	}
}
