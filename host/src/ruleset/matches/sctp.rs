//! `-m sctp` (`libxt_sctp.c`, `xt_sctp.c`): source and destination ports, and the chunks of
//! the packet (`--chunk-types all|any|only TYPE[:FLAGS][,...]`, flags as letters: upper case
//! set, lower case clear).

use super::udp::Ports;
use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::classify::{Fields, Indexed, L4_SCTP};
use crate::eval::{Cx, Engine, Pkt};
use crate::packet::L4;
use crate::ruleset::ext::{bang, Cursor, PResult};
use std::fmt::Write as _;

/// Chunk names and types, in `libxt_sctp`'s order (which `iptables-save` prints in), with the
/// letters of their flags (most significant bit first).
const CHUNKS: &[(&str, u8, &str)] = &[
    ("DATA", 0, "IUBE"),
    ("INIT", 1, ""),
    ("INIT_ACK", 2, ""),
    ("SACK", 3, ""),
    ("HEARTBEAT", 4, ""),
    ("HEARTBEAT_ACK", 5, ""),
    ("ABORT", 6, "T"),
    ("SHUTDOWN", 7, ""),
    ("SHUTDOWN_ACK", 8, ""),
    ("ERROR", 9, ""),
    ("COOKIE_ECHO", 10, ""),
    ("COOKIE_ACK", 11, ""),
    ("ECN_ECNE", 12, ""),
    ("ECN_CWR", 13, ""),
    ("SHUTDOWN_COMPLETE", 14, "T"),
    ("I_DATA", 64, "IUBE"),
    ("RE_CONFIG", 130, ""),
    ("PAD", 132, ""),
    ("ASCONF", 193, ""),
    ("ASCONF_ACK", 128, ""),
    ("FORWARD_TSN", 192, ""),
    ("I_FORWARD_TSN", 194, ""),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    All,
    Any,
    Only,
}

/// `--chunk-types`: the mode, the chunk types (a 256-bit map) and per type a flag test
/// (mask, value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunks {
    pub inv: bool,
    pub mode: Mode,
    pub map: [u64; 4],
    pub flags: Vec<(u8, u8, u8)>,
}

impl Chunks {
    fn has(&self, t: u8) -> bool {
        self.map[usize::from(t / 64)] & (1 << (t % 64)) != 0
    }

    fn flags_ok(&self, t: u8, f: u8) -> bool {
        self.flags
            .iter()
            .find(|(ty, _, _)| *ty == t)
            .is_none_or(|&(_, mask, val)| f & mask == val)
    }

    /// `match_packet`: walks the chunks after the common header.
    fn holds(&self, chunks: &[u8]) -> Option<bool> {
        let mut left = self.map;
        let mut off = 0usize;
        loop {
            let h = chunks.get(off..off + 4)?;
            let (t, f, len) = (h[0], h[1], u16::from_be_bytes([h[2], h[3]]));
            if len == 0 {
                return None;
            }
            off += (usize::from(len) + 3) & !3;
            if self.has(t) {
                match self.mode {
                    Mode::Any if self.flags_ok(t, f) => return Some(true),
                    Mode::All if self.flags_ok(t, f) => left[usize::from(t / 64)] &= !(1 << (t % 64)),
                    Mode::Only if !self.flags_ok(t, f) => return Some(false),
                    _ => {}
                }
            } else if self.mode == Mode::Only {
                return Some(false);
            }
            if off >= chunks.len() {
                break;
            }
        }
        Some(match self.mode {
            Mode::All => left == [0; 4],
            Mode::Any => false,
            Mode::Only => true,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sctp {
    pub ports: Ports,
    pub chunks: Option<Chunks>,
}

#[derive(Debug, Clone, Default)]
pub struct Builder {
    ports: Ports,
    chunks: Option<Chunks>,
}

fn parse_chunks(inv: bool, mode: &str, list: &str) -> Result<Chunks, String> {
    let mode = match mode {
        "all" => Mode::All,
        "any" => Mode::Any,
        "only" => Mode::Only,
        m => return Err(format!("sctp: unknown --chunk-types mode `{m}' (all, any or only)")),
    };
    let mut c = Chunks {
        inv,
        mode,
        map: [0; 4],
        flags: Vec::new(),
    };
    for item in list.split(',') {
        let (name, flags) = match item.split_once(':') {
            Some((n, f)) => (n, Some(f)),
            None => (item, None),
        };
        if name.eq_ignore_ascii_case("ALL") {
            c.map = [u64::MAX; 4];
            continue;
        }
        if name.eq_ignore_ascii_case("NONE") {
            c.map = [0; 4];
            continue;
        }
        let Some(&(_, t, letters)) = CHUNKS.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name)) else {
            return Err(format!("sctp: unknown chunk type `{name}'"));
        };
        c.map[usize::from(t / 64)] |= 1 << (t % 64);
        if let Some(f) = flags {
            let (mut mask, mut val) = (0u8, 0u8);
            for ch in f.chars() {
                let Some(i) = letters.find(ch.to_ascii_uppercase()) else {
                    return Err(format!("sctp: chunk `{name}' has no flag `{ch}'"));
                };
                let bit = 1u8 << (letters.len() - 1 - i);
                mask |= bit;
                if ch.is_ascii_uppercase() {
                    val |= bit;
                }
            }
            c.flags.push((t, mask, val));
        }
    }
    Ok(c)
}

impl MatchExt for Sctp {
    type Builder = Builder;
    type Compiled = Sctp;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["source-port", "sport", "destination-port", "dport", "chunk-types"];

    fn option(b: &mut Builder, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt == "chunk-types" {
            c.once(&b.chunks, "--chunk-types")?;
            let mode = c.value_inv("--chunk-types", &mut inv)?;
            let Some(list) = c.next_word() else {
                return c.err("sctp: --chunk-types needs a mode and a list of chunks");
            };
            b.chunks = Some(parse_chunks(inv, &mode, list).or_else(|m| c.err_value(m))?);
            return Ok(true);
        }
        b.ports.option("sctp", false, opt, inv, c)
    }

    fn finish(b: Builder, p: RuleProto) -> Result<Sctp, String> {
        p.require(132, "sctp")?;
        Ok(Sctp {
            ports: b.ports.normalized(),
            chunks: b.chunks,
        })
    }

    fn save(&self, out: &mut String) {
        self.ports.save(out);
        if let Some(ch) = &self.chunks {
            let mode = match ch.mode {
                Mode::All => "all",
                Mode::Any => "any",
                Mode::Only => "only",
            };
            let _ = write!(out, "{} --chunk-types {mode} ", bang(ch.inv));
            if ch.map == [u64::MAX; 4] {
                out.push_str("ALL");
            } else if ch.map == [0; 4] {
                out.push_str("NONE");
            } else {
                let mut first = true;
                for &(name, t, letters) in CHUNKS {
                    if !ch.has(t) {
                        continue;
                    }
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str(name);
                    if let Some(&(_, mask, val)) = ch.flags.iter().find(|(ty, _, _)| *ty == t) {
                        out.push(':');
                        for (i, l) in letters.chars().enumerate() {
                            let bit = 1u8 << (letters.len() - 1 - i);
                            if mask & bit != 0 {
                                out.push(if val & bit != 0 { l } else { l.to_ascii_lowercase() });
                            }
                        }
                    }
                }
            }
        }
    }

    fn compile(&self, _: &CompileEnv) -> Sctp {
        self.clone()
    }

    fn test(c: &Sctp, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let L4::Sctp { sport, dport } = p.h.l4 else {
            return false;
        };
        if !c.ports.holds(sport, dport) {
            return false;
        }
        let Some(ch) = &c.chunks else { return true };
        let start = usize::from(p.h.l4_off) + 12;
        let end = usize::from(p.h.total_len).min(p.buf.len());
        match ch.holds(p.buf.get(start..end).unwrap_or(&[])) {
            Some(hit) => hit != ch.inv,
            // A malformed chunk list: the kernel drops the packet (hotdrop); no match here.
            None => false,
        }
    }

    fn index(&self, f: &mut Fields) -> Indexed {
        match f.ports(L4_SCTP, &self.ports.sport, &self.ports.dport) {
            Indexed::Exact if self.chunks.is_some() => Indexed::Partial,
            i => i,
        }
    }
}
