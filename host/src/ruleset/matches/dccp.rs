//! `-m dccp` (`libxt_dccp.c`, `xt_dccp.c`): DCCP ports (reversed ranges kept, as for udp),
//! packet types and an option, `-p dccp` only. Later fragments never match; a header cut
//! short drops the packet (`hotdrop`), as in the kernel.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::packet::DropReason;
use crate::ruleset::ext::{bang, Cursor, Neg, PResult};
use crate::ruleset::value::{parse_uint, Range16};
use std::fmt::Write as _;

/// `dccp_pkt_types`, by type number.
const TYPES: [&str; 11] = [
    "REQUEST", "RESPONSE", "DATA", "ACK", "DATAACK", "CLOSEREQ", "CLOSE", "RESET", "SYNC", "SYNCACK", "INVALID",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dccp {
    pub sport: Option<Neg<Range16>>,
    pub dport: Option<Neg<Range16>>,
    /// One bit per packet type.
    pub types: Option<Neg<u16>>,
    pub option: Option<Neg<u8>>,
}

/// Bytes of the header before the options, for the type and the extended-sequence bit
/// (`__dccp_hdr_len`).
fn header_len(kind: u8, x: bool) -> usize {
    let basic = if x { 16 } else { 12 };
    basic
        + match kind {
            2 => 0,
            3 | 4 | 8 | 9 => 8,
            0 => 4,
            _ => 12,
        }
}

impl MatchExt for Dccp {
    type Builder = Dccp;
    type Compiled = Dccp;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &[
        "source-port",
        "sport",
        "destination-port",
        "dport",
        "dccp-types",
        "dccp-option",
    ];

    fn option(b: &mut Dccp, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        let name = format!("--{opt}");
        match opt {
            "source-port" | "sport" | "destination-port" | "dport" => {
                let slot = if opt.starts_with('s') {
                    &mut b.sport
                } else {
                    &mut b.dport
                };
                c.once(slot, &name)?;
                let v = c.value_inv(&name, &mut inv)?;
                let r = Range16::parse_reversible(&v, Some("dccp"))
                    .map_or_else(|| c.err_value(format!("invalid port/service `{v}' specified")), Ok)?;
                *slot = Some(Neg::new(inv, r));
            }
            "dccp-types" => {
                c.once(&b.types, &name)?;
                let v = c.value_inv(&name, &mut inv)?;
                let mut mask = 0u16;
                for t in v.split(',') {
                    let Some(i) = TYPES.iter().position(|n| n.eq_ignore_ascii_case(t)) else {
                        return c.err_value(format!("Unknown DCCP type `{t}'"));
                    };
                    mask |= 1 << i;
                }
                b.types = Some(Neg::new(inv, mask));
            }
            "dccp-option" => {
                c.once(&b.option, &name)?;
                let v = c.value_inv(&name, &mut inv)?;
                let n = parse_uint(&v, 1, 255).map_or_else(
                    || c.err_value("dccp: bad value for option \"--dccp-option\", or out of range (1-255)"),
                    Ok,
                )?;
                b.option = Some(Neg::new(inv, n as u8));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(b: Dccp, p: RuleProto) -> Result<Dccp, String> {
        p.require(33, "dccp")?;
        Ok(b)
    }

    fn save(&self, out: &mut String) {
        for (opt, r) in [("sport", &self.sport), ("dport", &self.dport)] {
            if let Some(r) = r {
                let _ = write!(out, "{} --{opt} {}", r.bang(), r.v);
            }
        }
        if let Some(t) = &self.types {
            let _ = write!(out, "{} --dccp-types ", t.bang());
            let names: Vec<&str> = (0..TYPES.len())
                .filter(|i| t.v & (1 << i) != 0)
                .map(|i| TYPES[i])
                .collect();
            out.push_str(&names.join(","));
        }
        if let Some(o) = &self.option {
            let _ = write!(out, "{} --dccp-option {}", bang(o.inv), o.v);
        }
    }

    fn compile(&self, _: &CompileEnv) -> Dccp {
        *self
    }

    fn test(m: &Dccp, p: &Pkt, cx: &mut Cx, _: &Engine) -> bool {
        if p.h.frag_off != 0 || p.h.proto != 33 {
            return false;
        }
        let at = usize::from(p.h.l4_off);
        let Some(h) = p.buf.get(at..at + 12) else {
            cx.abort = Some(DropReason::TruncatedL4);
            return false;
        };
        let sport = u16::from_be_bytes([h[0], h[1]]);
        let dport = u16::from_be_bytes([h[2], h[3]]);
        let kind = (h[8] >> 1) & 0x0f;
        let holds = |n: &Option<Neg<Range16>>, v: u16| n.is_none_or(|n| n.holds(n.v.contains(v)));
        if !holds(&m.sport, sport) || !holds(&m.dport, dport) {
            return false;
        }
        if let Some(t) = &m.types {
            if !t.holds(t.v & (1 << kind) != 0) {
                return false;
            }
        }
        let Some(o) = &m.option else { return true };
        // `dccp_find_option`.
        let doff = usize::from(h[4]) * 4;
        let hl = header_len(kind, h[8] & 1 != 0);
        if doff < hl {
            cx.abort = Some(DropReason::TruncatedL4);
            return false;
        }
        let Some(opts) = p.buf.get(at + hl..at + doff) else {
            cx.abort = Some(DropReason::TruncatedL4);
            return false;
        };
        let mut i = 0;
        let mut found = false;
        while i < opts.len() {
            if opts[i] == o.v {
                found = true;
                break;
            }
            i += if opts[i] < 2 {
                1
            } else {
                usize::from(opts.get(i + 1).copied().unwrap_or(1)).max(1)
            };
        }
        o.holds(found)
    }
}
