//! `replay` end to end through the router core, with captures the tests build themselves:
//! every packet that leaves is checked by an independent checksum verifier.

use rtrouter::packet::build::{self, Ip4, TcpSeg};
use rtrouter::packet::parse;
use rtrouter::pcap::{read, Writer};
use rtrouter::replay::replay;
use rtrouter_tests::{independent_checksum_check, ip, udp, Lab};
use std::net::IpAddr;

const GATEWAY: &str = "*nat\n-A PREROUTING -i wan0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.1.2:80\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n\
*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -i lan0 -o wan0 -j ACCEPT\n-A FORWARD -i wan0 -o lan0 -m conntrack --ctstate DNAT -j ACCEPT\nCOMMIT\n";

fn seg(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Vec<u8> {
    let mut b = Vec::new();
    build::tcp(
        &mut b,
        Ip4::new(ip(src), ip(dst), 6),
        TcpSeg {
            sport,
            dport,
            seq: 1,
            ack: 1,
            flags,
            window: 100,
        },
        b"",
    );
    b
}

/// A capture of (interface, seconds, packet).
fn capture(pkts: &[(&str, u64, Vec<u8>)]) -> Vec<u8> {
    let mut w = Writer::new();
    for (i, t, p) in pkts {
        w.packet(i, t * 1_000_000_000, p);
    }
    w.finish()
}

/// The output capture as (interface, packet) pairs, every packet checksum-verified.
fn emitted(out: &[u8]) -> Vec<(String, Vec<u8>)> {
    let cap = read(out).expect("our output parses");
    cap.packets
        .iter()
        .map(|p| {
            independent_checksum_check(&p.data).unwrap_or_else(|e| panic!("bad {e} in emitted packet {:02x?}", p.data));
            (cap.ifaces[p.iface].name.clone().unwrap(), p.data.clone())
        })
        .collect()
}

fn a(s: &str) -> IpAddr {
    IpAddr::V4(ip(s))
}

#[test]
fn masqueraded_lan_gateway() {
    let l = Lab::new(GATEWAY);
    let cap = capture(&[
        ("lan0", 1, seg("10.0.1.2", 40000, "192.0.2.80", 443, 0x02)),
        ("wan0", 1, seg("192.0.2.80", 443, "10.0.2.1", 40000, 0x12)),
        ("lan0", 2, seg("10.0.1.2", 40000, "192.0.2.80", 443, 0x10)),
        // The WAN side cannot open connections inward.
        ("wan0", 3, seg("192.0.2.80", 5000, "10.0.1.2", 22, 0x02)),
    ]);
    let r = replay(&l.router, &cap, None, 0).unwrap();
    let verdicts: Vec<&str> = r.records.iter().map(|x| x.verdict()).collect();
    assert_eq!(verdicts, ["forward", "forward", "forward", "drop"]);
    let json: Vec<serde_json::Value> = r
        .records
        .iter()
        .map(|x| serde_json::from_str(&x.json()).unwrap())
        .collect();
    assert_eq!(json[0]["ct"], "NEW");
    assert_eq!(json[0]["snat"], "10.0.2.1:40000");
    assert_eq!(json[1]["ct"], "ESTABLISHED");
    assert_eq!(
        json[1]["dnat"], "10.0.1.2:40000",
        "the reply's destination is translated back"
    );
    assert_eq!(json[3]["reason"], "filtered");
    let out = emitted(&r.pcapng);
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].0, "wan0");
    assert_eq!(parse(&out[0].1).unwrap().src, a("10.0.2.1"));
    assert_eq!(out[1].0, "lan0");
    assert_eq!(parse(&out[1].1).unwrap().dst, a("10.0.1.2"));
}

#[test]
fn kube_proxy_service_with_its_reply_path() {
    let rules = std::fs::read_to_string(rtrouter_tests::repo_root().join("configs/kube-service.rules")).unwrap();
    let l = Lab::new(&rules);
    let mut pkts = vec![];
    for port in 0..30u16 {
        pkts.push((
            "lan0",
            1 + u64::from(port),
            seg("10.244.9.9", 30000 + port, "10.96.0.10", 80, 0x02),
        ));
    }
    let r = replay(&l.router, &capture(&pkts), None, 42).unwrap();
    let out = emitted(&r.pcapng);
    let backends: std::collections::BTreeSet<IpAddr> = out.iter().map(|(_, p)| parse(p).unwrap().dst).collect();
    assert_eq!(backends.len(), 3, "all three endpoints used: {backends:?}");
    // Each backend answers; the answer comes back from the service address.
    let mut replies = vec![];
    for (_, p) in &out {
        let h = parse(p).unwrap();
        let (sport, dport) = h.ports().unwrap();
        let IpAddr::V4(dst) = h.dst else { unreachable!() };
        let IpAddr::V4(src) = h.src else { unreachable!() };
        replies.push(("wan0", 100, seg(&dst.to_string(), dport, &src.to_string(), sport, 0x12)));
    }
    let r = replay(&l.router, &capture(&replies), None, 42).unwrap();
    for (_, p) in emitted(&r.pcapng) {
        let h = parse(&p).unwrap();
        assert_eq!((h.src, h.ports().unwrap().0), (a("10.96.0.10"), 80));
    }
    assert!(r.records.iter().all(|x| x.verdict() == "forward"));
}

#[test]
fn icmp_error_through_nat() {
    let l = Lab::new(GATEWAY);
    let first = replay(
        &l.router,
        &capture(&[("lan0", 1, udp("10.0.1.2", 5353, "192.0.2.53", 53))]),
        None,
        0,
    )
    .unwrap();
    let sent = emitted(&first.pcapng)[0].1.clone();
    let mut err = Vec::new();
    build::icmp(
        &mut err,
        Ip4::new(ip("192.0.2.1"), ip("10.0.2.1"), 1),
        11,
        0,
        [0; 4],
        &sent[..28],
    );
    let r = replay(&l.router, &capture(&[("wan0", 2, err)]), None, 0).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.records[0].json()).unwrap()["ct"],
        "RELATED"
    );
    let out = emitted(&r.pcapng);
    let h = parse(&out[0].1).unwrap();
    assert_eq!(h.dst, a("10.0.1.2"));
    let inner = rtrouter::conntrack::parse_quoted(&out[0].1[28..]).unwrap();
    assert_eq!(inner.src, a("10.0.1.2"));
}

#[test]
fn port_clash_is_remapped_and_replies_find_their_hosts() {
    let l = Lab::new(GATEWAY);
    let cap = capture(&[
        ("lan0", 1, seg("10.0.1.2", 40000, "192.0.2.80", 443, 0x02)),
        ("lan0", 1, seg("10.0.1.3", 40000, "192.0.2.80", 443, 0x02)),
    ]);
    let r = replay(&l.router, &cap, None, 0).unwrap();
    let out = emitted(&r.pcapng);
    let p0 = parse(&out[0].1).unwrap().ports().unwrap().0;
    let p1 = parse(&out[1].1).unwrap().ports().unwrap().0;
    assert_ne!(p0, p1);
    let back = capture(&[
        ("wan0", 2, seg("192.0.2.80", 443, "10.0.2.1", p0, 0x12)),
        ("wan0", 2, seg("192.0.2.80", 443, "10.0.2.1", p1, 0x12)),
    ]);
    let r = replay(&l.router, &back, None, 0).unwrap();
    let dsts: Vec<IpAddr> = emitted(&r.pcapng).iter().map(|(_, p)| parse(p).unwrap().dst).collect();
    assert_eq!(dsts, [a("10.0.1.2"), a("10.0.1.3")]);
}

#[test]
fn timestamps_drive_expiry_and_rejects_appear_in_the_output() {
    let l = Lab::new(&GATEWAY.replace(
        "-A FORWARD -i lan0 -o wan0 -j ACCEPT",
        "-A FORWARD -p tcp --dport 25 -j REJECT --reject-with tcp-reset\n-A FORWARD -i lan0 -o wan0 -j ACCEPT",
    ));
    let cap = capture(&[
        ("lan0", 10, udp("10.0.1.2", 7000, "192.0.2.53", 53)),
        ("wan0", 39, udp("192.0.2.53", 53, "10.0.2.1", 7000)), // 29 s later: still tracked
        ("lan0", 40, udp("10.0.1.2", 7001, "192.0.2.53", 53)),
        // 31 s later: expired, so no longer translated to the LAN host; it is addressed to
        // the router itself (no INPUT rules here), so it is delivered locally.
        ("wan0", 71, udp("192.0.2.53", 53, "10.0.2.1", 7001)),
        ("lan0", 72, seg("10.0.1.2", 1, "192.0.2.25", 25, 0x02)),
    ]);
    let r = replay(&l.router, &cap, None, 0).unwrap();
    let verdicts: Vec<&str> = r.records.iter().map(|x| x.verdict()).collect();
    assert_eq!(verdicts, ["forward", "forward", "forward", "local", "reject"]);
    let out = emitted(&r.pcapng);
    let (iface, rst) = out.last().unwrap();
    assert_eq!(iface, "lan0", "the reset goes back to the sender");
    assert!(matches!(parse(rst).unwrap().l4, rtrouter::packet::L4::Tcp(t) if t.flags & 0x04 != 0));
}

#[test]
fn bad_captures_are_clear_errors() {
    let l = Lab::new(GATEWAY);
    let good = capture(&[("lan0", 1, udp("10.0.1.2", 1, "192.0.2.1", 2))]);
    // Blocks: section header, interface description, packet.
    let e = replay(&l.router, &good[..good.len() - 5], None, 0).unwrap_err();
    assert_eq!(e.block, 3);
    assert!(e.to_string().contains("truncated"), "{e}");
    let e = replay(
        &l.router,
        &capture(&[("eth7", 1, udp("10.0.1.2", 1, "192.0.2.1", 2))]),
        None,
        0,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("`eth7' is not an interface of the config"),
        "{e}"
    );
    let e = replay(&l.router, b"\x0a\x0d\x0d\x0a\x00", None, 0).unwrap_err();
    assert_eq!(e.block, 1);
    // Garbage packets inside a valid capture are dropped and counted, not errors.
    let r = replay(
        &l.router,
        &capture(&[("lan0", 1, vec![0x45, 0, 0]), ("lan0", 1, vec![0x99; 40])]),
        None,
        0,
    )
    .unwrap();
    let reasons: Vec<String> = r
        .records
        .iter()
        .map(|x| {
            serde_json::from_str::<serde_json::Value>(&x.json()).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(reasons, ["truncated", "bad_version"]);
}

/// A 4000-byte UDP datagram from the LAN host (DF clear), and its payload (bytes `i * step`).
fn big_udp(step: u32) -> (Vec<u8>, Vec<u8>) {
    let payload: Vec<u8> = (0..3972u32).map(|i| (i * step) as u8).collect();
    let mut big = Vec::new();
    build::udp(
        &mut big,
        Ip4::new(ip("10.0.1.2"), ip("192.0.2.80"), 17),
        5000,
        53,
        &payload,
    );
    (big, payload)
}

#[test]
fn datagrams_larger_than_the_egress_mtu_leave_in_fragments() {
    let l = Lab::new(GATEWAY);
    // A 4000-byte UDP datagram (DF clear) from the LAN, masqueraded out of wan0 (MTU 1500).
    let (big, payload) = big_udp(7);
    assert_eq!(big.len(), 4000);
    let mut df = big.clone();
    df[6] |= 0x40;
    rtrouter_tests::refresh_checksums(&mut df);
    let cap = capture(&[("lan0", 1, big), ("lan0", 2, df)]);
    let r = replay(&l.router, &cap, None, 0).unwrap();
    let out = emitted(&r.pcapng);
    let frags: Vec<&Vec<u8>> = out.iter().filter(|(i, _)| i == "wan0").map(|(_, p)| p).collect();
    assert_eq!(frags.len(), 3, "1480 + 1480 + 1020 data bytes");
    assert!(frags.iter().all(|f| f.len() <= 1500));
    // Reassembled, the fragments are the masqueraded datagram, its UDP checksum right.
    let mut whole = frags[0][..20].to_vec();
    for f in &frags {
        whole.extend_from_slice(&f[20..]);
    }
    let len = whole.len() as u16;
    whole[2..4].copy_from_slice(&len.to_be_bytes());
    whole[6..8].copy_from_slice(&[0, 0]);
    whole[10..12].copy_from_slice(&[0, 0]);
    let c = rtrouter::packet::checksum::finish(rtrouter::packet::checksum::sum(&whole[..20]));
    whole[10..12].copy_from_slice(&c.to_be_bytes());
    independent_checksum_check(&whole).expect("the reassembled datagram's checksums hold");
    assert_eq!(parse(&whole).unwrap().src, a("10.0.2.1"));
    assert_eq!(&whole[28..], &payload[..]);
    // With DF set the router answers fragmentation needed instead.
    let icmp = out
        .iter()
        .find(|(i, p)| i == "lan0" && p[9] == 1)
        .expect("an ICMP error to the sender");
    assert_eq!((icmp.1[20], icmp.1[21]), (3, 4));
    assert_eq!(u16::from_be_bytes([icmp.1[26], icmp.1[27]]), 1500);
    assert_eq!(l.router.stats.frag_ok.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(
        l.router.stats.frag_creates.load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}

#[test]
fn fragments_are_reassembled_for_the_rules_and_leave_no_larger_than_they_came() {
    let l = Lab::new(GATEWAY);
    let (big, payload) = big_udp(11);
    let mut pieces = Vec::new();
    rtrouter::packet::frag::fragment(&big, 1000, &mut Vec::new(), &mut |f| pieces.push(f.to_vec())).unwrap();
    assert_eq!(pieces.len(), 5);
    // Out of order, then the reply.
    let mut pkts: Vec<(&str, u64, Vec<u8>)> = pieces.iter().rev().map(|p| ("lan0", 1, p.clone())).collect();
    pkts.push(("wan0", 2, udp("192.0.2.80", 53, "10.0.2.1", 5000)));
    let r = replay(&l.router, &capture(&pkts), None, 0).unwrap();
    let verdicts: Vec<&str> = r.records.iter().map(|x| x.verdict()).collect();
    assert_eq!(verdicts, ["held", "held", "held", "held", "forward", "forward"]);
    assert_eq!(r.records[4].outcome.frag_max, 996);
    let json: serde_json::Value = serde_json::from_str(&r.records[5].json()).unwrap();
    assert_eq!(json["ct"], "ESTABLISHED", "conntrack saw one datagram, and its reply");
    let out = emitted(&r.pcapng);
    let wan: Vec<&Vec<u8>> = out.iter().filter(|(i, _)| i == "wan0").map(|(_, p)| p).collect();
    assert_eq!(wan.len(), 5, "refragmented to the largest fragment that came");
    assert!(wan.iter().all(|f| f.len() <= 996));
    let mut data = Vec::new();
    for f in &wan {
        assert_eq!(parse(f).unwrap().src, a("10.0.2.1"), "every fragment masqueraded");
        data.extend_from_slice(&f[20..]);
    }
    assert_eq!(&data[8..], &payload[..]);
    assert_eq!(u16::from_be_bytes([data[0], data[1]]), 5000);
    assert_eq!(
        l.router
            .defrag
            .stats
            .reassembled
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert!(l.router.defrag.is_empty());
}

/// Runs `tool args file`; `None` (after a SKIP line) when the tool is not installed.
fn read_with(tool: &str, args: &[&str], file: &std::path::Path) -> Option<(bool, String)> {
    match std::process::Command::new(tool).args(args).arg(file).output() {
        Ok(o) => Some((
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )),
        Err(_) => {
            println!("SKIP: {tool} is not installed (the test command installs it)");
            None
        }
    }
}

#[test]
fn tcpdump_and_tshark_read_what_replay_writes() {
    let l = Lab::new(GATEWAY);
    let mut v6 = Vec::new();
    // An IPv6 UDP packet next to the IPv4 ones: the same file carries both.
    v6.extend_from_slice(&[0x60, 0, 0, 0, 0, 12, 17, 64]);
    v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    v6.extend_from_slice(&[0x13, 0x88, 0x9c, 0x40, 0, 12, 0, 0, 1, 2, 3, 4]);
    let h = parse(&v6).expect("the IPv6 packet parses");
    rtrouter::packet::fill_l4_checksum(&mut v6, &h);
    let cap = capture(&[
        ("lan0", 1, seg("10.0.1.2", 40000, "192.0.2.80", 443, 0x02)),
        ("wan0", 1, seg("192.0.2.80", 443, "10.0.2.1", 40000, 0x12)),
        ("lan0", 2, udp("10.0.1.2", 5000, "192.0.2.53", 40000)),
    ]);
    let r = replay(&l.router, &cap, None, 0).unwrap();
    let dir = std::env::temp_dir().join(format!("rtrouter-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out.pcapng");
    std::fs::write(&out, &r.pcapng).unwrap();
    let mut w = Writer::new();
    w.packet("lan0", 1, &seg("10.0.1.2", 1, "10.0.2.2", 2, 0x02));
    w.packet("wan0", 2, &v6);
    let mixed = dir.join("mixed.pcapng");
    std::fs::write(&mixed, w.finish()).unwrap();
    for file in [&out, &mixed] {
        if let Some((ok, text)) = read_with("tcpdump", &["-n", "-r"], file) {
            assert!(ok, "tcpdump -r {}: {text}", file.display());
            assert!(text.contains("IP 10."), "{text}");
            if file == &mixed {
                assert!(text.contains("IP6 2001:db8::1.5000 > 2001:db8::2.40000"), "{text}");
            }
        }
        if let Some((ok, text)) = read_with("tshark", &["-r"], file) {
            assert!(ok, "tshark -r {}: {text}", file.display());
            if file == &mixed {
                // (tshark's heuristics may guess at the made-up UDP payload: only the frames
                // themselves are checked here.)
                assert!(
                    text.contains("10.0.1.2 → 10.0.2.2") && text.contains("2001:db8::1 → 2001:db8::2"),
                    "{text}"
                );
            } else {
                assert!(!text.contains("Malformed"), "{text}");
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A `tcpdump -i any` capture (Linux cooked, link type 113) as (seconds, packet type,
/// packet): packet type 0 arrived for this host, 4 was sent by it.
fn cooked(pkts: &[(u32, u16, Vec<u8>)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&113u32.to_le_bytes());
    for (sec, kind, ip) in pkts {
        let mut f = kind.to_be_bytes().to_vec();
        f.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
        f.extend_from_slice(&6u16.to_be_bytes());
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        f.extend_from_slice(ip);
        b.extend_from_slice(&sec.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(&f);
    }
    b
}

#[test]
fn cooked_captures_replay_what_arrived_in_time_order() {
    let l = Lab::new(GATEWAY);
    let out = seg("10.0.1.2", 40000, "192.0.2.80", 443, 0x02);
    let cap = cooked(&[
        // Written out of order: the SYN (1 s) comes after its own outgoing copy (2 s)...
        (2, 4, seg("10.0.2.1", 40000, "192.0.2.80", 443, 0x02)),
        (1, 0, out.clone()),
        // ...and the ACK (3 s) is in place.
        (3, 0, seg("10.0.1.2", 40000, "192.0.2.80", 443, 0x10)),
    ]);
    let r = replay(&l.router, &cap, Some("lan0"), 0).unwrap();
    // The outgoing copy is not replayed as if it had arrived; the SYN opens the connection
    // before the ACK, because the packets are replayed in time order.
    assert_eq!(r.skipped_outbound, 1);
    assert_eq!(r.reordered, 1);
    let json: Vec<serde_json::Value> = r
        .records
        .iter()
        .map(|x| serde_json::from_str(&x.json()).unwrap())
        .collect();
    assert_eq!(json.len(), 2);
    assert_eq!(
        (json[0]["verdict"].as_str(), json[0]["ct"].as_str()),
        (Some("forward"), Some("NEW"))
    );
    // The ACK then meets a connection in SYN_SENT, where an ACK from the originator is
    // INVALID (nf_conntrack_proto_tcp.c: sSS + ACK -> sIV); replayed in file order it would
    // have come first and been picked up mid-stream as NEW.
    assert_eq!(json[1]["ct"], "INVALID");
    let s = rtrouter::replay::summary(&r);
    assert!(s.contains("1 outgoing packets skipped"), "{s}");
    assert!(s.contains("1 packets were out of time order"), "{s}");
}

#[test]
fn ipv6_capture_through_ip6tables_rules() {
    use rtrouter::packet::build::Ip6;
    use rtrouter::ruleset::{restore::restore, validate, Env, Family, Ruleset};
    let l = Lab::new("*filter\nCOMMIT\n");
    let rules6 = "*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -i lan0 -o wan0 -j ACCEPT\nCOMMIT\n";
    let v = validate(
        &restore(&Ruleset::new(Family::V6), rules6, "t", false).unwrap(),
        &Env::default(),
    )
    .unwrap();
    l.router.swap_rules(v);
    let seg6 = |src: &str, sport: u16, dst: &str, dport: u16, flags: u8| {
        let mut b = Vec::new();
        let seg = TcpSeg {
            sport,
            dport,
            seq: 1,
            ack: 1,
            flags,
            window: 100,
        };
        build::tcp(&mut b, Ip6::new(src.parse().unwrap(), dst.parse().unwrap()), seg, b"");
        b
    };
    // The topology's IPv6 addresses: lan0 2001:db8::10.0.1.1/120, wan0 2001:db8::10.0.2.1/120.
    let (host, wan, server) = ("2001:db8::a00:102", "2001:db8::a00:201", "2001:db8:99::80");
    let cap = capture(&[
        ("lan0", 1, seg6(host, 40000, server, 443, 0x02)),
        ("wan0", 1, seg6(server, 443, wan, 40000, 0x12)),
        ("wan0", 2, seg6(server, 5000, host, 22, 0x02)),
    ]);
    let r = replay(&l.router, &cap, None, 0).unwrap();
    let verdicts: Vec<&str> = r.records.iter().map(|x| x.verdict()).collect();
    assert_eq!(verdicts, ["forward", "forward", "drop"]);
    let json: Vec<serde_json::Value> = r
        .records
        .iter()
        .map(|x| serde_json::from_str(&x.json()).unwrap())
        .collect();
    assert_eq!(json[0]["snat"], format!("[{wan}]:40000"));
    assert_eq!(json[1]["ct"], "ESTABLISHED");
    let out = emitted(&r.pcapng);
    assert_eq!(out.len(), 2);
    assert_eq!(parse(&out[0].1).unwrap().src, wan.parse::<IpAddr>().unwrap());
    assert_eq!(parse(&out[1].1).unwrap().dst, host.parse::<IpAddr>().unwrap());
}
