//! `TPROXY` (`libxt_TPROXY.c`, `xt_TPROXY.c`): hand a TCP or UDP packet to a local transparent
//! socket (one bound with `IP_TRANSPARENT`) without rewriting it, marking it on the way.
//! mangle table, PREROUTING only, with `-p tcp` or `-p udp`.
//!
//! `tproxy_tg4`/`tproxy_tg6` look for an established socket of the flow, then for a listener
//! on `--on-ip` (the packet's destination when unset) and `--on-port`; only a transparent
//! socket takes the packet, and without one the packet is dropped (`NF_DROP`). rtrouter runs
//! no transparent proxy and its own sockets (the metrics endpoint, the local stack's echo)
//! are not transparent, so `TPROXY` always finds none and drops, as a Linux host does where
//! no transparent proxy listens. The rule loads, saves and is checked exactly as iptables does.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::{parse_mark_mask, MarkMask, RuleProto};
use crate::ruleset::value::parse_uint;
use crate::ruleset::{hooks, Family, HookMask, TableKind};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tproxy {
    pub port: u16,
    /// Of the ruleset's family; the unspecified address means the packet's destination.
    pub ip: IpAddr,
    pub mark: u32,
    pub mask: u32,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Builder {
    port: Option<u16>,
    ip: Option<IpAddr>,
    mark: Option<MarkMask>,
}

impl TargetExt for Tproxy {
    type Builder = Builder;
    const OPTIONS: &'static [&'static str] = &["on-port", "on-ip", "tproxy-mark"];

    fn start() -> Builder {
        Builder::default()
    }

    fn option(b: &mut Builder, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        let name = format!("--{opt}");
        let v = c.value(&name)?;
        match opt {
            "on-port" => {
                c.once(&b.port, &name)?;
                let p =
                    parse_uint(&v, 0, 65535).map_or_else(|| c.err_value(format!("TPROXY: bad --on-port `{v}'")), Ok)?;
                b.port = Some(p as u16);
            }
            "on-ip" => {
                c.once(&b.ip, &name)?;
                let ip = match c.family {
                    Family::V4 => v.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
                    Family::V6 => v.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
                };
                b.ip = Some(ip.map_or_else(|| c.err_value(format!("host/network `{v}' not found")), Ok)?);
            }
            _ => {
                c.once(&b.mark, &name)?;
                b.mark = Some(
                    parse_mark_mask(&v).map_or_else(|| c.err_value(format!("TPROXY: bad --tproxy-mark `{v}'")), Ok)?,
                );
            }
        }
        Ok(())
    }

    fn finish(b: Builder, p: RuleProto, _: bool) -> Result<Tproxy, String> {
        let port = b.port.ok_or("TPROXY: option \"--on-port\" must be specified")?;
        // `tproxy_tg4_check`/`tproxy_tg6_check`.
        if !matches!(p.exact(), Some(6 | 17)) {
            return Err("TPROXY: Can be used only with -p tcp or -p udp (Invalid argument)".into());
        }
        let unspecified = match p.family {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let (mark, mask) = b.mark.map_or((0, 0), |m| (m.value, m.mask));
        Ok(Tproxy {
            port,
            ip: b.ip.unwrap_or(unspecified),
            mark,
            mask,
        })
    }

    /// `tproxy_tg_save4`/`tproxy_tg_save6`: every option, always.
    fn save(&self, out: &mut String) {
        let _ = write!(
            out,
            " --on-port {} --on-ip {} --tproxy-mark 0x{:x}/0x{:x}",
            self.port, self.ip, self.mark, self.mask
        );
    }

    fn list(&self, out: &mut String, _: bool) {
        // `tproxy_tg_print_v1`.
        let _ = write!(
            out,
            " TPROXY redirect {}:{} mark 0x{:x}/0x{:x}",
            self.ip, self.port, self.mark, self.mask
        );
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Mangle]
    }

    fn hooks(&self) -> HookMask {
        hooks::PREROUTING
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("rtrouter holds no transparent (IP_TRANSPARENT) sockets: TPROXY finds none and drops the packet, as the kernel does where no transparent proxy listens")
    }

    fn apply(&self, _: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        // No transparent socket, established or listening: NF_DROP.
        Some(Verdict::Drop)
    }
}
