//! Values that rule options take: numbers, addresses and prefixes, port ranges, protocol and
//! service names. Parsing follows libxtables (`xtables_strtoui`, `xtables_ipparse_any`,
//! `xtables_parse_port`), printing follows what `iptables-save` prints.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses an unsigned number the way `xtables_strtoui(.., base 0)` does: decimal, `0x` hex or
/// leading-`0` octal, the whole word, within `min..=max`.
pub fn parse_uint(s: &str, min: u64, max: u64) -> Option<u64> {
    if s.is_empty() || s.starts_with(['-', '+']) {
        return None;
    }
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse::<u64>().ok()?
    };
    (min..=max).contains(&v).then_some(v)
}

/// An IPv4 address with a netmask, stored already masked (`-s 10.11.12.13/8` is `10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub mask: u32,
}

impl Ipv4Net {
    pub const ANY: Ipv4Net = Ipv4Net {
        addr: Ipv4Addr::UNSPECIFIED,
        mask: 0,
    };

    pub fn new(addr: Ipv4Addr, mask: u32) -> Self {
        Ipv4Net {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            mask,
        }
    }

    /// `a.b.c.d`, `a.b.c.d/N` or `a.b.c.d/m.m.m.m`. Host names are not resolved.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, m) = match s.split_once('/') {
            Some((a, m)) => (a, Some(m)),
            None => (s, None),
        };
        let addr = parse_ipv4_network(a)?;
        let mask = match m {
            None => u32::MAX,
            Some(m) if m.contains('.') => u32::from(parse_ipv4(m)?),
            Some(m) => prefix_mask(parse_uint_dec(m, 32)? as u8),
        };
        Some(Ipv4Net::new(addr, mask))
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask == u32::from(self.addr)
    }

    /// The prefix length, if the mask is contiguous.
    pub fn prefix_len(&self) -> Option<u8> {
        let l = self.mask.leading_ones();
        (self.mask.checked_shl(l).unwrap_or(0) == 0).then_some(l as u8)
    }
}

/// An IPv6 address with a netmask, stored already masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Net {
    pub addr: Ipv6Addr,
    pub mask: u128,
}

impl Ipv6Net {
    pub fn new(addr: Ipv6Addr, mask: u128) -> Self {
        Ipv6Net {
            addr: Ipv6Addr::from(u128::from(addr) & mask),
            mask,
        }
    }

    /// `addr`, `addr/N` or `addr/mask-address` (`xtables_ip6parse_any`). Host names are not
    /// resolved.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, m) = match s.split_once('/') {
            Some((a, m)) => (a, Some(m)),
            None => (s, None),
        };
        let addr: Ipv6Addr = a.parse().ok()?;
        let mask = match m {
            None => u128::MAX,
            Some(m) if m.contains(':') => u128::from(m.parse::<Ipv6Addr>().ok()?),
            Some(m) => prefix_mask6(parse_uint_dec(m, 128)? as u8),
        };
        Some(Ipv6Net::new(addr, mask))
    }

    pub fn contains(&self, a: Ipv6Addr) -> bool {
        u128::from(a) & self.mask == u128::from(self.addr)
    }

    /// The prefix length, if the mask is contiguous.
    pub fn prefix_len(&self) -> Option<u8> {
        let l = self.mask.leading_ones();
        (self.mask.checked_shl(l).unwrap_or(0) == 0).then_some(l as u8)
    }
}

/// `addr/len` for contiguous masks (`/128` too), `addr/mask-address` otherwise: what
/// `ip6tables-save` prints (`xtables_ip6mask_to_numeric`).
impl fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix_len() {
            Some(l) => write!(f, "{}/{}", self.addr, l),
            None => write!(f, "{}/{}", self.addr, Ipv6Addr::from(self.mask)),
        }
    }
}

/// A rule's `-s`/`-d`: an IPv4 prefix in an iptables ruleset, an IPv6 one in ip6tables'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpNet {
    V4(Ipv4Net),
    V6(Ipv6Net),
}

impl IpNet {
    /// Parses an address of `family`, as iptables or ip6tables reads `-s`.
    pub fn parse(s: &str, family: super::Family) -> Option<IpNet> {
        match family {
            super::Family::V4 => Ipv4Net::parse(s).map(IpNet::V4),
            super::Family::V6 => Ipv6Net::parse(s).map(IpNet::V6),
        }
    }

    /// The prefix holds for every address of its family (`0.0.0.0/0`, `::/0`).
    pub fn is_any(&self) -> bool {
        match self {
            IpNet::V4(n) => n.mask == 0,
            IpNet::V6(n) => n.mask == 0,
        }
    }

    /// Whether `a` is inside; never for an address of the other family.
    #[inline]
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self, a) {
            (IpNet::V4(n), IpAddr::V4(a)) => n.contains(a),
            (IpNet::V6(n), IpAddr::V6(a)) => n.contains(a),
            _ => false,
        }
    }

    /// The prefix length, if the mask is contiguous.
    pub fn prefix_len(&self) -> Option<u8> {
        match self {
            IpNet::V4(n) => n.prefix_len(),
            IpNet::V6(n) => n.prefix_len(),
        }
    }

    /// The (masked) address.
    pub fn addr(&self) -> IpAddr {
        match self {
            IpNet::V4(n) => IpAddr::V4(n.addr),
            IpNet::V6(n) => IpAddr::V6(n.addr),
        }
    }

    /// The address, and `/LEN` (or `/MASK`) unless it is one host: what
    /// `xtables_ip(6)addr_to_numeric` and `xtables_ip(6)mask_to_numeric` print.
    pub fn numeric(&self) -> String {
        if self.is_host() {
            self.addr().to_string()
        } else {
            self.to_string()
        }
    }

    /// Whether the prefix is one host (`/32`, `/128`).
    pub fn is_host(&self) -> bool {
        match self {
            IpNet::V4(n) => n.mask == u32::MAX,
            IpNet::V6(n) => n.mask == u128::MAX,
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpNet::V4(n) => n.fmt(f),
            IpNet::V6(n) => n.fmt(f),
        }
    }
}

/// `addr/len` for contiguous masks, `addr/m.m.m.m` otherwise: what `iptables-save` prints for
/// `-s`/`-d`.
impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix_len() {
            Some(l) => write!(f, "{}/{}", self.addr, l),
            None => write!(f, "{}/{}", self.addr, Ipv4Addr::from(self.mask)),
        }
    }
}

/// A 32-bit range as `--espspi`/`--ahspi` take it: `N`, `N:M`, `:M`, `N:` or `:` (`N <= M`).
pub fn parse_range32(s: &str) -> Option<(u32, u32)> {
    let num = |x: &str, d: u32| {
        if x.is_empty() {
            Some(d)
        } else {
            parse_uint(x, 0, u64::from(u32::MAX)).map(|n| n as u32)
        }
    };
    let (lo, hi) = match s.split_once(':') {
        Some((a, b)) => (num(a, 0)?, num(b, u32::MAX)?),
        None if !s.is_empty() => {
            let n = num(s, 0)?;
            (n, n)
        }
        None => return None,
    };
    (lo <= hi).then_some((lo, hi))
}

/// Prints a 32-bit range as iptables does: `N` or `N:M`.
pub fn range32(out: &mut String, (lo, hi): (u32, u32)) {
    use std::fmt::Write as _;
    let _ = if lo == hi {
        write!(out, "{lo}")
    } else {
        write!(out, "{lo}:{hi}")
    };
}

/// `xtables_ipaddr_to_numeric` then `xtables_ipmask_to_numeric`: the address, and `/N` (or
/// `/MASK` for a non-prefix mask) unless it is a single address.
pub fn net_numeric(n: &Ipv4Net) -> String {
    match n.prefix_len() {
        Some(32) => n.addr.to_string(),
        _ => n.to_string(),
    }
}

/// A network address as `-s`/`-d` take it (`xtables_numeric_to_ipaddr`): one to four parts,
/// each a number in C notation (`0x1f`, `010`), missing parts zero: `10` is `10.0.0.0`, `0/0`
/// everything.
pub fn parse_ipv4_network(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut b = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        b[i] = parse_uint(p, 0, 255)? as u8;
    }
    Some(Ipv4Addr::from(b))
}

/// Strict dotted-quad parsing (no shorthand forms such as `10.1`).
pub fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

fn parse_uint_dec(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|v| *v <= max)
}

pub fn prefix_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

/// The IPv6 netmask of a `len`-bit prefix (lengths past 128 count as 128).
pub fn prefix_mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

/// An inclusive range of 16-bit values (ports, lengths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Range16 {
    pub lo: u16,
    pub hi: u16,
}

impl Range16 {
    pub const FULL: Range16 = Range16 { lo: 0, hi: u16::MAX };

    pub fn contains(&self, v: u16) -> bool {
        self.lo <= v && v <= self.hi
    }

    /// `a`, `a:b`, `:b`, `a:` or `:` (missing ends are 0 and 65535); `a > b` is refused.
    /// `names` lets single values be service names (ports) or not (lengths).
    pub fn parse(s: &str, names: Option<&str>) -> Option<Self> {
        Self::parse_reversible(s, names).filter(|r| r.lo <= r.hi)
    }

    /// As [`Range16::parse`], but `a > b` is kept: a range that contains nothing (libxt_udp
    /// accepts `--sport 1024:1023`, and the kernel's `port_match` then never matches).
    pub fn parse_reversible(s: &str, names: Option<&str>) -> Option<Self> {
        let one = |t: &str, dflt: u16| -> Option<u16> {
            if t.is_empty() {
                return Some(dflt);
            }
            parse_uint_dec(t, 65535)
                .map(|v| v as u16)
                .or_else(|| names.and_then(|proto| service_port(t, proto)))
        };
        let (lo, hi) = match s.split_once(':') {
            Some((a, b)) => (one(a, 0)?, one(b, u16::MAX)?),
            None if s.is_empty() => return None,
            None => {
                let v = one(s, 0)?;
                (v, v)
            }
        };
        Some(Range16 { lo, hi })
    }
}

/// `a` when the range is one value, else `a:b`: the form iptables-save prints.
impl fmt::Display for Range16 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}:{}", self.lo, self.hi)
        }
    }
}

/// The protocol names iptables knows without `/etc/protocols` (`xtables_chain_protos`), plus
/// the common `/etc/protocols` entries, so that printing does not depend on the host.
const PROTOCOLS: &[(&str, u8)] = &[
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("icmp", 1),
    // /etc/protocols' names come first: they are what iptables-save prints.
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("esp", 50),
    ("ah", 51),
    ("sctp", 132),
    ("mobility-header", 135),
    ("mh", 135),
    ("ipv6-mh", 135),
    ("dccp", 33),
    ("igmp", 2),
    ("ipencap", 4),
    ("gre", 47),
    ("ipv6", 41),
    ("rsvp", 46),
    ("ospf", 89),
    ("pim", 103),
    ("vrrp", 112),
    ("l2tp", 115),
    ("ipcomp", 108),
];

/// A protocol name or number; `all` is 0 (any protocol).
pub fn parse_protocol(s: &str) -> Option<u8> {
    let lower = s.to_ascii_lowercase();
    if lower == "all" {
        return Some(0);
    }
    if let Some((_, n)) = PROTOCOLS.iter().find(|(name, _)| *name == lower) {
        return Some(*n);
    }
    parse_uint_dec(s, 255).map(|v| v as u8)
}

/// The name iptables-save prints for a protocol number; numbers without a name print as numbers.
pub fn protocol_name(p: u8) -> Option<&'static str> {
    PROTOCOLS.iter().find(|(_, n)| *n == p).map(|(name, _)| *name)
}

/// Protocols that have ports, as the NAT targets and `multiport` require.
pub fn has_ports(p: u8) -> bool {
    matches!(p, 6 | 17 | 33 | 132 | 136)
}

/// Well-known service names (the subset of `/etc/services` firewalls use), so that
/// `--dport ssh` loads the same on every machine. `proto` is "tcp", "udp", ….
pub fn service_port(name: &str, _proto: &str) -> Option<u16> {
    const SERVICES: &[(&str, u16)] = &[
        ("tcpmux", 1),
        ("echo", 7),
        ("discard", 9),
        ("daytime", 13),
        ("ftp-data", 20),
        ("ftp", 21),
        ("ssh", 22),
        ("telnet", 23),
        ("smtp", 25),
        ("time", 37),
        ("whois", 43),
        ("domain", 53),
        ("bootps", 67),
        ("bootpc", 68),
        ("tftp", 69),
        ("gopher", 70),
        ("finger", 79),
        ("http", 80),
        ("www", 80),
        ("kerberos", 88),
        ("pop3", 110),
        ("sunrpc", 111),
        ("auth", 113),
        ("nntp", 119),
        ("ntp", 123),
        ("netbios-ns", 137),
        ("netbios-dgm", 138),
        ("netbios-ssn", 139),
        ("imap", 143),
        ("imap2", 143),
        ("snmp", 161),
        ("snmp-trap", 162),
        ("bgp", 179),
        ("irc", 194),
        ("ldap", 389),
        ("https", 443),
        ("microsoft-ds", 445),
        ("isakmp", 500),
        ("syslog", 514),
        ("submission", 587),
        ("ldaps", 636),
        ("rsync", 873),
        ("imaps", 993),
        ("pop3s", 995),
        ("openvpn", 1194),
        ("l2tp", 1701),
        ("pptp", 1723),
        ("radius", 1812),
        ("nfs", 2049),
        ("mysql", 3306),
        ("ipsec-nat-t", 4500),
        ("postgresql", 5432),
        ("x11", 6000),
    ];
    SERVICES.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

/// A single port: a number 0–65535 or a service name.
pub fn parse_port(s: &str, proto: &str) -> Option<u16> {
    parse_uint_dec(s, 65535)
        .map(|v| v as u16)
        .or_else(|| service_port(s, proto))
}

/// The characters iptables-save prints without quotes (`xtables_save_string`).
pub fn save_string(s: &str) -> String {
    let plain = !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        // As xtables_save_string: `"`, `\` and `'` are escaped (iptables 1.8.9 saves the
        // comment `'x'` as `"\'x\'"`, checked against the real binary).
        if matches!(c, '"' | '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A C `strtoul(s, &end, 0)` for 32-bit values: optional blanks and `+`, then decimal, `0x`
/// hex or `0` octal digits; the value and the rest of `s`. `None` without a digit or when
/// the value does not fit.
pub fn strtoul(s: &str) -> Option<(u32, &str)> {
    let t = s.trim_start().strip_prefix('+').unwrap_or(s.trim_start());
    let b = t.as_bytes();
    let (radix, start) = match (b.first(), b.get(1), b.get(2)) {
        (Some(b'0'), Some(b'x' | b'X'), Some(h)) if h.is_ascii_hexdigit() => (16, 2),
        (Some(b'0'), _, _) => (8, 0),
        _ => (10, 0),
    };
    let len = t[start..]
        .bytes()
        .take_while(|c| char::from(*c).is_digit(radix))
        .count();
    if len == 0 {
        return None;
    }
    let v = u32::from_str_radix(&t[start..start + len], radix).ok()?;
    Some((v, &t[start + len..]))
}

/// The id of `name` in an iproute2 map file (`ID NAME` lines, `#` comments), as
/// `xtables_lmap_init` reads `/etc/iproute2/rt_realms` and `/etc/iproute2/group`; `None`
/// when the file or the name is missing.
pub fn lmap_id(file: &str, name: &str) -> Option<u32> {
    lmap(file).into_iter().find(|(_, n)| n == name).map(|(id, _)| id)
}

/// The name of `id` in such a file.
pub fn lmap_name(file: &str, id: u32) -> Option<String> {
    lmap(file).into_iter().find(|(i, _)| *i == id).map(|(_, n)| n)
}

fn lmap(file: &str) -> Vec<(u32, String)> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next()?.trim();
            let mut w = l.split_whitespace();
            let (id, name) = (w.next()?, w.next()?);
            let (id, rest) = strtoul(id)?;
            rest.is_empty().then(|| (id, name.to_string()))
        })
        .collect()
}

/// The name `/etc/services` gives `port` for `proto` (`getservbyport`, as `iptables -L`
/// without `-n` prints ports); `None` when it has none (or the file is absent).
pub fn port_service_name(port: u16, proto: &str) -> Option<String> {
    static SERVICES: std::sync::OnceLock<HashMap<(u16, String), String>> = std::sync::OnceLock::new();
    let m = SERVICES.get_or_init(|| {
        let mut m = HashMap::new();
        let text = std::fs::read_to_string("/etc/services").unwrap_or_default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut f = line.split_whitespace();
            let (Some(name), Some(pp)) = (f.next(), f.next()) else {
                continue;
            };
            let Some((port, proto)) = pp.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else { continue };
            // The first entry for a port and protocol is the one getservbyport finds.
            m.entry((port, proto.to_string())).or_insert_with(|| name.to_string());
        }
        m
    });
    m.get(&(port, proto.to_string())).cloned()
}

/// The name `/etc/hosts` gives `addr`, else the one `/etc/networks` gives it as a network
/// (`gethostbyaddr` and `getnetbyaddr` from files, as `iptables -L` without `-n` prints
/// addresses; rtrouter asks no DNS server).
pub fn address_name(addr: std::net::IpAddr) -> Option<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let host = hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut f = line.split_whitespace();
        let a: std::net::IpAddr = f.next()?.parse().ok()?;
        (a == addr).then(|| f.next().map(str::to_string))?
    });
    if host.is_some() {
        return host;
    }
    let std::net::IpAddr::V4(v4) = addr else { return None };
    let networks = std::fs::read_to_string("/etc/networks").unwrap_or_default();
    networks.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut f = line.split_whitespace();
        let name = f.next()?;
        // `getnetbyaddr` compares the network number, written with its trailing zero
        // octets left out ("127" is 127.0.0.0).
        let mut octets = [0u8; 4];
        let parts: Vec<&str> = f.next()?.split('.').collect();
        if parts.is_empty() || parts.len() > 4 {
            return None;
        }
        for (i, p) in parts.iter().enumerate() {
            octets[i] = p.parse().ok()?;
        }
        (std::net::Ipv4Addr::from(octets) == v4).then(|| name.to_string())
    })
}

/// A C `strtod(s, &end)` for decimal numbers: optional blanks and sign, digits with an optional
/// fraction, an optional exponent; the value and the rest of `s`. `None` without a digit.
pub fn strtod(s: &str) -> Option<(f64, &str)> {
    let t = s.trim_start_matches([' ', '\t', '\n']);
    let b = t.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let mut n = digits(&mut i);
    if b.get(i) == Some(&b'.') {
        let mut j = i + 1;
        let f = digits(&mut j);
        if n + f > 0 {
            n += f;
            i = j;
        }
    }
    if n == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if digits(&mut j) > 0 {
            i = j;
        }
    }
    Some((t[..i].parse().ok()?, &t[i..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_strtoui() {
        assert_eq!(parse_uint("0xfeedcafe", 0, u32::MAX.into()), Some(0xfeedcafe));
        assert_eq!(parse_uint("010", 0, 100), Some(8));
        assert_eq!(parse_uint("4294967296", 0, u32::MAX.into()), None);
        assert_eq!(parse_uint("-1", 0, u32::MAX.into()), None);
        assert_eq!(parse_uint("", 0, 1), None);
    }

    #[test]
    fn prefixes_are_masked_and_printed_like_iptables_save() {
        let n = Ipv4Net::parse("10.11.12.13/255.0.255.0").unwrap();
        assert_eq!(n.to_string(), "10.0.12.0/255.0.255.0");
        assert_eq!(Ipv4Net::parse("10.11.12.13/9").unwrap().to_string(), "10.0.0.0/9");
        assert_eq!(Ipv4Net::parse("1.2.3.4").unwrap().to_string(), "1.2.3.4/32");
        assert_eq!(Ipv4Net::parse("0.0.0.0/0").unwrap().prefix_len(), Some(0));
        assert!(Ipv4Net::parse("1.2.3.4/33").is_none());
        assert!(Ipv4Net::parse("example.com").is_none());
    }

    #[test]
    fn network_addresses_autocomplete_like_libxtables() {
        assert_eq!(Ipv4Net::parse("0/0"), Some(Ipv4Net::ANY));
        assert_eq!(
            Ipv4Net::parse("10/8").map(|n| n.to_string()).as_deref(),
            Some("10.0.0.0/8")
        );
        assert_eq!(
            Ipv4Net::parse("192.168/16").map(|n| n.to_string()).as_deref(),
            Some("192.168.0.0/16")
        );
        assert_eq!(parse_ipv4_network("0x0a.1.2.3"), Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(parse_ipv4_network("1.2.3.4.5"), None);
        assert_eq!(parse_ipv4_network("256"), None);
        assert_eq!(parse_ipv4_network(""), None);
    }

    #[test]
    fn ranges() {
        assert_eq!(Range16::parse(":", None), Some(Range16::FULL));
        assert_eq!(Range16::parse("4:", None).unwrap().to_string(), "4:65535");
        assert_eq!(Range16::parse("4:4", None).unwrap().to_string(), "4");
        assert_eq!(Range16::parse("ssh", Some("tcp")).unwrap().lo, 22);
        assert!(Range16::parse("4:3", None).is_none());
        assert!(Range16::parse("65536", None).is_none());
    }

    #[test]
    fn quoting_matches_xtables_save_string() {
        assert_eq!(save_string("foo_bar-1"), "foo_bar-1");
        assert_eq!(save_string("test: "), "\"test: \"");
        assert_eq!(save_string("a\"b"), "\"a\\\"b\"");
        assert_eq!(save_string(""), "\"\"");
    }
}
