//! The control plane: the Unix socket (mode 0600) that the CLI and the `iptables` front end
//! talk to, and the one place that changes the live state.
//!
//! Protocol, version 1. A request is one JSON line, then `input_len` bytes of input:
//!
//! ```text
//! {"v":1,"cmd":"iptables","args":["-t","nat","-A","POSTROUTING","-j","MASQUERADE"],"input_len":0}
//! {"v":1,"cmd":"iptables-restore","args":["--noflush"],"input_name":"stdin","input_len":1234}\n<1234 bytes>
//! ```
//!
//! `cmd` is a front-end tool (`iptables`, `iptables-save`, `iptables-restore`), or `save`
//! (`args`: `["-c"]` for counters), `restore` (input: an iptables-restore file, tables it
//! names replaced), `conntrack` (`args`: `-L|-F|-D [FILTER...]`), `stats`, `reload` (re-read
//! the config's plugins and rules) or `flush-all` (no tables and no ipsets: a fresh
//! namespace's state). The answer is one JSON line, `{"v":1,"code":N,"stdout":"...","stderr":"..."}`, and
//! the server closes the connection. `monitor` (`args`: `["trace"]`) instead streams one
//! line `{"v":1,"event":"TRACE: ..."}` per report of a `TRACE`d packet until the client goes
//! away. (`work_us` in the answer: how long the router worked on
//! it; `RTROUTER_TIMING=1` makes the client print it.)
//!
//! Limits: a request whose `input_len` exceeds `[control] max_request_mib` is refused before
//! any of it is read; a client silent for `read_timeout_secs` is dropped; at most
//! `max_clients` are served at once (others are told the router is busy). Failing to accept
//! (out of file descriptors) is logged and retried, never fatal. Changes are serialised by one
//! transaction lock and run off the packet workers (`spawn_blocking`); each builds the next
//! generation aside and publishes it with one atomic swap, or changes nothing.

use super::Dataplane;
use crate::conntrack::Filter;
use crate::frontend::{self, Output, Tool};
use crate::ruleset::validate::validate_change;
use crate::ruleset::{validate, Ruleset};
use std::fmt::Write as _;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// The socket the front end uses when `$RTROUTER_SOCKET` is not set.
pub const DEFAULT_SOCKET: &str = "/run/rtrouter.sock";

/// The longest request header line.
const MAX_HEADER: u64 = 1 << 20;

/// One request's header.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Request {
    pub v: u32,
    pub cmd: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// What the input is called in errors (a file name, `stdin`).
    #[serde(default)]
    pub input_name: String,
    #[serde(default)]
    pub input_len: u64,
}

/// One answer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Response {
    pub v: u32,
    #[serde(flatten)]
    pub out: Output,
    /// Microseconds the router worked on the request (under its transaction lock).
    #[serde(default)]
    pub work_us: u64,
}

/// The control plane's own state: the transaction lock every change holds from reading the
/// live state to publishing the next generation.
#[derive(Debug, Default)]
pub struct ControlPlane {
    txn: Mutex<()>,
    /// Changes of the ruleset (restores, reloads, front-end commits) that applied and that
    /// were refused, and when the last one applied (seconds since the Unix epoch), as
    /// kube-proxy's `sync_proxy_rules_last_timestamp_seconds`.
    pub changes_ok: std::sync::atomic::AtomicU64,
    pub changes_failed: std::sync::atomic::AtomicU64,
    pub last_change: std::sync::atomic::AtomicU64,
}

impl ControlPlane {
    /// Counts one change of the ruleset and whether it applied.
    pub fn record<T, E>(&self, r: &Result<T, E>) {
        use std::sync::atomic::Ordering::Relaxed;
        if r.is_ok() {
            self.changes_ok.fetch_add(1, Relaxed);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            self.last_change.store(now, Relaxed);
        } else {
            self.changes_failed.fetch_add(1, Relaxed);
        }
    }
}

/// Makes `path` ready to bind: refuses a path that is not a socket and a socket another
/// router still answers on; removes a stale one.
fn prepare(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
        Ok(m) if !m.file_type().is_socket() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket: refusing to replace it", path.display()),
            ))
        }
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{} is in use by a running router: refusing to take it over",
                        path.display()
                    ),
                ))
            }
            Err(_) => std::fs::remove_file(path)?,
        },
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    Ok(())
}

/// Binds the socket (see [`prepare`]); the listener is ready when this returns.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    prepare(path)?;
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves `listener` until the task is dropped.
pub async fn serve(dp: Arc<Dataplane>, listener: UnixListener) -> io::Result<()> {
    let c = &dp.config.control;
    let clients = Arc::new(tokio::sync::Semaphore::new(c.max_clients.max(1) as usize));
    let mut last_warning = None::<std::time::Instant>;
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS...: wait for descriptors to free up; never stop.
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!("control socket: accept failed: {e} (retrying)");
                    last_warning = Some(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let dp = dp.clone();
        match clients.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    if let Err(e) = handle(&dp, stream).await {
                        tracing::debug!("control request: {e}");
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    // Read the request line first (briefly): a socket closed with its request
                    // unread resets the connection, and the client would never see the answer.
                    let mut r = BufReader::new(stream);
                    let mut header = Vec::new();
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        (&mut r).take(MAX_HEADER).read_until(b'\n', &mut header),
                    )
                    .await;
                    let out = Output::fail(
                        frontend::exit::RESOURCE,
                        "rtrouter: too many clients connected; try again",
                    );
                    let _ = reply(r.into_inner(), out).await;
                });
            }
        }
    }
}

async fn reply(s: UnixStream, out: Output) -> io::Result<()> {
    reply_timed(s, out, 0).await
}

async fn reply_timed(mut s: UnixStream, out: Output, work_us: u64) -> io::Result<()> {
    let mut line = serde_json::to_vec(&Response {
        v: VERSION,
        out,
        work_us,
    })
    .map_err(io::Error::other)?;
    line.push(b'\n');
    s.write_all(&line).await?;
    s.shutdown().await
}

async fn handle(dp: &Arc<Dataplane>, s: UnixStream) -> io::Result<()> {
    let c = &dp.config.control;
    let timeout = Duration::from_secs(u64::from(c.read_timeout_secs.max(1)));
    let limit = u64::from(c.max_request_mib) << 20;
    let mut r = BufReader::new(s);
    let mut header = Vec::new();
    let n = tokio::time::timeout(timeout, (&mut r).take(MAX_HEADER).read_until(b'\n', &mut header))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client sent no request"))??;
    if n == 0 {
        return Ok(());
    }
    let req: Request = match serde_json::from_slice(&header) {
        Ok(r) => r,
        Err(e) => {
            let out = Output::fail(
                frontend::exit::PARAMETER,
                format!("rtrouter: bad request ({e}); this router speaks protocol version {VERSION}"),
            );
            return reply(r.into_inner(), out).await;
        }
    };
    if req.v != VERSION {
        let out = Output::fail(
            frontend::exit::PARAMETER,
            format!(
                "rtrouter: protocol version {} not supported (this router: {VERSION})",
                req.v
            ),
        );
        return reply(r.into_inner(), out).await;
    }
    if req.cmd == "monitor" {
        return monitor(dp, req, r).await;
    }
    if req.input_len > limit {
        let out = Output::fail(
            frontend::exit::RESOURCE,
            format!(
                "rtrouter: request of {} bytes exceeds the limit of {} MiB ([control] max_request_mib); nothing was changed",
                req.input_len, c.max_request_mib
            ),
        );
        return reply(r.into_inner(), out).await;
    }
    // The input, each read bounded by the timeout.
    let mut input = Vec::with_capacity(req.input_len.min(64 << 20) as usize);
    let mut chunk = vec![0u8; 1 << 16];
    while (input.len() as u64) < req.input_len {
        let want = ((req.input_len - input.len() as u64) as usize).min(chunk.len());
        let n = tokio::time::timeout(timeout, r.read(&mut chunk[..want]))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client stalled while sending its input"))??;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client closed before its input ended",
            ));
        }
        input.extend_from_slice(&chunk[..n]);
    }
    let dp2 = dp.clone();
    let (out, work_us) = tokio::task::spawn_blocking(move || {
        let _txn = crate::eval::state::lock(&dp2.control.txn);
        let t0 = std::time::Instant::now();
        let out = run_locked(&dp2, &req, &input);
        let us = t0.elapsed().as_micros() as u64;
        tracing::debug!("{} {:?}: {us} µs", req.cmd, req.args);
        (out, us)
    })
    .await
    .unwrap_or_else(|e| (Output::fail(1, format!("rtrouter: request failed: {e}")), 0));
    reply_timed(r.into_inner(), out, work_us).await
}

/// `monitor trace`: streams the reports of `TRACE`d packets, one JSON line
/// `{"v":1,"event":"TRACE: ..."}` each, until the client goes away; `monitor conntrack`
/// the same for connection events (`conntrack -E`).
async fn monitor(dp: &Arc<Dataplane>, req: Request, mut r: BufReader<UnixStream>) -> io::Result<()> {
    let source = match req.args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["trace"] => &dp.router.monitor,
        ["conntrack"] => &dp.router.conntrack.events,
        _ => {
            let out = Output::fail(
                frontend::exit::PARAMETER,
                "rtrouter: monitor takes one word: trace or conntrack",
            );
            return reply(r.into_inner(), out).await;
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4096);
    // A monitor that falls behind loses lines; one that is gone is dropped.
    source.subscribe(Box::new(move |line: &str| {
        tx.try_send(line.to_string()).is_ok() || !tx.is_closed()
    }));
    let mut probe = [0u8; 64];
    loop {
        tokio::select! {
            line = rx.recv() => {
                let Some(line) = line else { return Ok(()) };
                let mut json = serde_json::to_vec(&serde_json::json!({"v": VERSION, "event": line})).map_err(io::Error::other)?;
                json.push(b'\n');
                r.get_mut().write_all(&json).await?;
            }
            n = r.read(&mut probe) => {
                if n.unwrap_or(0) == 0 {
                    return Ok(());
                }
            }
        }
    }
}

/// The client side of `monitor`: prints each event until the router closes the stream or
/// `on_event` returns `false`.
pub fn stream(path: &Path, cmd: &str, args: &[String], mut on_event: impl FnMut(&str) -> bool) -> Result<(), String> {
    use std::io::{BufRead, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("can't reach rtrouter at {}: {e} (is it running?)", path.display()))?;
    let req = Request {
        v: VERSION,
        cmd: cmd.to_string(),
        args: args.to_vec(),
        input_name: String::new(),
        input_len: 0,
    };
    let mut head = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
    head.push(b'\n');
    s.write_all(&head).map_err(|e| e.to_string())?;
    for line in std::io::BufReader::new(s).lines() {
        let line = line.map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("unexpected answer: {e}"))?;
        if let Some(e) = v.get("event").and_then(|e| e.as_str()) {
            if !on_event(e) {
                return Ok(());
            }
        } else if let Some(err) = v.get("stderr").and_then(|e| e.as_str()).filter(|e| !e.is_empty()) {
            return Err(err.trim_end().to_string());
        }
    }
    Ok(())
}

/// Runs one request under the transaction lock.
pub fn run(dp: &Dataplane, req: &Request, input: &[u8]) -> Output {
    let _txn = crate::eval::state::lock(&dp.control.txn);
    run_locked(dp, req, input)
}

fn run_locked(dp: &Dataplane, req: &Request, input: &[u8]) -> Output {
    let text = match std::str::from_utf8(input) {
        Ok(t) => t,
        Err(e) => {
            return Output::fail(
                1,
                format!(
                    "{}: not UTF-8 text (first bad byte at offset {})",
                    req.input_name,
                    e.valid_up_to()
                ),
            )
        }
    };
    if let Some(tool) = Tool::from_name(&req.cmd) {
        let name = if req.input_name.is_empty() {
            "stdin"
        } else {
            &req.input_name
        };
        return frontend::run(tool, &req.args, text, name, &LiveRouter::new(dp, tool.family()));
    }
    let words: Vec<&str> = req.args.iter().map(String::as_str).collect();
    match answer(dp, &req.cmd, &words, text, &req.input_name) {
        Ok(s) => Output::ok(s),
        Err(e) => Output::fail(1, e),
    }
}

/// The live state as the front end sees it.
struct LiveRouter<'a>(&'a Dataplane, Arc<crate::ipset::IpSets>, crate::ruleset::Family);

impl<'a> LiveRouter<'a> {
    /// The transaction on `family`'s ruleset.
    fn new(dp: &'a Dataplane, family: crate::ruleset::Family) -> LiveRouter<'a> {
        LiveRouter(dp, dp.router.engine().ipsets().clone(), family)
    }

    fn env(&self) -> crate::ruleset::Env {
        let r = &self.0.router;
        crate::ruleset::Env {
            ipsets: self.1.names().into_iter().collect(),
            plugins: r.plugins().map(|h| h as Arc<dyn crate::ruleset::PluginBinder>),
        }
    }
}

impl frontend::Live for LiveRouter<'_> {
    fn retire(&self, old: Ruleset) {
        crate::reclaim::defer(old);
    }

    fn family(&self) -> crate::ruleset::Family {
        self.2
    }

    fn ruleset(&self) -> Ruleset {
        self.0.router.engine_of(self.2).rules.source()
    }

    fn ruleset_of(&self, family: crate::ruleset::Family) -> Ruleset {
        self.0.router.engine_of(family).rules.source()
    }

    fn commit(&self, rs: Ruleset) -> Result<(), String> {
        let t0 = std::time::Instant::now();
        let base = self.0.router.engine_of(rs.family).rules().clone();
        let valid = validate_change(&base, &rs, &self.env()).map_err(|e| e.to_string());
        self.0.control.record(&valid);
        let valid = valid?;
        let t1 = std::time::Instant::now();
        self.0.router.swap_rules(valid);
        // The previous generation is the reclaimer's to free, not this transaction's.
        crate::reclaim::defer(base);
        tracing::debug!(
            "commit: validated in {:?}, compiled and swapped in {:?}",
            t1 - t0,
            t1.elapsed()
        );
        Ok(())
    }

    fn check(&self, rs: &Ruleset) -> Result<(), String> {
        validate(rs, &self.env()).map(|_| ()).map_err(|e| e.to_string())
    }

    fn ipsets(&self) -> &crate::ipset::IpSets {
        &self.1
    }

    fn now(&self) -> u64 {
        self.0.now()
    }
}

/// The router's own commands (`save`, `restore`, `conntrack`, `stats`, `reload`,
/// `flush-all`); also what SIGHUP and SIGUSR1 run.
pub fn answer(dp: &Dataplane, cmd: &str, args: &[&str], body: &str, name: &str) -> Result<String, String> {
    let res = answer_one(dp, cmd, args, body, name);
    if matches!(cmd, "restore" | "reload" | "flush-all") {
        dp.control.record(&res);
    }
    res
}

fn answer_one(dp: &Dataplane, cmd: &str, args: &[&str], body: &str, name: &str) -> Result<String, String> {
    let r = &dp.router;
    match cmd {
        "save" => {
            let family = if args.contains(&"-6") {
                crate::ruleset::Family::V6
            } else {
                crate::ruleset::Family::V4
            };
            Ok(r.engine_of(family).save(args.contains(&"-c")))
        }
        "restore" => {
            let name = if name.is_empty() { "restore" } else { name };
            // `-6`: the ip6tables ruleset.
            let family = if args.contains(&"-6") {
                crate::ruleset::Family::V6
            } else {
                crate::ruleset::Family::V4
            };
            let live = LiveRouter::new(dp, family);
            let current = r.engine_of(family);
            let next =
                crate::ruleset::restore::restore(&current.rules.source(), body, name, false).map_err(|e| e.to_string())?;
            let valid = validate_change(&current.rules().clone(), &next, &live.env()).map_err(|e| e.to_string())?;
            let summary = valid
                .tables()
                .map(|t| {
                    format!(
                        "{}: {} rules",
                        t.kind(),
                        t.chains().map(|c| c.rules().len()).sum::<usize>()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            r.swap_rules(valid);
            tracing::info!("ruleset replaced over the control socket ({summary})");
            Ok(format!("{summary}\n"))
        }
        "flush-all" => {
            r.swap_rules(crate::ruleset::ValidRuleset::empty());
            r.swap_rules(crate::ruleset::ValidRuleset::empty_of(crate::ruleset::Family::V6));
            let sets = r.engine().ipsets().clone();
            for n in sets.names() {
                sets.remove(&n);
            }
            tracing::info!("every table and ipset removed over the control socket");
            Ok(String::new())
        }
        "conntrack" => {
            // conntrack-tools' `-o extended` puts the address family in front of each line.
            let rest = args.get(1..).unwrap_or(&[]);
            let extended = rest.windows(2).any(|w| w == ["-o", "extended"]);
            let rest: Vec<&str> = rest
                .iter()
                .enumerate()
                .filter(|&(i, a)| {
                    !(*a == "-o" && rest.get(i + 1) == Some(&"extended")
                        || *a == "extended" && i > 0 && rest[i - 1] == "-o")
                })
                .map(|(_, a)| *a)
                .collect();
            let f = filter(&rest)?;
            match args.first().copied() {
                Some("-L") => {
                    let lines = r.conntrack.list(&f, dp.now(), extended);
                    Ok(lines.iter().map(|l| format!("{l}\n")).collect())
                }
                Some("-C") => Ok(format!("{}\n", r.conntrack.len())),
                Some("-S") => Ok(format!("{}\n", r.conntrack.stats.line())),
                Some("-F") => {
                    r.conntrack.delete(&Filter::default(), dp.now());
                    Ok("connection tracking table has been emptied.\n".into())
                }
                Some("-D") => Ok(format!("{} flow entries have been deleted.\n", r.conntrack.delete(&f, dp.now()))),
                _ => Err("conntrack needs -L, -C, -S, -F or -D".into()),
            }
        }
        "stats" => Ok(stats(dp)),
        "reload" => {
            super::notify::reloading();
            let r = reload(dp);
            super::notify::notify("READY=1");
            r
        }
        other => Err(format!(
            "unknown request `{other}' (iptables, iptables-save, iptables-restore, save, restore, conntrack, stats, reload, flush-all)"
        )),
    }
}

/// `reload`: the config's plugins and rules, swapped in; what needs a restart is reported.
fn reload(dp: &Dataplane) -> Result<String, String> {
    let r = &dp.router;
    let cfg = crate::config::Config::load(&dp.config_path).map_err(|e| e.to_string())?;
    let previous = crate::eval::state::lock(&dp.plugins).clone();
    let t0 = std::time::Instant::now();
    let (rules, plugins) = crate::plugin::load(&cfg, previous.as_deref()).map_err(|e| e.to_string())?;
    let n = plugins.as_ref().map_or(0, |p| p.plugins.len());
    *crate::eval::state::lock(&dp.plugins) = plugins.clone();
    r.swap_plugins_both(
        plugins.map(|p| p as Arc<dyn crate::eval::PluginHost>),
        rules.v4,
        rules.v6,
    );
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

/// How many entries of each plugin's key–value store `stats` shows.
const KV_SHOWN: usize = 32;

/// Bytes as printable text: ASCII as is, anything else (and `\`) as `\xNN`.
fn shown(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for &c in b {
        if (0x20..0x7f).contains(&c) && c != b'\\' {
            out.push(char::from(c));
        } else {
            let _ = write!(out, "\\x{c:02x}");
        }
    }
    out
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
    for (i, (c, dev)) in dp.counters.iter().zip(&dp.devices).enumerate() {
        use super::device::PacketDevice;
        let name = &r.topo.ifaces[i].name;
        let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "interface {name} offloads: {}, {} queue{}; super-packets in {} out {}, cut in software {}",
            if dev.offloads() { "on" } else { "off" },
            dev.queues(),
            if dev.queues() == 1 { "" } else { "s" },
            g(&c.rx_super),
            g(&c.tx_super),
            g(&c.cut)
        );
    }
    for (name, k) in dp.kernel_counters() {
        let _ = match k {
            Some(k) => writeln!(
                s,
                "interface {name} (kernel side): to rtrouter {} packets, {} dropped before rtrouter read them; from rtrouter {} packets, {} dropped",
                k.tx_packets, k.tx_dropped, k.rx_packets, k.rx_dropped
            ),
            None => writeln!(s, "interface {name} (kernel side): counters unavailable"),
        };
    }
    let st = &r.stats;
    let _ = writeln!(
        s,
        "packets: forwarded {} delivered {} replies {} fragmented {} (into {} fragments)",
        st.forwarded.load(Ordering::Relaxed),
        st.delivered.load(Ordering::Relaxed),
        st.replies.load(Ordering::Relaxed),
        st.frag_ok.load(Ordering::Relaxed),
        st.frag_creates.load(Ordering::Relaxed)
    );
    let d = &r.defrag;
    let _ = writeln!(
        s,
        "reassembly: {} fragments, {} datagrams reassembled, {} failed ({} timed out, {} overlapping), {} pending holding {} bytes",
        d.stats.fragments.load(Ordering::Relaxed),
        d.stats.reassembled.load(Ordering::Relaxed),
        d.stats.failed.load(Ordering::Relaxed),
        d.stats.timeouts.load(Ordering::Relaxed),
        d.stats.overlaps.load(Ordering::Relaxed),
        d.len(),
        d.held_bytes()
    );
    for (label, left) in r.idle_timers(dp.now()) {
        let _ = if left >= 0 {
            writeln!(s, "idletimer {label}: {left} s left")
        } else {
            writeln!(s, "idletimer {label}: ran out {} s ago", -left)
        };
    }
    if r.synproxy.stats.any() {
        let _ = writeln!(s, "{}", r.synproxy.stats.line());
    }
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
            // The plugin's own counters (`counter_add`) that are not zero, and its store.
            for (i, v) in st.user.iter().enumerate() {
                let v = v.load(Ordering::Relaxed);
                if v != 0 {
                    let _ = writeln!(s, "plugin {} counter {i}: {v}", p.name);
                }
            }
            let (entries, n) = p.kv().entries(KV_SHOWN);
            if n > 0 {
                let _ = writeln!(s, "plugin {} store: {n} keys", p.name);
                for (k, v) in entries {
                    let _ = writeln!(s, "plugin {} store {} = {}", p.name, shown(&k), shown(&v));
                }
                if n > KV_SHOWN {
                    let _ = writeln!(s, "plugin {} store: … {} more", p.name, n - KV_SHOWN);
                }
            }
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

/// The client side: sends one request (with `input`) to the socket at `path` and returns the
/// answer. `Err` when the router cannot be reached or the connection fails.
pub fn request(path: &Path, cmd: &str, args: &[String], input: &[u8], input_name: &str) -> Result<Output, String> {
    use std::io::{BufRead, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        format!(
            "can't reach rtrouter at {}: {e} (is it running? $RTROUTER_SOCKET names the socket)",
            path.display()
        )
    })?;
    let req = Request {
        v: VERSION,
        cmd: cmd.to_string(),
        args: args.to_vec(),
        input_name: input_name.to_string(),
        input_len: input.len() as u64,
    };
    let mut head = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
    head.push(b'\n');
    let io = |e: io::Error| format!("talking to rtrouter at {}: {e}", path.display());
    s.write_all(&head).map_err(io)?;
    // A refused request is answered before its input is read: stop sending then.
    match s.write_all(input) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe || e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e) => return Err(io(e)),
    }
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line).map_err(io)?;
    let resp: Response =
        serde_json::from_str(&line).map_err(|e| format!("unexpected answer from {}: {e}", path.display()))?;
    if std::env::var_os("RTROUTER_TIMING").is_some() {
        eprintln!("rtrouter: router work {} µs", resp.work_us);
    }
    Ok(resp.out)
}

/// [`request`] in the form of a command line: `"restore [-6] NAME\n<text>"`, `"save -c"`,
/// `"conntrack -L -p tcp"`, `"stats"`. The answer's stdout, or its stderr as the error.
pub fn request_line(path: &Path, req: &str) -> Result<String, String> {
    let (head, body) = req.split_once('\n').unwrap_or((req, ""));
    let mut words = head.split_whitespace();
    let cmd = words.next().ok_or("empty request")?;
    let (args, name): (Vec<String>, String) = if cmd == "restore" {
        // `restore [-6] NAME`: the name is the rest of the line, spaces and all.
        let mut rest: Vec<&str> = words.collect();
        let args = if rest.first() == Some(&"-6") {
            rest.remove(0);
            vec!["-6".to_string()]
        } else {
            Vec::new()
        };
        (args, rest.join(" "))
    } else {
        (words.map(str::to_string).collect(), String::new())
    };
    let out = request(path, cmd, &args, body.as_bytes(), &name)?;
    if out.code == 0 {
        Ok(out.stdout)
    } else {
        Err(out.stderr.trim_end().to_string())
    }
}
