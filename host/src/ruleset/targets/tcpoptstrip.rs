//! `TCPOPTSTRIP` (`libxt_TCPOPTSTRIP.c`, `xt_TCPOPTSTRIP.c`): overwrite the listed TCP
//! options with NOPs, keeping the checksum right incrementally (mangle table, `-p tcp`).
//! Later fragments pass untouched; a packet whose TCP header is cut short is dropped.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::packet::{self, L4};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::value::parse_uint;
use crate::ruleset::TableKind;
use std::fmt::Write as _;

/// Option names libxt_TCPOPTSTRIP knows.
const NAMES: &[(&str, u8)] = &[
    ("wscale", 3),
    ("mss", 2),
    ("sack-permitted", 4),
    ("sack", 5),
    ("timestamp", 8),
    ("md5", 19),
];

/// The options to strip, one bit per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptStrip(pub [u64; 4]);

impl TcpOptStrip {
    fn has(&self, kind: u8) -> bool {
        self.0[usize::from(kind / 64)] & (1 << (kind % 64)) != 0
    }
}

impl TargetExt for TcpOptStrip {
    type Builder = Option<[u64; 4]>;
    const OPTIONS: &'static [&'static str] = &["strip-options"];

    fn start() -> Option<[u64; 4]> {
        None
    }

    fn option(b: &mut Option<[u64; 4]>, _: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        c.once(b, "--strip-options")?;
        let v = c.value("--strip-options")?;
        let mut bits = [0u64; 4];
        for item in v.split(',') {
            let kind = match NAMES.iter().find(|(n, _)| *n == item) {
                Some(&(_, k)) => k,
                None => parse_uint(item, 0, 255).map_or_else(
                    || c.err_value(format!("Bad TCP option value \"{item}\"")),
                    |k| Ok(k as u8),
                )?,
            };
            if kind < 2 {
                return c.err_value("Option value may not be 0 or 1");
            }
            let (w, bit) = (usize::from(kind / 64), 1u64 << (kind % 64));
            if bits[w] & bit != 0 {
                return c.err_value(format!("Option \"{item}\" already specified"));
            }
            bits[w] |= bit;
        }
        *b = Some(bits);
        Ok(())
    }

    fn finish(b: Option<[u64; 4]>, p: RuleProto, _: bool) -> Result<TcpOptStrip, String> {
        if p.exact() != Some(6) {
            return Err("TCPOPTSTRIP: only valid with `-p tcp'".into());
        }
        Ok(TcpOptStrip(b.unwrap_or_default()))
    }

    fn save(&self, out: &mut String) {
        // Numbers, as tcpoptstrip_tg_save prints them.
        let mut first = true;
        for kind in 0..=255u8 {
            if self.has(kind) {
                out.push_str(if first { " --strip-options " } else { "," });
                first = false;
                let _ = write!(out, "{kind}");
            }
        }
    }

    fn list(&self, out: &mut String, numeric: bool) {
        // `tcpoptstrip_tg_print`: names where it knows them, unless `-n`.
        const NAMES: [(u8, &str); 6] = [
            (2, "mss"),
            (3, "wscale"),
            (4, "sack-permitted"),
            (5, "sack"),
            (8, "timestamp"),
            (19, "md5"),
        ];
        out.push_str(" TCPOPTSTRIP options ");
        let mut first = true;
        for kind in (0..=255u8).filter(|&k| self.has(k)) {
            if !first {
                out.push(',');
            }
            first = false;
            match NAMES.iter().find(|(k, _)| *k == kind) {
                Some((_, name)) if !numeric => out.push_str(name),
                _ => {
                    let _ = write!(out, "{kind}");
                }
            }
        }
    }

    fn tables(&self) -> &'static [TableKind] {
        &[TableKind::Mangle]
    }

    fn apply(&self, p: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        // `tcpoptstrip_mangle_packet`.
        if p.h.frag_off != 0 {
            return None;
        }
        let L4::Tcp(t) = p.h.l4 else { return Some(Verdict::Drop) };
        let start = usize::from(p.h.l4_off);
        let hdr = usize::from(t.hdr_len);
        if hdr < 20 || p.buf.len() < start + hdr {
            return Some(Verdict::Drop);
        }
        let old: Vec<u8> = p.buf[start + 20..start + hdr].to_vec();
        let opts = &mut p.buf[start..start + hdr];
        let mut i = 20;
        let mut changed = false;
        while i + 1 < hdr {
            // Zero-length options make progress one byte at a time.
            let len = if opts[i] <= 1 || opts[i + 1] == 0 {
                1
            } else {
                usize::from(opts[i + 1])
            };
            if i + len > hdr {
                break;
            }
            if self.has(opts[i]) {
                opts[i..i + len].fill(1);
                changed = true;
            }
            i += len;
        }
        if changed {
            // The options start 20 bytes into the header: 16-bit aligned, so the sum of the
            // old and new option bytes updates the checksum as the kernel's per-byte steps do.
            let (head, rest) = p.buf.split_at_mut(start + 20);
            packet::checksum::update(&mut head[start + 16..start + 18], &old, &rest[..hdr - 20]);
        }
        None
    }
}
