//! `-m udp` (`libxt_udp.c`, `xt_tcpudp.c: udp_mt`): source and destination ports.

use super::{range_holds, save_port_range, CompileEnv, MatchExt, RuleProto};
use crate::eval::classify::{Fields, Indexed, L4_UDP};
use crate::eval::{Cx, Engine, Pkt};
use crate::packet::L4;
use crate::ruleset::ext::{Cursor, Neg, PResult};
use crate::ruleset::value::Range16;
use std::fmt::Write as _;

/// Source and destination port matches (`udp`, `sctp`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ports {
    pub sport: Option<Neg<Range16>>,
    pub dport: Option<Neg<Range16>>,
}

impl Ports {
    /// `--sport`/`--dport` (and their long names) for `proto`'s service names. `reversible`
    /// keeps a reversed range (libxt_udp accepts `--sport 1024:1023`; it matches nothing).
    pub(super) fn option(
        &mut self,
        proto: &str,
        reversible: bool,
        opt: &str,
        mut inv: bool,
        c: &mut Cursor,
    ) -> PResult<bool> {
        let slot = match opt {
            "sport" | "source-port" => &mut self.sport,
            "dport" | "destination-port" => &mut self.dport,
            _ => return Ok(false),
        };
        let name = format!("--{opt}");
        c.once(slot, &name)?;
        let v = c.value_inv(&name, &mut inv)?;
        let r = if reversible {
            Range16::parse_reversible(&v, Some(proto))
        } else {
            Range16::parse(&v, Some(proto))
        };
        let r = r.map_or_else(|| c.err_value(format!("invalid port/service `{v}' specified")), Ok)?;
        *slot = Some(Neg::new(inv, r));
        Ok(true)
    }

    pub(super) fn save(&self, out: &mut String) {
        save_port_range(out, "sport", &self.sport);
        save_port_range(out, "dport", &self.dport);
    }

    /// `tcp spt:N dpts:A:B` as libxt_tcp/libxt_udp print it; without `numeric`, ports with a
    /// name in `/etc/services` print as that name (`port_to_service`).
    pub(super) fn list(&self, out: &mut String, name: &str, numeric: bool) {
        out.push(' ');
        out.push_str(name);
        let port = |p: u16| match crate::ruleset::value::port_service_name(p, name).filter(|_| !numeric) {
            Some(s) => s,
            None => p.to_string(),
        };
        for (label, r) in [("spt", &self.sport), ("dpt", &self.dport)] {
            if let Some(r) = r.filter(|r| r.inv || r.v != Range16::FULL) {
                let inv = if r.inv { "!" } else { "" };
                if r.v.lo == r.v.hi {
                    let _ = write!(out, " {label}:{inv}{}", port(r.v.lo));
                } else {
                    let _ = write!(out, " {label}s:{inv}{}:{}", port(r.v.lo), port(r.v.hi));
                }
            }
        }
    }

    /// A range of every port, not negated, tests nothing: it is left out (as iptables-save
    /// leaves it out), so that the rule equals its saved form.
    pub(super) fn normalized(mut self) -> Ports {
        for r in [&mut self.sport, &mut self.dport] {
            if r.is_some_and(|x| !x.inv && x.v == Range16::FULL) {
                *r = None;
            }
        }
        self
    }

    pub(super) fn holds(&self, sport: u16, dport: u16) -> bool {
        range_holds(&self.sport, sport) && range_holds(&self.dport, dport)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Udp(pub Ports);

impl MatchExt for Udp {
    type Builder = Ports;
    type Compiled = Ports;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["source-port", "sport", "destination-port", "dport"];

    fn option(b: &mut Ports, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        b.option("udp", true, opt, inv, c)
    }

    fn finish(b: Ports, p: RuleProto) -> Result<Udp, String> {
        p.require(17, "udp")?;
        Ok(Udp(b.normalized()))
    }

    fn save(&self, out: &mut String) {
        self.0.save(out);
    }

    fn list(&self, out: &mut String, numeric: bool) -> bool {
        self.0.list(out, "udp", numeric);
        true
    }

    fn compile(&self, _: &CompileEnv) -> Ports {
        self.0.clone()
    }

    fn test(c: &Ports, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let L4::Udp { sport, dport } = p.h.l4 else { return false };
        c.holds(sport, dport)
    }

    fn index(&self, f: &mut Fields) -> Indexed {
        f.ports(L4_UDP, &self.0.sport, &self.0.dport)
    }
}
