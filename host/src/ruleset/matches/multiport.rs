//! `-m multiport` (`libxt_multiport.c`, `xt_multiport.c`): up to 15 ports or ranges.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{bang, Cursor, PResult};
use crate::ruleset::value::{has_ports, Range16};
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSide {
    Src,
    Dst,
    Either,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Multiport {
    pub inv: bool,
    pub side: PortSide,
    pub ports: Vec<Range16>,
}

impl MatchExt for Multiport {
    type Builder = Option<Multiport>;
    type Compiled = Multiport;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["source-ports", "sports", "destination-ports", "dports", "ports"];

    fn option(m: &mut Option<Multiport>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        let side = match opt {
            "sports" | "source-ports" => PortSide::Src,
            "dports" | "destination-ports" => PortSide::Dst,
            "ports" => PortSide::Either,
            _ => return Ok(false),
        };
        if m.is_some() {
            return c.err("multiport can only have one option");
        }
        let v = c.value_inv(&format!("--{opt}"), &mut inv)?;
        let mut ports = Vec::new();
        let mut slots = 0;
        for part in v.split(',') {
            let r = Range16::parse(part, Some("tcp"))
                .filter(|_| !part.is_empty())
                .map_or_else(|| c.err_value(format!("invalid port/service `{part}' specified")), Ok)?;
            slots += if part.contains(':') { 2 } else { 1 };
            ports.push(r);
        }
        if slots > 15 {
            return c.err_value("too many ports specified (multiport takes at most 15)");
        }
        *m = Some(Multiport { inv, side, ports });
        Ok(true)
    }

    fn finish(m: Option<Multiport>, p: RuleProto) -> Result<Multiport, String> {
        let m = m.ok_or("multiport: one of --sports, --dports or --ports is required")?;
        if !p.exact().is_some_and(has_ports) {
            return Err("multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'".into());
        }
        Ok(m)
    }

    fn save(&self, out: &mut String) {
        let opt = match self.side {
            PortSide::Src => "sports",
            PortSide::Dst => "dports",
            PortSide::Either => "ports",
        };
        let list: Vec<String> = self.ports.iter().map(Range16::to_string).collect();
        let _ = write!(out, "{} --{opt} {}", bang(self.inv), list.join(","));
    }

    fn compile(&self, _: &CompileEnv) -> Multiport {
        self.clone()
    }

    fn test(mp: &Multiport, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let Some((sport, dport)) = p.h.ports() else {
            return false;
        };
        let hit = mp.ports.iter().any(|r| match mp.side {
            PortSide::Src => r.contains(sport),
            PortSide::Dst => r.contains(dport),
            PortSide::Either => r.contains(sport) || r.contains(dport),
        });
        hit != mp.inv
    }
}
