//! Where the router's time goes in a kube-proxy partial sync at scale, step by step:
//! `cargo run --release --example prof_change -- [SERVICES] [ROUNDS] [whole|chains|delete|delete-middle]` loads a generated
//! kube-proxy ruleset of SERVICES services (default 100,000), then ROUNDS times adds one
//! service (its chain and its rule at the end of KUBE-SERVICES, a chain of SERVICES rules) the
//! way `iptables-restore --noflush` does, printing the time of each step: reading the live
//! source, applying the restore text, validating the change, and compiling and swapping in the
//! new generation (`whole`: KUBE-SERVICES written out in full, as kube-proxy does; `chains`: the
//! service's chain alone; `delete`: instead of adding, the last rule of KUBE-SERVICES is deleted
//! by its text, `-D KUBE-SERVICES ...`, as a removed service's is after its addition;
//! `delete-middle`: a rule from the middle). `scripts/bench-control.sh` measures the
//! same end to end.
use rtrouter::ruleset::restore::restore;
use rtrouter::ruleset::validate::{validate, validate_change};
use rtrouter::ruleset::{Env, Family, Ruleset};
use std::time::Instant;
fn main() {
    let n: usize = std::env::args().nth(1).map_or(100_000, |a| a.parse().unwrap());
    let text = rtrouter::gen::kube_proxy(n);
    let mode = std::env::args().nth(3).unwrap_or_default();
    let whole = mode == "whole";
    // With `chains`, only the service's own chain is added (no rule in KUBE-SERVICES).
    let chains_only = mode == "chains";
    let delete = mode.starts_with("delete");
    let mut kube_services: String = text
        .lines()
        .filter(|l| l.starts_with("-A KUBE-SERVICES "))
        .flat_map(|l| [l, "\n"])
        .collect();
    let rs = restore(&Ruleset::new(Family::V4), &text, "k", false).unwrap();
    let v = std::sync::Arc::new(validate(&rs, &Env::default()).unwrap());
    let r = rtrouter::router::Router::new(rtrouter::gen::topology(), (*v).clone(), Default::default(), u32::MAX);
    for i in 0..std::env::args().nth(2).map_or(3, |a| a.parse().unwrap()) {
        let jump = format!("-A KUBE-SERVICES -d 172.31.255.1/32 -p tcp -m comment --comment \"bench/svc-{i}:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-B{i:06}\n");
        // With `whole`, KUBE-SERVICES is declared and written out in full, as kube-proxy's
        // partial syncs write their top-level chains.
        let services = if whole {
            let mut t = String::from(":KUBE-SERVICES - [0:0]\n");
            t.push_str(&kube_services);
            t
        } else {
            String::new()
        };
        let jump_line = if chains_only { "" } else { jump.as_str() };
        let change = format!(
            "*nat\n:KUBE-SVC-B{i:06} - [0:0]\n{services}-A KUBE-SVC-B{i:06} -j KUBE-MARK-MASQ\n{jump_line}COMMIT\n"
        );
        if whole {
            kube_services.push_str(&jump);
        }
        let change = if delete {
            let at = if mode == "delete-middle" { n / 2 + i } else { n - 1 - i };
            let line = kube_services.lines().nth(at).expect("a rule of KUBE-SERVICES");
            format!("*nat\n-D {}\nCOMMIT\n", &line[3..])
        } else {
            change
        };
        // The input is written before the clock starts: only the router's steps are timed.
        let t0 = Instant::now();
        let cur = r.engine().rules().clone();
        let src = cur.source();
        let t1 = Instant::now();
        let next = restore(&src, &change, "c", true).unwrap();
        let t2 = Instant::now();
        let vi = validate_change(&cur, &next, &Env::default()).unwrap();
        let t3 = Instant::now();
        r.swap_rules(vi);
        let t4 = Instant::now();
        println!(
            "source {:?} restore {:?} validate {:?} swap {:?}",
            t1 - t0,
            t2 - t1,
            t3 - t2,
            t4 - t3
        );
    }
    // Freeing a million rules at exit takes longer than the rounds: leave it to the OS.
    std::process::exit(0);
}
