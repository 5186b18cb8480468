package main

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestSecretsFromFiles(t *testing.T) {
	files := map[string]string{"/run/secrets/cluster_key": "k3y\n", "/run/secrets/admin_password": "pw\r\n"}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, errors.New("no such file")
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    map[string]string
		wantErr string
	}{
		{"nothing given", map[string]string{}, map[string]string{}, ""},
		{"both from files, newline dropped",
			map[string]string{"MCSIM_CLUSTER_KEY_FILE": "/run/secrets/cluster_key", "MCSIM_ADMIN_PASSWORD_FILE": "/run/secrets/admin_password"},
			map[string]string{"MCSIM_CLUSTER_KEY": "k3y", "MCSIM_ADMIN_PASSWORD": "pw"}, ""},
		{"the variable wins over the file",
			map[string]string{"MCSIM_CLUSTER_KEY": "direct", "MCSIM_CLUSTER_KEY_FILE": "/run/secrets/cluster_key"},
			map[string]string{"MCSIM_CLUSTER_KEY": "direct"}, ""},
		{"a file that cannot be read names the variable",
			map[string]string{"MCSIM_ADMIN_PASSWORD_FILE": "/nope"}, map[string]string{}, "MCSIM_ADMIN_PASSWORD_FILE: no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := maps.Clone(tc.env)
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			got := map[string]string{}
			set := func(k, v string) error { got[k] = v; env[k] = v; return nil }
			err := secretsFromFiles(lookup, read, set)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if tc.env[k] == v {
					continue // given, not set
				}
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for k := range got {
				if _, ok := tc.want[k]; !ok {
					t.Errorf("set %s, want it untouched", k)
				}
			}
		})
	}
}
