//! `dscp`: a target that sets the DSCP field (RFC 2474) of IPv4 and IPv6 packets and
//! continues: `--args "ef"`, a class name (`be`, `cs0`–`cs7`, `af11`–`af43`, `ef`, `va`) or a
//! number 0–63. The host fixes the IPv4 header checksum afterwards.
#![cfg_attr(target_arch = "wasm32", no_std)]
extern crate alloc;

use alloc::string::String;
use rtrouter_sdk::{export_target, PacketMut, Target, Verdict};

#[derive(Debug)]
pub struct Dscp(u8);

/// The code point of a class name (RFC 4594, RFC 5865).
pub fn class(name: &str) -> Option<u8> {
    let n = name.to_ascii_lowercase();
    match n.as_str() {
        "be" | "default" => Some(0),
        "ef" => Some(46),
        "va" | "voice-admit" => Some(44),
        _ => {
            if let Some(c) = n.strip_prefix("cs") {
                let c: u8 = c.parse().ok()?;
                return (c <= 7).then_some(c << 3);
            }
            let af = n.strip_prefix("af")?.as_bytes();
            let (class, drop) = (af.first()?.checked_sub(b'0')?, af.get(1)?.checked_sub(b'0')?);
            ((1..=4).contains(&class) && (1..=3).contains(&drop) && af.len() == 2).then_some((class << 3) | (drop << 1))
        }
    }
}

impl Target for Dscp {
    fn new(args: &str) -> Result<Self, String> {
        let a = args.trim();
        let v = match a.parse::<u8>() {
            Ok(n) if n < 64 => n,
            Ok(_) => return Err("DSCP values are 0-63".into()),
            Err(_) => class(a).ok_or_else(|| alloc::format!("unknown DSCP class `{a}'"))?,
        };
        Ok(Dscp(v))
    }

    fn apply(&self, p: &mut PacketMut) -> Verdict {
        let version = p.view().ip_version();
        let b = p.bytes_mut();
        match version {
            4 if b.len() > 1 => b[1] = (self.0 << 2) | (b[1] & 0x03),
            6 if b.len() > 1 => {
                // Traffic class spans the low nibble of byte 0 and the high nibble of byte 1.
                let tc = (self.0 << 2) | ((b[1] >> 4) & 0x03);
                b[0] = (b[0] & 0xf0) | (tc >> 4);
                b[1] = (b[1] & 0x0f) | (tc << 4);
            }
            _ => {}
        }
        Verdict::Continue
    }
}

export_target!(Dscp);

#[cfg(test)]
mod tests {
    use super::*;
    use rtrouter_sdk::abi::META_LEN;
    use rtrouter_sdk::testing::udp;

    #[test]
    fn classes() {
        assert_eq!(class("ef"), Some(46));
        assert_eq!(class("AF11"), Some(10));
        assert_eq!(class("af43"), Some(38));
        assert_eq!(class("cs6"), Some(48));
        assert_eq!(class("af51"), None);
        assert_eq!(class("cs8"), None);
        assert!(Dscp::new("64").is_err());
    }

    #[test]
    fn sets_the_field_and_keeps_ecn() {
        let mut b = udp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, b"");
        b[META_LEN + 1] = 0x03;
        let t = Dscp::new("ef").unwrap();
        assert_eq!(t.apply(&mut PacketMut::new(&mut b)), Verdict::Continue);
        assert_eq!(b[META_LEN + 1], (46 << 2) | 0x03);
    }
}
