//! `-m addrtype` (`libxt_addrtype.c`, `xt_addrtype.c`): the routing type of the source and
//! destination address, optionally as seen from the packet's interface.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, Neg, PResult};
use crate::ruleset::{hooks, HookMask};
use std::fmt::Write as _;
use std::net::IpAddr;

/// Bitmask of `RTN_*` address types (bit n = type n).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddrType {
    pub src: Option<Neg<u16>>,
    pub dst: Option<Neg<u16>>,
    pub limit_iface_in: bool,
    pub limit_iface_out: bool,
}

/// Address types in the kernel's `RTN_*` order; the index is the bit.
pub const ADDR_TYPES: [&str; 12] = [
    "UNSPEC",
    "UNICAST",
    "LOCAL",
    "BROADCAST",
    "ANYCAST",
    "MULTICAST",
    "BLACKHOLE",
    "UNREACHABLE",
    "PROHIBIT",
    "THROW",
    "NAT",
    "XRESOLVE",
];

impl MatchExt for AddrType {
    type Builder = AddrType;
    type Compiled = AddrType;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &["src-type", "dst-type", "limit-iface-in", "limit-iface-out"];

    fn option(a: &mut AddrType, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        match opt {
            "src-type" | "dst-type" => {
                let name = format!("--{opt}");
                let v = c.value_inv(&name, &mut inv)?;
                let mut mask = 0u16;
                for t in v.split(',') {
                    let Some(bit) = ADDR_TYPES.iter().position(|n| n.eq_ignore_ascii_case(t)) else {
                        return c.err_value(format!("addrtype: unknown address type `{t}'"));
                    };
                    mask |= 1 << bit;
                }
                let slot = if opt == "src-type" { &mut a.src } else { &mut a.dst };
                c.once(slot, &name)?;
                *slot = Some(Neg::new(inv, mask));
            }
            "limit-iface-in" => a.limit_iface_in = true,
            "limit-iface-out" => a.limit_iface_out = true,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(a: AddrType, _: RuleProto) -> Result<AddrType, String> {
        if a.src.is_none() && a.dst.is_none() {
            return Err("addrtype: you must specify --src-type or --dst-type".into());
        }
        if a.limit_iface_in && a.limit_iface_out {
            return Err("addrtype: you can't specify both --limit-iface-in and --limit-iface-out".into());
        }
        Ok(a)
    }

    fn save(&self, out: &mut String) {
        for (opt, t) in [("src-type", &self.src), ("dst-type", &self.dst)] {
            if let Some(t) = t {
                let names: Vec<&str> = ADDR_TYPES
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| t.v & (1 << i) != 0)
                    .map(|(_, n)| *n)
                    .collect();
                let _ = write!(out, "{} --{opt} {}", t.bang(), names.join(","));
            }
        }
        if self.limit_iface_in {
            out.push_str(" --limit-iface-in");
        }
        if self.limit_iface_out {
            out.push_str(" --limit-iface-out");
        }
    }

    fn hooks(&self) -> HookMask {
        if self.limit_iface_in {
            hooks::PREROUTING | hooks::INPUT | hooks::FORWARD
        } else if self.limit_iface_out {
            hooks::POSTROUTING | hooks::OUTPUT | hooks::FORWARD
        } else {
            hooks::ALL
        }
    }

    fn compile(&self, _: &CompileEnv) -> AddrType {
        self.clone()
    }

    fn test(a: &AddrType, p: &Pkt, cx: &mut Cx, _: &Engine) -> bool {
        let dev = if a.limit_iface_in {
            p.in_if
        } else if a.limit_iface_out {
            p.out_if
        } else {
            None
        };
        let test = |t: &Option<Neg<u16>>, addr: IpAddr| {
            t.is_none_or(|t| t.holds(t.v & (1 << cx.topo.addr_type(addr, dev)) != 0))
        };
        test(&a.src, p.h.src) && test(&a.dst, p.h.dst)
    }
}
