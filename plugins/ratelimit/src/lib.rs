//! `ratelimit`: a token bucket per source address, like `hashlimit --hashlimit-mode srcip`,
//! matching the packets *over* the limit: `--args "rate=10/s,burst=20"` (units s, m, h).
//! The buckets live in the host's key–value store, shared by every worker, and are updated
//! with compare-and-swap, so the limit holds however many workers run the plugin.
#![cfg_attr(target_arch = "wasm32", no_std)]
extern crate alloc;

use alloc::string::String;
use rtrouter_sdk::host::{kv_cas, kv_get};
use rtrouter_sdk::{export_match, Match, Packet};

#[derive(Debug)]
pub struct RateLimit {
    /// Tokens added per second, in millionths of a packet.
    micro_per_sec: u64,
    /// Bucket size in millionths of a packet.
    cap: u64,
    /// Distinguishes rules' buckets in the shared store.
    tag: u8,
}

/// One packet, in the bucket's unit (millionths, so that rates like 1/h keep precision).
const ONE: u64 = 1_000_000;

impl Match for RateLimit {
    fn new(args: &str) -> Result<Self, String> {
        let (mut rate, mut burst) = (None, None);
        for kv in args.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match kv.split_once('=') {
                Some(("rate", v)) => {
                    let (n, unit) = v.split_once('/').unwrap_or((v, "s"));
                    let n: u64 = n.trim().parse().map_err(|_| alloc::format!("bad rate `{v}'"))?;
                    let per = match unit.trim() {
                        "s" | "sec" | "second" => 1,
                        "m" | "min" | "minute" => 60,
                        "h" | "hour" => 3600,
                        u => return Err(alloc::format!("bad rate unit `{u}' (s, m or h)")),
                    };
                    rate = Some(n * ONE / per);
                }
                Some(("burst", v)) => {
                    burst = Some(v.trim().parse::<u64>().map_err(|_| alloc::format!("bad burst `{v}'"))?)
                }
                _ => return Err(alloc::format!("unknown argument `{kv}' (rate=N/UNIT,burst=N)")),
            }
        }
        let micro_per_sec = rate
            .filter(|r| *r > 0)
            .ok_or("rate=N/UNIT is required and must be positive")?;
        let burst = burst.unwrap_or(5).max(1);
        let tag = (micro_per_sec ^ burst) as u8;
        Ok(RateLimit {
            micro_per_sec,
            cap: burst * ONE,
            tag,
        })
    }

    fn matches(&self, p: &Packet) -> bool {
        let src = p.src();
        if src.is_empty() {
            return false;
        }
        let mut key = [0u8; 17];
        key[0] = self.tag;
        key[1..1 + src.len()].copy_from_slice(src);
        let key = &key[..1 + src.len()];
        let now = p.now_ns();
        // Value: tokens (micro-packets) and the time they were counted, little endian.
        for _ in 0..16 {
            let mut cur = [0u8; 16];
            let old = kv_get(key, &mut cur).filter(|n| *n == 16).map(|_| cur);
            let (tokens, last) = match old {
                Some(c) => (
                    u64::from_le_bytes(c[..8].try_into().unwrap_or_default()),
                    u64::from_le_bytes(c[8..].try_into().unwrap_or_default()),
                ),
                None => (self.cap, now),
            };
            let refill = now.saturating_sub(last).saturating_mul(self.micro_per_sec) / 1_000_000_000;
            let avail = (tokens + refill).min(self.cap);
            let (left, over) = if avail >= ONE {
                (avail - ONE, false)
            } else {
                (avail, true)
            };
            // Keep the time of the last refill exactly so fractions of a token are not lost.
            let stamp = if refill > 0 || old.is_none() { now } else { last };
            let mut new = [0u8; 16];
            new[..8].copy_from_slice(&left.to_le_bytes());
            new[8..].copy_from_slice(&stamp.to_le_bytes());
            match kv_cas(key, old.as_ref().map(|c| &c[..]), &new) {
                Ok(true) => return over,
                Ok(false) => continue,
                // The store is full: do not police what cannot be tracked.
                Err(_) => return false,
            }
        }
        // Persistent contention: count the packet as over the limit.
        true
    }
}

export_match!(RateLimit);

#[cfg(test)]
mod tests {
    use super::*;
    use rtrouter_sdk::abi::META_NOW_NS;
    use rtrouter_sdk::testing::udp;

    fn at(src: [u8; 4], t: u64) -> alloc::vec::Vec<u8> {
        let mut b = udp(src, [10, 0, 0, 9], 1, 2, b"");
        b[META_NOW_NS..META_NOW_NS + 8].copy_from_slice(&t.to_le_bytes());
        b
    }

    #[test]
    fn burst_then_rate_per_source() {
        let m = RateLimit::new("rate=10/s,burst=3").unwrap();
        let over: alloc::vec::Vec<bool> = (0..5)
            .map(|_| m.matches(&Packet::new(&at([10, 0, 0, 1], 1_000))))
            .collect();
        assert_eq!(over, [false, false, false, true, true]);
        // Another source has its own bucket.
        assert!(!m.matches(&Packet::new(&at([10, 0, 0, 2], 1_000))));
        // 100 ms later, one token is back (10/s).
        assert!(!m.matches(&Packet::new(&at([10, 0, 0, 1], 100_001_000))));
        assert!(m.matches(&Packet::new(&at([10, 0, 0, 1], 100_002_000))));
        assert!(RateLimit::new("rate=0/s").is_err());
        assert!(RateLimit::new("burst=3").is_err());
        assert!(RateLimit::new("rate=5/fortnight").is_err());
    }
}
