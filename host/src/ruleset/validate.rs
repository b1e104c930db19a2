//! Validation: from the source [`Ruleset`] to the [`ValidRuleset`] the evaluator runs.
//!
//! What netfilter's `translate_table`/`mark_source_chains` and libiptc refuse is refused here,
//! with the rule's file, line and column: jumps to chains that do not exist or to built-in
//! chains, loops, chains nested deeper than [`MAX_DEPTH`], targets outside their table or in a
//! hook they are not allowed in (judged over every hook the chain is reachable from), matches
//! likewise, and `-m set` naming a set the config does not define.

use super::matches::Match;
use super::targets::Target;
use super::{Error, Errors, Hook, HookMask, Policy, Rule, Ruleset, TableKind};
use std::collections::HashSet;

/// How deep user chains may call each other. The kernel's own bound is the number of chains;
/// a fixed bound keeps the evaluator's jump stack a small array.
pub const MAX_DEPTH: usize = 64;

/// A chain's index within its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId(pub u32);

/// Binds a rule's use of a wasm plugin (`-m wasm`, `-j WASM`) to the loaded plugins: the
/// plugin checks the rule's `--args` and returns the handle calls will use. Implemented by
/// the plugin runtime, so this layer never sees wasmtime.
pub trait PluginBinder: Send + Sync + std::fmt::Debug {
    fn bind(&self, plugin: &str, args: &str, target: bool) -> Result<u32, String>;
}

/// What the ruleset may refer to outside itself.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Names of the ipsets the config defines.
    pub ipsets: HashSet<String>,
    /// The loaded plugins; `None` when the config declares none.
    pub plugins: Option<std::sync::Arc<dyn PluginBinder>>,
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

// The validated form is a witness: only `validate` makes one, so its fields are the crate's
// own; other crates read it through the accessors.

/// A rule ready to run: the source rule, its resolved jump, and its counter slot.
#[derive(Debug, Clone)]
pub struct ValidRule {
    pub(crate) rule: Rule,
    /// The chain a `-j CHAIN`/`-g CHAIN` goes to.
    pub(crate) jump: Option<ChainId>,
    /// Index into the ruleset's counter array; unique across all tables.
    pub(crate) id: u32,
    /// Where the engine keeps this rule's compiled matches (`comment` left out) and its
    /// resolved `-i`/`-o` (`u32::MAX`: none): positions in arrays built in rule order, laid
    /// out here so that the engine finds them in the rule it reads anyway.
    pub(crate) tests_at: u32,
    pub(crate) tests_len: u16,
    pub(crate) iface_at: u32,
}

impl ValidRule {
    /// The rule as loaded.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// Its identity within the ruleset (its counters' slot), unique across all tables.
    pub fn id(&self) -> u32 {
        self.id
    }
}

#[derive(Debug, Clone)]
pub struct ValidChain {
    pub(crate) name: String,
    pub(crate) policy: Option<Policy>,
    /// What the policy decided (built-in chains).
    pub(crate) counter: std::sync::Arc<super::Counter>,
    pub(crate) rules: Vec<ValidRule>,
    /// The hooks this chain can be reached from.
    pub(crate) hooks: HookMask,
}

impl ValidChain {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `None` for a user chain.
    pub fn policy(&self) -> Option<Policy> {
        self.policy
    }

    pub fn rules(&self) -> &[ValidRule] {
        &self.rules
    }

    /// The hooks this chain can be reached from.
    pub fn hooks(&self) -> HookMask {
        self.hooks
    }
}

#[derive(Debug, Clone)]
pub struct ValidTable {
    pub(crate) kind: TableKind,
    pub(crate) chains: Vec<ValidChain>,
    /// The built-in chain of each hook, by `Hook as usize`.
    pub(crate) entry: [Option<ChainId>; 5],
}

impl ValidTable {
    pub fn chain(&self, id: ChainId) -> &ValidChain {
        &self.chains[id.0 as usize]
    }

    pub fn kind(&self) -> TableKind {
        self.kind
    }

    /// Built-in chains first, then user chains by name, as iptables-save orders them.
    pub fn chains(&self) -> &[ValidChain] {
        &self.chains
    }
}

/// A ruleset that passed validation. Immutable; shared behind an `Arc` and swapped whole.
/// It keeps one copy of each rule: [`ValidRuleset::source`] rebuilds the source form.
#[derive(Debug, Clone)]
pub struct ValidRuleset {
    pub(crate) tables: [Option<ValidTable>; 5],
    pub(crate) rule_count: usize,
}

impl ValidRuleset {
    /// The tables that were loaded, in hook order.
    pub fn tables(&self) -> impl Iterator<Item = &ValidTable> {
        self.tables.iter().flatten()
    }

    /// How many rules, over all tables.
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// The source form this was validated from (chains in the same order, rules as loaded).
    pub fn source(&self) -> Ruleset {
        let mut rs = Ruleset::default();
        for t in self.tables.iter().flatten() {
            rs.tables[t.kind.index()] = Some(super::Table {
                kind: t.kind,
                chains: t
                    .chains
                    .iter()
                    .map(|c| super::Chain {
                        name: c.name.clone(),
                        policy: c.policy,
                        counter: c.counter.clone(),
                        rules: c.rules.iter().map(|r| r.rule.clone()).collect(),
                    })
                    .collect(),
            });
        }
        rs
    }

    pub fn table(&self, k: TableKind) -> Option<&ValidTable> {
        self.tables[k.index()].as_ref()
    }

    /// An empty ruleset: every packet is accepted.
    pub fn empty() -> Self {
        validate(&Ruleset::default(), &Env::default()).expect("the empty ruleset is valid")
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

/// Validates `rs` against `env`; returns every error found.
pub fn validate(rs: &Ruleset, env: &Env) -> Result<ValidRuleset, Errors> {
    validate_owned(rs.clone(), env)
}

/// As [`validate`], taking the rules over instead of copying them (one copy of a large
/// ruleset in memory, not two).
pub fn validate_owned(rs: Ruleset, env: &Env) -> Result<ValidRuleset, Errors> {
    let mut errors = Vec::new();
    let mut tables: [Option<super::validate::ValidTable>; 5] = Default::default();
    let mut next_id = 0u32;
    let (mut next_test, mut next_iface) = (0u32, 0u32);
    for t in rs.tables.into_iter().flatten() {
        let n = t.chains.len();
        let by_name: std::collections::HashMap<&str, usize> =
            t.chains.iter().enumerate().map(|(i, c)| (c.name.as_str(), i)).collect();
        // Resolve jumps.
        let mut jumps: Vec<Vec<Option<ChainId>>> = Vec::with_capacity(n);
        for c in &t.chains {
            let mut js = Vec::with_capacity(c.rules.len());
            for r in &c.rules {
                let j = match &r.target {
                    Target::Jump(name) | Target::Goto(name) => match by_name.get(name.as_str()).copied() {
                        Some(k) if t.chains[k].policy.is_some() => {
                            errors.push(err(r, true, name, format!("can't jump to built-in chain `{name}'")));
                            None
                        }
                        Some(k) => Some(ChainId(k as u32)),
                        None => {
                            errors.push(err(
                                r,
                                true,
                                name,
                                format!(
                                    "chain `{name}' does not exist in table `{}' (and is not a known target)",
                                    t.kind
                                ),
                            ));
                            None
                        }
                    },
                    _ => None,
                };
                js.push(j);
            }
            jumps.push(js);
        }
        // Reachability, loops and depth, by walking from each built-in chain.
        let mut hook_mask = vec![0 as HookMask; n];
        let mut in_loop = vec![false; n];
        let entry: Vec<(Hook, usize)> = t
            .kind
            .builtin_hooks()
            .iter()
            .filter_map(|h| t.chains.iter().position(|c| c.name == h.chain_name()).map(|i| (*h, i)))
            .collect();
        // Colours per walk: 0 unseen, 1 on the current path, 2 done. `height` is the deepest
        // nesting below a chain (itself included), the same from every hook.
        let mut height = vec![0usize; n];
        for &(hook, start) in &entry {
            let mut colour = vec![0u8; n];
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            colour[start] = 1;
            hook_mask[start] |= hook.bit();
            while let Some(&mut (c, ref mut next)) = path.last_mut() {
                let Some((k, j)) = jumps[c]
                    .iter()
                    .enumerate()
                    .skip(*next)
                    .find_map(|(k, j)| j.map(|j| (k, j.0 as usize)))
                else {
                    let h = 1 + jumps[c]
                        .iter()
                        .flatten()
                        .map(|j| height[j.0 as usize])
                        .max()
                        .unwrap_or(0);
                    height[c] = height[c].max(h);
                    colour[c] = 2;
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
                                .map(|&(p, _)| t.chains[p].name.as_str())
                                .collect();
                            names.push(&t.chains[j].name);
                            let r = &t.chains[c].rules[k];
                            errors.push(err(
                                r,
                                true,
                                &t.chains[j].name,
                                format!("loop in table `{}': {}", t.kind, names.join(" -> ")),
                            ));
                        }
                    }
                    2 => {}
                    _ => {
                        colour[j] = 1;
                        hook_mask[j] |= hook.bit();
                        path.push((j, 0));
                    }
                }
            }
            if height[start] > MAX_DEPTH && !in_loop.iter().any(|l| *l) {
                let r = t.chains[start].rules.first();
                if let Some(r) = r {
                    errors.push(err(
                        r,
                        true,
                        &t.chains[start].name,
                        format!(
                            "chains reached from `{}' nest {} levels deep; the limit is {MAX_DEPTH}",
                            t.chains[start].name, height[start]
                        ),
                    ));
                }
            }
        }
        // Per-rule checks: table, hooks, ipsets.
        let mut chains = Vec::with_capacity(n);
        let kind = t.kind;
        for (ci, c) in t.chains.into_iter().enumerate() {
            let hm = hook_mask[ci];
            let mut rules = Vec::with_capacity(c.rules.len());
            for (ri, owned) in c.rules.into_iter().enumerate() {
                let r = &owned;
                if let Some(tab) = r.target.table() {
                    if tab != kind {
                        errors.push(err(
                            r,
                            true,
                            r.target.name(),
                            format!("target `{}' is only valid in the `{tab}' table", r.target.name()),
                        ));
                    }
                }
                let allowed = r.target.allowed_hooks();
                if hm & !allowed != 0 {
                    errors.push(err(
                        r,
                        true,
                        r.target.name(),
                        format!(
                            "target `{}' is only valid in {}, but chain `{}' is reachable from {}",
                            r.target.name(),
                            hook_names(allowed),
                            c.name,
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
                            format!("match `{}' with these options is only valid in {}, but chain `{}' is reachable from {}", m.name(), hook_names(allowed), c.name, hook_names(hm)),
                        ));
                    }
                    if let Match::Set(s) = m {
                        if !env.ipsets.contains(&s.name) {
                            errors.push(err(
                                r,
                                false,
                                &s.name,
                                format!("ipset `{}' is not defined in the config", s.name),
                            ));
                        }
                    }
                }
                let mut rule = owned;
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
                for (at_target, token, msg) in bind_errors {
                    errors.push(err(&rule, at_target, &token, msg));
                }
                let tests_len = rule.matches.iter().filter(|m| !matches!(m, Match::Comment(_))).count() as u16;
                let iface_at = if rule.in_iface.is_some() || rule.out_iface.is_some() {
                    next_iface += 1;
                    next_iface - 1
                } else {
                    u32::MAX
                };
                rules.push(ValidRule {
                    rule,
                    jump: jumps[ci][ri],
                    id: next_id,
                    tests_at: next_test,
                    tests_len,
                    iface_at,
                });
                next_id += 1;
                next_test += u32::from(tests_len);
            }
            chains.push(ValidChain {
                name: c.name,
                policy: c.policy,
                counter: c.counter,
                rules,
                hooks: hm,
            });
        }
        let mut entry_arr = [None; 5];
        for (h, i) in entry {
            entry_arr[h as usize] = Some(ChainId(i as u32));
        }
        tables[t.kind.index()] = Some(ValidTable {
            kind: t.kind,
            chains,
            entry: entry_arr,
        });
    }
    if errors.is_empty() {
        Ok(ValidRuleset {
            tables,
            rule_count: next_id as usize,
        })
    } else {
        Err(Errors(errors))
    }
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
