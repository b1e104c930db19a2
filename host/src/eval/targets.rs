//! What non-chain targets do. Each returns `Some(verdict)` when it ends the table (NAT targets
//! accept after recording the translation, as `nf_nat_setup_info` callers do) or `None` to
//! continue with the next rule (`XT_CONTINUE`).

use super::log::{format_line, LogFlags};
use super::{Ct, Cx, NatRequest, Pkt, Verdict};
use crate::packet::{self, tcp_flags, L4};
use crate::ruleset::targets::{ConnMark, NatRange, Target, TcpMss, TtlOp};
use crate::ruleset::validate::ValidRule;
use crate::ruleset::Hook;
use std::net::{IpAddr, Ipv4Addr};

pub fn apply(
    t: &Target,
    r: &ValidRule,
    p: &mut Pkt,
    cx: &mut Cx,
    plugins: Option<&std::sync::Arc<dyn super::PluginHost>>,
) -> Option<Verdict> {
    match t {
        Target::Wasm(w) => match (plugins, w.handle) {
            (Some(host), Some(h)) => host.call_target(h, p, cx),
            _ => None,
        },
        Target::Log(l) => {
            if cx.log.admit(cx.now) {
                let flags = LogFlags {
                    tcp_sequence: l.tcp_sequence,
                    tcp_options: l.tcp_options,
                    ip_options: l.ip_options,
                };
                let line = log_line(p, cx, &l.prefix, flags);
                match l.level {
                    0..=3 => tracing::error!(target: "rtrouter::packet", "{line}"),
                    4 => tracing::warn!(target: "rtrouter::packet", "{line}"),
                    5 | 6 => tracing::info!(target: "rtrouter::packet", "{line}"),
                    _ => tracing::debug!(target: "rtrouter::packet", "{line}"),
                }
                cx.obs.event(&|| format!("LOG: {line}"));
            }
            None
        }
        Target::Nflog(n) => {
            if cx.log.admit(cx.now) {
                let line = log_line(p, cx, &n.prefix, LogFlags::default());
                tracing::info!(target: "rtrouter::packet", group = n.group, "{line}");
                cx.obs.event(&|| format!("NFLOG group {}: {line}", n.group));
            }
            None
        }
        Target::Mark { value, mask } => {
            p.mark = (p.mark & !mask) ^ value;
            None
        }
        Target::ConnMark(cm) => {
            if let Ct::Tracked(ct) = &mut p.ct {
                match *cm {
                    ConnMark::Set { value, mask } => ct.mark = (ct.mark & !mask) ^ value,
                    ConnMark::Save { nfmask, ctmask } => ct.mark = (ct.mark & !ctmask) ^ (p.mark & nfmask),
                    ConnMark::Restore { nfmask, ctmask } => p.mark = (p.mark & !nfmask) ^ (ct.mark & ctmask),
                }
            }
            None
        }
        Target::Notrack => {
            p.ct = Ct::Untracked;
            None
        }
        Target::Ct(c) => {
            if c.notrack {
                p.ct = Ct::Untracked;
            }
            p.zone = c.zone;
            None
        }
        Target::Ttl(op) => {
            let ttl = match *op {
                TtlOp::Set(n) => n,
                TtlOp::Inc(n) => p.h.ttl.saturating_add(n),
                TtlOp::Dec(n) => p.h.ttl.saturating_sub(n),
            };
            packet::set_ttl(p.buf, &mut p.h, ttl);
            None
        }
        Target::TcpMss(m) => {
            let mtu = p.out_if.map_or(1500, |o| cx.topo.iface(o).mtu);
            let mss = match *m {
                TcpMss::Set(v) => v,
                TcpMss::ClampToPmtu => mtu.saturating_sub(if p.h.is_v4() { 40 } else { 60 }).min(65535) as u16,
            };
            clamp_mss(p, mss);
            None
        }
        Target::ChecksumFill => {
            packet::fill_l4_checksum(p.buf, &p.h);
            None
        }
        Target::Dnat(range) => Some(nat(p, cx, range, true, false, None)),
        Target::Snat(range) => Some(nat(p, cx, range, false, false, None)),
        Target::Masquerade(range) => {
            let toward = p.h.dst_v4();
            let a = p.out_if.and_then(|o| cx.topo.iface(o).v4_addr_toward(toward));
            Some(nat(p, cx, range, false, true, Some(a)))
        }
        Target::Redirect(range) => {
            // To the ingress interface's primary address, or the loopback address for
            // locally generated packets (`nf_nat_redirect_ipv4`).
            let a = if cx.hook == Hook::Output {
                Some(Ipv4Addr::LOCALHOST)
            } else {
                p.in_if.and_then(|i| cx.topo.iface(i).v4_addr_toward(None))
            };
            Some(nat(p, cx, range, true, false, Some(a)))
        }
        other => {
            // Chain targets and verdicts are handled by the walk; reaching here would mean a
            // new target kind without semantics. Dropping is the safe failure.
            tracing::error!(target = other.name(), rule = r.id, "target without semantics; dropping");
            Some(Verdict::Drop)
        }
    }
}

/// Records the translation a NAT target asks for. `fixed` is the address MASQUERADE or
/// REDIRECT found (`Some(None)` when the interface has no IPv4 address).
/// The kernel-style log line LOG and NFLOG write for `p`.
fn log_line(p: &Pkt, cx: &Cx, prefix: &str, flags: LogFlags) -> String {
    format_line(
        prefix,
        cx.topo.name(p.in_if),
        cx.topo.name(p.out_if),
        p.buf,
        &p.h,
        p.mark,
        flags,
    )
}

fn nat(
    p: &mut Pkt,
    cx: &mut Cx,
    r: &NatRange,
    dst: bool,
    masquerade: bool,
    fixed: Option<Option<Ipv4Addr>>,
) -> Verdict {
    let addr = match fixed {
        Some(a) => a.map(IpAddr::V4),
        None => r
            .addrs
            .map(|(lo, hi)| IpAddr::V4(pick_addr(lo, hi, &p.h, r.persistent))),
    };
    let ports = r.ports.map(|(lo, hi)| match r.base {
        // Offset mode: shift the original port into the range.
        Some(base) => {
            let orig = p.h.ports().map_or(0, |(s, d)| if dst { d } else { s });
            let size = u32::from(hi - lo) + 1;
            let off = (u32::from(orig.wrapping_sub(base))) % size;
            let v = lo + off as u16;
            (v, v)
        }
        None => (lo, hi),
    });
    let req = NatRequest {
        dst,
        addr,
        ports,
        masquerade,
        random: r.random,
        random_fully: r.random_fully,
        persistent: r.persistent,
        no_addr: matches!(fixed, Some(None)),
    };
    cx.obs.event(&|| {
        let a = req.addr.map_or("(unchanged)".to_string(), |a| a.to_string());
        let ports = req.ports.map_or(String::new(), |(lo, hi)| {
            if lo == hi {
                format!(":{lo}")
            } else {
                format!(":{lo}-{hi}")
            }
        });
        format!(
            "{} to {a}{ports}",
            if dst {
                "DNAT"
            } else if masquerade {
                "MASQUERADE"
            } else {
                "SNAT"
            }
        )
    });
    p.nat = Some(req);
    Verdict::Accept
}

/// Chooses an address from a range the way `find_best_ips_proto` does: a hash of the source
/// (and of the destination unless `--persistent`), so one client keeps one address.
fn pick_addr(lo: Ipv4Addr, hi: Ipv4Addr, h: &packet::Headers, persistent: bool) -> Ipv4Addr {
    let (lo32, hi32) = (u32::from(lo), u32::from(hi));
    if lo32 >= hi32 {
        return lo;
    }
    let mut x = match h.src {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => (u128::from(a) as u64) ^ ((u128::from(a) >> 64) as u64),
    };
    if !persistent {
        if let IpAddr::V4(d) = h.dst {
            x ^= u64::from(u32::from(d)) << 32;
        }
    }
    let mut s = super::SplitMix(x);
    let dist = u64::from(hi32 - lo32) + 1;
    Ipv4Addr::from(lo32 + (((s.next_u64() >> 32) * dist) >> 32) as u32)
}

/// `TCPMSS`: lower the MSS option of a SYN to `mss`, adding the option when a SYN has none and
/// the header has room (`tcpmss_mangle_packet`).
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
    if total != end || t.hdr_len >= 60 || !p.h.is_v4() {
        return;
    }
    let mss = mss.min(536);
    let [hi, lo] = mss.to_be_bytes();
    p.buf.truncate(total);
    p.buf.extend_from_slice(&[2, 4, hi, lo]);
    let new_total = (total + 4) as u16;
    p.buf[2..4].copy_from_slice(&new_total.to_be_bytes());
    p.buf[10..12].copy_from_slice(&[0, 0]);
    let c = packet::checksum::finish(packet::checksum::sum(&p.buf[..start]));
    p.buf[10..12].copy_from_slice(&c.to_be_bytes());
    p.buf[start + 12] = (((t.hdr_len + 4) / 4) << 4) | (p.buf[start + 12] & 0x0f);
    p.h.total_len = new_total;
    if let L4::Tcp(tt) = &mut p.h.l4 {
        tt.hdr_len += 4;
    }
    packet::fill_l4_checksum(p.buf, &p.h);
}
