//! A small load generator for `scripts/bench-netns.sh`, run inside network namespaces:
//!
//!   loadgen tcp-sink   NETNS ADDR:PORT SECONDS [N]    receive N streams (1) for SECONDS,
//!                                                     print their Mbit/s together
//!   loadgen tcp-source NETNS ADDR:PORT SECONDS [N]    send 64 KiB writes on N streams
//!   loadgen udp-sink   NETNS ADDR:PORT SECONDS        count datagrams, print packets/s
//!   loadgen udp-source NETNS ADDR:PORT SECONDS SIZE   send SIZE-byte datagrams for SECONDS
//!   loadgen udp-flows  NETNS ADDR:PORT SECONDS FLOWS  one datagram each on FLOWS different
//!                                                     flows (source ports 1024-65535, then
//!                                                     the next destination ports), within
//!                                                     SECONDS at most
//!
//! Sinks measure from their first byte to the end of the window; every loop is bounded in time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let usage = "usage: loadgen tcp-sink|tcp-source|udp-sink|udp-source NETNS ADDR:PORT SECONDS [SIZE]";
    let (mode, ns, addr, secs) = match &a[1..] {
        [m, n, ad, s, ..] => (
            m.clone(),
            n.clone(),
            ad.parse::<SocketAddr>().expect(usage),
            s.parse::<u64>().expect(usage),
        ),
        _ => panic!("{usage}"),
    };
    // The datagram size for UDP, the number of streams for TCP.
    let size: usize = a.get(5).map_or(if mode.starts_with("tcp") { 1 } else { 64 }, |s| {
        s.parse().expect(usage)
    });
    let window = Duration::from_secs(secs);
    rtrouter::dataplane::netns::run_in(&ns, move || {
        match mode.as_str() {
            "tcp-sink" => {
                let l = TcpListener::bind(addr)?;
                let mut streams = Vec::new();
                for _ in 0..size.max(1) {
                    let (s, _) = l.accept()?;
                    streams.push(std::thread::spawn(move || sink(s, window)));
                }
                // From the first byte of any stream to the last of all of them.
                let mut total = 0u64;
                let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
                for t in streams {
                    let (n, f, l) = t.join().expect("sink thread")?;
                    total += n;
                    first = first.into_iter().chain(f).min();
                    last = last.into_iter().chain(l).max();
                }
                let el = match (first, last) {
                    (Some(f), Some(l)) => (l - f).as_secs_f64().max(1e-3),
                    _ => 1.0,
                };
                println!("{:.0}", total as f64 * 8.0 / el / 1e6);
            }
            "tcp-source" => {
                let sources: Vec<_> = (0..size.max(1))
                    .map(|_| {
                        std::thread::spawn(move || -> std::io::Result<()> {
                            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
                            let buf = vec![0x5au8; 1 << 16];
                            let t = Instant::now();
                            while t.elapsed() < window {
                                s.write_all(&buf)?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                for t in sources {
                    t.join().expect("source thread")?;
                }
            }
            "udp-sink" => {
                let s = UdpSocket::bind(addr)?;
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut buf = [0u8; 2048];
                let mut n = 0u64;
                let mut start = None;
                let mut last = Instant::now();
                while s.recv(&mut buf).is_ok() {
                    start.get_or_insert_with(Instant::now);
                    n += 1;
                    last = Instant::now();
                    if start.is_some_and(|t: Instant| t.elapsed() > window + Duration::from_secs(2)) {
                        break;
                    }
                }
                let el = start.map_or(1.0, |t| (last - t).as_secs_f64().max(1e-3));
                println!("{:.0}", n as f64 / el);
            }
            "udp-source" => {
                let s = UdpSocket::bind("0.0.0.0:0")?;
                s.connect(addr)?;
                let buf = vec![0x5au8; size];
                let t = Instant::now();
                while t.elapsed() < window {
                    // A full socket buffer or an ICMP error just means try again.
                    let _ = s.send(&buf);
                }
            }
            "udp-flows" => {
                // A raw UDP socket: the kernel adds the IP header, the UDP header is ours, so
                // each flow gets its own ports without a socket (and a descriptor) per flow.
                use nix::sys::socket::{
                    sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn,
                };
                let std::net::IpAddr::V4(dst) = addr.ip() else {
                    panic!("{usage}")
                };
                let fd = socket(AddressFamily::Inet, SockType::Raw, SockFlag::empty(), SockProtocol::Udp)?;
                let to = SockaddrIn::from(std::net::SocketAddrV4::new(dst, 0));
                let t = Instant::now();
                let mut sent = 0usize;
                let mut dgram = [0u8; 9];
                'outer: for d in 0..=u16::MAX {
                    for sport in 1024..=u16::MAX {
                        if sent >= size || t.elapsed() >= window {
                            break 'outer;
                        }
                        dgram[0..2].copy_from_slice(&sport.to_be_bytes());
                        dgram[2..4].copy_from_slice(&addr.port().wrapping_add(d).to_be_bytes());
                        dgram[4..6].copy_from_slice(&9u16.to_be_bytes());
                        // Checksum 0: none (RFC 768).
                        // A full socket buffer: wait a moment and try again.
                        while sendto(fd.as_raw_fd(), &dgram, &to, MsgFlags::empty()).is_err() {
                            if t.elapsed() >= window {
                                break 'outer;
                            }
                            std::thread::sleep(Duration::from_micros(50));
                        }
                        sent += 1;
                    }
                }
                println!("{sent}");
            }
            _ => panic!("{usage}"),
        }
        Ok(())
    })
}

/// Reads one stream until it ends or the window (and 2 s more) is over: bytes, and when the
/// first and last arrived.
fn sink(mut s: TcpStream, window: Duration) -> std::io::Result<(u64, Option<Instant>, Option<Instant>)> {
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    let (mut start, mut last) = (None, None);
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                start.get_or_insert_with(Instant::now);
                last = Some(Instant::now());
                total += n as u64;
            }
        }
        if start.is_some_and(|t: Instant| t.elapsed() > window + Duration::from_secs(2)) {
            break;
        }
    }
    Ok((total, start, last))
}
