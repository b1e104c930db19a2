//! The packet path allocates nothing once warm (STYLE.md, convention 1): a counting global
//! allocator watches `Router::process` forward, NAT, filter and reject packets.
#![allow(unsafe_code)]

use rtrouter::eval::SplitMix;
use rtrouter::packet::build::{self, Ip4, TcpSeg};
use rtrouter::route::IfaceId;
use rtrouter::router::{Ingress, Meta, Reply, Router};
use rtrouter::ruleset::{restore::restore, validate, Env, Ruleset};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use rtrouter::gen::topology;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter and the
// thread-local flag neither allocate nor touch the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if WATCHING.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if WATCHING.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: `p` came from `System.alloc` with layout `l`.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RULES: &str = "*nat\n-A PREROUTING -i wan0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.1.2:80\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n\
*filter\n:FORWARD DROP [0:0]\n:LAN - [0:0]\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -m conntrack --ctstate INVALID -j DROP\n-A FORWARD -i lan0 -j LAN\n-A LAN -p tcp -m multiport --dports 25,465 -j REJECT --reject-with tcp-reset\n-A LAN -p udp --dport 53 -m limit --limit 100/sec -j ACCEPT\n-A LAN -p tcp -m tcp --syn -m statistic --mode random --probability 0.5 -j ACCEPT\n-A LAN -j ACCEPT\nCOMMIT\n";

#[test]
fn processing_packets_allocates_nothing_once_warm() {
    let rs = restore(&Ruleset::default(), RULES, "alloc", false).unwrap();
    let router = Router::new(
        topology(),
        validate(&rs, &Env::default()).unwrap(),
        Default::default(),
        10,
    );

    let mut packets = Vec::new();
    let mut b = Vec::new();
    let lan = Ip4::new("10.0.1.2".parse().unwrap(), "192.0.2.9".parse().unwrap(), 6);
    for (dport, flags) in [(80u16, 0x02u8), (25, 0x02), (443, 0x10)] {
        build::tcp(
            &mut b,
            lan,
            TcpSeg {
                sport: 40000,
                dport,
                seq: 1,
                ack: 1,
                flags,
                window: 1000,
            },
            &[0u8; 64],
        );
        packets.push((IfaceId(0), b.clone()));
    }
    build::udp(&mut b, lan, 5000, 53, &[0u8; 32]);
    packets.push((IfaceId(0), b.clone()));
    let wan_in = Ip4::new("192.0.2.9".parse().unwrap(), "10.0.2.1".parse().unwrap(), 6);
    build::tcp(
        &mut b,
        wan_in,
        TcpSeg {
            sport: 5555,
            dport: 8080,
            seq: 1,
            ack: 0,
            flags: 2,
            window: 1000,
        },
        &[],
    );
    packets.push((IfaceId(1), b.clone()));

    let mut buf = Vec::with_capacity(2048);
    let mut reply = Reply {
        buf: Vec::with_capacity(2048),
        disposition: None,
        copies: Vec::new(),
    };
    let mut rng = SplitMix(1);
    let mut run = |n: usize| {
        for i in 0..n {
            let (iface, p) = &packets[i % packets.len()];
            buf.clear();
            buf.extend_from_slice(p);
            let _ = router.process(
                Meta {
                    now: i as u64 * 1000,
                    ingress: Ingress::Iface(*iface),
                    mark: 0,
                    seg: 0,
                    ct: None,
                },
                &mut buf,
                &mut reply,
                &mut rng,
                &mut (),
            );
        }
    };
    run(100);
    WATCHING.with(|w| w.set(true));
    run(10_000);
    WATCHING.with(|w| w.set(false));
    assert!(
        router.stats.forwarded.load(Ordering::Relaxed) > 1000,
        "the packets were really forwarded"
    );
    assert!(
        router.stats.replies.load(Ordering::Relaxed) > 1000,
        "and rejected with replies"
    );
    assert_eq!(ALLOCS.load(Ordering::Relaxed), 0, "heap allocations on the packet path");
}

/// The compiled classifier's lookups allocate nothing either: kube-proxy's rules for 300
/// services, every packet a new connection to a service (conntrack's state fixed to NEW, so
/// KUBE-SERVICES is classified, an endpoint chosen and DNAT applied each time).
#[test]
fn classified_lookups_allocate_nothing() {
    use rtrouter::eval::{Chance, Ct, CtInfo};
    let rs = restore(&Ruleset::default(), &rtrouter::gen::kube_proxy(300), "alloc", false).unwrap();
    let router = Router::new(
        topology(),
        validate(&rs, &Env::default()).unwrap(),
        Default::default(),
        10,
    );
    assert!(
        router.engine().shape().0 >= 2,
        "KUBE-SERVICES and KUBE-NODEPORTS are classified"
    );
    let mut rng = SplitMix(3);
    let packets: Vec<(Vec<u8>, Ct)> = (0..64)
        .map(|i| {
            let p = rtrouter::gen::tcp_syn(
                "10.0.1.2".parse().unwrap(),
                40000 + i,
                rtrouter::gen::service_ip(rng.below(300) as usize),
                80,
            );
            let ct = Ct::Tracked(CtInfo::new_from(&rtrouter::packet::parse(&p).unwrap()));
            (p, ct)
        })
        .collect();
    let mut buf = Vec::with_capacity(2048);
    let mut reply = Reply {
        buf: Vec::with_capacity(2048),
        disposition: None,
        copies: Vec::new(),
    };
    let mut run = |n: usize, rng: &mut SplitMix| {
        for i in 0..n {
            let (p, ct) = &packets[i % packets.len()];
            buf.clear();
            buf.extend_from_slice(p);
            let o = router.process(
                Meta {
                    now: i as u64 * 1000,
                    ingress: Ingress::Iface(IfaceId(0)),
                    mark: 0,
                    seg: 0,
                    ct: Some(*ct),
                },
                &mut buf,
                &mut reply,
                rng,
                &mut (),
            );
            assert!(o.dnat.is_some(), "every packet is DNAT-ed to an endpoint");
        }
    };
    run(100, &mut rng);
    WATCHING.with(|w| w.set(true));
    run(5_000, &mut rng);
    WATCHING.with(|w| w.set(false));
    assert_eq!(ALLOCS.load(Ordering::Relaxed), 0, "heap allocations on the packet path");
}
