//! Prometheus text exposition (format 0.0.4) of the router's counters, served over HTTP by
//! the local stack on the address `[metrics] listen` names.

use super::Dataplane;
use crate::packet::DropReason;
use crate::ruleset::Hook;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// A label value as the text format wants it: `\\`, `"` and newlines escaped.
fn esc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
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

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The standard process metrics (as the Prometheus client libraries export them), from
/// /proc/self: CPU time, resident and virtual memory, open descriptors and their limit,
/// start time.
fn process(out: &mut String) {
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
        family(
            out,
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
        );
        let _ = writeln!(out, "process_cpu_seconds_total {}", (u + k) as f64 / ticks);
    }
    if let Some(rss) = field(24) {
        family(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        let _ = writeln!(out, "process_resident_memory_bytes {}", rss * page);
    }
    if let Some(vsz) = field(23) {
        family(
            out,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
        );
        let _ = writeln!(out, "process_virtual_memory_bytes {vsz}");
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        family(out, "process_open_fds", "gauge", "Open file descriptors.");
        let _ = writeln!(out, "process_open_fds {}", fds.count());
    }
    let max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
    });
    if let Some(soft) = max_fds {
        family(out, "process_max_fds", "gauge", "The limit on open file descriptors.");
        let _ = writeln!(out, "process_max_fds {soft}");
    }
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<u64>().ok()))
    });
    if let (Some(start), Some(boot)) = (field(22), boot) {
        family(
            out,
            "process_start_time_seconds",
            "gauge",
            "Start time since the Unix epoch, in seconds.",
        );
        let _ = writeln!(out, "process_start_time_seconds {}", boot as f64 + start as f64 / ticks);
    }
}

/// Every counter, in Prometheus text format.
pub fn render(dp: &Dataplane) -> String {
    let r = &dp.router;
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut s = String::with_capacity(4096);
    process(&mut s);
    family(
        &mut s,
        "rtrouter_build_info",
        "gauge",
        "The running rtrouter: its version.",
    );
    let _ = writeln!(s, "rtrouter_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    family(
        &mut s,
        "rtrouter_ruleset_changes_total",
        "counter",
        "Changes of the ruleset (restore, reload, flush-all, front-end commits) by result.",
    );
    let c = &dp.control;
    let _ = writeln!(
        s,
        "rtrouter_ruleset_changes_total{{result=\"ok\"}} {}",
        g(&c.changes_ok)
    );
    let _ = writeln!(
        s,
        "rtrouter_ruleset_changes_total{{result=\"failed\"}} {}",
        g(&c.changes_failed)
    );
    family(
        &mut s,
        "rtrouter_ruleset_last_change_timestamp_seconds",
        "gauge",
        "When the ruleset last changed (0: not since the start), as kube-proxy's sync_proxy_rules_last_timestamp_seconds.",
    );
    let _ = writeln!(
        s,
        "rtrouter_ruleset_last_change_timestamp_seconds {}",
        g(&c.last_change)
    );
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
    ] {
        family(&mut s, name, "counter", help);
        for (i, c) in dp.counters.iter().enumerate() {
            let v = [&c.rx_packets, &c.rx_bytes, &c.tx_packets, &c.tx_bytes, &c.tx_dropped][pick];
            let _ = writeln!(s, "{name}{{interface=\"{}\"}} {}", esc(&r.topo.ifaces[i].name), g(v));
        }
    }
    family(
        &mut s,
        "rtrouter_tun_kernel_dropped_total",
        "counter",
        "Packets the kernel dropped at a TUN device: to_router when rtrouter did not read its queue in time (tx_dropped), from_router on the way back (rx_dropped).",
    );
    for (name, k) in dp.kernel_counters() {
        if let Some(k) = k {
            let _ = writeln!(
                s,
                "rtrouter_tun_kernel_dropped_total{{interface=\"{name}\",direction=\"to_router\"}} {}",
                k.tx_dropped
            );
            let _ = writeln!(
                s,
                "rtrouter_tun_kernel_dropped_total{{interface=\"{name}\",direction=\"from_router\"}} {}",
                k.rx_dropped
            );
        }
    }
    if let Some(ps) = crate::eval::state::lock(&dp.plugins).as_ref() {
        family(
            &mut s,
            "rtrouter_plugin_calls_total",
            "counter",
            "Calls into each wasm plugin.",
        );
        for p in &ps.plugins {
            let _ = writeln!(
                s,
                "rtrouter_plugin_calls_total{{plugin=\"{}\"}} {}",
                p.name,
                g(&p.stats.calls)
            );
        }
        family(
            &mut s,
            "rtrouter_plugin_failures_total",
            "counter",
            "Failed plugin calls (traps, timeouts, memory).",
        );
        for p in &ps.plugins {
            let _ = writeln!(
                s,
                "rtrouter_plugin_failures_total{{plugin=\"{}\"}} {}",
                p.name,
                g(&p.stats.failures)
            );
        }
        family(
            &mut s,
            "rtrouter_plugin_disabled",
            "gauge",
            "1 while a plugin is disabled (until reload).",
        );
        for p in &ps.plugins {
            let _ = writeln!(
                s,
                "rtrouter_plugin_disabled{{plugin=\"{}\"}} {}",
                p.name,
                u8::from(p.disabled.load(Ordering::Relaxed))
            );
        }
        family(
            &mut s,
            "rtrouter_plugin_counter",
            "gauge",
            "A plugin's own counters (counter_add).",
        );
        for p in &ps.plugins {
            for (i, v) in p.stats.user.iter().enumerate() {
                let v = v.load(Ordering::Relaxed);
                if v != 0 {
                    let _ = writeln!(s, "rtrouter_plugin_counter{{plugin=\"{}\",index=\"{i}\"}} {v}", p.name);
                }
            }
        }
    }
    family(&mut s, "rtrouter_packets_total", "counter", "Packets by outcome.");
    for (what, v) in [
        ("forwarded", &r.stats.forwarded),
        ("delivered", &r.stats.delivered),
        ("replies", &r.stats.replies),
    ] {
        let _ = writeln!(s, "rtrouter_packets_total{{outcome=\"{what}\"}} {}", g(v));
    }
    family(
        &mut s,
        "rtrouter_fragmented_total",
        "counter",
        "Packets larger than the egress MTU sent as fragments.",
    );
    let _ = writeln!(s, "rtrouter_fragmented_total {}", g(&r.stats.frag_ok));
    family(&mut s, "rtrouter_fragments_total", "counter", "Fragments made.");
    let _ = writeln!(s, "rtrouter_fragments_total {}", g(&r.stats.frag_creates));
    family(
        &mut s,
        "rtrouter_reassembly_total",
        "counter",
        "IPv4 reassembly before the rules: fragments taken, datagrams made, failures.",
    );
    let ds = &r.defrag.stats;
    for (what, v) in [
        ("fragments", &ds.fragments),
        ("reassembled", &ds.reassembled),
        ("failed", &ds.failed),
        ("timeouts", &ds.timeouts),
        ("overlaps", &ds.overlaps),
    ] {
        let _ = writeln!(s, "rtrouter_reassembly_total{{event=\"{what}\"}} {}", g(v));
    }
    family(&mut s, "rtrouter_drops_total", "counter", "Dropped packets by reason.");
    for reason in DropReason::ALL {
        let _ = writeln!(
            s,
            "rtrouter_drops_total{{reason=\"{}\"}} {}",
            reason.name(),
            r.stats.drop_count(reason)
        );
    }
    let ct = &r.conntrack;
    family(
        &mut s,
        "rtrouter_conntrack_entries",
        "gauge",
        "Connections in the table.",
    );
    let _ = writeln!(s, "rtrouter_conntrack_entries {}", ct.len());
    family(
        &mut s,
        "rtrouter_conntrack_max_entries",
        "gauge",
        "The table's size limit.",
    );
    let _ = writeln!(s, "rtrouter_conntrack_max_entries {}", ct.max);
    family(
        &mut s,
        "rtrouter_conntrack_events_total",
        "counter",
        "Conntrack events.",
    );
    for (what, v) in [
        ("inserted", &ct.stats.inserted),
        ("insert_failed", &ct.stats.insert_failed),
        ("clash_resolved", &ct.stats.clash_resolved),
        ("early_drop", &ct.stats.early_drop),
        ("drop_full", &ct.stats.drop_full),
        ("expired", &ct.stats.expired),
        ("invalid", &ct.stats.invalid),
    ] {
        let _ = writeln!(s, "rtrouter_conntrack_events_total{{event=\"{what}\"}} {}", g(v));
    }
    if dp.config.metrics.per_rule == Some(false) {
        return s;
    }
    let eng = r.engine();
    family(
        &mut s,
        "rtrouter_rule_packets_total",
        "counter",
        "Packets each rule matched: by position, by a stable id (a hash of the rule's text) and by its comment.",
    );
    let mut bytes = String::new();
    for t in eng.rules.tables() {
        for c in t.chains() {
            let chain = esc(c.name());
            for (i, rule) in c.rules().iter().enumerate() {
                let (p, b) = rule.counter.get();
                let mut labels = format!(
                    "table=\"{}\",chain=\"{chain}\",rule=\"{}\",id=\"{}\"",
                    t.kind,
                    i + 1,
                    rule_id(&rule.save_line(c.name(), None))
                );
                let comment = rule.matches.iter().find_map(|m| match m {
                    crate::ruleset::matches::Match::Comment(cm) => Some(cm.0.as_str()),
                    _ => None,
                });
                if let Some(cm) = comment {
                    let _ = write!(labels, ",comment=\"{}\"", esc(cm));
                }
                let _ = writeln!(s, "rtrouter_rule_packets_total{{{labels}}} {p}");
                let _ = writeln!(bytes, "rtrouter_rule_bytes_total{{{labels}}} {b}");
            }
            if let Some(h) = Hook::from_chain_name(c.name()).filter(|_| c.policy().is_some()) {
                let (p, _) = eng.policy_counters(t.kind, h);
                let _ = writeln!(
                    s,
                    "rtrouter_rule_packets_total{{table=\"{}\",chain=\"{chain}\",rule=\"policy\"}} {p}",
                    t.kind,
                );
            }
        }
    }
    family(
        &mut s,
        "rtrouter_rule_bytes_total",
        "counter",
        "Bytes each rule matched.",
    );
    s.push_str(&bytes);
    s
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
            let (status, text) = if req.starts_with(b"GET /metrics ") || req.starts_with(b"GET / ") {
                let d = dp.clone();
                let body = tokio::task::spawn_blocking(move || render(&d))
                    .await
                    .unwrap_or_default();
                ("200 OK", body)
            } else {
                ("404 Not Found", "not found: try GET /metrics\n".to_string())
            };
            let answer = format!(
                "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = sock.write_all(answer.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
