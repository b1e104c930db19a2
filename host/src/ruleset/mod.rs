//! The ruleset: netfilter's tables, chains and rules, in two forms.
//!
//! [`Ruleset`] is the source form: chain names, rule texts and where each rule came from. It is
//! what the iptables-restore parser ([`restore`]) builds and what `save` prints.
//! [`validate`] turns it into a [`ValidRuleset`]: chains addressed by index, jump targets
//! resolved, loops refused, depth bounded, and every target checked against the tables and
//! hooks netfilter allows it in. The evaluator only accepts the valid form.

pub mod chunked;
pub mod counter;
pub mod ext;
pub mod lex;
pub mod matches;
pub mod restore;
pub mod rule;
pub mod slots;
pub mod targets;
pub mod validate;
pub mod value;

pub use counter::Counter;
pub use rule::{Iface, Loc, Rule, RuleRef};
pub use validate::{validate, ChainId, Env, PluginBinder, ValidRuleset};

use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;

/// The five tables, in the order their hooks run (raw before mangle before nat before filter
/// before security, by their priorities in `netfilter_ipv4.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableKind {
    Raw,
    Mangle,
    Nat,
    Filter,
    /// For mandatory access control (SELinux `SECMARK`); runs after filter.
    Security,
}

impl TableKind {
    pub const ALL: [TableKind; 5] = [
        TableKind::Raw,
        TableKind::Mangle,
        TableKind::Nat,
        TableKind::Filter,
        TableKind::Security,
    ];

    /// The order `iptables-save` prints tables in (iptables-nft's `xtables_ipv4`).
    pub const SAVE_ORDER: [TableKind; 5] = [
        TableKind::Mangle,
        TableKind::Security,
        TableKind::Raw,
        TableKind::Filter,
        TableKind::Nat,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TableKind::Raw => "raw",
            TableKind::Mangle => "mangle",
            TableKind::Nat => "nat",
            TableKind::Filter => "filter",
            TableKind::Security => "security",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }

    /// The built-in chains of this table, as netfilter has them.
    pub fn builtin_hooks(self) -> &'static [Hook] {
        use Hook::*;
        match self {
            TableKind::Raw => &[Prerouting, Output],
            TableKind::Mangle => &[Prerouting, Input, Forward, Output, Postrouting],
            TableKind::Nat => &[Prerouting, Input, Output, Postrouting],
            TableKind::Filter | TableKind::Security => &[Input, Forward, Output],
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for TableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The five netfilter hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    pub const ALL: [Hook; 5] = [
        Hook::Prerouting,
        Hook::Input,
        Hook::Forward,
        Hook::Output,
        Hook::Postrouting,
    ];

    pub fn chain_name(self) -> &'static str {
        match self {
            Hook::Prerouting => "PREROUTING",
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
            Hook::Postrouting => "POSTROUTING",
        }
    }

    pub fn from_chain_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.chain_name() == s)
    }

    pub fn bit(self) -> HookMask {
        1 << (self as u8)
    }
}

/// A set of hooks, bit `Hook as u8`.
pub type HookMask = u8;

pub mod hooks {
    use super::HookMask;
    pub const PREROUTING: HookMask = 1 << 0;
    pub const INPUT: HookMask = 1 << 1;
    pub const FORWARD: HookMask = 1 << 2;
    pub const OUTPUT: HookMask = 1 << 3;
    pub const POSTROUTING: HookMask = 1 << 4;
    pub const ALL: HookMask = 0x1f;
}

/// What a built-in chain does with a packet that falls off its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Accept,
    Drop,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Accept => "ACCEPT",
            Policy::Drop => "DROP",
        }
    }
}

/// A chain's rules: shared in chunks between the versions of the chain, so that a new
/// version of a long chain copies only the chunks it changes.
pub type Rules = chunked::Chunked<RuleRef>;

/// A chain in source form. Built-in chains have a policy, user chains do not.
/// Equality compares names, policies and rules, not counters.
#[derive(Debug, Clone)]
pub struct Chain {
    pub name: String,
    pub policy: Option<Policy>,
    /// What the policy decided (built-in chains; kept by identity like rules' counters).
    pub counter: Arc<Counter>,
    pub rules: Rules,
}

impl PartialEq for Chain {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.policy == o.policy && self.rules == o.rules
    }
}

/// One table in source form: built-in chains in hook order, then user chains by name
/// (libiptc's order, which iptables-save prints).
///
/// Persistent: chains are shared (`Arc`) and user chains sit in a persistent ordered map, so
/// a copy costs O(1) and a change copies only the chains it touches and O(log n) of the map.
/// That is what lets a transaction work on a copy of a 400,000-chain table and what lets
/// validation find the chains a change touched by comparing two versions.
#[derive(Debug, Clone)]
pub struct Table {
    pub kind: TableKind,
    builtins: Vec<Arc<Chain>>,
    user: im::OrdMap<String, Arc<Chain>>,
    /// The change log: which version this table descends from (0: none known) and the names
    /// of the chains changed since (`None`: too many, or all). Validation starts every table
    /// it accepts a new log, so the next change is found without comparing the tables.
    pub(crate) lineage: u64,
    pub(crate) dirty: Option<im::HashSet<String>>,
}

impl PartialEq for Table {
    /// Equal contents; the change log does not count.
    fn eq(&self, o: &Self) -> bool {
        self.kind == o.kind && self.builtins == o.builtins && self.user == o.user
    }
}

impl Table {
    /// A table as netfilter creates it: built-in chains, ACCEPT policies, no rules.
    pub fn new(kind: TableKind) -> Self {
        Table {
            kind,
            builtins: kind
                .builtin_hooks()
                .iter()
                .map(|h| {
                    Arc::new(Chain {
                        name: h.chain_name().to_string(),
                        policy: Some(Policy::Accept),
                        counter: Counter::fresh(),
                        rules: Rules::default(),
                    })
                })
                .collect(),
            user: im::OrdMap::new(),
            lineage: 0,
            dirty: None,
        }
    }

    /// Records that chain `name` changed.
    fn touch(&mut self, name: &str) {
        if let Some(d) = &mut self.dirty {
            d.insert(name.to_string());
        }
    }

    /// The chains changed since this table's version `lineage` was validated; `None` when
    /// unknown.
    pub(crate) fn changed_since(&self, lineage: u64) -> Option<&im::HashSet<String>> {
        if self.lineage != 0 && self.lineage == lineage {
            self.dirty.as_ref()
        } else {
            None
        }
    }

    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chain_arc(name).map(|c| &**c)
    }

    /// The chain as shared between versions of the table.
    pub fn chain_arc(&self, name: &str) -> Option<&Arc<Chain>> {
        match self.builtins.iter().find(|c| c.name == name) {
            Some(c) => Some(c),
            None => self.user.get(name),
        }
    }

    /// The chain, for a change (copied first if another version shares it).
    pub fn chain_mut(&mut self, name: &str) -> Option<&mut Chain> {
        if self.has_chain(name) {
            self.touch(name);
        }
        if let Some(c) = self.builtins.iter_mut().find(|c| c.name == name) {
            return Some(Arc::make_mut(c));
        }
        self.user.get_mut(name).map(Arc::make_mut)
    }

    pub fn has_chain(&self, name: &str) -> bool {
        self.chain_arc(name).is_some()
    }

    /// Every chain: built-ins in hook order, then user chains by name.
    pub fn chains(&self) -> impl Iterator<Item = &Chain> + '_ {
        self.builtins
            .iter()
            .map(|c| &**c)
            .chain(self.user.values().map(|c| &**c))
    }

    /// The built-in chains, shared.
    pub fn builtin_chains(&self) -> &[Arc<Chain>] {
        &self.builtins
    }

    /// The user chains by name, shared.
    pub fn user_chains(&self) -> &im::OrdMap<String, Arc<Chain>> {
        &self.user
    }

    /// Names of every chain, in [`Table::chains`] order.
    pub fn chain_names(&self) -> Vec<String> {
        self.chains().map(|c| c.name.clone()).collect()
    }

    /// Changes every chain (each copied first if shared).
    pub fn for_each_chain_mut(&mut self, mut f: impl FnMut(&mut Chain)) {
        // Every chain may change: the log cannot say less.
        self.dirty = None;
        for c in &mut self.builtins {
            f(Arc::make_mut(c));
        }
        self.user = self
            .user
            .iter()
            .map(|(k, c)| {
                let mut c = c.clone();
                f(Arc::make_mut(&mut c));
                (k.clone(), c)
            })
            .collect();
    }

    /// Adds an empty user chain (its place is its name's, as libiptc keeps them) and returns
    /// it. An existing chain of that name is replaced.
    pub fn add_user_chain(&mut self, name: &str) -> &mut Chain {
        self.insert_user_chain(Chain {
            name: name.to_string(),
            policy: None,
            counter: Counter::fresh(),
            rules: Rules::default(),
        })
    }

    /// Puts a user chain in under its name.
    pub fn insert_user_chain(&mut self, chain: Chain) -> &mut Chain {
        let name = chain.name.clone();
        self.touch(&name);
        self.user.insert(name.clone(), Arc::new(chain));
        Arc::make_mut(self.user.get_mut(&name).expect("just inserted"))
    }

    /// Removes a user chain; `None` when there is none of that name.
    pub fn remove_user_chain(&mut self, name: &str) -> Option<Arc<Chain>> {
        self.touch(name);
        self.user.remove(name)
    }

    pub fn chain_count(&self) -> usize {
        self.builtins.len() + self.user.len()
    }

    pub fn rule_count(&self) -> usize {
        self.chains().map(|c| c.rules.len()).sum()
    }
}

/// Which netfilter a ruleset is for: iptables' (`ip_tables`, IPv4 packets) or ip6tables'
/// (`ip6_tables`, IPv6 packets). Addresses, protocol names and some extensions differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Family {
    #[default]
    V4,
    V6,
}

impl Family {
    /// The command that programs it: `iptables` or `ip6tables`.
    pub fn tool(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }

    /// The length of its addresses in bits: 32 or 128.
    pub fn max_prefix(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// The source form of a whole ruleset: the tables that were loaded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ruleset {
    /// Indexed by `TableKind::index`; `None` for a table no input mentioned.
    pub tables: [Option<Table>; 5],
    pub family: Family,
}

impl Ruleset {
    /// An empty ruleset of `family`.
    pub fn new(family: Family) -> Ruleset {
        Ruleset {
            family,
            ..Ruleset::default()
        }
    }

    pub fn table(&self, k: TableKind) -> Option<&Table> {
        self.tables[k.index()].as_ref()
    }

    /// The table, created empty if no input mentioned it yet.
    pub fn table_mut(&mut self, k: TableKind) -> &mut Table {
        self.tables[k.index()].get_or_insert_with(|| Table::new(k))
    }

    /// A copy whose rules and chains count on counters of their own (starting where these
    /// are): two engines built from it and from `self` count apart (the differential test).
    pub fn with_fresh_counters(&self) -> Ruleset {
        let mut rs = self.clone();
        for t in rs.tables.iter_mut().flatten() {
            t.for_each_chain_mut(|c| {
                let (p, b) = c.counter.get();
                c.counter = Counter::starting(p, b);
                for r in &mut c.rules {
                    let (p, b) = r.counter.get();
                    r.update(|r| r.counter = Counter::starting(p, b));
                }
            });
        }
        rs
    }

    /// The iptables-save form of every table, in iptables-save's order; `counters` prints
    /// each rule's `[packets:bytes]`.
    pub fn save(&self, counters: bool) -> String {
        self.save_tables(&TableKind::SAVE_ORDER, counters)
    }

    /// The iptables-save form of the `tables` that are loaded, in the order given. Built-in
    /// chains show their policy's counters; user chains have none (`[0:0]`), as in the kernel.
    pub fn save_tables(&self, tables: &[TableKind], counters: bool) -> String {
        let mut out = String::from("# Generated by rtrouter\n");
        for t in tables.iter().filter_map(|&k| self.table(k)) {
            let _ = writeln!(out, "*{}", t.kind);
            // Chains are kept in iptables-save's order: built-ins, then user chains by name.
            for c in t.chains() {
                let (p, b) = if c.policy.is_some() { c.counter.get() } else { (0, 0) };
                let policy = c.policy.map_or("-", Policy::name);
                let _ = writeln!(out, ":{} {} [{p}:{b}]", c.name, policy);
            }
            for c in t.chains() {
                for r in &c.rules {
                    out.push_str(&r.save_line(&c.name, counters.then(|| r.counter.get())));
                    out.push('\n');
                }
            }
            out.push_str("COMMIT\n");
        }
        out.push_str("# Completed\n");
        out
    }
}

/// An error in a ruleset or config: where, the offending word, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {}{}", shown(.msg, MSG_SHOWN), token_hint(.token))]
pub struct Error {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
    /// The word the error is about (empty when it is about a missing word).
    pub token: String,
    pub msg: String,
}

/// The longest token an error message repeats; a longer one is cut, with `…`.
const TOKEN_SHOWN: usize = 200;
/// The same for the message, which may quote the input too.
const MSG_SHOWN: usize = 400;

/// `s` in at most about `max` characters: a longer one keeps its start and its last quarter
/// (where a message says what was wrong with the long word it quotes), with `…` between.
fn shown(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let n = s.chars().count();
    if n <= max {
        return s.into();
    }
    let tail = max / 4;
    let head: String = s.chars().take(max - tail).collect();
    let end: String = s.chars().skip(n - tail).collect();
    format!("{head}…{end}").into()
}

fn token_hint(t: &str) -> String {
    if t.is_empty() {
        String::new()
    } else {
        format!(" (at `{}')", shown(t, TOKEN_SHOWN))
    }
}

/// Reads a text file: a file that is not UTF-8 is an error at the line and column of its
/// first bad byte (`what` says what the file is, for errors reading it at all).
pub fn read_text(path: &std::path::Path, what: &str) -> Result<String, Error> {
    let file: Arc<str> = Arc::from(path.display().to_string());
    let err = |line, col, token: String, msg| Error {
        file: file.clone(),
        line,
        col,
        token,
        msg,
    };
    let bytes = std::fs::read(path).map_err(|e| err(0, 0, String::new(), format!("cannot read {what}: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let before = &bytes[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
        let start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // Columns count characters, as for every other error; the prefix is valid UTF-8.
        let col = std::str::from_utf8(&bytes[start..at]).map_or(0, |s| s.chars().count()) as u32 + 1;
        err(line, col, format!("\\x{:02x}", bytes[at]), "not UTF-8 text".into())
    })
}

/// Every error found in one input, in order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Errors(pub Vec<Error>);

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// How many rules at the start and at the end of `new` are the very rules (the same
/// allocation) of `old`: a change that inserts, deletes or replaces rules in a long chain
/// leaves the rest shared, and what was worked out for them holds.
pub(crate) fn shared_ends(old: &Rules, new: &Rules) -> (usize, usize) {
    old.shared_ends(new, RuleRef::ptr_eq)
}

/// Where the first of `rules` equal to `r` stands (`-D` and `-C` with a rule, iptables'
/// `find_matching`): fingerprints are compared first, so only rules that agree are read.
pub fn position_of(rules: &Rules, r: &Rule) -> Option<usize> {
    let fp = r.fingerprint();
    rules.iter().position(|x| x.holds(r, fp))
}
