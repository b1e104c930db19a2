#!/usr/bin/env bash
# The control plane at kube-proxy scale, through the iptables front end of a running router
# between two namespaces this script creates:
#   - a full load of N kube-proxy services (`rtrouter generate kube-proxy N`, 11 rules and 5
#     chains per service) with iptables-restore: wall time and the router's resident memory;
#   - partial syncs with `iptables-restore --noflush --counters`, each the median of RUNS:
#       add-chains / remove-chains   one service's own chains (KUBE-SVC + KUBE-SEP) created or
#                                    deleted;
#       add-service / remove-service the same plus its jump rule in KUBE-SERVICES (a chain
#                                    of N rules);
#     reported as router work (the time the router held its transaction lock, from the
#     answer's `work_us`) and CLI wall time (the whole `iptables-restore` process);
#   - forwarding during a full load at the largest N: the longest gap between replies of a
#     10 ms ping across the router.
# Needs root and /dev/net/tun. Only addresses inside the namespaces it creates are used.
#
#   bash scripts/bench-control.sh [N...]      (default: 1000 10000 100000)
#   RUNS=21 bash scripts/bench-control.sh 100000
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] && [ -e /dev/net/tun ] || { echo "SKIP: needs root and /dev/net/tun"; exit 0; }
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 100000)
runs=${RUNS:-11}
command -v ping >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iputils-ping >/dev/null; }

cargo build --release -q -p rtrouter --bin rtrouter
bin=$PWD/target/release/rtrouter
work=$(mktemp -d)
chmod 755 "$work"
tag="rc$$"
lan="${tag}l"; wan="${tag}w"
mkdir -p "$work/bin"
"$bin" install-links --force "$work/bin" >/dev/null
export PATH="$work/bin:$PATH" RTROUTER_SOCKET="$work/control.sock"
cleanup() {
  [ -n "${router:-}" ] && kill -TERM "$router" 2>/dev/null && wait "$router" 2>/dev/null
  for ns in "$lan" "$wan"; do ip netns del "$ns" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

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
[control]
socket = "control.sock"
[log]
level = "warn"
CONF
"$bin" --config "$work/router.toml" 2> "$work/router.log" &
router=$!
for _ in $(seq 100); do [ -S "$work/control.sock" ] && break; sleep 0.1; done

# One partial sync: its router work (µs) and CLI wall time (µs).
sync() { # $1: restore input file
  local t0 t1 out
  t0=$(date +%s%N)
  out=$(RTROUTER_TIMING=1 iptables-restore --noflush --counters "$1" 2>&1)
  t1=$(date +%s%N)
  echo "$(sed -n 's/.*router work \([0-9]*\) µs.*/\1/p' <<< "$out") $(((t1 - t0) / 1000))"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

svc_chains() { # $1: service number
  printf '*nat\n:KUBE-SVC-B%06d - [0:0]\n:KUBE-SEP-B%06d - [0:0]\n' "$1" "$1"
  printf -- '-A KUBE-SVC-B%06d -m comment --comment "bench/svc-%d:http -> 10.255.0.1:80" -j KUBE-SEP-B%06d\n' "$1" "$1" "$1"
  printf -- '-A KUBE-SEP-B%06d -s 10.255.0.1/32 -m comment --comment bench/svc-%d:http -j KUBE-MARK-MASQ\n' "$1" "$1"
  printf -- '-A KUBE-SEP-B%06d -p tcp -m comment --comment bench/svc-%d:http -m tcp -j DNAT --to-destination 10.255.0.1:80\n' "$1" "$1"
}
jump() { # $1: -A or -D, $2: service number
  printf -- '%s KUBE-SERVICES -d 172.31.255.1/32 -p tcp -m comment --comment "bench/svc-%d:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-B%06d\n' "$1" "$2" "$2"
}

printf '%-8s %10s %10s %14s %16s %16s %16s %16s\n' services rules load_s rss_mib \
  "add-chains" "remove-chains" "add-service" "remove-service"
for n in "${sizes[@]}"; do
  "$bin" generate kube-proxy "$n" > "$work/rules"
  rules=$(grep -c '^-A' "$work/rules")
  "$bin" flush-all --socket "$work/control.sock" >/dev/null
  t0=$(date +%s%N)
  iptables-restore "$work/rules"
  t1=$(date +%s%N)
  load=$(awk "BEGIN { printf \"%.2f\", ($t1 - $t0) / 1e9 }")
  rss=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$router/status")
  declare -A col=()
  for kind in chains service; do
    : > "$work/add.$kind"; : > "$work/del.$kind"
    for r in $(seq "$runs"); do
      { svc_chains "$r"; [ "$kind" = service ] && jump -A "$r"; echo COMMIT; } > "$work/in"
      sync "$work/in" >> "$work/add.$kind"
      { printf '*nat\n:KUBE-SVC-B%06d - [0:0]\n:KUBE-SEP-B%06d - [0:0]\n' "$r" "$r"
        [ "$kind" = service ] && jump -D "$r"
        printf -- '-X KUBE-SVC-B%06d\n-X KUBE-SEP-B%06d\nCOMMIT\n' "$r" "$r"; } > "$work/in"
      sync "$work/in" >> "$work/del.$kind"
    done
    for op in add del; do
      w=$(cut -d' ' -f1 "$work/$op.$kind" | median)
      c=$(cut -d' ' -f2 "$work/$op.$kind" | median)
      col[$op.$kind]=$(awk "BEGIN { printf \"%.2f/%.1f ms\", $w / 1000, $c / 1000 }")
    done
  done
  printf '%-8s %10s %10s %14s %16s %16s %16s %16s\n' "$n" "$rules" "$load" "$rss" \
    "${col[add.chains]}" "${col[del.chains]}" "${col[add.service]}" "${col[del.service]}"
done
echo "(partial syncs: router work / CLI wall time, median of $runs)"

# Forwarding while the largest ruleset loads: a 10 ms ping from the LAN to the WAN side.
n=${sizes[-1]}
"$bin" generate kube-proxy "$n" > "$work/rules"
"$bin" flush-all --socket "$work/control.sock" >/dev/null
ip netns exec "$lan" ping -D -i 0.01 -W 1 10.9.2.2 > "$work/ping" 2>&1 &
pinger=$!
sleep 1
iptables-restore "$work/rules"
sleep 1
kill -INT "$pinger"; wait "$pinger" 2>/dev/null || true
gap=$(sed -n 's/^\[\([0-9.]*\)\].*icmp_seq.*/\1/p' "$work/ping" \
  | awk 'NR > 1 { d = $1 - p; if (d > m) m = d } { p = $1 } END { printf "%.0f", m * 1000 }')
lost=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$work/ping")
echo "forwarding during a $n-service load: longest gap between ping replies ${gap} ms (10 ms interval), loss ${lost}%"
