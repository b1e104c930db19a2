//! `-m iprange` (`libxt_iprange.c`, `xt_iprange.c`): address ranges.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, Neg, PResult};
use crate::ruleset::value::parse_ipv4;
use crate::ruleset::Family;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpRange {
    /// Both ends of one family: IPv4 in iptables' rules, IPv6 in ip6tables'.
    pub src: Option<Neg<(IpAddr, IpAddr)>>,
    pub dst: Option<Neg<(IpAddr, IpAddr)>>,
}

impl MatchExt for IpRange {
    type Builder = IpRange;
    type Compiled = IpRange;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["src-range", "dst-range"];

    fn option(r: &mut IpRange, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        let slot = match opt {
            "src-range" => &mut r.src,
            "dst-range" => &mut r.dst,
            _ => return Ok(false),
        };
        let name = format!("--{opt}");
        c.once(slot, &name)?;
        let v = c.value_inv(&name, &mut inv)?;
        let one = |s: &str| match c.family {
            Family::V4 => parse_ipv4(s).map(IpAddr::V4),
            Family::V6 => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        };
        let range = v
            .split_once('-')
            .and_then(|(a, b)| Some((one(a)?, one(b)?)))
            .map_or_else(
                || c.err_value(format!("iprange: bad range `{v}' (expected ADDR-ADDR)")),
                Ok,
            )?;
        *slot = Some(Neg::new(inv, range));
        Ok(true)
    }

    fn finish(r: IpRange, _: RuleProto) -> Result<IpRange, String> {
        if r.src.is_none() && r.dst.is_none() {
            return Err("iprange: --src-range or --dst-range is required".into());
        }
        Ok(r)
    }

    fn save(&self, out: &mut String) {
        for (opt, x) in [("src-range", &self.src), ("dst-range", &self.dst)] {
            if let Some(x) = x {
                let _ = write!(out, "{} --{opt} {}-{}", x.bang(), x.v.0, x.v.1);
            }
        }
    }

    fn compile(&self, _: &CompileEnv) -> IpRange {
        self.clone()
    }

    fn test(r: &IpRange, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        // An address of the other family is never inside (nor outside: `!` does not match it
        // either, as the kernel's family-specific match never sees it).
        let test = |x: &Option<Neg<(IpAddr, IpAddr)>>, a: IpAddr| {
            x.is_none_or(|x| x.v.0.is_ipv4() == a.is_ipv4() && x.holds(x.v.0 <= a && a <= x.v.1))
        };
        test(&r.src, p.h.src) && test(&r.dst, p.h.dst)
    }
}
