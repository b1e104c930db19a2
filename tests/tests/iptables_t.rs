//! The iptables project's own extension tests (`extensions/*.t`), read from
//! `../shared/conformance/iptables-t/`: every OK line must load in each chain it names and print
//! back as expected; every FAIL line must be refused.

use rtrouter::ruleset::{restore::restore, validate, Env, Family, Ruleset, TableKind};
use rtrouter_tests::conformance_dir;

/// Every file of the folder (the test fails when one is missing here).
const FILES: &[&str] = &[
    "iptables.t",
    "libipt_standard.t",
    "libxt_standard.t",
    "libxt_tcp.t",
    "libxt_udp.t",
    "libipt_icmp.t",
    "libxt_multiport.t",
    "libxt_comment.t",
    "libxt_addrtype.t",
    "libxt_statistic.t",
    "libxt_conntrack.t",
    "libipt_conntrack.t",
    "libxt_state.t",
    "libxt_mark.t",
    "libxt_mac.t",
    "libxt_tos.t",
    "libxt_dscp.t",
    "libxt_owner.t",
    "libxt_policy.t",
    "libipt_policy.t",
    "libxt_physdev.t",
    "libxt_DSCP.t",
    "libxt_tcpmss.t",
    "libxt_quota.t",
    "libxt_esp.t",
    "libipt_ah.t",
    "libxt_ecn.t",
    "libipt_NETMAP.t",
    "libxt_CLASSIFY.t",
    "libxt_SECMARK.t",
    "libxt_CONNSECMARK.t",
    "libxt_NFQUEUE.t",
    "libxt_string.t",
    "libxt_helper.t",
    "libxt_time.t",
    "libxt_u32.t",
    "libxt_sctp.t",
    "libipt_ECN.t",
    "libxt_rpfilter.t",
    "libxt_hashlimit.t",
    "libxt_connbytes.t",
    "libxt_connlimit.t",
    "libxt_SET.t",
    "libxt_TRACE.t",
    "libxt_TOS.t",
    "libxt_connmark.t",
    "libipt_iprange.t",
    "libxt_iprange.t",
    "libxt_limit.t",
    "libxt_length.t",
    "libipt_ttl.t",
    "libxt_set.t",
    "libxt_pkttype.t",
    "libxt_recent.t",
    "libipt_recent.t",
    "libipt_REJECT.t",
    "libipt_LOG.t",
    "libxt_NFLOG.t",
    "libxt_MARK.t",
    "libxt_CONNMARK.t",
    "libipt_DNAT.t",
    "libipt_SNAT.t",
    "libipt_MASQUERADE.t",
    "libxt_REDIRECT.t",
    "libxt_NOTRACK.t",
    "libxt_CT.t",
    "libipt_TTL.t",
    "libxt_TCPMSS.t",
    "libxt_CHECKSUM.t",
];

/// Lines where rtrouter deliberately differs from the test file, with the reason. The test
/// fails if one of these starts to agree (so the list cannot go stale) or if any other line
/// disagrees.
const DEVIATIONS: &[(&str, &str, &str)] = &[
    (
        "libxt_SECMARK.t",
        "-j SECMARK --selctx system_u:object_r:firewalld_exec_t:s0",
        "a security context needs SELinux to translate it: the kernel's iptables 1.8.9 without SELinux \
         refuses this line too (../shared/conformance/iptables-t/README.md), and rtrouter has no \
         security module",
    ),
    (
        "libxt_udp.t",
        "-p udp -m udp --sport 4:3",
        "the kernel's iptables 1.8.9 accepts a reversed udp range (it then matches nothing); the \
         v1.8.11 test file expects the newer refusal",
    ),
    (
        "libxt_udp.t",
        "-p udp -m udp --dport 4:3",
        "as --sport 4:3: iptables 1.8.9 accepts it and the rule matches nothing",
    ),
];

struct Outcome {
    pass: usize,
    fail: Vec<String>,
    /// (case, chain) tries that pass, and all of them, as the ip6tables-t README counts.
    tries: (usize, usize),
}

fn load_one(family: Family, table: TableKind, chain: &str, rule: &str) -> Result<String, String> {
    // A chain that is not built in is declared first, as the README's kernel runs do.
    let builtin = rtrouter::ruleset::Hook::from_chain_name(chain).is_some_and(|h| table.builtin_hooks().contains(&h));
    let decl = if builtin {
        String::new()
    } else {
        format!(":{chain} - [0:0]\n")
    };
    let script = format!("*{table}\n{decl}-A {chain} {rule}\nCOMMIT\n");
    let rs = restore(&Ruleset::new(family), &script, "t", false).map_err(|e| e.to_string())?;
    let v = validate(&rs, &Env::default()).map_err(|e| e.to_string())?;
    let source = v.source();
    let chain_rules = &source
        .table(table)
        .and_then(|t| t.chain(chain))
        .ok_or("chain vanished")?
        .rules;
    Ok(chain_rules
        .iter()
        .map(|r| r.save_line(chain, None))
        .collect::<Vec<_>>()
        .join("\n"))
}

fn run_file(family: Family, text: &str) -> Outcome {
    let mut table = TableKind::Filter;
    let mut chains: Vec<String> = vec![];
    let mut out = Outcome {
        pass: 0,
        fail: vec![],
        tries: (0, 0),
    };
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            continue;
        }
        if let Some(c) = line.strip_prefix(':') {
            chains = c.split(',').map(str::to_string).collect();
            continue;
        }
        if let Some(t) = line.strip_prefix('*') {
            table = TableKind::from_name(t).expect("known table");
            continue;
        }
        let f: Vec<&str> = line.split(';').collect();
        let (rule, expected, ok) = (f[0], f[1], f[2] == "OK");
        let expected = if expected == "=" { rule } else { expected };
        let mut line_ok = true;
        let mut why = String::new();
        for chain in &chains {
            let got = load_one(family, table, chain, rule);
            out.tries.1 += 1;
            let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
            match (ok, got) {
                (true, Ok(s))
                    if norm(&s) == norm(&format!("-A {chain} {expected}"))
                        || (expected.is_empty() && s == format!("-A {chain}")) =>
                {
                    out.tries.0 += 1;
                }
                (true, Ok(s)) => {
                    line_ok = false;
                    why = format!("printed `{s}'");
                }
                (true, Err(e)) => {
                    line_ok = false;
                    why = format!("refused: {e}");
                }
                (false, Err(_)) => out.tries.0 += 1,
                (false, Ok(s)) => {
                    line_ok = false;
                    why = format!("accepted, printed `{s}'");
                }
            }
        }
        if line_ok {
            out.pass += 1;
        } else {
            out.fail.push(format!("{line}  -- {why}"));
        }
    }
    out
}

#[test]
fn extension_test_files() {
    let Some(dir) = conformance_dir("iptables-t") else {
        return;
    };
    // The runner covers the whole folder: a file nobody listed is a failure, not a skip.
    let mut missing: Vec<String> = std::fs::read_dir(&dir)
        .expect("iptables-t is readable")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".t") && !FILES.contains(&n.as_str()))
        .collect();
    missing.sort();
    assert!(missing.is_empty(), "test files the runner does not cover: {missing:?}");
    let mut total = (0, 0);
    let mut unexpected = vec![];
    let mut deviations_seen = vec![];
    for f in FILES {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let o = run_file(Family::V4, &text);
        println!("{f}: {}/{} lines pass", o.pass, o.pass + o.fail.len());
        total.0 += o.pass;
        total.1 += o.pass + o.fail.len();
        for line in o.fail {
            match DEVIATIONS
                .iter()
                .find(|(file, rule, _)| file == f && line.starts_with(&format!("{rule};")))
            {
                Some(d) => deviations_seen.push(d.1),
                None => unexpected.push(format!("{f}: {line}")),
            }
        }
    }
    println!(
        "total: {}/{} lines pass; {} known deviation(s)",
        total.0,
        total.1,
        deviations_seen.len()
    );
    assert!(
        unexpected.is_empty(),
        "lines that disagree with iptables:\n{}",
        unexpected.join("\n")
    );
    for (_, rule, why) in DEVIATIONS {
        assert!(
            deviations_seen.contains(rule),
            "deviation no longer needed, remove it: {rule} ({why})"
        );
    }
}

/// What rtrouter passes of each ip6tables `.t` file, (case, chain) tries counted as the
/// README of `../shared/conformance/ip6tables-t/` counts the kernel's. A file below the
/// kernel's count is listed with what it lacks; the test fails if a file falls below its
/// entry here, or rises above it (so the list is kept exact), or lacks an entry.
const IP6_PASSES: &[(&str, usize, &str)] = &[];

#[test]
fn ip6tables_extension_test_files() {
    let Some(dir) = conformance_dir("ip6tables-t") else {
        return;
    };
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("the README lists the kernel's passes");
    // `| libip6t_NAME.t | cases | kernel passes | misses |`
    let kernel: Vec<(String, usize, usize)> = readme
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').map(str::trim).collect();
            if f.len() < 5 || !f[1].ends_with(".t") {
                return None;
            }
            Some((f[1].to_string(), f[2].parse().ok()?, f[3].parse().ok()?))
        })
        .collect();
    assert_eq!(kernel.len(), 29, "the README's table lists every file");
    let mut report = vec![];
    let mut wrong = vec![];
    let (mut ours_total, mut kernel_total, mut cases_total) = (0, 0, 0);
    for (f, cases, kpass) in &kernel {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let o = run_file(Family::V6, &text);
        assert_eq!(o.tries.1, *cases, "{f}: the README counts {cases} tries");
        let ours = o.tries.0;
        ours_total += ours;
        kernel_total += kpass;
        cases_total += cases;
        println!("{f}: {ours}/{cases} (kernel {kpass})");
        for l in &o.fail {
            println!("    {l}");
        }
        match IP6_PASSES.iter().find(|(n, ..)| n == f) {
            Some((_, want, _)) if *want != ours => wrong.push(format!("{f}: passes {ours}, listed {want}")),
            Some(_) => {}
            None if ours >= *kpass => {}
            None => wrong.push(format!(
                "{f}: passes {ours} of {cases}, the kernel {kpass}, and has no entry"
            )),
        }
        if ours < *kpass {
            report.push(format!("{f} {ours}/{kpass}"));
        }
    }
    println!(
        "ip6tables .t: {ours_total}/{cases_total} tries pass (kernel {kernel_total}); below the kernel: {report:?}"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
