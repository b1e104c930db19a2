//! `DNAT` (`libipt_DNAT.c`, `xt_nat.c`): translate the destination of a new connection. nat
//! table, PREROUTING and OUTPUT.

use super::nat::{nat, to_option, NatRange};
use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::{hooks, HookMask, TableKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dnat(pub NatRange);

impl TargetExt for Dnat {
    type Builder = (NatRange, bool);

    fn start() -> (NatRange, bool) {
        (NatRange::default(), false)
    }

    const OPTIONS: &'static [&'static str] = &["to-destination", "random", "persistent"];

    fn option(b: &mut (NatRange, bool), opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        to_option(b, opt, c)
    }

    fn finish((r, given): (NatRange, bool), p: RuleProto, _: bool) -> Result<Dnat, String> {
        if !given {
            return Err("DNAT: --to-destination is required".into());
        }
        r.check("DNAT", p)?;
        Ok(Dnat(r))
    }

    fn save(&self, out: &mut String) {
        self.0.save_to("to-destination", out);
    }

    fn list(&self, out: &mut String, _: bool) {
        self.0.list_to(out);
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Nat]
    }

    fn hooks(&self) -> HookMask {
        hooks::PREROUTING | hooks::OUTPUT
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, _: &Engine) -> Option<Verdict> {
        Some(nat(p, cx, &self.0, true, false, None))
    }
}
