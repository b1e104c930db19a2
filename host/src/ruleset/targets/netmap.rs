//! `NETMAP` (`libipt_NETMAP.c`, `xt_NETMAP.c`): map a whole network onto another one address
//! for address, keeping the host part: the destination in PREROUTING and OUTPUT, the source
//! in POSTROUTING and INPUT. nat table.

use super::nat::{nat, NatRange};
use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::Ipv4Net;
use crate::ruleset::{Hook, TableKind};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Netmap(pub Ipv4Net);

impl TargetExt for Netmap {
    type Builder = Option<Ipv4Net>;
    const OPTIONS: &'static [&'static str] = &["to"];

    fn start() -> Option<Ipv4Net> {
        None
    }

    fn option(n: &mut Option<Ipv4Net>, _: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        c.once(n, "--to")?;
        let v = c.value("--to")?;
        *n = Some(Ipv4Net::parse(&v).map_or_else(|| c.err_value(format!("NETMAP: bad network `{v}'")), Ok)?);
        Ok(())
    }

    fn finish(n: Option<Ipv4Net>, _: RuleProto, _: bool) -> Result<Netmap, String> {
        n.map(Netmap).ok_or_else(|| "NETMAP: --to is required".into())
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, " --to {}", self.0);
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Nat]
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, _: &Engine) -> Option<Verdict> {
        let dst = matches!(cx.hook, Hook::Prerouting | Hook::Output);
        let IpAddr::V4(old) = (if dst { p.h.dst } else { p.h.src }) else {
            return None;
        };
        let m = self.0.mask;
        let new = Ipv4Addr::from((u32::from(old) & !m) | (u32::from(self.0.addr) & m));
        Some(nat(p, cx, &NatRange::default(), dst, false, Some(Some(new.into()))))
    }
}
