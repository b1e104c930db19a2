//! `iptables`: one command (`-A -C -D -I -R -L -S -F -Z -N -X -P -E`) on one table.
//!
//! Parsing follows `do_parse` in iptables' `xshared.c`: commands and their chain and rule-number
//! arguments may appear anywhere among the rule's options (a value is never read as an option,
//! because the rule parser takes values as it meets them); a command's optional argument is the
//! next word unless that starts with `-` or `!`; `-Z CHAIN N` replaces an earlier `-L` (so
//! `-L -Z FORWARD 1` only zeroes) while `-Z -L FORWARD 1` lists rule 1 and zeroes the chain.
//! Exit statuses: 0, 1 for a failed operation (no such rule, chain or index; chain in use),
//! 2 for a bad command line.

use super::{exit, list, Live, Output};
use crate::ruleset::ext::{Cursor, PResult, RuleError};
use crate::ruleset::lex::Token;
use crate::ruleset::restore::check_chain_name;
use crate::ruleset::rule::{parse_rule_with, Loc};
use crate::ruleset::targets::Target;
use crate::ruleset::{position_of, Counter, Family, Hook, Policy, Rule, RuleRef, Ruleset, Table, TableKind};
use std::sync::atomic::Ordering;

/// The command of one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Append,
    Check,
    Delete,
    DeleteNum,
    Insert,
    Replace,
    List,
    ListRules,
    Flush,
    Zero,
    ZeroNum,
    NewChain,
    DeleteChain,
    Policy,
    Rename,
}

impl Cmd {
    fn letter(self) -> char {
        match self {
            Cmd::Append => 'A',
            Cmd::Check => 'C',
            Cmd::Delete | Cmd::DeleteNum => 'D',
            Cmd::Insert => 'I',
            Cmd::Replace => 'R',
            Cmd::List => 'L',
            Cmd::ListRules => 'S',
            Cmd::Flush => 'F',
            Cmd::Zero | Cmd::ZeroNum => 'Z',
            Cmd::NewChain => 'N',
            Cmd::DeleteChain => 'X',
            Cmd::Policy => 'P',
            Cmd::Rename => 'E',
        }
    }

    /// Commands that take a rule specification.
    fn takes_rule(self) -> bool {
        matches!(
            self,
            Cmd::Append | Cmd::Check | Cmd::Delete | Cmd::Insert | Cmd::Replace
        )
    }
}

/// A parsed command line.
#[derive(Debug, Default)]
struct Invocation {
    /// iptables' or ip6tables' ruleset.
    family: Family,
    /// The commands given: one, or `-L`/`-S` with `-Z`.
    cmds: Vec<Cmd>,
    table: Option<TableKind>,
    chain: Option<String>,
    rulenum: Option<usize>,
    /// `-P`'s policy or `-E`'s new name.
    arg: Option<String>,
    verbose: bool,
    numeric: bool,
    exact: bool,
    line_numbers: bool,
    /// The first word of the rule specification, for "Illegal option" errors.
    spec_word: Option<String>,
    /// `-c`/`--set-counters` was given.
    counters: bool,
}

impl Invocation {
    fn has(&self, c: Cmd) -> bool {
        self.cmds.contains(&c)
    }

    fn main(&self) -> Option<Cmd> {
        self.cmds
            .iter()
            .copied()
            .find(|c| !matches!(c, Cmd::Zero | Cmd::ZeroNum))
            .or(self.cmds.first().copied())
    }
}

/// The program as iptables names itself in messages (`xtables_globals.program_name`):
/// `iptables` or `ip6tables`.
fn tool(family: Family) -> &'static str {
    family.tool()
}

fn prog(family: Family) -> String {
    format!("{} v{} (nf_tables)", tool(family), super::IPTABLES_VERSION)
}

/// A command-line error: iptables' message, its hint, exit status 2.
fn usage_error(family: Family, msg: &str) -> Output {
    let t = tool(family);
    Output::fail(
        exit::PARAMETER,
        format!(
            "{}: {msg}\nTry `{t} -h' or '{t} --help' for more information.",
            prog(family)
        ),
    )
}

/// An operation that failed: `iptables: MSG.`, exit status 1.
fn op_error(family: Family, msg: &str) -> Output {
    Output::fail(exit::OTHER, format!("{}: {msg}.", tool(family)))
}

const NO_CHAIN: &str = "No chain/target/match by that name";
const BAD_RULE: &str = "Bad rule (does a matching rule exist in that chain?)";

/// Whether `w` is an argument rather than an option (`xs_has_arg`).
fn is_arg(w: Option<&str>) -> bool {
    w.is_some_and(|w| !w.starts_with('-') && !w.starts_with('!'))
}

fn rulenum(w: &str) -> Result<usize, String> {
    match crate::ruleset::value::parse_uint(w, 1, i32::MAX as u64) {
        Some(n) => Ok(n as usize),
        None => Err(format!("Invalid rule number `{w}'")),
    }
}

/// Parses `args` into the invocation and the rules it names.
fn parse(args: &[String], family: Family) -> Result<(Invocation, Vec<Rule>), String> {
    let toks: Vec<Token> = args
        .iter()
        .enumerate()
        .map(|(i, a)| Token {
            text: a.clone(),
            col: i + 1,
        })
        .collect();
    let mut inv = Invocation {
        family,
        ..Invocation::default()
    };
    let mut fail: Option<String> = None;
    let loc = Loc {
        file: family.tool().into(),
        line: 1,
        col: 1,
        target_col: 1,
    };
    let res = {
        let inv = &mut inv;
        let fail = &mut fail;
        let mut hook = |word: &str, bang: bool, c: &mut Cursor| -> PResult<bool> {
            match command_word(inv, word, bang, c) {
                Ok(true) => Ok(true),
                Ok(false) => {
                    if inv.spec_word.is_none() {
                        inv.spec_word = Some(word.to_string());
                    }
                    if matches!(word, "-c" | "--set-counters") || word.starts_with("-c") && word.len() > 2 {
                        inv.counters = true;
                    }
                    Ok(false)
                }
                Err(m) => {
                    *fail = Some(m.clone());
                    Err(RuleError { at: c.opt_at, msg: m })
                }
            }
        };
        parse_rule_with(&toks, 0, loc, family, &mut hook)
    };
    if let Some(m) = fail {
        return Err(m);
    }
    let rules = res.map_err(|e| iptables_message(&e.msg))?;
    Ok((inv, rules))
}

/// The rule parser's messages in iptables' words where controllers or tests look for them.
fn iptables_message(m: &str) -> String {
    if let Some(rest) = m.strip_prefix("unknown option `") {
        return format!("unknown option \"{}\"", rest.trim_end_matches('\''));
    }
    m.to_string()
}

/// Takes a command or global option word; `Ok(false)` when it belongs to the rule.
fn command_word(inv: &mut Invocation, word: &str, bang: bool, c: &mut Cursor) -> Result<bool, String> {
    // Long options, with `--opt=value`.
    if let Some(long) = word.strip_prefix("--") {
        let (name, val) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (long, None),
        };
        let short = match name {
            "append" => 'A',
            "check" => 'C',
            "delete" => 'D',
            "insert" => 'I',
            "replace" => 'R',
            "list" => 'L',
            "list-rules" => 'S',
            "flush" => 'F',
            "zero" => 'Z',
            "new-chain" | "new" => 'N',
            "delete-chain" => 'X',
            "policy" => 'P',
            "rename-chain" => 'E',
            "table" => 't',
            "verbose" => 'v',
            "numeric" => 'n',
            "exact" => 'x',
            "wait" => 'w',
            "wait-interval" => 'W',
            "ipv4" => '4',
            "ipv6" => '6',
            "line-numbers" => {
                inv.line_numbers = true;
                return Ok(true);
            }
            "modprobe" => {
                val.map_or_else(|| c.next_word().map(str::to_string), Some)
                    .ok_or("option \"--modprobe\" requires an argument")?;
                return Ok(true);
            }
            _ => return Ok(false),
        };
        short_option(inv, short, val, bang, c)?;
        return Ok(true);
    }
    let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) else {
        return Ok(false);
    };
    // A bundle of flags (`-nvL`, `-w2`, `-tnat`): all of it must be ours.
    let first = shorts.chars().next().unwrap_or('-');
    if !"ACDIRLSFZNXPEtvnxwW46".contains(first) {
        // getopt names the first letter no option has (`-aL`: "-a").
        if !first.is_ascii_alphanumeric() || "sdiopmjgcfh".contains(first) {
            return Ok(false);
        }
        return Err(format!("unknown option \"-{first}\""));
    }
    for (i, ch) in shorts.char_indices() {
        let rest = &shorts[i + ch.len_utf8()..];
        match ch {
            // Options taking a value take the rest of the word, as getopt does (`-AINPUT`,
            // `-w2`; so `-Ln` lists a chain named `n`, as in iptables).
            't' | 'W' | 'w' | 'A' | 'C' | 'D' | 'I' | 'R' | 'N' | 'P' | 'E' | 'L' | 'S' | 'F' | 'Z' | 'X'
                if !rest.is_empty() =>
            {
                short_option(inv, ch, Some(rest.to_string()), bang, c)?;
                return Ok(true);
            }
            'A' | 'C' | 'D' | 'I' | 'R' | 'L' | 'S' | 'F' | 'Z' | 'N' | 'X' | 'P' | 'E' | 't' | 'v' | 'n' | 'x'
            | 'w' | 'W' | '4' | '6' => short_option(inv, ch, None, bang, c)?,
            _ => {
                if i == 0 {
                    return Ok(false);
                }
                return Err(format!("unknown option \"{word}\""));
            }
        }
    }
    Ok(true)
}

/// One short option, with its attached value if any; further arguments come from `c`.
fn short_option(
    inv: &mut Invocation,
    ch: char,
    attached: Option<String>,
    bang: bool,
    c: &mut Cursor,
) -> Result<(), String> {
    let next_arg = |c: &mut Cursor| -> Option<String> {
        if is_arg(c.peek()) {
            c.next_word().map(str::to_string)
        } else {
            None
        }
    };
    let required = |c: &mut Cursor, attached: Option<String>, what: &str| -> Result<String, String> {
        match attached {
            Some(v) => Ok(v),
            None => match c.next_word() {
                Some(w) => Ok(w.to_string()),
                None => Err(format!("option \"-{what}\" requires an argument")),
            },
        }
    };
    let cmd = match ch {
        'A' => Some(Cmd::Append),
        'C' => Some(Cmd::Check),
        'D' => Some(Cmd::Delete),
        'I' => Some(Cmd::Insert),
        'R' => Some(Cmd::Replace),
        'L' => Some(Cmd::List),
        'S' => Some(Cmd::ListRules),
        'F' => Some(Cmd::Flush),
        'Z' => Some(Cmd::Zero),
        'N' => Some(Cmd::NewChain),
        'X' => Some(Cmd::DeleteChain),
        'P' => Some(Cmd::Policy),
        'E' => Some(Cmd::Rename),
        _ => None,
    };
    if let Some(cmd) = cmd {
        if bang {
            return Err("unexpected '!' flag".into());
        }
        // `-L`/`-S` combine with `-Z`; nothing else combines.
        let combines = |a: Cmd, b: Cmd| {
            matches!(
                (a, b),
                (Cmd::List | Cmd::ListRules, Cmd::Zero | Cmd::ZeroNum)
                    | (Cmd::Zero | Cmd::ZeroNum, Cmd::List | Cmd::ListRules)
            )
        };
        if let Some(&other) = inv.cmds.iter().find(|&&o| !combines(o, cmd)) {
            return Err(format!("Cannot use -{} with -{}", cmd.letter(), other.letter()));
        }
        inv.cmds.push(cmd);
        match cmd {
            Cmd::Append | Cmd::Check | Cmd::NewChain => {
                inv.chain = Some(required(c, attached, &ch.to_string())?);
                if cmd == Cmd::NewChain {
                    valid_new_name(inv.chain.as_deref().unwrap_or(""))?;
                }
            }
            Cmd::Delete => {
                inv.chain = Some(required(c, attached, "D")?);
                if let Some(n) = next_arg(c) {
                    inv.rulenum = Some(rulenum(&n)?);
                    *inv.cmds.last_mut().expect("pushed") = Cmd::DeleteNum;
                }
            }
            Cmd::Replace => {
                inv.chain = Some(required(c, attached, "R")?);
                let n = next_arg(c).ok_or("-R requires a rule number")?;
                inv.rulenum = Some(rulenum(&n)?);
            }
            Cmd::Insert => {
                inv.chain = Some(required(c, attached, "I")?);
                inv.rulenum = Some(match next_arg(c) {
                    Some(n) => rulenum(&n)?,
                    None => 1,
                });
            }
            Cmd::List | Cmd::ListRules | Cmd::Zero => {
                if let Some(ch) = attached.or_else(|| next_arg(c)) {
                    inv.chain = Some(ch);
                }
                if let Some(n) = next_arg(c) {
                    inv.rulenum = Some(rulenum(&n)?);
                    if cmd == Cmd::Zero {
                        // As iptables: a numbered zero is the whole command.
                        inv.cmds = vec![Cmd::ZeroNum];
                    }
                }
            }
            Cmd::Flush | Cmd::DeleteChain => {
                if let Some(ch) = attached.or_else(|| next_arg(c)) {
                    inv.chain = Some(ch);
                }
            }
            Cmd::Policy => {
                inv.chain = Some(required(c, attached, "P")?);
                inv.arg = Some(next_arg(c).ok_or("-P requires a chain and a policy")?);
            }
            Cmd::Rename => {
                inv.chain = Some(required(c, attached, "E")?);
                let new = next_arg(c).ok_or("-E requires old-chain-name and new-chain-name")?;
                valid_new_name(&new)?;
                inv.arg = Some(new);
            }
            Cmd::DeleteNum | Cmd::ZeroNum => {}
        }
        return Ok(());
    }
    if bang && !matches!(ch, 'v' | 'n' | 'x') {
        return Err(format!("cannot have ! before -{ch}"));
    }
    match ch {
        't' => {
            let t = required(c, attached, "t")?;
            if inv.table.is_some() {
                return Err("multiple -t flags not allowed".into());
            }
            inv.table = Some(TableKind::from_name(&t).ok_or_else(|| {
                format!(
                    "can't initialize {} table `{t}': Table does not exist (do you need to insmod?)",
                    tool(inv.family)
                )
            })?);
        }
        'v' => inv.verbose = true,
        'n' => inv.numeric = true,
        'x' => inv.exact = true,
        'w' => {
            // The router serialises changes itself: waiting for a lock is never needed.
            if attached.is_none() {
                let _ = next_arg(c);
            }
        }
        'W' => {
            required(c, attached, "W")?;
        }
        // xshared.c: `-4` to ip6tables and `-6` to iptables are parameter problems.
        '4' if inv.family == Family::V6 => return Err("This is the IPv6 version of ip6tables.".into()),
        '6' if inv.family == Family::V4 => return Err("This is the IPv4 version of iptables.".into()),
        '4' | '6' => {}
        _ => return Err(format!("unknown option \"-{ch}\"")),
    }
    Ok(())
}

/// `assert_valid_chain_name`.
fn valid_new_name(name: &str) -> Result<(), String> {
    if name.len() >= 29 {
        return Err(format!("chain name `{name}' too long (must be under 29 chars)"));
    }
    if let Some(c) = name.chars().next().filter(|c| matches!(c, '-' | '!')) {
        return Err(format!("chain name not allowed to start with `{c}'"));
    }
    let is_target = !matches!(
        crate::ruleset::targets::PartialTarget::start(name),
        Ok(crate::ruleset::targets::PartialTarget::Plain(Target::Jump(_)))
    );
    if is_target {
        return Err("chain name may not clash with target name".into());
    }
    if name.contains(char::is_whitespace) || name.is_empty() {
        return Err(format!("Invalid chain name `{name}'"));
    }
    check_chain_name(name)
}

/// Runs one `iptables` command line against the live state.
pub fn run(args: &[String], live: &dyn Live) -> Output {
    let family = live.family();
    let (mut inv, rules) = match parse(args, family) {
        Ok(p) => p,
        Err(m) if m.starts_with("can't initialize") => {
            return Output::fail(
                exit::VERSION,
                format!(
                    "{}: {m}\nPerhaps {} or your kernel needs to be upgraded.",
                    prog(family),
                    tool(family)
                ),
            )
        }
        Err(m) => return usage_error(family, &m),
    };
    inv.family = family;
    let Some(main) = inv.main() else {
        return usage_error(family, "no command specified");
    };
    // Options only some commands take (`generic_opt_check`).
    if let Some(w) = &inv.spec_word {
        if !(main.takes_rule() || matches!(main, Cmd::Policy) && inv.counters) {
            return usage_error(family, &format!("Illegal option `{w}' with this command"));
        }
        if main == Cmd::Check && inv.counters {
            return usage_error(family, "Illegal option `--set-counters' with this command");
        }
    }
    for (flag, set, ok) in [
        ("--numeric", inv.numeric, matches!(main, Cmd::List)),
        ("--exact", inv.exact, matches!(main, Cmd::List)),
        ("--line-numbers", inv.line_numbers, matches!(main, Cmd::List)),
    ] {
        if set && !ok {
            return usage_error(family, &format!("Illegal option `{flag}' with this command"));
        }
    }
    if main == Cmd::Replace && rules.len() != 1 {
        return usage_error(family, "Replacement rule does not specify a unique address");
    }
    if matches!(main, Cmd::Insert | Cmd::Check | Cmd::Delete) && rules.is_empty() {
        return usage_error(family, "no rule given");
    }
    let kind = inv.table.unwrap_or(TableKind::Filter);
    let mut rs = live.ruleset();
    // Reading commands see a table no one has touched as netfilter creates it.
    let view = rs.table(kind).cloned().unwrap_or_else(|| Table::new(kind));
    let chain = inv.chain.clone();
    let mut out = Output::default();
    let verbose_rules = |out: &mut Output, rules: &[Rule]| {
        if inv.verbose {
            for r in rules {
                out.stdout.push_str(&list::print_rule(r, family));
            }
        }
    };
    match main {
        Cmd::List | Cmd::ListRules => {
            if let Some(name) = &chain {
                if !view.has_chain(name) {
                    return op_error(family, NO_CHAIN);
                }
            }
            let opts = list::Format {
                verbose: inv.verbose,
                numeric: inv.numeric,
                exact: inv.exact,
                line_numbers: inv.line_numbers,
                family: rs.family,
            };
            out.stdout = if main == Cmd::List {
                list::list(&view, chain.as_deref(), inv.rulenum, &opts)
            } else {
                list::list_rules(&view, chain.as_deref(), inv.rulenum, inv.verbose)
            };
            if inv.has(Cmd::Zero) {
                zero(&view, chain.as_deref(), None, inv.verbose, &mut out);
            }
            out
        }
        Cmd::Zero | Cmd::ZeroNum => {
            if let Some(name) = &chain {
                let Some(c) = view.chain(name) else {
                    return op_error(family, NO_CHAIN);
                };
                if inv.rulenum.is_some_and(|n| n > c.rules.len()) {
                    return op_error(family, "Index of deletion too big");
                }
            }
            zero(&view, chain.as_deref(), inv.rulenum, inv.verbose, &mut out);
            out
        }
        Cmd::Check => {
            // A jump to a chain that does not exist is a usage error, as for the changes.
            for r in &rules {
                if let Target::Jump(j) | Target::Goto(j) = &r.target {
                    if view.chain(j).is_none() {
                        return usage_error(family, &format!("Chain '{j}' does not exist"));
                    }
                }
            }
            let Some(c) = view.chain(chain.as_deref().unwrap_or_default()) else {
                return op_error(family, NO_CHAIN);
            };
            if !rules.iter().all(|r| position_of(&c.rules, r).is_some()) {
                return op_error(family, BAD_RULE);
            }
            verbose_rules(&mut out, &rules);
            out
        }
        _ => {
            let t = rs.table_mut(kind);
            if let Err(o) = change(t, main, &inv, rules, &mut out) {
                return o;
            }
            if let Err(e) = live.commit(rs) {
                return op_error(family, &e);
            }
            out
        }
    }
}

/// Zeroes counters in place: every chain, one chain, or one rule. The counters are the live
/// ones, so nothing needs swapping.
fn zero(t: &Table, chain: Option<&str>, rulenum: Option<usize>, verbose: bool, out: &mut Output) {
    let chains: Vec<&crate::ruleset::Chain> = match chain {
        Some(n) => t.chain(n).into_iter().collect(),
        None => t.chains().collect(),
    };
    for c in chains {
        let z = |k: &Counter| {
            k.packets.store(0, Ordering::Relaxed);
            k.bytes.store(0, Ordering::Relaxed);
        };
        match rulenum {
            Some(n) => {
                if let Some(r) = c.rules.get(n - 1) {
                    z(&r.counter);
                }
            }
            None => {
                if verbose {
                    out.stdout.push_str(&format!("Zeroing chain `{}'\n", c.name));
                }
                z(&c.counter);
                c.rules.iter().for_each(|r| z(&r.counter));
            }
        }
    }
}

/// Applies a changing command to the table.
fn change(t: &mut Table, cmd: Cmd, inv: &Invocation, rules: Vec<Rule>, out: &mut Output) -> Result<(), Output> {
    let family = inv.family;
    let name = inv.chain.clone().unwrap_or_default();
    // A jump to a chain that does not exist is a usage error, as in iptables.
    for r in &rules {
        if let Target::Jump(j) | Target::Goto(j) = &r.target {
            match t.chain(j) {
                None => return Err(usage_error(family, &format!("Chain '{j}' does not exist"))),
                Some(c) if c.policy.is_some() => {
                    return Err(usage_error(
                        family,
                        &format!("Chain '{j}' is a built-in chain: jumps to it are not allowed"),
                    ))
                }
                Some(_) => {}
            }
        }
    }
    let print = |out: &mut Output, rules: &[Rule]| {
        if inv.verbose {
            for r in rules {
                out.stdout.push_str(&super::list::print_rule(r, inv.family));
            }
        }
    };
    match cmd {
        Cmd::Append | Cmd::Insert | Cmd::Replace | Cmd::Delete | Cmd::DeleteNum => {
            let chain = &mut t.chain_mut(&name).ok_or_else(|| op_error(family, NO_CHAIN))?.rules;
            match cmd {
                Cmd::Append => {
                    print(out, &rules);
                    chain.extend(rules.into_iter().map(RuleRef::new));
                }
                Cmd::Insert => {
                    let at = inv.rulenum.unwrap_or(1);
                    if at > chain.len() + 1 {
                        return Err(op_error(family, "Index of insertion too big"));
                    }
                    print(out, &rules);
                    chain.splice(at - 1..at - 1, rules.into_iter().map(RuleRef::new));
                }
                Cmd::Replace => {
                    let n = inv.rulenum.unwrap_or(0);
                    if n == 0 || n > chain.len() {
                        return Err(op_error(family, "Index of replacement too big"));
                    }
                    print(out, &rules);
                    chain.set(
                        n - 1,
                        RuleRef::new(rules.into_iter().next().expect("one rule, checked")),
                    );
                }
                Cmd::DeleteNum => {
                    let n = inv.rulenum.unwrap_or(0);
                    if n == 0 || n > chain.len() {
                        return Err(op_error(family, "Index of deletion too big"));
                    }
                    chain.remove(n - 1);
                }
                _ => {
                    for r in &rules {
                        let at = position_of(chain, r).ok_or_else(|| op_error(family, BAD_RULE))?;
                        chain.remove(at);
                    }
                    print(out, &rules);
                }
            }
        }
        Cmd::Flush => {
            let verbose = |out: &mut Output, n: &str| {
                if inv.verbose {
                    out.stdout.push_str(&format!("Flushing chain `{n}'\n"));
                }
            };
            match &inv.chain {
                Some(n) => {
                    let c = t.chain_mut(n).ok_or_else(|| op_error(family, NO_CHAIN))?;
                    verbose(out, n);
                    c.rules.clear();
                }
                None => {
                    for n in t.chain_names() {
                        verbose(out, &n);
                        if t.chain(&n).is_some_and(|c| !c.rules.is_empty()) {
                            t.chain_mut(&n).expect("listed").rules.clear();
                        }
                    }
                }
            }
        }
        Cmd::NewChain => {
            if t.has_chain(&name) || Hook::from_chain_name(&name).is_some() {
                return Err(op_error(family, "Chain already exists"));
            }
            check_chain_name(&name).map_err(|m| usage_error(family, &m))?;
            t.add_user_chain(&name);
        }
        Cmd::DeleteChain => {
            let victims: Vec<String> = match &inv.chain {
                Some(n) => {
                    let c = t.chain(n).ok_or_else(|| op_error(family, NO_CHAIN))?;
                    if c.policy.is_some() {
                        return Err(op_error(family, "Can't delete built-in chain"));
                    }
                    vec![n.clone()]
                }
                None => t.user_chains().keys().cloned().collect(),
            };
            if victims.iter().any(|n| t.chain(n).is_some_and(|c| !c.rules.is_empty())) {
                return Err(op_error(family, "Directory not empty"));
            }
            // One still jumped to is refused when the change is validated (exit status 1), as
            // the kernel refuses it at commit.
            for n in &victims {
                if inv.verbose {
                    out.stdout.push_str(&format!("Deleting chain `{n}'\n"));
                }
                t.remove_user_chain(n);
            }
        }
        Cmd::Policy => {
            let p = match inv.arg.as_deref() {
                Some("ACCEPT") => Policy::Accept,
                Some("DROP") => Policy::Drop,
                _ => None.ok_or_else(|| op_error(family, "Bad policy name"))?,
            };
            let c = t
                .chain_mut(&name)
                .filter(|c| c.policy.is_some())
                .ok_or_else(|| op_error(family, "Bad built-in chain name"))?;
            c.policy = Some(p);
        }
        Cmd::Rename => {
            let new = inv.arg.clone().unwrap_or_default();
            // The new name is looked at first: `-E gone existing` says it exists.
            if t.has_chain(&new) {
                return Err(op_error(family, "File exists"));
            }
            let c = t.chain(&name).ok_or_else(|| op_error(family, NO_CHAIN))?;
            if c.policy.is_some() {
                return Err(op_error(family, "Invalid argument"));
            }
            check_chain_name(&new).map_err(|m| usage_error(family, &m))?;
            crate::ruleset::restore::rename_chain(t, &name, &new);
        }
        Cmd::Check | Cmd::List | Cmd::ListRules | Cmd::Zero | Cmd::ZeroNum => {}
    }
    Ok(())
}

/// Whether `rs` holds nothing at all (the state of a fresh network namespace).
pub fn is_empty(rs: &Ruleset) -> bool {
    rs.tables.iter().all(Option::is_none)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<(Invocation, Vec<Rule>), String> {
        let args: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        parse(&args, Family::V4)
    }

    #[test]
    fn commands_and_their_arguments() {
        let (i, r) = p("-t nat -A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE").unwrap();
        assert_eq!(i.cmds, vec![Cmd::Append]);
        assert_eq!(i.table, Some(TableKind::Nat));
        assert_eq!(i.chain.as_deref(), Some("POSTROUTING"));
        assert_eq!(r.len(), 1);
        let (i, _) = p("-w 5 -S POSTROUTING -t nat").unwrap();
        assert_eq!(i.cmds, vec![Cmd::ListRules]);
        let (i, _) = p("-nvL INPUT 2").unwrap();
        assert!(i.numeric && i.verbose);
        assert_eq!((i.chain.as_deref(), i.rulenum), (Some("INPUT"), Some(2)));
        let (i, _) = p("-L -Z FORWARD 1").unwrap();
        assert_eq!(i.cmds, vec![Cmd::ZeroNum]);
        let (i, _) = p("-Z -L FORWARD 1").unwrap();
        assert_eq!(i.cmds, vec![Cmd::Zero, Cmd::List]);
        let (i, _) = p("-D FORWARD 3").unwrap();
        assert_eq!((i.cmds[0], i.rulenum), (Cmd::DeleteNum, Some(3)));
        // Options after the target, and a value that looks like a command.
        let (i, r) = p("-A ufw-x -j LOG --log-prefix -L -m limit --limit 3/min").unwrap();
        assert_eq!(i.cmds, vec![Cmd::Append]);
        assert_eq!(r[0].matches.len(), 1);
        assert!(p("-A INPUT -D INPUT").unwrap_err().contains("Cannot use -D with -A"));
        assert!(p("-S FORWARD 0").unwrap_err().contains("Invalid rule number `0'"));
        assert!(p("-Q").unwrap_err().contains("unknown option \"-Q\""));
        assert!(p("-w2 -L -n").is_ok());
    }
}
