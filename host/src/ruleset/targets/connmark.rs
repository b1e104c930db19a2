//! `CONNMARK` (`libxt_CONNMARK.c`, `xt_connmark.c: connmark_tg`): set the connection's mark,
//! or copy it to or from the packet's.

use super::{bit_op, TargetExt};
use crate::eval::{Ct, Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::{parse_mark_mask, RuleProto};
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnMark {
    /// ctmark = (ctmark & !mask) ^ value.
    Set { value: u32, mask: u32 },
    /// ctmark = (ctmark & !ctmask) ^ (mark & nfmask).
    Save { nfmask: u32, ctmask: u32 },
    /// mark = (mark & !nfmask) ^ (ctmark & ctmask).
    Restore { nfmask: u32, ctmask: u32 },
}

impl TargetExt for ConnMark {
    /// The action, once one was given.
    type Builder = Option<ConnMark>;

    fn start() -> Option<ConnMark> {
        None
    }

    const OPTIONS: &'static [&'static str] = &[
        "set-xmark",
        "set-mark",
        "and-mark",
        "or-mark",
        "xor-mark",
        "save-mark",
        "restore-mark",
        "mask",
        "nfmask",
        "ctmask",
    ];

    fn option(cm: &mut Option<ConnMark>, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        let name = format!("--{opt}");
        match opt {
            "save-mark" | "restore-mark" => {
                if cm.is_some() {
                    return c.err("CONNMARK: only one action option allowed");
                }
                let (nfmask, ctmask) = (u32::MAX, u32::MAX);
                *cm = Some(if opt == "save-mark" {
                    ConnMark::Save { nfmask, ctmask }
                } else {
                    ConnMark::Restore { nfmask, ctmask }
                });
            }
            "mask" | "nfmask" | "ctmask" => {
                let v = c.value(&name)?;
                let m = parse_uint(&v, 0, u32::MAX.into())
                    .map_or_else(|| c.err_value(format!("CONNMARK: bad mask `{v}'")), Ok)?
                    as u32;
                match cm {
                    Some(ConnMark::Save { nfmask, ctmask } | ConnMark::Restore { nfmask, ctmask }) => {
                        if opt != "ctmask" {
                            *nfmask = m;
                        }
                        if opt != "nfmask" {
                            *ctmask = m;
                        }
                    }
                    Some(ConnMark::Set { .. }) | None => {
                        return c.err(format!(
                            "CONNMARK: {name} needs --save-mark or --restore-mark before it"
                        ));
                    }
                }
            }
            _ => {
                if cm.is_some() {
                    return c.err("CONNMARK: only one action option allowed");
                }
                let v = c.value(&name)?;
                let mm = parse_mark_mask(&v).map_or_else(|| c.err_value(format!("CONNMARK: bad value `{v}'")), Ok)?;
                let (value, mask) = bit_op(opt, mm.value, mm.mask);
                *cm = Some(ConnMark::Set { value, mask });
            }
        }
        Ok(())
    }

    fn finish(cm: Option<ConnMark>, _: RuleProto, _: bool) -> Result<ConnMark, String> {
        cm.ok_or_else(|| "CONNMARK: an action (--set-mark, --save-mark, --restore-mark, …) is required".into())
    }

    fn save(&self, out: &mut String) {
        let _ = match *self {
            ConnMark::Set { value, mask } => write!(out, " --set-xmark {value:#x}/{mask:#x}"),
            ConnMark::Save { nfmask, ctmask } => write!(out, " --save-mark --nfmask {nfmask:#x} --ctmask {ctmask:#x}"),
            ConnMark::Restore { nfmask, ctmask } => {
                write!(out, " --restore-mark --nfmask {nfmask:#x} --ctmask {ctmask:#x}")
            }
        };
    }

    fn list(&self, out: &mut String, _: bool) {
        // `connmark_tg_print`.
        let _ = match *self {
            ConnMark::Set { value, mask } => {
                super::list_xmark(out, "CONNMARK", value, mask);
                Ok(())
            }
            ConnMark::Save { nfmask, ctmask } => {
                if nfmask == u32::MAX && ctmask == u32::MAX {
                    write!(out, " CONNMARK save")
                } else if nfmask == ctmask {
                    write!(out, " CONNMARK save mask {nfmask:#x}")
                } else {
                    write!(out, " CONNMARK save nfmask {nfmask:#x} ctmask ~{:#x}", !ctmask)
                }
            }
            ConnMark::Restore { nfmask, ctmask } => {
                if nfmask == u32::MAX && ctmask == u32::MAX {
                    write!(out, " CONNMARK restore")
                } else if nfmask == ctmask {
                    write!(out, " CONNMARK restore mask {ctmask:#x}")
                } else {
                    write!(out, " CONNMARK restore ctmask {ctmask:#x} nfmask ~{:#x}", !nfmask)
                }
            }
        };
    }

    fn apply(&self, p: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        if let Ct::Tracked(ct) = &mut p.ct {
            match *self {
                ConnMark::Set { value, mask } => ct.mark = (ct.mark & !mask) ^ value,
                ConnMark::Save { nfmask, ctmask } => ct.mark = (ct.mark & !ctmask) ^ (p.mark & nfmask),
                ConnMark::Restore { nfmask, ctmask } => p.mark = (p.mark & !nfmask) ^ (ct.mark & ctmask),
            }
        }
        None
    }
}
