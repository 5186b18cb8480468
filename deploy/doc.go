// Package deploy holds no code: it is the deployment files for mcsim across
// hosts (Dockerfile, compose.yaml, k8s/) and the test that checks them
// against the real mcsim: every flag they pass exists, every node they run
// passes the off-loopback rules, every secret and variable they refer to is
// defined. Nothing here runs a container; see README, "Across hosts".
package deploy
