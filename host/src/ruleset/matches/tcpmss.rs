//! `-m tcpmss` (`libxt_tcpmss.c`, `xt_tcpmss.c`): the MSS option of a TCP packet (a SYN's).
//! A packet without the option matches only a negated rule, as `tcpmss_mt` decides.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::packet::L4;
use crate::ruleset::ext::{Cursor, Neg, PResult};
use crate::ruleset::value::Range16;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpMss(pub Neg<Range16>);

/// The MSS option's value, if the TCP header of `p` carries one.
fn mss_of(p: &Pkt) -> Option<u16> {
    let L4::Tcp(t) = p.h.l4 else { return None };
    let start = usize::from(p.h.l4_off) + 20;
    let end = usize::from(p.h.l4_off) + usize::from(t.hdr_len);
    let opts = p.buf.get(start..end)?;
    let mut i = 0;
    while i < opts.len() {
        let kind = opts[i];
        if kind == 2 && opts.len() - i >= 4 && opts.get(i + 1) == Some(&4) {
            return Some(u16::from_be_bytes([opts[i + 2], opts[i + 3]]));
        }
        if kind < 2 {
            i += 1;
        } else {
            i += usize::from(*opts.get(i + 1).unwrap_or(&1)).max(1);
        }
    }
    None
}

impl MatchExt for TcpMss {
    type Builder = Option<Neg<Range16>>;
    type Compiled = Neg<Range16>;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["mss"];

    fn option(m: &mut Option<Neg<Range16>>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "mss" {
            return Ok(false);
        }
        c.once(m, "--mss")?;
        let v = c.value_inv("--mss", &mut inv)?;
        match Range16::parse(&v, None) {
            Some(r) if r.lo <= r.hi => *m = Some(Neg::new(inv, r)),
            _ => return c.err_value(format!("tcpmss: bad --mss `{v}' (VALUE or FROM:TO, 0 to 65535)")),
        }
        Ok(true)
    }

    fn finish(m: Option<Neg<Range16>>, p: RuleProto) -> Result<TcpMss, String> {
        p.require(6, "tcpmss")?;
        Ok(TcpMss(m.ok_or("tcpmss: --mss is required")?))
    }

    fn save(&self, out: &mut String) {
        let r = self.0.v;
        let _ = write!(out, "{} --mss {}", self.0.bang(), r.lo);
        if r.hi != r.lo {
            let _ = write!(out, ":{}", r.hi);
        }
    }

    fn compile(&self, _: &CompileEnv) -> Neg<Range16> {
        self.0
    }

    fn test(m: &Neg<Range16>, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        match mss_of(p) {
            Some(v) => m.holds(m.v.contains(v)),
            None => m.inv,
        }
    }
}
