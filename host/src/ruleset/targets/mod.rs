//! The `-j` targets. The verdicts the walk itself carries out (`ACCEPT`, `DROP`, `RETURN`, a
//! jump or goto to a user chain, no target at all) are [`Target`]'s own variants; every other
//! target is an extension, one module each as netfilter pairs `libxt_NAME.c` with
//! `xt_NAME.c`: its options and checks, where netfilter allows it (table, hooks), its
//! canonical `iptables-save` form, and what it does to a packet.
//!
//! [`registry!`] at the bottom lists the extensions: adding one is a module implementing
//! [`TargetExt`] plus one line there. Targets hold plain data once parsed (a plugin target's
//! handle is bound at validation), so the evaluator runs them as they are.

pub mod audit;
pub mod checksum;
pub mod classify;
pub mod connmark;
pub mod ct;
pub mod dnat;
pub mod dscp;
pub mod ecn;
pub mod hl;
pub mod hmark;
pub mod idletimer;
pub mod led;
pub mod log;
pub mod mark;
pub mod masquerade;
pub mod nat;
pub mod netmap;
pub mod nflog;
pub mod nfqueue;
pub mod notrack;
pub mod npt;
pub mod rateest;
pub mod redirect;
pub mod reject;
pub mod secmark;
pub mod set;
pub mod snat;
pub mod synproxy;
pub mod tcpmss;
pub mod tcpoptstrip;
pub mod tee;
pub mod tos;
pub mod tproxy;
pub mod trace;
pub mod ttl;
pub mod wasm;

pub use connmark::ConnMark;
pub use ct::Ct;
pub use log::Log;
pub use nat::NatRange;
pub use nflog::Nflog;
pub use reject::RejectWith;
pub use tcpmss::TcpMss;
pub use ttl::TtlOp;

use super::ext::{Cursor, PResult};
use super::matches::RuleProto;
use super::{hooks, HookMask, TableKind};
use crate::eval::{Cx, Engine, Pkt, Verdict};
use std::fmt::Write as _;

/// One target extension.
pub trait TargetExt: Sized {
    /// The options while they are read.
    type Builder: Clone + std::fmt::Debug;
    /// The target's options may be negated and it checks `!` itself (else the registry
    /// refuses `!` before an option).
    const CHECKS_INVERT: bool = false;

    /// The state after `-j NAME`.
    fn start() -> Self::Builder;
    /// The target's options (without the dashes). An abbreviation of one of them is taken
    /// for it when it abbreviates no other, as getopt does (`SNAT --to`).
    const OPTIONS: &'static [&'static str];
    /// Reads an option this target owns.
    fn option(b: &mut Self::Builder, opt: &str, inv: bool, c: &mut Cursor) -> PResult<()>;
    /// Checks the completed target against the rule: its `-p`, and for TCPMSS whether a
    /// match selects SYN packets.
    fn finish(b: Self::Builder, p: RuleProto, syn_match: bool) -> Result<Self, String>;
    /// Appends the options (after ` -j NAME`) exactly as iptables-save prints them.
    fn save(&self, out: &mut String);
    /// The tables the target is restricted to (`xt_target.table`, or its checkentry); empty
    /// when any table may use it.
    fn tables(&self) -> &'static [TableKind] {
        &[]
    }
    /// The hooks the target is valid in (`xt_target.hooks` and checkentry).
    fn hooks(&self) -> HookMask {
        hooks::ALL
    }
    /// The ipsets the target names (they must exist; a set rules name cannot be destroyed).
    fn ipsets(&self) -> Vec<&str> {
        Vec::new()
    }
    /// Why what the target acts on does not exist on a TUN router, when it does not (`check`
    /// warns about such rules): what it then does.
    fn tun_note(&self) -> Option<&'static str> {
        None
    }
    /// Renames ipset `from` to `to` where the target names it; whether it did.
    fn rename_ipset(&mut self, _from: &str, _to: &str) -> bool {
        false
    }
    /// Appends the target's `iptables -L` text as its libxt module's `print` writes it (with
    /// `numeric` for `-n`); by default its iptables-save options.
    fn list(&self, out: &mut String, _numeric: bool) {
        self.save(out);
    }
    /// Acts on the packet: `Some(verdict)` ends the table (NAT targets accept after recording
    /// the translation), `None` continues with the next rule (`XT_CONTINUE`).
    fn apply(&self, p: &mut Pkt, cx: &mut Cx, eng: &Engine) -> Option<Verdict>;
}

macro_rules! registry {
    ($($name:literal => $var:ident($m:ident :: $ty:ident)),* $(,)?) => {
        /// What a rule does when all its matches hold.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Target {
            /// No `-j`: the rule only counts.
            None,
            Accept,
            Drop,
            Return,
            /// `-j CHAIN`: call a user chain, coming back here on RETURN.
            Jump(String),
            /// `-g CHAIN`: continue in a user chain without a return point.
            Goto(String),
            $($var($m::$ty),)*
        }

        /// A target whose options are still being read.
        #[derive(Debug, Clone)]
        pub enum PartialTarget {
            /// A verdict or chain: no options.
            Plain(Target),
            $($var(<$m::$ty as TargetExt>::Builder),)*
        }

        impl PartialTarget {
            /// Starts the target named by `-j NAME`. Names that are not targets are chains;
            /// names of extensions rtrouter lacks are refused here rather than taken for
            /// chains.
            pub fn start(name: &str) -> Result<PartialTarget, String> {
                Ok(match name {
                    "ACCEPT" => PartialTarget::Plain(Target::Accept),
                    "DROP" => PartialTarget::Plain(Target::Drop),
                    "RETURN" => PartialTarget::Plain(Target::Return),
                    $($name => PartialTarget::$var(<$m::$ty as TargetExt>::start()),)*
                    n if is_unsupported_extension(n) => {
                        return Err(format!("target `{n}' is not supported by rtrouter"));
                    }
                    n => PartialTarget::Plain(Target::Jump(n.to_string())),
                })
            }

            /// `-g NAME`: a goto to a user chain (the name must not be a known extension
            /// rtrouter lacks, as for `-j`).
            pub fn goto(name: &str) -> Result<PartialTarget, String> {
                Self::start(name)?;
                Ok(PartialTarget::Plain(Target::Goto(name.to_string())))
            }

            /// The target's long options ([`TargetExt::OPTIONS`]); none for a verdict or chain.
            pub fn options(&self) -> &'static [&'static str] {
                match self {
                    PartialTarget::Plain(_) => &[],
                    $(PartialTarget::$var(_) => <$m::$ty as TargetExt>::OPTIONS,)*
                }
            }

            /// Offers `--opt` (spelled in full) to the target; `Ok(false)` when it is not one
            /// of its options.
            pub fn option(&mut self, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
                match self {
                    PartialTarget::Plain(_) => Ok(false),
                    $(PartialTarget::$var(b) => {
                        let Some(&opt) = <$m::$ty as TargetExt>::OPTIONS.iter().find(|o| **o == opt) else {
                            return Ok(false);
                        };
                        if !<$m::$ty as TargetExt>::CHECKS_INVERT {
                            c.no_invert(inv, &format!("--{opt}"))?;
                        }
                        <$m::$ty as TargetExt>::option(b, opt, inv, c).map(|()| true)
                    })*
                }
            }

            /// Checks the complete target against the rule.
            pub fn finish(self, p: RuleProto, syn_match: bool) -> Result<Target, String> {
                match self {
                    PartialTarget::Plain(t) => Ok(t),
                    $(PartialTarget::$var(b) => <$m::$ty as TargetExt>::finish(b, p, syn_match).map(Target::$var),)*
                }
            }
        }

        impl Target {
            /// The name `-j` takes.
            pub fn name(&self) -> &str {
                match self {
                    Target::None => "",
                    Target::Accept => "ACCEPT",
                    Target::Drop => "DROP",
                    Target::Return => "RETURN",
                    Target::Jump(c) | Target::Goto(c) => c,
                    $(Target::$var(_) => $name,)*
                }
            }

            /// The tables a target is restricted to (empty: any), as the kernel's
            /// `xt_target.table` and checkentry.
            pub fn tables(&self) -> &'static [TableKind] {
                match self {
                    Target::None | Target::Accept | Target::Drop | Target::Return | Target::Jump(_) | Target::Goto(_) => &[],
                    $(Target::$var(t) => t.tables(),)*
                }
            }

            /// Why what the target acts on does not exist on a TUN router, when it does not.
            pub fn tun_note(&self) -> Option<&'static str> {
                match self {
                    Target::None | Target::Accept | Target::Drop | Target::Return | Target::Jump(_) | Target::Goto(_) => None,
                    $(Target::$var(t) => t.tun_note(),)*
                }
            }

            /// The ipsets the target names.
            pub fn ipsets(&self) -> Vec<&str> {
                match self {
                    Target::None | Target::Accept | Target::Drop | Target::Return | Target::Jump(_) | Target::Goto(_) => Vec::new(),
                    $(Target::$var(t) => t.ipsets(),)*
                }
            }

            /// Renames an ipset the target names; whether it did.
            pub fn rename_ipset(&mut self, from: &str, to: &str) -> bool {
                match self {
                    Target::None | Target::Accept | Target::Drop | Target::Return | Target::Jump(_) | Target::Goto(_) => false,
                    $(Target::$var(t) => t.rename_ipset(from, to),)*
                }
            }

            /// The hooks a target is valid in, as the kernel's `xt_target.hooks` and checkentry.
            pub fn allowed_hooks(&self) -> HookMask {
                match self {
                    Target::None | Target::Accept | Target::Drop | Target::Return | Target::Jump(_) | Target::Goto(_) => hooks::ALL,
                    $(Target::$var(t) => t.hooks(),)*
                }
            }

            /// Appends an extension target's `iptables -L` text (nothing for a verdict or
            /// chain).
            pub fn list(&self, out: &mut String, numeric: bool) {
                match self {
                    Target::None | Target::Accept | Target::Drop | Target::Return | Target::Jump(_) | Target::Goto(_) => {}
                    $(Target::$var(t) => t.list(out, numeric),)*
                }
            }

            /// Appends ` -j NAME OPTIONS` (or ` -g CHAIN`) as iptables-save prints it.
            pub fn save(&self, out: &mut String) {
                match self {
                    Target::None => {}
                    Target::Goto(c) => {
                        let _ = write!(out, " -g {c}");
                    }
                    Target::Accept | Target::Drop | Target::Return | Target::Jump(_) => {
                        let _ = write!(out, " -j {}", self.name());
                    }
                    $(Target::$var(t) => {
                        let _ = write!(out, " -j {}", $name);
                        t.save(out);
                    })*
                }
            }

            /// Runs an extension target: `Some(verdict)` ends the table, `None` continues.
            /// The walk carries out its own verdicts and chains before it gets here; for them
            /// this continues.
            pub(crate) fn apply(&self, p: &mut Pkt, cx: &mut Cx, eng: &Engine) -> Option<Verdict> {
                match self {
                    Target::None | Target::Accept | Target::Drop | Target::Return | Target::Jump(_) | Target::Goto(_) => None,
                    $(Target::$var(t) => t.apply(p, cx, eng),)*
                }
            }
        }
    };
}

registry! {
    "REJECT" => Reject(reject::Reject),
    "LOG" => Log(log::Log),
    "NFLOG" => Nflog(nflog::Nflog),
    "MARK" => Mark(mark::Mark),
    "CONNMARK" => ConnMark(connmark::ConnMark),
    "DNAT" => Dnat(dnat::Dnat),
    "SNAT" => Snat(snat::Snat),
    "MASQUERADE" => Masquerade(masquerade::Masquerade),
    "REDIRECT" => Redirect(redirect::Redirect),
    "NOTRACK" => Notrack(notrack::Notrack),
    "CT" => Ct(ct::Ct),
    "TTL" => Ttl(ttl::Ttl),
    "HL" => Hl(hl::Hl),
    "SNPT" => Snpt(npt::Snpt),
    "DNPT" => Dnpt(npt::Dnpt),
    "TPROXY" => Tproxy(tproxy::Tproxy),
    "TCPMSS" => TcpMss(tcpmss::TcpMss),
    "CHECKSUM" => Checksum(checksum::Checksum),
    "DSCP" => Dscp(dscp::Dscp),
    "TOS" => Tos(tos::Tos),
    "NETMAP" => Netmap(netmap::Netmap),
    "CLASSIFY" => Classify(classify::Classify),
    "SECMARK" => Secmark(secmark::Secmark),
    "CONNSECMARK" => ConnSecmark(secmark::ConnSecmark),
    "NFQUEUE" => Nfqueue(nfqueue::Nfqueue),
    "QUEUE" => Queue(nfqueue::Queue),
    "AUDIT" => Audit(audit::Audit),
    "LED" => Led(led::Led),
    "TCPOPTSTRIP" => TcpOptStrip(tcpoptstrip::TcpOptStrip),
    "IDLETIMER" => IdleTimer(idletimer::IdleTimer),
    "HMARK" => Hmark(hmark::Hmark),
    "TEE" => Tee(tee::Tee),
    "ECN" => Ecn(ecn::Ecn),
    "SET" => Set(set::Set),
    "TRACE" => Trace(trace::Trace),
    "RATEEST" => RateEst(rateest::RateEst),
    "SYNPROXY" => Synproxy(synproxy::Synproxy),
    "WASM" => Wasm(wasm::WasmTarget),
}

/// Extensions that iptables has and rtrouter does not implement: refused by name so that a
/// ruleset using them fails loudly instead of jumping to a missing chain.
fn is_unsupported_extension(name: &str) -> bool {
    matches!(name, "CLUSTERIP" | "ULOG" | "MIRROR" | "SAME")
}

/// How MARK's and CONNMARK's `print` name an xmark pair (`value` XORed into the bits `mask`
/// clears): ` NAME and|or|xor|set|xset …`, the first spelling that says it.
pub(crate) fn list_xmark(out: &mut String, name: &str, v: u32, m: u32) {
    let _ = if v == 0 {
        write!(out, " {name} and {:#x}", !m)
    } else if v == m {
        write!(out, " {name} or {v:#x}")
    } else if m == 0 {
        write!(out, " {name} xor {v:#x}")
    } else if m == u32::MAX {
        write!(out, " {name} set {v:#x}")
    } else {
        write!(out, " {name} xset {v:#x}/{m:#x}")
    };
}

/// The xmark pair for MARK/CONNMARK's option spellings (libxt_MARK.c).
pub(crate) fn bit_op(opt: &str, v: u32, m: u32) -> (u32, u32) {
    match opt {
        "set-xmark" => (v, m),
        "set-mark" => (v, v | m),
        "and-mark" => (0, !v),
        "or-mark" => (v, v),
        _ => (v, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_spellings_become_xmark() {
        assert_eq!(bit_op("or-mark", 0x4000, 0), (0x4000, 0x4000));
        assert_eq!(bit_op("xor-mark", 0x4000, 0), (0x4000, 0));
        assert_eq!(bit_op("and-mark", 0xff, 0), (0, !0xff));
        assert_eq!(bit_op("set-mark", 1, 0xffffffff), (1, 0xffffffff));
    }
}
