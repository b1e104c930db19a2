//! `NOTRACK` (`libxt_NOTRACK.c`), the old spelling of `CT --notrack`: the packet is not
//! tracked. raw table.

use super::TargetExt;
use crate::eval::{Ct, Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::TableKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notrack;

impl TargetExt for Notrack {
    type Builder = ();

    fn start() {}

    const OPTIONS: &'static [&'static str] = &[];

    fn option(_: &mut (), _: &str, _: bool, _: &mut Cursor) -> PResult<()> {
        Ok(())
    }

    fn finish(_: (), _: RuleProto, _: bool) -> Result<Notrack, String> {
        Ok(Notrack)
    }

    fn save(&self, _: &mut String) {}

    fn list(&self, out: &mut String, _: bool) {
        // CT's alias prints its own name (the column shows CT).
        out.push_str(" NOTRACK");
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Raw]
    }

    fn apply(&self, p: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        // `notrack_tg`: a packet that already has a connection (looped back, or a reply the
        // router attached to one) keeps it.
        if !p.has_conntrack() {
            p.ct = Ct::Untracked;
        }
        None
    }
}
