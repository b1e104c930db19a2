//! Packets: one parse per packet into [`Headers`], the summary every later stage reads, and
//! the few in-place rewrites the targets and NAT need (with incremental checksums).
//!
//! Parsing goes through `smoltcp::wire` views. After [`parse`] succeeded, the offsets in
//! `Headers` are inside the buffer, so the rewrite helpers index it without further checks.
//! A packet that fails a check is not an error but a [`DropReason`], counted by the caller.

pub mod build;
pub mod checksum;
pub mod frag;
pub mod gso;

use smoltcp::wire::{Icmpv4Packet, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Defines [`DropReason`] with its names and [`DropReason::ALL`] from one list, so that a
/// new reason cannot be left out of `ALL` (whose length sizes the router's drop counters).
macro_rules! drop_reasons {
    ($($(#[$doc:meta])* $var:ident => $name:literal,)*) => {
        /// Why a packet was dropped. Every drop has one; the router counts them per reason.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum DropReason {
            $($(#[$doc])* $var,)*
        }

        impl DropReason {
            /// Every reason, in declaration order (`index()` is the position here).
            pub const ALL: [DropReason; [$(DropReason::$var),*].len()] = [$(DropReason::$var),*];

            /// A stable snake_case name, for counters and metrics.
            pub fn name(self) -> &'static str {
                match self {
                    $(DropReason::$var => $name,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than an IP header.
    Truncated => "truncated",
    /// IP version is neither 4 nor 6.
    BadVersion => "bad_version",
    /// IPv4 header length below 20 bytes or past the end of the packet.
    BadHeaderLength => "bad_header_length",
    /// The IP total/payload length disagrees with the bytes received.
    BadTotalLength => "bad_total_length",
    /// IPv4 header checksum wrong.
    BadChecksum => "bad_checksum",
    /// The first fragment is too short for its TCP/UDP/ICMP/SCTP header.
    TruncatedL4 => "truncated_l4",
    /// Forwarding would take TTL/hop limit to 0; ICMP time-exceeded was sent.
    TtlExceeded => "ttl_exceeded",
    /// No route to the destination; ICMP unreachable was sent.
    NoRoute => "no_route",
    /// Source or destination address that must never be routed (RFC 1812 5.3.7), or a
    /// loopback destination from outside without `route_localnet`.
    Martian => "martian",
    /// Forwarding is disabled.
    NotForwarding => "not_forwarding",
    /// A `DROP` target or policy.
    Filtered => "filtered",
    /// A `REJECT` target (the reply was sent).
    Rejected => "rejected",
    /// Taken by `SYNPROXY`: a SYN it answered with a cookie, or an ACK whose cookie opened
    /// the connection to the server.
    Synproxy => "synproxy",
    /// Dropped by `SYNPROXY`: a bad checksum, a client ACK without a valid cookie, or a
    /// segment of a spliced connection whose options are cut short.
    SynproxyInvalid => "synproxy_invalid",
    /// Larger than the egress MTU with DF set; ICMP fragmentation-needed was sent.
    TooBig => "too_big",
    /// Conntrack table full and nothing could be evicted.
    ConntrackFull => "conntrack_full",
    /// A new connection clashed with one confirmed meanwhile for its tuples but a different
    /// translation (`nf_ct_resolve_clash` could not merge them).
    Clash => "clash",
    /// A NAT mapping could not be found for a new connection (port space exhausted).
    NatExhausted => "nat_exhausted",
    /// A packet the router generated could not be routed back.
    ReplyUnroutable => "reply_unroutable",
    /// A plugin failed and its rule is configured to drop.
    PluginFailure => "plugin_failure",
    /// MASQUERADE or REDIRECT on an interface without an IPv4 address.
    NatNoAddress => "nat_no_address",
    /// A fragment reassembly cannot use: empty, past a final fragment's end, a final
    /// fragment that disagrees with the end seen, an exact duplicate, or a datagram longer
    /// than 65535 bytes.
    FragInvalid => "frag_invalid",
    /// A fragment overlapping another of its datagram (the datagram is dropped).
    FragOverlap => "frag_overlap",
    /// Reassembly holds as many fragment bytes as it may.
    FragLimit => "frag_limit",
    /// A TUN device's offload header points its checksum outside the packet.
    BadOffload => "bad_offload",
    /// IPv4 options `ip_options_compile` refuses (an ICMP parameter problem was sent).
    BadIpOptions => "bad_ip_options",
    /// An IPv4 source route option: dropped, as Linux drops them
    /// (`net.ipv4.conf.all.accept_source_route = 0`).
    SourceRoute => "source_route",
}

impl DropReason {
    /// The reason's position in [`DropReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
    pub const SCTP: u8 = 132;
}

/// TCP flag bits as in the header's 13th byte.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// Header length in bytes (options included).
    pub hdr_len: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmp {
    pub typ: u8,
    pub code: u8,
    /// Identifier and sequence of echo/timestamp/info messages (0 for others).
    pub ident: u16,
    pub seq: u16,
}

/// The transport header, for first fragments of known protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// Not a first fragment, or a protocol without a parsed header.
    None,
    Tcp(Tcp),
    Udp {
        sport: u16,
        dport: u16,
    },
    Sctp {
        sport: u16,
        dport: u16,
    },
    Icmp(Icmp),
}

/// Everything the pipeline reads about a packet, parsed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 protocol, or IPv6's last next-header.
    pub proto: u8,
    pub ttl: u8,
    pub tos: u8,
    pub ident: u16,
    pub df: bool,
    /// Bytes of the IP packet (header included) as its header states.
    pub total_len: u16,
    /// Offset of the transport header.
    pub l4_off: u16,
    /// Fragment offset in bytes; non-zero means not the first fragment.
    pub frag_off: u16,
    pub more_frags: bool,
    pub l4: L4,
}

impl Headers {
    pub fn is_v4(&self) -> bool {
        self.src.is_ipv4()
    }

    pub fn src_v4(&self) -> Option<Ipv4Addr> {
        match self.src {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }

    pub fn dst_v4(&self) -> Option<Ipv4Addr> {
        match self.dst {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }

    /// Source and destination ports of TCP, UDP and SCTP.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.l4 {
            L4::Tcp(t) => Some((t.sport, t.dport)),
            L4::Udp { sport, dport } | L4::Sctp { sport, dport } => Some((sport, dport)),
            _ => None,
        }
    }

    /// Whether this is a fragment (first or not).
    pub fn is_fragment(&self) -> bool {
        self.frag_off != 0 || self.more_frags
    }
}

/// Parses the IP packet at the start of `buf`. Bytes after the IP total length (link padding)
/// are ignored; the caller may trim them.
pub fn parse(buf: &[u8]) -> Result<Headers, DropReason> {
    match buf.first().map(|b| b >> 4) {
        None => Err(DropReason::Truncated),
        Some(4) => parse_v4(buf),
        Some(6) => parse_v6(buf),
        Some(_) => Err(DropReason::BadVersion),
    }
}

fn parse_v4(buf: &[u8]) -> Result<Headers, DropReason> {
    if buf.len() < 20 {
        return Err(DropReason::Truncated);
    }
    let p = Ipv4Packet::new_unchecked(buf);
    let hl = usize::from(p.header_len());
    if hl < 20 || hl > buf.len() {
        return Err(DropReason::BadHeaderLength);
    }
    if p.check_len().is_err() {
        return Err(DropReason::BadTotalLength);
    }
    if !p.verify_checksum() {
        return Err(DropReason::BadChecksum);
    }
    let total = p.total_len();
    let proto = u8::from(p.next_header());
    let frag_off = p.frag_offset();
    let body = &buf[hl..usize::from(total)];
    let l4 = if frag_off != 0 {
        L4::None
    } else {
        parse_l4(proto, body)?
    };
    Ok(Headers {
        src: IpAddr::V4(p.src_addr()),
        dst: IpAddr::V4(p.dst_addr()),
        proto,
        ttl: p.hop_limit(),
        tos: buf[1],
        ident: p.ident(),
        df: p.dont_frag(),
        total_len: total,
        l4_off: hl as u16,
        frag_off,
        more_frags: p.more_frags(),
        l4,
    })
}

fn parse_v6(buf: &[u8]) -> Result<Headers, DropReason> {
    let p = Ipv6Packet::new_checked(buf).map_err(|_| {
        if buf.len() < 40 {
            DropReason::Truncated
        } else {
            DropReason::BadTotalLength
        }
    })?;
    let total = 40 + usize::from(p.payload_len());
    if total > usize::from(u16::MAX) {
        return Err(DropReason::BadTotalLength);
    }
    let Ext6 {
        next,
        off,
        frag_off,
        more_frags,
    } = skip_ext6(&buf[..total]).ok_or(DropReason::TruncatedL4)?;
    let body = &buf[off..total];
    let l4 = if frag_off != 0 { L4::None } else { parse_l4(next, body)? };
    let tos = ((buf[0] & 0x0f) << 4) | (buf[1] >> 4);
    Ok(Headers {
        src: IpAddr::V6(p.src_addr()),
        dst: IpAddr::V6(p.dst_addr()),
        proto: next,
        ttl: p.hop_limit(),
        tos,
        ident: 0,
        df: true,
        total_len: total as u16,
        l4_off: off as u16,
        frag_off,
        more_frags,
        l4,
    })
}

/// Where an IPv6 packet's upper-layer header is: past its extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ext6 {
    /// The upper-layer protocol (the last next-header value).
    pub next: u8,
    /// Its offset.
    pub off: usize,
    /// The fragment header's offset in bytes, and its more-fragments flag.
    pub frag_off: u16,
    pub more_frags: bool,
}

/// Walks the extension headers that precede the transport header (RFC 8200 4.1), as
/// `ipv6_skip_exthdr` does: hop-by-hop, routing, fragment, destination options and AH.
/// `None` when one runs past `pkt` (the packet, or the quote, as far as it goes).
pub(crate) fn skip_ext6(pkt: &[u8]) -> Option<Ext6> {
    let mut e = Ext6 {
        next: *pkt.get(6)?,
        off: 40,
        frag_off: 0,
        more_frags: false,
    };
    loop {
        match e.next {
            0 | 43 | 60 => {
                let h = pkt.get(e.off..e.off + 2)?;
                e.next = h[0];
                e.off += (usize::from(h[1]) + 1) * 8;
            }
            // The authentication header counts its length in 4-byte units, less 2.
            51 => {
                let h = pkt.get(e.off..e.off + 2)?;
                e.next = h[0];
                e.off += (usize::from(h[1]) + 2) * 4;
            }
            44 => {
                let h = pkt.get(e.off..e.off + 8)?;
                e.next = h[0];
                let fo = u16::from_be_bytes([h[2], h[3]]);
                e.frag_off = fo & !7;
                e.more_frags = fo & 1 != 0;
                e.off += 8;
            }
            _ => return Some(e),
        }
        if e.off > pkt.len() {
            return None;
        }
    }
}

/// `ipv6_find_hdr(skb, &off, target, NULL, NULL)`: the offset of the first extension header
/// of type `target` (or of the upper-layer header, when `target` is its protocol), with the
/// offset of the next-header byte that names it. `None` when there is none before the
/// upper-layer header, when it lies behind a fragment that is not the first, or when a header
/// runs past `pkt`.
pub(crate) fn find_ext6(pkt: &[u8], target: u8) -> Option<(usize, usize)> {
    let mut next = *pkt.get(6)?;
    let mut next_at = 6;
    let mut at = 40usize;
    loop {
        let found = next == target;
        if !matches!(next, 0 | 43 | 44 | 51 | 60) {
            return found.then_some((at, next_at));
        }
        let h = pkt.get(at..at + 2)?;
        let len = match next {
            44 => {
                let fo = pkt.get(at + 2..at + 4)?;
                if u16::from_be_bytes([fo[0], fo[1]]) & !7 != 0 && !found {
                    return None;
                }
                8
            }
            51 => (usize::from(h[1]) + 2) * 4,
            _ => (usize::from(h[1]) + 1) * 8,
        };
        if found {
            return Some((at, next_at));
        }
        next_at = at;
        next = h[0];
        at += len;
        if at > pkt.len() {
            return None;
        }
    }
}

fn parse_l4(proto: u8, body: &[u8]) -> Result<L4, DropReason> {
    Ok(match proto {
        proto::TCP => {
            let t = TcpPacket::new_checked(body).map_err(|_| DropReason::TruncatedL4)?;
            L4::Tcp(Tcp {
                sport: t.src_port(),
                dport: t.dst_port(),
                seq: t.seq_number().0 as u32,
                ack: t.ack_number().0 as u32,
                flags: body[13],
                window: t.window_len(),
                hdr_len: t.header_len(),
            })
        }
        proto::UDP => {
            // Only the 8-byte header must be here: in a first fragment the length field covers
            // the whole datagram, beyond this packet.
            if body.len() < 8 {
                return Err(DropReason::TruncatedL4);
            }
            let u = UdpPacket::new_unchecked(body);
            L4::Udp {
                sport: u.src_port(),
                dport: u.dst_port(),
            }
        }
        proto::SCTP => {
            let h = body.get(..12).ok_or(DropReason::TruncatedL4)?;
            L4::Sctp {
                sport: u16::from_be_bytes([h[0], h[1]]),
                dport: u16::from_be_bytes([h[2], h[3]]),
            }
        }
        proto::ICMP | proto::ICMPV6 => {
            let i = Icmpv4Packet::new_checked(body).map_err(|_| DropReason::TruncatedL4)?;
            let _ = i.msg_type();
            L4::Icmp(Icmp {
                typ: body[0],
                code: body[1],
                ident: u16::from_be_bytes([body[4], body[5]]),
                seq: u16::from_be_bytes([body[6], body[7]]),
            })
        }
        _ => L4::None,
    })
}

/// Offset of the transport checksum field from the transport header, for the protocols whose
/// checksum covers a pseudo-header.
fn l4_csum_field(proto: u8) -> Option<usize> {
    match proto {
        proto::TCP => Some(16),
        proto::UDP => Some(6),
        proto::ICMPV6 => Some(2),
        _ => None,
    }
}

/// Rewrites the IPv4 source (`src == true`) or destination address, fixing the IP header
/// checksum and the TCP/UDP pseudo-header checksum incrementally.
pub fn set_addr_v4(buf: &mut [u8], h: &mut Headers, src: bool, new: Ipv4Addr) {
    let at = if src { 12 } else { 16 };
    let old: [u8; 4] = buf[at..at + 4].try_into().expect("4 bytes");
    let new_b = new.octets();
    if old == new_b {
        return;
    }
    buf[at..at + 4].copy_from_slice(&new_b);
    checksum::update(&mut buf[10..12], &old, &new_b);
    if h.frag_off == 0 {
        fix_l4_csum(buf, h, &old, &new_b);
    }
    if src {
        h.src = IpAddr::V4(new);
    } else {
        h.dst = IpAddr::V4(new);
    }
}

/// Rewrites the IPv6 source (`src == true`) or destination address, fixing the TCP, UDP or
/// ICMPv6 checksum incrementally (their pseudo-header holds the addresses; IPv6 itself has no
/// header checksum).
pub fn set_addr_v6(buf: &mut [u8], h: &mut Headers, src: bool, new: Ipv6Addr) {
    let at = if src { 8 } else { 24 };
    let old: [u8; 16] = buf[at..at + 16].try_into().expect("16 bytes");
    let new_b = new.octets();
    if old == new_b {
        return;
    }
    buf[at..at + 16].copy_from_slice(&new_b);
    if h.frag_off == 0 {
        fix_l4_csum(buf, h, &old, &new_b);
    }
    if src {
        h.src = IpAddr::V6(new);
    } else {
        h.dst = IpAddr::V6(new);
    }
}

/// Rewrites the source or destination address of either family (an address of the other
/// family than the packet's is ignored).
pub fn set_addr(buf: &mut [u8], h: &mut Headers, src: bool, new: IpAddr) {
    match (new, h.is_v4()) {
        (IpAddr::V4(a), true) => set_addr_v4(buf, h, src, a),
        (IpAddr::V6(a), false) => set_addr_v6(buf, h, src, a),
        _ => {}
    }
}

fn fix_l4_csum(buf: &mut [u8], h: &Headers, old: &[u8], new: &[u8]) {
    let Some(field) = l4_csum_field(h.proto) else { return };
    let at = usize::from(h.l4_off) + field;
    let Some(f) = buf.get_mut(at..at + 2) else { return };
    if h.proto == proto::UDP {
        checksum::update_udp(f, old, new);
    } else {
        checksum::update(f, old, new);
    }
}

/// Rewrites the source or destination port of TCP/UDP/SCTP, fixing the checksum: TCP and UDP
/// incrementally, SCTP's CRC32c in full (a CRC has no incremental update of this kind).
pub fn set_port(buf: &mut [u8], h: &mut Headers, src: bool, new: u16) {
    let at = usize::from(h.l4_off) + if src { 0 } else { 2 };
    let old: [u8; 2] = buf[at..at + 2].try_into().expect("2 bytes");
    let new_b = new.to_be_bytes();
    buf[at..at + 2].copy_from_slice(&new_b);
    if h.proto == proto::SCTP {
        fill_sctp_crc(buf, h);
    } else {
        fix_l4_csum(buf, h, &old, &new_b);
    }
    match &mut h.l4 {
        L4::Tcp(t) if src => t.sport = new,
        L4::Tcp(t) => t.dport = new,
        L4::Udp { sport, .. } | L4::Sctp { sport, .. } if src => *sport = new,
        L4::Udp { dport, .. } | L4::Sctp { dport, .. } => *dport = new,
        _ => {}
    }
}

/// Rewrites the ICMP echo identifier (the "port" of ICMP for NAT), fixing the ICMP checksum.
pub fn set_icmp_ident(buf: &mut [u8], h: &mut Headers, new: u16) {
    let at = usize::from(h.l4_off) + 4;
    let old: [u8; 2] = buf[at..at + 2].try_into().expect("2 bytes");
    let new_b = new.to_be_bytes();
    buf[at..at + 2].copy_from_slice(&new_b);
    let c = usize::from(h.l4_off) + 2;
    checksum::update(&mut buf[c..c + 2], &old, &new_b);
    if let L4::Icmp(i) = &mut h.l4 {
        i.ident = new;
    }
}

/// Sets the IPv4 TTL or IPv6 hop limit, fixing the IPv4 header checksum.
pub fn set_ttl(buf: &mut [u8], h: &mut Headers, ttl: u8) {
    if h.is_v4() {
        let old = [buf[8], buf[9]];
        buf[8] = ttl;
        let new = [buf[8], buf[9]];
        checksum::update(&mut buf[10..12], &old, &new);
    } else {
        buf[7] = ttl;
    }
    h.ttl = ttl;
}

/// Sets the TCP flags byte, with the TCP checksum updated (a first fragment only).
pub fn set_tcp_flags(buf: &mut [u8], h: &mut Headers, flags: u8) {
    let L4::Tcp(mut t) = h.l4 else { return };
    if h.frag_off != 0 {
        return;
    }
    let at = usize::from(h.l4_off) + 12;
    if buf.len() < usize::from(h.l4_off) + 18 {
        return;
    }
    let old = [buf[at], buf[at + 1]];
    buf[at + 1] = flags;
    let new = [buf[at], buf[at + 1]];
    let sum = usize::from(h.l4_off) + 16;
    checksum::update(&mut buf[sum..sum + 2], &old, &new);
    t.flags = flags;
    h.l4 = L4::Tcp(t);
}

/// Sets the IPv4 TOS byte (DSCP and ECN), with the header checksum updated, or IPv6's
/// traffic class.
pub fn set_tos(buf: &mut [u8], h: &mut Headers, tos: u8) {
    if h.is_v4() && buf.len() >= 12 {
        let old = [buf[0], buf[1]];
        buf[1] = tos;
        let new = [buf[0], buf[1]];
        checksum::update(&mut buf[10..12], &old, &new);
        h.tos = tos;
    } else if !h.is_v4() && buf.len() >= 2 {
        // IPv6's traffic class straddles the first two bytes; no header checksum.
        buf[0] = (buf[0] & 0xf0) | (tos >> 4);
        buf[1] = (buf[1] & 0x0f) | (tos << 4);
        h.tos = tos;
    }
}

/// Recomputes the transport checksum in full (`CHECKSUM --checksum-fill`).
pub fn fill_l4_checksum(buf: &mut [u8], h: &Headers) {
    if h.frag_off != 0 || h.more_frags {
        return;
    }
    let start = usize::from(h.l4_off);
    let end = usize::from(h.total_len);
    let field = match h.proto {
        proto::TCP => 16,
        proto::UDP => 6,
        proto::ICMP | proto::ICMPV6 => 2,
        proto::SCTP => return fill_sctp_crc(buf, h),
        _ => return,
    };
    if end < start + field + 2 {
        return;
    }
    buf[start + field..start + field + 2].copy_from_slice(&[0, 0]);
    let mut s = checksum::sum(&buf[start..end]);
    if h.proto != proto::ICMP {
        let len = (end - start) as u32;
        let ph = match (h.src, h.dst) {
            (IpAddr::V4(a), IpAddr::V4(b)) => checksum::pseudo_header(&a.octets(), &b.octets(), h.proto, len),
            (IpAddr::V6(a), IpAddr::V6(b)) => checksum::pseudo_header(&a.octets(), &b.octets(), h.proto, len),
            _ => return,
        };
        s += ph;
    }
    let mut c = checksum::finish(s);
    if h.proto == proto::UDP && c == 0 {
        c = 0xffff;
    }
    buf[start + field..start + field + 2].copy_from_slice(&c.to_be_bytes());
}

/// Whether the transport checksum of an unfragmented TCP, UDP or ICMP packet is right (what
/// conntrack verifies with `nf_conntrack_checksum=1`). Fragments, other protocols and UDP
/// without a checksum pass. Allocates nothing.
pub fn l4_checksum_valid(buf: &[u8], h: &Headers) -> bool {
    if h.is_fragment() {
        return true;
    }
    let (start, end) = (usize::from(h.l4_off), usize::from(h.total_len));
    let Some(seg) = buf.get(start..end) else { return false };
    let field = match h.proto {
        proto::TCP => 16,
        proto::UDP => 6,
        proto::ICMP | proto::ICMPV6 => 2,
        _ => return true,
    };
    if seg.len() < field + 2 {
        return false;
    }
    if h.proto == proto::UDP && seg[field..field + 2] == [0, 0] {
        return true;
    }
    let mut s = checksum::sum(seg);
    if h.proto != proto::ICMP {
        let len = seg.len() as u32;
        s += match (h.src, h.dst) {
            (IpAddr::V4(a), IpAddr::V4(b)) => checksum::pseudo_header(&a.octets(), &b.octets(), h.proto, len),
            (IpAddr::V6(a), IpAddr::V6(b)) => checksum::pseudo_header(&a.octets(), &b.octets(), h.proto, len),
            _ => return false,
        };
    }
    checksum::finish(s) == 0
}

/// SCTP's CRC32c (RFC 9260 appendix A) over the whole SCTP packet.
fn fill_sctp_crc(buf: &mut [u8], h: &Headers) {
    let start = usize::from(h.l4_off);
    let end = usize::from(h.total_len);
    if end < start + 12 {
        return;
    }
    buf[start + 8..start + 12].copy_from_slice(&[0; 4]);
    let mut crc: u32 = !0;
    for &b in &buf[start..end] {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    buf[start + 8..start + 12].copy_from_slice(&(!crc).to_le_bytes());
}

/// What the options of an arriving IPv4 packet ask of the router, as `ip_options_compile`
/// reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ipv4Options {
    /// A loose or strict source route (LSRR, SSRR).
    pub source_route: bool,
}

/// Checks the options of the IPv4 packet `buf` (header length `hl`) as `ip_options_compile`
/// does for a received packet: an option other than EOL and NOP needs a length of at least 2
/// within the header; source routes at least 3 with a pointer of at least 4, and only one of
/// them; record route at most once, length 3 or more, pointer 4 or more and, while it has room,
/// room for an address at the pointer; timestamp at most once, length 4 or more, pointer 5 or
/// more, room for what its flag records, and an overflow count below 15 when full; router
/// alert length 4 or more. `Err(offset)`: the byte (from the start of the IP header) that an
/// ICMP parameter problem points at.
pub fn ipv4_options(buf: &[u8], hl: usize) -> Result<Ipv4Options, u8> {
    let mut o = Ipv4Options::default();
    let (mut rr, mut ts) = (false, false);
    let mut i = 20;
    let end = hl.min(buf.len());
    while i < end {
        let l = end - i;
        let at = |k: usize| (i + k) as u8;
        match buf[i] {
            0 => break,
            1 => {
                i += 1;
                continue;
            }
            _ => {}
        }
        if l < 2 {
            return Err(at(0));
        }
        let optlen = usize::from(buf[i + 1]);
        if optlen < 2 || optlen > l {
            return Err(at(0));
        }
        let opt = &buf[i..i + optlen];
        match opt[0] {
            // SSRR, LSRR.
            137 | 131 => {
                if optlen < 3 {
                    return Err(at(1));
                }
                if opt[2] < 4 {
                    return Err(at(2));
                }
                if o.source_route {
                    return Err(at(0));
                }
                o.source_route = true;
            }
            // Record route.
            7 => {
                if rr {
                    return Err(at(0));
                }
                if optlen < 3 {
                    return Err(at(1));
                }
                if opt[2] < 4 {
                    return Err(at(2));
                }
                if usize::from(opt[2]) <= optlen && usize::from(opt[2]) + 3 > optlen {
                    return Err(at(2));
                }
                rr = true;
            }
            // Timestamp.
            68 => {
                if ts {
                    return Err(at(0));
                }
                if optlen < 4 {
                    return Err(at(1));
                }
                let ptr = usize::from(opt[2]);
                if ptr < 5 {
                    return Err(at(2));
                }
                if ptr <= optlen {
                    if ptr + 3 > optlen {
                        return Err(at(2));
                    }
                    // With addresses (1) or prespecified (3): eight bytes per entry.
                    if matches!(opt[3] & 0xf, 1 | 3) && ptr + 7 > optlen {
                        return Err(at(2));
                    }
                } else if opt[3] & 0xf != 3 && opt[3] >> 4 == 15 {
                    return Err(at(3));
                }
                ts = true;
            }
            // Router alert.
            148 if optlen < 4 => return Err(at(1)),
            _ => {}
        }
        i += optlen;
    }
    Ok(o)
}

/// Verifies every checksum a packet carries (IPv4 header and TCP/UDP/ICMP), for tests and
/// replay checks. `None` when the packet cannot be parsed.
pub fn checksums_ok(buf: &[u8]) -> Option<bool> {
    let h = parse(buf).ok()?;
    if h.is_fragment() {
        return Some(true);
    }
    let mut copy = buf[..usize::from(h.total_len)].to_vec();
    let start = usize::from(h.l4_off);
    let field = match h.proto {
        proto::TCP => 16,
        proto::UDP => 6,
        proto::ICMP | proto::ICMPV6 => 2,
        _ => return Some(true),
    };
    let orig = [copy[start + field], copy[start + field + 1]];
    if h.proto == proto::UDP && orig == [0, 0] {
        return Some(true);
    }
    fill_l4_checksum(&mut copy, &h);
    Some(copy[start + field..start + field + 2] == orig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reasons_are_all_listed_once_in_order() {
        let mut names = std::collections::HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
            assert!(names.insert(r.name()), "{} twice", r.name());
        }
        // The router sizes its counters by ALL: the last reason must fit.
        let stats = crate::router::Stats::default();
        assert_eq!(stats.drops.len(), DropReason::ALL.len());
        assert_eq!(stats.drop_count(DropReason::NatNoAddress), 0);
    }

    /// 10.0.0.1:1234 -> 10.0.0.2:80, TCP SYN seq 100 (checksums computed independently).
    pub(crate) const SYN: [u8; 40] = [
        0x45, 0x00, 0x00, 0x28, 0x00, 0x01, 0x40, 0x00, 0x40, 0x06, 0x26, 0xcd, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00,
        0x00, 0x02, 0x04, 0xd2, 0x00, 0x50, 0x00, 0x00, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xff, 0xff,
        0x96, 0x5a, 0x00, 0x00,
    ];

    #[test]
    fn parses_a_syn() {
        let h = parse(&SYN).unwrap();
        assert_eq!(h.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(h.ports(), Some((1234, 80)));
        assert!(matches!(h.l4, L4::Tcp(t) if t.flags == tcp_flags::SYN && t.seq == 100));
        assert_eq!(checksums_ok(&SYN), Some(true));
    }

    #[test]
    fn malformed_packets_are_reasons_not_panics() {
        assert_eq!(parse(&[]), Err(DropReason::Truncated));
        assert_eq!(parse(&SYN[..19]), Err(DropReason::Truncated));
        let mut bad = SYN;
        bad[0] = 0x75;
        assert_eq!(parse(&bad), Err(DropReason::BadVersion));
        let mut bad = SYN;
        bad[0] = 0x44;
        assert_eq!(parse(&bad), Err(DropReason::BadHeaderLength));
        let mut bad = SYN;
        bad[3] = 0x40;
        assert_eq!(parse(&bad), Err(DropReason::BadTotalLength));
        let mut bad = SYN;
        bad[11] ^= 1;
        assert_eq!(parse(&bad), Err(DropReason::BadChecksum));
        // A first fragment cut inside the TCP header.
        let mut short = SYN[..30].to_vec();
        short[3] = 30;
        let c = checksum::finish(checksum::sum(&{
            let mut h = short[..20].to_vec();
            h[10] = 0;
            h[11] = 0;
            h
        }));
        short[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse(&short), Err(DropReason::TruncatedL4));
    }

    #[test]
    fn rewrites_keep_checksums_valid() {
        let mut p = SYN;
        let mut h = parse(&p).unwrap();
        set_addr_v4(&mut p, &mut h, false, Ipv4Addr::new(192, 168, 1, 9));
        set_port(&mut p, &mut h, false, 8080);
        set_ttl(&mut p, &mut h, 63);
        assert_eq!(checksums_ok(&p), Some(true));
        assert_eq!(parse(&p).unwrap(), h);
    }
}
