//! `-m recent` (`libxt_recent.c`, `xt_recent.c`): named lists of recently seen addresses,
//! shared by every rule that names them and kept across rule swaps. Every command may change
//! the list (`--rcheck` with `--reap` too), so the match is a side effect.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::state::{self, RecentList};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::{parse_ipv4, parse_uint};
use crate::ruleset::Family;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecentCmd {
    Set,
    Check,
    Update,
    Remove,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recent {
    pub inv: bool,
    pub cmd: RecentCmd,
    pub name: String,
    pub seconds: u32,
    pub reap: bool,
    pub hitcount: u32,
    pub rttl: bool,
    /// Of the ruleset's family: all ones unless `--mask`.
    pub mask: IpAddr,
    /// `true` = `--rsource` (the default), `false` = `--rdest`.
    pub source: bool,
}

/// The largest `--hitcount` the kernel accepts (`XT_RECENT_MAX_NSTAMPS - 1`).
pub const RECENT_MAX_HITCOUNT: u32 = 255;

#[derive(Debug, Clone)]
pub struct Builder {
    r: Recent,
    cmd: Option<RecentCmd>,
    side: Option<bool>,
    mask: Option<IpAddr>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            r: Recent {
                inv: false,
                cmd: RecentCmd::Check,
                name: "DEFAULT".into(),
                seconds: 0,
                reap: false,
                hitcount: 0,
                rttl: false,
                mask: IpAddr::V4(Ipv4Addr::BROADCAST),
                source: true,
            },
            cmd: None,
            mask: None,
            side: None,
        }
    }
}

#[derive(Debug)]
pub struct Compiled {
    r: Recent,
    list: Arc<RecentList>,
}

impl MatchExt for Recent {
    type Builder = Builder;
    type Compiled = Compiled;
    const SIDE_EFFECT: bool = true;
    const OPTIONS: &'static [&'static str] = &[
        "set", "rcheck", "update", "remove", "seconds", "reap", "hitcount", "rttl", "name", "rsource", "rdest", "mask",
    ];

    fn option(b: &mut Builder, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        let name = format!("--{opt}");
        let name = name.as_str();
        let set_cmd = |cmd: &mut Option<RecentCmd>, new: RecentCmd, c: &Cursor| {
            if cmd.is_some() {
                return c.err("recent: only one of --set, --rcheck, --update or --remove allowed");
            }
            *cmd = Some(new);
            Ok(())
        };
        if inv {
            b.r.inv = true;
        }
        let r = &mut b.r;
        match opt {
            "set" => set_cmd(&mut b.cmd, RecentCmd::Set, c)?,
            "rcheck" => set_cmd(&mut b.cmd, RecentCmd::Check, c)?,
            "update" => set_cmd(&mut b.cmd, RecentCmd::Update, c)?,
            "remove" => set_cmd(&mut b.cmd, RecentCmd::Remove, c)?,
            "seconds" => {
                let v = c.value(name)?;
                r.seconds = parse_uint(&v, 1, u32::MAX.into())
                    .map_or_else(|| c.err_value(format!("recent: bad --seconds `{v}'")), Ok)?
                    as u32;
            }
            "hitcount" => {
                let v = c.value(name)?;
                r.hitcount = parse_uint(&v, 1, RECENT_MAX_HITCOUNT.into()).map_or_else(
                    || c.err_value(format!("recent: --hitcount `{v}' must be 1..{RECENT_MAX_HITCOUNT}")),
                    Ok,
                )? as u32;
            }
            "reap" => r.reap = true,
            "rttl" => r.rttl = true,
            "name" => {
                let v = c.value(name)?;
                if v.is_empty() || v.len() > 200 || !v.bytes().all(|b| b.is_ascii_graphic()) {
                    return c.err_value(format!("recent: bad list name `{v}'"));
                }
                r.name = v;
            }
            "mask" => {
                let v = c.value(name)?;
                let m = match c.family {
                    Family::V4 => parse_ipv4(&v).map(IpAddr::V4),
                    Family::V6 => v.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
                };
                b.mask = Some(m.map_or_else(|| c.err_value(format!("recent: bad --mask `{v}'")), Ok)?);
            }
            "rsource" | "rdest" => {
                if b.side.is_some() {
                    return c.err("recent: only one of --rsource or --rdest allowed");
                }
                b.side = Some(opt == "rsource");
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(b: Builder, p: RuleProto) -> Result<Recent, String> {
        let mut r = b.r;
        r.mask = b.mask.unwrap_or(match p.family {
            Family::V4 => IpAddr::V4(Ipv4Addr::BROADCAST),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(u128::MAX)),
        });
        r.cmd = b
            .cmd
            .ok_or("recent: one of --set, --rcheck, --update or --remove is required")?;
        r.source = b.side.unwrap_or(true);
        let checks = matches!(r.cmd, RecentCmd::Check | RecentCmd::Update);
        if (r.seconds != 0 || r.hitcount != 0 || r.rttl) && !checks {
            return Err("recent: --seconds, --hitcount and --rttl need --rcheck or --update".into());
        }
        if r.reap && r.seconds == 0 {
            return Err("recent: --reap needs --seconds".into());
        }
        Ok(r)
    }

    fn save(&self, out: &mut String) {
        let r = self;
        out.push_str(bang(r.inv));
        out.push_str(match r.cmd {
            RecentCmd::Set => " --set",
            RecentCmd::Check => " --rcheck",
            RecentCmd::Update => " --update",
            RecentCmd::Remove => " --remove",
        });
        if r.seconds != 0 {
            let _ = write!(out, " --seconds {}", r.seconds);
        }
        if r.reap {
            out.push_str(" --reap");
        }
        if r.hitcount != 0 {
            let _ = write!(out, " --hitcount {}", r.hitcount);
        }
        if r.rttl {
            out.push_str(" --rttl");
        }
        let _ = write!(out, " --name {} --mask {}", r.name, r.mask);
        out.push_str(if r.source { " --rsource" } else { " --rdest" });
    }

    fn compile(&self, env: &CompileEnv) -> Compiled {
        Compiled {
            r: self.clone(),
            list: env.shared.recent(&self.name),
        }
    }

    fn test(c: &Compiled, p: &Pkt, cx: &mut Cx, eng: &Engine) -> bool {
        recent_mt(&c.r, &c.list, p, cx.now, eng.recent_keep())
    }
}

/// `xt_recent`: look the address up in the named list and act on it.
fn recent_mt(r: &Recent, list: &RecentList, p: &Pkt, now: u64, keep: usize) -> bool {
    let addr = if r.source { p.h.src } else { p.h.dst };
    let addr = match (addr, r.mask) {
        (IpAddr::V4(v), IpAddr::V4(m)) => IpAddr::V4((u32::from(v) & u32::from(m)).into()),
        (IpAddr::V6(v), IpAddr::V6(m)) => IpAddr::V6((u128::from(v) & u128::from(m)).into()),
        (a, _) => a,
    };
    let ttl = if r.rttl { p.h.ttl } else { 0 };
    let mut map = state::lock(&list.entries);
    let mut ret = r.inv;
    if r.cmd == RecentCmd::Set {
        RecentList::touch(&mut map, addr, now, ttl, keep);
        return !ret;
    }
    let Some(e) = map.get_mut(&addr).filter(|e| !r.rttl || e.ttl == ttl) else {
        return ret;
    };
    match r.cmd {
        RecentCmd::Remove => {
            map.remove(&addr);
            return !ret;
        }
        RecentCmd::Check | RecentCmd::Update => {
            let window = u64::from(r.seconds) * 1_000_000_000;
            let since = now.saturating_sub(window);
            let mut hits = 0;
            for &s in &e.stamps {
                if r.seconds != 0 && s < since {
                    continue;
                }
                hits += 1;
                if r.hitcount == 0 || hits >= r.hitcount {
                    ret = !ret;
                    break;
                }
            }
            if r.reap && r.seconds != 0 {
                e.stamps.retain(|&s| s >= since);
            }
            let matched = ret != r.inv;
            let empty = e.stamps.is_empty();
            if r.cmd == RecentCmd::Update && matched {
                RecentList::touch(&mut map, addr, now, ttl, keep);
            } else if empty {
                map.remove(&addr);
            }
        }
        RecentCmd::Set => {}
    }
    ret
}
