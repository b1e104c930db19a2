//! IPv6 through the router core: ip6tables rulesets judge IPv6 packets and iptables rulesets
//! IPv4 ones, each apart from the other (as `ip6_tables` and `ip_tables` in Linux); REJECT
//! answers with ICMPv6 or a TCP reset over IPv6; hop-limit expiry and packets too big for the
//! next hop are answered with ICMPv6 errors; connection tracking follows IPv6 flows.
//! Every packet the router builds is checked by a checksum verifier written here from RFC
//! 8200 8.1 and RFC 1071, sharing no code with the router.

use rtrouter::config::Cidr;
use rtrouter::eval::state::IpSets;
use rtrouter::eval::SplitMix;
use rtrouter::packet::build::{self, Ip4, Ip6, TcpSeg};
use rtrouter::packet::{parse, L4};
use rtrouter::route::{IfaceInfo, NextHop, Topology};
use rtrouter::router::{Disposition, Ingress, Meta, Reply, Router};
use rtrouter::ruleset::{restore::restore, validate, Env, Family, Ruleset};
use std::net::Ipv6Addr;

/// lan0 10.0.1.1/24 and 2001:db8:1::1/64; wan0 (mtu 1500) 10.0.2.1/24 and 2001:db8:2::1/64;
/// default routes via 10.0.2.2 and 2001:db8:2::2 on wan0.
fn topology() -> Topology {
    let mut t = Topology::default();
    let c = |s: &str| Cidr::parse(s).expect("literal");
    t.add_iface(IfaceInfo {
        name: "lan0".into(),
        addrs: vec![c("10.0.1.1/24"), c("2001:db8:1::1/64")],
        mtu: 1500,
    });
    let wan = t.add_iface(IfaceInfo {
        name: "wan0".into(),
        addrs: vec![c("10.0.2.1/24"), c("2001:db8:2::1/64")],
        mtu: 1500,
    });
    for (to, via) in [("0.0.0.0/0", "10.0.2.2"), ("::/0", "2001:db8:2::2")] {
        t.routes.insert(
            c(to),
            NextHop {
                iface: wan,
                via: Some(via.parse().expect("literal")),
            },
        );
    }
    t.forwarding = true;
    t
}

struct Lab6 {
    router: Router,
    rng: SplitMix,
    now: u64,
}

struct Sent {
    disposition: Disposition,
    reply: Option<Vec<u8>>,
    /// The packet as the router left it.
    out: Vec<u8>,
}

impl Lab6 {
    /// `rules4` for iptables, `rules6` for ip6tables.
    fn new(rules4: &str, rules6: &str) -> Lab6 {
        let load = |family, text: &str| {
            let rs = restore(&Ruleset::new(family), text, "lab", false).unwrap_or_else(|e| panic!("{e}"));
            validate(&rs, &Env::default()).unwrap_or_else(|e| panic!("{e}"))
        };
        let router = Router::new(topology(), load(Family::V4, rules4), IpSets::default(), 1000);
        router.swap_rules(load(Family::V6, rules6));
        Lab6 {
            router,
            rng: SplitMix(1),
            now: 1_000_000_000,
        }
    }

    fn send(&mut self, iface: &str, pkt: &[u8]) -> Sent {
        self.send_ct(iface, pkt, None)
    }

    /// With the connection state fixed by the caller (as `trace` fixes it): conntrack, and
    /// its reassembly, leave the packet alone.
    fn send_ct(&mut self, iface: &str, pkt: &[u8], ct: Option<rtrouter::eval::Ct>) -> Sent {
        let mut buf = pkt.to_vec();
        let mut reply = Reply::default();
        let out = self.router.process(
            Meta {
                now: self.now,
                ingress: Ingress::Iface(self.router.topo.iface_id(iface).expect("lab interface")),
                mark: 0,
                seg: 0,
                ct,
            },
            &mut buf,
            &mut reply,
            &mut self.rng,
            &mut (),
        );
        let reply = reply.disposition.map(|_| reply.buf.clone());
        if let Some(r) = &reply {
            checksum6(r).unwrap_or_else(|e| panic!("bad {e} in reply {r:02x?}"));
        }
        Sent {
            disposition: out.disposition,
            reply,
            out: buf,
        }
    }
}

fn a6(s: &str) -> Ipv6Addr {
    s.parse().expect("IPv6 literal")
}

fn tcp6(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Vec<u8> {
    let mut b = Vec::new();
    let seg = TcpSeg {
        sport,
        dport,
        seq: 1000,
        ack: 2000,
        flags,
        window: 8192,
    };
    build::tcp(&mut b, Ip6::new(a6(src), a6(dst)), seg, b"");
    b
}

fn udp6(src: &str, dst: &str, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    build::udp(&mut b, Ip6::new(a6(src), a6(dst)), 5000, dport, payload);
    b
}

fn ping6(src: &str, dst: &str, hop_limit: u8) -> Vec<u8> {
    let mut b = Vec::new();
    let ip = Ip6 {
        hop_limit,
        ..Ip6::new(a6(src), a6(dst))
    };
    build::icmp(&mut b, ip, 128, 0, [0, 9, 0, 1], b"ping");
    b
}

/// Verifies the transport checksum of an IPv6 packet with no extension headers from first
/// principles: RFC 8200 8.1's pseudo-header (addresses, upper-layer length, next header)
/// summed with the transport bytes, RFC 1071 ones' complement.
fn checksum6(p: &[u8]) -> Result<(), String> {
    if p.len() < 40 || p[0] >> 4 != 6 {
        return Err("not an IPv6 packet".into());
    }
    let plen = usize::from(u16::from_be_bytes([p[4], p[5]]));
    if 40 + plen != p.len() {
        return Err(format!("payload length {plen} for {} bytes", p.len()));
    }
    let nh = p[6];
    if !matches!(nh, 6 | 17 | 58) {
        return Ok(());
    }
    let mut sum: u64 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u64::from((u16::from(c[0]) << 8) | u16::from(*c.get(1).unwrap_or(&0)));
        }
    };
    add(&p[8..40]);
    add(&(plen as u32).to_be_bytes());
    add(&[0, 0, 0, nh]);
    add(&p[40..]);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    if sum == 0xffff {
        Ok(())
    } else {
        Err(format!("transport checksum (protocol {nh})"))
    }
}

/// The ICMPv6 message of a reply: (source, destination, type, code, the 4 bytes after the
/// checksum, the quoted packet).
fn icmp6_of(r: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8, u8, [u8; 4], Vec<u8>) {
    assert_eq!(r[6], 58, "an ICMPv6 message");
    let src: [u8; 16] = r[8..24].try_into().unwrap();
    let dst: [u8; 16] = r[24..40].try_into().unwrap();
    (
        src.into(),
        dst.into(),
        r[40],
        r[41],
        r[44..48].try_into().unwrap(),
        r[48..].to_vec(),
    )
}

const FILTER6: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
-A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type echo-request -m hl --hl-gt 10 -j ACCEPT\n\
-A FORWARD -p tcp -m tcp --dport 25 -j REJECT --reject-with tcp-reset\n\
-A FORWARD -p udp -m udp --dport 53 -j REJECT\n\
-A FORWARD -p udp -m udp --dport 54 -j REJECT --reject-with icmp6-adm-prohibited\n\
-A FORWARD -s 2001:db8:1::/64 -i lan0 -o wan0 -j ACCEPT\n\
COMMIT\n";

/// The IPv4 tables drop every forwarded packet: they must not judge IPv6 ones.
const DROP4: &str = "*filter\n:FORWARD DROP [0:0]\nCOMMIT\n";

#[test]
fn ip6tables_rules_judge_ipv6_and_iptables_rules_ipv4() {
    let mut l = Lab6::new(DROP4, FILTER6);
    // Out from the LAN prefix: accepted by ip6tables, whatever iptables says.
    let s = l.send("lan0", &tcp6("2001:db8:1::10", 40000, "2001:db8:99::1", 443, 0x02));
    assert!(matches!(s.disposition, Disposition::Forward(_)), "{:?}", s.disposition);
    // The answer is ESTABLISHED in IPv6 conntrack.
    let s = l.send("wan0", &tcp6("2001:db8:99::1", 443, "2001:db8:1::10", 40000, 0x12));
    assert!(matches!(s.disposition, Disposition::Forward(_)), "{:?}", s.disposition);
    // Unsolicited from outside: FORWARD's policy.
    let s = l.send("wan0", &tcp6("2001:db8:99::1", 443, "2001:db8:1::10", 40001, 0x02));
    assert!(matches!(s.disposition, Disposition::Drop(_)), "{:?}", s.disposition);
    // From another prefix on the LAN: not the rule's source.
    let s = l.send("lan0", &tcp6("2001:db8:7::10", 40000, "2001:db8:99::1", 443, 0x02));
    assert!(matches!(s.disposition, Disposition::Drop(_)));
    // IPv4 meets iptables' DROP policy, not ip6tables' ACCEPT rule.
    let mut b = Vec::new();
    build::udp(
        &mut b,
        Ip4::new("10.0.1.10".parse().unwrap(), "192.0.2.1".parse().unwrap(), 17),
        1,
        2,
        b"",
    );
    let s = l.send("lan0", &b);
    assert!(matches!(s.disposition, Disposition::Drop(_)));
    // The counters are ip6tables' own.
    let saved = l.router.engine_of(Family::V6).save(true);
    assert!(
        saved.contains("[1:60] -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
        "{saved}"
    );
    assert!(
        saved.contains("[1:60] -A FORWARD -s 2001:db8:1::/64 -i lan0 -o wan0 -j ACCEPT"),
        "{saved}"
    );
    assert!(l.router.engine().save(true).contains(":FORWARD DROP [1:"));
}

#[test]
fn icmp6_and_hop_limit_matches() {
    let mut l = Lab6::new("", FILTER6);
    let s = l.send("wan0", &ping6("2001:db8:99::1", "2001:db8:1::10", 64));
    assert!(
        matches!(s.disposition, Disposition::Forward(_)),
        "an echo request with hop limit 64"
    );
    let s = l.send("wan0", &ping6("2001:db8:99::1", "2001:db8:1::11", 9));
    assert!(
        matches!(s.disposition, Disposition::Drop(_)),
        "hop limit 9 (8 after forwarding) is not > 10"
    );
}

#[test]
fn reject_answers_with_icmpv6_and_tcp_resets() {
    let mut l = Lab6::new("", FILTER6);
    // UDP to port 53: the default, ICMPv6 port unreachable (type 1, code 4), from the
    // router's address on the link toward the sender, quoting the packet.
    let pkt = udp6("2001:db8:1::10", "2001:db8:99::53", 53, b"query");
    let s = l.send("lan0", &pkt);
    assert!(matches!(s.disposition, Disposition::Drop(_)));
    let (src, dst, typ, code, _, quote) = icmp6_of(s.reply.as_ref().expect("an ICMPv6 error"));
    assert_eq!((src, dst, typ, code), (a6("2001:db8:1::1"), a6("2001:db8:1::10"), 1, 4));
    // The quote is the packet as it reached FORWARD (hop limit already decremented).
    assert_eq!(quote[..7], pkt[..7]);
    assert_eq!(quote[8..], pkt[8..]);
    assert_eq!(quote[7], 63);
    // --reject-with icmp6-adm-prohibited: code 1.
    let s = l.send("lan0", &udp6("2001:db8:1::10", "2001:db8:99::53", 54, b""));
    let (.., typ, code, _, _) = icmp6_of(s.reply.as_ref().unwrap());
    assert_eq!((typ, code), (1, 1));
    // tcp-reset: a RST+ACK over IPv6 acknowledging the SYN.
    let s = l.send("lan0", &tcp6("2001:db8:1::10", 40000, "2001:db8:99::25", 25, 0x02));
    let r = s.reply.expect("a reset");
    let h = parse(&r).unwrap();
    assert_eq!(
        (h.src.to_string(), h.dst.to_string()),
        ("2001:db8:99::25".into(), "2001:db8:1::10".into())
    );
    let L4::Tcp(t) = h.l4 else { panic!("TCP") };
    assert_eq!((t.sport, t.dport, t.flags, t.ack), (25, 40000, 0x14, 1001));
}

#[test]
fn hop_limit_expiry_and_packets_too_big_are_answered() {
    let mut l = Lab6::new("", "");
    // Hop limit 1: ICMPv6 time exceeded (type 3, code 0).
    let s = l.send("lan0", &ping6("2001:db8:1::10", "2001:db8:99::1", 1));
    assert!(matches!(s.disposition, Disposition::Drop(_)));
    let (src, _, typ, code, _, _) = icmp6_of(s.reply.as_ref().unwrap());
    assert_eq!((src, typ, code), (a6("2001:db8:1::1"), 3, 0));
    // 1600 bytes toward a 1500-byte link: IPv6 routers never fragment, packet too big
    // (type 2) with the MTU, and the quote keeps the error within 1280 bytes.
    let s = l.send("lan0", &udp6("2001:db8:1::10", "2001:db8:99::1", 9, &[7; 1552]));
    assert!(matches!(s.disposition, Disposition::Drop(_)));
    let r = s.reply.unwrap();
    let (_, _, typ, code, mtu, _) = icmp6_of(&r);
    assert_eq!((typ, code, u32::from_be_bytes(mtu)), (2, 0, 1500));
    assert_eq!(r.len(), 1280);
    // Never an error about an ICMPv6 error.
    let mut err = Vec::new();
    build::icmp(
        &mut err,
        Ip6 {
            hop_limit: 1,
            ..Ip6::new(a6("2001:db8:1::10"), a6("2001:db8:99::1"))
        },
        1,
        4,
        [0; 4],
        &[0x60; 48],
    );
    let s = l.send("lan0", &err);
    assert!(matches!(s.disposition, Disposition::Drop(_)));
    assert!(s.reply.is_none());
}

#[test]
fn ip6tables_rulesets_load_and_print_as_ip6tables_save() {
    let text = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
-A INPUT -s 2001:db8::/32 -d ::1 -p icmpv6 -m icmp6 --icmpv6-type echo-request -j ACCEPT\n\
-A INPUT -s fe80::/ffff:ffff:ffff:ffff:: -j ACCEPT\n\
-A INPUT -s 2001:0:db8::9/ffff:0:ffff:: -j DROP\n\
-4 -A INPUT -s 10.0.0.1 -j DROP\n\
-6 -A INPUT -p tcp -j REJECT\n\
COMMIT\n";
    let rs = restore(&Ruleset::new(Family::V6), text, "t6", false).unwrap();
    let saved = rs.save(false);
    let rules: Vec<&str> = saved.lines().filter(|l| l.starts_with("-A")).collect();
    assert_eq!(
        rules,
        [
            "-A INPUT -s 2001:db8::/32 -d ::1/128 -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT",
            "-A INPUT -s fe80::/64 -j ACCEPT",
            "-A INPUT -s 2001:0:db8::/ffff:0:ffff:: -j DROP",
            "-A INPUT -p tcp -j REJECT --reject-with icmp6-port-unreachable",
        ]
    );
    // And iptables' words are refused, naming where.
    for (bad, why) in [
        ("-A INPUT -s 10.0.0.1 -j DROP", "host/network `10.0.0.1' not found"),
        (
            "-A INPUT -p icmp -m icmp --icmp-type 8 -j DROP",
            "Couldn't load match `icmp'",
        ),
        ("-A INPUT -m ttl --ttl-eq 1 -j DROP", "Couldn't load match `ttl'"),
        ("-A INPUT -f -j DROP", "unknown option `-f'"),
        (
            "-A INPUT -j REJECT --reject-with icmp-host-prohibited",
            "unknown reject type",
        ),
    ] {
        let e = restore(
            &Ruleset::new(Family::V6),
            &format!("*filter\n{bad}\nCOMMIT\n"),
            "t6",
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("t6:2:"), "{e}");
        assert!(e.contains(why), "{bad}: {e}");
    }
    // And ip6tables' are refused by iptables.
    let e = restore(
        &Ruleset::new(Family::V4),
        "*filter\n-A INPUT -m hl --hl-eq 1 -j DROP\nCOMMIT\n",
        "t4",
        false,
    )
    .unwrap_err();
    assert!(e.to_string().contains("Couldn't load match `hl'"), "{e}");
}

const NAT66: &str =
    "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
-A PREROUTING -d 2001:db8:2::1/128 -i wan0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [2001:db8:1::20]:80\n\
-A POSTROUTING -s 2001:db8:1::/64 -o wan0 -j MASQUERADE\n\
COMMIT\n";

#[test]
fn nat66_masquerade_and_dnat_with_their_replies() {
    let mut l = Lab6::new("", NAT66);
    // Forwarded, its checksums verified: the packet as it left.
    let forward = |l: &mut Lab6, iface: &str, pkt: &[u8]| {
        let s = l.send(iface, pkt);
        assert!(matches!(s.disposition, Disposition::Forward(_)), "{:?}", s.disposition);
        checksum6(&s.out).unwrap();
        s.out
    };
    let buf = forward(
        &mut l,
        "lan0",
        &tcp6("2001:db8:1::10", 40000, "2001:db8:99::1", 443, 0x02),
    );
    let h = parse(&buf).unwrap();
    // Masqueraded to the WAN address; the port kept (it is free).
    assert_eq!(h.src.to_string(), "2001:db8:2::1");
    assert_eq!(h.ports(), Some((40000, 443)));
    // The reply to the WAN address goes back to the LAN host.
    let buf = forward(
        &mut l,
        "wan0",
        &tcp6("2001:db8:99::1", 443, "2001:db8:2::1", 40000, 0x12),
    );
    assert_eq!(parse(&buf).unwrap().dst.to_string(), "2001:db8:1::10");
    // An ICMPv6 error about the masqueraded flow (from a router on the way) is RELATED and
    // translated inside: the quoted packet's source becomes the LAN host's again.
    let quoted = {
        let mut q = tcp6("2001:db8:2::1", 40000, "2001:db8:99::1", 443, 0x10);
        q[7] = 1;
        q
    };
    let mut err = Vec::new();
    build::icmp(
        &mut err,
        Ip6::new(a6("2001:db8:77::1"), a6("2001:db8:2::1")),
        3,
        0,
        [0; 4],
        &quoted,
    );
    let buf = forward(&mut l, "wan0", &err);
    let (_, dst, typ, _, _, inner) = icmp6_of(&buf);
    assert_eq!((dst, typ), (a6("2001:db8:1::10"), 3));
    assert_eq!(&inner[8..24], &a6("2001:db8:1::10").octets());
    // DNAT of the published port to a LAN server, and its answer un-DNATed.
    let b = forward(
        &mut l,
        "wan0",
        &tcp6("2001:db8:99::7", 5555, "2001:db8:2::1", 8080, 0x02),
    );
    let h = parse(&b).unwrap();
    assert_eq!(
        (h.dst.to_string(), h.ports()),
        ("2001:db8:1::20".into(), Some((5555, 80)))
    );
    let back = forward(
        &mut l,
        "lan0",
        &tcp6("2001:db8:1::20", 80, "2001:db8:99::7", 5555, 0x12),
    );
    let h = parse(&back).unwrap();
    assert_eq!(
        (h.src.to_string(), h.ports()),
        ("2001:db8:2::1".into(), Some((8080, 5555)))
    );
}

#[test]
fn trace_follows_ipv6_packets_through_ip6tables_rules() {
    use rtrouter::trace::{trace, CtSpec, Spec};
    let rules = "*filter\n\
        -A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type echo-request -j ACCEPT\n\
        -A FORWARD -s 2001:db8:1::/48 -p tcp --dport 443 -j REJECT\n\
        COMMIT\n\
        *nat\n\
        -A PREROUTING -d 2001:db8:ff::1/128 -p tcp --dport 80 -j DNAT --to-destination [2001:db8:2::5]:8080\n\
        COMMIT\n";
    let rs = restore(&Ruleset::new(Family::V6), rules, "t", false).unwrap();
    let v = validate(&rs, &Env::default()).unwrap();
    let spec = |proto: u8, dst: &str, dport: u16, icmp: (u8, u8)| Spec {
        from: Some("lan0".into()),
        proto,
        src: "2001:db8:1::7".parse().unwrap(),
        sport: 40000,
        dst: dst.parse().unwrap(),
        dport,
        ctstate: CtSpec::New,
        mark: 0,
        tcp_flags: 0x02,
        icmp,
        ttl: 64,
        length: None,
        payload: None,
    };
    let run = |s: &Spec| {
        let o = trace(&v, &IpSets::default(), &topology(), s, None).unwrap();
        assert_eq!(o.len(), 1);
        o.into_iter().next().unwrap()
    };
    let o = run(&spec(58, "2001:db8:2::9", 0, (128, 0)));
    let has = |o: &rtrouter::trace::Outcome, step: &str| o.path.iter().any(|p| p == step);
    assert_eq!(o.verdict, "accept");
    assert!(has(&o, "filter/FORWARD#1"), "{:?}", o.path);
    // An ICMPv6 echo reply is not the echo request the first rule takes.
    let o = run(&spec(58, "2001:db8:2::9", 0, (129, 0)));
    assert!(
        has(&o, "filter/FORWARD:ACCEPT") && !has(&o, "filter/FORWARD#1"),
        "{:?}",
        o.path
    );
    let o = run(&spec(6, "2001:db8:2::9", 443, (0, 0)));
    assert_eq!(o.verdict, "reject");
    assert!(has(&o, "filter/FORWARD#2"), "{:?}", o.path);
    let o = run(&spec(6, "2001:db8:ff::1", 80, (0, 0)));
    assert_eq!(o.dnat.as_deref(), Some("[2001:db8:2::5]:8080"));
    assert_eq!(o.out.as_deref(), Some("wan0"));
    // A packet of the other family is refused with a reason, not judged by these rules.
    let mut s4 = spec(6, "2001:db8:2::9", 443, (0, 0));
    s4.src = "10.0.1.7".parse().unwrap();
    s4.dst = "10.0.2.9".parse().unwrap();
    let e = trace(&v, &IpSets::default(), &topology(), &s4, None).unwrap_err();
    assert!(e.contains("drop -6"), "{e}");
}

/// `pkt` (an IPv6 packet without extension headers) with `ext` inserted after its fixed
/// header, each given as its type and bytes (their next-header bytes are filled in).
fn with_ext(pkt: &[u8], ext: &[&(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = pkt[..40].to_vec();
    let upper = pkt[6];
    out[6] = ext.first().map_or(upper, |e| e.0);
    for (i, (_, bytes)) in ext.iter().enumerate() {
        let mut h = bytes.clone();
        h[0] = ext.get(i + 1).map_or(upper, |e| e.0);
        out.extend_from_slice(&h);
    }
    out.extend_from_slice(&pkt[40..]);
    let len = (out.len() - 40) as u16;
    out[4..6].copy_from_slice(&len.to_be_bytes());
    out
}

#[test]
fn extension_header_matches_judge_the_header_chain() {
    let udp = udp6("2001:db8:1::10", "2001:db8:99::1", 53, b"q");
    // Hop-by-hop with a PadN option of 4 bytes; another with six Pad1s.
    let hbh_padn = (0u8, vec![0, 0, 1, 4, 0, 0, 0, 0]);
    let hbh_pad1 = (0u8, vec![0u8; 8]);
    // Destination options, 16 bytes: PadN of 12.
    let dst = (60u8, vec![0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // First fragment of datagram 7, more to come.
    let frag_first = (44u8, vec![0, 0, 0, 1, 0, 0, 0, 7]);
    // Routing header type 0 with one address, one segment left.
    let mut rt0 = vec![0, 2, 0, 1, 0, 0, 0, 0];
    rt0.extend_from_slice(&a6("2001:db8:5::5").octets());
    let rt = (43u8, rt0);
    // AH with SPI 256 (payload length 4: 24 bytes).
    let mut ah_bytes = vec![0, 4, 0, 0, 0, 0, 1, 0];
    ah_bytes.extend_from_slice(&[0u8; 16]);
    let ah = (51u8, ah_bytes);
    // Segment routing header: 2 SIDs (the last one first), 1 segment left, tag 5.
    let mut srh_bytes = vec![0, 4, 4, 1, 1, 0, 0, 5];
    srh_bytes.extend_from_slice(&a6("c::1").octets());
    srh_bytes.extend_from_slice(&a6("a::1").octets());
    let srh = (43u8, srh_bytes);
    let cases: &[(&str, Vec<u8>, bool)] = &[
        (
            "-m srh --srh-next-hdr 17 --srh-segs-left-eq 1 --srh-last-entry-gt 0",
            with_ext(&udp, &[&srh]),
            true,
        ),
        ("-m srh --srh-hdr-len-lt 4", with_ext(&udp, &[&srh]), false),
        (
            "-m srh --srh-nsid c::/64 --srh-lsid c::1",
            with_ext(&udp, &[&srh]),
            true,
        ),
        // With as many segments left as entries there is no previous SID.
        ("-m srh --srh-psid ::/0", with_ext(&udp, &[&srh]), false),
        ("-m srh ! --srh-nsid a::/16", with_ext(&udp, &[&srh]), true),
        // The tag as a little-endian kernel compares it (bytes 00 05 read as 0x0500).
        ("-m srh --srh-tag 1280", with_ext(&udp, &[&srh]), true),
        ("-m srh", with_ext(&udp, &[&rt]), false),
        ("-m hbh --hbh-len 8 --hbh-opts 1:4", with_ext(&udp, &[&hbh_padn]), true),
        ("-m hbh --hbh-len 8 --hbh-opts 1:4", with_ext(&udp, &[&hbh_pad1]), false),
        ("-m hbh ! --hbh-len 8", with_ext(&udp, &[&hbh_pad1]), false),
        ("-m hbh", udp.clone(), false),
        ("-m dst --dst-len 16", with_ext(&udp, &[&hbh_pad1, &dst]), true),
        ("-m dst --dst-opts 1:12", with_ext(&udp, &[&dst]), true),
        ("-m dst --dst-opts 1:11", with_ext(&udp, &[&dst]), false),
        (
            "-m frag --fragid 7 --fragfirst --fragmore",
            with_ext(&udp, &[&frag_first]),
            true,
        ),
        ("-m frag --fraglast", with_ext(&udp, &[&frag_first]), false),
        ("-m frag", udp.clone(), false),
        (
            "-m rt --rt-type 0 --rt-segsleft 1 --rt-len 24 --rt-0-addrs 2001:db8:5::5",
            with_ext(&udp, &[&rt]),
            true,
        ),
        (
            "-m rt --rt-type 0 --rt-0-addrs 2001:db8:5::6",
            with_ext(&udp, &[&rt]),
            false,
        ),
        ("-m rt ! --rt-type 2", with_ext(&udp, &[&rt]), true),
        ("-m ah --ahspi 256 --ahlen 24", with_ext(&udp, &[&ah]), true),
        ("-m ah --ahspi 257", with_ext(&udp, &[&ah]), false),
        // Behind AH the transport header is still found: -p udp and its ports match.
        ("-p udp -m udp --dport 53", with_ext(&udp, &[&hbh_pad1, &ah]), true),
        (
            "-m ipv6header --header hop-by-hop,protocol",
            with_ext(&udp, &[&hbh_pad1]),
            true,
        ),
        (
            "-m ipv6header --header hop-by-hop,protocol",
            with_ext(&udp, &[&hbh_pad1, &dst]),
            false,
        ),
        (
            "-m ipv6header --header hop-by-hop --soft",
            with_ext(&udp, &[&hbh_pad1, &dst]),
            true,
        ),
        (
            "-m ipv6header ! --header ipv6-frag --soft",
            with_ext(&udp, &[&frag_first]),
            false,
        ),
        ("-m eui64", udp.clone(), false),
    ];
    for (rule, pkt, dropped) in cases {
        let rules = format!("*raw\n-A PREROUTING {rule} -j DROP\nCOMMIT\n");
        let mut l = Lab6::new("", &rules);
        // Untracked, so that a fragment meets the rules as it is rather than being held for
        // reassembly (conntrack reassembles before the raw table, as nf_defrag_ipv6).
        let s = l.send_ct("lan0", pkt, Some(rtrouter::eval::Ct::Untracked));
        assert_eq!(
            matches!(s.disposition, Disposition::Drop(_)),
            *dropped,
            "{rule}: {:?}",
            s.disposition
        );
    }
}

#[test]
fn npt_translates_prefixes_statelessly_keeping_checksums() {
    let rules6 = "*mangle\n\
        -A POSTROUTING -o wan0 -j SNPT --src-pfx 2001:db8:1::/48 --dst-pfx 2001:db8:77::/48\n\
        -A PREROUTING -i wan0 -j DNPT --src-pfx 2001:db8:77::/48 --dst-pfx 2001:db8:1::/48\n\
        COMMIT\n";
    let mut l = Lab6::new("", rules6);
    let s = l.send("lan0", &tcp6("2001:db8:1::10", 40000, "2001:db8:99::1", 443, 0x02));
    assert!(matches!(s.disposition, Disposition::Forward(_)), "{:?}", s.disposition);
    let h = parse(&s.out).unwrap();
    let std::net::IpAddr::V6(src) = h.src else { panic!() };
    assert_eq!(
        src.segments()[..3],
        [0x2001, 0xdb8, 0x77],
        "the source prefix is the outside one: {src}"
    );
    assert_ne!(
        src,
        a6("2001:db8:77::10"),
        "one word of the identifier absorbs the difference"
    );
    // The TCP checksum still holds without being touched: the mapping is checksum-neutral.
    checksum6(&s.out).unwrap();
    // The answer to the translated address comes back to the inside one.
    let back = tcp6("2001:db8:99::1", 443, &src.to_string(), 40000, 0x12);
    let s = l.send("wan0", &back);
    assert!(matches!(s.disposition, Disposition::Forward(_)), "{:?}", s.disposition);
    assert_eq!(parse(&s.out).unwrap().dst, std::net::IpAddr::V6(a6("2001:db8:1::10")));
    checksum6(&s.out).unwrap();
    // ip6tables refuses prefixes longer than 64 bits or with host bits set.
    for bad in [
        "--src-pfx dead::beef --dst-pfx 1c3::/64",
        "--src-pfx dead::1/64 --dst-pfx 1c3::/64",
    ] {
        let text = format!("*mangle\n-A PREROUTING -j DNPT {bad}\nCOMMIT\n");
        let e = restore(&Ruleset::new(Family::V6), &text, "t", false).expect_err(bad);
        assert!(e.to_string().contains("Invalid argument"), "{e}");
    }
}

#[test]
fn tproxy_finds_no_transparent_socket_and_drops() {
    let rules6 =
        "*mangle\n-A PREROUTING -p tcp -m tcp --dport 80 -j TPROXY --on-port 3129 --tproxy-mark 0x1/0x1\nCOMMIT\n";
    let mut l = Lab6::new("", rules6);
    let s = l.send("lan0", &tcp6("2001:db8:1::10", 40000, "2001:db8:99::1", 80, 0x02));
    assert!(matches!(s.disposition, Disposition::Drop(_)), "{:?}", s.disposition);
    let s = l.send("lan0", &tcp6("2001:db8:1::10", 40000, "2001:db8:99::1", 81, 0x02));
    assert!(matches!(s.disposition, Disposition::Forward(_)), "{:?}", s.disposition);
    let saved = l.router.engine_of(Family::V6).save(false);
    assert!(
        saved.contains("-j TPROXY --on-port 3129 --on-ip :: --tproxy-mark 0x1/0x1"),
        "{saved}"
    );
}

#[test]
fn protocol_neutral_matches_work_on_ipv6_packets() {
    // hashlimit keyed by /64 source: two hosts of one /64 share the bucket; another /64 has its own.
    let rules6 = "*filter\n-A FORWARD -m hashlimit --hashlimit-above 1/min --hashlimit-burst 2 --hashlimit-mode srcip --hashlimit-srcmask 64 --hashlimit-name h6 -j DROP\nCOMMIT\n";
    let mut l = Lab6::new("", rules6);
    let saved = l.router.engine_of(Family::V6).save(false);
    assert!(saved.contains("--hashlimit-name h6 --hashlimit-srcmask 64"), "{saved}");
    let send = |l: &mut Lab6, src: &str, port: u16| {
        matches!(
            l.send("lan0", &udp6(src, "2001:db8:99::1", port, b"x")).disposition,
            Disposition::Forward(_)
        )
    };
    assert!(send(&mut l, "2001:db8:1::10", 1));
    assert!(send(&mut l, "2001:db8:1::11", 2), "the burst of 2 is shared by the /64");
    assert!(
        !send(&mut l, "2001:db8:1::12", 3),
        "the third packet of the /64 is over the limit"
    );
    assert!(send(&mut l, "2001:db8:7::10", 4), "another /64 has its own bucket");
    // The default mask is the whole address in ip6tables (not printed).
    let rs = restore(
        &Ruleset::new(Family::V6),
        "*filter\n-A INPUT -m hashlimit --hashlimit-upto 1/sec --hashlimit-mode srcip --hashlimit-name d --hashlimit-srcmask 128\nCOMMIT\n",
        "t",
        false,
    )
    .unwrap();
    assert!(!rs.save(false).contains("srcmask"), "{}", rs.save(false));

    // rpfilter: a source routed through another interface fails the strict check.
    let rules6 = "*raw\n-A PREROUTING -m rpfilter --invert -j DROP\nCOMMIT\n";
    let mut l = Lab6::new("", rules6);
    let lan = |l: &mut Lab6, src: &str| {
        matches!(
            l.send("lan0", &udp6(src, "2001:db8:99::1", 9, b"x")).disposition,
            Disposition::Forward(_)
        )
    };
    assert!(lan(&mut l, "2001:db8:1::10"), "a LAN source on the LAN");
    assert!(
        !lan(&mut l, "2001:db8:99::7"),
        "a WAN source arriving on the LAN is spoofed"
    );
    // A link-local source passes (it is on its link); to the router itself, as such traffic goes.
    let s = l.send("lan0", &udp6("fe80::1", "2001:db8:1::1", 9, b"x"));
    assert!(matches!(s.disposition, Disposition::Local), "{:?}", s.disposition);

    // cluster: each source goes to one node of two, the same every time, and both nodes serve.
    let node = |n: u32| {
        format!("*mangle\n-A PREROUTING -m cluster --cluster-total-nodes 2 --cluster-local-node {n} --cluster-hash-seed 0x7 -j DROP\nCOMMIT\n")
    };
    let (mut n1, mut n2) = (Lab6::new("", &node(1)), Lab6::new("", &node(2)));
    let mut counts = [0, 0];
    for i in 0..32 {
        // xt_cluster hashes an IPv6 address's first 32 bits only: vary those.
        let src = format!("2001:{:x}::10", 0x100 + i);
        let d1 = !lan(&mut n1, &src);
        let d2 = !lan(&mut n2, &src);
        assert!(d1 != d2, "{src}: exactly one node takes it");
        assert_eq!(d1, !lan(&mut n1, &src), "{src}: the same node again");
        counts[usize::from(d2)] += 1;
    }
    assert!(counts[0] > 4 && counts[1] > 4, "both nodes serve: {counts:?}");
}

#[test]
fn inet6_ipsets_hold_ipv6_addresses_for_ip6tables_rules() {
    use rtrouter::ipset::{AddOpts, Header, IpSet, SetType};
    let sets = IpSets::default();
    let v6 = IpSet::new(Header {
        inet6: true,
        ..Header::simple(SetType::HashNet)
    });
    for e in ["2001:db8:99::/48", "2001:db8:5::7"] {
        let keys = v6.parse_entry(e).unwrap();
        v6.add(&keys, AddOpts::default(), false, 0).unwrap();
    }
    assert!(
        v6.parse_entry("10.0.0.0/8").is_err(),
        "an inet6 set takes no IPv4 entry"
    );
    assert!(v6.parse_entry("2001:db8::/129").is_err());
    assert_eq!(v6.member_lines(0), ["2001:db8:5::7", "2001:db8:99::/48"]);
    assert!(v6.header_text().starts_with("family inet6 "), "{}", v6.header_text());
    sets.insert("bad6", v6);
    let v4 = IpSet::with_entries(SetType::HashNet, &["10.0.0.0/8"]).unwrap();
    sets.insert("bad4", v4);
    let env = Env {
        ipsets: sets.names().into_iter().collect(),
        plugins: None,
    };
    let rules6 = "*filter\n-A FORWARD -m set --match-set bad6 dst -j DROP\n-A FORWARD -m set --match-set bad4 dst -j DROP\n-A FORWARD -p udp --dport 9 -j SET --add-set bad6 src\nCOMMIT\n";
    let v = validate(&restore(&Ruleset::new(Family::V6), rules6, "t", false).unwrap(), &env).unwrap();
    let router = Router::new(topology(), v, sets.clone(), 1000);
    let mut rng = SplitMix(1);
    let mut send = |pkt: Vec<u8>| {
        let mut buf = pkt;
        let mut reply = Reply::default();
        let meta = Meta {
            now: 1_000_000_000,
            ingress: Ingress::Iface(router.topo.iface_id("lan0").unwrap()),
            mark: 0,
            seg: 0,
            ct: None,
        };
        matches!(
            router
                .process(meta, &mut buf, &mut reply, &mut rng, &mut ())
                .disposition,
            Disposition::Forward(_)
        )
    };
    assert!(
        !send(tcp6("2001:db8:1::10", 1, "2001:db8:99:1::1", 80, 2)),
        "inside the /48: dropped"
    );
    assert!(
        !send(tcp6("2001:db8:1::10", 1, "2001:db8:5::7", 80, 2)),
        "the host entry: dropped"
    );
    assert!(
        send(tcp6("2001:db8:1::10", 1, "2001:db8:5::8", 80, 2)),
        "next to it: forwarded"
    );
    // The SET target adds the IPv6 source; it is then dropped as a destination.
    assert!(send(udp6("2001:db8:1::20", "2001:db8:7::1", 9, b"x")));
    let live = router.engine_of(Family::V6).ipsets().get_shared("bad6").unwrap();
    assert!(live.contains("2001:db8:1::20".parse().unwrap()));
    assert!(!send(tcp6("2001:db8:1::10", 1, "2001:db8:1::20", 80, 2)));
}

#[test]
fn ipv6_fragments_are_reassembled_for_the_rules_and_leave_as_they_came() {
    // FORWARD lets only UDP to port 53 through: ports are in the first fragment only, so the
    // later ones pass because the rules see the whole datagram.
    let rules6 = "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -p udp -m udp --dport 53 -j ACCEPT\nCOMMIT\n";
    let mut l = Lab6::new("", rules6);
    let body: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
    let dgram = udp6("2001:db8:1::10", "2001:db8:99::1", 53, &body);
    let mut frags = Vec::new();
    let mut scratch = Vec::new();
    rtrouter::packet::frag::fragment6(&dgram, 1280, 9, &mut scratch, &mut |f| frags.push(f.to_vec())).unwrap();
    assert_eq!(frags.len(), 3);
    for f in &frags[1..] {
        let s = l.send("lan0", f);
        assert!(matches!(s.disposition, Disposition::Held), "{:?}", s.disposition);
    }
    let s = l.send("lan0", &frags[0]);
    let Disposition::Forward(hop) = s.disposition else {
        panic!("{:?}", s.disposition)
    };
    // The rules saw, and the router forwards, the whole datagram (its hop limit one less).
    assert!(s.out.len() == dgram.len() && s.out[8..] == dgram[8..] && s.out[7] == dgram[7] - 1);
    // It leaves in fragments no larger than those that came, each with a fragment header.
    let mut out = Vec::new();
    l.router
        .send_out(hop, &s.out, 1280, &mut scratch, &mut |f| out.push(f.to_vec()));
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|f| f.len() <= 1280 && f[6] == 44));
    // To port 54 the datagram is dropped whole.
    let other = udp6("2001:db8:1::10", "2001:db8:99::1", 54, &body);
    let mut frags = Vec::new();
    rtrouter::packet::frag::fragment6(&other, 1280, 10, &mut scratch, &mut |f| frags.push(f.to_vec())).unwrap();
    assert!(matches!(l.send("lan0", &frags[0]).disposition, Disposition::Held));
    assert!(matches!(l.send("lan0", &frags[1]).disposition, Disposition::Held));
    assert!(matches!(l.send("lan0", &frags[2]).disposition, Disposition::Drop(_)));
    // A packet too big for the next hop that did not come in fragments is answered.
    let big = udp6("2001:db8:1::10", "2001:db8:99::1", 53, &body);
    let s = l.send("lan0", &big);
    assert!(matches!(s.disposition, Disposition::Drop(_)));
    assert_eq!(icmp6_of(s.reply.as_ref().expect("packet too big")).2, 2);
}

#[test]
fn tcpmss_clamps_and_adds_the_option_on_ipv6() {
    let rules6 = "*mangle\n-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu\nCOMMIT\n";
    let mut l = Lab6::new("", rules6);
    // A SYN without options: an MSS option is added, at most IPv6's default 1220.
    let s = l.send("lan0", &tcp6("2001:db8:1::10", 40000, "2001:db8:99::1", 443, 0x02));
    assert!(matches!(s.disposition, Disposition::Forward(_)), "{:?}", s.disposition);
    let h = parse(&s.out).unwrap();
    let L4::Tcp(t) = h.l4 else { panic!() };
    assert_eq!(t.hdr_len, 24);
    let o = usize::from(h.l4_off) + 20;
    assert_eq!(s.out[o..o + 4], [2, 4, 0x04, 0xc4], "MSS 1220");
    assert_eq!(usize::from(u16::from_be_bytes([s.out[4], s.out[5]])), s.out.len() - 40);
    checksum6(&s.out).unwrap();
}

#[test]
fn hmark_hashes_ipv6_flows_symmetrically() {
    // Two marks, 0 and 1; mark 0 is dropped: a flow's two directions must share their fate.
    let rules6 = "*mangle\n-A PREROUTING -j HMARK --hmark-tuple src,dst,sport,dport,proto --hmark-mod 2 --hmark-rnd 0x1234\n-A PREROUTING -m mark --mark 0 -j DROP\nCOMMIT\n";
    let rs = restore(&Ruleset::new(Family::V6), rules6, "t", false).unwrap();
    assert!(
        rs.save(false).contains("--hmark-src-prefix 128 --hmark-dst-prefix 128"),
        "{}",
        rs.save(false)
    );
    // A fresh router for each packet: HMARK hashes the packet, not its connection.
    let passes = |pkt: Vec<u8>, iface: &str| {
        matches!(
            Lab6::new("", rules6).send(iface, &pkt).disposition,
            Disposition::Forward(_)
        )
    };
    let mut fates = std::collections::BTreeSet::new();
    for i in 0..20 {
        let out = passes(tcp6("2001:db8:1::10", 40000 + i, "2001:db8:99::1", 443, 0x02), "lan0");
        let back = passes(tcp6("2001:db8:99::1", 443, "2001:db8:1::10", 40000 + i, 0x12), "wan0");
        assert_eq!(out, back, "flow {i}: both directions hash alike");
        fates.insert(out);
    }
    assert_eq!(fates.len(), 2, "the ports spread flows over both marks");
}

#[test]
fn dscp_and_tos_set_the_ipv6_traffic_class() {
    let rules6 = "*mangle\n-A FORWARD -p tcp -j DSCP --set-dscp 0x2e\n-A FORWARD -p udp -j TOS --set-tos 0x10/0xff\nCOMMIT\n*filter\n-A FORWARD -m dscp ! --dscp 0x2e -p tcp -j DROP\nCOMMIT\n";
    let mut l = Lab6::new("", rules6);
    let s = l.send("lan0", &tcp6("2001:db8:1::10", 40000, "2001:db8:99::1", 443, 0x02));
    assert!(
        matches!(s.disposition, Disposition::Forward(_)),
        "the filter saw DSCP 46"
    );
    let tclass = |b: &[u8]| ((b[0] & 0x0f) << 4) | (b[1] >> 4);
    assert_eq!(tclass(&s.out), 0x2e << 2);
    assert_eq!(s.out[0] >> 4, 6, "still version 6");
    let s = l.send("lan0", &udp6("2001:db8:1::10", "2001:db8:99::1", 9, b"x"));
    assert_eq!(tclass(&s.out), 0x10);
}

#[test]
fn link_local_scope_is_never_forwarded() {
    let mut l = Lab6::new("", "*filter\nCOMMIT\n");
    // A link-local destination that is not the router's stays on its link.
    let s = l.send("lan0", &udp6("2001:db8:1::10", "fe80::2", 9, b"x"));
    assert!(matches!(s.disposition, Disposition::Drop(_)), "{:?}", s.disposition);
    // A link-local source is not forwarded to another link: beyond scope of source address.
    let s = l.send("lan0", &udp6("fe80::10", "2001:db8:99::1", 9, b"x"));
    assert!(matches!(s.disposition, Disposition::Drop(_)), "{:?}", s.disposition);
    let (_, to, typ, code, ..) = icmp6_of(s.reply.as_ref().expect("an ICMPv6 error"));
    assert_eq!((to, typ, code), (a6("fe80::10"), 1, 2));
    // Multicast sources are martians; router solicitations reach the router's INPUT.
    let s = l.send("lan0", &udp6("ff02::1", "2001:db8:99::1", 9, b"x"));
    assert!(matches!(s.disposition, Disposition::Drop(_)));
    let mut rs = Vec::new();
    let ip = Ip6 {
        hop_limit: 255,
        ..Ip6::new(a6("fe80::10"), a6("ff02::2"))
    };
    build::icmp(&mut rs, ip, 133, 0, [0; 4], b"");
    assert!(matches!(l.send("lan0", &rs).disposition, Disposition::Local));
}

#[test]
fn synproxy_splices_an_ipv6_handshake() {
    use rtrouter::packet::tcp_flags::{ACK, SYN};
    let mut l = Lab6::new(
        "*filter\nCOMMIT\n",
        "*filter\n-A FORWARD -p tcp --dport 80 -j SYNPROXY --timestamp --mss 1440\nCOMMIT\n",
    );
    let (c, s) = ("2001:db8:1::2", "2001:db8:2::7");
    let seg = |src: &str, dst: &str, (sport, dport): (u16, u16), flags: u8, (seq, ack): (u32, u32), opts: &[u8]| {
        let mut b = Vec::new();
        let t = TcpSeg {
            sport,
            dport,
            seq,
            ack,
            flags,
            window: 1000,
        };
        build::tcp_with_options(&mut b, Ip6::new(a6(src), a6(dst)), t, opts);
        b
    };
    let fields = |p: &[u8]| {
        let h = parse(p).expect("parses");
        let L4::Tcp(t) = h.l4 else { panic!("TCP") };
        let o = usize::from(h.l4_off) + 20;
        (
            t.seq,
            t.ack,
            t.flags,
            p[o..usize::from(h.l4_off) + usize::from(t.hdr_len)].to_vec(),
        )
    };
    // The client's SYN: MSS 1440 and a timestamp.
    let sent = l.send(
        "lan0",
        &seg(
            c,
            s,
            (5555, 80),
            SYN,
            (77, 0),
            &[2, 4, 5, 160, 1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0],
        ),
    );
    assert!(matches!(sent.disposition, Disposition::Drop(_)));
    let synack = sent.reply.expect("SYN-ACK");
    let (cookie, ack, flags, opts) = fields(&synack);
    assert_eq!((ack, flags), (78, SYN | ACK));
    assert_eq!(&opts[..4], &[2, 4, 5, 160], "the rule's MSS");
    let ts = u32::from_be_bytes([opts[8], opts[9], opts[10], opts[11]]);
    // The client's ACK echoes the cookie: the server gets a SYN with the IPv6 table's MSS.
    let mut o = vec![1, 1, 8, 10, 0, 0, 0, 10];
    o.extend(ts.to_be_bytes());
    let sent = l.send("lan0", &seg(c, s, (5555, 80), ACK, (78, cookie.wrapping_add(1)), &o));
    let syn = sent.reply.expect("SYN to the server");
    let h = parse(&syn).unwrap();
    assert_eq!((h.src, h.dst), (a6(c).into(), a6(s).into()));
    let (seq, _, flags, opts) = fields(&syn);
    assert_eq!((seq, flags), (77, SYN));
    assert_eq!(&opts[..4], &[2, 4, 5, 160], "1440 is in IPv6's cookie table");
    // The server's SYN-ACK is answered; the client's window update is in the cookie's
    // sequence space.
    let mut buf = seg(
        s,
        c,
        (80, 5555),
        SYN | ACK,
        (9000, 78),
        &[1, 1, 8, 10, 0, 0, 1, 0, 0, 0, 0, 10],
    );
    let mut reply = Reply::default();
    let out = l.router.process(
        Meta {
            now: l.now,
            ingress: Ingress::Iface(l.router.topo.iface_id("wan0").unwrap()),
            mark: 0,
            seg: 0,
            ct: None,
        },
        &mut buf,
        &mut reply,
        &mut l.rng,
        &mut (),
    );
    assert!(matches!(out.disposition, Disposition::Drop(_)));
    let (seq, ack, flags, _) = fields(&reply.buf);
    assert_eq!((seq, ack, flags), (78, 9001, ACK), "the ACK to the server");
    checksum6(&reply.buf).unwrap();
    assert_eq!(reply.copies.len(), 1);
    let (seq, ack, _, _) = fields(&reply.copies[0].0);
    assert_eq!((seq, ack), (cookie.wrapping_add(1), 78), "the window update");
    checksum6(&reply.copies[0].0).unwrap();
}
