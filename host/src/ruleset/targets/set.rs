//! `SET` (`libxt_SET.c`, `xt_set.c`, revision 3): add the packet's addresses and ports to an
//! ipset (`--add-set NAME FLAGS`, with `--exist` to refresh an entry that is there and
//! `--timeout N` for the entry's lifetime) or delete them (`--del-set NAME FLAGS`), the flags
//! choosing `src` or `dst` per dimension as for `-m set`. The set changes at once, for every
//! rule and packet after; the target then continues.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ipset::{AddOpts, IpSet, SetType};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;

/// A set and its per-dimension flags (`true`: src).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetRef {
    pub name: String,
    pub dirs: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Set {
    pub add: Option<SetRef>,
    pub del: Option<SetRef>,
    pub exist: bool,
    pub timeout: Option<u32>,
}

fn set_ref(c: &mut Cursor, opt: &str) -> PResult<SetRef> {
    let name = c.value(opt)?;
    let Some(flags) = c.next_word() else {
        return c.err(format!("SET: {opt} needs a set name and flags (src,dst...)"));
    };
    let mut dirs = Vec::new();
    for f in flags.split(',') {
        match f {
            "src" => dirs.push(true),
            "dst" => dirs.push(false),
            _ => return c.err_value(format!("SET: bad flag `{f}' (src or dst)")),
        }
    }
    if dirs.len() > 6 {
        return c.err_value("SET: at most 6 dimensions");
    }
    Ok(SetRef { name, dirs })
}

fn save_ref(out: &mut String, opt: &str, r: &SetRef) {
    let dirs: Vec<&str> = r.dirs.iter().map(|d| if *d { "src" } else { "dst" }).collect();
    let _ = write!(out, " --{opt} {} {}", r.name, dirs.join(","));
}

impl Set {
    /// Applies one change to `set` for the packet.
    fn change(set: &IpSet, r: &SetRef, p: &Pkt, add: Option<AddOpts>, exist: bool, now: u64) {
        let (src, dst) = (p.h.src, p.h.dst);
        if r.dirs.len() < set.header.kind.dimensions() {
            return;
        }
        let ip = |d: bool| if d { src } else { dst };
        let (sport, dport) = p.h.ports().unwrap_or((0, 0));
        let port = |d: bool| if d { sport } else { dport };
        let key = match set.header.kind {
            SetType::BitmapPort => set.key_of(src, p.h.proto, port(r.dirs[0]), src),
            _ => set.key_of(
                ip(r.dirs[0]),
                p.h.proto,
                r.dirs.get(1).map_or(0, |&d| port(d)),
                r.dirs.get(2).map_or(src, |&d| ip(d)),
            ),
        };
        let Some(key) = key else { return };
        // A set that cannot take the entry (full, no timeouts) leaves the packet alone.
        let _ = match add {
            Some(o) => set.add(&[key], o, exist, now),
            None => set.del(&[key], true, now),
        };
    }
}

impl TargetExt for Set {
    type Builder = Set;
    const OPTIONS: &'static [&'static str] = &["add-set", "del-set", "exist", "timeout"];

    fn start() -> Set {
        Set::default()
    }

    fn option(s: &mut Set, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        match opt {
            "add-set" => {
                c.once(&s.add, "--add-set")?;
                s.add = Some(set_ref(c, "--add-set")?);
            }
            "del-set" => {
                c.once(&s.del, "--del-set")?;
                s.del = Some(set_ref(c, "--del-set")?);
            }
            "exist" => s.exist = true,
            _ => {
                let v = c.value("--timeout")?;
                s.timeout = Some(
                    parse_uint(&v, 0, 2_147_483).map_or_else(|| c.err_value(format!("SET: bad --timeout `{v}'")), Ok)?
                        as u32,
                );
            }
        }
        Ok(())
    }

    fn finish(s: Set, _: RuleProto, _: bool) -> Result<Set, String> {
        if s.add.is_none() && s.del.is_none() {
            return Err("SET: --add-set or --del-set is required".into());
        }
        if (s.exist || s.timeout.is_some()) && s.add.is_none() {
            return Err("SET: --exist and --timeout go with --add-set".into());
        }
        Ok(s)
    }

    fn save(&self, out: &mut String) {
        if let Some(a) = &self.add {
            save_ref(out, "add-set", a);
            if self.exist {
                out.push_str(" --exist");
            }
            if let Some(t) = self.timeout {
                let _ = write!(out, " --timeout {t}");
            }
        }
        if let Some(d) = &self.del {
            save_ref(out, "del-set", d);
        }
    }

    fn ipsets(&self) -> Vec<&str> {
        self.add.iter().chain(&self.del).map(|r| r.name.as_str()).collect()
    }

    fn rename_ipset(&mut self, from: &str, to: &str) -> bool {
        let mut any = false;
        for r in self.add.iter_mut().chain(self.del.iter_mut()) {
            if r.name == from {
                r.name = to.to_string();
                any = true;
            }
        }
        any
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, eng: &Engine) -> Option<Verdict> {
        if let Some(r) = &self.add {
            if let Some(set) = eng.ipsets().get_shared(&r.name) {
                let o = AddOpts {
                    timeout: self.timeout.filter(|_| set.header.timeout.is_some()),
                    ..AddOpts::default()
                };
                Self::change(&set, r, p, Some(o), self.exist, cx.now);
            }
        }
        if let Some(r) = &self.del {
            if let Some(set) = eng.ipsets().get_shared(&r.name) {
                Self::change(&set, r, p, None, false, cx.now);
            }
        }
        None
    }
}
