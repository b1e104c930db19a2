//! `-m devgroup` (`libxt_devgroup.c`, `xt_devgroup.c`): the device group of the input and
//! output interfaces, under a mask. rtrouter's TUN interfaces are in group 0, the default a
//! Linux device starts in. Names come from `/etc/iproute2/group`, as in iptables.

use super::realm::{parse_id_mask, print_id_mask};
use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::{hooks, HookMask};
use std::fmt::Write as _;

const GROUP_FILE: &str = "/etc/iproute2/group";

/// One side's group and mask, with its `!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub inv: bool,
    pub id: u32,
    pub mask: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DevGroup {
    pub src: Option<Group>,
    pub dst: Option<Group>,
}

/// The group of every rtrouter interface.
const TUN_GROUP: u32 = 0;

fn holds(g: &Option<Group>, dev: Option<u32>) -> bool {
    match (g, dev) {
        (None, _) => true,
        // `xt_in(par)->group` on a hook without that device is not reachable: checkentry
        // keeps each side to the hooks that have it.
        (Some(_), None) => false,
        (Some(g), Some(group)) => ((g.id ^ group) & g.mask == 0) != g.inv,
    }
}

impl MatchExt for DevGroup {
    type Builder = DevGroup;
    type Compiled = DevGroup;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["src-group", "dst-group"];

    fn option(b: &mut DevGroup, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        let slot = match opt {
            "src-group" => &mut b.src,
            "dst-group" => &mut b.dst,
            _ => return Ok(false),
        };
        let name = format!("--{opt}");
        c.once(slot, &name)?;
        let v = c.value_inv(&name, &mut inv)?;
        let Some((id, mask)) = parse_id_mask(&v, GROUP_FILE) else {
            return c.err_value(format!("Device group \"{v}\" not found"));
        };
        *slot = Some(Group { inv, id, mask });
        Ok(true)
    }

    fn finish(b: DevGroup, _: RuleProto) -> Result<DevGroup, String> {
        if b.src.is_none() && b.dst.is_none() {
            return Err("devgroup match: You must specify either '--src-group' or '--dst-group'".into());
        }
        Ok(b)
    }

    fn save(&self, out: &mut String) {
        for (opt, g) in [("src-group", &self.src), ("dst-group", &self.dst)] {
            if let Some(g) = g {
                let _ = write!(out, "{} --{opt} ", bang(g.inv));
                print_id_mask(out, g.id, g.mask, GROUP_FILE);
            }
        }
    }

    fn hooks(&self) -> HookMask {
        let mut h = hooks::ALL;
        if self.src.is_some() {
            h &= hooks::PREROUTING | hooks::INPUT | hooks::FORWARD;
        }
        if self.dst.is_some() {
            h &= hooks::FORWARD | hooks::OUTPUT | hooks::POSTROUTING;
        }
        h
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("rtrouter's interfaces are all in device group 0")
    }

    fn compile(&self, _: &CompileEnv) -> DevGroup {
        *self
    }

    fn test(m: &DevGroup, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        holds(&m.src, p.in_if.map(|_| TUN_GROUP)) && holds(&m.dst, p.out_if.map(|_| TUN_GROUP))
    }
}
