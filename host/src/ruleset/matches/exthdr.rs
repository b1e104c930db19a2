//! ip6tables' extension-header matches: `frag` (`libip6t_frag.c`, `ip6t_frag.c`), `hbh` and
//! `dst` (`libip6t_hbh.c`, `libip6t_dst.c`, `ip6t_hbh.c`), `rt` (`libip6t_rt.c`,
//! `ip6t_rt.c`), `ipv6header` (`libip6t_ipv6header.c`, `ip6t_ipv6header.c`), `mh`
//! (`libip6t_mh.c`, `ip6t_mh.c`), `eui64` (`libip6t_eui64.c`, `ip6t_eui64.c`) and the IPv6
//! flavour of `ah` (in `esp.rs`).
//!
//! The kernel finds the header each one inspects with `ipv6_find_hdr`: walking the chain of
//! extension headers from the fixed header, stopping at the first upper-layer header and at
//! a fragment that is not the first. [`find_hdr`] does the same, bounded by the packet (a
//! header that runs past it is not found: the kernel drops such a packet, `hotdrop`, and
//! rtrouter's parser has already dropped it as truncated).

use super::esp::{self, Spi};
use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::parse_uint;
use crate::ruleset::{hooks, Family, HookMask};
use std::fmt::Write as _;
use std::net::Ipv6Addr;

/// Hop-by-hop options, routing, fragment, authentication, no next header, destination
/// options: the headers `ipv6_ext_hdr` walks past.
const HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const ESP: u8 = 50;
const AUTH: u8 = 51;
const NONE: u8 = 59;
const DEST: u8 = 60;
const MH: u8 = 135;

fn is_ext(h: u8) -> bool {
    matches!(h, HOP | ROUTING | FRAGMENT | AUTH | DEST)
}

/// The IPv6 packet as its header bounds it, or `None` for an IPv4 packet.
fn v6<'a>(p: &'a Pkt<'_>) -> Option<&'a [u8]> {
    if p.h.is_v4() {
        return None;
    }
    p.buf.get(..usize::from(p.h.total_len))
}

/// `ipv6_find_hdr(skb, &off, target, NULL, NULL)`: the offset of the first header of type
/// `target`, `None` when there is none before the upper-layer header (or behind a fragment
/// that is not the first).
pub(crate) fn find_hdr(buf: &[u8], target: u8) -> Option<usize> {
    crate::packet::find_ext6(buf, target).map(|(at, _)| at)
}

/// A 32-bit option that may be negated, given once (`--fraglen`, `--rt-len`, `--ahlen`…).
fn once_u32(slot: &mut Option<(bool, u32)>, opt: &str, mut inv: bool, c: &mut Cursor, ext: &str) -> PResult<()> {
    let name = format!("--{opt}");
    c.once(slot, &name)?;
    let v = c.value_inv(&name, &mut inv)?;
    let n = parse_uint(&v, 0, u64::from(u32::MAX))
        .map_or_else(|| c.err_value(format!("{ext}: bad {name} `{v}'")), Ok)? as u32;
    *slot = Some((inv, n));
    Ok(())
}

fn save_u32(out: &mut String, opt: &str, v: Option<(bool, u32)>) {
    if let Some((inv, n)) = v {
        let _ = write!(out, "{} --{opt} {n}", bang(inv));
    }
}

fn flag(slot: &mut bool, opt: &str, inv: bool, c: &mut Cursor) -> PResult<()> {
    c.no_invert(inv, &format!("--{opt}"))?;
    *slot = true;
    Ok(())
}

fn in_range(s: &Spi, v: u32) -> bool {
    s.inv != (s.range.0..=s.range.1).contains(&v)
}

// ---------------------------------------------------------------------------------------
// frag

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frag {
    pub id: Option<Spi>,
    /// `--fraglen`: kept and printed; `ip6t_frag` does not test it.
    pub len: Option<(bool, u32)>,
    pub res: bool,
    pub first: bool,
    pub more: bool,
    pub last: bool,
}

impl MatchExt for Frag {
    type Builder = Frag;
    type Compiled = Frag;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["fragid", "fraglen", "fragres", "fragfirst", "fragmore", "fraglast"];

    fn option(f: &mut Frag, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        match opt {
            "fragid" => return esp::option(&mut f.id, "fragid", opt, inv, c),
            "fraglen" => once_u32(&mut f.len, opt, inv, c, "frag")?,
            "fragres" => flag(&mut f.res, opt, inv, c)?,
            "fragfirst" => flag(&mut f.first, opt, inv, c)?,
            "fragmore" if f.last => return c.err("frag: --fragmore conflicts with --fraglast"),
            "fragmore" => flag(&mut f.more, opt, inv, c)?,
            "fraglast" if f.more => return c.err("frag: --fraglast conflicts with --fragmore"),
            "fraglast" => flag(&mut f.last, opt, inv, c)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(f: Frag, p: RuleProto) -> Result<Frag, String> {
        p.only(Family::V6, "match", "frag")?;
        Ok(f)
    }

    fn save(&self, out: &mut String) {
        if let Some(id) = &self.id {
            esp::save(id, "fragid", out);
        }
        save_u32(out, "fraglen", self.len);
        for (on, opt) in [
            (self.res, " --fragres"),
            (self.first, " --fragfirst"),
            (self.more, " --fragmore"),
            (self.last, " --fraglast"),
        ] {
            if on {
                out.push_str(opt);
            }
        }
    }

    fn compile(&self, _: &CompileEnv) -> Frag {
        self.clone()
    }

    fn test(f: &Frag, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let Some(buf) = v6(p) else { return false };
        let Some(at) = find_hdr(buf, FRAGMENT) else {
            return false;
        };
        let Some(h) = buf.get(at..at + 8) else {
            return false;
        };
        let fo = u16::from_be_bytes([h[2], h[3]]);
        let id = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        f.id.as_ref().is_none_or(|s| in_range(s, id))
            && !(f.res && (h[1] != 0 || fo & 0x6 != 0))
            && !(f.first && fo & !7 != 0)
            && !(f.more && fo & 1 == 0)
            && !(f.last && fo & 1 != 0)
    }
}

// ---------------------------------------------------------------------------------------
// hbh and dst

/// `--hbh-opts`/`--dst-opts`: each option's type, and its length (`None`: any).
const MAX_OPTS: usize = 16;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Opts {
    pub len: Option<(bool, u32)>,
    pub opts: Option<Vec<(u8, Option<u8>)>>,
}

fn opts_num(v: &str, what: &str, ext: &str, c: &Cursor) -> PResult<u32> {
    // strtoul with base 0: decimal, 0x hex or 0 octal.
    let n = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else if v.len() > 1 && v.starts_with('0') {
        u32::from_str_radix(&v[1..], 8).ok()
    } else {
        v.parse::<u32>().ok()
    };
    n.map_or_else(|| c.err_value(format!("{ext}: error parsing {what} `{v}'")), Ok)
}

fn parse_opts(v: &str, ext: &str, c: &Cursor) -> PResult<Vec<(u8, Option<u8>)>> {
    let items: Vec<&str> = v.split(',').collect();
    if items.len() > MAX_OPTS {
        return c.err_value("too many addresses specified");
    }
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let (t, l) = match it.split_once(':') {
            Some(_) if i == MAX_OPTS - 1 => return c.err_value("too many ports specified"),
            Some((t, l)) => (t, Some(l)),
            None => (*it, None),
        };
        let typ = (opts_num(t, "opt", ext, c)? & 0xff) as u8;
        let len = match l {
            Some(_) if typ == 0 => return c.err_value("PAD0 hasn't got length"),
            Some(l) => Some((opts_num(l, "length", ext, c)? & 0xff) as u8),
            None => None,
        };
        out.push((typ, len));
    }
    Ok(out)
}

impl Opts {
    fn option(&mut self, ext: &str, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        let rest = opt.strip_prefix(ext).and_then(|r| r.strip_prefix('-'));
        match rest {
            Some("len") => once_u32(&mut self.len, opt, inv, c, ext)?,
            Some("opts") => {
                c.once(&self.opts, &format!("--{opt}"))?;
                c.no_invert(inv, &format!("--{opt}"))?;
                let v = c.value(&format!("--{opt}"))?;
                self.opts = Some(parse_opts(&v, ext, c)?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn save(&self, ext: &str, out: &mut String) {
        save_u32(out, &format!("{ext}-len"), self.len);
        if let Some(o) = &self.opts {
            let _ = write!(out, " --{ext}-opts ");
            let items: Vec<String> = o
                .iter()
                .map(|(t, l)| l.map_or_else(|| t.to_string(), |l| format!("{t}:{l}")))
                .collect();
            out.push_str(&items.join(","));
        }
    }

    fn list(&self, ext: &str, out: &mut String) {
        let _ = write!(out, " {ext}");
        if let Some((inv, n)) = self.len {
            let _ = write!(out, " length:{}{n}", if inv { "!" } else { "" });
        }
        if let Some(o) = &self.opts {
            out.push_str(" opts ");
            let items: Vec<String> = o
                .iter()
                .map(|(t, l)| l.map_or_else(|| t.to_string(), |l| format!("{t}:{l}")))
                .collect();
            out.push_str(&items.join(","));
        }
    }

    /// `hbh_mt6`: the header's length, then the options in order, each of the listed type
    /// and (when given) length.
    fn test(&self, p: &Pkt, which: u8) -> bool {
        let Some(buf) = v6(p) else { return false };
        let Some(at) = find_hdr(buf, which) else {
            return false;
        };
        let Some(h) = buf.get(at..at + 2) else {
            return false;
        };
        let hdrlen = (usize::from(h[1]) + 1) * 8;
        if buf.len() - at < hdrlen {
            return false;
        }
        let ret = self.len.is_none_or(|(inv, n)| (n as usize == hdrlen) != inv);
        let Some(opts) = &self.opts else { return ret };
        let mut ptr = at + 2;
        let mut left = hdrlen - 2;
        let mut done = 0;
        for (i, (typ, len)) in opts.iter().enumerate() {
            if left < 1 {
                break;
            }
            let t = buf[ptr];
            if t != *typ {
                return false;
            }
            let optlen = if t != 0 {
                if left < 2 {
                    break;
                }
                let l = buf[ptr + 1];
                if len.is_some_and(|want| want != l) {
                    return false;
                }
                usize::from(l) + 2
            } else {
                1
            };
            done = i + 1;
            if (ptr + optlen > buf.len() || left < optlen) && i + 1 < opts.len() {
                done = i;
                break;
            }
            ptr += optlen;
            left = left.saturating_sub(optlen);
        }
        ret && done == opts.len()
    }
}

/// `hbh` and `dst`: one extension each (`libip6t_hbh.c`, `libip6t_dst.c`) over the same
/// options header, told apart by its name and header type.
macro_rules! options_match {
    ($ty:ident, $name:literal, $header:expr, [$len:literal, $opts:literal]) => {
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $ty(pub Opts);

        impl MatchExt for $ty {
            type Builder = Opts;
            type Compiled = Opts;
            const SIDE_EFFECT: bool = false;
            const OPTIONS: &'static [&'static str] = &[$len, $opts];

            fn option(o: &mut Opts, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
                o.option($name, opt, inv, c)
            }

            fn finish(o: Opts, p: RuleProto) -> Result<$ty, String> {
                p.only(Family::V6, "match", $name)?;
                Ok($ty(o))
            }

            fn save(&self, out: &mut String) {
                self.0.save($name, out);
            }

            fn list(&self, out: &mut String, _: bool) -> bool {
                self.0.list($name, out);
                true
            }

            fn compile(&self, _: &CompileEnv) -> Opts {
                self.0.clone()
            }

            fn test(o: &Opts, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
                o.test(p, $header)
            }
        }
    };
}

options_match!(Hbh, "hbh", HOP, ["hbh-len", "hbh-opts"]);
options_match!(Dst, "dst", DEST, ["dst-len", "dst-opts"]);

// ---------------------------------------------------------------------------------------
// rt

/// At most this many `--rt-0-addrs` (`IP6T_RT_HOPS`).
const RT_HOPS: usize = 16;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rt {
    pub typ: Option<(bool, u32)>,
    pub segsleft: Option<Spi>,
    pub len: Option<(bool, u32)>,
    pub res: bool,
    pub addrs: Option<Vec<Ipv6Addr>>,
    pub not_strict: bool,
}

impl Rt {
    fn type0(&self) -> bool {
        self.typ == Some((false, 0))
    }
}

impl MatchExt for Rt {
    type Builder = Rt;
    type Compiled = Rt;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &[
        "rt-type",
        "rt-segsleft",
        "rt-len",
        "rt-0-res",
        "rt-0-addrs",
        "rt-0-not-strict",
    ];

    fn option(r: &mut Rt, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        match opt {
            "rt-type" => once_u32(&mut r.typ, opt, inv, c, "rt")?,
            "rt-segsleft" => return esp::option(&mut r.segsleft, "rt-segsleft", opt, inv, c),
            "rt-len" => once_u32(&mut r.len, opt, inv, c, "rt")?,
            "rt-0-res" | "rt-0-addrs" if !r.type0() => {
                return c.err(format!("`--rt-type 0' required before `--{opt}'"))
            }
            "rt-0-res" => flag(&mut r.res, opt, inv, c)?,
            "rt-0-addrs" => {
                c.once(&r.addrs, "--rt-0-addrs")?;
                if inv {
                    return c.err(" '!' not allowed with `--rt-0-addrs'");
                }
                let v = c.value("--rt-0-addrs")?;
                let list: Vec<&str> = v.split(',').collect();
                if list.len() > RT_HOPS {
                    return c.err_value("too many addresses specified");
                }
                let mut addrs = Vec::new();
                for a in list {
                    match a.parse::<Ipv6Addr>() {
                        Ok(a) => addrs.push(a),
                        Err(_) => return c.err_value(format!("bad address: {a}")),
                    }
                }
                r.addrs = Some(addrs);
            }
            "rt-0-not-strict" if r.addrs.is_none() => {
                return c.err("`--rt-0-addr ...' required before `--rt-0-not-strict'")
            }
            "rt-0-not-strict" => flag(&mut r.not_strict, opt, inv, c)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(r: Rt, p: RuleProto) -> Result<Rt, String> {
        p.only(Family::V6, "match", "rt")?;
        Ok(r)
    }

    fn save(&self, out: &mut String) {
        save_u32(out, "rt-type", self.typ);
        if let Some(s) = &self.segsleft {
            esp::save(s, "rt-segsleft", out);
        }
        save_u32(out, "rt-len", self.len);
        if self.res {
            out.push_str(" --rt-0-res");
        }
        if let Some(a) = &self.addrs {
            let list: Vec<String> = a.iter().map(Ipv6Addr::to_string).collect();
            let _ = write!(out, " --rt-0-addrs {}", list.join(","));
        }
        if self.not_strict {
            out.push_str(" --rt-0-not-strict");
        }
    }

    fn list(&self, out: &mut String, _: bool) -> bool {
        out.push_str(" rt");
        if let Some((inv, t)) = self.typ {
            let _ = write!(out, " type:{}{t}", if inv { "!" } else { "" });
        }
        if let Some(s) = self.segsleft.filter(|s| s.inv || s.range != (0, u32::MAX)) {
            let inv = if s.inv { "!" } else { "" };
            let _ = if s.range.0 == s.range.1 {
                write!(out, " segsleft:{inv}{}", s.range.0)
            } else {
                write!(out, " segsleft:{inv}{}:{}", s.range.0, s.range.1)
            };
        }
        if let Some((inv, n)) = self.len {
            let _ = write!(out, " length:{}{n}", if inv { "!" } else { "" });
        }
        if self.res {
            out.push_str(" reserved");
        }
        if let Some(a) = &self.addrs {
            let list: Vec<String> = a.iter().map(Ipv6Addr::to_string).collect();
            let _ = write!(out, " 0-addrs {}", list.join(","));
        }
        if self.not_strict {
            out.push_str(" 0-not-strict");
        }
        true
    }

    fn compile(&self, _: &CompileEnv) -> Rt {
        self.clone()
    }

    /// `rt_mt6`.
    fn test(r: &Rt, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let Some(buf) = v6(p) else { return false };
        let Some(at) = find_hdr(buf, ROUTING) else {
            return false;
        };
        let Some(h) = buf.get(at..at + 4) else {
            return false;
        };
        let hdrlen = (usize::from(h[1]) + 1) * 8;
        if buf.len() - at < hdrlen {
            return false;
        }
        let ret = r.segsleft.as_ref().is_none_or(|s| in_range(s, u32::from(h[3])))
            && r.len.is_none_or(|(inv, n)| (n as usize == hdrlen) != inv)
            && r.typ.is_none_or(|(inv, t)| (t == u32::from(h[2])) != inv);
        let ret = ret && (!r.res || buf.get(at + 4..at + 8).is_some_and(|b| b == [0; 4]));
        let Some(want) = &r.addrs else { return ret };
        let slots = (hdrlen - 8) / 16;
        if want.len() > slots {
            return false;
        }
        let addr = |i: usize| {
            let o = at + 8 + i * 16;
            buf.get(o..o + 16)
                .map(|b| Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 bytes")))
        };
        if r.not_strict {
            // The listed addresses in order, others between them allowed.
            let mut i = 0;
            for k in 0..slots {
                if i < want.len() && addr(k) == Some(want[i]) {
                    i += 1;
                }
                if i == want.len() {
                    break;
                }
            }
            ret && i == want.len()
        } else {
            // Exactly the listed addresses.
            let same = (0..want.len()).take_while(|&k| addr(k) == Some(want[k])).count();
            ret && same == want.len() && same == slots
        }
    }
}

// ---------------------------------------------------------------------------------------
// ipv6header

const MASK_HOPOPTS: u8 = 128;
const MASK_DSTOPTS: u8 = 64;
const MASK_ROUTING: u8 = 32;
const MASK_FRAGMENT: u8 = 16;
const MASK_AH: u8 = 8;
const MASK_ESP: u8 = 4;
const MASK_NONE: u8 = 2;
const MASK_PROTO: u8 = 1;

/// Each flag with the name `ipv6header_save` prints for it (`/etc/protocols`' name, else the
/// extension's own), in the order it prints them.
const HEADER_NAMES: &[(u8, &str)] = &[
    (MASK_HOPOPTS, "hop-by-hop"),
    (MASK_DSTOPTS, "ipv6-opts"),
    (MASK_ROUTING, "ipv6-route"),
    (MASK_FRAGMENT, "ipv6-frag"),
    (MASK_AH, "ah"),
    (MASK_ESP, "esp"),
    (MASK_NONE, "ipv6-nonxt"),
    (MASK_PROTO, "protocol"),
];

/// The names `--header` takes: `/etc/protocols`' (looked up first, as `getprotobyname`),
/// then the extension's `chain_protos`, each with its flag.
fn header_flag(name: &str) -> Option<u8> {
    Some(match name {
        "hopopt" | "HOPOPT" | "hop-by-hop" | "hop" | "0" => MASK_HOPOPTS,
        "ipv6-opts" | "IPv6-Opts" | "dst" | "60" => MASK_DSTOPTS,
        "ipv6-route" | "IPv6-Route" | "route" | "43" => MASK_ROUTING,
        "ipv6-frag" | "IPv6-Frag" | "frag" | "44" => MASK_FRAGMENT,
        "ah" | "AH" | "auth" | "51" => MASK_AH,
        "esp" | "ESP" | "50" => MASK_ESP,
        "ipv6-nonxt" | "IPv6-NoNxt" | "none" | "59" => MASK_NONE,
        "protocol" | "prot" | "255" => MASK_PROTO,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ipv6Header {
    pub flags: u8,
    pub inv: bool,
    pub soft: bool,
}

fn print_header(out: &mut String, flags: u8) {
    let names: Vec<&str> = HEADER_NAMES
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|(_, n)| *n)
        .collect();
    if names.is_empty() {
        out.push_str("NONE");
    } else {
        out.push_str(&names.join(","));
    }
}

impl MatchExt for Ipv6Header {
    /// `None` until `--header`.
    type Builder = (Option<Ipv6Header>, bool);
    type Compiled = Ipv6Header;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["header", "soft"];

    fn option(b: &mut (Option<Ipv6Header>, bool), opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        match opt {
            "header" => {
                c.once(&b.0, "--header")?;
                let v = c.value_inv("--header", &mut inv)?;
                let mut flags = 0;
                for name in v.split(',') {
                    flags |= header_flag(name)
                        .map_or_else(|| c.err_value(format!("unknown header `{name}' specified")), Ok)?;
                }
                b.0 = Some(Ipv6Header {
                    flags,
                    inv,
                    soft: false,
                });
            }
            "soft" => flag(&mut b.1, opt, inv, c)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish((h, soft): (Option<Ipv6Header>, bool), p: RuleProto) -> Result<Ipv6Header, String> {
        p.only(Family::V6, "match", "ipv6header")?;
        let h = h.ok_or("ip6t_ipv6header: no options specified")?;
        Ok(Ipv6Header { soft, ..h })
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, "{} --header ", bang(self.inv));
        print_header(out, self.flags);
        if self.soft {
            out.push_str(" --soft");
        }
    }

    fn list(&self, out: &mut String, numeric: bool) -> bool {
        out.push_str(" ipv6header");
        if self.flags != 0 || self.inv {
            let _ = write!(out, " flags:{}", if self.inv { "!" } else { "" });
            if numeric {
                let _ = write!(out, "0x{:02X}", self.flags);
            } else {
                print_header(out, self.flags);
            }
        }
        if self.soft {
            out.push_str(" soft");
        }
        true
    }

    fn compile(&self, _: &CompileEnv) -> Ipv6Header {
        *self
    }

    /// `ipv6header_mt6`: the set of headers present, compared whole, or (`--soft`) the
    /// listed ones required.
    fn test(m: &Ipv6Header, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let Some(buf) = v6(p) else { return false };
        let mut next = buf[6];
        let mut ptr = 40usize;
        let mut seen = 0u8;
        while is_ext(next) || next == ESP || next == NONE {
            if next == NONE {
                seen |= MASK_NONE;
                break;
            }
            if buf.len() < ptr + 2 {
                return false;
            }
            if next == ESP {
                seen |= MASK_ESP;
                break;
            }
            let len = match next {
                FRAGMENT => 8,
                AUTH => (usize::from(buf[ptr + 1]) + 2) * 4,
                _ => (usize::from(buf[ptr + 1]) + 1) * 8,
            };
            seen |= match next {
                HOP => MASK_HOPOPTS,
                ROUTING => MASK_ROUTING,
                FRAGMENT => MASK_FRAGMENT,
                AUTH => MASK_AH,
                _ => MASK_DSTOPTS,
            };
            next = buf[ptr];
            ptr += len;
            if ptr > buf.len() {
                break;
            }
        }
        if next != NONE && next != ESP {
            seen |= MASK_PROTO;
        }
        let inv = if m.inv { 0xff } else { 0 };
        if m.soft {
            (seen ^ m.flags ^ inv) & m.flags == 0
        } else {
            (seen == m.flags) != m.inv
        }
    }
}

// ---------------------------------------------------------------------------------------
// mh

/// Mobility header type names (`libip6t_mh.c`), with their numbers.
const MH_TYPES: &[(&str, u8)] = &[
    ("binding-refresh-request", 0),
    ("brr", 0),
    ("home-test-init", 1),
    ("hoti", 1),
    ("careof-test-init", 2),
    ("coti", 2),
    ("home-test", 3),
    ("hot", 3),
    ("careof-test", 4),
    ("cot", 4),
    ("binding-update", 5),
    ("bu", 5),
    ("binding-acknowledgement", 6),
    ("ba", 6),
    ("binding-error", 7),
    ("be", 7),
];

fn mh_type(s: &str) -> Option<u8> {
    MH_TYPES
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, t)| *t)
        .or_else(|| parse_uint(s, 0, 255).map(|v| v as u8))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mh {
    pub inv: bool,
    pub types: (u8, u8),
}

impl Default for Mh {
    fn default() -> Self {
        Mh {
            inv: false,
            types: (0, 255),
        }
    }
}

impl MatchExt for Mh {
    type Builder = Option<Mh>;
    type Compiled = Mh;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["mh-type"];

    fn option(m: &mut Option<Mh>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "mh-type" {
            return Ok(false);
        }
        c.once(m, "--mh-type")?;
        let v = c.value_inv("--mh-type", &mut inv)?;
        let bad = || format!("invalid MH type `{v}'");
        let types = match v.split_once(':') {
            Some((a, b)) => {
                let lo = if a.is_empty() { Some(0) } else { mh_type(a) };
                let hi = if b.is_empty() { Some(255) } else { mh_type(b) };
                match (lo, hi) {
                    (Some(lo), Some(hi)) if lo <= hi => (lo, hi),
                    _ => return c.err_value(bad()),
                }
            }
            None => {
                let t = mh_type(&v).map_or_else(|| c.err_value(bad()), Ok)?;
                (t, t)
            }
        };
        *m = Some(Mh { inv, types });
        Ok(true)
    }

    fn finish(m: Option<Mh>, p: RuleProto) -> Result<Mh, String> {
        p.only(Family::V6, "match", "mh")?;
        if p.exact() != Some(MH) {
            return Err("match `mh' is only valid with `-p mobility-header'".into());
        }
        Ok(m.unwrap_or_default())
    }

    fn save(&self, out: &mut String) {
        if self.types == (0, 255) && !self.inv {
            return;
        }
        out.push_str(bang(self.inv));
        let _ = if self.types.0 == self.types.1 {
            write!(out, " --mh-type {}", self.types.0)
        } else {
            write!(out, " --mh-type {}:{}", self.types.0, self.types.1)
        };
    }

    fn compile(&self, _: &CompileEnv) -> Mh {
        *self
    }

    /// `mh_mt6`: a first fragment's mobility header whose payload protocol is "none".
    fn test(m: &Mh, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        if p.h.frag_off != 0 || p.h.proto != MH {
            return false;
        }
        let o = usize::from(p.h.l4_off);
        let Some(h) = p.buf.get(o..o + 3) else {
            return false;
        };
        if h[0] != NONE {
            return false;
        }
        m.inv != (m.types.0..=m.types.1).contains(&h[2])
    }
}

// ---------------------------------------------------------------------------------------
// srh

/// One `--srh-*` comparison on a header byte: `=`, `>` or `<`, each negatable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cmp3 {
    /// Which of eq, gt, lt are given, and which negated (bit 0 eq, 1 gt, 2 lt).
    pub given: u8,
    pub inv: u8,
    /// The value, shared by the three as the kernel's struct shares it (the last given).
    pub v: u8,
}

impl Cmp3 {
    fn holds(&self, x: u8) -> bool {
        [(1u8, x == self.v), (2, x > self.v), (4, x < self.v)]
            .iter()
            .all(|&(bit, hit)| self.given & bit == 0 || hit != (self.inv & bit != 0))
    }
}

/// A SID prefix: the address as given (printed so) and its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sid {
    pub inv: bool,
    pub addr: Ipv6Addr,
    pub len: u8,
}

impl Sid {
    /// `ipv6_masked_addr_cmp` == 0, negated or not.
    fn holds(&self, a: Ipv6Addr) -> bool {
        let mask = crate::ruleset::value::prefix_mask6(self.len);
        ((u128::from(a) ^ u128::from(self.addr)) & mask == 0) != self.inv
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Srh {
    pub next_hdr: Option<(bool, u8)>,
    pub hdr_len: Cmp3,
    pub segs_left: Cmp3,
    pub last_entry: Cmp3,
    pub tag: Option<(bool, u16)>,
    pub psid: Option<Sid>,
    pub nsid: Option<Sid>,
    pub lsid: Option<Sid>,
}

const CMP_SUFFIX: [(&str, u8); 3] = [("eq", 1), ("gt", 2), ("lt", 4)];

impl MatchExt for Srh {
    type Builder = Srh;
    type Compiled = Srh;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &[
        "srh-next-hdr",
        "srh-hdr-len-eq",
        "srh-hdr-len-gt",
        "srh-hdr-len-lt",
        "srh-segs-left-eq",
        "srh-segs-left-gt",
        "srh-segs-left-lt",
        "srh-last-entry-eq",
        "srh-last-entry-gt",
        "srh-last-entry-lt",
        "srh-tag",
        "srh-psid",
        "srh-nsid",
        "srh-lsid",
    ];

    fn option(m: &mut Srh, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if !Self::OPTIONS.contains(&opt) {
            return Ok(false);
        }
        let name = format!("--{opt}");
        let v = c.value_inv(&name, &mut inv)?;
        let num = |max: u64, c: &Cursor| {
            parse_uint(&v, 0, max).map_or_else(|| c.err_value(format!("srh: bad {name} `{v}'")), Ok)
        };
        let sid = |c: &Cursor| {
            let (a, len) = v.split_once('/').map_or((v.as_str(), None), |(a, l)| (a, Some(l)));
            let len = match len {
                None => 128,
                Some(l) => match parse_uint(l, 0, 128) {
                    Some(n) => n as u8,
                    None => return c.err_value(format!("invalid mask `{l}' specified")),
                },
            };
            match a.parse::<Ipv6Addr>() {
                Ok(addr) => Ok(Sid { inv, addr, len }),
                Err(_) => c.err_value(format!("host/network `{a}' not found")),
            }
        };
        match opt {
            "srh-next-hdr" => m.next_hdr = Some((inv, num(255, c)? as u8)),
            "srh-tag" => m.tag = Some((inv, num(65535, c)? as u16)),
            "srh-psid" => m.psid = Some(sid(c)?),
            "srh-nsid" => m.nsid = Some(sid(c)?),
            "srh-lsid" => m.lsid = Some(sid(c)?),
            _ => {
                let (field, suffix) = opt.rsplit_once('-').expect("a comparison option");
                let cmp = match field {
                    "srh-hdr-len" => &mut m.hdr_len,
                    "srh-segs-left" => &mut m.segs_left,
                    _ => &mut m.last_entry,
                };
                let bit = CMP_SUFFIX.iter().find(|(s, _)| *s == suffix).map_or(0, |(_, b)| *b);
                cmp.v = num(255, c)? as u8;
                cmp.given |= bit;
                if inv {
                    cmp.inv |= bit;
                }
            }
        }
        Ok(true)
    }

    fn finish(m: Srh, p: RuleProto) -> Result<Srh, String> {
        p.only(Family::V6, "match", "srh")?;
        Ok(m)
    }

    /// `srh1_save`.
    fn save(&self, out: &mut String) {
        if let Some((inv, v)) = self.next_hdr {
            let _ = write!(out, "{} --srh-next-hdr {v}", bang(inv));
        }
        for (name, cmp) in [
            ("hdr-len", &self.hdr_len),
            ("segs-left", &self.segs_left),
            ("last-entry", &self.last_entry),
        ] {
            for (suffix, bit) in CMP_SUFFIX {
                if cmp.given & bit != 0 {
                    let _ = write!(out, "{} --srh-{name}-{suffix} {}", bang(cmp.inv & bit != 0), cmp.v);
                }
            }
        }
        if let Some((inv, v)) = self.tag {
            let _ = write!(out, "{} --srh-tag {v}", bang(inv));
        }
        for (name, sid) in [("psid", self.psid), ("nsid", self.nsid), ("lsid", self.lsid)] {
            if let Some(s) = sid {
                let _ = write!(out, "{} --srh-{name} {}/{}", bang(s.inv), s.addr, s.len);
            }
        }
    }

    /// `srh1_print`.
    fn list(&self, out: &mut String, _: bool) -> bool {
        let inv = |i: bool| if i { "!" } else { "" };
        out.push_str(" srh");
        if let Some((i, v)) = self.next_hdr {
            let _ = write!(out, " next-hdr:{}{v}", inv(i));
        }
        for (name, cmp) in [
            ("hdr-len", &self.hdr_len),
            ("segs-left", &self.segs_left),
            ("last-entry", &self.last_entry),
        ] {
            for (suffix, bit) in CMP_SUFFIX {
                if cmp.given & bit != 0 {
                    let _ = write!(out, " {name}-{suffix}:{}{}", inv(cmp.inv & bit != 0), cmp.v);
                }
            }
        }
        if let Some((i, v)) = self.tag {
            let _ = write!(out, " tag:{}{v}", inv(i));
        }
        for (name, sid) in [("psid", self.psid), ("nsid", self.nsid), ("lsid", self.lsid)] {
            if let Some(s) = sid {
                let _ = write!(out, " {name} {} {}/{}", inv(s.inv), s.addr, s.len);
            }
        }
        true
    }

    fn compile(&self, _: &CompileEnv) -> Srh {
        self.clone()
    }

    /// `srh1_mt6`: a segment routing header (routing type 4) whose segments left does not
    /// exceed its last entry, then each field given.
    fn test(m: &Srh, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let Some(buf) = v6(p) else { return false };
        let Some(at) = find_hdr(buf, ROUTING) else {
            return false;
        };
        let Some(h) = buf.get(at..at + 8) else {
            return false;
        };
        let hdrlen = (usize::from(h[1]) + 1) * 8;
        let (typ, segs_left, last) = (h[2], h[3], h[4]);
        if buf.len() - at < hdrlen || typ != 4 || segs_left > last {
            return false;
        }
        // The kernel compares the tag as it lies in the packet with the host-order value
        // iptables stored (`srh->tag == srhinfo->tag`): on the little-endian machines Linux
        // runs on, the tag's bytes read swapped. rtrouter matches what such a kernel matches.
        let tag = u16::from_le_bytes([h[6], h[7]]);
        let sid_at = |i: usize| {
            let o = at + 8 + i * 16;
            buf.get(o..o + 16)
                .map(|b| Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 bytes")))
        };
        m.next_hdr.is_none_or(|(inv, v)| (h[0] == v) != inv)
            && m.hdr_len.holds(h[1])
            && m.segs_left.holds(segs_left)
            && m.last_entry.holds(last)
            && m.tag.is_none_or(|(inv, v)| (tag == v) != inv)
            && m.psid
                .is_none_or(|s| segs_left != last && sid_at(usize::from(segs_left) + 1).is_some_and(|a| s.holds(a)))
            && m.nsid
                .is_none_or(|s| segs_left != 0 && sid_at(usize::from(segs_left) - 1).is_some_and(|a| s.holds(a)))
            && m.lsid.is_none_or(|s| sid_at(0).is_some_and(|a| s.holds(a)))
    }
}

// ---------------------------------------------------------------------------------------
// eui64

/// `-m eui64`: the source address's interface identifier is the EUI-64 of the frame's
/// Ethernet source. TUN devices carry no Ethernet header, so, as `ip6t_eui64` on such a
/// device, it never matches; it loads, saves and is refused in OUTPUT and POSTROUTING as
/// ip6tables does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Eui64;

impl MatchExt for Eui64 {
    type Builder = ();
    type Compiled = ();
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &[];

    fn option(_: &mut (), _: &str, _: bool, _: &mut Cursor) -> PResult<bool> {
        Ok(false)
    }

    fn finish(_: (), p: RuleProto) -> Result<Eui64, String> {
        p.only(Family::V6, "match", "eui64")?;
        Ok(Eui64)
    }

    fn save(&self, _: &mut String) {}

    fn list(&self, out: &mut String, _: bool) -> bool {
        out.push_str(" eui64");
        true
    }

    fn hooks(&self) -> HookMask {
        hooks::PREROUTING | hooks::INPUT | hooks::FORWARD
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("TUN devices carry no Ethernet header: -m eui64 never matches (as ip6t_eui64 without one)")
    }

    fn compile(&self, _: &CompileEnv) {}

    fn test(_: &(), _: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv6 header followed by `chain` (each header: its type and bytes), then `last`.
    fn packet(chain: &[(u8, Vec<u8>)], last: u8) -> Vec<u8> {
        let mut b = vec![0u8; 40];
        b[0] = 0x60;
        b[6] = chain.first().map_or(last, |c| c.0);
        for (i, (_, bytes)) in chain.iter().enumerate() {
            let mut h = bytes.clone();
            h[0] = chain.get(i + 1).map_or(last, |c| c.0);
            b.extend_from_slice(&h);
        }
        let len = (b.len() - 40) as u16;
        b[4..6].copy_from_slice(&len.to_be_bytes());
        b
    }

    #[test]
    fn find_hdr_walks_the_chain_as_the_kernel() {
        let hbh = vec![0u8; 8];
        let mut frag = vec![0u8; 8];
        let dst = vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let p = packet(&[(HOP, hbh.clone()), (DEST, dst.clone()), (FRAGMENT, frag.clone())], 6);
        assert_eq!(find_hdr(&p, HOP), Some(40));
        assert_eq!(find_hdr(&p, DEST), Some(48));
        assert_eq!(find_hdr(&p, FRAGMENT), Some(64));
        assert_eq!(find_hdr(&p, 6), Some(72));
        assert_eq!(find_hdr(&p, ROUTING), None);
        // Behind a later fragment nothing is found, the fragment header itself is.
        frag[3] = 8;
        let p = packet(&[(FRAGMENT, frag), (DEST, dst)], 6);
        assert_eq!(find_hdr(&p, FRAGMENT), Some(40));
        assert_eq!(find_hdr(&p, DEST), None);
        // A header running past the packet is not found.
        let mut p = packet(&[(HOP, hbh)], 6);
        p[41] = 200;
        assert_eq!(find_hdr(&p, 6), None);
    }
}
