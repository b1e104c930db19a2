//! Mutable state that rules keep between packets, held outside the immutable ruleset so a
//! ruleset swap does not lose it where netfilter would not: `recent` lists and `nfacct`
//! counters are shared by name and survive reloads ([`Shared`]); token buckets and `nth`
//! counters belong to one rule and start fresh with a new ruleset, as in the kernel.

use crate::config::{Cidr, Config};
use crate::ruleset::matches::{Limit, LIMIT_SCALE};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, MutexGuard};

/// Locks a mutex whose data stays consistent even if a holder panicked (every critical
/// section here is a few field updates), so a poisoned lock is simply taken over.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub use crate::ruleset::counter::Counter;

/// `-m limit`'s token bucket (`xt_limit`): credit accrues with time up to `burst` packets'
/// worth; each matching packet spends one packet's worth.
#[derive(Debug)]
pub struct Bucket {
    /// Nanoseconds of credit and the time it was last topped up.
    state: Mutex<(u64, u64)>,
    cost: u64,
    cap: u64,
}

impl Bucket {
    pub fn new(l: &Limit) -> Self {
        // avg is in 1/LIMIT_SCALE seconds per packet.
        let cost = u64::from(l.avg) * (1_000_000_000 / u64::from(LIMIT_SCALE));
        let cap = cost.saturating_mul(u64::from(l.burst.max(1)));
        Bucket {
            state: Mutex::new((cap, u64::MAX)),
            cost,
            cap,
        }
    }

    pub fn take(&self, now: u64) -> bool {
        let mut s = lock(&self.state);
        if s.1 != u64::MAX {
            s.0 = s.0.saturating_add(now.saturating_sub(s.1)).min(self.cap);
        }
        s.1 = now;
        if s.0 >= self.cost {
            s.0 -= self.cost;
            true
        } else {
            false
        }
    }
}

/// The most entries one `recent` list holds (the kernel's `ip_list_tot`); the least recently
/// seen address is forgotten first.
pub const RECENT_MAX_ENTRIES: usize = 200;
/// Timestamps kept per address (`ip_pkt_list_tot`), raised to the largest `--hitcount` used.
pub const RECENT_STAMPS: usize = 20;

#[derive(Debug, Default)]
pub struct RecentEntry {
    pub stamps: VecDeque<u64>,
    pub ttl: u8,
    /// Last time seen, for least-recently-used eviction.
    pub last: u64,
}

/// One `recent --name` list.
#[derive(Debug, Default)]
pub struct RecentList {
    pub entries: Mutex<HashMap<IpAddr, RecentEntry>>,
    pub stamps: AtomicU32,
}

impl RecentList {
    /// Records `addr` as seen at `now`, evicting the least recently seen when full.
    pub fn touch(map: &mut HashMap<IpAddr, RecentEntry>, addr: IpAddr, now: u64, ttl: u8, keep: usize) {
        if !map.contains_key(&addr) && map.len() >= RECENT_MAX_ENTRIES {
            if let Some(old) = map.iter().min_by_key(|(_, e)| e.last).map(|(a, _)| *a) {
                map.remove(&old);
            }
        }
        let e = map.entry(addr).or_default();
        if e.stamps.len() >= keep {
            e.stamps.pop_front();
        }
        e.stamps.push_back(now);
        e.last = now;
        e.ttl = ttl;
    }
}

/// State shared by name across rules and across ruleset swaps.
#[derive(Debug, Default)]
pub struct Shared {
    pub recent: Mutex<HashMap<String, Arc<RecentList>>>,
    pub nfacct: Mutex<HashMap<String, Arc<Counter>>>,
}

impl Shared {
    pub fn recent(&self, name: &str) -> Arc<RecentList> {
        lock(&self.recent).entry(name.to_string()).or_default().clone()
    }

    pub fn nfacct(&self, name: &str) -> Arc<Counter> {
        lock(&self.nfacct).entry(name.to_string()).or_default().clone()
    }

    /// Current nfacct counters by name.
    pub fn nfacct_values(&self) -> Vec<(String, (u64, u64))> {
        let mut v: Vec<_> = lock(&self.nfacct).iter().map(|(k, c)| (k.clone(), c.get())).collect();
        v.sort();
        v
    }

    /// Forgets every `recent` list (between independent trials in tests and trace).
    pub fn clear_recent(&self) {
        lock(&self.recent).clear();
    }
}

/// The ipsets the config defines: `hash:ip` and `hash:net` membership.
#[derive(Debug, Default, Clone)]
pub struct IpSets {
    sets: HashMap<String, Arc<IpSet>>,
}

#[derive(Debug, Default, Clone)]
pub struct IpSet {
    /// Members by prefix length; `hash:ip` has only full-length entries.
    by_len: HashMap<u8, HashSet<IpAddr>>,
    lens: Vec<u8>,
}

impl IpSet {
    pub fn insert(&mut self, c: Cidr) {
        let net = mask_addr(c.addr, c.len);
        self.by_len.entry(c.len).or_default().insert(net);
        if !self.lens.contains(&c.len) {
            self.lens.push(c.len);
        }
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        self.lens.iter().any(|&l| {
            let full = if a.is_ipv4() { 32 } else { 128 };
            l <= full && self.by_len.get(&l).is_some_and(|s| s.contains(&mask_addr(a, l)))
        })
    }
}

fn mask_addr(a: IpAddr, len: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V4((u32::from(v) & crate::ruleset::value::prefix_mask(len.min(32))).into()),
        IpAddr::V6(v) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            IpAddr::V6((u128::from(v) & m).into())
        }
    }
}

impl IpSets {
    pub fn from_config(c: &Config) -> IpSets {
        let mut sets = HashMap::new();
        for s in &c.ipset {
            let mut set = IpSet::default();
            for e in &s.entries {
                if let Some(cidr) = Cidr::parse(e.get_ref()) {
                    set.insert(cidr);
                }
            }
            sets.insert(s.name.get_ref().clone(), Arc::new(set));
        }
        IpSets { sets }
    }

    pub fn insert(&mut self, name: &str, set: IpSet) {
        self.sets.insert(name.to_string(), Arc::new(set));
    }

    pub fn get(&self, name: &str) -> Option<&IpSet> {
        self.sets.get(name).map(|s| &**s)
    }

    /// The set, shared: what a compiled `-m set` holds.
    pub fn get_shared(&self, name: &str) -> Option<Arc<IpSet>> {
        self.sets.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.sets.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let b = Bucket::new(&Limit {
            avg: LIMIT_SCALE,
            burst: 3,
        }); // 1/s, burst 3
        let s = 1_000_000_000u64;
        assert!(b.take(0) && b.take(1) && b.take(2));
        assert!(!b.take(3));
        assert!(!b.take(s / 2));
        assert!(b.take(s + 3));
        assert!(!b.take(s + 4));
    }

    #[test]
    fn ipset_membership() {
        let mut s = IpSet::default();
        s.insert(Cidr::parse("10.0.0.0/8").unwrap());
        s.insert(Cidr::parse("192.0.2.7/32").unwrap());
        assert!(s.contains("10.9.9.9".parse().unwrap()));
        assert!(s.contains("192.0.2.7".parse().unwrap()));
        assert!(!s.contains("192.0.2.8".parse().unwrap()));
    }
}
