//! What the NAT targets share (`nf_nat_range2`, `nf_nat_core.c`): the range they map into,
//! its parsing and printing, and recording the translation for the router to apply.

use crate::eval::{Cx, NatRequest, Pkt, SplitMix, Verdict};
use crate::packet::Headers;
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::{has_ports, parse_ipv4, parse_port, parse_uint};
use crate::ruleset::Family;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};

/// A NAT range as `nf_nat_range2`: addresses, ports, a port base (offset mode) and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NatRange {
    /// Both ends of one family (IPv4 in iptables' rules, IPv6 in ip6tables').
    pub addrs: Option<(IpAddr, IpAddr)>,
    pub ports: Option<(u16, u16)>,
    pub base: Option<u16>,
    pub random: bool,
    pub random_fully: bool,
    pub persistent: bool,
}

impl NatRange {
    /// A port range needs a protocol with ports (the kernel's `nf_nat_*_checkentry`).
    pub(super) fn check(&self, target: &str, p: RuleProto) -> Result<(), String> {
        if self.ports.is_some() && !p.exact().is_some_and(has_ports) {
            return Err(format!(
                "{target}: a port specification needs `-p tcp', `-p udp', `-p sctp', `-p dccp' or `-p udplite'"
            ));
        }
        Ok(())
    }

    /// ` --to-destination|--to-source [IP[-IP]][:PORT[-PORT][/BASE]]` and the flags; IPv6
    /// addresses in brackets when ports follow (`[IP6[-IP6]]:PORT`), as libip6t_DNAT prints.
    pub(super) fn save_to(&self, opt: &str, out: &mut String) {
        let _ = write!(out, " --{opt} ");
        self.range(out);
        self.flags("--", out);
    }

    /// ` to:RANGE` and the flags in words, as SNAT's and DNAT's `print` list them.
    pub(super) fn list_to(&self, out: &mut String) {
        out.push_str(" to:");
        self.range(out);
        self.flags("", out);
    }

    /// ` --to-ports LO[-HI]` and the flags (MASQUERADE, REDIRECT).
    pub(super) fn save_ports(&self, out: &mut String) {
        self.ports_and_flags(" --to-ports ", "--", out);
    }

    /// `PREFIX LO[-HI]` when ports are given, then the flags in words (MASQUERADE's and
    /// REDIRECT's `print`).
    pub(super) fn list_ports(&self, prefix: &str, out: &mut String) {
        self.ports_and_flags(prefix, "", out);
    }

    fn ports_and_flags(&self, prefix: &str, dashes: &str, out: &mut String) {
        if let Some((lo, hi)) = self.ports {
            let _ = write!(out, "{prefix}{lo}");
            if lo != hi {
                let _ = write!(out, "-{hi}");
            }
        }
        self.flags(dashes, out);
    }

    /// The flags, as options (`dashes` = `--`) or as `print`'s words.
    fn flags(&self, dashes: &str, out: &mut String) {
        for (on, word) in [
            (self.random, "random"),
            (self.random_fully, "random-fully"),
            (self.persistent, "persistent"),
        ] {
            if on {
                let _ = write!(out, " {dashes}{word}");
            }
        }
    }

    /// The address and port range as iptables writes it (`[v6]:port` with ports).
    fn range(&self, out: &mut String) {
        if let Some((lo, hi)) = self.addrs {
            let brackets = lo.is_ipv6() && self.ports.is_some();
            if brackets {
                out.push('[');
            }
            let _ = write!(out, "{lo}");
            if lo != hi {
                let _ = write!(out, "-{hi}");
            }
            if brackets {
                out.push(']');
            }
        }
        if let Some((lo, hi)) = self.ports {
            let _ = write!(out, ":{lo}");
            if lo != hi {
                let _ = write!(out, "-{hi}");
            }
            if let Some(b) = self.base {
                let _ = write!(out, "/{b}");
            }
        }
    }
}

/// A port or `lo-hi` range of ports; a single service name is allowed, range ends must be
/// numbers (as in libxt_REDIRECT: `10-ssh` is refused).
pub(super) fn parse_port_range(v: &str) -> Result<(u16, u16), &'static str> {
    if let Some(p) = parse_port(v, "tcp") {
        return Ok((p, p));
    }
    let (a, b) = v.split_once('-').ok_or("not a port or range")?;
    let num = |s: &str| parse_uint(s, 0, 65535).map(|v| v as u16);
    let (lo, hi) = (num(a).ok_or("bad port")?, num(b).ok_or("bad port")?);
    if lo > hi {
        return Err("range is backwards");
    }
    Ok((lo, hi))
}

/// `[IP[-IP]][:PORT[-PORT][/BASE]]` (iptables), or `IP6[-IP6]` and `[IP6[-IP6]]:PORT…`
/// (ip6tables, `parse_to` in libip6t_DNAT.c).
pub(super) fn parse_nat_range(v: &str, family: Family) -> Result<NatRange, &'static str> {
    let mut r = NatRange::default();
    let (addrs, ports) = match family {
        Family::V4 => match v.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (v, None),
        },
        Family::V6 => match v.strip_prefix('[') {
            Some(rest) => {
                let (a, after) = rest.split_once(']').ok_or("`[' without `]'")?;
                match after {
                    "" => (a, None),
                    _ => (a, Some(after.strip_prefix(':').ok_or("`:PORT' expected after `]'")?)),
                }
            }
            None => (v, None),
        },
    };
    if !addrs.is_empty() {
        let one = |s: &str| -> Result<IpAddr, &'static str> {
            match family {
                Family::V4 => parse_ipv4(s).map(IpAddr::V4),
                Family::V6 => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            }
            .ok_or("bad address")
        };
        let (lo, hi) = match addrs.split_once('-') {
            Some((a, b)) => (one(a)?, one(b)?),
            None => {
                let a = one(addrs)?;
                (a, a)
            }
        };
        if lo > hi {
            return Err("address range is backwards");
        }
        r.addrs = Some((lo, hi));
    }
    if let Some(p) = ports {
        let (range, base) = match p.split_once('/') {
            Some((range, base)) => (range, Some(base)),
            None => (p, None),
        };
        r.ports = Some(parse_port_range(range)?);
        if let Some(b) = base {
            let b = parse_port(b, "tcp").ok_or("bad base port")?;
            if b == 0 {
                return Err("base port must be 1-65535");
            }
            r.base = Some(b);
        }
    }
    if r.addrs.is_none() && r.ports.is_none() {
        return Err("needs an address or a port");
    }
    Ok(r)
}

/// Records the translation a NAT target asks for. `fixed` is the address MASQUERADE or
/// REDIRECT found (`Some(None)` when the interface has no IPv4 address).
pub(super) fn nat(
    p: &mut Pkt,
    cx: &mut Cx,
    r: &NatRange,
    dst: bool,
    masquerade: bool,
    fixed: Option<Option<IpAddr>>,
) -> Verdict {
    let addr = match fixed {
        Some(a) => a,
        None => r.addrs.map(|(lo, hi)| pick_addr(lo, hi, &p.h, r.persistent)),
    };
    let ports = r.ports.map(|(lo, hi)| match r.base {
        // Offset mode: shift the original port into the range.
        Some(base) => {
            let orig = p.h.ports().map_or(0, |(s, d)| if dst { d } else { s });
            let size = u32::from(hi - lo) + 1;
            let off = (u32::from(orig.wrapping_sub(base))) % size;
            let v = lo + off as u16;
            (v, v)
        }
        None => (lo, hi),
    });
    let req = NatRequest {
        dst,
        addr,
        ports,
        masquerade,
        random: r.random,
        random_fully: r.random_fully,
        persistent: r.persistent,
        no_addr: matches!(fixed, Some(None)),
    };
    cx.obs.event(&|| {
        let a = match req.addr {
            None => "(unchanged)".to_string(),
            // With ports, an IPv6 address is bracketed as in the rule.
            Some(std::net::IpAddr::V6(a)) if req.ports.is_some() => format!("[{a}]"),
            Some(a) => a.to_string(),
        };
        let ports = req.ports.map_or(String::new(), |(lo, hi)| {
            if lo == hi {
                format!(":{lo}")
            } else {
                format!(":{lo}-{hi}")
            }
        });
        format!(
            "{} to {a}{ports}",
            if dst {
                "DNAT"
            } else if masquerade {
                "MASQUERADE"
            } else {
                "SNAT"
            }
        )
    });
    p.nat = Some(req);
    Verdict::Accept
}

/// Chooses an address from a range the way `find_best_ips_proto` does: a hash of the source
/// (and of the destination unless `--persistent`), so one client keeps one address.
fn pick_addr(lo: IpAddr, hi: IpAddr, h: &Headers, persistent: bool) -> IpAddr {
    let wide = |a: IpAddr| match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let (lo_n, hi_n) = (wide(lo), wide(hi));
    if lo_n >= hi_n {
        return lo;
    }
    let fold = |a: IpAddr| {
        let w = wide(a);
        (w as u64) ^ ((w >> 64) as u64)
    };
    let mut x = fold(h.src);
    if !persistent {
        x ^= fold(h.dst).rotate_left(32);
    }
    let mut s = SplitMix(x);
    let dist = hi_n - lo_n + 1;
    let pick = if dist <= 1 << 32 {
        lo_n + ((u128::from(s.next_u64() >> 32) * dist) >> 32)
    } else {
        lo_n + ((u128::from(s.next_u64()) << 64 | u128::from(s.next_u64())) % dist)
    };
    match lo {
        IpAddr::V4(_) => IpAddr::V4((pick as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(pick.into()),
    }
}

/// DNAT's and SNAT's options: `--to-destination`/`--to-source` once, and the flags. The
/// builder is the range and whether the address option was given.
pub(super) fn to_option(
    b: &mut (NatRange, bool),
    opt: &str,
    c: &mut crate::ruleset::ext::Cursor,
) -> crate::ruleset::ext::PResult<()> {
    let name = format!("--{opt}");
    let r = &mut b.0;
    match opt {
        "to-destination" | "to-source" => {
            if b.1 {
                return c.err(format!("multiple {name} options are not supported"));
            }
            let v = c.value(&name)?;
            *r = NatRange {
                random: r.random,
                random_fully: r.random_fully,
                persistent: r.persistent,
                ..parse_nat_range(&v, c.family).map_or_else(|e| c.err_value(format!("bad {name} `{v}': {e}")), Ok)?
            };
            b.1 = true;
        }
        "random" => r.random = true,
        "random-fully" => r.random_fully = true,
        _ => r.persistent = true,
    }
    Ok(())
}

/// MASQUERADE's and REDIRECT's options: `--to-ports` and the flags.
pub(super) fn ports_option(
    r: &mut NatRange,
    opt: &str,
    c: &mut crate::ruleset::ext::Cursor,
) -> crate::ruleset::ext::PResult<()> {
    match opt {
        "to-ports" => {
            let v = c.value("--to-ports")?;
            let (lo, hi) =
                parse_port_range(&v).map_or_else(|e| c.err_value(format!("bad --to-ports `{v}': {e}")), Ok)?;
            r.ports = Some((lo, hi));
        }
        "random" => r.random = true,
        _ => r.random_fully = true,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_ranges() {
        let v4 = |s: &str| parse_nat_range(s, Family::V4);
        let r = v4("1.1.1.1-1.1.1.10:1025-65535").unwrap();
        assert_eq!(r.addrs, Some(("1.1.1.1".parse().unwrap(), "1.1.1.10".parse().unwrap())));
        assert_eq!(r.ports, Some((1025, 65535)));
        assert_eq!(v4("1.1.1.1:10-20/ftp").unwrap().base, Some(21));
        assert!(v4("1.1.1.1:10-20/0").is_err());
        assert!(v4("1.1.1.1:echo-ssh").is_err());
        assert_eq!(v4(":8080").unwrap().ports, Some((8080, 8080)));
        let v6 = |s: &str| parse_nat_range(s, Family::V6);
        let r = v6("[dead::beef-dead::fee7]:1000-2000/1000").unwrap();
        assert_eq!(
            r.addrs.map(|(a, b)| (a.to_string(), b.to_string())),
            Some(("dead::beef".into(), "dead::fee7".into()))
        );
        assert_eq!((r.ports, r.base), (Some((1000, 2000)), Some(1000)));
        assert_eq!(v6("2001:db8::1").unwrap().ports, None);
        assert!(v6("[2001:db8::1").is_err());
        assert!(v6("1.2.3.4").is_err());
        assert!(v6("dead::fee7-dead::beef").is_err());
    }
}
