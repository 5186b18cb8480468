package settings

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestErrorConstructors(t *testing.T) {
	cases := []struct {
		err    Error
		status int
		code   int
		title  string
	}{
		{InvalidRequest("x"), 400, 1025, "Invalid Request"},
		{InvalidValue("f", "must be x", 1), 400, 1009, "Parameter value is not valid"},
		{NotRequired("f", "unknown field"), 400, 1010, "Parameter is not required"},
		{MissingParameter("f"), 400, 1008, "Required parameter is missing"},
		{AccessDenied("x"), 401, 1005, "Access denied"},
		{NotFound("x"), 404, 1006, "Resource not found"},
		{MethodNotAllowed("PUT", "/v1/settings/application"), 405, 1025, "Invalid Request"},
		{TooLarge(1 << 20), 413, 1025, "Invalid Request"},
		{Internal("x"), 500, 1014, "Internal error"},
	}
	for _, c := range cases {
		if c.err.Status != c.status || c.err.Code != c.code || c.err.Title != c.title || c.err.Details == "" {
			t.Errorf("%+v, want %d %d %q", c.err, c.status, c.code, c.title)
		}
	}
	b, _ := json.Marshal(InvalidRequest("x"))
	if string(b) != `{"code":1025,"title":"Invalid Request","details":"x"}` {
		t.Errorf("wire form %s", b)
	}
	if d := TooLarge(1 << 20).Details; !strings.Contains(d, "1048576") {
		t.Errorf("TooLarge details %q", d)
	}
	if d := MissingParameter("media.providers[0].name").Details; !strings.HasPrefix(d, "media.providers[0].name: ") {
		t.Errorf("MissingParameter details %q", d)
	}
}

func TestInvalidValueRendersGot(t *testing.T) {
	cases := []struct {
		got  any
		want string
	}{
		{"five", `f: e, got "five"`},
		{5, `f: e, got 5`},
		{nil, `f: e, got null`},
		{json.RawMessage(`{ "a" : [1, 2] }`), `f: e, got {"a":[1,2]}`},
		{"a&b<c>", `f: e, got "a&b<c>"`},
	}
	for _, c := range cases {
		if d := InvalidValue("f", "e", c.got).Details; d != c.want {
			t.Errorf("got %q, want %q", d, c.want)
		}
	}
	long := InvalidValue("f", "e", strings.Repeat("é", 500)).Details
	if len(long) > 200 || !strings.HasSuffix(long, "…") {
		t.Errorf("long value not truncated: %d bytes", len(long))
	}
	if !utf8.ValidString(long) || !strings.HasPrefix(long, `f: e, got "é`) {
		t.Errorf("truncated badly: %q", long[:20])
	}
}

func TestErrorsStatus(t *testing.T) {
	cases := []struct {
		es   Errors
		want int
	}{
		{Errors{InvalidValue("a", "e", 1), NotRequired("b", "x")}, 400},
		{Errors{NotFound("x")}, 404},
		{Errors{AccessDenied("x"), NotFound("y")}, 400},
		{Errors{Internal("x"), InvalidRequest("y")}, 500},
		{Errors{TooLarge(10)}, 413},
		{nil, 500},
	}
	for _, c := range cases {
		if got := c.es.Status(); got != c.want {
			t.Errorf("%v.Status() = %d, want %d", c.es, got, c.want)
		}
	}
	es := Errors{InvalidValue("a", "e", 1), NotRequired("b", "x")}
	var err error = es
	if !strings.Contains(err.Error(), "a: e") || !strings.Contains(err.Error(), "b: x") {
		t.Errorf("Error() = %q", err.Error())
	}
}
