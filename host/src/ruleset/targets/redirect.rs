//! `REDIRECT` (`libxt_REDIRECT.c`, `nf_nat_redirect.c`): DNAT to the router itself. nat
//! table, PREROUTING and OUTPUT.

use super::nat::{nat, ports_option, NatRange};
use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::{hooks, Hook, HookMask, TableKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redirect(pub NatRange);

impl TargetExt for Redirect {
    type Builder = NatRange;

    fn start() -> NatRange {
        NatRange::default()
    }

    const OPTIONS: &'static [&'static str] = &["to-ports", "random"];

    fn option(r: &mut NatRange, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        ports_option(r, opt, c)
    }

    fn finish(r: NatRange, p: RuleProto, _: bool) -> Result<Redirect, String> {
        r.check("REDIRECT", p)?;
        Ok(Redirect(r))
    }

    fn save(&self, out: &mut String) {
        self.0.save_ports(out);
    }

    fn list(&self, out: &mut String, _: bool) {
        self.0.list_ports(" redir ports ", out);
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Nat]
    }

    fn hooks(&self) -> HookMask {
        hooks::PREROUTING | hooks::OUTPUT
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, _: &Engine) -> Option<Verdict> {
        // To the ingress interface's primary address, or the loopback address for locally
        // generated packets (`nf_nat_redirect_ipv4`; `nf_nat_redirect_ipv6` takes an address of
        // the ingress interface too).
        let a = match (cx.hook == Hook::Output, p.h.is_v4()) {
            (true, true) => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            (true, false) => Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            (false, true) => p
                .in_if
                .and_then(|i| cx.topo.iface(i).v4_addr_toward(None))
                .map(IpAddr::V4),
            (false, false) => p.in_if.and_then(|i| match p.h.src {
                IpAddr::V6(s) => cx.topo.iface(i).v6_addr_toward(s).map(IpAddr::V6),
                IpAddr::V4(_) => None,
            }),
        };
        Some(nat(p, cx, &self.0, true, false, Some(a)))
    }
}
