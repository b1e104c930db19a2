//! What each match tests, as the kernel's `xt_*` match functions do. References are to
//! `net/netfilter/xt_<name>.c` and `net/ipv4/netfilter/ip_tables.c` (`ip_packet_match`).

use super::{Ct, CtState, Cx, Engine, MatchState, Pkt};
use crate::packet::{Headers, L4};
use crate::route::{rtn, Topology};
use crate::ruleset::ext::Neg;
use crate::ruleset::matches::{ctstate, CtDir, Match, PktType, PortSide, RecentCmd, StatisticMode, Ttl};
use crate::ruleset::value::{Ipv4Net, Range16};
use crate::ruleset::Rule;
use std::net::IpAddr;
use std::sync::atomic::Ordering;

fn net_holds(n: &Option<Neg<Ipv4Net>>, a: IpAddr) -> bool {
    match n {
        None => true,
        Some(n) => n.holds(match a {
            IpAddr::V4(v) => n.v.contains(v),
            // An IPv4 prefix never contains an IPv6 address; the empty prefix is left out at load.
            IpAddr::V6(_) => false,
        }),
    }
}

/// The base match of every rule: addresses, interfaces, protocol, fragments
/// (`ip_packet_match`).
pub fn base(r: &Rule, p: &Pkt, topo: &Topology) -> bool {
    if !net_holds(&r.src, p.h.src) || !net_holds(&r.dst, p.h.dst) {
        return false;
    }
    if let Some(i) = &r.in_iface {
        if !i.holds(i.v.matches(topo.name(p.in_if))) {
            return false;
        }
    }
    if let Some(o) = &r.out_iface {
        if !o.holds(o.v.matches(topo.name(p.out_if))) {
            return false;
        }
    }
    if let Some(pr) = r.proto {
        if !pr.holds(p.h.proto == pr.v) {
            return false;
        }
    }
    if let Some(inv) = r.frag {
        // `-f` matches second and later fragments; `! -f` the rest.
        if (p.h.frag_off != 0) == inv {
            return false;
        }
    }
    true
}

fn range_holds(r: &Option<Neg<Range16>>, v: u16) -> bool {
    r.is_none_or(|r| r.holds(r.v.contains(v)))
}

/// TCP options contain `kind` (`xt_tcpudp.c: tcp_find_option`).
fn has_tcp_option(buf: &[u8], h: &Headers, hdr_len: u8, kind: u8) -> bool {
    let start = usize::from(h.l4_off) + 20;
    let end = usize::from(h.l4_off) + usize::from(hdr_len);
    let Some(opts) = buf.get(start..end) else { return false };
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return kind == 0,
            1 => {
                if kind == 1 {
                    return true;
                }
                i += 1;
            }
            k => {
                if k == kind {
                    return true;
                }
                let len = usize::from(*opts.get(i + 1).unwrap_or(&0));
                if len < 2 {
                    return false;
                }
                i += len;
            }
        }
    }
    false
}

/// The conntrack state bits of the packet (`xt_conntrack.c: conntrack_mt`).
fn state_bits(ct: &Ct) -> u8 {
    match ct {
        Ct::Invalid => ctstate::INVALID,
        Ct::Untracked => ctstate::UNTRACKED,
        Ct::Tracked(c) => {
            let mut b = match c.state {
                CtState::New => ctstate::NEW,
                CtState::Established => ctstate::ESTABLISHED,
                CtState::Related => ctstate::RELATED,
            };
            if c.status & super::status::SRC_NAT != 0 {
                b |= ctstate::SNAT;
            }
            if c.status & super::status::DST_NAT != 0 {
                b |= ctstate::DNAT;
            }
            b
        }
    }
}

pub fn matches(m: &Match, st: &MatchState, p: &Pkt, cx: &mut Cx, eng: &Engine) -> bool {
    let h = &p.h;
    match m {
        Match::Tcp(t) => {
            let L4::Tcp(tcp) = h.l4 else { return false };
            range_holds(&t.sport, tcp.sport)
                && range_holds(&t.dport, tcp.dport)
                && t.flags.is_none_or(|f| f.holds(tcp.flags & f.v.0 == f.v.1))
                && t.option
                    .is_none_or(|o| o.holds(has_tcp_option(p.buf, h, tcp.hdr_len, o.v)))
        }
        Match::Udp(u) | Match::Sctp(u) => {
            let (sport, dport) = match h.l4 {
                L4::Udp { sport, dport } if matches!(m, Match::Udp(_)) => (sport, dport),
                L4::Sctp { sport, dport } if matches!(m, Match::Sctp(_)) => (sport, dport),
                _ => return false,
            };
            range_holds(&u.sport, sport) && range_holds(&u.dport, dport)
        }
        Match::Icmp(i) => {
            let L4::Icmp(ic) = h.l4 else { return false };
            let hit = i.typ == 0xff || (ic.typ == i.typ && i.code.0 <= ic.code && ic.code <= i.code.1);
            hit != i.inv
        }
        Match::Multiport(mp) => {
            let Some((sport, dport)) = h.ports() else { return false };
            let hit = mp.ports.iter().any(|r| match mp.side {
                PortSide::Src => r.contains(sport),
                PortSide::Dst => r.contains(dport),
                PortSide::Either => r.contains(sport) || r.contains(dport),
            });
            hit != mp.inv
        }
        Match::Comment(_) => true,
        Match::AddrType(a) => {
            let dev = if a.limit_iface_in {
                p.in_if
            } else if a.limit_iface_out {
                p.out_if
            } else {
                None
            };
            let test = |t: &Option<Neg<u16>>, addr: IpAddr| {
                t.is_none_or(|t| t.holds(t.v & (1 << cx.topo.addr_type(addr, dev)) != 0))
            };
            test(&a.src, h.src) && test(&a.dst, h.dst)
        }
        Match::Statistic(s) => {
            let hit = match s.mode {
                StatisticMode::Random { probability } => cx.rng.chance(probability),
                StatisticMode::Nth { every, .. } => {
                    let MatchState::Nth(count) = st else { return false };
                    let last = every - 1;
                    let prev = count
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                            Some(if c >= last { 0 } else { c + 1 })
                        })
                        .unwrap_or(0);
                    prev >= last
                }
            };
            hit != s.inv
        }
        Match::Conntrack(c) => conntrack(c, p),
        Match::State(s) => s.holds(state_bits(&p.ct) & s.v != 0),
        Match::Mark(mm) => mm.holds(p.mark & mm.v.mask == mm.v.value),
        Match::ConnMark(mm) => match &p.ct {
            Ct::Tracked(c) => mm.holds(c.mark & mm.v.mask == mm.v.value),
            _ => false,
        },
        Match::IpRange(r) => {
            let test = |x: &Option<Neg<(std::net::Ipv4Addr, std::net::Ipv4Addr)>>, a: IpAddr| {
                x.is_none_or(|x| {
                    let IpAddr::V4(v) = a else { return false };
                    x.holds(u32::from(x.v.0) <= u32::from(v) && u32::from(v) <= u32::from(x.v.1))
                })
            };
            test(&r.src, h.src) && test(&r.dst, h.dst)
        }
        Match::Limit(_) => match st {
            MatchState::Limit(b) => b.take(cx.now),
            _ => false,
        },
        Match::Length(l) => l.holds(l.v.contains(h.total_len)),
        Match::Ttl(t) => match *t {
            Ttl::Eq(n) => h.ttl == n,
            Ttl::Ne(n) => h.ttl != n,
            Ttl::Lt(n) => h.ttl < n,
            Ttl::Gt(n) => h.ttl > n,
        },
        Match::Set(s) => {
            let Some(set) = eng.ipsets.get(&s.name) else {
                return false;
            };
            let a = if s.dirs.first().copied().unwrap_or(true) {
                h.src
            } else {
                h.dst
            };
            set.contains(a) != s.inv
        }
        Match::PktType(t) => {
            // TUN devices have no link layer, so the kernel sees every packet as PACKET_HOST;
            // rtrouter classifies by destination address, which is what a rule author means.
            let kind = match h.dst {
                IpAddr::V4(v) if v.is_multicast() => PktType::Multicast,
                IpAddr::V6(v) if v.is_multicast() => PktType::Multicast,
                a if cx.topo.addr_type(a, None) == rtn::BROADCAST => PktType::Broadcast,
                _ => PktType::Unicast,
            };
            t.holds(kind == t.v)
        }
        Match::Recent(r) => {
            let MatchState::Recent(list) = st else { return false };
            recent(r, list, p, cx.now, eng.recent_keep())
        }
        Match::Wasm(w) => {
            let hit = match (&eng.plugins, w.handle) {
                (Some(host), Some(h)) => host.call_match(h, p, cx),
                _ => false,
            };
            hit != w.inv
        }
        Match::Nfacct(_) => {
            if let MatchState::Nfacct(c) = st {
                c.add(u64::from(h.total_len));
            }
            true
        }
    }
}

fn conntrack(c: &crate::ruleset::matches::Conntrack, p: &Pkt) -> bool {
    let bits = state_bits(&p.ct);
    if let Some(s) = c.state {
        if !s.holds(bits & s.v != 0) {
            return false;
        }
    }
    let Ct::Tracked(ct) = &p.ct else {
        // Without a connection only a pure state test can match (`conntrack_mt`).
        return c.proto.is_none()
            && c.orig_src.is_none()
            && c.orig_dst.is_none()
            && c.repl_src.is_none()
            && c.repl_dst.is_none()
            && c.orig_src_port.is_none()
            && c.orig_dst_port.is_none()
            && c.repl_src_port.is_none()
            && c.repl_dst_port.is_none()
            && c.status.is_none()
            && c.expire.is_none()
            && c.dir.is_none();
    };
    if let Some(pr) = c.proto {
        if !pr.holds(ct.proto == pr.v) {
            return false;
        }
    }
    for (n, a) in [
        (&c.orig_src, ct.orig.src),
        (&c.orig_dst, ct.orig.dst),
        (&c.repl_src, ct.reply.src),
        (&c.repl_dst, ct.reply.dst),
    ] {
        if !net_holds(n, a) {
            return false;
        }
    }
    for (r, port) in [
        (&c.orig_src_port, ct.orig.sport),
        (&c.orig_dst_port, ct.orig.dport),
        (&c.repl_src_port, ct.reply.sport),
        (&c.repl_dst_port, ct.reply.dport),
    ] {
        if !range_holds(r, port) {
            return false;
        }
    }
    if let Some(s) = c.status {
        if !s.holds(u16::from(s.v) & ct.status != 0) {
            return false;
        }
    }
    if let Some(e) = c.expire {
        if !e.holds(e.v.0 <= ct.expires_in && ct.expires_in <= e.v.1) {
            return false;
        }
    }
    match c.dir {
        Some(CtDir::Original) => !ct.reply_dir,
        Some(CtDir::Reply) => ct.reply_dir,
        None => true,
    }
}

/// `xt_recent`: look the address up in the named list and act on it.
fn recent(
    r: &crate::ruleset::matches::Recent,
    list: &super::state::RecentList,
    p: &Pkt,
    now: u64,
    keep: usize,
) -> bool {
    let addr = if r.source { p.h.src } else { p.h.dst };
    let addr = match addr {
        IpAddr::V4(v) => IpAddr::V4((u32::from(v) & u32::from(r.mask)).into()),
        a => a,
    };
    let ttl = if r.rttl { p.h.ttl } else { 0 };
    let mut map = super::state::lock(&list.entries);
    let mut ret = r.inv;
    if r.cmd == RecentCmd::Set {
        super::state::RecentList::touch(&mut map, addr, now, ttl, keep);
        return !ret;
    }
    let Some(e) = map.get_mut(&addr).filter(|e| !r.rttl || e.ttl == ttl) else {
        return ret;
    };
    match r.cmd {
        RecentCmd::Remove => {
            map.remove(&addr);
            return !ret;
        }
        RecentCmd::Check | RecentCmd::Update => {
            let window = u64::from(r.seconds) * 1_000_000_000;
            let since = now.saturating_sub(window);
            let mut hits = 0;
            for &s in &e.stamps {
                if r.seconds != 0 && s < since {
                    continue;
                }
                hits += 1;
                if r.hitcount == 0 || hits >= r.hitcount {
                    ret = !ret;
                    break;
                }
            }
            if r.reap && r.seconds != 0 {
                e.stamps.retain(|&s| s >= since);
            }
            let matched = ret != r.inv;
            let empty = e.stamps.is_empty();
            if r.cmd == RecentCmd::Update && matched {
                super::state::RecentList::touch(&mut map, addr, now, ttl, keep);
            } else if empty {
                map.remove(&addr);
            }
        }
        RecentCmd::Set => {}
    }
    ret
}
