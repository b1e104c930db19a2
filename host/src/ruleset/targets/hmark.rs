//! `HMARK` (`libxt_HMARK.c`, `xt_HMARK.c`): set the packet mark to a hash of its addresses,
//! ports (or SPI) and protocol, scaled into `--hmark-mod` buckets from `--hmark-offset`.
//! The hash is the kernel's, so a cluster of Linux routers and rtrouter agree on it: the
//! masked addresses in ascending order, the masked ports as one word with the larger port
//! high, `jhash_3words` with `--hmark-rnd`, the protocol masked in, `reciprocal_scale`. An
//! ICMP error is hashed by the packet it quotes. With `--hmark-tuple ct` the connection's
//! original and reply tuples are hashed instead (no connection: the mark is left alone).

use super::TargetExt;
use crate::eval::{jhash, Ct, Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::{parse_uint, prefix_mask};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hmark {
    /// Source and destination address prefixes, when given (`--hmark-tuple src` is /32).
    pub src_prefix: Option<u8>,
    pub dst_prefix: Option<u8>,
    pub sport_mask: Option<u16>,
    pub dport_mask: Option<u16>,
    pub spi_mask: Option<u32>,
    pub sport_set: Option<u16>,
    pub dport_set: Option<u16>,
    pub spi_set: Option<u32>,
    pub proto_mask: Option<u16>,
    pub rnd: Option<u32>,
    pub modulus: u32,
    pub offset: Option<u32>,
    pub ct: bool,
}

/// The options while they are read: the target, and whether `--hmark-tuple` came.
#[derive(Debug, Clone, Copy, Default)]
pub struct Builder {
    h: Hmark,
    tuple: bool,
}

/// `--hmark-tuple` names, in the order `hmark_parse` tries them (a prefix is enough).
const TUPLE: [&str; 7] = ["ct", "src", "dst", "sport", "dport", "proto", "spi"];

/// What is hashed: addresses (host order, masked), the ports word, the protocol.
#[derive(Debug, Default)]
struct Tuple {
    src: u32,
    dst: u32,
    ports: u32,
    proto: u8,
}

impl Hmark {
    fn masks(&self) -> (u32, u32) {
        (
            self.src_prefix.map_or(0, prefix_mask),
            self.dst_prefix.map_or(0, prefix_mask),
        )
    }

    /// `hmark_swap_ports`: the raw ports word masked and set, then larger port high.
    fn ports(&self, raw: [u8; 4]) -> u32 {
        let word = u32::from_be_bytes(raw);
        let (mask, set) = if self.spi_mask.is_some() || self.spi_set.is_some() {
            (self.spi_mask.unwrap_or(0), self.spi_set.unwrap_or(0))
        } else {
            (
                u32::from(self.sport_mask.unwrap_or(0)) << 16 | u32::from(self.dport_mask.unwrap_or(0)),
                u32::from(self.sport_set.unwrap_or(0)) << 16 | u32::from(self.dport_set.unwrap_or(0)),
            )
        };
        let v = (word & mask) | set;
        let (src, dst) = (v >> 16, v & 0xffff);
        if dst > src {
            dst << 16 | src
        } else {
            src << 16 | dst
        }
    }

    /// `hmark_pkt_set_htuple_ipv4`.
    fn packet_tuple(&self, buf: &[u8]) -> Option<Tuple> {
        let (smask, dmask) = self.masks();
        let mut ip = buf;
        if ip.get(9) == Some(&1) {
            // An ICMP error: hash the packet it quotes.
            let hl = usize::from(ip[0] & 0x0f) * 4;
            if let Some(&kind) = ip.get(hl) {
                if matches!(kind, 3 | 4 | 5 | 11 | 12) {
                    if let Some(inner) = ip.get(hl + 8..) {
                        if inner.len() >= 20 {
                            ip = inner;
                        }
                    }
                }
            }
        }
        if ip.len() < 20 {
            return None;
        }
        let addr = |at: usize| u32::from_be_bytes([ip[at], ip[at + 1], ip[at + 2], ip[at + 3]]);
        let mut t = Tuple {
            src: addr(12) & smask,
            dst: addr(16) & dmask,
            ..Tuple::default()
        };
        t.proto = ip[9];
        let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
        if t.proto == 1 || frag {
            return Some(t);
        }
        let at = match t.proto {
            6 | 17 | 136 | 132 | 33 | 50 => 0,
            51 => 4,
            _ => return Some(t),
        };
        let o = usize::from(ip[0] & 0x0f) * 4 + at;
        if let Some(p) = ip.get(o..o + 4) {
            t.ports = self.ports([p[0], p[1], p[2], p[3]]);
        }
        Some(t)
    }

    /// An address under a prefix as HMARK hashes it: IPv4's in host order; IPv6's four
    /// words, each masked, xored (`hmark_addr6_mask`, then `ntohl`).
    fn fold(a: IpAddr, prefix: Option<u8>) -> u32 {
        match a {
            IpAddr::V4(v) => u32::from(v) & prefix.map_or(0, prefix_mask),
            IpAddr::V6(v) => {
                let x = u128::from(v) & crate::ruleset::value::prefix_mask6(prefix.unwrap_or(0));
                (x >> 96) as u32 ^ (x >> 64) as u32 ^ (x >> 32) as u32 ^ x as u32
            }
        }
    }

    /// `hmark_ct_set_htuple`.
    fn ct_tuple(&self, p: &Pkt) -> Option<Tuple> {
        let Ct::Tracked(ct) = &p.ct else { return None };
        let (os, rs) = (ct.orig.src, ct.reply.src);
        let mut t = Tuple {
            src: Self::fold(os, self.src_prefix),
            dst: Self::fold(rs, self.dst_prefix),
            proto: ct.proto,
            ..Tuple::default()
        };
        if t.proto != 1 && t.proto != 58 {
            let (a, b) = (ct.orig.sport.to_be_bytes(), ct.reply.sport.to_be_bytes());
            t.ports = self.ports([a[0], a[1], b[0], b[1]]);
        }
        Some(t)
    }

    /// `hmark_pkt_set_htuple_ipv6`: an ICMPv6 error's quoted packet stands for it; the
    /// upper-layer header found behind the extension headers (AH's SPI used as ESP's);
    /// fragments and ICMPv6 hash addresses and protocol only.
    fn packet_tuple6(&self, p: &Pkt) -> Option<Tuple> {
        let buf = p.buf.get(..usize::from(p.h.total_len))?;
        let (mut ip, mut proto, mut l4, mut frag) = (buf, p.h.proto, usize::from(p.h.l4_off), p.h.is_fragment());
        if !frag && proto == 58 && buf.get(l4).is_some_and(|t| *t != 0 && *t < 128) {
            let inner = buf.get(l4 + 8..)?;
            if inner.len() < 40 {
                return None;
            }
            ip = inner;
            // The quoted packet's upper-layer header, stopping at AH.
            let (mut next, mut at) = (inner[6], 40usize);
            frag = false;
            while matches!(next, 0 | 43 | 60 | 44) {
                let h = inner.get(at..at + 2)?;
                if next == 44 {
                    frag = inner
                        .get(at + 2..at + 4)
                        .is_some_and(|f| u16::from_be_bytes([f[0], f[1]]) & !7 != 0);
                    next = h[0];
                    at += 8;
                } else {
                    next = h[0];
                    at += (usize::from(h[1]) + 1) * 8;
                }
            }
            proto = next;
            l4 = at;
        }
        let addr = |at: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&ip[at..at + 16]).expect("16 bytes"));
        let mut t = Tuple {
            src: Self::fold(IpAddr::V6(addr(8)), self.src_prefix),
            dst: Self::fold(IpAddr::V6(addr(24)), self.dst_prefix),
            proto,
            ..Tuple::default()
        };
        if proto == 58 || frag {
            return Some(t);
        }
        let at = match proto {
            6 | 17 | 136 | 132 | 33 | 50 => 0,
            51 => 4,
            _ => return Some(t),
        };
        if let Some(b) = ip.get(l4 + at..l4 + at + 4) {
            t.ports = self.ports([b[0], b[1], b[2], b[3]]);
        }
        Some(t)
    }

    /// `hmark_hash`.
    fn hash(&self, t: &Tuple) -> u32 {
        let (src, dst) = if t.dst < t.src { (t.dst, t.src) } else { (t.src, t.dst) };
        let h = jhash::jhash_3words(src, dst, t.ports, self.rnd.unwrap_or(0))
            ^ (u32::from(t.proto) & u32::from(self.proto_mask.unwrap_or(0)));
        jhash::reciprocal_scale(h, self.modulus).wrapping_add(self.offset.unwrap_or(0))
    }
}

impl TargetExt for Hmark {
    type Builder = Builder;
    const OPTIONS: &'static [&'static str] = &[
        "hmark-tuple",
        "hmark-src-prefix",
        "hmark-dst-prefix",
        "hmark-sport-mask",
        "hmark-dport-mask",
        "hmark-spi-mask",
        "hmark-sport",
        "hmark-dport",
        "hmark-spi",
        "hmark-proto-mask",
        "hmark-rnd",
        "hmark-mod",
        "hmark-offset",
    ];

    fn start() -> Builder {
        Builder::default()
    }

    fn option(builder: &mut Builder, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        let name = format!("--{opt}");
        // Each option once, as xtables checks; the tuple counts as giving the options it
        // implies (so `--hmark-tuple dst --hmark-dst-prefix 24` is refused, while the other
        // order lets the tuple win).
        let b = &mut builder.h;
        let given = match opt {
            "hmark-tuple" => std::mem::replace(&mut builder.tuple, true),
            "hmark-src-prefix" => b.src_prefix.is_some(),
            "hmark-dst-prefix" => b.dst_prefix.is_some(),
            "hmark-sport-mask" => b.sport_mask.is_some(),
            "hmark-dport-mask" => b.dport_mask.is_some(),
            "hmark-spi-mask" => b.spi_mask.is_some(),
            "hmark-sport" => b.sport_set.is_some(),
            "hmark-dport" => b.dport_set.is_some(),
            "hmark-spi" => b.spi_set.is_some(),
            "hmark-proto-mask" => b.proto_mask.is_some(),
            "hmark-rnd" => b.rnd.is_some(),
            "hmark-mod" => b.modulus != 0,
            _ => b.offset.is_some(),
        };
        if given {
            return c.err(format!("HMARK: option \"{name}\" can only be used once."));
        }
        let v = c.value(&name)?;
        let num = |c: &Cursor, lo: u64, hi: u64| -> PResult<u64> {
            parse_uint(&v, lo, hi).map_or_else(|| c.err_value(format!("HMARK: bad {name} `{v}'")), Ok)
        };
        match opt {
            "hmark-tuple" => {
                if v.is_empty() || v.ends_with(',') {
                    return c.err_value(
                        "\"--hmark-tuple\" requires a list of types with no spaces, e.g. src,dst,sport,dport,proto",
                    );
                }
                for item in v.split(',') {
                    let Some(kind) = TUPLE.iter().find(|k| {
                        !item.is_empty() && item.len() <= k.len() && k[..item.len()].eq_ignore_ascii_case(item)
                    }) else {
                        return c.err_value(format!("Bad type \"{item}\""));
                    };
                    match *kind {
                        "ct" => b.ct = true,
                        "src" => b.src_prefix = Some(c.family.max_prefix()),
                        "dst" => b.dst_prefix = Some(c.family.max_prefix()),
                        "sport" => b.sport_mask = Some(0xffff),
                        "dport" => b.dport_mask = Some(0xffff),
                        "proto" => b.proto_mask = Some(0xffff),
                        _ => b.spi_mask = Some(u32::MAX),
                    }
                }
            }
            "hmark-src-prefix" => b.src_prefix = Some(num(c, 0, c.family.max_prefix().into())? as u8),
            "hmark-dst-prefix" => b.dst_prefix = Some(num(c, 0, c.family.max_prefix().into())? as u8),
            "hmark-sport-mask" => b.sport_mask = Some(num(c, 0, 0xffff)? as u16),
            "hmark-dport-mask" => b.dport_mask = Some(num(c, 0, 0xffff)? as u16),
            "hmark-spi-mask" => b.spi_mask = Some(num(c, 0, u64::from(u32::MAX))? as u32),
            "hmark-sport" => b.sport_set = Some(num(c, 0, 0xffff)? as u16),
            "hmark-dport" => b.dport_set = Some(num(c, 0, 0xffff)? as u16),
            "hmark-spi" => b.spi_set = Some(num(c, 0, u64::from(u32::MAX))? as u32),
            "hmark-proto-mask" => b.proto_mask = Some(num(c, 0, 0xffff)? as u16),
            "hmark-rnd" => b.rnd = Some(num(c, 0, u64::from(u32::MAX))? as u32),
            "hmark-mod" => b.modulus = num(c, 1, u64::from(u32::MAX))? as u32,
            _ => b.offset = Some(num(c, 0, u64::from(u32::MAX))? as u32),
        }
        Ok(())
    }

    fn finish(b: Builder, _: RuleProto, _: bool) -> Result<Hmark, String> {
        let b = b.h;
        if b.modulus == 0 {
            return Err("--hmark-mod is mandatory".into());
        }
        if b.rnd.is_none() {
            return Err("--hmark-rnd is mandatory".into());
        }
        if b.spi_mask.is_some() && (b.sport_mask.is_some() || b.dport_mask.is_some()) {
            return Err("you cannot use --hmark-spi-mask and --hmark-?port-mask,at the same time".into());
        }
        if b.spi_set.is_some() && (b.sport_set.is_some() || b.dport_set.is_some()) {
            return Err("HMARK: spi-set and port-set can't be combined".into());
        }
        let tuple = b.src_prefix.is_some()
            || b.dst_prefix.is_some()
            || b.sport_mask.is_some()
            || b.dport_mask.is_some()
            || b.spi_mask.is_some()
            || b.proto_mask.is_some();
        if !tuple && !b.ct {
            return Err("you have to specify --hmark-tuple at least".into());
        }
        Ok(b)
    }

    fn save(&self, out: &mut String) {
        // HMARK_ip4_save, then HMARK_save.
        if let Some(p) = self.src_prefix {
            let _ = write!(out, " --hmark-src-prefix {p}");
        }
        if let Some(p) = self.dst_prefix {
            let _ = write!(out, " --hmark-dst-prefix {p}");
        }
        if let Some(m) = self.sport_mask {
            let _ = write!(out, " --hmark-sport-mask {m:#06x}");
        }
        if let Some(m) = self.dport_mask {
            let _ = write!(out, " --hmark-dport-mask {m:#06x}");
        }
        if let Some(m) = self.spi_mask {
            let _ = write!(out, " --hmark-spi-mask {m:#010x}");
        }
        if let Some(v) = self.sport_set {
            let _ = write!(out, " --hmark-sport {v:#06x}");
        }
        if let Some(v) = self.dport_set {
            let _ = write!(out, " --hmark-dport {v:#06x}");
        }
        if let Some(v) = self.spi_set {
            let _ = write!(out, " --hmark-spi {v:#010x}");
        }
        if let Some(m) = self.proto_mask {
            let _ = write!(out, " --hmark-proto-mask {m:#04x}");
        }
        let _ = write!(
            out,
            " --hmark-rnd {:#010x} --hmark-mod {}",
            self.rnd.unwrap_or(0),
            self.modulus
        );
        if let Some(o) = self.offset {
            let _ = write!(out, " --hmark-offset {o}");
        }
        if self.ct {
            out.push_str(" --hmark-tuple ct");
        }
    }

    fn list(&self, out: &mut String, _: bool) {
        // `HMARK_ip4_print`/`HMARK_ip6_print`, then `HMARK_print`: each part followed by a
        // space.
        let _ = write!(out, " HMARK mod {} ", self.modulus);
        if let Some(o) = self.offset {
            let _ = write!(out, "+ {o:#x} ");
        }
        if self.ct {
            out.push_str("ct, ");
        }
        let parts: [(&str, Option<u32>); 10] = [
            ("src-prefix", self.src_prefix.map(u32::from)),
            ("dst-prefix", self.dst_prefix.map(u32::from)),
            ("sport-mask", self.sport_mask.map(u32::from)),
            ("dport-mask", self.dport_mask.map(u32::from)),
            ("spi-mask", self.spi_mask),
            ("sport", self.sport_set.map(u32::from)),
            ("dport", self.dport_set.map(u32::from)),
            ("spi", self.spi_set),
            ("proto-mask", self.proto_mask.map(u32::from)),
            ("rnd", self.rnd),
        ];
        for (name, v) in parts {
            let _ = match v {
                Some(v) if name.ends_with("prefix") => write!(out, "{name} {v} "),
                Some(v) => write!(out, "{name} {v:#x} "),
                None => Ok(()),
            };
        }
    }

    fn apply(&self, p: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        let t = if self.ct {
            self.ct_tuple(p)
        } else if p.h.is_v4() {
            self.packet_tuple(p.buf)
        } else {
            self.packet_tuple6(p)
        };
        if let Some(t) = t {
            p.mark = self.hash(&t);
        }
        None
    }
}
