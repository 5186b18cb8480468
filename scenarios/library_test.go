package scenarios

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("schema.json")
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

// yamlAsJSON is a scenario file as the JSON a schema validator reads.
func yamlAsJSON(t *testing.T, data []byte) any {
	t.Helper()
	tr, probs := parseTree(data)
	if len(probs) > 0 {
		t.Fatalf("YAML: %v", probs)
	}
	b, _ := json.Marshal(toJSON(tr))
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Every library scenario parses, says what it shows, and is valid by the
// published schema; so is the contract's example.
func TestLibraryParsesAndMatchesTheSchema(t *testing.T) {
	sch := compileSchema(t)
	lib, err := Library()
	if err != nil {
		t.Fatal(err)
	}
	if len(lib) < 10 {
		t.Errorf("the library has %d scenarios", len(lib))
	}
	for _, e := range lib {
		if len(e.Description) < 40 {
			t.Errorf("%s: description %q does not say what it shows", e.Name, e.Description)
		}
		b, _ := fs.ReadFile(library, "library/"+e.Name+".yaml")
		if err := sch.Validate(yamlAsJSON(t, b)); err != nil {
			t.Errorf("%s: not valid by the schema: %v", e.Name, err)
		}
	}
	if err := sch.Validate(yamlAsJSON(t, []byte(crashYAML))); err != nil {
		t.Errorf("the contract's example is not valid by the schema: %v", err)
	}
	if _, err := LoadLibrary("coreapp-crash"); err != nil {
		t.Errorf("coreapp-crash: %v", err)
	}
}

// The schema refuses what the parser refuses, where a schema can tell.
func TestSchemaRefusesBrokenFiles(t *testing.T) {
	sch := compileSchema(t)
	for _, doc := range []string{
		"name: t\nsteps:\n  - kill: coreap-1\n",
		"name: t\nsteps:\n  - explode: coreapp-1\n",
		"name: t\nsteps:\n  - kill: coreapp-1\n    stop: coreapp-2\n",
		"name: t\nsteps:\n  - sleep: 3\n",
		"name: t\ncluster: {shards: 3}\nsteps:\n  - sleep: 1s\n",
		"name: Bad\nsteps:\n  - sleep: 1s\n",
		"name: t\nsteps:\n  - expect: failover\n    within: soon\n",
		"name: t\nsteps: []\n",
		"steps:\n  - sleep: 1s\n",
	} {
		t.Run(strings.ReplaceAll(doc, "\n", " "), func(t *testing.T) {
			if err := sch.Validate(yamlAsJSON(t, []byte(doc))); err == nil {
				t.Error("the schema accepts it")
			}
			if _, err := Parse("x.yaml", []byte(doc)); err == nil {
				t.Error("the parser accepts it")
			}
		})
	}
}
