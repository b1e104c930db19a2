//! NAT, the netfilter way: a translation is a connection's changed reply tuple.
//!
//! [`setup`] runs once per connection and manip type, when the connection's first packet
//! reaches a nat hook: it turns a NAT target's request (or, with no request, the identity)
//! into a reply tuple no other connection uses (`get_unique_tuple`): the original port is
//! kept when it is free and in range, else a port is searched in the range (or, without one,
//! in the original port's class: 1–511, 600–1023, 1024–65535) as
//! `nf_nat_l4proto_unique_tuple` does.
//!
//! [`apply`] rewrites every packet of the connection at each nat hook — destination at
//! PREROUTING and OUTPUT, source at POSTROUTING and INPUT — from the other direction's tuple,
//! gated by the status bits as in `nf_nat_packet`. An ICMP error about the connection gets
//! its quoted packet rewritten the opposite way (`nf_nat_icmp_reply_translation`). Checksums
//! are updated incrementally; the ICMP checksum of a rewritten error is recomputed.

use crate::conntrack::{ConnState, Dir, Key, Table};
use crate::eval::{status, Chance, NatRequest};
use crate::packet::{self, checksum, proto, DropReason, Headers, L4};
use std::net::IpAddr;

/// Which half of the tuple a hook translates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manip {
    Src,
    Dst,
}

impl Manip {
    fn status_bit(self) -> u16 {
        match self {
            Manip::Src => status::SRC_NAT,
            Manip::Dst => status::DST_NAT,
        }
    }
}

/// Port range of the port's class when a source must be remapped without a given range.
fn class_range(port: u16, icmp: bool) -> (u16, u16) {
    if icmp {
        (0, u16::MAX)
    } else if port < 512 {
        (1, 511)
    } else if port < 1024 {
        (600, 1023)
    } else {
        (1024, u16::MAX)
    }
}

/// Sets up the `manip` half of a tentative connection's translation. `req` is what a NAT
/// target asked for, `None` for the identity (a null binding, still made unique for sources).
/// Returns whether the tuple changed.
pub fn setup(
    table: &Table,
    st: &mut ConnState,
    manip: Manip,
    req: Option<&NatRequest>,
    rng: &mut dyn Chance,
) -> Result<bool, DropReason> {
    // The original-direction packet as it will leave, so far.
    let cur = st.reply.reverse();
    let mut cand = cur;
    if let Some(a) = req.and_then(|r| r.addr) {
        match manip {
            Manip::Src => cand.src = a,
            Manip::Dst => cand.dst = a,
        }
    }
    let icmp = matches!(cand.proto, proto::ICMP | proto::ICMPV6);
    let has_port = cand.has_ports() || icmp;
    let port_of = |k: &Key| match (manip, icmp) {
        (_, true) => k.sport,
        (Manip::Src, _) => k.sport,
        (Manip::Dst, _) => k.dport,
    };
    let set_port = |k: &mut Key, p: u16| match (manip, icmp) {
        (_, true) | (Manip::Src, _) => k.sport = p,
        (Manip::Dst, _) => k.dport = p,
    };
    let range = req.and_then(|r| r.ports).filter(|_| has_port);
    let random_fully = req.is_some_and(|r| r.random_fully);
    let random = req.is_some_and(|r| r.random || r.random_fully);
    let unique = |k: &Key| !table.taken(&k.reverse());

    // 1. Keep the port when it is in range, free, and not to be randomised.
    let in_range = range.is_none_or(|(lo, hi)| (lo..=hi).contains(&port_of(&cand)));
    if in_range && !random_fully && unique(&cand) {
        return Ok(finish(st, cand, cur, manip));
    }
    // 2. Nothing that may change: without ports, a destination without a port range, or an
    //    ICMP query's identifier under DNAT. A clash left here fails at confirmation.
    if !has_port || (manip == Manip::Dst && (range.is_none() || icmp)) {
        return Ok(finish(st, cand, cur, manip));
    }
    // 3. Search the range (or the port's class), from a random offset for sources.
    let (lo, hi) = range.unwrap_or_else(|| class_range(port_of(&cand), icmp));
    let size = u32::from(hi - lo) + 1;
    let mut off = if random || manip == Manip::Src {
        rng.below(size)
    } else {
        0
    };
    let mut attempts = size.min(128);
    loop {
        for _ in 0..attempts {
            set_port(&mut cand, (u32::from(lo) + off % size) as u16);
            if unique(&cand) {
                return Ok(finish(st, cand, cur, manip));
            }
            off = off.wrapping_add(1);
        }
        if attempts >= size || attempts < 16 {
            return Err(DropReason::NatExhausted);
        }
        attempts /= 2;
        off = rng.below(size);
    }
}

fn finish(st: &mut ConnState, cand: Key, cur: Key, manip: Manip) -> bool {
    st.reply = cand.reverse();
    let changed = match manip {
        Manip::Src => (cand.src, cand.sport) != (st.orig.src, st.orig.sport),
        Manip::Dst => (cand.dst, cand.dport) != (st.orig.dst, st.orig.dport),
    };
    if changed {
        st.status |= manip.status_bit();
    }
    cand != cur
}

/// What [`apply`] changed in the packet's own header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub changed: bool,
}

/// Rewrites the packet's `manip` half for its connection and direction.
pub fn apply(buf: &mut [u8], h: &mut Headers, st: &ConnState, dir: Dir, manip: Manip, related: bool) -> Applied {
    // nf_nat_packet: a reply is translated by the opposite status bit.
    let mut bit = manip.status_bit();
    if dir == Dir::Reply {
        bit ^= status::SRC_NAT | status::DST_NAT;
    }
    if st.status & bit == 0 {
        return Applied::default();
    }
    let other = match dir {
        Dir::Original => st.reply,
        Dir::Reply => st.orig,
    };
    // The packet must look like the reverse of the other direction's tuple.
    let target = other.reverse();
    let cur = if manip == Manip::Src { h.src } else { h.dst };
    if related {
        if crate::conntrack::quoted(h, buf).is_some() {
            // The quoted packet went the other way: it gets the opposite manip, with values
            // from the other direction's tuple as it stands.
            rewrite_quoted(buf, h, &other, manip);
        }
        let addr = if manip == Manip::Src { target.src } else { target.dst };
        if addr != cur {
            packet::set_addr(buf, h, manip == Manip::Src, addr);
        }
        // The quote is covered by the ICMP checksum: recompute it.
        packet::fill_l4_checksum(buf, h);
        return Applied { changed: true };
    }
    let mut changed = false;
    let (addr, port) = match manip {
        Manip::Src => (target.src, target.sport),
        Manip::Dst => (target.dst, target.dport),
    };
    if cur != addr {
        packet::set_addr(buf, h, manip == Manip::Src, addr);
        changed = true;
    }
    match h.l4 {
        L4::Tcp(_) | L4::Udp { .. } | L4::Sctp { .. } => {
            let (s, d) = h.ports().unwrap_or_default();
            let curp = if manip == Manip::Src { s } else { d };
            if curp != port {
                packet::set_port(buf, h, manip == Manip::Src, port);
                changed = true;
            }
        }
        L4::Icmp(i) if crate::conntrack::is_icmp_query(h.proto, i.typ) && i.ident != target.sport => {
            packet::set_icmp_ident(buf, h, target.sport);
            changed = true;
        }
        _ => {}
    }
    Applied { changed }
}

/// Rewrites the packet quoted in an ICMP error: for an outer `manip`, the inner packet gets
/// the opposite one, taking its values from `tuple` (`nf_nat_ipv4_manip_pkt(.., !manip)`).
fn rewrite_quoted(buf: &mut [u8], h: &Headers, tuple: &Key, manip: Manip) {
    let start = usize::from(h.l4_off) + 8;
    let end = usize::from(h.total_len);
    let Some(inner) = buf.get_mut(start..end) else { return };
    let Some(ih) = crate::conntrack::parse_quoted(inner) else {
        return;
    };
    let hl = usize::from(ih.l4_off);
    // Opposite manip on the inner packet: outer DST -> inner SRC, outer SRC -> inner DST.
    let inner_src = manip == Manip::Dst;
    let (addr, port) = if inner_src {
        (tuple.src, tuple.sport)
    } else {
        (tuple.dst, tuple.dport)
    };
    // The quoted address, with the IPv4 header checksum where there is one.
    let (old, new): (Vec<u8>, Vec<u8>) = match addr {
        IpAddr::V4(a) if ih.is_v4() => {
            let at = if inner_src { 12 } else { 16 };
            let old = inner[at..at + 4].to_vec();
            inner[at..at + 4].copy_from_slice(&a.octets());
            checksum::update(&mut inner[10..12], &old, &a.octets());
            (old, a.octets().to_vec())
        }
        IpAddr::V6(a) if !ih.is_v4() => {
            let at = if inner_src { 8 } else { 24 };
            let old = inner[at..at + 16].to_vec();
            inner[at..at + 16].copy_from_slice(&a.octets());
            (old, a.octets().to_vec())
        }
        _ => return,
    };
    // The quoted transport checksum, when the quote holds it.
    let csum_at = match ih.proto {
        proto::TCP => Some(hl + 16),
        proto::UDP => Some(hl + 6),
        proto::ICMPV6 => Some(hl + 2),
        _ => None,
    };
    if let Some(c) = csum_at.filter(|c| c + 2 <= inner.len()) {
        if ih.proto == proto::UDP {
            checksum::update_udp(&mut inner[c..c + 2], &old, &new);
        } else {
            checksum::update(&mut inner[c..c + 2], &old, &new);
        }
    }
    match ih.proto {
        proto::TCP | proto::UDP | proto::SCTP => {
            let pat = hl + if inner_src { 0 } else { 2 };
            let oldp: [u8; 2] = inner[pat..pat + 2].try_into().expect("2 bytes");
            let newp = port.to_be_bytes();
            inner[pat..pat + 2].copy_from_slice(&newp);
            if let Some(c) = csum_at.filter(|c| c + 2 <= inner.len()) {
                if ih.proto == proto::UDP {
                    checksum::update_udp(&mut inner[c..c + 2], &oldp, &newp);
                } else {
                    checksum::update(&mut inner[c..c + 2], &oldp, &newp);
                }
            }
        }
        proto::ICMP | proto::ICMPV6 => {
            let pat = hl + 4;
            let oldp: [u8; 2] = inner[pat..pat + 2].try_into().expect("2 bytes");
            let newp = tuple.sport.to_be_bytes();
            inner[pat..pat + 2].copy_from_slice(&newp);
            checksum::update(&mut inner[hl + 2..hl + 4], &oldp, &newp);
        }
        _ => {}
    }
}
