package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestProviders(t *testing.T) {
	s, _ := openTemp(t)
	p, err := s.Providers()
	if err != nil || len(p) != 0 {
		t.Fatalf("new store providers %q, %v", p, err)
	}
	if err := s.PutProviders(map[string][]byte{
		"a": []byte(`{"name":"a","type":"www"}`),
		"b": []byte(`{"name":"b","type":"www"}`),
	}); err != nil {
		t.Fatal(err)
	}
	// Replace one, add one.
	if err := s.PutProviders(map[string][]byte{
		"a": []byte(`{"name":"a","type":"www","config":{}}`),
		"c": []byte(`{"name":"c"}`),
	}); err != nil {
		t.Fatal(err)
	}
	p, err = s.Providers()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": `{"name":"a","type":"www","config":{}}`, "b": `{"name":"b","type":"www"}`, "c": `{"name":"c"}`}
	if len(p) != len(want) {
		t.Fatalf("providers %q, want %q", p, want)
	}
	for k, v := range want {
		if string(p[k]) != v {
			t.Fatalf("provider %q = %q, want %q", k, p[k], v)
		}
	}
	if err := s.DeleteProvider("b"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProvider("b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting an absent provider: %v, want ErrNotFound", err)
	}
	if p, _ = s.Providers(); len(p) != 2 || p["b"] != nil {
		t.Fatalf("after delete: %q", p)
	}
	// Providers are not part of the watched state.
	if st := s.State(); st.Revision != 0 {
		t.Fatalf("provider changes moved revision to %d", st.Revision)
	}
}

func TestPutProvidersBadInputChangesNothing(t *testing.T) {
	s, _ := openTemp(t)
	for _, tc := range []struct {
		name  string
		items map[string][]byte
		want  string
	}{
		{"empty name", map[string][]byte{"ok": []byte(`{}`), "": []byte(`{}`)}, "name"},
		{"bad json", map[string][]byte{"ok": []byte(`{}`), "bad": []byte(`{nope`)}, `"bad"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.PutProviders(tc.items)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %s", err, tc.want)
			}
			if p, _ := s.Providers(); len(p) != 0 {
				t.Fatalf("bad input stored %q", p)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	s, _ := openTemp(t)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	h := func(tok string) []byte { x := sha256.Sum256([]byte(tok)); return x[:] }

	if _, ok, err := s.TokenExpiry(h("unknown")); ok || err != nil {
		t.Fatalf("unknown token: found=%v err=%v", ok, err)
	}
	expA := now.Add(time.Hour)
	if err := s.PutToken(h("a"), expA); err != nil {
		t.Fatal(err)
	}
	expB := now.Add(7 * 24 * time.Hour)
	if err := s.PutToken(h("b"), expB); err != nil {
		t.Fatal(err)
	}
	if exp, ok, err := s.TokenExpiry(h("a")); err != nil || !ok || !exp.Equal(expA) {
		t.Fatalf("token a: %v %v %v, want %v", exp, ok, err, expA)
	}

	// Two hours on, a is expired and the next PutToken prunes it; b stays.
	now = now.Add(2 * time.Hour)
	if err := s.PutToken(h("c"), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.TokenExpiry(h("a")); ok {
		t.Fatal("expired token a was not pruned")
	}
	if exp, ok, _ := s.TokenExpiry(h("b")); !ok || !exp.Equal(expB) {
		t.Fatalf("live token b: %v %v", exp, ok)
	}
	if _, ok, _ := s.TokenExpiry(h("c")); !ok {
		t.Fatal("new token c missing")
	}
	// The raw token is never stored: only its hash is a key.
	if _, ok, _ := s.TokenExpiry([]byte("b")); ok {
		t.Fatal("raw token found")
	}
}

func TestPutTokenBadInput(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.PutToken([]byte("short"), time.Now()); err == nil || !strings.Contains(err.Error(), "hash") {
		t.Fatalf("short hash: %v", err)
	}
	if err := s.PutToken(bytes.Repeat([]byte{1}, 32), time.Time{}); err == nil || !strings.Contains(err.Error(), "expires") {
		t.Fatalf("zero expiry: %v", err)
	}
}
