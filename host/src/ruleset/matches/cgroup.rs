//! `-m cgroup` (`libxt_cgroup.c`, `xt_cgroup.c` revisions 1 and 2): the control group of the
//! local socket a packet belongs to — `--path`, a cgroup2 path the socket's cgroup is at or
//! below (`cgroup_is_descendant`), or `--cgroup`, its net_cls class id.
//!
//! In rtrouter the only local sender is the router itself (its REJECT replies, ICMP errors and
//! local stack), as for `-m owner`: a packet the router sends belongs to the router process's
//! cgroup (`/proc/self/cgroup`) and net_cls class id (0 where net_cls is not mounted, as in the
//! kernel); forwarded packets, and packets arriving for the router (no socket is attached to
//! them by early demux here), have no socket, and then the match fails, `!` or not
//! (`cgroup_mt_v1`). Loading checks what `cgroup_mt_check_v1` checks: exactly one of the two
//! options, and a path that exists in the cgroup2 hierarchy (looked up under the cgroup2 mount
//! point; the root always exists).

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::{save_string, strtoul};
use crate::ruleset::{hooks, HookMask};
use std::fmt::Write as _;

/// `XT_CGROUP_PATH_MAX`.
const PATH_MAX: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cgroup {
    /// `--path`, with its `!`.
    pub path: Option<(bool, String)>,
    /// `--cgroup`, with its `!`.
    pub classid: Option<(bool, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    m: Cgroup,
    /// The path's components.
    path: Vec<String>,
    /// The router process's cgroup2 path, as components.
    own: Vec<String>,
    own_classid: u32,
}

/// The components of a cgroup path, as `kernfs_walk_ns` splits it (empty ones skipped).
fn components(p: &str) -> Vec<String> {
    p.split('/').filter(|c| !c.is_empty()).map(str::to_string).collect()
}

/// Where the cgroup2 hierarchy is mounted (`/proc/self/mountinfo`).
fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (post.split(' ').next()? == "cgroup2").then(|| pre.split(' ').nth(4).map(std::path::PathBuf::from))?
    })
}

/// The router process's cgroup2 path (the `0::PATH` line of `/proc/self/cgroup`).
fn own_path() -> String {
    std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("0::").map(str::to_string)))
        .unwrap_or_else(|| "/".into())
}

/// The router process's net_cls class id: 0 unless the net_cls controller is mounted and
/// gives the process's group one.
fn own_classid() -> u32 {
    let Some(rel) = std::fs::read_to_string("/proc/self/cgroup").ok().and_then(|t| {
        t.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
            ctl.split(',').any(|c| c == "net_cls").then(|| path.to_string())
        })
    }) else {
        return 0;
    };
    ["/sys/fs/cgroup/net_cls", "/sys/fs/cgroup/net_cls,net_prio"]
        .iter()
        .find_map(|m| {
            let f = std::path::Path::new(m)
                .join(rel.trim_start_matches('/'))
                .join("net_cls.classid");
            std::fs::read_to_string(f).ok()?.trim().parse().ok()
        })
        .unwrap_or(0)
}

impl MatchExt for Cgroup {
    type Builder = Cgroup;
    type Compiled = Compiled;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["path", "cgroup"];

    fn option(b: &mut Cgroup, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        match opt {
            "path" => {
                c.once(&b.path, "--path")?;
                let v = c.value_inv("--path", &mut inv)?;
                if v.len() >= PATH_MAX {
                    return c.err_value(format!("cgroup: --path is longer than {} bytes", PATH_MAX - 1));
                }
                b.path = Some((inv, v));
            }
            "cgroup" => {
                c.once(&b.classid, "--cgroup")?;
                let v = c.value_inv("--cgroup", &mut inv)?;
                let Some((id, "")) = strtoul(&v) else {
                    return c.err_value("cgroup: bad value for option \"--cgroup\", or out of range (0-4294967295).");
                };
                b.classid = Some((inv, id));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(b: Cgroup, _: RuleProto) -> Result<Cgroup, String> {
        match (&b.path, b.classid) {
            (None, None) => Err("cgroup: no path or classid specified (the kernel refuses the rule)".into()),
            (Some(_), Some(_)) => {
                Err("cgroup: --path and --cgroup cannot be used together (the kernel refuses the rule)".into())
            }
            (Some((_, p)), None) => {
                if !components(p).is_empty() {
                    let exists = cgroup2_mount().is_some_and(|m| m.join(p.trim_start_matches('/')).is_dir());
                    if !exists {
                        return Err(format!(
                            "cgroup: --path `{p}' is not a group of the cgroup2 hierarchy (the kernel refuses the rule)"
                        ));
                    }
                }
                Ok(b)
            }
            (None, Some(_)) => Ok(b),
        }
    }

    fn save(&self, out: &mut String) {
        if let Some((inv, p)) = &self.path {
            let _ = write!(out, "{} --path {}", bang(*inv), save_string(p));
        }
        if let Some((inv, id)) = self.classid {
            let _ = write!(out, "{} --cgroup {id}", bang(inv));
        }
    }

    fn hooks(&self) -> HookMask {
        hooks::OUTPUT | hooks::POSTROUTING | hooks::INPUT
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("the only local sender is the router itself: -m cgroup sees its own packets as from the router process's cgroup; forwarded packets and packets for the router have no socket and never match")
    }

    fn compile(&self, _: &CompileEnv) -> Compiled {
        Compiled {
            path: self.path.as_ref().map(|(_, p)| components(p)).unwrap_or_default(),
            own: components(&own_path()),
            own_classid: own_classid(),
            m: self.clone(),
        }
    }

    fn test(c: &Compiled, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        if p.in_if.is_some() {
            return false;
        }
        match (&c.m.path, c.m.classid) {
            (Some((inv, _)), _) => c.own.starts_with(&c.path) != *inv,
            (None, Some((inv, id))) => (id == c.own_classid) != inv,
            (None, None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_by_whole_components() {
        let own = components("/system.slice/rtrouter.service");
        for (p, want) in [
            ("/", true),
            ("", true),
            ("//", true),
            ("/system.slice", true),
            ("system.slice/", true),
            ("/system.slice/rtrouter.service", true),
            ("/system", false),
            ("/system.slice/rtrouter", false),
            ("/user.slice", false),
        ] {
            assert_eq!(own.starts_with(&components(p)), want, "{p}");
        }
    }
}
