package scenarios

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// library holds the built-in scenarios: scenarios/library/*.yaml, one
// scenario a file, named like its file.
//
//go:embed library/*.yaml
var library embed.FS

//go:embed schema.json
var schema []byte

// Schema is the JSON Schema of the scenario format (mcsim scenario schema).
func Schema() []byte { return schema }

// Entry is one scenario of the built-in library.
type Entry struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Library lists the built-in scenarios by name.
func Library() ([]Entry, error) {
	files, err := fs.Glob(library, "library/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Entry
	for _, f := range files {
		sc, err := LoadLibrary(strings.TrimSuffix(path.Base(f), ".yaml"))
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Name: sc.Name, Description: sc.Description})
	}
	return out, nil
}

// LoadLibrary parses a built-in scenario by name.
func LoadLibrary(name string) (*Scenario, error) {
	b, err := library.ReadFile("library/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no scenario %q in the library (mcsim scenario list shows them)", name)
	}
	sc, err := Parse(name+".yaml", b)
	if err != nil {
		return nil, err
	}
	sc.File = ""
	return sc, nil
}

// Load reads FILE|NAME as the commands take it: a path to a file when one
// exists there (or the argument looks like a path), else a library name.
func Load(arg string) (*Scenario, error) {
	if strings.ContainsAny(arg, "/\\") || strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") {
		return LoadFile(arg)
	}
	if _, err := os.Stat(arg); err == nil {
		return LoadFile(arg)
	}
	return LoadLibrary(arg)
}

// LoadFile parses a scenario file.
func LoadFile(file string) (*Scenario, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return Parse(file, b)
}
