//! `MASQUERADE` (`libipt_MASQUERADE.c`, `nf_nat_masquerade.c`): SNAT to the address of the
//! interface the packet leaves through. nat table, POSTROUTING.

use super::nat::{nat, ports_option, NatRange};
use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::{hooks, HookMask, TableKind};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Masquerade(pub NatRange);

impl TargetExt for Masquerade {
    type Builder = NatRange;

    fn start() -> NatRange {
        NatRange::default()
    }

    const OPTIONS: &'static [&'static str] = &["to-ports", "random", "random-fully"];

    fn option(r: &mut NatRange, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        ports_option(r, opt, c)
    }

    fn finish(r: NatRange, p: RuleProto, _: bool) -> Result<Masquerade, String> {
        r.check("MASQUERADE", p)?;
        Ok(Masquerade(r))
    }

    fn save(&self, out: &mut String) {
        self.0.save_ports(out);
    }

    fn list(&self, out: &mut String, _: bool) {
        self.0.list_ports(" masq ports: ", out);
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Nat]
    }

    fn hooks(&self) -> HookMask {
        hooks::POSTROUTING
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, _: &Engine) -> Option<Verdict> {
        // The egress interface's address toward the destination (`nf_nat_masquerade_ipv4`,
        // `nf_nat_masquerade_ipv6`'s source address selection).
        let a = p.out_if.and_then(|o| match p.h.dst {
            IpAddr::V4(d) => cx.topo.iface(o).v4_addr_toward(Some(d)).map(IpAddr::V4),
            IpAddr::V6(d) => cx.topo.iface(o).v6_addr_toward(d).map(IpAddr::V6),
        });
        Some(nat(p, cx, &self.0, false, true, Some(a)))
    }
}
