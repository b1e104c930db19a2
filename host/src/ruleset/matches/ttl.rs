//! `-m ttl` (`libipt_ttl.c`, `ipt_ttl.c`): the IPv4 time to live.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    Eq(u8),
    Ne(u8),
    Lt(u8),
    Gt(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlMatch(pub Ttl);

impl MatchExt for TtlMatch {
    type Builder = Option<Ttl>;
    type Compiled = Ttl;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["ttl-eq", "ttl-lt", "ttl-gt"];

    fn option(t: &mut Option<Ttl>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if !matches!(opt, "ttl-eq" | "ttl-lt" | "ttl-gt") {
            return Ok(false);
        }
        if t.is_some() {
            return c.err("ttl: can't specify TTL option twice");
        }
        let v = c.value_inv(&format!("--{opt}"), &mut inv)?;
        let n = parse_uint(&v, 0, 255).map_or_else(|| c.err_value(format!("ttl: invalid TTL `{v}'")), Ok)? as u8;
        *t = Some(match (opt, inv) {
            ("ttl-eq", false) => Ttl::Eq(n),
            ("ttl-eq", true) => Ttl::Ne(n),
            (_, true) => return c.err("ttl: unexpected `!' (only --ttl-eq can be negated)"),
            ("ttl-lt", _) => Ttl::Lt(n),
            _ => Ttl::Gt(n),
        });
        Ok(true)
    }

    fn finish(t: Option<Ttl>, p: RuleProto) -> Result<TtlMatch, String> {
        p.only(crate::ruleset::Family::V4, "match", "ttl")?;
        Ok(TtlMatch(
            t.ok_or("ttl: one of --ttl-eq, --ttl-lt or --ttl-gt is required")?,
        ))
    }

    fn save(&self, out: &mut String) {
        let _ = match self.0 {
            Ttl::Eq(n) => write!(out, " --ttl-eq {n}"),
            Ttl::Ne(n) => write!(out, " ! --ttl-eq {n}"),
            Ttl::Lt(n) => write!(out, " --ttl-lt {n}"),
            Ttl::Gt(n) => write!(out, " --ttl-gt {n}"),
        };
    }

    fn compile(&self, _: &CompileEnv) -> Ttl {
        self.0
    }

    fn test(t: &Ttl, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let ttl = p.h.ttl;
        match *t {
            Ttl::Eq(n) => ttl == n,
            Ttl::Ne(n) => ttl != n,
            Ttl::Lt(n) => ttl < n,
            Ttl::Gt(n) => ttl > n,
        }
    }
}
