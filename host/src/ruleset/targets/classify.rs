//! `CLASSIFY` (`libxt_CLASSIFY.c`, `xt_CLASSIFY.c`): set the packet's traffic-control class
//! (`skb->priority`, `MAJOR:MINOR` in hex) for a queueing discipline to use. mangle table,
//! POSTROUTING, FORWARD and OUTPUT. rtrouter's TUN devices have no queueing discipline, so
//! the class selects nothing; the rule loads, saves and continues as in the kernel.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::{hooks, HookMask, TableKind};
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classify(pub u16, pub u16);

impl TargetExt for Classify {
    type Builder = Option<(u16, u16)>;
    const OPTIONS: &'static [&'static str] = &["set-class"];

    fn start() -> Option<(u16, u16)> {
        None
    }

    fn option(k: &mut Option<(u16, u16)>, _: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        c.once(k, "--set-class")?;
        let v = c.value("--set-class")?;
        let parsed = v
            .split_once(':')
            .and_then(|(a, b)| Some((u16::from_str_radix(a, 16).ok()?, u16::from_str_radix(b, 16).ok()?)));
        *k = Some(parsed.map_or_else(
            || c.err_value(format!("CLASSIFY: bad class `{v}' (MAJOR:MINOR, hex)")),
            Ok,
        )?);
        Ok(())
    }

    fn finish(k: Option<(u16, u16)>, _: RuleProto, _: bool) -> Result<Classify, String> {
        k.map(|(a, b)| Classify(a, b))
            .ok_or_else(|| "CLASSIFY: --set-class is required".into())
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, " --set-class {:04x}:{:04x}", self.0, self.1);
    }

    fn list(&self, out: &mut String, _: bool) {
        let _ = write!(out, " CLASSIFY set {:x}:{:x}", self.0, self.1);
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Mangle]
    }

    fn hooks(&self) -> HookMask {
        hooks::FORWARD | hooks::OUTPUT | hooks::POSTROUTING
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("TUN devices have no queueing discipline: the class CLASSIFY sets selects nothing")
    }

    fn apply(&self, _: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        None
    }
}
