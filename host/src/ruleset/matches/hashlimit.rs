//! `-m hashlimit` (`libxt_hashlimit.c`, `xt_hashlimit.c`, revision 3): a token bucket per key
//! (source and/or destination address under a mask, ports), in packets (`1/sec`) or bytes
//! (`4kb/s`). `--hashlimit-upto` matches while a key is within its rate, `--hashlimit-above`
//! once it is over; `--hashlimit-rate-match` instead compares the key's measured rate over
//! `--hashlimit-rate-interval` seconds with the rate. Rules naming the same table share it.
//! Idle keys are forgotten after `--hashlimit-htable-expire` ms; with `--hashlimit-htable-max`
//! a full table refuses new keys (their packets match nothing, as the kernel hot-drops them).
//!
//! Values are kept in the kernel's units, so rules save back exactly as iptables-save prints
//! them: a packet rate as the period per packet in microseconds, a byte rate as the kernel's
//! cost (`bytes_to_cost`), a byte burst in multiples of the rate.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::state::{lock, HashLimitTable};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const SCALE: u64 = 1_000_000;
const BYTE_SHIFT: u32 = 4;
const DEFAULT_BURST: u64 = 5;
const BURST_MAX: u64 = 10_000;
const GC_INTERVAL: u32 = 1000;
const BYTE_EXPIRE: u32 = 15;
const BYTE_EXPIRE_BURST: u32 = 60;

const SIP: u8 = 1;
const DIP: u8 = 2;
const SPT: u8 = 4;
const DPT: u8 = 8;

const RATES: [(&str, u64); 4] = [
    ("day", SCALE * 86_400),
    ("hour", SCALE * 3600),
    ("min", SCALE * 60),
    ("sec", SCALE),
];

fn bytes_to_cost(bytes: u64) -> u64 {
    let r = (bytes >> BYTE_SHIFT) as u32;
    u64::from(u32::MAX) / (u64::from(r) + 1)
}

fn cost_to_bytes(cost: u64) -> u64 {
    let r = u64::from(u32::MAX).checked_div(cost).unwrap_or(u64::from(u32::MAX));
    r.saturating_sub(1) << BYTE_SHIFT
}

fn factor(c: Option<char>) -> u64 {
    match c {
        Some('m') => 1024 * 1024,
        Some('k') => 1024,
        _ => 1,
    }
}

/// `atoll`: the leading digits.
fn leading(s: &str) -> u64 {
    let d: String = s.chars().take_while(char::is_ascii_digit).collect();
    d.parse().unwrap_or(0)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashLimit {
    pub name: String,
    /// `--hashlimit-above`.
    pub above: bool,
    pub bytes: bool,
    /// Packets: µs per packet; bytes: the kernel's cost.
    pub avg: u64,
    pub burst: u64,
    pub mode: u8,
    pub size: u32,
    pub max: u32,
    pub gc_interval: u32,
    pub expire: u32,
    pub srcmask: u8,
    pub dstmask: u8,
    /// The family's full prefix (32 or 128): the masks' default, not printed.
    pub full: u8,
    pub rate_match: bool,
    pub interval: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Builder {
    name: Option<String>,
    rate: Option<(bool, bool, u64, u32)>,
    burst: Option<u64>,
    mode: Option<u8>,
    size: Option<u32>,
    max: Option<u32>,
    gc_interval: Option<u32>,
    expire: Option<u32>,
    srcmask: Option<u8>,
    dstmask: Option<u8>,
    rate_match: bool,
    interval: Option<u32>,
}

/// A rate: `(bytes, value, seconds the default expire is)`.
fn parse_rate(v: &str) -> Result<(bool, u64, u32), String> {
    if let Some(at) = v.find("b/s").filter(|&i| i > 0) {
        let r = leading(v);
        if r == 0 {
            return Err(format!("bad rate `{v}'"));
        }
        let bytes = r * factor(v[..at].chars().last());
        let cost = bytes_to_cost(bytes);
        if cost == 0 {
            return Err(format!("rate too high `{v}'"));
        }
        return Ok((true, cost, BYTE_EXPIRE));
    }
    let mult = match v.split_once('/') {
        None => 1,
        Some((_, "")) => return Err(format!("bad rate `{v}'")),
        Some((_, u)) => {
            let u = u.to_ascii_lowercase();
            match () {
                _ if "second".starts_with(&u) => 1,
                _ if "minute".starts_with(&u) => 60,
                _ if "hour".starts_with(&u) => 3600,
                _ if "day".starts_with(&u) => 86_400,
                _ => return Err(format!("bad rate unit in `{v}'")),
            }
        }
    };
    let r = leading(v);
    if r == 0 {
        return Err(format!("bad rate `{v}'"));
    }
    let per = SCALE * mult / r;
    if per == 0 {
        return Err(format!("rate too fast `{v}'"));
    }
    Ok((false, per, mult as u32))
}

/// `--hashlimit-burst N[kb|mb]` (bytes with a unit).
fn parse_burst(v: &str) -> Option<(u64, bool)> {
    let digits = v.len() - v.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (num, rest) = v.split_at(digits);
    let n: u64 = num.parse().ok()?;
    match rest {
        "" => Some((n, false)),
        "b" | "kb" | "mb" => Some((n * factor(rest.chars().next()), true)),
        _ => None,
    }
}

/// `print_rate`: the rate in the largest unit that shows it exactly; and the expire that goes
/// with it (ms).
fn print_rate(out: &mut String, period: u64) -> u32 {
    let mut i = 1;
    while i < RATES.len() {
        let m = RATES[i].1;
        if period > m || m / period < m % period {
            break;
        }
        i += 1;
    }
    let (name, m) = RATES[i - 1];
    let _ = write!(out, " {}/{name}", m / period);
    (m / SCALE * 1000) as u32
}

fn unit(r: u64, exact_cost: Option<u64>) -> (u64, &'static str) {
    for (name, t) in [("m", 1024 * 1024u64), ("k", 1024)] {
        if r >= t && exact_cost.is_none_or(|c| bytes_to_cost(r & !(t - 1)) == c) {
            return (r / t, name);
        }
    }
    (r, "")
}

impl MatchExt for HashLimit {
    type Builder = Builder;
    type Compiled = (HashLimit, Arc<HashLimitTable>);
    const SIDE_EFFECT: bool = true;
    const OPTIONS: &'static [&'static str] = &[
        "hashlimit-upto",
        "hashlimit-above",
        "hashlimit-burst",
        "hashlimit-mode",
        "hashlimit-name",
        "hashlimit-srcmask",
        "hashlimit-dstmask",
        "hashlimit-htable-size",
        "hashlimit-htable-max",
        "hashlimit-htable-gcinterval",
        "hashlimit-htable-expire",
        "hashlimit-rate-match",
        "hashlimit-rate-interval",
    ];

    fn option(b: &mut Builder, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        let Some(o) = opt.strip_prefix("hashlimit-") else {
            return Ok(false);
        };
        let name = format!("--{opt}");
        c.no_invert(inv, &name)?;
        let num = |c: &mut Cursor, max: u64| -> PResult<u64> {
            let v = c.value(&name)?;
            parse_uint(&v, 0, max).map_or_else(|| c.err_value(format!("hashlimit: bad {name} `{v}'")), Ok)
        };
        match o {
            "upto" | "above" => {
                if b.rate.is_some() {
                    return c.err("hashlimit: only one of --hashlimit-upto and --hashlimit-above");
                }
                let v = c.value(&name)?;
                let (bytes, avg, mult) = parse_rate(&v).or_else(|m| c.err_value(format!("hashlimit: {m}")))?;
                b.rate = Some((o == "above", bytes, avg, mult));
            }
            "burst" => {
                c.once(&b.burst, &name)?;
                let v = c.value(&name)?;
                let Some((n, is_bytes)) = parse_burst(&v) else {
                    return c.err_value(format!("hashlimit: bad --hashlimit-burst `{v}'"));
                };
                if !is_bytes && !(1..=BURST_MAX).contains(&n) {
                    return c.err_value(format!("hashlimit: --hashlimit-burst must be 1 to {BURST_MAX}"));
                }
                b.burst = Some(n);
            }
            "mode" => {
                let v = c.value(&name)?;
                let mut m = 0;
                for part in v.split(',') {
                    m |= match part {
                        "srcip" => SIP,
                        "dstip" => DIP,
                        "srcport" => SPT,
                        "dstport" => DPT,
                        _ => return c.err_value(format!("hashlimit: bad mode `{part}'")),
                    };
                }
                b.mode = Some(m);
            }
            "name" => {
                let v = c.value(&name)?;
                if v.is_empty() || v.len() > 31 {
                    return c.err_value("hashlimit: the name must be 1 to 31 characters");
                }
                b.name = Some(v);
            }
            "htable-size" => b.size = Some(num(c, u64::from(u32::MAX))? as u32),
            "htable-max" => b.max = Some(num(c, u64::from(u32::MAX))? as u32),
            "htable-gcinterval" => b.gc_interval = Some(num(c, u64::from(u32::MAX))? as u32),
            "htable-expire" => b.expire = Some(num(c, u64::from(u32::MAX))? as u32),
            // Up to the family's address length (ip6tables: 128).
            "srcmask" => b.srcmask = Some(num(c, c.family.max_prefix().into())? as u8),
            "dstmask" => b.dstmask = Some(num(c, c.family.max_prefix().into())? as u8),
            "rate-match" => b.rate_match = true,
            "rate-interval" => {
                let n = num(c, u64::from(u32::MAX))?;
                if n == 0 {
                    return c.err_value("hashlimit: --hashlimit-rate-interval must be at least 1");
                }
                b.interval = Some(n as u32);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(b: Builder, p: RuleProto) -> Result<HashLimit, String> {
        let full = p.family.max_prefix();
        let (above, bytes, avg, mult) = b
            .rate
            .ok_or("hashlimit: --hashlimit-upto or --hashlimit-above is required")?;
        let name = b.name.ok_or("hashlimit: --hashlimit-name is required")?;
        let mut expire = b.expire.unwrap_or(mult * 1000);
        let burst = if bytes {
            match b.burst {
                Some(n) => {
                    let per = cost_to_bytes(avg);
                    if n < per {
                        return Err(format!("hashlimit: burst cannot be smaller than {per}b"));
                    }
                    if b.expire.is_none() {
                        expire = BYTE_EXPIRE_BURST * 1000;
                    }
                    n.div_ceil(per)
                }
                None => 0,
            }
        } else {
            b.burst.unwrap_or(DEFAULT_BURST)
        };
        Ok(HashLimit {
            name,
            above,
            bytes,
            avg,
            burst,
            mode: b.mode.unwrap_or(0),
            size: b.size.unwrap_or(0),
            max: b.max.unwrap_or(0),
            gc_interval: b.gc_interval.unwrap_or(GC_INTERVAL),
            expire,
            srcmask: b.srcmask.unwrap_or(full),
            dstmask: b.dstmask.unwrap_or(full),
            full,
            rate_match: b.rate_match,
            interval: b.interval.unwrap_or(1),
        })
    }

    fn save(&self, out: &mut String) {
        out.push_str(if self.above {
            " --hashlimit-above"
        } else {
            " --hashlimit-upto"
        });
        let quantum = if self.bytes {
            let r = cost_to_bytes(self.avg);
            let (n, u) = unit(r, Some(self.avg));
            let _ = write!(out, " {n}{u}b/s");
            if self.burst == 0 {
                BYTE_EXPIRE * 1000
            } else {
                let (n, u) = unit(r * self.burst, None);
                let _ = write!(out, " --hashlimit-burst {n}{u}b");
                BYTE_EXPIRE_BURST * 1000
            }
        } else {
            let q = print_rate(out, self.avg);
            let _ = write!(out, " --hashlimit-burst {}", self.burst);
            q
        };
        if self.mode != 0 {
            let names: Vec<&str> = [(SIP, "srcip"), (SPT, "srcport"), (DIP, "dstip"), (DPT, "dstport")]
                .iter()
                .filter(|(b, _)| self.mode & b != 0)
                .map(|(_, n)| *n)
                .collect();
            let _ = write!(out, " --hashlimit-mode {}", names.join(","));
        }
        let _ = write!(out, " --hashlimit-name {}", self.name);
        if self.size != 0 {
            let _ = write!(out, " --hashlimit-htable-size {}", self.size);
        }
        if self.max != 0 {
            let _ = write!(out, " --hashlimit-htable-max {}", self.max);
        }
        if self.gc_interval != GC_INTERVAL {
            let _ = write!(out, " --hashlimit-htable-gcinterval {}", self.gc_interval);
        }
        if self.expire != quantum {
            let _ = write!(out, " --hashlimit-htable-expire {}", self.expire);
        }
        if self.srcmask != self.full {
            let _ = write!(out, " --hashlimit-srcmask {}", self.srcmask);
        }
        if self.dstmask != self.full {
            let _ = write!(out, " --hashlimit-dstmask {}", self.dstmask);
        }
        if self.rate_match {
            out.push_str(" --hashlimit-rate-match");
            if self.interval != 1 {
                let _ = write!(out, " --hashlimit-rate-interval {}", self.interval);
            }
        }
    }

    fn compile(&self, env: &CompileEnv) -> (HashLimit, Arc<HashLimitTable>) {
        (self.clone(), env.shared.hashlimit(&self.name))
    }

    fn test((h, table): &(HashLimit, Arc<HashLimitTable>), p: &Pkt, cx: &mut Cx, _: &Engine) -> bool {
        // An address under its mask: IPv4's 32 bits or IPv6's 128.
        let masked = |a: IpAddr, len: u8| match a {
            IpAddr::V4(v) => u128::from(u32::from(v) & crate::ruleset::value::prefix_mask(len)),
            IpAddr::V6(v) => u128::from(v) & crate::ruleset::value::prefix_mask6(len),
        };
        let (sport, dport) = p.h.ports().unwrap_or((0, 0));
        let key = [
            if h.mode & SIP != 0 {
                masked(p.h.src, h.srcmask)
            } else {
                0
            },
            if h.mode & DIP != 0 {
                masked(p.h.dst, h.dstmask)
            } else {
                0
            },
            (if h.mode & SPT != 0 { u128::from(sport) << 16 } else { 0 })
                | if h.mode & DPT != 0 { u128::from(dport) } else { 0 },
        ];
        let now = cx.now;
        let expire_ns = u64::from(h.expire) * 1_000_000;
        let mut map = lock(&table.buckets);
        // Forget idle keys every gc interval.
        let gc = u64::from(h.gc_interval.max(1)) * 1_000_000;
        if now.saturating_sub(table.swept.load(Ordering::Relaxed)) >= gc {
            table.swept.store(now, Ordering::Relaxed);
            map.retain(|_, b| now.saturating_sub(b.last) < expire_ns);
        }
        // Packets: credit in µs of period (a packet costs `avg`); bytes: in bytes.
        let (cost, cap, rate_per_ns) = if h.bytes {
            let per_sec = cost_to_bytes(h.avg).max(1);
            (u64::from(p.h.total_len), per_sec * h.burst.max(1), per_sec as f64 / 1e9)
        } else {
            (h.avg, h.avg * h.burst, 1e-3)
        };
        if !map.contains_key(&key) {
            if h.max != 0 && map.len() >= h.max as usize {
                return false;
            }
            map.insert(
                key,
                crate::eval::state::HlBucket {
                    credit: cap,
                    last: now,
                    window_start: now,
                    window_count: 0,
                },
            );
        }
        let b = map.get_mut(&key).expect("inserted above");
        let elapsed = now.saturating_sub(b.last);
        b.last = now;
        if h.rate_match {
            // The key's rate over the interval against the configured rate.
            let window = u64::from(h.interval) * 1_000_000_000;
            if now.saturating_sub(b.window_start) >= window {
                b.window_start = now;
                b.window_count = 0;
            }
            b.window_count += cost_unit(h, p);
            let allowed = if h.bytes {
                cost_to_bytes(h.avg) * u64::from(h.interval)
            } else {
                SCALE * u64::from(h.interval) / h.avg.max(1)
            };
            let under = b.window_count <= allowed;
            return under != h.above;
        }
        b.credit = (b.credit + (elapsed as f64 * rate_per_ns) as u64).min(cap.max(cost));
        if b.credit >= cost {
            b.credit -= cost;
            !h.above
        } else {
            h.above
        }
    }
}

/// What one packet adds to a rate-match window: 1, or its bytes.
fn cost_unit(h: &HashLimit, p: &Pkt) -> u64 {
    if h.bytes {
        u64::from(p.h.total_len)
    } else {
        1
    }
}
