//! The `rtrouter` command line. Errors become one line each on stderr and exit code 1; usage
//! errors exit 2 (clap's convention).

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use rtrouter::config::{Cidr, Config};
use rtrouter::eval::state::IpSets;
use rtrouter::eval::EngineKind;
use rtrouter::frontend::{Output, Tool};
use rtrouter::route::{IfaceInfo, NextHop, Topology};
use rtrouter::ruleset::restore::restore;
use rtrouter::ruleset::validate::validate_owned;
use rtrouter::ruleset::{Env, Errors, Family, Ruleset, ValidRuleset};
use rtrouter::trace::{self, CtSpec, Spec};
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Writes to stdout. When the reader has gone away (`rtrouter save | head -1`), ends the
/// process quietly with the status a shell reports for SIGPIPE, as Unix tools do, instead of
/// panicking.
fn emit(args: std::fmt::Arguments) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_fmt(args).and_then(|()| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("rtrouter: writing the output: {e}");
        std::process::exit(1);
    }
}

macro_rules! out {
    ($($t:tt)*) => { $crate::emit(format_args!($($t)*)) };
}

macro_rules! outln {
    ($($t:tt)*) => { $crate::emit(format_args!("{}\n", format_args!($($t)*))) };
}

#[path = "cli/bench.rs"]
mod bench;
#[path = "cli/plugin_new.rs"]
mod plugin_new;

#[derive(Parser, Debug)]
#[command(name = "rtrouter", version, about = "A userspace router with netfilter's semantics")]
struct Cli {
    /// The router configuration to run (`rtrouter --config router.toml`).
    #[arg(long, global = false)]
    config: Option<PathBuf>,
    /// How log lines are written to stderr: `text` (coloured only on a terminal) or `json`.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Where a ruleset comes from: a config (its rules and ipsets) or one iptables-restore file.
#[derive(Args, Debug)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("source").required(true).multiple(false)))]
struct Source {
    /// A router.toml: its rule files, inline rules and TOML chains.
    #[arg(long, group = "source")]
    config: Option<PathBuf>,
    /// An iptables-restore file (ip6tables-restore with -6).
    #[arg(long, group = "source")]
    rules: Option<PathBuf>,
    /// The control socket of a running router (`save` only): its live ruleset.
    #[arg(long, group = "source")]
    socket: Option<PathBuf>,
    /// The ip6tables ruleset: `--rules` is read as ip6tables-restore reads it, and with
    /// `--config` its `files6`/`inline6` are the rules.
    #[arg(short = '6', long = "ipv6")]
    ipv6: bool,
}

/// How to reach a running router: its control socket, or the config that names it.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct ControlArgs {
    /// The control socket.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// The router's config (its `control.socket`).
    #[arg(long)]
    config: Option<PathBuf>,
}

impl ControlArgs {
    fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(s) = &self.socket {
            return Ok(s.clone());
        }
        let cfg = self.config.as_ref().context("give --socket or --config")?;
        let c = Config::load(cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
        let dir = c.base_dir();
        c.control
            .socket
            .map(|s| dir.join(s))
            .context("the config sets no control.socket")
    }
}

/// Sends a control request and prints the answer; exit 1 with the server's message on error.
fn control(c: &ControlArgs, request: &str) -> anyhow::Result<ExitCode> {
    match rtrouter::dataplane::control::request_line(&c.path()?, request) {
        Ok(body) => {
            out!("{body}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("rtrouter: {}", e.strip_prefix("rtrouter: ").unwrap_or(&e));
            Ok(ExitCode::from(1))
        }
    }
}

/// `conntrack` as conntrack-tools' `conntrack` prints it: the entries on stdout, and on
/// stderr the summary line (`N flow entries have been shown.`) or what was deleted.
fn conntrack(c: &ControlArgs, args: &[String]) -> anyhow::Result<ExitCode> {
    const PROG: &str = "conntrack v1.4.7 (conntrack-tools)";
    if args.first().map(String::as_str) == Some("-E") {
        // Events as they happen, until the router goes away or the reader does.
        let r = rtrouter::dataplane::control::stream(&c.path()?, "monitor", &["conntrack".to_string()], |e| {
            outln!("{e}");
            true
        });
        return Ok(match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{PROG}: {e}");
                ExitCode::from(1)
            }
        });
    }
    match rtrouter::dataplane::control::request_line(&c.path()?, &format!("conntrack {}\n", args.join(" "))) {
        Ok(body) => {
            match args.first().map(String::as_str) {
                Some("-L") => {
                    out!("{body}");
                    eprintln!("{PROG}: {} flow entries have been shown.", body.lines().count());
                }
                Some("-F" | "-D") => eprint!("{PROG}: {body}"),
                _ => out!("{body}"),
            }
            // As conntrack-tools: deleting nothing is a failure.
            let nothing = args.first().map(String::as_str) == Some("-D") && body.starts_with("0 ");
            Ok(if nothing { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Err(e) => {
            eprintln!("{PROG}: {}", e.strip_prefix("rtrouter: ").unwrap_or(&e));
            // A router out of reach fails (1); a bad command line is a parameter problem (2).
            Ok(ExitCode::from(if e.contains("can't reach") { 1 } else { 2 }))
        }
    }
}

/// The front end (`iptables`, `iptables-save`, `iptables-restore`, `ipset`): help and version
/// locally, everything else through the router's control socket (`$RTROUTER_SOCKET`, else
/// the default path). Prints what the tool printed and exits with its status.
fn frontend_client(tool: Tool, args: Vec<String>) -> ExitCode {
    use std::io::{Read, Write};
    let finish = |o: Output| {
        out!("{}", o.stdout);
        let _ = std::io::stderr().write_all(o.stderr.as_bytes());
        ExitCode::from(o.code.clamp(0, 255) as u8)
    };
    if let Some(o) = rtrouter::frontend::local(tool, &args) {
        return finish(o);
    }
    let prog = format!("{} v{} (nf_tables)", tool.name(), rtrouter::frontend::IPTABLES_VERSION);
    let fail = |code: i32, msg: String| finish(Output::fail(code, format!("{prog}: {msg}")));
    let mut args = args;
    // Files are the client's: it reads the input and writes `-f FILE` with the caller's rights.
    let mut save_to: Option<PathBuf> = None;
    let (input, name) = match tool {
        Tool::Restore | Tool::Restore6 | Tool::Ipset => match rtrouter::frontend::input_file(tool, &mut args) {
            Some(path) => match std::fs::read(&path) {
                Ok(b) => (b, path),
                Err(e) => return fail(1, format!("can't open {path}: {e}")),
            },
            None if rtrouter::frontend::reads_stdin(tool, &args) => {
                let mut b = Vec::new();
                if let Err(e) = std::io::stdin().read_to_end(&mut b) {
                    return fail(1, format!("reading stdin: {e}"));
                }
                (b, "stdin".to_string())
            }
            None => (Vec::new(), String::new()),
        },
        Tool::Save | Tool::Save6 => {
            save_to = rtrouter::frontend::output_file(&mut args).map(PathBuf::from);
            (Vec::new(), String::new())
        }
        Tool::Iptables | Tool::Ip6tables => (Vec::new(), String::new()),
    };
    let socket = std::env::var_os("RTROUTER_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(rtrouter::dataplane::control::DEFAULT_SOCKET));
    match rtrouter::dataplane::control::request(&socket, tool.name(), &args, &input, &name) {
        Ok(mut o) => {
            if let Some(path) = save_to.filter(|_| o.code == 0) {
                if let Err(e) = std::fs::write(&path, o.stdout.as_bytes()) {
                    return fail(1, format!("can't write {}: {e}", path.display()));
                }
                o.stdout.clear();
            }
            finish(o)
        }
        // "Permission denied" (not root), "No such file" (no router): iptables' resource
        // problem status.
        Err(e) => fail(rtrouter::frontend::exit::RESOURCE, e),
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a config or ruleset; print a summary per table, or every error.
    Check(Source),
    /// Print a ruleset in canonical iptables-save form.
    Save {
        #[command(flatten)]
        source: Source,
        /// Include each rule's [packets:bytes] counters.
        #[arg(short = 'c', long = "counters")]
        counters: bool,
    },
    /// Run one synthetic packet through the ruleset and show every rule it visits.
    Trace(Box<TraceArgs>),
    /// Replace tables of the running router atomically (a file with an error changes nothing).
    Restore {
        #[command(flatten)]
        control: ControlArgs,
        /// iptables-restore file; each table it names replaces the running one.
        file: PathBuf,
        /// The file is ip6tables-restore's: it replaces tables of the IPv6 ruleset.
        #[arg(short = '6', long = "ipv6")]
        ipv6: bool,
    },
    /// List, flush or delete the running router's connections.
    Conntrack {
        #[command(flatten)]
        control: ControlArgs,
        /// -L [-o extended] [filters], -C, -S, -E (events), -F, or -D [filters]; filters: -p PROTO -s ADDR -d ADDR
        /// --sport N --dport N --mark N
        #[arg(allow_hyphen_values = true, num_args = 1.., required = true)]
        args: Vec<String>,
    },
    /// Re-read the running router's config: plugins and rules, swapped in atomically.
    Reload {
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Stream what the running router reports: `trace` prints every rule met by packets a
    /// `-j TRACE` rule (raw table) marked, as they pass.
    Monitor {
        #[command(flatten)]
        control: ControlArgs,
        /// What to stream: `trace`.
        what: String,
    },
    /// Remove every table of the running router (the state of a fresh network namespace).
    FlushAll {
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Create `iptables`, `iptables-save`, `iptables-restore` and `ipset` in DIR as links to
    /// this binary (the front end controllers run).
    InstallLinks {
        /// Where to put the links (e.g. /usr/local/sbin).
        dir: PathBuf,
        /// Replace files already there.
        #[arg(long)]
        force: bool,
    },
    /// Start a wasm plugin: `plugin new NAME [--dir DIR]` writes a crate that builds on its
    /// own (the SDK's sources come with it), from the template plugin.
    Plugin {
        /// `new`.
        #[arg(value_parser = ["new"])]
        action: String,
        /// The crate's name (and folder).
        name: String,
        /// Where to create it.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Interfaces, drop reasons and conntrack usage of the running router.
    Stats {
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Run a capture through the router offline; write what it emits.
    Replay {
        /// The router configuration (interfaces, routes, rules, conntrack limits).
        #[arg(long)]
        config: PathBuf,
        /// Input capture (pcapng, or classic pcap with --from).
        #[arg(long)]
        pcap: PathBuf,
        /// Output pcapng: every packet the router emits, on its egress interface (or `local`).
        #[arg(long)]
        out: PathBuf,
        /// Interface for packets whose capture interface has no name.
        #[arg(long)]
        from: Option<String>,
        /// Print one JSON line per input packet.
        #[arg(long)]
        json: bool,
        /// Overrides the config's `[engine] kind`.
        #[arg(long, value_parser = parse_engine)]
        engine: Option<EngineKind>,
    },
    /// What a ruleset costs: load and compile it, then time packets through the whole core.
    Bench(Box<bench::BenchArgs>),
    /// Print a generated ruleset (the benchmarks' workloads) in iptables-restore form.
    Generate {
        /// `kube-proxy` (N services, 3 endpoints each) or `acl` (N ClassBench-style 5-tuple rules).
        kind: String,
        /// How many services or rules.
        size: usize,
        /// Also write packets aimed at the ruleset, as `trace --packets` and `bench --packets`
        /// read them (1024 of them).
        #[arg(long)]
        packets: Option<PathBuf>,
        #[arg(long, default_value = "1")]
        seed: u64,
        /// The same workload as ip6tables rules and IPv6 packets (for `bench -6`).
        #[arg(short = '6', long = "ipv6")]
        ipv6: bool,
    },
}

#[derive(Args, Debug)]
struct TraceArgs {
    #[command(flatten)]
    source: Source,
    /// Ingress interface, or `local` for a packet the router itself sends.
    #[arg(long)]
    from: Option<String>,
    /// tcp, udp, icmp, ipv6-icmp, sctp or a protocol number.
    #[arg(long, default_value = "tcp")]
    proto: String,
    /// Source address, with :PORT for tcp/udp/sctp (default port 40000).
    #[arg(long)]
    src: Option<String>,
    /// Destination address, with :PORT for tcp/udp/sctp (default port 0).
    #[arg(long)]
    dst: Option<String>,
    /// The router's own addresses (addrtype LOCAL, the routing decision); default: from the config.
    #[arg(long = "local-ip")]
    local_ip: Vec<IpAddr>,
    /// PREFIX=IFACE routes for the routing decision (and so for -o and MASQUERADE).
    #[arg(long = "route")]
    route: Vec<String>,
    /// Connection state of the packet.
    #[arg(long, default_value = "NEW")]
    ctstate: String,
    /// The packet's mark (nfmark).
    #[arg(long, default_value = "0", value_parser = parse_u32)]
    mark: u32,
    /// TCP flags, comma-separated, or NONE.
    #[arg(long = "tcp-flags", default_value = "SYN")]
    tcp_flags: String,
    /// ICMP TYPE[/CODE] or name (ICMPv6's with `--proto ipv6-icmp`; default: echo request).
    #[arg(long = "icmp-type", default_value = "8/0")]
    icmp_type: String,
    #[arg(long, default_value = "64")]
    ttl: u8,
    /// Total IP length (padding as payload); default: the bare headers.
    #[arg(long, conflicts_with_all = ["payload_hex", "payload_file"])]
    length: Option<u16>,
    /// The transport payload, in hex (`--payload-hex 474554202f20`): for rules and plugins
    /// that look inside packets (`-m string`, `-m u32`, wasm plugins).
    #[arg(long = "payload-hex", conflicts_with = "payload_file")]
    payload_hex: Option<String>,
    /// The transport payload, from a file.
    #[arg(long = "payload-file")]
    payload_file: Option<PathBuf>,
    /// Accept 127.0.0.0/8 destinations from interfaces (Linux's route_localnet=1).
    #[arg(long = "route-localnet")]
    route_localnet: bool,
    /// Print one JSON object instead of the human-readable trace.
    #[arg(long)]
    json: bool,
    /// Many packets, one JSON object a line (`-` for stdin), keyed by this command's option
    /// names (`from`, `src`, `dst`, `proto`, `sport`, `dport`, `ctstate`, `mark`,
    /// `tcp_flags`, `icmp_type`, `ttl`, `length`, `payload_hex`); missing keys take the
    /// options' values.
    /// Prints one `--json` object a line.
    #[arg(long)]
    packets: Option<PathBuf>,
    /// `linear` (default: the walk, every rule tested is shown) or `compiled` (only the
    /// rules the classifier tested are shown; outcomes are the same).
    #[arg(long, default_value = "linear", value_parser = parse_engine)]
    engine: EngineKind,
}

fn parse_engine(s: &str) -> Result<EngineKind, String> {
    EngineKind::parse(s).ok_or_else(|| format!("`{s}': compiled or linear"))
}

fn parse_u32(s: &str) -> Result<u32, String> {
    rtrouter::ruleset::value::parse_uint(s, 0, u32::MAX.into())
        .map(|v| v as u32)
        .ok_or_else(|| format!("`{s}' is not a 32-bit number"))
}

/// `ADDR` or `ADDR:PORT`.
fn addr_port(s: &str, default_port: u16) -> anyhow::Result<(IpAddr, u16)> {
    if let Ok(a) = s.parse::<IpAddr>() {
        return Ok((a, default_port));
    }
    let sa: std::net::SocketAddr = s
        .parse()
        .with_context(|| format!("`{s}' is not ADDRESS or ADDRESS:PORT"))?;
    Ok((sa.ip(), sa.port()))
}

/// One packet to trace, as text: from the command line, overlaid by a `--packets` line.
#[derive(Debug, Clone, Default)]
struct SpecText {
    from: Option<String>,
    proto: String,
    src: Option<String>,
    dst: Option<String>,
    sport: Option<u16>,
    dport: Option<u16>,
    ctstate: String,
    mark: u32,
    tcp_flags: String,
    icmp_type: String,
    ttl: u8,
    length: Option<u16>,
    payload: Option<Vec<u8>>,
}

/// Bytes from hex digits (blanks and `:` between bytes allowed).
fn parse_hex(s: &str) -> anyhow::Result<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b':').collect();
    anyhow::ensure!(
        digits.len().is_multiple_of(2),
        "payload `{s}': an odd number of hex digits"
    );
    digits
        .chunks(2)
        .map(|c| {
            let t = std::str::from_utf8(c).unwrap_or("");
            u8::from_str_radix(t, 16).with_context(|| format!("payload: `{t}' is not a hex byte"))
        })
        .collect()
}

impl SpecText {
    fn from_args(a: &TraceArgs) -> SpecText {
        SpecText {
            from: a.from.clone(),
            proto: a.proto.clone(),
            src: a.src.clone(),
            dst: a.dst.clone(),
            sport: None,
            dport: None,
            ctstate: a.ctstate.clone(),
            mark: a.mark,
            tcp_flags: a.tcp_flags.clone(),
            icmp_type: a.icmp_type.clone(),
            ttl: a.ttl,
            length: a.length,
            payload: None,
        }
    }

    /// With the payload `--payload-hex` or `--payload-file` gives.
    fn with_payload(mut self, a: &TraceArgs) -> anyhow::Result<SpecText> {
        if let Some(h) = &a.payload_hex {
            self.payload = Some(parse_hex(h)?);
        }
        if let Some(f) = &a.payload_file {
            self.payload = Some(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?);
        }
        Ok(self)
    }

    /// These values overlaid by the keys of one `--packets` line.
    fn overlay(&self, line: &str) -> anyhow::Result<SpecText> {
        let v: serde_json::Value = serde_json::from_str(line).context("not JSON")?;
        let obj = v.as_object().context("not a JSON object")?;
        let mut t = self.clone();
        for (k, v) in obj {
            let text = || -> anyhow::Result<String> {
                match v {
                    serde_json::Value::String(s) => Ok(s.clone()),
                    serde_json::Value::Number(n) => Ok(n.to_string()),
                    _ => anyhow::bail!("`{k}': a string or a number"),
                }
            };
            let num = |max: u64| -> anyhow::Result<u64> {
                let s = text()?;
                rtrouter::ruleset::value::parse_uint(&s, 0, max)
                    .with_context(|| format!("`{k}': `{s}' is not a number up to {max}"))
            };
            match k.as_str() {
                "from" => t.from = Some(text()?),
                "src" => t.src = Some(text()?),
                "dst" => t.dst = Some(text()?),
                "proto" => t.proto = text()?,
                "sport" => t.sport = Some(num(65535)? as u16),
                "dport" => t.dport = Some(num(65535)? as u16),
                "ctstate" => t.ctstate = text()?,
                "mark" => t.mark = num(u32::MAX.into())? as u32,
                "tcp_flags" => t.tcp_flags = text()?,
                "icmp_type" => t.icmp_type = text()?,
                "ttl" => t.ttl = num(255)? as u8,
                "length" => {
                    t.length = Some(num(65535)? as u16);
                    t.payload = None;
                }
                "payload_hex" => {
                    t.payload = Some(parse_hex(&text()?)?);
                    t.length = None;
                }
                _ => anyhow::bail!("unknown key `{k}'"),
            }
        }
        Ok(t)
    }

    /// The packet, checked; `from` is returned as given (`local` or an interface name).
    fn spec(&self) -> anyhow::Result<Spec> {
        let from = self
            .from
            .as_deref()
            .context("no `from' (give --from or a \"from\" key)")?;
        let from = (from != "local").then(|| from.to_string());
        let proto = rtrouter::ruleset::value::parse_protocol(&self.proto)
            .with_context(|| format!("unknown protocol `{}'", self.proto))?;
        let (src, sport) = addr_port(
            self.src.as_deref().context("no `src' (give --src or a \"src\" key)")?,
            40000,
        )?;
        let (dst, dport) = addr_port(
            self.dst.as_deref().context("no `dst' (give --dst or a \"dst\" key)")?,
            0,
        )?;
        let ctstate = CtSpec::parse(&self.ctstate).with_context(|| {
            format!(
                "ctstate `{}': NEW, ESTABLISHED, RELATED, INVALID or UNTRACKED",
                self.ctstate
            )
        })?;
        let mut tcp_flags = 0u8;
        if !self.tcp_flags.eq_ignore_ascii_case("NONE") {
            for f in self.tcp_flags.split(',') {
                tcp_flags |= match f.to_ascii_uppercase().as_str() {
                    "FIN" => 0x01,
                    "SYN" => 0x02,
                    "RST" => 0x04,
                    "PSH" => 0x08,
                    "ACK" => 0x10,
                    "URG" => 0x20,
                    "ECE" => 0x40,
                    "CWR" => 0x80,
                    _ => anyhow::bail!("tcp flags: unknown flag `{f}'"),
                };
            }
        }
        let icmp = if proto == rtrouter::packet::proto::ICMPV6 {
            // The default echo request is ICMPv6's 128.
            let t = if self.icmp_type == "8/0" {
                "128/0"
            } else {
                &self.icmp_type
            };
            rtrouter::ruleset::matches::icmp6::parse_icmpv6_type(t)
        } else {
            rtrouter::ruleset::matches::parse_icmp_type(&self.icmp_type)
        }
        .map(|(t, (c, _))| (t, c))
        .with_context(|| format!("icmp type `{}': TYPE[/CODE]", self.icmp_type))?;
        Ok(Spec {
            from,
            proto,
            src,
            sport: self.sport.unwrap_or(sport),
            dst,
            dport: self.dport.unwrap_or(dport),
            ctstate,
            mark: self.mark,
            tcp_flags,
            icmp,
            ttl: self.ttl,
            length: self.length,
            payload: self.payload.clone(),
        })
    }
}

/// The lines of `--packets FILE|-`, numbered from 1, blank ones left out.
fn packet_lines(path: &Path) -> anyhow::Result<Vec<(usize, String)>> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading stdin")?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect())
}

/// The topology `trace` and `bench` run on: the config's, with `--local-ip`, `--route` and
/// every ingress interface the packets name added.
fn trace_topology(
    cfg: Option<&Config>,
    local_ip: &[IpAddr],
    routes: &[String],
    route_localnet: bool,
    specs: &[Spec],
) -> anyhow::Result<Topology> {
    let mut topo = cfg.map(Topology::from_config).unwrap_or_default();
    topo.route_localnet |= route_localnet;
    for ip in local_ip {
        topo.local.insert(*ip);
    }
    for r in routes {
        let (prefix, dev) = r
            .split_once('=')
            .with_context(|| format!("--route `{r}': expected PREFIX=IFACE"))?;
        let prefix = Cidr::parse(prefix).with_context(|| format!("--route `{r}': bad prefix"))?;
        let id = match topo.iface_id(dev) {
            Some(id) => id,
            None => topo.add_iface(IfaceInfo {
                name: dev.to_string(),
                addrs: vec![],
                mtu: 1500,
            }),
        };
        topo.routes.insert(prefix, NextHop { iface: id, via: None });
    }
    for s in specs {
        if let Some(from) = &s.from {
            if topo.iface_id(from).is_none() {
                topo.add_iface(IfaceInfo {
                    name: from.clone(),
                    addrs: vec![],
                    mtu: 1500,
                });
            }
        }
    }
    Ok(topo)
}

fn run_trace(a: TraceArgs) -> anyhow::Result<ExitCode> {
    let (rules, cfg, plugins) = match load(&a.source) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let ipsets = cfg.as_ref().map(IpSets::from_config).unwrap_or_default();
    let plugins = plugins.map(|p| p as std::sync::Arc<dyn rtrouter::eval::PluginHost>);
    let base = SpecText::from_args(&a).with_payload(&a)?;
    let Some(path) = &a.packets else {
        let spec = base.spec()?;
        let topo = trace_topology(
            cfg.as_ref(),
            &a.local_ip,
            &a.route,
            a.route_localnet,
            std::slice::from_ref(&spec),
        )?;
        let tracer = trace::Tracer::new(rules, &ipsets, &topo, plugins, a.engine);
        let outcomes = tracer.trace(&spec).map_err(|e| anyhow::anyhow!(e))?;
        if a.json {
            outln!("{}", trace::render_json(&outcomes));
        } else {
            out!("{}", trace::render_text(&outcomes));
        }
        return Ok(ExitCode::SUCCESS);
    };
    let name = path.display().to_string();
    let specs: Vec<(usize, anyhow::Result<Spec>)> = packet_lines(path)?
        .into_iter()
        .map(|(n, l)| (n, base.overlay(&l).and_then(|t| t.spec())))
        .collect();
    let good: Vec<Spec> = specs.iter().filter_map(|(_, s)| s.as_ref().ok().cloned()).collect();
    let topo = trace_topology(cfg.as_ref(), &a.local_ip, &a.route, a.route_localnet, &good)?;
    let tracer = trace::Tracer::new(rules, &ipsets, &topo, plugins, a.engine);
    let mut failed = 0usize;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (n, spec) in specs {
        match spec.and_then(|s| tracer.trace(&s).map_err(|e| anyhow::anyhow!(e))) {
            Ok(o) => {
                if writeln!(out, "{}", trace::render_json(&o)).is_err() {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Err(e) => {
                failed += 1;
                let _ = out.flush();
                eprintln!("{name}:{n}: {e:#}");
            }
        }
    }
    let _ = out.flush();
    if failed > 0 {
        eprintln!("{failed} line(s) of {name} had errors");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads what `src` names into a validated ruleset, plus the config when there is one.
type Loaded = (
    ValidRuleset,
    Option<Config>,
    Option<std::sync::Arc<rtrouter::plugin::Plugins>>,
);

fn load(src: &Source) -> Result<Loaded, Errors> {
    if let Some(sock) = &src.socket {
        return Err(Errors(vec![rtrouter::ruleset::Error {
            file: sock.display().to_string().into(),
            line: 0,
            col: 0,
            token: String::new(),
            msg: "--socket gives the live ruleset to `save' only; use --config or --rules here".into(),
        }]));
    }
    let family = if src.ipv6 { Family::V6 } else { Family::V4 };
    if let Some(path) = &src.config {
        let cfg = Config::load(path)?;
        let (rs, plugins) = rtrouter::plugin::load(&cfg, None)?;
        let rs = if src.ipv6 { rs.v6 } else { rs.v4 };
        return Ok((rs, Some(cfg), plugins));
    }
    let path = src.rules.as_deref().unwrap_or(Path::new("-"));
    let text = rtrouter::ruleset::read_text(path, "rules").map_err(|e| Errors(vec![e]))?;
    let rs = restore(&Ruleset::new(family), &text, &path.display().to_string(), false)?;
    Ok((validate_owned(rs, &Env::default())?, None, None))
}

fn summary(rs: &ValidRuleset) -> String {
    let mut out = String::new();
    for t in rs.tables() {
        let rules: usize = t.chains().map(|c| c.rules().len()).sum();
        let user = t.chains().filter(|c| c.policy().is_none()).count();
        out += &format!(
            "{}: {} chains ({} user), {} rules\n",
            t.kind(),
            t.chain_count(),
            user,
            rules
        );
    }
    if out.is_empty() {
        out = "no tables: every packet is accepted\n".into();
    }
    out
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Check(src)) => match load(&src) {
            Ok((rs, cfg, _)) => {
                if let Some(cfg) = cfg {
                    outln!(
                        "{}: ok ({} interfaces, {} routes, {} ipsets, {} plugins)",
                        cfg.path.display(),
                        cfg.interface.len(),
                        cfg.route.len(),
                        cfg.ipset.len(),
                        cfg.plugin.len()
                    );
                }
                out!("{}", summary(&rs));
                // One warning per rule whose match or target acts on something a TUN router
                // does not have (it loads and behaves as the kernel would without it).
                for t in rs.tables() {
                    for c in t.chains() {
                        for r in c.rules() {
                            for note in r.tun_notes() {
                                eprintln!("{}:{}:{}: warning: {note}", r.loc.file, r.loc.line, r.loc.col);
                            }
                        }
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                eprintln!("{} error(s)", e.0.len());
                Ok(ExitCode::from(1))
            }
        },
        Some(Command::Trace(a)) => run_trace(*a),
        Some(Command::Bench(a)) => bench::run(*a),
        Some(Command::Generate {
            kind,
            size,
            packets,
            seed,
            ipv6,
        }) => bench::generate(&kind, size, packets.as_deref(), seed, ipv6),
        Some(Command::Replay {
            config,
            pcap,
            out,
            from,
            json,
            engine,
        }) => {
            let cfg = match Config::load(&config) {
                Ok(mut c) => {
                    if let Some(k) = engine {
                        c.engine.kind = k;
                    }
                    c
                }
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let router = match rtrouter::replay::router_from_config(&cfg) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let input = std::fs::read(&pcap).with_context(|| format!("reading {}", pcap.display()))?;
            let seed = cfg.router.seed.unwrap_or(0);
            let r = match rtrouter::replay::replay(&router, &input, from.as_deref(), seed) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{}: {e}", pcap.display());
                    return Ok(ExitCode::from(1));
                }
            };
            std::fs::write(&out, &r.pcapng).with_context(|| format!("writing {}", out.display()))?;
            if json {
                for rec in &r.records {
                    outln!("{}", rec.json());
                }
            } else {
                outln!("{}", rtrouter::replay::summary(&r));
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Restore { control: c, file, ipv6 }) => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let family = if ipv6 { Family::V6 } else { Family::V4 };
            // Check locally first so errors name the file; the router checks again.
            if let Err(e) = restore(&Ruleset::new(family), &text, &file.display().to_string(), false) {
                eprintln!("{e}");
                eprintln!("nothing was changed");
                return Ok(ExitCode::from(1));
            }
            let name = file.display().to_string().replace(['\n', '\r'], "?");
            control(&c, &format!("restore {}{name}\n{text}", if ipv6 { "-6 " } else { "" }))
        }
        Some(Command::Conntrack { control: c, args }) => conntrack(&c, &args),
        Some(Command::Stats { control: c }) => control(&c, "stats\n"),
        Some(Command::FlushAll { control: c }) => control(&c, "flush-all\n"),
        Some(Command::Monitor { control: c, what }) => {
            let r = rtrouter::dataplane::control::stream(&c.path()?, "monitor", &[what], |e| {
                outln!("{e}");
                true
            });
            match r {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("rtrouter: {}", e.strip_prefix("rtrouter: ").unwrap_or(&e));
                    Ok(ExitCode::from(1))
                }
            }
        }
        Some(Command::Plugin { action: _, name, dir }) => match plugin_new::create(&name, &dir) {
            Ok(path) => {
                outln!(
                    "created {}: cd there, then `cargo test` (natively) and `cargo build --release --target wasm32-unknown-unknown`",
                    path.display()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("rtrouter: {e}");
                Ok(ExitCode::from(1))
            }
        },
        Some(Command::InstallLinks { dir, force }) => {
            let exe = std::env::current_exe().context("finding this binary")?;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for name in Tool::LINKS {
                let link = dir.join(name);
                if force && link.symlink_metadata().is_ok() {
                    std::fs::remove_file(&link).with_context(|| format!("removing {}", link.display()))?;
                }
                std::os::unix::fs::symlink(&exe, &link).with_context(|| format!("creating {}", link.display()))?;
                outln!("{} -> {}", link.display(), exe.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Reload { control: c }) => control(&c, "reload\n"),
        Some(Command::Save { source, counters }) if source.socket.is_some() => {
            let c = ControlArgs {
                socket: source.socket,
                config: None,
            };
            let req = format!(
                "save{}{}\n",
                if counters { " -c" } else { "" },
                if source.ipv6 { " -6" } else { "" }
            );
            control(&c, &req)
        }
        Some(Command::Save { source, counters }) => match load(&source) {
            Ok((rs, _, _)) => {
                out!("{}", rs.source().save(counters));
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(1))
            }
        },
        None => {
            let path = cli
                .config
                .context("nothing to do: give --config router.toml, or a command (see --help)")?;
            let src = Source {
                config: Some(path),
                rules: None,
                socket: None,
                ipv6: false,
            };
            let cfg = match Config::load(&src.config.expect("set above")) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let (router, plugins) = match rtrouter::replay::router_and_plugins(&cfg) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(1));
                }
            };
            run_router(cfg, router, plugins)
        }
    }
}

/// `rtrouter --config router.toml`: sets the interfaces up, forwards until SIGINT or SIGTERM,
/// then removes what it created.
fn run_router(
    cfg: Config,
    router: rtrouter::router::Router,
    plugins: Option<std::sync::Arc<rtrouter::plugin::Plugins>>,
) -> anyhow::Result<ExitCode> {
    use rtrouter::dataplane::device::PacketDevice;
    use rtrouter::dataplane::Dataplane;
    let workers = if cfg.router.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        cfg.router.workers
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    let seed = cfg.router.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        // Taken over before anything is created, so that a SIGTERM or SIGINT during start-up
        // ends in the same clean stop (the streams keep a signal that arrived until polled).
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let dp = match Dataplane::setup(&cfg, router) {
            Ok(dp) => {
                *dp.plugins.lock().unwrap_or_else(|e| e.into_inner()) = plugins;
                std::sync::Arc::new(dp)
            }
            Err(e) => {
                eprintln!("rtrouter: {e}");
                return Ok(ExitCode::from(1));
            }
        };
        let names: Vec<&str> = dp.devices.iter().map(|d| d.name()).collect();
        eprintln!(
            "rtrouter: running on {} (SIGINT or SIGTERM stops, SIGHUP reloads)",
            names.join(", ")
        );
        // SIGHUP reloads the config as `rtrouter reload` does, off the packet workers;
        // SIGUSR1 logs the statistics. Neither stops the router.
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
            let mut usr1 = signal(SignalKind::user_defined1()).expect("SIGUSR1 handler");
            let dp = dp.clone();
            tokio::spawn(async move {
                loop {
                    let what = tokio::select! {
                        _ = hup.recv() => "reload",
                        _ = usr1.recv() => "stats",
                    };
                    let d = dp.clone();
                    let r = tokio::task::spawn_blocking(move || {
                        let req = rtrouter::dataplane::control::Request {
                            v: rtrouter::dataplane::control::VERSION,
                            cmd: what.into(),
                            args: Vec::new(),
                            input_name: String::new(),
                            input_len: 0,
                        };
                        let o = rtrouter::dataplane::control::run(&d, &req, b"");
                        if o.code == 0 {
                            Ok(o.stdout)
                        } else {
                            Err(o.stderr.trim_end().to_string())
                        }
                    })
                    .await;
                    match r {
                        Ok(Ok(text)) => tracing::info!(
                            "SIG{}: {}",
                            if what == "reload" { "HUP" } else { "USR1" },
                            text.trim_end()
                        ),
                        Ok(Err(e)) => tracing::error!("SIGHUP: reload refused, nothing changed: {e}"),
                        Err(e) => tracing::error!("signal handler: {e}"),
                    }
                }
            });
        }
        let shutdown = async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        };
        let socket = cfg.control.socket.as_ref().map(|s| cfg.base_dir().join(s));
        let metrics = cfg.metrics.listen.as_ref().and_then(|l| l.get_ref().parse().ok());
        let r = dp.clone().run(seed, socket, metrics, shutdown).await;
        dp.teardown();
        match r {
            Ok(()) => {
                eprintln!("rtrouter: stopped");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("rtrouter: {e}");
                Ok(ExitCode::from(1))
            }
        }
    })
}

/// Logs to stderr; `RUST_LOG` overrides the level (default `warn`, where LOG targets' default
/// level 4 lines appear; `rtrouter --config` uses the config's `log.level`). Colours only when
/// stderr is a terminal (not in files or the journal); `json` writes one JSON object a line.
fn init_logging(default: &str, format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let _ = match format {
        LogFormat::Json => b.json().try_init(),
        LogFormat::Text => b.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    // Multi-call: run as `iptables` (a link), or `rtrouter iptables ...`.
    let mut argv: Vec<String> = std::env::args().collect();
    if let Some(tool) = argv.first().and_then(|a| Tool::from_name(a)) {
        return frontend_client(tool, argv.split_off(1));
    }
    if let Some(tool) = argv
        .get(1)
        .and_then(|a| Tool::from_name(a).filter(|_| !a.contains('/')))
    {
        return frontend_client(tool, argv.split_off(2));
    }
    let cli = Cli::parse();
    // The running router logs at its config's level; the other commands warn only.
    let level = match (&cli.command, &cli.config) {
        (None, Some(p)) => Config::load(p).map(|c| c.log.level).unwrap_or_else(|_| "warn".into()),
        _ => "warn".into(),
    };
    init_logging(&level, cli.log_format);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rtrouter: {e:#}");
            ExitCode::from(1)
        }
    }
}
