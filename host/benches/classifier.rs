//! The compiled classifier against the walk (`[engine] kind = "linear"`), on generated
//! rulesets (`rtrouter::gen`):
//!
//! - `kube-proxy/{new-flow,established}-{compiled,linear}/N`: ns per packet through the whole
//!   core (`Router::process`) with kube-proxy's rules for N services. New-flow packets are the
//!   first packets of connections to random services (conntrack's state fixed to NEW, so the
//!   nat rules, the endpoint choice and the DNAT run every time); established packets belong
//!   to a connection conntrack already tracks.
//! - `acl/{compiled,linear}/N`: ns per lookup (`Engine::run` of FORWARD) in ClassBench-style
//!   5-tuple ACLs of N rules, packets aimed at random rules.
//!
//! Run: `cargo bench -p rtrouter --bench classifier` (figures in the README). In test mode
//! (`-- --test`, as the test command runs it) only the small sizes run.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rtrouter::eval::log::PacketLog;
use rtrouter::eval::state::{IpSets, Shared};
use rtrouter::eval::{Chance, Ct, CtInfo, Cx, Engine, EngineKind, Pkt, SplitMix};
use rtrouter::gen;
use rtrouter::packet::parse;
use rtrouter::route::IfaceId;
use rtrouter::router::{Ingress, Meta, Reply, Router};
use rtrouter::ruleset::{restore::restore, validate, Env, Hook, Ruleset, TableKind, ValidRuleset};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

/// Criterion's test mode: `cargo bench -- --test`, or `cargo test --benches` (no `--bench`).
fn test_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench")
}

/// The sizes to run: `RTROUTER_BENCH_MAX=N` leaves out those above N (each group builds
/// its rulesets even when a filter leaves its benchmarks out).
fn sizes(all: &'static [usize]) -> impl Iterator<Item = usize> {
    let max = std::env::var("RTROUTER_BENCH_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    all.iter().copied().filter(move |&n| n <= max)
}

fn load(rules: &str) -> ValidRuleset {
    let rs = restore(&Ruleset::default(), rules, "bench", false).expect("rules");
    validate(&rs, &Env::default()).expect("valid")
}

const KINDS: [EngineKind; 2] = [EngineKind::Compiled, EngineKind::Linear];

fn kube_proxy(c: &mut Criterion) {
    let sizes_all: &[usize] = if test_mode() {
        &[1, 100]
    } else {
        &[1, 10, 100, 1000, 10_000, 100_000]
    };
    let mut g = c.benchmark_group("kube-proxy");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    for n in sizes(sizes_all) {
        let v = load(&gen::kube_proxy(n));
        let mut rng = SplitMix(n as u64);
        let syns: Vec<(Vec<u8>, Ct)> = (0..1024)
            .map(|_| {
                let client = std::net::Ipv4Addr::new(10, 0, 1, 2 + rng.below(200) as u8);
                let p = gen::tcp_syn(
                    client,
                    1024 + rng.below(60000) as u16,
                    gen::service_ip(rng.below(n as u32) as usize),
                    80,
                );
                let ct = Ct::Tracked(CtInfo::new_from(&parse(&p).expect("valid")));
                (p, ct)
            })
            .collect();
        for kind in KINDS {
            let r = Router::new(gen::topology(), v.clone(), Default::default(), 10).with_engine(kind);
            let mut buf = Vec::with_capacity(2048);
            let mut reply = Reply {
                buf: Vec::with_capacity(2048),
                disposition: None,
                copies: Vec::new(),
            };
            let mut now = 1_000_000_000u64;
            // One packet through the whole core, from lan0.
            let mut send = |p: &[u8], ct: Option<Ct>, rng: &mut SplitMix| {
                buf.clear();
                buf.extend_from_slice(p);
                now += 1000;
                let meta = Meta {
                    now,
                    ingress: Ingress::Iface(IfaceId(0)),
                    mark: 0,
                    seg: 0,
                    ct,
                };
                black_box(r.process(meta, &mut buf, &mut reply, rng, &mut ()));
            };
            let mut i = 0;
            g.bench_function(BenchmarkId::new(format!("new-flow-{}", kind.name()), n), |b| {
                b.iter(|| {
                    let (p, ct) = &syns[i & 1023];
                    i += 1;
                    send(p, Some(*ct), &mut rng)
                })
            });
            let ack = gen::establish(&r, Ingress::Iface(IfaceId(0)), &syns[0].0, 2_000_000_000, &mut rng)
                .expect("a service connection is forwarded and answered");
            g.bench_function(BenchmarkId::new(format!("established-{}", kind.name()), n), |b| {
                b.iter(|| send(&ack, None, &mut rng))
            });
        }
    }
    g.finish();
}

fn acl(c: &mut Criterion) {
    let sizes_all: &[usize] = if test_mode() { &[1000] } else { &[1000, 10_000, 100_000] };
    let mut g = c.benchmark_group("acl");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    let topo = gen::topology();
    let log = PacketLog::new(10);
    for n in sizes(sizes_all) {
        let (rules, pkts) = gen::acl(n, 4096, &mut SplitMix(n as u64));
        let v = load(&rules);
        let mut pkts: Vec<(Vec<u8>, rtrouter::packet::Headers)> = pkts
            .into_iter()
            .map(|p| {
                let h = parse(&p).expect("valid");
                (p, h)
            })
            .collect();
        for kind in KINDS {
            let e = Engine::with_kind(v.clone(), &Shared::default(), Arc::new(IpSets::default()), &topo, kind);
            let mut rng = SplitMix(1);
            let mut i = 0;
            g.bench_function(BenchmarkId::new(kind.name(), n), |b| {
                b.iter(|| {
                    let (buf, h) = &mut pkts[i & 4095];
                    i += 1;
                    let mut p = Pkt {
                        buf,
                        h: *h,
                        in_if: Some(IfaceId(0)),
                        out_if: Some(IfaceId(1)),
                        mark: 0,
                        ct: Ct::Untracked,
                        zone: 0,
                        nat: None,
                        nat_done: true,
                        seen: false,
                        trace: false,
                    };
                    let mut cx = Cx {
                        wall: 0,
                        conns: None,
                        kernel_tz: 0,
                        cpu: || 0,
                        labels_set: 0,
                        mark_set: None,
                        tees: Vec::new(),
                        duplicate: false,
                        topo: &topo,
                        now: 0,
                        hook: Hook::Forward,
                        rng: &mut rng,
                        obs: &mut (),
                        log: &log,
                        abort: None,
                    };
                    black_box(e.run(TableKind::Filter, &mut p, &mut cx))
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = kube_proxy, acl
}
criterion_main!(benches);
