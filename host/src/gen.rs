//! Generated rulesets and packets: the workloads of the benchmarks (`cargo bench`,
//! `rtrouter bench`) and of the differential test and fuzz target that hold the compiled
//! classifier to the walk.
//!
//! - [`kube_proxy`]: the nat and filter rules kube-proxy (iptables mode) writes for N services
//!   of 3 endpoints each, in its own chain layout (`KUBE-SERVICES`, `KUBE-NODEPORTS`,
//!   `KUBE-SVC-*` choosing an endpoint with `statistic`, `KUBE-SEP-*` marking for masquerade
//!   and DNAT-ing).
//! - [`acl`]: 5-tuple access lists in the manner of ClassBench's ACL seeds (clustered
//!   prefixes of mixed lengths, exact and ranged ports, first-match overlaps), with packets
//!   aimed at their rules as ClassBench's trace generator does.
//! - [`random_ruleset`] / [`random_packet`]: small rulesets exercising every extension,
//!   jumps, gotos, RETURNs, negations and stateful matches, for differential testing.
//!
//! Everything is driven by a [`Chance`], so a seed (or a fuzzer's bytes) reproduces it.

use crate::config::Cidr;
use crate::eval::Chance;
use crate::packet::build::{self, Ip4, TcpSeg};
use crate::route::{IfaceInfo, NextHop, Topology};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// The two-legged router the core tests and benchmarks run: `lan0` 10.0.1.1/24 and `wan0`
/// 10.0.2.1/24 (MTU 1500), default route via 10.0.2.2 on `wan0`; and the same in IPv6 through
/// [`v6_of`] (`lan0` 2001:db8::10.0.1.1/120, default route via 2001:db8::10.0.2.2).
pub fn topology() -> Topology {
    let c = |s: &str| Cidr::parse(s).expect("literal");
    let mut t = Topology::default();
    t.add_iface(IfaceInfo {
        name: "lan0".into(),
        addrs: vec![c("10.0.1.1/24"), c("2001:db8::10.0.1.1/120")],
        mtu: 1500,
    });
    let wan = t.add_iface(IfaceInfo {
        name: "wan0".into(),
        addrs: vec![c("10.0.2.1/24"), c("2001:db8::10.0.2.1/120")],
        mtu: 1500,
    });
    for (to, via) in [("0.0.0.0/0", "10.0.2.2"), ("::/0", "2001:db8::10.0.2.2")] {
        t.routes.insert(
            c(to),
            NextHop {
                iface: wan,
                via: Some(via.parse().expect("literal")),
            },
        );
    }
    t
}

/// The cluster IP of service `i` (10.96.0.0/12).
pub fn service_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x0a60_0000u32 + 1 + i as u32)
}

/// The node port of service `i`.
pub fn node_port(i: usize) -> u16 {
    30000 + (i % 32768) as u16
}

/// kube-proxy's iptables-mode rules for `services` services of 3 endpoints each: 14 rules
/// and 5 chains per service (kube-proxy writes 11 and 4 for the same: this adds a
/// `KUBE-EXT` chain per service, as it does for services with node ports).
pub fn kube_proxy(services: usize) -> String {
    let mut s = String::with_capacity(services * 1300 + 2048);
    s.push_str(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
    );
    s.push_str(":KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n");
    for i in 0..services {
        let _ = writeln!(s, ":KUBE-SVC-{i:06} - [0:0]\n:KUBE-EXT-{i:06} - [0:0]");
        for k in 0..3 {
            let _ = writeln!(s, ":KUBE-SEP-{i:06}-{k} - [0:0]");
        }
    }
    s.push_str("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n");
    s.push_str("-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n");
    s.push_str("-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n");
    s.push_str("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n");
    s.push_str("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n");
    s.push_str("-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0\n");
    s.push_str("-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n");
    for i in 0..services {
        let ip = service_ip(i);
        let _ = writeln!(
            s,
            "-A KUBE-SERVICES -d {ip}/32 -p tcp -m comment --comment \"ns/svc-{i}:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-{i:06}"
        );
        let _ = writeln!(
            s,
            "-A KUBE-NODEPORTS -p tcp -m comment --comment \"ns/svc-{i}:http\" -m tcp --dport {} -j KUBE-EXT-{i:06}",
            node_port(i)
        );
        let _ = writeln!(
            s,
            "-A KUBE-EXT-{i:06} -m comment --comment \"masquerade traffic for ns/svc-{i}:http external destinations\" -j KUBE-MARK-MASQ\n-A KUBE-EXT-{i:06} -j KUBE-SVC-{i:06}"
        );
        let _ = writeln!(
            s,
            "-A KUBE-SVC-{i:06} ! -s 10.128.0.0/9 -d {ip}/32 -p tcp -m comment --comment \"ns/svc-{i}:http cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ"
        );
        for (k, prob) in [(0, Some("0.33333333349")), (1, Some("0.50000000000")), (2, None)] {
            let ep = Ipv4Addr::from(0x0a80_0000u32 + (i * 3 + k) as u32 + 1);
            let _ = write!(
                s,
                "-A KUBE-SVC-{i:06} -m comment --comment \"ns/svc-{i}:http -> {ep}:8080\""
            );
            if let Some(p) = prob {
                let _ = write!(s, " -m statistic --mode random --probability {p}");
            }
            let _ = writeln!(s, " -j KUBE-SEP-{i:06}-{k}");
            let _ = writeln!(
                s,
                "-A KUBE-SEP-{i:06}-{k} -s {ep}/32 -m comment --comment \"ns/svc-{i}:http\" -j KUBE-MARK-MASQ\n-A KUBE-SEP-{i:06}-{k} -p tcp -m comment --comment \"ns/svc-{i}:http\" -m tcp -j DNAT --to-destination {ep}:8080"
            );
        }
    }
    s.push_str("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n");
    s.push_str(
        "COMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:KUBE-FORWARD - [0:0]\n",
    );
    s.push_str("-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n");
    s.push_str("-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n");
    s.push_str(
        "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT\n",
    );
    s.push_str("-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n");
    s
}

/// A TCP SYN from `src:sport` to `dst:dport`.
pub fn tcp_syn(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    build::tcp(
        &mut b,
        Ip4::new(src, dst, 6),
        TcpSeg {
            sport,
            dport,
            seq: 1,
            ack: 0,
            flags: 2,
            window: 8192,
        },
        b"",
    );
    b
}

/// One 5-tuple ACL rule, as [`acl`] generates it.
#[derive(Debug, Clone, Copy)]
struct AclRule {
    src: (u32, u32),
    dst: (u32, u32),
    /// 0 for any.
    proto: u8,
    sport: (u16, u16),
    dport: (u16, u16),
}

fn pick<T: Copy>(c: &mut dyn Chance, xs: &[T]) -> T {
    xs[c.below(xs.len() as u32) as usize]
}

/// A prefix length drawn as in ClassBench's ACL seeds: many hosts and /24s, some wide ones.
fn acl_len(c: &mut dyn Chance) -> u32 {
    match c.below(100) {
        0..15 => 0,
        15..20 => 8 + c.below(8),
        20..40 => 16 + c.below(8),
        40..65 => 24 + c.below(8),
        _ => 32,
    }
}

fn acl_rule(c: &mut dyn Chance, clusters: &[u32]) -> AclRule {
    let addr = |c: &mut dyn Chance| {
        let len = acl_len(c);
        let base = pick(c, clusters) | (c.below(1 << 16) & 0xffff);
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        (base & mask, len)
    };
    let src = addr(c);
    let dst = addr(c);
    let proto = match c.below(20) {
        0..12 => 6,
        12..17 => 17,
        17 => 1,
        _ => 0,
    };
    let ranged = proto == 6 || proto == 17;
    let sport = if ranged && c.below(100) < 15 {
        (1024, 65535)
    } else {
        (0, 65535)
    };
    let dport = if !ranged {
        (0, 65535)
    } else {
        match c.below(100) {
            0..45 => {
                let p =
                    pick(c, &[22, 25, 53, 80, 110, 123, 143, 443, 993, 3306, 5432, 8080]) + c.below(4) as u16 * 1000;
                (p, p)
            }
            45..55 => (1024, 65535),
            55..65 => {
                let lo = c.below(60000) as u16;
                (lo, lo + c.below(500) as u16)
            }
            _ => (0, 65535),
        }
    };
    AclRule {
        src,
        dst,
        proto,
        sport,
        dport,
    }
}

/// A ClassBench-style ACL of `n` rules in the filter table's FORWARD chain (policy DROP),
/// ACCEPT and DROP mixed, and `packets` packets: most aimed at a random rule (a header inside
/// its fields, so first-match overlaps decide), the rest random.
pub fn acl(n: usize, packets: usize, c: &mut dyn Chance) -> (String, Vec<Vec<u8>>) {
    let clusters: Vec<u32> = (0..64).map(|_| (c.below(223) + 1) << 24 | c.below(256) << 16).collect();
    let rules: Vec<AclRule> = (0..n).map(|_| acl_rule(c, &clusters)).collect();
    let mut s = String::with_capacity(n * 90 + 100);
    s.push_str("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for (i, r) in rules.iter().enumerate() {
        s.push_str("-A FORWARD");
        if r.src.1 > 0 {
            let _ = write!(s, " -s {}/{}", Ipv4Addr::from(r.src.0), r.src.1);
        }
        if r.dst.1 > 0 {
            let _ = write!(s, " -d {}/{}", Ipv4Addr::from(r.dst.0), r.dst.1);
        }
        if r.proto != 0 {
            let name = match r.proto {
                6 => "tcp",
                17 => "udp",
                _ => "icmp",
            };
            let _ = write!(s, " -p {name}");
            let full = (0, 65535);
            if (r.proto == 6 || r.proto == 17) && (r.sport != full || r.dport != full) {
                let _ = write!(s, " -m {name}");
                for (opt, (lo, hi)) in [("--sport", r.sport), ("--dport", r.dport)] {
                    if (lo, hi) == full {
                    } else if lo == hi {
                        let _ = write!(s, " {opt} {lo}");
                    } else {
                        let _ = write!(s, " {opt} {lo}:{hi}");
                    }
                }
            }
        }
        let _ = writeln!(s, " -j {}", if i % 3 == 2 { "DROP" } else { "ACCEPT" });
    }
    s.push_str("COMMIT\n");
    let mut out = Vec::with_capacity(packets);
    for _ in 0..packets {
        let r = if c.below(10) < 8 {
            rules[c.below(rules.len() as u32) as usize]
        } else {
            acl_rule(c, &clusters)
        };
        let inside = |c: &mut dyn Chance, (a, len): (u32, u32)| {
            let host = if len == 32 {
                0
            } else {
                (c.below(u32::MAX) | 1) & (u32::MAX >> len)
            };
            Ipv4Addr::from(a | host)
        };
        let port = |c: &mut dyn Chance, (lo, hi): (u16, u16)| lo + c.below(u32::from(hi - lo) + 1) as u16;
        let src = inside(c, r.src);
        let dst = inside(c, r.dst);
        let mut b = Vec::with_capacity(64);
        match r.proto {
            17 => {
                let (sp, dp) = (port(c, r.sport), port(c, r.dport));
                build::udp(&mut b, Ip4::new(src, dst, 17), sp, dp, b"");
            }
            1 => build::icmp(&mut b, Ip4::new(src, dst, 1), 8, 0, [0, 1, 0, 1], b""),
            _ => {
                let (sp, dp) = (port(c, r.sport), port(c, r.dport));
                b = tcp_syn(src, sp, dst, dp);
            }
        }
        out.push(b);
    }
    (s, out)
}

/// Addresses the random rulesets and packets draw from, so that they overlap often.
const HOSTS: [&str; 10] = [
    "10.0.1.2",
    "10.0.1.7",
    "10.0.1.1",
    "10.0.2.9",
    "10.0.2.1",
    "10.0.2.200",
    "192.168.0.5",
    "192.168.1.5",
    "172.16.0.1",
    "10.0.1.130",
];
const NETS: [&str; 12] = [
    "10.0.1.0/24",
    "10.0.0.0/8",
    "10.0.1.2/32",
    "10.0.1.0/25",
    "192.168.0.0/16",
    "10.0.2.0/24",
    "10.0.2.9",
    "0.0.0.0/0",
    "10.0.1.128/255.255.255.128",
    "192.168.1.0/24",
    "172.16.0.0/12",
    "10.0.1.0/255.0.255.0",
];
const PORTS: [&str; 10] = [
    "22",
    "53",
    "80",
    "443",
    "1000:2000",
    "0:1023",
    "8080",
    "443:8080",
    "1024:",
    "40000",
];
const PORT_VALUES: [u16; 9] = [22, 53, 80, 443, 1500, 8080, 40000, 3000, 1023];

/// One random match (with its `-p` when it needs one). `proto` is the rule's `-p`, if any.
fn random_match(c: &mut dyn Chance, proto: Option<&str>, s: &mut String) {
    let neg = |c: &mut dyn Chance| if c.below(4) == 0 { "! " } else { "" };
    match c.below(33) {
        0 | 1 => {
            if let Some(p @ ("tcp" | "udp" | "sctp")) = proto {
                let _ = write!(s, " -m {p}");
                if c.below(2) == 0 {
                    let _ = write!(s, " {}--dport {}", neg(c), pick(c, &PORTS));
                }
                if c.below(3) == 0 {
                    let _ = write!(s, " {}--sport {}", neg(c), pick(c, &PORTS));
                }
                if p == "tcp" && c.below(4) == 0 {
                    let _ = write!(s, " {}--tcp-flags SYN,ACK SYN", neg(c));
                }
            }
        }
        2 => {
            if let Some("tcp" | "udp") = proto {
                let side = pick(c, &["--dports", "--sports", "--ports"]);
                let _ = write!(s, " -m multiport {}{side} 22,80,1000:2000", neg(c));
            }
        }
        3 => {
            let _ = write!(s, " -m statistic --mode nth --every {} --packet 0", 2 + c.below(3));
        }
        4 => {
            let _ = write!(s, " -m statistic --mode random --probability 0.5");
        }
        5 => {
            let _ = write!(
                s,
                " -m limit --limit {}/sec --limit-burst {}",
                1 + c.below(5),
                1 + c.below(3)
            );
        }
        6 => {
            let name = pick(c, &["A", "B"]);
            let cmd = pick(
                c,
                &[
                    "--set",
                    "--rcheck --hitcount 2",
                    "--update --seconds 5",
                    "--rcheck --seconds 2",
                    "--remove",
                ],
            );
            let _ = write!(s, " -m recent {cmd} --name {name}");
        }
        7 => {
            let _ = write!(s, " -m nfacct --nfacct-name {}", pick(c, &["n1", "n2"]));
        }
        8 => {
            let _ = write!(
                s,
                " -m mark {}--mark {}",
                neg(c),
                pick(c, &["0x1", "0x1/0x3", "0x0/0xff"])
            );
        }
        9 => {
            let st = pick(c, &["NEW", "ESTABLISHED,RELATED", "INVALID", "NEW,ESTABLISHED", "DNAT"]);
            let _ = write!(s, " -m conntrack {}--ctstate {st}", neg(c));
        }
        10 => {
            let _ = write!(
                s,
                " -m length {}--length {}",
                neg(c),
                pick(c, &["0:60", "40:100", "61:65535"])
            );
        }
        11 => {
            let _ = write!(
                s,
                " -m ttl --ttl-{} {}",
                pick(c, &["eq", "gt", "lt"]),
                pick(c, &[1, 63, 64, 100])
            );
        }
        12 => {
            let dir = pick(c, &["--src-range", "--dst-range"]);
            let _ = write!(
                s,
                " -m iprange {}{dir} {}",
                neg(c),
                pick(
                    c,
                    &["10.0.1.2-10.0.1.9", "10.0.0.0-10.0.2.255", "192.168.0.0-192.168.0.255"]
                )
            );
        }
        13 => {
            let _ = write!(
                s,
                " -m addrtype {}--dst-type {}",
                neg(c),
                pick(c, &["LOCAL", "UNICAST"])
            );
        }
        14 => {
            let _ = write!(s, " -m comment --comment \"c{}\"", c.below(9));
        }
        15 => {
            if proto == Some("icmp") {
                let _ = write!(
                    s,
                    " -m icmp {}--icmp-type {}",
                    neg(c),
                    pick(c, &["8", "0", "any", "3/1"])
                );
            }
        }
        16 => {
            let _ = write!(s, " -m state {}--state {}", neg(c), pick(c, &["NEW", "ESTABLISHED"]));
        }
        17 => {
            let _ = write!(s, " -m connmark {}--mark {}", neg(c), pick(c, &["0x5", "0x0/0x1"]));
        }
        18 => {
            let _ = write!(
                s,
                " -m pkttype {}--pkt-type {}",
                neg(c),
                pick(c, &["unicast", "broadcast", "multicast"])
            );
        }
        19 => {
            let _ = write!(
                s,
                " -m tos {}--tos {}",
                neg(c),
                pick(c, &["0x10", "Minimize-Delay", "0x00/0x3f"])
            );
        }
        20 => {
            let _ = write!(s, " -m dscp {}--dscp {}", neg(c), pick(c, &["0x00", "0x2e", "0x04"]));
        }
        22 => {
            if proto == Some("tcp") {
                let _ = write!(
                    s,
                    " -m tcpmss {}--mss {}",
                    neg(c),
                    pick(c, &["1460", "0:536", "1000:1500"])
                );
            }
        }
        23 => {
            let _ = write!(s, " -m quota {}--quota {}", neg(c), pick(c, &[100, 1000, 0]));
        }
        24 => {
            let _ = write!(s, " -m ecn {}--ecn-ip-ect {}", neg(c), pick(c, &[0, 1, 2]));
        }
        29 => {
            let _ = write!(
                s,
                " -m connlimit --connlimit-{} {} --connlimit-mask {}",
                pick(c, &["upto", "above"]),
                pick(c, &[0, 1, 2]),
                pick(c, &[32, 24])
            );
        }
        28 => {
            let _ = write!(
                s,
                " -m connbytes {}--connbytes {} --connbytes-mode {} --connbytes-dir {}",
                neg(c),
                pick(c, &["0:1", "2", "100:1000"]),
                pick(c, &["packets", "bytes", "avgpkt"]),
                pick(c, &["original", "reply", "both"])
            );
        }
        27 => {
            let _ = write!(
                s,
                " -m hashlimit --hashlimit-{} {} --hashlimit-mode {} --hashlimit-name h{}",
                pick(c, &["upto", "above"]),
                pick(c, &["2/sec", "1/min --hashlimit-burst 2", "100b/s"]),
                pick(c, &["srcip", "dstip,dstport"]),
                c.below(2)
            );
        }
        26 => {
            let _ = write!(
                s,
                " -m time {}",
                pick(
                    c,
                    &[
                        "--timestart 00:00:01 --timestop 00:00:02",
                        "--weekdays Thu",
                        "! --monthdays 1,2"
                    ]
                )
            );
        }
        25 => {
            let _ = write!(
                s,
                " -m string {}--string {} --algo {}",
                neg(c),
                pick(c, &["\"ab\"", "x", "\"\x00\""]),
                pick(c, &["bm", "kmp"])
            );
        }
        21 => {
            let _ = write!(
                s,
                " -m physdev {}",
                pick(
                    c,
                    &["--physdev-is-bridged", "! --physdev-is-bridged", "! --physdev-in eth0"]
                )
            );
        }
        31 => {
            let _ = write!(
                s,
                " -m u32 {}--u32 \"{}\"",
                neg(c),
                pick(
                    c,
                    &[
                        "0>>28=4",
                        "6&0xFF=6,17",
                        "0>>22&0x3C@0>>16=1:1024",
                        "0>>22&0x3C@12>>26&0x3C@0=0:4",
                        "60=0"
                    ]
                )
            );
        }
        32 => {
            let _ = write!(
                s,
                " {}",
                pick(
                    c,
                    &[
                        "-m cpu --cpu 0",
                        "-m cpu ! --cpu 1",
                        "-m cluster --cluster-total-nodes 2 --cluster-local-node 1 --cluster-hash-seed 0x1",
                        "-m cluster --cluster-total-nodes 3 ! --cluster-local-nodemask 0x5 --cluster-hash-seed 0x7",
                    ]
                )
            );
        }
        _ => {
            let _ = write!(s, " -m set {}--match-set {} {}", neg(c), SET, pick(c, &["src", "dst"]));
        }
    }
}

/// One random rule for `chain` of `table`; `later` are the user chains it may jump to.
fn random_rule(c: &mut dyn Chance, table: &str, chain: &str, later: &[String], s: &mut String) {
    let neg = |c: &mut dyn Chance| if c.below(5) == 0 { "! " } else { "" };
    let _ = write!(s, "-A {chain}");
    if c.below(3) == 0 {
        let _ = write!(s, " {}-s {}", neg(c), pick(c, &NETS));
    }
    if c.below(3) == 0 {
        let _ = write!(s, " {}-d {}", neg(c), pick(c, &NETS));
    }
    let inbound = !matches!(chain, "OUTPUT" | "POSTROUTING");
    let outbound = !matches!(chain, "PREROUTING" | "INPUT");
    if inbound && c.below(6) == 0 {
        let _ = write!(s, " {}-i {}", neg(c), pick(c, &["lan0", "wan0", "lan+", "eth+"]));
    }
    if outbound && c.below(6) == 0 {
        let _ = write!(s, " {}-o {}", neg(c), pick(c, &["lan0", "wan0", "wan+"]));
    }
    let proto = match c.below(10) {
        0..3 => Some("tcp"),
        3..5 => Some("udp"),
        5 => Some("icmp"),
        6 => Some("sctp"),
        _ => None,
    };
    let mut neg_proto = false;
    if let Some(p) = proto {
        neg_proto = c.below(8) == 0;
        let _ = write!(s, " {}-p {p}", if neg_proto { "! " } else { "" });
    }
    // `-m tcp` and the like, and DNAT to a port, need a plain `-p tcp`.
    let proto = proto.filter(|_| !neg_proto);
    if c.below(25) == 0 {
        let _ = write!(s, " {}-f", neg(c));
    }
    for _ in 0..c.below(4) {
        random_match(c, proto, s);
    }
    let target = c.below(32);
    match target {
        0..4 => s.push_str(" -j ACCEPT"),
        4..6 => s.push_str(" -j DROP"),
        6 | 7 => s.push_str(" -j RETURN"),
        8..11 if !later.is_empty() => {
            let _ = write!(s, " -j {}", &later[c.below(later.len() as u32) as usize]);
        }
        11 if !later.is_empty() => {
            let _ = write!(s, " -g {}", &later[c.below(later.len() as u32) as usize]);
        }
        12 | 13 => {
            let _ = write!(
                s,
                " -j MARK --set-xmark {}",
                pick(c, &["0x1/0xff", "0x2/0x2", "0x0/0x1"])
            );
        }
        14 => {
            let _ = write!(s, " -j CONNMARK --set-mark {}", pick(c, &["0x5", "0x1"]));
        }
        15 if table == "filter" => s.push_str(" -j REJECT"),
        16 if table == "nat" && chain == "PREROUTING" => {
            let to = match proto {
                Some("tcp" | "udp" | "sctp") => pick(c, &["10.0.2.9", "10.0.2.200:8080"]),
                _ => "10.0.2.9",
            };
            let _ = write!(s, " -j DNAT --to-destination {to}");
        }
        17 if table == "nat" && chain == "POSTROUTING" => s.push_str(" -j MASQUERADE"),
        18 if table == "nat" && chain == "POSTROUTING" => {
            let _ = write!(
                s,
                " -j SNAT --to-source {}",
                pick(c, &["10.0.2.1", "10.0.2.1-10.0.2.3"])
            );
        }
        19 if table == "nat" && chain == "PREROUTING" => s.push_str(" -j REDIRECT"),
        20 => {
            let _ = write!(s, " -j LOG --log-prefix \"g{}: \"", c.below(3));
        }
        21 => s.push_str(" -j NFLOG --nflog-group 2"),
        22 if table == "mangle" => {
            let _ = write!(s, " -j TTL --ttl-{} 1", pick(c, &["set", "inc", "dec"]));
        }
        23 if table == "mangle" => s.push_str(" -j CHECKSUM --checksum-fill"),
        24 if table == "raw" => s.push_str(pick(c, &[" -j NOTRACK", " -j TRACE"])),
        25 if table == "raw" => {
            let _ = write!(s, " -j CT {}", pick(c, &["--notrack", "--zone 3"]));
        }
        26 if table == "mangle" => {
            let _ = write!(s, " -j DSCP --set-dscp {}", pick(c, &["0x2e", "0x00", "0x04"]));
        }
        28 if table == "nat" && chain != "INPUT" => {
            let _ = write!(s, " -j NETMAP --to {}", pick(c, &["10.0.2.0/24", "172.16.0.0/16"]));
        }
        29 => {
            let _ = write!(s, " -j NFQUEUE --queue-num 1{}", pick(c, &["", " --queue-bypass"]));
        }
        30 if table == "mangle" => {
            let _ = write!(s, " -j ECN --ecn-ip-ect {}", pick(c, &[0, 1, 2, 3]));
        }
        31 if table == "filter" && matches!(chain, "INPUT" | "FORWARD") && proto == Some("tcp") => {
            let _ = write!(
                s,
                " -j SYNPROXY{}",
                pick(
                    c,
                    &[
                        "",
                        " --mss 1460",
                        " --sack-perm --timestamp --wscale 7 --mss 1400 --ecn"
                    ]
                )
            );
        }
        27 if table == "mangle" => {
            let _ = write!(
                s,
                " -j TOS --set-tos {}",
                pick(c, &["0x10", "0x04/0x0f", "Minimize-Cost"])
            );
        }
        _ => {}
    }
    s.push('\n');
}

/// The ipset the random rulesets match (`differential` defines it).
pub const SET: &str = "gset";

/// A random ruleset over the filter, nat and mangle tables, with user chains that jump only
/// forward (so there are no loops). Chains are long enough to be classified.
pub fn random_ruleset(c: &mut dyn Chance) -> String {
    let mut s = String::new();
    for (table, builtins) in [
        ("raw", &["PREROUTING", "OUTPUT"][..]),
        ("mangle", &["PREROUTING", "FORWARD"][..]),
        ("nat", &["PREROUTING", "POSTROUTING"][..]),
        ("filter", &["INPUT", "FORWARD", "OUTPUT"][..]),
    ] {
        if table != "filter" && c.below(3) == 0 {
            continue;
        }
        let _ = writeln!(s, "*{table}");
        for b in builtins {
            let policy = if table == "filter" && c.below(3) == 0 {
                "DROP"
            } else {
                "ACCEPT"
            };
            let _ = writeln!(s, ":{b} {policy} [0:0]");
        }
        let users: Vec<String> = (0..c.below(4)).map(|i| format!("U{i}")).collect();
        for u in &users {
            let _ = writeln!(s, ":{u} - [0:0]");
        }
        for b in builtins {
            for _ in 0..c.below(30) {
                random_rule(c, table, b, &users, &mut s);
            }
            if table == "mangle" && *b == "FORWARD" && c.below(2) == 0 {
                let _ = writeln!(
                    s,
                    "-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS {}",
                    pick(c, &["--set-mss 1000", "--clamp-mss-to-pmtu"])
                );
            }
        }
        for (i, u) in users.iter().enumerate() {
            for _ in 0..c.below(14) {
                random_rule(c, table, u, &users[i + 1..], &mut s);
            }
        }
        s.push_str("COMMIT\n");
    }
    s
}

/// A random packet: its ingress interface (`None`: the router's own) and its bytes.
pub fn random_packet(c: &mut dyn Chance) -> (Option<&'static str>, Vec<u8>) {
    let ip = |c: &mut dyn Chance| pick(c, &HOSTS).parse::<Ipv4Addr>().expect("literal");
    let (src, dst) = (ip(c), ip(c));
    let from = pick(c, &[Some("lan0"), Some("wan0"), Some("lan0"), None]);
    let mut b = Vec::with_capacity(96);
    let mut ip4 = Ip4::new(src, dst, 6);
    ip4.ttl = pick(c, &[64, 1, 2, 100]);
    ip4.tos = pick(c, &[0u8, 0x10, 0xb8, 0x11, 0x40]);
    let pad: &[u8] = &[0u8; 40][..pick(c, &[0usize, 10, 40])];
    match c.below(5) {
        0 | 1 => {
            let flags = pick(c, &[2u8, 0x12, 0x10, 0x11, 0x04]);
            build::tcp(
                &mut b,
                ip4,
                TcpSeg {
                    sport: pick(c, &PORT_VALUES),
                    dport: pick(c, &PORT_VALUES),
                    seq: 1,
                    ack: 1,
                    flags,
                    window: 100,
                },
                pad,
            );
        }
        2 => {
            ip4.proto = 17;
            build::udp(&mut b, ip4, pick(c, &PORT_VALUES), pick(c, &PORT_VALUES), pad);
        }
        3 => {
            ip4.proto = 1;
            build::icmp(&mut b, ip4, pick(c, &[8, 0, 3]), 0, [0, 7, 0, 1], pad);
        }
        _ => {
            ip4.proto = 132;
            build::sctp_init(&mut b, ip4, pick(c, &PORT_VALUES), pick(c, &PORT_VALUES), 9);
        }
    }
    (from, b)
}

/// Reads a fuzzer's bytes as the random decisions of the generators; zeros once they run out.
#[derive(Debug)]
pub struct ByteChance<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> ByteChance<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        ByteChance { bytes, at: 0 }
    }

    fn next(&mut self) -> u32 {
        let mut v = [0u8; 4];
        for b in &mut v {
            *b = self.bytes.get(self.at).copied().unwrap_or(0);
            self.at += 1;
        }
        u32::from_le_bytes(v)
    }
}

impl Chance for ByteChance<'_> {
    fn chance(&mut self, p: u32) -> bool {
        (self.next() & 0x7fff_ffff) < p
    }

    fn below(&mut self, n: u32) -> u32 {
        if n <= 1 {
            return 0;
        }
        self.next() % n
    }
}

/// A packet for [`differential`]: its ingress interface (`None`: the router's own), bytes
/// and mark.
pub type Sent = (Option<&'static str>, Vec<u8>, u32);

/// What the differential check records of one run: the rules that matched and the policies
/// that decided, in order, and every event (LOG lines, NAT decisions).
#[derive(Debug, Default)]
struct Path(Vec<String>);

impl crate::eval::Observer for Path {
    fn rule(
        &mut self,
        table: crate::ruleset::TableKind,
        chain: &crate::ruleset::validate::ValidChain,
        index: usize,
        matched: bool,
    ) {
        if matched {
            self.0.push(format!("{table}/{}#{}", chain.name(), index + 1));
        }
    }

    fn policy(
        &mut self,
        table: crate::ruleset::TableKind,
        chain: &crate::ruleset::validate::ValidChain,
        policy: crate::ruleset::Policy,
    ) {
        self.0.push(format!("{table}/{}:{}", chain.name(), policy.name()));
    }

    fn event(&mut self, what: &dyn Fn() -> String) {
        self.0.push(what());
    }
}

/// Loads `rules` twice, walked and compiled, sends the same `packets` (ingress, bytes, mark)
/// through both routers with the same clock and the same random stream, and compares every
/// outcome, the path of matched rules, the packet as it left, the reply, and at the end the
/// rule and policy counters, `nfacct` counters and how many random draws were made.
///
/// `Ok(None)` when `rules` does not load (the generators make some rulesets the validator
/// refuses); `Ok(Some(n))` with how many rule positions the compiled engine skipped; `Err`
/// describes the first difference.
pub fn differential(rules: &str, packets: &[Sent], seed: u64) -> Result<Option<u64>, String> {
    differential_of(crate::ruleset::Family::V4, rules, packets, seed)
}

/// [`differential`] for an ip6tables ruleset and IPv6 packets ([`ruleset_to_v6`],
/// [`packet_to_v6`]).
pub fn differential6(rules: &str, packets: &[Sent], seed: u64) -> Result<Option<u64>, String> {
    differential_of(crate::ruleset::Family::V6, rules, packets, seed)
}

fn differential_of(
    family: crate::ruleset::Family,
    rules: &str,
    packets: &[Sent],
    seed: u64,
) -> Result<Option<u64>, String> {
    use crate::eval::EngineKind;
    use crate::router::Router;
    use crate::ruleset::{restore::restore, validate, Ruleset};
    let Ok(rs) = restore(&Ruleset::new(family), rules, "gen.rules", false) else {
        return Ok(None);
    };
    let (sets, env) = differential_sets();
    // Each engine counts on counters of its own, so that their counts can be compared.
    let (Ok(vw), Ok(vc)) = (validate(&rs, &env), validate(&rs.with_fresh_counters(), &env)) else {
        return Ok(None);
    };
    let make = |kind, v: &crate::ruleset::ValidRuleset| {
        Router::new(topology(), v.clone(), sets.clone(), u32::MAX).with_engine(kind)
    };
    let (walk, mut comp) = (make(EngineKind::Linear, &vw), make(EngineKind::Compiled, &vc));
    // SYNPROXY's answers are the same only with the same cookie secrets.
    comp.synproxy.share_keys(&walk.synproxy);
    same_behaviour(&walk, &comp, packets, seed, ("walk", "compiled"))?;
    Ok(Some(comp.engine_of(family).shape().0 as u64))
}

/// The ipset the generated rules name (`-m set --match-set gset`), and the validation
/// environment with it.
fn differential_sets() -> (crate::eval::state::IpSets, crate::ruleset::Env) {
    let sets = crate::eval::state::IpSets::default();
    let set = crate::ipset::IpSet::with_entries(
        crate::ipset::SetType::HashNet,
        &["10.0.1.0/25", "192.168.0.5/32", "10.0.2.9/32"],
    )
    .expect("literal entries");
    sets.insert(SET, set);
    let env = crate::ruleset::Env {
        ipsets: sets.names().into_iter().collect(),
        plugins: None,
    };
    (sets, env)
}

/// Sends `packets` through `a` and `b` with the same random draws; they must agree on every
/// outcome, path of matched rules, packet bytes, reply, random draw, counter and nfacct count.
fn same_behaviour(
    a: &crate::router::Router,
    b: &crate::router::Router,
    packets: &[Sent],
    seed: u64,
    names: (&str, &str),
) -> Result<(), String> {
    use crate::eval::SplitMix;
    use crate::router::{Ingress, Meta, Reply, Router};
    let (mut ra, mut rb) = (SplitMix(seed), SplitMix(seed));
    for (n, (from, pkt, mark)) in packets.iter().enumerate() {
        let run = |r: &Router, rng: &mut SplitMix| {
            let ingress = match from {
                Some(i) => Ingress::Iface(r.topo.iface_id(i).expect("generated interface")),
                None => Ingress::Local,
            };
            let meta = Meta {
                now: 1_000_000_000 + n as u64 * 300_000_000,
                ingress,
                mark: *mark,
                seg: 0,
                ct: None,
            };
            let mut buf = pkt.clone();
            let mut reply = Reply::default();
            let mut path = Path::default();
            let o = r.process(meta, &mut buf, &mut reply, rng, &mut path);
            let reply = reply.disposition.map(|d| (reply.buf.clone(), d));
            (format!("{o:?}"), path.0, buf, reply)
        };
        let x = run(a, &mut ra);
        let y = run(b, &mut rb);
        if x != y {
            return Err(format!(
                "packet {n} ({from:?}, mark {mark}) differs:\n  {}: {:?}\n  {}: {:?}\n  outcome {} {}\n  outcome {} {}",
                names.0, x.1, names.1, y.1, names.0, x.0, names.1, y.0
            ));
        }
        if ra.0 != rb.0 {
            return Err(format!("packet {n}: the engines drew different random numbers"));
        }
    }
    let saved = |r: &crate::router::Router| {
        use crate::ruleset::Family;
        r.engine_of(Family::V4).save(true) + &r.engine_of(Family::V6).save(true)
    };
    let (sa, sb) = (saved(a), saved(b));
    if sa != sb {
        let only = |x: &str, y: &str| -> String {
            let ys: std::collections::HashSet<&str> = y.lines().collect();
            x.lines()
                .filter(|l| !ys.contains(l))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        return Err(format!(
            "counters differ:\n--- only {}\n{}--- only {}\n{}",
            names.0,
            only(&sa, &sb),
            names.1,
            only(&sb, &sa)
        ));
    }
    // Counters a previous generation created and nothing counted on do not matter.
    let counted = |r: &crate::router::Router| -> Vec<(String, (u64, u64))> {
        r.shared()
            .nfacct_values()
            .into_iter()
            .filter(|(_, v)| *v != (0, 0))
            .collect()
    };
    if counted(a) != counted(b) {
        return Err(format!("nfacct counters differ: {:?} vs {:?}", counted(a), counted(b)));
    }
    Ok(())
}

/// Incremental validation and engine derivation against whole validation and compilation:
/// starting from a random ruleset, `steps` random changes (chains replaced, added, deleted,
/// rules appended, inserted and deleted, policies flipped, chains renamed, with rules from other random rulesets, so
/// that jumps may dangle, loop or nest) are validated both ways; they must accept and refuse
/// the same changes, and an engine derived generation after generation must behave as one
/// compiled whole from the same rules. Returns how many changes were accepted.
pub fn incremental(seed: u64, steps: usize, packets: &[Sent]) -> Result<usize, String> {
    incremental_with(seed, steps, packets, 0)
}

/// [`incremental`] from a ruleset whose chains first get at least `long` rules no packet
/// matches in front of their own, so that changes land anywhere in chains longer than the
/// chunks validation and compilation share between generations, and move the rules that
/// matter across them.
pub fn incremental_long(seed: u64, steps: usize, packets: &[Sent], long: usize) -> Result<usize, String> {
    incremental_with(seed, steps, packets, long)
}

fn incremental_with(seed: u64, steps: usize, packets: &[Sent], long: usize) -> Result<usize, String> {
    use crate::eval::{EngineKind, SplitMix};
    use crate::router::Router;
    use crate::ruleset::validate::validate_change;
    use crate::ruleset::{restore::restore, validate, Ruleset, TableKind};
    let mut c = SplitMix(seed);
    let (sets, env) = differential_sets();
    let load = |c: &mut SplitMix| restore(&Ruleset::default(), &random_ruleset(c), "gen.rules", false).ok();
    let Some(mut rs) = load(&mut c) else { return Ok(0) };
    if long > 0 {
        // In front of each chain's rules, rules no generated packet matches (each its own
        // address, so the classifier's tables fill too): the chain's own rules then sit
        // past the first chunk, and changes among the fillers move them across chunks.
        let mut pad = String::new();
        for t in rs.tables.iter().flatten() {
            pad.push_str(&format!("*{}\n", t.kind));
            for name in t.chain_names() {
                let n = long + c.below(long as u32 / 2 + 1) as usize;
                for i in 0..n {
                    pad.push_str(&format!("-I {name} 1 -d 198.18.{}.{}/32 -j ACCEPT\n", i / 256, i % 256));
                }
            }
            pad.push_str("COMMIT\n");
        }
        rs = restore(&rs, &pad, "pad.rules", true).map_err(|e| e.to_string())?;
    }
    let Ok(mut cur) = validate(&rs, &env) else { return Ok(0) };
    let mut accepted = 0;
    for step in 0..steps {
        let Some(donor) = load(&mut c) else { continue };
        let mut next = cur.source();
        for _ in 0..1 + c.below(3) {
            let k = TableKind::ALL[c.below(4) as usize];
            let (Some(t), Some(d)) = (next.tables[k.index()].as_mut(), donor.table(k)) else {
                continue;
            };
            let names = t.chain_names();
            let dnames = d.chain_names();
            let name = names[c.below(names.len() as u32) as usize].clone();
            let dname = dnames[c.below(dnames.len() as u32) as usize].clone();
            // New rules: each with a counter of its own.
            let mut drules = d.chain(&dname).map(|x| x.rules.clone()).unwrap_or_default();
            for r in &mut drules {
                r.update(|r| r.counter = crate::ruleset::Counter::fresh());
            }
            match c.below(8) {
                0 => t.chain_mut(&name).expect("listed").rules = drules,
                1 => {
                    let fresh = format!("N{step}x{}", c.below(4));
                    if !t.has_chain(&fresh) {
                        t.add_user_chain(&fresh).rules = drules;
                    }
                }
                2 => {
                    t.remove_user_chain(&name);
                }
                3 => {
                    if let Some(r) = drules.first() {
                        t.chain_mut(&name).expect("listed").rules.push(r.clone());
                    }
                }
                4 => {
                    let ch = t.chain_mut(&name).expect("listed");
                    if let Some(p) = ch.policy {
                        ch.policy = Some(match p {
                            crate::ruleset::Policy::Accept => crate::ruleset::Policy::Drop,
                            crate::ruleset::Policy::Drop => crate::ruleset::Policy::Accept,
                        });
                    } else {
                        ch.rules.clear();
                    }
                }
                // A rule inserted or deleted inside a chain: the rules around it stay shared
                // with the previous generation (what validation and the classifier reuse).
                6 => {
                    let ch = t.chain_mut(&name).expect("listed");
                    if let Some(r) = drules.first() {
                        let at = c.below(ch.rules.len() as u32 + 1) as usize;
                        ch.rules.insert(at, r.clone());
                    }
                }
                7 => {
                    let ch = t.chain_mut(&name).expect("listed");
                    if !ch.rules.is_empty() {
                        let at = c.below(ch.rules.len() as u32) as usize;
                        ch.rules.remove(at);
                    }
                }
                // A rule replaced in place (`-R`): the chain keeps its length.
                5 if long > 0 => {
                    let ch = t.chain_mut(&name).expect("listed");
                    if let (Some(r), false) = (drules.first(), ch.rules.is_empty()) {
                        let at = c.below(ch.rules.len() as u32) as usize;
                        ch.rules.set(at, r.clone());
                    }
                }
                _ => {
                    if t.chain(&name).is_some_and(|x| x.policy.is_none()) {
                        crate::ruleset::restore::rename_chain(t, &name, &format!("R{step}"));
                    }
                }
            }
        }
        let whole = validate(&next.with_fresh_counters(), &env);
        let incr = validate_change(&cur, &next, &env);
        match (whole, incr) {
            (Err(_), Err(_)) => {}
            (Ok(_), Err(e)) => return Err(format!("step {step}: refused incrementally, accepted whole:\n{e}")),
            (Err(e), Ok(_)) => return Err(format!("step {step}: accepted incrementally, refused whole:\n{e}")),
            (Ok(vw), Ok(vi)) => {
                same_jumps(&vw, &vi).map_err(|e| format!("step {step}: {e}"))?;
                // Derived from a fresh engine of the previous generation, so both start from
                // clean state.
                let derived =
                    Router::new(topology(), cur.clone(), sets.clone(), u32::MAX).with_engine(EngineKind::Compiled);
                derived.swap_rules(vi.clone());
                let mut whole = Router::new(topology(), vw, sets.clone(), u32::MAX).with_engine(EngineKind::Compiled);
                whole.synproxy.share_keys(&derived.synproxy);
                // Counters of the previous generation's rules carry into `derived`: zero them.
                zero_counters(&vi);
                same_behaviour(&derived, &whole, packets, seed ^ step as u64, ("incremental", "whole"))
                    .map_err(|e| format!("step {step}: {e}"))?;
                zero_counters(&vi);
                cur = vi;
                accepted += 1;
            }
        }
    }
    Ok(accepted)
}

/// Every rule of `whole` jumps where the same rule of `incr` does (by chain name).
fn same_jumps(whole: &crate::ruleset::ValidRuleset, incr: &crate::ruleset::ValidRuleset) -> Result<(), String> {
    use crate::ruleset::validate::{ValidChain, ValidTable};
    for tw in whole.tables() {
        let ti = incr
            .table(tw.kind())
            .ok_or(format!("{}: no such table incrementally", tw.kind()))?;
        for cw in tw.chains() {
            let ci = ti.id_of(cw.name()).and_then(|id| ti.get(id)).ok_or(format!(
                "{}: no chain {} incrementally",
                tw.kind(),
                cw.name()
            ))?;
            let to = |t: &ValidTable, c: &ValidChain, i: usize| {
                c.jump(i).and_then(|j| t.get(j)).map(|c| c.name().to_string())
            };
            for i in 0..cw.rules().len().max(ci.rules().len()) {
                if to(tw, cw, i) != to(ti, ci, i) {
                    return Err(format!(
                        "{} {}: rule {}: jumps to {:?} validated whole, {:?} incrementally",
                        tw.kind(),
                        cw.name(),
                        i + 1,
                        to(tw, cw, i),
                        to(ti, ci, i)
                    ));
                }
            }
        }
    }
    Ok(())
}

fn zero_counters(v: &crate::ruleset::ValidRuleset) {
    use std::sync::atomic::Ordering;
    for t in v.tables() {
        for c in t.chains() {
            c.counter().packets.store(0, Ordering::Relaxed);
            c.counter().bytes.store(0, Ordering::Relaxed);
            for r in c.rules() {
                r.counter.packets.store(0, Ordering::Relaxed);
                r.counter.bytes.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// Makes `pkt` (arriving through `ingress`) the packet of an established connection: sends
/// it, answers it from where it went (the reverse of the packet as it left, a SYN-ACK for a
/// TCP SYN), and returns the packet to send next in the same flow (an ACK for TCP, the same
/// datagram otherwise), which conntrack then sees as ESTABLISHED. `None` when the first
/// packet or its answer does not get through, or the packet is not TCP, UDP or ICMP echo.
pub fn establish(
    r: &crate::router::Router,
    ingress: crate::router::Ingress,
    pkt: &[u8],
    now: u64,
    rng: &mut dyn Chance,
) -> Option<Vec<u8>> {
    use crate::packet::parse;
    use crate::router::{Disposition, Ingress, Meta, Reply};
    let meta = |ingress| Meta {
        now,
        ingress,
        mark: 0,
        seg: 0,
        ct: None,
    };
    let mut reply = Reply::default();
    let mut out = pkt.to_vec();
    let o = r.process(meta(ingress), &mut out, &mut reply, rng, &mut ());
    let back = match o.disposition {
        Disposition::Forward(hop) => Ingress::Iface(hop.iface),
        Disposition::Local => Ingress::Local,
        Disposition::Drop(_) | Disposition::Held => return None,
    };
    let h = parse(&out).ok()?;
    let mut answer = Vec::new();
    let next = match (h.src, h.dst) {
        (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) => {
            answer_to(&mut answer, Ip4::new(dst, src, h.proto), &h, pkt, 8, 0)?
        }
        (std::net::IpAddr::V6(src), std::net::IpAddr::V6(dst)) => {
            answer_to(&mut answer, build::Ip6::new(dst, src), &h, pkt, 128, 129)?
        }
        _ => return None,
    };
    let o = r.process(meta(back), &mut answer, &mut reply, rng, &mut ());
    (!matches!(o.disposition, Disposition::Drop(_))).then_some(next)
}

/// The answer to the packet `h` (as it left the router) in `answer`, from `ip` (its family's
/// header, addresses swapped); returns the sender's next packet (an ACK for TCP). `echo` and
/// `reply` are the family's ICMP echo types.
fn answer_to<I: build::IpHeader>(
    answer: &mut Vec<u8>,
    ip: I,
    h: &crate::packet::Headers,
    pkt: &[u8],
    echo: u8,
    reply: u8,
) -> Option<Vec<u8>> {
    use crate::packet::{parse, L4};
    let mut next = pkt.to_vec();
    match h.l4 {
        L4::Tcp(t) => {
            build::tcp(
                answer,
                ip,
                TcpSeg {
                    sport: t.dport,
                    dport: t.sport,
                    seq: 9,
                    ack: 2,
                    flags: 0x12,
                    window: 1000,
                },
                b"",
            );
            let nh = parse(&next).ok()?;
            let flags = usize::from(nh.l4_off) + 13;
            *next.get_mut(flags)? = 0x10;
            crate::packet::fill_l4_checksum(&mut next, &nh);
        }
        L4::Udp { sport, dport } => build::udp(answer, ip, dport, sport, b"answer"),
        L4::Icmp(i) if i.typ == echo => {
            let id = i.ident.to_be_bytes();
            build::icmp(answer, ip, reply, 0, [id[0], id[1], 0, 1], b"")
        }
        _ => return None,
    }
    Some(next)
}

/// The IPv6 address standing for IPv4 address `a` in the IPv6 variants of the generated
/// rulesets and packets: `2001:db8::a.b.c.d`, so that prefixes keep their containment (an
/// IPv4 `/n` is an IPv6 `/96+n`).
pub fn v6_of(a: Ipv4Addr) -> std::net::Ipv6Addr {
    let o = a.octets();
    std::net::Ipv6Addr::new(
        0x2001,
        0xdb8,
        0,
        0,
        0,
        0,
        u16::from_be_bytes([o[0], o[1]]),
        u16::from_be_bytes([o[2], o[3]]),
    )
}

/// One word of a generated IPv4 rule in ip6tables' terms, `None` when it has no
/// counterpart (the rule is then left out).
fn v6_word(w: &str) -> Option<String> {
    let addr = |s: &str| s.parse::<Ipv4Addr>().ok().map(v6_of);
    if let Some(a) = addr(w) {
        return Some(a.to_string());
    }
    if let Some((a, len)) = w.split_once('/') {
        if let Some(a) = addr(a) {
            let len = match len.parse::<u32>() {
                Ok(l) if l <= 32 => l,
                // A mask: contiguous ones only.
                _ => {
                    let m = u32::from(len.parse::<Ipv4Addr>().ok()?);
                    if m.leading_ones() + m.trailing_zeros() != 32 {
                        return None;
                    }
                    m.leading_ones()
                }
            };
            return Some(format!("{a}/{}", 96 + len));
        }
    }
    if let Some((a, b)) = w.split_once('-') {
        if let (Some(a), Some(b)) = (addr(a), addr(b)) {
            return Some(format!("{a}-{b}"));
        }
    }
    if let Some((a, port)) = w.split_once(':') {
        if let Some(a) = addr(a) {
            return Some(format!("[{a}]:{port}"));
        }
    }
    Some(
        match w {
            "icmp" => "ipv6-icmp",
            "--icmp-type" => "--icmpv6-type",
            "ttl" => "hl",
            "TTL" => "HL",
            "--ttl-eq" => "--hl-eq",
            "--ttl-lt" => "--hl-lt",
            "--ttl-gt" => "--hl-gt",
            "--ttl-set" => "--hl-set",
            "--ttl-inc" => "--hl-inc",
            "--ttl-dec" => "--hl-dec",
            "-f" | "ECN" => return None,
            w => w,
        }
        .to_string(),
    )
}

/// ip6tables' extension-header matches the IPv6 variants of the generated rulesets use.
const V6_MATCHES: [&str; 8] = [
    "-m hbh --hbh-len 8",
    "-m hbh --hbh-opts 1:4",
    "-m ipv6header --header hop-by-hop --soft",
    "-m ipv6header ! --header hop-by-hop,protocol",
    "-m frag --fragmore",
    "-m rt ! --rt-type 0",
    "-m dst ! --dst-len 16",
    "-m ah --ahspi 1:9",
];

/// The ip6tables counterpart of a ruleset [`random_ruleset`] made: addresses mapped by
/// [`v6_of`], ICMP, TTL and their options renamed, and the rules that have no IPv6
/// counterpart (fragments, masks with holes, the ECN target, lines ip6tables refuses) left
/// out.
pub fn ruleset_to_v6(rules: &str) -> String {
    use crate::ruleset::{restore::restore, Family, Ruleset};
    let mut n = 0usize;
    let mut lines: Vec<String> = rules
        .lines()
        .filter_map(|l| {
            if !l.starts_with("-A ") {
                return Some(l.to_string());
            }
            let mut l = l.replace("-m icmp ", "-m icmp6 ");
            // Every third rule also tests an extension header (ip6tables' own matches), right
            // after `-A CHAIN`; `packet_to_v6` gives some packets a hop-by-hop header.
            n += 1;
            if n.is_multiple_of(3) {
                let m = V6_MATCHES[(n / 3) % V6_MATCHES.len()];
                let at = l.match_indices(' ').nth(1).map_or(l.len(), |(i, _)| i);
                l.insert_str(at, &format!(" {m}"));
            }
            // Words inside quotes (comments, u32 programs) stay as they are.
            let mut out = Vec::new();
            let mut quoted = false;
            for w in l.split(' ') {
                if quoted || w.starts_with('"') {
                    quoted = !(w.ends_with('"') && (w.len() > 1 || quoted));
                    out.push(w.to_string());
                    continue;
                }
                out.push(v6_word(w)?);
            }
            Some(out.join(" "))
        })
        .collect();
    // Lines ip6tables refuses (an ICMP type ICMPv6 lacks, a REJECT type of IPv4's…) go.
    for _ in 0..64 {
        match restore(&Ruleset::new(Family::V6), &lines.join("\n"), "gen6", false) {
            Ok(_) => break,
            Err(e) => {
                let Some(line) = e.0.first().map(|e| e.line as usize) else {
                    break;
                };
                if line == 0 || line > lines.len() || !lines[line - 1].starts_with("-A ") {
                    break;
                }
                lines.remove(line - 1);
            }
        }
    }
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// The IPv6 counterpart of a packet [`random_packet`] made: addresses mapped by [`v6_of`],
/// TTL as hop limit, TOS as traffic class, the same transport header and payload (ICMP echo
/// and unreachable as their ICMPv6 kinds), checksums filled for IPv6; a packet whose TOS has
/// bit 0x10 set carries a hop-by-hop header.
pub fn packet_to_v6(p: &[u8]) -> Vec<u8> {
    let h = super::packet::parse(p).expect("a generated packet parses");
    let (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) = (h.src, h.dst) else {
        return p.to_vec();
    };
    let mut l4 = p[usize::from(h.l4_off)..usize::from(h.total_len)].to_vec();
    let proto = if h.proto == super::packet::proto::ICMP {
        l4[0] = match l4[0] {
            8 => 128,
            0 => 129,
            3 => 1,
            t => t,
        };
        super::packet::proto::ICMPV6
    } else {
        h.proto
    };
    let ip = build::Ip6 {
        hop_limit: h.ttl,
        tclass: h.tos,
        ..build::Ip6::new(v6_of(src), v6_of(dst))
    };
    let mut b = Vec::with_capacity(48 + l4.len());
    if h.tos & 0x10 != 0 {
        // A hop-by-hop header (one PadN option) in front, for the extension-header matches.
        let mut body = vec![proto, 0, 1, 4, 0, 0, 0, 0];
        body.extend_from_slice(&l4);
        build::raw_of(&mut b, ip, 0, &body);
    } else {
        build::raw_of(&mut b, ip, proto, &l4);
    }
    let h6 = super::packet::parse(&b).expect("built");
    super::packet::fill_l4_checksum(&mut b, &h6);
    b
}
