//! `-m owner` (`libxt_owner.c`, `xt_owner.c`): the local socket that sent a packet — its
//! owner's uid and gid, or whether there is one at all.
//!
//! In rtrouter the only local sender is the router itself (its REJECT replies, ICMP errors and
//! local stack), so a packet the router sends has a "socket" owned by the router process's
//! effective uid and gid, and a forwarded packet has none. Without a socket, `owner_mt`
//! matches exactly when every option the rule gives is negated; so does this module. User
//! and group names are looked up in `/etc/passwd` and `/etc/group` when the rule is loaded.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::{hooks, HookMask};
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Owner {
    /// Each with its `!`.
    pub uid: Option<(bool, u32, u32)>,
    pub gid: Option<(bool, u32, u32)>,
    pub socket_exists: Option<bool>,
    /// `--suppl-groups`: the gid range may match a supplementary group too.
    pub suppl: bool,
}

/// The id of `name` in a passwd- or group-style file (`name:x:id:...`).
fn lookup(file: &str, name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// `ID`, `ID-ID` or a name.
fn parse_ids(v: &str, file: &str) -> Option<(u32, u32)> {
    let num = |s: &str| s.parse::<u32>().ok();
    if let Some((a, b)) = v.split_once('-') {
        let (a, b) = (num(a)?, num(b)?);
        return (a <= b).then_some((a, b));
    }
    let id = num(v).or_else(|| lookup(file, v))?;
    Some((id, id))
}

fn save_ids(out: &mut String, opt: &str, (inv, a, b): (bool, u32, u32)) {
    let _ = write!(out, "{} --{opt} {a}", bang(inv));
    if a != b {
        let _ = write!(out, "-{b}");
    }
}

/// What the router's own packets are sent as.
#[derive(Debug, Clone, Copy)]
pub struct Compiled {
    m: Owner,
    uid: u32,
    gid: u32,
}

impl MatchExt for Owner {
    type Builder = Owner;
    type Compiled = Compiled;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["uid-owner", "gid-owner", "socket-exists", "suppl-groups"];

    fn option(o: &mut Owner, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        match opt {
            "uid-owner" | "gid-owner" => {
                let name = format!("--{opt}");
                let (slot, file) = if opt == "uid-owner" {
                    (&mut o.uid, "/etc/passwd")
                } else {
                    (&mut o.gid, "/etc/group")
                };
                c.once(slot, &name)?;
                let v = c.value_inv(&name, &mut inv)?;
                let Some((a, b)) = parse_ids(&v, file) else {
                    return c.err_value(format!("owner: bad {} `{v}'", &opt[..3]));
                };
                *slot = Some((inv, a, b));
            }
            "socket-exists" => {
                c.once(&o.socket_exists, "--socket-exists")?;
                o.socket_exists = Some(inv);
            }
            "suppl-groups" => {
                c.no_invert(inv, "--suppl-groups")?;
                if o.gid.is_none() {
                    return c.err("owner: --suppl-groups requires --gid-owner before it");
                }
                o.suppl = true;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(o: Owner, _: RuleProto) -> Result<Owner, String> {
        if o.uid.is_none() && o.gid.is_none() && o.socket_exists.is_none() {
            return Err("owner: no owner option given".into());
        }
        Ok(o)
    }

    fn save(&self, out: &mut String) {
        if let Some(u) = self.uid {
            save_ids(out, "uid-owner", u);
        }
        if let Some(g) = self.gid {
            save_ids(out, "gid-owner", g);
        }
        if let Some(inv) = self.socket_exists {
            let _ = write!(out, "{} --socket-exists", bang(inv));
        }
        if self.suppl {
            out.push_str(" --suppl-groups");
        }
    }

    fn hooks(&self) -> HookMask {
        hooks::OUTPUT | hooks::POSTROUTING
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("the only local sender is the router itself: -m owner sees its own packets as owned by its uid and gid; forwarded packets have no owner")
    }

    fn compile(&self, _: &CompileEnv) -> Compiled {
        Compiled {
            m: *self,
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }
    }

    fn test(c: &Compiled, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let m = &c.m;
        if p.in_if.is_some() {
            // Forwarded: no socket. Every given option must be negated.
            let invs = [m.uid.map(|x| x.0), m.gid.map(|x| x.0), m.socket_exists];
            return invs.into_iter().flatten().all(|inv| inv);
        }
        if m.socket_exists == Some(true) {
            return false;
        }
        if let Some((inv, a, b)) = m.uid {
            if (a..=b).contains(&c.uid) == inv {
                return false;
            }
        }
        if let Some((inv, a, b)) = m.gid {
            if (a..=b).contains(&c.gid) == inv {
                return false;
            }
        }
        true
    }
}
