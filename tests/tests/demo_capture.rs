//! `configs/replay-demo.pcapng`, the capture the README's replay example uses, is generated
//! here; this test fails if the committed file differs (regenerate with
//! `RTROUTER_BLESS=1 cargo test -p rtrouter-tests --test demo_capture`).

use rtrouter::packet::build::{self, Ip4, TcpSeg};
use rtrouter::pcap::Writer;
use rtrouter_tests::{ip, repo_root};

fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8, seq: u32, ack: u32) -> Vec<u8> {
    let mut b = Vec::new();
    build::tcp(
        &mut b,
        Ip4::new(ip(src), ip(dst), 6),
        TcpSeg {
            sport,
            dport,
            seq,
            ack,
            flags,
            window: 64240,
        },
        b"",
    );
    b
}

fn udp(src: &str, sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    build::udp(&mut b, Ip4::new(ip(src), ip(dst), 17), sport, dport, payload);
    b
}

/// The demo traffic for configs/router.toml: a LAN host behind the gateway.
pub fn demo() -> Vec<u8> {
    let lan = "10.0.1.2";
    let wan = "10.0.2.1";
    let mut w = Writer::new();
    let mut t = 1_700_000_000_000_000_000u64;
    let mut at = |w: &mut Writer, iface: &str, p: Vec<u8>| {
        t += 1_000_000;
        w.packet(iface, t, &p);
    };
    // 1-3: an HTTPS connection out, masqueraded.
    at(&mut w, "lan0", tcp(lan, 40000, "192.0.2.80", 443, 0x02, 1000, 0));
    at(&mut w, "wan0", tcp("192.0.2.80", 443, wan, 40000, 0x12, 5000, 1001));
    at(&mut w, "lan0", tcp(lan, 40000, "192.0.2.80", 443, 0x10, 1001, 5001));
    // 4-5: a DNS query for example.com and its answer (192.0.2.10).
    at(
        &mut w,
        "lan0",
        udp(
            lan,
            5353,
            "192.0.2.53",
            53,
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01",
        ),
    );
    at(
        &mut w,
        "wan0",
        udp(
            "192.0.2.53",
            53,
            wan,
            5353,
            b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\xc0\x00\x02\x0a",
        ),
    );
    // 6: SMTP out is refused with a TCP reset.
    at(&mut w, "lan0", tcp(lan, 40001, "192.0.2.25", 25, 0x02, 1, 0));
    // 7: the blocklist answers with ICMP admin-prohibited.
    at(&mut w, "lan0", tcp(lan, 40002, "198.51.100.9", 443, 0x02, 1, 0));
    // 8-9: the published web port: DNAT in, and the server's reply.
    at(&mut w, "wan0", tcp("203.0.113.7", 51000, wan, 8080, 0x02, 7, 0));
    at(&mut w, "lan0", tcp(lan, 80, "203.0.113.7", 51000, 0x12, 9, 8));
    // 10: an unsolicited connection from the WAN is dropped.
    at(&mut w, "wan0", tcp("203.0.113.7", 51001, lan, 22, 0x02, 1, 0));
    // 11: the LAN host pings the router.
    let mut ping = Vec::new();
    build::icmp(
        &mut ping,
        Ip4::new(ip(lan), ip("10.0.1.1"), 1),
        8,
        0,
        [0, 1, 0, 1],
        b"abcdefgh",
    );
    at(&mut w, "lan0", ping);
    w.finish()
}

#[test]
fn demo_capture_is_current() {
    let path = repo_root().join("configs/replay-demo.pcapng");
    let want = demo();
    if std::env::var_os("RTROUTER_BLESS").is_some() {
        std::fs::write(&path, &want).expect("write demo capture");
    }
    let have = std::fs::read(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is stale: regenerate it with RTROUTER_BLESS=1 cargo test -p rtrouter-tests --test demo_capture",
        path.display()
    );
}
