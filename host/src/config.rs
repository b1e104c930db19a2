//! `router.toml`: the whole router's configuration.
//!
//! Every table is a serde struct with `deny_unknown_fields`, so a misspelt key is an error with
//! its line and column. Values that other parts of the file refer to carry their source span,
//! so that semantic errors (a route through an interface that does not exist, a bad rule in a
//! `[[rules.chain]]`) point at the exact place too. Paths are relative to the config file.
//! The README's "Configuration reference" documents each key; `configs/router.toml` shows them.

use crate::ruleset::lex::tokenize;
use crate::ruleset::restore::restore;
use crate::ruleset::validate::validate_owned;
use crate::ruleset::{Env, Error, Errors, Family, Ruleset, TableKind, ValidRuleset};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

/// A prefix such as `10.0.1.1/24` (the address keeps its host bits: it is an interface
/// address) or `0.0.0.0/0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => {
                l.parse::<u8>().ok().filter(|l| *l <= max)?
            }
            Some(_) => return None,
            None => max,
        };
        Some(Cidr { addr, len })
    }

    /// The IPv4 network (host bits cleared), if this is IPv4.
    pub fn v4_net(&self) -> Option<crate::ruleset::value::Ipv4Net> {
        match self.addr {
            IpAddr::V4(a) => Some(crate::ruleset::value::Ipv4Net::new(
                a,
                crate::ruleset::value::prefix_mask(self.len),
            )),
            IpAddr::V6(_) => None,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}' is not an address or prefix (e.g. 10.0.1.1/24)")))
    }
}

/// The top level of `router.toml`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub router: RouterSection,
    #[serde(default)]
    pub interface: Vec<Interface>,
    #[serde(default)]
    pub route: Vec<Route>,
    #[serde(default)]
    pub rules: RulesSection,
    #[serde(default)]
    pub ipset: Vec<IpSet>,
    #[serde(default)]
    pub conntrack: ConntrackSection,
    #[serde(default)]
    pub plugin: Vec<Plugin>,
    #[serde(default)]
    pub queue: Vec<Queue>,
    #[serde(default)]
    pub control: ControlSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub engine: EngineSection,
    /// The file this was read from (not a TOML key).
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[engine]`: how rules are evaluated.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// `"compiled"` (default): the classifier; `"linear"`: rule after rule, the reference.
    #[serde(default)]
    pub kind: crate::eval::EngineKind,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterSection {
    /// Extra addresses the router owns besides its interface addresses (addrtype LOCAL,
    /// delivery to INPUT), e.g. service VIPs.
    #[serde(default)]
    pub local_addresses: Vec<Spanned<Cidr>>,
    /// Forward between interfaces (`net.ipv4.ip_forward`).
    #[serde(default = "yes")]
    pub forwarding: bool,
    /// Worker threads for the dataplane; 0 = one per core.
    #[serde(default)]
    pub workers: usize,
    /// Seed for `statistic --mode random` and NAT port choice; unset = from the OS.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Accept 127.0.0.0/8 destinations arriving from interfaces, as Linux's `route_localnet=1`
    /// (kube-proxy sets it for localhost NodePorts). Off by default, as in Linux.
    #[serde(default)]
    pub route_localnet: bool,
    /// Open the TUN devices with checksum and segmentation offloads (`IFF_VNET_HDR`,
    /// `TUNSETOFFLOAD`): TCP moves in super-packets of up to 64 KiB. On by default.
    #[serde(default = "yes")]
    pub offload: bool,
}

impl Default for RouterSection {
    fn default() -> Self {
        RouterSection {
            local_addresses: Vec::new(),
            forwarding: true,
            workers: 0,
            seed: None,
            route_localnet: false,
            offload: true,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// The name `-i`/`-o` match, and the TUN device's name.
    pub name: Spanned<String>,
    /// The router's own addresses on this link; connected routes follow from them.
    #[serde(default)]
    pub addresses: Vec<Spanned<Cidr>>,
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    /// The network namespace the TUN device is moved into.
    #[serde(default)]
    pub netns: Option<String>,
    /// Create `netns` when it does not exist (and delete it again on shutdown).
    #[serde(default)]
    pub create_netns: bool,
    /// The kernel side of the TUN device in `netns`.
    #[serde(default)]
    pub peer: Option<Peer>,
}

fn default_mtu() -> u32 {
    1500
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    #[serde(default)]
    pub addresses: Vec<Spanned<Cidr>>,
    /// Prefixes the namespace routes through the router.
    #[serde(default)]
    pub routes: Vec<Spanned<Cidr>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub to: Spanned<Cidr>,
    pub dev: Spanned<String>,
    #[serde(default)]
    pub via: Option<Spanned<IpAddr>>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RulesSection {
    /// iptables-restore files, applied in order.
    #[serde(default)]
    pub files: Vec<Spanned<String>>,
    /// iptables-restore text, applied after the files.
    #[serde(default)]
    pub inline: Option<Spanned<String>>,
    /// Chains written in TOML, applied last (appending to what the files built).
    #[serde(default)]
    pub chain: Vec<TomlChain>,
    /// ip6tables-restore files for IPv6 packets, applied in order.
    #[serde(default)]
    pub files6: Vec<Spanned<String>>,
    /// ip6tables-restore text, applied after `files6`.
    #[serde(default)]
    pub inline6: Option<Spanned<String>>,
    /// Chains of the IPv6 ruleset written in TOML (`[[rules.chain6]]`), applied last.
    #[serde(default)]
    pub chain6: Vec<TomlChain>,
}

/// A chain in TOML: `rules` are iptables rule specs (what follows `-A CHAIN`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TomlChain {
    #[serde(default = "default_table")]
    pub table: Spanned<String>,
    pub name: Spanned<String>,
    /// ACCEPT or DROP, built-in chains only.
    #[serde(default)]
    pub policy: Option<Spanned<String>>,
    #[serde(default)]
    pub rules: Vec<Spanned<String>>,
}

fn default_table() -> Spanned<String> {
    Spanned::new(0..0, "filter".to_string())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpSet {
    pub name: Spanned<String>,
    /// `hash:ip` or `hash:net`.
    #[serde(rename = "type", default = "default_set_type")]
    pub kind: Spanned<String>,
    #[serde(default)]
    pub entries: Vec<Spanned<String>>,
    /// `inet` (IPv4, the default) or `inet6`, as `ipset create ... family`.
    #[serde(default = "default_set_family")]
    pub family: Spanned<String>,
}

fn default_set_family() -> Spanned<String> {
    Spanned::new(0..0, "inet".to_string())
}

impl IpSet {
    /// The set's header: its type (`hash:net` when unknown) and family.
    pub fn header(&self) -> crate::ipset::Header {
        let kind = crate::ipset::SetType::parse(self.kind.get_ref()).unwrap_or(crate::ipset::SetType::HashNet);
        crate::ipset::Header {
            inet6: self.family.get_ref() == "inet6",
            ..crate::ipset::Header::simple(kind)
        }
    }
}

fn default_set_type() -> Spanned<String> {
    Spanned::new(0..0, "hash:net".to_string())
}

/// Connection tracking limits and timeouts (seconds), with Linux's defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConntrackSection {
    pub max_entries: usize,
    pub tcp_syn_sent: u32,
    pub tcp_syn_recv: u32,
    pub tcp_established: u32,
    pub tcp_fin_wait: u32,
    pub tcp_close_wait: u32,
    pub tcp_last_ack: u32,
    pub tcp_time_wait: u32,
    pub tcp_close: u32,
    pub tcp_unacknowledged: u32,
    pub udp: u32,
    pub udp_stream: u32,
    pub icmp: u32,
    pub generic: u32,
    /// Per-connection packet and byte counters in `conntrack -L` (`nf_conntrack_acct`).
    pub accounting: bool,
    /// Pick up TCP connections from a mid-stream segment (`nf_conntrack_tcp_loose`); false
    /// makes such a segment INVALID, as SYNPROXY setups want.
    pub tcp_loose: bool,
}

impl Default for ConntrackSection {
    fn default() -> Self {
        ConntrackSection {
            max_entries: 1 << 20,
            tcp_syn_sent: 120,
            tcp_syn_recv: 60,
            tcp_established: 432_000,
            tcp_fin_wait: 120,
            tcp_close_wait: 60,
            tcp_last_ack: 30,
            tcp_time_wait: 120,
            tcp_close: 10,
            tcp_unacknowledged: 300,
            udp: 30,
            udp_stream: 120,
            icmp: 30,
            generic: 600,
            accounting: false,
            tcp_loose: true,
        }
    }
}

/// `[[queue]]`: the program listening on an NFQUEUE queue is a plugin's target. A packet
/// `-j NFQUEUE` sends to queue `num` gets that target's verdict (its "continue" is the
/// listener's NF_ACCEPT: the packet goes on to the next table); a queue no entry names has
/// no listener (the packet is dropped, or accepted with `--queue-bypass`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    /// The queue number (`--queue-num`, or one of a `--queue-balance` range).
    pub num: Spanned<u16>,
    /// A `[[plugin]]` that exports a target.
    pub plugin: Spanned<String>,
    /// What the target is given, as `--args` of `-j WASM`.
    #[serde(default)]
    pub args: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plugin {
    /// What `-m wasm --plugin NAME` and `-j WASM --plugin NAME` name.
    pub name: Spanned<String>,
    /// The `.wasm` module.
    pub path: Spanned<String>,
    /// Linear memory cap per instance, in MiB.
    #[serde(default = "default_plugin_memory")]
    pub memory_mib: u32,
    /// Time allowed per call, in microseconds (rounded up to the epoch tick).
    #[serde(default = "default_plugin_timeout")]
    pub timeout_us: u64,
    /// What a failed call (trap, timeout, out of memory) counts as: `no-match` or `drop`.
    #[serde(default = "default_on_error")]
    pub on_error: Spanned<String>,
    /// How many bytes of each packet the plugin sees.
    #[serde(default = "default_snaplen")]
    pub max_bytes: u32,
    /// Consecutive failures after which the plugin is disabled until the next reload.
    #[serde(default = "default_disable_after")]
    pub disable_after: u32,
    /// Failures in any one second after which the plugin is disabled until
    /// the next reload: a plugin that fails now and then is caught too.
    #[serde(default = "default_max_failures_per_sec")]
    pub max_failures_per_sec: u32,
    /// Share of one core the plugin's calls may take in any one second before it is
    /// disabled until the next reload.
    #[serde(default = "default_max_cpu_percent")]
    pub max_cpu_percent: u32,
}

fn default_max_failures_per_sec() -> u32 {
    100
}
fn default_max_cpu_percent() -> u32 {
    50
}

fn default_plugin_memory() -> u32 {
    16
}
fn default_plugin_timeout() -> u64 {
    1000
}
fn default_on_error() -> Spanned<String> {
    Spanned::new(0..0, "no-match".to_string())
}
fn default_snaplen() -> u32 {
    2048
}
fn default_disable_after() -> u32 {
    100
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSection {
    /// The Unix socket `rtrouter save/restore/conntrack/stats` and the `iptables` front end
    /// talk to (mode 0600).
    #[serde(default)]
    pub socket: Option<String>,
    /// The largest request (an iptables-restore input) accepted, in MiB; a larger one is
    /// refused whole, before anything is read or applied.
    #[serde(default = "default_max_request_mib")]
    pub max_request_mib: u32,
    /// How many clients may be connected at once; more are answered "busy" and closed.
    #[serde(default = "default_max_clients")]
    pub max_clients: u32,
    /// Seconds a client may stay silent while sending its request before it is dropped.
    #[serde(default = "default_read_timeout")]
    pub read_timeout_secs: u32,
}

impl Default for ControlSection {
    fn default() -> Self {
        ControlSection {
            socket: None,
            max_request_mib: default_max_request_mib(),
            max_clients: default_max_clients(),
            read_timeout_secs: default_read_timeout(),
        }
    }
}

fn default_max_request_mib() -> u32 {
    512
}
fn default_max_clients() -> u32 {
    64
}
fn default_read_timeout() -> u32 {
    10
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// `ADDRESS:PORT` on one of the router's own addresses; off when unset.
    #[serde(default)]
    pub listen: Option<Spanned<String>>,
    /// Per-rule packet and byte series (off for rulesets so large the scrape would be too);
    /// `None` means on.
    #[serde(default)]
    pub per_rule: Option<bool>,
    /// `ADDRESS:PORT` in the host's own network namespace (e.g. `127.0.0.1:9100`), for a
    /// Prometheus agent on the host; off when unset.
    #[serde(default)]
    pub host_listen: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `error`, `warn`, `info`, `debug` or `trace` (or a tracing filter directive).
    #[serde(default = "default_level")]
    pub level: String,
    /// At most this many LOG/NFLOG lines per second (the kernel's printk rate limit).
    #[serde(default = "default_log_rate")]
    pub packet_log_rate: u32,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: default_level(),
            packet_log_rate: default_log_rate(),
        }
    }
}

fn default_level() -> String {
    "info".into()
}
fn default_log_rate() -> u32 {
    10
}

/// Line and column (1-based) of byte offset `at` in `text`.
pub fn line_col(text: &str, at: usize) -> (u32, u32) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() as u32 + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
    (line, col)
}

/// What the config file's text is needed for after parsing: turning spans into positions.
struct Source<'a> {
    file: Arc<str>,
    text: &'a str,
}

impl Source<'_> {
    fn err<T>(&self, s: &Spanned<T>, token: &str, msg: impl Into<String>) -> Error {
        let (line, col) = line_col(self.text, s.span().start);
        Error {
            file: self.file.clone(),
            line,
            col,
            token: token.to_string(),
            msg: msg.into(),
        }
    }
}

/// Where the values [`Config::check_runnable`] looks at stand in the text.
#[derive(Debug, Default, Deserialize)]
struct Spans {
    #[serde(default)]
    router: RouterSpans,
    #[serde(default)]
    conntrack: ConntrackSpans,
    #[serde(default)]
    log: LogSpans,
    #[serde(default)]
    control: ControlSpans,
    #[serde(default)]
    interface: Vec<InterfaceSpans>,
}

#[derive(Debug, Default, Deserialize)]
struct ControlSpans {
    max_request_mib: Option<Spanned<toml::Value>>,
    max_clients: Option<Spanned<toml::Value>>,
    read_timeout_secs: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
struct RouterSpans {
    workers: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
struct ConntrackSpans {
    max_entries: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
struct LogSpans {
    level: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
struct InterfaceSpans {
    netns: Option<Spanned<toml::Value>>,
}

/// `log.level`: a level, or comma-separated `TARGET=LEVEL` directives (a tracing filter).
/// Stricter than `EnvFilter`, which takes any bare word for a target and logs everything
/// from it.
fn check_log_level(spec: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let level = |l: &str| LEVELS.iter().any(|x| x.eq_ignore_ascii_case(l));
    for d in spec.split(',').map(str::trim) {
        let ok = match d.split_once('=') {
            None => level(d),
            Some((target, l)) => !target.is_empty() && level(l),
        };
        if !ok {
            return Err(format!(
                "`{d}' is neither a level ({}) nor TARGET=LEVEL",
                LEVELS.join(", ")
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(spec)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

impl Config {
    /// The sections of `new` that differ from this (running) config and cannot change while
    /// the router runs: a reload applies rules and plugins and reports these as needing a
    /// restart. Positions in the file do not count, only values.
    pub fn restart_needed(&self, new: &Config) -> Vec<&'static str> {
        fn cidrs(v: &[Spanned<Cidr>]) -> Vec<String> {
            v.iter().map(|c| format!("{:?}", c.get_ref())).collect()
        }
        let ifaces = |c: &Config| -> Vec<String> {
            c.interface
                .iter()
                .map(|i| {
                    format!(
                        "{} {:?} {} {:?} {} {:?}",
                        i.name.get_ref(),
                        cidrs(&i.addresses),
                        i.mtu,
                        i.netns,
                        i.create_netns,
                        i.peer.as_ref().map(|p| (cidrs(&p.addresses), cidrs(&p.routes)))
                    )
                })
                .collect()
        };
        let routes = |c: &Config| -> Vec<String> {
            c.route
                .iter()
                .map(|r| {
                    format!(
                        "{:?} {} {:?}",
                        r.to.get_ref(),
                        r.dev.get_ref(),
                        r.via.as_ref().map(|v| *v.get_ref())
                    )
                })
                .collect()
        };
        let router = |c: &Config| {
            let r = &c.router;
            (
                cidrs(&r.local_addresses),
                r.forwarding,
                r.workers,
                r.seed,
                r.route_localnet,
                r.offload,
            )
        };
        let ipsets = |c: &Config| -> Vec<String> {
            c.ipset
                .iter()
                .map(|s| {
                    let entries: Vec<&String> = s.entries.iter().map(|e| e.get_ref()).collect();
                    format!("{} {} {entries:?}", s.name.get_ref(), s.kind.get_ref())
                })
                .collect()
        };
        let mut out = Vec::new();
        if ifaces(self) != ifaces(new) {
            out.push("interface");
        }
        if routes(self) != routes(new) {
            out.push("route");
        }
        if router(self) != router(new) {
            out.push("router");
        }
        if ipsets(self) != ipsets(new) {
            out.push("ipset");
        }
        if format!("{:?}", self.conntrack) != format!("{:?}", new.conntrack) {
            out.push("conntrack");
        }
        if self.control.socket != new.control.socket
            || self.control.max_request_mib != new.control.max_request_mib
            || self.control.max_clients != new.control.max_clients
            || self.control.read_timeout_secs != new.control.read_timeout_secs
        {
            out.push("control");
        }
        if self.metrics.listen.as_ref().map(|s| s.get_ref()) != new.metrics.listen.as_ref().map(|s| s.get_ref()) {
            out.push("metrics.listen");
        }
        if self.metrics.host_listen.as_ref().map(|s| s.get_ref())
            != new.metrics.host_listen.as_ref().map(|s| s.get_ref())
        {
            out.push("metrics.host_listen");
        }
        if self.log.level != new.log.level || self.log.packet_log_rate != new.log.packet_log_rate {
            out.push("log");
        }
        if self.engine.kind != new.engine.kind {
            out.push("engine");
        }
        out
    }
}

/// The most dataplane threads `router.workers` may ask for.
pub const MAX_WORKERS: usize = 1024;

impl Config {
    /// Refuses values the types allow but the router cannot run with (`check` must not pass a
    /// config that then fails or hangs at start).
    fn check_runnable(&self, src: &Source, errors: &mut Vec<Error>) {
        let spans: Spans = toml::from_str(src.text).unwrap_or_default();
        let at = |s: Option<&Spanned<toml::Value>>, msg: String| {
            let (line, col) = s.map_or((0, 0), |s| line_col(src.text, s.span().start));
            Error {
                file: src.file.clone(),
                line,
                col,
                token: s.map(|s| s.get_ref().to_string()).unwrap_or_default(),
                msg,
            }
        };
        if self.router.workers > MAX_WORKERS {
            errors.push(at(
                spans.router.workers.as_ref(),
                format!(
                    "router.workers is {}: at most {MAX_WORKERS} (0 = one per core)",
                    self.router.workers
                ),
            ));
        }
        if self.conntrack.max_entries == 0 {
            errors.push(at(
                spans.conntrack.max_entries.as_ref(),
                "conntrack.max_entries must be at least 1".into(),
            ));
        }
        let c = &self.control;
        for (v, lo, hi, span, name) in [
            (
                c.max_request_mib,
                1,
                65536,
                &spans.control.max_request_mib,
                "control.max_request_mib",
            ),
            (
                c.max_clients,
                1,
                65536,
                &spans.control.max_clients,
                "control.max_clients",
            ),
            (
                c.read_timeout_secs,
                1,
                3600,
                &spans.control.read_timeout_secs,
                "control.read_timeout_secs",
            ),
        ] {
            if !(lo..=hi).contains(&v) {
                errors.push(at(span.as_ref(), format!("{name} is {v}: it must be {lo} to {hi}")));
            }
        }
        if let Err(why) = check_log_level(&self.log.level) {
            errors.push(at(
                spans.log.level.as_ref(),
                format!(
                    "log.level `{}' is not a level or a tracing filter: {why}",
                    self.log.level
                ),
            ));
        }
        for (i, iface) in self.interface.iter().enumerate() {
            let Some(ns) = &iface.netns else { continue };
            if ns.is_empty() || ns.len() > 255 || ns.contains(['/', '\0']) || ns == "." || ns == ".." {
                errors.push(at(
                    spans.interface.get(i).and_then(|s| s.netns.as_ref()),
                    format!("netns `{ns}' is not a namespace name (1 to 255 characters, no `/', not `.' or `..')"),
                ));
            }
        }
    }

    /// Reads and checks `path`: the TOML itself, then the references inside it.
    pub fn load(path: &Path) -> Result<Config, Errors> {
        let file: Arc<str> = Arc::from(path.display().to_string());
        let text = crate::ruleset::read_text(path, "config").map_err(|e| Errors(vec![e]))?;
        let mut c = Config::parse(&text, &file)?;
        c.path = path.to_path_buf();
        Ok(c)
    }

    /// Parses config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, Errors> {
        let file: Arc<str> = Arc::from(file);
        let c: Config = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map_or((0, 0), |s| line_col(text, s.start));
            let token = e
                .span()
                .map(|s| text.get(s).unwrap_or("").chars().take(40).collect())
                .unwrap_or_default();
            Errors(vec![Error {
                file: file.clone(),
                line,
                col,
                token,
                msg: e.message().to_string(),
            }])
        })?;
        c.check(&Source { file, text })?;
        Ok(c)
    }

    fn check(&self, src: &Source) -> Result<(), Errors> {
        let mut errors = Vec::new();
        let mut names = HashSet::new();
        for i in &self.interface {
            let n = i.name.get_ref();
            if n.is_empty() || n.len() > 15 || n.contains(['/', ' ', '+']) {
                errors.push(src.err(
                    &i.name,
                    n,
                    "interface names are 1 to 15 characters, without `/', `+' or blanks",
                ));
            }
            if !names.insert(n.clone()) {
                errors.push(src.err(&i.name, n, format!("interface `{n}' is declared twice")));
            }
            if !(68..=65535).contains(&i.mtu) {
                errors.push(src.err(&i.name, n, format!("mtu {} is outside 68..65535", i.mtu)));
            }
            if i.create_netns && i.netns.is_none() {
                errors.push(src.err(&i.name, n, "create_netns needs netns"));
            }
            if i.peer.is_some() && i.netns.is_none() {
                errors.push(src.err(
                    &i.name,
                    n,
                    "peer configures the kernel side inside a namespace: it needs netns",
                ));
            }
        }
        for r in &self.route {
            let d = r.dev.get_ref();
            if !names.contains(d) {
                errors.push(src.err(
                    &r.dev,
                    d,
                    format!("route through `{d}', which is not a declared [[interface]]"),
                ));
            }
            if let Some(v) = &r.via {
                if v.get_ref().is_ipv4() != r.to.get_ref().addr.is_ipv4() {
                    errors.push(src.err(
                        v,
                        &v.get_ref().to_string(),
                        "via and to are of different address families",
                    ));
                }
            }
        }
        let mut sets = HashSet::new();
        for s in &self.ipset {
            let n = s.name.get_ref();
            if !sets.insert(n.clone()) {
                errors.push(src.err(&s.name, n, format!("ipset `{n}' is declared twice")));
            }
            let kind = s.kind.get_ref();
            let Some(t) = crate::ipset::SetType::parse(kind) else {
                errors.push(src.err(
                    &s.kind,
                    kind,
                    "ipset type must be hash:ip, hash:net, hash:ip,port, hash:net,port, hash:ip,port,ip or bitmap:port",
                ));
                continue;
            };
            let family = s.family.get_ref();
            if family != "inet" && (family != "inet6" || t == crate::ipset::SetType::BitmapPort) {
                errors.push(src.err(
                    &s.family,
                    family,
                    "ipset family must be inet or inet6 (bitmap:port: inet)",
                ));
                continue;
            }
            let probe = crate::ipset::IpSet::new(s.header());
            for e in &s.entries {
                if let Err(m) = probe.parse_entry(e.get_ref()) {
                    errors.push(src.err(e, e.get_ref(), format!("not a valid {kind} entry: {m}")));
                }
            }
        }
        let mut plugins = HashSet::new();
        for p in &self.plugin {
            let n = p.name.get_ref();
            if !plugins.insert(n.clone()) {
                errors.push(src.err(&p.name, n, format!("plugin `{n}' is declared twice")));
            }
            let e = p.on_error.get_ref();
            if e != "no-match" && e != "drop" {
                errors.push(src.err(&p.on_error, e, "on_error must be `no-match' or `drop'"));
            }
        }
        let mut queues = HashSet::new();
        for q in &self.queue {
            let n = *q.num.get_ref();
            if !queues.insert(n) {
                errors.push(src.err(&q.num, &n.to_string(), format!("queue {n} is declared twice")));
            }
            let p = q.plugin.get_ref();
            if !plugins.contains(p) {
                errors.push(src.err(
                    &q.plugin,
                    p,
                    format!("queue {n} names plugin `{p}', which no [[plugin]] declares"),
                ));
            }
        }
        self.check_runnable(src, &mut errors);
        if let Some(l) = &self.metrics.listen {
            match l.get_ref().parse::<std::net::SocketAddr>() {
                Err(_) => errors.push(src.err(l, l.get_ref(), "metrics.listen must be ADDRESS:PORT")),
                Ok(a) => {
                    let ours = self
                        .interface
                        .iter()
                        .flat_map(|i| i.addresses.iter())
                        .chain(&self.router.local_addresses)
                        .any(|c| c.get_ref().addr == a.ip());
                    if !ours {
                        errors.push(src.err(
                            l,
                            l.get_ref(),
                            "metrics.listen must be one of the router's own addresses",
                        ));
                    }
                }
            }
        }
        if let Some(l) = &self.metrics.host_listen {
            if l.get_ref().parse::<std::net::SocketAddr>().is_err() {
                errors.push(src.err(l, l.get_ref(), "metrics.host_listen must be ADDRESS:PORT"));
            }
        }
        for ch in self.rules.chain.iter().chain(&self.rules.chain6) {
            if TableKind::from_name(ch.table.get_ref()).is_none() {
                errors.push(src.err(
                    &ch.table,
                    ch.table.get_ref(),
                    "table must be raw, mangle, nat or filter",
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Errors(errors))
        }
    }

    /// The folder paths in the config are relative to.
    pub fn base_dir(&self) -> PathBuf {
        self.path.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    /// The router's own IPv4 addresses: interface addresses and `router.local_addresses`.
    pub fn local_v4(&self) -> Vec<Ipv4Addr> {
        let all = self
            .interface
            .iter()
            .flat_map(|i| i.addresses.iter())
            .chain(self.router.local_addresses.iter());
        all.filter_map(|c| match c.get_ref().addr {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
        .collect()
    }

    /// What rules may refer to outside themselves.
    pub fn env(&self) -> Env {
        Env {
            ipsets: self.ipset.iter().map(|s| s.name.get_ref().clone()).collect(),
            plugins: None,
        }
    }

    /// Builds the ruleset: the files in order, then `inline`, then the TOML chains; validated.
    /// A config with `[[plugin]]`s needs them loaded: see [`crate::plugin::load`].
    pub fn ruleset(&self) -> Result<ValidRuleset, Errors> {
        self.ruleset_with(None)
    }

    /// As [`Config::ruleset`], binding wasm rules to `plugins`.
    pub fn ruleset_with(
        &self,
        plugins: Option<std::sync::Arc<dyn crate::ruleset::PluginBinder>>,
    ) -> Result<ValidRuleset, Errors> {
        self.family_ruleset(Family::V4, plugins)
    }

    /// The ip6tables ruleset (`files6`, then `inline6`), validated, binding wasm rules to
    /// `plugins`.
    pub fn ruleset6_with(
        &self,
        plugins: Option<std::sync::Arc<dyn crate::ruleset::PluginBinder>>,
    ) -> Result<ValidRuleset, Errors> {
        self.family_ruleset(Family::V6, plugins)
    }

    fn family_ruleset(
        &self,
        family: Family,
        plugins: Option<std::sync::Arc<dyn crate::ruleset::PluginBinder>>,
    ) -> Result<ValidRuleset, Errors> {
        let cfg_file: Arc<str> = Arc::from(self.path.display().to_string());
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let src = Source {
            file: cfg_file.clone(),
            text: &text,
        };
        let (files, inline, chains) = match family {
            Family::V4 => (&self.rules.files, &self.rules.inline, &self.rules.chain[..]),
            Family::V6 => (&self.rules.files6, &self.rules.inline6, &self.rules.chain6[..]),
        };
        let mut rs = Ruleset::new(family);
        let mut errors = Vec::new();
        for f in files {
            let p = self.base_dir().join(f.get_ref());
            match crate::ruleset::read_text(&p, "rules file") {
                Ok(t) => match restore(&rs, &t, &p.display().to_string(), true) {
                    Ok(next) => rs = next,
                    Err(e) => errors.extend(e.0),
                },
                // Cannot read: the error points at the config's line naming the file.
                Err(e) if e.line == 0 => errors.push(src.err(f, f.get_ref(), format!("{}: {}", p.display(), e.msg))),
                Err(e) => errors.push(e),
            }
        }
        if let Some(inline) = inline {
            // Positions inside the string: shift line numbers to where the string starts.
            let (line0, _) = line_col(&text, inline.span().start);
            let body = inline.get_ref();
            let skip = if text
                .get(inline.span().start..)
                .is_some_and(|t| t.starts_with("\"\"\"\n") || t.starts_with("'''\n"))
            {
                1
            } else {
                0
            };
            match crate::ruleset::restore::restore_at(&rs, body, &cfg_file, true, line0 + skip) {
                Ok(next) => rs = next,
                Err(e) => errors.extend(e.0),
            }
        }
        for ch in chains {
            if let Err(e) = apply_toml_chain(&mut rs, ch, &src) {
                errors.extend(e);
            }
        }
        if !errors.is_empty() {
            return Err(Errors(errors));
        }
        validate_owned(rs, &Env { plugins, ..self.env() })
    }
}

/// Appends a `[[rules.chain]]` to `rs`, creating the user chain if needed.
fn apply_toml_chain(rs: &mut Ruleset, ch: &TomlChain, src: &Source) -> Result<(), Vec<Error>> {
    let Some(kind) = TableKind::from_name(ch.table.get_ref()) else {
        return Ok(()); // reported by check()
    };
    let name = ch.name.get_ref();
    // One restore script per chain, with each rule on its own line, so errors map back to
    // the TOML string they came from.
    let mut script = format!("*{kind}\n");
    let builtin = rs
        .table(kind)
        .is_some_and(|t| t.chain(name).is_some_and(|c| c.policy.is_some()))
        || crate::ruleset::Hook::from_chain_name(name).is_some_and(|h| kind.builtin_hooks().contains(&h));
    let exists = rs.table(kind).is_some_and(|t| t.chain(name).is_some());
    let mut line_origin: HashMap<u32, (&Spanned<String>, usize)> = HashMap::new();
    if !builtin && !exists {
        script += &format!("-N {name}\n");
    }
    if let Some(p) = &ch.policy {
        if !builtin {
            return Err(vec![src.err(
                p,
                p.get_ref(),
                format!("only built-in chains have a policy; `{name}' is a user chain"),
            )]);
        }
        script += &format!("-P {name} {}\n", p.get_ref());
        line_origin.insert(script.lines().count() as u32, (p, 3 + name.len() + 1));
    }
    for r in &ch.rules {
        if tokenize(r.get_ref()).is_err() {
            return Err(vec![src.err(r, r.get_ref(), "unterminated quote in rule")]);
        }
        let prefix = format!("-A {name} ");
        script += &format!("{prefix}{}\n", r.get_ref());
        line_origin.insert(script.lines().count() as u32, (r, prefix.len()));
    }
    script += "COMMIT\n";
    let before = rs.table(kind).and_then(|t| t.chain(name)).map_or(0, |c| c.rules.len());
    match restore(rs, &script, &src.file, true) {
        Ok(mut next) => {
            // The rules this chain added point at their TOML strings, so that later errors
            // (validation) name the config's line and column, not the script's.
            if let Some(c) = next.tables[kind.index()].as_mut().and_then(|t| t.chain_mut(name)) {
                for r in c.rules.iter_mut().skip(before) {
                    if let Some((s, prefix)) = line_origin.get(&r.loc.line) {
                        let (line, col) = line_col(src.text, s.span().start);
                        let shift = |c: u32| {
                            if (c as usize) > *prefix {
                                col + c - *prefix as u32
                            } else {
                                col
                            }
                        };
                        r.update(|r| {
                            r.loc.col = shift(r.loc.col);
                            r.loc.target_col = shift(r.loc.target_col);
                            r.loc.line = line;
                        });
                    }
                }
            }
            *rs = next;
            Ok(())
        }
        Err(e) => Err(e
            .0
            .into_iter()
            .map(|e| match line_origin.get(&e.line) {
                Some((s, prefix)) => {
                    let (line, col) = line_col(src.text, s.span().start);
                    // +1 for the opening quote of the TOML string.
                    let col = if (e.col as usize) > *prefix {
                        col + 1 + e.col - 1 - *prefix as u32
                    } else {
                        col
                    };
                    Error { line, col, ..e }
                }
                None => src.err(&ch.name, name, e.msg),
            })
            .collect()),
    }
}

impl crate::ipset::IpSets {
    /// The `[[ipset]]` sets of a config (`hash:ip` or `hash:net`), with their entries.
    pub fn from_config(c: &Config) -> crate::ipset::IpSets {
        use crate::ipset::{AddOpts, IpSet};
        let sets = crate::ipset::IpSets::default();
        for s in &c.ipset {
            let set = IpSet::new(s.header());
            for e in &s.entries {
                // Checked when the config was loaded; an entry that still does not parse is
                // left out rather than failing the start.
                if let Ok(keys) = set.parse_entry(e.get_ref()) {
                    let _ = set.add(&keys, AddOpts::default(), true, 0);
                }
            }
            sets.insert(s.name.get_ref(), set);
        }
        sets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_name_line_and_column() {
        let e = Config::parse("[[interface]]\nname = \"lan0\"\nmtuu = 1400\n", "r.toml").unwrap_err();
        let e = &e.0[0];
        assert_eq!((e.line, e.col), (3, 1), "{e}");
        assert!(e.msg.contains("unknown field `mtuu`"), "{e}");
    }

    #[test]
    fn values_the_router_cannot_run_are_refused_with_their_place() {
        let bad = |text: &str, line: u32, what: &str| {
            let e = Config::parse(text, "r.toml").expect_err(text);
            let e = &e.0[0];
            assert_eq!(e.line, line, "{e}");
            assert!(e.col > 0, "{e}");
            assert!(e.msg.contains(what), "{e}");
        };
        bad("[router]\nworkers = 1000000\n", 2, "at most 1024");
        bad("[conntrack]\n\nmax_entries = 0\n", 3, "at least 1");
        bad("[log]\nlevel = \"loud!!\"\n", 2, "not a level");
        for ns in ["", "../../etc", "a/b", ".."] {
            bad(
                &format!("[[interface]]\nname = \"a0\"\n[[interface]]\nname = \"b0\"\nnetns = \"{ns}\"\n"),
                5,
                "not a namespace name",
            );
        }
        for ok in [
            "[router]\nworkers = 4\n",
            "[log]\nlevel = \"warn,rtrouter::plugin=debug\"\n",
            "[[interface]]\nname = \"a0\"\nnetns = \"rt-lan\"\n",
        ] {
            Config::parse(ok, "r.toml").expect(ok);
        }
    }

    #[test]
    fn queues_name_declared_plugins_once() {
        let plugin = "[[plugin]]\nname = \"ids\"\npath = \"ids.wasm\"\n";
        let e = Config::parse(&format!("{plugin}[[queue]]\nnum = 3\nplugin = \"idz\"\n"), "r.toml").unwrap_err();
        assert_eq!((e.0[0].line, e.0[0].token.as_str()), (6, "idz"), "{}", e.0[0]);
        assert!(e.0[0].msg.contains("no [[plugin]] declares"), "{}", e.0[0]);
        let twice = format!("{plugin}[[queue]]\nnum = 3\nplugin = \"ids\"\n[[queue]]\nnum = 3\nplugin = \"ids\"\n");
        let e = Config::parse(&twice, "r.toml").unwrap_err();
        assert_eq!(e.0[0].line, 8, "{}", e.0[0]);
        assert!(e.0[0].msg.contains("declared twice"), "{}", e.0[0]);
        let c = Config::parse(
            &format!("{plugin}[[queue]]\nnum = 3\nplugin = \"ids\"\nargs = \"strict\"\n"),
            "r.toml",
        )
        .unwrap();
        assert_eq!((*c.queue[0].num.get_ref(), c.queue[0].args.as_str()), (3, "strict"));
        assert!(Config::parse(&format!("{plugin}[[queue]]\nnum = 65536\nplugin = \"ids\"\n"), "r.toml").is_err());
    }

    #[test]
    fn wrong_types_are_errors() {
        let e = Config::parse("[[interface]]\nname = \"lan0\"\nmtu = \"big\"\n", "r.toml").unwrap_err();
        assert_eq!(e.0[0].line, 3, "{}", e.0[0]);
    }

    #[test]
    fn references_are_checked() {
        let e = Config::parse(
            "[[interface]]\nname = \"lan0\"\n[[route]]\nto = \"0.0.0.0/0\"\ndev = \"wan0\"\n",
            "r.toml",
        )
        .unwrap_err();
        assert_eq!((e.0[0].line, e.0[0].col, e.0[0].token.as_str()), (5, 7, "wan0"));
    }

    #[test]
    fn toml_chains_point_into_the_toml() {
        let dir = std::env::temp_dir().join(format!("rtrouter-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.toml");
        std::fs::write(&p, "[[rules.chain]]\nname = \"FORWARD\"\npolicy = \"DROP\"\nrules = [\n  \"-p tcp --dport 99999 -j ACCEPT\",\n]\n").unwrap();
        let c = Config::load(&p).unwrap();
        let e = c.ruleset().unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            (e.0[0].line, e.0[0].col, e.0[0].token.as_str()),
            (5, 19, "99999"),
            "{e}"
        );
    }

    #[test]
    fn validation_errors_in_rules_inside_the_config_name_the_config_line() {
        let dir = std::env::temp_dir().join(format!("rtrouter-cfg3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.toml");
        std::fs::write(
            &p,
            "[rules]\ninline = \"\"\"\n*filter\n-A INPUT -j NOPE\nCOMMIT\n\"\"\"\n\n[[rules.chain]]\nname = \"FORWARD\"\nrules = [\n  \"-p tcp -j ALSO_MISSING\",\n]\n",
        )
        .unwrap();
        let c = Config::load(&p).unwrap();
        let e = c.ruleset().unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        // The jump targets are checked at validation, after the rules were loaded.
        assert_eq!((e.0[0].line, e.0[0].col, e.0[0].token.as_str()), (4, 10, "NOPE"), "{e}");
        assert_eq!(
            (e.0[1].line, e.0[1].col, e.0[1].token.as_str()),
            (11, 11, "ALSO_MISSING"),
            "{e}"
        );
    }

    #[test]
    fn toml_chains_build_rules() {
        let dir = std::env::temp_dir().join(format!("rtrouter-cfg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.toml");
        std::fs::write(
            &p,
            "[[rules.chain]]\nname = \"FORWARD\"\npolicy = \"DROP\"\nrules = [\"-j LANOUT\"]\n[[rules.chain]]\nname = \"LANOUT\"\nrules = [\"-i lan0 -j ACCEPT\"]\n",
        )
        .unwrap();
        let c = Config::load(&p).unwrap();
        let r = c.ruleset();
        let _ = std::fs::remove_dir_all(&dir);
        // LANOUT is used before its own [[rules.chain]]: references resolve at validation.
        let v = r.unwrap();
        let saved = v.source().save(false);
        assert!(
            saved.contains(":FORWARD DROP") && saved.contains("-A FORWARD -j LANOUT\n-A LANOUT -i lan0 -j ACCEPT\n"),
            "{saved}"
        );
    }

    #[test]
    fn toml_chains_of_the_ipv6_ruleset() {
        let dir = std::env::temp_dir().join(format!("rtrouter-cfg6-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.toml");
        std::fs::write(
            &p,
            "[[rules.chain6]]\nname = \"INPUT\"\nrules = [\"-s 2001:db8::/32 -p ipv6-icmp -j ACCEPT\"]\n[[rules.chain]]\nname = \"INPUT\"\nrules = [\"-s 10.0.0.0/8 -j ACCEPT\"]\n[[rules.chain6]]\nname = \"OUTPUT\"\nrules = [\"-p icmp -m icmp --icmp-type 8 -j DROP\"]\n",
        )
        .unwrap();
        let e = Config::load(&p).and_then(|c| c.ruleset6_with(None)).unwrap_err();
        assert!(e.to_string().contains("r.toml:9:19: Couldn't load match `icmp'"), "{e}");
        std::fs::write(
            &p,
            "[[rules.chain6]]\nname = \"INPUT\"\nrules = [\"-s 2001:db8::/32 -p ipv6-icmp -j ACCEPT\"]\n[[rules.chain]]\nname = \"INPUT\"\nrules = [\"-s 10.0.0.0/8 -j ACCEPT\"]\n",
        )
        .unwrap();
        let c = Config::load(&p).unwrap();
        let (v4, v6) = (c.ruleset().unwrap(), c.ruleset6_with(None).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(v4.source().save(false).matches("-A INPUT").count(), 1);
        assert!(v6
            .source()
            .save(false)
            .contains("-A INPUT -s 2001:db8::/32 -p ipv6-icmp -j ACCEPT"));
    }
}
