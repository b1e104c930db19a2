//! `-m pkttype` (`libxt_pkttype.c`, `xt_pkttype.c`): unicast, broadcast or multicast.
//!
//! TUN devices have no link layer, so the kernel would see every packet as `PACKET_HOST`;
//! rtrouter classifies by destination address, which is what a rule author means.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::route::rtn;
use crate::ruleset::ext::{Cursor, Neg, PResult};
use std::fmt::Write as _;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PktType {
    Unicast,
    Broadcast,
    Multicast,
    OtherHost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PktTypeMatch(pub Neg<PktType>);

impl MatchExt for PktTypeMatch {
    type Builder = Option<Neg<PktType>>;
    type Compiled = Neg<PktType>;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["pkt-type"];

    fn option(p: &mut Option<Neg<PktType>>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "pkt-type" {
            return Ok(false);
        }
        c.once(p, "--pkt-type")?;
        let v = c.value_inv("--pkt-type", &mut inv)?;
        let t = match v.to_ascii_lowercase().as_str() {
            "unicast" | "host" => PktType::Unicast,
            "broadcast" => PktType::Broadcast,
            "multicast" => PktType::Multicast,
            "otherhost" => PktType::OtherHost,
            _ => return c.err_value(format!("pkttype: bad packet type `{v}'")),
        };
        *p = Some(Neg::new(inv, t));
        Ok(true)
    }

    fn finish(p: Option<Neg<PktType>>, _: RuleProto) -> Result<PktTypeMatch, String> {
        Ok(PktTypeMatch(p.ok_or("pkttype: --pkt-type is required")?))
    }

    fn save(&self, out: &mut String) {
        let n = match self.0.v {
            PktType::Unicast => "unicast",
            PktType::Broadcast => "broadcast",
            PktType::Multicast => "multicast",
            PktType::OtherHost => "otherhost",
        };
        let _ = write!(out, "{} --pkt-type {n}", self.0.bang());
    }

    fn compile(&self, _: &CompileEnv) -> Neg<PktType> {
        self.0
    }

    fn test(t: &Neg<PktType>, p: &Pkt, cx: &mut Cx, _: &Engine) -> bool {
        let kind = match p.h.dst {
            IpAddr::V4(v) if v.is_multicast() => PktType::Multicast,
            IpAddr::V6(v) if v.is_multicast() => PktType::Multicast,
            a if cx.topo.addr_type(a, None) == rtn::BROADCAST => PktType::Broadcast,
            _ => PktType::Unicast,
        };
        t.holds(kind == t.v)
    }
}
