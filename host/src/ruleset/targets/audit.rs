//! `AUDIT` (`libxt_AUDIT.c`, `xt_AUDIT.c`): record the packet in the audit log and continue.
//! rtrouter has no kernel audit subsystem to write to; it writes the record the kernel
//! writes (`NETFILTER_PKT`: mark, addresses, protocol) to its log, target `rtrouter::audit`,
//! within the packet log's rate.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;

/// `--type`: what the rule does after auditing (printed back; the kernel's record no longer
/// carries it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditType {
    Accept,
    Drop,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audit(pub AuditType);

impl TargetExt for Audit {
    type Builder = Option<AuditType>;
    const OPTIONS: &'static [&'static str] = &["type"];

    fn start() -> Option<AuditType> {
        None
    }

    fn option(b: &mut Option<AuditType>, _: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        c.once(b, "--type")?;
        let v = c.value("--type")?;
        *b = Some(match v.to_ascii_lowercase().as_str() {
            "accept" => AuditType::Accept,
            "drop" => AuditType::Drop,
            "reject" => AuditType::Reject,
            _ => return c.err_value(format!("Bad action type value \"{v}\"")),
        });
        Ok(())
    }

    fn finish(b: Option<AuditType>, _: RuleProto, _: bool) -> Result<Audit, String> {
        b.map(Audit).ok_or_else(|| "AUDIT: --type is required".into())
    }

    fn save(&self, out: &mut String) {
        out.push_str(match self.0 {
            AuditType::Accept => " --type accept",
            AuditType::Drop => " --type drop",
            AuditType::Reject => " --type reject",
        });
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, _: &Engine) -> Option<Verdict> {
        if cx.log.admit(cx.now) {
            let line = format!(
                "NETFILTER_PKT mark={:#x} saddr={} daddr={} proto={}",
                p.mark, p.h.src, p.h.dst, p.h.proto
            );
            tracing::info!(target: "rtrouter::audit", "{line}");
            cx.obs.event(&|| format!("AUDIT: {line}"));
        }
        None
    }
}
