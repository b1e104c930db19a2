//! `LOG` (`libipt_LOG.c`, `nf_log_syslog.c`): a kernel-style line for the packet, rate
//! limited as the router's packet log is.

use super::TargetExt;
use crate::eval::log::{format_line, LogFlags};
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::{parse_uint, save_string};
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub prefix: String,
    pub level: u8,
    pub tcp_sequence: bool,
    pub tcp_options: bool,
    pub ip_options: bool,
    pub uid: bool,
    pub macdecode: bool,
}

impl TargetExt for Log {
    type Builder = Log;

    fn start() -> Log {
        Log {
            prefix: String::new(),
            level: 4,
            tcp_sequence: false,
            tcp_options: false,
            ip_options: false,
            uid: false,
            macdecode: false,
        }
    }

    const OPTIONS: &'static [&'static str] = &[
        "log-level",
        "log-prefix",
        "log-tcp-sequence",
        "log-tcp-options",
        "log-ip-options",
        "log-uid",
        "log-macdecode",
    ];

    fn option(l: &mut Log, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        let name = format!("--{opt}");
        match opt {
            "log-prefix" => {
                let v = c.raw_value(&name)?;
                if v.len() > 29 {
                    return c.err_value("LOG: --log-prefix is longer than 29 characters");
                }
                if v.contains('\n') {
                    return c.err_value("LOG: newlines are not allowed in --log-prefix");
                }
                l.prefix = v;
            }
            "log-level" => {
                let v = c.value(&name)?;
                const LEVELS: [&str; 8] = ["emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"];
                l.level = match parse_uint(&v, 0, 7) {
                    Some(n) => n as u8,
                    None => match v.as_str() {
                        "panic" => 0,
                        "err" => 3,
                        "warn" => 4,
                        _ => LEVELS
                            .iter()
                            .position(|n| *n == v)
                            .map_or_else(|| c.err_value(format!("LOG: unknown level `{v}'")), Ok)?
                            as u8,
                    },
                };
            }
            "log-tcp-sequence" => l.tcp_sequence = true,
            "log-tcp-options" => l.tcp_options = true,
            "log-ip-options" => l.ip_options = true,
            "log-uid" => l.uid = true,
            "log-macdecode" => l.macdecode = true,
            _ => return c.err(format!("LOG: unknown option {name}")),
        }
        Ok(())
    }

    fn finish(l: Log, _: RuleProto, _: bool) -> Result<Log, String> {
        Ok(l)
    }

    fn save(&self, out: &mut String) {
        if !self.prefix.is_empty() {
            let _ = write!(out, " --log-prefix {}", save_string(&self.prefix));
        }
        if self.level != 4 {
            let _ = write!(out, " --log-level {}", self.level);
        }
        for (on, opt) in [
            (self.tcp_sequence, " --log-tcp-sequence"),
            (self.tcp_options, " --log-tcp-options"),
            (self.ip_options, " --log-ip-options"),
            (self.uid, " --log-uid"),
            (self.macdecode, " --log-macdecode"),
        ] {
            if on {
                out.push_str(opt);
            }
        }
    }

    fn list(&self, out: &mut String, numeric: bool) {
        // `LOG_print`.
        let flags = [
            (self.tcp_sequence, 0x01, "tcp-sequence"),
            (self.tcp_options, 0x02, "tcp-options"),
            (self.ip_options, 0x04, "ip-options"),
            (self.uid, 0x08, "uid"),
            (self.macdecode, 0x20, "macdecode"),
        ];
        out.push_str(" LOG");
        if numeric {
            let bits: u32 = flags.iter().filter(|f| f.0).map(|f| f.1).sum();
            let _ = write!(out, " flags {bits} level {}", self.level);
        } else {
            const LEVELS: [&str; 8] = ["emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"];
            let _ = write!(out, " level {}", LEVELS.get(usize::from(self.level)).unwrap_or(&"?"));
            for (_, _, name) in flags.iter().filter(|f| f.0) {
                let _ = write!(out, " {name}");
            }
        }
        if !self.prefix.is_empty() {
            let _ = write!(out, " prefix \"{}\"", self.prefix);
        }
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, _: &Engine) -> Option<Verdict> {
        if cx.log.admit(cx.now) {
            let flags = LogFlags {
                tcp_sequence: self.tcp_sequence,
                tcp_options: self.tcp_options,
                ip_options: self.ip_options,
            };
            let line = log_line(p, cx, &self.prefix, flags);
            match self.level {
                0..=3 => tracing::error!(target: "rtrouter::packet", "{line}"),
                4 => tracing::warn!(target: "rtrouter::packet", "{line}"),
                5 | 6 => tracing::info!(target: "rtrouter::packet", "{line}"),
                _ => tracing::debug!(target: "rtrouter::packet", "{line}"),
            }
            cx.obs.event(&|| format!("LOG: {line}"));
        }
        None
    }
}

/// The kernel-style log line LOG and NFLOG write for `p`.
pub(super) fn log_line(p: &Pkt, cx: &Cx, prefix: &str, flags: LogFlags) -> String {
    format_line(
        prefix,
        cx.topo.name(p.in_if),
        cx.topo.name(p.out_if),
        p.buf,
        &p.h,
        p.mark,
        flags,
    )
}
