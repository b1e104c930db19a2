//! `SYNPROXY` (`libxt_SYNPROXY.c`, `xt_SYNPROXY.c`): answers a client's SYN itself with a SYN
//! cookie, and only once the client's ACK proves its address opens the connection to the
//! server on its behalf, splicing the two handshakes (`nf_synproxy_core.c`). INPUT and
//! FORWARD, with `-p tcp`. It acts on a SYN (answered, then stolen) and on an ACK (checked:
//! stolen when the cookie is good, dropped otherwise); other segments continue. Like the
//! kernel's, it is meant for packets conntrack did not pick up: SYNs untracked in raw, ACKs
//! INVALID with `[conntrack] tcp_loose = false`.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::packet::{tcp_flags, L4};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::{hooks, HookMask};
use crate::synproxy::{opt, Info};
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synproxy(pub Info);

/// The options while read, and which were given (each once).
#[derive(Debug, Clone, Copy, Default)]
pub struct Builder {
    info: Info,
    seen: u8,
}

const OPTS: [(&str, u8); 5] = [
    ("mss", opt::MSS),
    ("wscale", opt::WSCALE),
    ("sack-perm", opt::SACK_PERM),
    ("timestamp", opt::TIMESTAMP),
    ("ecn", opt::ECN),
];

impl TargetExt for Synproxy {
    type Builder = Builder;
    const OPTIONS: &'static [&'static str] = &["mss", "wscale", "sack-perm", "timestamp", "ecn"];

    fn start() -> Builder {
        Builder::default()
    }

    fn option(b: &mut Builder, name: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        let bit = OPTS.iter().find(|(n, _)| *n == name).map_or(0, |&(_, bit)| bit);
        if b.seen & bit != 0 {
            return c.err(format!("SYNPROXY: option \"--{name}\" can only be used once."));
        }
        b.seen |= bit;
        b.info.options |= bit;
        if matches!(name, "mss" | "wscale") {
            // Read as a 32-bit number and stored in the field's width, as libxt_SYNPROXY
            // does (`--mss 70000` saves as 4464).
            let v = c.value(&format!("--{name}"))?;
            let n = crate::ruleset::value::parse_uint(&v, 0, u64::from(u32::MAX)).map_or_else(
                || {
                    c.err_value(format!(
                        "SYNPROXY: bad value for option \"--{name}\", or out of range (0-4294967295)."
                    ))
                },
                Ok,
            )?;
            if name == "mss" {
                b.info.mss = n as u16;
            } else {
                b.info.wscale = n as u8;
            }
        }
        Ok(())
    }

    fn finish(b: Builder, p: RuleProto, _: bool) -> Result<Synproxy, String> {
        // `synproxy_tg4_check`: TCP, not inverted.
        if p.exact() != Some(6) {
            return Err("SYNPROXY: needs `-p tcp' (the kernel refuses it otherwise: Invalid argument)".into());
        }
        Ok(Synproxy(b.info))
    }

    fn save(&self, out: &mut String) {
        for (name, value) in self.given() {
            let _ = write!(out, " --{name}");
            if let Some(v) = value {
                let _ = write!(out, " {v}");
            }
        }
    }

    fn list(&self, out: &mut String, _: bool) {
        // `SYNPROXY_print`: the same words without dashes, each followed by a space.
        out.push_str(" SYNPROXY ");
        for (name, value) in self.given() {
            let _ = match value {
                Some(v) => write!(out, "{name} {v} "),
                None => write!(out, "{name} "),
            };
        }
    }

    fn hooks(&self) -> HookMask {
        hooks::INPUT | hooks::FORWARD
    }

    fn apply(&self, p: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        let L4::Tcp(t) = p.h.l4 else { return None };
        handles(t.flags).then_some(Verdict::Synproxy(self.0))
    }
}

impl Synproxy {
    /// The options given, in the order iptables prints them, with their values.
    fn given(&self) -> impl Iterator<Item = (&'static str, Option<u16>)> + '_ {
        let i = self.0;
        [
            (opt::SACK_PERM, "sack-perm", None),
            (opt::TIMESTAMP, "timestamp", None),
            (opt::WSCALE, "wscale", Some(u16::from(i.wscale))),
            (opt::MSS, "mss", Some(i.mss)),
            (opt::ECN, "ecn", None),
        ]
        .into_iter()
        .filter(move |(bit, _, _)| i.options & bit != 0)
        .map(|(_, name, value)| (name, value))
    }
}

/// The segments `synproxy_tg4` acts on: a SYN without ACK, FIN or RST, and an ACK without SYN,
/// FIN or RST. Every other segment continues with the next rule.
pub(crate) fn handles(flags: u8) -> bool {
    let f = flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::FIN | tcp_flags::RST);
    f == tcp_flags::SYN || f == tcp_flags::ACK
}
