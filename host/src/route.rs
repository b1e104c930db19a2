//! The router's view of its network: interfaces and their addresses, the routing table
//! (longest-prefix match), and the address-type questions `addrtype` and the routing decision
//! ask (`inet_addr_type` in the kernel).
//!
//! The table keeps one hash map per prefix length present and probes them longest first, so a
//! lookup costs one hash probe per distinct prefix length, however many routes there are.

use crate::config::{Cidr, Config};
use foldhash::{HashMap, HashSet, HashSetExt};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An interface's index in [`Topology::ifaces`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfaceId(pub u16);

#[derive(Debug, Clone)]
pub struct IfaceInfo {
    pub name: String,
    /// The router's addresses on this link, with prefix lengths.
    pub addrs: Vec<Cidr>,
    pub mtu: u32,
}

impl IfaceInfo {
    /// The first IPv4 address, or the one whose subnet holds `toward` if there is one.
    pub fn v4_addr_toward(&self, toward: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
        let v4 = || {
            self.addrs.iter().filter_map(|c| match c.addr {
                IpAddr::V4(a) => Some((a, c.len)),
                IpAddr::V6(_) => None,
            })
        };
        if let Some(t) = toward {
            let mask = |l: u8| crate::ruleset::value::prefix_mask(l);
            if let Some((a, _)) = v4().find(|(a, l)| u32::from(*a) & mask(*l) == u32::from(t) & mask(*l)) {
                return Some(a);
            }
        }
        v4().next().map(|(a, _)| a)
    }

    /// The IPv6 address whose subnet holds `toward`, else the first global one, else the
    /// first (link-local) one: the source of an ICMPv6 error sent on this link.
    pub fn v6_addr_toward(&self, toward: Ipv6Addr) -> Option<Ipv6Addr> {
        let v6 = || {
            self.addrs.iter().filter_map(|c| match c.addr {
                IpAddr::V6(a) => Some((a, c.len)),
                IpAddr::V4(_) => None,
            })
        };
        let m = |l: u8| u128::MAX.checked_shl(128 - u32::from(l)).unwrap_or(0);
        v6().find(|(a, l)| u128::from(*a) & m(*l) == u128::from(toward) & m(*l))
            .or_else(|| v6().find(|(a, _)| a.segments()[0] & 0xffc0 != 0xfe80))
            .or_else(|| v6().next())
            .map(|(a, _)| a)
    }
}

/// Where the routing decision sends a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    pub iface: IfaceId,
    /// The gateway, or `None` for a directly connected destination.
    pub via: Option<IpAddr>,
}

/// Longest-prefix match over one address family, keys as `u128` (IPv4 in the low 32 bits):
/// one hash map per prefix length present, longest first.
#[derive(Debug, Clone, Default)]
struct Lpm {
    by_len: Vec<(u8, HashMap<u128, NextHop>)>,
}

impl Lpm {
    fn insert(&mut self, k: u128, bits: u8, len: u8, hop: NextHop) {
        let at = match self.by_len.iter().position(|(l, _)| *l <= len) {
            Some(i) if self.by_len[i].0 == len => i,
            Some(i) => {
                self.by_len.insert(i, (len, HashMap::default()));
                i
            }
            None => {
                self.by_len.push((len, HashMap::default()));
                self.by_len.len() - 1
            }
        };
        self.by_len[at].1.insert(k & mask(bits, len), hop);
    }

    fn lookup(&self, k: u128, bits: u8) -> Option<NextHop> {
        self.by_len
            .iter()
            .find_map(|(len, m)| m.get(&(k & mask(bits, *len))).copied())
    }
}

/// The mask of a `len`-bit prefix in a `bits`-bit address held in a `u128`.
fn mask(bits: u8, len: u8) -> u128 {
    let all = if bits == 128 { u128::MAX } else { (1u128 << bits) - 1 };
    if len == 0 {
        0
    } else {
        all & !(all >> len.min(bits))
    }
}

/// Longest-prefix match for IPv4 and IPv6 routes.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    v4: Lpm,
    v6: Lpm,
}

impl RouteTable {
    /// Adds (or replaces) the route to `prefix`.
    pub fn insert(&mut self, prefix: Cidr, hop: NextHop) {
        match prefix.addr {
            IpAddr::V4(a) => self.v4.insert(u128::from(u32::from(a)), 32, prefix.len, hop),
            IpAddr::V6(a) => self.v6.insert(u128::from(a), 128, prefix.len, hop),
        }
    }

    pub fn lookup(&self, dst: IpAddr) -> Option<NextHop> {
        match dst {
            IpAddr::V4(a) => self.v4.lookup(u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a), 128),
        }
    }
}

/// The RTN_* address types `addrtype` knows (bit positions in its masks).
pub mod rtn {
    pub const UNICAST: u8 = 1;
    pub const LOCAL: u8 = 2;
    pub const BROADCAST: u8 = 3;
    pub const MULTICAST: u8 = 5;
    pub const UNREACHABLE: u8 = 7;
}

/// Interfaces, routes and the router's own addresses.
#[derive(Debug, Clone)]
pub struct Topology {
    pub ifaces: Vec<IfaceInfo>,
    pub routes: RouteTable,
    /// Every address the router owns (interface addresses and extra local addresses).
    pub local: HashSet<IpAddr>,
    /// Directed broadcast addresses of the connected IPv4 subnets.
    pub broadcast: HashSet<Ipv4Addr>,
    pub forwarding: bool,
    /// Accept 127/8 destinations arriving from interfaces (`net.ipv4.conf.*.route_localnet`).
    pub route_localnet: bool,
    /// MASQUERADE/REDIRECT on an interface without an address leave the packet untranslated
    /// instead of dropping it (the kernel drops). Only `trace` sets this, for its stand-in
    /// interface whose address is unknown.
    pub lenient_nat: bool,
    /// TCP sockets the router's own stack listens on (the metrics endpoint): what
    /// `-m socket` finds.
    pub listeners: Vec<std::net::SocketAddr>,
}

impl Default for Topology {
    /// No interfaces, no routes, forwarding on (a router's default).
    fn default() -> Self {
        Topology {
            ifaces: Vec::new(),
            routes: RouteTable::default(),
            local: HashSet::new(),
            broadcast: HashSet::new(),
            forwarding: true,
            route_localnet: false,
            lenient_nat: false,
            listeners: Vec::new(),
        }
    }
}

impl Topology {
    /// Builds the topology a config describes: connected routes from interface addresses,
    /// then the `[[route]]`s.
    pub fn from_config(c: &Config) -> Topology {
        let mut t = Topology {
            forwarding: c.router.forwarding,
            route_localnet: c.router.route_localnet,
            ..Topology::default()
        };
        for i in &c.interface {
            t.add_iface(IfaceInfo {
                name: i.name.get_ref().clone(),
                addrs: i.addresses.iter().map(|a| *a.get_ref()).collect(),
                mtu: i.mtu,
            });
        }
        for a in &c.router.local_addresses {
            t.local.insert(a.get_ref().addr);
        }
        if let Some(l) = c.metrics.listen.as_ref().and_then(|l| l.get_ref().parse().ok()) {
            t.listeners.push(l);
        }
        for r in &c.route {
            if let Some(id) = t.iface_id(r.dev.get_ref()) {
                t.routes.insert(
                    *r.to.get_ref(),
                    NextHop {
                        iface: id,
                        via: r.via.as_ref().map(|v| *v.get_ref()),
                    },
                );
            }
        }
        t
    }

    /// Adds an interface with its addresses and connected routes.
    pub fn add_iface(&mut self, info: IfaceInfo) -> IfaceId {
        let id = IfaceId(self.ifaces.len() as u16);
        for a in &info.addrs {
            self.local.insert(a.addr);
            self.routes.insert(
                Cidr {
                    addr: network(a),
                    len: a.len,
                },
                NextHop { iface: id, via: None },
            );
            if let (IpAddr::V4(v4), true) = (a.addr, a.len < 31) {
                let m = crate::ruleset::value::prefix_mask(a.len);
                self.broadcast.insert(Ipv4Addr::from(u32::from(v4) | !m));
            }
        }
        self.ifaces.push(info);
        id
    }

    pub fn iface_id(&self, name: &str) -> Option<IfaceId> {
        self.ifaces
            .iter()
            .position(|i| i.name == name)
            .map(|i| IfaceId(i as u16))
    }

    pub fn iface(&self, id: IfaceId) -> &IfaceInfo {
        &self.ifaces[usize::from(id.0)]
    }

    pub fn name(&self, id: Option<IfaceId>) -> &str {
        id.map_or("", |i| self.iface(i).name.as_str())
    }

    /// Whether the router owns `a` (127/8 and ::1 always).
    pub fn is_local(&self, a: IpAddr) -> bool {
        a.is_loopback() || self.local.contains(&a)
    }

    /// The address type of `a`, as `inet_dev_addr_type`; with `dev`, LOCAL and BROADCAST are
    /// judged against that interface's addresses only (`--limit-iface-in/out`).
    pub fn addr_type(&self, a: IpAddr, dev: Option<IfaceId>) -> u8 {
        match a {
            IpAddr::V4(v) => {
                if v.is_broadcast() || v.is_unspecified() {
                    return rtn::BROADCAST;
                }
                if v.is_multicast() {
                    return rtn::MULTICAST;
                }
                let (local, bcast) = match dev {
                    None => (self.is_local(a), self.broadcast.contains(&v)),
                    Some(d) => {
                        let i = self.iface(d);
                        let local = v.is_loopback() || i.addrs.iter().any(|c| c.addr == a);
                        let bcast = i.addrs.iter().any(|c| match c.addr {
                            IpAddr::V4(x) if c.len < 31 => {
                                let m = crate::ruleset::value::prefix_mask(c.len);
                                u32::from(x) | !m == u32::from(v)
                            }
                            _ => false,
                        });
                        (local, bcast)
                    }
                };
                if local {
                    rtn::LOCAL
                } else if bcast {
                    rtn::BROADCAST
                } else {
                    rtn::UNICAST
                }
            }
            IpAddr::V6(v) => {
                if v.is_multicast() {
                    rtn::MULTICAST
                } else if self.is_local(a) {
                    rtn::LOCAL
                } else {
                    rtn::UNICAST
                }
            }
        }
    }

    /// The routing decision for a packet to `dst` that is not for the router itself.
    pub fn route(&self, dst: IpAddr) -> Option<NextHop> {
        self.routes.lookup(dst)
    }
}

fn network(c: &Cidr) -> IpAddr {
    match c.addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & crate::ruleset::value::prefix_mask(c.len))),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask(128, c.len)).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = RouteTable::default();
        let hop = |i| NextHop {
            iface: IfaceId(i),
            via: None,
        };
        t.insert(cidr("0.0.0.0/0"), hop(0));
        t.insert(cidr("10.0.0.0/8"), hop(1));
        t.insert(cidr("10.1.0.0/16"), hop(2));
        t.insert(cidr("2001:db8::/32"), hop(3));
        let l = |s: &str| t.lookup(s.parse().unwrap()).map(|h| h.iface.0);
        assert_eq!(l("10.1.2.3"), Some(2));
        assert_eq!(l("10.2.2.3"), Some(1));
        assert_eq!(l("192.0.2.1"), Some(0));
        assert_eq!(l("2001:db8::1"), Some(3));
        assert_eq!(l("2001:db9::1"), None, "an IPv4 default route does not catch IPv6");
    }

    #[test]
    fn address_types() {
        let mut t = Topology::default();
        let lan = t.add_iface(IfaceInfo {
            name: "lan0".into(),
            addrs: vec![cidr("10.0.1.1/24")],
            mtu: 1500,
        });
        t.add_iface(IfaceInfo {
            name: "wan0".into(),
            addrs: vec![cidr("10.0.2.1/24")],
            mtu: 1500,
        });
        let ty = |s: &str, d| t.addr_type(s.parse().unwrap(), d);
        assert_eq!(ty("10.0.1.1", None), rtn::LOCAL);
        assert_eq!(ty("127.0.0.5", None), rtn::LOCAL);
        assert_eq!(ty("10.0.1.255", None), rtn::BROADCAST);
        assert_eq!(ty("224.0.0.1", None), rtn::MULTICAST);
        assert_eq!(ty("8.8.8.8", None), rtn::UNICAST);
        assert_eq!(ty("10.0.2.1", Some(lan)), rtn::UNICAST, "local only on wan0");
        assert_eq!(t.route("10.0.2.7".parse().unwrap()).unwrap().iface.0, 1);
    }
}
