//! Building exchange buffers natively, to unit-test plugin logic with plain `cargo test`.

use crate::abi::*;
use alloc::vec::Vec;

/// An exchange buffer for `pkt` (an IPv4 or IPv6 packet), hook FORWARD, connection NEW.
pub fn buffer(pkt: &[u8]) -> Vec<u8> {
    let mut b = alloc::vec![0u8; META_LEN];
    b[META_VERSION..META_VERSION + 4].copy_from_slice(&(ABI_VERSION as u32).to_le_bytes());
    b[META_HOOK..META_HOOK + 4].copy_from_slice(&HOOK_FORWARD.to_le_bytes());
    b[META_PKT_LEN..META_PKT_LEN + 4].copy_from_slice(&(pkt.len() as u32).to_le_bytes());
    b[META_ORIG_LEN..META_ORIG_LEN + 4].copy_from_slice(&(pkt.len() as u32).to_le_bytes());
    let v = pkt.first().map_or(0, |x| x >> 4);
    b[META_IP_VERSION] = v;
    let (proto, l4) = match v {
        4 if pkt.len() >= 20 => (pkt[9], usize::from(pkt[0] & 15) * 4),
        6 if pkt.len() >= 40 => (pkt[6], 40),
        _ => (0, 0),
    };
    b[META_PROTO] = proto;
    b[META_L4_OFF..META_L4_OFF + 2].copy_from_slice(&(l4 as u16).to_le_bytes());
    b[META_CT_STATE] = CT_NEW;
    b.extend_from_slice(pkt);
    b
}

/// An IPv4 UDP packet's exchange buffer (checksums are not filled: plugins do not check them).
pub fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    let total = (28 + payload.len()) as u16;
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    buffer(&p)
}

/// An IPv4 TCP segment's exchange buffer (flags, payload; no options).
pub fn tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    let total = (40 + payload.len()) as u16;
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 64, 6, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    p.extend_from_slice(payload);
    buffer(&p)
}
