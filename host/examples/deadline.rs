//! How long a plugin call that never returns runs before its deadline stops it: a match that
//! loops forever, called through the router core with `timeout_us` 100 and 1000, 300 calls
//! each, paced so the plugin's budget never disables it. Prints the calls' wall time (the
//! whole `Router::process`): minimum, median, p99, maximum.
//!
//!   cargo run --release --example deadline

use rtrouter::config::Cidr;
use rtrouter::eval::SplitMix;
use rtrouter::packet::build::{self, Ip4};
use rtrouter::plugin::{compile, Limits, Plugins};
use rtrouter::route::{IfaceId, IfaceInfo, NextHop, Topology};
use rtrouter::router::{Ingress, Meta, Reply, Router};
use rtrouter::ruleset::{restore::restore, validate, Env, Ruleset};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LOOP: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "rtrouter_abi_version") (result i32) i32.const 1)
  (func (export "rtrouter_buffer") (result i32) i32.const 1024)
  (func (export "rtrouter_buffer_len") (result i32) i32.const 8192)
  (func (export "rtrouter_init") (param i32 i32) (result i32) i32.const 0)
  (func (export "rtrouter_match") (param i32 i32) (result i32) (loop br 0) i32.const 1))"#;

fn main() {
    for timeout_us in [100u64, 1000] {
        let ps = Arc::new(
            Plugins::from_modules(
                vec![(
                    "spin".into(),
                    compile(LOOP.as_bytes()).expect("compiles"),
                    Limits {
                        timeout_us,
                        disable_after: u32::MAX,
                        max_failures_per_sec: u32::MAX,
                        max_cpu_percent: 100,
                        ..Limits::default()
                    },
                )],
                &Default::default(),
            )
            .expect("loads"),
        );
        let mut t = Topology::default();
        t.add_iface(IfaceInfo {
            name: "lan0".into(),
            addrs: vec![Cidr::parse("10.0.1.1/24").unwrap()],
            mtu: 1500,
        });
        let wan = t.add_iface(IfaceInfo {
            name: "wan0".into(),
            addrs: vec![Cidr::parse("10.0.2.1/24").unwrap()],
            mtu: 1500,
        });
        t.routes
            .insert(Cidr::parse("0.0.0.0/0").unwrap(), NextHop { iface: wan, via: None });
        let rules = "*filter\n-A FORWARD -m wasm --plugin spin -j ACCEPT\nCOMMIT\n";
        let rs = restore(&Ruleset::default(), rules, "deadline", false).unwrap();
        let env = Env {
            ipsets: Default::default(),
            plugins: Some(ps.clone() as Arc<dyn rtrouter::ruleset::PluginBinder>),
        };
        let v = validate(&rs, &env).unwrap();
        let r = Router::new(t, rtrouter::ruleset::ValidRuleset::empty(), Default::default(), 10);
        r.swap_plugins(Some(ps.clone() as Arc<dyn rtrouter::eval::PluginHost>), v);
        let mut pkt = Vec::new();
        build::udp(
            &mut pkt,
            Ip4::new("10.0.1.2".parse().unwrap(), "10.0.2.2".parse().unwrap(), 17),
            1,
            2,
            b"x",
        );
        let (mut reply, mut rng) = (Reply::default(), SplitMix(1));
        let mut times = Vec::new();
        let start = Instant::now();
        for i in 0..300u64 {
            let mut b = pkt.clone();
            let meta = Meta {
                now: start.elapsed().as_nanos() as u64,
                ingress: Ingress::Iface(IfaceId(0)),
                mark: 0,
                ct: None,
                seg: 0,
            };
            let t0 = Instant::now();
            r.process(meta, &mut b, &mut reply, &mut rng, &mut ());
            if i >= 10 {
                times.push(t0.elapsed());
            }
            // Well under the plugin's time budget per second.
            std::thread::sleep(Duration::from_millis(2));
        }
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "timeout_us {timeout_us}: call time min {:?}, median {:?}, p99 {:?}, max {:?} ({} calls)",
            times[0],
            at(0.5),
            at(0.99),
            times[times.len() - 1],
            times.len()
        );
    }
}
