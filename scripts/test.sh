#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, then runs formatting and
# lint checks, every test (unit, conformance, end-to-end), the benchmarks in test mode, and a
# short fuzz run of every parser. `.ci/run` runs exactly this.
#
#   bash scripts/test.sh            # everything
#   FUZZ_SECONDS=0 bash scripts/test.sh   # skip the fuzz run
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-20}

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: $(cargo --version), $(rustc --version)"
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "system packages the end-to-end tests drive (ufw, strace, tcpdump, tshark), when missing"
# ufw drives the router in tests/tests/frontend.rs (and brings the kernel's iptables, which
# tests/tests/kernel.rs compares rtrouter with); strace lets two iptables shell cases check
# what the front end does instead of skipping; tcpdump and tshark read what replay writes
# (tests/tests/replay.rs). Installing ufw does not enable it.
missing=()
for p in ufw strace tcpdump tshark; do command -v "$p" >/dev/null 2>&1 || [ -x "/usr/sbin/$p" ] || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "example plugins: native unit tests, then wasm builds (tests below load them)"
(cd plugins && cargo fmt --all -- --check && cargo clippy --all-targets -- -D warnings && cargo test)
bash scripts/build-plugins.sh

step "cargo test --workspace"
# The plugin tests must not skip here: the plugins were just built.
RTROUTER_REQUIRE_PLUGINS=1 cargo test --workspace

step "benchmarks in test mode (each runs once, so they cannot rot)"
# `cargo test --benches` runs criterion's test mode with the test profile: it reuses the
# artefacts of the step above instead of building wasmtime again, optimised.
cargo test --workspace --benches

if [ "$FUZZ_SECONDS" != 0 ]; then
  step "fuzz every parser for ${FUZZ_SECONDS}s"
  bash scripts/fuzz.sh "$FUZZ_SECONDS"
fi

step "all checks passed"
