#!/usr/bin/env bash
# Forwarding latency while conntrack holds many connections and collects the expired ones
# (the hardening issue's item 8): rtrouter between two namespaces with `[conntrack]
# max_entries` 2^21, FLOWS (default 900,000) one-datagram UDP flows sent through it, then pings
# every 10 ms across it for SECONDS (default 40) — long enough for the flows to expire (UDP
# unreplied: 30 s) and the collector to remove them. Prints the table size seen, and the
# round-trip times: median, p99, p99.9, max, and the router's resident memory before, full and
# after the flows expired.
#
#   bash scripts/bench-conntrack-gc.sh [FLOWS] [SECONDS]
#
# Needs root and /dev/net/tun; uses only addresses inside the namespaces it creates.
set -euo pipefail
cd "$(dirname "$0")/.."
flows=${1:-900000}
secs=${2:-40}
[ "$(id -u)" = 0 ] && [ -e /dev/net/tun ] || { echo "SKIP: needs root and /dev/net/tun"; exit 0; }
cargo build --profile bench -q -p rtrouter --bin rtrouter --example loadgen
bin=target/release
work=$(mktemp -d)
tag="rg$$"
lan="${tag}l"; wan="${tag}w"
cleanup() {
  pkill -TERM -f "$work/router.toml" 2>/dev/null || true
  sleep 0.5
  for ns in "$lan" "$wan"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
printf '*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n' > "$work/rules"
cat > "$work/router.toml" <<CONF
[router]
seed = 1
[conntrack]
max_entries = 2097152
[[interface]]
name = "${tag}a"
addresses = ["10.9.1.1/24"]
netns = "$lan"
create_netns = true
peer = { addresses = ["10.9.1.2/24"], routes = ["0.0.0.0/0"] }
[[interface]]
name = "${tag}b"
addresses = ["10.9.2.1/24"]
netns = "$wan"
create_netns = true
peer = { addresses = ["10.9.2.2/24"], routes = ["10.9.1.0/24"] }
[rules]
files = ["rules"]
[control]
socket = "ctl.sock"
[log]
level = "warn"
CONF
$bin/rtrouter --config "$work/router.toml" > "$work/router.log" 2>&1 &
for _ in $(seq 100); do [ -S "$work/ctl.sock" ] && break; sleep 0.1; done
sleep 0.5
pid=$(pgrep -f "$work/router.toml" | head -1)
rss() { awk '/VmRSS/ { print int($2 / 1024) " MiB" }' "/proc/$pid/status"; }
echo "router resident before: $(rss)"
sent=$($bin/examples/loadgen udp-flows "$lan" 10.9.2.2:20000 60 "$flows")
entries() { $bin/rtrouter stats --socket "$work/ctl.sock" | grep -o 'conntrack: [0-9]*' | grep -o '[0-9]*' || echo '?'; }
echo "flows sent: $sent; conntrack entries: $(entries); router resident: $(rss)"
ip netns exec "$lan" ping -i 0.01 -W 1 -c $((secs * 100)) 10.9.2.2 > "$work/ping" 2>&1 || true
echo "conntrack entries after ${secs} s: $(entries); router resident: $(rss)"
grep -o 'time=[0-9.]*' "$work/ping" | cut -d= -f2 | sort -n > "$work/rtt"
n=$(wc -l < "$work/rtt")
at() { sed -n "$(awk -v n="$n" -v q="$1" 'BEGIN { i = int(n * q); if (i < 1) i = 1; print i }')p" "$work/rtt"; }
echo "pings answered: $n of $((secs * 100)); rtt ms: median $(at 0.5), p99 $(at 0.99), p99.9 $(at 0.999), max $(tail -1 "$work/rtt")"
