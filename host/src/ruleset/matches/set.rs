//! `-m set` (`libxt_set.c`, `xt_set.c`, `ip_set_core.c`): membership of the packet's
//! addresses and ports, chosen by the `src`/`dst` flags dimension by dimension, in an ipset.
//! The set is resolved when the rule is compiled; its members change live (`ipset add`).
//! As `ip_set_test`: fewer flags than the set has dimensions, or a packet of another family,
//! is "not in the set" (so `!` matches it).

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ipset::{IpSet, SetType};
use crate::ruleset::ext::{bang, Cursor, PResult};
use std::fmt::Write as _;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct SetMatch {
    pub inv: bool,
    pub name: String,
    /// Per dimension: `true` = source, `false` = destination.
    pub dirs: Vec<bool>,
}

#[derive(Debug)]
pub struct Compiled {
    /// `None` when the generation has no such set (validation refuses that; a set can still
    /// be missing from an engine built by hand): the match then never holds.
    set: Option<Arc<IpSet>>,
    dirs: Vec<bool>,
    inv: bool,
}

impl MatchExt for SetMatch {
    type Builder = Option<SetMatch>;
    type Compiled = Compiled;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["match-set"];

    fn option(s: &mut Option<SetMatch>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "match-set" {
            return Ok(false);
        }
        c.once(s, "--match-set")?;
        let set = c.value_inv("--match-set", &mut inv)?;
        let Some(dirs) = c.next_word() else {
            return c.err("--match-set requires two arguments: NAME src|dst[,...]");
        };
        let mut v = Vec::new();
        for d in dirs.split(',') {
            match d {
                "src" => v.push(true),
                "dst" => v.push(false),
                _ => return c.err_value(format!("set: bad direction `{d}' (src or dst)")),
            }
        }
        if v.len() > 6 {
            return c.err_value("set: at most 6 dimensions");
        }
        *s = Some(SetMatch {
            inv,
            name: set,
            dirs: v,
        });
        Ok(true)
    }

    fn finish(s: Option<SetMatch>, _: RuleProto) -> Result<SetMatch, String> {
        s.ok_or_else(|| "set: --match-set is required".into())
    }

    fn save(&self, out: &mut String) {
        let dirs: Vec<&str> = self.dirs.iter().map(|d| if *d { "src" } else { "dst" }).collect();
        let _ = write!(out, "{} --match-set {} {}", bang(self.inv), self.name, dirs.join(","));
    }

    fn ipsets(&self) -> Vec<&str> {
        vec![self.name.as_str()]
    }

    fn rename_ipset(&mut self, from: &str, to: &str) -> bool {
        if self.name == from {
            self.name = to.to_string();
            return true;
        }
        false
    }

    fn compile(&self, env: &CompileEnv) -> Compiled {
        Compiled {
            set: env.ipsets.get_shared(&self.name),
            dirs: self.dirs.clone(),
            inv: self.inv,
        }
    }

    fn test(c: &Compiled, p: &Pkt, cx: &mut Cx, _: &Engine) -> bool {
        let Some(set) = &c.set else { return false };
        let kind = set.header.kind;
        if c.dirs.len() < kind.dimensions() {
            return c.inv;
        }
        let (src, dst) = (p.h.src, p.h.dst);
        let ip = |d: bool| if d { src } else { dst };
        let (sport, dport) = p.h.ports().unwrap_or((0, 0));
        let port = |d: bool| if d { sport } else { dport };
        let hit = match kind {
            SetType::BitmapPort => set.lookup(src, p.h.proto, port(c.dirs[0]), src, u64::from(p.h.total_len), cx.now),
            _ => set.lookup(
                ip(c.dirs[0]),
                p.h.proto,
                c.dirs.get(1).map_or(0, |&d| port(d)),
                c.dirs.get(2).map_or(src, |&d| ip(d)),
                u64::from(p.h.total_len),
                cx.now,
            ),
        };
        hit != c.inv
    }
}
