//! `NFQUEUE` (`libxt_NFQUEUE.c`, `xt_NFQUEUE.c`): hand the packet to a userspace program
//! listening on a queue (or spread over `--queue-balance FIRST:LAST`).
//!
//! The program listening on a queue is a wasm plugin's target, named by a `[[queue]]` of the
//! config: its verdict is the listener's (its "continue" is NF_ACCEPT, so the packet goes on
//! to the next table, as `nf_reinject` resumes it), and it may rewrite the packet as a
//! listener may. A queue without a listener is what the kernel does when no program
//! listens: the packet is dropped, or, with `--queue-bypass`, accepted.
//!
//! `--queue-balance` spreads flows over the queues by a hash of the addresses and protocol
//! that is the same in both directions (`nfqueue_hash`); `--queue-cpu-fanout` uses the same
//! hash, as a TUN router's packets are not tied to the CPU that received them.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;

#[derive(Debug, Clone, Default)]
pub struct Nfqueue {
    pub first: u16,
    /// How many queues from `first` (1 without `--queue-balance`).
    pub total: u16,
    pub bypass: bool,
    pub cpu_fanout: bool,
    /// The queues of the range a plugin listens on, with its target's handle, in queue
    /// order: filled in when the ruleset is validated against the loaded plugins.
    pub listeners: Vec<(u16, std::sync::Arc<crate::ruleset::validate::Binding>)>,
}

impl PartialEq for Nfqueue {
    fn eq(&self, o: &Self) -> bool {
        (self.first, self.total, self.bypass, self.cpu_fanout) == (o.first, o.total, o.bypass, o.cpu_fanout)
    }
}

impl Nfqueue {
    /// The first and last queue.
    pub fn range(&self) -> (u16, u16) {
        (self.first, self.first + (self.total - 1))
    }

    /// The queue `nfqueue_hash` picks for the packet: one hash for both directions of a flow.
    fn queue_of(&self, p: &Pkt) -> u16 {
        if self.total <= 1 {
            return self.first;
        }
        use std::hash::{Hash, Hasher};
        let (s, d) = (p.h.src, p.h.dst);
        let mut hasher = std::hash::DefaultHasher::new();
        (s.min(d), s.max(d), p.h.proto).hash(&mut hasher);
        let h = hasher.finish() as u32;
        // reciprocal_scale: the hash scaled into the range.
        self.first + ((u64::from(h) * u64::from(self.total)) >> 32) as u16
    }
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
            listeners: Vec::new(),
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

    fn list(&self, out: &mut String, _: bool) {
        // `NFQUEUE_print_v3`.
        if self.total > 1 {
            let _ = write!(out, " NFQUEUE balance {}:{}", self.first, self.first + self.total - 1);
        } else {
            let _ = write!(out, " NFQUEUE num {}", self.first);
        }
        if self.bypass {
            out.push_str(" bypass");
        }
        if self.cpu_fanout {
            out.push_str(" cpu-fanout");
        }
    }

    fn tun_note(&self) -> Option<&'static str> {
        (self.listeners.len() < usize::from(self.total)).then_some(
            "a queue of this rule has no [[queue]] plugin listening: its packets are dropped (accepted with --queue-bypass)",
        )
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, eng: &Engine) -> Option<Verdict> {
        let q = self.queue_of(p);
        let listener = self
            .listeners
            .binary_search_by_key(&q, |l| l.0)
            .ok()
            .map(|i| self.listeners[i].1.handle);
        match (listener, &eng.plugins) {
            (Some(h), Some(host)) => {
                cx.obs.event(&|| format!("NFQUEUE {q}: to its plugin"));
                Some(host.call_target(h, p, cx).unwrap_or(Verdict::Accept))
            }
            _ => {
                cx.obs.event(&|| format!("NFQUEUE {q}: no program listens"));
                Some(if self.bypass { Verdict::Accept } else { Verdict::Drop })
            }
        }
    }
}

/// `-j QUEUE`: the standard verdict NF_QUEUE, which is queue 0 without bypass (what
/// `NFQUEUE --queue-num 0` does); saved as `-j QUEUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Queue(pub Nfqueue);

impl TargetExt for Queue {
    type Builder = ();
    const OPTIONS: &'static [&'static str] = &[];

    fn start() {}

    fn option(_: &mut (), _: &str, _: bool, _: &mut Cursor) -> PResult<()> {
        Ok(())
    }

    fn finish(_: (), _: RuleProto, _: bool) -> Result<Queue, String> {
        Ok(Queue(Nfqueue {
            total: 1,
            ..Nfqueue::default()
        }))
    }

    fn save(&self, _: &mut String) {}

    fn tun_note(&self) -> Option<&'static str> {
        self.0.tun_note()
    }

    fn apply(&self, p: &mut Pkt, cx: &mut Cx, eng: &Engine) -> Option<Verdict> {
        self.0.apply(p, cx, eng)
    }
}
