//! `MARK` (`libxt_MARK.c`, `xt_mark.c: mark_tg`): mark = (mark & !mask) ^ value.

use super::{bit_op, TargetExt};
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::{parse_mark_mask, RuleProto};
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub value: u32,
    pub mask: u32,
}

impl TargetExt for Mark {
    type Builder = Option<Mark>;

    fn start() -> Option<Mark> {
        None
    }

    const OPTIONS: &'static [&'static str] = &["set-xmark", "set-mark", "and-mark", "or-mark", "xor-mark"];

    fn option(m: &mut Option<Mark>, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        if m.is_some() {
            return c.err("MARK: only one action option allowed");
        }
        let name = format!("--{opt}");
        let v = c.value(&name)?;
        let mm = parse_mark_mask(&v).map_or_else(|| c.err_value(format!("MARK: bad value `{v}'")), Ok)?;
        if opt != "set-xmark" && opt != "set-mark" && v.contains('/') {
            return c.err_value(format!("MARK: {name} takes no mask"));
        }
        let (value, mask) = bit_op(opt, mm.value, mm.mask);
        *m = Some(Mark { value, mask });
        Ok(())
    }

    fn finish(m: Option<Mark>, _: RuleProto, _: bool) -> Result<Mark, String> {
        m.ok_or_else(|| "MARK: one of --set-xmark, --set-mark, --and-mark, --or-mark or --xor-mark is required".into())
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, " --set-xmark {:#x}/{:#x}", self.value, self.mask);
    }

    fn list(&self, out: &mut String, _: bool) {
        // `mark_tg_print`.
        super::list_xmark(out, "MARK", self.value, self.mask);
    }

    fn apply(&self, p: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        p.mark = (p.mark & !self.mask) ^ self.value;
        None
    }
}
