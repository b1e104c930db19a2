//! Packet and byte counters of rules and built-in chain policies.
//!
//! A counter belongs to a rule (or a built-in chain) by identity, as in the kernel: the
//! source form holds it behind an `Arc`, so a rule that stays across a change (cloned into
//! the next ruleset) keeps counting where it was, while a new rule, a replaced one (`-R`) or a
//! zeroed one (`-Z`) gets a fresh counter. Engines count into the same counters, so a swap of
//! generations loses no counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Packets and bytes, updated from every worker.
#[derive(Debug, Default)]
pub struct Counter {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
}

impl Counter {
    /// A counter starting at `packets` and `bytes` (`-c`, `[p:b]`).
    pub fn starting(packets: u64, bytes: u64) -> Arc<Counter> {
        Arc::new(Counter {
            packets: AtomicU64::new(packets),
            bytes: AtomicU64::new(bytes),
        })
    }

    /// A new counter at zero.
    pub fn fresh() -> Arc<Counter> {
        Arc::new(Counter::default())
    }

    pub fn add(&self, bytes: u64) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn get(&self) -> (u64, u64) {
        (self.packets.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed))
    }
}
