#!/usr/bin/env bash
# Throughput between two network namespaces, in one run, through:
#   null-relay      a relay that only copies packets between two TUN devices (the ceiling),
#                   with the same offloads and queues as rtrouter
#   rtrouter        rtrouter with a small stateful FORWARD ruleset (TUN offloads and one queue
#                   per core, the default)
#   rtrouter-no-offload   the same with `router.offload = false` (1500-byte packets)
#   rtrouter-10k    rtrouter with 10,000 non-matching `-s ADDR -p tcp --dport PORT -j DROP`
#                   rules in FORWARD (the compiled classifier, the default engine)
#   rtrouter-10k-linear   the same, walked rule after rule ([engine] kind = "linear")
#   kernel          Linux forwarding in a router namespace between two veth pairs, no rules
#   kernel-ipt-10k  the same 10,000 rules loaded with iptables-restore (iptables-nft)
#   kernel-nft-set  the same 10,000 entries as one nftables set (`ip saddr . tcp dport @set drop`)
# Needs root and /dev/net/tun; installs iptables and nftables if missing.
#
#   bash scripts/bench-netns.sh [SECONDS]      (default 5 per measurement)
#
# Prints TCP throughput (one stream, 64 KiB writes; then 8 streams) and small-UDP packets per
# second (64-byte payloads delivered) for each, then the ratios the classifier and dataplane
# issues state their goals in.
# Only addresses inside the namespaces this script creates are used.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
[ "$(id -u)" = 0 ] && [ -e /dev/net/tun ] || { echo "SKIP: needs root and /dev/net/tun"; exit 0; }
if ! command -v iptables-restore >/dev/null || ! command -v nft >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables nftables >/dev/null
fi

cargo build --profile bench -q -p rtrouter --bin rtrouter --example null_relay --example loadgen
bin=target/release
ex=target/release/examples
work=$(mktemp -d)
tag="rb$$"
lan="${tag}l"; wan="${tag}w"; rtr="${tag}r"
cleanup() {
  pkill -TERM -f "$work/router" 2>/dev/null || true
  sleep 0.5
  for ns in "$lan" "$wan" "$rtr"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The 10,000 rules: sources 172.16.0.0/16 and ports none of the test traffic uses.
{
  echo "*filter"
  echo ":INPUT ACCEPT [0:0]"
  echo ":FORWARD ACCEPT [0:0]"
  echo ":OUTPUT ACCEPT [0:0]"
  for i in $(seq 0 9999); do
    echo "-A FORWARD -s 172.16.$((i / 250)).$((i % 250 + 1))/32 -p tcp -m tcp --dport $((10000 + i % 5000)) -j DROP"
  done
  echo "COMMIT"
} > "$work/rules-10k"
{
  echo "table ip filter {"
  echo "  set blocked { type ipv4_addr . inet_service; elements = {"
  for i in $(seq 0 9999); do
    printf '    172.16.%d.%d . %d,\n' $((i / 250)) $((i % 250 + 1)) $((10000 + i % 5000))
  done
  echo "  } }"
  echo "  chain forward { type filter hook forward priority 0; policy accept; ip saddr . tcp dport @blocked drop; }"
  echo "}"
} > "$work/set.nft"
cat > "$work/rules-small" <<RULES
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -p tcp -m multiport --dports 22,25 -j REJECT --reject-with tcp-reset
-A FORWARD -i ${tag}a -o ${tag}b -j ACCEPT
COMMIT
RULES

config() { # $1: rules file, $2: engine kind, $3: offloads (true|false)
  cat <<CONF
[router]
seed = 1
offload = ${3:-true}
[engine]
kind = "$2"
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
files = ["$1"]
[log]
level = "warn"
CONF
}
config rules-small compiled > "$work/router-small.toml"
config rules-small compiled false > "$work/router-small-no-offload.toml"
config rules-10k compiled > "$work/router-10k.toml"
config rules-10k linear > "$work/router-10k-linear.toml"

measure() { # $1: label; traffic from $lan to 10.9.2.2 in $wan
  $ex/loadgen tcp-sink "$wan" 10.9.2.2:5201 "$secs" > "$work/tcp" & sink=$!
  sleep 0.3
  $ex/loadgen tcp-source "$lan" 10.9.2.2:5201 "$secs" || true
  wait $sink || echo 0 > "$work/tcp"
  $ex/loadgen tcp-sink "$wan" 10.9.2.2:5203 "$secs" 8 > "$work/tcp8" & sink=$!
  sleep 0.3
  $ex/loadgen tcp-source "$lan" 10.9.2.2:5203 "$secs" 8 || true
  wait $sink || echo 0 > "$work/tcp8"
  $ex/loadgen udp-sink "$wan" 10.9.2.2:5202 "$secs" > "$work/udp" & sink=$!
  sleep 0.3
  $ex/loadgen udp-source "$lan" 10.9.2.2:5202 "$secs" 64 || true
  wait $sink || echo 0 > "$work/udp"
  echo "$1 $(cat "$work/tcp") $(cat "$work/udp") $(cat "$work/tcp8")" >> "$work/results"
}

run() { # $1: label, rest: a relay command that creates $lan and $wan
  local label=$1; shift
  "$@" > "$work/$label.log" 2>&1 &
  for _ in $(seq 100); do ip netns list 2>/dev/null | grep -q "^$wan" && break; sleep 0.1; done
  sleep 1
  measure "$label"
  pkill -TERM -f "$work/router" || true
  for _ in $(seq 50); do ip netns list 2>/dev/null | grep -q "^$lan" || break; sleep 0.1; done
}

kernel() { # $1: label, $2: how to load the rules into the router namespace (none|ipt|nft)
  ip netns add "$lan"; ip netns add "$rtr"; ip netns add "$wan"
  ip link add "${tag}x0" netns "$lan" type veth peer name "${tag}x1" netns "$rtr"
  ip link add "${tag}y0" netns "$rtr" type veth peer name "${tag}y1" netns "$wan"
  ip -n "$lan" addr add 10.9.1.2/24 dev "${tag}x0"
  ip -n "$rtr" addr add 10.9.1.1/24 dev "${tag}x1"
  ip -n "$rtr" addr add 10.9.2.1/24 dev "${tag}y0"
  ip -n "$wan" addr add 10.9.2.2/24 dev "${tag}y1"
  for ns in "$lan" "$rtr" "$wan"; do ip -n "$ns" link set lo up; done
  ip -n "$lan" link set "${tag}x0" up; ip -n "$rtr" link set "${tag}x1" up
  ip -n "$rtr" link set "${tag}y0" up; ip -n "$wan" link set "${tag}y1" up
  ip -n "$lan" route add default via 10.9.1.1
  ip -n "$wan" route add 10.9.1.0/24 via 10.9.2.1
  ip netns exec "$rtr" sysctl -qw net.ipv4.ip_forward=1
  case $2 in
    ipt) ip netns exec "$rtr" iptables-restore < "$work/rules-10k" ;;
    nft) ip netns exec "$rtr" nft -f "$work/set.nft" ;;
  esac
  measure "$1"
  for ns in "$lan" "$rtr" "$wan"; do ip netns del "$ns"; done
}

run null-relay $ex/null_relay "$work/router-small.toml"
run rtrouter $bin/rtrouter --config "$work/router-small.toml"
run rtrouter-no-offload $bin/rtrouter --config "$work/router-small-no-offload.toml"
run rtrouter-10k $bin/rtrouter --config "$work/router-10k.toml"
run rtrouter-10k-linear $bin/rtrouter --config "$work/router-10k-linear.toml"
kernel kernel none
kernel kernel-ipt-10k ipt
kernel kernel-nft-set nft

echo
printf '%-20s %14s %16s %18s\n' "" "TCP Mbit/s" "UDP-64 pkts/s" "8xTCP Mbit/s"
while read -r label tcp udp tcp8; do printf '%-20s %14s %16s %18s\n' "$label" "$tcp" "$udp" "$tcp8"; done < "$work/results"
get() { grep "^$1 " "$work/results" | awk -v f="$2" '{print $f}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "rtrouter / null relay (small ruleset):   TCP $(ratio "$(get rtrouter 2)" "$(get null-relay 2)")  UDP $(ratio "$(get rtrouter 3)" "$(get null-relay 3)")"
echo "rtrouter-10k / kernel-ipt-10k:           TCP $(ratio "$(get rtrouter-10k 2)" "$(get kernel-ipt-10k 2)")  UDP $(ratio "$(get rtrouter-10k 3)" "$(get kernel-ipt-10k 3)")   (goals: TCP >= 1, UDP >= 10)"
echo "rtrouter-10k / kernel-nft-set:           TCP $(ratio "$(get rtrouter-10k 2)" "$(get kernel-nft-set 2)")  UDP $(ratio "$(get rtrouter-10k 3)" "$(get kernel-nft-set 3)")   (goal: UDP >= 0.5)"
echo "rtrouter-10k / rtrouter-10k-linear:      TCP $(ratio "$(get rtrouter-10k 2)" "$(get rtrouter-10k-linear 2)")  UDP $(ratio "$(get rtrouter-10k 3)" "$(get rtrouter-10k-linear 3)")"
echo "rtrouter / kernel:                       TCP $(ratio "$(get rtrouter 2)" "$(get kernel 2)")  UDP $(ratio "$(get rtrouter 3)" "$(get kernel 3)")  8xTCP $(ratio "$(get rtrouter 4)" "$(get kernel 4)")   (goals: TCP >= 0.5, UDP >= 0.8)"
echo "rtrouter / rtrouter-no-offload:          TCP $(ratio "$(get rtrouter 2)" "$(get rtrouter-no-offload 2)")  UDP $(ratio "$(get rtrouter 3)" "$(get rtrouter-no-offload 3)")  8xTCP $(ratio "$(get rtrouter 4)" "$(get rtrouter-no-offload 4)")"
