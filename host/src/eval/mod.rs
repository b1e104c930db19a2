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
//! Per IP family, as netfilter: these are the iptables (IPv4) tables. IPv6 packets traverse
//! ip6tables' tables, which rtrouter does not load yet: they meet empty built-in chains whose
//! policy is ACCEPT.

pub mod classify;
pub mod log;
pub mod matches;
pub mod plugin_out;
pub mod state;

use crate::packet::{Headers, L4};
use crate::route::{IfaceId, Topology};
use crate::ruleset::matches::{Match, Test};
use crate::ruleset::targets::{RejectWith, Target};
use crate::ruleset::validate::{ValidChain, ValidRule, MAX_DEPTH};
use crate::ruleset::{Hook, Policy, TableKind, ValidRuleset};
use state::{IpSets, Shared};
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
    pub proto: u8,
    pub orig: Tuple,
    pub reply: Tuple,
    /// Seconds until the entry expires.
    pub expires_in: u32,
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
            proto: h.proto,
            orig,
            reply: Tuple {
                src: h.dst,
                dst: h.src,
                sport: dport,
                dport: sport,
            },
            expires_in: 0,
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
}

impl Observer for () {}

/// Everything a table run needs besides the packet.
pub struct Cx<'a> {
    pub topo: &'a Topology,
    /// Monotonic nanoseconds, from the caller.
    pub now: u64,
    pub hook: Hook,
    pub rng: &'a mut dyn Chance,
    pub obs: &'a mut dyn Observer,
    pub log: &'a log::PacketLog,
    /// Set by a test that must end the packet (a failed plugin match configured to drop);
    /// the table stops there with [`Verdict::Abort`]. `None` when building a `Cx`.
    pub abort: Option<crate::packet::DropReason>,
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
    fn call_match(&self, handle: u32, p: &Pkt, cx: &Cx) -> Option<bool>;
    /// Runs the plugin target bound as `handle`; `None` continues with the next rule.
    fn call_target(&self, handle: u32, p: &mut Pkt, cx: &Cx) -> Option<Verdict>;
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

/// The classifiers of every chain of a ruleset, by table and chain; empty for the walk.
#[derive(Debug, Default)]
pub struct Index {
    tables: [Vec<Option<classify::ChainIndex>>; 5],
}

impl Index {
    /// Compiles every chain of `rules` that is long enough to gain from it.
    pub fn build(rules: &ValidRuleset) -> Index {
        let mut ix = Index::default();
        for t in rules.tables.iter().flatten() {
            ix.tables[t.kind.index()] = t.chains.iter().map(classify::ChainIndex::build).collect();
        }
        ix
    }

    /// What an engine of `kind` runs: the classifiers, or nothing for the walk.
    pub fn for_kind(rules: &ValidRuleset, kind: EngineKind) -> Index {
        match kind {
            EngineKind::Linear => Index::default(),
            EngineKind::Compiled => Index::build(rules),
        }
    }

    fn chain(&self, t: TableKind, c: u32) -> Option<&classify::ChainIndex> {
        self.tables[t.index()].get(c as usize).and_then(Option::as_ref)
    }

    /// Heap bytes of the classifiers.
    pub fn heap_bytes(&self) -> usize {
        self.tables
            .iter()
            .flatten()
            .map(|c| std::mem::size_of::<Option<classify::ChainIndex>>() + c.as_ref().map_or(0, |c| c.heap_bytes()))
            .sum()
    }

    /// How many chains are classified, and the most tables one lookup may probe.
    pub fn shape(&self) -> (usize, usize) {
        let cs = self.tables.iter().flatten().flatten();
        (cs.clone().count(), cs.map(|c| c.table_count()).max().unwrap_or(0))
    }
}

/// A validated ruleset with its runtime state: what the dataplane swaps atomically.
#[derive(Debug)]
pub struct Engine {
    /// Shared, so that building another engine for the same rules (a swap of the engine
    /// kind or of plugins, each branch of a trace) does not copy them.
    pub(crate) rules: Arc<ValidRuleset>,
    kind: EngineKind,
    index: Arc<Index>,
    /// Every rule's `-m` matches, compiled against this generation (ipsets resolved, state
    /// allocated), in rule order; a rule's are at its `tests_at`/`tests_len`. `comment`,
    /// which every packet matches, compiles to nothing and is left out.
    tests: Vec<Test>,
    /// Every `-i`/`-o` resolved to interface-id sets, in rule order; a rule's is at its
    /// `iface_at`.
    ifaces: Vec<matches::IfaceTest>,
    pub(crate) ipsets: Arc<IpSets>,
    /// Where each rule id is: the source map from the compiled rules back to the loaded ones.
    locs: Vec<RuleLoc>,
    /// `recent` timestamps kept per address.
    recent_keep: usize,
    /// The plugins the ruleset's wasm rules were bound to.
    pub(crate) plugins: Option<Arc<dyn PluginHost>>,
}

/// A rule's place: table, chain index, position in the chain.
#[derive(Debug, Clone, Copy)]
struct RuleLoc {
    table: TableKind,
    chain: u32,
    pos: u32,
}

impl Engine {
    /// The default (compiled) engine for `rules`.
    pub fn new(rules: impl Into<Arc<ValidRuleset>>, shared: &Shared, ipsets: Arc<IpSets>, topo: &Topology) -> Engine {
        Self::with_kind(rules, shared, ipsets, topo, EngineKind::default())
    }

    /// An engine of `kind` for `rules`, compiling its classifiers.
    pub fn with_kind(
        rules: impl Into<Arc<ValidRuleset>>,
        shared: &Shared,
        ipsets: Arc<IpSets>,
        topo: &Topology,
        kind: EngineKind,
    ) -> Engine {
        let rules = rules.into();
        let index = Index::for_kind(&rules, kind);
        Self::with_index(rules, shared, ipsets, topo, kind, Arc::new(index))
    }

    /// An engine reusing classifiers compiled for the same `rules` (the tracer builds one
    /// router per branch of a random decision, and compiles once).
    pub fn with_index(
        rules: impl Into<Arc<ValidRuleset>>,
        shared: &Shared,
        ipsets: Arc<IpSets>,
        topo: &Topology,
        kind: EngineKind,
        index: Arc<Index>,
    ) -> Engine {
        let rules: Arc<ValidRuleset> = rules.into();
        let env = crate::ruleset::matches::CompileEnv {
            shared,
            ipsets: &ipsets,
        };
        let mut tests: Vec<Test> = Vec::new();
        let mut ifaces: Vec<matches::IfaceTest> = Vec::new();
        let mut locs: Vec<RuleLoc> = Vec::with_capacity(rules.rule_count);
        let mut recent_keep = state::RECENT_STAMPS;
        for t in rules.tables.iter().flatten() {
            for (ci, c) in t.chains.iter().enumerate() {
                for (ri, r) in c.rules.iter().enumerate() {
                    // Validation laid out where each rule's parts go; building in the same order
                    // must land there (checked once per rule at load, not per packet).
                    assert_eq!(tests.len(), r.tests_at as usize, "compiled tests out of place");
                    assert_eq!(locs.len(), r.id as usize, "rule ids out of order");
                    locs.push(RuleLoc {
                        table: t.kind,
                        chain: ci as u32,
                        pos: ri as u32,
                    });
                    if let Some(t) = matches::IfaceTest::resolve(&r.rule, topo) {
                        assert_eq!(ifaces.len(), r.iface_at as usize, "interface tests out of place");
                        ifaces.push(t);
                    }
                    for m in &r.rule.matches {
                        match m {
                            Match::Comment(_) => continue,
                            Match::Recent(rc) => recent_keep = recent_keep.max(rc.hitcount as usize),
                            _ => {}
                        }
                        tests.push(m.compile(&env));
                    }
                }
            }
        }
        tests.shrink_to_fit();
        Engine {
            rules,
            kind,
            index,
            tests,
            ifaces,
            ipsets,
            locs,
            recent_keep,
            plugins: None,
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

    /// The validated rules this engine was compiled from.
    pub fn rules(&self) -> &Arc<ValidRuleset> {
        &self.rules
    }

    /// The ipsets `-m set` rules were compiled against.
    pub fn ipsets(&self) -> &Arc<IpSets> {
        &self.ipsets
    }

    /// The source map: where rule `id` is (its table, its chain, its position there, from 0).
    pub fn rule(&self, id: u32) -> Option<(TableKind, &ValidChain, usize)> {
        let l = self.locs.get(id as usize)?;
        let c = self.rules.table(l.table)?.chains.get(l.chain as usize)?;
        Some((l.table, c, l.pos as usize))
    }

    /// The compiled classifiers (empty for the linear engine).
    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    /// Packets and bytes a rule has counted.
    pub fn rule_counters(&self, id: u32) -> (u64, u64) {
        self.rule(id).map_or((0, 0), |(_, c, i)| c.rules[i].rule.counter.get())
    }

    /// Packets and bytes a built-in chain's policy has decided.
    pub fn policy_counters(&self, t: TableKind, h: Hook) -> (u64, u64) {
        self.rules
            .table(t)
            .and_then(|tb| tb.entry[h as usize].map(|c| tb.chain(c).counter.get()))
            .unwrap_or((0, 0))
    }

    /// The ruleset in iptables-save form, with live counters when `counters` is set.
    pub fn save(&self, counters: bool) -> String {
        self.rules.source().save(counters)
    }

    /// Runs `table`'s chain for `cx.hook` over the packet. A table without that chain accepts.
    pub fn run(&self, table: TableKind, p: &mut Pkt, cx: &mut Cx) -> Verdict {
        if !p.h.is_v4() {
            // ip6tables' tables: empty built-in chains, policy ACCEPT.
            return Verdict::Accept;
        }
        let Some(t) = self.rules.table(table) else {
            return Verdict::Accept;
        };
        let Some(entry) = t.entry[cx.hook as usize] else {
            return Verdict::Accept;
        };
        let mut stack: [(u32, u32); MAX_DEPTH] = [(0, 0); MAX_DEPTH];
        let mut depth = 0usize;
        let (mut chain, mut i) = (entry.0, 0usize);
        let bytes = u64::from(p.h.total_len);
        loop {
            let c = t.chain(crate::ruleset::ChainId(chain));
            // With a classifier, the next candidate; `exact` when its indexed fields are all
            // its tests, so it matches without testing it again.
            let mut exact = false;
            if let Some(ix) = self.index.chain(table, chain) {
                i = ix.next(i, p);
                exact = ix.exact(i);
            }
            let Some(r) = c.rules.get(i) else {
                // Fell off the end of the chain.
                if c.policy.is_none() && depth > 0 {
                    depth -= 1;
                    (chain, i) = (stack[depth].0, stack[depth].1 as usize);
                    continue;
                }
                return self.apply_policy(table, t.chain(entry), bytes, cx);
            };
            let hit = exact || self.rule_matches(r, p, cx);
            if let Some(reason) = cx.abort.take() {
                cx.obs.rule(table, c, i, false);
                return Verdict::Abort(reason);
            }
            cx.obs.rule(table, c, i, hit);
            if !hit {
                i += 1;
                continue;
            }
            r.rule.counter.add(bytes);
            match &r.rule.target {
                Target::None => i += 1,
                Target::Accept => return Verdict::Accept,
                Target::Drop => return Verdict::Drop,
                Target::Return => {
                    if depth == 0 {
                        return self.apply_policy(table, t.chain(entry), bytes, cx);
                    }
                    depth -= 1;
                    (chain, i) = (stack[depth].0, stack[depth].1 as usize);
                }
                Target::Jump(_) | Target::Goto(_) => {
                    let Some(to) = r.jump else { return Verdict::Drop };
                    if matches!(r.rule.target, Target::Jump(_)) {
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
        let policy = c.policy.unwrap_or(Policy::Accept);
        cx.obs.policy(table, c, policy);
        c.counter.add(bytes);
        match policy {
            Policy::Accept => Verdict::Accept,
            Policy::Drop => Verdict::Drop,
        }
    }

    fn rule_matches(&self, r: &ValidRule, p: &Pkt, cx: &mut Cx) -> bool {
        if !matches::base(&r.rule, self.ifaces.get(r.iface_at as usize), p) {
            return false;
        }
        let at = r.tests_at as usize;
        // The layout was checked when the engine was built; were it ever wrong, the rule
        // matches nothing rather than everything.
        let Some(tests) = self.tests.get(at..at + usize::from(r.tests_len)) else {
            return false;
        };
        tests.iter().all(|t| t.test(p, cx, self))
    }

    pub(crate) fn recent_keep(&self) -> usize {
        self.recent_keep
    }
}
