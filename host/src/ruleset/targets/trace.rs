//! `TRACE` (`libxt_TRACE.c`, `xt_TRACE.c`): mark the packet so that every rule it meets from
//! then on, in every table and hook, is reported as it happens — to the log (target
//! `rtrouter::trace`) and to `rtrouter monitor trace`, as the kernel reports to `nft monitor
//! trace` and the kernel log. raw table.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::TableKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trace;

impl TargetExt for Trace {
    type Builder = ();
    const OPTIONS: &'static [&'static str] = &[];

    fn start() {}

    fn option(_: &mut (), _: &str, _: bool, _: &mut Cursor) -> PResult<()> {
        Ok(())
    }

    fn finish(_: (), _: RuleProto, _: bool) -> Result<Trace, String> {
        Ok(Trace)
    }

    fn save(&self, _: &mut String) {}

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Raw]
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, _: &Engine) -> Option<Verdict> {
        if !p.trace {
            p.trace = true;
            // As `ipt_do_table` checks `nf_trace` rule by rule: the rest of this table too.
            cx.obs.trace_start(p);
        }
        None
    }
}
