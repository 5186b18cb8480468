package settings

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseProvidersValid(t *testing.T) {
	body := `[{"name":"cdn-1","type":"www","config":{"bearer":"tok"}},
	          {"name":"Media_2","type":"www","config":{"basic":{"username":"u","password":"p"}}}]`
	ps, errs := ParseProviders([]byte(body))
	if errs != nil {
		t.Fatal(errs)
	}
	want := []Provider{
		{Name: "cdn-1", Type: "www", Config: ProviderConfig{Bearer: "tok"}},
		{Name: "Media_2", Type: "www", Config: ProviderConfig{Basic: &BasicAuth{Username: "u", Password: "p"}}},
	}
	if !reflect.DeepEqual(ps, want) {
		t.Fatalf("got %+v", ps)
	}
	if ps, errs := ParseProviders([]byte(`[]`)); errs != nil || len(ps) != 0 {
		t.Fatalf("empty array: %v %v", ps, errs)
	}
}

func TestParseProvidersErrors(t *testing.T) {
	long := strings.Repeat("a", 201)
	cases := []struct {
		body string
		code int
		path string // "" = body-level
	}{
		{`{}`, 1025, ""},
		{`not json`, 1025, ""},
		{`[{"name":"a","name":"b","type":"www","config":{"bearer":"t"}}]`, 1025, ""},
		{`[5]`, 1009, "media.providers[0]"},
		{`[{"type":"www","config":{"bearer":"t"}}]`, 1008, "media.providers[0].name"},
		{`[{"name":"a b","type":"www","config":{"bearer":"t"}}]`, 1009, "media.providers[0].name"},
		{`[{"name":"","type":"www","config":{"bearer":"t"}}]`, 1009, "media.providers[0].name"},
		{`[{"name":"` + long + `","type":"www","config":{"bearer":"t"}}]`, 1009, "media.providers[0].name"},
		{`[{"name":5,"type":"www","config":{"bearer":"t"}}]`, 1009, "media.providers[0].name"},
		{`[{"name":"a","config":{"bearer":"t"}}]`, 1008, "media.providers[0].type"},
		{`[{"name":"a","type":"ftp","config":{"bearer":"t"}}]`, 1009, "media.providers[0].type"},
		{`[{"name":"a","type":"www"}]`, 1008, "media.providers[0].config"},
		{`[{"name":"a","type":"www","config":"t"}]`, 1009, "media.providers[0].config"},
		{`[{"name":"a","type":"www","config":{}}]`, 1008, "media.providers[0].config"},
		{`[{"name":"a","type":"www","config":{"bearer":"t","basic":{"username":"u","password":"p"}}}]`, 1009, "media.providers[0].config"},
		{`[{"name":"a","type":"www","config":{"bearer":""}}]`, 1009, "media.providers[0].config.bearer"},
		{`[{"name":"a","type":"www","config":{"bearer":null}}]`, 1009, "media.providers[0].config.bearer"},
		{`[{"name":"a","type":"www","config":{"basic":{"username":"u"}}}]`, 1008, "media.providers[0].config.basic.password"},
		{`[{"name":"a","type":"www","config":{"basic":{"username":"u","password":"p","x":1}}}]`, 1010, "media.providers[0].config.basic.x"},
		{`[{"name":"a","type":"www","config":{"basic":[]}}]`, 1009, "media.providers[0].config.basic"},
		{`[{"name":"a","type":"www","config":{"bearer":"t","token":"x"}}]`, 1010, "media.providers[0].config.token"},
		{`[{"name":"a","type":"www","config":{"bearer":"t"},"extra":1}]`, 1010, "media.providers[0].extra"},
		{`[{"name":"a","type":"www","config":{"bearer":"t"}},{"name":"a","type":"www","config":{"bearer":"u"}}]`, 1009, "media.providers[1].name"},
	}
	for _, c := range cases {
		t.Run(c.body[:min(len(c.body), 60)], func(t *testing.T) {
			ps, errs := ParseProviders([]byte(c.body))
			if ps != nil || len(errs) != 1 || errs[0].Code != c.code || errs[0].Status != 400 {
				t.Fatalf("got %v %+v, want one %d", ps, errs, c.code)
			}
			if c.path != "" && !strings.HasPrefix(errs[0].Details, c.path+": ") {
				t.Fatalf("details %q do not name %s", errs[0].Details, c.path)
			}
			if strings.Contains(errs[0].Details, `"p"`) || strings.Contains(errs[0].Details, `"u"}`) {
				t.Fatalf("details leak a secret: %q", errs[0].Details)
			}
		})
	}
}

func TestParseProvidersAllOrNothingSeveralErrors(t *testing.T) {
	body := `[{"name":"ok","type":"www","config":{"bearer":"t"}},{"type":"x"},{"name":"b","type":"www","config":{"bearer":"t"}}]`
	ps, errs := ParseProviders([]byte(body))
	if ps != nil || len(errs) != 3 {
		t.Fatalf("got %v %v", ps, errs)
	}
	for i, p := range []string{"media.providers[1].name", "media.providers[1].type", "media.providers[1].config"} {
		if !strings.HasPrefix(errs[i].Details, p+": ") {
			t.Errorf("error %d %q, want %s", i, errs[i].Details, p)
		}
	}
}

func TestProviderRedacted(t *testing.T) {
	basic := Provider{Name: "a", Type: "www", Config: ProviderConfig{Basic: &BasicAuth{Username: "u", Password: "secret"}}}
	r := basic.Redacted()
	if r.Config.Basic.Password != RedactedSecret || r.Config.Basic.Username != "u" {
		t.Fatalf("got %+v", r.Config.Basic)
	}
	if basic.Config.Basic.Password != "secret" {
		t.Fatal("Redacted modified the original")
	}
	bearer := Provider{Name: "b", Type: "www", Config: ProviderConfig{Bearer: "tok"}}
	if r := bearer.Redacted(); r.Config.Bearer != RedactedSecret || r.Config.Basic != nil || r.Name != "b" {
		t.Fatalf("got %+v", r)
	}
}

func TestValidateProviderName(t *testing.T) {
	for _, n := range []string{"a", "A-b_9", strings.Repeat("z", 200)} {
		if e := ValidateProviderName(n); e != nil {
			t.Errorf("%q: %v", n, e)
		}
	}
	for _, n := range []string{"", "a.b", "a/b", "é", " a", strings.Repeat("z", 201)} {
		e := ValidateProviderName(n)
		if e == nil || e.Code != 1009 || !strings.HasPrefix(e.Details, "name: ") {
			t.Errorf("%q: %v", n, e)
		}
	}
}
