//! `HL` (`libip6t_HL.c`, `ip6t_HL.c`): set, increase or decrease the IPv6 hop limit (no header
//! checksum in IPv6). mangle table; ip6tables' counterpart of `TTL`.

use super::ttl::TtlOp;
use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::packet;
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::parse_uint;
use crate::ruleset::{Family, TableKind};
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hl(pub TtlOp);

impl TargetExt for Hl {
    type Builder = Option<TtlOp>;

    fn start() -> Option<TtlOp> {
        None
    }

    const OPTIONS: &'static [&'static str] = &["hl-set", "hl-inc", "hl-dec"];

    fn option(t: &mut Option<TtlOp>, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        if t.is_some() {
            return c.err("HL: only one of --hl-set, --hl-inc or --hl-dec allowed");
        }
        let v = c.value(&format!("--{opt}"))?;
        let min = if opt == "hl-set" { 0 } else { 1 };
        let n = parse_uint(&v, min, 255).map_or_else(|| c.err_value(format!("HL: bad value `{v}'")), Ok)? as u8;
        *t = Some(match opt {
            "hl-set" => TtlOp::Set(n),
            "hl-inc" => TtlOp::Inc(n),
            _ => TtlOp::Dec(n),
        });
        Ok(())
    }

    fn finish(t: Option<TtlOp>, p: RuleProto, _: bool) -> Result<Hl, String> {
        p.only(Family::V6, "target", "HL")?;
        t.map(Hl)
            .ok_or_else(|| "HL: one of --hl-set, --hl-inc or --hl-dec is required".into())
    }

    fn save(&self, out: &mut String) {
        let _ = match self.0 {
            TtlOp::Set(n) => write!(out, " --hl-set {n}"),
            TtlOp::Inc(n) => write!(out, " --hl-inc {n}"),
            TtlOp::Dec(n) => write!(out, " --hl-dec {n}"),
        };
    }

    fn list(&self, out: &mut String, _: bool) {
        let _ = match self.0 {
            TtlOp::Set(n) => write!(out, " HL set to {n}"),
            TtlOp::Inc(n) => write!(out, " HL increment by {n}"),
            TtlOp::Dec(n) => write!(out, " HL decrement by {n}"),
        };
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Mangle]
    }

    fn apply(&self, p: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        let hl = match self.0 {
            TtlOp::Set(n) => n,
            TtlOp::Inc(n) => p.h.ttl.saturating_add(n),
            TtlOp::Dec(n) => p.h.ttl.saturating_sub(n),
        };
        packet::set_ttl(p.buf, &mut p.h, hl);
        None
    }
}
