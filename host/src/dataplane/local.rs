//! The router's own addresses: an embedded smoltcp interface (`Medium::Ip`) receives what
//! INPUT accepted and answers it (ICMP echo today); everything it sends goes back through
//! the pipeline as locally generated (OUTPUT, POSTROUTING).

use crate::config::Cidr;
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
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

/// The local stack: smoltcp with the router's addresses.
pub struct Stack {
    pub iface: Interface,
    pub dev: Queues,
    pub sockets: SocketSet<'static>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack").field("addrs", &self.iface.ip_addrs()).finish()
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
                let ip = match c.addr {
                    IpAddr::V4(v) => IpAddress::Ipv4(v),
                    IpAddr::V6(v) => IpAddress::Ipv6(v),
                };
                // Capacity is bounded (8 addresses); the rest are still routed to INPUT but not
                // answered, which the config check reports.
                let _ = a.push(IpCidr::new(ip, c.len));
            }
        });
        Stack {
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
        }
    }

    /// Hands a packet INPUT accepted to the stack and returns what it sends in response.
    pub fn deliver(&mut self, pkt: Vec<u8>, now_ms: i64) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.dev.rx.push_back(pkt);
        self.iface
            .poll(Instant::from_millis(now_ms), &mut self.dev, &mut self.sockets);
        self.dev.tx.drain(..)
    }
}
