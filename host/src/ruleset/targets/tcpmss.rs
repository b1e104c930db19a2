//! `TCPMSS` (`libxt_TCPMSS.c`, `xt_TCPMSS.c`): lower the MSS option of TCP SYNs, to a value
//! or to the egress path MTU. Needs `-p tcp` and a match selecting SYN packets.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::packet::{self, tcp_flags, L4};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::parse_uint;
use crate::ruleset::{hooks, HookMask};
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpMss {
    Set(u16),
    ClampToPmtu,
}

impl TargetExt for TcpMss {
    type Builder = Option<TcpMss>;

    fn start() -> Option<TcpMss> {
        None
    }

    const OPTIONS: &'static [&'static str] = &["set-mss", "clamp-mss-to-pmtu"];

    fn option(t: &mut Option<TcpMss>, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        if t.is_some() {
            return c.err("TCPMSS: only one of --set-mss or --clamp-mss-to-pmtu allowed");
        }
        *t = Some(if opt == "set-mss" {
            let v = c.value("--set-mss")?;
            TcpMss::Set(
                parse_uint(&v, 0, 65535).map_or_else(|| c.err_value(format!("TCPMSS: bad MSS `{v}'")), Ok)? as u16,
            )
        } else {
            TcpMss::ClampToPmtu
        });
        Ok(())
    }

    fn finish(t: Option<TcpMss>, p: RuleProto, syn_match: bool) -> Result<TcpMss, String> {
        let t = t.ok_or("TCPMSS: --set-mss or --clamp-mss-to-pmtu is required")?;
        if p.exact() != Some(6) || !syn_match {
            return Err("TCPMSS: only works on TCP SYN packets: needs `-p tcp' and a `--tcp-flags' or `--syn' match that selects SYN".into());
        }
        Ok(t)
    }

    fn save(&self, out: &mut String) {
        match self {
            TcpMss::Set(n) => {
                let _ = write!(out, " --set-mss {n}");
            }
            TcpMss::ClampToPmtu => out.push_str(" --clamp-mss-to-pmtu"),
        }
    }

    fn list(&self, out: &mut String, _: bool) {
        let _ = match self {
            TcpMss::Set(n) => write!(out, " TCPMSS set {n}"),
            TcpMss::ClampToPmtu => write!(out, " TCPMSS clamp to PMTU"),
        };
    }

    fn hooks(&self) -> HookMask {
        match self {
            TcpMss::ClampToPmtu => hooks::FORWARD | hooks::OUTPUT | hooks::POSTROUTING,
            TcpMss::Set(_) => hooks::ALL,
        }
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, _: &Engine) -> Option<Verdict> {
        let mtu = p.out_if.map_or(1500, |o| cx.topo.iface(o).mtu);
        let mss = match *self {
            TcpMss::Set(v) => v,
            TcpMss::ClampToPmtu => mtu.saturating_sub(if p.h.is_v4() { 40 } else { 60 }).min(65535) as u16,
        };
        clamp_mss(p, mss);
        None
    }
}

/// Lowers the MSS option of a SYN to `mss`, adding the option when a SYN has none and the
/// header has room (`tcpmss_mangle_packet`).
fn clamp_mss(p: &mut Pkt, mss: u16) {
    let L4::Tcp(t) = p.h.l4 else { return };
    if t.flags & tcp_flags::SYN == 0 || p.h.frag_off != 0 {
        return;
    }
    let start = usize::from(p.h.l4_off);
    let end = start + usize::from(t.hdr_len);
    let mut i = start + 20;
    while i + 1 < end {
        match p.buf[i] {
            0 => break,
            1 => i += 1,
            2 if p.buf[i + 1] == 4 && i + 4 <= end => {
                let old = u16::from_be_bytes([p.buf[i + 2], p.buf[i + 3]]);
                if old <= mss {
                    return;
                }
                let (o, n) = (old.to_be_bytes(), mss.to_be_bytes());
                p.buf[i + 2..i + 4].copy_from_slice(&n);
                // The option starts at an even offset within the TCP header when i - start is
                // even; otherwise the changed bytes straddle 16-bit words.
                if (i + 2 - start) % 2 == 0 {
                    packet::checksum::update(&mut p.buf[start + 16..start + 18], &o, &n);
                } else {
                    packet::fill_l4_checksum(p.buf, &p.h);
                }
                return;
            }
            _ => {
                let len = usize::from(p.buf[i + 1]);
                if len < 2 {
                    return;
                }
                i += len;
            }
        }
    }
    // No MSS option: add one if the SYN carries no data and the header can grow.
    let total = usize::from(p.h.total_len);
    if total != end || t.hdr_len >= 60 {
        return;
    }
    // Without an MSS option the peer assumes the default: RFC 879's 536 over IPv4, 1220
    // over IPv6 (the minimum MTU less the headers), so the added option says no more.
    let mss = mss.min(if p.h.is_v4() { 536 } else { 1220 });
    let [hi, lo] = mss.to_be_bytes();
    p.buf.truncate(total);
    p.buf.extend_from_slice(&[2, 4, hi, lo]);
    let new_total = (total + 4) as u16;
    if p.h.is_v4() {
        p.buf[2..4].copy_from_slice(&new_total.to_be_bytes());
        p.buf[10..12].copy_from_slice(&[0, 0]);
        let c = packet::checksum::finish(packet::checksum::sum(&p.buf[..start]));
        p.buf[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        // IPv6: the payload length, and no header checksum.
        p.buf[4..6].copy_from_slice(&(new_total - 40).to_be_bytes());
    }
    p.buf[start + 12] = (((t.hdr_len + 4) / 4) << 4) | (p.buf[start + 12] & 0x0f);
    p.h.total_len = new_total;
    if let L4::Tcp(tt) = &mut p.h.l4 {
        tt.hdr_len += 4;
    }
    packet::fill_l4_checksum(p.buf, &p.h);
}
