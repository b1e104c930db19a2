//! `-m cluster` (`libxt_cluster.c`, `xt_cluster.c`): which node of a cluster that sees every
//! packet handles a connection: `jhash_1word` of the connection's original source address
//! with the seed, scaled to the node count, must be one of the local nodes. Packets without
//! a connection never match. (rtrouter runs no conntrack helpers, so no connection has a
//! master whose address would be hashed instead.)

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{jhash, Ct, Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::value::parse_uint;
use std::fmt::Write as _;
use std::net::IpAddr;

/// `XT_CLUSTER_NODES_MAX`.
const NODES_MAX: u64 = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cluster {
    pub inv: bool,
    pub node_mask: u32,
    pub total_nodes: u32,
    pub hash_seed: u32,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Builder {
    total: Option<u32>,
    /// From `--cluster-local-node` (as a mask) or `--cluster-local-nodemask`, with its `!`.
    local: Option<(bool, u32)>,
    seed: Option<u32>,
}

/// The node (0-based) that handles connections from `src`, as `xt_cluster_hash` picks it.
fn node_of(src: IpAddr, m: &Cluster) -> u32 {
    let hash = match src {
        // The address as the kernel holds it: network-order bytes read as a host integer.
        IpAddr::V4(a) => jhash::jhash_1word(u32::from_ne_bytes(a.octets()), m.hash_seed),
        // `xt_cluster_hash_ipv6`: jhash2 over `NF_CT_TUPLE_L3SIZE / sizeof(__u32)` words,
        // which is 1 (the macro already counts words): only the address's first 32 bits,
        // read the same way. Checked against the kernel (tests/tests/kernel.rs).
        IpAddr::V6(a) => {
            let o = a.octets();
            jhash::jhash2(&[u32::from_ne_bytes([o[0], o[1], o[2], o[3]])], m.hash_seed)
        }
    };
    jhash::reciprocal_scale(hash, m.total_nodes)
}

impl MatchExt for Cluster {
    type Builder = Builder;
    type Compiled = Cluster;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &[
        "cluster-total-nodes",
        "cluster-local-node",
        "cluster-local-nodemask",
        "cluster-hash-seed",
    ];

    fn option(b: &mut Builder, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        let name = format!("--{opt}");
        let num = |c: &mut Cursor, inv: &mut bool, lo: u64, hi: u64| -> PResult<u32> {
            let v = c.value_inv(&name, inv)?;
            parse_uint(&v, lo, hi).map_or_else(
                || c.err_value(format!("cluster: bad {name} `{v}' ({lo} to {hi})")),
                |n| Ok(n as u32),
            )
        };
        match opt {
            "cluster-total-nodes" => {
                c.no_invert(inv, &name)?;
                c.once(&b.total, &name)?;
                b.total = Some(num(c, &mut inv, 1, NODES_MAX)?);
            }
            "cluster-local-node" | "cluster-local-nodemask" => {
                if b.local.is_some() {
                    return c.err("cluster: --cluster-local-node and --cluster-local-nodemask exclude each other");
                }
                let n = num(c, &mut inv, 1, NODES_MAX)?;
                let mask = if opt == "cluster-local-node" { 1 << (n - 1) } else { n };
                b.local = Some((inv, mask));
            }
            "cluster-hash-seed" => {
                c.no_invert(inv, &name)?;
                c.once(&b.seed, &name)?;
                b.seed = Some(num(c, &mut inv, 0, u64::from(u32::MAX))?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(b: Builder, _: RuleProto) -> Result<Cluster, String> {
        let (inv, node_mask) = b
            .local
            .ok_or("cluster match: `--cluster-local-node' or `--cluster-local-nodemask' is missing")?;
        let total_nodes = b.total.ok_or("cluster: --cluster-total-nodes is required")?;
        let hash_seed = b.seed.ok_or("cluster: --cluster-hash-seed is required")?;
        if u64::from(node_mask) >= 1u64 << total_nodes {
            return Err("cluster match: `--cluster-local-node' must be <= `--cluster-total-nodes'".into());
        }
        Ok(Cluster {
            inv,
            node_mask,
            total_nodes,
            hash_seed,
        })
    }

    fn save(&self, out: &mut String) {
        let _ = write!(
            out,
            "{} --cluster-local-nodemask {:#010x} --cluster-total-nodes {} --cluster-hash-seed {:#010x}",
            if self.inv { " !" } else { "" },
            self.node_mask,
            self.total_nodes,
            self.hash_seed
        );
    }

    fn compile(&self, _: &CompileEnv) -> Cluster {
        *self
    }

    fn test(m: &Cluster, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let Ct::Tracked(ct) = &p.ct else { return false };
        let node = node_of(ct.orig.src, m);
        ((1u64 << node) & u64::from(m.node_mask) != 0) != m.inv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_spread_over_the_nodes() {
        // Spread: over many sources, both of two nodes get some.
        let m = Cluster {
            inv: false,
            node_mask: 1,
            total_nodes: 2,
            hash_seed: 0xfeed_cafe,
        };
        let nodes: Vec<u32> = (0..64u8).map(|i| node_of(IpAddr::from([10, 0, 1, i]), &m)).collect();
        assert!(nodes.contains(&0) && nodes.contains(&1), "{nodes:?}");
    }
}
