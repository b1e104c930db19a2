//! `-m length` (`libxt_length.c`, `xt_length.c`): the IP packet's total length.

use super::{save_range, CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, Neg, PResult};
use crate::ruleset::value::Range16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Length(pub Neg<Range16>);

impl MatchExt for Length {
    type Builder = Option<Neg<Range16>>;
    type Compiled = Neg<Range16>;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["length"];

    fn option(l: &mut Option<Neg<Range16>>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "length" {
            return Ok(false);
        }
        c.once(l, "--length")?;
        let v = c.value_inv("--length", &mut inv)?;
        let r = Range16::parse(&v, None).map_or_else(|| c.err_value(format!("length: bad range `{v}'")), Ok)?;
        *l = Some(Neg::new(inv, r));
        Ok(true)
    }

    fn finish(l: Option<Neg<Range16>>, _: RuleProto) -> Result<Length, String> {
        Ok(Length(l.ok_or("length: --length is required")?))
    }

    fn save(&self, out: &mut String) {
        save_range(out, "length", &Some(self.0));
    }

    fn compile(&self, _: &CompileEnv) -> Neg<Range16> {
        self.0
    }

    fn test(l: &Neg<Range16>, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        l.holds(l.v.contains(p.h.total_len))
    }
}
