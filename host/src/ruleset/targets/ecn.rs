//! `ECN` (`libipt_ECN.c`, `ipt_ECN.c`): rewrite the ECN bits: the IP header's ECT codepoint
//! and TCP's ECE and CWR flags (`--ecn-tcp-remove` clears both), checksums updated. mangle
//! table.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::packet::{self, L4};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::parse_uint;
use crate::ruleset::TableKind;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ecn {
    pub ece: Option<bool>,
    pub cwr: Option<bool>,
    pub ect: Option<u8>,
    /// Written as `--ecn-tcp-remove`.
    pub remove: bool,
}

impl TargetExt for Ecn {
    type Builder = Ecn;
    const OPTIONS: &'static [&'static str] = &["ecn-tcp-remove", "ecn-tcp-cwr", "ecn-tcp-ece", "ecn-ip-ect"];

    fn start() -> Ecn {
        Ecn::default()
    }

    fn option(e: &mut Ecn, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        let name = format!("--{opt}");
        match opt {
            "ecn-tcp-remove" => {
                e.remove = true;
                e.ece = Some(false);
                e.cwr = Some(false);
            }
            "ecn-ip-ect" => {
                let v = c.value(&name)?;
                e.ect = Some(
                    parse_uint(&v, 0, 3).map_or_else(|| c.err_value(format!("ECN: {name} `{v}' must be 0 to 3")), Ok)?
                        as u8,
                );
            }
            _ => {
                let v = c.value(&name)?;
                let b = parse_uint(&v, 0, 1)
                    .map_or_else(|| c.err_value(format!("ECN: {name} `{v}' must be 0 or 1")), Ok)?
                    == 1;
                if opt == "ecn-tcp-ece" {
                    e.ece = Some(b);
                } else {
                    e.cwr = Some(b);
                }
            }
        }
        Ok(())
    }

    fn finish(e: Ecn, p: RuleProto, _: bool) -> Result<Ecn, String> {
        if e.ece.is_none() && e.cwr.is_none() && e.ect.is_none() {
            return Err("ECN target: an operation is required".into());
        }
        if (e.ece.is_some() || e.cwr.is_some()) && p.exact() != Some(6) {
            return Err("ECN target: TCP flags need `-p tcp'".into());
        }
        Ok(e)
    }

    fn save(&self, out: &mut String) {
        if self.remove && self.ect.is_none() {
            out.push_str(" --ecn-tcp-remove");
            return;
        }
        if let Some(b) = self.ece {
            let _ = write!(out, " --ecn-tcp-ece {}", u8::from(b));
        }
        if let Some(b) = self.cwr {
            let _ = write!(out, " --ecn-tcp-cwr {}", u8::from(b));
        }
        if let Some(n) = self.ect {
            let _ = write!(out, " --ecn-ip-ect {n}");
        }
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Mangle]
    }

    fn apply(&self, p: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        if let Some(n) = self.ect {
            let tos = (p.h.tos & !0x03) | n;
            if tos != p.h.tos {
                packet::set_tos(p.buf, &mut p.h, tos);
            }
        }
        if let L4::Tcp(t) = p.h.l4 {
            let mut f = t.flags;
            for (want, bit) in [(self.ece, 0x40u8), (self.cwr, 0x80u8)] {
                match want {
                    Some(true) => f |= bit,
                    Some(false) => f &= !bit,
                    None => {}
                }
            }
            if f != t.flags {
                packet::set_tcp_flags(p.buf, &mut p.h, f);
            }
        }
        None
    }
}
