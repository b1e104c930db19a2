//! Building IPv4 packets with correct checksums: the replies the router sends itself (REJECT's
//! ICMP errors and TCP resets, time-exceeded, unreachable) and the synthetic packets of
//! `rtrouter trace`. Everything is written into a caller-owned buffer, which is cleared first
//! and grows only if its capacity is too small.

use super::checksum;
use super::proto;
use std::net::Ipv4Addr;

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

/// Fills the transport checksum at `field` (offset from the transport header), with the IPv4
/// pseudo-header unless the protocol is ICMP.
fn l4_checksum(buf: &mut [u8], ip: &Ip4, field: usize) {
    let l4 = &buf[20..];
    let mut s = checksum::sum(l4);
    if ip.proto != proto::ICMP {
        s += checksum::pseudo_header(&ip.src.octets(), &ip.dst.octets(), ip.proto, l4.len() as u32);
    }
    let mut c = checksum::finish(s);
    if ip.proto == proto::UDP && c == 0 {
        c = 0xffff;
    }
    buf[20 + field..22 + field].copy_from_slice(&c.to_be_bytes());
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

pub fn tcp(buf: &mut Vec<u8>, ip: Ip4, t: TcpSeg, payload: &[u8]) {
    let ip = Ip4 {
        proto: proto::TCP,
        ..ip
    };
    ip_header(buf, &ip, 20 + payload.len());
    buf.extend_from_slice(&t.sport.to_be_bytes());
    buf.extend_from_slice(&t.dport.to_be_bytes());
    buf.extend_from_slice(&t.seq.to_be_bytes());
    buf.extend_from_slice(&t.ack.to_be_bytes());
    buf.extend_from_slice(&[0x50, t.flags]);
    buf.extend_from_slice(&t.window.to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0, 0]);
    buf.extend_from_slice(payload);
    l4_checksum(buf, &ip, 16);
}

pub fn udp(buf: &mut Vec<u8>, ip: Ip4, sport: u16, dport: u16, payload: &[u8]) {
    let ip = Ip4 {
        proto: proto::UDP,
        ..ip
    };
    ip_header(buf, &ip, 8 + payload.len());
    buf.extend_from_slice(&sport.to_be_bytes());
    buf.extend_from_slice(&dport.to_be_bytes());
    buf.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(payload);
    l4_checksum(buf, &ip, 6);
}

/// An ICMP message: type, code, the 4 "rest of header" bytes, then `body`.
pub fn icmp(buf: &mut Vec<u8>, ip: Ip4, typ: u8, code: u8, rest: [u8; 4], body: &[u8]) {
    let ip = Ip4 {
        proto: proto::ICMP,
        ..ip
    };
    ip_header(buf, &ip, 8 + body.len());
    buf.extend_from_slice(&[typ, code, 0, 0]);
    buf.extend_from_slice(&rest);
    buf.extend_from_slice(body);
    l4_checksum(buf, &ip, 2);
}

/// An SCTP packet with one INIT chunk, enough for conntrack and port matches.
pub fn sctp_init(buf: &mut Vec<u8>, ip: Ip4, sport: u16, dport: u16, tag: u32) {
    let ip = Ip4 {
        proto: proto::SCTP,
        ..ip
    };
    ip_header(buf, &ip, 12 + 20);
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
    h.l4_off = 20;
    super::fill_l4_checksum(buf, &h);
}

/// A packet of another protocol with `payload` as its body.
pub fn raw(buf: &mut Vec<u8>, ip: Ip4, payload: &[u8]) {
    ip_header(buf, &ip, payload.len());
    buf.extend_from_slice(payload);
}

/// The part of `orig` an ICMP error quotes: its IP header and as much data as keeps the error
/// within 576 bytes (RFC 1812 4.3.2.3), at least the first 8 bytes of data.
pub fn icmp_quote(orig: &[u8]) -> &[u8] {
    let max = 576 - 20 - 8;
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
}
