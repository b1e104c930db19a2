//! `-m realm` (`libipt_realm.c`, `xt_realm.c`): the routing realm of the packet's route
//! (`dst->tclassid`) under a mask. rtrouter's routes carry no realm, so every packet's realm
//! is 0, as on a host whose routes set none. Names are looked up in
//! `/etc/iproute2/rt_realms` as iptables does, and printed back from it.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::{lmap_id, lmap_name, strtoul};
use crate::ruleset::{hooks, HookMask};
use std::fmt::Write as _;

pub(super) const RT_REALMS: &str = "/etc/iproute2/rt_realms";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Realm {
    pub inv: bool,
    pub id: u32,
    pub mask: u32,
}

/// `ID[/MASK]` as `strtoul` reads each part (base from the prefix), or a name from `file`.
pub(super) fn parse_id_mask(v: &str, file: &str) -> Option<(u32, u32)> {
    match strtoul(v) {
        Some((id, "")) => Some((id, u32::MAX)),
        Some((id, rest)) if rest.starts_with('/') => match strtoul(&rest[1..]) {
            Some((mask, "")) => Some((id, mask)),
            _ => None,
        },
        _ => lmap_id(file, v).map(|id| (id, u32::MAX)),
    }
}

/// `0xID/0xMASK`, or with a full mask the name `file` gives the id, else `0xID`.
pub(super) fn print_id_mask(out: &mut String, id: u32, mask: u32, file: &str) {
    if mask != u32::MAX {
        let _ = write!(out, "{id:#x}/{mask:#x}");
    } else if let Some(name) = lmap_name(file, id) {
        out.push_str(&name);
    } else {
        let _ = write!(out, "{id:#x}");
    }
}

impl MatchExt for Realm {
    type Builder = Option<Realm>;
    type Compiled = Realm;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["realm"];

    fn option(b: &mut Option<Realm>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "realm" {
            return Ok(false);
        }
        c.once(b, "--realm")?;
        let v = c.value_inv("--realm", &mut inv)?;
        let Some((id, mask)) = parse_id_mask(&v, RT_REALMS) else {
            return c.err_value(format!("Realm \"{v}\" not found"));
        };
        *b = Some(Realm { inv, id, mask });
        Ok(true)
    }

    fn finish(b: Option<Realm>, _: RuleProto) -> Result<Realm, String> {
        b.ok_or_else(|| "realm: --realm is required".into())
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, "{} --realm ", bang(self.inv));
        print_id_mask(out, self.id, self.mask, RT_REALMS);
    }

    fn hooks(&self) -> HookMask {
        hooks::POSTROUTING | hooks::FORWARD | hooks::OUTPUT | hooks::INPUT
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("rtrouter's routes carry no realm: every packet's realm is 0")
    }

    fn compile(&self, _: &CompileEnv) -> Realm {
        *self
    }

    fn test(m: &Realm, _: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let realm = 0u32;
        (m.id == realm & m.mask) != m.inv
    }
}
