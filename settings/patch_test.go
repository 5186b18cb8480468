package settings

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func mustPatch(t *testing.T, cur Application, body string) Application {
	t.Helper()
	next, errs := Patch(cur, []byte(body))
	if errs != nil {
		t.Fatalf("PATCH %s: %v", body, errs)
	}
	return next
}

func TestPatchDeepMerge(t *testing.T) {
	cur := mustPatch(t, Defaults("1"), `{"webhooks":{"url":"https://example.com/cb","max_concurrent_requests":12}}`)
	next := mustPatch(t, cur, `{"webhooks":{"message":{"read":false}}}`)
	want := cur.clone()
	want.Webhooks.Message.Read = false
	if !reflect.DeepEqual(next, want) {
		t.Fatalf("deep merge changed more than the leaf:\n got %s\nwant %s", next.JSON(), want.JSON())
	}
	if cur.Webhooks.Message.Read != true {
		t.Fatal("Patch modified its input")
	}
}

func TestPatchReplacesArraysWhole(t *testing.T) {
	cur := mustPatch(t, Defaults("1"), `{"media":{"auto_download":["image","video"]}}`)
	next := mustPatch(t, cur, `{"media":{"auto_download":["audio"]}}`)
	if !reflect.DeepEqual(next.Media.AutoDownload, []string{"audio"}) {
		t.Fatalf("auto_download = %v, want [audio]", next.Media.AutoDownload)
	}
	if !reflect.DeepEqual(cur.Media.AutoDownload, []string{"image", "video"}) {
		t.Fatal("Patch modified its input's array")
	}
	next = mustPatch(t, next, `{"media":{"auto_download":[]}}`)
	if next.Media.AutoDownload == nil || len(next.Media.AutoDownload) != 0 {
		t.Fatalf("auto_download = %#v, want empty non-nil", next.Media.AutoDownload)
	}
}

func TestPatchEmptyObjectChangesNothing(t *testing.T) {
	cur := Defaults("1")
	if next := mustPatch(t, cur, ` { } `); !reflect.DeepEqual(next, cur) {
		t.Fatal("{} changed the document")
	}
}

func TestPatchAllOrNothing(t *testing.T) {
	cur := Defaults("1")
	next, errs := Patch(cur, []byte(`{"log_level":"error","heartbeat_interval":0}`))
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Details, "heartbeat_interval: ") {
		t.Fatalf("errs = %v", errs)
	}
	if !reflect.DeepEqual(next, cur) || next.LogLevel() != "info" {
		t.Fatal("a rejected PATCH changed the good field")
	}
}

func TestPatchSeveralErrorsSortedByPath(t *testing.T) {
	body := `{"webhooks":{"foo":1,"url":"http://example.com"},"wa_id":"2","log_level":"x","heartbeat_interval":0,"pass_through":null}`
	_, errs := Patch(Defaults("1"), []byte(body))
	type want struct {
		path string
		code int
	}
	wants := []want{
		{"heartbeat_interval", 1009}, {"log_level", 1009}, {"pass_through", 1009},
		{"wa_id", 1010}, {"webhooks.foo", 1010}, {"webhooks.url", 1009},
	}
	if len(errs) != len(wants) {
		t.Fatalf("got %d errors, want %d: %v", len(errs), len(wants), errs)
	}
	for i, w := range wants {
		if errs[i].Code != w.code || !strings.HasPrefix(errs[i].Details, w.path+": ") {
			t.Errorf("error %d = %d %q, want %d on %s", i, errs[i].Code, errs[i].Details, w.code, w.path)
		}
	}
	if errs.Status() != 400 {
		t.Errorf("status %d", errs.Status())
	}
}

func TestPatchCrossFieldOnMergedResult(t *testing.T) {
	cases := []struct {
		name  string
		cur   string // applied to the defaults first
		body  string
		paths []string // rejected with 1009 on these; nil = accepted
	}{
		{"unhealthy below heartbeat", "", `{"unhealthy_interval":3}`, []string{"unhealthy_interval"}},
		{"unhealthy equal to heartbeat", "", `{"unhealthy_interval":5}`, []string{"unhealthy_interval"}},
		{"both lowered together", "", `{"heartbeat_interval":1,"unhealthy_interval":3}`, nil},
		{"heartbeat raised past unhealthy", "", `{"heartbeat_interval":40}`, []string{"heartbeat_interval"}},
		{"both set, in conflict", "", `{"heartbeat_interval":10,"unhealthy_interval":10}`, []string{"heartbeat_interval", "unhealthy_interval"}},
		{"heartbeat fine against stored unhealthy", `{"unhealthy_interval":100}`, `{"heartbeat_interval":40}`, nil},
		{"bad heartbeat hides the cross check", "", `{"heartbeat_interval":0,"unhealthy_interval":3}`, []string{"heartbeat_interval"}},
		{"backoff above max", "", `{"callback_backoff_delay_ms":1000000}`, []string{"callback_backoff_delay_ms"}},
		{"backoff equal to max", "", `{"callback_backoff_delay_ms":"900000"}`, nil},
		{"both delays raised", "", `{"callback_backoff_delay_ms":"1000000","max_callback_backoff_delay_ms":2000000}`, nil},
		{"max below backoff", "", `{"max_callback_backoff_delay_ms":10}`, []string{"max_callback_backoff_delay_ms"}},
		{"both delays in conflict", "", `{"callback_backoff_delay_ms":20,"max_callback_backoff_delay_ms":10}`,
			[]string{"callback_backoff_delay_ms", "max_callback_backoff_delay_ms"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cur := Defaults("1")
			if c.cur != "" {
				cur = mustPatch(t, cur, c.cur)
			}
			next, errs := Patch(cur, []byte(c.body))
			if c.paths == nil {
				if errs != nil {
					t.Fatalf("rejected: %v", errs)
				}
				return
			}
			if len(errs) != len(c.paths) {
				t.Fatalf("errs = %v, want one per %v", errs, c.paths)
			}
			for i, p := range c.paths {
				if errs[i].Code != 1009 || !strings.HasPrefix(errs[i].Details, p+": ") {
					t.Errorf("error %d = %d %q, want 1009 on %s", i, errs[i].Code, errs[i].Details, p)
				}
			}
			if !reflect.DeepEqual(next, cur) {
				t.Error("rejected PATCH changed the document")
			}
		})
	}
}

func TestPatchShapeErrors(t *testing.T) {
	cases := []struct {
		body string
		code int
		path string // "" = a body-level error
	}{
		{``, 1025, ""}, {`   `, 1025, ""}, {`null`, 1025, ""}, {`[]`, 1025, ""}, {`5`, 1025, ""},
		{`"x"`, 1025, ""}, {`{`, 1025, ""}, {`{} {}`, 1025, ""}, {`{}x`, 1025, ""}, {`{"a":1,}`, 1025, ""},
		{`{"log_level":"info","log_level":"error"}`, 1025, ""},
		{`{"webhooks":{"url":"","url":""}}`, 1025, ""},
		{`{"webhooks":{"message":{"read":true}},"webhooks":{}}`, 1025, ""},
		{`{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, 1025, ""},
		{`{"webhooks":null}`, 1009, "webhooks"},
		{`{"webhooks":5}`, 1009, "webhooks"},
		{`{"webhooks":[]}`, 1009, "webhooks"},
		{`{"webhooks":{"message":true}}`, 1009, "webhooks.message"},
		{`{"garbagecollector_enable":false}`, 1009, "garbagecollector_enable"},
		{`{"log_level":{"a":1}}`, 1009, "log_level"},
		{`{"webhooks":{"message":{"read":{}}}}`, 1009, "webhooks.message.read"},
		{`{"webhooks":{"foo":{"bar":1}}}`, 1010, "webhooks.foo"},
		{`{"webhooks":{"message":{"seen":true}}}`, 1010, "webhooks.message.seen"},
		{`{"webhooks.url":"https://example.com"}`, 1010, "webhooks.url"},
		{`{"":1}`, 1010, `""`},
		{`{"media":{"providers":[]}}`, 1010, "media.providers"},
		{`{"foo":1}`, 1010, "foo"},
	}
	for _, c := range cases {
		t.Run(c.body[:min(len(c.body), 50)], func(t *testing.T) {
			cur := Defaults("1")
			next, errs := Patch(cur, []byte(c.body))
			if len(errs) != 1 || errs[0].Code != c.code || errs[0].Status != 400 || errs[0].Details == "" {
				t.Fatalf("errs = %+v, want one %d", errs, c.code)
			}
			if c.path != "" && !strings.HasPrefix(errs[0].Details, c.path+": ") {
				t.Fatalf("details %q do not name %s", errs[0].Details, c.path)
			}
			if !reflect.DeepEqual(next, cur) {
				t.Fatal("rejected PATCH changed the document")
			}
		})
	}
}

func TestPatchLongUnknownKeyIsShortened(t *testing.T) {
	key := strings.Repeat("k", 5000)
	_, errs := Patch(Defaults("1"), []byte(`{"`+key+`":1}`))
	if len(errs) != 1 || len(errs[0].Details) > 300 {
		t.Fatalf("details too long (%d bytes)", len(errs[0].Details))
	}
}

func TestPatchTooLarge(t *testing.T) {
	body := `{"webhooks":{"url":"https://a.example/` + strings.Repeat("x", MaxBodyBytes) + `"}}`
	_, errs := Patch(Defaults("1"), []byte(body))
	if len(errs) != 1 || errs[0].Status != 413 || errs[0].Code != 1025 {
		t.Fatalf("errs = %v", errs)
	}
	if _, errs := ParseProviders([]byte(body)); len(errs) != 1 || errs[0].Status != 413 {
		t.Fatalf("providers errs = %v", errs)
	}
}

// encoding/json turns invalid UTF-8 into U+FFFD; the body must be refused,
// not stored as a value the client never sent.
func TestPatchInvalidUTF8IsRefused(t *testing.T) {
	cur := Defaults("1")
	for _, body := range []string{
		"{\"webhooks\":{\"url\":\"https://a.example/\xff\"}}",
		"{\"log_level\":\"info\xc3\"}",
	} {
		next, errs := Patch(cur, []byte(body))
		if len(errs) != 1 || errs[0].Code != CodeInvalidRequest || !strings.Contains(errs[0].Details, "UTF-8") {
			t.Errorf("Patch(%q) errs = %v, want one 1025 naming UTF-8", body, errs)
		}
		if !reflect.DeepEqual(next, cur) {
			t.Errorf("Patch(%q) changed the document", body)
		}
	}
	if _, errs := ParseProviders([]byte("[{\"name\":\"a\",\"type\":\"www\",\"config\":{\"bearer\":\"t\xff\"}}]")); len(errs) != 1 || errs[0].Code != CodeInvalidRequest {
		t.Errorf("ParseProviders with invalid UTF-8: errs = %v, want one 1025", errs)
	}
}

// A well-formed URL over the length limit is refused with a message saying so.
func TestPatchLongWebhookURLSaysWhy(t *testing.T) {
	u := "https://a.example/" + strings.Repeat("x", maxURLLen)
	_, errs := Patch(Defaults("1"), []byte(`{"webhooks":{"url":"`+u+`"}}`))
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Details, "webhooks.url: ") ||
		!strings.Contains(errs[0].Details, fmt.Sprintf("at most %d bytes", maxURLLen)) {
		t.Fatalf("errs = %v, want one webhooks.url error naming the %d-byte limit", errs, maxURLLen)
	}
	ok := "https://a.example/" + strings.Repeat("x", maxURLLen-len("https://a.example/"))
	if _, errs := Patch(Defaults("1"), []byte(`{"webhooks":{"url":"`+ok+`"}}`)); errs != nil {
		t.Fatalf("a URL of exactly %d bytes: errs = %v", maxURLLen, errs)
	}
}
