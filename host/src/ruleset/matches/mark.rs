//! `-m mark` (`libxt_mark.c`, `xt_mark.c`): the packet's nfmark under a mask.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, Neg, PResult};
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkMask {
    pub value: u32,
    pub mask: u32,
}

/// `VALUE[/MASK]`; the mask defaults to all ones.
pub fn parse_mark_mask(v: &str) -> Option<MarkMask> {
    let max = u32::MAX.into();
    let (value, mask) = match v.split_once('/') {
        Some((a, b)) => (parse_uint(a, 0, max)?, parse_uint(b, 0, max)?),
        None => (parse_uint(v, 0, max)?, max),
    };
    Some(MarkMask {
        value: value as u32,
        mask: mask as u32,
    })
}

/// `--mark VALUE[/MASK]`, shared with `connmark`.
pub(super) fn option(m: &mut Option<Neg<MarkMask>>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
    if opt != "mark" {
        return Ok(false);
    }
    c.once(m, "--mark")?;
    let v = c.value_inv("--mark", &mut inv)?;
    let mm = parse_mark_mask(&v).map_or_else(|| c.err_value(format!("bad mark value `{v}'")), Ok)?;
    *m = Some(Neg::new(inv, mm));
    Ok(true)
}

pub(super) fn save(m: &Neg<MarkMask>, out: &mut String) {
    let _ = write!(out, "{} --mark {:#x}", m.bang(), m.v.value);
    if m.v.mask != u32::MAX {
        let _ = write!(out, "/{:#x}", m.v.mask);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark(pub Neg<MarkMask>);

impl MatchExt for Mark {
    type Builder = Option<Neg<MarkMask>>;
    type Compiled = Neg<MarkMask>;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["mark"];

    fn option(m: &mut Option<Neg<MarkMask>>, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        option(m, opt, inv, c)
    }

    fn finish(m: Option<Neg<MarkMask>>, _: RuleProto) -> Result<Mark, String> {
        Ok(Mark(m.ok_or("mark: --mark is required")?))
    }

    fn save(&self, out: &mut String) {
        save(&self.0, out);
    }

    fn list(&self, out: &mut String, _: bool) -> bool {
        // libxt_mark's mark_print.
        out.push_str(" mark match");
        if self.0.inv {
            out.push_str(" !");
        }
        let _ = write!(out, " {:#x}", self.0.v.value);
        if self.0.v.mask != u32::MAX {
            let _ = write!(out, "/{:#x}", self.0.v.mask);
        }
        true
    }

    fn compile(&self, _: &CompileEnv) -> Neg<MarkMask> {
        self.0
    }

    fn test(m: &Neg<MarkMask>, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        m.holds(p.mark & m.v.mask == m.v.value)
    }
}
