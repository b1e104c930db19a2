//! `SNAT` (`libipt_SNAT.c`, `xt_nat.c`): translate the source of a new connection. nat table,
//! POSTROUTING and INPUT.

use super::nat::{nat, to_option, NatRange};
use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::{hooks, HookMask, TableKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snat(pub NatRange);

impl TargetExt for Snat {
    type Builder = (NatRange, bool);

    fn start() -> (NatRange, bool) {
        (NatRange::default(), false)
    }

    const OPTIONS: &'static [&'static str] = &["to-source", "random", "random-fully", "persistent"];

    fn option(b: &mut (NatRange, bool), opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        to_option(b, opt, c)
    }

    fn finish((r, given): (NatRange, bool), p: RuleProto, _: bool) -> Result<Snat, String> {
        if !given {
            return Err("SNAT: --to-source is required".into());
        }
        r.check("SNAT", p)?;
        Ok(Snat(r))
    }

    fn save(&self, out: &mut String) {
        self.0.save_to("to-source", out);
    }

    fn list(&self, out: &mut String, _: bool) {
        self.0.list_to(out);
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Nat]
    }

    fn hooks(&self) -> HookMask {
        hooks::POSTROUTING | hooks::INPUT
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, _: &Engine) -> Option<Verdict> {
        Some(nat(p, cx, &self.0, false, false, None))
    }
}
