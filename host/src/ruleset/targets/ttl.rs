//! `TTL` (`libipt_TTL.c`, `ipt_TTL.c`): set, increase or decrease the time to live, with the
//! header checksum updated. mangle table.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::packet;
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::parse_uint;
use crate::ruleset::TableKind;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlOp {
    Set(u8),
    Inc(u8),
    Dec(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl(pub TtlOp);

impl TargetExt for Ttl {
    type Builder = Option<TtlOp>;

    fn start() -> Option<TtlOp> {
        None
    }

    const OPTIONS: &'static [&'static str] = &["ttl-set", "ttl-inc", "ttl-dec"];

    fn option(t: &mut Option<TtlOp>, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        if t.is_some() {
            return c.err("TTL: only one of --ttl-set, --ttl-inc or --ttl-dec allowed");
        }
        let v = c.value(&format!("--{opt}"))?;
        let min = if opt == "ttl-set" { 0 } else { 1 };
        let n = parse_uint(&v, min, 255).map_or_else(|| c.err_value(format!("TTL: bad value `{v}'")), Ok)? as u8;
        *t = Some(match opt {
            "ttl-set" => TtlOp::Set(n),
            "ttl-inc" => TtlOp::Inc(n),
            _ => TtlOp::Dec(n),
        });
        Ok(())
    }

    fn finish(t: Option<TtlOp>, p: RuleProto, _: bool) -> Result<Ttl, String> {
        p.only(crate::ruleset::Family::V4, "target", "TTL")?;
        t.map(Ttl)
            .ok_or_else(|| "TTL: one of --ttl-set, --ttl-inc or --ttl-dec is required".into())
    }

    fn save(&self, out: &mut String) {
        let _ = match self.0 {
            TtlOp::Set(n) => write!(out, " --ttl-set {n}"),
            TtlOp::Inc(n) => write!(out, " --ttl-inc {n}"),
            TtlOp::Dec(n) => write!(out, " --ttl-dec {n}"),
        };
    }

    fn list(&self, out: &mut String, _: bool) {
        let _ = match self.0 {
            TtlOp::Set(n) => write!(out, " TTL set to {n}"),
            TtlOp::Inc(n) => write!(out, " TTL increment by {n}"),
            TtlOp::Dec(n) => write!(out, " TTL decrement by {n}"),
        };
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Mangle]
    }

    fn apply(&self, p: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        let ttl = match self.0 {
            TtlOp::Set(n) => n,
            TtlOp::Inc(n) => p.h.ttl.saturating_add(n),
            TtlOp::Dec(n) => p.h.ttl.saturating_sub(n),
        };
        packet::set_ttl(p.buf, &mut p.h, ttl);
        None
    }
}
