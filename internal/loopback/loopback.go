// Package loopback is the project's one rule for "this machine only": the
// settings service allows its public default password only on loopback
// listeners, a webhook may use plain http only to a loopback host, and
// gossip on a loopback address gets the fast local timings.
package loopback

import (
	"net"
	"strings"
)

// Host reports whether host (an IP or a name, no port) is this machine
// only: 127.0.0.0/8, ::1 or "localhost" (any case). An empty host listens
// on every interface, so it is not loopback.
func Host(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
