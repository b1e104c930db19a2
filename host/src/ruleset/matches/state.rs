//! `-m state` (`libxt_state.c`, `xt_state.c`): the connection state alone.

use super::conntrack::{parse_ctstate, print_ctstate, state_bits};
use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, Neg, PResult};
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State(pub Neg<u8>);

impl MatchExt for State {
    type Builder = Option<Neg<u8>>;
    type Compiled = Neg<u8>;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["state"];

    fn option(s: &mut Option<Neg<u8>>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "state" {
            return Ok(false);
        }
        c.once(s, "--state")?;
        let v = c.value_inv("--state", &mut inv)?;
        let bits = parse_ctstate(&v, false).map_or_else(|| c.err_value(format!("bad state `{v}'")), Ok)?;
        *s = Some(Neg::new(inv, bits));
        Ok(true)
    }

    fn finish(s: Option<Neg<u8>>, _: RuleProto) -> Result<State, String> {
        Ok(State(s.ok_or("state: --state is required")?))
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, "{} --state ", self.0.bang());
        print_ctstate(out, self.0.v);
    }

    fn list(&self, out: &mut String, _: bool) -> bool {
        out.push_str(if self.0.inv { " ! state " } else { " state " });
        print_ctstate(out, self.0.v);
        true
    }

    fn compile(&self, _: &CompileEnv) -> Neg<u8> {
        self.0
    }

    fn test(s: &Neg<u8>, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        s.holds(state_bits(&p.ct) & s.v != 0)
    }
}
