//! The rate estimators `RATEEST` feeds and `-m rateest` reads (`xt_RATEEST.c`,
//! `net/core/gen_estimator.c`): per name, the bytes and packets the target counted, and every
//! period (250 ms << (`interval` + 2), `gen_new_estimator`) an exponentially weighted average
//! of the rates in bytes and packets per second with 8 fraction bits, updated as `est_timer`
//! does: `av += (delta << (10 - intvl_log) >> ewma_log) - (av >> ewma_log)` in wrapping 64-bit
//! arithmetic. Reading gives `av >> 8` (`gen_estimator_read`).
//!
//! The kernel runs a timer; here the ticks that are due run when the estimator is next counted
//! or read (`now` from the caller, as everywhere in the core). Counting runs the due ticks
//! first, so a packet lands in the period it arrived in and every read sees what the kernel's
//! timer would have left.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// `RATEEST`'s parameters as the kernel keeps them: `interval` (-2..=3: 250 ms << (interval +
/// 2)) and `ewma_log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Params {
    pub interval: i8,
    pub ewma_log: u8,
}

impl Params {
    fn intvl_log(self) -> u32 {
        (i32::from(self.interval) + 2).clamp(0, 5) as u32
    }

    /// The estimator's period in nanoseconds.
    pub fn period_ns(self) -> u64 {
        250_000_000u64 << self.intvl_log()
    }
}

#[derive(Debug, Default)]
struct State {
    bytes: u64,
    packets: u64,
    last_bytes: u64,
    last_packets: u64,
    avbps: u64,
    avpps: u64,
    /// When the next tick is due (monotonic ns); 0 until the first access.
    next: u64,
}

/// One named estimator.
#[derive(Debug)]
pub struct RateEst {
    pub params: Params,
    state: Mutex<State>,
}

impl RateEst {
    pub fn new(params: Params) -> RateEst {
        RateEst {
            params,
            state: Mutex::new(State::default()),
        }
    }

    /// Runs the ticks due by `now`. After a long quiet spell the averages only decay; once a
    /// tick changes neither, the rest would not either and are skipped.
    fn advance(&self, s: &mut State, now: u64) {
        let period = self.params.period_ns();
        if s.next == 0 {
            s.next = now.saturating_add(period);
            return;
        }
        let il = self.params.intvl_log();
        let e = u32::from(self.params.ewma_log);
        while now >= s.next {
            let (ab, ap) = (s.avbps, s.avpps);
            let brate = (s.bytes.wrapping_sub(s.last_bytes) << (10 - il)) >> e;
            let rate = (s.packets.wrapping_sub(s.last_packets) << (10 - il)) >> e;
            s.avbps = s.avbps.wrapping_add(brate.wrapping_sub(s.avbps >> e));
            s.avpps = s.avpps.wrapping_add(rate.wrapping_sub(s.avpps >> e));
            let moved = s.bytes != s.last_bytes || s.packets != s.last_packets;
            s.last_bytes = s.bytes;
            s.last_packets = s.packets;
            s.next = s.next.saturating_add(period);
            if !moved && s.avbps == ab && s.avpps == ap && now >= s.next {
                // Nothing counted and the averages are at rest: so are all later ticks.
                let behind = (now - s.next) / period + 1;
                s.next = s.next.saturating_add(behind.saturating_mul(period));
            }
        }
    }

    /// `xt_rateest_tg`: one packet of `bytes`.
    pub fn count(&self, bytes: u64, now: u64) {
        let mut s = crate::eval::state::lock(&self.state);
        self.advance(&mut s, now);
        s.bytes = s.bytes.wrapping_add(bytes);
        s.packets = s.packets.wrapping_add(1);
    }

    /// `gen_estimator_read`: bytes and packets per second.
    pub fn read(&self, now: u64) -> (u32, u32) {
        let mut s = crate::eval::state::lock(&self.state);
        self.advance(&mut s, now);
        ((s.avbps >> 8) as u32, (s.avpps >> 8) as u32)
    }
}

/// The estimators by name, shared by every generation and both families' rules, as the
/// kernel's are per network namespace.
#[derive(Debug, Default)]
pub struct RateEsts {
    by_name: RwLock<HashMap<String, Arc<RateEst>>>,
}

impl RateEsts {
    /// The estimator `name`, made with `params` if there is none or it had others.
    pub fn ensure(&self, name: &str, params: Params) -> Arc<RateEst> {
        if let Some(e) = self.get(name).filter(|e| e.params == params) {
            return e;
        }
        let mut w = self.by_name.write().unwrap_or_else(|e| e.into_inner());
        let e = w
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(RateEst::new(params)));
        if e.params != params {
            *e = Arc::new(RateEst::new(params));
        }
        e.clone()
    }

    pub fn get(&self, name: &str) -> Option<Arc<RateEst>> {
        self.by_name
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_steady_rate_converges_to_itself() {
        // 250 ms interval, ewma_log 1 (500 ms): 100 packets of 1000 bytes per second.
        let e = RateEst::new(Params {
            interval: -2,
            ewma_log: 1,
        });
        let mut now = 1_000 * MS;
        for _ in 0..2_000 {
            e.count(1000, now);
            now += 10 * MS;
        }
        let (bps, pps) = e.read(now);
        assert!((99_000..=100_000).contains(&bps), "{bps}");
        assert!((99..=100).contains(&pps), "{pps}");
    }

    #[test]
    fn one_tick_as_est_timer_computes_it() {
        let e = RateEst::new(Params {
            interval: 0,
            ewma_log: 2,
        });
        e.read(0); // the first access starts the clock: tick at 1 s
        for _ in 0..10 {
            e.count(300, 500 * MS);
        }
        // delta 3000 bytes over 1 s (intvl_log 2): 3000 << 8 >> 2 = 192000 → 750 B/s.
        assert_eq!(e.read(1_000 * MS), (750, 2));
        // The next second nothing: av -= av >> 2.
        assert_eq!(e.read(2_000 * MS), (562, 1));
    }

    #[test]
    fn a_long_silence_decays_to_rest_without_running_every_tick() {
        let e = RateEst::new(Params {
            interval: -2,
            ewma_log: 3,
        });
        e.count(0, 0);
        for i in 0..100 {
            e.count(1500, i * 10 * MS);
        }
        let busy = e.read(1_000 * MS);
        assert!(busy.0 > 0);
        // A year later: at rest (what remains is below the shift, as in the kernel).
        let (bps, pps) = e.read(365 * 24 * 3600 * 1_000 * MS);
        assert!(bps < 8 && pps == 0, "{bps} {pps}");
    }
}
