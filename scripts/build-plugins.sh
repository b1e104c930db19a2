#!/usr/bin/env bash
# Builds every example plugin to plugins/target/<name>.wasm ("-" becomes "_").
#
# Prefers the rustup wasm32-unknown-unknown target (what plugin authors use); on a machine
# where it cannot be installed, falls back to Debian's Rust (rustc-web, rust-web-src) with
# wasm-ld, building core and alloc from source (../shared/wasm-toolchain.md). The C plugin
# is built with clang --target=wasm32.
set -euo pipefail
cd "$(dirname "$0")/../plugins"
out=target
mkdir -p "$out"

have_rustup_target() { rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; }
if ! have_rustup_target; then
  timeout 120 rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
fi

if have_rustup_target; then
  echo "plugins: building with rustup's wasm32-unknown-unknown target"
  cargo build --release --target wasm32-unknown-unknown --target-dir "$out/cargo" -q
else
  echo "plugins: rustup target unavailable; building with Debian's rustc and -Zbuild-std"
  if ! [ -x /usr/bin/rustc ] || ! [ -d /usr/lib/rustlib/src/rust/library ] || ! command -v wasm-ld >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src lld >/dev/null
  fi
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS="-C linker=wasm-ld" \
    /usr/bin/cargo build --release --target wasm32-unknown-unknown --target-dir "$out/cargo" -q -Zbuild-std=core,alloc
fi
for f in "$out"/cargo/wasm32-unknown-unknown/release/*.wasm; do
  cp "$f" "$out/$(basename "$f")"
done

# The C plugin: proves the ABI is language-neutral.
if [ -d c-port-range ]; then
  if ! command -v clang >/dev/null || ! command -v wasm-ld >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang lld >/dev/null
  fi
  clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export-dynamic -Wl,--allow-undefined \
    -o "$out/c_port_range.wasm" c-port-range/port_range.c
fi
ls -la "$out"/*.wasm
