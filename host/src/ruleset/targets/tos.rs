//! `TOS` (`libxt_TOS.c`, `xt_DSCP.c`'s `tos_tg`): change the TOS byte: clear the mask's bits,
//! then XOR the value in. `--set-tos`, `--and-tos`, `--or-tos` and `--xor-tos` all save as
//! `--set-tos VALUE/MASK`. mangle table.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::packet;
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::parse_uint;
use crate::ruleset::TableKind;
use std::fmt::Write as _;

/// Value and mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tos(pub u8, pub u8);

impl TargetExt for Tos {
    type Builder = Option<(u8, u8)>;

    fn start() -> Option<(u8, u8)> {
        None
    }

    const OPTIONS: &'static [&'static str] = &["set-tos", "and-tos", "or-tos", "xor-tos"];

    fn option(t: &mut Option<(u8, u8)>, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        if t.is_some() {
            return c.err("TOS: only one of --set-tos, --and-tos, --or-tos or --xor-tos may be given");
        }
        let v = c.value(&format!("--{opt}"))?;
        let bad = |c: &Cursor| c.err_value(format!("TOS: bad value `{v}'"));
        *t = Some(match opt {
            "set-tos" => match crate::ruleset::matches::tos::parse_tos(&v, 0xff) {
                Some(tm) => tm,
                None => return bad(c),
            },
            _ => {
                let Some(b) = parse_uint(&v, 0, 0xff).map(|b| b as u8) else {
                    return bad(c);
                };
                match opt {
                    "and-tos" => (0, !b),
                    "or-tos" => (b, b),
                    _ => (b, 0),
                }
            }
        });
        Ok(())
    }

    fn finish(t: Option<(u8, u8)>, _: RuleProto, _: bool) -> Result<Tos, String> {
        t.map(|(v, m)| Tos(v, m))
            .ok_or_else(|| "TOS: one of --set-tos, --and-tos, --or-tos or --xor-tos is required".into())
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, " --set-tos {:#04x}/{:#04x}", self.0, self.1);
    }

    fn list(&self, out: &mut String, numeric: bool) {
        // `tos_tg_print_v1`, with `tos_try_print_symbolic`.
        let (v, m) = (self.0, self.1);
        const NAMES: [(u8, &str); 5] = [
            (0x10, "Minimize-Delay"),
            (0x08, "Maximize-Throughput"),
            (0x04, "Maximize-Reliability"),
            (0x02, "Minimize-Cost"),
            (0x00, "Normal-Service"),
        ];
        let symbol = NAMES.iter().find(|(n, _)| m == 0x3f && *n == v).map(|(_, s)| s);
        let _ = match symbol {
            _ if numeric => write!(out, " TOS set {v:#04x}/{m:#04x}"),
            Some(s) => write!(out, "  TOS set{s}"),
            None if v == 0 => write!(out, " TOS and {:#04x}", !m),
            None if v == m => write!(out, " TOS or {v:#04x}"),
            None if m == 0 => write!(out, " TOS xor {v:#04x}"),
            None => write!(out, " TOS set {v:#04x}/{m:#04x}"),
        };
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Mangle]
    }

    fn apply(&self, p: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        let tos = (p.h.tos & !self.1) ^ self.0;
        if tos != p.h.tos {
            packet::set_tos(p.buf, &mut p.h, tos);
        }
        None
    }
}
