#!/usr/bin/env bash
# What a misbehaving plugin costs the packets around it (the hardening issue's item 3):
# rtrouter between two namespaces with a FORWARD rule calling a wasm plugin for every ICMP
# packet, and 500 pings across it, 10 ms apart, for three plugins:
#   good      returns at once
#   flaky     loops forever on every other call (each such call ends at its 1 ms deadline)
#   slow      spends about a millisecond on every call
# and then a flood of UDP through the slow plugin (loadgen, 3 s) to show the time budget
# disabling it. Prints ping loss and round-trip times, and the plugin's line of `stats`.
#
#   bash scripts/bench-plugin-stall.sh
#
# Needs root and /dev/net/tun; uses only addresses inside the namespaces it creates.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] && [ -e /dev/net/tun ] || { echo "SKIP: needs root and /dev/net/tun"; exit 0; }
cargo build --profile bench -q -p rtrouter --bin rtrouter --example loadgen
bin=target/release
work=$(mktemp -d)
tag="rp$$"
lan="${tag}l"; wan="${tag}w"
cleanup() {
  pkill -TERM -f "$work/router.toml" 2>/dev/null || true
  sleep 0.5
  for ns in "$lan" "$wan"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
head='(module
  (memory (export "memory") 1)
  (global $n (mut i32) (i32.const 0))
  (func (export "rtrouter_abi_version") (result i32) i32.const 1)
  (func (export "rtrouter_buffer") (result i32) i32.const 1024)
  (func (export "rtrouter_buffer_len") (result i32) i32.const 4096)
  (func (export "rtrouter_init") (param i32 i32) (result i32) i32.const 0)'
echo "$head (func (export \"rtrouter_match\") (param i32 i32) (result i32) i32.const 1))" > "$work/good.wat"
echo "$head (func (export \"rtrouter_match\") (param i32 i32) (result i32)
    (global.set \$n (i32.add (global.get \$n) (i32.const 1)))
    (if (i32.and (global.get \$n) (i32.const 1)) (then (loop br 0)))
    i32.const 1))" > "$work/flaky.wat"
echo "$head (func (export \"rtrouter_match\") (param i32 i32) (result i32) (local \$i i32)
    (local.set \$i (i32.const 400000))
    (loop (local.set \$i (i32.sub (local.get \$i) (i32.const 1))) (br_if 0 (local.get \$i)))
    i32.const 1))" > "$work/slow.wat"
run() { # $1: plugin
  printf '*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -p icmp -m wasm --plugin %s -j ACCEPT\n-A FORWARD -p udp -m wasm --plugin %s -j ACCEPT\nCOMMIT\n' "$1" "$1" > "$work/rules"
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
[[plugin]]
name = "$1"
path = "$1.wat"
[control]
socket = "ctl.sock"
[log]
level = "error"
CONF
  $bin/rtrouter --config "$work/router.toml" > "$work/router.log" 2>&1 &
  for _ in $(seq 100); do [ -S "$work/ctl.sock" ] && break; sleep 0.1; done
  sleep 0.5
  ip netns exec "$lan" ping -i 0.01 -W 1 -c 500 10.9.2.2 > "$work/ping" 2>&1 || true
  grep -o 'time=[0-9.]*' "$work/ping" | cut -d= -f2 | sort -n > "$work/rtt"
  n=$(wc -l < "$work/rtt")
  at() { sed -n "$(awk -v n="$n" -v q="$1" 'BEGIN { i = int(n * q); if (i < 1) i = 1; print i }')p" "$work/rtt"; }
  echo "$1: pings answered $n of 500; rtt ms median $(at 0.5), p99 $(at 0.99), max $(tail -1 "$work/rtt")"
  if [ "$1" = slow ]; then
    $bin/examples/loadgen udp-source "$lan" 10.9.2.2:9 3 64 || true
  fi
  $bin/rtrouter stats --socket "$work/ctl.sock" | grep -i "plugin $1" | sed 's/^/  /' || true
  pkill -TERM -f "$work/router.toml" || true
  for _ in $(seq 50); do ip netns list 2>/dev/null | grep -q "^$lan" || break; sleep 0.1; done
}
for p in good flaky slow; do run "$p"; done
