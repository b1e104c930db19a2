//! The compiled classifier against the reference walk: random rulesets over every extension
//! the generator knows (user chains, jumps, gotos, RETURNs, negations, stateful matches,
//! overlapping prefixes and port ranges) and random packets; the two engines must agree on
//! every outcome, the path of matched rules, the packet bytes, replies, counters and random
//! draws (`rtrouter::gen::differential`).

use proptest::prelude::*;
use rtrouter::eval::{Chance, SplitMix};
use rtrouter::gen::{self, differential, differential6};

fn case(seed: u64, packets: usize) -> (String, Vec<gen::Sent>) {
    let mut c = SplitMix(seed);
    let rules = gen::random_ruleset(&mut c);
    let pkts = (0..packets)
        .map(|_| {
            let (from, p) = gen::random_packet(&mut c);
            let mark = [0u32, 1, 2, 3, 5][c.below(5) as usize];
            (from, p, mark)
        })
        .collect();
    (rules, pkts)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
    #[test]
    fn compiled_equals_walk(seed in any::<u64>()) {
        let (rules, pkts) = case(seed, 80);
        let r = differential(&rules, &pkts, seed);
        prop_assert!(r.is_ok(), "seed {seed}\n{}\n--- rules\n{rules}", r.unwrap_err());
    }
}

/// The same generated rulesets and packets in IPv6 (`gen::ruleset_to_v6`,
/// `gen::packet_to_v6`): the ip6tables engines must agree as the iptables ones do.
fn case6(seed: u64, packets: usize) -> (String, Vec<gen::Sent>) {
    let (rules, pkts) = case(seed, packets);
    let pkts = pkts
        .into_iter()
        .map(|(f, p, m)| (f, gen::packet_to_v6(&p), m))
        .collect();
    (gen::ruleset_to_v6(&rules), pkts)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]
    #[test]
    fn compiled_equals_walk_ipv6(seed in any::<u64>()) {
        let (rules, pkts) = case6(seed, 80);
        let r = differential6(&rules, &pkts, seed);
        prop_assert!(r.is_ok(), "seed {seed}\n{}\n--- rules\n{rules}", r.unwrap_err());
    }
}

#[test]
fn generated_ipv6_rulesets_load_and_are_classified() {
    let (mut loaded, mut classified, mut rules_kept, mut ext_rules) = (0, 0, 0, 0);
    for seed in 0..100 {
        let (rules, pkts) = case6(seed, 10);
        rules_kept += rules.lines().filter(|l| l.starts_with("-A ")).count();
        ext_rules += ["-m hbh", "-m ipv6header", "-m frag", "-m rt", "-m dst", "-m ah"]
            .iter()
            .map(|m| rules.matches(m).count())
            .sum::<usize>();
        match differential6(&rules, &pkts, seed) {
            Ok(Some(chains)) => {
                loaded += 1;
                classified += chains;
            }
            Ok(None) => {}
            Err(e) => panic!("seed {seed}: {e}\n{rules}"),
        }
    }
    assert!(loaded >= 75, "only {loaded} of 100 generated IPv6 rulesets loaded");
    assert!(classified >= 100, "only {classified} chains were classified");
    assert!(rules_kept >= 2000, "only {rules_kept} rules survived the translation");
    assert!(ext_rules >= 500, "only {ext_rules} rules test extension headers");
}

/// The property above says nothing if the generated rulesets do not load or are never
/// classified: most must load, and chains of them must be compiled.
#[test]
fn generated_rulesets_load_and_are_classified() {
    let (mut loaded, mut classified) = (0, 0);
    for seed in 0..200 {
        let (rules, pkts) = case(seed, 10);
        match differential(&rules, &pkts, seed) {
            Ok(Some(chains)) => {
                loaded += 1;
                classified += chains;
            }
            Ok(None) => {}
            Err(e) => panic!("seed {seed}: {e}\n{rules}"),
        }
    }
    assert!(loaded >= 150, "only {loaded} of 200 generated rulesets loaded");
    assert!(classified >= 200, "only {classified} chains were classified");
}

/// The same ACL in IPv6 (prefixes /96+n): the classifier indexes IPv6 prefixes too.
#[test]
fn acl_rulesets_agree_ipv6() {
    let mut c = SplitMix(12);
    let (rules, pkts) = gen::acl(3000, 3000, &mut c);
    let rules = gen::ruleset_to_v6(&rules);
    assert!(
        rules.lines().filter(|l| l.starts_with("-A ")).count() > 2900,
        "the ACL survives translation"
    );
    let pkts: Vec<_> = pkts
        .into_iter()
        .map(|p| (Some("lan0"), gen::packet_to_v6(&p), 0))
        .collect();
    assert_eq!(differential6(&rules, &pkts, 3).unwrap(), Some(1));
}

#[test]
fn acl_rulesets_agree() {
    let mut c = SplitMix(11);
    let (rules, pkts) = gen::acl(3000, 3000, &mut c);
    let pkts: Vec<_> = pkts.into_iter().map(|p| (Some("lan0"), p, 0)).collect();
    assert_eq!(differential(&rules, &pkts, 3).unwrap(), Some(1));
}

#[test]
fn kube_proxy_rulesets_agree() {
    let rules = gen::kube_proxy(500);
    let mut c = SplitMix(5);
    let mut pkts = Vec::new();
    for _ in 0..1500 {
        let i = c.below(600) as usize;
        let client = std::net::Ipv4Addr::new(10, 0, 1, 2 + c.below(200) as u8);
        let sport = 1024 + c.below(60000) as u16;
        let (dst, dport) = match c.below(3) {
            0 => ("10.0.1.1".parse().unwrap(), gen::node_port(i)),
            1 => (gen::service_ip(i), 80),
            _ => (gen::service_ip(i), 81),
        };
        pkts.push((Some("lan0"), gen::tcp_syn(client, sport, dst, dport), 0));
    }
    let r = differential(&rules, &pkts, 9).unwrap();
    assert!(r.is_some_and(|chains| chains >= 2), "{r:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60, ..ProptestConfig::default() })]
    /// Incremental validation and engine derivation against whole validation and
    /// compilation, over sequences of random changes (`rtrouter::gen::incremental`).
    #[test]
    fn incremental_changes_equal_whole_validation(seed in any::<u64>()) {
        let (_, pkts) = case(seed, 40);
        let r = gen::incremental(seed, 12, &pkts);
        prop_assert!(r.is_ok(), "seed {seed}: {}", r.unwrap_err());
    }
}

/// The same over chains of 520 to 780 rules: changes anywhere in chains that span several
/// of the chunks that generations share (jumps, compiled layout, classifier fields).
#[test]
fn incremental_changes_to_long_chains_equal_whole_validation() {
    let mut accepted = 0;
    for seed in 0..6 {
        let (_, pkts) = case(seed, 12);
        accepted += gen::incremental_long(seed, 8, &pkts, 520).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    eprintln!("{accepted} of 48 random changes accepted");
    assert!(accepted >= 12, "only {accepted} of 48 random changes were accepted");
}

/// The property above must see changes accepted, not only refused.
#[test]
fn incremental_changes_are_mostly_checked_and_applied() {
    let mut accepted = 0;
    for seed in 0..40 {
        let (_, pkts) = case(seed, 20);
        accepted += gen::incremental(seed, 12, &pkts).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    assert!(accepted >= 100, "only {accepted} of 480 random changes were accepted");
}

/// Finding a rule by its content (`-D` or `-C` with a rule) compares fingerprints before
/// rules, so equal rules must have equal fingerprints: every rule of the generated rulesets
/// (every extension the generator writes, IPv4 and IPv6), saved and loaded again, is equal to
/// itself with the same fingerprint, and is found where it stands (or at an equal rule before).
#[test]
fn equal_rules_have_equal_fingerprints() {
    use rtrouter::ruleset::{restore::restore, Family, Ruleset};
    let mut checked = 0;
    for seed in 0..150 {
        let v4 = case(seed, 0).0;
        let v6 = gen::ruleset_to_v6(&v4);
        for (family, text) in [(Family::V4, v4), (Family::V6, v6)] {
            let Ok(rs) = restore(&Ruleset::new(family), &text, "gen", false) else {
                continue;
            };
            let again = restore(&Ruleset::new(family), &rs.save(false), "saved", false).expect("saved output loads");
            for (t, u) in rs.tables.iter().zip(&again.tables) {
                let (Some(t), Some(u)) = (t, u) else { continue };
                for c in t.chains() {
                    let d = u.chain(&c.name).expect("the chain is saved");
                    for (i, (a, b)) in c.rules.iter().zip(d.rules.iter()).enumerate() {
                        assert!(a == b, "seed {seed}: {} rule {i} differs when loaded again", c.name);
                        assert_eq!(a.fingerprint(), b.fingerprint(), "seed {seed}: {} rule {i}", c.name);
                        let at = rtrouter::ruleset::position_of(&c.rules, b);
                        assert!(
                            at.is_some_and(|at| at <= i),
                            "seed {seed}: {} rule {i} not found",
                            c.name
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 5000, "only {checked} rules checked");
}
