//! The few rtnetlink requests the dataplane needs (`rtnetlink(7)`): find a link, move it to a
//! network namespace, bring it up with an MTU, add an address, add a route, read a link's
//! counters. Messages are
//! built by hand; each request asks for an acknowledgement and a kernel error becomes an
//! `io::Error` with the errno and what was being done.
//!
//! A netlink socket belongs to the network namespace of the thread that opened it, which is
//! how [`super::netns::run_in`] configures the kernel side inside a namespace.

use crate::config::Cidr;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::IpAddr;

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_STATS64: u16 = 23;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const IFF_UP: u32 = 1;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// A link's counters as the kernel keeps them (`struct rtnl_link_stats64`), the few the
/// dataplane shows. For a TUN device, "tx" is the kernel handing packets to rtrouter and
/// "rx" rtrouter handing them back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

/// A route netlink socket in the namespace of the thread that opened it.
#[derive(Debug)]
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

fn attr(out: &mut Vec<u8>, typ: u16, data: &[u8]) {
    out.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&typ.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(4) * 4, 0);
}

fn family(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    }
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn ifinfo(index: u32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![0u8, 0];
    b.extend_from_slice(&0u16.to_ne_bytes());
    b.extend_from_slice(&(index as i32).to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

impl Netlink {
    pub fn open() -> io::Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { sock, seq: 1 })
    }

    /// Sends one request and reads until its ACK (or error). Returns the payloads of the
    /// messages received before the ACK (for GET requests).
    fn request(&mut self, typ: u16, flags: u16, body: &[u8], what: &str) -> io::Result<Vec<(u16, Vec<u8>)>> {
        self.seq += 1;
        let mut msg = Vec::with_capacity(16 + body.len());
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&typ.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        self.sock.send(&msg, 0)?;
        let mut got = Vec::new();
        loop {
            let mut buf: Vec<u8> = Vec::with_capacity(65536);
            self.sock.recv(&mut buf, 0)?;
            let mut at = 0;
            while at + 16 <= buf.len() {
                let len = u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
                let mtype = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().expect("2 bytes"));
                let seq = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().expect("4 bytes"));
                if len < 16 || at + len > buf.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{what}: malformed netlink reply"),
                    ));
                }
                let payload = &buf[at + 16..at + len];
                if seq == self.seq {
                    match mtype {
                        NLMSG_ERROR => {
                            let code =
                                i32::from_ne_bytes(payload.get(..4).unwrap_or(&[0; 4]).try_into().expect("4 bytes"));
                            if code == 0 {
                                return Ok(got);
                            }
                            let e = io::Error::from_raw_os_error(-code);
                            return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
                        }
                        NLMSG_DONE => return Ok(got),
                        t => got.push((t, payload.to_vec())),
                    }
                }
                at += len.div_ceil(4) * 4;
            }
        }
    }

    /// The index of the link called `name` in this namespace.
    pub fn link_index(&mut self, name: &str) -> io::Result<u32> {
        let mut body = ifinfo(0, 0, 0);
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        attr(&mut body, IFLA_IFNAME, &n);
        let got = self.request(RTM_GETLINK, 0, &body, &format!("looking up link {name}"))?;
        got.iter()
            .find(|(t, p)| *t == RTM_NEWLINK && p.len() >= 8)
            .map(|(_, p)| i32::from_ne_bytes(p[4..8].try_into().expect("4 bytes")) as u32)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no link {name}")))
    }

    /// The kernel's counters of the link called `name` (`IFLA_STATS64`).
    pub fn link_stats(&mut self, name: &str) -> io::Result<LinkStats> {
        let mut body = ifinfo(0, 0, 0);
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        attr(&mut body, IFLA_IFNAME, &n);
        let got = self.request(RTM_GETLINK, 0, &body, &format!("reading the counters of {name}"))?;
        let (_, msg) = got
            .iter()
            .find(|(t, p)| *t == RTM_NEWLINK && p.len() >= 16)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no link {name}")))?;
        // The attributes after the 16-byte ifinfomsg.
        let mut at = 16;
        while at + 4 <= msg.len() {
            let len = usize::from(u16::from_ne_bytes([msg[at], msg[at + 1]]));
            let typ = u16::from_ne_bytes([msg[at + 2], msg[at + 3]]);
            if len < 4 || at + len > msg.len() {
                break;
            }
            if typ == IFLA_STATS64 && len >= 4 + 8 * 8 {
                let v =
                    |i: usize| u64::from_ne_bytes(msg[at + 4 + 8 * i..at + 12 + 8 * i].try_into().expect("8 bytes"));
                return Ok(LinkStats {
                    rx_packets: v(0),
                    tx_packets: v(1),
                    rx_dropped: v(6),
                    tx_dropped: v(7),
                });
            }
            at += len.div_ceil(4) * 4;
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{name}: no IFLA_STATS64"),
        ))
    }

    /// Moves a link to the network namespace open as `ns_fd`.
    pub fn move_to_netns(&mut self, index: u32, ns_fd: i32) -> io::Result<()> {
        let mut body = ifinfo(index, 0, 0);
        attr(&mut body, IFLA_NET_NS_FD, &(ns_fd as u32).to_ne_bytes());
        self.request(RTM_NEWLINK, 0, &body, "moving the link to its namespace")
            .map(drop)
    }

    /// Sets the MTU and brings the link up.
    pub fn up(&mut self, index: u32, mtu: u32) -> io::Result<()> {
        let mut body = ifinfo(index, IFF_UP, IFF_UP);
        attr(&mut body, IFLA_MTU, &mtu.to_ne_bytes());
        self.request(RTM_NEWLINK, 0, &body, "bringing the link up").map(drop)
    }

    pub fn add_address(&mut self, index: u32, a: Cidr) -> io::Result<()> {
        let mut body = vec![family(a.addr), a.len, 0, 0];
        body.extend_from_slice(&index.to_ne_bytes());
        attr(&mut body, IFA_LOCAL, &octets(a.addr));
        attr(&mut body, IFA_ADDRESS, &octets(a.addr));
        self.request(
            RTM_NEWADDR,
            NLM_F_CREATE | NLM_F_EXCL,
            &body,
            &format!("adding address {a}"),
        )
        .map(drop)
    }

    /// A route to `dst` out of link `index`, through `via` when given.
    pub fn add_route(&mut self, dst: Cidr, via: Option<IpAddr>, index: u32) -> io::Result<()> {
        // family, dst_len, src_len, tos, table main, protocol static, scope, type unicast
        let scope = if via.is_some() { 0 } else { 253 };
        let mut body = vec![family(dst.addr), dst.len, 0, 0, 254, 4, scope, 1];
        body.extend_from_slice(&0u32.to_ne_bytes());
        if dst.len > 0 {
            attr(&mut body, RTA_DST, &octets(dst.addr));
        }
        if let Some(g) = via {
            attr(&mut body, RTA_GATEWAY, &octets(g));
        }
        attr(&mut body, RTA_OIF, &index.to_ne_bytes());
        self.request(
            RTM_NEWROUTE,
            NLM_F_CREATE | NLM_F_EXCL,
            &body,
            &format!("adding route to {dst}"),
        )
        .map(drop)
    }
}
