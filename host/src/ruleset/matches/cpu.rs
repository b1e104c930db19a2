//! `-m cpu` (`libxt_cpu.c`, `xt_cpu.c`): the CPU processing the packet. rtrouter asks its
//! caller (`Cx::cpu`): the running router's packet workers answer with the CPU they run on
//! (`sched_getcpu`), tools that run packets offline with CPU 0.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, Neg, PResult};
use crate::ruleset::value::parse_uint;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu(pub Neg<u32>);

impl MatchExt for Cpu {
    type Builder = Option<Neg<u32>>;
    type Compiled = Neg<u32>;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["cpu"];

    fn option(b: &mut Option<Neg<u32>>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "cpu" {
            return Ok(false);
        }
        c.once(b, "--cpu")?;
        let v = c.value_inv("--cpu", &mut inv)?;
        let n = parse_uint(&v, 0, u64::from(u32::MAX))
            .map_or_else(|| c.err_value(format!("cpu: bad --cpu `{v}' (0 to 4294967295)")), Ok)?;
        *b = Some(Neg::new(inv, n as u32));
        Ok(true)
    }

    fn finish(b: Option<Neg<u32>>, _: RuleProto) -> Result<Cpu, String> {
        Ok(Cpu(b.ok_or("cpu: --cpu is required")?))
    }

    fn save(&self, out: &mut String) {
        out.push_str(self.0.bang());
        out.push_str(" --cpu ");
        out.push_str(&self.0.v.to_string());
    }

    fn compile(&self, _: &CompileEnv) -> Neg<u32> {
        self.0
    }

    fn test(m: &Neg<u32>, _: &Pkt, cx: &mut Cx, _: &Engine) -> bool {
        m.holds((cx.cpu)() == m.v)
    }
}
