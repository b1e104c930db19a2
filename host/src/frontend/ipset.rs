//! `ipset`: `create`, `add`, `del`, `test`, `list`, `save`, `restore`, `flush`, `destroy`,
//! `rename`, `swap` (and ipset 4's `-N -A -D -T -L -S -R -F -X -E -W`), with `-exist`, `-q`,
//! `-o save|plain`, `-n` (names only) and `-t` (headers only), as `ipset(8)` describes them.
//!
//! Sets live beside the rules: a set created here is at once usable by `-m set`, changes to
//! its members are seen by the next packet, and restores of the rules keep it. A set rules
//! refer to cannot be destroyed; renaming one renames it in the rules too (the kernel refers
//! to sets by index, so its rules follow a rename). Each command, and each `restore` as a
//! whole, applies completely or not at all.

use super::{Live, Output};
use crate::ipset::{AddOpts, Header, IpSet, IpSets, SetType};
use crate::ruleset::{Family, Ruleset};
use std::fmt::Write as _;

const PROG: &str = "ipset v7.17";

/// What one command line asks for.
#[derive(Debug, Clone, Default)]
struct Opts {
    exist: bool,
    quiet: bool,
    names_only: bool,
    terse: bool,
    save_format: bool,
}

/// A failed command: its message and exit status.
struct Fail(i32, String);

type Res<T> = Result<T, Fail>;

fn usage<T>(m: impl Into<String>) -> Res<T> {
    Err(Fail(2, m.into()))
}

fn op<T>(m: impl Into<String>) -> Res<T> {
    Err(Fail(1, m.into()))
}

const NO_SET: &str = "The set with the given name does not exist";

/// Both families' rulesets, as `ipset` sees them.
type Rules = [Ruleset; 2];

fn both(live: &dyn Live) -> Rules {
    [live.ruleset_of(Family::V4), live.ruleset_of(Family::V6)]
}

/// Commits the rulesets a rename changed.
fn commit_renamed(live: &dyn Live, rs: Rules, renamed: [bool; 2]) -> Res<()> {
    for (rs, changed) in rs.into_iter().zip(renamed) {
        if changed {
            live.commit(rs).map_err(|e| Fail(1, e))?;
        }
    }
    Ok(())
}

/// How many rules of either family name each set.
fn references(rs: &Rules, name: &str) -> usize {
    rs.iter()
        .flat_map(|rs| rs.tables.iter())
        .flatten()
        .flat_map(|t| t.chains())
        .flat_map(|c| &c.rules)
        .filter(|r| r.ipsets().contains(&name))
        .count()
}

/// Splits global options from the command and its words.
fn split(args: &[String]) -> Res<(Opts, Vec<String>)> {
    let mut o = Opts::default();
    let mut words = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-exist" | "-!" | "--exist" => o.exist = true,
            "-q" | "-quiet" | "--quiet" => o.quiet = true,
            "-n" | "-name" | "--name" => o.names_only = true,
            "-t" | "-terse" | "--terse" => o.terse = true,
            "-s" | "-sorted" | "--sorted" | "-r" | "-resolve" | "--resolve" => {}
            "-o" | "-output" | "--output" => match it.next().map(String::as_str) {
                Some("save") => o.save_format = true,
                Some("plain") => o.save_format = false,
                Some(x) => return usage(format!("Syntax error: unknown output mode `{x}' (plain or save)")),
                None => return usage("Syntax error: -output needs a mode"),
            },
            _ => words.push(a.clone()),
        }
    }
    Ok((o, words))
}

/// Runs one `ipset` command line (or, for `restore`, the commands in `input`).
pub fn run(args: &[String], input: &str, live: &dyn Live) -> Output {
    let result = split(args).and_then(|(o, words)| {
        let cmd = words.first().cloned().unwrap_or_default();
        if matches!(cmd.as_str(), "restore" | "-R") {
            return restore(input, &o, live);
        }
        let mut rs = both(live);
        let mut renamed = [false; 2];
        let out = command(&words, &o, live.ipsets(), live.now(), &mut rs, &mut renamed)?;
        commit_renamed(live, rs, renamed)?;
        Ok(out)
    });
    match result {
        Ok(s) => Output::ok(s),
        Err(Fail(code, m)) => Output::fail(code, format!("{PROG}: {m}")),
    }
}

/// `ipset restore`: every line is tried on a copy of the sets first; only if all succeed are
/// they applied to the live sets.
fn restore(input: &str, o: &Opts, live: &dyn Live) -> Res<String> {
    let now = live.now();
    let lines: Vec<(usize, Vec<String>)> = input
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split_whitespace().map(str::to_string).collect::<Vec<_>>()))
        .filter(|(_, w)| !w.is_empty() && !w[0].starts_with('#') && w[0] != "COMMIT")
        .collect();
    let scratch = live.ipsets().clone();
    let mut rs = both(live);
    let mut renamed = [false; 2];
    for (n, words) in &lines {
        let (lo, words) = split(words).map_err(|Fail(c, m)| Fail(c, format!("Error in line {n}: {m}")))?;
        let lo = Opts {
            exist: o.exist || lo.exist,
            ..lo
        };
        command(&words, &lo, &scratch, now, &mut rs, &mut renamed)
            .map_err(|Fail(c, m)| Fail(c, format!("Error in line {n}: {m}")))?;
    }
    let mut rs = both(live);
    let mut renamed = [false; 2];
    let mut out = String::new();
    for (_, words) in &lines {
        let (lo, words) = split(words)?;
        let lo = Opts {
            exist: o.exist || lo.exist,
            ..lo
        };
        out += &command(&words, &lo, live.ipsets(), now, &mut rs, &mut renamed)?;
    }
    commit_renamed(live, rs, renamed)?;
    Ok(out)
}

fn need<'a>(words: &'a [String], i: usize, what: &str) -> Res<&'a str> {
    match words.get(i) {
        Some(w) => Ok(w),
        None => usage(format!("Syntax error: {what} is missing")),
    }
}

fn num(w: Option<&String>, what: &str, max: u64) -> Res<u64> {
    let v = w.ok_or_else(|| Fail(2, format!("Syntax error: {what} needs a value")))?;
    crate::ruleset::value::parse_uint(v, 0, max)
        .ok_or_else(|| Fail(2, format!("Syntax error: `{v}' is invalid as number")))
}

/// One command on `sets`; references are checked against the rules in `rs`, which a rename
/// rewrites (setting `renamed`).
fn command(
    words: &[String],
    o: &Opts,
    sets: &IpSets,
    now: u64,
    rs: &mut Rules,
    renamed: &mut [bool; 2],
) -> Res<String> {
    let cmd = words.first().map(String::as_str).unwrap_or("");
    let get = |name: &str| sets.get_shared(name).ok_or_else(|| Fail(1, NO_SET.into()));
    match cmd {
        "create" | "n" | "-N" => {
            let name = need(words, 1, "set name")?;
            if name.len() > 31 {
                return usage(format!("Syntax error: setname '{name}' is longer than 31 characters"));
            }
            let kind = need(words, 2, "set type")?;
            let kind = SetType::parse(kind).ok_or_else(|| {
                Fail(1, format!("Syntax error: typename '{kind}' is unknown (rtrouter supports hash:ip, hash:net, hash:ip,port, hash:net,port, hash:ip,port,ip, bitmap:port)"))
            })?;
            let mut h = Header::simple(kind);
            let mut it = words[3..].iter();
            while let Some(w) = it.next() {
                match w.as_str() {
                    "family" => match it.next().map(String::as_str) {
                        Some("inet") => h.inet6 = false,
                        Some("inet6") if kind != SetType::BitmapPort => h.inet6 = true,
                        Some("inet6") => return usage("Syntax error: bitmap:port has no family"),
                        _ => return usage("Syntax error: family must be inet or inet6"),
                    },
                    "hashsize" => h.hashsize = num(it.next(), "hashsize", u64::from(u32::MAX))? as u32,
                    "maxelem" => h.maxelem = num(it.next(), "maxelem", u64::from(u32::MAX))?.max(1) as u32,
                    "timeout" => h.timeout = Some(num(it.next(), "timeout", 2_147_483)? as u32),
                    "counters" => h.counters = true,
                    "range" if kind == SetType::BitmapPort => {
                        let v = it
                            .next()
                            .ok_or_else(|| Fail(2, "Syntax error: range needs a value".into()))?;
                        let (a, b) = v.split_once('-').unwrap_or((v, v));
                        let p = |x: &str| crate::ruleset::value::parse_port(x, "tcp");
                        match (p(a), p(b)) {
                            (Some(a), Some(b)) if a <= b => h.range = Some((a, b)),
                            _ => return usage(format!("Syntax error: bad range `{v}'")),
                        }
                    }
                    "comment" | "skbinfo" | "forceadd" => {
                        return op(format!("Syntax error: option `{w}' is not supported by rtrouter"))
                    }
                    other => return usage(format!("Syntax error: Unknown argument: `{other}'")),
                }
            }
            if kind == SetType::BitmapPort && h.range.is_none() {
                return usage("Syntax error: Argument `range' is required");
            }
            if let Some(old) = sets.get_shared(name) {
                if o.exist && old.header == h {
                    return Ok(String::new());
                }
                return op("Set cannot be created: set with the same name already exists");
            }
            sets.insert(name, IpSet::new(h));
            Ok(String::new())
        }
        "add" | "a" | "-A" | "del" | "d" | "-D" | "test" | "t" | "-T" => {
            let set = get(need(words, 1, "set name")?)?;
            let entry = need(words, 2, "element")?;
            let keys = set.parse_entry(entry).map_err(|e| Fail(1, e.0))?;
            let verb = match cmd {
                "add" | "a" | "-A" => 'a',
                "del" | "d" | "-D" => 'd',
                _ => 't',
            };
            let mut ao = AddOpts::default();
            let mut it = words[3..].iter();
            while let Some(w) = it.next() {
                match (verb, w.as_str()) {
                    ('a', "timeout") => ao.timeout = Some(num(it.next(), "timeout", 2_147_483)? as u32),
                    ('a', "packets") => ao.packets = Some(num(it.next(), "packets", u64::MAX)?),
                    ('a', "bytes") => ao.bytes = Some(num(it.next(), "bytes", u64::MAX)?),
                    (_, other) => return usage(format!("Syntax error: Unknown argument: `{other}'")),
                }
            }
            match verb {
                'a' => set.add(&keys, ao, o.exist, now).map_err(|e| Fail(1, e.0))?,
                'd' => set.del(&keys, o.exist, now).map_err(|e| Fail(1, e.0))?,
                _ => {
                    let name = &words[1];
                    return if set.test_keys(&keys, now) {
                        Ok(String::new())
                    } else {
                        Err(Fail(1, format!("{entry} is NOT in set {name}.")))
                    };
                }
            }
            Ok(String::new())
        }
        "list" | "l" | "-L" | "save" | "s" | "-S" => {
            let save = o.save_format || matches!(cmd, "save" | "s" | "-S");
            let names = match words.get(1) {
                Some(n) => {
                    get(n)?;
                    vec![n.clone()]
                }
                None => sets.names(),
            };
            let mut out = String::new();
            for (i, n) in names.iter().enumerate() {
                let set = get(n)?;
                if o.names_only {
                    let _ = writeln!(out, "{n}");
                    continue;
                }
                if save {
                    let _ = writeln!(out, "create {n} {} {}", set.header.kind.name(), set.header_text());
                    if !o.terse {
                        for m in set.member_lines(now) {
                            let _ = writeln!(out, "add {n} {m}");
                        }
                    }
                    continue;
                }
                if i > 0 {
                    out.push('\n');
                }
                let members = set.member_lines(now);
                let _ = writeln!(out, "Name: {n}");
                let _ = writeln!(out, "Type: {}", set.header.kind.name());
                let _ = writeln!(out, "Revision: {}", set.revision());
                let _ = writeln!(out, "Header: {}", set.header_text());
                let _ = writeln!(out, "Size in memory: {}", 320 + 64 * members.len());
                let _ = writeln!(out, "References: {}", references(rs, n));
                let _ = writeln!(out, "Number of entries: {}", members.len());
                if !o.terse {
                    out.push_str("Members:\n");
                    for m in members {
                        let _ = writeln!(out, "{m}");
                    }
                }
            }
            Ok(out)
        }
        "flush" | "f" | "-F" => {
            match words.get(1) {
                Some(n) => get(n)?.flush(),
                None => {
                    for n in sets.names() {
                        get(&n)?.flush();
                    }
                }
            }
            Ok(String::new())
        }
        "destroy" | "x" | "-X" => {
            let names = match words.get(1) {
                Some(n) => {
                    get(n)?;
                    vec![n.clone()]
                }
                None => sets.names(),
            };
            if let Some(n) = names.iter().find(|n| references(rs, n) > 0) {
                return op(format!(
                    "Set cannot be destroyed: it is in use by a kernel component ({n} is named by rules)"
                ));
            }
            for n in names {
                sets.remove(&n);
            }
            Ok(String::new())
        }
        "rename" | "e" | "-E" => {
            let (from, to) = (need(words, 1, "set name")?, need(words, 2, "new set name")?);
            get(from)?;
            if sets.get_shared(to).is_some() {
                return op("Set cannot be renamed: a set with the new name already exists");
            }
            sets.rename(from, to);
            let uses = |c: &crate::ruleset::Chain| c.rules.iter().any(|r| r.ipsets().contains(&from));
            for (rs, renamed) in rs.iter_mut().zip(renamed.iter_mut()) {
                for t in rs.tables.iter_mut().flatten() {
                    let names: Vec<String> = t.chains().filter(|c| uses(c)).map(|c| c.name.clone()).collect();
                    for n in names {
                        for r in &mut t.chain_mut(&n).expect("listed").rules {
                            *renamed |= r.update(|r| r.rename_ipset(from, to));
                        }
                    }
                }
            }
            Ok(String::new())
        }
        "swap" | "w" | "-W" => {
            let (a, b) = (
                get(need(words, 1, "set name")?)?,
                get(need(words, 2, "second set name")?)?,
            );
            if a.header.kind != b.header.kind {
                return op("Sets cannot be swapped: their type does not match");
            }
            // The kernel swaps headers too; here headers stay with the names, so sets whose
            // timeout or counters options differ are not swapped.
            if (a.header.timeout.is_some(), a.header.counters) != (b.header.timeout.is_some(), b.header.counters) {
                return op(
                    "Sets cannot be swapped: their timeout and counters options differ (rtrouter swaps members only)",
                );
            }
            a.swap_members(&b);
            Ok(String::new())
        }
        "" => usage("Syntax error: no command specified"),
        other => usage(format!("Syntax error: No command specified: unknown argument {other}")),
    }
}
