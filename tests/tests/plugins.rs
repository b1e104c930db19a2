//! Wasm plugins through the router core: good modules, hostile ones (the router keeps
//! forwarding other traffic and counts the failures), load-time refusals, reload, and the
//! example plugins built by scripts/build-plugins.sh.

use rtrouter::packet::DropReason;
use rtrouter::plugin::{compile, Limits, OnError, Plugins};
use rtrouter::router::Disposition;
use rtrouter::ruleset::{restore::restore, validate, Env, Ruleset};
use rtrouter_tests::{tcp, udp, Lab};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The ABI's boilerplate around `body` (exports a 4 KiB buffer at 1024).
fn wat(body: &str) -> String {
    wat_importing("", body)
}

/// The same, with host imports (which a module declares before its functions).
fn wat_importing(imports: &str, body: &str) -> String {
    format!(
        r#"(module
  {imports}
  (memory (export "memory") 1)
  (func (export "rtrouter_abi_version") (result i32) i32.const 1)
  (func (export "rtrouter_buffer") (result i32) i32.const 1024)
  (func (export "rtrouter_buffer_len") (result i32) i32.const 4096)
  (func (export "rtrouter_init") (param i32 i32) (result i32) i32.const 0)
  {body})"#
    )
}

const MATCH_UDP: &str = r#"(func (export "rtrouter_match") (param i32 i32) (result i32)
    (i32.eq (i32.load8_u (i32.const 1049)) (i32.const 17)))"#;

fn plugins(mods: &[(&str, String, Limits)]) -> Result<Arc<Plugins>, String> {
    let ms = mods
        .iter()
        .map(|(n, w, l)| Ok((n.to_string(), compile(w.as_bytes())?, *l)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Arc::new(Plugins::from_modules(ms, &Default::default())?))
}

/// A lab whose FORWARD chain is `rules` (policy DROP unless given), with `ps` loaded.
fn lab(ps: &Arc<Plugins>, rules: &str) -> Result<Lab, String> {
    let rs = restore(&Ruleset::default(), rules, "plugins.rules", false).map_err(|e| e.to_string())?;
    let v = validate(
        &rs,
        &Env {
            ipsets: Default::default(),
            plugins: Some(ps.clone()),
        },
    )
    .map_err(|e| e.to_string())?;
    let l = Lab::new("*filter\nCOMMIT\n");
    l.router.swap_plugins(Some(ps.clone()), v);
    Ok(l)
}

/// Limits for tests: few failures before disabling; a per-call deadline generous enough
/// that a debug build on a loaded machine (parallel tests, 2 cores) is not cut off by being
/// preempted mid-call (the deadline is wall-clock time).
fn fast() -> Limits {
    Limits {
        timeout_us: 50_000,
        disable_after: 5,
        ..Limits::default()
    }
}

const A: &str = "10.0.1.2";
const B: &str = "192.0.2.9";

#[test]
fn a_plugin_match_decides_and_prints_back() {
    let ps = plugins(&[("udp", wat(MATCH_UDP), fast())]).unwrap();
    let rules = "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m wasm --plugin udp --args \"x y\" -j ACCEPT\n-A FORWARD -p tcp -m wasm ! --plugin udp -j ACCEPT\nCOMMIT\n";
    let mut l = lab(&ps, rules).unwrap();
    assert!(l.send("lan0", &udp(A, 1, B, 2)).forwarded());
    assert!(l.send("lan0", &tcp(A, 1, B, 2, 2)).forwarded(), "negated match");
    let saved = l.router.engine().save(false);
    assert!(
        saved.contains("-A FORWARD -m wasm --plugin udp --args \"x y\" -j ACCEPT"),
        "{saved}"
    );
    assert!(
        saved.contains("-A FORWARD -p tcp -m wasm ! --plugin udp -j ACCEPT"),
        "{saved}"
    );
    assert_eq!(ps.get("udp").unwrap().stats.calls.load(Ordering::Relaxed), 3);
}

#[test]
fn a_plugin_target_sets_the_mark() {
    let target = wat(r#"(func (export "rtrouter_target") (param i32 i32) (result i32)
        (i32.store (i32.const 1052) (i32.const 0x77))
        (i32.store (i32.const 1076) (i32.const 1))
        i32.const 0)"#);
    let ps = plugins(&[("marker", target, fast())]).unwrap();
    let rules = "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -j WASM --plugin marker\n-A FORWARD -m mark --mark 0x77 -j ACCEPT\nCOMMIT\n";
    let mut l = lab(&ps, rules).unwrap();
    assert!(l.send("lan0", &udp(A, 1, B, 2)).forwarded());
    let verdicts = wat(r#"(func (export "rtrouter_target") (param i32 i32) (result i32) i32.const 2)"#);
    let ps = plugins(&[("dropper", verdicts, fast())]).unwrap();
    let mut l = lab(&ps, "*filter\n-A FORWARD -j WASM --plugin dropper\nCOMMIT\n").unwrap();
    assert!(l.send("lan0", &udp(A, 1, B, 2)).dropped());
}

#[test]
fn nfqueue_hands_packets_to_the_plugin_listening_on_the_queue() {
    let dropper = wat(r#"(func (export "rtrouter_target") (param i32 i32) (result i32) i32.const 2)"#);
    // "Continue": the listener's NF_ACCEPT, after setting the mark.
    let marker = wat(r#"(func (export "rtrouter_target") (param i32 i32) (result i32)
        (i32.store (i32.const 1052) (i32.const 0x77))
        (i32.store (i32.const 1076) (i32.const 1))
        i32.const 0)"#);
    let load = |queues: &[(u16, &str, &str)]| -> Arc<Plugins> {
        let ms = vec![
            ("dropper".to_string(), compile(dropper.as_bytes()).unwrap(), fast()),
            ("marker".to_string(), compile(marker.as_bytes()).unwrap(), fast()),
        ];
        Arc::new(
            Plugins::from_modules(ms, &Default::default())
                .unwrap()
                .with_queues(queues),
        )
    };
    let ps = load(&[(3, "dropper", ""), (4, "marker", "")]);
    let rules = |q: &str| {
        format!(
            "*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j NFQUEUE {q}\n-A FORWARD -j DROP\nCOMMIT\n\
             *mangle\n:POSTROUTING DROP [0:0]\n-A POSTROUTING -m mark --mark 0x77 -j ACCEPT\n\
             -A POSTROUTING -m mark --mark 0 -j ACCEPT\nCOMMIT\n"
        )
    };
    // Queue 3's plugin drops.
    let mut l = lab(&ps, &rules("--queue-num 3")).unwrap();
    assert!(l.send("lan0", &udp(A, 1, B, 2)).dropped());
    // Queue 4's plugin accepts: the rest of the table is skipped, its mark stays.
    let mut l = lab(&ps, &rules("--queue-num 4")).unwrap();
    let s = l.send("lan0", &udp(A, 1, B, 2));
    assert!(s.forwarded(), "{:?}", s.outcome.disposition);
    // Nobody on queue 5: dropped, or accepted with --queue-bypass, as the kernel does.
    let mut l = lab(&ps, &rules("--queue-num 5")).unwrap();
    assert!(l.send("lan0", &udp(A, 1, B, 2)).dropped());
    let mut l = lab(&ps, &rules("--queue-num 5 --queue-bypass")).unwrap();
    assert!(l.send("lan0", &udp(A, 1, B, 2)).forwarded());
    // Balanced over 3:4, a flow keeps its queue in both directions, and both queues get flows.
    let mut l = lab(&ps, &rules("--queue-balance 3:4")).unwrap();
    let mut fates = Vec::new();
    for i in 0..64u8 {
        let a = format!("10.0.1.{}", 2 + i);
        let there = l.send("lan0", &udp(&a, 1000, B, 53)).forwarded();
        let back = l.send("wan0", &udp(B, 53, &a, 1000)).forwarded();
        assert_eq!(there, back, "flow {a}: both directions meet the same queue");
        fates.push(there);
    }
    assert!(fates.contains(&true) && fates.contains(&false), "{fates:?}");
    // `-j QUEUE` is queue 0 without bypass, and saves as itself.
    let queue0 = "*filter\n-A FORWARD -j QUEUE\nCOMMIT\n";
    let mut l = lab(&load(&[(0, "marker", "")]), queue0).unwrap();
    assert!(l.send("lan0", &udp(A, 1, B, 2)).forwarded());
    assert!(l
        .router
        .engine()
        .rules()
        .source()
        .save(false)
        .contains("-A FORWARD -j QUEUE\n"));
    let mut l = lab(&load(&[]), queue0).unwrap();
    assert!(l.send("lan0", &udp(A, 1, B, 2)).dropped(), "nobody on queue 0");
    // A queue whose plugin has no target is refused when the rules are loaded.
    let matcher = wat(MATCH_UDP);
    let ms = vec![("m".to_string(), compile(matcher.as_bytes()).unwrap(), fast())];
    let only_match = Arc::new(
        Plugins::from_modules(ms, &Default::default())
            .unwrap()
            .with_queues(&[(0, "m", "")]),
    );
    let e = lab(&only_match, "*filter\n-A FORWARD -j NFQUEUE\nCOMMIT\n").unwrap_err();
    assert!(e.contains("queue 0: plugin `m' has no target"), "{e}");
}

#[test]
fn hostile_modules_fail_alone_and_are_counted() {
    for (name, body, kind) in [
        (
            "spin",
            r#"(func (export "rtrouter_match") (param i32 i32) (result i32) (loop $l (br $l)) i32.const 1)"#,
            "timeouts",
        ),
        (
            "trap",
            r#"(func (export "rtrouter_match") (param i32 i32) (result i32) unreachable)"#,
            "traps",
        ),
        (
            "bomb",
            r#"(func (export "rtrouter_match") (param i32 i32) (result i32)
                (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
                unreachable)"#,
            "traps",
        ),
    ] {
        let limits = Limits {
            memory_bytes: 2 << 20,
            ..fast()
        };
        let ps = plugins(&[(name, wat(body), limits)]).unwrap();
        let rules = format!("*filter\n:FORWARD DROP [0:0]\n-A FORWARD -p udp -m wasm --plugin {name} -j ACCEPT\n-A FORWARD -p tcp -j ACCEPT\nCOMMIT\n");
        let mut l = lab(&ps, &rules).unwrap();
        for _ in 0..8 {
            // The failing match counts as no match (on_error = no-match): the UDP packet is dropped…
            assert!(l.send("lan0", &udp(A, 1, B, 2)).dropped(), "{name}");
            // …and other traffic keeps flowing.
            assert!(l.send("lan0", &tcp(A, 1, B, 80, 2)).forwarded(), "{name}");
        }
        let p = ps.get(name).unwrap();
        let st = &p.stats;
        let n = if kind == "timeouts" {
            st.timeouts.load(Ordering::Relaxed)
        } else {
            st.traps.load(Ordering::Relaxed)
        };
        assert_eq!(n, 5, "{name}: {kind} counted until the plugin was disabled");
        assert!(
            p.disabled.load(Ordering::Relaxed),
            "{name}: disabled after 5 consecutive failures"
        );
    }
    // on_error = drop: a failing target drops the packet.
    let ps = plugins(&[(
        "trap",
        wat(r#"(func (export "rtrouter_target") (param i32 i32) (result i32) unreachable)"#),
        Limits {
            on_error: OnError::Drop,
            ..fast()
        },
    )])
    .unwrap();
    let mut l = lab(&ps, "*filter\n-A FORWARD -j WASM --plugin trap\nCOMMIT\n").unwrap();
    let s = l.send("lan0", &udp(A, 1, B, 2));
    assert_eq!(s.outcome.disposition, Disposition::Drop(DropReason::PluginFailure));
}

#[test]
fn failing_match_plugins_configured_to_drop_fail_closed() {
    // Before, a match plugin that trapped counted as "no match" whatever on_error said, so
    // with an ACCEPT policy every packet went through (2000 of 2000 in the red-team run).
    for (name, body) in [
        (
            "trap",
            r#"(func (export "rtrouter_match") (param i32 i32) (result i32) unreachable)"#,
        ),
        (
            "spin",
            r#"(func (export "rtrouter_match") (param i32 i32) (result i32) (loop $l (br $l)) i32.const 1)"#,
        ),
    ] {
        let ps = plugins(&[(
            name,
            wat(body),
            Limits {
                on_error: OnError::Drop,
                ..fast()
            },
        )])
        .unwrap();
        let rules = format!("*filter\n-A FORWARD -p udp -m wasm ! --plugin {name} -j ACCEPT\nCOMMIT\n");
        let mut l = lab(&ps, &rules).unwrap();
        // Past the 5 failures that disable the plugin too: a disabled plugin gives the
        // configured outcome as well.
        for i in 0..8 {
            let s = l.send("lan0", &udp(A, 1, B, 2));
            assert_eq!(
                s.outcome.disposition,
                Disposition::Drop(DropReason::PluginFailure),
                "{name}, packet {i}"
            );
            assert!(
                l.send("lan0", &tcp(A, 1, B, 80, 2)).forwarded(),
                "{name}: other traffic flows"
            );
        }
        assert!(ps.get(name).unwrap().disabled.load(Ordering::Relaxed));
        assert_eq!(l.router.stats.drop_count(DropReason::PluginFailure), 8);
        // The rule that failed did not count the packet.
        assert_eq!(
            l.router
                .engine()
                .rule_counters(rtrouter::ruleset::TableKind::Filter, "FORWARD", 0),
            (0, 0)
        );
    }
}

#[test]
fn modules_that_break_the_rules_do_not_load() {
    let refuse = |w: String| plugins(&[("bad", w, fast())]).unwrap_err();
    let e = refuse(wat(MATCH_UDP).replacen("i32.const 1)", "i32.const 2)", 1));
    assert!(e.contains("ABI version 2"), "{e}");
    let e = refuse(wat(MATCH_UDP).replacen(
        "(memory",
        r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))) (memory"#,
        1,
    ));
    assert!(
        e.contains("wasi_snapshot_preview1::fd_write") && e.contains("without WASI"),
        "{e}"
    );
    let e = refuse(wat("").to_string());
    assert!(e.contains("neither"), "{e}");
    let e = refuse(wat(MATCH_UDP).replace("(result i32) i32.const 4096", "(result i32) i32.const 1000000"));
    assert!(e.contains("outside its memory"), "{e}");
    let e = refuse("(module)".into());
    assert!(e.contains("does not export"), "{e}");
    let e = plugins(&[("junk", "not wasm at all".into(), fast())]).unwrap_err();
    assert!(e.contains("not a loadable wasm module"), "{e}");
}

#[test]
fn rules_are_checked_against_the_plugins() {
    // init refuses "nope" with a message in the buffer.
    let picky = wat(r#"(data (i32.const 2048) "\0bbad args!!")
        (func (export "rtrouter_match") (param i32 i32) (result i32) i32.const 1)"#)
    .replace(
        r#"(func (export "rtrouter_init") (param i32 i32) (result i32) i32.const 0)"#,
        r#"(func (export "rtrouter_init") (param i32 i32) (result i32)
            (if (result i32) (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 110))
              (then (i32.store (i32.const 1024) (i32.const 11)) (memory.copy (i32.const 1028) (i32.const 2049) (i32.const 11)) (i32.const 1))
              (else (i32.const 0))))"#,
    );
    let ps = plugins(&[("picky", picky, fast())]).unwrap();
    let e = lab(
        &ps,
        "*filter\n-A FORWARD -m wasm --plugin picky --args nope -j ACCEPT\nCOMMIT\n",
    )
    .unwrap_err();
    assert!(e.contains("plugins.rules:2:") && e.contains("bad args!!"), "{e}");
    assert!(lab(
        &ps,
        "*filter\n-A FORWARD -m wasm --plugin picky --args fine -j ACCEPT\nCOMMIT\n"
    )
    .is_ok());
    let e = lab(&ps, "*filter\n-A FORWARD -m wasm --plugin nosuch -j ACCEPT\nCOMMIT\n").unwrap_err();
    assert!(e.contains("no plugin `nosuch'"), "{e}");
    let e = lab(&ps, "*filter\n-A FORWARD -j WASM --plugin picky\nCOMMIT\n").unwrap_err();
    assert!(e.contains("has no target"), "{e}");
    // Arguments longer than the plugin's buffer are refused, not cut.
    let small = wat(MATCH_UDP).replace("(result i32) i32.const 4096", "(result i32) i32.const 128");
    let ps = plugins(&[("small", small, fast())]).unwrap();
    let huge = "x".repeat(4000);
    let e = lab(
        &ps,
        &format!("*filter\n-A FORWARD -m wasm --plugin small --args {huge} -j ACCEPT\nCOMMIT\n"),
    )
    .unwrap_err();
    assert!(e.contains("4000 bytes"), "{e}");
}

#[test]
fn reload_swaps_plugins_between_packets_and_keeps_state() {
    // A counter in the shared key-value store: each call adds one to key "n" and matches
    // when it was odd before.
    let counting = r#"(module
  (import "rtrouter" "kv_get" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "rtrouter" "kv_set" (func $set (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "n")
  (func (export "rtrouter_abi_version") (result i32) i32.const 1)
  (func (export "rtrouter_buffer") (result i32) i32.const 1024)
  (func (export "rtrouter_buffer_len") (result i32) i32.const 4096)
  (func (export "rtrouter_init") (param i32 i32) (result i32) i32.const 0)
  (func (export "rtrouter_match") (param i32 i32) (result i32) (local $v i32)
    (i32.store (i32.const 16) (i32.const 0))
    (drop (call $get (i32.const 0) (i32.const 1) (i32.const 16) (i32.const 4)))
    (local.set $v (i32.load (i32.const 16)))
    (i32.store (i32.const 16) (i32.add (local.get $v) (i32.const 1)))
    (drop (call $set (i32.const 0) (i32.const 1) (i32.const 16) (i32.const 4)))
    (i32.and (local.get $v) (i32.const 1))))"#;
    let ps1 = plugins(&[("count", counting.into(), fast())]).unwrap();
    let rules = "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m wasm --plugin count -j ACCEPT\nCOMMIT\n";
    let mut l = lab(&ps1, rules).unwrap();
    let got: Vec<bool> = (0..3).map(|_| l.send("lan0", &udp(A, 1, B, 2)).forwarded()).collect();
    assert_eq!(got, [false, true, false]);
    // Reload: a new generation, its store carried over, swapped in between two packets.
    let m = compile(counting.as_bytes()).unwrap();
    let ps2 = Arc::new(Plugins::from_modules(vec![("count".into(), m, fast())], &ps1.kvs()).unwrap());
    let rs = restore(&Ruleset::default(), rules, "r", false).unwrap();
    let v = validate(
        &rs,
        &Env {
            ipsets: Default::default(),
            plugins: Some(ps2.clone()),
        },
    )
    .unwrap();
    l.router.swap_plugins(Some(ps2.clone()), v);
    assert!(
        l.send("lan0", &udp(A, 1, B, 2)).forwarded(),
        "the count went on from 3 (odd): the store survived"
    );
    assert_eq!(
        ps2.get("count").unwrap().stats.calls.load(Ordering::Relaxed),
        1,
        "the new generation ran"
    );
    assert_eq!(
        ps1.get("count").unwrap().stats.calls.load(Ordering::Relaxed),
        3,
        "the old one no longer does"
    );
}

#[test]
fn reloads_under_traffic_lose_no_packet() {
    // Two threads forward UDP through a plugin match while the main thread swaps in a new
    // generation of the plugin and the rules 20 times: every packet is forwarded, and every
    // one was judged by exactly one generation. The deadline is generous: a loaded machine may
    // preempt a sender in the middle of a call, and this test is about reloads, not timeouts.
    let limits = Limits {
        timeout_us: 5_000_000,
        ..Limits::default()
    };
    let module = compile(wat(MATCH_UDP).as_bytes()).unwrap();
    let load = |prev: Option<&Arc<Plugins>>| {
        let kvs = prev.map(|p| p.kvs()).unwrap_or_default();
        Arc::new(Plugins::from_modules(vec![("u".into(), module.clone(), limits)], &kvs).unwrap())
    };
    let rules = "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -p udp -m wasm --plugin u -j ACCEPT\nCOMMIT\n";
    let first = load(None);
    let router = Arc::new(lab(&first, rules).unwrap().router);
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut generations = vec![first];
    let (sent, forwarded) = std::thread::scope(|s| {
        let senders: Vec<_> = (0..2u16)
            .map(|t| {
                let (r, done) = (router.clone(), &done);
                s.spawn(move || {
                    let mut rng = rtrouter::eval::SplitMix(t.into());
                    let mut reply = rtrouter::router::Reply::default();
                    let (mut sent, mut forwarded) = (0usize, 0usize);
                    // At least 200 packets each, and on until the reloads are over.
                    while sent < 200 || !done.load(Ordering::Acquire) {
                        let mut p = udp(A, 1000 + t, B, 53);
                        let meta = rtrouter::router::Meta {
                            now: 5,
                            ingress: rtrouter::router::Ingress::Iface(rtrouter::route::IfaceId(0)),
                            mark: 0,
                            seg: 0,
                            ct: None,
                        };
                        sent += 1;
                        if matches!(
                            r.process(meta, &mut p, &mut reply, &mut rng, &mut ()).disposition,
                            rtrouter::router::Disposition::Forward(_)
                        ) {
                            forwarded += 1;
                        }
                    }
                    (sent, forwarded)
                })
            })
            .collect();
        for _ in 0..20 {
            let next = load(generations.last());
            let rs = restore(&Ruleset::default(), rules, "r", false).unwrap();
            let env = Env {
                ipsets: Default::default(),
                plugins: Some(next.clone()),
            };
            router.swap_plugins(Some(next.clone()), validate(&rs, &env).unwrap());
            generations.push(next);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        done.store(true, Ordering::Release);
        senders
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
    });
    assert!(sent >= 400, "{sent}");
    assert_eq!(forwarded, sent, "no packet was dropped across 20 reloads");
    let calls: u64 = generations
        .iter()
        .map(|g| g.get("u").unwrap().stats.calls.load(Ordering::Relaxed))
        .sum();
    assert_eq!(calls, sent as u64, "each packet met exactly one generation");
    let failures: u64 = generations
        .iter()
        .map(|g| g.get("u").unwrap().stats.failures.load(Ordering::Relaxed))
        .sum();
    assert_eq!(failures, 0);
}

/// The example plugins, when built (`scripts/build-plugins.sh`; the test command builds them
/// first and sets RTROUTER_REQUIRE_PLUGINS=1 so that a missing one fails instead of skipping).
fn example(name: &str) -> Option<Arc<Plugins>> {
    let path = rtrouter_tests::repo_root()
        .join("plugins/target")
        .join(format!("{name}.wasm"));
    if !path.exists() {
        assert!(
            std::env::var_os("RTROUTER_REQUIRE_PLUGINS").is_none(),
            "{} is missing: run scripts/build-plugins.sh",
            path.display()
        );
        println!("SKIP: {} is not built (scripts/build-plugins.sh)", path.display());
        return None;
    }
    let m = rtrouter::plugin::module_from_file(&path).unwrap();
    Some(Arc::new(
        Plugins::from_modules(vec![(name.replace('_', "-"), m, fast())], &Default::default()).unwrap(),
    ))
}

fn dns_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut b = Vec::new();
    rtrouter::packet::build::udp(
        &mut b,
        rtrouter::packet::build::Ip4::new(rtrouter_tests::ip(A), rtrouter_tests::ip("192.0.2.53"), 17),
        5353,
        53,
        &q,
    );
    b
}

#[test]
fn dns_qname_plugin() {
    let Some(ps) = example("dns_qname") else { return };
    let rules =
        "*filter\n-A FORWARD -m wasm --plugin dns-qname --args \"example.com,ads.example.net\" -j REJECT\nCOMMIT\n";
    let mut l = lab(&ps, rules).unwrap();
    assert!(l.send("lan0", &dns_query("www.example.com")).outcome.rejected);
    assert!(l.send("lan0", &dns_query("tracker.ads.example.net")).outcome.rejected);
    assert!(l.send("lan0", &dns_query("badexample.com")).forwarded());
    assert!(l.send("lan0", &dns_query("example.org")).forwarded());
    let e = lab(
        &ps,
        "*filter\n-A FORWARD -m wasm --plugin dns-qname --args \"a..b\" -j DROP\nCOMMIT\n",
    )
    .unwrap_err();
    assert!(e.contains("bad domain suffix"), "{e}");
}

fn tls_hello(host: &str) -> Vec<u8> {
    let mut sn = Vec::new();
    sn.extend_from_slice(&((host.len() + 3) as u16).to_be_bytes());
    sn.push(0);
    sn.extend_from_slice(&(host.len() as u16).to_be_bytes());
    sn.extend_from_slice(host.as_bytes());
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&(sn.len() as u16).to_be_bytes());
    ext.extend_from_slice(&sn);
    let mut hello = vec![3, 3];
    hello.extend_from_slice(&[7; 32]);
    hello.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hello.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&hello);
    let mut rec = vec![22, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    let mut b = Vec::new();
    let ip = rtrouter::packet::build::Ip4::new(rtrouter_tests::ip(A), rtrouter_tests::ip(B), 6);
    rtrouter::packet::build::tcp(
        &mut b,
        ip,
        rtrouter::packet::build::TcpSeg {
            sport: 40000,
            dport: 443,
            seq: 1,
            ack: 1,
            flags: 0x18,
            window: 100,
        },
        &rec,
    );
    b
}

#[test]
fn tls_sni_plugin() {
    let Some(ps) = example("tls_sni") else { return };
    let mut l = lab(&ps, "*filter\n-A FORWARD -p tcp --dport 443 -m wasm --plugin tls-sni --args \"example.com,*.example.org\" -j DROP\nCOMMIT\n").unwrap();
    assert!(l.send("lan0", &tls_hello("example.com")).dropped());
    assert!(l.send("lan0", &tls_hello("cdn.example.org")).dropped());
    assert!(l.send("lan0", &tls_hello("example.net")).forwarded());
    assert!(
        l.send("lan0", &tcp(A, 40000, B, 443, 0x02)).forwarded(),
        "a SYN carries no hello"
    );
}

#[test]
fn ratelimit_plugin_holds_across_worker_threads() {
    let Some(ps) = example("ratelimit") else { return };
    let l = lab(
        &ps,
        "*filter\n-A FORWARD -m wasm --plugin ratelimit --args \"rate=1/h,burst=50\" -j DROP\nCOMMIT\n",
    )
    .unwrap();
    // Four threads, 100 packets each, from one source, at one instant: exactly 50 pass.
    let router = Arc::new(l.router);
    let passed: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|t| {
                let r = router.clone();
                s.spawn(move || {
                    let mut rng = rtrouter::eval::SplitMix(t);
                    let mut reply = rtrouter::router::Reply::default();
                    (0..100)
                        .filter(|i| {
                            let mut p = udp(A, 1000 + (t * 100 + i) as u16, B, 53);
                            let meta = rtrouter::router::Meta {
                                now: 5,
                                ingress: rtrouter::router::Ingress::Iface(rtrouter::route::IfaceId(0)),
                                mark: 0,
                                seg: 0,
                                ct: None,
                            };
                            matches!(
                                r.process(meta, &mut p, &mut reply, &mut rng, &mut ()).disposition,
                                rtrouter::router::Disposition::Forward(_)
                            )
                        })
                        .count()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let st = &ps.get("ratelimit").unwrap().stats;
    assert_eq!(
        passed,
        50,
        "the burst, no more, whatever thread ran each packet (failures {}, over budget {})",
        st.failures.load(Ordering::Relaxed),
        st.over_budget.load(Ordering::Relaxed)
    );
    // Another source has its own bucket.
    let mut l2 = lab(
        &ps,
        "*filter\n-A FORWARD -m wasm --plugin ratelimit --args \"rate=1/h,burst=50\" -j DROP\nCOMMIT\n",
    )
    .unwrap();
    assert!(l2.send("lan0", &udp("10.0.1.77", 1, B, 53)).forwarded());
}

#[test]
fn dscp_target_plugin() {
    let Some(ps) = example("dscp") else { return };
    let mut l = lab(
        &ps,
        "*filter\n-A FORWARD -p udp -j WASM --plugin dscp --args ef\nCOMMIT\n",
    )
    .unwrap();
    let s = l.send("lan0", &udp(A, 1, B, 2));
    assert!(s.forwarded());
    assert_eq!(s.pkt[1] >> 2, 46, "EF");
    assert_eq!(
        rtrouter_tests::independent_checksum_check(&s.pkt),
        Ok(()),
        "the host fixed the checksum"
    );
    assert!(
        lab(&ps, "*filter\n-A FORWARD -j WASM --plugin dscp --args af99\nCOMMIT\n")
            .unwrap_err()
            .contains("unknown DSCP class")
    );
}

#[test]
fn c_plugin_speaks_the_same_abi() {
    let Some(ps) = example("c_port_range") else { return };
    let mut l = lab(
        &ps,
        "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m wasm --plugin c-port-range --args 1000-2000 -j ACCEPT\nCOMMIT\n",
    )
    .unwrap();
    assert!(l.send("lan0", &udp(A, 1, B, 1500)).forwarded());
    assert!(l.send("lan0", &tcp(A, 1, B, 2000, 2)).forwarded());
    assert!(l.send("lan0", &udp(A, 1, B, 2001)).dropped());
    let e = lab(
        &ps,
        "*filter\n-A FORWARD -m wasm --plugin c-port-range --args 5-1 -j ACCEPT\nCOMMIT\n",
    )
    .unwrap_err();
    assert!(e.contains("expected PORT or LOW-HIGH"), "{e}");
}

#[test]
fn plugins_in_a_config_through_replay() {
    let root = rtrouter_tests::repo_root();
    if example("dns_qname").is_none() || example("tls_sni").is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("rtrouter-plugin-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!(
        r#"[[interface]]
name = "lan0"
addresses = ["10.0.1.1/24"]
[[interface]]
name = "wan0"
addresses = ["10.0.2.1/24"]
[[route]]
to = "0.0.0.0/0"
dev = "wan0"
[[plugin]]
name = "dnsq"
path = "{root}/plugins/target/dns_qname.wasm"
[[plugin]]
name = "sni"
path = "{root}/plugins/target/tls_sni.wasm"
on_error = "drop"
[rules]
inline = """
*filter
-A FORWARD -p udp --dport 53 -m wasm --plugin dnsq --args "ads.example.net" -j REJECT
-A FORWARD -p tcp --dport 443 -m wasm --plugin sni --args "*.example.org" -j DROP
COMMIT
"""
"#,
        root = root.display()
    );
    std::fs::write(dir.join("router.toml"), cfg).unwrap();
    let c = rtrouter::config::Config::load(&dir.join("router.toml")).unwrap();
    let router = rtrouter::replay::router_from_config(&c).unwrap();
    let mut w = rtrouter::pcap::Writer::new();
    let q = |name: &str| {
        let mut b = Vec::new();
        let mut m = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        rtrouter::packet::build::udp(
            &mut b,
            rtrouter::packet::build::Ip4::new(rtrouter_tests::ip(A), rtrouter_tests::ip("192.0.2.53"), 17),
            5353,
            53,
            &m,
        );
        b
    };
    w.packet("lan0", 1, &q("x.ads.example.net"));
    w.packet("lan0", 2, &q("example.net"));
    w.packet("lan0", 3, &tls_hello("a.example.org"));
    w.packet("lan0", 4, &tls_hello("example.com"));
    let r = rtrouter::replay::replay(&router, &w.finish(), None, 0).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let verdicts: Vec<&str> = r.records.iter().map(|x| x.verdict()).collect();
    assert_eq!(verdicts, ["reject", "forward", "drop", "forward"]);
    // Saving prints the plugin rules back the same.
    let saved = router.engine().save(false);
    assert!(
        saved.contains("-m wasm --plugin dnsq --args \"ads.example.net\" -j REJECT"),
        "{saved}"
    );
}

#[test]
fn trace_follows_plugin_rules() {
    if example("c_port_range").is_none() {
        return;
    }
    let root = rtrouter_tests::repo_root();
    let dir = std::env::temp_dir().join(format!("rtrouter-plugin-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("router.toml"),
        format!(
            "[[interface]]\nname = \"lan0\"\naddresses = [\"10.0.1.1/24\"]\n[[plugin]]\nname = \"ports\"\npath = \"{}/plugins/target/c_port_range.wasm\"\n[rules]\ninline = \"\"\"\n*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m wasm --plugin ports --args 1000-2000 -j ACCEPT\nCOMMIT\n\"\"\"\n",
            root.display()
        ),
    )
    .unwrap();
    let run = |dst: &str| -> serde_json::Value {
        let o = std::process::Command::new(rtrouter_tests::netns::binary())
            .args(["trace", "--config"])
            .arg(dir.join("router.toml"))
            .args([
                "--from",
                "lan0",
                "--proto",
                "udp",
                "--src",
                "10.0.1.2:5000",
                "--dst",
                dst,
                "--json",
            ])
            .output()
            .expect("runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let hit = run("192.0.2.9:1500");
    let miss = run("192.0.2.9:3000");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(hit["outcomes"][0]["verdict"], "accept", "{hit}");
    assert_eq!(hit["outcomes"][0]["path"][0], "filter/FORWARD#1");
    assert_eq!(miss["outcomes"][0]["verdict"], "drop", "{miss}");
}

#[test]
fn plugin_log_lines_are_rate_limited_like_log() {
    // A match that logs on every call: before, 30,000 lines in 6 s reached the log.
    let import = r#"(import "rtrouter" "log" (func $log (param i32 i32 i32)))"#;
    let body = r#"(data (i32.const 512) "called")
        (func (export "rtrouter_match") (param i32 i32) (result i32)
            (call $log (i32.const 2) (i32.const 512) (i32.const 6)) i32.const 0)"#;
    let ps = plugins(&[("chatty", wat_importing(import, body), Limits { log_rate: 10, ..fast() })]).unwrap();
    let mut l = lab(&ps, "*filter\n-A FORWARD -m wasm --plugin chatty\nCOMMIT\n").unwrap();
    for _ in 0..500 {
        l.send("lan0", &udp(A, 1, B, 2));
    }
    let p = ps.get("chatty").unwrap();
    assert_eq!(p.stats.calls.load(Ordering::Relaxed), 500);
    // At most a burst of 10 (and what accrues while the test runs) got through.
    assert!(p.log_suppressed() >= 470, "{} suppressed", p.log_suppressed());
}

#[test]
fn plugin_random_streams_differ_per_worker_and_follow_the_seed() {
    // A match on the low bit of `random`: before, every thread drew the same stream (seeded
    // from the process id).
    let import = r#"(import "rtrouter" "random" (func $random (result i64)))"#;
    let body = r#"(func (export "rtrouter_match") (param i32 i32) (result i32)
            (i32.wrap_i64 (i64.and (call $random) (i64.const 1))))"#;
    // Two worker threads, one after the other, 64 packets each: the match results.
    let draws = |seed: Option<u64>| -> Vec<Vec<bool>> {
        let ps = plugins(&[("dice", wat_importing(import, body), Limits { seed, ..fast() })]).unwrap();
        let l = lab(
            &ps,
            "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m wasm --plugin dice -j ACCEPT\nCOMMIT\n",
        )
        .unwrap();
        let router = Arc::new(l.router);
        (0..2u64)
            .map(|t| {
                let r = router.clone();
                std::thread::spawn(move || {
                    let mut rng = rtrouter::eval::SplitMix(t);
                    let mut reply = rtrouter::router::Reply::default();
                    (0..64u16)
                        .map(|i| {
                            let mut p = udp(A, 1000 + i, B, 53);
                            let meta = rtrouter::router::Meta {
                                now: 5,
                                ingress: rtrouter::router::Ingress::Iface(rtrouter::route::IfaceId(0)),
                                mark: 0,
                                seg: 0,
                                ct: Some(rtrouter::eval::Ct::Untracked),
                            };
                            matches!(
                                r.process(meta, &mut p, &mut reply, &mut rng, &mut ()).disposition,
                                Disposition::Forward(_)
                            )
                        })
                        .collect::<Vec<bool>>()
                })
                .join()
                .unwrap()
            })
            .collect()
    };
    let a = draws(Some(7));
    assert_ne!(a[0], a[1], "each worker draws its own stream");
    assert!(
        a[0].iter().any(|x| *x) && a[0].iter().any(|x| !*x),
        "draws vary: {:?}",
        a[0]
    );
    assert_eq!(draws(Some(7)), a, "the same router.seed, the same streams");
    assert_ne!(draws(Some(8))[0], a[0], "another seed, other streams");
    let (x, y) = (draws(None), draws(None));
    assert_ne!(x[0], y[0], "unseeded: from the OS");
}

/// The `.cwasm` entries in a cache directory.
fn cache_entries(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(d)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn the_compile_cache_loads_native_code_only_from_a_private_directory_and_a_matching_entry() {
    use rtrouter::plugin::{compile_cached, CACHE_MAX_BYTES};
    use std::os::unix::fs::PermissionsExt;
    let base = std::env::temp_dir().join(format!("rtrouter-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(base.clone());
    let udp_module = wat(MATCH_UDP);
    let tcp_module = wat(r#"(func (export "rtrouter_match") (param i32 i32) (result i32)
        (i32.eq (i32.load8_u (i32.const 1049)) (i32.const 6)))"#);

    // A private directory is made 0700 and used.
    let good = base.join("good");
    compile_cached(udp_module.as_bytes(), Some(&good), CACHE_MAX_BYTES).unwrap();
    assert_eq!(std::fs::metadata(&good).unwrap().permissions().mode() & 0o777, 0o700);
    let entries = cache_entries(&good);
    assert_eq!(entries.len(), 1);

    // A directory others may write to, a symbolic link, another user's directory: not used
    // (the module still compiles, nothing is read or written there).
    let open = base.join("open");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    compile_cached(udp_module.as_bytes(), Some(&open), CACHE_MAX_BYTES).unwrap();
    assert!(
        cache_entries(&open).is_empty(),
        "a world-writable directory is not used"
    );
    let link = base.join("link");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    compile_cached(tcp_module.as_bytes(), Some(&link), CACHE_MAX_BYTES).unwrap();
    assert_eq!(cache_entries(&good).len(), 1, "a symlink to a cache is not followed");
    if nix::unistd::geteuid().is_root() {
        let theirs = base.join("theirs");
        std::fs::create_dir_all(&theirs).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
        nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        compile_cached(udp_module.as_bytes(), Some(&theirs), CACHE_MAX_BYTES).unwrap();
        assert!(
            cache_entries(&theirs).is_empty(),
            "another user's directory is not used"
        );
    }

    // A poisoned entry: the TCP module's compiled code put where the UDP module's belongs.
    // It does not carry the UDP module's hash, so it is compiled again, not run.
    let other = base.join("other");
    compile_cached(tcp_module.as_bytes(), Some(&other), CACHE_MAX_BYTES).unwrap();
    let tcp_entry = std::fs::read(&cache_entries(&other)[0]).unwrap();
    std::fs::write(&entries[0], &tcp_entry).unwrap();
    let m = compile_cached(udp_module.as_bytes(), Some(&good), CACHE_MAX_BYTES).unwrap();
    let ps = Arc::new(Plugins::from_modules(vec![("udp".into(), m, fast())], &Default::default()).unwrap());
    let mut l = lab(
        &ps,
        "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m wasm --plugin udp -j ACCEPT\nCOMMIT\n",
    )
    .unwrap();
    assert!(
        l.send("lan0", &udp(A, 1, B, 2)).forwarded(),
        "the module is the UDP one"
    );
    assert!(l.send("lan0", &tcp(A, 1, B, 80, 2)).dropped());
    assert_ne!(
        std::fs::read(&entries[0]).unwrap(),
        tcp_entry,
        "the poisoned entry was replaced"
    );

    // Old entries are evicted beyond the size limit.
    let small = base.join("small");
    let one = tcp_entry.len() as u64;
    for body in [
        MATCH_UDP,
        r#"(func (export "rtrouter_match") (param i32 i32) (result i32) i32.const 1)"#,
        r#"(func (export "rtrouter_match") (param i32 i32) (result i32) i32.const 0)"#,
    ] {
        compile_cached(wat(body).as_bytes(), Some(&small), one * 2 - 1).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let kept: u64 = cache_entries(&small)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(kept < one * 2, "{kept} bytes kept, limit {}", one * 2 - 1);
    assert!(!cache_entries(&small).is_empty(), "the newest entry stays");
}

#[test]
fn plugin_load_errors_name_the_entrys_line() {
    let dir = std::env::temp_dir().join(format!("rtrouter-plugin-err-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("router.toml");
    std::fs::write(dir.join("bad.wasm"), b"\0asm not really").unwrap();
    std::fs::write(
        &cfg,
        "[[interface]]\nname = \"lan0\"\n\n[[plugin]]\nname = \"missing\"\npath = \"nope.wasm\"\n",
    )
    .unwrap();
    let c = rtrouter::config::Config::load(&cfg).unwrap();
    let e = rtrouter::plugin::load(&c, None).unwrap_err();
    assert_eq!((e.0[0].line, e.0[0].col), (5, 8), "{e}");
    assert!(e.0[0].msg.contains("cannot read"), "{e}");
    std::fs::write(&cfg, "[[plugin]]\nname = \"first\"\npath = \"bad.wasm\"\n").unwrap();
    let c = rtrouter::config::Config::load(&cfg).unwrap();
    let e = rtrouter::plugin::load(&c, None).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!((e.0[0].line, e.0[0].col), (2, 8), "{e}");
}

#[test]
fn load_time_calls_have_their_own_longer_deadline() {
    // An `rtrouter_init` that works for a few milliseconds, with a per-packet deadline of
    // 100 µs: before, init ran under the packet deadline and the plugin was refused (or not,
    // depending on how busy the machine was).
    let slow_init = r#"(module
  (memory (export "memory") 1)
  (func (export "rtrouter_abi_version") (result i32) i32.const 1)
  (func (export "rtrouter_buffer") (result i32) i32.const 1024)
  (func (export "rtrouter_buffer_len") (result i32) i32.const 4096)
  (func (export "rtrouter_init") (param i32 i32) (result i32) (local $i i32)
    (local.set $i (i32.const 20000000))
    (loop $l (local.set $i (i32.sub (local.get $i) (i32.const 1))) (br_if $l (local.get $i)))
    i32.const 0)
  (func (export "rtrouter_match") (param i32 i32) (result i32)
    (i32.eq (i32.load8_u (i32.const 1049)) (i32.const 17))))"#;
    let ps = plugins(&[(
        "slowinit",
        slow_init.to_string(),
        Limits {
            timeout_us: 100,
            ..fast()
        },
    )])
    .unwrap();
    lab(
        &ps,
        "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m wasm --plugin slowinit -j ACCEPT\nCOMMIT\n",
    )
    .expect("a slow rtrouter_init is within the load deadline");
    assert_eq!(ps.get("slowinit").unwrap().stats.failures.load(Ordering::Relaxed), 0);
    assert!(!ps.get("slowinit").unwrap().disabled.load(Ordering::Relaxed));
}

#[test]
fn plugins_that_fail_now_and_then_or_are_slow_are_disabled_by_their_budget() {
    // Fails every other call: the consecutive-failure count never reaches disable_after, but
    // the failures per second do.
    let flaky = r#"(global $n (mut i32) (i32.const 0))
        (func (export "rtrouter_match") (param i32 i32) (result i32)
            (global.set $n (i32.add (global.get $n) (i32.const 1)))
            (if (i32.and (global.get $n) (i32.const 1)) (then unreachable))
            i32.const 1)"#;
    let ps = plugins(&[(
        "flaky",
        wat(flaky),
        Limits {
            disable_after: 1000,
            max_failures_per_sec: 10,
            ..fast()
        },
    )])
    .unwrap();
    let mut l = lab(&ps, "*filter\n-A FORWARD -m wasm --plugin flaky -j ACCEPT\nCOMMIT\n").unwrap();
    for _ in 0..40 {
        l.send("lan0", &udp(A, 1, B, 2));
    }
    let p = ps.get("flaky").unwrap();
    assert!(p.disabled.load(Ordering::Relaxed), "disabled by its failure budget");
    assert_eq!(p.stats.over_budget.load(Ordering::Relaxed), 1);
    assert_eq!(
        p.stats.failures.load(Ordering::Relaxed),
        11,
        "the 11th failure in a second was one too many"
    );
    // A plugin that takes milliseconds per call: disabled once it used its share of a core
    // (5 %: 50 ms in a second).
    let slow = r#"(func (export "rtrouter_match") (param i32 i32) (result i32) (local $i i32)
            (local.set $i (i32.const 3000000))
            (loop $l (local.set $i (i32.sub (local.get $i) (i32.const 1))) (br_if $l (local.get $i)))
            i32.const 1)"#;
    let ps = plugins(&[(
        "slow",
        wat(slow),
        Limits {
            timeout_us: 200_000,
            max_cpu_percent: 5,
            ..fast()
        },
    )])
    .unwrap();
    let mut l = lab(&ps, "*filter\n-A FORWARD -m wasm --plugin slow -j ACCEPT\nCOMMIT\n").unwrap();
    let p = ps.get("slow").unwrap();
    for _ in 0..400 {
        if p.disabled.load(Ordering::Relaxed) {
            break;
        }
        l.send("lan0", &udp(A, 1, B, 2));
    }
    assert!(p.disabled.load(Ordering::Relaxed), "disabled by its time budget");
    assert_eq!(p.stats.over_budget.load(Ordering::Relaxed), 1);
    assert_eq!(
        p.stats.failures.load(Ordering::Relaxed),
        0,
        "it never failed, it was only slow"
    );
}

/// Validating the same rules again and again (every change re-validates what it touches)
/// does not use up a plugin's 65,536 handles: rules with the same `--args` share one.
#[test]
fn revalidation_does_not_use_up_handles() {
    let ps = plugins(&[("udp", wat(MATCH_UDP), fast())]).unwrap();
    let env = Env {
        ipsets: Default::default(),
        plugins: Some(ps.clone()),
    };
    let rules = "*filter\n-A FORWARD -m wasm --plugin udp --args a -j ACCEPT\n-A FORWARD -m wasm --plugin udp --args b -j DROP\nCOMMIT\n";
    let rs = restore(&Ruleset::default(), rules, "plugins.rules", false).unwrap();
    for n in 0..70_000 {
        validate(&rs, &env).unwrap_or_else(|e| panic!("validation {n}: {e}"));
    }
    // And a rule whose `--args` differ still gets a handle of its own and works.
    let mut l = lab(
        &ps,
        "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m wasm --plugin udp --args c -j ACCEPT\nCOMMIT\n",
    )
    .unwrap();
    assert!(l.send("lan0", &udp(A, 1, B, 2)).forwarded());
}

/// A binding whose last rule is gone frees its handle, which is bound again for other
/// `--args` (and initialised again in every instance): a router whose rules keep changing never
/// runs out of a plugin's 65,536 handles, and a reused handle never keeps its old rule's state.
#[test]
fn a_binding_no_rule_holds_is_freed_and_its_handle_bound_again() {
    // Keeps the first byte of a rule's --args per handle; the match holds when it is '1'.
    let module = r#"(module
  (memory (export "memory") 1)
  (func (export "rtrouter_abi_version") (result i32) i32.const 1)
  (func (export "rtrouter_buffer") (result i32) i32.const 1024)
  (func (export "rtrouter_buffer_len") (result i32) i32.const 4096)
  (func (export "rtrouter_init") (param $h i32) (param $n i32) (result i32)
    (i32.store8 (i32.add (i32.const 64) (i32.and (local.get $h) (i32.const 511))) (i32.load8_u (i32.const 1024)))
    i32.const 0)
  (func (export "rtrouter_match") (param $h i32) (param i32) (result i32)
    (i32.eq (i32.load8_u (i32.add (i32.const 64) (i32.and (local.get $h) (i32.const 511)))) (i32.const 49))))"#;
    let ps = plugins(&[("arg", module.to_string(), fast())]).unwrap();
    let env = Env {
        ipsets: Default::default(),
        plugins: Some(ps.clone()),
    };
    // 70,000 generations, each with a rule of its own arguments, each gone before the next.
    for n in 0..70_000 {
        let rules = format!("*filter\n-A FORWARD -m wasm --plugin arg --args x{n} -j ACCEPT\nCOMMIT\n");
        let rs = restore(&Ruleset::default(), &rules, "plugins.rules", false).unwrap();
        validate(&rs, &env).unwrap_or_else(|e| panic!("generation {n}: {e}"));
    }
    // A rule's handle, once free, serves the next rule with that rule's arguments.
    let rule = |a: &str| {
        format!("*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m wasm --plugin arg --args {a} -j ACCEPT\nCOMMIT\n")
    };
    let mut l = lab(&ps, &rule("1")).unwrap();
    assert!(l.send("lan0", &udp(A, 1, B, 2)).forwarded(), "--args 1 matches");
    drop(l);
    let mut l = lab(&ps, &rule("0")).unwrap();
    assert!(
        !l.send("lan0", &udp(A, 1, B, 2)).forwarded(),
        "--args 0 on the same handle does not"
    );
    // While a rule holds a binding, an identical rule shares it.
    let mut l2 = lab(&ps, &rule("0")).unwrap();
    assert!(!l2.send("lan0", &udp(A, 1, B, 2)).forwarded());
    assert!(!l.send("lan0", &udp(A, 1, B, 2)).forwarded());
}

#[test]
fn a_failing_plugin_shows_in_trace_with_its_message() {
    use rtrouter::trace::{trace, CtSpec, Spec, Step};
    let trapping = wat(r#"(func (export "rtrouter_match") (param i32 i32) (result i32) unreachable)"#);
    let ps = plugins(&[("boom", trapping, fast())]).unwrap();
    let rs = restore(
        &Ruleset::default(),
        "*filter\n-A FORWARD -m wasm --plugin boom -j DROP\nCOMMIT\n",
        "t",
        false,
    )
    .unwrap();
    let v = validate(
        &rs,
        &Env {
            ipsets: Default::default(),
            plugins: Some(ps.clone()),
        },
    )
    .unwrap();
    let spec = Spec {
        from: Some("lan0".into()),
        proto: 17,
        src: A.parse().unwrap(),
        sport: 1,
        dst: B.parse().unwrap(),
        dport: 2,
        ctstate: CtSpec::New,
        mark: 0,
        tcp_flags: 0,
        icmp: (8, 0),
        ttl: 64,
        length: None,
        payload: None,
    };
    let out = trace(
        &v,
        &Default::default(),
        &rtrouter_tests::topology(),
        &spec,
        Some(ps as Arc<dyn rtrouter::eval::PluginHost>),
    )
    .unwrap();
    let events: Vec<&String> = out[0]
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("plugin boom failed: ") && e.contains("unreachable")),
        "{events:?}"
    );
    assert_eq!(out[0].verdict, "accept", "a failed match counts as no match (on_error)");
}
