//! What a wasm plugin costs on the packet path: a rule whose plugin match returns true,
//! against the same rule with a native match, for 64- and 1500-byte packets; and how long
//! loading (compiling, or from the on-disk cache) and reloading take.
//! Run: `cargo bench -p rtrouter --bench plugin`; figures are in the README.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rtrouter::config::Cidr;
use rtrouter::eval::{Ct, CtInfo, SplitMix};
use rtrouter::packet::build::{self, Ip4};
use rtrouter::plugin::{compile, Limits, Plugins};
use rtrouter::route::{IfaceId, IfaceInfo, NextHop, Topology};
use rtrouter::router::{Ingress, Meta, Reply, Router};
use rtrouter::ruleset::{restore::restore, validate, Env, Ruleset};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const TRUE: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "rtrouter_abi_version") (result i32) i32.const 1)
  (func (export "rtrouter_buffer") (result i32) i32.const 1024)
  (func (export "rtrouter_buffer_len") (result i32) i32.const 8192)
  (func (export "rtrouter_init") (param i32 i32) (result i32) i32.const 0)
  (func (export "rtrouter_match") (param i32 i32) (result i32) i32.const 1))"#;

fn router(rules: &str, ps: Option<Arc<Plugins>>) -> Router {
    let mut t = Topology::default();
    t.add_iface(IfaceInfo {
        name: "lan0".into(),
        addrs: vec![Cidr::parse("10.0.1.1/24").unwrap()],
        mtu: 9000,
    });
    let wan = t.add_iface(IfaceInfo {
        name: "wan0".into(),
        addrs: vec![Cidr::parse("10.0.2.1/24").unwrap()],
        mtu: 9000,
    });
    t.routes
        .insert(Cidr::parse("0.0.0.0/0").unwrap(), NextHop { iface: wan, via: None });
    let rs = restore(&Ruleset::default(), rules, "bench", false).unwrap();
    let env = Env {
        ipsets: Default::default(),
        plugins: ps.clone().map(|p| p as Arc<dyn rtrouter::ruleset::PluginBinder>),
    };
    let v = validate(&rs, &env).unwrap();
    let r = Router::new(t, rtrouter::ruleset::ValidRuleset::empty(), Default::default(), 10);
    r.swap_plugins(ps.map(|p| p as Arc<dyn rtrouter::eval::PluginHost>), v);
    r
}

fn plugins() -> Arc<Plugins> {
    let m = compile(TRUE.as_bytes()).unwrap();
    Arc::new(
        Plugins::from_modules(
            vec![(
                "t".into(),
                m,
                Limits {
                    max_bytes: 2048,
                    ..Limits::default()
                },
            )],
            &Default::default(),
        )
        .unwrap(),
    )
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("plugin-match");
    for size in [64usize, 1500] {
        let mut pkt = Vec::new();
        build::udp(
            &mut pkt,
            Ip4::new("10.0.1.2".parse().unwrap(), "192.0.2.9".parse().unwrap(), 17),
            5000,
            53,
            &vec![0u8; size - 28],
        );
        let ct = Some(Ct::Tracked(CtInfo::new_from(&rtrouter::packet::parse(&pkt).unwrap())));
        for (name, rules, ps) in [
            (
                "native",
                "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -p udp -m udp --dport 53 -j ACCEPT\nCOMMIT\n",
                None,
            ),
            (
                "wasm",
                "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -p udp -m wasm --plugin t -j ACCEPT\nCOMMIT\n",
                Some(plugins()),
            ),
        ] {
            let r = router(rules, ps);
            let mut buf = Vec::with_capacity(2048);
            let mut reply = Reply::default();
            let mut rng = SplitMix(1);
            g.bench_with_input(BenchmarkId::new(name, size), &pkt, |b, pkt| {
                b.iter(|| {
                    buf.clear();
                    buf.extend_from_slice(pkt);
                    black_box(r.process(
                        Meta {
                            now: 1,
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
    let mut g = c.benchmark_group("plugin-load");
    let dns = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/target/dns_qname.wasm");
    if let Ok(bytes) = std::fs::read(&dns) {
        let _ = compile(&bytes);
        g.bench_function("load-dns-qname-cached", |b| {
            b.iter(|| black_box(compile(&bytes).unwrap()))
        });
        g.bench_function("reload-dns-qname-and-rules", |b| {
            let m = compile(&bytes).unwrap();
            let r = router("*filter\nCOMMIT\n", None);
            let rs = restore(
                &Ruleset::default(),
                "*filter\n-A FORWARD -p udp --dport 53 -m wasm --plugin dnsq --args example.com -j DROP\nCOMMIT\n",
                "b",
                false,
            )
            .unwrap();
            b.iter(|| {
                let ps = Arc::new(
                    Plugins::from_modules(vec![("dnsq".into(), m.clone(), Limits::default())], &Default::default())
                        .unwrap(),
                );
                let v = validate(
                    &rs,
                    &Env {
                        ipsets: Default::default(),
                        plugins: Some(ps.clone()),
                    },
                )
                .unwrap();
                r.swap_plugins(Some(ps), v);
            })
        });
    } else {
        println!(
            "plugin-load: {} not built (scripts/build-plugins.sh); load benchmarks skipped",
            dns.display()
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    targets = bench
}
criterion_main!(benches);
