//! `rtrouter-sdk`: write rtrouter match and target plugins in Rust.
//!
//! A plugin is a `wasm32-unknown-unknown` module that rtrouter runs sandboxed on the packet
//! path: `-m wasm --plugin NAME --args "…"` calls its match, `-j WASM --plugin NAME --args
//! "…"` its target. Implement [`Match`] or [`Target`] (or both) and export them with
//! [`export_match!`] / [`export_target!`]:
//!
//! ```
//! use rtrouter_sdk::{export_match, Match, Packet};
//! # extern crate alloc;
//! # use alloc::string::String;
//!
//! /// Matches UDP packets to one destination port.
//! pub struct UdpPort(u16);
//!
//! impl Match for UdpPort {
//!     fn new(args: &str) -> Result<Self, String> {
//!         args.trim().parse().map(UdpPort).map_err(|_| "expected a port number".into())
//!     }
//!     fn matches(&self, p: &Packet) -> bool {
//!         p.proto() == 17 && p.dport() == Some(self.0)
//!     }
//! }
//!
//! export_match!(UdpPort);
//!
//! // Plugin logic is ordinary Rust, tested natively:
//! let m = UdpPort::new("53").unwrap();
//! let pkt = rtrouter_sdk::testing::udp([10, 0, 0, 1], [10, 0, 0, 2], 5353, 53, b"query");
//! assert!(m.matches(&Packet::new(&pkt)));
//! ```
//!
//! Build with `cargo build --release --target wasm32-unknown-unknown` (crate-type `cdylib`);
//! `plugins/` has complete examples and `scripts/build-plugins.sh` builds them. The ABI is in
//! [`abi`] and `sdk/ABI.md`. Rules: `new` runs once per rule at load and may allocate; `matches`
//! and `apply` run per packet and should not (on wasm the allocator never frees).
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

pub mod abi;
pub mod host;
pub mod packet;
#[doc(hidden)]
pub mod rt;
pub mod testing;

pub use packet::{Packet, PacketMut};

use alloc::string::String;

/// What a target decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on with the next rule.
    Continue,
    Accept,
    Drop,
    /// Drop and answer with ICMP port unreachable.
    Reject,
}

impl Verdict {
    pub fn code(self) -> i32 {
        match self {
            Verdict::Continue => abi::VERDICT_CONTINUE,
            Verdict::Accept => abi::VERDICT_ACCEPT,
            Verdict::Drop => abi::VERDICT_DROP,
            Verdict::Reject => abi::VERDICT_REJECT,
        }
    }
}

/// A match: one value per rule, built from the rule's `--args`.
pub trait Match: Sized {
    /// Parses `--args`; an `Err` refuses the rule with that message.
    fn new(args: &str) -> Result<Self, String>;
    /// Whether the packet matches.
    fn matches(&self, p: &Packet) -> bool;
}

/// A target: one value per rule, built from the rule's `--args`.
pub trait Target: Sized {
    fn new(args: &str) -> Result<Self, String>;
    /// Acts on the packet (it may change the mark, the connmark and packet bytes).
    fn apply(&self, p: &mut PacketMut) -> Verdict;
}

/// Exports a [`Match`] implementation as the plugin's match.
#[macro_export]
macro_rules! export_match {
    ($t:ty) => {
        static __RTROUTER_MATCHES: $crate::rt::Rules<$t> = $crate::rt::Rules::new();
        $crate::__export_common!();
        #[no_mangle]
        pub extern "C" fn rtrouter_init(handle: i32, args_len: i32) -> i32 {
            $crate::rt::init_match(&__RTROUTER_MATCHES, handle, args_len)
        }
        #[no_mangle]
        pub extern "C" fn rtrouter_match(handle: i32, len: i32) -> i32 {
            $crate::rt::run_match(&__RTROUTER_MATCHES, handle, len)
        }
    };
}

/// Exports a [`Target`] implementation as the plugin's target.
#[macro_export]
macro_rules! export_target {
    ($t:ty) => {
        static __RTROUTER_TARGETS: $crate::rt::Rules<$t> = $crate::rt::Rules::new();
        $crate::__export_common!();
        #[no_mangle]
        pub extern "C" fn rtrouter_init(handle: i32, args_len: i32) -> i32 {
            $crate::rt::init_target(&__RTROUTER_TARGETS, handle, args_len)
        }
        #[no_mangle]
        pub extern "C" fn rtrouter_target(handle: i32, len: i32) -> i32 {
            $crate::rt::run_target(&__RTROUTER_TARGETS, handle, len)
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_common {
    () => {
        #[no_mangle]
        pub extern "C" fn rtrouter_abi_version() -> i32 {
            $crate::abi::ABI_VERSION
        }
        #[no_mangle]
        pub extern "C" fn rtrouter_buffer() -> i32 {
            $crate::rt::buffer_addr()
        }
        #[no_mangle]
        pub extern "C" fn rtrouter_buffer_len() -> i32 {
            $crate::rt::BUFFER_LEN as i32
        }
    };
}
