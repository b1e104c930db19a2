//! The control socket: a Unix stream socket (mode 0600) the CLI talks to.
//!
//! Protocol: the client writes one request and shuts its side down; the server answers and
//! closes. A request is a command line, followed for `restore` by the iptables-restore text.
//! The answer's first line is `ok` or `error: MESSAGE`; the body follows.
//!
//! ```text
//! save [-c]
//! restore\n<iptables-restore text>
//! conntrack -L [FILTER...] | -F | -D [FILTER...]      FILTER: -p PROTO -s ADDR -d ADDR --sport N --dport N --mark N
//! stats
//! reload            re-read the config's plugins and rules; swap both in atomically
//! ```

use super::Dataplane;
use crate::conntrack::Filter;
use crate::ruleset::restore::restore;
use crate::ruleset::validate;
use std::fmt::Write as _;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// The most bytes a request may have (a large kube-proxy ruleset is a few MiB).
const MAX_REQUEST: u64 = 64 << 20;

/// Binds the socket, replacing a stale one, and serves until the task is dropped.
pub async fn serve(dp: Arc<Dataplane>, path: &Path) -> io::Result<()> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    loop {
        let (stream, _) = listener.accept().await?;
        let dp = dp.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(&dp, stream).await {
                tracing::warn!("control request failed: {e}");
            }
        });
    }
}

async fn handle(dp: &Dataplane, mut s: UnixStream) -> io::Result<()> {
    let mut req = Vec::new();
    (&mut s).take(MAX_REQUEST).read_to_end(&mut req).await?;
    let text = String::from_utf8_lossy(&req);
    let (head, body) = text.split_once('\n').unwrap_or((&text, ""));
    let answer = match answer(dp, head.trim(), body) {
        Ok(body) => format!("ok\n{body}"),
        Err(e) => format!("error: {e}\n"),
    };
    s.write_all(answer.as_bytes()).await?;
    s.shutdown().await
}

/// The answer to one request.
pub fn answer(dp: &Dataplane, head: &str, body: &str) -> Result<String, String> {
    let words: Vec<&str> = head.split_whitespace().collect();
    let r = &dp.router;
    match words.first().copied() {
        Some("save") => Ok(r.engine().save(words.contains(&"-c"))),
        Some("restore") => {
            // `restore NAME`: the file the client read, so that errors name it.
            let name = head.strip_prefix("restore").map(str::trim).filter(|n| !n.is_empty());
            let eng = r.engine();
            let next =
                restore(&eng.rules.source(), body, name.unwrap_or("restore"), false).map_err(|e| e.to_string())?;
            let plugins = r
                .plugins()
                .map(|h| h as std::sync::Arc<dyn crate::ruleset::PluginBinder>);
            let env = crate::ruleset::Env {
                ipsets: eng.ipsets.names().cloned().collect(),
                plugins,
            };
            let valid = validate(&next, &env).map_err(|e| e.to_string())?;
            let summary = valid
                .tables
                .iter()
                .flatten()
                .map(|t| {
                    format!(
                        "{}: {} rules",
                        t.kind,
                        t.chains.iter().map(|c| c.rules.len()).sum::<usize>()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            r.swap_rules(valid);
            tracing::info!("ruleset replaced over the control socket ({summary})");
            Ok(format!("{summary}\n"))
        }
        Some("conntrack") => {
            let f = filter(&words[2.min(words.len())..])?;
            match words.get(1).copied() {
                Some("-L") => {
                    let lines = r.conntrack.list(&f, dp.now());
                    Ok(lines.iter().map(|l| format!("{l}\n")).collect())
                }
                Some("-F") => Ok(format!(
                    "{} connections deleted\n",
                    r.conntrack.delete(&Filter::default())
                )),
                Some("-D") => Ok(format!("{} connections deleted\n", r.conntrack.delete(&f))),
                _ => Err("conntrack needs -L, -F or -D".into()),
            }
        }
        Some("stats") => Ok(stats(dp)),
        Some("reload") => {
            let cfg = crate::config::Config::load(&dp.config_path).map_err(|e| e.to_string())?;
            let previous = crate::eval::state::lock(&dp.plugins).clone();
            let t0 = std::time::Instant::now();
            let (rules, plugins) = crate::plugin::load(&cfg, previous.as_deref()).map_err(|e| e.to_string())?;
            let n = plugins.as_ref().map_or(0, |p| p.plugins.len());
            *crate::eval::state::lock(&dp.plugins) = plugins.clone();
            r.swap_plugins(plugins.map(|p| p as std::sync::Arc<dyn crate::eval::PluginHost>), rules);
            tracing::info!("reloaded {n} plugins and the ruleset in {:?}", t0.elapsed());
            let mut answer = format!(
                "{n} plugins and the ruleset reloaded in {} ms\n",
                t0.elapsed().as_millis()
            );
            let stale = dp.config.restart_needed(&cfg);
            if !stale.is_empty() {
                let list = stale.join(", ");
                tracing::warn!("changed in the config, kept until a restart: {list}");
                answer += &format!("needs a restart to apply: {list}\n");
            }
            Ok(answer)
        }
        Some(other) => Err(format!(
            "unknown request `{other}' (save, restore, conntrack, stats, reload)"
        )),
        None => Err("empty request".into()),
    }
}

fn filter(words: &[&str]) -> Result<Filter, String> {
    let mut f = Filter::default();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        let v = it.next().ok_or_else(|| format!("{w} needs a value"))?;
        let bad = || format!("bad value `{v}' for {w}");
        match *w {
            "-p" | "--proto" => f.proto = Some(crate::ruleset::value::parse_protocol(v).ok_or_else(bad)?),
            "-s" | "--src" | "--orig-src" => f.src = Some(v.parse().map_err(|_| bad())?),
            "-d" | "--dst" | "--orig-dst" => f.dst = Some(v.parse().map_err(|_| bad())?),
            "--sport" | "--orig-port-src" => f.sport = Some(v.parse().map_err(|_| bad())?),
            "--dport" | "--orig-port-dst" => f.dport = Some(v.parse().map_err(|_| bad())?),
            "-m" | "--mark" => {
                f.mark = Some(crate::ruleset::value::parse_uint(v, 0, u32::MAX.into()).ok_or_else(bad)? as u32)
            }
            _ => return Err(format!("unknown conntrack filter `{w}'")),
        }
    }
    Ok(f)
}

/// Interfaces, drop reasons and conntrack usage, one fact per line.
pub fn stats(dp: &Dataplane) -> String {
    let r = &dp.router;
    let mut s = String::new();
    for (i, c) in dp.counters.iter().enumerate() {
        let name = &r.topo.ifaces[i].name;
        let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "interface {name}: rx {} packets {} bytes, tx {} packets {} bytes, tx_dropped {}",
            g(&c.rx_packets),
            g(&c.rx_bytes),
            g(&c.tx_packets),
            g(&c.tx_bytes),
            g(&c.tx_dropped)
        );
    }
    let st = &r.stats;
    let _ = writeln!(
        s,
        "packets: forwarded {} delivered {} replies {}",
        st.forwarded.load(Ordering::Relaxed),
        st.delivered.load(Ordering::Relaxed),
        st.replies.load(Ordering::Relaxed)
    );
    for reason in crate::packet::DropReason::ALL {
        let n = st.drop_count(reason);
        if n > 0 {
            let _ = writeln!(s, "drop {}: {n}", reason.name());
        }
    }
    let ct = &r.conntrack;
    let c = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    if let Some(ps) = crate::eval::state::lock(&dp.plugins).as_ref() {
        for p in &ps.plugins {
            let st = &p.stats;
            let _ = writeln!(
                s,
                "plugin {}: calls {} failures {} (timeouts {}, traps {}){}",
                p.name,
                c(&st.calls),
                c(&st.failures),
                c(&st.timeouts),
                c(&st.traps),
                match (p.disabled.load(Ordering::Relaxed), c(&st.over_budget)) {
                    (false, _) => "",
                    (true, 0) => " DISABLED",
                    (true, _) => " DISABLED (over its failure or time budget)",
                }
            );
        }
    }
    let _ = writeln!(
        s,
        "conntrack: {} of {} entries; inserted {} early_drop {} drop_full {} expired {} invalid {}",
        ct.len(),
        ct.max,
        c(&ct.stats.inserted),
        c(&ct.stats.early_drop),
        c(&ct.stats.drop_full),
        c(&ct.stats.expired),
        c(&ct.stats.invalid)
    );
    s
}

/// The client side: sends `request` to the socket at `path` and returns the answer body, or
/// the server's error.
pub fn request(path: &Path, request: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("connecting to {}: {e} (is rtrouter running?)", path.display()))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    s.shutdown(std::net::Shutdown::Write).map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    match out.split_once('\n') {
        Some(("ok", body)) => Ok(body.to_string()),
        Some((err, _)) => Err(err.strip_prefix("error: ").unwrap_or(err).to_string()),
        None => Err(format!("unexpected answer: {out}")),
    }
}
