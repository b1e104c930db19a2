//! The router's counters for Prometheus, served over HTTP by the local stack on the address
//! `[metrics] listen` names (and on `host_listen`): gathered at each scrape and encoded by
//! `prometheus-client`, as text format 0.0.4 or, for a scraper whose `Accept` asks for it,
//! OpenMetrics 1.0.0.

use super::Dataplane;
use crate::packet::DropReason;
use crate::ruleset::Hook;
use std::sync::atomic::Ordering;

/// A sample's value.
#[derive(Debug, Clone, Copy)]
enum Val {
    U(u64),
    I(i64),
    F(f64),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::I(v)
    }
}

impl From<u64> for Val {
    fn from(v: u64) -> Val {
        Val::U(v)
    }
}

impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::F(v)
    }
}

/// One metric family: its name (without a counter's `_total`, which the encoders add), help,
/// type and samples with their labels.
#[derive(Debug)]
struct Fam {
    name: String,
    help: String,
    counter: bool,
    samples: Vec<(Vec<(String, String)>, Val)>,
}

/// A scrape's families, gathered from the router's counters, then handed to
/// `prometheus-client` to encode (which escapes label values, names counters and writes the
/// format the scraper asked for).
#[derive(Debug, Default)]
struct Scrape(Vec<Fam>);

impl Scrape {
    fn fam(&mut self, name: &str, kind: &str, help: &str) {
        let counter = kind == "counter";
        let name = if counter {
            name.strip_suffix("_total").unwrap_or(name)
        } else {
            name
        };
        self.0.push(Fam {
            name: name.to_string(),
            help: help.to_string(),
            counter,
            samples: Vec::new(),
        });
    }

    /// A sample of the family begun last.
    fn sample(&mut self, labels: &[(&str, &str)], v: impl Into<Val>) {
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.push(labels, v.into());
    }

    fn push(&mut self, labels: Vec<(String, String)>, v: Val) {
        if let Some(f) = self.0.last_mut() {
            f.samples.push((labels, v));
        }
    }
}

impl prometheus_client::collector::Collector for Scrape {
    fn encode(&self, mut enc: prometheus_client::encoding::DescriptorEncoder) -> std::fmt::Result {
        use prometheus_client::metrics::MetricType;
        for f in &self.0 {
            let kind = if f.counter {
                MetricType::Counter
            } else {
                MetricType::Gauge
            };
            let mut m = enc.encode_descriptor(&f.name, &f.help, None, kind)?;
            for (labels, v) in &f.samples {
                let mut e = m.encode_family(labels)?;
                match (f.counter, *v) {
                    (true, Val::U(v)) => {
                        e.encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&v, None)?
                    }
                    (true, Val::F(v)) => {
                        e.encode_counter::<prometheus_client::encoding::NoLabelSet, _, f64>(&v, None)?
                    }
                    (false, Val::U(v)) => e.encode_gauge(&v)?,
                    (_, Val::I(v)) => e.encode_gauge(&v)?,
                    (false, Val::F(v)) => e.encode_gauge(&v)?,
                }
            }
        }
        Ok(())
    }
}

/// A rule's identity that does not change with its position: FNV-1a of its canonical text.
fn rule_id(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The standard process metrics (as the Prometheus client libraries export them), from
/// /proc/self: CPU time, resident and virtual memory, open descriptors and their limit,
/// start time.
fn process(o: &mut Scrape) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold blanks), numbered from 3 as proc(5).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, r)| r.split_whitespace().collect());
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    if let (Some(u), Some(k)) = (field(14), field(15)) {
        o.fam(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
        );
        o.sample(&[], (u + k) as f64 / ticks);
    }
    if let Some(rss) = field(24) {
        o.fam(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        o.sample(&[], rss * page);
    }
    if let Some(vsz) = field(23) {
        o.fam("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        o.sample(&[], vsz);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        o.fam("process_open_fds", "gauge", "Open file descriptors.");
        o.sample(&[], fds.count() as u64);
    }
    let max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
    });
    if let Some(soft) = max_fds {
        o.fam("process_max_fds", "gauge", "The limit on open file descriptors.");
        o.sample(&[], soft);
    }
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<u64>().ok()))
    });
    if let (Some(start), Some(boot)) = (field(22), boot) {
        o.fam(
            "process_start_time_seconds",
            "gauge",
            "Start time since the Unix epoch, in seconds.",
        );
        o.sample(&[], boot as f64 + start as f64 / ticks);
    }
}

/// The exposition formats a scraper may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus' text format 0.0.4 (the default).
    Text,
    /// OpenMetrics 1.0.0 text, for a request whose `Accept` names
    /// `application/openmetrics-text`.
    OpenMetrics,
}

impl Format {
    /// The format an HTTP request asks for with its `Accept` header.
    pub fn of_request(req: &[u8]) -> Format {
        let text = String::from_utf8_lossy(req).to_ascii_lowercase();
        let open = text
            .lines()
            .filter_map(|l| l.strip_prefix("accept:"))
            .any(|v| v.contains("application/openmetrics-text"));
        if open {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Every counter, in the format asked for.
pub fn render_as(dp: &Dataplane, format: Format) -> String {
    let mut reg = prometheus_client::registry::Registry::default();
    reg.register_collector(Box::new(gather(dp)));
    let mut out = String::with_capacity(8192);
    let res = match format {
        Format::Text => prometheus_client::encoding::prometheus_text::encode(&mut out, &reg),
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &reg),
    };
    if let Err(e) = res {
        tracing::warn!("metrics: encoding failed: {e}");
    }
    out
}

/// The families of one scrape.
fn gather(dp: &Dataplane) -> Scrape {
    let r = &dp.router;
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut o = Scrape::default();
    process(&mut o);
    o.fam("rtrouter_build_info", "gauge", "The running rtrouter: its version.");
    o.sample(&[("version", env!("CARGO_PKG_VERSION"))], 1u64);
    o.fam(
        "rtrouter_ruleset_changes_total",
        "counter",
        "Changes of the ruleset (restore, reload, flush-all, front-end commits) by result.",
    );
    let c = &dp.control;
    o.sample(&[("result", "ok")], g(&c.changes_ok));
    o.sample(&[("result", "failed")], g(&c.changes_failed));
    o.fam(
        "rtrouter_ruleset_last_change_timestamp_seconds",
        "gauge",
        "When the ruleset last changed (0: not since the start), as kube-proxy's sync_proxy_rules_last_timestamp_seconds.",
    );
    o.sample(&[], g(&c.last_change));
    for (name, help, pick) in [
        (
            "rtrouter_interface_rx_packets_total",
            "Packets read from the interface.",
            0,
        ),
        ("rtrouter_interface_rx_bytes_total", "Bytes read from the interface.", 1),
        (
            "rtrouter_interface_tx_packets_total",
            "Packets written to the interface.",
            2,
        ),
        (
            "rtrouter_interface_tx_bytes_total",
            "Bytes written to the interface.",
            3,
        ),
        (
            "rtrouter_interface_tx_dropped_total",
            "Packets that could not be written.",
            4,
        ),
        (
            "rtrouter_interface_rx_super_packets_total",
            "Super-packets (TCP/UDP segmentation offload) read from the interface.",
            5,
        ),
        (
            "rtrouter_interface_tx_super_packets_total",
            "Super-packets written whole to the interface.",
            6,
        ),
        (
            "rtrouter_interface_super_packets_cut_total",
            "Super-packets read from the interface that were cut into segments in software.",
            7,
        ),
    ] {
        o.fam(name, "counter", help);
        for (i, c) in dp.counters.iter().enumerate() {
            let v = [
                &c.rx_packets,
                &c.rx_bytes,
                &c.tx_packets,
                &c.tx_bytes,
                &c.tx_dropped,
                &c.rx_super,
                &c.tx_super,
                &c.cut,
            ][pick];
            o.sample(&[("interface", &r.topo.ifaces[i].name)], g(v));
        }
    }
    o.fam(
        "rtrouter_tun_kernel_dropped_total",
        "counter",
        "Packets the kernel dropped at a TUN device: to_router when rtrouter did not read its queue in time (tx_dropped), from_router on the way back (rx_dropped).",
    );
    for (name, k) in dp.kernel_counters() {
        if let Some(k) = k {
            o.sample(&[("interface", &name), ("direction", "to_router")], k.tx_dropped);
            o.sample(&[("interface", &name), ("direction", "from_router")], k.rx_dropped);
        }
    }
    if let Some(ps) = crate::eval::state::lock(&dp.plugins).as_ref() {
        o.fam("rtrouter_plugin_calls_total", "counter", "Calls into each wasm plugin.");
        for p in &ps.plugins {
            o.sample(&[("plugin", &p.name)], g(&p.stats.calls));
        }
        o.fam(
            "rtrouter_plugin_failures_total",
            "counter",
            "Failed plugin calls (traps, timeouts, memory).",
        );
        for p in &ps.plugins {
            o.sample(&[("plugin", &p.name)], g(&p.stats.failures));
        }
        o.fam(
            "rtrouter_plugin_disabled",
            "gauge",
            "1 while a plugin is disabled (until reload).",
        );
        for p in &ps.plugins {
            o.sample(&[("plugin", &p.name)], u64::from(p.disabled.load(Ordering::Relaxed)));
        }
        o.fam(
            "rtrouter_plugin_counter",
            "gauge",
            "A plugin's own counters (counter_add).",
        );
        for p in &ps.plugins {
            for (i, v) in p.stats.user.iter().enumerate() {
                let v = v.load(Ordering::Relaxed);
                if v != 0 {
                    o.sample(&[("plugin", &p.name), ("index", &i.to_string())], v);
                }
            }
        }
    }
    o.fam("rtrouter_packets_total", "counter", "Packets by outcome.");
    for (what, v) in [
        ("forwarded", &r.stats.forwarded),
        ("delivered", &r.stats.delivered),
        ("replies", &r.stats.replies),
    ] {
        o.sample(&[("outcome", what)], g(v));
    }
    o.fam(
        "rtrouter_fragmented_total",
        "counter",
        "Packets larger than the egress MTU sent as fragments.",
    );
    o.sample(&[], g(&r.stats.frag_ok));
    o.fam("rtrouter_fragments_total", "counter", "Fragments made.");
    o.sample(&[], g(&r.stats.frag_creates));
    o.fam(
        "rtrouter_reassembly_total",
        "counter",
        "Reassembly before the rules (IPv4 and IPv6): fragments taken, datagrams made, failures.",
    );
    let ds = &r.defrag.stats;
    for (what, v) in [
        ("fragments", &ds.fragments),
        ("reassembled", &ds.reassembled),
        ("failed", &ds.failed),
        ("timeouts", &ds.timeouts),
        ("overlaps", &ds.overlaps),
    ] {
        o.sample(&[("event", what)], g(v));
    }
    o.fam("rtrouter_drops_total", "counter", "Dropped packets by reason.");
    for reason in DropReason::ALL {
        o.sample(&[("reason", reason.name())], r.stats.drop_count(reason));
    }
    let ct = &r.conntrack;
    o.fam("rtrouter_conntrack_entries", "gauge", "Connections in the table.");
    o.sample(&[], ct.len() as u64);
    o.fam("rtrouter_conntrack_max_entries", "gauge", "The table's size limit.");
    o.sample(&[], ct.max as u64);
    o.fam("rtrouter_conntrack_events_total", "counter", "Conntrack events.");
    for (what, v) in [
        ("inserted", &ct.stats.inserted),
        ("insert_failed", &ct.stats.insert_failed),
        ("clash_resolved", &ct.stats.clash_resolved),
        ("early_drop", &ct.stats.early_drop),
        ("drop_full", &ct.stats.drop_full),
        ("expired", &ct.stats.expired),
        ("invalid", &ct.stats.invalid),
    ] {
        o.sample(&[("event", what)], g(v));
    }
    if dp.config.metrics.per_rule == Some(false) {
        return o;
    }
    // Per rule, of both families (ip6tables' with family="ipv6").
    let mut bytes = Vec::new();
    o.fam(
        "rtrouter_rule_packets_total",
        "counter",
        "Packets each rule matched: by position, by a stable id (a hash of the rule's text) and by its comment.",
    );
    for family in [crate::ruleset::Family::V4, crate::ruleset::Family::V6] {
        let eng = r.engine_of(family);
        for t in eng.rules.tables() {
            for c in t.chains() {
                let table = t.kind.to_string();
                for (i, rule) in c.rules().iter().enumerate() {
                    let (p, b) = rule.counter.get();
                    let mut labels = vec![
                        ("table".to_string(), table.clone()),
                        ("chain".to_string(), c.name().to_string()),
                        ("rule".to_string(), (i + 1).to_string()),
                        ("id".to_string(), rule_id(&rule.save_line(c.name(), None))),
                    ];
                    let comment = rule.matches.iter().find_map(|m| match m {
                        crate::ruleset::matches::Match::Comment(cm) => Some(cm.0.clone()),
                        _ => None,
                    });
                    if let Some(cm) = comment {
                        labels.push(("comment".to_string(), cm));
                    }
                    if family == crate::ruleset::Family::V6 {
                        labels.push(("family".to_string(), "ipv6".to_string()));
                    }
                    o.push(labels.clone(), Val::U(p));
                    bytes.push((labels, Val::U(b)));
                }
                if let Some(h) = Hook::from_chain_name(c.name()).filter(|_| c.policy().is_some()) {
                    let (p, _) = eng.policy_counters(t.kind, h);
                    let mut labels = vec![
                        ("table".to_string(), table.clone()),
                        ("chain".to_string(), c.name().to_string()),
                        ("rule".to_string(), "policy".to_string()),
                    ];
                    if family == crate::ruleset::Family::V6 {
                        labels.push(("family".to_string(), "ipv6".to_string()));
                    }
                    o.push(labels, Val::U(p));
                }
            }
        }
    }
    o.fam("rtrouter_rule_bytes_total", "counter", "Bytes each rule matched.");
    for (labels, v) in bytes {
        o.push(labels, v);
    }
    o
}

/// Serves `GET /metrics` on a host-side listener (`[metrics] host_listen`): each client in
/// a task of its own, given 10 s to send its request.
pub async fn serve_host(dp: std::sync::Arc<Dataplane>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let (mut sock, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: wait and go on, never stop serving.
                tracing::warn!("metrics: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let dp = dp.clone();
        tokio::spawn(async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            let read = async {
                while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                true
            };
            match tokio::time::timeout(std::time::Duration::from_secs(10), read).await {
                Ok(true) => {}
                _ => return,
            }
            let format = Format::of_request(&req);
            let (status, text) = if req.starts_with(b"GET /metrics ") || req.starts_with(b"GET / ") {
                let d = dp.clone();
                let body = tokio::task::spawn_blocking(move || render_as(&d, format))
                    .await
                    .unwrap_or_default();
                ("200 OK", body)
            } else {
                ("404 Not Found", "not found: try GET /metrics\n".to_string())
            };
            let answer = format!(
                "HTTP/1.0 {status}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                format.content_type(),
                text.len()
            );
            let _ = sock.write_all(answer.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
