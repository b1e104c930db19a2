//! `rtrouter-sdk`: write rtrouter match and target plugins in Rust, compiled to WebAssembly.
//!
//! A plugin is a `wasm32-unknown-unknown` module that rtrouter runs in a sandbox on the packet
//! path: `-m wasm --plugin NAME --args "…"` in a rule calls its match, `-j WASM --plugin NAME`
//! its target. This crate will hold the one definition of the plugin ABI (shared with the host),
//! a packet view and the declaration macros; it is `no_std` so that modules stay small and
//! import nothing but what the host offers.
//!
//! The ABI and the API are being built (issue 6); this crate has no items yet.
#![no_std]
