//! Any bytes as a packet arriving on an interface or sent by the router: `process` must
//! return a disposition, never panic, and every packet it lets through or sends must parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtrouter::config::Cidr;
use rtrouter::eval::SplitMix;
use rtrouter::route::{IfaceId, IfaceInfo, NextHop, Topology};
use rtrouter::router::{Disposition, Ingress, Meta, Reply, Router};
use rtrouter::ruleset::{restore::restore, validate, Env, Ruleset};
use std::sync::OnceLock;

const RULES: &str = "*raw\n-A PREROUTING -p udp --dport 9 -j CT --notrack\n-A PREROUTING -p tcp --dport 443 --syn -j CT --notrack\nCOMMIT\n\
*mangle\n-A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu\n-A FORWARD -p udp -j CHECKSUM --checksum-fill\n-A PREROUTING -m ttl --ttl-lt 3 -j TTL --ttl-inc 2\nCOMMIT\n\
*nat\n-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 10.0.1.10-10.0.1.20:8080-8090\n-A PREROUTING -p udp -m statistic --mode nth --every 2 --packet 0 -j REDIRECT --to-ports 53\n-A POSTROUTING -o wan0 -j MASQUERADE --random\nCOMMIT\n\
*filter\n:FORWARD DROP [0:0]\n:IN - [0:0]\n-A INPUT -j IN\n-A IN -p tcp --tcp-option 8 -j REJECT --reject-with tcp-reset\n-A IN -m recent --name r --update --seconds 5 --hitcount 2 -j DROP\n-A IN -m recent --name r --set\n-A FORWARD -p tcp --dport 443 -m conntrack --ctstate INVALID,UNTRACKED -j SYNPROXY --sack-perm --timestamp --wscale 7 --mss 1460 --ecn\n-A FORWARD -m conntrack --ctstate INVALID -j DROP\n-A FORWARD -p icmp --icmp-type 3/4 -j LOG --log-prefix \"f: \" --log-tcp-options --log-ip-options\n-A FORWARD -m limit --limit 5/sec -j LOG\n-A FORWARD -p tcp -m multiport --ports 1:1024 -j ACCEPT\n-A FORWARD -p sctp -m sctp --dport 1:100 -j ACCEPT\n-A FORWARD -f -j ACCEPT\n-A FORWARD -j REJECT --reject-with icmp-admin-prohibited\nCOMMIT\n";

fn router() -> &'static Router {
    static R: OnceLock<Router> = OnceLock::new();
    R.get_or_init(|| {
        let mut t = Topology::default();
        t.add_iface(IfaceInfo { name: "lan0".into(), addrs: vec![Cidr::parse("10.0.1.1/24").unwrap()], mtu: 1500 });
        let wan = t.add_iface(IfaceInfo { name: "wan0".into(), addrs: vec![Cidr::parse("10.0.2.1/24").unwrap()], mtu: 576 });
        t.routes.insert(Cidr::parse("0.0.0.0/0").unwrap(), NextHop { iface: wan, via: None });
        let rs = restore(&Ruleset::default(), RULES, "fuzz", false).expect("rules load");
        Router::new(t, validate(&rs, &Env::default()).expect("valid"), Default::default(), 5)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, pkt)) = data.split_first() else { return };
    let r = router();
    let ingress = match sel % 3 {
        0 => Ingress::Iface(IfaceId(0)),
        1 => Ingress::Iface(IfaceId(1)),
        _ => Ingress::Local,
    };
    let mut buf = pkt.to_vec();
    let mut reply = Reply::default();
    let mut rng = SplitMix(u64::from(sel));
    let o = r.process(Meta { now: u64::from(sel) * 1_000_000, ingress, mark: u32::from(sel), ct: None, seg: 0 }, &mut buf, &mut reply, &mut rng, &mut ());
    if !matches!(o.disposition, Disposition::Drop(_)) {
        assert!(rtrouter::packet::parse(&buf).is_ok(), "a packet let through must still parse");
    }
    // What leaves an interface (wan0's MTU is 576): whole, or in fragments that each parse,
    // fit the MTU and carry a header checksum of their own (the fuzz build does not check
    // the input's, so a packet sent whole is not held to it).
    if let Disposition::Forward(hop) = o.disposition {
        let mtu = r.topo.iface(hop.iface).mtu as usize;
        let split = buf.len() > mtu && buf[0] >> 4 == 4 && buf[6] & 0x40 == 0;
        let mut scratch = Vec::new();
        r.send_out(hop, &buf, o.frag_max, &mut scratch, &mut |f| {
            rtrouter::packet::parse(f).expect("what leaves parses");
            if split {
                assert!(f.len() <= mtu, "a fragment fits the MTU");
                let c = rtrouter::packet::checksum::sum(&f[..usize::from(f[0] & 15) * 4]);
                assert_eq!(rtrouter::packet::checksum::finish(c), 0, "header checksum");
            }
        });
    }
    if reply.disposition.is_some() {
        assert!(rtrouter::packet::parse(&reply.buf).is_ok(), "a reply must parse");
        assert_eq!(rtrouter::packet::checksums_ok(&reply.buf), Some(true), "a reply's checksums must be right");
    }
});
