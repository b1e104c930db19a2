//! The base match of every rule (`ip_tables.c: ip_packet_match`): addresses, interfaces,
//! protocol, fragments. The `-m` matches are each in their extension's module
//! (`ruleset::matches`), compiled into [`crate::ruleset::matches::Test`]s.

use super::Pkt;
use crate::route::{IfaceId, Topology};
use crate::ruleset::ext::Neg;
use crate::ruleset::value::IpNet;
use crate::ruleset::{Iface, Rule};
use std::net::IpAddr;

/// A rule's negatable `-s`/`-d` test, holding when absent; an address of the other family is
/// never inside.
#[inline]
pub(crate) fn ip_holds(n: &Option<Neg<IpNet>>, a: IpAddr) -> bool {
    match n {
        None => true,
        Some(n) => n.holds(n.v.contains(a)),
    }
}

/// The interfaces an `-i`/`-o` name (with a `+` wildcard) stands for, resolved against the
/// topology when the engine is built, so a packet is tested by its interface id.
#[derive(Debug)]
pub(crate) struct IfaceSet {
    /// Bit `id` is set when interface `id`'s name matches.
    bits: Box<[u64]>,
    /// Whether the name matches a packet without that interface (the empty name).
    none: bool,
}

impl IfaceSet {
    fn resolve(i: &Iface, topo: &Topology) -> IfaceSet {
        let mut bits = vec![0u64; topo.ifaces.len().div_ceil(64)];
        for (id, info) in topo.ifaces.iter().enumerate() {
            if i.matches(&info.name) {
                bits[id / 64] |= 1 << (id % 64);
            }
        }
        IfaceSet {
            bits: bits.into_boxed_slice(),
            none: i.matches(topo.name(None)),
        }
    }

    #[inline]
    fn contains(&self, id: Option<IfaceId>) -> bool {
        match id {
            None => self.none,
            Some(IfaceId(i)) => self
                .bits
                .get(usize::from(i) / 64)
                .is_some_and(|w| (w >> (i % 64)) & 1 == 1),
        }
    }
}

/// A rule's `-i` and `-o`, resolved.
#[derive(Debug)]
pub(crate) struct IfaceTest {
    in_if: Option<Neg<IfaceSet>>,
    out_if: Option<Neg<IfaceSet>>,
}

impl IfaceTest {
    /// `None` for a rule without `-i` or `-o`.
    pub(crate) fn resolve(r: &Rule, topo: &Topology) -> Option<IfaceTest> {
        let set = |i: &Option<Neg<Iface>>| i.as_ref().map(|i| Neg::new(i.inv, IfaceSet::resolve(&i.v, topo)));
        (r.in_iface.is_some() || r.out_iface.is_some()).then(|| IfaceTest {
            in_if: set(&r.in_iface),
            out_if: set(&r.out_iface),
        })
    }
}

/// The base match of every rule: addresses, interfaces, protocol, fragments
/// (`ip_packet_match`). `ifaces` is the rule's `-i`/`-o`, resolved.
pub(crate) fn base(r: &Rule, ifaces: Option<&IfaceTest>, p: &Pkt) -> bool {
    if !ip_holds(&r.src, p.h.src) || !ip_holds(&r.dst, p.h.dst) {
        return false;
    }
    if let Some(t) = ifaces {
        if let Some(i) = &t.in_if {
            if !i.holds(i.v.contains(p.in_if)) {
                return false;
            }
        }
        if let Some(o) = &t.out_if {
            if !o.holds(o.v.contains(p.out_if)) {
                return false;
            }
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
