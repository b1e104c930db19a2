//! The router's own addresses: an embedded smoltcp interface (`Medium::Ip`) receives what
//! INPUT accepted and answers it (ICMP echo today); everything it sends goes back through
//! the pipeline as locally generated (OUTPUT, POSTROUTING).

use crate::config::Cidr;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use std::collections::VecDeque;
use std::net::IpAddr;

/// A device whose "wire" is two queues: packets for the stack, packets from it.
#[derive(Debug, Default)]
pub struct Queues {
    pub rx: VecDeque<Vec<u8>>,
    pub tx: VecDeque<Vec<u8>>,
    pub mtu: usize,
}

#[derive(Debug)]
pub struct Rx(Vec<u8>);
#[derive(Debug)]
pub struct Tx<'a>(&'a mut VecDeque<Vec<u8>>);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut b = vec![0u8; len];
        let r = f(&mut b);
        self.0.push_back(b);
        r
    }
}

impl Device for Queues {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _t: Instant) -> Option<(Rx, Tx<'_>)> {
        let p = self.rx.pop_front()?;
        Some((Rx(p), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = self.mtu;
        c
    }
}

/// One socket of an HTTP listener: the request read so far, the answer not yet sent, and
/// when its connection began (for the timeout).
struct Http {
    handle: SocketHandle,
    endpoint: (IpAddress, u16),
    request: Vec<u8>,
    pending: Vec<u8>,
    answered: bool,
    since_ms: Option<i64>,
}

/// Connections an HTTP listener serves at once (each a listening socket of its own).
const HTTP_CONNECTIONS: usize = 16;
/// How long a client has to send its request and take the answer.
const HTTP_TIMEOUT_MS: i64 = 10_000;

/// The local stack: smoltcp with the router's addresses.
pub struct Stack {
    pub iface: Interface,
    pub dev: Queues,
    pub sockets: SocketSet<'static>,
    http: Vec<Http>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack").field("addrs", &self.iface.ip_addrs()).finish()
    }
}

fn ip(a: IpAddr) -> IpAddress {
    match a {
        IpAddr::V4(v) => IpAddress::Ipv4(v),
        IpAddr::V6(v) => IpAddress::Ipv6(v),
    }
}

impl Stack {
    pub fn new(addrs: &[Cidr], mtu: usize, now_ms: i64) -> Stack {
        let mut dev = Queues {
            mtu,
            ..Queues::default()
        };
        let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut dev, Instant::from_millis(now_ms));
        iface.update_ip_addrs(|a| {
            for c in addrs {
                // Capacity is bounded (8 addresses); further addresses are still routed to
                // INPUT but not answered.
                let _ = a.push(IpCidr::new(ip(c.addr), c.len));
            }
        });
        Stack {
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
            http: Vec::new(),
        }
    }

    /// Serves HTTP on `addr:port`: several connections at once, each closed when its
    /// client goes quiet or away before the answer is out.
    pub fn listen_http(&mut self, addr: IpAddr, port: u16) {
        for _ in 0..HTTP_CONNECTIONS {
            let mut sock = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 4096]),
                tcp::SocketBuffer::new(vec![0; 65536]),
            );
            sock.set_timeout(Some(smoltcp::time::Duration::from_millis(HTTP_TIMEOUT_MS as u64)));
            let handle = self.sockets.add(sock);
            self.http.push(Http {
                handle,
                endpoint: (ip(addr), port),
                request: Vec::new(),
                pending: Vec::new(),
                answered: false,
                since_ms: None,
            });
        }
    }

    /// Runs the stack: takes what was delivered, answers HTTP requests with `body()`
    /// (`GET /metrics`; anything else is a 404), and returns the packets it sends.
    pub fn poll(&mut self, now_ms: i64, body: &dyn Fn(super::metrics::Format) -> String) -> Vec<Vec<u8>> {
        let now = Instant::from_millis(now_ms);
        self.iface.poll(now, &mut self.dev, &mut self.sockets);
        for h in &mut self.http {
            let s = self.sockets.get_mut::<tcp::Socket>(h.handle);
            if !s.is_open() {
                h.request.clear();
                h.pending.clear();
                h.answered = false;
                h.since_ms = None;
                let _ = s.listen(smoltcp::wire::IpListenEndpoint {
                    addr: Some(h.endpoint.0),
                    port: h.endpoint.1,
                });
                continue;
            }
            if s.state() == tcp::State::Listen {
                continue;
            }
            let since = *h.since_ms.get_or_insert(now_ms);
            // A client that went away before its request was whole, or that takes too long:
            // its socket goes back to listening.
            let gone = !h.answered
                && s.state() == tcp::State::CloseWait
                && !s.can_recv()
                && !h.request.windows(4).any(|w| w == b"\r\n\r\n");
            if gone || now_ms - since > HTTP_TIMEOUT_MS {
                s.abort();
                continue;
            }
            while s.can_recv() && h.request.len() < 8192 {
                let got = s.recv(|b| {
                    h.request.extend_from_slice(b);
                    (b.len(), b.len())
                });
                if !matches!(got, Ok(n) if n > 0) {
                    break;
                }
            }
            if !h.answered && (h.request.windows(4).any(|w| w == b"\r\n\r\n") || h.request.len() >= 8192) {
                h.answered = true;
                let format = super::metrics::Format::of_request(&h.request);
                let (status, text) = if h.request.starts_with(b"GET /metrics ") || h.request.starts_with(b"GET / ") {
                    ("200 OK", body(format))
                } else {
                    ("404 Not Found", "not found: try GET /metrics\n".to_string())
                };
                h.pending = format!(
                    "HTTP/1.0 {status}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    format.content_type(),
                    text.len()
                )
                .into_bytes();
            }
            if !h.pending.is_empty() && s.can_send() {
                if let Ok(n) = s.send_slice(&h.pending) {
                    h.pending.drain(..n);
                }
                if h.pending.is_empty() {
                    s.close();
                }
            }
        }
        self.iface.poll(now, &mut self.dev, &mut self.sockets);
        self.dev.tx.drain(..).collect()
    }

    /// How long until the stack needs polling again (TCP timers), in milliseconds.
    pub fn poll_delay_ms(&mut self, now_ms: i64) -> u64 {
        self.iface
            .poll_delay(Instant::from_millis(now_ms), &self.sockets)
            .map_or(100, |d| d.total_millis().min(100))
    }
}
