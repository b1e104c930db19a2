//! `-m icmp6` (`libip6t_icmp6.c`, `ip6_tables.c: icmp6_match`): ICMPv6 type and code range.

use super::icmp::Icmp;
use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::packet::{proto, L4};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::parse_uint;
use crate::ruleset::Family;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmp6(pub Icmp);

impl MatchExt for Icmp6 {
    /// `None` until `--icmpv6-type`.
    type Builder = Option<Icmp>;
    type Compiled = Icmp;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["icmpv6-type"];

    fn option(i: &mut Option<Icmp>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "icmpv6-type" {
            return Ok(false);
        }
        if i.is_some() {
            return c.err("icmp6: --icmpv6-type can be given once only");
        }
        let v = c.value_inv("--icmpv6-type", &mut inv)?;
        let (typ, code) =
            parse_icmpv6_type(&v).map_or_else(|| c.err_value(format!("invalid ICMPv6 type `{v}'")), Ok)?;
        *i = Some(Icmp { inv, typ, code });
        Ok(true)
    }

    fn finish(i: Option<Icmp>, p: RuleProto) -> Result<Icmp6, String> {
        p.only(Family::V6, "match", "icmp6")?;
        if p.exact() != Some(proto::ICMPV6) {
            return Err("match `icmp6' is only valid with `-p ipv6-icmp'".into());
        }
        // Without a type, the kernel's default: type 0 (no such message), every code.
        Ok(Icmp6(i.unwrap_or(Icmp {
            inv: false,
            typ: 0,
            code: (0, 0xff),
        })))
    }

    /// `icmp6_save`: the type as a number, and `/CODE` (the low end) when the codes are not
    /// all of them.
    fn save(&self, out: &mut String) {
        let i = self.0;
        out.push_str(bang(i.inv));
        let _ = write!(out, " --icmpv6-type {}", i.typ);
        if i.code != (0, 0xff) {
            let _ = write!(out, "/{}", i.code.0);
        }
    }

    fn list(&self, out: &mut String, numeric: bool) -> bool {
        self.0.list_as(out, "ipv6-icmp", ICMPV6_NAMES, numeric);
        true
    }

    fn compile(&self, _: &CompileEnv) -> Icmp {
        self.0
    }

    fn test(i: &Icmp, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        if p.h.proto != proto::ICMPV6 {
            return false;
        }
        let L4::Icmp(ic) = p.h.l4 else { return false };
        let hit = ic.typ == i.typ && i.code.0 <= ic.code && ic.code <= i.code.1;
        hit != i.inv
    }
}

/// ICMPv6 type names with their type and code range, as libip6t_icmp6 lists them.
const ICMPV6_NAMES: &[(&str, u8, u8, u8)] = &[
    ("destination-unreachable", 1, 0, 0xff),
    ("no-route", 1, 0, 0),
    ("communication-prohibited", 1, 1, 1),
    ("beyond-scope", 1, 2, 2),
    ("address-unreachable", 1, 3, 3),
    ("port-unreachable", 1, 4, 4),
    ("failed-policy", 1, 5, 5),
    ("reject-route", 1, 6, 6),
    ("packet-too-big", 2, 0, 0xff),
    ("time-exceeded", 3, 0, 0xff),
    ("ttl-exceeded", 3, 0, 0xff),
    ("ttl-zero-during-transit", 3, 0, 0),
    ("ttl-zero-during-reassembly", 3, 1, 1),
    ("parameter-problem", 4, 0, 0xff),
    ("bad-header", 4, 0, 0),
    ("unknown-header-type", 4, 1, 1),
    ("unknown-option", 4, 2, 2),
    ("echo-request", 128, 0, 0xff),
    ("ping", 128, 0, 0xff),
    ("echo-reply", 129, 0, 0xff),
    ("pong", 129, 0, 0xff),
    ("mld-listener-query", 130, 0, 0xff),
    ("mld-listener-report", 131, 0, 0xff),
    ("mld-listener-done", 132, 0, 0xff),
    ("mld-listener-reduction", 132, 0, 0xff),
    ("router-solicitation", 133, 0, 0xff),
    ("router-advertisement", 134, 0, 0xff),
    ("neighbour-solicitation", 135, 0, 0xff),
    ("neighbor-solicitation", 135, 0, 0xff),
    ("neighbour-advertisement", 136, 0, 0xff),
    ("neighbor-advertisement", 136, 0, 0xff),
    ("redirect", 137, 0, 0xff),
];

/// `NAME`, `TYPE` or `TYPE/CODE` (`parse_icmpv6`: one code, not a range).
pub fn parse_icmpv6_type(v: &str) -> Option<(u8, (u8, u8))> {
    let hits: Vec<_> = ICMPV6_NAMES.iter().filter(|(n, ..)| n.starts_with(v)).collect();
    // A unique prefix of a name serves, as in libip6t_icmp6 (an exact name always does).
    if let Some((_, t, lo, hi)) = ICMPV6_NAMES.iter().find(|(n, ..)| *n == v) {
        return Some((*t, (*lo, *hi)));
    }
    if let [(_, t, lo, hi)] = hits[..] {
        return Some((*t, (*lo, *hi)));
    }
    let byte = |s: &str| parse_uint(s, 0, 255).map(|v| v as u8);
    match v.split_once('/') {
        None => Some((byte(v)?, (0, 0xff))),
        Some((t, c)) => {
            let c = byte(c)?;
            Some((byte(t)?, (c, c)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmpv6_types() {
        assert_eq!(parse_icmpv6_type("echo-request"), Some((128, (0, 255))));
        assert_eq!(parse_icmpv6_type("no-route"), Some((1, (0, 0))));
        assert_eq!(parse_icmpv6_type("1/0"), Some((1, (0, 0))));
        assert_eq!(parse_icmpv6_type("mld-listener-reduction"), Some((132, (0, 255))));
        assert_eq!(parse_icmpv6_type("bogus"), None);
        assert_eq!(parse_icmpv6_type("1/0:3"), None);
    }
}
