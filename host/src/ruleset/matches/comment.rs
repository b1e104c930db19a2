//! `-m comment` (`libxt_comment.c`, `xt_comment.c`): a note of up to 255 characters that
//! every packet matches.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::classify::{Fields, Indexed};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::value::save_string;
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
pub struct Comment(pub String);

impl MatchExt for Comment {
    type Builder = Option<String>;
    type Compiled = ();
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["comment"];

    fn option(s: &mut Option<String>, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "comment" {
            return Ok(false);
        }
        c.no_invert(inv, "--comment")?;
        c.once(s, "--comment")?;
        let v = c.raw_value("--comment")?;
        if v.len() > 255 {
            return c.err_value("comment too long: at most 255 characters");
        }
        *s = Some(v);
        Ok(true)
    }

    fn finish(s: Option<String>, _: RuleProto) -> Result<Comment, String> {
        Ok(Comment(s.ok_or("comment: --comment is required")?))
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, " --comment {}", save_string(&self.0));
    }

    fn list(&self, out: &mut String, _: bool) -> bool {
        let _ = write!(out, " /* {} */", self.0);
        true
    }

    fn compile(&self, _: &CompileEnv) {}

    fn test(_: &(), _: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        true
    }

    fn index(&self, _: &mut Fields) -> Indexed {
        Indexed::Exact
    }
}
