//! `CT` (`libxt_CT.c`, `xt_CT.c`): `--notrack` and the conntrack zone; helpers, events and
//! timeout policies are kept and printed but have no effect here. raw table.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::parse_uint;
use crate::ruleset::TableKind;
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ct {
    pub notrack: bool,
    pub helper: String,
    pub ctevents: u16,
    pub expevents: u16,
    pub zone: u16,
    pub timeout: String,
}

const CT_EVENTS: [&str; 10] = [
    "new",
    "related",
    "destroy",
    "reply",
    "assured",
    "protoinfo",
    "helper",
    "mark",
    "natseqinfo",
    "secmark",
];

impl Ct {
    /// `{lead}ctevents a,b` and `{lead}expevents c` for the events given.
    fn events(&self, lead: &str, out: &mut String) {
        for (opt, bits) in [("ctevents", self.ctevents), ("expevents", self.expevents)] {
            if bits != 0 {
                let names: Vec<&str> = CT_EVENTS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, n)| *n)
                    .collect();
                let _ = write!(out, "{lead}{opt} {}", names.join(","));
            }
        }
    }
}

impl TargetExt for Ct {
    type Builder = Ct;

    fn start() -> Ct {
        Ct::default()
    }

    const OPTIONS: &'static [&'static str] = &[
        "notrack",
        "helper",
        "ctevents",
        "expevents",
        "zone",
        "timeout",
        "zone-orig",
        "zone-reply",
    ];

    fn option(ct: &mut Ct, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        let name = format!("--{opt}");
        match opt {
            "notrack" => ct.notrack = true,
            "helper" => {
                let v = c.value(&name)?;
                if v.is_empty() || v.len() > 15 {
                    return c.err_value("CT: bad --helper name");
                }
                ct.helper = v;
            }
            "timeout" => {
                let v = c.value(&name)?;
                if v.is_empty() || v.len() > 31 {
                    return c.err_value("CT: bad --timeout policy name");
                }
                ct.timeout = v;
            }
            "zone" => {
                let v = c.value(&name)?;
                ct.zone =
                    parse_uint(&v, 0, 65535).map_or_else(|| c.err_value(format!("CT: bad --zone `{v}'")), Ok)? as u16;
            }
            "ctevents" | "expevents" => {
                let v = c.value(&name)?;
                let mut bits = 0u16;
                for e in v.split(',') {
                    let ok = if opt == "ctevents" {
                        &CT_EVENTS[..]
                    } else {
                        &CT_EVENTS[..1]
                    };
                    let Some(i) = ok.iter().position(|n| *n == e) else {
                        return c.err_value(format!("CT: unknown event `{e}'"));
                    };
                    bits |= 1 << i;
                }
                if opt == "ctevents" {
                    ct.ctevents = bits;
                } else {
                    ct.expevents = bits;
                }
            }
            _ => return c.err("CT: --zone-orig and --zone-reply are not supported by rtrouter"),
        }
        Ok(())
    }

    fn finish(ct: Ct, _: RuleProto, _: bool) -> Result<Ct, String> {
        Ok(ct)
    }

    fn save(&self, out: &mut String) {
        if self.notrack {
            out.push_str(" --notrack");
        }
        if !self.helper.is_empty() {
            let _ = write!(out, " --helper {}", self.helper);
        }
        self.events(" --", out);
        if self.zone != 0 {
            let _ = write!(out, " --zone {}", self.zone);
        }
        if !self.timeout.is_empty() {
            let _ = write!(out, " --timeout {}", self.timeout);
        }
    }

    fn list(&self, out: &mut String, _: bool) {
        // `ct_print_v1`.
        out.push_str(" CT");
        if self.notrack {
            out.push_str(" notrack");
        }
        if !self.helper.is_empty() {
            let _ = write!(out, " helper {}", self.helper);
        }
        if !self.timeout.is_empty() {
            let _ = write!(out, " timeout {}", self.timeout);
        }
        self.events(" ", out);
        if self.zone != 0 {
            let _ = write!(out, " zone {}", self.zone);
        }
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Raw]
    }

    fn apply(&self, p: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        // `xt_ct_target`.
        if p.has_conntrack() {
            return None;
        }
        if self.notrack {
            p.ct = crate::eval::Ct::Untracked;
        }
        p.zone = self.zone;
        None
    }
}
