//! `-m ecn` (`libxt_ecn.c`, `xt_ecn.c`): the ECN bits of the IP header (`--ecn-ip-ect`) and
//! TCP's ECE and CWR flags, each test negatable.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::packet::L4;
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ecn {
    /// Each test with its `!`.
    pub ece: Option<bool>,
    pub cwr: Option<bool>,
    pub ect: Option<(bool, u8)>,
}

impl MatchExt for Ecn {
    type Builder = Ecn;
    type Compiled = Ecn;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["ecn-tcp-cwr", "ecn-tcp-ece", "ecn-ip-ect"];

    fn option(e: &mut Ecn, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        match opt {
            "ecn-tcp-ece" => {
                c.once(&e.ece, "--ecn-tcp-ece")?;
                e.ece = Some(inv);
            }
            "ecn-tcp-cwr" => {
                c.once(&e.cwr, "--ecn-tcp-cwr")?;
                e.cwr = Some(inv);
            }
            "ecn-ip-ect" => {
                c.once(&e.ect, "--ecn-ip-ect")?;
                let v = c.value_inv("--ecn-ip-ect", &mut inv)?;
                let Some(n) = parse_uint(&v, 0, 3) else {
                    return c.err_value(format!("ecn: --ecn-ip-ect `{v}' must be 0 to 3"));
                };
                e.ect = Some((inv, n as u8));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(e: Ecn, p: RuleProto) -> Result<Ecn, String> {
        if e == Ecn::default() {
            return Err("ecn: no ECN option given".into());
        }
        if e.ece.is_some() || e.cwr.is_some() {
            p.require(6, "ecn --ecn-tcp-ece/--ecn-tcp-cwr")?;
        }
        Ok(e)
    }

    fn save(&self, out: &mut String) {
        if let Some(inv) = self.ece {
            let _ = write!(out, "{} --ecn-tcp-ece", bang(inv));
        }
        if let Some(inv) = self.cwr {
            let _ = write!(out, "{} --ecn-tcp-cwr", bang(inv));
        }
        if let Some((inv, n)) = self.ect {
            let _ = write!(out, "{} --ecn-ip-ect {n}", bang(inv));
        }
    }

    fn compile(&self, _: &CompileEnv) -> Ecn {
        *self
    }

    fn test(e: &Ecn, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        if let Some((inv, n)) = e.ect {
            if (p.h.tos & 0x03 == n) == inv {
                return false;
            }
        }
        if e.ece.is_some() || e.cwr.is_some() {
            let L4::Tcp(t) = p.h.l4 else { return false };
            for (want, bit) in [(e.ece, 0x40u8), (e.cwr, 0x80u8)] {
                if let Some(inv) = want {
                    if (t.flags & bit != 0) == inv {
                        return false;
                    }
                }
            }
        }
        true
    }
}
