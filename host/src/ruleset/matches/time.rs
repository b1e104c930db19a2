//! `-m time` (`libxt_time.c`, `xt_time.c`): the wall-clock time a packet arrives — a date
//! range, a daily time range (spanning midnight when it ends before it starts; with
//! `--contiguous` the span belongs to the day it started), weekdays and days of the month.
//!
//! The time is the caller's (`Cx::wall`, from `now`), in UTC. `--kerneltz` asks for the
//! kernel's timezone (`sys_tz`), a fixed offset systemd sets from the local timezone at
//! boot: rtrouter takes the local timezone's offset when it starts (`Cx::kernel_tz`), and as
//! in the kernel the offset does not follow daylight saving changes until a restart.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, PResult};
use std::fmt::Write as _;

const ALL_MONTHDAYS: u32 = 0xffff_fffe;
const ALL_WEEKDAYS: u8 = 0xfe;
const MAX_DAYTIME: u32 = 24 * 60 * 60 - 1;
const DEFAULT_DATESTOP: u32 = i32::MAX as u32;
const WEEKDAYS: [&str; 8] = ["", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    /// Seconds since the epoch.
    pub date_start: u32,
    pub date_stop: u32,
    /// Seconds into the day.
    pub daytime_start: u32,
    pub daytime_stop: u32,
    /// Bit `d` for day `d` of the month (1..=31).
    pub monthdays: u32,
    /// Bit `d` for weekday `d` (1 Monday ..= 7 Sunday).
    pub weekdays: u8,
    pub kerneltz: bool,
    pub contiguous: bool,
}

impl Default for Time {
    fn default() -> Self {
        Time {
            date_start: 0,
            date_stop: DEFAULT_DATESTOP,
            daytime_start: 0,
            daytime_stop: MAX_DAYTIME,
            monthdays: ALL_MONTHDAYS,
            weekdays: ALL_WEEKDAYS,
            kerneltz: false,
            contiguous: false,
        }
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (the inverse).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY[-MM[-DD[Thh[:mm[:ss]]]]]`, UTC (`time_parse_date`).
fn parse_date(s: &str) -> Option<u32> {
    let (date, clock) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut d = date.split('-');
    let num = |x: &str, max: u32| x.parse::<u32>().ok().filter(|v| *v <= max);
    let year = num(d.next()?, 2038).filter(|y| *y >= 1970)?;
    let month = d.next().map_or(Some(1), |m| num(m, 12).filter(|m| *m >= 1))?;
    let day = d.next().map_or(Some(1), |x| num(x, 31).filter(|x| *x >= 1))?;
    if d.next().is_some() {
        return None;
    }
    let (mut h, mut mi, mut sec) = (0, 0, 0);
    if let Some(t) = clock {
        let mut p = t.split(':');
        h = num(p.next()?, 23)?;
        mi = p.next().map_or(Some(0), |x| num(x, 59))?;
        sec = p.next().map_or(Some(0), |x| num(x, 59))?;
        if p.next().is_some() {
            return None;
        }
    }
    let secs = days_from_civil(i64::from(year), month, day) * 86_400 + i64::from(h * 3600 + mi * 60 + sec);
    u32::try_from(secs).ok()
}

/// `hh:mm[:ss]`.
fn parse_daytime(s: &str) -> Option<u32> {
    let mut p = s.split(':');
    let num = |x: &str, max: u32| x.parse::<u32>().ok().filter(|v| *v <= max);
    let h = num(p.next()?, 23)?;
    let m = num(p.next()?, 59)?;
    let sec = p.next().map_or(Some(0), |x| num(x, 59))?;
    p.next().is_none().then_some(h * 3600 + m * 60 + sec)
}

fn parse_monthdays(s: &str) -> Option<u32> {
    s.split(',').try_fold(0u32, |acc, d| {
        let n: u32 = d.parse().ok()?;
        (1..=31).contains(&n).then_some(acc | (1 << n))
    })
}

fn parse_weekdays(s: &str) -> Option<u8> {
    s.split(',').try_fold(0u8, |acc, d| {
        if let Ok(n) = d.parse::<u8>() {
            return (1..=7).contains(&n).then_some(acc | (1 << n));
        }
        let i = WEEKDAYS
            .iter()
            .position(|w| !w.is_empty() && d.len() >= 2 && w.starts_with(&d[..2]))?;
        Some(acc | (1 << i))
    })
}

fn print_date(out: &mut String, opt: &str, t: u32) {
    if t == 0 {
        return;
    }
    let secs = i64::from(t);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let day = secs.rem_euclid(86_400);
    let _ = write!(
        out,
        " --{opt} {y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        day / 3600,
        day / 60 % 60,
        day % 60
    );
}

impl MatchExt for Time {
    type Builder = Time;
    type Compiled = Time;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &[
        "datestart",
        "datestop",
        "timestart",
        "timestop",
        "weekdays",
        "monthdays",
        "localtz",
        "utc",
        "kerneltz",
        "contiguous",
    ];

    fn option(t: &mut Time, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        let name = format!("--{opt}");
        let invertible = matches!(opt, "monthdays" | "weekdays");
        if !invertible
            && matches!(
                opt,
                "datestart" | "datestop" | "timestart" | "timestop" | "contiguous" | "kerneltz" | "localtz" | "utc"
            )
        {
            c.no_invert(inv, &name)?;
        }
        match opt {
            "datestart" | "datestop" => {
                let v = c.value(&name)?;
                let d = parse_date(&v).map_or_else(
                    || {
                        c.err_value(format!(
                            "time: invalid date `{v}' (YYYY[-MM[-DD[Thh[:mm[:ss]]]]], 1970 to 2038)"
                        ))
                    },
                    Ok,
                )?;
                if opt == "datestart" {
                    t.date_start = d;
                } else {
                    t.date_stop = d;
                }
            }
            "timestart" | "timestop" => {
                let v = c.value(&name)?;
                let d = parse_daytime(&v)
                    .map_or_else(|| c.err_value(format!("time: invalid time `{v}' (hh:mm[:ss])")), Ok)?;
                if opt == "timestart" {
                    t.daytime_start = d;
                } else {
                    t.daytime_stop = d;
                }
            }
            "monthdays" => {
                let v = c.value(&name)?;
                let m = parse_monthdays(&v).map_or_else(|| c.err_value(format!("time: bad --monthdays `{v}'")), Ok)?;
                t.monthdays = if inv { m ^ ALL_MONTHDAYS } else { m };
            }
            "weekdays" => {
                let v = c.value(&name)?;
                let w = parse_weekdays(&v).map_or_else(|| c.err_value(format!("time: bad --weekdays `{v}'")), Ok)?;
                t.weekdays = if inv { w ^ ALL_WEEKDAYS } else { w };
            }
            "contiguous" => t.contiguous = true,
            "kerneltz" | "localtz" => t.kerneltz = true,
            "utc" => t.kerneltz = false,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(t: Time, _: RuleProto) -> Result<Time, String> {
        if t.contiguous && t.daytime_start < t.daytime_stop {
            return Err("time: --contiguous only makes sense when stoptime is smaller than starttime".into());
        }
        Ok(t)
    }

    fn save(&self, out: &mut String) {
        if self.daytime_start != 0 || self.daytime_stop != MAX_DAYTIME {
            for (opt, v) in [("timestart", self.daytime_start), ("timestop", self.daytime_stop)] {
                let _ = write!(out, " --{opt} {:02}:{:02}:{:02}", v / 3600, v / 60 % 60, v % 60);
            }
        }
        if self.monthdays != ALL_MONTHDAYS {
            let days: Vec<String> = (1..=31)
                .filter(|d| self.monthdays & (1 << d) != 0)
                .map(|d| d.to_string())
                .collect();
            let _ = write!(out, " --monthdays {}", days.join(","));
        }
        if self.weekdays != ALL_WEEKDAYS {
            let days: Vec<&str> = (1..=7)
                .filter(|d| self.weekdays & (1 << d) != 0)
                .map(|d| WEEKDAYS[d])
                .collect();
            let _ = write!(out, " --weekdays {}", days.join(","));
        }
        print_date(out, "datestart", self.date_start);
        // As libxt_time: the default stop (2038-01-19T03:14:07) prints too.
        print_date(out, "datestop", self.date_stop);
        if self.kerneltz {
            out.push_str(" --kerneltz");
        }
        if self.contiguous {
            out.push_str(" --contiguous");
        }
    }

    fn compile(&self, _: &CompileEnv) -> Time {
        *self
    }

    fn test(t: &Time, _: &Pkt, cx: &mut Cx, _: &Engine) -> bool {
        // `time_mt`.
        let mut stamp = (cx.wall / 1_000_000_000) as i64;
        if t.kerneltz {
            // `stamp -= 60 * sys_tz.tz_minuteswest`.
            stamp += i64::from(cx.kernel_tz);
        }
        if stamp < i64::from(t.date_start) || stamp > i64::from(t.date_stop) {
            return false;
        }
        let daytime = stamp.rem_euclid(86_400) as u32;
        if t.daytime_start < t.daytime_stop {
            if daytime < t.daytime_start || daytime > t.daytime_stop {
                return false;
            }
        } else {
            if daytime < t.daytime_start && daytime > t.daytime_stop {
                return false;
            }
            // The early part of a span across midnight is the previous day's.
            if t.contiguous && daytime <= t.daytime_stop {
                stamp -= 86_400;
            }
        }
        let days = stamp.div_euclid(86_400);
        // 1970-01-01 was a Thursday (weekday 4, Monday = 1).
        let weekday = ((days + 3).rem_euclid(7) + 1) as u8;
        if t.weekdays & (1 << weekday) == 0 {
            return false;
        }
        if t.monthdays != ALL_MONTHDAYS {
            let (_, _, mday) = civil_from_days(days);
            if t.monthdays & (1 << mday) == 0 {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01T02:00:00"), Some(7200));
        assert_eq!(parse_date("2001-02-03T04:05:06"), Some(981_173_106));
        assert_eq!(parse_date("2001"), Some(978_307_200));
        assert_eq!(parse_date("1969"), None);
        let mut s = String::new();
        print_date(&mut s, "datestart", 981_173_106);
        assert_eq!(s, " --datestart 2001-02-03T04:05:06");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }
}
