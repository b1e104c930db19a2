//! `TEE` (`libxt_TEE.c`, `xt_TEE.c`, `nf_dup_ipv4.c`): send a copy of the packet to a
//! gateway and let the packet go on (any table, as the kernel allows). As `nf_dup_ipv4`: the copy is taken as
//! the packet is at the rule, with DF set and, in PREROUTING and INPUT, the TTL decreased;
//! it is untracked, routed to the gateway (or out of `--oif`), and passes OUTPUT and
//! POSTROUTING like a packet of the router's own, where `TEE` copies it no further.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::packet::checksum;
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::Family;
use crate::ruleset::Hook;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tee {
    /// Of the ruleset's family.
    pub gateway: IpAddr,
    pub oif: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Builder {
    gateway: Option<IpAddr>,
    oif: Option<String>,
}

impl TargetExt for Tee {
    type Builder = Builder;
    const OPTIONS: &'static [&'static str] = &["gateway", "oif"];

    fn start() -> Builder {
        Builder::default()
    }

    fn option(b: &mut Builder, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        if opt == "gateway" {
            c.once(&b.gateway, "--gateway")?;
            let v = c.value("--gateway")?;
            let gw = match c.family {
                Family::V4 => v.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
                Family::V6 => v.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            };
            b.gateway = Some(gw.map_or_else(|| c.err_value(format!("TEE: bad --gateway `{v}'")), Ok)?);
        } else {
            c.once(&b.oif, "--oif")?;
            let v = c.value("--oif")?;
            if v.is_empty() || v.len() > 15 {
                return c.err_value(format!("TEE: bad --oif `{v}'"));
            }
            b.oif = Some(v);
        }
        Ok(())
    }

    fn finish(b: Builder, _: RuleProto, _: bool) -> Result<Tee, String> {
        Ok(Tee {
            gateway: b.gateway.ok_or("TEE: option \"--gateway\" must be specified")?,
            oif: b.oif,
        })
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, " --gateway {}", self.gateway);
        if let Some(o) = &self.oif {
            let _ = write!(out, " --oif {o}");
        }
    }

    fn list(&self, out: &mut String, _: bool) {
        let _ = write!(out, " TEE gw:{}", self.gateway);
        if let Some(o) = &self.oif {
            let _ = write!(out, " oif={o}");
        }
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, _: &Engine) -> Option<Verdict> {
        if cx.duplicate {
            return None;
        }
        // An `--oif` the router does not have: no route for the copy, as in the kernel.
        let oif = match &self.oif {
            Some(name) => Some(cx.topo.iface_id(name)?),
            None => None,
        };
        let mut copy = p.buf.to_vec();
        let early = matches!(cx.hook, Hook::Prerouting | Hook::Input);
        if p.h.is_v4() {
            copy[6] |= 0x40;
            if early {
                copy[8] = copy[8].wrapping_sub(1);
            }
            let hl = usize::from(copy[0] & 0x0f) * 4;
            copy[10..12].copy_from_slice(&[0, 0]);
            let c = checksum::finish(checksum::sum(&copy[..hl]));
            copy[10..12].copy_from_slice(&c.to_be_bytes());
        } else if early {
            // nf_dup_ipv6: the hop limit, which no checksum covers.
            copy[7] = copy[7].wrapping_sub(1);
        }
        cx.tees.push((self.gateway, oif, copy));
        None
    }
}
