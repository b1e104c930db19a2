//! `-m connlabel` (`libxt_connlabel.c`, `xt_connlabel.c`): one of the connection's 128 label
//! bits; with `--set` the bit is set when the packet gets there and the rule matches. A
//! packet without a connection matches only a negated rule. Names come from
//! `/etc/xtables/connlabel.conf` (`BIT NAME` lines) as in libnetfilter_conntrack; a label
//! without a name prints as its number, quoted, as iptables 1.8.9 prints it.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Ct, Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::{lmap_id, lmap_name, strtoul};
use std::fmt::Write as _;

const CONF: &str = "/etc/xtables/connlabel.conf";
/// `XT_CONNLABEL_MAXBIT`.
const MAX_BIT: u32 = 127;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLabel {
    pub inv: bool,
    pub bit: u8,
    pub set: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Builder {
    label: Option<(bool, u8)>,
    set: bool,
}

impl MatchExt for ConnLabel {
    type Builder = Builder;
    type Compiled = ConnLabel;
    const SIDE_EFFECT: bool = true;
    const OPTIONS: &'static [&'static str] = &["label", "set"];

    fn option(b: &mut Builder, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        match opt {
            "label" => {
                c.once(&b.label, "--label")?;
                let v = c.value_inv("--label", &mut inv)?;
                let bit = match strtoul(&v) {
                    Some((n, "")) => Some(n),
                    _ => lmap_id(CONF, &v),
                };
                match bit {
                    Some(n) if n <= MAX_BIT => b.label = Some((inv, n as u8)),
                    Some(n) => return c.err_value(format!("connlabel: bit {n} is above {MAX_BIT}")),
                    None => return c.err_value(format!("label '{v}' not found or invalid value")),
                }
            }
            "set" => {
                c.no_invert(inv, "--set")?;
                b.set = true;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(b: Builder, _: RuleProto) -> Result<ConnLabel, String> {
        let (inv, bit) = b.label.ok_or("connlabel: --label is required")?;
        Ok(ConnLabel { inv, bit, set: b.set })
    }

    fn save(&self, out: &mut String) {
        let name = lmap_name(CONF, u32::from(self.bit)).unwrap_or_else(|| self.bit.to_string());
        let _ = write!(out, "{} --label \"{name}\"", bang(self.inv));
        if self.set {
            out.push_str(" --set");
        }
    }

    fn compile(&self, _: &CompileEnv) -> ConnLabel {
        *self
    }

    fn test(m: &ConnLabel, p: &Pkt, cx: &mut Cx, _: &Engine) -> bool {
        // `connlabel_mt`.
        let Ct::Tracked(ct) = &p.ct else { return m.inv };
        let bit = 1u128 << m.bit;
        if (ct.labels | cx.labels_set) & bit != 0 {
            return !m.inv;
        }
        if m.set {
            cx.labels_set |= bit;
            return !m.inv;
        }
        m.inv
    }
}
