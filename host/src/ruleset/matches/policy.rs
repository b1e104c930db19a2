//! `-m policy` (`libxt_policy.c`, `xt_policy.c`): the IPsec policy a packet was (`--dir in`)
//! or will be (`--dir out`) processed by.
//!
//! rtrouter does no IPsec, so no packet has a security path: as `policy_mt` decides for such a
//! packet, `--pol none` matches every packet and `--pol ipsec` none, whatever the policy
//! elements say. The elements are parsed, checked and saved exactly as iptables does.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::value::{parse_uint, IpNet};
use crate::ruleset::{hooks, HookMask};
use std::fmt::Write as _;

/// One policy element (`--next` separates them); each field with its `!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Elem {
    pub reqid: Option<(bool, u32)>,
    pub spi: Option<(bool, u32)>,
    /// 50 esp, 51 ah, 108 ipcomp.
    pub proto: Option<(bool, u8)>,
    /// `true`: tunnel, `false`: transport.
    pub tunnel: Option<(bool, bool)>,
    pub dst: Option<(bool, IpNet)>,
    pub src: Option<(bool, IpNet)>,
}

impl Elem {
    fn is_empty(&self) -> bool {
        *self == Elem::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `--dir in` (else out).
    pub dir_in: bool,
    /// `--pol none` (else ipsec).
    pub none: bool,
    pub strict: bool,
    pub elems: Vec<Elem>,
}

#[derive(Debug, Clone, Default)]
pub struct Builder {
    dir: Option<bool>,
    none: Option<bool>,
    strict: bool,
    elems: Vec<Elem>,
}

const MAX_ELEMS: usize = 4;

impl MatchExt for Policy {
    type Builder = Builder;
    type Compiled = bool;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &[
        "dir",
        "pol",
        "strict",
        "reqid",
        "spi",
        "proto",
        "mode",
        "tunnel-src",
        "tunnel-dst",
        "next",
    ];

    fn option(b: &mut Builder, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        if b.elems.is_empty() {
            b.elems.push(Elem::default());
        }
        let name = format!("--{opt}");
        let once = |c: &Cursor, set: bool| {
            if set {
                c.err(format!("policy match: double {name} option"))
            } else {
                Ok(())
            }
        };
        match opt {
            "dir" => {
                c.no_invert(inv, "--dir")?;
                b.dir = Some(match c.value("--dir")?.as_str() {
                    "in" => true,
                    "out" => false,
                    v => return c.err_value(format!("policy match: invalid direction `{v}'")),
                });
            }
            "pol" => {
                c.no_invert(inv, "--pol")?;
                b.none = Some(match c.value("--pol")?.as_str() {
                    "none" => true,
                    "ipsec" => false,
                    v => return c.err_value(format!("policy match: invalid policy `{v}'")),
                });
            }
            "strict" => {
                c.no_invert(inv, "--strict")?;
                b.strict = true;
            }
            "next" => {
                c.no_invert(inv, "--next")?;
                if !b.strict {
                    return c.err("policy match: --next requires --strict");
                }
                if b.elems.len() == MAX_ELEMS {
                    return c.err("policy match: maximum policy depth reached");
                }
                b.elems.push(Elem::default());
            }
            "reqid" | "spi" | "proto" | "mode" | "tunnel-src" | "tunnel-dst" => {
                let v = c.value_inv(&name, &mut inv)?;
                let e = b.elems.last_mut().expect("one element at least");
                match opt {
                    "reqid" | "spi" => {
                        let slot = if opt == "reqid" { &mut e.reqid } else { &mut e.spi };
                        once(c, slot.is_some())?;
                        let n = parse_uint(&v, 0, u64::from(u32::MAX))
                            .map_or_else(|| c.err_value(format!("policy match: bad {name} `{v}'")), Ok)?;
                        *slot = Some((inv, n as u32));
                    }
                    "proto" => {
                        once(c, e.proto.is_some())?;
                        let p = match v.as_str() {
                            "esp" | "50" => 50,
                            "ah" | "51" => 51,
                            "ipcomp" | "comp" | "108" => 108,
                            _ => return c.err_value("policy match: protocol must be ah/esp/ipcomp"),
                        };
                        e.proto = Some((inv, p));
                    }
                    "mode" => {
                        once(c, e.tunnel.is_some())?;
                        let t = match v.as_str() {
                            "tunnel" => true,
                            "transport" => false,
                            _ => return c.err_value(format!("policy match: invalid mode `{v}'")),
                        };
                        e.tunnel = Some((inv, t));
                    }
                    _ => {
                        let slot = if opt == "tunnel-src" { &mut e.src } else { &mut e.dst };
                        once(c, slot.is_some())?;
                        let n = IpNet::parse(&v, c.family)
                            .map_or_else(|| c.err_value(format!("policy match: bad address `{v}'")), Ok)?;
                        *slot = Some((inv, n));
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(b: Builder, _: RuleProto) -> Result<Policy, String> {
        let dir_in = b.dir.ok_or("policy match: neither --dir in nor --dir out specified")?;
        let none = b.none.unwrap_or(false);
        let elems: Vec<Elem> = if none {
            if b.strict {
                return Err("policy match: policy none but --strict given".into());
            }
            if b.elems.len() > 1 || b.elems.iter().any(|e| !e.is_empty()) {
                return Err("policy match: policy none but policy given".into());
            }
            Vec::new()
        } else if b.elems.is_empty() {
            vec![Elem::default()]
        } else {
            b.elems
        };
        for (i, e) in elems.iter().enumerate() {
            if b.strict && e.is_empty() {
                return Err(format!(
                    "policy match: empty policy element {i}. --strict is in effect, but at least one of reqid, spi, tunnel-src, tunnel-dst, proto or mode is required."
                ));
            }
            // Tunnel endpoints need tunnel mode (an unset mode is transport).
            let (inv_mode, tunnel) = e.tunnel.unwrap_or((false, false));
            if (e.src.is_some() || e.dst.is_some()) && (tunnel == inv_mode) {
                return Err("policy match: --tunnel-src/--tunnel-dst is only valid in tunnel mode".into());
            }
        }
        Ok(Policy {
            dir_in,
            none,
            strict: b.strict,
            elems,
        })
    }

    fn save(&self, out: &mut String) {
        out.push_str(if self.dir_in { " --dir in" } else { " --dir out" });
        out.push_str(if self.none { " --pol none" } else { " --pol ipsec" });
        if self.strict {
            out.push_str(" --strict");
        }
        let bang = |inv: bool| if inv { " !" } else { "" };
        for (i, e) in self.elems.iter().enumerate() {
            if let Some((inv, n)) = e.reqid {
                let _ = write!(out, "{} --reqid {n}", bang(inv));
            }
            if let Some((inv, n)) = e.spi {
                let _ = write!(out, "{} --spi {n:#x}", bang(inv));
            }
            if let Some((inv, p)) = e.proto {
                let name = match p {
                    50 => "esp",
                    51 => "ah",
                    _ => "ipcomp",
                };
                let _ = write!(out, "{} --proto {name}", bang(inv));
            }
            if let Some((inv, t)) = e.tunnel {
                let _ = write!(out, "{} --mode {}", bang(inv), if t { "tunnel" } else { "transport" });
            }
            for (opt, a) in [("tunnel-dst", e.dst), ("tunnel-src", e.src)] {
                if let Some((inv, n)) = a {
                    let _ = write!(out, "{} --{opt} {}", bang(inv), n.numeric());
                }
            }
            if i + 1 < self.elems.len() {
                out.push_str(" --next");
            }
        }
    }

    fn hooks(&self) -> HookMask {
        if self.dir_in {
            hooks::PREROUTING | hooks::INPUT | hooks::FORWARD
        } else {
            hooks::FORWARD | hooks::OUTPUT | hooks::POSTROUTING
        }
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("rtrouter does no IPsec: -m policy --pol none matches every packet, --pol ipsec none")
    }

    fn compile(&self, _: &CompileEnv) -> bool {
        self.none
    }

    fn test(none: &bool, _: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        // No packet has an IPsec security path here.
        *none
    }
}
