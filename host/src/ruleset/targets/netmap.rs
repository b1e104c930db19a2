//! `NETMAP` (`libipt_NETMAP.c`, `xt_NETMAP.c`): map a whole network onto another one address
//! for address, keeping the host part: the destination in PREROUTING and OUTPUT, the source
//! in POSTROUTING and INPUT. nat table.

use super::nat::{nat, NatRange};
use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::IpNet;
use crate::ruleset::{Hook, TableKind};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Netmap(pub IpNet);

impl TargetExt for Netmap {
    type Builder = Option<IpNet>;
    const OPTIONS: &'static [&'static str] = &["to"];

    fn start() -> Option<IpNet> {
        None
    }

    fn option(n: &mut Option<IpNet>, _: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        c.once(n, "--to")?;
        let v = c.value("--to")?;
        *n = Some(IpNet::parse(&v, c.family).map_or_else(|| c.err_value(format!("NETMAP: bad network `{v}'")), Ok)?);
        Ok(())
    }

    fn finish(n: Option<IpNet>, _: RuleProto, _: bool) -> Result<Netmap, String> {
        n.map(Netmap).ok_or_else(|| "NETMAP: --to is required".into())
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, " --to {}", self.0);
    }

    fn list(&self, out: &mut String, _: bool) {
        let _ = write!(out, " to:{}", self.0);
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Nat]
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, _: &Engine) -> Option<Verdict> {
        let dst = matches!(cx.hook, Hook::Prerouting | Hook::Output);
        // The host part of the address kept, the network part from `--to`.
        let new = match (if dst { p.h.dst } else { p.h.src }, self.0) {
            (IpAddr::V4(old), IpNet::V4(n)) => IpAddr::V4(Ipv4Addr::from(
                (u32::from(old) & !n.mask) | (u32::from(n.addr) & n.mask),
            )),
            (IpAddr::V6(old), IpNet::V6(n)) => IpAddr::V6(Ipv6Addr::from(
                (u128::from(old) & !n.mask) | (u128::from(n.addr) & n.mask),
            )),
            _ => return None,
        };
        Some(nat(p, cx, &NatRange::default(), dst, false, Some(Some(new))))
    }
}
