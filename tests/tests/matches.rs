//! Every match, table-driven: a FORWARD chain with policy DROP and one rule
//! `-A FORWARD <spec> -j ACCEPT`; a packet is forwarded exactly when the spec matches it.

use rtrouter::eval::state::{IpSet, IpSets};
use rtrouter::eval::{Ct, CtInfo, CtState};
use rtrouter::packet::build::{self, Ip4, TcpSeg};
use rtrouter::packet::parse;
use rtrouter::router::Disposition;
use rtrouter_tests::{icmp_echo, ip, refresh_checksums, tcp, udp, Lab};

fn lab(spec: &str) -> Lab {
    Lab::new(&format!(
        "*filter\n:FORWARD DROP [0:0]\n-A FORWARD {spec} -j ACCEPT\nCOMMIT\n"
    ))
}

/// Rows of (rule spec, ingress interface, packet, expected match).
fn table(rows: &[(&str, &str, Vec<u8>, bool)]) {
    for (spec, iface, pkt, want) in rows {
        let mut l = lab(spec);
        let s = l.send(iface, pkt);
        assert_eq!(
            s.forwarded(),
            *want,
            "`{spec}` on {:?}: expected match={want}, got {:?}",
            parse(pkt).unwrap(),
            s.outcome.disposition
        );
    }
}

const A: &str = "10.0.1.2";
const B: &str = "192.0.2.9";

#[test]
fn base_addresses_interfaces_protocol() {
    table(&[
        ("-s 10.0.1.0/24", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-s 10.0.9.0/24", "lan0", tcp(A, 1, B, 80, 2), false),
        ("! -s 10.0.9.0/24", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-d 192.0.2.0/255.255.255.0", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-d 192.0.2.8/255.255.255.254", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-d 192.0.2.10/31", "lan0", tcp(A, 1, B, 80, 2), false),
        ("-i lan0", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-i lan+", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-i wan+", "lan0", tcp(A, 1, B, 80, 2), false),
        ("! -i wan0", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-o wan0", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-o lan0", "lan0", tcp(A, 1, B, 80, 2), false),
        ("-p tcp", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-p 17", "lan0", udp(A, 1, B, 53), true),
        ("! -p udp", "lan0", udp(A, 1, B, 53), false),
        ("-p icmp", "lan0", icmp_echo(A, B), true),
    ]);
}

#[test]
fn fragments() {
    let frag = |off: u16| {
        let mut b = Vec::new();
        build::raw(&mut b, Ip4::new(ip(A), ip(B), 17), &[0u8; 16]);
        // More-fragments set, offset in 8-byte units; fix the header checksum.
        let v = 0x2000 | (off / 8);
        b[6..8].copy_from_slice(&v.to_be_bytes());
        refresh_checksums(&mut b);
        b
    };
    // With the connection state fixed by the caller (as `trace` does), conntrack and its
    // reassembly stand aside and the rules meet the fragments themselves.
    let untracked = |spec: &str, pkt: Vec<u8>| {
        let mut l = lab(spec);
        l.send_ct(Some("lan0"), &pkt, 0, Some(Ct::Untracked)).forwarded()
    };
    assert!(untracked("-f", frag(8)));
    assert!(!untracked("-f", frag(0)));
    assert!(untracked("! -f", frag(0)));
    assert!(!untracked("! -f", frag(8)));
    // Port matches never match a non-first fragment.
    assert!(!untracked("-p udp -m udp --dport 0:65535", frag(8)));
    // Otherwise fragments are reassembled first, as with nf_defrag_ipv4: the rules see the
    // whole datagram, never a fragment.
    let mut whole = Vec::new();
    build::udp(&mut whole, Ip4::new(ip(A), ip(B), 17), 5000, 53, &[7u8; 40]);
    let (first, second) = {
        let mut v = Vec::new();
        rtrouter::packet::frag::fragment(&whole, 44, &mut Vec::new(), &mut |f| v.push(f.to_vec())).unwrap();
        (v[0].clone(), v[1].clone())
    };
    for (spec, want) in [
        ("-f", false),
        ("! -f", true),
        ("-p udp -m udp --dport 53 -m length --length 68", true),
    ] {
        let mut l = lab(spec);
        assert_eq!(l.send("lan0", &first).outcome.disposition, Disposition::Held, "{spec}");
        let s = l.send("lan0", &second);
        assert_eq!(s.forwarded(), want, "{spec}");
    }
}

#[test]
fn tcp_udp_sctp_ports_flags_options() {
    let mss_syn = {
        // A SYN with an MSS option (kind 2).
        let mut b = tcp(A, 1000, B, 80, 2);
        b.extend_from_slice(&[2, 4, 5, 180]); // MSS 1460
        b[2..4].copy_from_slice(&44u16.to_be_bytes());
        b[32] = 6 << 4; // data offset: 6 words
        refresh_checksums(&mut b);
        b
    };
    let mut sctp = Vec::new();
    build::sctp_init(&mut sctp, Ip4::new(ip(A), ip(B), 132), 5000, 3868, 9);
    table(&[
        ("-p tcp --dport 80", "lan0", tcp(A, 1000, B, 80, 2), true),
        ("-p tcp --dport 81:90", "lan0", tcp(A, 1000, B, 80, 2), false),
        ("-p tcp --sport 1000:1000", "lan0", tcp(A, 1000, B, 80, 2), true),
        ("-p tcp ! --sport 1000", "lan0", tcp(A, 1000, B, 80, 2), false),
        ("-p tcp --syn", "lan0", tcp(A, 1, B, 80, 0x02), true),
        ("-p tcp --syn", "lan0", tcp(A, 1, B, 80, 0x12), false),
        ("-p tcp ! --syn", "lan0", tcp(A, 1, B, 80, 0x10), true),
        ("-p tcp --tcp-flags ALL NONE", "lan0", tcp(A, 1, B, 80, 0), true),
        (
            "-p tcp --tcp-flags SYN,FIN SYN,FIN",
            "lan0",
            tcp(A, 1, B, 80, 0x03),
            true,
        ),
        ("-p tcp --tcp-option 2", "lan0", mss_syn.clone(), true),
        ("-p tcp --tcp-option 2", "lan0", tcp(A, 1, B, 80, 2), false),
        ("-p tcp ! --tcp-option 3", "lan0", mss_syn, true),
        ("-p udp --dport 53", "lan0", udp(A, 5353, B, 53), true),
        ("-p udp --sport 1:1024", "lan0", udp(A, 5353, B, 53), false),
        ("-p sctp -m sctp --dport 3868", "lan0", sctp.clone(), true),
        ("-p sctp -m sctp --sport 1:10", "lan0", sctp, false),
        (
            "-p tcp -m multiport --dports 22,80,443",
            "lan0",
            tcp(A, 1, B, 80, 2),
            true,
        ),
        (
            "-p tcp -m multiport --dports 8000:9000",
            "lan0",
            tcp(A, 1, B, 80, 2),
            false,
        ),
        ("-p tcp -m multiport --ports 1", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-p tcp -m multiport ! --sports 1,2", "lan0", tcp(A, 1, B, 80, 2), false),
    ]);
}

#[test]
fn icmp_types() {
    let unreach = |code| {
        let mut b = Vec::new();
        build::icmp(&mut b, Ip4::new(ip(A), ip(B), 1), 3, code, [0; 4], &[0u8; 28]);
        b
    };
    table(&[
        ("-p icmp --icmp-type echo-request", "lan0", icmp_echo(A, B), true),
        ("-p icmp --icmp-type any", "lan0", icmp_echo(A, B), true),
        ("-p icmp --icmp-type 0", "lan0", icmp_echo(A, B), false),
        ("-p icmp ! --icmp-type echo-reply", "lan0", icmp_echo(A, B), true),
        ("-p icmp --icmp-type port-unreachable", "lan0", unreach(3), true),
        ("-p icmp --icmp-type port-unreachable", "lan0", unreach(1), false),
        ("-p icmp --icmp-type destination-unreachable", "lan0", unreach(1), true),
    ]);
}

#[test]
fn comment_addrtype_length_ttl_iprange_pkttype() {
    table(&[
        ("-m comment --comment \"anything\"", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-m addrtype --src-type UNICAST", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-m addrtype --dst-type LOCAL", "lan0", tcp(A, 1, B, 80, 2), false),
        (
            "-m addrtype ! --dst-type LOCAL,BROADCAST",
            "lan0",
            tcp(A, 1, B, 80, 2),
            true,
        ),
        ("-m length --length 40", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-m length --length 41:1500", "lan0", tcp(A, 1, B, 80, 2), false),
        ("-m length ! --length 0:39", "lan0", tcp(A, 1, B, 80, 2), true),
        // The TTL match sees the packet after the forwarding decrement (64 -> 63).
        ("-m ttl --ttl-eq 63", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-m ttl --ttl-lt 63", "lan0", tcp(A, 1, B, 80, 2), false),
        ("-m ttl --ttl-gt 62", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-m ttl ! --ttl-eq 63", "lan0", tcp(A, 1, B, 80, 2), false),
        (
            "-m iprange --src-range 10.0.1.1-10.0.1.5",
            "lan0",
            tcp(A, 1, B, 80, 2),
            true,
        ),
        (
            "-m iprange --dst-range 192.0.2.1-192.0.2.8",
            "lan0",
            tcp(A, 1, B, 80, 2),
            false,
        ),
        (
            "-m iprange ! --dst-range 192.0.2.1-192.0.2.8",
            "lan0",
            tcp(A, 1, B, 80, 2),
            true,
        ),
        ("-m pkttype --pkt-type unicast", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-m pkttype --pkt-type multicast", "lan0", tcp(A, 1, B, 80, 2), false),
    ]);
}

#[test]
fn addrtype_local_and_limit_iface() {
    // Packets to the router's own addresses go to INPUT.
    let rules = |spec: &str| format!("*filter\n:INPUT DROP [0:0]\n-A INPUT {spec} -j ACCEPT\nCOMMIT\n");
    for (spec, dst, want) in [
        ("-m addrtype --dst-type LOCAL", "10.0.1.1", true),
        ("-m addrtype --dst-type LOCAL --limit-iface-in", "10.0.1.1", true),
        // 10.0.2.1 is local, but not on lan0, the packet's ingress interface.
        ("-m addrtype --dst-type LOCAL --limit-iface-in", "10.0.2.1", false),
        ("-m addrtype --dst-type BROADCAST", "10.0.1.255", true),
        ("-m pkttype --pkt-type broadcast", "10.0.1.255", true),
        ("-m pkttype --pkt-type broadcast", "255.255.255.255", true),
        ("-m addrtype --dst-type MULTICAST", "224.0.0.251", true),
    ] {
        let mut l = Lab::new(&rules(spec));
        let s = l.send("lan0", &udp(A, 1, dst, 9));
        assert_eq!(s.local(), want, "{spec} to {dst}: {:?}", s.outcome);
    }
}

#[test]
fn mark_and_connmark() {
    let ct = |mark| {
        Some(Ct::Tracked(CtInfo {
            mark,
            ..CtInfo::new_from(&parse(&tcp(A, 1, B, 80, 2)).unwrap())
        }))
    };
    for (spec, mark, ctmark, want) in [
        ("-m mark --mark 0x4000/0x4000", 0x4001, 0, true),
        ("-m mark --mark 0x4000/0x4000", 0x0001, 0, false),
        ("-m mark ! --mark 1", 2, 0, true),
        ("-m connmark --mark 7", 0, 7, true),
        ("-m connmark --mark 7/0xf", 0, 0x17, true),
        ("-m connmark ! --mark 7", 0, 7, false),
    ] {
        let mut l = lab(spec);
        let s = l.send_ct(Some("lan0"), &tcp(A, 1, B, 80, 2), mark, ct(ctmark));
        assert_eq!(s.forwarded(), want, "{spec} mark={mark:#x} ctmark={ctmark:#x}");
    }
    // Without a connection, connmark never matches (xt_connmark returns false).
    let mut l = lab("-m connmark ! --mark 7");
    assert!(!l
        .send_ct(Some("lan0"), &tcp(A, 1, B, 80, 2), 0, Some(Ct::Invalid))
        .forwarded());
}

#[test]
fn conntrack_and_state() {
    let h = parse(&tcp(A, 1234, B, 80, 0x10)).unwrap();
    let est = Some(Ct::Tracked(CtInfo {
        state: CtState::Established,
        status: 0b1010,
        ..CtInfo::new_from(&h)
    }));
    let rel = Some(Ct::Tracked(CtInfo {
        state: CtState::Related,
        ..CtInfo::new_from(&h)
    }));
    let reply = Some(Ct::Tracked(CtInfo {
        state: CtState::Established,
        reply_dir: true,
        ..CtInfo::new_from(&h)
    }));
    let new = None;
    let cases: Vec<(&str, Option<Ct>, bool)> = vec![
        ("-m conntrack --ctstate NEW", new, true),
        ("-m conntrack --ctstate NEW", est, false),
        ("-m conntrack --ctstate RELATED,ESTABLISHED", est, true),
        ("-m conntrack --ctstate RELATED", rel, true),
        ("-m conntrack ! --ctstate NEW", rel, true),
        ("-m conntrack --ctstate INVALID", Some(Ct::Invalid), true),
        ("-m conntrack --ctstate UNTRACKED", Some(Ct::Untracked), true),
        ("-m state --state ESTABLISHED", est, true),
        ("-m state --state NEW", Some(Ct::Invalid), false),
        ("-m conntrack --ctproto tcp", est, true),
        ("-m conntrack --ctproto udp", est, false),
        ("-m conntrack --ctorigsrc 10.0.1.0/24", est, true),
        ("-m conntrack --ctorigdst 192.0.2.9 --ctorigdstport 80", est, true),
        ("-m conntrack --ctrepldst 10.0.1.2 --ctreplsrcport 80", est, true),
        ("-m conntrack --ctorigsrcport 1:1000", est, false),
        ("-m conntrack --ctstatus SEEN_REPLY", est, true),
        ("-m conntrack --ctstatus ASSURED", est, false),
        ("-m conntrack --ctdir ORIGINAL", est, true),
        ("-m conntrack --ctdir REPLY", reply, true),
        ("-m conntrack --ctdir REPLY", est, false),
        // Without a connection only pure state tests can match.
        ("-m conntrack --ctstate INVALID --ctproto tcp", Some(Ct::Invalid), false),
    ];
    for (spec, ct, want) in cases {
        let mut l = lab(spec);
        let s = l.send_ct(Some("lan0"), &tcp(A, 1234, B, 80, 0x10), 0, ct);
        assert_eq!(s.forwarded(), want, "{spec} with {ct:?}");
    }
}

#[test]
fn statistic_random_is_a_fair_draw_and_nth_counts() {
    let mut l = lab("-m statistic --mode random --probability 0.25");
    let n = 20_000;
    let hits = (0..n)
        .filter(|i| l.send("lan0", &tcp(A, (*i % 60000) as u16 + 1, B, 80, 2)).forwarded())
        .count();
    let f = hits as f64 / f64::from(n);
    // 20000 draws at p=0.25: the standard deviation of the fraction is about 0.003.
    assert!((0.23..0.27).contains(&f), "fraction {f}");

    let mut l = lab("-m statistic --mode nth --every 3 --packet 1");
    let pattern: Vec<bool> = (0..7)
        .map(|_| l.send("lan0", &tcp(A, 1, B, 80, 2)).forwarded())
        .collect();
    // Counter starts at every-1-packet = 1: the 2nd, 5th, 8th… packets match.
    assert_eq!(pattern, [false, true, false, false, true, false, false]);

    let mut l = lab("-m statistic --mode nth ! --every 2 --packet 0");
    let pattern: Vec<bool> = (0..4)
        .map(|_| l.send("lan0", &tcp(A, 1, B, 80, 2)).forwarded())
        .collect();
    assert_eq!(pattern, [false, true, false, true]);
}

#[test]
fn limit_is_a_token_bucket() {
    let mut l = lab("-m limit --limit 2/sec --limit-burst 3");
    let mut hits = vec![];
    for _ in 0..5 {
        hits.push(l.send("lan0", &tcp(A, 1, B, 80, 2)).forwarded());
    }
    assert_eq!(hits, [true, true, true, false, false]);
    l.now += 500_000_000; // half a second buys one packet at 2/sec
    assert!(l.send("lan0", &tcp(A, 1, B, 80, 2)).forwarded());
    assert!(!l.send("lan0", &tcp(A, 1, B, 80, 2)).forwarded());
}

#[test]
fn a_rule_kept_through_a_change_of_its_chain_keeps_its_state() {
    use rtrouter::ruleset::{restore::restore, validate::validate_change, Env};
    let change = |l: &Lab, text: &str| {
        let cur = l.router.engine().rules().clone();
        let next = restore(&cur.source(), text, "change", true).unwrap();
        l.router
            .swap_rules(validate_change(&cur, &next, &Env::default()).unwrap());
    };
    let mut l = lab("-m limit --limit 1/hour --limit-burst 2");
    let hits = |l: &mut Lab| l.send("lan0", &tcp(A, 1, B, 80, 2)).forwarded();
    assert!(hits(&mut l) && hits(&mut l) && !hits(&mut l), "the burst is spent");
    // Rules added before and after it in its chain: each rule is its own object (as with
    // iptables-nft), so the kept rule keeps its empty bucket.
    change(
        &l,
        "*filter\n-I FORWARD -p udp -j ACCEPT\n-A FORWARD -p icmp -j ACCEPT\nCOMMIT\n",
    );
    assert!(!hits(&mut l), "still spent");
    assert!(
        l.send("lan0", &udp(A, 1, B, 53)).forwarded(),
        "the rule added before it"
    );
    assert!(l.send("lan0", &icmp_echo(A, B)).forwarded(), "the rule added after it");
    // The same rule added again is a new rule, with a full bucket.
    change(
        &l,
        "*filter\n-I FORWARD 2 -m limit --limit 1/hour --limit-burst 2 -j ACCEPT\nCOMMIT\n",
    );
    assert!(
        hits(&mut l) && hits(&mut l) && !hits(&mut l),
        "the new rule's burst, then spent"
    );
}

#[test]
fn ipset_match() {
    let sets = IpSets::default();
    let s = IpSet::with_entries(rtrouter::ipset::SetType::HashNet, &["192.0.2.0/28"]).unwrap();
    sets.insert("blocked", s);
    for (spec, want) in [
        ("-m set --match-set blocked dst", true),
        ("-m set --match-set blocked src", false),
        ("-m set ! --match-set blocked src", true),
    ] {
        let mut l = Lab::with_sets(
            &format!("*filter\n:FORWARD DROP [0:0]\n-A FORWARD {spec} -j ACCEPT\nCOMMIT\n"),
            sets.clone(),
        );
        assert_eq!(l.send("lan0", &tcp(A, 1, B, 80, 2)).forwarded(), want, "{spec}");
    }
}

#[test]
fn recent_set_check_update_remove() {
    // kube-proxy's session affinity: --set on the way in, --rcheck --seconds later.
    let rules = "*filter\n:FORWARD DROP [0:0]\n\
        -A FORWARD -p tcp --dport 1 -m recent --name aff --set -j ACCEPT\n\
        -A FORWARD -p tcp --dport 2 -m recent --name aff --rcheck --seconds 10 --reap -j ACCEPT\n\
        -A FORWARD -p tcp --dport 3 -m recent --name aff --rcheck --hitcount 2 -j ACCEPT\n\
        -A FORWARD -p tcp --dport 4 -m recent --name aff --remove -j ACCEPT\n\
        -A FORWARD -p tcp --dport 5 -m recent --name aff --update --seconds 10 -j ACCEPT\n\
        COMMIT\n";
    let mut l = Lab::new(rules);
    let go = |l: &mut Lab, port| l.send("lan0", &tcp(A, 999, B, port, 2)).forwarded();
    assert!(!go(&mut l, 2), "not seen yet");
    assert!(go(&mut l, 1), "--set always matches");
    assert!(go(&mut l, 2), "seen within 10 s");
    assert!(!go(&mut l, 3), "seen once, hitcount 2 needs two");
    assert!(go(&mut l, 1));
    assert!(go(&mut l, 3), "seen twice now");
    l.now += 11_000_000_000;
    assert!(!go(&mut l, 2), "older than 10 s (and reaped)");
    assert!(go(&mut l, 1));
    assert!(go(&mut l, 5), "--update matches and refreshes");
    l.now += 9_000_000_000;
    assert!(go(&mut l, 5), "refreshed 9 s ago");
    assert!(go(&mut l, 4), "--remove matches an existing entry");
    assert!(!go(&mut l, 2), "removed");
    // Lists are kept by name across a ruleset swap, as the kernel keeps them.
    assert!(go(&mut l, 1));
    let again = rtrouter::ruleset::restore::restore(&Default::default(), rules, "r", false).unwrap();
    l.router
        .swap_rules(rtrouter::ruleset::validate(&again, &Default::default()).unwrap());
    assert!(go(&mut l, 2), "survives the swap");
}

#[test]
fn nfacct_counts_and_matches() {
    let mut l = lab("-m nfacct --nfacct-name web");
    assert!(l.send("lan0", &tcp(A, 1, B, 80, 2)).forwarded());
    assert!(l.send("lan0", &tcp(A, 1, B, 80, 2)).forwarded());
    assert_eq!(l.router.shared().nfacct_values(), vec![("web".to_string(), (2, 80))]);
}

#[test]
fn ipv6_packets_do_not_meet_iptables_rules() {
    // As netfilter: IPv4 packets traverse iptables' tables, IPv6 packets ip6tables' tables.
    // rtrouter loads no ip6tables ruleset yet, so IPv6 packets meet empty built-in chains
    // whose policy is ACCEPT, whatever the IPv4 rules say (no `! -s 10.0.0.0/8 -j DROP`
    // dropping them, no IPv4 policy DROP either).
    let mut v6 = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
    v6.extend_from_slice(&"2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    v6.extend_from_slice(&"2001:db8:1::2".parse::<std::net::Ipv6Addr>().unwrap().octets());
    let mut t = Vec::new();
    build::tcp(
        &mut t,
        Ip4::new(ip(A), ip(B), 6),
        TcpSeg {
            sport: 5,
            dport: 443,
            seq: 0,
            ack: 0,
            flags: 2,
            window: 1,
        },
        b"",
    );
    v6.extend_from_slice(&t[20..]);
    for rules in [
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 443 -j DROP\nCOMMIT\n",
        "*filter\n-A INPUT ! -s 10.0.0.0/8 -j DROP\nCOMMIT\n",
        "*filter\n-A INPUT -m iprange ! --src-range 10.0.0.1-10.0.0.9 -j DROP\nCOMMIT\n",
    ] {
        let mut l = Lab::new(rules);
        l.router.topo.local.insert("2001:db8:1::2".parse().unwrap());
        assert!(l.send("lan0", &v6).local(), "{rules}");
        assert_eq!(
            l.router
                .engine()
                .rule_counters(rtrouter::ruleset::TableKind::Filter, "INPUT", 0),
            (0, 0),
            "{rules}"
        );
    }
    // The same IPv4 packet is dropped by each.
    let mut l = Lab::new("*filter\n-A INPUT ! -s 192.168.0.0/16 -j DROP\nCOMMIT\n");
    assert!(l.send("lan0", &tcp(A, 5, "10.0.1.1", 443, 2)).dropped());
}

#[test]
fn reversed_udp_range_loads_and_matches_nothing() {
    // libxt_udp (iptables 1.8.9) keeps `1024:1023`; the kernel's port_match never holds.
    let mut l = Lab::new(
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -p udp -m udp --sport 1024:1023 -j ACCEPT\n-A INPUT -p udp -m udp ! --dport 9:8 -j REJECT\nCOMMIT\n",
    );
    let saved = l.router.engine().save(false);
    assert!(
        saved.contains("-A INPUT -p udp -m udp --sport 1024:1023 -j ACCEPT"),
        "{saved}"
    );
    assert!(
        saved.contains("-A INPUT -p udp -m udp ! --dport 9:8 -j REJECT"),
        "{saved}"
    );
    for sport in [1023, 1024, 5000] {
        let s = l.send("lan0", &udp(A, sport, "10.0.1.1", 53));
        assert!(
            s.outcome.rejected,
            "sport {sport}: the reversed range matched nothing, the negated one everything"
        );
    }
    // libxt_tcp refuses it.
    let rs = rtrouter::ruleset::restore::restore(
        &Default::default(),
        "*filter\n-A INPUT -p tcp -m tcp --sport 1024:1023\nCOMMIT\n",
        "t",
        false,
    );
    assert!(rs.is_err());
}

/// A TCP packet from A to B with the TOS byte `tos`.
fn tcp_tos(tos: u8) -> Vec<u8> {
    let mut p = tcp(A, 1, B, 80, 2);
    p[1] = tos;
    refresh_checksums(&mut p);
    p
}

#[test]
fn tos_and_dscp() {
    table(&[
        ("-m tos --tos 0x10", "lan0", tcp_tos(0x10), true),
        ("-m tos --tos 0x10", "lan0", tcp_tos(0x11), false),
        // Names mean their value under 0x3f: ECN bits are ignored... and so is the top of DSCP.
        ("-m tos --tos Minimize-Delay", "lan0", tcp_tos(0x10 | 0x40), true),
        ("-m tos ! --tos Minimize-Delay", "lan0", tcp_tos(0x08), true),
        ("-m tos --tos 0x0f/0x0f", "lan0", tcp_tos(0xff), true),
        ("-m dscp --dscp 0x2e", "lan0", tcp_tos(0x2e << 2 | 0x01), true),
        ("-m dscp --dscp-class EF", "lan0", tcp_tos(0xb8), true),
        ("-m dscp --dscp-class AF11", "lan0", tcp_tos(0xb8), false),
        ("-m dscp ! --dscp 0", "lan0", tcp_tos(0x00), false),
    ]);
}

#[test]
fn inputs_a_tun_router_lacks_match_as_the_kernel_without_them() {
    // No Ethernet header: mac never matches, negated or not.
    table(&[
        (
            "-m mac --mac-source 00:11:22:33:44:55",
            "lan0",
            tcp(A, 1, B, 80, 2),
            false,
        ),
        (
            "-m mac ! --mac-source 00:11:22:33:44:55",
            "lan0",
            tcp(A, 1, B, 80, 2),
            false,
        ),
        // No bridge: physdev matches exactly when every given option is negated.
        ("-m physdev --physdev-is-bridged", "lan0", tcp(A, 1, B, 80, 2), false),
        ("-m physdev ! --physdev-is-bridged", "lan0", tcp(A, 1, B, 80, 2), true),
        (
            "-m physdev ! --physdev-in eth0 ! --physdev-is-in",
            "lan0",
            tcp(A, 1, B, 80, 2),
            true,
        ),
        (
            "-m physdev ! --physdev-in eth0 --physdev-is-in",
            "lan0",
            tcp(A, 1, B, 80, 2),
            false,
        ),
        // No IPsec: --pol none matches everything, --pol ipsec nothing.
        ("-m policy --dir in --pol none", "lan0", tcp(A, 1, B, 80, 2), true),
        ("-m policy --dir in --pol ipsec", "lan0", tcp(A, 1, B, 80, 2), false),
        (
            "-m policy --dir out --pol ipsec --proto esp",
            "lan0",
            tcp(A, 1, B, 80, 2),
            false,
        ),
    ]);
}

#[test]
fn owner_matches_the_routers_own_packets() {
    // Forwarded packets have no socket: only fully negated owner rules match them.
    let fwd = |spec: &str| {
        let mut l = Lab::new(&format!("*mangle\n-A POSTROUTING {spec} -j DROP\nCOMMIT\n"));
        l.send("lan0", &tcp(A, 1, B, 80, 2)).dropped()
    };
    assert!(!fwd("-m owner --uid-owner 0-4294967294"));
    assert!(fwd("-m owner ! --uid-owner 0-4294967294"));
    assert!(!fwd("-m owner --socket-exists"));
    assert!(fwd("-m owner ! --socket-exists"));
    // The router's own packets (here: a REJECT reply) are sent as the router process.
    let uid = nix::unistd::geteuid().as_raw();
    for (spec, want) in [
        (format!("-m owner --uid-owner {uid}"), true),
        (format!("-m owner ! --uid-owner {uid}"), false),
        ("-m owner --socket-exists".to_string(), true),
    ] {
        let mut l = Lab::new(&format!(
            "*filter\n-A FORWARD -j REJECT\n-A OUTPUT {spec} -j DROP\nCOMMIT\n"
        ));
        let s = l.send("lan0", &tcp(A, 1, B, 80, 2));
        let dropped = matches!(s.reply, Some((_, rtrouter::router::Disposition::Drop(_))));
        assert!(s.reply.is_some(), "{spec}: REJECT answers");
        assert_eq!(
            dropped, want,
            "{spec}: the reply is dropped exactly when the rule matches"
        );
    }
}

#[test]
fn cgroup_matches_the_routers_own_packets_by_its_cgroup() {
    // Forwarded packets have no socket: the match fails, negated or not (cgroup_mt_v1).
    let fwd = |spec: &str| {
        let mut l = Lab::new(&format!("*mangle\n-A POSTROUTING {spec} -j DROP\nCOMMIT\n"));
        l.send("lan0", &tcp(A, 1, B, 80, 2)).dropped()
    };
    for spec in [
        "-m cgroup --path /",
        "-m cgroup ! --path /",
        "-m cgroup --cgroup 0",
        "-m cgroup ! --cgroup 0",
    ] {
        assert!(!fwd(spec), "{spec}: a forwarded packet has no cgroup");
    }
    // The router's own packets (a REJECT reply) come from the router process's cgroup: at
    // or below the root, and its net_cls class id (0 without net_cls).
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("0::").map(str::to_string)))
        .unwrap_or_else(|| "/".into());
    let mut cases = vec![
        ("-m cgroup --path /".to_string(), true),
        ("-m cgroup ! --path /".to_string(), false),
        (format!("-m cgroup --path {own}"), true),
        ("-m cgroup --cgroup 0".to_string(), true),
        ("-m cgroup ! --cgroup 0".to_string(), false),
        ("-m cgroup --cgroup 7".to_string(), false),
    ];
    // A group beside the router's own (when the hierarchy has one to name) does not match.
    let mount = std::fs::read_to_string("/proc/self/mountinfo").ok().and_then(|m| {
        m.lines().find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            (post.starts_with("cgroup2 ")).then(|| pre.split(' ').nth(4).map(str::to_string))?
        })
    });
    let sibling = mount.and_then(|m| {
        std::fs::read_dir(&m).ok()?.filter_map(Result::ok).find_map(|e| {
            let name = format!("/{}", e.file_name().to_string_lossy());
            (e.path().is_dir() && !own.starts_with(&name)).then_some(name)
        })
    });
    if let Some(s) = &sibling {
        cases.push((format!("-m cgroup --path {s}"), false));
        cases.push((format!("-m cgroup ! --path {s}"), true));
    }
    for (spec, want) in cases {
        let mut l = Lab::new(&format!(
            "*filter\n-A FORWARD -j REJECT\n-A OUTPUT {spec} -j DROP\nCOMMIT\n"
        ));
        let s = l.send("lan0", &tcp(A, 1, B, 80, 2));
        assert!(s.reply.is_some(), "{spec}: REJECT answers");
        let dropped = matches!(s.reply, Some((_, rtrouter::router::Disposition::Drop(_))));
        assert_eq!(
            dropped, want,
            "{spec}: the reply is dropped exactly when the rule matches"
        );
    }
}

/// A lab whose router's own stack listens on 10.0.1.1:9100 (the metrics endpoint).
fn lab_with_listener(rules: &str) -> Lab {
    use rtrouter::ruleset::{restore::restore, validate, Env, Ruleset};
    let rs = restore(&Ruleset::default(), rules, "lab.rules", false).unwrap_or_else(|e| panic!("{e}"));
    let v = validate(&rs, &Env::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut t = rtrouter_tests::topology();
    t.listeners.push("10.0.1.1:9100".parse().unwrap());
    Lab {
        router: rtrouter::router::Router::new(t, v, IpSets::default(), 1000),
        rng: rtrouter::eval::SplitMix(7),
        now: 1_000_000_000,
    }
}

#[test]
fn socket_finds_the_routers_own_listener() {
    const L: &str = "10.0.1.1";
    // An ICMP error from the LAN host about a segment the listener sent it.
    let about_ours = {
        let quoted = tcp(L, 9100, "10.0.1.2", 40000, 0x12);
        let mut b = Vec::new();
        build::icmp(&mut b, Ip4::new(ip("10.0.1.2"), ip(L), 1), 3, 3, [0; 4], &quoted[..28]);
        b
    };
    let about_other = {
        let quoted = tcp(L, 9101, "10.0.1.2", 40000, 0x12);
        let mut b = Vec::new();
        build::icmp(&mut b, Ip4::new(ip("10.0.1.2"), ip(L), 1), 3, 3, [0; 4], &quoted[..28]);
        b
    };
    for (spec, pkt, want) in [
        ("-m socket", tcp("10.0.1.2", 40000, L, 9100, 2), true),
        ("-m socket", tcp("10.0.1.2", 40000, L, 9100, 0x10), true),
        ("-m socket --nowildcard", tcp("10.0.1.2", 40000, L, 9100, 2), true),
        ("-m socket", tcp("10.0.1.2", 40000, L, 9101, 2), false),
        ("-m socket", udp("10.0.1.2", 40000, L, 9100), false),
        ("-m socket", icmp_echo("10.0.1.2", L), false),
        // No socket of the router is transparent.
        ("-m socket --transparent", tcp("10.0.1.2", 40000, L, 9100, 2), false),
        ("-m socket", about_ours.clone(), true),
        ("-m socket", about_other.clone(), false),
    ] {
        let mut l = lab_with_listener(&format!("*mangle\n-A PREROUTING {spec} -j DROP\nCOMMIT\n"));
        assert_eq!(l.send("lan0", &pkt).dropped(), want, "{spec}");
        let mut l = lab_with_listener(&format!("*filter\n-A INPUT {spec} -j DROP\nCOMMIT\n"));
        assert_eq!(l.send("lan0", &pkt).dropped(), want, "{spec} in INPUT");
    }
    // Without a listener nothing is found.
    let mut l = Lab::new("*mangle\n-A PREROUTING -m socket -j DROP\nCOMMIT\n");
    assert!(!l.send("lan0", &tcp("10.0.1.2", 40000, L, 9100, 2)).dropped());
    // --restore-skmark gives the packet the socket's mark, 0, at once: the rule's later
    // matches and the later rules see it.
    let marked = |socket: &str| {
        let mut l = lab_with_listener(&format!(
            "*mangle\n-A PREROUTING -j MARK --set-mark 5\n-A PREROUTING {socket} -m mark --mark 0 -j MARK --set-mark 9\nCOMMIT\n\
             *filter\n-A INPUT -m mark --mark 9 -j DROP\nCOMMIT\n"
        ));
        l.send("lan0", &tcp("10.0.1.2", 40000, L, 9100, 2)).dropped()
    };
    assert!(marked("-m socket --restore-skmark"));
    assert!(!marked("-m socket"));
    assert!(!marked("-m socket --transparent --restore-skmark"));
}

#[test]
fn rateest_compares_the_rates_rateest_estimates() {
    const MS: u64 = 1_000_000;
    let rules = |m: &str| {
        format!(
            "*mangle\n-A PREROUTING -i lan0 -j RATEEST --rateest-name lan --rateest-interval 250ms --rateest-ewmalog 500ms\n\
             -A PREROUTING -i wan0 -j RATEEST --rateest-name wan --rateest-interval 250ms --rateest-ewmalog 500ms\nCOMMIT\n\
             *filter\n-A FORWARD -i lan0 -p udp --dport 9 -m rateest {m} -j DROP\nCOMMIT\n"
        )
    };
    // `pps` packets a second from the LAN for `ms`; how many of the last second's were dropped.
    let run = |l: &mut Lab, pps: u64, ms: u64| {
        let mut dropped = Vec::new();
        let step = 1000 * MS / pps;
        let end = l.now + ms * MS;
        while l.now < end {
            dropped.push(l.send("lan0", &udp(A, 1, B, 9)).dropped());
            l.now += step;
        }
        dropped.iter().rev().take(pps as usize).filter(|d| **d).count()
    };
    // Absolute: more than 50 packets a second.
    let mut l = Lab::new(&rules("--rateest lan --rateest-gt --rateest-pps 50"));
    assert_eq!(run(&mut l, 20, 5000), 0, "20/s is not above 50/s");
    assert_eq!(run(&mut l, 200, 5000), 200, "200/s is, once the average has risen");
    l.now += 10_000 * MS;
    assert_eq!(run(&mut l, 1, 1000), 0, "after a quiet spell the average has fallen");
    // The same in bytes: 200 datagrams a second of `len` bytes, against 10% less and more.
    let bits = udp(A, 1, B, 9).len() as u64 * 8 * 200;
    let mut l = Lab::new(&rules(&format!(
        "--rateest lan --rateest-gt --rateest-bps {}bit",
        bits * 9 / 10
    )));
    assert_eq!(run(&mut l, 200, 5000), 200);
    let mut l = Lab::new(&rules(&format!(
        "--rateest lan --rateest-gt --rateest-bps {}bit",
        bits * 11 / 10
    )));
    assert_eq!(run(&mut l, 200, 5000), 0);
    // Inverted, and equality never holds for a rate that is not exactly the figure.
    let mut l = Lab::new(&rules("--rateest lan ! --rateest-lt --rateest-pps 50"));
    assert_eq!(run(&mut l, 200, 5000), 200);
    // Delta: what 300/s exceeds the estimate by (about 100) is below 150, not below 50.
    let mut l = Lab::new(&rules(
        "--rateest-delta --rateest lan --rateest-pps1 300 --rateest-lt --rateest-pps2 150",
    ));
    assert_eq!(run(&mut l, 200, 5000), 200);
    let mut l = Lab::new(&rules(
        "--rateest-delta --rateest lan --rateest-pps1 300 --rateest-lt --rateest-pps2 50",
    ));
    assert_eq!(run(&mut l, 200, 5000), 0);
    // Relative: the LAN's rate against the WAN's, which nothing feeds.
    let mut l = Lab::new(&rules("--rateest1 lan --rateest-gt --rateest-pps --rateest2 wan"));
    assert_eq!(run(&mut l, 200, 2000), 200);
    let mut l = Lab::new(&rules("--rateest1 lan --rateest-lt --rateest-pps --rateest2 wan"));
    assert_eq!(run(&mut l, 200, 2000), 0);
}

#[test]
fn tcpmss_and_quota() {
    let mss_syn = |mss: u16| {
        let mut b = tcp(A, 1000, B, 80, 2);
        b.extend_from_slice(&[2, 4]);
        b.extend_from_slice(&mss.to_be_bytes());
        b[2..4].copy_from_slice(&44u16.to_be_bytes());
        b[32] = 6 << 4;
        refresh_checksums(&mut b);
        b
    };
    table(&[
        ("-p tcp -m tcpmss --mss 1460", "lan0", mss_syn(1460), true),
        ("-p tcp -m tcpmss --mss 1000:1400", "lan0", mss_syn(1460), false),
        ("-p tcp -m tcpmss ! --mss 1000:1400", "lan0", mss_syn(1460), true),
        // Without the option: only a negated rule matches.
        ("-p tcp -m tcpmss --mss 0:65535", "lan0", tcp(A, 1, B, 80, 2), false),
        ("-p tcp -m tcpmss ! --mss 1460", "lan0", tcp(A, 1, B, 80, 2), true),
    ]);
    // 100 bytes of quota: two 40-byte packets fit, the third does not; negated, the reverse.
    for (spec, want) in [
        ("-m quota --quota 100", [true, true, false]),
        ("-m quota ! --quota 100", [false, false, true]),
    ] {
        let mut l = lab(spec);
        let got: Vec<bool> = (0..3)
            .map(|_| l.send("lan0", &tcp(A, 1, B, 80, 2)).forwarded())
            .collect();
        assert_eq!(got, want, "{spec}");
    }
}

#[test]
fn esp_ah_spi_and_ecn() {
    let ipsec = |proto: u8, spi_at: usize, spi: u32| {
        let mut payload = vec![0u8; 16];
        payload[spi_at..spi_at + 4].copy_from_slice(&spi.to_be_bytes());
        let mut b = Vec::new();
        build::raw(&mut b, Ip4::new(ip(A), ip(B), proto), &payload);
        b
    };
    let ecn = |tos: u8, flags: u8| {
        let mut p = tcp(A, 1, B, 80, flags);
        p[1] = tos;
        refresh_checksums(&mut p);
        p
    };
    table(&[
        ("-p esp -m esp --espspi 100:200", "lan0", ipsec(50, 0, 150), true),
        ("-p esp -m esp --espspi 100:200", "lan0", ipsec(50, 0, 250), false),
        ("-p esp -m esp ! --espspi 100:200", "lan0", ipsec(50, 0, 250), true),
        ("-p esp -m esp", "lan0", ipsec(50, 0, 7), true),
        ("-p ah -m ah --ahspi 7", "lan0", ipsec(51, 4, 7), true),
        ("-p ah -m ah --ahspi 7", "lan0", ipsec(51, 0, 7), false),
        ("-p tcp -m ecn --ecn-tcp-ece", "lan0", ecn(0, 0x40 | 0x10), true),
        ("-p tcp -m ecn --ecn-tcp-cwr", "lan0", ecn(0, 0x40 | 0x10), false),
        (
            "-p tcp -m ecn ! --ecn-tcp-cwr --ecn-ip-ect 2",
            "lan0",
            ecn(0x02, 0x10),
            true,
        ),
        ("-m ecn --ecn-ip-ect 3", "lan0", ecn(0x01, 0x10), false),
    ]);
}

#[test]
fn string_and_helper() {
    let with_payload = |data: &[u8]| {
        let mut b = Vec::new();
        build::raw(
            &mut b,
            Ip4::new(ip(A), ip(B), 17),
            &[&[0x13, 0x88, 0x00, 0x35, 0, 0, 0, 0][..], data].concat(),
        );
        refresh_checksums(&mut b);
        b
    };
    let p = with_payload(b"GET /secret HTTP/1.1");
    table(&[
        ("-m string --string secret --algo bm", "lan0", p.clone(), true),
        ("-m string --string SECRET --algo kmp", "lan0", p.clone(), false),
        ("-m string --string SECRET --algo kmp --icase", "lan0", p.clone(), true),
        ("-m string ! --string secret --algo bm", "lan0", p.clone(), false),
        // The payload starts 28 bytes into the packet: a window that ends before it finds nothing.
        ("-m string --string GET --algo bm --to 20", "lan0", p.clone(), false),
        ("-m string --string GET --algo bm --from 28", "lan0", p.clone(), true),
        (
            "-m string --hex-string |2f736563|ret --algo bm",
            "lan0",
            p.clone(),
            true,
        ),
        // No conntrack helpers: only a negated helper match holds.
        ("-m helper --helper ftp", "lan0", p.clone(), false),
        ("-m helper ! --helper ftp", "lan0", p, true),
    ]);
}

#[test]
fn time_of_day_weekdays_monthdays_and_dates() {
    // 2024-03-04 was a Monday; midnight UTC.
    let monday = 1_709_510_400u64;
    let at = |spec: &str, hour: u64| {
        let mut l = lab(spec);
        let r = std::mem::replace(
            &mut l.router,
            rtrouter::router::Router::new(
                rtrouter_tests::topology(),
                rtrouter::ruleset::ValidRuleset::empty(),
                Default::default(),
                1,
            ),
        );
        l.router = r.with_wall_base((monday + hour * 3600) * 1_000_000_000 - l.now);
        l.send("lan0", &tcp(A, 1, B, 80, 2)).forwarded()
    };
    assert!(at("-m time --timestart 09:00 --timestop 17:00 --weekdays Mon", 10));
    assert!(!at("-m time --timestart 09:00 --timestop 17:00 --weekdays Mon", 18));
    assert!(!at("-m time --timestart 09:00 --timestop 17:00 --weekdays Tue", 10));
    assert!(at("-m time ! --weekdays Tue,Wed", 10));
    assert!(at("-m time --monthdays 4", 10));
    assert!(!at("-m time ! --monthdays 4", 10));
    // Across midnight: 01:00 on Monday is inside 22:00-02:00; with --contiguous it is
    // Sunday's span.
    assert!(at("-m time --timestart 22:00 --timestop 02:00 --weekdays Mon", 1));
    assert!(!at(
        "-m time --timestart 22:00 --timestop 02:00 --weekdays Mon --contiguous",
        1
    ));
    assert!(at(
        "-m time --timestart 22:00 --timestop 02:00 --weekdays Sun --contiguous",
        1
    ));
    assert!(!at("-m time --datestop 2024-03-01", 10));
    assert!(at("-m time --datestart 2024-03-04T09:30:00 --datestop 2024-03-05", 10));
    // --kerneltz: the kernel's timezone. At 10:00 UTC, UTC+2 reads 12:00 and UTC-11 reads
    // 23:00 on Sunday; without the flag, UTC.
    let at_tz = |spec: &str, east: i32| {
        let mut l = lab(spec);
        let r = std::mem::replace(
            &mut l.router,
            rtrouter::router::Router::new(
                rtrouter_tests::topology(),
                rtrouter::ruleset::ValidRuleset::empty(),
                Default::default(),
                1,
            ),
        );
        l.router = r
            .with_wall_base((monday + 10 * 3600) * 1_000_000_000 - l.now)
            .with_kernel_tz(east);
        l.send("lan0", &tcp(A, 1, B, 80, 2)).forwarded()
    };
    assert!(at_tz("-m time --timestart 11:30 --timestop 12:30 --kerneltz", 7200));
    assert!(!at_tz("-m time --timestart 11:30 --timestop 12:30", 7200));
    assert!(at_tz("-m time --weekdays Sun --timestart 22:30 --kerneltz", -11 * 3600));
    assert!(!at_tz("-m time --weekdays Sun --kerneltz", 0));
}

#[test]
fn sctp_chunk_types() {
    let mut init = Vec::new();
    build::sctp_init(&mut init, Ip4::new(ip(A), ip(B), 132), 5000, 3868, 9);
    table(&[
        (
            "-p sctp -m sctp --chunk-types any INIT,DATA",
            "lan0",
            init.clone(),
            true,
        ),
        (
            "-p sctp -m sctp --chunk-types all INIT,DATA",
            "lan0",
            init.clone(),
            false,
        ),
        ("-p sctp -m sctp --chunk-types only INIT", "lan0", init.clone(), true),
        ("-p sctp -m sctp --chunk-types only DATA", "lan0", init.clone(), false),
        ("-p sctp -m sctp ! --chunk-types any DATA", "lan0", init.clone(), true),
        (
            "-p sctp -m sctp --dport 3868 --chunk-types all INIT",
            "lan0",
            init,
            true,
        ),
    ]);
}

#[test]
fn rpfilter_checks_the_reverse_route() {
    let rule = |spec: &str| format!("*mangle\n-A PREROUTING -m rpfilter {spec} -j DROP\nCOMMIT\n");
    let dropped =
        |spec: &str, iface: &str, src: &str| Lab::new(&rule(spec)).send(iface, &tcp(src, 1, B, 80, 2)).dropped();
    // rpfilter matches packets that pass the check; DROP here drops them.
    assert!(dropped("", "lan0", A), "the route to 10.0.1.2 leaves through lan0");
    assert!(!dropped("", "wan0", A), "10.0.1.2 arriving on wan0 is spoofed");
    assert!(dropped("--loose", "wan0", A), "loose: any route will do");
    assert!(
        !dropped("", "lan0", "198.51.100.1"),
        "its route is the default one, through wan0"
    );
    assert!(dropped("--invert", "wan0", A), "--invert: the spoofed one matches");
    assert!(!dropped("", "lan0", "10.0.1.1"), "the router's own address");
    assert!(dropped("--accept-local", "lan0", "10.0.1.1"));
}

#[test]
fn hashlimit_buckets_per_key() {
    let mut l =
        lab("-m hashlimit --hashlimit-upto 2/sec --hashlimit-burst 2 --hashlimit-mode srcip --hashlimit-name t1");
    let from = |l: &mut Lab, src: &str| l.send("lan0", &tcp(src, 1, B, 80, 2)).forwarded();
    assert!(from(&mut l, A) && from(&mut l, A), "the burst");
    assert!(!from(&mut l, A), "over the rate");
    assert!(from(&mut l, "10.0.1.3"), "another source has its own bucket");
    l.now += 500_000_000;
    assert!(from(&mut l, A), "half a second later: one more");
    assert!(!from(&mut l, A));
    // --hashlimit-above matches what upto would not.
    let mut l = lab("-m hashlimit --hashlimit-above 1/min --hashlimit-burst 1 --hashlimit-name t2");
    assert!(!from(&mut l, A));
    assert!(from(&mut l, A));
    // Bytes: 100b/s is 96 bytes a second in the kernel's units (a cost of 2^32/7), and a 100-byte
    // burst two seconds' worth (192 bytes): four 40-byte packets, not five.
    let mut l = lab("-m hashlimit --hashlimit-upto 100b/s --hashlimit-burst 100b --hashlimit-name t3");
    let got: Vec<bool> = (0..5).map(|_| from(&mut l, A)).collect();
    assert_eq!(got, [true, true, true, true, false]);
}

#[test]
fn connbytes_counts_the_connection() {
    let mut l = lab("-m connbytes --connbytes 0:2 --connbytes-mode packets --connbytes-dir original");
    let got: Vec<bool> = (0..3).map(|_| l.send("lan0", &udp(A, 1, B, 53)).forwarded()).collect();
    assert_eq!(got, [true, true, false], "the third packet of the flow is past 2");
    // Negated: outside 2 and up. (A dropped first packet leaves no connection behind, as in
    // the kernel, so the flow has to start with an accepted one.)
    let mut l = lab("-m connbytes ! --connbytes 2 --connbytes-mode packets --connbytes-dir both");
    let got: Vec<bool> = (0..3).map(|_| l.send("lan0", &udp(A, 2, B, 53)).forwarded()).collect();
    assert_eq!(got, [true, false, false]);
    // Average packet size: one packet so far, so its own size.
    let p = udp(A, 3, B, 53);
    let n = parse(&p).unwrap().total_len;
    let mut l = lab(&format!(
        "-m connbytes --connbytes {n}:{n} --connbytes-mode avgpkt --connbytes-dir original"
    ));
    assert!(l.send("lan0", &p).forwarded());
    let mut l = lab(&format!(
        "-m connbytes --connbytes {}: --connbytes-mode avgpkt --connbytes-dir original",
        n + 1
    ));
    assert!(!l.send("lan0", &p).forwarded());
}

#[test]
fn connlimit_counts_open_connections_per_network() {
    // At most two connections per /24 source; a third is refused while they last.
    let mut l = Lab::new(
        "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -p tcp --syn -m connlimit --connlimit-above 2 --connlimit-mask 24 -j DROP\nCOMMIT\n",
    );
    let syn = |l: &mut Lab, src: &str, sport: u16| l.send("lan0", &tcp(src, sport, B, 80, 0x02)).forwarded();
    assert!(syn(&mut l, A, 1001));
    assert!(syn(&mut l, "10.0.1.3", 1002), "another host of the same /24");
    assert!(!syn(&mut l, A, 1003), "a third connection from the /24");
    assert!(syn(&mut l, "192.168.7.1", 1004), "another network counts apart");
    // Once the first two are gone from the connection table, there is room again.
    l.now += 3_600 * 1_000_000_000;
    assert!(syn(&mut l, A, 1005));
    // --connlimit-upto matches the other side of the limit.
    let mut l = lab("-p tcp -m connlimit --connlimit-upto 1 --connlimit-daddr");
    assert!(l.send("lan0", &tcp(A, 2001, B, 80, 0x02)).forwarded());
    assert!(!l.send("lan0", &tcp(A, 2002, B, 80, 0x02)).forwarded());
}

#[test]
fn u32_reads_words_at_computed_offsets() {
    // TCP 1000 -> 80: the ports word behind the IP header, found through its length.
    let syn = tcp(A, 1000, B, 80, 2);
    let udp53 = udp(A, 5353, B, 53);
    table(&[
        ("-m u32 --u32 \"0>>28=4\"", "lan0", syn.clone(), true),
        ("-m u32 --u32 \"6&0xFF=6\"", "lan0", syn.clone(), true),
        ("-m u32 --u32 \"6&0xFF=6\"", "lan0", udp53.clone(), false),
        ("-m u32 --u32 \"6&0xFF=6,17\"", "lan0", udp53.clone(), true),
        ("-m u32 --u32 \"0>>22&0x3C@0&0xFFFF=80\"", "lan0", syn.clone(), true),
        ("-m u32 --u32 \"0>>22&0x3C@0&0xFFFF=53\"", "lan0", udp53.clone(), true),
        (
            "-m u32 --u32 \"0>>22&0x3C@0>>16=1000:2000&&6&0xFF=6\"",
            "lan0",
            syn.clone(),
            true,
        ),
        ("-m u32 ! --u32 \"0>>22&0x3C@0&0xFFFF=80\"", "lan0", syn.clone(), false),
        // A read past the end fails the tests; negation then matches.
        ("-m u32 --u32 \"1000=0:0xFFFFFFFF\"", "lan0", syn.clone(), false),
        ("-m u32 ! --u32 \"1000=0:0xFFFFFFFF\"", "lan0", syn, true),
    ]);
}

#[test]
fn ipcomp_cpu_realm_devgroup_osf_cluster() {
    let comp = |cpi: u16| {
        let mut payload = vec![4u8, 0];
        payload.extend_from_slice(&cpi.to_be_bytes());
        payload.extend_from_slice(&[0; 12]);
        let mut b = Vec::new();
        build::raw(&mut b, Ip4::new(ip(A), ip(B), 108), &payload);
        b
    };
    let syn = tcp(A, 1000, B, 80, 2);
    table(&[
        ("-p ipcomp -m ipcomp --ipcompspi 0x1234", "lan0", comp(0x1234), true),
        ("-p ipcomp -m ipcomp --ipcompspi 1:0x1000", "lan0", comp(0x1234), false),
        ("-p ipcomp -m ipcomp ! --ipcompspi 1:0x1000", "lan0", comp(0x1234), true),
        // Offline, every packet is processed on CPU 0.
        ("-m cpu --cpu 0", "lan0", syn.clone(), true),
        ("-m cpu ! --cpu 0", "lan0", syn.clone(), false),
        ("-m cpu --cpu 1", "lan0", syn.clone(), false),
        // Routes carry no realm: realm 0.
        ("-m realm --realm 0x0/0xff", "lan0", syn.clone(), true),
        ("-m realm --realm 0x2a/0xff", "lan0", syn.clone(), false),
        ("-m realm ! --realm 0x2a/0xff", "lan0", syn.clone(), true),
        // Interfaces are in device group 0.
        (
            "-m devgroup --src-group 0x0/0xff --dst-group 0x0/0xff",
            "lan0",
            syn.clone(),
            true,
        ),
        ("-m devgroup --src-group 0x1/0x1", "lan0", syn.clone(), false),
        ("-m devgroup ! --dst-group 0x1/0x1", "lan0", syn.clone(), true),
        // No fingerprints: never, negated or not.
        ("-p tcp -m osf --genre Linux", "lan0", syn.clone(), false),
        ("-p tcp -m osf ! --genre Linux", "lan0", syn.clone(), false),
    ]);
    // Cluster: one node of two takes each connection; the other node's rule takes the rest,
    // and the negation swaps them. Over many sources both nodes get some.
    let mut taken = [0; 2];
    for i in 0..32u8 {
        let src = format!("10.0.1.{}", 10 + i);
        let pkt = tcp(&src, 1000, B, 80, 2);
        let on = |node: u32, inv: &str| {
            let spec = format!(
                "-m cluster --cluster-total-nodes 2 {inv}--cluster-local-node {node} --cluster-hash-seed 0xfeedcafe"
            );
            lab(&spec).send("lan0", &pkt).forwarded()
        };
        let (one, two) = (on(1, ""), on(2, ""));
        assert!(one != two, "{src}: exactly one node takes the connection");
        assert_eq!(on(1, "! "), two, "{src}");
        taken[usize::from(two)] += 1;
    }
    assert!(taken[0] > 0 && taken[1] > 0, "{taken:?}");
}

#[test]
fn dccp_ports_types_and_options() {
    // A DCCP-Request (type 0) from port 1000 to 5001, with an option 32 (feature) after the
    // 16-byte header (X = 1) and the 4-byte service code.
    let dccp = |kind: u8, opts: &[u8]| {
        let mut h = vec![0x03, 0xe8, 0x13, 0x89, 0, 0, 0, 0, (kind << 1) | 1, 0, 0, 0, 0, 0, 0, 0];
        if kind == 0 {
            h.extend_from_slice(&[0, 0, 0, 0]);
        }
        h.extend_from_slice(opts);
        while h.len() % 4 != 0 {
            h.push(0);
        }
        h[4] = (h.len() / 4) as u8;
        let mut b = Vec::new();
        build::raw(&mut b, Ip4::new(ip(A), ip(B), 33), &h);
        b
    };
    let req = dccp(0, &[32, 3, 1]);
    table(&[
        (
            "-p dccp -m dccp --sport 1000 --dport 5000:5010",
            "lan0",
            req.clone(),
            true,
        ),
        ("-p dccp -m dccp ! --dport 5001", "lan0", req.clone(), false),
        ("-p dccp -m dccp --sport 5:3", "lan0", req.clone(), false),
        ("-p dccp -m dccp --dccp-types REQUEST,DATA", "lan0", req.clone(), true),
        ("-p dccp -m dccp ! --dccp-types REQUEST", "lan0", req.clone(), false),
        ("-p dccp -m dccp --dccp-types ACK", "lan0", dccp(3, &[]), true),
        ("-p dccp -m dccp --dccp-option 32", "lan0", req.clone(), true),
        ("-p dccp -m dccp --dccp-option 33", "lan0", req.clone(), false),
        ("-p dccp -m dccp ! --dccp-option 33", "lan0", req.clone(), true),
        ("-p dccp -m dccp --dccp-option 32", "lan0", dccp(0, &[]), false),
    ]);
}

#[test]
fn bpf_runs_classic_programs_on_the_packet() {
    let is_tcp = "-m bpf --bytecode \"4,48 0 0 9,21 0 1 6,6 0 0 1,6 0 0 0\"";
    let dport_80 = "-m bpf --bytecode \"5,177 0 0 0,72 0 0 2,21 0 1 80,6 0 0 65535,6 0 0 0\"";
    table(&[
        (is_tcp, "lan0", tcp(A, 1000, B, 80, 2), true),
        (is_tcp, "lan0", udp(A, 1000, B, 80), false),
        (dport_80, "lan0", udp(A, 1000, B, 80), true),
        (dport_80, "lan0", tcp(A, 1000, B, 443, 2), false),
        // A load past the end returns 0: no match.
        (
            "-m bpf --bytecode \"2,32 0 0 1000,6 0 0 1\"",
            "lan0",
            tcp(A, 1, B, 2, 2),
            false,
        ),
    ]);
}

#[test]
fn bpf_object_pinned_runs_the_kernels_program_on_the_packet() {
    use rtrouter_tests::bpf::{self as ebpf, BpfFs, SCHED_CLS, SOCKET_FILTER};
    let Some(fs) = BpfFs::or_skip("match") else { return };
    let udp_prog = fs.pin("udp", SOCKET_FILTER, &ebpf::protocol_is(17)).expect("loads");
    let mark_prog = fs.pin("mark", SOCKET_FILTER, &ebpf::mark()).expect("loads");
    let len_prog = fs.pin("len", SOCKET_FILTER, &ebpf::length()).expect("loads");
    let cls = fs.pin("cls", SCHED_CLS, &ebpf::mark()).expect("loads");
    let is_udp = format!("-m bpf --object-pinned {}", udp_prog.display());
    table(&[
        (is_udp.as_str(), "lan0", udp(A, 1000, B, 53), true),
        (is_udp.as_str(), "lan0", tcp(A, 1000, B, 80, 2), false),
        (is_udp.as_str(), "lan0", icmp_echo(A, B), false),
    ]);
    // The program sees the packet's mark (set by an earlier rule) and its length.
    let marked = |spec: &str, mark: &str, pkt: Vec<u8>| {
        let mut l = Lab::new(&format!(
            "*mangle\n-A FORWARD -j MARK --set-mark {mark}\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n-A FORWARD {spec} -j ACCEPT\nCOMMIT\n"
        ));
        l.send("lan0", &pkt).forwarded()
    };
    let by_mark = format!("-m bpf --object-pinned {}", mark_prog.display());
    assert!(marked(&by_mark, "5", udp(A, 1, B, 2)), "mark 5: the program returns 5");
    assert!(!marked(&by_mark, "0", udp(A, 1, B, 2)), "mark 0: the program returns 0");
    let by_len = format!("-m bpf --object-pinned {}", len_prog.display());
    assert!(marked(&by_len, "0", udp(A, 1, B, 2)), "a packet has a length");
    // Saved back with the path as given; compared by path for -C/-D.
    let rules = format!("*filter\n-A FORWARD {is_udp} -j DROP\nCOMMIT\n");
    let rs = rtrouter::ruleset::restore::restore(&rtrouter::ruleset::Ruleset::default(), &rules, "pinned.rules", false)
        .expect("loads");
    assert!(rs.save(false).contains(&format!("-A FORWARD {is_udp} -j DROP\n")));
    let again =
        rtrouter::ruleset::restore::restore(&rtrouter::ruleset::Ruleset::default(), &rules, "again.rules", false)
            .expect("loads");
    assert!(rs == again, "the same path is the same rule");
    // The kernel's refusals: no such object, a program of another type, both options, twice.
    let refused = |spec: &str| {
        rtrouter::ruleset::restore::restore(
            &rtrouter::ruleset::Ruleset::default(),
            &format!("*filter\n-A FORWARD {spec}\nCOMMIT\n"),
            "bad.rules",
            false,
        )
        .expect_err("refused")
        .to_string()
    };
    let missing = refused(&format!("-m bpf --object-pinned {}", fs.path("nothing").display()));
    assert!(missing.contains("bpf: failed to get bpf object"), "{missing}");
    let wrong = refused(&format!("-m bpf --object-pinned {}", cls.display()));
    assert!(wrong.contains("is not a socket filter program"), "{wrong}");
    let both = refused(&format!(
        "-m bpf --bytecode \"1,6 0 0 0\" --object-pinned {}",
        udp_prog.display()
    ));
    assert!(both.contains("one of --bytecode or --pinned is required"), "{both}");
    let twice = refused(&format!("{is_udp} --object-pinned {}", udp_prog.display()));
    assert!(twice.contains("can only be used once"), "{twice}");
    let inverted = refused(&format!("-m bpf ! --object-pinned {}", udp_prog.display()));
    assert!(inverted.contains("cannot be inverted"), "{inverted}");
    assert!(refused("-m bpf").contains("one of --bytecode or --pinned is required"));
}

#[test]
fn connlabel_bits_stay_with_the_connection() {
    // Set label 5 on connections to port 80, accept labelled packets.
    let rules = "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -p tcp --dport 80 -m connlabel --label 5 --set\n\
                 -A FORWARD -m connlabel --label 5 -j ACCEPT\n-A FORWARD -m connlabel ! --label 6 -p udp -j ACCEPT\nCOMMIT\n";
    let mut l = Lab::new(rules);
    assert!(
        l.send("lan0", &tcp(A, 1000, B, 80, 2)).forwarded(),
        "set, then seen by the next rule"
    );
    assert!(
        l.send("wan0", &tcp(B, 80, A, 1000, 0x12)).forwarded(),
        "the reply carries the label"
    );
    assert!(
        !l.send("lan0", &tcp(A, 1001, B, 443, 2)).forwarded(),
        "another connection does not"
    );
    assert!(l.send("lan0", &udp(A, 1, B, 2)).forwarded(), "a negated label");
}
