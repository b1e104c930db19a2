//! A starting point for a plugin: matches packets whose transport payload contains the bytes
//! given as `--args` (`-m wasm --plugin NAME --args "GET /admin"`). Replace the logic, keep
//! the shape: parse arguments in `new` (it may allocate), look at packets in `matches` (it
//! should not), export with `export_match!`, test natively with `cargo test`.
#![cfg_attr(target_arch = "wasm32", no_std)]
extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use rtrouter_sdk::{export_match, Match, Packet};

#[derive(Debug)]
pub struct Contains(Vec<u8>);

impl Match for Contains {
    fn new(args: &str) -> Result<Self, String> {
        if args.is_empty() {
            return Err("--args gives the bytes to look for".into());
        }
        Ok(Contains(args.as_bytes().to_vec()))
    }

    fn matches(&self, p: &Packet) -> bool {
        p.payload().windows(self.0.len()).any(|w| w == self.0.as_slice())
    }
}

export_match!(Contains);

#[cfg(test)]
mod tests {
    use super::*;
    use rtrouter_sdk::testing::tcp;

    #[test]
    fn finds_the_bytes() {
        let m = Contains::new("GET /admin").unwrap();
        let hit = tcp(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            40000,
            80,
            0x18,
            b"GET /admin HTTP/1.1\r\n",
        );
        let miss = tcp([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80, 0x18, b"GET / HTTP/1.1\r\n");
        assert!(m.matches(&Packet::new(&hit)));
        assert!(!m.matches(&Packet::new(&miss)));
        assert!(Contains::new("").is_err());
    }
}
