//! The base match of every rule (`ip_tables.c: ip_packet_match`): addresses, interfaces,
//! protocol, fragments. The `-m` matches are each in their extension's module
//! (`ruleset::matches`), compiled into [`crate::ruleset::matches::Test`]s.

use super::Pkt;
use crate::route::Topology;
use crate::ruleset::ext::Neg;
use crate::ruleset::value::Ipv4Net;
use crate::ruleset::Rule;
use std::net::IpAddr;

/// A negatable IPv4 prefix test that holds when absent; IPv6 addresses are never inside.
pub(crate) fn net_holds(n: &Option<Neg<Ipv4Net>>, a: IpAddr) -> bool {
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
