//! `DSCP` (`libxt_DSCP.c`, `xt_DSCP.c`'s `dscp_tg`): set the DiffServ code point, keeping the
//! ECN bits; `--set-dscp-class` names a class. mangle table.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::packet;
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::TableKind;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dscp(pub u8);

impl TargetExt for Dscp {
    type Builder = Option<u8>;

    fn start() -> Option<u8> {
        None
    }

    const OPTIONS: &'static [&'static str] = &["set-dscp", "set-dscp-class"];

    fn option(d: &mut Option<u8>, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        if d.is_some() {
            return c.err("DSCP: only one of --set-dscp or --set-dscp-class may be given");
        }
        let v = c.value(&format!("--{opt}"))?;
        let kind = if opt == "set-dscp" { "dscp" } else { "dscp-class" };
        *d =
            Some(crate::ruleset::matches::dscp::parse(kind, &v).or_else(|m| c.err_value(m.replace("dscp:", "DSCP:")))?);
        Ok(())
    }

    fn finish(d: Option<u8>, _: RuleProto, _: bool) -> Result<Dscp, String> {
        d.map(Dscp)
            .ok_or_else(|| "DSCP: --set-dscp or --set-dscp-class is required".into())
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, " --set-dscp {:#04x}", self.0);
    }

    fn list(&self, out: &mut String, _: bool) {
        let _ = write!(out, " DSCP set {:#04x}", self.0);
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Mangle]
    }

    fn apply(&self, p: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        if p.h.tos >> 2 != self.0 {
            let tos = (p.h.tos & 0x03) | (self.0 << 2);
            packet::set_tos(p.buf, &mut p.h, tos);
        }
        None
    }
}
