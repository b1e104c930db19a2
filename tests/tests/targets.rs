//! Every target and the traversal rules, through the router core: verdicts, chain flow,
//! packet rewrites (with checksums checked by an independent full recomputation), replies.

use rtrouter::eval::{Ct, CtInfo};
use rtrouter::packet::build::{self, Ip4};
use rtrouter::packet::{checksums_ok, parse, DropReason, L4};
use rtrouter::router::Disposition;
use rtrouter::ruleset::{Hook, TableKind};
use rtrouter_tests::{ip, refresh_checksums, tcp, udp, Lab};
use std::net::IpAddr;

const A: &str = "10.0.1.2";
const B: &str = "192.0.2.9";

fn forward_rules(body: &str) -> String {
    format!("*filter\n:FORWARD ACCEPT [0:0]\n:USER - [0:0]\n:OTHER - [0:0]\n{body}COMMIT\n")
}

#[test]
fn chain_flow_jump_return_goto_policy() {
    // jump + RETURN comes back; goto does not push, so RETURN in the goto'd chain returns to
    // the caller of the chain that jumped.
    let rules = "*filter\n:FORWARD DROP [0:0]\n:A - [0:0]\n:B - [0:0]\n:C - [0:0]\n\
        -A FORWARD -j A\n-A FORWARD -p udp -j ACCEPT\n\
        -A A -p tcp --dport 1 -j RETURN\n-A A -p tcp -g B\n-A A -j ACCEPT\n\
        -A B -p tcp --dport 2 -j RETURN\n-A B -p tcp --dport 3 -j C\n-A B -j DROP\n\
        -A C -j ACCEPT\nCOMMIT\n";
    let mut l = Lab::new(rules);
    // dport 1: A returns -> FORWARD rule 2 (udp only) -> policy DROP.
    assert!(l.send("lan0", &tcp(A, 9, B, 1, 2)).dropped());
    // dport 2: goto B, RETURN -> back to FORWARD (not A) -> policy DROP.
    assert!(l.send("lan0", &tcp(A, 9, B, 2, 2)).dropped());
    // dport 3: B jumps to C, which accepts.
    assert!(l.send("lan0", &tcp(A, 9, B, 3, 2)).forwarded());
    // dport 4: B drops.
    assert!(l.send("lan0", &tcp(A, 9, B, 4, 2)).dropped());
    // udp: A has no udp rule before ACCEPT at A#3.
    assert!(l.send("lan0", &udp(A, 9, B, 4)).forwarded());
    let e = l.router.engine();
    let fwd = e.rules().table(TableKind::Filter).unwrap();
    // Rules in iptables-save order, each with its counts.
    let counts: Vec<u64> = fwd
        .chains()
        .flat_map(|c| (0..c.rules().len()).map(|i| e.rule_counters(TableKind::Filter, c.name(), i).0))
        .collect();
    // FORWARD#1 saw all 5, A#1 one, A#2 three (tcp 2,3,4), A#3 one (udp)…
    assert_eq!(&counts[..5], &[5, 0, 1, 3, 1], "{counts:?}");
    assert_eq!(e.policy_counters(TableKind::Filter, Hook::Forward), (2, 80));
    let saved = e.save(true);
    assert!(saved.contains("[5:195] -A FORWARD -j A"), "{saved}");
    assert!(saved.contains(":FORWARD DROP [2:80]"), "{saved}");
}

#[test]
fn return_from_builtin_and_rule_without_target() {
    let mut l = Lab::new(
        "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -p tcp\n-A FORWARD -p tcp -j RETURN\n-A FORWARD -j ACCEPT\nCOMMIT\n",
    );
    // A rule without a target only counts; RETURN in a built-in chain applies the policy.
    assert!(l.send("lan0", &tcp(A, 9, B, 1, 2)).dropped());
    assert!(l.send("lan0", &udp(A, 9, B, 1)).forwarded());
    let e = l.router.engine();
    assert_eq!(e.rule_counters(TableKind::Filter, "FORWARD", 0).0, 1);
}

#[test]
fn accept_ends_only_the_current_table() {
    let rules = "*mangle\n-A FORWARD -j ACCEPT\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\nCOMMIT\n";
    assert!(Lab::new(rules).send("lan0", &tcp(A, 9, B, 1, 2)).dropped());
    let rules = "*raw\n-A PREROUTING -j DROP\nCOMMIT\n*filter\n-A FORWARD -j ACCEPT\nCOMMIT\n";
    let s = Lab::new(rules).send("lan0", &tcp(A, 9, B, 1, 2));
    assert_eq!(s.outcome.disposition, Disposition::Drop(DropReason::Filtered));
}

#[test]
fn reject_sends_icmp_unreachable_with_the_quote() {
    for (with, code) in [
        ("", 3u8),
        (" --reject-with icmp-net-unreachable", 0),
        (" --reject-with icmp-host-unreachable", 1),
        (" --reject-with icmp-proto-unreachable", 2),
        (" --reject-with icmp-net-prohibited", 9),
        (" --reject-with icmp-host-prohibited", 10),
        (" --reject-with icmp-admin-prohibited", 13),
    ] {
        let mut l = Lab::new(&forward_rules(&format!("-A FORWARD -p udp -j REJECT{with}\n")));
        let orig = udp(A, 5000, B, 53);
        let s = l.send("lan0", &orig);
        assert_eq!(s.outcome.disposition, Disposition::Drop(DropReason::Rejected));
        assert!(s.outcome.rejected);
        let (r, d) = s.reply.expect("a reply");
        let h = parse(&r).unwrap();
        assert_eq!(
            (h.src, h.dst),
            (IpAddr::V4(ip("10.0.1.1")), IpAddr::V4(ip(A))),
            "from our lan0 address to the sender"
        );
        assert!(matches!(h.l4, L4::Icmp(i) if i.typ == 3 && i.code == code));
        assert_eq!(
            &r[28..],
            &s.pkt[..],
            "quotes the packet as it was (TTL already decremented)"
        );
        assert_eq!(checksums_ok(&r), Some(true));
        assert!(
            matches!(d, Disposition::Forward(h) if l.router.topo.iface(h.iface).name == "lan0"),
            "{d:?}"
        );
    }
}

#[test]
fn reject_with_tcp_reset() {
    let mut l = Lab::new(&forward_rules("-A FORWARD -p tcp -j REJECT --reject-with tcp-reset\n"));
    // To a SYN (seq 1000): RST|ACK, seq 0, ack 1001.
    let (r, _) = l.send("lan0", &tcp(A, 5000, B, 80, 0x02)).reply.expect("reset");
    let h = parse(&r).unwrap();
    assert_eq!(
        (h.src, h.dst),
        (IpAddr::V4(ip(B)), IpAddr::V4(ip(A))),
        "spoofed from the destination"
    );
    assert!(
        matches!(h.l4, L4::Tcp(t) if t.flags == 0x14 && t.seq == 0 && t.ack == 1001 && t.sport == 80 && t.dport == 5000),
        "{h:?}"
    );
    assert_eq!(checksums_ok(&r), Some(true));
    // To an ACK (ack 2000): RST with seq 2000.
    let (r, _) = l.send("lan0", &tcp(A, 5000, B, 80, 0x10)).reply.expect("reset");
    assert!(matches!(parse(&r).unwrap().l4, L4::Tcp(t) if t.flags == 0x04 && t.seq == 2000));
    // Never to a RST.
    assert!(l.send("lan0", &tcp(A, 5000, B, 80, 0x04)).reply.is_none());
}

#[test]
fn no_icmp_error_about_icmp_errors_or_broadcasts() {
    let mut l = Lab::new(&forward_rules("-A FORWARD -j REJECT\n"));
    let mut err = Vec::new();
    build::icmp(&mut err, Ip4::new(ip(A), ip(B), 1), 3, 1, [0; 4], &[0u8; 28]);
    assert!(l.send("lan0", &err).reply.is_none());
}

#[test]
fn reject_in_input_replies_from_the_address_asked() {
    let mut l = Lab::new("*filter\n-A INPUT -p udp -j REJECT\nCOMMIT\n");
    let (r, d) = l.send("lan0", &udp(A, 5000, "10.0.2.1", 53)).reply.expect("reply");
    assert_eq!(parse(&r).unwrap().src, IpAddr::V4(ip("10.0.2.1")));
    assert!(matches!(d, Disposition::Forward(_)));
}

#[test]
fn output_rules_see_the_reply() {
    // A REJECT reply goes through OUTPUT: an OUTPUT DROP for ICMP suppresses it.
    let mut l = Lab::new("*filter\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -j REJECT\n-A OUTPUT -p icmp -j DROP\nCOMMIT\n");
    let s = l.send("lan0", &udp(A, 1, B, 2));
    assert_eq!(s.reply.map(|r| r.1), Some(Disposition::Drop(DropReason::Filtered)));
}

#[test]
fn ttl_expiry_and_ttl_target() {
    let mut l = Lab::new("*filter\nCOMMIT\n");
    let one = build_ttl(1);
    let s = l.send("lan0", &one);
    assert_eq!(s.outcome.disposition, Disposition::Drop(DropReason::TtlExceeded));
    let (r, _) = s.reply.expect("time exceeded");
    let h = parse(&r).unwrap();
    assert!(matches!(h.l4, L4::Icmp(i) if i.typ == 11 && i.code == 0));
    assert_eq!(h.src, IpAddr::V4(ip("10.0.1.1")));
    // Forwarding decrements.
    let s = l.send("lan0", &build_ttl(10));
    assert_eq!(parse(&s.pkt).unwrap().ttl, 9);
    assert_eq!(checksums_ok(&s.pkt), Some(true));
    // TTL target in mangle.
    for (op, want) in [
        ("--ttl-set 33", 33),
        ("--ttl-inc 5", 14),
        ("--ttl-dec 4", 5),
        ("--ttl-dec 200", 0),
    ] {
        let mut l = Lab::new(&format!("*mangle\n-A FORWARD -j TTL {op}\nCOMMIT\n"));
        let s = l.send("lan0", &build_ttl(10));
        assert_eq!(parse(&s.pkt).unwrap().ttl, want, "{op}");
        assert_eq!(checksums_ok(&s.pkt), Some(true));
    }
}

/// A UDP datagram A → B with `opts` (a multiple of 4 bytes) as its IPv4 options.
fn with_options(opts: &[u8]) -> Vec<u8> {
    let mut b = udp(A, 1, B, 2);
    let hl = 20 + opts.len();
    b.splice(20..20, opts.iter().copied());
    b[0] = 0x40 | (hl / 4) as u8;
    let total = b.len() as u16;
    b[2..4].copy_from_slice(&total.to_be_bytes());
    refresh_checksums(&mut b);
    b
}

#[test]
fn ipv4_options_are_checked_as_ip_options_compile_checks_them() {
    // The rules see the packet first: PREROUTING counts it, then the options decide.
    let rules = "*mangle\n-A PREROUTING -s 10.0.1.2\nCOMMIT\n";
    let cases: &[(&[u8], Option<u8>)] = &[
        // NOPs, EOL, a record route with room, a router alert, a timestamp: forwarded.
        (&[1, 1, 1, 0], None),
        (&[7, 7, 4, 0, 0, 0, 0, 0], None),
        (&[148, 4, 0, 0], None),
        (&[68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0], None),
        (&[7, 3, 8, 1], None),
        // A length of 1, one past the header, a record route without room at its pointer, a
        // pointer below 4, a short router alert, a full timestamp whose overflow count is
        // spent, two record routes: parameter problem pointing at the byte.
        (&[7, 1, 0, 0], Some(20)),
        (&[1, 1, 7, 8], Some(22)),
        (&[7, 7, 6, 0, 0, 0, 0, 0], Some(22)),
        (&[7, 7, 3, 0, 0, 0, 0, 0], Some(22)),
        (&[148, 2, 1, 1], Some(21)),
        (&[68, 4, 5, 0xf0], Some(23)),
        (&[7, 3, 8, 7, 3, 8, 1, 0], Some(23)),
    ];
    for (opts, problem) in cases {
        let mut l = Lab::new(rules);
        let s = l.send("lan0", &with_options(opts));
        match problem {
            None => assert!(s.forwarded(), "{opts:?}: {:?}", s.outcome.disposition),
            Some(at) => {
                assert_eq!(
                    s.outcome.disposition,
                    Disposition::Drop(DropReason::BadIpOptions),
                    "{opts:?}"
                );
                let (r, _) = s
                    .reply
                    .unwrap_or_else(|| panic!("{opts:?}: a parameter problem is sent"));
                let h = parse(&r).unwrap();
                assert!(matches!(h.l4, L4::Icmp(i) if i.typ == 12 && i.code == 0), "{opts:?}");
                assert_eq!(r[usize::from(h.l4_off) + 4], *at, "{opts:?}: the pointer");
            }
        }
        let counted = l.router.engine().rule_counters(TableKind::Mangle, "PREROUTING", 0).0;
        assert_eq!(counted, 1, "{opts:?}: PREROUTING saw it first");
    }
    // Source routes are dropped silently, as with Linux's accept_source_route = 0.
    for srr in [131u8, 137] {
        let mut l = Lab::new(rules);
        let s = l.send("lan0", &with_options(&[srr, 7, 4, 10, 0, 2, 1, 0]));
        assert_eq!(s.outcome.disposition, Disposition::Drop(DropReason::SourceRoute));
        assert!(s.reply.is_none());
    }
}

fn build_ttl(ttl: u8) -> Vec<u8> {
    let mut b = Vec::new();
    build::udp(
        &mut b,
        Ip4 {
            ttl,
            ..Ip4::new(ip(A), ip(B), 17)
        },
        1,
        2,
        b"x",
    );
    b
}

#[test]
fn no_route_answers_net_unreachable() {
    // Only the connected routes: 192.0.2.9 is unreachable, the sender on lan0 is not.
    let mut topo = rtrouter::route::Topology::default();
    for (name, addr) in [("lan0", "10.0.1.1/24"), ("wan0", "10.0.2.1/24")] {
        topo.add_iface(rtrouter::route::IfaceInfo {
            name: name.into(),
            addrs: vec![rtrouter::config::Cidr::parse(addr).unwrap()],
            mtu: 1500,
        });
    }
    let mut l = Lab::new("*filter\nCOMMIT\n");
    l.router = rtrouter::router::Router::new(topo, l.router.engine().rules().clone(), Default::default(), 10);
    let s = l.send("lan0", &udp(A, 1, B, 2));
    assert_eq!(s.outcome.disposition, Disposition::Drop(DropReason::NoRoute));
    let (r, d) = s.reply.expect("net unreachable");
    assert!(matches!(parse(&r).unwrap().l4, L4::Icmp(i) if i.typ == 3 && i.code == 0));
    assert!(
        matches!(d, Disposition::Forward(h) if h.iface.0 == 0),
        "back out of lan0: {d:?}"
    );
}

#[test]
fn mark_and_connmark_targets() {
    let ct = Some(Ct::Tracked(CtInfo::new_from(&parse(&udp(A, 1, B, 2)).unwrap())));
    // MARK --set-xmark: mark = (mark & !mask) ^ value: (0xf5 & !0xf0) ^ 0x10 = 0x15.
    let mut l = Lab::new("*filter\n:FORWARD DROP [0:0]\n-A FORWARD -j MARK --set-xmark 0x10/0xf0\n-A FORWARD -m mark --mark 0x15 -j ACCEPT\nCOMMIT\n");
    assert!(l.send_ct(Some("lan0"), &udp(A, 1, B, 2), 0xf5, ct).forwarded());
    // --save-mark --mask 0xf: ctmark = (0 & !0xf) ^ (0x15 & 0xf) = 0x5;
    // --set-xmark 0x100/0xf00 on the ctmark: 0x105;
    // --restore-mark --nfmask 0xf00 --ctmask 0xf: mark = (0x15 & !0xf00) ^ (0x105 & 0xf) = 0x10.
    let mut l = Lab::new(
        "*filter\n:FORWARD DROP [0:0]\n\
         -A FORWARD -j CONNMARK --save-mark --mask 0xf\n\
         -A FORWARD -j CONNMARK --set-xmark 0x100/0xf00\n\
         -A FORWARD -m connmark ! --mark 0x105 -j DROP\n\
         -A FORWARD -j CONNMARK --restore-mark --nfmask 0xf00 --ctmask 0xf\n\
         -A FORWARD -m mark --mark 0x10 -j ACCEPT\nCOMMIT\n",
    );
    assert!(l.send_ct(Some("lan0"), &udp(A, 1, B, 2), 0x15, ct).forwarded());
    // Without a connection CONNMARK changes nothing and connmark never matches.
    assert!(l
        .send_ct(Some("lan0"), &udp(A, 1, B, 2), 0x15, Some(Ct::Invalid))
        .dropped());
}

#[test]
fn log_continues() {
    let mut l = Lab::new("*filter\n:FORWARD DROP [0:0]\n-A FORWARD -j LOG --log-prefix \"seen: \"\n-A FORWARD -j NFLOG --nflog-group 2\n-A FORWARD -j ACCEPT\nCOMMIT\n");
    assert!(l.send("lan0", &udp(A, 1, B, 2)).forwarded());
}

#[test]
fn notrack_and_ct_zone() {
    let mut l = Lab::new("*raw\n-A PREROUTING -p udp -j CT --notrack\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m conntrack --ctstate UNTRACKED -j ACCEPT\nCOMMIT\n");
    assert!(l.send("lan0", &udp(A, 1, B, 2)).forwarded());
    assert!(l.send("lan0", &tcp(A, 1, B, 2, 2)).dropped());
    let mut l = Lab::new(
        "*raw\n-A PREROUTING -j NOTRACK\nCOMMIT\n*nat\n-A PREROUTING -j DNAT --to-destination 10.0.1.9\nCOMMIT\n",
    );
    assert!(
        l.send("lan0", &udp(A, 1, B, 2)).outcome.dnat.is_none(),
        "untracked packets skip nat"
    );
}

#[test]
fn tcpmss_clamps_or_adds_the_option() {
    let syn_with_mss = |mss: u16| {
        let mut b = tcp(A, 1, B, 80, 2);
        b.extend_from_slice(&[2, 4]);
        b.extend_from_slice(&mss.to_be_bytes());
        b[2..4].copy_from_slice(&44u16.to_be_bytes());
        b[32] = 6 << 4;
        refresh_checksums(&mut b);
        b
    };
    let mss_of = |b: &[u8]| u16::from_be_bytes([b[42], b[43]]);
    let mut l = Lab::new("*mangle\n-A FORWARD -p tcp --syn -j TCPMSS --set-mss 1200\nCOMMIT\n");
    let s = l.send("lan0", &syn_with_mss(1460));
    assert_eq!(mss_of(&s.pkt), 1200);
    assert_eq!(checksums_ok(&s.pkt), Some(true));
    let s = l.send("lan0", &syn_with_mss(1000));
    assert_eq!(mss_of(&s.pkt), 1000, "only ever lowered");
    let mut l =
        Lab::new("*mangle\n-A POSTROUTING -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu\nCOMMIT\n");
    assert_eq!(
        mss_of(&l.send("lan0", &syn_with_mss(9000)).pkt),
        1460,
        "wan0 mtu 1500 - 40"
    );
    // A SYN without the option gets one (at most 536, RFC 879's default).
    let s = l.send("lan0", &tcp(A, 1, B, 80, 2));
    assert_eq!(s.pkt.len(), 44);
    assert_eq!(mss_of(&s.pkt), 536);
    assert_eq!(checksums_ok(&s.pkt), Some(true));
}

#[test]
fn checksum_fill() {
    let mut bad = udp(A, 1, B, 2);
    bad[26] ^= 0xff;
    let mut l = Lab::new("*mangle\n-A FORWARD -p udp -j CHECKSUM --checksum-fill\nCOMMIT\n");
    let s = l.send("lan0", &bad);
    assert_eq!(checksums_ok(&s.pkt), Some(true));
}

#[test]
fn nat_targets_rewrite_with_valid_checksums() {
    // (rule, ingress, packet, expected DNAT, expected SNAT)
    type Endpoint = Option<(&'static str, u16)>;
    let cases: &[(&str, &str, Vec<u8>, Endpoint, Endpoint)] = &[
        (
            "-A PREROUTING -p tcp -j DNAT --to-destination 10.0.1.50:8080",
            "lan0",
            tcp(A, 4000, B, 80, 2),
            Some(("10.0.1.50", 8080)),
            None,
        ),
        (
            "-A PREROUTING -p tcp -j DNAT --to-destination 10.0.1.50",
            "lan0",
            tcp(A, 4000, B, 80, 2),
            Some(("10.0.1.50", 80)),
            None,
        ),
        (
            "-A PREROUTING -p udp -j DNAT --to-destination :5353",
            "lan0",
            udp(A, 4000, B, 53),
            Some((B, 5353)),
            None,
        ),
        (
            "-A POSTROUTING -o wan0 -j MASQUERADE",
            "lan0",
            tcp(A, 4000, B, 80, 2),
            None,
            Some(("10.0.2.1", 4000)),
        ),
        (
            "-A POSTROUTING -p udp -o wan0 -j MASQUERADE --to-ports 20000-20010",
            "lan0",
            udp(A, 4000, B, 53),
            None,
            Some(("10.0.2.1", 20000)),
        ),
        (
            "-A POSTROUTING -j SNAT --to-source 198.51.100.7",
            "lan0",
            udp(A, 4000, B, 53),
            None,
            Some(("198.51.100.7", 4000)),
        ),
        (
            "-A POSTROUTING -p tcp -j SNAT --to-source 198.51.100.7:1024-1030",
            "lan0",
            tcp(A, 4000, B, 80, 2),
            None,
            Some(("198.51.100.7", 1024)),
        ),
        (
            "-A PREROUTING -p tcp -j REDIRECT --to-ports 3128",
            "lan0",
            tcp(A, 4000, B, 80, 2),
            Some(("10.0.1.1", 3128)),
            None,
        ),
    ];
    for (rule, iface, pkt, dnat, snat) in cases {
        let mut l = Lab::new(&format!("*nat\n{rule}\nCOMMIT\n"));
        let s = l.send(iface, pkt);
        let want = |x: &Option<(&str, u16)>| x.map(|(a, p)| (IpAddr::V4(ip(a)), p));
        // A source port outside the rule's range is remapped from a random offset in the
        // range (nf_nat_l4proto_unique_tuple); the expectation gives the range's start.
        let ranged = |rule: &str, want: u16, got: u16| {
            let hi = rule.split(&format!("{want}-")).nth(1).and_then(|r| {
                r.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse::<u16>()
                    .ok()
            });
            match hi {
                Some(hi) => (want..=hi).contains(&got),
                None => want == got,
            }
        };
        assert_eq!(s.outcome.dnat, want(dnat), "{rule}");
        assert_eq!(s.outcome.snat.map(|x| x.0), want(snat).map(|x| x.0), "{rule}");
        let h = parse(&s.pkt).unwrap();
        if let Some((a, p)) = want(dnat) {
            assert_eq!((h.dst, h.ports().unwrap().1), (a, p), "{rule}");
        }
        if let Some((a, p)) = want(snat) {
            assert_eq!(h.src, a, "{rule}");
            assert!(
                ranged(rule, p, h.ports().unwrap().0),
                "{rule}: port {}",
                h.ports().unwrap().0
            );
            assert_eq!(s.outcome.snat.map(|x| x.1), Some(h.ports().unwrap().0));
        }
        assert_eq!(checksums_ok(&s.pkt), Some(true), "{rule}");
        if rule.contains("REDIRECT") {
            assert!(s.local(), "redirected to the router itself");
        }
    }
}

#[test]
fn dnat_routes_on_the_new_destination_and_address_ranges_are_sticky() {
    let mut l = Lab::new("*nat\n-A PREROUTING -i wan0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.1.2:80\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n-A FORWARD -o lan0 -p tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT\nCOMMIT\n");
    let s = l.send("wan0", &tcp(B, 4000, "10.0.2.1", 8080, 2));
    assert!(
        matches!(s.outcome.disposition, Disposition::Forward(h) if l.router.topo.iface(h.iface).name == "lan0"),
        "{:?}",
        s.outcome
    );
    let mut l = Lab::new("*nat\n-A PREROUTING -j DNAT --to-destination 10.0.1.10-10.0.1.19 --persistent\nCOMMIT\n");
    let first = l.send("lan0", &udp(A, 1, B, 2)).outcome.dnat;
    for port in 2..20 {
        assert_eq!(
            l.send("lan0", &udp(A, port, "192.0.2.77", 2)).outcome.dnat.map(|d| d.0),
            first.map(|d| d.0),
            "--persistent: one client, one address"
        );
    }
}

#[test]
fn malformed_packets_are_dropped_and_counted() {
    let mut l = Lab::new("*filter\nCOMMIT\n");
    let good = udp(A, 1, B, 2);
    let mut bad_sum = good.clone();
    bad_sum[10] ^= 1;
    for (pkt, why) in [
        (vec![], DropReason::Truncated),
        (good[..10].to_vec(), DropReason::Truncated),
        (bad_sum, DropReason::BadChecksum),
        (
            {
                let mut b = good.clone();
                b[0] = 0x55;
                b
            },
            DropReason::BadVersion,
        ),
    ] {
        assert_eq!(l.send("lan0", &pkt).outcome.disposition, Disposition::Drop(why));
        assert!(l.router.stats.drop_count(why) > 0);
    }
    // Martians: a loopback source from a link, a loopback destination without route_localnet.
    assert_eq!(
        l.send("lan0", &udp("127.0.0.1", 1, B, 2)).outcome.disposition,
        Disposition::Drop(DropReason::Martian)
    );
    assert_eq!(
        l.send("lan0", &udp(A, 1, "127.0.0.1", 2)).outcome.disposition,
        Disposition::Drop(DropReason::Martian)
    );
    l.router.topo.route_localnet = true;
    assert!(l.send("lan0", &udp(A, 1, "127.0.0.1", 2)).local());
}

#[test]
fn locally_generated_packets_take_output_then_postrouting() {
    let mut l = Lab::new("*nat\n-A OUTPUT -p tcp --dport 80 -j DNAT --to-destination 10.0.1.99:8080\n-A POSTROUTING -o lan0 -j SNAT --to-source 10.0.1.1\nCOMMIT\n*filter\n:OUTPUT DROP [0:0]\n-A OUTPUT -o lan0 -d 10.0.1.99 -j ACCEPT\nCOMMIT\n");
    let s = l.send_ct(None, &tcp("10.0.2.1", 4000, B, 80, 2), 0, None);
    // DNAT in nat OUTPUT re-routes the packet to lan0, where filter OUTPUT lets it through.
    assert!(
        matches!(s.outcome.disposition, Disposition::Forward(h) if l.router.topo.iface(h.iface).name == "lan0"),
        "{:?}",
        s.outcome
    );
    assert_eq!(s.outcome.snat.map(|x| x.0), Some(IpAddr::V4(ip("10.0.1.1"))));
    // To the router's own address: OUTPUT, POSTROUTING, then INPUT.
    let mut l = Lab::new("*filter\n:INPUT DROP [0:0]\n-A INPUT -p udp --dport 7 -j ACCEPT\nCOMMIT\n");
    assert!(l.send_ct(None, &udp("10.0.1.1", 1, "10.0.2.1", 7), 0, None).local());
    assert!(l.send_ct(None, &udp("10.0.1.1", 1, "10.0.2.1", 8), 0, None).dropped());
}

#[test]
fn dscp_and_tos_rewrite_the_tos_byte_with_a_valid_checksum() {
    for (rule, tos_in, tos_out) in [
        ("-j DSCP --set-dscp 0x2e", 0x01u8, 0xb9u8),
        ("-j DSCP --set-dscp-class CS1", 0xb8, 0x20),
        ("-j TOS --set-tos 0x10", 0xff, 0x10),
        ("-j TOS --set-tos Minimize-Delay", 0xc3, 0xd0),
        ("-j TOS --and-tos 0x0f", 0xff, 0x0f),
        ("-j TOS --or-tos 0x10", 0x01, 0x11),
        ("-j TOS --xor-tos 0x10", 0x11, 0x01),
    ] {
        let mut l = Lab::new(&format!("*mangle\n-A FORWARD {rule}\nCOMMIT\n"));
        let mut p = tcp(A, 9, B, 80, 2);
        p[1] = tos_in;
        rtrouter_tests::refresh_checksums(&mut p);
        let s = l.send("lan0", &p);
        assert!(s.forwarded(), "{rule}");
        assert_eq!(s.pkt[1], tos_out, "{rule}");
        let h = rtrouter::packet::parse(&s.pkt).expect("still a valid packet");
        assert_eq!(h.tos, tos_out);
        rtrouter_tests::independent_checksum_check(&s.pkt).unwrap_or_else(|e| panic!("{rule}: {e}"));
    }
}

#[test]
fn netmap_maps_networks_address_for_address() {
    let mut l = Lab::new("*nat\n-A PREROUTING -d 192.0.2.0/24 -j NETMAP --to 10.0.2.0/24\nCOMMIT\n");
    let s = l.send("lan0", &tcp(A, 9, B, 80, 2));
    assert!(s.forwarded());
    assert_eq!(
        s.outcome.dnat.map(|(a, p)| (a.to_string(), p)),
        Some(("10.0.2.9".to_string(), 80))
    );
    let mut l = Lab::new("*nat\n-A POSTROUTING -s 10.0.1.0/24 -j NETMAP --to 172.16.5.0/24\nCOMMIT\n");
    let s = l.send("lan0", &tcp(A, 9, B, 80, 2));
    assert_eq!(
        s.outcome.snat.map(|(a, _)| a.to_string()),
        Some("172.16.5.2".to_string())
    );
}

#[test]
fn nfqueue_without_a_listener_drops_or_bypasses_and_classify_continues() {
    let mut l = Lab::new(&forward_rules("-A FORWARD -j NFQUEUE --queue-num 3\n"));
    assert!(l.send("lan0", &tcp(A, 9, B, 80, 2)).dropped());
    let mut l = Lab::new(&forward_rules(
        "-A FORWARD -j NFQUEUE --queue-balance 0:3 --queue-bypass\n-A FORWARD -j DROP\n",
    ));
    assert!(
        l.send("lan0", &tcp(A, 9, B, 80, 2)).forwarded(),
        "bypass accepts: the DROP after it is not reached"
    );
    let mut l = Lab::new("*mangle\n-A FORWARD -j CLASSIFY --set-class 1:10\n-A FORWARD -j DROP\nCOMMIT\n");
    assert!(
        l.send("lan0", &tcp(A, 9, B, 80, 2)).dropped(),
        "CLASSIFY continues to the next rule"
    );
}

#[test]
fn ecn_target_rewrites_ect_and_tcp_flags() {
    for (rule, flags_in, tos_in, flags_out, tos_out) in [
        ("-p tcp -j ECN --ecn-tcp-remove", 0xc2u8, 0x03u8, 0x02u8, 0x03u8),
        ("-j ECN --ecn-ip-ect 2", 0x02, 0x01, 0x02, 0x02),
        ("-p tcp -j ECN --ecn-tcp-cwr 1", 0x02, 0x00, 0x82, 0x00),
    ] {
        let mut l = Lab::new(&format!("*mangle\n-A FORWARD {rule}\nCOMMIT\n"));
        let mut p = tcp(A, 9, B, 80, flags_in);
        p[1] = tos_in;
        rtrouter_tests::refresh_checksums(&mut p);
        let s = l.send("lan0", &p);
        assert!(s.forwarded(), "{rule}");
        assert_eq!((s.pkt[33], s.pkt[1]), (flags_out, tos_out), "{rule}");
        rtrouter_tests::independent_checksum_check(&s.pkt).unwrap_or_else(|e| panic!("{rule}: {e}"));
    }
}

#[test]
fn set_target_adds_and_deletes_packet_addresses() {
    use rtrouter::ipset::{Header, IpSet, SetType};
    let sets = rtrouter::eval::state::IpSets::default();
    sets.insert(
        "seen",
        IpSet::new(Header {
            timeout: Some(60),
            ..Header::simple(SetType::HashIp)
        }),
    );
    sets.insert("ports", IpSet::new(Header::simple(SetType::HashIpPort)));
    // Sources that reach port 22 are remembered; a later rule drops what is remembered.
    let mut l = Lab::with_sets(
        "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m set --match-set seen src -j DROP\n\
         -A FORWARD -p tcp --dport 22 -j SET --add-set seen src --timeout 10\n\
         -A FORWARD -p tcp -j SET --add-set ports dst,dst\nCOMMIT\n",
        sets,
    );
    assert!(
        l.send("lan0", &tcp(A, 9, B, 22, 2)).forwarded(),
        "the first packet passes and is remembered"
    );
    assert!(
        l.send("lan0", &tcp(A, 9, B, 80, 2)).dropped(),
        "its source is now in the set"
    );
    let e = l.router.engine();
    let seen = e.ipsets().get_shared("seen").unwrap();
    assert_eq!(seen.member_lines(l.now), vec!["10.0.1.2 timeout 10"]);
    let ports = e.ipsets().get_shared("ports").unwrap();
    assert_eq!(ports.member_lines(l.now), vec!["192.0.2.9,tcp:22"]);
    // After the entry's timeout the source passes again; --del-set removes it at once.
    l.now += 11_000_000_000;
    assert!(l.send("lan0", &tcp(A, 9, B, 80, 2)).forwarded());
    let sets = rtrouter::eval::state::IpSets::default();
    sets.insert("s", IpSet::with_entries(SetType::HashIp, &["10.0.1.2"]).unwrap());
    let mut l = Lab::with_sets("*filter\n-A FORWARD -j SET --del-set s src\nCOMMIT\n", sets);
    l.send("lan0", &tcp(A, 9, B, 80, 2));
    assert!(l.router.engine().ipsets().get_shared("s").unwrap().is_empty(l.now));
}

#[test]
fn trace_reports_every_rule_a_marked_packet_meets() {
    let mut l = Lab::new(
        "*raw\n-A PREROUTING -p tcp --dport 22 -j TRACE\n-A PREROUTING -p tcp -j CT --zone 0\nCOMMIT\n\
         *filter\n:FORWARD DROP [0:0]\n-A FORWARD -p udp -j ACCEPT\n-A FORWARD -p tcp -j ACCEPT\nCOMMIT\n",
    );
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    l.router.monitor.subscribe(Box::new(move |line: &str| {
        sink.lock().unwrap().push(line.to_string());
        true
    }));
    assert!(l.send("lan0", &tcp(A, 9, B, 80, 2)).forwarded());
    assert!(lines.lock().unwrap().is_empty(), "an unmarked packet is not reported");
    assert!(l.send("lan0", &tcp(A, 9, B, 22, 2)).forwarded());
    let got = lines.lock().unwrap().clone();
    assert!(
        got.iter().any(
            |l| l.starts_with("TRACE: filter:FORWARD:rule:2 IN=lan0 OUT=wan0 SRC=10.0.1.2 DST=192.0.2.9")
                && l.ends_with("-A FORWARD -p tcp -j ACCEPT")
        ),
        "{got:#?}"
    );
    assert!(
        !got.iter().any(|l| l.contains("FORWARD:rule:1")),
        "rules that do not match are not reported: {got:#?}"
    );
    // Reports start right after the TRACE rule (itself unreported), within the raw table,
    // and end with the raw chain's policy.
    assert!(!got.iter().any(|l| l.contains("raw:PREROUTING:rule:1 ")), "{got:#?}");
    let second = got
        .iter()
        .position(|l| l.starts_with("TRACE: raw:PREROUTING:rule:2 ") && l.ends_with("-p tcp -j CT"));
    let policy = got
        .iter()
        .position(|l| l.starts_with("TRACE: raw:PREROUTING:policy:ACCEPT "));
    let filter = got.iter().position(|l| l.starts_with("TRACE: filter:FORWARD:rule:2 "));
    assert!(second < policy && policy < filter && second.is_some(), "{got:#?}");
}

#[test]
fn tcpoptstrip_audit_led() {
    // A SYN with MSS 1460 then a timestamp option (kind 8, 10 bytes) and two NOPs.
    let syn = || {
        let mut b = tcp(A, 1000, B, 80, 2);
        b.extend_from_slice(&[2, 4, 0x05, 0xb4, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0]);
        let len = b.len() as u16;
        b[2..4].copy_from_slice(&len.to_be_bytes());
        b[32] = 9 << 4;
        refresh_checksums(&mut b);
        b
    };
    let mut l = Lab::new("*mangle\n-A FORWARD -p tcp -j TCPOPTSTRIP --strip-options timestamp\nCOMMIT\n");
    let s = l.send("lan0", &syn());
    assert!(s.forwarded());
    assert_eq!(&s.pkt[40..44], &[2, 4, 0x05, 0xb4], "MSS kept");
    assert_eq!(&s.pkt[44..56], &[1; 12], "the timestamp became NOPs");
    assert_eq!(
        rtrouter_tests::independent_checksum_check(&s.pkt),
        Ok(()),
        "the checksum follows"
    );
    // AUDIT and LED continue.
    let mut l = Lab::new(
        "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -j AUDIT --type accept\n-A FORWARD -j LED --led-trigger-id fw\n\
         -A FORWARD -j ACCEPT\nCOMMIT\n",
    );
    assert!(l.send("lan0", &syn()).forwarded());
}

#[test]
fn idletimer_restarts_a_timer_per_label() {
    let mut l = Lab::new(
        "*filter\n-A FORWARD -p tcp -j IDLETIMER --timeout 10 --label wan\n\
         -A FORWARD -p udp -j IDLETIMER --timeout 30 --label wan\nCOMMIT\n",
    );
    let s = 1_000_000_000u64;
    // The timer starts when the rules are added (the router's clock tick after that): as in
    // the kernel, the later rule's checkentry restarts it with its own timeout.
    l.router.tick(l.now);
    assert_eq!(
        l.router.idle_timers(l.now + 3 * s),
        vec![("wan".to_string(), 27)],
        "started with the rules"
    );
    assert_eq!(l.router.idle_timers(l.now + 31 * s)[0].1, -1, "no packet: it ran out");
    // A packet restarts it with its rule's timeout.
    assert!(l.send("lan0", &tcp(A, 9, B, 80, 2)).forwarded());
    assert_eq!(l.router.idle_timers(l.now), vec![("wan".to_string(), 10)]);
    assert_eq!(l.router.idle_timers(l.now + 4 * s)[0].1, 6);
    assert_eq!(l.router.idle_timers(l.now + 12 * s)[0].1, -2, "ran out two seconds ago");
    // A packet through the other rule restarts the shared timer with its timeout.
    l.now += 5 * s;
    assert!(l.send("lan0", &udp(A, 9, B, 53)).forwarded());
    assert_eq!(l.router.idle_timers(l.now + 12 * s)[0].1, 18);
}

#[test]
fn idletimer_rules_restart_their_timer_when_added_and_take_it_when_gone() {
    use rtrouter::ruleset::{restore::restore, validate::validate_change, Env};
    let mut l = Lab::new("*filter\n-A FORWARD -p tcp -j IDLETIMER --timeout 30 --label wan\nCOMMIT\n");
    let s = 1_000_000_000u64;
    let change = |l: &Lab, text: &str| {
        let cur = l.router.engine().rules().clone();
        let next = restore(&cur.source(), text, "change", true).unwrap();
        l.router
            .swap_rules(validate_change(&cur, &next, &Env::default()).unwrap());
    };
    l.router.tick(l.now);
    assert_eq!(l.router.idle_timers(l.now), vec![("wan".to_string(), 30)]);
    // 10 s later a rule with the label is added: its checkentry restarts the running timer
    // with its own timeout.
    l.now += 10 * s;
    change(
        &l,
        "*filter\n-A FORWARD -p udp -j IDLETIMER --timeout 60 --label wan\nCOMMIT\n",
    );
    l.router.tick(l.now);
    assert_eq!(
        l.router.idle_timers(l.now),
        vec![("wan".to_string(), 60)],
        "restarted by the new rule"
    );
    // A change beside them (the same chain) adds no IDLETIMER rule: the timer runs on.
    l.now += 10 * s;
    change(&l, "*filter\n-I FORWARD -p icmp -j ACCEPT\nCOMMIT\n");
    l.router.tick(l.now);
    assert_eq!(
        l.router.idle_timers(l.now),
        vec![("wan".to_string(), 50)],
        "not restarted"
    );
    // One of the two rules goes: the other still holds the timer; the last one takes it along.
    change(
        &l,
        "*filter\n-D FORWARD -p tcp -j IDLETIMER --timeout 30 --label wan\nCOMMIT\n",
    );
    assert_eq!(l.router.idle_timers(l.now), vec![("wan".to_string(), 50)]);
    change(
        &l,
        "*filter\n-D FORWARD -p udp -j IDLETIMER --timeout 60 --label wan\nCOMMIT\n",
    );
    assert_eq!(l.router.idle_timers(l.now), vec![], "no rule holds the label");
}

#[test]
fn tee_sends_a_copy_to_the_gateway() {
    let mut l = Lab::new(
        "*mangle\n-A PREROUTING -p udp -j TEE --gateway 10.0.2.9\n-A OUTPUT -j TEE --gateway 10.0.2.9\nCOMMIT\n\
         *filter\n-A OUTPUT -p udp --dport 9 -j DROP\nCOMMIT\n",
    );
    let s = l.send("lan0", &udp(A, 1000, B, 53));
    assert!(s.forwarded(), "the packet goes on");
    assert_eq!(s.copies.len(), 1, "one copy (the copy itself is not copied in OUTPUT)");
    let (copy, hop) = &s.copies[0];
    assert_eq!(l.router.topo.iface(hop.iface).name, "wan0");
    assert_eq!(hop.via, Some("10.0.2.9".parse().unwrap()));
    assert_eq!(&copy[12..20], &udp(A, 1000, B, 53)[12..20], "addresses unchanged");
    assert_eq!(copy[6] & 0x40, 0x40, "DF set");
    assert_eq!(copy[8], 63, "TTL decreased in PREROUTING");
    assert_eq!(rtrouter_tests::independent_checksum_check(copy), Ok(()));
    // The copy passes OUTPUT: a rule there can drop it.
    let s = l.send("lan0", &udp(A, 1000, B, 9));
    assert!(s.forwarded());
    assert!(s.copies.is_empty(), "the copy met OUTPUT's DROP");
    // TCP meets no TEE rule.
    assert!(l.send("lan0", &tcp(A, 1000, B, 80, 2)).copies.is_empty());
}

/// SYNPROXY's test segment: `flags`, sequence numbers, window and options, client or server.
fn seg(
    (src, sport): (&str, u16),
    (dst, dport): (&str, u16),
    flags: u8,
    (seq, ack): (u32, u32),
    opts: &[u8],
) -> Vec<u8> {
    let mut b = Vec::new();
    build::tcp_with_options(
        &mut b,
        Ip4::new(ip(src), ip(dst), 6),
        build::TcpSeg {
            sport,
            dport,
            seq,
            ack,
            flags,
            window: 29200,
        },
        opts,
    );
    b
}

/// A segment's options: kind and value bytes.
type TcpOpts = Vec<(u8, Vec<u8>)>;

/// Sequence, acknowledgment, flags, window and the options of a segment.
fn seg_fields(p: &[u8]) -> (u32, u32, u8, u16, TcpOpts) {
    let h = parse(p).expect("parses");
    let L4::Tcp(t) = h.l4 else { panic!("not TCP") };
    let start = usize::from(h.l4_off);
    let mut opts = Vec::new();
    let mut i = start + 20;
    while i < start + usize::from(t.hdr_len) {
        match p[i] {
            0 => break,
            1 => i += 1,
            k => {
                let n = usize::from(p[i + 1]);
                opts.push((k, p[i + 2..i + n].to_vec()));
                i += n;
            }
        }
    }
    (t.seq, t.ack, t.flags, t.window, opts)
}

fn opt_of(opts: &[(u8, Vec<u8>)], kind: u8) -> Option<Vec<u8>> {
    opts.iter().find(|(k, _)| *k == kind).map(|(_, v)| v.clone())
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

const SYNPROXY_RULES: &str = "*raw\n:PREROUTING ACCEPT [0:0]\n\
    -A PREROUTING -i lan0 -p tcp --dport 80 --tcp-flags FIN,SYN,RST,ACK SYN -j CT --notrack\nCOMMIT\n\
    *filter\n:FORWARD ACCEPT [0:0]\n\
    -A FORWARD -i lan0 -p tcp --dport 80 -m state --state INVALID,UNTRACKED -j SYNPROXY --sack-perm --timestamp --wscale 7 --mss 1460\n\
    -A FORWARD -m state --state INVALID -j DROP\nCOMMIT\n";

/// A lab with SYNPROXY in front of 10.0.2.5:80, conntrack without loose pickup.
fn synproxy_lab() -> Lab {
    let mut l = Lab::new(SYNPROXY_RULES);
    let ct = rtrouter::config::ConntrackSection {
        tcp_loose: false,
        ..Default::default()
    };
    l.router = std::mem::replace(&mut l.router, Lab::new("").router)
        .with_conntrack(rtrouter::conntrack::Table::from_config(&ct));
    l
}

#[test]
fn synproxy_splices_the_clients_handshake_onto_the_servers() {
    use rtrouter::packet::tcp_flags::{ACK, SYN};
    let (c, s) = ("10.0.1.2", "10.0.2.5");
    let mut l = synproxy_lab();
    // 1. The client's SYN (MSS 1400, SACK permitted, timestamp 1000, window scale 6) is
    //    answered with a cookie; nothing reaches the server.
    let syn_opts = [2, 4, 5, 120, 4, 2, 8, 10, 0, 0, 3, 232, 0, 0, 0, 0, 1, 3, 3, 6];
    let isn = 0x1000_0000;
    let sent = l.send("lan0", &seg((c, 40000), (s, 80), SYN, (isn, 0), &syn_opts));
    assert_eq!(sent.outcome.disposition, Disposition::Drop(DropReason::Synproxy));
    let (synack, d) = sent.reply.expect("a SYN-ACK");
    assert!(matches!(d, Disposition::Forward(h) if h.iface == l.router.topo.iface_id("lan0").unwrap()));
    assert_eq!(checksums_ok(&synack), Some(true));
    let h = parse(&synack).unwrap();
    assert_eq!((h.src, h.dst), (IpAddr::V4(ip(s)), IpAddr::V4(ip(c))));
    assert!(h.df, "synproxy_build_ip sets DF");
    let (cookie, ack, flags, win, opts) = seg_fields(&synack);
    assert_eq!((ack, flags, win), (isn + 1, SYN | ACK, 0));
    assert_eq!(opt_of(&opts, 2), Some(1460u16.to_be_bytes().to_vec()), "the rule's MSS");
    assert_eq!(opt_of(&opts, 3), Some(vec![7]), "the rule's window scale");
    assert!(opt_of(&opts, 4).is_some(), "SACK permitted");
    let ts = opt_of(&opts, 8).expect("timestamp");
    assert_eq!(be32(&ts[4..]), 1000, "the client's TSval echoed");
    let cookie_ts = be32(&ts);
    assert_eq!(
        cookie_ts & 0x3f,
        6 | 1 << 4,
        "the client's wscale and SACK in the cookie's TSval"
    );
    let n = |l: &Lab, f: fn(&rtrouter::synproxy::Stats) -> &std::sync::atomic::AtomicU64| {
        f(&l.router.synproxy.stats).load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(n(&l, |s| &s.syn_received), 1);

    // 2. A forged ACK is dropped (one a few MSS indices off would pass, as in the kernel: the
    //    cookie's low bits are the index plus a hash); the right one makes the router open
    //    the server's side.
    let ack_opts = |tsval: u32, tsecr: u32| {
        let mut o = vec![1, 1, 8, 10];
        o.extend(tsval.to_be_bytes());
        o.extend(tsecr.to_be_bytes());
        o
    };
    let forged = l.send(
        "lan0",
        &seg(
            (c, 40000),
            (s, 80),
            ACK,
            (isn + 1, cookie.wrapping_add(0x1001)),
            &ack_opts(1001, cookie_ts),
        ),
    );
    assert_eq!(
        forged.outcome.disposition,
        Disposition::Drop(DropReason::SynproxyInvalid)
    );
    assert!(forged.reply.is_none());
    let sent = l.send(
        "lan0",
        &seg(
            (c, 40000),
            (s, 80),
            ACK,
            (isn + 1, cookie.wrapping_add(1)),
            &ack_opts(1001, cookie_ts),
        ),
    );
    assert_eq!(sent.outcome.disposition, Disposition::Drop(DropReason::Synproxy));
    let (ssyn, d) = sent.reply.expect("a SYN to the server");
    assert!(matches!(d, Disposition::Forward(h) if h.iface == l.router.topo.iface_id("wan0").unwrap()));
    assert_eq!(checksums_ok(&ssyn), Some(true));
    let h = parse(&ssyn).unwrap();
    assert_eq!((h.src, h.dst), (IpAddr::V4(ip(c)), IpAddr::V4(ip(s))));
    let (seq, _, flags, win, opts) = seg_fields(&ssyn);
    assert_eq!((seq, flags, win), (isn, SYN, 29200), "the client's ISN and window");
    assert_eq!(
        opt_of(&opts, 2),
        Some(1300u16.to_be_bytes().to_vec()),
        "the cookie's MSS: 1300 for 1400"
    );
    assert_eq!(
        opt_of(&opts, 3),
        Some(vec![6]),
        "the client's window scale, from the timestamp"
    );
    assert!(opt_of(&opts, 4).is_some());
    let ts = opt_of(&opts, 8).unwrap();
    assert_eq!((be32(&ts), be32(&ts[4..])), (1001, cookie_ts));
    assert_eq!(l.router.conntrack.len(), 1, "the server's connection is tracked");

    // 3. The server's SYN-ACK (its ISN 5000, its clock 777) is taken: the server gets the
    //    client's ACK, the client a window update in the cookie's sequence space.
    let server_isn = 5000;
    let mut o = vec![2, 4, 5, 180, 1, 1, 8, 10];
    o.extend(777u32.to_be_bytes());
    o.extend(1001u32.to_be_bytes());
    o.extend([1, 3, 3, 2]);
    let sent = l.send("wan0", &seg((s, 80), (c, 40000), SYN | ACK, (server_isn, isn + 1), &o));
    assert_eq!(sent.outcome.disposition, Disposition::Drop(DropReason::Synproxy));
    let (sack, d) = sent.reply.expect("the ACK to the server");
    assert!(matches!(d, Disposition::Forward(h) if h.iface == l.router.topo.iface_id("wan0").unwrap()));
    assert_eq!(checksums_ok(&sack), Some(true));
    let (seq, ack, flags, win, opts) = seg_fields(&sack);
    assert_eq!((seq, ack, flags, win), (isn + 1, server_isn + 1, ACK, 29200));
    assert_eq!(opt_of(&opts, 2), None, "no MSS, window scale or SACK on the ACK");
    assert_eq!(opt_of(&opts, 3), None);
    assert_eq!(be32(&opt_of(&opts, 8).unwrap()), 1001, "the client's TSval");
    assert_eq!(sent.copies.len(), 1, "the window update to the client");
    let (upd, hop) = &sent.copies[0];
    assert_eq!(hop.iface, l.router.topo.iface_id("lan0").unwrap());
    assert_eq!(checksums_ok(upd), Some(true));
    let (seq, ack, flags, win, opts) = seg_fields(upd);
    assert_eq!(
        (seq, ack, flags),
        (cookie.wrapping_add(1), isn + 1, ACK),
        "in the cookie's sequence space"
    );
    assert_eq!(win, 29200 >> 2, "the server's window, shifted by its scale");
    let ts = opt_of(&opts, 8).unwrap();
    assert_eq!(
        (be32(&ts), be32(&ts[4..])),
        (cookie_ts, 1001),
        "the server's clock as the client knows it"
    );

    // 4. From now on every segment is shifted both ways, checksums kept.
    let mut o = vec![1, 1, 8, 10];
    o.extend(800u32.to_be_bytes());
    o.extend(1002u32.to_be_bytes());
    let sent = l.send("wan0", &seg((s, 80), (c, 40000), ACK, (server_isn + 1, isn + 1), &o));
    assert!(sent.forwarded(), "{:?}", sent.outcome);
    assert_eq!(checksums_ok(&sent.pkt), Some(true));
    let (seq, ack, _, _, opts) = seg_fields(&sent.pkt);
    assert_eq!((seq, ack), (cookie.wrapping_add(1), isn + 1));
    assert_eq!(
        be32(&opt_of(&opts, 8).unwrap()),
        cookie_ts + 23,
        "TSval less the offset"
    );
    // A client segment with a SACK block: its acknowledgment and block move back.
    let mut o = vec![1, 1, 8, 10];
    o.extend(1003u32.to_be_bytes());
    o.extend((cookie_ts + 23).to_be_bytes());
    o.extend([1, 1, 5, 10]);
    o.extend(cookie.wrapping_add(101).to_be_bytes());
    o.extend(cookie.wrapping_add(201).to_be_bytes());
    let sent = l.send(
        "lan0",
        &seg((c, 40000), (s, 80), ACK, (isn + 1, cookie.wrapping_add(1)), &o),
    );
    assert!(sent.forwarded(), "{:?}", sent.outcome);
    assert_eq!(checksums_ok(&sent.pkt), Some(true));
    let (seq, ack, _, _, opts) = seg_fields(&sent.pkt);
    assert_eq!((seq, ack), (isn + 1, server_isn + 1));
    let ts = opt_of(&opts, 8).unwrap();
    assert_eq!(be32(&ts[4..]), 800, "TSecr back in the server's clock");
    let block = opt_of(&opts, 5).unwrap();
    assert_eq!((be32(&block), be32(&block[4..])), (server_isn + 101, server_isn + 201));
    assert_eq!((n(&l, |s| &s.cookie_valid), n(&l, |s| &s.cookie_invalid)), (1, 1));
}

#[test]
fn synproxy_loads_only_with_tcp_in_input_and_forward_and_handles_only_syn_and_ack() {
    use rtrouter::packet::tcp_flags::{ACK, FIN, RST, SYN};
    for (rules, why) in [
        ("*filter\n-A FORWARD -j SYNPROXY\nCOMMIT\n", "without -p tcp"),
        ("*filter\n-A FORWARD ! -p tcp -j SYNPROXY\nCOMMIT\n", "with ! -p tcp"),
        ("*filter\n-A OUTPUT -p tcp -j SYNPROXY\nCOMMIT\n", "in OUTPUT"),
        (
            "*filter\n:X - [0:0]\n-A X -p tcp -j SYNPROXY\n-A OUTPUT -j X\nCOMMIT\n",
            "reached from OUTPUT",
        ),
        (
            "*filter\n-A INPUT -p tcp -j SYNPROXY --mss 1 --mss 2\nCOMMIT\n",
            "--mss twice",
        ),
        (
            "*filter\n-A INPUT -p tcp -j SYNPROXY --wscale 4294967296\nCOMMIT\n",
            "out of range",
        ),
    ] {
        let rs = rtrouter::ruleset::restore::restore(&Default::default(), rules, "t", false);
        let ok = rs.is_ok_and(|rs| rtrouter::ruleset::validate(&rs, &Default::default()).is_ok());
        assert!(!ok, "SYNPROXY {why} must be refused");
    }
    // Options read as 32-bit numbers and kept in their field's width, as iptables does.
    let rs = rtrouter::ruleset::restore::restore(
        &Default::default(),
        "*mangle\n-A FORWARD -p tcp -j SYNPROXY --ecn --mss 70000 --wscale 300 --timestamp\nCOMMIT\n",
        "t",
        false,
    )
    .unwrap();
    assert!(rs
        .save(false)
        .contains("-A FORWARD -p tcp -j SYNPROXY --timestamp --wscale 44 --mss 4464 --ecn"));
    // Segments other than a lone SYN or ACK go on to the next rule.
    let mut l = Lab::new("*filter\n-A FORWARD -p tcp -j SYNPROXY\n-A FORWARD -j ACCEPT\nCOMMIT\n");
    for flags in [SYN | ACK, FIN | ACK, RST, RST | ACK, ACK | FIN, 0] {
        let sent = l.send("lan0", &tcp(A, 9, B, 80, flags));
        assert!(sent.forwarded(), "flags {flags:#x}: {:?}", sent.outcome);
    }
    // A SYN with a bad checksum is dropped.
    let mut bad = tcp(A, 9, B, 80, SYN);
    let n = bad.len();
    bad[n - 4] ^= 0xff;
    let sent = l.send("lan0", &bad);
    assert_eq!(sent.outcome.disposition, Disposition::Drop(DropReason::SynproxyInvalid));
    // Without a timestamp, no window scale or SACK is offered (they could not be kept).
    let mut l = Lab::new("*filter\n-A FORWARD -p tcp -j SYNPROXY --sack-perm --wscale 7 --mss 1460\nCOMMIT\n");
    let sent = l.send(
        "lan0",
        &seg((A, 9), (B, 80), SYN, (1, 0), &[2, 4, 5, 180, 4, 2, 1, 3, 3, 7]),
    );
    let (synack, _) = sent.reply.expect("SYN-ACK");
    let (_, _, _, _, opts) = seg_fields(&synack);
    assert_eq!(opts, vec![(2, 1460u16.to_be_bytes().to_vec())]);
}
