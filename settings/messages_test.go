package settings

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseMessageRequest(t *testing.T) {
	long := strings.Repeat("é", MaxMessageBody) // 4096 characters, 8192 bytes
	type want struct {
		code  int
		field string
	}
	cases := []struct {
		name string
		body string
		// errs are the expected (code, field) pairs in order; none means
		// accepted with to and body.
		errs     []want
		to, text string
	}{
		{name: "the TRAFFIC.md example", body: `{"recipient_type":"individual","to":"16315551234","type":"text","text":{"body":"hello"}}`, to: "16315551234", text: "hello"},
		{name: "type and recipient_type default", body: `{"to":"1","text":{"body":"hi"}}`, to: "1", text: "hi"},
		{name: "body of exactly 4096 characters", body: `{"to":"1","text":{"body":"` + long + `"}}`, to: "1", text: long},
		{name: "not JSON", body: `{"to":`, errs: []want{{1025, ""}}},
		{name: "not an object", body: `["to"]`, errs: []want{{1025, ""}}},
		{name: "empty object", body: `{}`, errs: []want{{1008, "text.body"}, {1008, "to"}}},
		{name: "to missing", body: `{"type":"text","text":{"body":"x"}}`, errs: []want{{1008, "to"}}},
		{name: "to with a plus", body: `{"to":"+16315551234","text":{"body":"x"}}`, errs: []want{{1009, "to"}}},
		{name: "to with spaces", body: `{"to":"1 631 555","text":{"body":"x"}}`, errs: []want{{1009, "to"}}},
		{name: "to empty", body: `{"to":"","text":{"body":"x"}}`, errs: []want{{1009, "to"}}},
		{name: "to a number", body: `{"to":16315551234,"text":{"body":"x"}}`, errs: []want{{1009, "to"}}},
		{name: "to of 16 digits", body: `{"to":"1234567890123456","text":{"body":"x"}}`, errs: []want{{1009, "to"}}},
		{name: "type image", body: `{"to":"1","type":"image","text":{"body":"x"}}`, errs: []want{{1009, "type"}}},
		{name: "type null", body: `{"to":"1","type":null,"text":{"body":"x"}}`, errs: []want{{1009, "type"}}},
		{name: "recipient_type group", body: `{"to":"1","recipient_type":"group","text":{"body":"x"}}`, errs: []want{{1009, "recipient_type"}}},
		{name: "text missing", body: `{"to":"1"}`, errs: []want{{1008, "text.body"}}},
		{name: "text a string", body: `{"to":"1","text":"hello"}`, errs: []want{{1009, "text"}}},
		{name: "text.body missing", body: `{"to":"1","text":{}}`, errs: []want{{1008, "text.body"}}},
		{name: "text.body empty", body: `{"to":"1","text":{"body":""}}`, errs: []want{{1009, "text.body"}}},
		{name: "text.body a number", body: `{"to":"1","text":{"body":5}}`, errs: []want{{1009, "text.body"}}},
		{name: "text.body of 4097 characters", body: `{"to":"1","text":{"body":"` + long + `x"}}`, errs: []want{{1009, "text.body"}}},
		{name: "text.body of 4097 ASCII characters", body: `{"to":"1","text":{"body":"` + strings.Repeat("x", MaxMessageBody+1) + `"}}`, errs: []want{{1009, "text.body"}}},
		{name: "text.body a lone surrogate", body: `{"to":"1","text":{"body":"\ud800"}}`, errs: []want{{1009, "text.body"}}},
		{name: "unknown top-level field", body: `{"to":"1","text":{"body":"x"},"preview":true}`, errs: []want{{1010, "preview"}}},
		{name: "unknown field in text", body: `{"to":"1","text":{"body":"x","boddy":"y"}}`, errs: []want{{1010, "text.boddy"}}},
		{name: "every problem at once", body: `{"to":"x","type":"audio","text":{"body":""}}`, errs: []want{{1009, "text.body"}, {1009, "to"}, {1009, "type"}}},
		{name: "duplicate key", body: `{"to":"1","to":"2","text":{"body":"x"}}`, errs: []want{{1025, ""}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg, errs := ParseMessageRequest([]byte(c.body))
			if len(c.errs) == 0 {
				if errs != nil {
					t.Fatalf("refused: %v", errs)
				}
				if msg.To != c.to || msg.Body != c.text {
					t.Fatalf("got %+v, want to=%q body=%q", msg, c.to, c.text)
				}
				return
			}
			if len(errs) != len(c.errs) {
				t.Fatalf("got %d errors %v, want %v", len(errs), errs, c.errs)
			}
			for i, w := range c.errs {
				e := errs[i]
				if e.Code != w.code || e.Status != 400 {
					t.Errorf("error %d: %d/%d %q, want code %d", i, e.Status, e.Code, e.Details, w.code)
				}
				if w.field != "" && !strings.HasPrefix(e.Details, w.field+": ") {
					t.Errorf("error %d: details %q do not name %q first", i, e.Details, w.field)
				}
			}
			if msg != (Message{}) {
				t.Errorf("a refused request returned %+v", msg)
			}
		})
	}
}

func TestNotPrimaryCoreapp(t *testing.T) {
	e := NotPrimaryCoreapp("shard 3 of 4 has no owner")
	if got := fmt.Sprintf("%d %d %s", e.Status, e.Code, e.Title); got != "503 1018 Not Primary Coreapp" {
		t.Errorf("got %s", got)
	}
}
