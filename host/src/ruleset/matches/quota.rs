//! `-m quota` (`libxt_quota.c`, `xt_quota.c`): matches until a number of bytes has passed,
//! counting the packets it matches; then never (negated: the other way round). Each rule's
//! quota is its own and starts full with the rule (a rule that stays across a change keeps
//! what is left of it, as in the kernel).

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub inv: bool,
    pub bytes: u64,
}

#[derive(Debug)]
pub struct Compiled {
    inv: bool,
    left: AtomicU64,
}

impl MatchExt for Quota {
    type Builder = Option<Quota>;
    type Compiled = Compiled;
    const SIDE_EFFECT: bool = true;
    const OPTIONS: &'static [&'static str] = &["quota"];

    fn option(q: &mut Option<Quota>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "quota" {
            return Ok(false);
        }
        c.once(q, "--quota")?;
        let v = c.value_inv("--quota", &mut inv)?;
        let Some(bytes) = parse_uint(&v, 0, u64::MAX) else {
            return c.err_value(format!("quota: bad --quota `{v}'"));
        };
        *q = Some(Quota { inv, bytes });
        Ok(true)
    }

    fn finish(q: Option<Quota>, _: RuleProto) -> Result<Quota, String> {
        q.ok_or_else(|| "quota: --quota is required".into())
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, "{} --quota {}", bang(self.inv), self.bytes);
    }

    fn compile(&self, _: &CompileEnv) -> Compiled {
        Compiled {
            inv: self.inv,
            left: AtomicU64::new(self.bytes),
        }
    }

    fn test(c: &Compiled, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let len = u64::from(p.h.total_len);
        // `quota_mt`: take the packet's bytes while they fit; once they do not, the quota is
        // spent (set to zero).
        let mut cur = c.left.load(Ordering::Relaxed);
        loop {
            let (next, hit) = if cur >= len { (cur - len, true) } else { (0, false) };
            match c
                .left
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return hit != c.inv,
                Err(v) => cur = v,
            }
        }
    }
}
