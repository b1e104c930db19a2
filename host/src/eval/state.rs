//! Mutable state that rules keep between packets, held outside the immutable ruleset so a
//! ruleset swap does not lose it where netfilter would not: `recent` lists and `nfacct`
//! counters are shared by name and survive reloads ([`Shared`]); token buckets and `nth`
//! counters belong to one rule and start fresh with a new ruleset, as in the kernel.

use crate::ruleset::matches::{Limit, LIMIT_SCALE};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
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
    /// `-m hashlimit` tables by `--hashlimit-name` (rules naming the same table share it).
    pub hashlimit: Mutex<HashMap<String, Arc<HashLimitTable>>>,
    /// `IDLETIMER` timers by label (rules with one label share its timer).
    pub idletimers: Arc<IdleTimers>,
    /// `RATEEST` estimators by name (`-m rateest` reads them).
    pub rateest: Arc<super::rateest::RateEsts>,
}

/// The `IDLETIMER` timers: each restarted by every packet a rule with its label meets, and
/// when a rule with its label is added; it goes with the last rule holding its label (in
/// either family: the kernel's timer list is one for both, `idletimer_tg_destroy`).
#[derive(Debug, Default)]
pub struct IdleTimers {
    timers: std::sync::RwLock<HashMap<String, Arc<IdleTimer>>>,
    /// Per family (iptables, ip6tables), the labels its running rules hold.
    held: Mutex<[Vec<String>; 2]>,
}

/// One timer: when it runs out (monotonic ns; 0 until started), and the timeout it starts
/// with when a rule with its label has been added but no clock has been read since (`armed`,
/// 0: none).
#[derive(Debug, Default)]
pub struct IdleTimer {
    expires: AtomicU64,
    armed: AtomicU32,
}

impl IdleTimers {
    /// A rule with `label` was added: its timer (re)starts at the next
    /// [`IdleTimers::start_armed`] with `timeout_s`, as the kernel's checkentry starts a new
    /// label's timer and restarts a running one (`idletimer_tg_create`, `mod_timer`). With
    /// `restart` false the rule was already there (a generation that did not add it): only a
    /// timer that never started starts.
    pub fn arm(&self, label: &str, timeout_s: u32, restart: bool) {
        let started = |t: &IdleTimer| {
            if restart || t.expires.load(Ordering::Relaxed) == 0 {
                t.armed.store(timeout_s, Ordering::Relaxed);
            }
        };
        if let Some(t) = self.timers.read().unwrap_or_else(|e| e.into_inner()).get(label) {
            started(t);
            return;
        }
        let mut w = self.timers.write().unwrap_or_else(|e| e.into_inner());
        started(w.entry(label.to_string()).or_default());
    }

    /// The rules of `family` (0: IPv4, 1: IPv6) now hold `labels`: a timer no rule of either
    /// family holds any more goes.
    pub fn hold(&self, family: usize, mut labels: Vec<String>) {
        labels.sort();
        labels.dedup();
        let mut held = lock(&self.held);
        held[family] = labels;
        let mut w = self.timers.write().unwrap_or_else(|e| e.into_inner());
        w.retain(|k, _| held.iter().any(|l| l.binary_search(k).is_ok()));
    }

    /// Starts, at `now`, every timer a rule armed.
    pub fn start_armed(&self, now: u64) {
        for t in self.timers.read().unwrap_or_else(|e| e.into_inner()).values() {
            let a = t.armed.swap(0, Ordering::Relaxed);
            if a != 0 {
                t.expires
                    .store(now.saturating_add(u64::from(a) * 1_000_000_000), Ordering::Relaxed);
            }
        }
    }

    /// Restarts `label`'s timer to run out `timeout_s` seconds after `now`.
    pub fn touch(&self, label: &str, timeout_s: u32, now: u64) {
        let at = now.saturating_add(u64::from(timeout_s) * 1_000_000_000);
        // A rule's timer exists from its engine's build on (a packet of an engine already
        // replaced may still meet a label whose timer went: nothing to restart then).
        if let Some(t) = self.timers.read().unwrap_or_else(|e| e.into_inner()).get(label) {
            t.expires.store(at, Ordering::Relaxed);
            t.armed.store(0, Ordering::Relaxed);
        }
    }

    /// Every started timer by label, with the seconds left at `now` (negative: ran out that
    /// long ago), as `/sys/class/xt_idletimer/timers/LABEL` tells it.
    pub fn list(&self, now: u64) -> Vec<(String, i64)> {
        self.start_armed(now);
        let r = self.timers.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<(String, i64)> = r
            .iter()
            .filter_map(|(k, t)| {
                let at = t.expires.load(Ordering::Relaxed);
                (at != 0).then(|| (k.clone(), (at as i128 - now as i128).div_euclid(1_000_000_000) as i64))
            })
            .collect();
        v.sort();
        v
    }
}

/// One `hashlimit` table: a bucket per key, each with the time it was last used.
#[derive(Debug, Default)]
pub struct HashLimitTable {
    /// By source and destination (masked; IPv4 addresses as their 32 bits) and ports.
    pub buckets: Mutex<HashMap<[u128; 3], HlBucket>>,
    /// When expired entries were last swept (monotonic ns).
    pub swept: AtomicU64,
}

/// A key's state: credit (token-bucket mode) or the window count (rate-match mode).
#[derive(Debug, Clone, Copy, Default)]
pub struct HlBucket {
    pub credit: u64,
    pub last: u64,
    pub window_start: u64,
    pub window_count: u64,
}

impl Shared {
    pub fn recent(&self, name: &str) -> Arc<RecentList> {
        lock(&self.recent).entry(name.to_string()).or_default().clone()
    }

    pub fn hashlimit(&self, name: &str) -> Arc<HashLimitTable> {
        lock(&self.hashlimit).entry(name.to_string()).or_default().clone()
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

pub use crate::ipset::{IpSet, IpSets};

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
}
