//! `-m helper` (`libxt_helper.c`, `xt_helper.c`): packets of a connection that a conntrack
//! helper (`ftp`, `sip`...) expected. rtrouter runs no helpers, so no connection is ever
//! expected by one: as `helper_mt` answers for such packets, only `! --helper` matches.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::save_string;
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper {
    pub inv: bool,
    pub name: String,
}

impl MatchExt for Helper {
    type Builder = Option<Helper>;
    type Compiled = bool;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["helper"];

    fn option(h: &mut Option<Helper>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "helper" {
            return Ok(false);
        }
        c.once(h, "--helper")?;
        let name = c.value_inv("--helper", &mut inv)?;
        if name.len() > 29 {
            return c.err_value("helper: the name is longer than 29 characters");
        }
        *h = Some(Helper { inv, name });
        Ok(true)
    }

    fn finish(h: Option<Helper>, _: RuleProto) -> Result<Helper, String> {
        h.ok_or_else(|| "helper: --helper is required".into())
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, "{} --helper {}", bang(self.inv), save_string(&self.name));
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("rtrouter runs no conntrack helpers: -m helper matches only negated")
    }

    fn compile(&self, _: &CompileEnv) -> bool {
        self.inv
    }

    fn test(inv: &bool, _: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        *inv
    }
}
