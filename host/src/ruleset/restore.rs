//! The iptables-restore language: `*table`, `:CHAIN POLICY [p:b]`, rule commands, `COMMIT`.
//!
//! A script is applied to a copy of the current ruleset and the copy is returned only if every
//! line was good, so a bad script changes nothing. Without `noflush`, a `*table` section
//! replaces that table: its chains are flushed and its user chains deleted before the section's
//! lines apply, as iptables-restore does; tables the script does not name are kept.

use super::ext::{resolve_long, Resolved, RuleError};
use super::lex::{tokenize, Token};
use super::rule::{parse_rule, Loc, OWN_OPTIONS};
use super::targets::Target;
use super::{Counter, Error, Errors, Hook, Policy, Ruleset, Table, TableKind};
use std::sync::Arc;

/// A table being restored: a copy of the table (O(1), see [`Table`]) that the section's lines
/// change and that replaces the table at `COMMIT`.
#[derive(Debug)]
struct Open {
    table: Table,
    family: super::Family,
    /// Rules appended to a chain and not yet put in the table: a run of `-A` lines to one
    /// chain (kube-proxy sends 100,000 to KUBE-SERVICES) finds and copies the chain once.
    pending: Option<(String, Vec<super::RuleRef>)>,
}

impl Open {
    /// Puts the pending appended rules in their chain; every other use of the table comes
    /// after this.
    fn settle(&mut self) {
        if let Some((name, rules)) = self.pending.take() {
            self.chain(&name).rules.extend(rules);
        }
    }

    fn find(&self, name: &str) -> bool {
        self.table.has_chain(name)
    }

    fn chain(&mut self, name: &str) -> &mut super::Chain {
        self.table.chain_mut(name).expect("looked up before")
    }
}

/// The most errors collected from one input before giving up on it.
const MAX_ERRORS: usize = 100;

/// How a restore applies (iptables-restore's options).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `--noflush`: tables named in the input keep their chains and rules; `:CHAIN` lines
    /// still create or flush the chains they name.
    pub noflush: bool,
    /// `--counters`: `[packets:bytes]` in front of rules and on built-in chains set their
    /// counters; without it they are read and ignored. (`-c P B` inside a rule always counts.)
    pub counters: bool,
    /// `--table`: only this table's sections apply; the others are skipped unread.
    pub only: Option<TableKind>,
    /// The line of `file` the text starts on (rules written inside a config).
    pub first_line: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            noflush: false,
            counters: true,
            only: None,
            first_line: 1,
        }
    }
}

/// Applies the iptables-restore `text` (named `file` in errors) to `base`, honouring counters.
pub fn restore(base: &Ruleset, text: &str, file: &str, noflush: bool) -> Result<Ruleset, Errors> {
    restore_with(
        base,
        text,
        file,
        &Options {
            noflush,
            ..Options::default()
        },
    )
}

/// As [`restore`], for text that starts on line `first_line` of `file` (rules written inside
/// a config): errors and the rules' places count from there.
pub fn restore_at(base: &Ruleset, text: &str, file: &str, noflush: bool, first_line: u32) -> Result<Ruleset, Errors> {
    let o = Options {
        noflush,
        first_line,
        ..Options::default()
    };
    restore_with(base, text, file, &o)
}

/// Applies the iptables-restore `text` to `base` as `opts` say: all of it, or nothing (the
/// errors of every bad line).
pub fn restore_with(base: &Ruleset, text: &str, file: &str, opts: &Options) -> Result<Ruleset, Errors> {
    let (noflush, first_line) = (opts.noflush, opts.first_line);
    // A lone CR ends a line too (old Mac line endings), as an editor shows such a file;
    // otherwise the whole file would be one line, and a comment if it starts with `#`.
    let normalized;
    let text = if text.contains('\r') {
        normalized = text.replace("\r\n", "\n").replace('\r', "\n");
        normalized.as_str()
    } else {
        text
    };
    let file: Arc<str> = Arc::from(file);
    let mut out = base.clone();
    let mut errors = Vec::new();
    // The table being built, with the line of its `*table`.
    let mut open: Option<(Open, u32, bool)> = None;
    let mut last_line = 0;
    let mut gave_up = false;
    // Inside a section `--table` leaves out: its lines are skipped up to its COMMIT.
    let mut skipping = false;
    for (i, raw) in text.lines().enumerate() {
        let line = first_line + i as u32;
        last_line = line;
        if errors.len() >= MAX_ERRORS {
            gave_up = true;
            errors.push(Error {
                file: file.clone(),
                line,
                col: 1,
                token: String::new(),
                msg: format!("too many errors: stopped reading here, after {MAX_ERRORS}"),
            });
            break;
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if skipping {
            skipping = trimmed != "COMMIT";
            continue;
        }
        let err = |col: usize, token: &str, msg: String| Error {
            file: file.clone(),
            line,
            col: col as u32,
            token: token.to_string(),
            msg,
        };
        let toks = match tokenize(raw) {
            Ok(t) => t,
            Err(q) => {
                errors.push(err(q.col, "\"", "unterminated quote".into()));
                continue;
            }
        };
        let first = &toks[0];
        // `*mangle`, or `* mangle`: iptables-restore takes the table name with strtok, so
        // blanks after the `*` do not matter.
        let (table_word, table_extra) = if first.text == "*" && toks.len() > 1 {
            (Some(toks[1].text.as_str()), 2)
        } else {
            (first.text.strip_prefix('*'), 1)
        };
        if let Some(name) = table_word {
            if let Some((t, l, _)) = &open {
                errors.push(err(
                    first.col,
                    &first.text,
                    format!("table `{}' (line {l}) was not committed before this line", t.table.kind),
                ));
            }
            let Some(kind) = TableKind::from_name(name) else {
                errors.push(err(
                    first.col,
                    &first.text,
                    format!("unknown table `{name}' (expected raw, mangle, nat, filter or security)"),
                ));
                open = None;
                continue;
            };
            if let Some(t) = toks.get(table_extra) {
                errors.push(err(t.col, &t.text, "unexpected word after the table name".into()));
            }
            if opts.only.is_some_and(|o| o != kind) {
                skipping = true;
                open = None;
                continue;
            }
            let table = if noflush {
                out.table(kind).cloned().unwrap_or_else(|| Table::new(kind))
            } else {
                // Flush: keep the built-ins' policies, drop every rule and user chain.
                let mut t = Table::new(kind);
                if let Some(old) = out.table(kind) {
                    t.for_each_chain_mut(|c| {
                        if let Some(o) = old.chain(&c.name) {
                            c.policy = o.policy;
                            c.counter = o.counter.clone();
                        }
                    });
                }
                t
            };
            open = Some((
                Open {
                    table,
                    family: base.family,
                    pending: None,
                },
                line,
                true,
            ));
            continue;
        }
        let Some((table, _, ok)) = open.as_mut() else {
            errors.push(err(
                first.col,
                &first.text,
                "no table specified: expected `*raw', `*mangle', `*nat' or `*filter' first".into(),
            ));
            continue;
        };
        if first.text == "COMMIT" {
            if let Some((mut t, _, true)) = open.take() {
                t.settle();
                let kind = t.table.kind;
                out.tables[kind.index()] = Some(t.table);
            }
            continue;
        }
        // `-4 RULE` is RULE for iptables-restore and skipped by ip6tables-restore; `-6` the
        // other way round (xshared.c: a restore ignores the other family's lines).
        let toks = match (first.text.as_str(), base.family) {
            ("-4", super::Family::V4) | ("-6", super::Family::V6) => &toks[1..],
            ("-4", super::Family::V6) | ("-6", super::Family::V4) => continue,
            _ => &toks[..],
        };
        if toks.is_empty() {
            continue;
        }
        let res = if let Some(decl) = toks[0].text.strip_prefix(':') {
            declare_chain(table, decl, toks, opts.counters)
        } else {
            command(table, toks, &file, line, opts.counters)
        };
        if let Err((idx, msg)) = res {
            *ok = false;
            let (col, token) = match toks.get(idx) {
                Some(t) => (t.col, t.text.as_str()),
                None => (raw.chars().count() + 1, ""),
            };
            errors.push(err(col, token, msg));
        }
    }
    if let Some((t, l, _)) = open.filter(|_| !gave_up) {
        errors.push(Error {
            file: file.clone(),
            line: last_line.max(l),
            col: 1,
            token: String::new(),
            msg: format!(
                "COMMIT expected: table `{}' opened on line {l} was never committed",
                t.table.kind
            ),
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Errors(errors))
    }
}

type LineResult = Result<(), (usize, String)>;

/// `:NAME POLICY [packets:bytes]`.
fn declare_chain(open: &mut Open, name: &str, toks: &[Token], set_counters: bool) -> LineResult {
    open.settle();
    let policy = toks
        .get(1)
        .map(|t| t.text.as_str())
        .ok_or((0, "chain declaration needs a policy (ACCEPT, DROP or -)".to_string()))?;
    let counters = match toks.get(2) {
        Some(t) => parse_counters(&t.text).ok_or((2, "bad counters, expected [packets:bytes]".to_string()))?,
        None => (0, 0),
    };
    if toks.len() > 3 {
        return Err((3, "unexpected word after the chain's counters".into()));
    }
    let builtin = Hook::from_chain_name(name).is_some_and(|h| open.table.kind.builtin_hooks().contains(&h));
    if builtin {
        let c = open.table.chain_mut(name).expect("built-in chains always exist");
        if set_counters && toks.get(2).is_some() {
            c.counter = Counter::starting(counters.0, counters.1);
        }
        match policy {
            "ACCEPT" => c.policy = Some(Policy::Accept),
            "DROP" => c.policy = Some(Policy::Drop),
            "-" => {}
            _ => return Err((1, format!("bad policy `{policy}' (expected ACCEPT, DROP or -)"))),
        }
        return Ok(());
    }
    if policy != "-" {
        return Err((
            1,
            format!("can't set policy `{policy}' on user chain `{name}': built-in chain policy only"),
        ));
    }
    check_chain_name(name).map_err(|m| (0, m))?;
    if open.find(name) {
        open.chain(name).rules.clear();
    } else {
        // User chains have no counters of their own: `[p:b]` is read and ignored, as by
        // iptables-restore.
        open.table.add_user_chain(name);
    }
    Ok(())
}

/// Renames a user chain and every jump to it (the kernel refers to chains by position, so
/// its rules follow a rename).
pub fn rename_chain(t: &mut Table, old: &str, new: &str) {
    let Some(chain) = t.remove_user_chain(old) else { return };
    let mut chain = Arc::unwrap_or_clone(chain);
    chain.name = new.to_string();
    t.insert_user_chain(chain);
    let jumps_to_old = |c: &super::Chain| {
        c.rules
            .iter()
            .any(|r| matches!(&r.target, Target::Jump(j) | Target::Goto(j) if j == old))
    };
    let names: Vec<String> = t.chains().filter(|c| jumps_to_old(c)).map(|c| c.name.clone()).collect();
    for n in names {
        if let Some(c) = t.chain_mut(&n) {
            for r in &mut c.rules {
                if matches!(&r.target, Target::Jump(j) | Target::Goto(j) if j == old) {
                    r.update(|r| {
                        if let Target::Jump(j) | Target::Goto(j) = &mut r.target {
                            *j = new.to_string();
                        }
                    });
                }
            }
        }
    }
}

fn parse_counters(s: &str) -> Option<(u64, u64)> {
    let (p, b) = s.strip_prefix('[')?.strip_suffix(']')?.split_once(':')?;
    Some((p.parse().ok()?, b.parse().ok()?))
}

/// Names netfilter allows for user chains.
pub fn check_chain_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 28 {
        return Err(format!("chain name `{name}' must be 1 to 28 characters"));
    }
    // A quote or a control character could not be read back from iptables-save output.
    if name.starts_with(['-', '!', '#']) || name.contains(|c: char| c.is_whitespace() || c.is_control() || c == '"') {
        return Err(format!("invalid chain name `{name}'"));
    }
    if matches!(name, "ACCEPT" | "DROP" | "RETURN" | "QUEUE") || Hook::from_chain_name(name).is_some() {
        return Err(format!("chain name `{name}' is reserved"));
    }
    Ok(())
}

/// One rule command line: `[p:b] -A CHAIN rule…`, `-I`, `-D`, `-R`, `-N`, `-X`, `-F`, `-Z`,
/// `-P`, `-E`.
fn command(open: &mut Open, toks: &[Token], file: &Arc<str>, line: u32, set_counters: bool) -> LineResult {
    let mut i = 0;
    let mut counters = None;
    if toks[0].text.starts_with('[') {
        counters =
            Some(parse_counters(&toks[0].text).ok_or((0, "bad counters, expected [packets:bytes]".to_string()))?);
        i = 1;
    }
    let cmd = toks
        .get(i)
        .ok_or((i, "a command is required after the counters".to_string()))?;
    let cmd_idx = i;
    let chain_arg = |j: usize| toks.get(j).map(|t| t.text.as_str());
    let need_chain = |j: usize| -> Result<&str, (usize, String)> {
        chain_arg(j).ok_or((cmd_idx, format!("{} needs a chain name", cmd.text)))
    };
    let existing = |o: &Open, j: usize| -> Result<String, (usize, String)> {
        let name = need_chain(j)?;
        if o.find(name) {
            Ok(name.to_string())
        } else {
            Err((j, format!("chain `{name}' does not exist")))
        }
    };
    let loc = Loc {
        file: file.clone(),
        line,
        col: cmd.col as u32,
        target_col: cmd.col as u32,
    };
    let family = open.family;
    let rules = |start: usize| -> Result<Vec<super::Rule>, (usize, String)> {
        let mut rs = parse_rule(toks, start, loc.clone(), family).map_err(|RuleError { at, msg }| (at, msg))?;
        if let Some((p, b)) = counters.filter(|_| set_counters) {
            for r in &mut rs {
                r.counter = Counter::starting(p, b);
            }
        }
        Ok(rs)
    };
    let no_more = |j: usize| -> LineResult {
        match toks.get(j) {
            Some(_) => Err((j, "unexpected word".into())),
            None => Ok(()),
        }
    };
    let position = |j: usize| -> Option<usize> { chain_arg(j).and_then(|s| s.parse::<usize>().ok()) };
    // `--app` for `--append`: getopt_long's abbreviations among iptables' own options.
    let spelled = match cmd.text.strip_prefix("--") {
        Some(name) => match resolve_long(name, &[((), OWN_OPTIONS)]) {
            Resolved::Found((), full) => format!("--{full}"),
            Resolved::Ambiguous(names) => {
                let names: Vec<String> = names.iter().map(|n| format!("`--{n}'")).collect();
                return Err((
                    cmd_idx,
                    format!("option `--{name}' is ambiguous; possibilities: {}", names.join(" ")),
                ));
            }
            Resolved::Unknown => cmd.text.clone(),
        },
        None => cmd.text.clone(),
    };
    // An append to the chain the pending rules wait for continues the run; anything else
    // puts them in the table first.
    let continues = matches!(spelled.as_str(), "-A" | "--append")
        && open
            .pending
            .as_ref()
            .is_some_and(|(p, _)| Some(p.as_str()) == chain_arg(i + 1));
    if !continues {
        open.settle();
    }
    match spelled.as_str() {
        "-A" | "--append" => {
            if continues {
                let rs = rules(i + 2)?;
                if let Some((_, pending)) = &mut open.pending {
                    pending.extend(rs.into_iter().map(super::RuleRef::new));
                }
            } else {
                let c = existing(open, i + 1)?;
                let rs = rules(i + 2)?;
                open.pending = Some((c, rs.into_iter().map(super::RuleRef::new).collect()));
            }
        }
        "-I" | "--insert" => {
            let c = existing(open, i + 1)?;
            let (at, start) = match position(i + 2) {
                Some(n) => (n, i + 3),
                None => (1, i + 2),
            };
            let len = open.table.chain(&c).map_or(0, |c| c.rules.len());
            if at == 0 || at > len + 1 {
                return Err((i + 2, format!("index of insertion too big (chain has {len} rules)")));
            }
            let rs = rules(start)?;
            open.chain(&c)
                .rules
                .splice(at - 1..at - 1, rs.into_iter().map(super::RuleRef::new));
        }
        "-R" | "--replace" => {
            let c = existing(open, i + 1)?;
            let n = position(i + 2).ok_or((i + 2, "-R needs a rule number".to_string()))?;
            let len = open.table.chain(&c).map_or(0, |c| c.rules.len());
            if n == 0 || n > len {
                return Err((i + 2, format!("index of replacement too big (chain has {len} rules)")));
            }
            let mut rs = rules(i + 3)?;
            if rs.len() != 1 {
                return Err((i + 3, "-R takes a rule with one source and one destination".into()));
            }
            open.chain(&c).rules.set(n - 1, super::RuleRef::new(rs.remove(0)));
        }
        "-D" | "--delete" => {
            let c = existing(open, i + 1)?;
            if let Some(n) = position(i + 2) {
                no_more(i + 3)?;
                let len = open.table.chain(&c).map_or(0, |c| c.rules.len());
                if n == 0 || n > len {
                    return Err((i + 2, format!("index of deletion too big (chain has {len} rules)")));
                }
                open.chain(&c).rules.remove(n - 1);
            } else {
                for r in rules(i + 2)? {
                    let pos = open.table.chain(&c).and_then(|ch| super::position_of(&ch.rules, &r));
                    let pos = pos.ok_or((
                        i + 2,
                        "bad rule (does a matching rule exist in that chain?)".to_string(),
                    ))?;
                    open.chain(&c).rules.remove(pos);
                }
            }
        }
        "-N" | "--new-chain" => {
            let name = need_chain(i + 1)?;
            no_more(i + 2)?;
            check_chain_name(name).map_err(|m| (i + 1, m))?;
            if open.find(name) {
                return Err((i + 1, format!("chain `{name}' already exists")));
            }
            open.table.add_user_chain(name);
        }
        "-X" | "--delete-chain" => {
            no_more(i + 2)?;
            let victims: Vec<String> = match chain_arg(i + 1) {
                Some(_) => {
                    let c = existing(open, i + 1)?;
                    if open.table.chain(&c).is_some_and(|c| c.policy.is_some()) {
                        return Err((i + 1, "can't delete a built-in chain".into()));
                    }
                    vec![c]
                }
                None => open.table.user_chains().keys().cloned().collect(),
            };
            for name in &victims {
                let ch = open.table.chain(name).expect("listed above");
                if !ch.rules.is_empty() && victims.len() == 1 {
                    return Err((i + 1, format!("chain `{name}' is not empty: flush it first")));
                }
            }
            // A victim something still jumps to is refused by validation, which names the
            // rule that jumps (looking here would cost a pass over every rule of the table).
            for name in &victims {
                open.table.remove_user_chain(name);
            }
        }
        "-F" | "--flush" | "-Z" | "--zero" => {
            no_more(i + 2)?;
            let flush = spelled.starts_with("-F") || spelled == "--flush";
            let zero = |ch: &mut super::Chain| {
                if flush {
                    ch.rules.clear();
                } else {
                    // Fresh counters, not the live ones zeroed: nothing changes unless the
                    // whole input applies.
                    ch.counter = Counter::fresh();
                    ch.rules
                        .iter_mut()
                        .for_each(|r| r.update(|r| r.counter = Counter::fresh()));
                }
            };
            match chain_arg(i + 1) {
                Some(_) => {
                    let c = existing(open, i + 1)?;
                    zero(open.chain(&c));
                }
                None => open.table.for_each_chain_mut(zero),
            }
        }
        "-P" | "--policy" => {
            let c = existing(open, i + 1)?;
            no_more(i + 3)?;
            if open.table.chain(&c).is_some_and(|c| c.policy.is_none()) {
                return Err((i + 1, "only built-in chains have a policy".into()));
            }
            let p = match chain_arg(i + 2) {
                Some("ACCEPT") => Policy::Accept,
                Some("DROP") => Policy::Drop,
                _ => return Err((i + 2, "bad policy (expected ACCEPT or DROP)".into())),
            };
            open.chain(&c).policy = Some(p);
        }
        "-E" | "--rename-chain" => {
            let c = existing(open, i + 1)?;
            let new = chain_arg(i + 2).ok_or((i + 1, "-E needs the old and the new name".to_string()))?;
            no_more(i + 3)?;
            if open.table.chain(&c).is_some_and(|c| c.policy.is_some()) {
                return Err((i + 1, "can't rename a built-in chain".into()));
            }
            check_chain_name(new).map_err(|m| (i + 2, m))?;
            if open.find(new) {
                return Err((i + 2, format!("chain `{new}' already exists")));
            }
            rename_chain(&mut open.table, &c, new);
        }
        "-t" | "--table" => {
            return Err((
                i,
                "-t is not allowed in iptables-restore input: use a `*table' line".into(),
            ))
        }
        other => {
            return Err((
                i,
                format!("unknown command `{other}' (expected -A, -I, -D, -R, -N, -X, -F, -Z, -P or -E)"),
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_appends_interleave_with_every_other_command_in_order() {
        let text = "*filter\n:X - [0:0]\n:Y - [0:0]\n\
            -A X -p tcp -j ACCEPT\n-A X -p udp -j ACCEPT\n-A Y -j DROP\n-A X -p icmp -j ACCEPT\n\
            -I X 2 -p sctp -j ACCEPT\n-A X -p gre -j ACCEPT\n-D X 1\n-A X -j RETURN\n\
            -A Y -j ACCEPT\n:Y - [0:0]\n-A Y -j REJECT\n-A INPUT -j X\nCOMMIT\n";
        let rs = restore(&Ruleset::default(), text, "t", false).unwrap();
        let saved = rs.save(false);
        let rules: Vec<&str> = saved.lines().filter(|l| l.starts_with("-A")).collect();
        assert_eq!(
            rules,
            [
                "-A INPUT -j X",
                "-A X -p sctp -j ACCEPT",
                "-A X -p udp -j ACCEPT",
                "-A X -p icmp -j ACCEPT",
                "-A X -p gre -j ACCEPT",
                "-A X -j RETURN",
                "-A Y -j REJECT --reject-with icmp-port-unreachable",
            ]
        );
        // An append to a chain deleted meanwhile fails as it would without the run.
        let text = "*filter\n:X - [0:0]\n-A X -j ACCEPT\n-X X\n-A X -j DROP\nCOMMIT\n";
        assert!(restore(&Ruleset::default(), text, "t", false).is_err());
    }

    #[test]
    fn a_blank_after_the_table_star_is_allowed() {
        let rs = restore(
            &Ruleset::default(),
            "* mangle\n-A PREROUTING -j ACCEPT\nCOMMIT\n",
            "t",
            false,
        )
        .unwrap();
        assert_eq!(
            rs.table(TableKind::Mangle)
                .unwrap()
                .chain("PREROUTING")
                .unwrap()
                .rules
                .len(),
            1
        );
        assert!(restore(&Ruleset::default(), "* mangle extra\nCOMMIT\n", "t", false).is_err());
    }

    #[test]
    fn commands_and_options_abbreviate_as_getopt_long_allows() {
        let rs = restore(
            &Ruleset::default(),
            "*filter\n--new X\n--app X --proto tcp -m multiport --dport 1,2 --jum ACCEPT\n--app X -p tcp --sp 7 -j DROP\n\
             --pol INPUT DROP\nCOMMIT\n",
            "t",
            false,
        )
        .unwrap();
        let saved = rs.save(false);
        assert!(
            saved.contains("-A X -p tcp -m multiport --dports 1,2 -j ACCEPT\n-A X -p tcp -m tcp --sport 7 -j DROP"),
            "{saved}"
        );
        assert!(saved.contains(":INPUT DROP"), "{saved}");
        let e = restore(&Ruleset::default(), "*filter\n--de X\nCOMMIT\n", "t", false).unwrap_err();
        assert!(
            e.to_string()
                .contains("possibilities: `--delete' `--delete-chain' `--destination'"),
            "{e}"
        );
    }

    #[test]
    fn single_quotes_are_kept_as_iptables_restore_keeps_them() {
        let rs = restore(
            &Ruleset::default(),
            "*filter\n-A INPUT -m comment --comment 'x' -j ACCEPT\nCOMMIT\n",
            "t",
            false,
        )
        .unwrap();
        let saved = rs.save(false);
        assert!(
            // As the real iptables-save (1.8.9) prints it.
            saved.contains(r#"-A INPUT -m comment --comment "\'x\'" -j ACCEPT"#),
            "{saved}"
        );
        // `'two words'` is two words: the second is refused.
        let e = restore(
            &Ruleset::default(),
            "*filter\n-A INPUT -m comment --comment 'two words' -j ACCEPT\nCOMMIT\n",
            "t",
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("words'"), "{e}");
    }

    #[test]
    fn after_too_many_errors_reading_stops_without_a_spurious_commit_error() {
        let mut text = String::from("*filter\n");
        for _ in 0..150 {
            text += "-A NOPE -j ACCEPT\n";
        }
        let e = restore(&Ruleset::default(), &text, "many", false).unwrap_err();
        assert_eq!(e.0.len(), MAX_ERRORS + 1);
        let last = e.0.last().unwrap();
        assert!(last.msg.contains("too many errors"), "{last}");
        assert_eq!(last.line, MAX_ERRORS as u32 + 2);
        assert!(!e.0.iter().any(|x| x.msg.contains("COMMIT")), "{e}");
    }

    #[test]
    fn long_tokens_are_cut_in_messages() {
        let name = "X".repeat(10 << 20);
        let e = restore(
            &Ruleset::default(),
            &format!("*filter\n-A INPUT -j ACCEPT {name}\nCOMMIT\n"),
            "big",
            false,
        )
        .unwrap_err();
        let shown = e.to_string();
        assert!(shown.len() < 1000, "{} bytes", shown.len());
        assert!(shown.contains("XXX…XXX"), "{}", &shown[..300.min(shown.len())]);
        assert!(shown.starts_with("big:2:20: bad argument `XXX"), "{shown}");
        assert_eq!(e.0[0].token.len(), 10 << 20, "the error keeps the whole token");
    }

    #[test]
    fn non_utf8_files_are_an_error_at_the_first_bad_byte() {
        let p = std::env::temp_dir().join(format!("rtrouter-utf8-{}.rules", std::process::id()));
        std::fs::write(
            &p,
            b"*filter\n-A INPUT -j ACCEPT\n-A INPUT -m comment --comment \"caf\xe9\" -j DROP\nCOMMIT\n",
        )
        .unwrap();
        let e = super::super::read_text(&p, "rules").unwrap_err();
        let _ = std::fs::remove_file(&p);
        assert_eq!((e.line, e.col, e.token.as_str()), (3, 35, "\\xe9"), "{e}");
        assert!(e.msg.contains("UTF-8"));
    }

    #[test]
    fn cr_only_line_endings_end_lines() {
        let rs = restore(
            &Ruleset::default(),
            "# a comment\r*filter\r:INPUT DROP [0:0]\r-A INPUT -j ACCEPT\rCOMMIT\r",
            "cr",
            false,
        )
        .unwrap();
        let t = rs.table(TableKind::Filter).unwrap();
        assert_eq!(t.chain("INPUT").unwrap().policy, Some(Policy::Drop));
        assert_eq!(t.chain("INPUT").unwrap().rules.len(), 1);
        // CRLF still works, and errors count CR-separated lines.
        assert!(restore(
            &Ruleset::default(),
            "*filter\r\n-A INPUT -j ACCEPT\r\nCOMMIT\r\n",
            "crlf",
            false
        )
        .is_ok());
        let e = restore(&Ruleset::default(), "*filter\r-A NOPE -j ACCEPT\rCOMMIT\r", "cr", false).unwrap_err();
        assert_eq!(e.0[0].line, 2, "{e}");
    }

    const GOOD: &str =
        "*filter\n:INPUT DROP [3:4]\n:FOO - [0:0]\n-A INPUT -j FOO\n-A FOO -p tcp --dport 22 -j ACCEPT\nCOMMIT\n";

    #[test]
    fn loads_and_saves() {
        let rs = restore(&Ruleset::default(), GOOD, "t", false).unwrap();
        let s = rs.save(false);
        assert!(s.contains(":INPUT DROP [3:4]\n"), "{s}");
        assert!(s.contains("-A FOO -p tcp -m tcp --dport 22 -j ACCEPT\n"), "{s}");
    }

    #[test]
    fn a_bad_line_changes_nothing_and_names_its_place() {
        let base = restore(&Ruleset::default(), GOOD, "t", false).unwrap();
        let bad = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 99999 -j ACCEPT\nCOMMIT\n";
        let e = restore(&base, bad, "bad.rules", false).unwrap_err();
        assert_eq!(e.0.len(), 1);
        let e = &e.0[0];
        assert_eq!(
            (&*e.file, e.line, e.col, e.token.as_str()),
            ("bad.rules", 3, 25, "99999")
        );
    }

    #[test]
    fn missing_commit_is_an_error() {
        let e = restore(&Ruleset::default(), "*nat\n-A PREROUTING -j ACCEPT\n", "t", false).unwrap_err();
        assert!(e.0[0].msg.contains("COMMIT"));
    }

    #[test]
    fn without_noflush_a_table_is_replaced() {
        let base = restore(&Ruleset::default(), GOOD, "t", false).unwrap();
        let rs = restore(&base, "*filter\n-A INPUT -j DROP\nCOMMIT\n", "t", false).unwrap();
        let f = rs.table(TableKind::Filter).unwrap();
        assert!(f.chain("FOO").is_none());
        assert_eq!(f.chain("INPUT").unwrap().policy, Some(Policy::Drop), "policy kept");
        let rs = restore(&base, "*filter\n-A INPUT -j DROP\nCOMMIT\n", "t", true).unwrap();
        assert_eq!(
            rs.table(TableKind::Filter).unwrap().chain("INPUT").unwrap().rules.len(),
            2
        );
    }

    #[test]
    fn insert_delete_replace_rename() {
        let script = "*filter\n:A - [0:0]\n-A INPUT -j ACCEPT\n-I INPUT -j DROP\n-I INPUT 2 -p udp -j A\n-D INPUT -j DROP\n-R INPUT 2 -j RETURN\n-E A B\nCOMMIT\n";
        let rs = restore(&Ruleset::default(), script, "t", false).unwrap();
        let s = rs.save(false);
        assert!(s.contains("-A INPUT -p udp -j B\n-A INPUT -j RETURN\n"), "{s}");
    }

    #[test]
    fn user_chains_keep_libiptc_order_so_save_round_trips() {
        // Found by fuzzing: declaration order differed from save order, so load(save(x)) != x.
        let script = "*nat\n:ZED - [0:0]\n:ALPHA - [0:0]\n-A PREROUTING -j ZED\n-E ZED MID\nCOMMIT\n";
        let x = restore(&Ruleset::default(), script, "t", false).unwrap();
        let names: Vec<&str> = x
            .table(TableKind::Nat)
            .unwrap()
            .chains()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING", "ALPHA", "MID"]);
        let y = restore(&Ruleset::default(), &x.save(false), "t", false).unwrap();
        assert_eq!(x, y);
    }
}
