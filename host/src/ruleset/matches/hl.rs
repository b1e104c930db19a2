//! `-m hl` (`libip6t_hl.c`, `ip6t_hl.c`): the IPv6 hop limit, ip6tables' counterpart of `ttl`.

use super::ttl::Ttl;
use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::value::parse_uint;
use crate::ruleset::Family;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hl(pub Ttl);

impl MatchExt for Hl {
    type Builder = Option<Ttl>;
    type Compiled = Ttl;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["hl-eq", "hl-lt", "hl-gt"];

    fn option(t: &mut Option<Ttl>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if !Self::OPTIONS.contains(&opt) {
            return Ok(false);
        }
        if t.is_some() {
            return c.err("hl: can't specify HL option twice");
        }
        let v = c.value_inv(&format!("--{opt}"), &mut inv)?;
        let n = parse_uint(&v, 0, 255).map_or_else(|| c.err_value(format!("hl: invalid hop limit `{v}'")), Ok)? as u8;
        *t = Some(match (opt, inv) {
            ("hl-eq", false) => Ttl::Eq(n),
            ("hl-eq", true) => Ttl::Ne(n),
            (_, true) => return c.err("hl: unexpected `!' (only --hl-eq can be negated)"),
            ("hl-lt", _) => Ttl::Lt(n),
            _ => Ttl::Gt(n),
        });
        Ok(true)
    }

    fn finish(t: Option<Ttl>, p: RuleProto) -> Result<Hl, String> {
        p.only(Family::V6, "match", "hl")?;
        Ok(Hl(t.ok_or("hl: one of --hl-eq, --hl-lt or --hl-gt is required")?))
    }

    fn save(&self, out: &mut String) {
        let _ = match self.0 {
            Ttl::Eq(n) => write!(out, " --hl-eq {n}"),
            Ttl::Ne(n) => write!(out, " ! --hl-eq {n}"),
            Ttl::Lt(n) => write!(out, " --hl-lt {n}"),
            Ttl::Gt(n) => write!(out, " --hl-gt {n}"),
        };
    }

    fn compile(&self, _: &CompileEnv) -> Ttl {
        self.0
    }

    fn test(t: &Ttl, p: &Pkt, cx: &mut Cx, e: &Engine) -> bool {
        // The hop limit is parsed into the same field as IPv4's TTL.
        super::ttl::TtlMatch::test(t, p, cx, e)
    }
}
