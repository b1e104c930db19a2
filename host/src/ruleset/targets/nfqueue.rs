//! `NFQUEUE` (`libxt_NFQUEUE.c`, `xt_NFQUEUE.c`): hand the packet to a userspace program
//! listening on a queue (or spread over `--queue-balance FIRST:LAST`).
//!
//! rtrouter has no queue listeners, so a queued packet meets what the kernel does when no
//! program listens: it is dropped, or, with `--queue-bypass`, accepted as if the program had
//! said so.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nfqueue {
    pub first: u16,
    /// How many queues from `first` (1 without `--queue-balance`).
    pub total: u16,
    pub bypass: bool,
    pub cpu_fanout: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Builder {
    num: Option<u16>,
    balance: Option<(u16, u16)>,
    bypass: bool,
    cpu_fanout: bool,
}

impl TargetExt for Nfqueue {
    type Builder = Builder;
    const OPTIONS: &'static [&'static str] = &["queue-num", "queue-balance", "queue-bypass", "queue-cpu-fanout"];

    fn start() -> Builder {
        Builder::default()
    }

    fn option(b: &mut Builder, opt: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        match opt {
            "queue-num" => {
                c.once(&b.num, "--queue-num")?;
                let v = c.value("--queue-num")?;
                b.num = Some(
                    parse_uint(&v, 0, 65535)
                        .map_or_else(|| c.err_value(format!("NFQUEUE: bad --queue-num `{v}'")), Ok)?
                        as u16,
                );
            }
            "queue-balance" => {
                c.once(&b.balance, "--queue-balance")?;
                let v = c.value("--queue-balance")?;
                let num = |x: &str, d: u64| if x.is_empty() { Some(d) } else { parse_uint(x, 0, 65534) };
                let r = v.split_once(':').and_then(|(a, z)| Some((num(a, 0)?, num(z, 65534)?)));
                match r {
                    Some((a, z)) if a < z => b.balance = Some((a as u16, z as u16)),
                    _ => {
                        return c.err_value(format!(
                            "NFQUEUE: bad --queue-balance `{v}' (FIRST:LAST, FIRST < LAST <= 65534)"
                        ))
                    }
                }
            }
            "queue-bypass" => b.bypass = true,
            _ => b.cpu_fanout = true,
        }
        Ok(())
    }

    fn finish(b: Builder, _: RuleProto, _: bool) -> Result<Nfqueue, String> {
        if b.num.is_some() && b.balance.is_some() {
            return Err("NFQUEUE: --queue-num and --queue-balance cannot be used together".into());
        }
        if b.cpu_fanout && b.balance.is_none() {
            return Err("NFQUEUE: --queue-cpu-fanout needs --queue-balance".into());
        }
        let (first, total) = match b.balance {
            Some((a, z)) => (a, z - a + 1),
            None => (b.num.unwrap_or(0), 1),
        };
        Ok(Nfqueue {
            first,
            total,
            bypass: b.bypass,
            cpu_fanout: b.cpu_fanout,
        })
    }

    fn save(&self, out: &mut String) {
        if self.total > 1 {
            let _ = write!(out, " --queue-balance {}:{}", self.first, self.first + self.total - 1);
        } else {
            let _ = write!(out, " --queue-num {}", self.first);
        }
        if self.bypass {
            out.push_str(" --queue-bypass");
        }
        if self.cpu_fanout {
            out.push_str(" --queue-cpu-fanout");
        }
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("no program listens on NFQUEUE queues: the packet is dropped (accepted with --queue-bypass)")
    }

    fn apply(&self, _: &mut Pkt, cx: &mut Cx, _: &Engine) -> Option<Verdict> {
        cx.obs.event(&|| format!("NFQUEUE {}: no program listens", self.first));
        Some(if self.bypass { Verdict::Accept } else { Verdict::Drop })
    }
}
