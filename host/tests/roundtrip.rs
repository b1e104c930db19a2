//! Property: for any ruleset the parser accepts, `load(save(x)) == x`, and `save` is a fixed
//! point. Rulesets are built from random combinations of real option fragments, so that most
//! generated inputs load and every extension's printer is exercised.

use proptest::prelude::*;
use rtrouter::ruleset::{restore::restore, Ruleset};

/// Option fragments with the protocol they need (0 = none).
const FRAGMENTS: &[(&str, u8)] = &[
    ("-s 10.1.2.3/8", 0),
    ("! -d 192.168.0.0/255.255.0.255", 0),
    ("-i eth+", 0),
    ("! -o wan0", 0),
    ("-f", 0),
    ("-m tcp --sport 1024: --dport 80", 6),
    ("-m tcp ! --tcp-flags SYN,RST,ACK SYN", 6),
    ("--syn", 6),
    ("-m tcp --tcp-option 2", 6),
    ("-m udp --dport 53", 17),
    ("-m icmp --icmp-type 3/4", 1),
    ("-m icmp ! --icmp-type echo-request", 1),
    ("-m multiport --dports 22,80,8000:8080", 6),
    ("-m comment --comment \"a \\\"quoted\\\" comment\"", 0),
    ("-m addrtype --dst-type LOCAL,BROADCAST", 0),
    ("-m statistic --mode random --probability 0.3333333333", 0),
    ("-m statistic --mode nth --every 3 --packet 1", 0),
    (
        "-m conntrack --ctstate RELATED,ESTABLISHED --ctorigdst 10.0.0.0/8 --ctorigdstport 80",
        0,
    ),
    ("-m conntrack ! --ctstatus ASSURED --ctexpire 5:60 --ctdir REPLY", 0),
    ("-m state --state NEW", 0),
    ("-m mark --mark 0x10/0xf0", 0),
    ("-m connmark ! --mark 7", 0),
    ("-m iprange --src-range 10.0.0.1-10.0.0.9", 0),
    ("-m limit --limit 7/hour --limit-burst 9", 0),
    ("-m limit --limit 3/sec", 0),
    ("-m length --length 40:1500", 0),
    ("-m ttl --ttl-lt 5", 0),
    ("-m pkttype --pkt-type broadcast", 0),
    (
        "-m recent --rcheck --seconds 60 --reap --hitcount 3 --name X --rdest",
        0,
    ),
    ("-m nfacct --nfacct-name counted", 0),
    ("-m sctp --dport 3868", 132),
];

const TARGETS: &[(&str, &str, u8)] = &[
    ("filter", "-j ACCEPT", 0),
    ("filter", "-j DROP", 0),
    ("filter", "-j REJECT --reject-with icmp-host-prohibited", 0),
    ("filter", "-j REJECT --reject-with tcp-reset", 6),
    ("filter", "-j LOG --log-prefix \"x: \" --log-level 6 --log-uid", 0),
    ("filter", "-j NFLOG --nflog-group 3 --nflog-threshold 2", 0),
    ("filter", "-j MARK --or-mark 0x4000", 0),
    ("filter", "-j CONNMARK --save-mark --mask 0xff", 0),
    ("filter", "-j USER", 0),
    ("filter", "-g USER", 0),
    ("filter", "", 0),
    (
        "nat",
        "-j DNAT --to-destination 10.0.0.1-10.0.0.3:8080-8081 --random",
        6,
    ),
    ("nat", "-j MASQUERADE --to-ports 1024-2048 --random-fully", 17),
    ("nat", "-j SNAT --to-source 1.2.3.4 --persistent", 0),
    ("nat", "-j REDIRECT --to-ports 3128", 6),
    ("raw", "-j CT --notrack", 0),
    ("raw", "-j CT --zone 5 --ctevents new,destroy", 0),
    ("mangle", "-j TTL --ttl-dec 1", 0),
    ("mangle", "-j TCPMSS --set-mss 1400", 6),
    ("mangle", "-j CHECKSUM --checksum-fill", 0),
];

fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        _ => "sctp",
    }
}

prop_compose! {
    fn rule()(frags in proptest::sample::subsequence(FRAGMENTS.to_vec(), 0..4), t in proptest::sample::select(TARGETS.to_vec()))
        -> (String, String) {
        let mut proto = t.2;
        let mut parts = vec![];
        for (f, p) in &frags {
            if *p != 0 && proto != 0 && *p != proto { continue; }
            if *p != 0 { proto = *p; }
            parts.push(f.to_string());
        }
        let mut spec = String::new();
        if proto != 0 { spec += &format!("-p {} ", proto_name(proto)); }
        // TCPMSS needs a SYN match.
        if t.1.contains("TCPMSS") && !parts.iter().any(|p| p.contains("SYN") || p == "--syn") { parts.push("--syn".into()); }
        spec += &parts.join(" ");
        spec += " ";
        spec += t.1;
        (t.0.to_string(), spec)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]
    #[test]
    fn load_save_load_is_identity(rules in proptest::collection::vec(rule(), 1..12)) {
        let mut script = String::new();
        for table in ["raw", "mangle", "nat", "filter"] {
            let mine: Vec<&(String, String)> = rules.iter().filter(|(t, _)| t == table).collect();
            if mine.is_empty() { continue; }
            script += &format!("*{table}\n:USER - [0:0]\n");
            let chain = match table { "nat" => "PREROUTING", "raw" => "PREROUTING", "mangle" => "FORWARD", _ => "FORWARD" };
            for (_, spec) in mine { script += &format!("-A {chain} {spec}\n"); }
            script += "COMMIT\n";
        }
        let x = match restore(&Ruleset::default(), &script, "gen", false) {
            Ok(x) => x,
            // Some combinations are invalid on purpose (e.g. a NAT port without -p tcp); what
            // matters is that whatever loads round-trips.
            Err(_) => return Ok(()),
        };
        let saved = x.save(false);
        let y = restore(&Ruleset::default(), &saved, "saved", false).map_err(|e| TestCaseError::fail(format!("{e}\n{saved}")))?;
        prop_assert_eq!(&y, &x, "{}", saved);
        prop_assert_eq!(y.save(false), saved);
    }
}

#[test]
fn generated_rulesets_mostly_load() {
    // Guards the property above against testing nothing: a fixed sample must load.
    let script = "*filter\n:USER - [0:0]\n-A FORWARD -p tcp -m tcp --dport 80 -m conntrack --ctstate NEW -j USER\n-A USER -m limit --limit 7/hour -j LOG\nCOMMIT\n";
    let x = restore(&Ruleset::default(), script, "gen", false).expect("loads");
    let y = restore(&Ruleset::default(), &x.save(false), "saved", false).expect("reloads");
    assert_eq!(x, y);
}
