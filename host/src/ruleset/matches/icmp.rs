//! `-m icmp` (`libipt_icmp.c`, `ip_tables.c: icmp_match`): type and code range.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::packet::L4;
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmp {
    pub inv: bool,
    /// 0xff with codes 0–255 means any type.
    pub typ: u8,
    pub code: (u8, u8),
}

impl Default for Icmp {
    fn default() -> Self {
        Icmp {
            inv: false,
            typ: 0xff,
            code: (0, 0xff),
        }
    }
}

impl MatchExt for Icmp {
    type Builder = Icmp;
    type Compiled = Icmp;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["icmp-type"];

    fn option(i: &mut Icmp, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "icmp-type" {
            return Ok(false);
        }
        let v = c.value_inv("--icmp-type", &mut inv)?;
        let (typ, code) = parse_icmp_type(&v).map_or_else(|| c.err_value(format!("invalid ICMP type `{v}'")), Ok)?;
        *i = Icmp { inv, typ, code };
        Ok(true)
    }

    fn finish(i: Icmp, p: RuleProto) -> Result<Icmp, String> {
        p.only(crate::ruleset::Family::V4, "match", "icmp")?;
        p.require(1, "icmp")?;
        Ok(i)
    }

    fn save(&self, out: &mut String) {
        out.push_str(bang(self.inv));
        if self.typ == 0xff && self.code == (0, 0xff) {
            out.push_str(" --icmp-type any");
        } else {
            let _ = write!(out, " --icmp-type {}", self.typ);
            if self.code.0 == self.code.1 {
                let _ = write!(out, "/{}", self.code.0);
            } else if self.code != (0, 0xff) {
                let _ = write!(out, "/{}:{}", self.code.0, self.code.1);
            }
        }
    }

    fn list(&self, out: &mut String, numeric: bool) -> bool {
        self.list_as(out, "icmp", ICMP_NAMES, numeric);
        true
    }

    fn compile(&self, _: &CompileEnv) -> Icmp {
        *self
    }

    fn test(i: &Icmp, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let L4::Icmp(ic) = p.h.l4 else { return false };
        let hit = i.typ == 0xff || (ic.typ == i.typ && i.code.0 <= ic.code && ic.code <= i.code.1);
        hit != i.inv
    }
}

impl Icmp {
    /// `print_icmptype` of libipt_icmp and libip6t_icmp6 after ` WORD`: the first name for
    /// exactly this type and code range, or (numeric, or no name) `type T` and the code or
    /// codes, run together with the word as iptables prints them (`icmptype 8`).
    pub(super) fn list_as(&self, out: &mut String, word: &str, names: &[(&str, u8, u8, u8)], numeric: bool) {
        let _ = write!(out, " {word}");
        let name = names
            .iter()
            .find(|(_, t, lo, hi)| (*t, (*lo, *hi)) == (self.typ, self.code))
            .filter(|_| !numeric);
        if let Some((n, ..)) = name {
            let _ = write!(out, " {}{n}", if self.inv { "!" } else { "" });
            return;
        }
        if self.inv {
            out.push_str(" !");
        }
        let _ = write!(out, "type {}", self.typ);
        if self.code.0 == self.code.1 {
            let _ = write!(out, " code {}", self.code.0);
        } else if self.code != (0, 0xff) {
            let _ = write!(out, " codes {}-{}", self.code.0, self.code.1);
        }
    }
}

/// ICMP type names with their type and code range, as libipt_icmp lists them.
const ICMP_NAMES: &[(&str, u8, u8, u8)] = &[
    ("any", 0xff, 0, 0xff),
    ("echo-reply", 0, 0, 0xff),
    ("pong", 0, 0, 0xff),
    ("destination-unreachable", 3, 0, 0xff),
    ("network-unreachable", 3, 0, 0),
    ("host-unreachable", 3, 1, 1),
    ("protocol-unreachable", 3, 2, 2),
    ("port-unreachable", 3, 3, 3),
    ("fragmentation-needed", 3, 4, 4),
    ("source-route-failed", 3, 5, 5),
    ("network-unknown", 3, 6, 6),
    ("host-unknown", 3, 7, 7),
    ("network-prohibited", 3, 9, 9),
    ("host-prohibited", 3, 10, 10),
    ("TOS-network-unreachable", 3, 11, 11),
    ("TOS-host-unreachable", 3, 12, 12),
    ("communication-prohibited", 3, 13, 13),
    ("host-precedence-violation", 3, 14, 14),
    ("precedence-cutoff", 3, 15, 15),
    ("source-quench", 4, 0, 0xff),
    ("redirect", 5, 0, 0xff),
    ("network-redirect", 5, 0, 0),
    ("host-redirect", 5, 1, 1),
    ("TOS-network-redirect", 5, 2, 2),
    ("TOS-host-redirect", 5, 3, 3),
    ("echo-request", 8, 0, 0xff),
    ("ping", 8, 0, 0xff),
    ("router-advertisement", 9, 0, 0xff),
    ("router-solicitation", 10, 0, 0xff),
    ("time-exceeded", 11, 0, 0xff),
    ("ttl-exceeded", 11, 0, 0xff),
    ("ttl-zero-during-transit", 11, 0, 0),
    ("ttl-zero-during-reassembly", 11, 1, 1),
    ("parameter-problem", 12, 0, 0xff),
    ("ip-header-bad", 12, 0, 0),
    ("required-option-missing", 12, 1, 1),
    ("timestamp-request", 13, 0, 0xff),
    ("timestamp-reply", 14, 0, 0xff),
    ("address-mask-request", 17, 0, 0xff),
    ("address-mask-reply", 18, 0, 0xff),
];

/// `NAME`, `TYPE`, `TYPE/CODE` or `TYPE/CODE:CODE`.
pub fn parse_icmp_type(v: &str) -> Option<(u8, (u8, u8))> {
    if let Some((_, t, lo, hi)) = ICMP_NAMES.iter().find(|(n, ..)| n.eq_ignore_ascii_case(v)) {
        return Some((*t, (*lo, *hi)));
    }
    let byte = |s: &str| parse_uint(s, 0, 255).map(|v| v as u8);
    let (t, code) = match v.split_once('/') {
        None => return Some((byte(v)?, (0, 0xff))),
        Some((t, code)) => (t, code),
    };
    let code = match code.split_once(':') {
        Some((a, b)) => (byte(a)?, byte(b)?),
        None => {
            let c = byte(code)?;
            (c, c)
        }
    };
    (code.0 <= code.1).then_some((byte(t)?, code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_types() {
        assert_eq!(parse_icmp_type("echo-request"), Some((8, (0, 255))));
        assert_eq!(parse_icmp_type("port-unreachable"), Some((3, (3, 3))));
        assert_eq!(parse_icmp_type("255/0:255"), Some((255, (0, 255))));
        assert_eq!(parse_icmp_type("3/4"), Some((3, (4, 4))));
        assert_eq!(parse_icmp_type("bogus"), None);
    }
}
