//! `-m tos` (`libxt_tos.c`, `xt_dscp.c`'s `tos_mt`): the IPv4 TOS byte under a mask. The
//! symbolic names of RFC 1349 mean that value under the mask `0x3f`; a bare number means
//! that value under `0xff`.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, Neg, PResult};
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tos(pub Neg<(u8, u8)>);

/// `NAME`, `VALUE` or `VALUE/MASK`, as `--tos` and the `TOS` target take them
/// (`tos_parse_symbolic`): names under the mask 0x3f, bare numbers under `full`.
pub(crate) fn parse_tos(v: &str, full: u8) -> Option<(u8, u8)> {
    let named = match v {
        "Minimize-Delay" => Some(0x10),
        "Maximize-Throughput" => Some(0x08),
        "Maximize-Reliability" => Some(0x04),
        "Minimize-Cost" => Some(0x02),
        "Normal-Service" => Some(0x00),
        _ => None,
    };
    if let Some(n) = named {
        return Some((n, 0x3f));
    }
    let (val, mask) = match v.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (v, None),
    };
    let val = parse_uint(val, 0, 0xff)? as u8;
    let mask = match mask {
        Some(m) => parse_uint(m, 0, 0xff)? as u8,
        None => full,
    };
    Some((val, mask))
}

impl MatchExt for Tos {
    type Builder = Option<Neg<(u8, u8)>>;
    type Compiled = Neg<(u8, u8)>;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["tos"];

    fn option(t: &mut Option<Neg<(u8, u8)>>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "tos" {
            return Ok(false);
        }
        c.once(t, "--tos")?;
        let v = c.value_inv("--tos", &mut inv)?;
        let Some(tm) = parse_tos(&v, 0xff) else {
            return c.err_value(format!("tos: bad TOS value `{v}'"));
        };
        *t = Some(Neg::new(inv, tm));
        Ok(true)
    }

    fn finish(t: Option<Neg<(u8, u8)>>, _: RuleProto) -> Result<Tos, String> {
        Ok(Tos(t.ok_or("tos: --tos is required")?))
    }

    fn save(&self, out: &mut String) {
        let (v, m) = self.0.v;
        let _ = write!(out, "{} --tos {v:#04x}/{m:#04x}", self.0.bang());
    }

    fn list(&self, out: &mut String, _: bool) -> bool {
        let (v, m) = self.0.v;
        let _ = write!(out, " tos match {}{v:#04x}/{m:#04x}", if self.0.inv { "!" } else { "" });
        true
    }

    fn compile(&self, _: &CompileEnv) -> Neg<(u8, u8)> {
        self.0
    }

    fn test(t: &Neg<(u8, u8)>, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let (v, m) = t.v;
        t.holds(p.h.tos & m == v)
    }
}
