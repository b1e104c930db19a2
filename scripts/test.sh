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

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace"
cargo test --workspace

step "benchmarks in test mode (each runs once, so they cannot rot)"
cargo bench --workspace --benches -- --test

if [ "$FUZZ_SECONDS" != 0 ]; then
  step "fuzz every parser for ${FUZZ_SECONDS}s"
  bash scripts/fuzz.sh "$FUZZ_SECONDS"
fi

step "all checks passed"
