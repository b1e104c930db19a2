//! `rtrouter trace`: one synthetic packet through the whole pipeline, with every table, chain
//! and rule it visits. Where a random decision (`statistic --mode random`) makes the path
//! branch, every branch is followed and each distinct outcome is reported with its
//! probability.
//!
//! Branches are enumerated depth-first: the first run takes every random decision's "yes"
//! side; each following run replays the decisions of the previous one up to its last "yes",
//! takes "no" there, and explores anew after it. Each run uses a fresh router, so rule state
//! (`nth` counters, token buckets, `recent` lists) starts as it does on a new router.

use crate::eval::state::IpSets;
use crate::eval::{Chance, Ct, CtInfo, CtState, Engine, EngineKind, Observer};
use crate::packet::build::{self, Ip4, Ip6, IpHeader, TcpSeg};
use crate::packet::proto;
use crate::route::{IfaceInfo, NextHop, Topology};
use crate::router::{Disposition, Ingress, Meta, Reply, Route, Router};
use crate::ruleset::validate::ValidChain;
use crate::ruleset::{Policy, TableKind, ValidRuleset};
use std::net::IpAddr;
use std::sync::Arc;

/// The name of the stand-in interface a forwarded packet leaves through when no route is
/// known.
pub const UNKNOWN_IFACE: &str = "(unknown)";

/// At most this many branches are explored.
pub const MAX_BRANCHES: usize = 4096;

/// The packet to trace.
#[derive(Debug, Clone)]
pub struct Spec {
    /// An interface name, or `None` for a packet the router itself sends.
    pub from: Option<String>,
    pub proto: u8,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    /// `None`: a new connection. `Some("INVALID"|"UNTRACKED"|…)` otherwise.
    pub ctstate: CtSpec,
    pub mark: u32,
    pub tcp_flags: u8,
    pub icmp: (u8, u8),
    pub ttl: u8,
    /// Total IP length; shorter values are raised to the bare headers.
    pub length: Option<u16>,
    /// The transport payload (after the TCP/UDP/ICMP header), instead of zero padding: for
    /// rules and plugins that look inside packets.
    pub payload: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtSpec {
    New,
    Established,
    Related,
    Invalid,
    Untracked,
}

impl CtSpec {
    pub fn parse(s: &str) -> Option<CtSpec> {
        Some(match s.to_ascii_uppercase().as_str() {
            "NEW" => CtSpec::New,
            "ESTABLISHED" => CtSpec::Established,
            "RELATED" => CtSpec::Related,
            "INVALID" => CtSpec::Invalid,
            "UNTRACKED" => CtSpec::Untracked,
            _ => return None,
        })
    }
}

/// One line of the trace.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Rule {
        table: TableKind,
        chain: String,
        index: usize,
        text: String,
        matched: bool,
    },
    Policy {
        table: TableKind,
        chain: String,
        policy: Policy,
    },
    Event(String),
}

/// One distinct way the packet can go.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub verdict: &'static str,
    pub dnat: Option<String>,
    pub snat: Option<String>,
    pub masquerade: bool,
    /// "local" or "forward"; `None` when dropped before the routing decision.
    pub delivered: Option<&'static str>,
    pub out: Option<String>,
    pub probability: f64,
    /// The rules that matched and the policies that decided, as `table/CHAIN#N` and
    /// `table/CHAIN:POLICY`.
    pub path: Vec<String>,
    pub steps: Vec<Step>,
    /// Why it was dropped (a `DropReason` name) when it was.
    pub drop_reason: Option<&'static str>,
}

#[derive(Default)]
struct Recorder {
    steps: Vec<Step>,
    path: Vec<String>,
}

impl Observer for Recorder {
    fn rule(&mut self, table: TableKind, chain: &ValidChain, index: usize, matched: bool) {
        let r = &chain.rules()[index];
        if matched {
            self.path.push(format!("{table}/{}#{}", chain.name(), index + 1));
        }
        self.steps.push(Step::Rule {
            table,
            chain: chain.name().to_string(),
            index: index + 1,
            text: r.save_line(chain.name(), None),
            matched,
        });
    }

    fn policy(&mut self, table: TableKind, chain: &ValidChain, policy: Policy) {
        self.path.push(format!("{table}/{}:{}", chain.name(), policy.name()));
        self.steps.push(Step::Policy {
            table,
            chain: chain.name().to_string(),
            policy,
        });
    }

    fn event(&mut self, what: &dyn Fn() -> String) {
        self.steps.push(Step::Event(what()));
    }
}

/// Replays forced decisions, then says "yes" to every new one, recording all of them.
struct Branches {
    forced: Vec<bool>,
    taken: Vec<(bool, f64)>,
}

impl Chance for Branches {
    fn chance(&mut self, p: u32) -> bool {
        let prob = f64::from(p) / 2147483648.0;
        if prob >= 1.0 {
            return true;
        }
        if prob <= 0.0 {
            return false;
        }
        let i = self.taken.len();
        let choice = self.forced.get(i).copied().unwrap_or(true);
        self.taken.push((choice, if choice { prob } else { 1.0 - prob }));
        choice
    }

    fn below(&mut self, _n: u32) -> u32 {
        0
    }
}

/// Builds the synthetic packet: IPv4 or IPv6 as its addresses are (`ttl` is the hop limit
/// of an IPv6 packet, `length` its payload length plus the 40-byte header).
pub fn build_packet(s: &Spec) -> Result<Vec<u8>, String> {
    match (s.src, s.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let ip = Ip4 {
                ttl: s.ttl,
                ..Ip4::new(src, dst, s.proto)
            };
            build_l4(s, ip)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let ip = Ip6 {
                hop_limit: s.ttl,
                ..Ip6::new(src, dst)
            };
            build_l4(s, ip)
        }
        _ => Err(format!("--src {} and --dst {} are of different families", s.src, s.dst)),
    }
}

fn build_l4<I: IpHeader>(s: &Spec, ip: I) -> Result<Vec<u8>, String> {
    let mut b = Vec::new();
    let base_len = ip.header_len()
        + match s.proto {
            proto::TCP => 20,
            proto::UDP | proto::ICMP | proto::ICMPV6 => 8,
            proto::SCTP => 32,
            _ => 0,
        };
    let pad = match &s.payload {
        Some(p) => {
            if base_len + p.len() > 65535 {
                return Err(format!("a payload of {} bytes does not fit in an IP packet", p.len()));
            }
            p.clone()
        }
        None => vec![0u8; usize::from(s.length.unwrap_or(0)).saturating_sub(base_len)],
    };
    match s.proto {
        proto::TCP => build::tcp(
            &mut b,
            ip,
            TcpSeg {
                sport: s.sport,
                dport: s.dport,
                seq: 1,
                ack: 0,
                flags: s.tcp_flags,
                window: 64240,
            },
            &pad,
        ),
        proto::UDP => build::udp(&mut b, ip, s.sport, s.dport, &pad),
        // The family's own ICMP (1 over IPv4, 58 over IPv6); the other one is just a protocol.
        p if p == I::ICMP => build::icmp(&mut b, ip, s.icmp.0, s.icmp.1, [0, 1, 0, 1], &pad),
        proto::SCTP => build::sctp_init(&mut b, ip, s.sport, s.dport, 1),
        p => build::raw_of(&mut b, ip, p, &pad),
    }
    Ok(b)
}

/// Adds the stand-in interface and default route used when the topology has no route for a
/// forwarded packet.
pub fn with_unknown_route(mut topo: Topology) -> Topology {
    topo.lenient_nat = true;
    if topo.iface_id(UNKNOWN_IFACE).is_none() {
        let id = topo.add_iface(IfaceInfo {
            name: UNKNOWN_IFACE.into(),
            addrs: vec![],
            mtu: 65535,
        });
        for (default, any) in [("0.0.0.0/0", IpAddr::from([0u8; 4])), ("::/0", IpAddr::from([0u8; 16]))] {
            if topo.route(any).is_none() {
                topo.routes.insert(
                    crate::config::Cidr::parse(default).expect("literal"),
                    NextHop { iface: id, via: None },
                );
            }
        }
    }
    topo
}

/// Traces `spec` through `rules` on `topo`; returns every distinct outcome.
/// `plugins` are the ones `rules`' wasm rules were bound to. The walk (the reference
/// engine) runs, so the steps show every rule the packet was tested against.
pub fn trace(
    rules: &ValidRuleset,
    ipsets: &IpSets,
    topo: &Topology,
    spec: &Spec,
    plugins: Option<std::sync::Arc<dyn crate::eval::PluginHost>>,
) -> Result<Vec<Outcome>, String> {
    Tracer::new(rules.clone(), ipsets, topo, plugins, EngineKind::Linear).trace(spec)
}

/// One loaded ruleset, compiled once, that many packets are traced through.
#[derive(Debug)]
pub struct Tracer {
    /// Compiled once; each branch runs it with fresh match state.
    engine: Arc<Engine>,
    kind: EngineKind,
    ipsets: IpSets,
    topo: Topology,
    plugins: Option<Arc<dyn crate::eval::PluginHost>>,
}

impl Tracer {
    /// With [`EngineKind::Compiled`] the steps show only the rules the classifier tested;
    /// outcomes and paths are the walk's.
    pub fn new(
        rules: impl Into<Arc<ValidRuleset>>,
        ipsets: &IpSets,
        topo: &Topology,
        plugins: Option<Arc<dyn crate::eval::PluginHost>>,
        kind: EngineKind,
    ) -> Tracer {
        let rules = rules.into();
        let topo = with_unknown_route(topo.clone());
        let shared = crate::eval::state::Shared::default();
        let engine = Engine::with_kind(rules.clone(), &shared, Arc::new(ipsets.clone()), &topo, kind);
        Tracer {
            engine: Arc::new(engine),
            kind,
            ipsets: ipsets.clone(),
            topo,
            plugins,
        }
    }

    /// Every distinct outcome of `spec`.
    pub fn trace(&self, spec: &Spec) -> Result<Vec<Outcome>, String> {
        let topo = &self.topo;
        match (self.engine.rules.family(), spec.src) {
            (crate::ruleset::Family::V4, IpAddr::V6(_)) => {
                return Err("an IPv6 packet runs through ip6tables rules: give -6 (and the IPv6 ruleset)".into())
            }
            (crate::ruleset::Family::V6, IpAddr::V4(_)) => {
                return Err("an IPv4 packet runs through iptables rules: drop -6".into())
            }
            _ => {}
        }
        let ingress = match &spec.from {
            None => Ingress::Local,
            Some(n) => Ingress::Iface(
                topo.iface_id(n)
                    .ok_or_else(|| format!("no interface `{n}' (declare it in the config or with --route)"))?,
            ),
        };
        branches(self, spec, ingress)
    }
}

fn branches(tr: &Tracer, spec: &Spec, ingress: Ingress) -> Result<Vec<Outcome>, String> {
    let topo = &tr.topo;
    let pkt = build_packet(spec)?;
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut forced: Vec<bool> = Vec::new();
    for _ in 0..MAX_BRANCHES {
        let router = Router::new(topo.clone(), ValidRuleset::empty(), tr.ipsets.clone(), u32::MAX).with_engine(tr.kind);
        router.swap_plugins(tr.plugins.clone(), ValidRuleset::empty());
        router.swap_fresh_of(&tr.engine);
        let mut buf = pkt.clone();
        let h = crate::packet::parse(&buf).map_err(|r| format!("built packet does not parse: {}", r.name()))?;
        let ct = match spec.ctstate {
            CtSpec::New => None,
            CtSpec::Established => Some(Ct::Tracked(CtInfo {
                state: CtState::Established,
                status: crate::eval::status::SEEN_REPLY | crate::eval::status::CONFIRMED,
                ..CtInfo::new_from(&h)
            })),
            CtSpec::Related => Some(Ct::Tracked(CtInfo {
                state: CtState::Related,
                ..CtInfo::new_from(&h)
            })),
            CtSpec::Invalid => Some(Ct::Invalid),
            CtSpec::Untracked => Some(Ct::Untracked),
        };
        let meta = Meta {
            now: 0,
            ingress,
            mark: spec.mark,
            seg: 0,
            ct,
        };
        let mut rec = Recorder::default();
        let mut br = Branches {
            forced: forced.clone(),
            taken: Vec::new(),
        };
        let mut reply = Reply::default();
        let o = router.process(meta, &mut buf, &mut reply, &mut br, &mut rec);
        let probability: f64 = br.taken.iter().map(|(_, p)| p).product();
        let (delivered, out) = match o.route {
            Some(Route::Local) => (Some("local"), None),
            Some(Route::Forward(h)) => {
                let name = &router.topo.iface(h.iface).name;
                (Some("forward"), (name != UNKNOWN_IFACE).then(|| name.clone()))
            }
            Some(Route::Unknown) => (Some("forward"), None),
            None => (None, None),
        };
        let verdict = match o.disposition {
            _ if o.rejected => "reject",
            Disposition::Drop(_) => "drop",
            Disposition::Held => "held",
            _ => "accept",
        };
        let fmt = |a: Option<(IpAddr, u16)>| {
            a.map(|(ip, port)| {
                if spec.proto == proto::TCP || spec.proto == proto::UDP || spec.proto == proto::SCTP {
                    std::net::SocketAddr::new(ip, port).to_string()
                } else {
                    ip.to_string()
                }
            })
        };
        let outcome = Outcome {
            verdict,
            dnat: fmt(o.dnat),
            snat: fmt(o.snat),
            masquerade: o.masquerade,
            delivered,
            out,
            probability,
            path: rec.path,
            steps: rec.steps,
            drop_reason: match o.disposition {
                Disposition::Drop(r) => Some(r.name()),
                _ => None,
            },
        };
        // Merge branches that end the same way along the same path.
        match outcomes.iter_mut().find(|x| {
            x.path == outcome.path && x.verdict == outcome.verdict && x.dnat == outcome.dnat && x.snat == outcome.snat
        }) {
            Some(x) => x.probability += outcome.probability,
            None => outcomes.push(outcome),
        }
        // Next branch: flip the last "yes" that was taken; stop when none is left.
        let Some(last_yes) = br.taken.iter().rposition(|(c, _)| *c) else {
            return Ok(outcomes);
        };
        forced = br.taken[..last_yes].iter().map(|(c, _)| *c).collect();
        forced.push(false);
    }
    Err(format!(
        "more than {MAX_BRANCHES} random branches; trace a smaller ruleset"
    ))
}

/// The human-readable trace.
pub fn render_text(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let n = outcomes.len();
    for (i, o) in outcomes.iter().enumerate() {
        if n > 1 {
            s += &format!("== outcome {} of {n} (probability {:.4}) ==\n", i + 1, o.probability);
        }
        for st in &o.steps {
            match st {
                Step::Rule {
                    table,
                    chain,
                    index,
                    text,
                    matched,
                } => {
                    s += &format!(
                        "{:<32} {} {text}\n",
                        format!("{table}/{chain}#{index}"),
                        if *matched { "MATCH" } else { "  -  " }
                    );
                }
                Step::Policy { table, chain, policy } => {
                    s += &format!("{:<32} policy {}\n", format!("{table}/{chain}"), policy.name());
                }
                Step::Event(e) => s += &format!("{:<32} {e}\n", "  >"),
            }
        }
        s += &format!("=> {}", o.verdict);
        if let Some(d) = o.delivered {
            s += &format!(", {d}");
            if d == "forward" {
                s += &format!(" via {}", o.out.as_deref().unwrap_or(UNKNOWN_IFACE));
            }
        }
        if let Some(d) = &o.dnat {
            s += &format!(", dnat to {d}");
        }
        if let Some(x) = &o.snat {
            s += &format!(", snat to {x}");
        }
        if o.masquerade {
            s += ", masquerade";
        }
        if let Some(r) = o.drop_reason {
            s += &format!(" ({r})");
        }
        s += "\n";
        if i + 1 < n {
            s += "\n";
        }
    }
    s
}

/// The JSON form documented in the README.
pub fn render_json(outcomes: &[Outcome]) -> serde_json::Value {
    serde_json::json!({
        "outcomes": outcomes.iter().map(|o| serde_json::json!({
            "verdict": o.verdict,
            "dnat": o.dnat,
            "snat": o.snat,
            "masquerade": o.masquerade,
            "delivered": o.delivered,
            "out": o.out,
            "probability": o.probability,
            "path": o.path,
        })).collect::<Vec<_>>()
    })
}
