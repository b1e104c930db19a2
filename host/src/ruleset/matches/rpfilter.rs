//! `-m rpfilter` (`libxt_rpfilter.c`, `ipt_rpfilter.c`): reverse-path filtering. The packet's
//! source is looked up in the routing table as a destination: it passes when the route is a
//! unicast one (`--accept-local`: or one of the router's own addresses) that leaves through
//! the interface the packet came in on (`--loose`: through any interface). `--invert` negates.
//! `--validmark` would include the packet mark in the lookup; rtrouter's routing has no
//! mark-based rules, so the mark changes nothing. raw and mangle, PREROUTING.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::route::rtn;
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::{hooks, HookMask};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rpfilter {
    pub loose: bool,
    pub validmark: bool,
    pub accept_local: bool,
    pub invert: bool,
}

impl MatchExt for Rpfilter {
    type Builder = Rpfilter;
    type Compiled = Rpfilter;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["loose", "validmark", "accept-local", "invert"];

    fn option(r: &mut Rpfilter, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        let slot = match opt {
            "loose" => &mut r.loose,
            "validmark" => &mut r.validmark,
            "accept-local" => &mut r.accept_local,
            "invert" => &mut r.invert,
            _ => return Ok(false),
        };
        c.no_invert(inv, &format!("--{opt}"))?;
        *slot = true;
        Ok(true)
    }

    fn finish(r: Rpfilter, _: RuleProto) -> Result<Rpfilter, String> {
        Ok(r)
    }

    fn save(&self, out: &mut String) {
        for (set, opt) in [
            (self.loose, " --loose"),
            (self.validmark, " --validmark"),
            (self.accept_local, " --accept-local"),
            (self.invert, " --invert"),
        ] {
            if set {
                out.push_str(opt);
            }
        }
    }

    fn hooks(&self) -> HookMask {
        hooks::PREROUTING
    }

    fn compile(&self, _: &CompileEnv) -> Rpfilter {
        *self
    }

    fn test(r: &Rpfilter, p: &Pkt, cx: &mut Cx, _: &Engine) -> bool {
        let src = p.h.src;
        match (p.h.src, p.h.dst) {
            // Multicast destinations, and a zero source sending to broadcast or link-local
            // multicast (DHCP), are not checked (`rpfilter_mt`, IPv4).
            (IpAddr::V4(s), IpAddr::V4(d))
                if d.is_multicast() || (s.is_unspecified() && (d.is_broadcast() || d.octets()[..3] == [224, 0, 0])) =>
            {
                return !r.invert;
            }
            // ip6t_rpfilter: the unspecified source is not routable (the forward path drops
            // it); a link-local source is looked up on the interface it came in on, where its
            // prefix always is.
            (IpAddr::V6(s), _) if s.is_unspecified() || (s.segments()[0] & 0xffc0) == 0xfe80 => {
                return !r.invert;
            }
            _ => {}
        }
        let ok = match p.in_if {
            None => true,
            Some(dev) if cx.topo.is_local(src) => {
                r.accept_local && (r.loose || cx.topo.route(src).is_none_or(|h| h.iface == dev))
            }
            Some(dev) => {
                cx.topo.addr_type(src, None) == rtn::UNICAST
                    && cx.topo.route(src).is_some_and(|h| r.loose || h.iface == dev)
            }
        };
        ok != r.invert
    }
}
