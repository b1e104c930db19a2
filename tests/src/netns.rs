//! Network-namespace test topologies with the real `rtrouter` binary between them.
//!
//! ```text
//!   [netns …l]  10.0.1.2 ──TUN── rtrouter ──TUN── 10.0.2.2 (+ extra)  [netns …w]
//!                        10.0.1.1            10.0.2.1
//! ```
//!
//! Every topology gets unique namespace and device names, creates its namespaces itself,
//! and removes everything in `Drop` (router stopped with SIGTERM, then SIGKILL after a bound;
//! namespaces deleted), also when a test panics. Traffic only ever goes to addresses inside
//! these namespaces. Without root or `/dev/net/tun` the tests skip with one line.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rtrouter::dataplane::netns;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Which namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Lan,
    Wan,
}

/// Whether these tests can run here; prints the reason once per test when not.
pub fn available() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let tun = std::path::Path::new("/dev/net/tun").exists();
    if !(root && tun) {
        println!("SKIP: network-namespace tests need root and /dev/net/tun (root: {root}, /dev/net/tun: {tun})");
    }
    root && tun
}

/// The rtrouter binary cargo built for this test run (target/debug/rtrouter).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("rtrouter");
    assert!(
        bin.exists(),
        "{} is missing: `cargo test --workspace` builds it (or run `cargo build -p rtrouter`)",
        bin.display()
    );
    bin
}

/// A running topology.
#[derive(Debug)]
pub struct Net {
    pub id: String,
    pub lan_ns: String,
    pub wan_ns: String,
    pub lan_if: String,
    pub wan_if: String,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    owned_ns: Vec<String>,
}

/// How to build a topology.
#[derive(Debug, Default)]
pub struct Spec<'a> {
    /// iptables-restore text for the router.
    pub rules: &'a str,
    /// Extra addresses (`a.b.c.d/24`) on the WAN namespace's side.
    pub wan_extra: &'a [&'a str],
    /// Let the router create the namespaces itself (`create_netns = true`) instead of the test.
    pub router_creates_netns: bool,
    /// Serve metrics on 10.0.1.1:9100.
    pub metrics: bool,
    /// More TOML appended to the config (e.g. `[[plugin]]` tables).
    pub extra: &'a str,
    /// More keys of the `[control]` table.
    pub control: &'a str,
    /// Environment variables for the router process.
    pub env: &'a [(&'a str, &'a str)],
    /// `[metrics] host_listen`, when not empty.
    pub host_metrics: &'a str,
    /// ip6tables-restore text: when not empty the topology is dual-stack, with
    /// 2001:db8:1::/64 on the LAN (router ::1, peer ::2) and 2001:db8:2::/64 on the WAN.
    pub rules6: &'a str,
    /// Extra IPv6 addresses (`…/64`) on the WAN namespace's side.
    pub wan_extra6: &'a [&'a str],
}

impl Net {
    /// Builds the topology and starts rtrouter; `None` (after one SKIP line) when the
    /// machine cannot run namespace tests.
    pub fn start(spec: Spec) -> Option<Net> {
        if !available() {
            return None;
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:x}{n}", std::process::id() % 0xfffff);
        let dir = std::env::temp_dir().join(format!("rtrouter-netns-{id}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut net = Net {
            lan_ns: format!("rtt{id}l"),
            wan_ns: format!("rtt{id}w"),
            lan_if: format!("tl{id}"),
            wan_if: format!("tw{id}"),
            socket: dir.join("control.sock"),
            log: dir.join("rtrouter.log"),
            dir,
            id,
            child: None,
            owned_ns: Vec::new(),
        };
        if !spec.router_creates_netns {
            for ns in [net.lan_ns.clone(), net.wan_ns.clone()] {
                netns::create(&ns).unwrap_or_else(|e| panic!("creating {ns}: {e}"));
                net.owned_ns.push(ns);
            }
        } else {
            // Still ours to remove if the router fails to.
            net.owned_ns = vec![net.lan_ns.clone(), net.wan_ns.clone()];
        }
        std::fs::write(net.dir.join("rules"), spec.rules).expect("rules file");
        std::fs::write(net.dir.join("rules6"), spec.rules6).expect("rules6 file");
        let v6 = !spec.rules6.is_empty();
        let (lan6, lan_peer6, wan6, wan_peer6, route6, files6) = if v6 {
            let extra6: String = spec.wan_extra6.iter().map(|a| format!(", \"{a}\"")).collect();
            (
                ", \"2001:db8:1::1/64\"",
                ", \"2001:db8:1::2/64\"], routes = [\"0.0.0.0/0\", \"::/0\"".to_string(),
                ", \"2001:db8:2::1/64\"",
                format!(", \"2001:db8:2::2/64\"{extra6}], routes = [\"10.0.1.0/24\", \"2001:db8:1::/64\""),
                "[[route]]\nto = \"::/0\"\ndev = \"{wan_if}\"\nvia = \"2001:db8:2::2\"\n",
                "files6 = [\"rules6\"]",
            )
        } else {
            (
                "",
                "], routes = [\"0.0.0.0/0\"".to_string(),
                "",
                "], routes = [\"10.0.1.0/24\"".to_string(),
                "",
                "",
            )
        };
        let route6 = route6.replace("{wan_if}", &net.wan_if);
        let extra: Vec<String> = spec.wan_extra.iter().map(|a| format!("\"{a}\"")).collect();
        let create = spec.router_creates_netns;
        let config = format!(
            r#"[router]
seed = 1
[[interface]]
name = "{lan_if}"
addresses = ["10.0.1.1/24"{lan6}]
netns = "{lan_ns}"
create_netns = {create}
peer = {{ addresses = ["10.0.1.2/24"{lan_peer6}] }}
[[interface]]
name = "{wan_if}"
addresses = ["10.0.2.1/24"{wan6}]
netns = "{wan_ns}"
create_netns = {create}
peer = {{ addresses = ["10.0.2.2/24"{comma}{extra}{wan_peer6}] }}
[[route]]
to = "0.0.0.0/0"
dev = "{wan_if}"
via = "10.0.2.2"
{route6}
[rules]
files = ["rules"]
{files6}
[control]
socket = "control.sock"
{control}
{metrics}
[log]
level = "info"
{more}
"#,
            more = spec.extra,
            control = spec.control,
            metrics = match (spec.metrics, spec.host_metrics) {
                (false, "") => String::new(),
                (true, "") => "[metrics]\nlisten = \"10.0.1.1:9100\"".to_string(),
                (false, h) => format!("[metrics]\nhost_listen = \"{h}\""),
                (true, h) => format!("[metrics]\nlisten = \"10.0.1.1:9100\"\nhost_listen = \"{h}\""),
            },
            lan_if = net.lan_if,
            wan_if = net.wan_if,
            lan_ns = net.lan_ns,
            wan_ns = net.wan_ns,
            comma = if extra.is_empty() { "" } else { ", " },
            lan6 = lan6,
            lan_peer6 = lan_peer6,
            wan6 = wan6,
            wan_peer6 = wan_peer6,
            route6 = route6,
            files6 = files6,
            extra = extra.join(", "),
        );
        std::fs::write(net.dir.join("router.toml"), config).expect("config");
        let log = std::fs::File::create(&net.log).expect("log file");
        let child = Command::new(binary())
            .arg("--config")
            .arg(net.dir.join("router.toml"))
            .envs(spec.env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start rtrouter");
        net.child = Some(child);
        net.wait_ready();
        Some(net)
    }

    /// Waits (at most 10 s) until the control socket answers.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("rtrouter exited with {status}:\n{}", self.log_text());
            }
            if rtrouter::dataplane::control::request_line(&self.socket, "stats").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("rtrouter did not become ready in 10 s:\n{}", self.log_text());
    }

    /// Sends `sig` to the router.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = self.child.as_ref().expect("running").id();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).expect("signal sent");
    }

    /// The router's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Whether the router process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn ns(&self, side: Side) -> &str {
        match side {
            Side::Lan => &self.lan_ns,
            Side::Wan => &self.wan_ns,
        }
    }

    /// Runs `f` inside a namespace; sockets it opens stay in that namespace.
    pub fn run<T: Send + 'static>(
        &self,
        side: Side,
        f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<T> {
        netns::run_in(self.ns(side), f)
    }

    /// Sends a control request.
    pub fn control(&self, req: &str) -> Result<String, String> {
        rtrouter::dataplane::control::request_line(&self.socket, req)
    }

    /// Stops the router with SIGTERM and waits (at most 10 s) for it; returns its exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.stop();
        for ns in &self.owned_ns {
            if netns::exists(ns) {
                let _ = netns::delete(ns);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a link of this name exists in the current (root) namespace.
pub fn link_exists(name: &str) -> bool {
    rtrouter::dataplane::netlink::Netlink::open()
        .and_then(|mut nl| nl.link_index(name))
        .is_ok()
}

/// A TCP echo server in a namespace: answers each line with `<local address> <line>`.
/// Returns when the listener is bound; serves at most `max` connections, each bounded.
pub fn tcp_echo(net: &Net, side: Side, addr: SocketAddr, max: usize) {
    let l = net
        .run(side, move || std::net::TcpListener::bind(addr))
        .expect("bind echo server");
    std::thread::spawn(move || {
        for _ in 0..max {
            let Ok((mut s, _)) = l.accept() else { return };
            std::thread::spawn(move || {
                use std::io::{BufRead, BufReader, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let local = s.local_addr().map(|a| a.ip().to_string()).unwrap_or_default();
                let peer = s.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
                let Ok(r) = s.try_clone() else { return };
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    if s.write_all(format!("{local} {peer} {line}\n").as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// Sends `line` over `s` and reads the answer line.
pub fn ask(s: &mut std::net::TcpStream, line: &str) -> std::io::Result<String> {
    use std::io::{BufRead, BufReader, Write};
    s.write_all(format!("{line}\n").as_bytes())?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut out = String::new();
    r.read_line(&mut out)?;
    Ok(out.trim_end().to_string())
}

/// The ICMP checksum of `msg` (its checksum field zero).
fn icmp_checksum(msg: &[u8]) -> u16 {
    let mut sum: u32 = msg
        .chunks(2)
        .map(|c| (u32::from(c[0]) << 8) | u32::from(*c.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends an ICMP echo request with `ttl` from inside a namespace (a raw socket) and waits at
/// most `timeout` for an ICMP message of `want_type` (0: echo reply, 11: time exceeded);
/// returns its source address.
pub fn icmp_probe(
    net: &Net,
    side: Side,
    dst: Ipv4Addr,
    ttl: u32,
    want_type: u8,
    timeout: Duration,
) -> std::io::Result<Option<Ipv4Addr>> {
    use socket2::{Domain, Protocol, Socket, Type};
    net.run(side, move || {
        let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
        raw.set_ttl(ttl)?;
        // A std datagram socket reads and writes any datagram descriptor, raw ones included.
        let s: std::net::UdpSocket = raw.into();
        s.set_read_timeout(Some(timeout))?;
        let id = (std::process::id() & 0xffff) as u16;
        let mut msg = vec![8u8, 0, 0, 0];
        msg.extend_from_slice(&id.to_be_bytes());
        msg.extend_from_slice(&1u16.to_be_bytes());
        msg.extend_from_slice(b"rtrouter-probe");
        let sum = icmp_checksum(&msg);
        msg[2..4].copy_from_slice(&sum.to_be_bytes());
        s.send_to(&msg, SocketAddr::from((dst, 0)))?;
        await_packet(&s, timeout, 1500, |b| {
            let hl = usize::from(b[0] & 15) * 4;
            (b.len() > hl && b[9] == 1 && b[hl] == want_type).then(|| Ipv4Addr::new(b[12], b[13], b[14], b[15]))
        })
    })
}

/// Reads packets (IP header included, as a raw socket gives them) from `s` for at most
/// `timeout` until `want` picks one; `None` when none came.
fn await_packet<T>(
    s: &std::net::UdpSocket,
    timeout: Duration,
    size: usize,
    mut want: impl FnMut(&[u8]) -> Option<T>,
) -> std::io::Result<Option<T>> {
    let deadline = Instant::now() + timeout;
    let mut b = vec![0u8; size];
    while Instant::now() < deadline {
        let n = match s.recv_from(&mut b) {
            Ok((n, _)) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        if let Some(t) = want(&b[..n]) {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// Sends an ICMP echo request with `size` bytes of data from inside a namespace (a raw
/// socket; the kernel fragments what exceeds its link's MTU) and waits at most `timeout` for
/// the echo reply: its source and data.
pub fn icmp_echo_sized(
    net: &Net,
    side: Side,
    dst: Ipv4Addr,
    size: usize,
    timeout: Duration,
) -> std::io::Result<Option<(Ipv4Addr, Vec<u8>)>> {
    use socket2::{Domain, Protocol, Socket, Type};
    net.run(side, move || {
        let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
        let s: std::net::UdpSocket = raw.into();
        s.set_read_timeout(Some(timeout))?;
        let id = (std::process::id() & 0xffff) as u16 ^ 0x5a5a;
        let mut msg = vec![8u8, 0, 0, 0];
        msg.extend_from_slice(&id.to_be_bytes());
        msg.extend_from_slice(&7u16.to_be_bytes());
        msg.extend((0..size).map(|i| (i % 253) as u8));
        let sum = icmp_checksum(&msg);
        msg[2..4].copy_from_slice(&sum.to_be_bytes());
        s.send_to(&msg, SocketAddr::from((dst, 0)))?;
        await_packet(&s, timeout, 65536, |b| {
            let hl = usize::from(b[0] & 15) * 4;
            (b.len() >= hl + 8 && b[9] == 1 && b[hl] == 0 && b[hl + 4..hl + 6] == id.to_be_bytes())
                .then(|| (Ipv4Addr::new(b[12], b[13], b[14], b[15]), b[hl + 8..].to_vec()))
        })
    })
}

/// `icmp_probe` for IPv6: an ICMPv6 echo request with hop limit `hops` from a raw socket
/// in a namespace; waits at most `timeout` for an ICMPv6 message of `want_type` (129: echo
/// reply, 3: time exceeded, 1: unreachable) and returns its source.
pub fn icmp6_probe(
    net: &Net,
    side: Side,
    dst: std::net::Ipv6Addr,
    hops: u32,
    want_type: u8,
    timeout: Duration,
) -> std::io::Result<Option<std::net::Ipv6Addr>> {
    use socket2::{Domain, Protocol, Socket, Type};
    net.run(side, move || {
        let raw = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
        raw.set_unicast_hops_v6(hops)?;
        // The kernel fills in ICMPv6 checksums on raw ICMPv6 sockets.
        let s: std::net::UdpSocket = raw.into();
        s.set_read_timeout(Some(timeout))?;
        let id = (std::process::id() & 0xffff) as u16;
        let mut msg = vec![128u8, 0, 0, 0];
        msg.extend_from_slice(&id.to_be_bytes());
        msg.extend_from_slice(&1u16.to_be_bytes());
        msg.extend_from_slice(b"rtrouter-probe6");
        s.send_to(&msg, SocketAddr::from((dst, 0)))?;
        let deadline = Instant::now() + timeout;
        let mut b = [0u8; 1500];
        while Instant::now() < deadline {
            let (n, from) = match s.recv_from(&mut b) {
                Ok(x) => x,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            };
            if n >= 4 && b[0] == want_type {
                if let std::net::IpAddr::V6(a) = from.ip() {
                    return Ok(Some(a));
                }
            }
        }
        Ok(None)
    })
}
