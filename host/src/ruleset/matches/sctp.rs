//! `-m sctp` (`libxt_sctp.c`, `xt_sctp.c`): source and destination ports. `--chunk-types` is
//! refused.

use super::udp::Ports;
use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::classify::{Fields, Indexed, L4_SCTP};
use crate::eval::{Cx, Engine, Pkt};
use crate::packet::L4;
use crate::ruleset::ext::{Cursor, PResult};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sctp(pub Ports);

impl MatchExt for Sctp {
    type Builder = Ports;
    type Compiled = Ports;
    const SIDE_EFFECT: bool = false;

    fn option(b: &mut Ports, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt == "chunk-types" {
            return c.err("sctp --chunk-types is not supported by rtrouter");
        }
        b.option("sctp", false, opt, inv, c)
    }

    fn finish(b: Ports, p: RuleProto) -> Result<Sctp, String> {
        p.require(132, "sctp")?;
        Ok(Sctp(b.normalized()))
    }

    fn save(&self, out: &mut String) {
        self.0.save(out);
    }

    fn compile(&self, _: &CompileEnv) -> Ports {
        self.0.clone()
    }

    fn test(c: &Ports, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let L4::Sctp { sport, dport } = p.h.l4 else {
            return false;
        };
        c.holds(sport, dport)
    }

    fn index(&self, f: &mut Fields) -> Indexed {
        f.ports(L4_SCTP, &self.0.sport, &self.0.dport)
    }
}
