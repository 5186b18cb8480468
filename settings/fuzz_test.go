package settings

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzPatch: whatever the body, Patch never panics; a rejection leaves the
// document exactly as it was and every error is a well-formed 400/413; an
// acceptance yields a document that re-validates (stored form round-trips,
// and its own GET form, minus wa_id, is an acceptable PATCH giving it back).
//
//	go test -fuzz=FuzzPatch ./settings
func FuzzPatch(f *testing.F) {
	f.Add([]byte(`{"webhooks":{"message":{"read":false}}}`))
	f.Add([]byte(`{"webhooks":{"url":"https://example.com/\ud800"},"log_level":"\udc00"}`))
	configured := Defaults("15550001111")
	configured, errs := Patch(configured, []byte(`{"heartbeat_interval":2,"unhealthy_interval":4,
		"db_garbagecollector_enable":false,"media":{"auto_download":["image"]},
		"webhooks":{"url":"http://127.0.0.1:9/cb"},"callback_backoff_delay_ms":"10"}`))
	if errs != nil {
		f.Fatal(errs)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, cur := range []Application{Defaults("15550001111"), configured} {
			checkPatch(t, cur, body)
		}
	})
}

func checkPatch(t *testing.T, cur Application, body []byte) {
	before := cur.clone()
	next, errs := Patch(cur, body)
	if !reflect.DeepEqual(cur, before) {
		t.Fatalf("Patch modified its input")
	}
	if errs != nil {
		if len(errs) == 0 {
			t.Fatalf("empty non-nil Errors")
		}
		if !reflect.DeepEqual(next, cur) || string(next.Encode()) != string(cur.Encode()) {
			t.Fatalf("rejected PATCH %q changed the document", body)
		}
		// A U+FFFD in an answer is one the client sent, never one made of
		// invalid UTF-8 or a lone surrogate.
		sentFFFD := bytes.ContainsRune(body, utf8.RuneError) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
		for _, e := range errs {
			if (e.Status != 400 && e.Status != 413) || e.Code == 0 || e.Title == "" || e.Details == "" {
				t.Fatalf("malformed error %+v for %q", e, body)
			}
			if !sentFFFD && strings.ContainsRune(e.Details, utf8.RuneError) {
				t.Fatalf("error %+v for %q shows a U+FFFD the client did not send", e, body)
			}
		}
		if s := errs.Status(); s != 400 && s != 413 {
			t.Fatalf("envelope status %d", s)
		}
		return
	}
	if !json.Valid(body) {
		t.Fatalf("accepted invalid JSON %q", body)
	}
	stored := next.Encode()
	back, err := Decode(stored, next.WaID)
	if err != nil {
		t.Fatalf("accepted %q but its stored form does not decode: %v\n%s", body, err, stored)
	}
	if !reflect.DeepEqual(back, next) || string(back.Encode()) != string(stored) {
		t.Fatalf("round trip unstable for %q:\n%s\n%s", body, stored, back.Encode())
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(next.JSON(), &doc); err != nil {
		t.Fatalf("JSON() is not an object: %v", err)
	}
	delete(doc, "wa_id")
	again, _ := json.Marshal(doc)
	for _, base := range []Application{Defaults(next.WaID), cur} {
		re, errs := Patch(base, again)
		if errs != nil {
			t.Fatalf("own JSON %s rejected: %v", again, errs)
		}
		if !reflect.DeepEqual(re, next) {
			t.Fatalf("own JSON did not reproduce the document:\n got %s\nwant %s", re.JSON(), next.JSON())
		}
	}
}
