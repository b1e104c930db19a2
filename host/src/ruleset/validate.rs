//! Validation: from the source [`Ruleset`] to the [`ValidRuleset`] the evaluator runs.
//!
//! What netfilter's `translate_table`/`mark_source_chains` and libiptc refuse is refused here,
//! with the rule's file, line and column: jumps to chains that do not exist or to built-in
//! chains, loops, chains nested deeper than [`MAX_DEPTH`], targets outside their table or in a
//! hook they are not allowed in (judged over every hook the chain is reachable from), matches
//! likewise, and `-m set` naming a set that does not exist.
//!
//! Two ways in. [`validate`] checks a whole ruleset. [`validate_change`] checks the next
//! version of a ruleset against the previous valid one and does work in proportion to the
//! chains that changed: it finds them by comparing the two persistent source tables (shared
//! chains are skipped whole), gives new chains free slots, resolves only their jumps, keeps
//! per-chain reference counts, and pushes reachable hooks and nesting depth along the new
//! jumps. Hooks and depth only ever grow on that path (a removed jump leaves them as they
//! were), so it can only err on the side of refusing; whenever it would refuse, or the change
//! is large, the whole ruleset is validated instead, and that exact answer stands.

use super::chunked::Chunked;
use super::matches::Match;
use super::slots::Slots;
use super::targets::Target;
use super::{Chain, Error, Errors, Hook, HookMask, Policy, Rule, RuleRef, Ruleset, Table, TableKind};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Chain names to their slots: persistent (a new generation copies it in O(1)) and hashed
/// with foldhash, as a restore looks up a chain name for every rule that jumps.
pub(crate) type ChainIds = im::HashMap<String, ChainId, foldhash::fast::RandomState>;

/// How deep user chains may call each other. The kernel's own bound is the number of chains;
/// a fixed bound keeps the evaluator's jump stack a small array.
pub const MAX_DEPTH: usize = 64;

/// A chain's slot within its table: stable for as long as the chain exists, across
/// generations (a new chain takes a free slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId(pub u32);

/// Binds a rule's use of a wasm plugin (`-m wasm`, `-j WASM`) to the loaded plugins: the
/// plugin checks the rule's `--args` and returns the handle calls will use. Implemented by
/// the plugin runtime, so this layer never sees wasmtime.
pub trait PluginBinder: Send + Sync + std::fmt::Debug {
    fn bind(&self, plugin: &str, args: &str, target: bool) -> Result<Arc<Binding>, String>;
    /// The queues of `first..=last` a plugin listens on (config `[[queue]]`), each with the
    /// binding of its target, in queue order.
    fn bind_queues(&self, _first: u16, _last: u16) -> Result<Vec<(u16, Arc<Binding>)>, String> {
        Ok(Vec::new())
    }
}

/// A rule's hold on its plugin binding: the plugin's handle for the rule's `--args`. Rules with
/// the same arguments share one; it stays bound while any rule of any generation holds it, and
/// when the last is gone the plugins free the handle for a later binding (`hold` does that
/// when it is dropped).
pub struct Binding {
    pub handle: u32,
    hold: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl Binding {
    /// A binding whose release `hold` performs when dropped (`None`: nothing to release).
    pub fn new(handle: u32, hold: Option<Box<dyn std::any::Any + Send + Sync>>) -> Binding {
        Binding { handle, hold }
    }
}

impl std::fmt::Debug for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Binding({}{})",
            self.handle,
            if self.hold.is_some() { "" } else { ", unheld" }
        )
    }
}

/// What the ruleset may refer to outside itself.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Names of the ipsets that exist.
    pub ipsets: HashSet<String>,
    /// The loaded plugins; `None` when the config declares none.
    pub plugins: Option<Arc<dyn PluginBinder>>,
}

impl Env {
    fn bind(&self, p: &mut crate::ruleset::matches::Plugin, target: bool) -> Result<(), String> {
        let b = self
            .plugins
            .as_ref()
            .ok_or_else(|| format!("no plugin `{}': the config declares no [[plugin]]", p.name))?;
        p.handle = Some(b.bind(&p.name, &p.args, target)?);
        Ok(())
    }
}

// The validated form is a witness: only validation makes one, so its fields are the crate's
// own; other crates read it through the accessors.

/// A chain ready to run: its source (shared with the source table), each rule's resolved
/// jump, and what validation learned about where it is reachable from.
#[derive(Debug, Clone)]
pub struct ValidChain {
    pub(crate) src: Arc<Chain>,
    /// Per rule: the chain a `-j CHAIN`/`-g CHAIN` goes to.
    pub(crate) jumps: Chunked<Option<ChainId>>,
    /// The hooks this chain can be reached from.
    pub(crate) hooks: HookMask,
    /// The most jumps on a path from a built-in chain to this one.
    pub(crate) depth: u8,
    /// A rule names a plugin (wasm, or a queue a plugin may listen on): the chain is bound.
    pub(crate) plugins: bool,
    /// A rule's target is `IDLETIMER`: the engine arms its timers (looked at per chain, so a
    /// change to a long chain without one does not read all its rules).
    pub(crate) idletimer: bool,
}

impl ValidChain {
    pub fn name(&self) -> &str {
        &self.src.name
    }

    /// `None` for a user chain.
    pub fn policy(&self) -> Option<Policy> {
        self.src.policy
    }

    pub fn rules(&self) -> &super::Rules {
        &self.src.rules
    }

    /// Where rule `i` jumps or goes to.
    pub fn jump(&self, i: usize) -> Option<ChainId> {
        self.jumps.get(i).copied().flatten()
    }

    /// The hooks this chain can be reached from.
    pub fn hooks(&self) -> HookMask {
        self.hooks
    }

    /// The policy's counter (built-in chains).
    pub fn counter(&self) -> &super::Counter {
        &self.src.counter
    }
}

#[derive(Debug, Clone)]
pub struct ValidTable {
    pub(crate) kind: TableKind,
    /// The source form, with plugin handles bound: what `save` prints and the next change
    /// starts from.
    pub(crate) src: Table,
    pub(crate) slots: Slots<Arc<ValidChain>>,
    pub(crate) ids: ChainIds,
    /// How many rules jump or go to each slot.
    pub(crate) refs: Slots<u32>,
    /// Slots freed by deleted chains.
    pub(crate) free: Vec<u32>,
    /// The built-in chain of each hook, by `Hook as usize`.
    pub(crate) entry: [Option<ChainId>; 5],
    /// How many rules the table holds.
    pub(crate) rules: usize,
}

impl ValidTable {
    /// The chain in slot `id`. Panics on a slot that holds no chain (ids come from the table).
    pub fn chain(&self, id: ChainId) -> &ValidChain {
        self.slots.get(id.0 as usize).expect("a chain id of this table")
    }

    pub(crate) fn get(&self, id: ChainId) -> Option<&Arc<ValidChain>> {
        self.slots.get(id.0 as usize)
    }

    pub fn kind(&self) -> TableKind {
        self.kind
    }

    /// The slot of the chain called `name`.
    pub fn id_of(&self, name: &str) -> Option<ChainId> {
        self.ids.get(name).copied()
    }

    /// Built-in chains first, then user chains by name, as iptables-save orders them.
    pub fn chains(&self) -> impl Iterator<Item = &ValidChain> + '_ {
        self.src
            .chains()
            .filter_map(|c| self.id_of(&c.name).map(|id| self.chain(id)))
    }

    /// Every chain with its slot, in slot order.
    pub fn slots(&self) -> impl Iterator<Item = (ChainId, &ValidChain)> + '_ {
        self.slots.iter().map(|(i, c)| (ChainId(i as u32), &**c))
    }

    pub fn chain_count(&self) -> usize {
        self.src.chain_count()
    }
}

/// What changed from the generation a ruleset was derived from: lets the engine recompile
/// only those chains.
#[derive(Debug, Clone, Default)]
pub(crate) struct Delta {
    /// The generation this one was derived from.
    pub(crate) parent: u64,
    /// Tables validated whole (every chain new).
    pub(crate) whole: [bool; 5],
    /// Slots whose chain changed, appeared or disappeared, per table.
    pub(crate) changed: [Vec<ChainId>; 5],
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Starts a new change log on a validated table's source.
fn new_log(t: &mut Table) {
    t.lineage = GENERATION.fetch_add(1, Ordering::Relaxed);
    t.dirty = Some(im::HashSet::new());
}

/// A ruleset that passed validation. Immutable; shared behind an `Arc` and swapped whole, but
/// built from the previous one sharing every chain a change did not touch.
#[derive(Debug, Clone)]
pub struct ValidRuleset {
    pub(crate) tables: [Option<ValidTable>; 5],
    pub(crate) rule_count: usize,
    /// A rule makes or reads a rate estimator (`RATEEST`, `-m rateest`).
    pub(crate) rateest: bool,
    /// Unique per validation.
    pub(crate) generation: u64,
    pub(crate) delta: Option<Delta>,
    pub(crate) family: super::Family,
}

impl ValidRuleset {
    /// iptables' or ip6tables'.
    pub fn family(&self) -> super::Family {
        self.family
    }

    /// The tables that are loaded, in hook order.
    pub fn tables(&self) -> impl Iterator<Item = &ValidTable> {
        self.tables.iter().flatten()
    }

    /// How many rules, over all tables.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// The source form this was validated from (O(1): the tables are persistent).
    pub fn source(&self) -> Ruleset {
        let mut rs = Ruleset::new(self.family);
        for t in self.tables.iter().flatten() {
            rs.tables[t.kind.index()] = Some(t.src.clone());
        }
        rs
    }

    pub fn table(&self, k: TableKind) -> Option<&ValidTable> {
        self.tables[k.index()].as_ref()
    }

    /// An empty ruleset: every packet is accepted.
    pub fn empty() -> Self {
        Self::empty_of(super::Family::V4)
    }

    /// An empty ruleset of `family`.
    pub fn empty_of(family: super::Family) -> Self {
        validate(&Ruleset::new(family), &Env::default()).expect("the empty ruleset is valid")
    }

    /// Finds rule `(table, chain, position)` by its place in the source (tests and tools).
    pub fn find_rule(&self, k: TableKind, chain: &str, pos: usize) -> Option<&Rule> {
        self.table(k)?.src.chain(chain)?.rules.get(pos).map(|r| &**r)
    }
}

fn err(rule: &Rule, at_target: bool, token: &str, msg: String) -> Error {
    Error {
        file: rule.loc.file.clone(),
        line: rule.loc.line,
        col: if at_target { rule.loc.target_col } else { rule.loc.col },
        token: token.to_string(),
        msg,
    }
}

fn hook_names(mask: HookMask) -> String {
    let names: Vec<&str> = Hook::ALL
        .iter()
        .filter(|h| mask & h.bit() != 0)
        .map(|h| h.chain_name())
        .collect();
    names.join(", ")
}

/// Checks one rule against the table and the hooks its chain is reachable from, and that the
/// ipsets it names exist.
fn check_rule(kind: TableKind, chain: &str, hm: HookMask, r: &Rule, env: &Env, errors: &mut Vec<Error>) {
    let tables = r.target.tables();
    if !tables.is_empty() && !tables.contains(&kind) {
        let names: Vec<String> = tables.iter().map(|t| format!("`{t}'")).collect();
        errors.push(err(
            r,
            true,
            r.target.name(),
            format!(
                "target `{}' is only valid in the {} table",
                r.target.name(),
                names.join(" or ")
            ),
        ));
    }
    let allowed = r.target.allowed_hooks();
    if hm & !allowed != 0 {
        errors.push(err(
            r,
            true,
            r.target.name(),
            format!(
                "target `{}' is only valid in {}, but chain `{chain}' is reachable from {}",
                r.target.name(),
                hook_names(allowed),
                hook_names(hm)
            ),
        ));
    }
    for m in &r.matches {
        let allowed = m.allowed_hooks();
        if hm & !allowed != 0 {
            errors.push(err(
                r,
                false,
                m.name(),
                format!(
                    "match `{}' with these options is only valid in {}, but chain `{chain}' is reachable from {}",
                    m.name(),
                    hook_names(allowed),
                    hook_names(hm)
                ),
            ));
        }
    }
    for name in r.ipsets() {
        if !env.ipsets.contains(name) {
            errors.push(err(r, false, name, format!("ipset `{name}' does not exist")));
        }
    }
}

/// The rate estimators across the tables, as the kernel checks them while it loads rules in
/// order: a `RATEEST` naming an estimator an earlier one made with other parameters is refused
/// (`xt_rateest_tg_checkentry`: EINVAL), and so is a `-m rateest` naming one no `RATEEST` made
/// before it (`xt_rateest_mt_checkentry`: ENOENT). "Before" is an earlier line of the same
/// file; a rule from elsewhere (an earlier load or change) was there first.
/// Whether the ruleset has a `RATEEST` or `-m rateest` rule (then the checks ran).
fn check_rate_estimators(rs: &Ruleset, errors: &mut Vec<Error>) -> bool {
    use crate::ruleset::matches::Match;
    let rules = || {
        rs.tables
            .iter()
            .flatten()
            .flat_map(|t| t.chains())
            .flat_map(|c| c.rules.iter())
    };
    let before = |a: &Rule, b: &Rule| a.loc.file != b.loc.file || a.loc.line < b.loc.line;
    let mut made: Vec<&Rule> = Vec::new();
    let mut readers: Vec<&Rule> = Vec::new();
    for r in rules() {
        if matches!(r.target, Target::RateEst(_)) {
            made.push(r);
        }
        if r.matches.iter().any(|m| matches!(m, Match::RateEst(_))) {
            readers.push(r);
        }
    }
    if made.is_empty() && readers.is_empty() {
        return false;
    }
    for (i, r) in made.iter().enumerate() {
        let Target::RateEst(e) = &r.target else { continue };
        let clash = made.iter().enumerate().find(|(j, o)| {
            *j != i
                && before(o, r)
                && !before(r, o)
                && matches!(&o.target, Target::RateEst(x) if x.name == e.name && x.params != e.params)
        });
        if clash.is_some() {
            errors.push(err(
                r,
                true,
                &e.name,
                format!(
                    "RATEEST: estimator `{}' exists with another interval or ewmalog (the kernel refuses the rule)",
                    e.name
                ),
            ));
        }
    }
    for r in readers {
        for m in &r.matches {
            let Match::RateEst(m) = m else { continue };
            for name in std::iter::once(&m.name1).chain(m.name2.as_ref()) {
                let exists = made
                    .iter()
                    .any(|o| before(o, r) && matches!(&o.target, Target::RateEst(x) if &x.name == name));
                if !exists {
                    errors.push(err(
                        r,
                        false,
                        name,
                        format!("rateest: no RATEEST rule before this one makes estimator `{name}' (the kernel refuses the rule: No such file or directory)"),
                    ));
                }
            }
        }
    }
    true
}

/// Whether `c` has a rule that makes or reads a rate estimator.
fn has_rate_estimators<'a>(mut rules: impl Iterator<Item = &'a RuleRef>) -> bool {
    use crate::ruleset::matches::Match;
    rules.any(|r| matches!(r.target, Target::RateEst(_)) || r.matches.iter().any(|m| matches!(m, Match::RateEst(_))))
}

/// Whether `next`, a change of `base`, may hold a rate estimator: `base` did, or a chain the
/// change wrote does (or the change is not a logged one of `base`'s tables).
fn rate_estimators_touched(base: &ValidRuleset, next: &Ruleset) -> bool {
    base.rateest
        || TableKind::ALL.into_iter().any(|k| {
            let Some(nt) = next.table(k) else { return false };
            let Some(dirty) = base.table(k).and_then(|bt| nt.changed_since(bt.src.lineage)) else {
                return true;
            };
            // `base` has none: only the rules a dirty chain does not share with its old
            // version can.
            let bt = base.table(k).map(|bt| &bt.src);
            dirty.iter().any(|name| {
                nt.chain(name).is_some_and(|c| match bt.and_then(|bt| bt.chain(name)) {
                    Some(old) => {
                        let (p, s) = super::shared_ends(&old.rules, &c.rules);
                        has_rate_estimators(c.rules.range(p..c.rules.len() - s))
                    }
                    None => has_rate_estimators(c.rules.iter()),
                })
            })
        })
}

/// Whether a rule passes [`check_rule`] (no error text built).
fn rule_ok(kind: TableKind, hm: HookMask, r: &Rule, env: &Env) -> bool {
    (r.target.tables().is_empty() || r.target.tables().contains(&kind))
        && hm & !r.target.allowed_hooks() == 0
        && r.matches
            .iter()
            .all(|m| hm & !m.allowed_hooks() == 0 && !matches!(m, Match::Set(s) if !env.ipsets.contains(&s.name)))
}

fn has_idletimer<'a>(mut rules: impl Iterator<Item = &'a RuleRef>) -> bool {
    rules.any(|r| matches!(r.target, Target::IdleTimer(_)))
}

fn has_plugins<'a>(mut rules: impl Iterator<Item = &'a RuleRef>) -> bool {
    rules.any(|r| {
        matches!(r.target, Target::Wasm(_) | Target::Nfqueue(_) | Target::Queue(_))
            || r.matches.iter().any(|m| matches!(m, Match::Wasm(_)))
    })
}

/// The chain with its wasm rules bound to the plugins (the same `Arc` when it has none).
fn bind_chain(c: &Arc<Chain>, env: &Env, errors: &mut Vec<Error>) -> Arc<Chain> {
    if !has_plugins(c.rules.iter()) {
        return c.clone();
    }
    let mut bound = (**c).clone();
    for rule in &mut bound.rules {
        let bind_errors = rule.update(|rule| {
            let mut bind_errors = Vec::new();
            for m in &mut rule.matches {
                if let Match::Wasm(w) = m {
                    if let Err(msg) = env.bind(w, false) {
                        bind_errors.push((false, w.name.clone(), msg));
                    }
                }
            }
            if let Target::Wasm(super::targets::wasm::WasmTarget(w)) = &mut rule.target {
                if let Err(msg) = env.bind(w, true) {
                    bind_errors.push((true, w.name.clone(), msg));
                }
            }
            // NFQUEUE's listeners: the plugins the config puts on its queues (none without).
            if let Target::Nfqueue(q) | Target::Queue(super::targets::nfqueue::Queue(q)) = &mut rule.target {
                let (first, last) = q.range();
                match env
                    .plugins
                    .as_ref()
                    .map_or(Ok(Vec::new()), |b| b.bind_queues(first, last))
                {
                    Ok(bound) => q.listeners = bound,
                    Err(msg) => bind_errors.push((true, "NFQUEUE".to_string(), msg)),
                }
            }
            bind_errors
        });
        for (at_target, token, msg) in bind_errors {
            errors.push(err(rule, at_target, &token, msg));
        }
    }
    Arc::new(bound)
}

/// The jump targets of a chain's rules, resolved against `ids`.
fn resolve(
    kind: TableKind,
    c: &Chain,
    ids: &ChainIds,
    is_builtin: impl Fn(ChainId) -> bool,
    errors: &mut Vec<Error>,
) -> Arc<[Option<ChainId>]> {
    resolve_rules(kind, c.rules.iter(), ids, is_builtin, errors).collect()
}

/// Where each of `rules` jumps or goes to, as [`resolve`] finds it.
fn resolve_rules<'a>(
    kind: TableKind,
    rules: impl Iterator<Item = &'a RuleRef> + 'a,
    ids: &'a ChainIds,
    is_builtin: impl Fn(ChainId) -> bool + 'a,
    errors: &'a mut Vec<Error>,
) -> impl Iterator<Item = Option<ChainId>> + 'a {
    rules.map(move |r| match &r.target {
        Target::Jump(name) | Target::Goto(name) => match ids.get(name.as_str()).copied() {
            Some(id) if is_builtin(id) => {
                errors.push(err(r, true, name, format!("can't jump to built-in chain `{name}'")));
                None
            }
            Some(id) => Some(id),
            None => {
                errors.push(err(
                    r,
                    true,
                    name,
                    format!("chain `{name}' does not exist in table `{kind}' (and is not a known target)"),
                ));
                None
            }
        },
        _ => None,
    })
}

/// Validates `rs` against `env`; returns every error found.
pub fn validate(rs: &Ruleset, env: &Env) -> Result<ValidRuleset, Errors> {
    let mut errors = Vec::new();
    let mut tables: [Option<ValidTable>; 5] = Default::default();
    let mut rule_count = 0;
    for t in rs.tables.iter().flatten() {
        rule_count += t.rule_count();
        tables[t.kind.index()] = Some(validate_table(t, env, &mut errors));
    }
    let rateest = check_rate_estimators(rs, &mut errors);
    if errors.is_empty() {
        Ok(ValidRuleset {
            tables,
            rule_count,
            rateest,
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            delta: None,
            family: rs.family,
        })
    } else {
        Err(Errors(errors))
    }
}

/// As [`validate`], taking the rules over (kept for callers that own them; the source form is
/// persistent, so this copies nothing either way).
pub fn validate_owned(rs: Ruleset, env: &Env) -> Result<ValidRuleset, Errors> {
    validate(&rs, env)
}

/// One whole table.
fn validate_table(t: &Table, env: &Env, errors: &mut Vec<Error>) -> ValidTable {
    let kind = t.kind;
    // Bind plugin rules; the bound chains are the table's source from now on.
    let mut src = t.clone();
    let with_plugins: Vec<String> = t
        .chains()
        .filter(|c| has_plugins(c.rules.iter()))
        .map(|c| c.name.clone())
        .collect();
    for n in with_plugins {
        let bound = bind_chain(t.chain_arc(&n).expect("listed"), env, errors);
        if let Some(c) = src.chain_mut(&n) {
            *c = Arc::unwrap_or_clone(bound);
        }
    }
    // Slots: built-ins first, then user chains by name.
    let chains: Vec<Arc<Chain>> = src
        .builtin_chains()
        .iter()
        .chain(src.user_chains().values())
        .cloned()
        .collect();
    let n = chains.len();
    let builtins = src.builtin_chains().len();
    let ids: ChainIds = chains
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), ChainId(i as u32)))
        .collect();
    let jumps: Vec<Arc<[Option<ChainId>]>> = chains
        .iter()
        .map(|c| resolve(kind, c, &ids, |id| (id.0 as usize) < builtins, errors))
        .collect();
    // Reachability and loops, walking from each built-in chain; then depth over the
    // walk's topological order.
    let mut hooks = vec![0 as HookMask; n];
    let mut in_loop = vec![false; n];
    let mut topo: Vec<usize> = Vec::new();
    let mut done = vec![false; n];
    let entry: Vec<(Hook, usize)> = kind
        .builtin_hooks()
        .iter()
        .filter_map(|h| chains.iter().position(|c| c.name == h.chain_name()).map(|i| (*h, i)))
        .collect();
    for &(hook, start) in &entry {
        // Colours per walk: 0 unseen, 1 on the current path, 2 done.
        let mut colour = vec![0u8; n];
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        colour[start] = 1;
        hooks[start] |= hook.bit();
        while let Some(&mut (c, ref mut next)) = path.last_mut() {
            let Some((k, j)) = jumps[c]
                .iter()
                .enumerate()
                .skip(*next)
                .find_map(|(k, j)| j.map(|j| (k, j.0 as usize)))
            else {
                colour[c] = 2;
                if !done[c] {
                    done[c] = true;
                    topo.push(c);
                }
                path.pop();
                continue;
            };
            *next = k + 1;
            match colour[j] {
                1 => {
                    if !in_loop[j] {
                        in_loop[j] = true;
                        let mut names: Vec<&str> = path
                            .iter()
                            .skip_while(|&&(p, _)| p != j)
                            .map(|&(p, _)| chains[p].name.as_str())
                            .collect();
                        names.push(&chains[j].name);
                        let r = &chains[c].rules[k];
                        errors.push(err(
                            r,
                            true,
                            &chains[j].name,
                            format!("loop in table `{kind}': {}", names.join(" -> ")),
                        ));
                    }
                }
                2 => hooks[j] |= hook.bit() | hooks[c],
                _ => {
                    colour[j] = 1;
                    hooks[j] |= hook.bit();
                    path.push((j, 0));
                }
            }
        }
    }
    // A chain first finished last in no walk is still after its callees in `topo`: callers
    // come later, so walking `topo` backwards visits callers before callees.
    let mut depth = vec![0usize; n];
    let mut too_deep = false;
    if !in_loop.iter().any(|l| *l) {
        for &c in topo.iter().rev() {
            for (k, j) in jumps[c].iter().enumerate() {
                let Some(j) = j else { continue };
                let j = j.0 as usize;
                hooks[j] |= hooks[c];
                if depth[c] + 1 > depth[j] {
                    depth[j] = depth[c] + 1;
                    if depth[j] >= MAX_DEPTH && !too_deep {
                        too_deep = true;
                        errors.push(err(
                            &chains[c].rules[k],
                            true,
                            &chains[j].name,
                            format!(
                                "chains reached from a built-in chain nest {} levels deep at `{}'; the limit is {MAX_DEPTH}",
                                depth[j] + 1,
                                chains[j].name
                            ),
                        ));
                    }
                }
            }
        }
    }
    let mut refs: Slots<u32> = Slots::default();
    for _ in 0..n {
        refs.push(0);
    }
    for js in &jumps {
        for j in js.iter().flatten() {
            let i = j.0 as usize;
            refs.set(i, Some(refs.get(i).copied().unwrap_or(0) + 1));
        }
    }
    let mut slots: Slots<Arc<ValidChain>> = Slots::default();
    for (i, c) in chains.into_iter().enumerate() {
        for r in &c.rules {
            check_rule(kind, &c.name, hooks[i], r, env, errors);
        }
        slots.push(Arc::new(ValidChain {
            plugins: has_plugins(c.rules.iter()),
            idletimer: has_idletimer(c.rules.iter()),
            src: c,
            jumps: jumps[i].iter().copied().collect(),
            hooks: hooks[i],
            depth: depth[i].min(255) as u8,
        }));
    }
    let mut entry_arr = [None; 5];
    for (h, i) in entry {
        entry_arr[h as usize] = Some(ChainId(i as u32));
    }
    new_log(&mut src);
    let rules = src.rule_count();
    ValidTable {
        rules,
        kind,
        src,
        slots,
        ids,
        refs,
        free: Vec::new(),
        entry: entry_arr,
    }
}

/// Validates `next`, the next version of `base`'s source, doing work in proportion to what
/// changed (see the module header). The result shares every unchanged chain with `base` and
/// records which slots changed, for the engine.
pub fn validate_change(base: &ValidRuleset, next: &Ruleset, env: &Env) -> Result<ValidRuleset, Errors> {
    let mut errors = Vec::new();
    // The estimator checks read every rule: only when an estimator may be involved.
    let rateest = rate_estimators_touched(base, next) && check_rate_estimators(next, &mut errors);
    if !errors.is_empty() {
        return Err(Errors(errors));
    }
    let mut tables: [Option<ValidTable>; 5] = Default::default();
    let mut delta = Delta {
        parent: base.generation,
        ..Delta::default()
    };
    let mut rule_count = 0usize;
    for k in TableKind::ALL {
        let i = k.index();
        let Some(nt) = next.table(k) else { continue };
        let incremental = base.table(k).and_then(|bt| change_table(bt, nt, env).map(|r| (bt, r)));
        match incremental {
            Some((bt, (t, changed, rules_delta))) => {
                rule_count += (bt.rules as isize + rules_delta).max(0) as usize;
                delta.changed[i] = changed;
                tables[i] = Some(ValidTable {
                    rules: (bt.rules as isize + rules_delta).max(0) as usize,
                    ..t
                });
            }
            None => {
                // Validated whole: the exact answer, errors and all.
                let mut errors = Vec::new();
                let t = validate_table(nt, env, &mut errors);
                if !errors.is_empty() {
                    // Every error of every table, as a whole validation reports them.
                    return Err(match validate(next, env) {
                        Err(e) => e,
                        Ok(_) => Errors(errors),
                    });
                }
                delta.whole[i] = true;
                rule_count += t.rules;
                tables[i] = Some(t);
            }
        }
    }
    Ok(ValidRuleset {
        tables,
        rule_count,
        rateest,
        generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        delta: Some(delta),
        family: next.family,
    })
}

/// The incremental path for one table: `None` when the change is large or when it would
/// refuse (the caller then validates the table whole, for the exact answer).
fn change_table(bt: &ValidTable, nt: &Table, env: &Env) -> Option<(ValidTable, Vec<ChainId>, isize)> {
    let kind = bt.kind;
    // What changed: built-ins by position, user chains by the persistent maps' diff, which
    // skips shared subtrees.
    let mut updated: Vec<Arc<Chain>> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    let limit = (bt.src.chain_count() / 4).max(64);
    match nt.changed_since(bt.src.lineage) {
        // The change log of a table derived from this one names what changed.
        Some(dirty) => {
            if dirty.len() > limit {
                return None;
            }
            for name in dirty {
                match (bt.src.chain_arc(name), nt.chain_arc(name)) {
                    (Some(a), Some(b)) if Arc::ptr_eq(a, b) => {}
                    (_, Some(b)) => updated.push(b.clone()),
                    (Some(_), None) => removed.push(name.clone()),
                    (None, None) => {}
                }
            }
            // In name order, as the comparison below finds them (slots of new chains then
            // do not depend on the log's order).
            updated.sort_by(|a, b| a.name.cmp(&b.name));
            removed.sort();
        }
        // Otherwise compare the persistent maps (shared subtrees skipped) and the built-ins.
        None => {
            for (a, b) in bt.src.builtin_chains().iter().zip(nt.builtin_chains()) {
                if !Arc::ptr_eq(a, b) {
                    updated.push(b.clone());
                }
            }
            for d in bt.src.user_chains().diff(nt.user_chains()) {
                match d {
                    im::ordmap::DiffItem::Add(_, c) => updated.push(c.clone()),
                    im::ordmap::DiffItem::Update { new: (_, c), .. } => updated.push(c.clone()),
                    im::ordmap::DiffItem::Remove(name, _) => removed.push(name.clone()),
                }
                if updated.len() + removed.len() > limit {
                    return None;
                }
            }
        }
    }
    let mut t = bt.clone();
    t.src = nt.clone();
    new_log(&mut t.src);
    let mut rules_delta: isize = 0;
    let mut errors = Vec::new();
    let mut changed: Vec<ChainId> = Vec::new();
    // Drop the references of every chain version that goes away.
    // References to the chains `js` jump to: counted up or down.
    fn count<'a>(t: &mut ValidTable, js: impl Iterator<Item = &'a Option<ChainId>>, up: bool) {
        for j in js.flatten() {
            let i = j.0 as usize;
            let n = t.refs.get(i).copied().unwrap_or(0);
            t.refs.set(i, Some(if up { n + 1 } else { n.saturating_sub(1) }));
        }
    }
    for name in &removed {
        let id = bt.id_of(name)?;
        rules_delta -= bt.get(id).map_or(0, |c| c.rules().len()) as isize;
        if let Some(jumps) = t.get(id).map(|c| c.jumps.clone()) {
            count(&mut t, jumps.iter(), false);
        }
    }
    // Slots for new chains; removed ones are freed after their references are checked.
    let mut new_ids = Vec::new();
    for c in &updated {
        rules_delta += c.rules.len() as isize;
        match t.id_of(&c.name) {
            Some(id) => {
                // Its old version's references go with the rules that change (below).
                rules_delta -= t.get(id).map_or(0, |c| c.rules().len()) as isize;
                new_ids.push(id);
            }
            None => {
                let id = match t.free.pop() {
                    Some(i) => ChainId(i),
                    None => ChainId(t.slots.len().max(t.refs.len()) as u32),
                };
                t.ids.insert(c.name.clone(), id);
                if t.refs.get(id.0 as usize).is_none() {
                    t.refs.set(id.0 as usize, Some(0));
                }
                new_ids.push(id);
            }
        }
    }
    for name in &removed {
        if t.id_of(name).is_some() && nt.has_chain(name) {
            continue;
        }
        t.ids.remove(name);
    }
    // The new versions: bound, jumps resolved, references counted.
    let builtins = t.entry;
    let is_builtin = |id: ChainId| builtins.contains(&Some(id));
    let mut fresh: Vec<(ChainId, std::ops::Range<usize>, Arc<ValidChain>)> = Vec::new();
    // The rules of each chain to check: the new ones (rules shared with the old version were
    // checked for the same hooks), or all where the hooks grow.
    let mut check: Vec<(ChainId, std::ops::Range<usize>)> = Vec::new();
    for (c, &id) in updated.iter().zip(&new_ids) {
        let old = t.get(id).cloned();
        let ends = |rules: &super::Rules| old.as_ref().map_or((0, 0), |o| super::shared_ends(&o.src.rules, rules));
        let (mut p, mut s) = ends(&c.rules);
        // Rules the old version shares had no plugin when it had none: look at the rest.
        let plugins = match &old {
            Some(o) if !o.plugins => has_plugins(c.rules.range(p..c.rules.len() - s)),
            _ => has_plugins(c.rules.iter()),
        };
        let src = if plugins {
            let bound = bind_chain(c, env, &mut errors);
            (p, s) = ends(&bound.rules);
            bound
        } else {
            c.clone()
        };
        if !Arc::ptr_eq(&src, c) {
            if let Some(m) = t.src.chain_mut(&src.name) {
                *m = (*src).clone();
            }
        }
        // Jumps of the rules shared with the old version stay as they were resolved: a chain
        // they go to keeps its id while it exists, and one removed under them is caught by
        // its references below.
        let ol = old.as_ref().map_or(0, |o| o.src.rules.len());
        let nl = src.rules.len();
        let mid: Vec<Option<ChainId>> =
            resolve_rules(kind, src.rules.range(p..nl - s), &t.ids, is_builtin, &mut errors).collect();
        count(&mut t, mid.iter(), true);
        let jumps = match &old {
            Some(o) => {
                count(&mut t, o.jumps.range(p..ol - s), false);
                o.jumps.replaced(p, s, mid)
            }
            None => mid.into_iter().collect(),
        };
        check.push((id, p..nl - s));
        let (hooks, depth) = old.as_ref().map_or((0, 0), |old| (old.hooks, old.depth));
        // As `plugins`: the shared rules had no IDLETIMER when the old version had none.
        let idletimer = match &old {
            Some(o) if !o.idletimer => has_idletimer(src.rules.range(p..nl - s)),
            _ => has_idletimer(src.rules.iter()),
        };
        fresh.push((
            id,
            p..nl - s,
            Arc::new(ValidChain {
                src,
                jumps,
                hooks,
                depth,
                plugins,
                idletimer,
            }),
        ));
    }
    if !errors.is_empty() {
        return None;
    }
    for (id, _, c) in &fresh {
        t.slots.set(id.0 as usize, Some(c.clone()));
        changed.push(*id);
    }
    // Removed chains: nothing may still jump to them.
    for name in &removed {
        if nt.has_chain(name) {
            continue;
        }
        let id = bt.id_of(name)?;
        if t.refs.get(id.0 as usize).copied().unwrap_or(0) > 0 {
            return None;
        }
        t.slots.set(id.0 as usize, None);
        t.free.push(id.0);
        changed.push(id);
    }
    // Push hooks and depth along the jumps of the changed chains; check the rules of every
    // chain whose hooks grew. A new version keeps its old one's hooks and depth, which its
    // shared rules' jumps already carried to their chains: only its new rules' jumps are
    // followed. A chain whose hooks or depth grew has all of its jumps followed.
    let mut work: Vec<(ChainId, std::ops::Range<usize>)> =
        fresh.iter().map(|(id, new, _)| (*id, new.clone())).collect();
    let mut steps = 0usize;
    while let Some((id, range)) = work.pop() {
        steps += 1;
        if steps > limit * 8 {
            return None;
        }
        let c = t.get(id)?.clone();
        if c.hooks == 0 {
            continue;
        }
        let range = range.start.min(c.jumps.len())..range.end.min(c.jumps.len());
        for j in c.jumps.range(range).flatten() {
            let child = t.get(*j)?.clone();
            let hooks = child.hooks | c.hooks;
            let depth = child.depth.max(c.depth + 1);
            if usize::from(depth) >= MAX_DEPTH {
                // Too deep, or a loop (depth grows around it): the exact answer decides.
                return None;
            }
            if hooks != child.hooks || depth != child.depth {
                let mut grown = (*child).clone();
                grown.hooks = hooks;
                grown.depth = depth;
                t.slots.set(j.0 as usize, Some(Arc::new(grown)));
                work.push((*j, 0..usize::MAX));
                if hooks != child.hooks {
                    check.push((*j, 0..usize::MAX));
                }
                changed.push(*j);
            }
        }
    }
    for (id, range) in check {
        let c = t.get(id)?;
        let rules = &c.src.rules;
        let range = range.start.min(rules.len())..range.end.min(rules.len());
        if !rules.range(range).all(|r| rule_ok(kind, c.hooks, r, env)) {
            return None;
        }
    }
    changed.sort_unstable();
    changed.dedup();
    Some((t, changed, rules_delta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::restore::restore;

    fn check(s: &str) -> Result<ValidRuleset, Errors> {
        let rs = restore(&Ruleset::default(), s, "t.rules", false)?;
        validate(&rs, &Env::default())
    }

    #[test]
    fn loops_are_refused() {
        let e = check("*filter\n:A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A A -j B\n-A B -j A\nCOMMIT\n").unwrap_err();
        assert!(e.0[0].msg.contains("loop"), "{e}");
        assert_eq!(e.0[0].line, 6);
    }

    #[test]
    fn targets_are_held_to_their_tables() {
        let e = check("*filter\n-A FORWARD -j CONNSECMARK --save\nCOMMIT\n").unwrap_err();
        assert!(
            e.0[0]
                .msg
                .contains("`CONNSECMARK' is only valid in the `mangle' or `security' table"),
            "{e}"
        );
        for t in ["mangle", "security"] {
            check(&format!("*{t}\n-A FORWARD -j CONNSECMARK --restore\nCOMMIT\n")).expect(t);
        }
        let e = check("*filter\n-A FORWARD -j DSCP --set-dscp 1\nCOMMIT\n").unwrap_err();
        assert!(e.0[0].msg.contains("only valid in the `mangle' table"), "{e}");
    }

    #[test]
    fn a_change_that_brings_a_target_to_a_hook_it_refuses_is_refused() {
        // TCPMSS may go in any table but only in FORWARD, OUTPUT and POSTROUTING.
        let base = check(
            "*mangle\n:X - [0:0]\n-A FORWARD -j X\n-A X -p tcp --tcp-flags SYN SYN -j TCPMSS --clamp-mss-to-pmtu\nCOMMIT\n",
        )
        .unwrap();
        let next = restore(&base.source(), "*mangle\n-A PREROUTING -j X\nCOMMIT\n", "t.rules", true).unwrap();
        let e = validate_change(&base, &next, &Env::default()).unwrap_err();
        assert!(e.0[0].msg.contains("`TCPMSS' is only valid in"), "{e}");
    }

    #[test]
    fn hooks_reach_the_chains_behind_old_and_new_jumps() {
        // A is reached from FORWARD and jumps to X; a change appends a jump from A to Y,
        // whose TCPMSS FORWARD allows: accepted, and Y now has A's hooks.
        let base = check(
            "*mangle\n:A - [0:0]\n:X - [0:0]\n:Y - [0:0]\n-A FORWARD -j A\n-A A -j X\n\
             -A X -p tcp --tcp-flags SYN SYN -j TCPMSS --clamp-mss-to-pmtu\n\
             -A Y -p tcp --tcp-flags SYN SYN -j TCPMSS --clamp-mss-to-pmtu\nCOMMIT\n",
        )
        .unwrap();
        let next = restore(&base.source(), "*mangle\n-A A -j Y\nCOMMIT\n", "t.rules", true).unwrap();
        let v = validate_change(&base, &next, &Env::default()).unwrap();
        let t = v.table(TableKind::Mangle).unwrap();
        let hooks = |name: &str| t.get(t.id_of(name).unwrap()).unwrap().hooks;
        assert_eq!(hooks("Y"), hooks("A"));
        assert_ne!(hooks("Y"), 0);
        // Reaching A from PREROUTING too brings TCPMSS to a hook it refuses, through the
        // jump the change did not touch (to X) as much as through the new one (to Y).
        for (drop, keep) in [("X", "Y"), ("Y", "X")] {
            let text = format!("*mangle\n-F {drop}\n-A PREROUTING -j A\nCOMMIT\n");
            let next = restore(&v.source(), &text, "t.rules", true).unwrap();
            let e = validate_change(&v, &next, &Env::default()).unwrap_err();
            assert!(e.0[0].msg.contains("`TCPMSS' is only valid in"), "{keep}: {e}");
        }
        // A change to a long chain that does not change its hooks still carries them on.
        let next = restore(&v.source(), "*mangle\n-A A -j X\n-A A -j Y\nCOMMIT\n", "t.rules", true).unwrap();
        let w = validate_change(&v, &next, &Env::default()).unwrap();
        let t = w.table(TableKind::Mangle).unwrap();
        assert_eq!(t.get(t.id_of("Y").unwrap()).unwrap().hooks, hooks("A"));
    }

    #[test]
    fn a_change_inside_a_long_chain_keeps_the_jumps_of_the_rules_around_it() {
        let mut text = String::from("*filter\n:X - [0:0]\n:Y - [0:0]\n");
        for i in 0..100 {
            let to = if i == 10 {
                "X"
            } else if i == 90 {
                "Y"
            } else {
                "ACCEPT"
            };
            text += &format!("-A FORWARD -s 10.0.{i}.0/24 -j {to}\n");
        }
        text += "COMMIT\n";
        let base = check(&text).unwrap();
        let jumps = |v: &ValidRuleset| {
            let t = v.table(TableKind::Filter).unwrap();
            let fwd = t.chain(t.id_of("FORWARD").unwrap());
            let named = |i: usize| fwd.jump(i).map(|id| t.chain(id).name().to_string());
            (fwd.rules().len(), named(10), named(11), named(50), named(90), named(91))
        };
        // A rule inserted in the middle, jumping to a chain created by the same change.
        let next = restore(
            &base.source(),
            "*filter\n:Z - [0:0]\n-I FORWARD 51 -j Z\nCOMMIT\n",
            "t.rules",
            true,
        )
        .unwrap();
        let v = validate_change(&base, &next, &Env::default()).unwrap();
        let s = |n: &str| Some(n.to_string());
        assert_eq!(jumps(&v), (101, s("X"), None, s("Z"), None, s("Y")));
        // The chain a kept rule jumps to cannot go, though only another rule changed.
        let gone = restore(&v.source(), "*filter\n-D FORWARD 51\n-X X\nCOMMIT\n", "t.rules", true).unwrap();
        assert!(validate_change(&v, &gone, &Env::default()).is_err());
        // Deleting the rule first lets it go, and the jumps after it move up.
        let next = restore(&v.source(), "*filter\n-D FORWARD 11\nCOMMIT\n", "t.rules", true).unwrap();
        let v = validate_change(&v, &next, &Env::default()).unwrap();
        let next = restore(&v.source(), "*filter\n-X X\nCOMMIT\n", "t.rules", true).unwrap();
        let v = validate_change(&v, &next, &Env::default()).unwrap();
        let t = v.table(TableKind::Filter).unwrap();
        let fwd = t.chain(t.id_of("FORWARD").unwrap());
        assert_eq!(fwd.rules().len(), 100);
        assert_eq!(fwd.jump(49).map(|id| t.chain(id).name()), Some("Z"));
        assert_eq!(fwd.jump(90).map(|id| t.chain(id).name()), Some("Y"));
        assert!(t.id_of("X").is_none());
    }

    #[test]
    fn unreachable_loops_are_refused_too() {
        let e = check("*filter\n:A - [0:0]\n-A A -j A\nCOMMIT\n");
        // A self-loop in an unreferenced chain is never entered; netfilter accepts it only
        // because it cannot be reached. We follow the kernel.
        assert!(e.is_ok());
    }

    #[test]
    fn missing_chain_and_builtin_jump() {
        let e = check("*filter\n-A INPUT -j NOPE\n-A INPUT -j OUTPUT\nCOMMIT\n").unwrap_err();
        assert_eq!(e.0.len(), 2);
        assert_eq!((e.0[0].line, e.0[0].col, e.0[0].token.as_str()), (2, 10, "NOPE"));
    }

    #[test]
    fn targets_are_checked_over_every_reachable_hook() {
        let e = check("*nat\n:X - [0:0]\n-A PREROUTING -j X\n-A POSTROUTING -j X\n-A X -j DNAT --to-destination 1.2.3.4\nCOMMIT\n").unwrap_err();
        assert!(e.0[0].msg.contains("POSTROUTING"), "{e}");
        assert!(check("*filter\n-A INPUT -j DNAT --to-destination 1.2.3.4\nCOMMIT\n").is_err());
        assert!(check("*nat\n-A PREROUTING -p tcp -j DNAT --to-destination 1.2.3.4:80\nCOMMIT\n").is_ok());
        assert!(check("*raw\n-A PREROUTING -j REJECT\nCOMMIT\n").is_err());
    }

    #[test]
    fn depth_is_bounded() {
        let mut s = String::from("*filter\n");
        for i in 0..70 {
            s += &format!(":C{i} - [0:0]\n");
        }
        s += "-A INPUT -j C0\n";
        for i in 0..69 {
            s += &format!("-A C{i} -j C{}\n", i + 1);
        }
        s += "COMMIT\n";
        let e = check(&s).unwrap_err();
        assert!(e.0[0].msg.contains("levels deep"), "{e}");
    }
}
