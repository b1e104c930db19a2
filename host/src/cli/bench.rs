//! `rtrouter bench`: the operator's answer to "what will this ruleset cost me?". Loads and
//! compiles a ruleset, then sends packets (the `trace --packets` format) through the whole
//! core (`Router::process`) over and over, and prints one JSON object:
//!
//! - `rules`: rules loaded; `load_ms`: reading, parsing and validating them; `compile_ms`:
//!   building the classifiers and compiling every match; `program_bytes`: heap bytes of the
//!   classifiers; `rss_bytes`: how much the process grew from before loading to after
//!   compiling (the validated rules, the compiled matches, the classifiers);
//! - `new_flow_ns`: median ns per packet when each packet is a connection's first (its
//!   conntrack state fixed to NEW, so every table, the NAT decision and the endpoint choice
//!   run each time); `established_ns`: median ns per packet of a connection conntrack
//!   already tracks (each packet's flow is opened and answered first; `null` when none could
//!   be, e.g. every packet is dropped);
//! - `engine`, `packets`, `seconds`.

use super::{load, packet_lines, trace_topology, SpecText};
use anyhow::Context as _;
use clap::Args;
use rtrouter::eval::state::IpSets;
use rtrouter::eval::{Ct, CtInfo, EngineKind, SplitMix};
use rtrouter::router::{Ingress, Meta, Reply, Router};
use rtrouter::ruleset::ValidRuleset;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    source: super::Source,
    /// Packets, one JSON object a line as `trace --packets` reads them (`-` for stdin).
    #[arg(long)]
    packets: PathBuf,
    #[arg(long, default_value = "compiled", value_parser = super::parse_engine)]
    engine: EngineKind,
    /// How long to measure, split between new-flow and established packets.
    #[arg(long, default_value = "4")]
    seconds: f64,
}

/// Resident bytes of this process (`/proc/self/statm`), 0 where it cannot be read.
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Median ns per packet over batches of at least 1,000 packets, for `budget`.
fn measure(
    budget: Duration,
    packets: &[(Ingress, Vec<u8>, Option<Ct>)],
    r: &Router,
    rng: &mut SplitMix,
    now: &mut u64,
) -> f64 {
    let mut buf = Vec::with_capacity(65536);
    let mut reply = Reply {
        buf: Vec::with_capacity(65536),
        disposition: None,
        copies: Vec::new(),
    };
    let per_batch = packets.len() * 1000usize.div_ceil(packets.len());
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 5 || (start.elapsed() < budget && samples.len() < 100_000) {
        let t = Instant::now();
        for (ingress, p, ct) in packets.iter().cycle().take(per_batch) {
            buf.clear();
            buf.extend_from_slice(p);
            *now += 1000;
            std::hint::black_box(r.process(
                Meta {
                    now: *now,
                    ingress: *ingress,
                    mark: 0,
                    seg: 0,
                    ct: *ct,
                },
                &mut buf,
                &mut reply,
                rng,
                &mut (),
            ));
        }
        samples.push(t.elapsed().as_nanos() as f64 / per_batch as f64);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

pub fn run(a: BenchArgs) -> anyhow::Result<ExitCode> {
    let rss0 = rss();
    let t = Instant::now();
    let (rules, cfg, plugins) = match load(&a.source) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let rule_count = rules.rule_count();
    let rules = Arc::new(rules);
    let name = a.packets.display().to_string();
    let base = SpecText {
        proto: "tcp".into(),
        ctstate: "NEW".into(),
        tcp_flags: "SYN".into(),
        icmp_type: "8/0".into(),
        ttl: 64,
        ..SpecText::default()
    };
    let mut specs = Vec::new();
    for (n, line) in packet_lines(&a.packets)? {
        specs.push(
            base.overlay(&line)
                .and_then(|t| t.spec())
                .with_context(|| format!("{name}:{n}"))?,
        );
    }
    anyhow::ensure!(!specs.is_empty(), "{name}: no packets");
    // As `trace`: a forwarded packet with no route leaves through a stand-in interface.
    let topo = rtrouter::trace::with_unknown_route(trace_topology(cfg.as_ref(), &[], &[], false, &specs)?);
    let ipsets = cfg.as_ref().map(IpSets::from_config).unwrap_or_default();
    let r = Router::new(topo, ValidRuleset::empty(), ipsets, 10).with_engine(a.engine);
    let r = match &cfg {
        Some(c) => r.with_conntrack(rtrouter::conntrack::Table::from_config(&c.conntrack)),
        None => r,
    };
    r.swap_plugins(
        plugins.map(|p| p as Arc<dyn rtrouter::eval::PluginHost>),
        ValidRuleset::empty(),
    );
    // Compiling: the classifiers, then the engine (every match compiled, its state made).
    let t = Instant::now();
    let engine = rtrouter::eval::Engine::with_kind(rules, r.shared(), r.engine().ipsets().clone(), &r.topo, a.engine);
    let program_bytes = engine.program_bytes();
    r.swap_engine(engine);
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    let rss_bytes = rss().saturating_sub(rss0);

    let mut new_flow = Vec::new();
    for (n, s) in specs.iter().enumerate() {
        let ingress = match &s.from {
            Some(f) => Ingress::Iface(r.topo.iface_id(f).context("interface added above")?),
            None => Ingress::Local,
        };
        let p = rtrouter::trace::build_packet(s).map_err(|e| anyhow::anyhow!("{name}: packet {}: {e}", n + 1))?;
        let h = rtrouter::packet::parse(&p).map_err(|e| anyhow::anyhow!("{name}: packet {}: {}", n + 1, e.name()))?;
        new_flow.push((ingress, p, Some(Ct::Tracked(CtInfo::new_from(&h)))));
    }
    let mut rng = SplitMix(1);
    let mut now = 1_000_000_000u64;
    let half = Duration::from_secs_f64(a.seconds.max(0.01) / 2.0);
    let new_flow_ns = measure(half, &new_flow, &r, &mut rng, &mut now);
    let established: Vec<_> = new_flow
        .iter()
        .filter_map(|(ingress, p, _)| {
            now += 1000;
            rtrouter::gen::establish(&r, *ingress, p, now, &mut rng).map(|ack| (*ingress, ack, None))
        })
        .collect();
    let established_ns = (!established.is_empty()).then(|| measure(half, &established, &r, &mut rng, &mut now));
    let round = |x: f64| (x * 10.0).round() / 10.0;
    outln!(
        "{}",
        serde_json::json!({
            "rules": rule_count,
            "load_ms": round(load_ms),
            "compile_ms": round(compile_ms),
            "program_bytes": program_bytes,
            "rss_bytes": rss_bytes,
            "new_flow_ns": round(new_flow_ns),
            "established_ns": established_ns.map(round),
            "engine": a.engine.name(),
            "packets": specs.len(),
            "seconds": a.seconds,
        })
    );
    Ok(ExitCode::SUCCESS)
}

/// `rtrouter generate KIND SIZE [--packets FILE]`: the rulesets of `rtrouter::gen` on stdout.
/// `ipv6`: the same workload as ip6tables rules and IPv6 packets (addresses mapped by
/// [`rtrouter::gen::v6_of`]).
pub fn generate(
    kind: &str,
    size: usize,
    packets: Option<&std::path::Path>,
    seed: u64,
    ipv6: bool,
) -> anyhow::Result<ExitCode> {
    use rtrouter::eval::Chance;
    use rtrouter::gen;
    use std::io::Write as _;
    let mut rng = SplitMix(seed);
    let (rules, pkts): (String, Vec<Vec<u8>>) = match kind {
        "kube-proxy" => {
            anyhow::ensure!(size > 0, "kube-proxy: at least one service");
            let pkts = (0..1024)
                .map(|_| {
                    let client = std::net::Ipv4Addr::new(10, 0, 1, 2 + rng.below(200) as u8);
                    let svc = gen::service_ip(rng.below(size as u32) as usize);
                    gen::tcp_syn(client, 1024 + rng.below(60000) as u16, svc, 80)
                })
                .collect();
            (gen::kube_proxy(size), pkts)
        }
        "acl" => {
            anyhow::ensure!(size > 0, "acl: at least one rule");
            gen::acl(size, 1024, &mut rng)
        }
        _ => anyhow::bail!("unknown kind `{kind}': kube-proxy or acl"),
    };
    let (rules, pkts) = if ipv6 {
        (
            gen::ruleset_to_v6(&rules),
            pkts.iter().map(|p| gen::packet_to_v6(p)).collect(),
        )
    } else {
        (rules, pkts)
    };
    let mut out = std::io::stdout().lock();
    if out.write_all(rules.as_bytes()).is_err() {
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(path) = packets {
        let mut lines = String::new();
        for p in &pkts {
            let h = rtrouter::packet::parse(p).map_err(|r| anyhow::anyhow!("generated packet: {}", r.name()))?;
            let mut o = serde_json::json!({
                "from": "lan0",
                "src": h.src.to_string(),
                "dst": h.dst.to_string(),
                "proto": h.proto,
            });
            if let Some((sport, dport)) = h.ports() {
                o["sport"] = sport.into();
                o["dport"] = dport.into();
            }
            lines.push_str(&o.to_string());
            lines.push('\n');
        }
        std::fs::write(path, lines).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
