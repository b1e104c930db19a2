//! `-m physdev` (`libxt_physdev.c`, `xt_physdev.c`): the bridge ports a bridged packet came
//! in on or goes out of.
//!
//! rtrouter bridges nothing, so no packet carries bridge information. For such a packet
//! `physdev_mt` matches exactly when every option the rule gives is negated (`!
//! --physdev-is-bridged` matches, `--physdev-in eth0` does not); so does this module.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::{hooks, HookMask};
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Physdev {
    /// Each with its `!`.
    pub in_dev: Option<(bool, String)>,
    pub out_dev: Option<(bool, String)>,
    pub is_in: Option<bool>,
    pub is_out: Option<bool>,
    pub is_bridged: Option<bool>,
}

impl MatchExt for Physdev {
    type Builder = Physdev;
    type Compiled = bool;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &[
        "physdev-in",
        "physdev-out",
        "physdev-is-in",
        "physdev-is-out",
        "physdev-is-bridged",
    ];

    fn option(p: &mut Physdev, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        let name = format!("--{opt}");
        match opt {
            "physdev-in" | "physdev-out" => {
                let slot = if opt == "physdev-in" {
                    &mut p.in_dev
                } else {
                    &mut p.out_dev
                };
                c.once(slot, &name)?;
                let v = c.value_inv(&name, &mut inv)?;
                if v.is_empty() || v.len() > 15 {
                    return c.err_value(format!("physdev: bad interface name `{v}'"));
                }
                *slot = Some((inv, v));
            }
            "physdev-is-in" | "physdev-is-out" | "physdev-is-bridged" => {
                let slot = match opt {
                    "physdev-is-in" => &mut p.is_in,
                    "physdev-is-out" => &mut p.is_out,
                    _ => &mut p.is_bridged,
                };
                c.once(slot, &name)?;
                *slot = Some(inv);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(p: Physdev, _: RuleProto) -> Result<Physdev, String> {
        if p == Physdev::default() {
            return Err("physdev: no option given".into());
        }
        Ok(p)
    }

    fn save(&self, out: &mut String) {
        // `physdev_save`'s order.
        if let Some(inv) = self.is_in {
            let _ = write!(out, "{} --physdev-is-in", bang(inv));
        }
        if let Some((inv, d)) = &self.in_dev {
            let _ = write!(out, "{} --physdev-in {d}", bang(*inv));
        }
        if let Some(inv) = self.is_out {
            let _ = write!(out, "{} --physdev-is-out", bang(inv));
        }
        if let Some((inv, d)) = &self.out_dev {
            let _ = write!(out, "{} --physdev-out {d}", bang(*inv));
        }
        if let Some(inv) = self.is_bridged {
            let _ = write!(out, "{} --physdev-is-bridged", bang(inv));
        }
    }

    fn hooks(&self) -> HookMask {
        // `physdev_mt_check`: the output port is not known in OUTPUT unless the rule asks
        // for bridged traffic.
        if (self.out_dev.is_some() || self.is_out.is_some()) && self.is_bridged != Some(false) {
            hooks::ALL & !hooks::OUTPUT
        } else {
            hooks::ALL
        }
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("rtrouter bridges nothing: -m physdev matches only when every option is negated (as for an unbridged packet)")
    }

    fn compile(&self, _: &CompileEnv) -> bool {
        // No bridge information: a match exactly when every given option is negated.
        let all_negated = [
            self.in_dev.as_ref().map(|x| x.0),
            self.out_dev.as_ref().map(|x| x.0),
            self.is_in,
            self.is_out,
            self.is_bridged,
        ]
        .into_iter()
        .flatten()
        .all(|inv| inv);
        all_negated
    }

    fn test(m: &bool, _: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        *m
    }
}
