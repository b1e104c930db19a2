//! `SNPT` and `DNPT` (`libip6t_NPT.c`, `ip6t_NPT.c`): stateless IPv6-to-IPv6 network prefix
//! translation (RFC 6296). The source (SNPT) or destination (DNPT) prefix `--src-pfx` is
//! replaced by `--dst-pfx`, and one 16-bit word of the interface identifier is adjusted so
//! that the address sums to the same one's-complement value: transport checksums stay valid
//! untouched. mangle table; SNPT in INPUT and POSTROUTING, DNPT in PREROUTING and OUTPUT.
//!
//! An address that cannot be adjusted (every candidate word 0xffff) is dropped with an
//! ICMPv6 parameter problem pointing at the address, as the kernel does; and, as the kernel
//! does since 5.x, the address of the packet an ICMPv6 error quotes is translated back
//! (SNPT rewrites the quoted destination, DNPT the quoted source) when it lies in
//! `--src-pfx`.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::packet::{checksum, proto};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::targets::RejectWith;
use crate::ruleset::value::parse_uint;
use crate::ruleset::{hooks, Family, HookMask, TableKind};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};

/// The two prefixes, and the checksum adjustment `ip6t_npt_checkentry` precomputes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Npt {
    pub src: (Ipv6Addr, u8),
    pub dst: (Ipv6Addr, u8),
    adjustment: u16,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct NptBuilder {
    src: Option<(Ipv6Addr, u8)>,
    dst: Option<(Ipv6Addr, u8)>,
}

fn prefix(a: Ipv6Addr, len: u8) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(a) & crate::ruleset::value::prefix_mask6(len))
}

/// The ones'-complement sum of the address's 16-bit words.
fn sum(a: &[u8; 16]) -> u32 {
    checksum::sum(a)
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The kernel's `csum_add`: 32-bit ones'-complement addition.
fn csum_add(a: u32, b: u32) -> u32 {
    let (r, carry) = a.overflowing_add(b);
    r.wrapping_add(u32::from(carry))
}

/// The kernel's `csum_fold`: folded to 16 bits and complemented.
fn csum_fold(x: u32) -> u16 {
    !fold(x)
}

impl Npt {
    fn option(b: &mut NptBuilder, opt: &str, c: &mut Cursor, name: &str) -> PResult<()> {
        let v = c.value(&format!("--{opt}"))?;
        let (a, len) = v.split_once('/').map_or((v.as_str(), None), |(a, l)| (a, Some(l)));
        let len = match len {
            None => 128,
            Some(l) => {
                parse_uint(l, 0, 128).map_or_else(|| c.err_value(format!("{name}: bad prefix length `{l}'")), Ok)? as u8
            }
        };
        let Ok(addr) = a.parse::<Ipv6Addr>() else {
            return c.err_value(format!("host/network `{a}' not found"));
        };
        if opt == "src-pfx" {
            b.src = Some((addr, len));
        } else {
            b.dst = Some((addr, len));
        }
        Ok(())
    }

    fn finish(b: NptBuilder, p: RuleProto, name: &str) -> Result<Npt, String> {
        p.only(Family::V6, "target", name)?;
        let (Some(src), Some(dst)) = (b.src, b.dst) else {
            return Err(format!("{name}: --src-pfx and --dst-pfx are both required"));
        };
        // `ip6t_npt_checkentry`: prefixes of at most 64 bits with nothing set past them.
        for (a, len) in [src, dst] {
            if len > 64 || prefix(a, len) != a {
                return Err(format!(
                    "{name}: {a}/{len} is not a prefix of at most 64 bits (Invalid argument)"
                ));
            }
        }
        // `~csum_fold(csum_sub(src_sum, dst_sum))`.
        let adjustment = !csum_fold(csum_add(sum(&src.0.octets()), !sum(&dst.0.octets())));
        Ok(Npt { src, dst, adjustment })
    }

    fn save(&self, out: &mut String) {
        for (opt, (a, len)) in [("src-pfx", self.src), ("dst-pfx", self.dst)] {
            if !a.is_unspecified() || len != 0 {
                let _ = write!(out, " --{opt} {a}/{len}");
            }
        }
    }

    /// `ip6t_npt_map_pfx`: the new address, `None` when no word can take the adjustment.
    fn map(&self, addr: Ipv6Addr) -> Option<Ipv6Addr> {
        let pfx_len = u32::from(self.src.1.max(self.dst.1));
        let mut words = u128::from(addr);
        let keep = if pfx_len == 0 { u128::MAX } else { u128::MAX >> pfx_len };
        words = (words & keep) | (u128::from(self.dst.0) & !keep);
        let mut b = words.to_be_bytes();
        let idx = if pfx_len <= 48 {
            3
        } else {
            (4..8).find(|&i| b[2 * i..2 * i + 2] != [0xff, 0xff])?
        };
        let w = u16::from_be_bytes([b[2 * idx], b[2 * idx + 1]]);
        // `~csum_fold(csum_add(word, adjustment))`, CSUM_MANGLED_0 written as 0.
        let mut s = !csum_fold(csum_add(u32::from(w), u32::from(self.adjustment)));
        if s == 0xffff {
            s = 0;
        }
        b[2 * idx..2 * idx + 2].copy_from_slice(&s.to_be_bytes());
        Some(Ipv6Addr::from(b))
    }

    /// Translates the packet's source (`src`) or destination address, and the other address
    /// of the packet an ICMPv6 error quotes.
    fn apply(&self, p: &mut Pkt, src: bool) -> Option<Verdict> {
        let (IpAddr::V6(a), at) = (if src { p.h.src } else { p.h.dst }, if src { 8 } else { 24 }) else {
            return None;
        };
        let Some(new) = self.map(a) else {
            return Some(Verdict::Reject(RejectWith::Icmp6HeaderField(at as u8)));
        };
        p.buf[at..at + 16].copy_from_slice(&new.octets());
        if src {
            p.h.src = IpAddr::V6(new);
        } else {
            p.h.dst = IpAddr::V6(new);
        }
        // An ICMPv6 error (type below 128) quoting a packet sent to (SNPT) or from (DNPT)
        // the translated range: its quoted address goes back.
        let l4 = usize::from(p.h.l4_off);
        if p.h.proto == proto::ICMPV6 && p.h.frag_off == 0 && p.buf.get(l4).is_some_and(|t| *t < 128) {
            let q = l4 + 8 + if src { 24 } else { 8 };
            if let Some(bytes) = p.buf.get(q..q + 16) {
                let quoted = Ipv6Addr::from(<[u8; 16]>::try_from(bytes).expect("16 bytes"));
                if prefix(quoted, self.src.1) == self.src.0 {
                    if let Some(back) = self.map(quoted) {
                        p.buf[q..q + 16].copy_from_slice(&back.octets());
                    }
                }
            }
        }
        None
    }
}

/// `SNPT` and `DNPT`: one target each, the same translation on the source or the
/// destination, in the hooks the kernel allows each.
macro_rules! npt_target {
    ($ty:ident, $name:literal, $src:literal, $hooks:expr) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $ty(pub Npt);

        impl TargetExt for $ty {
            type Builder = NptBuilder;
            const OPTIONS: &'static [&'static str] = &["src-pfx", "dst-pfx"];

            fn start() -> NptBuilder {
                NptBuilder::default()
            }

            fn option(b: &mut NptBuilder, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
                Npt::option(b, opt, c, $name)
            }

            fn finish(b: NptBuilder, p: RuleProto, _: bool) -> Result<$ty, String> {
                Npt::finish(b, p, $name).map($ty)
            }

            fn save(&self, out: &mut String) {
                self.0.save(out);
            }

            fn tables(&self) -> &'static [TableKind] {
                &[TableKind::Mangle]
            }

            fn hooks(&self) -> HookMask {
                $hooks
            }

            fn apply(&self, p: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
                self.0.apply(p, $src)
            }
        }
    };
}

npt_target!(Snpt, "SNPT", true, hooks::INPUT | hooks::POSTROUTING);
npt_target!(Dnpt, "DNPT", false, hooks::PREROUTING | hooks::OUTPUT);

#[cfg(test)]
mod tests {
    use super::*;

    fn npt(src: &str, dst: &str) -> Npt {
        let p = |s: &str| {
            let (a, l) = s.split_once('/').unwrap();
            (a.parse().unwrap(), l.parse().unwrap())
        };
        let b = NptBuilder {
            src: Some(p(src)),
            dst: Some(p(dst)),
        };
        let rp = RuleProto {
            proto: 0,
            inv: false,
            family: Family::V6,
        };
        Npt::finish(b, rp, "SNPT").unwrap()
    }

    /// RFC 6296 2.6's example: fd01:203:405:/48 to 2001:db8:1:/48 maps fd01:203:405:1::1234
    /// to 2001:db8:1:d550::1234.
    #[test]
    fn rfc6296_example_and_checksum_neutral() {
        let n = npt("fd01:203:405::/48", "2001:db8:1::/48");
        let a: Ipv6Addr = "fd01:203:405:1::1234".parse().unwrap();
        let m = n.map(a).unwrap();
        assert_eq!(m, "2001:db8:1:d550::1234".parse::<Ipv6Addr>().unwrap());
        assert_eq!(fold(sum(&a.octets())), fold(sum(&m.octets())));
        // And back.
        let back = npt("2001:db8:1::/48", "fd01:203:405::/48");
        assert_eq!(back.map(m).unwrap(), a);
    }

    #[test]
    fn prefixes_longer_than_48_adjust_the_first_word_that_can() {
        let n = npt("fd00:1:2:3::/64", "2001:db8:aa:bb::/64");
        let a: Ipv6Addr = "fd00:1:2:3:ffff::9".parse().unwrap();
        let m = n.map(a).unwrap();
        assert_eq!(
            u128::from(m) >> 64,
            u128::from("2001:db8:aa:bb::".parse::<Ipv6Addr>().unwrap()) >> 64
        );
        assert_eq!(fold(sum(&a.octets())), fold(sum(&m.octets())));
        assert_eq!(m.segments()[4], 0xffff, "0xffff words are skipped");
        let all = "fd00:1:2:3:ffff:ffff:ffff:ffff".parse::<Ipv6Addr>().unwrap();
        assert_eq!(n.map(all), None);
    }
}
