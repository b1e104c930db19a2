//! `-m dscp` (`libxt_dscp.c`, `xt_dscp.c`): the DiffServ code point, the IPv4 TOS byte's upper
//! six bits. `--dscp-class` names a class and saves as its `--dscp` value.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, Neg, PResult};
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dscp(pub Neg<u8>);

/// The DiffServ classes `--dscp-class` takes (`libxt_dscp_helper.c`).
pub(crate) fn class_value(name: &str) -> Option<u8> {
    let n = name.to_ascii_uppercase();
    Some(match n.as_str() {
        "CS0" | "BE" => 0x00,
        "CS1" => 0x08,
        "CS2" => 0x10,
        "CS3" => 0x18,
        "CS4" => 0x20,
        "CS5" => 0x28,
        "CS6" => 0x30,
        "CS7" => 0x38,
        "AF11" => 0x0a,
        "AF12" => 0x0c,
        "AF13" => 0x0e,
        "AF21" => 0x12,
        "AF22" => 0x14,
        "AF23" => 0x16,
        "AF31" => 0x1a,
        "AF32" => 0x1c,
        "AF33" => 0x1e,
        "AF41" => 0x22,
        "AF42" => 0x24,
        "AF43" => 0x26,
        "EF" => 0x2e,
        _ => return None,
    })
}

/// `Some(Ok(value))` for `--dscp`/`--dscp-class`, the error for a bad value.
pub(crate) fn parse(opt: &str, v: &str) -> Result<u8, String> {
    match opt {
        "dscp" => parse_uint(v, 0, 0x3f)
            .map(|n| n as u8)
            .ok_or_else(|| format!("dscp: invalid DSCP `{v}' (0 to 0x3f)")),
        _ => class_value(v).ok_or_else(|| format!("dscp: unknown DiffServ class `{v}'")),
    }
}

impl MatchExt for Dscp {
    type Builder = Option<Neg<u8>>;
    type Compiled = Neg<u8>;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["dscp", "dscp-class"];

    fn option(d: &mut Option<Neg<u8>>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if !matches!(opt, "dscp" | "dscp-class") {
            return Ok(false);
        }
        if d.is_some() {
            return c.err("dscp: only one of --dscp or --dscp-class may be given");
        }
        let v = c.value_inv(&format!("--{opt}"), &mut inv)?;
        let n = parse(opt, &v).or_else(|m| c.err_value(m))?;
        *d = Some(Neg::new(inv, n));
        Ok(true)
    }

    fn finish(d: Option<Neg<u8>>, _: RuleProto) -> Result<Dscp, String> {
        Ok(Dscp(d.ok_or("dscp: --dscp or --dscp-class is required")?))
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, "{} --dscp {:#04x}", self.0.bang(), self.0.v);
    }

    fn list(&self, out: &mut String, _: bool) -> bool {
        let _ = write!(
            out,
            " DSCP match {}{:#04x}",
            if self.0.inv { "!" } else { "" },
            self.0.v
        );
        true
    }

    fn compile(&self, _: &CompileEnv) -> Neg<u8> {
        self.0
    }

    fn test(d: &Neg<u8>, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        d.holds(p.h.tos >> 2 == d.v)
    }
}
