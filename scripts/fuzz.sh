#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, installing cargo-fuzz if needed.
# Seeds come from configs/ and, when present, ../shared/conformance (read in place).
# A crash leaves its input under host/fuzz/artifacts/ and fails this script.
set -euo pipefail
cd "$(dirname "$0")/../host"
secs=${1:-60}
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi
# cargo-fuzz passes -Z sanitizer flags: allow them on the stable toolchain.
export RUSTC_BOOTSTRAP=1
mkdir -p fuzz/corpus/restore fuzz/corpus/config fuzz/corpus/packet fuzz/corpus/classifier fuzz/corpus/pcap fuzz/corpus/plugin_out fuzz/corpus/frontend fuzz/corpus/offload
cp ../configs/*.pcapng fuzz/corpus/pcap/
seeds_restore=(../configs)
[ -d ../../shared/conformance/iptables-dumps ] && seeds_restore+=(../../shared/conformance/iptables-dumps)
[ -d ../../shared/conformance/kube-proxy/rules_full ] && seeds_restore+=(../../shared/conformance/kube-proxy/rules_full)
cp ../configs/*.toml fuzz/corpus/config/
run() {
  local target=$1; shift
  echo "fuzz: $target for ${secs}s"
  cargo fuzz run -O "$target" "$@" -- -max_total_time="$secs" -max_len=8192 -print_final_stats=1 2>&1 \
    | grep -E '^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|SUMMARY|==[0-9]+==ERROR)|panicked' || true
  test "${PIPESTATUS[0]}" -eq 0
}
run restore fuzz/corpus/restore "${seeds_restore[@]}"
run config fuzz/corpus/config
run packet fuzz/corpus/packet fuzz/seeds/packet
run classifier fuzz/corpus/classifier
run pcap fuzz/corpus/pcap
run plugin_out fuzz/corpus/plugin_out
run frontend fuzz/corpus/frontend fuzz/seeds/frontend
run offload fuzz/corpus/offload fuzz/seeds/offload
