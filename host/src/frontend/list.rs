//! `iptables -L` (the column format), `iptables -S` and the `-v` echo of a rule, as
//! `print_header`/`print_firewall`/`print_rule_details` in iptables' `xshared.c` and
//! `iptables.c` print them.
//!
//! Without `-n`, addresses print as the names `/etc/hosts` (then `/etc/networks`) gives them
//! and TCP/UDP ports as `/etc/services` names them, as iptables' resolver does from files;
//! rtrouter asks no DNS server, so an address only DNS could name prints as a number.
//! Matches and targets print in their own words (their `list`), as their libxt modules' `print`
//! functions do; those without one print their iptables-save options.

use crate::ruleset::ext::Neg;
use crate::ruleset::targets::Target;
use crate::ruleset::value::{protocol_name, IpNet};
use crate::ruleset::{Family, Rule, Table};
use std::fmt::Write as _;

/// `-L`'s options.
#[derive(Debug, Clone, Copy, Default)]
pub struct Format {
    pub verbose: bool,
    pub numeric: bool,
    pub exact: bool,
    pub line_numbers: bool,
    pub family: Family,
}

/// `xtables_print_num`: a counter in a 5-wide column with K/M/G/T suffixes unless `exact`,
/// 8 (packets) or 10 (bytes) wide when exact.
fn num(out: &mut String, n: u64, exact: bool, wide: usize) {
    if exact {
        let _ = write!(out, "{n:>wide$} ");
        return;
    }
    if n <= 99_999 {
        let _ = write!(out, "{n:>5} ");
        return;
    }
    let mut n = n;
    for suffix in ['K', 'M', 'G', 'T'] {
        n = (n + 500) / 1000;
        if n <= 9999 || suffix == 'T' {
            let _ = write!(out, "{n:>4}{suffix} ");
            return;
        }
    }
}

/// How many rules of the table jump or go to each chain: counted once per listing, so that
/// listing every chain stays linear in the rules.
fn references(t: &Table) -> std::collections::HashMap<&str, usize> {
    let mut refs = std::collections::HashMap::new();
    for r in t.chains().flat_map(|c| &c.rules) {
        if let Target::Jump(j) | Target::Goto(j) = &r.target {
            *refs.entry(j.as_str()).or_insert(0) += 1;
        }
    }
    refs
}

fn target_name(r: &Rule) -> &str {
    match &r.target {
        Target::Jump(c) | Target::Goto(c) => c,
        // An alias of CT's (`real_name`), which the column shows.
        Target::Notrack(_) => "CT",
        t => t.name(),
    }
}

fn addr(a: &Option<Neg<IpNet>>, numeric: bool, family: Family) -> (bool, String) {
    let any = match family {
        Family::V4 => "0.0.0.0/0",
        Family::V6 => "::/0",
    };
    match a {
        None => (false, if numeric { any.into() } else { "anywhere".into() }),
        Some(n) => {
            let name = |a: std::net::IpAddr| {
                if numeric {
                    a.to_string()
                } else {
                    crate::ruleset::value::address_name(a).unwrap_or_else(|| a.to_string())
                }
            };
            let s = match n.v.prefix_len() {
                _ if n.v.is_host() => name(n.v.addr()),
                Some(0) if !numeric => "anywhere".into(),
                Some(len) if !numeric => format!("{}/{len}", name(n.v.addr())),
                _ => n.v.to_string(),
            };
            (n.inv, s)
        }
    }
}

fn proto(r: &Rule) -> (bool, String) {
    match r.proto {
        None => (false, "all".into()),
        Some(p) => (
            p.inv,
            protocol_name(p.v).map_or_else(|| p.v.to_string(), str::to_string),
        ),
    }
}

fn iface(i: &Option<Neg<crate::ruleset::Iface>>, numeric: bool) -> String {
    match i {
        None => (if numeric { "*" } else { "any" }).to_string(),
        Some(n) => format!(
            "{}{}{}",
            if n.inv { "!" } else { "" },
            n.v.name,
            if n.v.wildcard { "+" } else { "" }
        ),
    }
}

/// The matches' and the target's `-L` text (each part starting with a space).
fn details(r: &Rule, numeric: bool) -> String {
    let mut s = String::new();
    if matches!(r.target, Target::Goto(_)) {
        s.push_str("[goto] ");
    }
    for m in &r.matches {
        m.list(&mut s, numeric);
    }
    r.target.list(&mut s, numeric);
    s
}

/// One rule as a row of `-L`.
fn row(out: &mut String, r: &Rule, n: usize, f: &Format) {
    if f.line_numbers {
        let _ = write!(out, "{n:<4} ");
    }
    if f.verbose {
        let (p, b) = r.counter.get();
        num(out, p, f.exact, 8);
        num(out, b, f.exact, 10);
    }
    let _ = write!(out, "{:<9} ", target_name(r));
    let (pinv, pname) = proto(r);
    let _ = write!(out, "{}{pname:<4} ", if pinv { '!' } else { ' ' });
    let frag = match r.frag {
        None => "--",
        Some(false) => "-f",
        Some(true) => "!f",
    };
    let _ = write!(out, "{frag} ");
    if f.verbose {
        let _ = write!(out, " {:<6} ", iface(&r.in_iface, f.numeric));
        let _ = write!(out, "{:<6} ", iface(&r.out_iface, f.numeric));
    }
    let (sinv, s) = addr(&r.src, f.numeric, f.family);
    let (dinv, d) = addr(&r.dst, f.numeric, f.family);
    let _ = write!(out, "{}{s:<19} ", if sinv { '!' } else { ' ' });
    let _ = write!(out, "{}{d:<19} ", if dinv { '!' } else { ' ' });
    out.push_str(&details(r, f.numeric));
    out.push('\n');
}

/// `iptables -L [chain [rulenum]]`.
pub fn list(t: &Table, chain: Option<&str>, rulenum: Option<usize>, f: &Format) -> String {
    let mut out = String::new();
    let mut first = true;
    let refs = references(t);
    let chains: Vec<&crate::ruleset::Chain> = match chain {
        Some(n) => t.chain(n).into_iter().collect(),
        None => t.chains().collect(),
    };
    for c in chains {
        if rulenum.is_none() {
            if !first {
                out.push('\n');
            }
            let _ = write!(out, "Chain {}", c.name);
            match c.policy {
                Some(p) => {
                    let _ = write!(out, " (policy {}", p.name());
                    if f.verbose {
                        let (pk, b) = c.counter.get();
                        let _ = write!(out, " {pk} packets, {b} bytes");
                    }
                    out.push_str(")\n");
                }
                None => {
                    let n = refs.get(c.name.as_str()).copied().unwrap_or(0);
                    let _ = writeln!(out, " ({n} references)");
                }
            }
            if f.line_numbers {
                out.push_str("num  ");
            }
            if f.verbose {
                if f.exact {
                    out.push_str("    pkts      bytes ");
                } else {
                    out.push_str(" pkts bytes ");
                }
            }
            out.push_str("target     prot opt");
            if f.verbose {
                out.push_str(" in     out    ");
            }
            out.push_str(" source               destination         \n");
        }
        first = false;
        for (i, r) in c.rules.iter().enumerate() {
            if rulenum.is_none_or(|n| n == i + 1) {
                row(&mut out, r, i + 1, f);
            }
        }
    }
    out
}

/// A rule as `-S` prints it: `-A CHAIN spec`, with `-c P B` before the target when verbose.
fn rule_line(r: &Rule, chain: &str, verbose: bool) -> String {
    if !verbose {
        return r.save_line(chain, None);
    }
    let mut bare = r.clone();
    bare.target = Target::None;
    let mut s = format!("-A {chain}");
    bare.save_spec(&mut s);
    let (p, b) = r.counter.get();
    let _ = write!(s, " -c {p} {b}");
    r.target.save(&mut s);
    s
}

/// `iptables -S [chain [rulenum]]`.
pub fn list_rules(t: &Table, chain: Option<&str>, rulenum: Option<usize>, verbose: bool) -> String {
    let mut out = String::new();
    let chains = || -> Vec<&crate::ruleset::Chain> {
        match chain {
            Some(n) => t.chain(n).into_iter().collect(),
            None => t.chains().collect(),
        }
    };
    if rulenum.is_none() {
        for c in chains() {
            match c.policy {
                Some(p) => {
                    let _ = write!(out, "-P {} {}", c.name, p.name());
                    if verbose {
                        let (pk, b) = c.counter.get();
                        let _ = write!(out, " -c {pk} {b}");
                    }
                    out.push('\n');
                }
                None => {
                    let _ = writeln!(out, "-N {}", c.name);
                }
            }
        }
    }
    for c in chains() {
        for (i, r) in c.rules.iter().enumerate() {
            if rulenum.is_none_or(|n| n == i + 1) {
                out.push_str(&rule_line(r, &c.name, verbose));
                out.push('\n');
            }
        }
    }
    out
}

/// The `-v` echo of a rule being added, checked or deleted (`FMT_PRINT_RULE`).
pub fn print_rule(r: &Rule, family: Family) -> String {
    let mut out = String::new();
    let _ = write!(out, "{} ", target_name(r));
    let (pinv, pname) = proto(r);
    let _ = write!(out, "{}{pname} ", if pinv { '!' } else { ' ' });
    let frag = match r.frag {
        None => "--",
        Some(false) => "-f",
        Some(true) => "!f",
    };
    let _ = write!(out, "opt {frag} ");
    let _ = write!(out, "in {} ", iface(&r.in_iface, true));
    let _ = write!(out, "out {} ", iface(&r.out_iface, true));
    let (sinv, s) = addr(&r.src, true, family);
    let (dinv, d) = addr(&r.dst, true, family);
    let _ = write!(out, "{}{s} ", if sinv { '!' } else { ' ' });
    let _ = write!(out, "{}-> {d}", if dinv { '!' } else { ' ' });
    out.push_str("  ");
    out.push_str(&details(r, true));
    out.push('\n');
    out
}
