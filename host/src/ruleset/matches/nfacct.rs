//! `-m nfacct` (`libxt_nfacct.c`, `xt_nfacct.c`): counts the packet in a named accounting
//! object shared by every rule that names it, and matches. Counting is a side effect.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::state::Counter;
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, PResult};
use std::fmt::Write as _;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct Nfacct(pub String);

impl MatchExt for Nfacct {
    type Builder = Option<String>;
    type Compiled = Arc<Counter>;
    const SIDE_EFFECT: bool = true;
    const OPTIONS: &'static [&'static str] = &["nfacct-name"];

    fn option(n: &mut Option<String>, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "nfacct-name" {
            return Ok(false);
        }
        c.no_invert(inv, "--nfacct-name")?;
        c.once(n, "--nfacct-name")?;
        let v = c.value("--nfacct-name")?;
        if v.is_empty() || v.len() > 31 {
            return c.err_value("nfacct: name must be 1 to 31 characters");
        }
        *n = Some(v);
        Ok(true)
    }

    fn finish(n: Option<String>, _: RuleProto) -> Result<Nfacct, String> {
        Ok(Nfacct(n.ok_or("nfacct: --nfacct-name is required")?))
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, " --nfacct-name {}", self.0);
    }

    fn compile(&self, env: &CompileEnv) -> Arc<Counter> {
        env.shared.nfacct(&self.0)
    }

    fn test(c: &Arc<Counter>, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        c.add(u64::from(p.h.total_len));
        true
    }
}
