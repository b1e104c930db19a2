//! rtrouter: a userspace router with netfilter's semantics.
//!
//! Layers, lowest first; a lower layer never imports a higher one:
//! - [`ebpf`]: the kernel's eBPF programs that `-m bpf --object-pinned` rules run (the one
//!   system call a rule can make).
//! - [`ruleset`]: the iptables-restore language and the TOML-declared rules, parsed into a
//!   source form and validated once into the form the engine runs.
//! - [`config`]: `router.toml`, the whole router's configuration.
//! - [`frontend`]: the `iptables`/`iptables-save`/`iptables-restore` command lines, run against
//!   the live ruleset through the [`frontend::Live`] interface the control plane provides.
#![deny(unsafe_code)]

pub mod config;
pub mod conntrack;
#[cfg(feature = "plugins")]
pub mod dataplane;
pub mod defrag;
pub mod ebpf;
pub mod eval;
pub mod frontend;
pub mod gen;
pub mod ipset;
pub mod monitor;
pub mod nat;
pub mod packet;
pub mod pcap;
#[cfg(feature = "plugins")]
pub mod plugin;
pub(crate) mod reclaim;
pub mod replay;
pub mod route;
pub mod router;
pub mod ruleset;
pub mod synproxy;
pub mod trace;
