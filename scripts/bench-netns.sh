#!/usr/bin/env bash
# Throughput through rtrouter between two network namespaces, against a null relay that only
# copies packets between the same two TUN devices. Needs root and /dev/net/tun.
#
#   bash scripts/bench-netns.sh [SECONDS]      (default 5 per measurement)
#
# Prints TCP throughput (one stream, 64 KiB writes) and small-UDP packets per second (64-byte
# payloads) for both, and rtrouter / null-relay as a ratio. The rtrouter ruleset is small: a
# stateful FORWARD chain with a few rules. Only addresses inside the namespaces are used.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
[ "$(id -u)" = 0 ] && [ -e /dev/net/tun ] || { echo "SKIP: needs root and /dev/net/tun"; exit 0; }

cargo build --release -q -p rtrouter --bin rtrouter --example null_relay --example loadgen
bin=target/release
ex=target/release/examples
work=$(mktemp -d)
tag="rb$$"
lan="${tag}l"; wan="${tag}w"
cleanup() {
  pkill -TERM -f "$work/router.toml" 2>/dev/null || true
  sleep 0.5
  for ns in "$lan" "$wan"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/rules" <<RULES
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -p tcp -m multiport --dports 22,25 -j REJECT --reject-with tcp-reset
-A FORWARD -i ${tag}a -o ${tag}b -j ACCEPT
COMMIT
RULES
cat > "$work/router.toml" <<CONF
[router]
seed = 1
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
[log]
level = "warn"
CONF

measure() { # $1: label; the relay under test is running
  $ex/loadgen tcp-sink "$wan" 10.9.2.2:5201 "$secs" > "$work/tcp" & sink=$!
  sleep 0.3
  $ex/loadgen tcp-source "$lan" 10.9.2.2:5201 "$secs" || true
  wait $sink || true
  $ex/loadgen udp-sink "$wan" 10.9.2.2:5202 "$secs" > "$work/udp" & sink=$!
  sleep 0.3
  $ex/loadgen udp-source "$lan" 10.9.2.2:5202 "$secs" 64 || true
  wait $sink || true
  echo "$1 $(cat "$work/tcp") $(cat "$work/udp")" >> "$work/results"
}

run() { # $1: label, rest: command
  local label=$1; shift
  "$@" > "$work/$label.log" 2>&1 &
  for _ in $(seq 50); do ip netns list | grep -q "^$wan" && break; sleep 0.1; done
  sleep 0.5
  measure "$label"
  pkill -TERM -f "$work/router.toml" || true
  for _ in $(seq 50); do ip netns list | grep -q "^$lan" || break; sleep 0.1; done
}

run rtrouter $bin/rtrouter --config "$work/router.toml"
run null-relay $ex/null_relay "$work/router.toml"

echo
printf '%-12s %14s %16s\n' "" "TCP Mbit/s" "UDP-64 pkts/s"
while read -r label tcp udp; do printf '%-12s %14s %16s\n' "$label" "$tcp" "$udp"; done < "$work/results"
read -r _ rt_tcp rt_udp < <(grep '^rtrouter ' "$work/results")
read -r _ nr_tcp nr_udp < <(grep '^null-relay ' "$work/results")
awk -v a="$rt_tcp" -v b="$nr_tcp" -v c="$rt_udp" -v d="$nr_udp" 'BEGIN { printf "%-12s %14.2f %16.2f\n", "ratio", a/b, c/d }'
