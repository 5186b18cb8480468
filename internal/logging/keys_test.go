package logging

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The project's log key convention, checked over its sources: a duration
// says its unit in its key, as milliseconds (zerolog's Dur writes
// milliseconds: "failover_ms", never "failover_duration"), and a point in
// time is never written with zerolog's Time, whose layout is the
// package-wide TimeFieldFormat (whole seconds by default): format it with
// TimeFormat instead.
func TestLogKeysSayTheirUnit(t *testing.T) {
	durKey := regexp.MustCompile(`\.Dur\("([^"]*)"`)
	timeField := regexp.MustCompile(`\.(Time|Times)\("([^"]*)"`)
	root := filepath.Join("..", "..")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "tools" || d.Name() == "proto" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for _, m := range durKey.FindAllStringSubmatch(string(b), -1) {
			if !strings.HasSuffix(m[1], "_ms") {
				t.Errorf("%s: duration key %q: end it in _ms (zerolog writes milliseconds)", path, m[1])
			}
		}
		for _, m := range timeField.FindAllStringSubmatch(string(b), -1) {
			t.Errorf("%s: .%s(%q): zerolog's time layout is global and whole seconds; use Str with logging.TimeFormat", path, m[1], m[2])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked only %d files from %s: is the module root right?", checked, root)
	}
}
