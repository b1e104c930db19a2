//! The two-interface topology the router-core tests and benchmarks run on: `lan0`
//! 10.0.1.1/24 and `wan0` 10.0.2.1/24, default route via 10.0.2.2 on `wan0`.
//!
//! One file serves three crates: `rtrouter-tests` has it as a module, and the `rtrouter`
//! crate's benchmarks and allocation test include it with `#[path]` (they cannot depend on
//! `rtrouter-tests`, which depends on `rtrouter`).

use rtrouter::config::Cidr;
use rtrouter::route::{IfaceInfo, NextHop, Topology};

pub fn topology() -> Topology {
    let mut t = Topology::default();
    t.add_iface(IfaceInfo {
        name: "lan0".into(),
        addrs: vec![Cidr::parse("10.0.1.1/24").unwrap()],
        mtu: 1500,
    });
    let wan = t.add_iface(IfaceInfo {
        name: "wan0".into(),
        addrs: vec![Cidr::parse("10.0.2.1/24").unwrap()],
        mtu: 1500,
    });
    t.routes.insert(
        Cidr::parse("0.0.0.0/0").unwrap(),
        NextHop {
            iface: wan,
            via: Some("10.0.2.2".parse().unwrap()),
        },
    );
    t
}
