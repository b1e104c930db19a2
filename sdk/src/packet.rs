//! A read-only view of the packet and its metadata, and the mutable one targets get.

use crate::abi::*;

fn u16_at(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]),
        None => 0,
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// The exchange buffer as the host filled it: the metadata record, then the packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
}

impl<'a> Packet<'a> {
    /// A view over `meta + packet` (what the host wrote). Shorter buffers read as empty.
    pub fn new(buf: &'a [u8]) -> Self {
        Packet { buf }
    }

    fn meta32(&self, at: usize) -> u32 {
        le32(self.buf, at)
    }

    /// The packet bytes the plugin sees (possibly cut to the plugin's `max_bytes`).
    pub fn bytes(&self) -> &'a [u8] {
        let n = self.meta32(META_PKT_LEN) as usize;
        self.buf.get(META_LEN..META_LEN + n).unwrap_or(&[])
    }
    pub fn truncated(&self) -> bool {
        self.meta32(META_IN_FLAGS) & IN_TRUNCATED != 0
    }
    /// The whole packet's length.
    pub fn len(&self) -> usize {
        self.meta32(META_ORIG_LEN) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn hook(&self) -> u32 {
        self.meta32(META_HOOK)
    }
    pub fn mark(&self) -> u32 {
        self.meta32(META_MARK)
    }
    pub fn ct_mark(&self) -> u32 {
        self.meta32(META_CT_MARK)
    }
    /// `CT_*`.
    pub fn ct_state(&self) -> u8 {
        self.buf.get(META_CT_STATE).copied().unwrap_or(CT_INVALID)
    }
    /// The router's clock in nanoseconds (monotonic).
    pub fn now_ns(&self) -> u64 {
        u64::from(self.meta32(META_NOW_NS)) | (u64::from(self.meta32(META_NOW_NS + 4)) << 32)
    }
    pub fn ip_version(&self) -> u8 {
        self.buf.get(META_IP_VERSION).copied().unwrap_or(0)
    }
    /// The transport protocol (6 TCP, 17 UDP, 1 ICMP, …).
    pub fn proto(&self) -> u8 {
        self.buf.get(META_PROTO).copied().unwrap_or(0)
    }
    /// The IPv4 source address.
    pub fn src_v4(&self) -> Option<[u8; 4]> {
        let b = self.bytes();
        (self.ip_version() == 4 && b.len() >= 20).then(|| [b[12], b[13], b[14], b[15]])
    }
    pub fn dst_v4(&self) -> Option<[u8; 4]> {
        let b = self.bytes();
        (self.ip_version() == 4 && b.len() >= 20).then(|| [b[16], b[17], b[18], b[19]])
    }
    /// The source address bytes (4 or 16).
    pub fn src(&self) -> &'a [u8] {
        let b = self.bytes();
        match self.ip_version() {
            4 => b.get(12..16).unwrap_or(&[]),
            6 => b.get(8..24).unwrap_or(&[]),
            _ => &[],
        }
    }
    fn l4_off(&self) -> usize {
        u16::from_le_bytes([
            self.buf.get(META_L4_OFF).copied().unwrap_or(0),
            self.buf.get(META_L4_OFF + 1).copied().unwrap_or(0),
        ]) as usize
    }
    /// The transport header and what follows it.
    pub fn l4(&self) -> &'a [u8] {
        let off = self.l4_off();
        if off == 0 {
            return &[];
        }
        self.bytes().get(off..).unwrap_or(&[])
    }
    fn has_ports(&self) -> bool {
        matches!(self.proto(), 6 | 17 | 132 | 136 | 33) && self.l4().len() >= 4
    }
    pub fn sport(&self) -> Option<u16> {
        self.has_ports().then(|| u16_at(self.l4(), 0))
    }
    pub fn dport(&self) -> Option<u16> {
        self.has_ports().then(|| u16_at(self.l4(), 2))
    }
    /// TCP flags (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20).
    pub fn tcp_flags(&self) -> Option<u8> {
        (self.proto() == 6).then(|| self.l4().get(13).copied()).flatten()
    }
    /// The transport payload: after the TCP header (with options) or the UDP header.
    pub fn payload(&self) -> &'a [u8] {
        let l4 = self.l4();
        let hl = match self.proto() {
            6 => usize::from(l4.get(12).copied().unwrap_or(0) >> 4) * 4,
            17 => 8,
            _ => 0,
        };
        l4.get(hl..).unwrap_or(&[])
    }
}

/// What a target gets: the view, plus changes the host applies after the call.
#[derive(Debug)]
pub struct PacketMut<'a> {
    buf: &'a mut [u8],
}

impl<'a> PacketMut<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        PacketMut { buf }
    }
    pub fn view(&self) -> Packet<'_> {
        Packet::new(self.buf)
    }
    fn flag(&mut self, f: u32) {
        let v = le32(self.buf, META_OUT_FLAGS) | f;
        if let Some(s) = self.buf.get_mut(META_OUT_FLAGS..META_OUT_FLAGS + 4) {
            s.copy_from_slice(&v.to_le_bytes());
        }
    }
    pub fn set_mark(&mut self, mark: u32) {
        if let Some(s) = self.buf.get_mut(META_MARK..META_MARK + 4) {
            s.copy_from_slice(&mark.to_le_bytes());
        }
        self.flag(OUT_MARK);
    }
    pub fn set_ct_mark(&mut self, mark: u32) {
        if let Some(s) = self.buf.get_mut(META_CT_MARK..META_CT_MARK + 4) {
            s.copy_from_slice(&mark.to_le_bytes());
        }
        self.flag(OUT_CT_MARK);
    }
    /// The packet bytes, to change in place; the host fixes checksums afterwards.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.flag(OUT_PACKET);
        let n = le32(self.buf, META_PKT_LEN) as usize;
        let end = (META_LEN + n).min(self.buf.len());
        self.buf.get_mut(META_LEN..end).unwrap_or(&mut [])
    }
}
