//! `rtrouter replay`: a capture through the full router core, offline and deterministic.
//!
//! Each packet arrives on the router interface its capture interface names (`if_name`), or on
//! `--from`; packet timestamps are the clock, so timeouts expire as they would have, and
//! conntrack's garbage collection runs whenever a second of capture time has passed. Every
//! packet the router emits — forwarded, delivered to itself (`local`), or sent by it (REJECT
//! replies, ICMP errors) — is written to the output with NAT applied, on an interface named
//! after where it went.

use crate::eval::{Ct, CtState, SplitMix};
use crate::pcap::{self, Writer};
use crate::route::IfaceId;
use crate::router::{Disposition, Ingress, Meta, Outcome, Reply, Router};
use std::fmt::Write as _;

/// What happened to one input packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based packet number in the capture.
    pub n: usize,
    pub input: String,
    pub outcome: Outcome,
    pub out: Option<String>,
}

impl Record {
    pub fn verdict(&self) -> &'static str {
        match self.outcome.disposition {
            _ if self.outcome.rejected => "reject",
            Disposition::Forward(_) => "forward",
            Disposition::Local => "local",
            Disposition::Drop(_) => "drop",
            Disposition::Held => "held",
        }
    }

    /// The JSON line of `--json`.
    pub fn json(&self) -> String {
        let ct = match self.outcome.ct {
            Ct::Invalid => "INVALID",
            Ct::Untracked => "UNTRACKED",
            Ct::Tracked(c) => match c.state {
                CtState::New => "NEW",
                CtState::Established => "ESTABLISHED",
                CtState::Related => "RELATED",
            },
        };
        // ADDRESS:PORT, an IPv6 address bracketed (`[2001:db8::1]:443`).
        let ep = |x: Option<(std::net::IpAddr, u16)>| x.map(|(a, p)| std::net::SocketAddr::new(a, p).to_string());
        let mut v = serde_json::json!({
            "n": self.n,
            "in": self.input,
            "verdict": self.verdict(),
            "out": self.out,
            "ct": ct,
            "dnat": ep(self.outcome.dnat),
            "snat": ep(self.outcome.snat),
        });
        if let Disposition::Drop(r) = self.outcome.disposition {
            v["reason"] = serde_json::Value::from(r.name());
        }
        v.to_string()
    }
}

/// The result of a replay: the output capture and one record per input packet.
#[derive(Debug)]
pub struct Replay {
    pub pcapng: Vec<u8>,
    pub records: Vec<Record>,
    pub skipped_non_ip: usize,
    /// Packets the capture marks as leaving their interface: not replayed as arriving.
    pub skipped_outbound: usize,
    /// Packets the capture had out of time order (replayed in time order).
    pub reordered: usize,
}

/// Replays `capture` through `router`. `from` names the interface for packets whose capture
/// interface has no name (classic pcap).
pub fn replay(router: &Router, capture: &[u8], from: Option<&str>, seed: u64) -> Result<Replay, pcap::Error> {
    let cap = pcap::read(capture)?;
    // Resolve every capture interface to a router interface first, so an unknown name is an
    // error before anything is replayed.
    let mut map: Vec<Option<IfaceId>> = Vec::with_capacity(cap.ifaces.len());
    for (i, ci) in cap.ifaces.iter().enumerate() {
        let name = ci.name.as_deref().or(from);
        let first_block = cap.packets.iter().find(|p| p.iface == i).map_or(1, |p| p.block);
        match name {
            Some(n) => match router.topo.iface_id(n) {
                Some(id) => map.push(Some(id)),
                None => {
                    return Err(pcap::Error {
                        block: first_block,
                        msg: format!("capture interface `{n}' is not an interface of the config"),
                    })
                }
            },
            None if cap.packets.iter().any(|p| p.iface == i) => {
                return Err(pcap::Error {
                    block: first_block,
                    msg: "capture interface has no name: give --from IFACE".into(),
                });
            }
            None => map.push(None),
        }
    }
    let mut w = Writer::new();
    for i in &router.topo.ifaces {
        w.declare(&i.name);
    }
    w.declare("local");
    let mut rng = SplitMix(seed);
    let mut buf = Vec::with_capacity(65536);
    let mut reply = Reply {
        buf: Vec::with_capacity(2048),
        disposition: None,
        copies: Vec::new(),
    };
    let mut scratch = Vec::with_capacity(2048);
    let mut records = Vec::with_capacity(cap.packets.len());
    let mut last_gc = cap.packets.first().map_or(0, |p| p.ts_ns);
    let place = |d: Disposition| match d {
        Disposition::Forward(h) => Some(router.topo.iface(h.iface).name.clone()),
        Disposition::Local => Some("local".to_string()),
        Disposition::Drop(_) | Disposition::Held => None,
    };
    let mut skipped_outbound = 0;
    for (n, pkt) in cap.packets.iter().enumerate() {
        if pkt.outbound {
            skipped_outbound += 1;
            continue;
        }
        let Some(iface) = map.get(pkt.iface).copied().flatten() else {
            return Err(pcap::Error {
                block: pkt.block,
                msg: format!("packet on capture interface {} that has no name", pkt.iface),
            });
        };
        if pkt.ts_ns.saturating_sub(last_gc) >= 1_000_000_000 {
            router.conntrack.gc(pkt.ts_ns);
            router.defrag.gc(pkt.ts_ns);
            last_gc = pkt.ts_ns;
        }
        buf.clear();
        buf.extend_from_slice(&pkt.data);
        let meta = Meta {
            now: pkt.ts_ns,
            ingress: Ingress::Iface(iface),
            mark: 0,
            seg: 0,
            ct: None,
        };
        let outcome = router.process(meta, &mut buf, &mut reply, &mut rng, &mut ());
        let out = place(outcome.disposition);
        match (outcome.disposition, &out) {
            // Out of an interface, as the dataplane sends it: in fragments beyond its MTU.
            (Disposition::Forward(hop), Some(o)) => {
                router.send_out(hop, &buf, outcome.frag_max, &mut scratch, &mut |f| {
                    w.packet(o, pkt.ts_ns, f)
                });
            }
            (_, Some(o)) => w.packet(o, pkt.ts_ns, &buf),
            _ => {}
        }
        if let Some(d) = reply.disposition {
            if let Some(o) = place(d) {
                w.packet(&o, pkt.ts_ns, &reply.buf);
            }
        }
        for (copy, hop) in &reply.copies {
            w.packet(&router.topo.iface(hop.iface).name, pkt.ts_ns, copy);
        }
        records.push(Record {
            n: n + 1,
            input: router.topo.iface(iface).name.clone(),
            outcome,
            out,
        });
    }
    Ok(Replay {
        pcapng: w.finish(),
        records,
        skipped_non_ip: cap.skipped_non_ip,
        skipped_outbound,
        reordered: cap.reordered,
    })
}

/// A one-paragraph summary for humans: packets per verdict.
pub fn summary(r: &Replay) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for rec in &r.records {
        *counts.entry(rec.verdict()).or_insert(0usize) += 1;
    }
    let mut s = format!("{} packets replayed:", r.records.len());
    for (k, v) in counts {
        let _ = write!(s, " {v} {k}");
    }
    if r.skipped_non_ip > 0 {
        let _ = write!(s, "; {} non-IP frames skipped", r.skipped_non_ip);
    }
    if r.skipped_outbound > 0 {
        let _ = write!(
            s,
            "; {} outgoing packets skipped (the capture marks them outbound)",
            r.skipped_outbound
        );
    }
    if r.reordered > 0 {
        let _ = write!(
            s,
            "; {} packets were out of time order and replayed in order",
            r.reordered
        );
    }
    s
}

/// Builds the router a config describes, as `run` and `replay` use it.
#[cfg(feature = "plugins")]
pub fn router_from_config(cfg: &crate::config::Config) -> Result<Router, crate::ruleset::Errors> {
    router_and_plugins(cfg).map(|(r, _)| r)
}

/// As [`router_from_config`], also returning the loaded plugins.
#[cfg(feature = "plugins")]
pub fn router_and_plugins(
    cfg: &crate::config::Config,
) -> Result<(Router, Option<std::sync::Arc<crate::plugin::Plugins>>), crate::ruleset::Errors> {
    let (rules, plugins) = crate::plugin::load(cfg, None)?;
    let topo = crate::route::Topology::from_config(cfg);
    let ipsets = crate::eval::state::IpSets::from_config(cfg);
    let r = Router::new(
        topo,
        crate::ruleset::ValidRuleset::empty(),
        ipsets,
        cfg.log.packet_log_rate,
    )
    .with_conntrack(crate::conntrack::Table::from_config(&cfg.conntrack))
    .with_engine(cfg.engine.kind)
    // A replay's `now` is the capture's timestamps, wall-clock time already (the running
    // router sets its own base).
    .with_wall_base(0);
    r.swap_plugins_both(
        plugins
            .clone()
            .map(|p| p as std::sync::Arc<dyn crate::eval::PluginHost>),
        rules.v4,
        rules.v6,
    );
    Ok((r, plugins))
}
