//! `-m connmark` (`libxt_connmark.c`, `xt_connmark.c`): the connection's mark under a mask;
//! packets without a connection never match.

use super::mark::MarkMask;
use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Ct, Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, Neg, PResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnMark(pub Neg<MarkMask>);

impl MatchExt for ConnMark {
    type Builder = Option<Neg<MarkMask>>;
    type Compiled = Neg<MarkMask>;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["mark"];

    fn option(m: &mut Option<Neg<MarkMask>>, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        super::mark::option(m, opt, inv, c)
    }

    fn finish(m: Option<Neg<MarkMask>>, _: RuleProto) -> Result<ConnMark, String> {
        Ok(ConnMark(m.ok_or("mark: --mark is required")?))
    }

    fn save(&self, out: &mut String) {
        super::mark::save(&self.0, out);
    }

    fn compile(&self, _: &CompileEnv) -> Neg<MarkMask> {
        self.0
    }

    fn test(m: &Neg<MarkMask>, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        match &p.ct {
            Ct::Tracked(c) => m.holds(c.mark & m.v.mask == m.v.value),
            _ => false,
        }
    }
}
