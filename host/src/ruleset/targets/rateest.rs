//! `RATEEST` (`libxt_RATEEST.c`, `xt_RATEEST.c`): counts every packet a rule meets into the
//! rate estimator `--rateest-name` and continues; `-m rateest` compares the estimated rates
//! ([`crate::eval::rateest`]). iptables turns `--rateest-interval` into the kernel's
//! `interval` (-2..=3, a period of 250 ms << (interval + 2)) and `--rateest-ewmalog` into
//! `ewma_log`, and prints them back from those, so `1s`/`8s` saves as `1.0s`/`8.0s` and an
//! interval of 100us as `250.0ms`. Rules naming one estimator share it; two that name it with
//! different parameters are refused, as `xt_rateest_tg_checkentry` refuses the second.

use super::TargetExt;
use crate::eval::rateest::Params;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use std::fmt::Write as _;

/// `IFNAMSIZ` less the NUL: longer names are cut, as iptables cuts them.
pub(crate) const MAX_NAME: usize = 15;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateEst {
    pub name: String,
    pub params: Params,
}

#[derive(Debug, Clone, Default)]
pub struct Builder {
    name: Option<String>,
    /// Microseconds, as `RATEEST_get_time` reads them.
    interval: Option<u32>,
    ewma: Option<u32>,
}

/// A name cut to what the kernel's `char name[IFNAMSIZ]` holds.
pub(crate) fn cut_name(mut v: String) -> String {
    if v.len() > MAX_NAME {
        let mut end = MAX_NAME;
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        v.truncate(end);
    }
    v
}

/// `RATEEST_get_time`: a number (`strtod`) in microseconds, or with `s`/`sec`/`secs`,
/// `ms`/`msec`/`msecs`, `us`/`usec`/`usecs` (any case); stored in an `unsigned int` as C
/// converts it on x86-64 (through 64 bits, then cut).
fn get_time(s: &str) -> Option<u32> {
    let (t, rest) = crate::ruleset::value::strtod(s)?;
    let scale = match rest.to_ascii_lowercase().as_str() {
        "" => 1.0,
        "s" | "sec" | "secs" => 1e6,
        "ms" | "msec" | "msecs" => 1e3,
        "us" | "usec" | "usecs" => 1.0,
        _ => return None,
    };
    Some((t * scale) as i64 as u32)
}

/// `RATEEST_print_time`.
fn print_time(out: &mut String, us: u32) {
    let t = f64::from(us);
    if t >= 1e6 {
        let _ = write!(out, " {:.1}s", t / 1e6);
    } else if t >= 1e3 {
        let _ = write!(out, " {:.1}ms", t / 1e3);
    } else {
        let _ = write!(out, " {us}us");
    }
}

/// `RATEEST_final_check`: the kernel's interval and ewma_log for the times given.
fn params(interval_us: u32, ewma_us: u32) -> Result<Params, String> {
    let Some(code) = (0..=5).find(|i| u64::from(interval_us) <= (1u64 << i) * 250_000) else {
        return Err("RATEEST: interval value is too large".into());
    };
    // As the C loop computes `1 << ewma_log` in an int (at 31 it is INT_MIN).
    let mut ewma_log = 32;
    for l in 1..32u32 {
        let w = 1.0 - 1.0 / f64::from(1i32.wrapping_shl(l));
        if f64::from(interval_us) / -w.ln() > f64::from(ewma_us) {
            ewma_log = l;
            break;
        }
    }
    let ewma_log = ewma_log - 1;
    if ewma_log == 0 || ewma_log >= 31 {
        return Err("RATEEST: ewmalog value is out of range".into());
    }
    Ok(Params {
        interval: code as i8 - 2,
        ewma_log: ewma_log as u8,
    })
}

impl TargetExt for RateEst {
    type Builder = Builder;
    const OPTIONS: &'static [&'static str] = &["rateest-name", "rateest-interval", "rateest-ewmalog"];

    fn start() -> Builder {
        Builder::default()
    }

    fn option(b: &mut Builder, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        match opt {
            "rateest-name" => {
                c.once(&b.name, "--rateest-name")?;
                b.name = Some(cut_name(c.value("--rateest-name")?));
            }
            "rateest-interval" => {
                c.once(&b.interval, "--rateest-interval")?;
                let v = c.value("--rateest-interval")?;
                let Some(t) = get_time(&v) else {
                    return c.err_value(format!("RATEEST: bad interval value \"{v}\""));
                };
                b.interval = Some(t);
            }
            _ => {
                c.once(&b.ewma, "--rateest-ewmalog")?;
                let v = c.value("--rateest-ewmalog")?;
                let Some(t) = get_time(&v) else {
                    return c.err_value(format!("RATEEST: bad ewmalog value \"{v}\""));
                };
                b.ewma = Some(t);
            }
        }
        Ok(())
    }

    fn finish(b: Builder, _: RuleProto, _: bool) -> Result<RateEst, String> {
        let name = b.name.ok_or("RATEEST: option \"--rateest-name\" must be specified")?;
        let interval = b
            .interval
            .ok_or("RATEEST: option \"--rateest-interval\" must be specified")?;
        let ewma = b
            .ewma
            .ok_or("RATEEST: option \"--rateest-ewmalog\" must be specified")?;
        Ok(RateEst {
            name,
            params: params(interval, ewma)?,
        })
    }

    fn save(&self, out: &mut String) {
        // __RATEEST_print: both times from the kernel's values, in 32-bit arithmetic.
        let interval = ((1_000_000u32) << (self.params.interval + 2)) / 4;
        let ewma = interval.wrapping_mul(1u32 << self.params.ewma_log);
        let _ = write!(out, " --rateest-name {} --rateest-interval", self.name);
        print_time(out, interval);
        out.push_str(" --rateest-ewmalog");
        print_time(out, ewma);
    }

    fn list(&self, out: &mut String, _: bool) {
        // `RATEEST_print`: the save form's words without `--rateest-`.
        let mut s = String::new();
        self.save(&mut s);
        out.push_str(&s.replace(" --rateest-", " "));
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, eng: &Engine) -> Option<Verdict> {
        // The engine made every estimator its RATEEST rules name when it was built.
        if let Some(e) = eng.rateest.get(&self.name) {
            e.count(u64::from(p.h.total_len), cx.now);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_become_the_kernels_parameters() {
        let p = |i: &str, e: &str| params(get_time(i).unwrap(), get_time(e).unwrap());
        assert_eq!(
            p("250ms", "500ms"),
            Ok(Params {
                interval: -2,
                ewma_log: 1
            })
        );
        assert_eq!(
            p("1s", "8s"),
            Ok(Params {
                interval: 0,
                ewma_log: 3
            })
        );
        assert_eq!(
            p("100us", "1ms"),
            Ok(Params {
                interval: -2,
                ewma_log: 3
            })
        );
        assert_eq!(
            p("2.5S", "20000msec"),
            Ok(Params {
                interval: 2,
                ewma_log: 3
            })
        );
        assert!(p("9s", "30s").is_err());
        assert!(p("4s", "1s").is_err());
        // 100000 s is too many microseconds for 32 bits: what is left of it counts.
        assert_eq!(
            p("8s", "100000s"),
            Ok(Params {
                interval: 3,
                ewma_log: 7
            })
        );
        assert_eq!(get_time("1x"), None);
    }
}
