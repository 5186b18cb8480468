package main

import (
	"fmt"
	"os"
	"strings"
)

// secretEnvs are the variables that may also come from a file named by
// NAME_FILE, as Docker and Kubernetes hand secrets over (compose secrets
// are files under /run/secrets): the gossip key and the admin password.
var secretEnvs = []string{clusterKeyEnv, passwordEnv}

// secretsFromFiles sets each of secretEnvs that is unset from the file its
// NAME_FILE variable names (one trailing newline dropped), before any
// command reads the environment; the variable itself wins when both are
// set. A file that cannot be read is an error naming the variable.
func secretsFromFiles(lookup func(string) (string, bool), read func(string) ([]byte, error), set func(k, v string) error) error {
	for _, name := range secretEnvs {
		path, ok := lookup(name + "_FILE")
		if !ok || path == "" {
			continue
		}
		if _, set := lookup(name); set {
			continue
		}
		b, err := read(path)
		if err != nil {
			return fmt.Errorf("%s_FILE: %v", name, err)
		}
		if err := set(name, strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")); err != nil {
			return fmt.Errorf("%s_FILE: %v", name, err)
		}
	}
	return nil
}

// loadSecretFiles is secretsFromFiles on this process's environment.
func loadSecretFiles() error { return secretsFromFiles(os.LookupEnv, os.ReadFile, os.Setenv) }
