//! The `-m` match extensions, one module each, as netfilter pairs `libxt_NAME.c` (options,
//! checks, printing) with `xt_NAME.c` (the test): each module holds the extension's option
//! struct, its option parsing and checks (`xtables_fcheck`, the kernel's `checkentry`), its
//! canonical `iptables-save` form, the hooks it allows, its compile step (names resolved to
//! the generation's objects, state allocated) and the test the evaluator runs.
//!
//! [`registry!`] at the bottom lists them: adding an extension is one module, implementing
//! [`MatchExt`] (a missing piece does not compile), plus one line there. The registry
//! generates [`Match`] (a rule's match as loaded), [`Partial`] (one whose options are still
//! being read) and [`Test`] (the compiled test), with exhaustive dispatch over them.
//!
//! Options are offered with `option()`, which returns `Ok(false)` for an option that is not
//! the extension's, so that the rule parser can offer it to another one.

pub mod addrtype;
pub mod bpf;
pub mod cgroup;
pub mod cluster;
pub mod comment;
pub mod connbytes;
pub mod connlabel;
pub mod connlimit;
pub mod connmark;
pub mod conntrack;
pub mod cpu;
pub mod dccp;
pub mod devgroup;
pub mod dscp;
pub mod ecn;
pub mod esp;
pub mod exthdr;
pub mod hashlimit;
pub mod helper;
pub mod hl;
pub mod icmp;
pub mod icmp6;
pub mod ipcomp;
pub mod iprange;
pub mod length;
pub mod limit;
pub mod mac;
pub mod mark;
pub mod multiport;
pub mod nfacct;
pub mod osf;
pub mod owner;
pub mod physdev;
pub mod pkttype;
pub mod policy;
pub mod quota;
pub mod rateest;
pub mod realm;
pub mod recent;
pub mod rpfilter;
pub mod sctp;
pub mod set;
pub mod socket;
pub mod state;
pub mod statistic;
pub mod string;
pub mod tcp;
pub mod tcpmss;
pub mod time;
pub mod tos;
pub mod ttl;
pub mod u32;
pub mod udp;
pub mod wasm;

pub use addrtype::{AddrType, ADDR_TYPES};
pub use conntrack::{ctstate, ctstatus, Conntrack, CtDir};
pub use icmp::{parse_icmp_type, Icmp};
pub use iprange::IpRange;
pub use limit::{parse_rate, Limit, LIMIT_SCALE};
pub use mark::{parse_mark_mask, MarkMask};
pub use multiport::{Multiport, PortSide};
pub use pkttype::PktType;
pub use recent::{Recent, RecentCmd, RECENT_MAX_HITCOUNT};
pub use set::SetMatch;
pub use statistic::{Statistic, StatisticMode};
pub use tcp::{print_tcp_flags, Tcp};
pub use ttl::Ttl;
pub use udp::Ports;
pub use wasm::Plugin;

use super::ext::{Cursor, PResult};
use super::{hooks, HookMask};
use crate::eval::classify::{Fields, Indexed};
use crate::eval::state::{IpSets, Shared};
use crate::eval::{Cx, Engine, Pkt};
use std::fmt::Write as _;

/// What the rule parser knows when it checks a match: the rule's `-p`.
#[derive(Debug, Clone, Copy)]
pub struct RuleProto {
    pub proto: u8,
    pub inv: bool,
    /// The ruleset's family: some extensions exist for one only (`icmp`, `ttl` are
    /// iptables'; `icmp6`, `hl` are ip6tables').
    pub family: super::Family,
}

impl RuleProto {
    /// The protocol when the rule is restricted to exactly one.
    pub fn exact(&self) -> Option<u8> {
        (!self.inv && self.proto != 0).then_some(self.proto)
    }

    /// `Ok` in a ruleset of `family`; else the error ip6tables or iptables gives for an
    /// extension the other has (`libxtables` finds no such extension for the family).
    pub(crate) fn only(&self, family: super::Family, kind: &str, ext: &str) -> Result<(), String> {
        if self.family == family {
            Ok(())
        } else {
            Err(format!(
                "Couldn't load {kind} `{ext}': no such {kind} in {}",
                self.family.tool()
            ))
        }
    }

    /// `Ok` when the rule is `-p NAME` (protocol `want`), as protocol-bound matches demand.
    pub(crate) fn require(&self, want: u8, ext: &str) -> Result<(), String> {
        if self.exact() == Some(want) {
            Ok(())
        } else {
            Err(format!("match `{ext}' is only valid with `-p {ext}'"))
        }
    }
}

/// What compiling a match may refer to: the generation's shared state and ipsets.
#[derive(Debug, Clone, Copy)]
pub struct CompileEnv<'a> {
    pub shared: &'a Shared,
    pub ipsets: &'a IpSets,
}

/// One match extension.
pub trait MatchExt: Sized {
    /// The options while they are read; `Default` is the state after `-m NAME`.
    type Builder: Default + Clone + std::fmt::Debug;
    /// What the evaluator runs: plain data with names resolved, and the match's state.
    type Compiled: std::fmt::Debug + Send + Sync;
    /// Testing the match changes state or draws a random number (a counter, a token bucket,
    /// a list, a plugin call): the classifier may skip a rule only for a test before it.
    const SIDE_EFFECT: bool;
    /// Every long option the match takes (aliases too), as its `xt_option_entry` table lists
    /// them: the rule parser resolves abbreviations against these as getopt_long does.
    const OPTIONS: &'static [&'static str];

    /// Offers `--opt` (without the dashes); `Ok(false)` when it is not this match's.
    fn option(b: &mut Self::Builder, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool>;
    /// Checks the completed options against the rule's `-p`.
    fn finish(b: Self::Builder, p: RuleProto) -> Result<Self, String>;
    /// Appends the options (after ` -m NAME`) exactly as iptables-save prints them.
    fn save(&self, out: &mut String);
    /// Appends the match as `iptables -L` shows it (each part after a space); `false` when
    /// the extension has no list form of its own and its iptables-save options stand in.
    fn list(&self, _out: &mut String, _numeric: bool) -> bool {
        false
    }
    /// The hooks where the kernel accepts the match with these options.
    fn hooks(&self) -> HookMask {
        hooks::ALL
    }
    /// The ipsets the match names (they must exist; a set rules name cannot be destroyed).
    fn ipsets(&self) -> Vec<&str> {
        Vec::new()
    }
    /// Why the match's input does not exist on a TUN router, when it does not (`check`
    /// warns about such rules): what it then matches.
    fn tun_note(&self) -> Option<&'static str> {
        None
    }
    /// Renames ipset `from` to `to` where the match names it; whether it did.
    fn rename_ipset(&mut self, _from: &str, _to: &str) -> bool {
        false
    }
    /// The test, compiled against one generation.
    fn compile(&self, env: &CompileEnv) -> Self::Compiled;
    /// Whether the packet matches (and the side effect, if any).
    fn test(c: &Self::Compiled, p: &Pkt, cx: &mut Cx, eng: &Engine) -> bool;
    /// Narrows the fields the classifier indexes by what this match demands of every packet
    /// it matches, and says whether they now capture its test exactly. Only called for
    /// matches before a rule's first side effect.
    fn index(&self, _f: &mut Fields) -> Indexed {
        Indexed::Partial
    }
}

macro_rules! registry {
    ($($name:literal => $var:ident($m:ident :: $ty:ident)),* $(,)?) => {
        /// One `-m` match of a rule, as loaded.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Match {
            $($var($m::$ty),)*
        }

        /// A match whose options are still being read.
        #[derive(Debug, Clone)]
        pub enum Partial {
            $($var(<$m::$ty as MatchExt>::Builder),)*
        }

        /// A compiled match: what the evaluator runs.
        #[derive(Debug)]
        pub enum Test {
            $($var(<$m::$ty as MatchExt>::Compiled),)*
        }

        /// The names `-m` takes.
        #[cfg(test)]
        const NAMES: &[&str] = &[$($name),*];

        impl Partial {
            /// Starts the match named by `-m NAME`; `None` for an unknown extension.
            pub fn start(name: &str) -> Option<Partial> {
                match name {
                    $($name => Some(Partial::$var(Default::default())),)*
                    _ => None,
                }
            }

            /// The extension's name.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Partial::$var(_) => $name,)*
                }
            }

            /// The extension's long options ([`MatchExt::OPTIONS`]).
            pub fn options(&self) -> &'static [&'static str] {
                match self {
                    $(Partial::$var(_) => <$m::$ty as MatchExt>::OPTIONS,)*
                }
            }

            /// Offers the option `opt` (already stripped of `--`); `Ok(false)`: not ours.
            pub fn option(&mut self, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
                match self {
                    $(Partial::$var(b) => <$m::$ty as MatchExt>::option(b, opt, inv, c),)*
                }
            }

            /// Checks the completed match (`xtables_fcheck` plus the kernel's `checkentry`).
            pub fn finish(self, p: RuleProto) -> Result<Match, String> {
                match self {
                    $(Partial::$var(b) => <$m::$ty as MatchExt>::finish(b, p).map(Match::$var),)*
                }
            }
        }

        impl Match {
            /// The extension name that `-m` takes.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Match::$var(_) => $name,)*
                }
            }

            /// The hooks where the kernel accepts this match.
            pub fn allowed_hooks(&self) -> HookMask {
                match self {
                    $(Match::$var(m) => m.hooks(),)*
                }
            }

            /// Appends ` -m NAME OPTIONS` exactly as iptables-save prints them.
            pub fn save(&self, out: &mut String) {
                let _ = write!(out, " -m {}", self.name());
                match self {
                    $(Match::$var(m) => m.save(out),)*
                }
            }

            /// Appends the match as `iptables -L` shows it.
            pub fn list(&self, out: &mut String, numeric: bool) {
                let done = match self {
                    $(Match::$var(m) => m.list(out, numeric),)*
                };
                if !done {
                    self.save(out);
                }
            }

            /// Why the match's input does not exist on a TUN router, when it does not.
            pub fn tun_note(&self) -> Option<&'static str> {
                match self {
                    $(Match::$var(m) => m.tun_note(),)*
                }
            }

            /// The ipsets the match names.
            pub fn ipsets(&self) -> Vec<&str> {
                match self {
                    $(Match::$var(m) => m.ipsets(),)*
                }
            }

            /// Renames an ipset the match names; whether it did.
            pub fn rename_ipset(&mut self, from: &str, to: &str) -> bool {
                match self {
                    $(Match::$var(m) => m.rename_ipset(from, to),)*
                }
            }

            /// Whether testing this match has a side effect.
            pub fn side_effect(&self) -> bool {
                match self {
                    $(Match::$var(_) => <$m::$ty as MatchExt>::SIDE_EFFECT,)*
                }
            }

            pub(crate) fn index(&self, f: &mut Fields) -> Indexed {
                match self {
                    $(Match::$var(m) => m.index(f),)*
                }
            }

            /// The test against one generation.
            pub fn compile(&self, env: &CompileEnv) -> Test {
                match self {
                    $(Match::$var(m) => Test::$var(m.compile(env)),)*
                }
            }
        }

        impl Test {
            /// Whether the packet matches.
            #[inline]
            pub fn test(&self, p: &Pkt, cx: &mut Cx, eng: &Engine) -> bool {
                match self {
                    $(Test::$var(c) => <$m::$ty as MatchExt>::test(c, p, cx, eng),)*
                }
            }
        }
    };
}

registry! {
    "tcp" => Tcp(tcp::Tcp),
    "udp" => Udp(udp::Udp),
    "sctp" => Sctp(sctp::Sctp),
    "icmp" => Icmp(icmp::Icmp),
    "icmp6" => Icmp6(icmp6::Icmp6),
    "multiport" => Multiport(multiport::Multiport),
    "comment" => Comment(comment::Comment),
    "addrtype" => AddrType(addrtype::AddrType),
    "statistic" => Statistic(statistic::Statistic),
    "conntrack" => Conntrack(conntrack::Conntrack),
    "state" => State(state::State),
    "mark" => Mark(mark::Mark),
    "connmark" => ConnMark(connmark::ConnMark),
    "iprange" => IpRange(iprange::IpRange),
    "limit" => Limit(limit::Limit),
    "length" => Length(length::Length),
    "ttl" => Ttl(ttl::TtlMatch),
    "hl" => Hl(hl::Hl),
    "set" => Set(set::SetMatch),
    "pkttype" => PktType(pkttype::PktTypeMatch),
    "recent" => Recent(recent::Recent),
    "nfacct" => Nfacct(nfacct::Nfacct),
    "mac" => Mac(mac::Mac),
    "tos" => Tos(tos::Tos),
    "dscp" => Dscp(dscp::Dscp),
    "policy" => Policy(policy::Policy),
    "physdev" => Physdev(physdev::Physdev),
    "owner" => Owner(owner::Owner),
    "tcpmss" => TcpMss(tcpmss::TcpMss),
    "quota" => Quota(quota::Quota),
    "esp" => Esp(esp::Esp),
    "ah" => Ah(esp::Ah),
    "ecn" => Ecn(ecn::Ecn),
    "string" => Str(string::StringMatch),
    "helper" => Helper(helper::Helper),
    "time" => Time(time::Time),
    "rpfilter" => Rpfilter(rpfilter::Rpfilter),
    "hashlimit" => HashLimit(hashlimit::HashLimit),
    "connbytes" => Connbytes(connbytes::Connbytes),
    "connlimit" => Connlimit(connlimit::Connlimit),
    "u32" => U32(u32::U32),
    "ipcomp" => IpComp(ipcomp::IpComp),
    "cpu" => Cpu(cpu::Cpu),
    "realm" => Realm(realm::Realm),
    "devgroup" => DevGroup(devgroup::DevGroup),
    "osf" => Osf(osf::Osf),
    "cluster" => Cluster(cluster::Cluster),
    "dccp" => Dccp(dccp::Dccp),
    "bpf" => Bpf(bpf::Bpf),
    "connlabel" => ConnLabel(connlabel::ConnLabel),
    "frag" => Frag(exthdr::Frag),
    "hbh" => Hbh(exthdr::Hbh),
    "dst" => Dst(exthdr::Dst),
    "rt" => Rt(exthdr::Rt),
    "ipv6header" => Ipv6Header(exthdr::Ipv6Header),
    "mh" => Mh(exthdr::Mh),
    "eui64" => Eui64(exthdr::Eui64),
    "srh" => Srh(exthdr::Srh),
    "cgroup" => Cgroup(cgroup::Cgroup),
    "socket" => Socket(socket::Socket),
    "rateest" => RateEst(rateest::RateEstMatch),
    "wasm" => Wasm(wasm::Plugin),
}

/// ` --opt RANGE` with its `!`, for an optional negatable range.
fn save_range(out: &mut String, opt: &str, r: &Option<super::ext::Neg<super::value::Range16>>) {
    if let Some(r) = r {
        let _ = write!(out, "{} --{opt} {}", r.bang(), r.v);
    }
}

/// The same, leaving out a full range that is not negated (iptables prints nothing for it).
fn save_port_range(out: &mut String, opt: &str, r: &Option<super::ext::Neg<super::value::Range16>>) {
    if let Some(r) = r.filter(|r| r.inv || r.v != super::value::Range16::FULL) {
        let _ = write!(out, "{} --{opt} {}", r.bang(), r.v);
    }
}

/// A negatable range test that holds when absent.
fn range_holds(r: &Option<super::ext::Neg<super::value::Range16>>, v: u16) -> bool {
    r.is_none_or(|r| r.holds(r.v.contains(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::lex::tokenize;

    #[test]
    fn every_listed_option_is_taken() {
        for name in NAMES {
            let p = Partial::start(name).expect("registered");
            for opt in p.options() {
                let toks = tokenize("1 2 3").unwrap();
                let mut c = Cursor::new(&toks);
                let mut p = p.clone();
                // Taken or refused for its value, but never passed over.
                assert!(!matches!(p.option(opt, false, &mut c), Ok(false)), "-m {name} --{opt}");
            }
        }
    }
}
