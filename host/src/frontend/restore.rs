//! `iptables-save` and `iptables-restore`.
//!
//! `iptables-restore [-n|--noflush] [-c|--counters] [-w [S]] [-W US] [-T|--table T] [-t|--test]
//! [-v] [FILE]`: the input applies whole or not at all. Without `--noflush` each table the input
//! names is replaced; with it, tables keep their chains and rules, `:CHAIN` lines create or
//! flush the chains they name, and built-in chains keep their rules unless flushed.
//! `[packets:bytes]` set counters only with `--counters`. `iptables-save [-t T] [-c]`.
//! (The client reads `FILE` and writes `-f FILE`; the router sees the text.)

use super::{exit, list, Live, Output};
use crate::ruleset::restore::{restore_with, Options};
use crate::ruleset::TableKind;
use crate::ruleset::{Family, Ruleset, Table};

fn usage(tool: &str, msg: &str) -> Output {
    Output::fail(
        exit::PARAMETER,
        format!(
            "{tool} v{} (nf_tables): {msg}\nTry `{tool} -h' or '{tool} --help' for more information.",
            super::IPTABLES_VERSION
        ),
    )
}

fn table_arg(tool: &str, v: Option<&String>) -> Result<TableKind, Output> {
    let v = v.ok_or_else(|| usage(tool, "option requires an argument -- 't'"))?;
    TableKind::from_name(v).ok_or_else(|| {
        Output::fail(
            exit::OTHER,
            format!(
                "{tool} v{} (nf_tables): Table `{v}' does not exist",
                super::IPTABLES_VERSION
            ),
        )
    })
}

/// `iptables-save`.
pub fn save(args: &[String], live: &dyn Live) -> Output {
    let tool = &format!("{}-save", live.family().tool());
    let mut counters = false;
    let mut table = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-c" | "--counters" => counters = true,
            "-t" | "--table" => match table_arg(tool, it.next()) {
                Ok(t) => table = Some(t),
                Err(o) => return o,
            },
            "-M" | "--modprobe" => {
                it.next();
            }
            s if s.starts_with("--table=") => match table_arg(tool, Some(&s[8..].to_string())) {
                Ok(t) => table = Some(t),
                Err(o) => return o,
            },
            other => return usage(tool, &format!("unknown option \"{other}\"")),
        }
    }
    let mut rs = live.ruleset();
    let tables: Vec<TableKind> = match table {
        Some(t) => {
            // A table asked for by name is shown even before anything used it, as the kernel
            // creates it on first access.
            rs.table_mut(t);
            vec![t]
        }
        None => TableKind::SAVE_ORDER.to_vec(),
    };
    Output::ok(rs.save_tables(&tables, counters))
}

/// `iptables-restore`, with `input` the text read from the file or stdin (named `name`).
pub fn restore(args: &[String], input: &str, name: &str, live: &dyn Live) -> Output {
    let tool = &format!("{}-restore", live.family().tool());
    let mut o = Options {
        counters: false,
        ..Options::default()
    };
    let mut test = false;
    let mut verbose = false;
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-n" | "--noflush" => o.noflush = true,
            "-c" | "--counters" => o.counters = true,
            "-t" | "--test" => test = true,
            "-v" | "--verbose" => verbose = true,
            // Changes are serialised by the router: there is no lock to wait for.
            "-w" | "--wait" if it.peek().is_some_and(|n| n.parse::<u32>().is_ok()) => {
                it.next();
            }
            "-w" | "--wait" => {}
            "-W" | "--wait-interval" | "-M" | "--modprobe" if it.next().is_none() => {
                return usage(tool, &format!("option \"{a}\" requires an argument"));
            }
            "-W" | "--wait-interval" | "-M" | "--modprobe" => {}
            "-T" | "--table" => match table_arg(tool, it.next()) {
                Ok(t) => o.only = Some(t),
                Err(e) => return e,
            },
            s if s.starts_with("--table=") => match table_arg(tool, Some(&s[8..].to_string())) {
                Ok(t) => o.only = Some(t),
                Err(e) => return e,
            },
            s if s.starts_with("-w") && s[2..].parse::<u32>().is_ok() => {}
            s if s.starts_with('-') && s.len() > 1 => return usage(tool, &format!("unknown option \"{s}\"")),
            // The file was read by the client; its text is `input`.
            _ => {}
        }
    }
    let base = live.ruleset();
    let next = match restore_with(&base, input, name, &o) {
        Ok(rs) => rs,
        Err(e) => {
            let line = e.0.first().map_or(0, |e| e.line);
            return Output::fail(exit::OTHER, format!("{tool}: {e}\nError occurred at line: {line}"));
        }
    };
    // `-v` tells, table by table, what replacing it did (nothing with `--noflush`).
    let said = if verbose && !o.noflush {
        verbose_report(&base, &next, input, o.only, live.family())
    } else {
        String::new()
    };
    let res = if test { live.check(&next) } else { live.commit(next) };
    live.retire(base);
    match res {
        Ok(()) => Output::ok(said),
        Err(e) => Output::fail(exit::OTHER, format!("{tool}: {e}")),
    }
}

/// What `iptables-restore -v` prints for the tables `input` replaces, in its order: each
/// chain the table had flushed (built-ins in hook order, then user chains by name), each user
/// chain deleted, then the `-v` echo of each rule the table now holds.
fn verbose_report(base: &Ruleset, next: &Ruleset, input: &str, only: Option<TableKind>, family: Family) -> String {
    let mut out = String::new();
    let names = input.lines().filter_map(|l| l.trim().strip_prefix('*'));
    for kind in names.filter_map(|n| n.split_whitespace().next().and_then(TableKind::from_name)) {
        if only.is_some_and(|o| o != kind) {
            continue;
        }
        let old = base.table(kind).cloned().unwrap_or_else(|| Table::new(kind));
        for c in old.chains() {
            out.push_str(&format!("Flushing chain `{}'\n", c.name));
        }
        for name in old.user_chains().keys() {
            out.push_str(&format!("Deleting chain `{name}'\n"));
        }
        if let Some(t) = next.table(kind) {
            for r in t.chains().flat_map(|c| c.rules.iter()) {
                out.push_str(&list::print_rule(r, family));
            }
        }
    }
    out
}
