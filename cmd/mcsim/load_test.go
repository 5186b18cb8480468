package main

import (
	"strings"
	"testing"
)

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
	}{{"200/s", 200}, {"200", 200}, {"12000/m", 200}, {"0.5/s", 0.5}} {
		if got, err := parseRate(tc.in); err != nil || got != tc.want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// Bad flags exit 2 naming the flag, before anything is sent; a front door
// that cannot be reached exits 3, like every client command.
func TestLoadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"load", "--rate", "0/s"}, exitUsage, "--rate"},
		{[]string{"load", "--rate", "200/h"}, exitUsage, "--rate: the unit"},
		{[]string{"load", "--rate", "fast"}, exitUsage, "--rate"},
		{[]string{"load", "--recipients", "0"}, exitUsage, "--recipients"},
		{[]string{"load", "--max-outstanding", "0"}, exitUsage, "--max-outstanding"},
		{[]string{"load", "--duration", "-1s"}, exitUsage, "--duration"},
		{[]string{"load", "--url", "ftp://x"}, exitUsage, "--url"},
		{[]string{"load", "--url", "127.0.0.1:1", "--duration", "1s"}, exitTransprt, "could not be reached"},
	} {
		code, out := run(t, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("mcsim %v: exit %d, output %q; want exit %d with %q", tc.args, code, out, tc.code, tc.want)
		}
	}
}
