//! Building IPv4 packets with correct checksums: the replies the router sends itself (REJECT's
//! ICMP errors and TCP resets, time-exceeded, unreachable) and the synthetic packets of
//! `rtrouter trace`. Everything is written into a caller-owned buffer, which is cleared first
//! and grows only if its capacity is too small.

use super::checksum;
use super::proto;
use std::net::{Ipv4Addr, Ipv6Addr};

/// An IP header the builders below can put in front of a transport header: IPv4's or IPv6's.
pub trait IpHeader: Copy {
    /// The protocol number of this family's ICMP.
    const ICMP: u8;
    /// Clears `buf` and writes the header for `payload_len` bytes of `proto`.
    fn write(&self, buf: &mut Vec<u8>, proto: u8, payload_len: usize);
    /// The header's length in bytes.
    fn header_len(&self) -> usize;
    /// The pseudo-header sum a transport checksum of `proto` covers; `None` when it covers
    /// none (ICMP over IPv4).
    fn pseudo(&self, proto: u8, l4_len: u32) -> Option<u32>;
}

impl IpHeader for Ip4 {
    const ICMP: u8 = proto::ICMP;

    fn write(&self, buf: &mut Vec<u8>, proto: u8, payload_len: usize) {
        ip_header(buf, &Ip4 { proto, ..*self }, payload_len);
    }

    fn header_len(&self) -> usize {
        20
    }

    fn pseudo(&self, proto: u8, l4_len: u32) -> Option<u32> {
        (proto != proto::ICMP).then(|| checksum::pseudo_header(&self.src.octets(), &self.dst.octets(), proto, l4_len))
    }
}

/// The fields of an IPv6 header that callers choose (no extension headers).
#[derive(Debug, Clone, Copy)]
pub struct Ip6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    pub tclass: u8,
    pub flow: u32,
}

impl Ip6 {
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        Ip6 {
            src,
            dst,
            hop_limit: 64,
            tclass: 0,
            flow: 0,
        }
    }
}

impl IpHeader for Ip6 {
    const ICMP: u8 = proto::ICMPV6;

    fn write(&self, buf: &mut Vec<u8>, proto: u8, payload_len: usize) {
        buf.clear();
        let first = (6u32 << 28) | (u32::from(self.tclass) << 20) | (self.flow & 0xf_ffff);
        buf.extend_from_slice(&first.to_be_bytes());
        buf.extend_from_slice(&(payload_len as u16).to_be_bytes());
        buf.extend_from_slice(&[proto, self.hop_limit]);
        buf.extend_from_slice(&self.src.octets());
        buf.extend_from_slice(&self.dst.octets());
    }

    fn header_len(&self) -> usize {
        40
    }

    fn pseudo(&self, proto: u8, l4_len: u32) -> Option<u32> {
        Some(checksum::pseudo_header(
            &self.src.octets(),
            &self.dst.octets(),
            proto,
            l4_len,
        ))
    }
}

/// The fields of an IPv4 header that callers choose.
#[derive(Debug, Clone, Copy)]
pub struct Ip4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub ttl: u8,
    pub tos: u8,
    pub ident: u16,
    pub df: bool,
}

impl Ip4 {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Self {
        Ip4 {
            src,
            dst,
            proto,
            ttl: 64,
            tos: 0,
            ident: 0,
            df: false,
        }
    }
}

/// Writes the 20-byte IPv4 header for `payload_len` bytes of payload, checksum filled.
fn ip_header(buf: &mut Vec<u8>, ip: &Ip4, payload_len: usize) {
    let total = (20 + payload_len) as u16;
    buf.clear();
    buf.extend_from_slice(&[0x45, ip.tos]);
    buf.extend_from_slice(&total.to_be_bytes());
    buf.extend_from_slice(&ip.ident.to_be_bytes());
    buf.extend_from_slice(&(if ip.df { 0x4000u16 } else { 0 }).to_be_bytes());
    buf.extend_from_slice(&[ip.ttl, ip.proto, 0, 0]);
    buf.extend_from_slice(&ip.src.octets());
    buf.extend_from_slice(&ip.dst.octets());
    let c = checksum::finish(checksum::sum(&buf[..20]));
    buf[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Fills the transport checksum at `field` (offset from the transport header), with the
/// pseudo-header unless the protocol is ICMP over IPv4.
fn l4_checksum(buf: &mut [u8], ip: &impl IpHeader, proto: u8, field: usize) {
    let hl = ip.header_len();
    let l4 = &buf[hl..];
    let mut s = checksum::sum(l4);
    if let Some(p) = ip.pseudo(proto, l4.len() as u32) {
        s += p;
    }
    let mut c = checksum::finish(s);
    if proto == proto::UDP && c == 0 {
        c = 0xffff;
    }
    buf[hl + field..hl + field + 2].copy_from_slice(&c.to_be_bytes());
}

/// A TCP segment with no options.
#[derive(Debug, Clone, Copy)]
pub struct TcpSeg {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
}

pub fn tcp(buf: &mut Vec<u8>, ip: impl IpHeader, t: TcpSeg, payload: &[u8]) {
    ip.write(buf, proto::TCP, 20 + payload.len());
    buf.extend_from_slice(&t.sport.to_be_bytes());
    buf.extend_from_slice(&t.dport.to_be_bytes());
    buf.extend_from_slice(&t.seq.to_be_bytes());
    buf.extend_from_slice(&t.ack.to_be_bytes());
    buf.extend_from_slice(&[0x50, t.flags]);
    buf.extend_from_slice(&t.window.to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0, 0]);
    buf.extend_from_slice(payload);
    l4_checksum(buf, &ip, proto::TCP, 16);
}

/// A TCP segment without data whose header carries `options` (a multiple of 4 bytes, at
/// most 40).
pub fn tcp_with_options(buf: &mut Vec<u8>, ip: impl IpHeader, t: TcpSeg, options: &[u8]) {
    tcp(buf, ip, t, options);
    let at = ip.header_len();
    buf[at + 12] = ((20 + options.len().min(40)) as u8 / 4) << 4;
    buf[at + 16..at + 18].copy_from_slice(&[0, 0]);
    l4_checksum(buf, &ip, proto::TCP, 16);
}

pub fn udp(buf: &mut Vec<u8>, ip: impl IpHeader, sport: u16, dport: u16, payload: &[u8]) {
    ip.write(buf, proto::UDP, 8 + payload.len());
    buf.extend_from_slice(&sport.to_be_bytes());
    buf.extend_from_slice(&dport.to_be_bytes());
    buf.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(payload);
    l4_checksum(buf, &ip, proto::UDP, 6);
}

/// An ICMP (ICMPv6 over IPv6) message: type, code, the 4 "rest of header" bytes, then `body`.
pub fn icmp<I: IpHeader>(buf: &mut Vec<u8>, ip: I, typ: u8, code: u8, rest: [u8; 4], body: &[u8]) {
    ip.write(buf, I::ICMP, 8 + body.len());
    buf.extend_from_slice(&[typ, code, 0, 0]);
    buf.extend_from_slice(&rest);
    buf.extend_from_slice(body);
    l4_checksum(buf, &ip, I::ICMP, 2);
}

/// An SCTP packet with one INIT chunk, enough for conntrack and port matches.
pub fn sctp_init(buf: &mut Vec<u8>, ip: impl IpHeader, sport: u16, dport: u16, tag: u32) {
    ip.write(buf, proto::SCTP, 12 + 20);
    buf.extend_from_slice(&sport.to_be_bytes());
    buf.extend_from_slice(&dport.to_be_bytes());
    buf.extend_from_slice(&[0; 8]);
    // INIT chunk: type 1, flags 0, length 20, initiate tag, a_rwnd, streams, initial TSN.
    buf.extend_from_slice(&[1, 0, 0, 20]);
    buf.extend_from_slice(&tag.to_be_bytes());
    buf.extend_from_slice(&65535u32.to_be_bytes());
    buf.extend_from_slice(&[0, 10, 0, 10]);
    buf.extend_from_slice(&tag.to_be_bytes());
    let mut h = super::parse(buf).expect("just built");
    h.l4_off = ip.header_len() as u16;
    super::fill_l4_checksum(buf, &h);
}

/// A packet of another protocol (`ip.proto`) with `payload` as its body.
pub fn raw(buf: &mut Vec<u8>, ip: Ip4, payload: &[u8]) {
    raw_of(buf, ip, ip.proto, payload);
}

/// A packet of protocol `proto` in either family with `payload` as its body.
pub fn raw_of(buf: &mut Vec<u8>, ip: impl IpHeader, proto: u8, payload: &[u8]) {
    ip.write(buf, proto, payload.len());
    buf.extend_from_slice(payload);
}

/// The part of `orig` an ICMP error quotes: its IP header and as much data as keeps the error
/// within 576 bytes (RFC 1812 4.3.2.3), at least the first 8 bytes of data.
pub fn icmp_quote(orig: &[u8]) -> &[u8] {
    let max = 576 - 20 - 8;
    &orig[..orig.len().min(max)]
}

/// The part of `orig` an ICMPv6 error quotes: as much as keeps the error within the IPv6
/// minimum MTU, 1280 bytes (RFC 4443 2.4 (c)).
pub fn icmp6_quote(orig: &[u8]) -> &[u8] {
    let max = 1280 - 40 - 8;
    &orig[..orig.len().min(max)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{checksums_ok, parse, L4};

    #[test]
    fn built_packets_parse_with_valid_checksums() {
        let ip = Ip4::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 0);
        let mut b = Vec::new();
        tcp(
            &mut b,
            ip,
            TcpSeg {
                sport: 1234,
                dport: 80,
                seq: 100,
                ack: 0,
                flags: 2,
                window: 65535,
            },
            b"",
        );
        assert_eq!(checksums_ok(&b), Some(true));
        udp(&mut b, ip, 5353, 53, b"hello");
        assert_eq!(checksums_ok(&b), Some(true));
        icmp(&mut b, ip, 8, 0, [0, 7, 0, 1], b"ping");
        assert_eq!(checksums_ok(&b), Some(true));
        assert!(matches!(parse(&b).unwrap().l4, L4::Icmp(i) if i.ident == 7 && i.seq == 1));
        sctp_init(&mut b, ip, 5000, 36412, 0xdeadbeef);
        assert_eq!(parse(&b).unwrap().ports(), Some((5000, 36412)));
    }

    #[test]
    fn ipv6_packets_parse_with_valid_checksums() {
        let ip = Ip6::new("2001:db8::1".parse().unwrap(), "2001:db8:1::2".parse().unwrap());
        let mut b = Vec::new();
        let seg = TcpSeg {
            sport: 1234,
            dport: 80,
            seq: 100,
            ack: 0,
            flags: 2,
            window: 65535,
        };
        tcp(&mut b, ip, seg, b"x");
        assert_eq!(b.len(), 40 + 21);
        assert_eq!(checksums_ok(&b), Some(true));
        let h = parse(&b).unwrap();
        assert_eq!((h.proto, h.ports(), h.ttl), (6, Some((1234, 80)), 64));
        udp(&mut b, ip, 5353, 53, b"hello");
        assert_eq!(checksums_ok(&b), Some(true));
        icmp(&mut b, ip, 128, 0, [0, 7, 0, 1], b"ping");
        assert_eq!(checksums_ok(&b), Some(true));
        assert!(matches!(parse(&b).unwrap().l4, L4::Icmp(i) if i.typ == 128 && i.ident == 7));
    }
}
