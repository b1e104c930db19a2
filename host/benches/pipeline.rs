//! ns per packet through `Router::process`, from parse to disposition, for rulesets of a few
//! sizes. Run: `cargo bench -p rtrouter --bench pipeline`; figures are in the README.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rtrouter::eval::{Ct, CtInfo, SplitMix};
use rtrouter::packet::build::{self, Ip4, TcpSeg};
use rtrouter::packet::parse;
use rtrouter::route::IfaceId;
use rtrouter::router::{Disposition, Ingress, Meta, Reply, Router};
use rtrouter::ruleset::{restore::restore, validate, Env, Ruleset};
use std::hint::black_box;
use std::net::IpAddr;

use rtrouter::gen::topology;

fn router(rules: &str) -> Router {
    let rs = restore(&Ruleset::default(), rules, "bench", false).expect("rules");
    Router::new(
        topology(),
        validate(&rs, &Env::default()).expect("valid"),
        Default::default(),
        10,
    )
}

/// A small gateway: the shape of configs/gateway.rules.
const GATEWAY: &str = "*nat\n-A PREROUTING -i wan0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.1.2:80\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n\
*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:LAN - [0:0]\n-A INPUT -i lan0 -p icmp -j ACCEPT\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -m conntrack --ctstate INVALID -j DROP\n-A FORWARD -i lan0 -o wan0 -j LAN\n-A LAN -p tcp -m multiport --dports 25,465 -j REJECT --reject-with tcp-reset\n-A LAN -j ACCEPT\nCOMMIT\n";

/// `n` kube-proxy style services, the packet hitting the last one.
fn services(n: usize) -> String {
    let mut s = String::from("*nat\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\n");
    for i in 0..n {
        s += &format!(
            ":SVC-{i} - [0:0]\n-A KUBE-SERVICES -d 172.30.{}.{}/32 -p tcp -m tcp --dport 80 -j SVC-{i}\n",
            i / 250,
            i % 250 + 1
        );
        s += &format!("-A SVC-{i} -p tcp -m statistic --mode random --probability 0.5 -j DNAT --to-destination 10.0.1.{}:8080\n-A SVC-{i} -p tcp -j DNAT --to-destination 10.0.1.{}:8080\n", i % 200 + 2, i % 200 + 3);
    }
    s + "COMMIT\n"
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("process");
    g.throughput(Throughput::Elements(1));
    let mut syn = Vec::new();
    let lan = Ip4::new("10.0.1.2".parse().unwrap(), "192.0.2.9".parse().unwrap(), 6);
    build::tcp(
        &mut syn,
        lan,
        TcpSeg {
            sport: 40000,
            dport: 443,
            seq: 1,
            ack: 0,
            flags: 2,
            window: 1000,
        },
        &[0u8; 24],
    );
    let cases: Vec<(String, String, Vec<u8>)> = vec![
        ("no-rules".into(), "*filter\nCOMMIT\n".into(), syn.clone()),
        ("gateway".into(), GATEWAY.into(), syn.clone()),
    ]
    .into_iter()
    .chain([10usize, 100, 1000].into_iter().map(|n| {
        let mut p = Vec::new();
        let last = n - 1;
        let dst = format!("172.30.{}.{}", last / 250, last % 250 + 1).parse().unwrap();
        build::tcp(
            &mut p,
            Ip4::new("10.0.1.2".parse().unwrap(), dst, 6),
            TcpSeg {
                sport: 40000,
                dport: 80,
                seq: 1,
                ack: 0,
                flags: 2,
                window: 1000,
            },
            &[0u8; 24],
        );
        (format!("kube-services-{n}"), services(n), p)
    }))
    .collect();
    for (name, rules, pkt) in cases {
        // A new connection's first packet, every time: the rules and the NAT decision run,
        // with conntrack bypassed by fixing the state to NEW.
        let new_flow = Some(Ct::Tracked(CtInfo::new_from(&parse(&pkt).expect("valid"))));
        for (mode, ct) in [("new-flow", new_flow), ("established", None)] {
            let r = router(&rules);
            let mut buf = Vec::with_capacity(2048);
            let mut reply = Reply {
                buf: Vec::with_capacity(2048),
                disposition: None,
                copies: Vec::new(),
            };
            let mut rng = SplitMix(1);
            let mut now = 0u64;
            let mut measured = pkt.clone();
            if ct.is_none() {
                // Open the connection and answer it, so the measured packets (ACKs of the same
                // flow) are ESTABLISHED: the conntrack fast path.
                let mut out = pkt.clone();
                let o = r.process(
                    Meta {
                        now,
                        ingress: Ingress::Iface(IfaceId(0)),
                        mark: 0,
                        seg: 0,
                        ct: None,
                    },
                    &mut out,
                    &mut reply,
                    &mut rng,
                    &mut (),
                );
                let Disposition::Forward(hop) = o.disposition else {
                    panic!("{name}: the first packet must be forwarded")
                };
                let h = parse(&out).expect("valid");
                let (sport, dport) = h.ports().expect("tcp");
                let (IpAddr::V4(src), IpAddr::V4(dst)) = (h.src, h.dst) else {
                    unreachable!()
                };
                let mut synack = Vec::new();
                build::tcp(
                    &mut synack,
                    Ip4::new(dst, src, 6),
                    TcpSeg {
                        sport: dport,
                        dport: sport,
                        seq: 9,
                        ack: 2,
                        flags: 0x12,
                        window: 1000,
                    },
                    &[],
                );
                let o = r.process(
                    Meta {
                        now,
                        ingress: Ingress::Iface(hop.iface),
                        mark: 0,
                        seg: 0,
                        ct: None,
                    },
                    &mut synack,
                    &mut reply,
                    &mut rng,
                    &mut (),
                );
                assert!(
                    matches!(o.disposition, Disposition::Forward(_)),
                    "{name}: the reply must come back"
                );
                measured[33] = 0x10;
                let mh = parse(&measured).expect("valid");
                rtrouter::packet::fill_l4_checksum(&mut measured, &mh);
            }
            g.bench_with_input(BenchmarkId::new(mode, &name), &measured, |b, pkt| {
                b.iter(|| {
                    buf.clear();
                    buf.extend_from_slice(pkt);
                    now += 1000;
                    black_box(r.process(
                        Meta {
                            now,
                            ingress: Ingress::Iface(IfaceId(0)),
                            mark: 0,
                            seg: 0,
                            ct,
                        },
                        &mut buf,
                        &mut reply,
                        &mut rng,
                        &mut (),
                    ))
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
