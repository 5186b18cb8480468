#!/usr/bin/env bash
# netns-failover.sh: failover and takeover times of a cluster across network
# namespaces next to the same cluster on loopback, measured the same way.
#
# It runs the network namespace test (cmd/mcsim,
# TestClusterAcrossNetworkNamespaces) RUNS times over in one cluster, twice:
# once with the masters and coreapps on three "hosts" (namespaces linked by
# a bridge, gossip on memberlist's LAN tuning) and once with every node in
# one namespace on 127.0.0.1 (MCSIM_NETNS_LOOPBACK=1: loopback tuning).
# heartbeat_interval 1 s, unhealthy_interval 2 s (lease TTL 2 s).
#   failover: SIGKILL of the coreapp serving shard 0 → the gateway accepts
#             another coreapp's session of shard 0 (rule 1 bound: 2-3 s + ε)
#   takeover: SIGKILL of the primary master → /v1/health shows the other
#             master primary (polled every 20 ms; bound TTL + heartbeat = 3 s)
# Needs root and iproute2.
#
#   sudo scripts/netns-failover.sh [RUNS]
#
# Prints the times per mode and their median and max.
set -euo pipefail

runs=${1:-20}
cd "$(dirname "$0")/.."
summary() { # name, comma-separated ms
	tr ',' '\n' <<<"$2" | sort -n | awk -v name="$1" '{v[NR]=$1} END {
		printf "  %-9s n=%d  median %d ms  max %d ms  min %d ms\n", name, NR, v[int((NR+1)/2)], v[NR], v[1] }'
}
for mode in netns loopback; do
	env=()
	[[ $mode == loopback ]] && env=(MCSIM_NETNS_LOOPBACK=1)
	out=$(env "${env[@]}" MCSIM_NETNS_RUNS="$runs" go test -count=1 -timeout 30m \
		-run '^TestClusterAcrossNetworkNamespaces$' -v ./cmd/mcsim 2>&1) || { echo "$out" >&2; exit 1; }
	line=$(grep -o 'FIGURES .*' <<<"$out")
	if [[ -z $line ]]; then echo "$out" >&2; echo "no FIGURES line (skipped? needs root and ip)" >&2; exit 1; fi
	echo "$mode: $line"
	summary failover "$(sed -E 's/.* failover_ms=([0-9,]+).*/\1/' <<<"$line")"
	summary takeover "$(sed -E 's/.*takeover_ms=([0-9,]+).*/\1/' <<<"$line")"
done
