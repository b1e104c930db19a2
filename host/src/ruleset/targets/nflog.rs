//! `NFLOG` (`libxt_NFLOG.c`, `xt_NFLOG.c`): the packet to a log group; here a log line with
//! the group, rate limited as LOG is.

use super::TargetExt;
use crate::eval::log::LogFlags;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::{parse_uint, save_string};
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nflog {
    pub group: u16,
    pub prefix: String,
    /// The copy length; `true` when given with the legacy spelling `--nflog-range`.
    pub size: Option<(u32, bool)>,
    /// 0 = not set (the kernel's default).
    pub threshold: u16,
}

impl TargetExt for Nflog {
    type Builder = Nflog;

    fn start() -> Nflog {
        Nflog::default()
    }

    const OPTIONS: &'static [&'static str] = &[
        "nflog-group",
        "nflog-prefix",
        "nflog-range",
        "nflog-size",
        "nflog-threshold",
    ];

    fn option(n: &mut Nflog, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        let name = format!("--{opt}");
        match opt {
            "nflog-group" => {
                let v = c.value(&name)?;
                n.group = parse_uint(&v, 0, 65535).map_or_else(|| c.err_value("NFLOG: bad --nflog-group"), Ok)? as u16;
            }
            "nflog-prefix" => {
                // Like libxt_NFLOG, a longer prefix is cut to the kernel's 63 bytes.
                let v = c.raw_value(&name)?;
                n.prefix = v.chars().take(63).collect();
            }
            "nflog-range" | "nflog-size" => {
                let v = c.value(&name)?;
                let size =
                    parse_uint(&v, 0, u32::MAX.into()).map_or_else(|| c.err_value("NFLOG: bad size"), Ok)? as u32;
                n.size = Some((size, opt == "nflog-range"));
            }
            "nflog-threshold" => {
                let v = c.value(&name)?;
                n.threshold =
                    parse_uint(&v, 1, 65535).map_or_else(|| c.err_value("NFLOG: bad --nflog-threshold"), Ok)? as u16;
            }
            _ => return c.err(format!("NFLOG: unknown option {name}")),
        }
        Ok(())
    }

    fn finish(n: Nflog, _: RuleProto, _: bool) -> Result<Nflog, String> {
        Ok(n)
    }

    fn save(&self, out: &mut String) {
        if !self.prefix.is_empty() {
            let _ = write!(out, " --nflog-prefix {}", save_string(&self.prefix));
        }
        if self.group != 0 {
            let _ = write!(out, " --nflog-group {}", self.group);
        }
        if let Some((s, legacy)) = self.size {
            let _ = write!(out, " --nflog-{} {s}", if legacy { "range" } else { "size" });
        }
        if self.threshold != 0 {
            let _ = write!(out, " --nflog-threshold {}", self.threshold);
        }
    }

    fn list(&self, out: &mut String, _: bool) {
        // `nflog_print(info, "nflog-")`: the save form without the dashes.
        let mut s = String::new();
        self.save(&mut s);
        out.push_str(&s.replace(" --nflog-", " nflog-"));
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, _: &Engine) -> Option<Verdict> {
        if cx.log.admit(cx.now) {
            let line = super::log::log_line(p, cx, &self.prefix, LogFlags::default());
            tracing::info!(target: "rtrouter::packet", group = self.group, "{line}");
            cx.obs.event(&|| format!("NFLOG group {}: {line}", self.group));
        }
        None
    }
}
