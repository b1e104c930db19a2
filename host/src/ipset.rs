//! IP sets, as the kernel's `ip_set` keeps them: named sets of addresses, networks, ports and
//! their combinations that `-m set` looks packets up in, changed while the router runs
//! (`ipset add/del/flush/swap`) without touching the rules.
//!
//! Types: `hash:ip`, `hash:net`, `hash:ip,port`, `hash:net,port`, `hash:ip,port,ip` and
//! `bitmap:port`, families `inet` and `inet6`; options `timeout` (a default per set, overridable per
//! entry), `counters` (packets and bytes per entry, counted by matching packets), `maxelem`,
//! `hashsize` (accepted, sizes nothing here) and `range` for `bitmap:port`. Entries are
//! printed as `ipset(8)` prints them (`ip_set_core.c`, `ipset_print.c`).
//!
//! A set's members sit behind a reader-writer lock: the packet path takes it for reading,
//! the control plane for a change; rules hold the set itself (`Arc`), so a change is visible
//! to the next packet and `swap` exchanges contents under both locks.

use crate::ruleset::value::{parse_uint, prefix_mask, prefix_mask6};
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A set type: which dimensions an entry has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetType {
    HashIp,
    HashNet,
    HashIpPort,
    HashNetPort,
    HashIpPortIp,
    BitmapPort,
}

impl SetType {
    pub fn parse(s: &str) -> Option<SetType> {
        Some(match s {
            "hash:ip" => SetType::HashIp,
            "hash:net" => SetType::HashNet,
            "hash:ip,port" => SetType::HashIpPort,
            "hash:net,port" => SetType::HashNetPort,
            "hash:ip,port,ip" => SetType::HashIpPortIp,
            "bitmap:port" => SetType::BitmapPort,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SetType::HashIp => "hash:ip",
            SetType::HashNet => "hash:net",
            SetType::HashIpPort => "hash:ip,port",
            SetType::HashNetPort => "hash:net,port",
            SetType::HashIpPortIp => "hash:ip,port,ip",
            SetType::BitmapPort => "bitmap:port",
        }
    }

    /// The kernel's current revision of the type (what `ipset list` shows).
    fn revision(self) -> u8 {
        match self {
            SetType::HashIp => 6,
            SetType::HashNet => 7,
            SetType::HashIpPort => 7,
            SetType::HashNetPort => 8,
            SetType::HashIpPortIp => 5,
            SetType::BitmapPort => 4,
        }
    }

    fn has_net(self) -> bool {
        matches!(self, SetType::HashNet | SetType::HashNetPort)
    }

    /// How many `src`/`dst` flags a `-m set` over this set uses.
    pub fn dimensions(self) -> usize {
        match self {
            SetType::HashIp | SetType::HashNet | SetType::BitmapPort => 1,
            SetType::HashIpPort | SetType::HashNetPort => 2,
            SetType::HashIpPortIp => 3,
        }
    }
}

/// A set's header: what `create` gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub kind: SetType,
    /// Default lifetime of an entry, seconds (`timeout 0` entries never expire).
    pub timeout: Option<u32>,
    pub counters: bool,
    pub maxelem: u32,
    pub hashsize: u32,
    /// `bitmap:port`'s `range FROM-TO`.
    pub range: Option<(u16, u16)>,
    /// `family inet6`: the set holds IPv6 addresses (and only IPv6 packets find them).
    pub inet6: bool,
}

impl Header {
    /// The family's unspecified address: the value of an unused address dimension.
    fn zero(&self) -> IpAddr {
        if self.inet6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        }
    }

    /// An address's full prefix length in this family.
    fn full(&self) -> u8 {
        if self.inet6 {
            128
        } else {
            32
        }
    }
}

/// `a` under a `len`-bit prefix.
fn masked(a: IpAddr, len: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V4(Ipv4Addr::from(u32::from(v) & prefix_mask(u32::from(len.min(32)) as u8))),
        IpAddr::V6(v) => IpAddr::V6(Ipv6Addr::from(u128::from(v) & prefix_mask6(len))),
    }
}

/// An address as a sort key: IPv4 before IPv6, each in numeric order.
fn order(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// One entry's key. Unused dimensions are zero; addresses of `net` types are masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// Of the set's family.
    pub ip: IpAddr,
    /// Prefix length of a `net` entry (32 or 128 for an address).
    pub len: u8,
    /// Protocol and port of a `port` dimension (protocol 0 for `bitmap:port`).
    pub proto: u8,
    pub port: u16,
    pub ip2: IpAddr,
}

/// What an entry carries besides its key.
#[derive(Debug, Default)]
pub struct Entry {
    /// Monotonic nanoseconds when it expires; `None`: never.
    pub expires: Option<u64>,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
}

#[derive(Debug, Default)]
struct Members {
    map: HashMap<Key, Entry>,
    /// The prefix lengths present (`net` types), longest first, as the kernel tries them.
    lens: Vec<u8>,
}

impl Members {
    fn note_len(&mut self, len: u8) {
        if !self.lens.contains(&len) {
            self.lens.push(len);
            self.lens.sort_unstable_by(|a, b| b.cmp(a));
        }
    }
}

/// One set.
#[derive(Debug)]
pub struct IpSet {
    pub header: Header,
    members: RwLock<Members>,
}

/// An error from a set operation, in `ipset`'s words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetError(pub String);

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(m: impl Into<String>) -> Result<T, SetError> {
    Err(SetError(m.into()))
}

/// Per-entry options of `add`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddOpts {
    pub timeout: Option<u32>,
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

fn proto_port(s: &str) -> Option<(u8, u16)> {
    let (proto, port) = match s.split_once(':') {
        Some((p, port)) => (p, port),
        None => ("tcp", s),
    };
    let proto = match proto {
        "tcp" => 6,
        "udp" => 17,
        "sctp" => 132,
        "udplite" => 136,
        _ => return None,
    };
    let port = crate::ruleset::value::parse_port(port, if proto == 17 { "udp" } else { "tcp" })?;
    Some((proto, port))
}

fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        132 => "sctp",
        136 => "udplite",
        _ => "",
    }
}

/// An address of the set's family (`inet6`: IPv6), with `/LEN` for `net` types.
fn parse_addr(s: &str, inet6: bool) -> Option<IpAddr> {
    if inet6 {
        s.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        s.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

fn parse_net(s: &str, net: bool, h: &Header) -> Option<(IpAddr, u8)> {
    let full = h.full();
    let (a, len) = match s.split_once('/') {
        Some((a, l)) if net => (a, parse_uint(l, 1, u64::from(full))? as u8),
        Some(_) => return None,
        None => (s, full),
    };
    let ip = parse_addr(a, h.inet6)?;
    Some((masked(ip, len), len))
}

impl IpSet {
    pub fn new(header: Header) -> IpSet {
        IpSet {
            header,
            members: RwLock::new(Members::default()),
        }
    }

    /// A set of `kind` with the kernel's default options, holding `entries`.
    pub fn with_entries(kind: SetType, entries: &[&str]) -> Result<IpSet, SetError> {
        let set = IpSet::new(Header::simple(kind));
        for e in entries {
            let keys = set.parse_entry(e)?;
            set.add(&keys, AddOpts::default(), true, 0)?;
        }
        Ok(set)
    }

    /// Parses an entry as `add`/`del`/`test` take it (`10.0.0.0/24,tcp:80`). A `bitmap:port`
    /// entry may be a range (`1000-2000`): every port of it.
    pub fn parse_entry(&self, s: &str) -> Result<Vec<Key>, SetError> {
        let h = &self.header;
        let bad = || SetError(format!("Syntax error: `{s}' is not a valid {} entry", h.kind.name()));
        let parts: Vec<&str> = s.split(',').collect();
        if parts.len() != h.kind.dimensions() {
            return Err(bad());
        }
        let zero = h.zero();
        let mut k = Key {
            ip: zero,
            len: h.full(),
            proto: 0,
            port: 0,
            ip2: zero,
        };
        if h.kind == SetType::BitmapPort {
            let (lo, hi) = match parts[0].split_once('-') {
                Some((a, b)) => (a, b),
                None => (parts[0], parts[0]),
            };
            let p = |x: &str| crate::ruleset::value::parse_port(x, "tcp");
            let (lo, hi) = (p(lo).ok_or_else(bad)?, p(hi).ok_or_else(bad)?);
            let (rlo, rhi) = h.range.unwrap_or((0, u16::MAX));
            if lo > hi || lo < rlo || hi > rhi {
                return err(format!("Element is out of the range of the set: {s}"));
            }
            return Ok((lo..=hi).map(|port| Key { port, ..k }).collect());
        }
        let (ip, len) = parse_net(parts[0], h.kind.has_net(), h).ok_or_else(bad)?;
        k.ip = ip;
        k.len = len;
        if parts.len() >= 2 {
            let (proto, port) = proto_port(parts[1]).ok_or_else(bad)?;
            k.proto = proto;
            k.port = port;
        }
        if parts.len() == 3 {
            k.ip2 = parse_addr(parts[2], h.inet6).ok_or_else(bad)?;
        }
        Ok(vec![k])
    }

    /// Adds `keys`; `exist`: an entry already there is updated instead of refused.
    pub fn add(&self, keys: &[Key], o: AddOpts, exist: bool, now: u64) -> Result<(), SetError> {
        let mut m = write(&self.members);
        let timeout = o.timeout.or(self.header.timeout);
        if (o.timeout.is_some()) && self.header.timeout.is_none() {
            return err(
                "Kernel error received: set type does not support timeout (the set was created without timeout)",
            );
        }
        if (o.packets.is_some() || o.bytes.is_some()) && !self.header.counters {
            return err("Kernel error received: set was created without counters");
        }
        for k in keys {
            let live = m.map.get(k).is_some_and(|e| !expired(e, now));
            if live && !exist {
                return err("Element cannot be added to the set: it's already added");
            }
            if !live && m.map.len() >= self.header.maxelem as usize {
                m.map.retain(|_, e| !expired(e, now));
                if m.map.len() >= self.header.maxelem as usize {
                    return err("Hash is full, cannot add more elements");
                }
            }
            let e = Entry {
                expires: timeout.filter(|t| *t > 0).map(|t| now + u64::from(t) * 1_000_000_000),
                packets: AtomicU64::new(o.packets.unwrap_or(0)),
                bytes: AtomicU64::new(o.bytes.unwrap_or(0)),
            };
            m.map.insert(*k, e);
            if self.header.kind.has_net() {
                m.note_len(k.len);
            }
        }
        Ok(())
    }

    /// Deletes `keys`; `exist`: a missing entry is no error.
    pub fn del(&self, keys: &[Key], exist: bool, now: u64) -> Result<(), SetError> {
        let mut m = write(&self.members);
        for k in keys {
            match m.map.remove(k) {
                Some(e) if !expired(&e, now) => {}
                _ if exist => {}
                _ => return err("Element cannot be deleted from the set: it's not added"),
            }
        }
        Ok(())
    }

    /// Whether every key is in the set (`ipset test`: a `net` entry is looked up exactly).
    pub fn test_keys(&self, keys: &[Key], now: u64) -> bool {
        let m = read(&self.members);
        keys.iter().all(|k| m.map.get(k).is_some_and(|e| !expired(e, now)))
    }

    pub fn flush(&self) {
        let mut m = write(&self.members);
        m.map.clear();
        m.lens.clear();
    }

    /// Exchanges the members of two sets of the same type.
    pub fn swap_members(&self, other: &IpSet) {
        if std::ptr::eq(self, other) {
            return;
        }
        // Lock in address order so two swaps cannot deadlock.
        let (a, b) = if (self as *const IpSet) < (other as *const IpSet) {
            (self, other)
        } else {
            (other, self)
        };
        let mut ma = write(&a.members);
        let mut mb = write(&b.members);
        std::mem::swap(&mut *ma, &mut *mb);
    }

    pub fn len(&self, now: u64) -> usize {
        read(&self.members).map.values().filter(|e| !expired(e, now)).count()
    }

    pub fn is_empty(&self, now: u64) -> bool {
        self.len(now) == 0
    }

    /// The key a packet's values make in this set (the `SET` target): addresses whole (a
    /// `net` type's entry is the single address), the port with its protocol.
    /// `None` also for addresses of the other family (`ip_set_add` refuses them).
    pub fn key_of(&self, ip: IpAddr, proto: u8, port: u16, ip2: IpAddr) -> Option<Key> {
        let kind = self.header.kind;
        let full = self.header.full();
        if kind != SetType::BitmapPort && ip.is_ipv6() != self.header.inet6 {
            return None;
        }
        let with_port = matches!(kind, SetType::HashIpPort | SetType::HashNetPort | SetType::HashIpPortIp);
        if (with_port || kind == SetType::BitmapPort) && !matches!(proto, 6 | 17 | 132 | 136) {
            return None;
        }
        let zero = self.header.zero();
        if kind == SetType::BitmapPort {
            let (lo, hi) = self.header.range.unwrap_or((0, u16::MAX));
            return (lo..=hi).contains(&port).then_some(Key {
                ip: zero,
                len: full,
                proto: 0,
                port,
                ip2: zero,
            });
        }
        Some(Key {
            ip,
            len: full,
            proto: if with_port { proto } else { 0 },
            port: if with_port { port } else { 0 },
            ip2: if kind == SetType::HashIpPortIp { ip2 } else { zero },
        })
    }

    /// Looks a packet's values up (the match): `ip`, `port` (with its protocol) and `ip2` as
    /// the rule's flags chose them; counts the packet on the entry when the set has counters.
    /// An address of the other family is in no set (`ip_set_test` checks the family first).
    pub fn lookup(&self, ip: IpAddr, proto: u8, port: u16, ip2: IpAddr, bytes: u64, now: u64) -> bool {
        let kind = self.header.kind;
        if kind != SetType::BitmapPort && ip.is_ipv6() != self.header.inet6 {
            return false;
        }
        let m = read(&self.members);
        let probe = |k: &Key| -> bool {
            match m.map.get(k) {
                Some(e) if !expired(e, now) => {
                    if self.header.counters {
                        e.packets.fetch_add(1, Ordering::Relaxed);
                        e.bytes.fetch_add(bytes, Ordering::Relaxed);
                    }
                    true
                }
                _ => false,
            }
        };
        let zero = self.header.zero();
        let with_port = matches!(kind, SetType::HashIpPort | SetType::HashNetPort | SetType::HashIpPortIp);
        if (with_port || kind == SetType::BitmapPort) && !matches!(proto, 6 | 17 | 132 | 136) {
            return false;
        }
        let base = Key {
            ip: zero,
            len: self.header.full(),
            proto: if with_port { proto } else { 0 },
            port: if with_port || kind == SetType::BitmapPort {
                port
            } else {
                0
            },
            ip2: if kind == SetType::HashIpPortIp { ip2 } else { zero },
        };
        match kind {
            SetType::BitmapPort => probe(&base),
            SetType::HashNet | SetType::HashNetPort => m.lens.iter().any(|&len| {
                probe(&Key {
                    ip: masked(ip, len),
                    len,
                    ..base
                })
            }),
            _ => probe(&Key { ip, ..base }),
        }
    }

    /// Whether `a` is in a one-dimensional address set (`hash:ip`, `hash:net`).
    pub fn contains(&self, a: IpAddr) -> bool {
        self.lookup(a, 0, 0, self.header.zero(), 0, 0)
    }

    fn entry_text(&self, k: &Key) -> String {
        let mut s = String::new();
        match self.header.kind {
            SetType::BitmapPort => {
                let _ = write!(s, "{}", k.port);
            }
            kind => {
                let _ = write!(s, "{}", k.ip);
                if kind.has_net() && k.len != self.header.full() {
                    let _ = write!(s, "/{}", k.len);
                }
                if kind.dimensions() >= 2 {
                    let _ = write!(s, ",{}:{}", proto_name(k.proto), k.port);
                }
                if kind == SetType::HashIpPortIp {
                    let _ = write!(s, ",{}", k.ip2);
                }
            }
        }
        s
    }

    /// The members as `ipset list` prints them (one line each, with their options), sorted.
    pub fn member_lines(&self, now: u64) -> Vec<String> {
        let m = read(&self.members);
        let mut v: Vec<(Key, String)> = m
            .map
            .iter()
            .filter(|(_, e)| !expired(e, now))
            .map(|(k, e)| {
                let mut s = self.entry_text(k);
                if self.header.timeout.is_some() {
                    let left = e.expires.map_or(0, |t| t.saturating_sub(now).div_ceil(1_000_000_000));
                    let _ = write!(s, " timeout {left}");
                }
                if self.header.counters {
                    let _ = write!(
                        s,
                        " packets {} bytes {}",
                        e.packets.load(Ordering::Relaxed),
                        e.bytes.load(Ordering::Relaxed)
                    );
                }
                (*k, s)
            })
            .collect();
        v.sort_by_key(|(k, _)| (order(k.ip), k.len, k.proto, k.port, order(k.ip2)));
        v.into_iter().map(|(_, s)| s).collect()
    }

    /// The header's options as `create` and `ipset list` print them.
    pub fn header_text(&self) -> String {
        let h = &self.header;
        let mut s = String::new();
        if h.kind == SetType::BitmapPort {
            let (lo, hi) = h.range.unwrap_or((0, u16::MAX));
            let _ = write!(s, "range {lo}-{hi}");
        } else {
            let family = if h.inet6 { "inet6" } else { "inet" };
            let _ = write!(s, "family {family} hashsize {} maxelem {}", h.hashsize, h.maxelem);
        }
        if let Some(t) = h.timeout {
            let _ = write!(s, " timeout {t}");
        }
        if h.counters {
            s.push_str(" counters");
        }
        s
    }

    pub fn revision(&self) -> u8 {
        self.header.kind.revision()
    }

    /// A deep copy with members of its own.
    pub fn duplicate(&self) -> IpSet {
        let m = read(&self.members);
        let map = m
            .map
            .iter()
            .map(|(k, e)| {
                (
                    *k,
                    Entry {
                        expires: e.expires,
                        packets: AtomicU64::new(e.packets.load(Ordering::Relaxed)),
                        bytes: AtomicU64::new(e.bytes.load(Ordering::Relaxed)),
                    },
                )
            })
            .collect();
        IpSet {
            header: self.header.clone(),
            members: RwLock::new(Members {
                map,
                lens: m.lens.clone(),
            }),
        }
    }

    /// Drops expired entries (the kernel's garbage collector).
    pub fn expire(&self, now: u64) {
        if self.header.timeout.is_some() {
            write(&self.members).map.retain(|_, e| !expired(e, now));
        }
    }
}

fn expired(e: &Entry, now: u64) -> bool {
    e.expires.is_some_and(|t| t <= now)
}

/// All sets, by name: shared by every generation, changed in place by the control plane.
#[derive(Debug, Default)]
pub struct IpSets {
    sets: RwLock<HashMap<String, Arc<IpSet>>>,
}

impl Clone for IpSets {
    /// A deep copy: sets and members of its own.
    fn clone(&self) -> Self {
        let sets = read(&self.sets)
            .iter()
            .map(|(n, s)| (n.clone(), Arc::new(s.duplicate())))
            .collect();
        IpSets {
            sets: RwLock::new(sets),
        }
    }
}

impl IpSets {
    /// Adds (or replaces) a set.
    pub fn insert(&self, name: &str, set: IpSet) {
        write(&self.sets).insert(name.to_string(), Arc::new(set));
    }

    /// The set, shared: what a compiled `-m set` holds.
    pub fn get_shared(&self, name: &str) -> Option<Arc<IpSet>> {
        read(&self.sets).get(name).cloned()
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = read(&self.sets).keys().cloned().collect();
        v.sort();
        v
    }

    pub fn remove(&self, name: &str) -> Option<Arc<IpSet>> {
        write(&self.sets).remove(name)
    }

    /// Renames a set; `false` when `from` is missing or `to` taken.
    pub fn rename(&self, from: &str, to: &str) -> bool {
        let mut s = write(&self.sets);
        if s.contains_key(to) {
            return false;
        }
        match s.remove(from) {
            Some(set) => {
                s.insert(to.to_string(), set);
                true
            }
            None => false,
        }
    }

    /// Drops expired entries of every set.
    pub fn expire(&self, now: u64) {
        for s in read(&self.sets).values() {
            s.expire(now);
        }
    }
}

impl Header {
    /// A `hash:ip` or `hash:net` header with the kernel's defaults.
    pub fn simple(kind: SetType) -> Header {
        Header {
            kind,
            timeout: None,
            counters: false,
            maxelem: 65536,
            hashsize: 1024,
            range: None,
            inet6: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(kind: &str, timeout: Option<u32>, counters: bool) -> IpSet {
        IpSet::new(Header {
            timeout,
            counters,
            range: Some((0, 65535)),
            ..Header::simple(SetType::parse(kind).unwrap())
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn types_and_lookups() {
        let s = set("hash:net,port", None, false);
        let k = s.parse_entry("10.1.0.0/16,udp:53").unwrap();
        s.add(&k, AddOpts::default(), false, 0).unwrap();
        assert!(s.lookup(ip("10.1.2.3"), 17, 53, ip("0.0.0.0"), 0, 0));
        assert!(!s.lookup(ip("10.1.2.3"), 6, 53, ip("0.0.0.0"), 0, 0));
        assert!(!s.lookup(ip("10.2.2.3"), 17, 53, ip("0.0.0.0"), 0, 0));
        assert_eq!(s.member_lines(0), vec!["10.1.0.0/16,udp:53"]);
        let b = set("bitmap:port", None, false);
        b.add(&b.parse_entry("1000-1002").unwrap(), AddOpts::default(), false, 0)
            .unwrap();
        assert_eq!(b.len(0), 3);
        assert!(b.lookup(ip("1.1.1.1"), 6, 1001, ip("0.0.0.0"), 0, 0));
        assert!(!b.lookup(ip("1.1.1.1"), 1, 1001, ip("0.0.0.0"), 0, 0));
        let t = set("hash:ip,port,ip", None, false);
        assert!(t.parse_entry("1.1.1.1,80").is_err());
        t.add(
            &t.parse_entry("1.1.1.1,tcp:80,2.2.2.2").unwrap(),
            AddOpts::default(),
            false,
            0,
        )
        .unwrap();
        assert!(t.lookup(ip("1.1.1.1"), 6, 80, ip("2.2.2.2"), 0, 0));
        assert!(!t.lookup(ip("1.1.1.1"), 6, 80, ip("2.2.2.3"), 0, 0));
    }

    #[test]
    fn timeouts_counters_and_exist() {
        let s = set("hash:ip", Some(10), true);
        let k = s.parse_entry("192.0.2.1").unwrap();
        s.add(&k, AddOpts::default(), false, 0).unwrap();
        assert!(s.add(&k, AddOpts::default(), false, 0).is_err(), "already added");
        s.add(
            &k,
            AddOpts {
                timeout: Some(20),
                ..AddOpts::default()
            },
            true,
            0,
        )
        .unwrap();
        assert!(s.lookup(ip("192.0.2.1"), 0, 0, ip("0.0.0.0"), 100, 15_000_000_000));
        assert_eq!(
            s.member_lines(15_000_000_000),
            vec!["192.0.2.1 timeout 5 packets 1 bytes 100"]
        );
        assert!(!s.lookup(ip("192.0.2.1"), 0, 0, ip("0.0.0.0"), 100, 21_000_000_000));
        assert!(s.del(&k, false, 21_000_000_000).is_err(), "expired entries are gone");
        assert!(s.del(&k, true, 21_000_000_000).is_ok());
    }

    #[test]
    fn swap_exchanges_members() {
        let a = set("hash:ip", None, false);
        let b = set("hash:ip", None, false);
        a.add(&a.parse_entry("1.1.1.1").unwrap(), AddOpts::default(), false, 0)
            .unwrap();
        a.swap_members(&b);
        assert!(a.is_empty(0));
        assert!(b.contains("1.1.1.1".parse().unwrap()));
    }
}
