//! Rule evaluation: one table at one hook, for one packet, with netfilter's semantics
//! (`ipt_do_table`).
//!
//! First matching rule wins; its counters count before its target runs; `-j CHAIN` pushes a
//! return point on an explicit stack (bounded by validation), `-g` does not; RETURN or the end
//! of a user chain pops; the end of a built-in chain (or RETURN with an empty stack) applies
//! its policy; ACCEPT ends the table, DROP and REJECT end the packet; NAT targets record the
//! translation and accept; other targets change the packet or its metadata and continue.
//!
//! [`Engine::run`] is the one entry point. It walks a chain from rule to rule; with
//! [`EngineKind::Compiled`] (the default) each step asks the chain's [`classify::ChainIndex`]
//! for the next rule whose indexed tests can hold, so rules that cannot match are skipped
//! without being tested. Everything else (the order of tests within a rule, side effects,
//! counters, jumps, policies) is the same code for both kinds; [`EngineKind::Linear`] is the
//! reference the compiled engine is tested against.
//!
//! Per IP family, as netfilter: an engine runs iptables' (IPv4) or ip6tables' (IPv6) tables,
//! as its ruleset's family says; the router keeps one of each and gives each packet to its own.

pub mod classify;
pub mod jhash;
pub mod log;
pub mod matches;
pub mod plugin_out;
pub mod rateest;
pub mod state;

use crate::packet::{Headers, L4};
use crate::route::{IfaceId, Topology};
use crate::ruleset::chunked::Chunked;
use crate::ruleset::matches::{Match, Test};
use crate::ruleset::slots::Slots;
use crate::ruleset::targets::{RejectWith, Target};
use crate::ruleset::validate::{ValidChain, MAX_DEPTH};
use crate::ruleset::{Hook, Policy, TableKind, ValidRuleset};
use smallvec::SmallVec;
use state::{IpSets, Shared};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// A connection's state as the conntrack and state matches see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtState {
    New,
    Established,
    Related,
}

/// Conntrack status bits (`IPS_*`).
pub mod status {
    pub const EXPECTED: u16 = 1 << 0;
    pub const SEEN_REPLY: u16 = 1 << 1;
    pub const ASSURED: u16 = 1 << 2;
    pub const CONFIRMED: u16 = 1 << 3;
    pub const SRC_NAT: u16 = 1 << 4;
    pub const DST_NAT: u16 = 1 << 5;
    /// `IPS_SEQ_ADJUST`: the connection's sequence numbers are shifted (SYNPROXY).
    pub const SEQ_ADJUST: u16 = 1 << 6;
    /// rtrouter's own bit: SYNPROXY opened the connection and keeps its record in it (the
    /// kernel's synproxy extension).
    pub const SYNPROXY: u16 = 1 << 15;
}

/// Addresses and ports of one direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

/// What rules may read and change about the packet's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtInfo {
    pub state: CtState,
    /// The packet travels in the reply direction.
    pub reply_dir: bool,
    pub status: u16,
    pub mark: u32,
    /// The connection's labels (`-m connlabel`), one bit each.
    pub labels: u128,
    pub proto: u8,
    pub orig: Tuple,
    pub reply: Tuple,
    /// Seconds until the entry expires.
    pub expires_in: u32,
    /// Packets and bytes the connection has seen, original and reply direction (this packet
    /// included, as conntrack counts before the tables run).
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
}

impl CtInfo {
    /// The view of a connection's first packet: NEW, the reply tuple the packet's reverse.
    pub fn new_from(h: &Headers) -> CtInfo {
        let (sport, dport) = h.ports().unwrap_or(match h.l4 {
            L4::Icmp(i) => (i.ident, 0),
            _ => (0, 0),
        });
        let orig = Tuple {
            src: h.src,
            dst: h.dst,
            sport,
            dport,
        };
        CtInfo {
            state: CtState::New,
            reply_dir: false,
            status: 0,
            mark: 0,
            labels: 0,
            proto: h.proto,
            orig,
            reply: Tuple {
                src: h.dst,
                dst: h.src,
                sport: dport,
                dport: sport,
            },
            expires_in: 0,
            packets: [1, 0],
            bytes: [u64::from(h.total_len), 0],
        }
    }
}

/// How the packet stands with conntrack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ct {
    /// Conntrack could not classify it (`INVALID`).
    Invalid,
    /// `NOTRACK`/`CT --notrack` in raw.
    Untracked,
    Tracked(CtInfo),
}

/// A NAT translation a nat-table target asked for; the router applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatRequest {
    /// `true` for DNAT/REDIRECT (destination), `false` for SNAT/MASQUERADE (source).
    pub dst: bool,
    /// The new address; `None` keeps it (a port-only translation).
    pub addr: Option<IpAddr>,
    /// The port range to map into; `None` keeps the port (if free, in conntrack's words).
    pub ports: Option<(u16, u16)>,
    pub masquerade: bool,
    pub random: bool,
    pub random_fully: bool,
    pub persistent: bool,
    /// `MASQUERADE`/`REDIRECT` asked for an address the interface does not have.
    pub no_addr: bool,
}

/// The packet as rules see and change it.
#[derive(Debug)]
pub struct Pkt<'a> {
    pub buf: &'a mut Vec<u8>,
    pub h: Headers,
    pub in_if: Option<IfaceId>,
    pub out_if: Option<IfaceId>,
    pub mark: u32,
    pub ct: Ct,
    /// Conntrack zone from `CT --zone`.
    pub zone: u16,
    /// Set by a nat-table target during this traversal.
    pub nat: Option<NatRequest>,
    /// The connection's translation is already settled, so the nat chains do not run
    /// (later packets of a connection, replies the router generates, looped-back packets).
    pub nat_done: bool,
    /// The packet already has a connection (conntrack looked it up, or the router attached
    /// it to the one it answers, or it loops back); see [`Pkt::has_conntrack`].
    pub seen: bool,
    /// Marked by `TRACE`: every rule the packet meets from then on is reported live.
    pub trace: bool,
}

impl Pkt<'_> {
    /// The packet has a connection or is untracked already (`skb->_nfct != 0`): what `CT` and
    /// `NOTRACK` check before they act ("Previously seen (loopback or untracked)? Ignore.").
    pub fn has_conntrack(&self) -> bool {
        self.seen || self.ct == Ct::Untracked
    }
}

/// What a table decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Continue with the next table or hook.
    Accept,
    Drop,
    Reject(RejectWith),
    /// Dropped for a reason other than a rule's DROP (a plugin configured to drop on
    /// failure failed).
    Abort(crate::packet::DropReason),
    /// `SYNPROXY` took a SYN or an ACK: the router answers or checks it and steals it.
    Synproxy(crate::synproxy::Info),
}

/// Random decisions rules make (`statistic --mode random`, NAT `--random`). The dataplane
/// draws them; the tracer enumerates them.
pub trait Chance {
    /// True with probability `p / 2^31` (the kernel's `statistic` encoding).
    fn chance(&mut self, p: u32) -> bool;
    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: u32) -> u32;
}

/// A small, fast generator (SplitMix64) for the dataplane's random decisions; seedable so that
/// tests and replays are deterministic.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Chance for SplitMix {
    fn chance(&mut self, p: u32) -> bool {
        ((self.next_u64() as u32) & 0x7fff_ffff) < p
    }

    fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n.max(1))) >> 32) as u32
    }
}

/// What the tracer is told while a table runs. Every method has an empty default, and the
/// dataplane passes `()`, so observation costs nothing there.
pub trait Observer {
    fn rule(&mut self, _table: TableKind, _chain: &ValidChain, _index: usize, _matched: bool) {}
    fn policy(&mut self, _table: TableKind, _chain: &ValidChain, _policy: Policy) {}
    fn event(&mut self, _what: &dyn Fn() -> String) {}
    /// `TRACE` marked the packet: the rules it meets from here on are reported.
    fn trace_start(&mut self, _p: &Pkt) {}
}

impl Observer for () {}

/// Everything a table run needs besides the packet.
pub struct Cx<'a> {
    pub topo: &'a Topology,
    /// Monotonic nanoseconds, from the caller.
    pub now: u64,
    /// Wall-clock time, nanoseconds since the Unix epoch (UTC), for `-m time`: the router's
    /// wall clock at `now` 0 plus `now` (a replay's capture timestamps are wall-clock already).
    pub wall: u64,
    /// Seconds east of UTC of the kernel's timezone (`sys_tz`), for `-m time --kerneltz`.
    pub kernel_tz: i32,
    /// The CPU processing the packet, for `-m cpu` (asked only when a rule needs it).
    pub cpu: fn() -> u32,
    /// Connection labels `-m connlabel --set` set during this table run (the caller adds
    /// them to the connection; later rules of the run see them already).
    pub labels_set: u128,
    /// A mark a match set (`-m socket --restore-skmark`): the evaluator applies it to the
    /// packet right after that test, so the rule's later matches and later rules see it.
    pub mark_set: Option<u32>,
    /// Copies `TEE` made during this table run, for the caller to send: the gateway, the
    /// interface asked for, the packet (`nf_dup_ipv4`).
    pub tees: Vec<(IpAddr, Option<crate::route::IfaceId>, Vec<u8>)>,
    /// The packet is itself a `TEE` copy: `TEE` makes no copy of a copy.
    pub duplicate: bool,
    pub hook: Hook,
    pub rng: &'a mut dyn Chance,
    pub obs: &'a mut dyn Observer,
    pub log: &'a log::PacketLog,
    /// Set by a test that must end the packet (a failed plugin match configured to drop);
    /// the table stops there with [`Verdict::Abort`]. `None` when building a `Cx`.
    pub abort: Option<crate::packet::DropReason>,
    /// The connection table, for matches that count connections (`connlimit`); `None` where
    /// there is none (a bench of the evaluator alone).
    pub conns: Option<&'a dyn ConnLookup>,
}

/// Whether a connection still exists: what `-m connlimit` asks the connection table when it
/// counts (`nf_conncount`). Implemented by conntrack, so this layer does not depend on it.
pub trait ConnLookup {
    /// The connection whose original direction is `orig` (protocol `proto`, zone `zone`) is
    /// in the table and not expired at `now`.
    fn alive(&self, orig: &Tuple, proto: u8, zone: u16, now: u64) -> bool;
}

impl std::fmt::Debug for Cx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cx")
            .field("now", &self.now)
            .field("hook", &self.hook)
            .finish_non_exhaustive()
    }
}

/// Calls into wasm plugins, implemented by the plugin runtime (this layer never sees
/// wasmtime). A failing call is handled inside: it counts as the plugin's configured outcome.
pub trait PluginHost: crate::ruleset::PluginBinder {
    /// Whether the plugin match bound as `handle` matches; `None` when the call failed (or
    /// the plugin is disabled) and the plugin's configured outcome is to drop the packet.
    fn call_match(&self, handle: u32, p: &Pkt, cx: &mut Cx) -> Option<bool>;
    /// Runs the plugin target bound as `handle`; `None` continues with the next rule.
    fn call_target(&self, handle: u32, p: &mut Pkt, cx: &mut Cx) -> Option<Verdict>;
}

/// How a chain finds its next matching rule (`[engine] kind` in router.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// Rule after rule, as the kernel's `ipt_do_table`: the reference.
    Linear,
    /// The classifier of [`classify`]: per-packet cost that does not grow with the rules.
    #[default]
    Compiled,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Linear => "linear",
            EngineKind::Compiled => "compiled",
        }
    }

    pub fn parse(s: &str) -> Option<EngineKind> {
        match s {
            "linear" => Some(EngineKind::Linear),
            "compiled" => Some(EngineKind::Compiled),
            _ => None,
        }
    }
}

/// One chain compiled for one engine: its rules' matches compiled against the generation's
/// ipsets and shared state, its `-i`/`-o` resolved to interface ids, and its classifier.
/// Shared between generations for as long as the chain (the same [`ValidChain`]) stays.
#[derive(Debug)]
pub(crate) struct CompiledChain {
    /// The classifier (compiled engine, chains long enough to gain from one).
    index: Option<Arc<classify::ChainIndex>>,
    /// `from`'s rules, where they jump and whether it is a user chain, kept here too: the
    /// packet path reads them from the compiled chain it has in hand rather than through
    /// `from` and its source chain, two cache misses per chain a new flow enters in a large
    /// ruleset. (A compiled chain is kept only while its source chain is the very same.)
    rules: crate::ruleset::Rules,
    /// The rules' compiled tests, in chunks: a new version of the chain shares the chunks of
    /// the rules it keeps and compiles only the rules it adds. Held here (inline for a chain
    /// of one chunk), each pointing straight at its tests: a rule's tests are two pointers
    /// away from the compiled chain, not four.
    chunks: SmallVec<[Compiled; 1]>,
    /// Per rule: where its tests and its interface test are (shared in chunks with the
    /// chain's previous version).
    layout: Chunked<Slot>,
    jumps: Chunked<Option<crate::ruleset::ChainId>>,
    user: bool,
    /// What this was compiled from.
    from: Arc<ValidChain>,
    /// `recent` timestamps this chain's rules look back over.
    recent_keep: usize,
    /// How many rules report or hand over the packet itself (see [`Engine::exact_packets`]).
    exact_rules: usize,
    /// How many rules of earlier versions the shared chunks still hold: past half the chain,
    /// the next version is compiled whole.
    dead: usize,
}

/// Compiled rules: every rule's `-m` matches in rule order (`comment`, which every packet
/// matches, left out) and their `-i`/`-o` tests, as they are compiled.
#[derive(Debug)]
struct Chunk {
    tests: Vec<Test>,
    ifaces: Vec<matches::IfaceTest>,
}

/// A [`Chunk`] compiled, as the packet path reads it: each part one allocation.
#[derive(Debug, Clone)]
struct Compiled {
    tests: Arc<[Test]>,
    ifaces: Arc<[matches::IfaceTest]>,
}

impl From<Chunk> for Compiled {
    fn from(c: Chunk) -> Self {
        Compiled {
            tests: c.tests.into(),
            ifaces: c.ifaces.into(),
        }
    }
}

/// Where a rule's compiled parts are: rule `i`'s tests are
/// `chunks[chunk].tests[at .. at + len]`, its interface test `chunks[chunk].ifaces[iface]`
/// (`u32::MAX`: none).
#[derive(Debug, Clone, Copy)]
struct Slot {
    chunk: u32,
    at: u32,
    iface: u32,
    len: u16,
}

/// The rule reports or hands over the packet itself.
fn reports(r: &crate::ruleset::Rule) -> bool {
    matches!(
        r.target,
        Target::Log(_)
            | Target::Nflog(_)
            | Target::Nfqueue(_)
            | Target::Queue(_)
            | Target::Trace(_)
            | Target::Audit(_)
            | Target::Wasm(_)
    ) || r.matches.iter().any(|m| matches!(m, Match::Wasm(_)))
}

impl CompiledChain {
    /// Compiles `from`; when `before` is the chain's previous version, which shares its first
    /// `p` and last `s` rules with it (`(before, (p, s))`), every rule that stays keeps its
    /// compiled tests (and the state in them, as an untouched rule keeps its `limit` bucket in
    /// the kernel), and only the rules it adds are compiled.
    fn build(
        from: &Arc<ValidChain>,
        env: &crate::ruleset::matches::CompileEnv,
        topo: &Topology,
        index: Option<Arc<classify::ChainIndex>>,
        before: Option<(&CompiledChain, (usize, usize))>,
    ) -> CompiledChain {
        let rules = from.rules();
        let mut recent_keep = 0;
        if let Some((old, (p, s))) = before {
            let was = old.from.rules();
            let (gone, added) = (p..was.len() - s, p..rules.len() - s);
            // At most this many dead rules (fewer where some of the rules between stay).
            if old.dead + gone.len() <= rules.len() / 2 {
                let mut chunks = old.chunks.clone();
                let mut mid = Vec::with_capacity(added.len());
                // Between the shared ends, a rule that stays (moved, or beside a change at
                // each end) keeps its compiled tests too: a rule keeps its state for as long
                // as it stays, whatever changes around it.
                let mut stays: HashMap<*const crate::ruleset::Rule, Slot> = was
                    .range(gone.clone())
                    .zip(old.layout.range(gone.clone()))
                    .map(|(r, slot)| (Arc::as_ptr(r.arc()), *slot))
                    .collect();
                let mut fresh = Chunk {
                    tests: Vec::new(),
                    ifaces: Vec::new(),
                };
                let at = chunks.len() as u32;
                let mut compiled = 0;
                for r in rules.range(added.clone()) {
                    match stays.remove(&Arc::as_ptr(r.arc())) {
                        Some(slot) => mid.push(slot),
                        None => {
                            compiled += 1;
                            mid.push(Self::rule(r, at, &mut fresh, env, topo, &mut recent_keep));
                        }
                    }
                }
                if compiled > 0 {
                    chunks.push(fresh.into());
                }
                let layout = old.layout.replaced(p, s, mid);
                let count =
                    |rs: crate::ruleset::chunked::Range<'_, crate::ruleset::RuleRef>| rs.filter(|r| reports(r)).count();
                return CompiledChain {
                    from: from.clone(),
                    rules: rules.clone(),
                    jumps: from.jumps.clone(),
                    user: from.policy().is_none(),
                    chunks,
                    layout,
                    index,
                    recent_keep: recent_keep.max(old.recent_keep),
                    exact_rules: old.exact_rules - count(was.range(gone.clone())) + count(rules.range(added)),
                    // The rules that went: what `stays` still holds.
                    dead: old.dead + stays.len(),
                };
            }
        }
        let mut layout = Vec::with_capacity(rules.len());
        let chunks = rules
            .slices()
            .enumerate()
            .map(|(i, rs)| Self::chunk(rs, i as u32, &mut layout, env, topo, &mut recent_keep).into())
            .collect();
        CompiledChain {
            from: from.clone(),
            rules: rules.clone(),
            jumps: from.jumps.clone(),
            user: from.policy().is_none(),
            chunks,
            layout: layout.into_iter().collect(),
            index,
            recent_keep,
            exact_rules: rules.iter().filter(|r| reports(r)).count(),
            dead: 0,
        }
    }

    /// Compiles `rules` into chunk number `chunk`, appending their slots to `layout`.
    fn chunk(
        rules: &[crate::ruleset::RuleRef],
        chunk: u32,
        layout: &mut Vec<Slot>,
        env: &crate::ruleset::matches::CompileEnv,
        topo: &Topology,
        recent_keep: &mut usize,
    ) -> Chunk {
        // Sized once: growing a long chain's tests would copy them each time.
        let n_tests = rules
            .iter()
            .map(|r| r.matches.iter().filter(|m| !matches!(m, Match::Comment(_))).count())
            .sum();
        let mut c = Chunk {
            tests: Vec::with_capacity(n_tests),
            ifaces: Vec::new(),
        };
        for r in rules {
            layout.push(Self::rule(r, chunk, &mut c, env, topo, recent_keep));
        }
        c
    }

    /// Compiles rule `r` into `c`, chunk number `chunk`: its slot.
    fn rule(
        r: &crate::ruleset::Rule,
        chunk: u32,
        c: &mut Chunk,
        env: &crate::ruleset::matches::CompileEnv,
        topo: &Topology,
        recent_keep: &mut usize,
    ) -> Slot {
        let at = c.tests.len() as u32;
        for m in &r.matches {
            match m {
                Match::Comment(_) => continue,
                Match::Recent(rc) => *recent_keep = (*recent_keep).max(rc.hitcount as usize),
                _ => {}
            }
            c.tests.push(m.compile(env));
        }
        let iface = match matches::IfaceTest::resolve(r, topo) {
            Some(t) => {
                c.ifaces.push(t);
                (c.ifaces.len() - 1) as u32
            }
            None => u32::MAX,
        };
        Slot {
            chunk,
            at,
            iface,
            len: (c.tests.len() as u32 - at) as u16,
        }
    }

    fn heap_bytes(&self) -> usize {
        self.index.as_ref().map_or(0, |i| i.heap_bytes())
            + self
                .chunks
                .iter()
                .map(|c| c.tests.len() * std::mem::size_of::<Test>())
                .sum::<usize>()
            + self.layout.heap_bytes()
    }
}

/// A validated ruleset with its runtime state: what the dataplane swaps atomically.
#[derive(Debug)]
pub struct Engine {
    /// Shared, so that building another engine for the same rules (a swap of the engine
    /// kind or of plugins, each branch of a trace) does not copy them.
    pub(crate) rules: Arc<ValidRuleset>,
    kind: EngineKind,
    /// Per table, the compiled chains by slot, parallel to the ruleset's.
    chains: [Slots<Arc<CompiledChain>>; 5],
    pub(crate) ipsets: Arc<IpSets>,
    /// `recent` timestamps kept per address.
    recent_keep: usize,
    /// The plugins the ruleset's wasm rules were bound to.
    pub(crate) plugins: Option<Arc<dyn PluginHost>>,
    /// A rule of the raw table may mark packets with `TRACE`.
    traces: bool,
    /// Per table, how many chains have a rule that reports or hands over packets.
    exact_chains: [usize; 5],
    exact_packets: bool,
    /// `IDLETIMER`'s timers (the router's, across generations).
    pub(crate) idletimers: Arc<state::IdleTimers>,
    pub(crate) rateest: Arc<rateest::RateEsts>,
}

impl Engine {
    /// The default (compiled) engine for `rules`.
    pub fn new(rules: impl Into<Arc<ValidRuleset>>, shared: &Shared, ipsets: Arc<IpSets>, topo: &Topology) -> Engine {
        Self::with_kind(rules, shared, ipsets, topo, EngineKind::default())
    }

    /// An engine of `kind` for `rules`, compiling every chain.
    pub fn with_kind(
        rules: impl Into<Arc<ValidRuleset>>,
        shared: &Shared,
        ipsets: Arc<IpSets>,
        topo: &Topology,
        kind: EngineKind,
    ) -> Engine {
        Self::build(rules.into(), shared, ipsets, topo, kind, None, false)
    }

    /// The next engine after `self` for `rules`: when `rules` was validated as a change of
    /// this engine's rules, only the chains that changed are compiled and every other one is
    /// shared (state included: an untouched rule keeps its `limit` bucket, as in the kernel).
    /// Otherwise everything is compiled.
    pub fn derive(&self, rules: impl Into<Arc<ValidRuleset>>, shared: &Shared, topo: &Topology) -> Engine {
        let rules = rules.into();
        let ipsets = self.ipsets.clone();
        Self::build(rules, shared, ipsets, topo, self.kind, Some(self), false).with_plugins(self.plugins.clone())
    }

    /// An engine for the same rules as `other`, with its classifiers (they are stateless) but
    /// matches compiled afresh: each branch of a trace starts from clean state.
    pub fn fresh_state_of(other: &Engine, shared: &Shared, ipsets: Arc<IpSets>, topo: &Topology) -> Engine {
        Self::build(other.rules.clone(), shared, ipsets, topo, other.kind, Some(other), true)
    }

    fn build(
        rules: Arc<ValidRuleset>,
        shared: &Shared,
        ipsets: Arc<IpSets>,
        topo: &Topology,
        kind: EngineKind,
        prev: Option<&Engine>,
        fresh_state: bool,
    ) -> Engine {
        if !fresh_state {
            arm_idletimers(&rules, prev.map(|p| &*p.rules), &shared.idletimers);
        }
        let env = crate::ruleset::matches::CompileEnv {
            shared,
            ipsets: &ipsets,
        };
        let index = |c: &ValidChain, before: Option<(&classify::ChainIndex, (usize, usize))>| match kind {
            EngineKind::Linear => None,
            EngineKind::Compiled => classify::ChainIndex::build_after(c.rules(), before).map(Arc::new),
        };
        let mut chains: [Slots<Arc<CompiledChain>>; 5] = Default::default();
        let mut exact_chains = [0usize; 5];
        // The estimators the RATEEST rules of a chain about to be compiled feed exist before
        // any chain is compiled (so `-m rateest` rules find them; those of chains kept exist
        // since they were compiled). Only when the ruleset has a rate estimator at all.
        let ensure = |vc: &ValidChain| {
            for r in vc.rules() {
                if let Target::RateEst(e) = &r.target {
                    shared.rateest.ensure(&e.name, e.params);
                }
            }
        };
        // The most `recent` timestamps any rule looks back over: kept as the previous
        // generation's (it only ever grows) plus what the recompiled chains need.
        let mut recent_keep = state::RECENT_STAMPS;
        // A derived generation: start from the previous engine's chains, replace what changed.
        let derived = prev.filter(|p| {
            !fresh_state && p.kind == kind && rules.delta.as_ref().is_some_and(|d| d.parent == p.rules.generation)
        });
        // Per table: derived from `prev`'s (only the changed slots compiled), or whole.
        let delta = rules.delta.as_ref();
        let from_prev = |t: &crate::ruleset::validate::ValidTable| {
            let k = t.kind().index();
            derived.filter(|p| !delta.is_some_and(|d| d.whole[k]) && p.rules.table(t.kind()).is_some())
        };
        for t in rules.tables().filter(|_| rules.rateest) {
            match from_prev(t) {
                Some(_) => {
                    for &id in delta.map_or(&[][..], |d| &d.changed[t.kind().index()][..]) {
                        if let Some(vc) = t.get(id) {
                            ensure(vc);
                        }
                    }
                }
                None => t.slots.iter().for_each(|(_, vc)| ensure(vc)),
            }
        }
        for t in rules.tables() {
            let k = t.kind().index();
            match from_prev(t) {
                Some(p) => {
                    let mut slots = p.chains[k].clone();
                    let mut exact = p.exact_chains[k];
                    for &id in delta.map_or(&[][..], |d| &d.changed[k][..]) {
                        let i = id.0 as usize;
                        let was_exact = slots.get(i).map_or(0, |old| usize::from(old.exact_rules > 0));
                        match t.get(id) {
                            Some(vc) => {
                                // Only its hooks or depth grew (validation facts the packet path
                                // never reads): the compiled chain still holds.
                                let same = slots.get(i).is_some_and(|cc| Arc::ptr_eq(&cc.from.src, &vc.src));
                                if same {
                                    continue;
                                }
                                // The rules it shares with its previous version at both ends.
                                let old = slots
                                    .get(i)
                                    .map(|old| (&**old, crate::ruleset::shared_ends(old.from.rules(), vc.rules())));
                                let ix = index(vc, old.and_then(|(o, ends)| o.index.as_deref().map(|ix| (ix, ends))));
                                let cc = Arc::new(CompiledChain::build(vc, &env, topo, ix, old));
                                recent_keep = recent_keep.max(cc.recent_keep);
                                exact = exact - was_exact + usize::from(cc.exact_rules > 0);
                                slots.set(i, Some(cc));
                            }
                            None => {
                                exact -= was_exact;
                                slots.set(i, None);
                            }
                        }
                    }
                    chains[k] = slots;
                    exact_chains[k] = exact;
                    recent_keep = recent_keep.max(p.recent_keep);
                }
                None => {
                    let mut slots = Slots::default();
                    for (id, vc) in t.slots.iter() {
                        // Same chain in the engine we start from (a trace branch): share its
                        // classifier, compile its matches afresh.
                        let reuse = prev
                            .and_then(|p| p.chains[k].get(id))
                            .filter(|cc| Arc::ptr_eq(&cc.from, vc))
                            .and_then(|cc| cc.index.clone());
                        let ix = if reuse.is_some() { reuse } else { index(vc, None) };
                        let cc = CompiledChain::build(vc, &env, topo, ix, None);
                        recent_keep = recent_keep.max(cc.recent_keep);
                        exact_chains[k] += usize::from(cc.exact_rules > 0);
                        slots.set(id, Some(Arc::new(cc)));
                    }
                    chains[k] = slots;
                }
            }
        }
        let traces = rules.table(TableKind::Raw).is_some_and(|t| {
            t.chains()
                .any(|c| c.rules().iter().any(|r| matches!(r.target, Target::Trace(_))))
        });
        Engine {
            rules,
            kind,
            chains,
            ipsets,
            recent_keep,
            plugins: None,
            traces,
            exact_chains,
            exact_packets: exact_chains.iter().any(|&n| n > 0),
            idletimers: shared.idletimers.clone(),
            rateest: shared.rateest.clone(),
        }
    }

    /// The same engine, calling wasm rules through `host`.
    pub fn with_plugins(mut self, host: Option<Arc<dyn PluginHost>>) -> Engine {
        self.plugins = host;
        self
    }

    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// Whether a packet may start being traced while the raw table runs (a `TRACE` rule).
    pub(crate) fn traces(&self) -> bool {
        self.traces
    }

    /// Whether a rule reports or hands over the packet itself (`LOG`, `NFLOG`, `NFQUEUE`,
    /// `TRACE`, `AUDIT`, a wasm plugin): the dataplane then cuts super-packets into the
    /// segments they stand for before the rules see them, so each is logged or judged as sent.
    pub fn exact_packets(&self) -> bool {
        self.exact_packets
    }

    /// The validated rules this engine was compiled from.
    pub fn rules(&self) -> &Arc<ValidRuleset> {
        &self.rules
    }

    /// The ipsets `-m set` rules were compiled against.
    pub fn ipsets(&self) -> &Arc<IpSets> {
        &self.ipsets
    }

    /// Packets and bytes rule `pos` of `chain` in `table` has counted.
    pub fn rule_counters(&self, table: TableKind, chain: &str, pos: usize) -> (u64, u64) {
        self.rules
            .find_rule(table, chain, pos)
            .map_or((0, 0), |r| r.counter.get())
    }

    /// Packets and bytes a built-in chain's policy has decided.
    pub fn policy_counters(&self, t: TableKind, h: Hook) -> (u64, u64) {
        self.rules
            .table(t)
            .and_then(|tb| tb.entry[h as usize].map(|c| tb.chain(c).counter().get()))
            .unwrap_or((0, 0))
    }

    /// The ruleset in iptables-save form, with live counters when `counters` is set.
    pub fn save(&self, counters: bool) -> String {
        self.rules.source().save(counters)
    }

    /// Heap bytes of the compiled program (classifiers and compiled matches).
    pub fn program_bytes(&self) -> usize {
        self.chains
            .iter()
            .flat_map(|s| s.iter())
            .map(|(_, c)| std::mem::size_of::<CompiledChain>() + c.heap_bytes())
            .sum()
    }

    /// How many chains are classified, and the most tables one lookup may probe.
    pub fn shape(&self) -> (usize, usize) {
        let cs: Vec<&classify::ChainIndex> = self
            .chains
            .iter()
            .flat_map(|s| s.iter())
            .filter_map(|(_, c)| c.index.as_deref())
            .collect();
        (cs.len(), cs.iter().map(|c| c.table_count()).max().unwrap_or(0))
    }

    /// Runs `table`'s chain for `cx.hook` over the packet. A table without that chain accepts.
    pub fn run(&self, table: TableKind, p: &mut Pkt, cx: &mut Cx) -> Verdict {
        if p.h.is_v4() != (self.rules.family == crate::ruleset::Family::V4) {
            // The other family's tables (the router runs each packet through its own).
            return Verdict::Accept;
        }
        let Some(t) = self.rules.table(table) else {
            return Verdict::Accept;
        };
        let Some(entry) = t.entry[cx.hook as usize] else {
            return Verdict::Accept;
        };
        let chains = &self.chains[table.index()];
        let Some(entry_chain) = chains.get(entry.0 as usize) else {
            return Verdict::Accept;
        };
        let mut stack: [(u32, u32); MAX_DEPTH] = [(0, 0); MAX_DEPTH];
        let mut depth = 0usize;
        let (mut chain, mut i) = (entry.0, 0usize);
        let bytes = u64::from(p.h.total_len);
        loop {
            // Validation resolved every jump to a chain of this generation.
            let Some(cc) = chains.get(chain as usize) else {
                return Verdict::Drop;
            };
            let c = &*cc.from;
            // With a classifier, the next candidate; `exact` when its indexed fields are all
            // its tests, so it matches without testing it again.
            let mut exact = false;
            if let Some(ix) = &cc.index {
                i = ix.next(i, p);
                exact = ix.exact(i);
            }
            let Some(r) = cc.rules.get(i) else {
                // Fell off the end of the chain.
                if cc.user && depth > 0 {
                    depth -= 1;
                    (chain, i) = (stack[depth].0, stack[depth].1 as usize);
                    continue;
                }
                return self.apply_policy(table, &entry_chain.from, bytes, cx);
            };
            let hit = exact || Self::rule_matches(cc, i, r, p, cx, self);
            if let Some(reason) = cx.abort.take() {
                cx.obs.rule(table, c, i, false);
                return Verdict::Abort(reason);
            }
            cx.obs.rule(table, c, i, hit);
            if !hit {
                i += 1;
                continue;
            }
            r.counter.add(bytes);
            match &r.target {
                Target::None => i += 1,
                Target::Accept => return Verdict::Accept,
                Target::Drop => return Verdict::Drop,
                Target::Return => {
                    if depth == 0 {
                        return self.apply_policy(table, &entry_chain.from, bytes, cx);
                    }
                    depth -= 1;
                    (chain, i) = (stack[depth].0, stack[depth].1 as usize);
                }
                Target::Jump(_) | Target::Goto(_) => {
                    let Some(to) = cc.jumps.get(i).copied().flatten() else {
                        return Verdict::Drop;
                    };
                    if matches!(r.target, Target::Jump(_)) {
                        if depth == MAX_DEPTH {
                            // Validation bounds nesting; a deeper stack means a broken invariant.
                            return Verdict::Drop;
                        }
                        stack[depth] = (chain, (i + 1) as u32);
                        depth += 1;
                    }
                    (chain, i) = (to.0, 0);
                }
                ext => match ext.apply(p, cx, self) {
                    Some(v) => return v,
                    None => i += 1,
                },
            }
        }
    }

    fn apply_policy(&self, table: TableKind, c: &ValidChain, bytes: u64, cx: &mut Cx) -> Verdict {
        let policy = c.policy().unwrap_or(Policy::Accept);
        cx.obs.policy(table, c, policy);
        c.counter().add(bytes);
        match policy {
            Policy::Accept => Verdict::Accept,
            Policy::Drop => Verdict::Drop,
        }
    }

    fn rule_matches(
        cc: &CompiledChain,
        i: usize,
        r: &crate::ruleset::Rule,
        p: &mut Pkt,
        cx: &mut Cx,
        eng: &Engine,
    ) -> bool {
        let Some(&Slot { chunk, at, iface, len }) = cc.layout.get(i) else {
            return false;
        };
        let Some(chunk) = cc.chunks.get(chunk as usize) else {
            return false;
        };
        if !matches::base(r, chunk.ifaces.get(iface as usize), p) {
            return false;
        }
        // Laid out when the chain was compiled; were it ever wrong, the rule matches nothing
        // rather than everything.
        let Some(tests) = chunk.tests.get(at as usize..at as usize + usize::from(len)) else {
            return false;
        };
        tests.iter().all(|t| {
            let hit = t.test(p, cx, eng);
            if let Some(mark) = cx.mark_set.take() {
                p.mark = mark;
            }
            hit
        })
    }

    pub(crate) fn recent_keep(&self) -> usize {
        self.recent_keep
    }
}

/// Arms the `IDLETIMER` timers of `rules`, which replace `prev` (the kernel runs a rule's
/// checkentry when it is added, starting its label's timer or restarting a running one,
/// `idletimer_tg_checkentry`): every rule of a table loaded whole restarts its timer; of a
/// change to `prev`'s rules, only the rules a changed chain holds beyond what it held before
/// (counted by label and timeout); rules a generation keeps only start a timer that never ran.
/// Then the timers no rule holds any more go.
fn arm_idletimers(rules: &ValidRuleset, prev: Option<&ValidRuleset>, timers: &state::IdleTimers) {
    let idle = |c: &crate::ruleset::validate::ValidChain| {
        c.rules()
            .iter()
            .filter_map(|r| match &r.target {
                Target::IdleTimer(t) => Some((t.label.clone(), t.timeout)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let has_idle = |c: &crate::ruleset::validate::ValidChain| c.idletimer;
    if prev.is_some_and(|p| p.generation == rules.generation) {
        return;
    }
    let delta = rules
        .delta
        .as_ref()
        .filter(|d| prev.is_some_and(|p| d.parent == p.generation));
    // A change that neither adds nor removes a chain version holding an IDLETIMER rule leaves
    // every timer as it is (and costs nothing in a large ruleset).
    if let (Some(p), Some(d)) = (prev, delta) {
        let quiet = rules.tables().count() == p.tables().count()
            && rules.tables().all(|t| {
                let k = t.kind().index();
                p.table(t.kind()).is_some_and(|old| {
                    !d.whole[k]
                        && d.changed[k].iter().all(|&id| {
                            !t.get(id).is_some_and(|c| has_idle(c)) && !old.get(id).is_some_and(|c| has_idle(c))
                        })
                })
            });
        if quiet {
            return;
        }
    }
    let mut labels = Vec::new();
    for t in rules.tables() {
        let k = t.kind().index();
        let old = prev.and_then(|p| p.table(t.kind()));
        let changed: &[crate::ruleset::validate::ChainId] = match delta {
            Some(d) if !d.whole[k] && old.is_some() => &d.changed[k],
            _ => &[],
        };
        let whole = delta.is_none() || old.is_none() || delta.is_some_and(|d| d.whole[k]);
        for (id, c) in t.slots() {
            let timers_here = idle(c);
            // The rules of this chain that are new: all, none, or those beyond its old rules.
            let mut added: Vec<(String, u32)> = if whole {
                timers_here.clone()
            } else if changed.contains(&id) {
                let mut was = old.and_then(|o| o.get(id)).map_or_else(Vec::new, |oc| idle(oc));
                timers_here
                    .iter()
                    .filter(|t| match was.iter().position(|w| w == *t) {
                        Some(i) => {
                            was.swap_remove(i);
                            false
                        }
                        None => true,
                    })
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            for (label, timeout) in timers_here {
                let restart = match added.iter().position(|a| a.0 == label && a.1 == timeout) {
                    Some(i) => {
                        added.swap_remove(i);
                        true
                    }
                    None => false,
                };
                timers.arm(&label, timeout, restart);
                labels.push(label);
            }
        }
    }
    let family = match rules.family() {
        crate::ruleset::Family::V4 => 0,
        crate::ruleset::Family::V6 => 1,
    };
    timers.hold(family, labels);
}
