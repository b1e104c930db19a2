//! `-m mac --mac-source` (`libxt_mac.c`, `xt_mac.c`): the Ethernet source address.
//!
//! `xt_mac` first checks that the packet came in on an Ethernet device and otherwise never
//! matches, negated or not. rtrouter's interfaces are TUN devices, which carry no link layer,
//! so the match is loaded, saved and listed exactly as iptables does and never holds: a
//! ruleset written for an Ethernet gateway loads and behaves as it would on a TUN device in
//! the kernel.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, Neg, PResult};
use crate::ruleset::{hooks, HookMask};
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub Neg<[u8; 6]>);

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn print_mac(out: &mut String, m: &[u8; 6]) {
    let parts: Vec<String> = m.iter().map(|b| format!("{b:02x}")).collect();
    out.push_str(&parts.join(":"));
}

impl MatchExt for Mac {
    type Builder = Option<Neg<[u8; 6]>>;
    type Compiled = ();
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["mac-source"];

    fn option(m: &mut Option<Neg<[u8; 6]>>, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if opt != "mac-source" {
            return Ok(false);
        }
        c.once(m, "--mac-source")?;
        let v = c.value_inv("--mac-source", &mut inv)?;
        let Some(a) = parse_mac(&v) else {
            return c.err_value(format!("Bad mac address \"{v}\""));
        };
        *m = Some(Neg::new(inv, a));
        Ok(true)
    }

    fn finish(m: Option<Neg<[u8; 6]>>, _: RuleProto) -> Result<Mac, String> {
        Ok(Mac(m.ok_or("mac: option \"--mac-source\" must be specified")?))
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, "{} --mac-source ", self.0.bang());
        print_mac(out, &self.0.v);
    }

    fn list(&self, out: &mut String, _: bool) -> bool {
        out.push_str(" MAC ");
        if self.0.inv {
            out.push_str("! ");
        }
        print_mac(out, &self.0.v);
        true
    }

    fn hooks(&self) -> HookMask {
        hooks::PREROUTING | hooks::INPUT | hooks::FORWARD
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("TUN devices carry no Ethernet header: -m mac never matches (as xt_mac on a non-Ethernet device)")
    }

    fn compile(&self, _: &CompileEnv) {}

    fn test(_: &(), _: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        // No Ethernet header on a TUN device: `xt_mac` returns false before the comparison.
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(parse_mac("42:01:02:03:04:05"), Some([0x42, 1, 2, 3, 4, 5]));
        assert_eq!(parse_mac("42:01:02:03:04"), None);
        assert_eq!(parse_mac("42:01:02:03:04:05:06"), None);
        assert_eq!(parse_mac("42:01:02:03:04:5g"), None);
    }
}
