package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/mcsim/mcsim/internal/exposure"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	helpMu    sync.Mutex
	helpCache = map[string]map[string]bool{}
)

// TestMain removes the binary mcsimFlags built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// mcsimFlags is the set of flags `mcsim <sub> --help` lists.
func mcsimFlags(t *testing.T, sub []string) map[string]bool {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mcsim-deploy-test-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mcsim")
		if out, err := exec.Command("go", "build", "-o", binPath, "../cmd/mcsim").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	key := strings.Join(sub, " ")
	helpMu.Lock()
	defer helpMu.Unlock()
	if f, ok := helpCache[key]; ok {
		return f
	}
	out, err := exec.Command(binPath, append(sub, "--help")...).CombinedOutput()
	if err != nil {
		t.Fatalf("mcsim %s --help: %v\n%s", key, err, out)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?(--[a-z0-9-]+)`).FindAllSubmatch(out, -1) {
		flags[string(m[1])] = true
	}
	helpCache[key] = flags
	return flags
}

// node is one mcsim process a deployment file runs.
type node struct {
	where string   // file and service, for messages
	args  []string // after the binary
	env   map[string]bool
}

// subcommand splits args into the mcsim subcommand and the rest.
func (n node) subcommand() ([]string, []string) {
	if len(n.args) >= 2 && n.args[0] == "settings" {
		return n.args[:2], n.args[2:]
	}
	if len(n.args) == 0 {
		return nil, nil
	}
	return n.args[:1], n.args[1:]
}

// flagValues parses --flag value and --flag=value pairs.
func flagValues(args []string) ([][2]string, error) {
	var out [][2]string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			return nil, fmt.Errorf("argument %q is not a flag", a)
		}
		if name, v, ok := strings.Cut(a, "="); ok {
			out = append(out, [2]string{name, v})
			continue
		}
		if i+1 >= len(args) {
			return nil, fmt.Errorf("flag %s has no value", a)
		}
		out = append(out, [2]string{a, args[i+1]})
		i++
	}
	return out, nil
}

// checkNode checks one node against the real mcsim and the off-loopback
// rules.
func checkNode(t *testing.T, n node) {
	t.Helper()
	sub, rest := n.subcommand()
	if len(sub) == 0 {
		t.Errorf("%s: no mcsim command", n.where)
		return
	}
	known := mcsimFlags(t, sub)
	pairs, err := flagValues(rest)
	if err != nil {
		t.Errorf("%s: %v", n.where, err)
		return
	}
	vals := map[string]string{}
	for _, p := range pairs {
		vals[p[0]] = p[1]
		if !known[p[0]] {
			t.Errorf("%s: mcsim %s has no flag %s", n.where, strings.Join(sub, " "), p[0])
		}
		if p[0] == "--cluster-key" || p[0] == "--admin-password" {
			t.Errorf("%s: %s on the command line; secrets come from the environment (a Secret), not args", n.where, p[0])
		}
	}
	if sub[0] == "settings" && !strings.HasPrefix(vals["--store"], "postgres://") {
		t.Errorf("%s: the settings service must run on PostgreSQL (--store postgres://…), got %q", n.where, vals["--store"])
	}
	// The rules mcsim applies at start: these nodes are off loopback, so
	// the key (and for settings the password) must come from a secret.
	ex := exposure.Node{Advertise: vals["--advertise"]}
	for _, f := range []string{"--grpc", "--gossip", "--metrics"} {
		if v, ok := vals[f]; ok {
			ex.Addrs = append(ex.Addrs, exposure.Addr{Flag: f, Value: v, Announced: true})
		}
	}
	if v, ok := vals["--http"]; ok {
		ex.Addrs = append(ex.Addrs, exposure.Addr{Flag: "--http", Value: v})
	}
	if strings.HasPrefix(ex.Advertise, "$(") {
		ex.Advertise = "10.0.0.5" // a pod IP, filled in by Kubernetes
	}
	if sub[0] != "gateway" {
		ex.Gossip = true
		if n.env["MCSIM_CLUSTER_KEY"] || n.env["MCSIM_CLUSTER_KEY_FILE"] {
			ex.ClusterKey = "from a secret"
		}
	}
	if sub[0] == "settings" {
		ex.DefaultPassword = !n.env["MCSIM_ADMIN_PASSWORD"] && !n.env["MCSIM_ADMIN_PASSWORD_FILE"]
	}
	if _, off := ex.OffLoopback(); !off {
		t.Errorf("%s: every address is loopback; a multi-host deployment must listen on the network", n.where)
	}
	if err := exposure.Check(ex); err != nil {
		t.Errorf("%s: mcsim would refuse to start:\n%v", n.where, err)
	}
}

func readYAML(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	return docs
}

// get walks m by keys; nil when a key is missing.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func strs(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func TestComposeFile(t *testing.T) {
	docs := readYAML(t, "compose.yaml")
	if len(docs) != 1 {
		t.Fatalf("compose.yaml: %d documents, want 1", len(docs))
	}
	c := docs[0]
	services, _ := get(c, "services").(map[string]any)
	secrets, _ := get(c, "secrets").(map[string]any)
	count := map[string]int{}
	for name, s := range services {
		mounted := map[string]bool{}
		for _, sec := range strs(get(s, "secrets")) {
			if secrets[sec] == nil {
				t.Errorf("service %s mounts secret %q, which compose.yaml does not define", name, sec)
			}
			mounted[sec] = true
		}
		env := map[string]bool{}
		envMap, _ := get(s, "environment").(map[string]any)
		for k, v := range envMap {
			env[k] = true
			if p := fmt.Sprint(v); strings.HasSuffix(k, "_FILE") || k == "PGPASSFILE" {
				sec, ok := strings.CutPrefix(p, "/run/secrets/")
				if !ok || !mounted[sec] {
					t.Errorf("service %s: %s=%s is not a secret it mounts", name, k, p)
				}
			}
		}
		if name == "postgres" {
			count["postgres"]++
			continue
		}
		if get(s, "image") != "mcsim:latest" {
			t.Errorf("service %s: image %v, want mcsim:latest (built by deploy/Dockerfile)", name, get(s, "image"))
		}
		n := node{where: "compose.yaml " + name, args: strs(get(s, "command")), env: env}
		sub, _ := n.subcommand()
		count[strings.Join(sub, " ")]++
		checkNode(t, n)
	}
	want := map[string]int{"postgres": 1, "settings serve": 1, "gateway": 1, "master": 2}
	for k, v := range want {
		if count[k] != v {
			t.Errorf("compose.yaml runs %d × %s, want %d", count[k], k, v)
		}
	}
	if count["coreapp"] < 2 {
		t.Errorf("compose.yaml runs %d coreapps, want at least 2 (2 shards) and a standby", count["coreapp"])
	}
	for name, sec := range secrets {
		if f, _ := get(sec, "file").(string); !strings.HasPrefix(f, "./secrets/") {
			t.Errorf("secret %s: file %q, want one under ./secrets/ (git-ignored)", name, f)
		}
	}
}

// docker-compose (Debian's package) validates the file without an engine:
// merge keys, depends_on conditions, secrets. .ci/run installs it; on a
// developer's machine without it the test skips (the structural check
// TestComposeFile still runs), in CI (MCSIM_CI set) it fails instead.
func TestComposeConfig(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		if os.Getenv("MCSIM_CI") != "" {
			t.Fatal("docker-compose is not installed and MCSIM_CI is set: .ci/run installs it (apt-get install docker-compose)")
		}
		t.Skip("docker-compose is not installed (apt-get install docker-compose); the structural check TestComposeFile still runs")
	}
	out, err := exec.Command(bin, "-f", "compose.yaml", "config", "--quiet").CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
}

func TestKubernetesManifests(t *testing.T) {
	secretKeys := map[string]bool{}
	for _, d := range readYAML(t, "k8s/secret.example.yaml") {
		for k := range get(d, "stringData").(map[string]any) {
			secretKeys[k] = true
		}
	}
	kust := readYAML(t, "k8s/kustomization.yaml")[0]
	files := strs(get(kust, "resources"))
	all, _ := filepath.Glob("k8s/*.yaml")
	for _, f := range all {
		base := filepath.Base(f)
		if base != "kustomization.yaml" && base != "secret.example.yaml" && !slices.Contains(files, base) {
			t.Errorf("k8s/%s is not listed in kustomization.yaml", base)
		}
	}
	services := map[string]map[string]any{} // name → selector
	type workload struct {
		kind, name, serviceName string
		labels                  map[string]any
		replicas                int
	}
	var workloads []workload
	count := map[string]int{}
	for _, f := range files {
		for _, d := range readYAML(t, filepath.Join("k8s", f)) {
			kind, _ := d["kind"].(string)
			name, _ := get(d, "metadata", "name").(string)
			where := fmt.Sprintf("k8s/%s %s/%s", f, kind, name)
			if d["apiVersion"] == nil || kind == "" || name == "" {
				t.Errorf("k8s/%s: a document without apiVersion, kind or metadata.name", f)
				continue
			}
			if ns := get(d, "metadata", "namespace"); kind != "Namespace" && ns != "mcsim" {
				t.Errorf("%s: namespace %v, want mcsim", where, ns)
			}
			switch kind {
			case "Namespace":
			case "Service":
				sel, _ := get(d, "spec", "selector").(map[string]any)
				if len(sel) == 0 {
					t.Errorf("%s: no selector", where)
				}
				services[name] = sel
			case "Deployment", "StatefulSet":
				sel, _ := get(d, "spec", "selector", "matchLabels").(map[string]any)
				labels, _ := get(d, "spec", "template", "metadata", "labels").(map[string]any)
				for k, v := range sel {
					if labels[k] != v {
						t.Errorf("%s: selector %s=%v does not match the pod labels %v", where, k, v, labels)
					}
				}
				replicas, _ := get(d, "spec", "replicas").(uint64)
				sn, _ := get(d, "spec", "serviceName").(string)
				workloads = append(workloads, workload{kind, name, sn, labels, int(replicas)})
				containers, _ := get(d, "spec", "template", "spec", "containers").([]any)
				if len(containers) != 1 {
					t.Errorf("%s: %d containers, want 1", where, len(containers))
					continue
				}
				ctr := containers[0]
				env := map[string]bool{}
				envList, _ := get(ctr, "env").([]any)
				for _, e := range envList {
					env[fmt.Sprint(get(e, "name"))] = true
					if ref := get(e, "valueFrom", "secretKeyRef"); ref != nil {
						if get(ref, "name") != "mcsim-secrets" || !secretKeys[fmt.Sprint(get(ref, "key"))] {
							t.Errorf("%s: env %v refers to secret %v key %v, not one of mcsim-secrets' keys %v", where, get(e, "name"), get(ref, "name"), get(ref, "key"), secretKeys)
						}
					}
				}
				args := strs(get(ctr, "args"))
				for _, a := range args {
					for _, m := range regexp.MustCompile(`\$\((\w+)\)`).FindAllStringSubmatch(a, -1) {
						if !env[m[1]] {
							t.Errorf("%s: arg %q uses $(%s), which the container's env does not define", where, a, m[1])
						}
					}
				}
				if get(ctr, "image") == "mcsim:latest" {
					n := node{where: where, args: args, env: env}
					sub, _ := n.subcommand()
					count[strings.Join(sub, " ")] += int(replicas)
					checkNode(t, n)
				} else {
					count[fmt.Sprint(get(ctr, "image"))] += int(replicas)
				}
			default:
				t.Errorf("%s: unexpected kind", where)
			}
		}
	}
	for _, w := range workloads {
		if w.kind == "StatefulSet" && services[w.serviceName] == nil {
			t.Errorf("StatefulSet %s: serviceName %q is no Service here", w.name, w.serviceName)
		}
	}
	for name, sel := range services {
		if !slices.ContainsFunc(workloads, func(w workload) bool {
			for k, v := range sel {
				if w.labels[k] != v {
					return false
				}
			}
			return true
		}) {
			t.Errorf("Service %s: selector %v matches no workload", name, sel)
		}
	}
	want := map[string]int{"postgres:17-bookworm": 1, "settings serve": 1, "gateway": 1, "master": 2}
	for k, v := range want {
		if count[k] != v {
			t.Errorf("k8s runs %d × %s, want %d", count[k], k, v)
		}
	}
	if count["coreapp"] < 3 {
		t.Errorf("k8s runs %d coreapps, want at least 3 (2 shards and a standby)", count["coreapp"])
	}
}
