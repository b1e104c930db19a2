//! `-m iprange` (`libxt_iprange.c`, `xt_iprange.c`): address ranges.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, Neg, PResult};
use crate::ruleset::value::parse_ipv4;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpRange {
    pub src: Option<Neg<(Ipv4Addr, Ipv4Addr)>>,
    pub dst: Option<Neg<(Ipv4Addr, Ipv4Addr)>>,
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
        let range = v
            .split_once('-')
            .and_then(|(a, b)| Some((parse_ipv4(a)?, parse_ipv4(b)?)))
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
        let test = |x: &Option<Neg<(Ipv4Addr, Ipv4Addr)>>, a: IpAddr| {
            x.is_none_or(|x| {
                let IpAddr::V4(v) = a else { return false };
                x.holds(u32::from(x.v.0) <= u32::from(v) && u32::from(v) <= u32::from(x.v.1))
            })
        };
        test(&r.src, p.h.src) && test(&r.dst, p.h.dst)
    }
}
