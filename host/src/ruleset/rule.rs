//! One rule: the base IPv4 match (`-s -d -i -o -p -f`), `-m` matches and one target; how the
//! words after `-A CHAIN` become rules, and how a rule prints in `iptables-save` form.

use super::ext::{bang, resolve_long, Cursor, Neg, PResult, Resolved, RuleError};
use super::lex::Token;
use super::matches::{Match, Partial, RuleProto};
use super::targets::{PartialTarget, Target};
use super::value::{parse_protocol, protocol_name, IpNet};
use super::Family;
use std::fmt::Write;
use std::sync::Arc;

/// Where a rule came from, for errors and the tracer.
#[derive(Debug, Clone, Default)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: u32,
    /// Column of the rule's first word (`-A`).
    pub col: u32,
    /// Column of the `-j`/`-g` word, or of the first word if there is none.
    pub target_col: u32,
}

/// An interface name as `-i`/`-o` take it: `eth+` matches every name starting with `eth`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Iface {
    pub name: String,
    pub wildcard: bool,
}

impl Iface {
    pub fn matches(&self, name: &str) -> bool {
        if self.wildcard {
            name.starts_with(&self.name)
        } else {
            name == self.name
        }
    }
}

/// A rule as loaded. Equality ignores where it came from and its counters.
#[derive(Debug, Clone)]
pub struct Rule {
    pub src: Option<Neg<IpNet>>,
    pub dst: Option<Neg<IpNet>>,
    pub in_iface: Option<Neg<Iface>>,
    pub out_iface: Option<Neg<Iface>>,
    /// `-p`; `None` is any protocol (`-p all`).
    pub proto: Option<Neg<u8>>,
    /// `-f`: `Some(false)` only non-first fragments, `Some(true)` (`! -f`) only first ones.
    pub frag: Option<bool>,
    pub matches: Vec<Match>,
    pub target: Target,
    /// What the rule has counted, from `-c` or `[p:b]` on; shared with every later
    /// generation the rule stays in (see [`super::counter`]).
    pub counter: Arc<super::Counter>,
    pub loc: Loc,
}

impl PartialEq for Rule {
    fn eq(&self, o: &Self) -> bool {
        self.src == o.src
            && self.dst == o.dst
            && self.in_iface == o.in_iface
            && self.out_iface == o.out_iface
            && self.proto == o.proto
            && self.frag == o.frag
            && self.matches == o.matches
            && self.target == o.target
    }
}

/// A rule as a chain holds it: shared between the generations it stays in, with a
/// fingerprint of its content beside the pointer. Finding a rule by its content (`-D` or `-C`
/// with a rule, iptables' `find_matching`) compares fingerprints in the chain's chunks and
/// reads only the rules whose fingerprint agrees, instead of one cold rule per position.
#[derive(Debug, Clone)]
pub struct RuleRef {
    /// Equal for equal rules ([`Rule::fingerprint`]).
    fp: u64,
    rule: Arc<Rule>,
}

impl RuleRef {
    pub fn new(rule: Rule) -> Self {
        RuleRef {
            fp: rule.fingerprint(),
            rule: Arc::new(rule),
        }
    }

    /// The shared rule.
    pub fn arc(&self) -> &Arc<Rule> {
        &self.rule
    }

    /// Changes the rule (copying it first if another generation shares it) and its
    /// fingerprint with it.
    pub fn update<R>(&mut self, f: impl FnOnce(&mut Rule) -> R) -> R {
        let out = f(Arc::make_mut(&mut self.rule));
        self.fp = self.rule.fingerprint();
        out
    }

    /// Whether this is a rule equal to `r` (whose [`Rule::fingerprint`] is `fp`): the
    /// fingerprint is compared first, the rule only read where it agrees.
    pub(crate) fn holds(&self, r: &Rule, fp: u64) -> bool {
        self.fp == fp && *self.rule == *r
    }

    /// Whether both are the very same rule (one allocation), not only equal ones.
    pub fn ptr_eq(a: &RuleRef, b: &RuleRef) -> bool {
        Arc::ptr_eq(&a.rule, &b.rule)
    }
}

impl std::ops::Deref for RuleRef {
    type Target = Rule;
    fn deref(&self) -> &Rule {
        &self.rule
    }
}

/// Rule equality ([`Rule`]'s: content, not counters or position), fingerprints first.
impl PartialEq for RuleRef {
    fn eq(&self, o: &Self) -> bool {
        self.fp == o.fp && (Arc::ptr_eq(&self.rule, &o.rule) || *self.rule == *o.rule)
    }
}

impl Rule {
    /// A hash of what [`Rule`]'s equality compares, so that equal rules have equal
    /// fingerprints: the base match, which extensions the rule uses in which order, and the
    /// target's kind and chain. Extensions' options are left out (equal rules still agree;
    /// rules that differ only there share a fingerprint and are told apart by comparing them).
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = foldhash::fast::FixedState::with_seed(0x5275_6c65).build_hasher();
        (
            self.src,
            self.dst,
            &self.in_iface,
            &self.out_iface,
            self.proto,
            self.frag,
        )
            .hash(&mut h);
        for m in &self.matches {
            m.name().hash(&mut h);
        }
        std::mem::discriminant(&self.target).hash(&mut h);
        if let Target::Jump(c) | Target::Goto(c) = &self.target {
            c.hash(&mut h);
        }
        h.finish()
    }

    /// The rule's `-p` as its extensions check it, in a ruleset of `family`.
    pub fn proto(&self, family: Family) -> RuleProto {
        let (proto, inv) = self.proto.map_or((0, false), |p| (p.v, p.inv));
        RuleProto { proto, inv, family }
    }

    /// Notes on the rule's matches and target whose input a TUN router lacks (`check` warns).
    pub fn tun_notes(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.matches.iter().filter_map(|m| m.tun_note()).collect();
        v.extend(self.target.tun_note());
        v
    }

    /// The ipsets the rule names (its matches' and its target's).
    pub fn ipsets(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.matches.iter().flat_map(|m| m.ipsets()).collect();
        v.extend(self.target.ipsets());
        v
    }

    /// Renames ipset `from` to `to` wherever the rule names it; whether it did.
    pub fn rename_ipset(&mut self, from: &str, to: &str) -> bool {
        let mut any = false;
        for m in &mut self.matches {
            any |= m.rename_ipset(from, to);
        }
        any | self.target.rename_ipset(from, to)
    }

    /// The rule's text after `-A CHAIN`, as iptables-save prints it (leading space included).
    pub fn save_spec(&self, out: &mut String) {
        for (opt, a) in [("-s", &self.src), ("-d", &self.dst)] {
            if let Some(a) = a {
                let _ = write!(out, "{} {opt} {}", a.bang(), a.v);
            }
        }
        for (opt, i) in [("-i", &self.in_iface), ("-o", &self.out_iface)] {
            if let Some(i) = i {
                let _ = write!(
                    out,
                    "{} {opt} {}{}",
                    i.bang(),
                    i.v.name,
                    if i.v.wildcard { "+" } else { "" }
                );
            }
        }
        if let Some(p) = self.proto {
            let _ = match protocol_name(p.v) {
                Some(n) => write!(out, "{} -p {n}", p.bang()),
                None => write!(out, "{} -p {}", p.bang(), p.v),
            };
        }
        if let Some(inv) = self.frag {
            let _ = write!(out, "{} -f", bang(inv));
        }
        for m in &self.matches {
            m.save(out);
        }
        self.target.save(out);
    }

    /// `-A CHAIN …` as one line, with `[p:b] ` in front when `counters` is set.
    pub fn save_line(&self, chain: &str, counters: Option<(u64, u64)>) -> String {
        let mut s = String::new();
        if let Some((p, b)) = counters {
            let _ = write!(s, "[{p}:{b}] ");
        }
        let _ = write!(s, "-A {chain}");
        self.save_spec(&mut s);
        s
    }
}

/// iptables' own long options (`original_opts` in iptables/xtables.c), in its order: the
/// commands and global options are for the command line (`Extra`), the rest are a rule's.
pub(crate) const OWN_OPTIONS: &[&str] = &[
    "append",
    "delete",
    "check",
    "insert",
    "replace",
    "list",
    "list-rules",
    "flush",
    "zero",
    "new-chain",
    "delete-chain",
    "rename-chain",
    "policy",
    "source",
    "destination",
    "src",
    "dst",
    "protocol",
    "in-interface",
    "jump",
    "table",
    "match",
    "numeric",
    "out-interface",
    "verbose",
    "wait",
    "wait-interval",
    "exact",
    "fragments",
    "version",
    "help",
    "line-numbers",
    "modprobe",
    "set-counters",
    "goto",
    "ipv4",
    "ipv6",
];

/// Who owns a long option of a rule being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// iptables itself ([`OWN_OPTIONS`]).
    Own,
    Target,
    /// The match at this index of the rule's matches.
    Match(usize),
}

/// Resolves `--name` among iptables' options and those of the extensions loaded so far, the
/// most recently loaded first (as `xtables_merge_options` orders them).
/// The option tables `resolve` builds, kept for the rule's next option (a rule has a few
/// options; a restore has hundreds of thousands of rules).
#[derive(Default)]
struct OptionTables {
    loaded: Vec<(usize, Owner, &'static [&'static str])>,
    tables: Vec<(Owner, &'static [&'static str])>,
}

fn resolve(
    name: &str,
    target: Option<&(PartialTarget, usize)>,
    partials: &[(Partial, usize)],
    t: &mut OptionTables,
) -> Resolved<Owner> {
    t.loaded.clear();
    t.loaded.extend(
        partials
            .iter()
            .enumerate()
            .map(|(i, (p, at))| (*at, Owner::Match(i), p.options())),
    );
    if let Some((tg, at)) = target {
        t.loaded.push((*at, Owner::Target, tg.options()));
    }
    t.loaded.sort_by_key(|l| std::cmp::Reverse(l.0));
    t.tables.clear();
    t.tables.push((Owner::Own, OWN_OPTIONS));
    t.tables.extend(t.loaded.iter().map(|&(_, o, names)| (o, names)));
    resolve_long(name, &t.tables)
}

/// The match iptables loads for the rule's `-p` on an option it does not know, unless loaded.
fn implicit_proto(rule: &Rule, partials: &[(Partial, usize)]) -> Option<&'static str> {
    let name = rule.proto.filter(|p| !p.inv).and_then(|p| match p.v {
        6 => Some("tcp"),
        17 => Some("udp"),
        1 => Some("icmp"),
        132 => Some("sctp"),
        33 => Some("dccp"),
        // ip6tables' (`-p icmpv6 --icmpv6-type`, `-p mh --mh-type`), as libxtables aliases them.
        58 => Some("icmp6"),
        135 => Some("mh"),
        50 => Some("esp"),
        51 => Some("ah"),
        _ => None,
    })?;
    (!partials.iter().any(|(p, _)| p.name() == name)).then_some(name)
}

/// Names of short options that take a value and may have it attached (`-ptcp`).
fn short_takes_value(c: char) -> bool {
    matches!(c, 's' | 'd' | 'i' | 'o' | 'p' | 'm' | 'j' | 'g' | 'c')
}

/// Parses the words `toks[start..]` of one rule. An address list (`-s a,b`) gives one rule per
/// address combination, as iptables does.
pub fn parse_rule(toks: &[Token], start: usize, loc: Loc, family: Family) -> PResult<Vec<Rule>> {
    parse_rule_with(toks, start, loc, family, &mut |_, _, _| Ok(false))
}

/// Words of a command line that are not part of the rule (the `iptables` command's `-A CHAIN`,
/// `-t TABLE`, `-v`...): offered each word where an option may start, with whether `!` came
/// before it; `Ok(true)` when it took the word (and any values after it, from the cursor).
pub type Extra<'e> = dyn FnMut(&str, bool, &mut Cursor) -> PResult<bool> + 'e;

/// As [`parse_rule`], offering every option word to `extra` first.
pub fn parse_rule_with(
    toks: &[Token],
    start: usize,
    loc: Loc,
    family: Family,
    extra: &mut Extra,
) -> PResult<Vec<Rule>> {
    let mut c = Cursor::new(toks);
    c.pos = start;
    c.family = family;
    let mut srcs: Option<(bool, Vec<IpNet>)> = None;
    let mut dsts: Option<(bool, Vec<IpNet>)> = None;
    let mut rule = Rule {
        src: None,
        dst: None,
        in_iface: None,
        out_iface: None,
        proto: None,
        frag: None,
        matches: Vec::new(),
        target: Target::None,
        counter: super::Counter::fresh(),
        loc,
    };
    let mut proto_seen = false;
    let mut counters = (0, 0);
    let mut partials: Vec<(Partial, usize)> = Vec::new();
    let mut target: Option<(PartialTarget, usize)> = None;
    let mut pending_inv: Option<usize> = None;
    let mut option_tables = OptionTables::default();

    while let Some(word) = c.next_word() {
        let at = c.pos - 1;
        if word == "!" {
            if pending_inv.is_some() {
                return Err(RuleError {
                    at,
                    msg: "multiple consecutive ! not allowed".into(),
                });
            }
            pending_inv = Some(at);
            continue;
        }
        let inv = pending_inv.take().is_some();
        c.opt_at = at;
        let opt: String = if let Some(long) = word.strip_prefix("--").filter(|l| !l.is_empty()) {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let mut found = resolve(name, target.as_ref(), &partials, &mut option_tables);
            // iptables loads the protocol's match when getopt finds no option, and tries again.
            if !matches!(found, Resolved::Found(..)) {
                if let Some(p) = implicit_proto(&rule, &partials) {
                    partials.push((Partial::start(p).expect("protocol matches exist"), at));
                    match resolve(name, target.as_ref(), &partials, &mut option_tables) {
                        f @ Resolved::Found(..) => found = f,
                        _ => drop(partials.pop()),
                    }
                }
            }
            let full = match found {
                Resolved::Found(owner, full) => {
                    c.set_pending(value.map(str::to_string));
                    match owner {
                        Owner::Own => full,
                        Owner::Target => {
                            let (t, _) = target.as_mut().expect("the target owns the option");
                            if !t.option(full, inv, &mut c)? {
                                return c.err(format!("unknown option `{word}'"));
                            }
                            if c.take_pending().is_some() {
                                return c.err(format!("option `{word}' takes no value"));
                            }
                            continue;
                        }
                        Owner::Match(i) => {
                            if !partials[i].0.option(full, inv, &mut c)? {
                                return c.err(format!("unknown option `{word}'"));
                            }
                            if c.take_pending().is_some() {
                                return c.err(format!("option `{word}' takes no value"));
                            }
                            continue;
                        }
                    }
                }
                Resolved::Ambiguous(names) => {
                    let names: Vec<String> = names.iter().map(|n| format!("`--{n}'")).collect();
                    return c.err(format!(
                        "option `--{name}' is ambiguous; possibilities: {}",
                        names.join(" ")
                    ));
                }
                Resolved::Unknown => {
                    if extra(word, inv, &mut c)? {
                        continue;
                    }
                    return c.err(format!("unknown option `{word}'"));
                }
            };
            // iptables' own option, spelled in full for the command line's part.
            let spelled = match value {
                Some(v) => format!("--{full}={v}"),
                None => format!("--{full}"),
            };
            c.set_pending(None);
            if extra(&spelled, inv, &mut c)? {
                continue;
            }
            c.set_pending(value.map(str::to_string));
            full.to_string()
        } else if extra(word, inv, &mut c)? {
            continue;
        } else if let Some(short) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut chars = short.chars();
            let ch = chars.next().unwrap_or('-');
            let rest = chars.as_str();
            if !rest.is_empty() {
                if !short_takes_value(ch) {
                    return c.err(format!("unknown option `{word}'"));
                }
                c.set_pending(Some(rest.to_string()));
            }
            ch.to_string()
        } else {
            return c.err(format!("bad argument `{word}'"));
        };

        match opt.as_str() {
            "s" | "source" | "src" | "d" | "destination" | "dst" => {
                let is_src = opt.starts_with('s');
                let mut inv = inv;
                let v = c.value_inv(&opt, &mut inv)?;
                let mut nets = Vec::new();
                for part in v.split(',') {
                    match IpNet::parse(part, c.family) {
                        Some(n) => nets.push(n),
                        None => {
                            return c
                                .err_value(format!("host/network `{part}' not found (host names are not resolved)"))
                        }
                    }
                }
                if inv && nets.len() > 1 {
                    return c.err_value("! not allowed with multiple source or destination IP addresses");
                }
                let slot = if is_src { &mut srcs } else { &mut dsts };
                if slot.is_some() {
                    return c.err(format!(
                        "multiple -{} flags not allowed",
                        if is_src { 's' } else { 'd' }
                    ));
                }
                *slot = Some((inv, nets));
            }
            "i" | "in-interface" | "o" | "out-interface" => {
                let is_in = opt.starts_with('i');
                let mut inv = inv;
                let v = c.value_inv(&opt, &mut inv)?;
                if v.len() > 15 {
                    return c.err_value(format!("interface name `{v}' must be shorter than IFNAMSIZ (15)"));
                }
                // What `dev_valid_name` refuses, and what iptables-save could not print back
                // (a quote, a leading `-` or `!`).
                if v.is_empty()
                    || v.starts_with(['-', '!'])
                    || v.contains(|c: char| matches!(c, '/' | ':' | '"') || c.is_whitespace() || c.is_control())
                {
                    return c.err_value(format!("bad interface name `{v}'"));
                }
                let slot = if is_in { &mut rule.in_iface } else { &mut rule.out_iface };
                if slot.is_some() {
                    return c.err(format!("multiple -{} flags not allowed", if is_in { 'i' } else { 'o' }));
                }
                let (name, wildcard) = match v.strip_suffix('+') {
                    Some(n) => (n.to_string(), true),
                    None => (v, false),
                };
                // `-i +` matches every interface and iptables-save drops it; `! -i +` stays.
                if !(wildcard && name.is_empty() && !inv) {
                    *slot = Some(Neg::new(inv, Iface { name, wildcard }));
                }
            }
            "p" | "protocol" => {
                let mut inv = inv;
                let v = c.value_inv(&opt, &mut inv)?;
                if proto_seen {
                    return c.err("multiple -p flags not allowed");
                }
                proto_seen = true;
                let p =
                    parse_protocol(&v).map_or_else(|| c.err_value(format!("unknown protocol `{v}' specified")), Ok)?;
                if p == 0 && inv {
                    return c.err_value("rule would never match protocol");
                }
                if p != 0 {
                    rule.proto = Some(Neg::new(inv, p));
                }
            }
            "f" | "fragments" if c.family == Family::V6 => {
                // ip6tables has no -f (`-m frag` looks at the fragment header).
                return c.err(format!("unknown option `{word}'"));
            }
            "f" | "fragments" => {
                if rule.frag.is_some() {
                    return c.err("multiple -f flags not allowed");
                }
                rule.frag = Some(inv);
            }
            "m" | "match" => {
                if inv {
                    return c.err("unexpected ! before -m");
                }
                let name = c.value(&opt)?;
                let Some(p) = Partial::start(&name) else {
                    return c.err_value(unknown_match(&name));
                };
                partials.push((p, at));
            }
            "j" | "jump" | "g" | "goto" => {
                if inv {
                    return c.err("unexpected ! before -j");
                }
                let name = c.value(&opt)?;
                if target.is_some() {
                    return c.err("multiple -j flags not allowed");
                }
                let t = if opt.starts_with('g') {
                    if is_builtin_target(&name) {
                        return c.err_value(format!("goto needs a user chain, not `{name}'"));
                    }
                    PartialTarget::goto(&name)
                } else {
                    PartialTarget::start(&name)
                };
                let t = t.or_else(|e| c.err_value(e))?;
                rule.loc.target_col = toks[at].col as u32;
                target = Some((t, at));
            }
            "c" | "set-counters" => {
                let v = c.value(&opt)?;
                let (p, b) = match v.split_once(',') {
                    Some((p, b)) => (p.to_string(), b.to_string()),
                    None => (v, c.value(&opt)?),
                };
                let num = |s: &str| super::value::parse_uint(s, 0, u64::MAX);
                match (num(&p), num(&b)) {
                    (Some(p), Some(b)) => counters = (p, b),
                    _ => return c.err_value("-c takes packet and byte counters: -c PACKETS BYTES or -c PACKETS,BYTES"),
                }
            }
            _ => return c.err(format!("unknown option `{word}'")),
        }
        if c.take_pending().is_some() {
            return c.err(format!("option `{word}' takes no value"));
        }
    }
    if let Some(at) = pending_inv {
        return Err(RuleError {
            at,
            msg: "`!' must be followed by an option".into(),
        });
    }
    let proto = rule.proto(c.family);
    for (p, at) in partials {
        let m = p.finish(proto).map_err(|msg| RuleError { at, msg })?;
        rule.matches.push(m);
    }
    if let Some((t, at)) = target {
        let syn = rule.matches.iter().any(|m| match m {
            Match::Tcp(t) => t.flags.is_some_and(|f| !f.inv && f.v.1 & 0x02 != 0),
            _ => false,
        });
        rule.target = t.finish(proto, syn).map_err(|msg| RuleError { at, msg })?;
    }
    let srcs = srcs.unwrap_or((false, vec![]));
    let dsts = dsts.unwrap_or((false, vec![]));
    let mut out = Vec::new();
    let s_opts: Vec<Option<Neg<IpNet>>> = if srcs.1.is_empty() {
        vec![None]
    } else {
        srcs.1.iter().map(|n| Some(Neg::new(srcs.0, *n))).collect()
    };
    let d_opts: Vec<Option<Neg<IpNet>>> = if dsts.1.is_empty() {
        vec![None]
    } else {
        dsts.1.iter().map(|n| Some(Neg::new(dsts.0, *n))).collect()
    };
    for s in &s_opts {
        for d in &d_opts {
            let mut r = rule.clone();
            // Each rule of an address list is a rule of its own, with its own counter.
            r.counter = super::Counter::starting(counters.0, counters.1);
            // `-s 0.0.0.0/0` matches everything; iptables-save leaves it out.
            r.src = s.filter(|n| n.inv || !n.v.is_any());
            r.dst = d.filter(|n| n.inv || !n.v.is_any());
            out.push(r);
        }
    }
    Ok(out)
}

fn is_builtin_target(name: &str) -> bool {
    matches!(name, "ACCEPT" | "DROP" | "RETURN" | "QUEUE")
}

/// A `-m NAME` rtrouter has no module for: iptables' own message for a name no extension has,
/// and a plain statement for the iptables (ip6tables) matches rtrouter does not implement.
fn unknown_match(name: &str) -> String {
    const NOT_IMPLEMENTED: &[&str] = &[
        "ipvs",
        "frag",
        "hbh",
        "dst",
        "rt",
        "ipv6header",
        "eui64",
        "mh",
        "srh",
        "l2tp",
        "ebt_802_3",
        "set_ip6",
    ];
    if NOT_IMPLEMENTED.contains(&name) {
        format!("match `{name}' is not supported by rtrouter")
    } else {
        format!("Couldn't load match `{name}':No such file or directory")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::lex::tokenize;

    fn one(s: &str) -> Result<String, String> {
        let toks = tokenize(s).unwrap();
        parse_rule(&toks, 0, Loc::default(), Family::V4)
            .map(|rs| {
                let mut o = String::new();
                rs[0].save_spec(&mut o);
                o.trim_start().to_string()
            })
            .map_err(|e| e.msg)
    }

    #[test]
    fn implicit_protocol_match_is_loaded() {
        assert_eq!(
            one("-p tcp --dport 80 -j ACCEPT").unwrap(),
            "-p tcp -m tcp --dport 80 -j ACCEPT"
        );
        assert_eq!(one("-p udp ! --sport 53").unwrap(), "-p udp -m udp ! --sport 53");
        assert_eq!(one("-p tcp --dport ! 80").unwrap(), "-p tcp -m tcp ! --dport 80");
    }

    #[test]
    fn long_options_abbreviate_across_everything_loaded() {
        for (given, saved) in [
            // A unique prefix among the options loaded so far.
            (
                "-m conntrack --ctstate NEW --ctd REPLY -j ACCEPT",
                "-m conntrack --ctstate NEW --ctdir REPLY -j ACCEPT",
            ),
            ("--proto tcp --dp 22", "-p tcp -m tcp --dport 22"),
            ("--in- eth0 --ou eth1 --fragment", "-i eth0 -o eth1 -f"),
            ("! --fr", "! -f"),
            ("--sr 10.0.0.1 --ds 10.0.0.2", "-s 10.0.0.1/32 -d 10.0.0.2/32"),
            ("-j SNAT --to 1.2.3.4", "-j SNAT --to-source 1.2.3.4"),
            ("-m limit --limit-b 3", "-m limit --limit 3/hour --limit-burst 3"),
            ("-m comment --comm=x", "-m comment --comment x"),
            // Multiport is loaded and tcp is not: `--dport` abbreviates its `--dports`.
            (
                "-p tcp -m multiport --dport 80,443",
                "-p tcp -m multiport --dports 80,443",
            ),
            // Loaded, tcp's exact name wins.
            (
                "-p tcp -m tcp --dport 80 -m multiport --sports 1,2",
                "-p tcp -m tcp --dport 80 -m multiport --sports 1,2",
            ),
            // policy's `--proto` spelled in full beats iptables' `--protocol`.
            (
                "-m policy --dir in --pol ipsec --proto esp",
                "-m policy --dir in --pol ipsec --proto esp",
            ),
        ] {
            assert_eq!(one(given).as_deref(), Ok(saved), "{given}");
        }
        for (given, why) in [
            ("-p tcp --s 1", "is ambiguous"),
            ("--in eth0", "possibilities: `--insert' `--in-interface'"),
            ("-m conntrack --ctst NEW", "possibilities: `--ctstate' `--ctstatus'"),
            ("-m string --algo bm --st x --i", "`--ipv6' `--icase'"),
            ("-m limit --limit 3 --l", "is ambiguous"),
            ("-m mark --mar 1 --nosuch 1", "unknown option `--nosuch'"),
            ("-m policy --dir in --pol none --prot esp", "is ambiguous"),
        ] {
            let e = one(given).expect_err(given);
            assert!(e.contains(why), "{given}: {e}");
        }
    }

    #[test]
    fn rarer_matches_print_back_as_iptables_prints_them() {
        for (given, saved) in [
            ("-p ipcomp -m ipcomp --ipcompspi 18 --compres", "-p ipcomp -m ipcomp --ipcompspi 18 --compres"),
            ("-p 108 -m ipcomp ! --ipcompspi 1:0x10", "-p ipcomp -m ipcomp ! --ipcompspi 1:16"),
            ("-m cpu ! --cpu 0", "-m cpu ! --cpu 0"),
            ("-m cpu --cpu 4294967295", "-m cpu --cpu 4294967295"),
            ("-m realm --realm 0x1/0x2a", "-m realm --realm 0x1/0x2a"),
            ("-m realm ! --realm 42/0xff", "-m realm ! --realm 0x2a/0xff"),
            ("-m devgroup --src-group 5/0xf ! --dst-group 0x7/7", "-m devgroup --src-group 0x5/0xf ! --dst-group 0x7/0x7"),
            ("-p tcp -m osf --genre linux --ttl 0 --log 0", "-p tcp -m osf --genre linux --ttl 0 --log 0"),
            ("-p tcp -m osf ! --genre Windows", "-p tcp -m osf ! --genre Windows"),
            (
                "-m cluster --cluster-total-nodes 2 --cluster-local-node 2 --cluster-hash-seed 0xfeedcafe",
                "-m cluster --cluster-local-nodemask 0x00000002 --cluster-total-nodes 2 --cluster-hash-seed 0xfeedcafe",
            ),
            (
                "-m cluster ! --cluster-local-nodemask 3 --cluster-total-nodes 2 --cluster-hash-seed 1",
                "-m cluster ! --cluster-local-nodemask 0x00000003 --cluster-total-nodes 2 --cluster-hash-seed 0x00000001",
            ),
        ] {
            assert_eq!(one(given).as_deref(), Ok(saved), "{given}");
        }
        for bad in [
            "-m ipcomp --ipcompspi 1",
            "-m cpu",
            "-m cpu --cpu 4294967296",
            "-m realm",
            "-m realm --realm 1/x",
            "-m devgroup",
            "-m osf --genre linux",
            "-p tcp -m osf --genre linux --ttl 3",
            "-m cluster",
            "-m cluster --cluster-total-nodes 3",
            "-m cluster --cluster-total-nodes 2 --cluster-local-node 2",
            "-m cluster --cluster-total-nodes 2 --cluster-local-node 3 --cluster-hash-seed 1",
            "-m cluster --cluster-total-nodes 2 --cluster-local-node 3 --cluster-hash-seed",
            "-m cluster --cluster-total-nodes 2 --cluster-local-nodemask 64 --cluster-hash-seed 1",
        ] {
            assert!(one(bad).is_err(), "{bad} must be refused: {:?}", one(bad));
        }
    }

    #[test]
    fn audit_led_tcpoptstrip_print_back_as_iptables_prints_them() {
        for (given, saved) in [
            ("-j AUDIT --type accept", "-j AUDIT --type accept"),
            ("-j AUDIT --type DROP", "-j AUDIT --type drop"),
            ("-j AUDIT --type reject", "-j AUDIT --type reject"),
            ("-j LED --led-trigger-id \"foo\"", "-j LED --led-trigger-id \"foo\""),
            (
                "-j LED --led-trigger-id foo --led-delay 42 --led-always-blink",
                "-j LED --led-trigger-id \"foo\" --led-delay 42 --led-always-blink",
            ),
            (
                "-j LED --led-trigger-id x --led-delay infinite",
                "-j LED --led-trigger-id \"x\" --led-delay inf",
            ),
            (
                "-j LED --led-trigger-id x --led-delay 0",
                "-j LED --led-trigger-id \"x\"",
            ),
            ("-p tcp -j TCPOPTSTRIP", "-p tcp -j TCPOPTSTRIP"),
            (
                "-p tcp -j TCPOPTSTRIP --strip-options 2,3,4,5,6,7",
                "-p tcp -j TCPOPTSTRIP --strip-options 2,3,4,5,6,7",
            ),
            (
                "-p tcp -j TCPOPTSTRIP --strip-options timestamp,mss",
                "-p tcp -j TCPOPTSTRIP --strip-options 2,8",
            ),
        ] {
            assert_eq!(one(given).as_deref(), Ok(saved), "{given}");
        }
        for bad in [
            "-j AUDIT",
            "-j AUDIT --type wrong",
            "-j LED",
            "-j LED --led-trigger-id 0123456789abcdefg",
            "-j TCPOPTSTRIP",
            "-p tcp -j TCPOPTSTRIP --strip-options 0",
            "-p tcp -j TCPOPTSTRIP --strip-options 1",
            "-p tcp -j TCPOPTSTRIP --strip-options 1,2",
            "-p tcp -j TCPOPTSTRIP --strip-options 2,mss",
        ] {
            assert!(one(bad).is_err(), "{bad} must be refused: {:?}", one(bad));
        }
    }

    #[test]
    fn historic_negation_position() {
        assert_eq!(one("-s ! 10.0.0.0/8").unwrap(), "! -s 10.0.0.0/8");
    }

    #[test]
    fn address_lists_expand() {
        let toks = tokenize("-s 1.1.1.1,2.2.2.2 -d 3.3.3.3,4.4.4.4 -j DROP").unwrap();
        let rs = parse_rule(&toks, 0, Loc::default(), Family::V4).unwrap();
        assert_eq!(rs.len(), 4);
        assert_eq!(rs[1].dst.unwrap().v.addr().to_string(), "4.4.4.4");
    }

    #[test]
    fn errors_point_at_the_word() {
        let toks = tokenize("-p tcp --dport 99999").unwrap();
        let e = parse_rule(&toks, 0, Loc::default(), Family::V4).unwrap_err();
        assert_eq!(e.at, 3);
        let toks = tokenize("-m nosuchmatch --x 1").unwrap();
        let e = parse_rule(&toks, 0, Loc::default(), Family::V4).unwrap_err();
        assert_eq!(e.at, 1);
        assert_eq!(e.msg, "Couldn't load match `nosuchmatch':No such file or directory");
        let toks = tokenize("-m ipvs --vaddr 10.0.0.1").unwrap();
        let e = parse_rule(&toks, 0, Loc::default(), Family::V4).unwrap_err();
        assert_eq!(e.msg, "match `ipvs' is not supported by rtrouter");
    }
}
