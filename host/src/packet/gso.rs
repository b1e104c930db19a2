//! Offloads between the router and a TUN device opened with `IFF_VNET_HDR`: the virtio-net
//! header that precedes each packet (`include/uapi/linux/virtio_net.h`), completing a checksum
//! the kernel left partial, making one partial again on the way out, and segmenting a TCP or UDP
//! super-packet in software (`tcp_gso_segment`, `__udp_gso_segment`) where it cannot leave
//! whole.
//!
//! A super-packet is one IP packet up to 64 KiB whose transport payload the kernel (or the
//! device) cuts into segments of `gso_size` bytes, each with a copy of the headers: TCP
//! segments take consecutive sequence numbers, FIN and PSH stay on the last and CWR on the
//! first; IPv4 segments take consecutive identifications; every segment gets its own lengths and
//! checksums. Checksums the header marks `NEEDS_CSUM` are partial: the transport checksum field
//! holds the pseudo-header's sum (not complemented) and the sum over `csum_start..` completes it.
//! Pure functions over byte slices, like the rest of `packet`.

use super::checksum;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset` is partial.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_UDP_L4` (UDP segmentation offload, both families).
pub const GSO_UDP_L4: u8 = 5;
/// `VIRTIO_NET_HDR_GSO_ECN`: or-ed into a TCP type whose first segment carries CWR.
pub const GSO_ECN: u8 = 0x80;
/// Bytes of `struct virtio_net_hdr` (`TUNSETVNETHDRSZ`'s default).
pub const HDR_LEN: usize = 10;

/// `struct virtio_net_hdr`, little-endian as the kernel reads it on every architecture this
/// runs on (legacy virtio in native order; rtrouter targets little-endian hosts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    /// Bytes of the headers (IP and transport) of each segment.
    pub hdr_len: u16,
    /// Payload bytes per segment (0: not a super-packet).
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub fn parse(b: &[u8; HDR_LEN]) -> VnetHdr {
        let u = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        }
    }

    pub fn write(&self, b: &mut [u8; HDR_LEN]) {
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
    }

    /// The segmentation this header asks for, without the ECN bit; `None` for a plain packet.
    pub fn gso(&self) -> Option<Gso> {
        let kind = match self.gso_type & !GSO_ECN {
            GSO_NONE => return None,
            GSO_TCPV4 | GSO_TCPV6 => GsoKind::Tcp,
            GSO_UDP_L4 => GsoKind::Udp,
            _ => return None,
        };
        (self.gso_size != 0).then_some(Gso {
            kind,
            size: self.gso_size,
        })
    }
}

/// Which transport a super-packet segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoKind {
    Tcp,
    Udp,
}

/// How a super-packet is cut: its transport and the payload bytes per segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gso {
    pub kind: GsoKind,
    pub size: u16,
}

/// Why a packet cannot be handled as the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoError {
    /// The IP or transport header is cut short, or lengths disagree.
    Malformed,
    /// Not TCP or UDP as the segmentation asks, or a fragment.
    WrongTransport,
    /// `csum_start`/`csum_offset` point outside the packet.
    BadChecksumOffset,
}

/// Where the transport header of `pkt` is: (protocol, offset, IP length as its header states).
fn l4_of(pkt: &[u8]) -> Result<(u8, usize, usize), GsoError> {
    match pkt.first().map(|b| b >> 4) {
        Some(4) if pkt.len() >= 20 => {
            let hl = usize::from(pkt[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
            if hl < 20 || total < hl || total > pkt.len() {
                return Err(GsoError::Malformed);
            }
            // A fragment is not a super-packet.
            if u16::from_be_bytes([pkt[6], pkt[7]]) & 0x3fff != 0 {
                return Err(GsoError::WrongTransport);
            }
            Ok((pkt[9], hl, total))
        }
        Some(6) if pkt.len() >= 40 => {
            let total = 40 + usize::from(u16::from_be_bytes([pkt[4], pkt[5]]));
            if total > pkt.len() {
                return Err(GsoError::Malformed);
            }
            let e = super::skip_ext6(&pkt[..total]).ok_or(GsoError::Malformed)?;
            if e.frag_off != 0 || e.more_frags {
                return Err(GsoError::WrongTransport);
            }
            Ok((e.next, e.off, total))
        }
        _ => Err(GsoError::Malformed),
    }
}

/// The sum of `pkt`'s pseudo-header for its transport with `l4_len` bytes.
fn pseudo(pkt: &[u8], proto: u8, l4_len: usize) -> u32 {
    let len = l4_len as u32;
    if pkt[0] >> 4 == 4 {
        checksum::pseudo_header(&pkt[12..16], &pkt[16..20], proto, len)
    } else {
        checksum::pseudo_header(&pkt[8..24], &pkt[24..40], proto, len)
    }
}

/// Completes a partial checksum: sums `pkt[csum_start..]` (the field holding the
/// pseudo-header's sum) and stores the result at `csum_start + csum_offset`, as a device does.
/// A computed 0 stays 0 except in a UDP checksum (the field at offset 6), where 0 means "none"
/// and 0xffff is sent (RFC 768); both spellings of zero verify the same.
pub fn complete_checksum(pkt: &mut [u8], csum_start: u16, csum_offset: u16) -> Result<(), GsoError> {
    let start = usize::from(csum_start);
    let at = start + usize::from(csum_offset);
    if at + 2 > pkt.len() {
        return Err(GsoError::BadChecksumOffset);
    }
    let c = match checksum::finish(checksum::sum(&pkt[start..])) {
        0 if csum_offset == 6 => 0xffff,
        c => c,
    };
    pkt[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Makes the TCP or UDP checksum of `pkt` partial again (the pseudo-header's sum over the whole
/// transport length, as `__tcp_v4_send_check` leaves it for a device); the `csum_start` and
/// `csum_offset` to send with [`F_NEEDS_CSUM`]. `None` for other packets, which keep theirs.
pub fn make_partial(pkt: &mut [u8]) -> Option<(u16, u16)> {
    let (proto, off, total) = l4_of(pkt).ok()?;
    let field = match proto {
        super::proto::TCP if total >= off + 20 => 16,
        super::proto::UDP if total >= off + 8 => 6,
        _ => return None,
    };
    let s = checksum::finish(pseudo(pkt, proto, total - off));
    pkt[off + field..off + field + 2].copy_from_slice(&(!s).to_be_bytes());
    Some((off as u16, field as u16))
}

/// The bytes of each full segment of a super-packet (headers included): what must fit the
/// egress MTU. `None` when the headers are not what `g` says.
pub fn segment_len(pkt: &[u8], g: Gso) -> Option<usize> {
    let hdr = headers_len(pkt, g)?;
    Some(hdr + usize::from(g.size).min(pkt.len().saturating_sub(hdr)))
}

/// The bytes of the IP and transport headers each segment repeats (the header's `hdr_len`).
pub fn headers_len(pkt: &[u8], g: Gso) -> Option<usize> {
    let (proto, off, total) = l4_of(pkt).ok()?;
    Some(off + l4_header_len(pkt, proto, off, total, g.kind).ok()?)
}

fn l4_header_len(pkt: &[u8], proto: u8, off: usize, total: usize, kind: GsoKind) -> Result<usize, GsoError> {
    match (kind, proto) {
        (GsoKind::Tcp, super::proto::TCP) if total >= off + 20 => {
            let thl = usize::from(pkt[off + 12] >> 4) * 4;
            if thl < 20 || off + thl > total {
                return Err(GsoError::Malformed);
            }
            Ok(thl)
        }
        (GsoKind::Udp, super::proto::UDP) if total >= off + 8 => Ok(8),
        (GsoKind::Tcp, super::proto::TCP) | (GsoKind::Udp, super::proto::UDP) => Err(GsoError::Malformed),
        _ => Err(GsoError::WrongTransport),
    }
}

/// Cuts the super-packet `pkt` into segments of `g.size` payload bytes, each built in
/// `scratch` with complete checksums and handed to `out`; the number of segments. The
/// transport checksum of `pkt` is not read (it may be partial or complete).
pub fn segment(pkt: &[u8], g: Gso, scratch: &mut Vec<u8>, out: &mut dyn FnMut(&[u8])) -> Result<usize, GsoError> {
    let (proto, off, total) = l4_of(pkt)?;
    let thl = l4_header_len(pkt, proto, off, total, g.kind)?;
    let hdr = off + thl;
    let size = usize::from(g.size.max(1));
    let payload = &pkt[hdr..total];
    let v4 = pkt[0] >> 4 == 4;
    let id = if v4 { u16::from_be_bytes([pkt[4], pkt[5]]) } else { 0 };
    let seq = u32::from_be_bytes([pkt[off + 4], pkt[off + 5], pkt[off + 6], pkt[off + 7]]);
    let n = payload.len().div_ceil(size).max(1);
    for i in 0..n {
        let chunk = &payload[(i * size).min(payload.len())..((i + 1) * size).min(payload.len())];
        scratch.clear();
        scratch.extend_from_slice(&pkt[..hdr]);
        scratch.extend_from_slice(chunk);
        let len = scratch.len();
        if v4 {
            scratch[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            scratch[4..6].copy_from_slice(&id.wrapping_add(i as u16).to_be_bytes());
            scratch[10..12].copy_from_slice(&[0, 0]);
            let c = checksum::finish(checksum::sum(&scratch[..off]));
            scratch[10..12].copy_from_slice(&c.to_be_bytes());
        } else {
            scratch[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        }
        let l4 = &mut scratch[off..];
        let field = match g.kind {
            GsoKind::Tcp => {
                let s = seq.wrapping_add((i * size) as u32);
                l4[4..8].copy_from_slice(&s.to_be_bytes());
                // tcp_gso_segment: CWR on the first segment only, FIN and PSH on the last.
                if i != 0 {
                    l4[13] &= !super::tcp_flags::CWR;
                }
                if i + 1 != n {
                    l4[13] &= !(super::tcp_flags::FIN | super::tcp_flags::PSH);
                }
                16
            }
            GsoKind::Udp => {
                l4[4..6].copy_from_slice(&((len - off) as u16).to_be_bytes());
                6
            }
        };
        l4[field..field + 2].copy_from_slice(&[0, 0]);
        let s = pseudo(scratch, proto, len - off);
        let c = match checksum::finish(s + checksum::sum(&scratch[off..])) {
            0 if g.kind == GsoKind::Udp => 0xffff,
            c => c,
        };
        scratch[off + field..off + field + 2].copy_from_slice(&c.to_be_bytes());
        out(scratch);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::build;

    fn valid(seg: &[u8]) -> crate::packet::Headers {
        let h = crate::packet::parse(seg).expect("segment parses");
        let (proto, off, total) = l4_of(seg).unwrap();
        assert_eq!(total, seg.len());
        // The transport checksum, pseudo-header included, sums to 0xffff.
        assert_eq!(
            checksum::finish(pseudo(seg, proto, total - off) + checksum::sum(&seg[off..])),
            0,
            "transport checksum of a segment"
        );
        h
    }

    fn tcp_super(v6: bool, payload: usize, flags: u8) -> Vec<u8> {
        let data: Vec<u8> = (0..payload).map(|i| (i * 7 + 3) as u8).collect();
        let seg = build::TcpSeg {
            sport: 40000,
            dport: 80,
            seq: 1000,
            ack: 5000,
            flags,
            window: 512,
        };
        let mut buf = Vec::new();
        if v6 {
            let ip = build::Ip6::new("2001:db8::1".parse().unwrap(), "2001:db8:1::2".parse().unwrap());
            build::tcp(&mut buf, ip, seg, &data);
        } else {
            let mut ip = build::Ip4::new("10.0.0.1".parse().unwrap(), "10.1.0.2".parse().unwrap(), 6);
            ip.ident = 0xfffe;
            ip.df = true;
            build::tcp(&mut buf, ip, seg, &data);
        }
        buf
    }

    fn udp4(payload: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        let ip = build::Ip4::new("10.0.0.1".parse().unwrap(), "10.1.0.2".parse().unwrap(), 17);
        build::udp(&mut buf, ip, 5, 53, payload);
        buf
    }

    #[test]
    fn tcp_segments_are_valid_packets_with_consecutive_sequence_numbers() {
        use crate::packet::tcp_flags::*;
        for v6 in [false, true] {
            let pkt = tcp_super(v6, 5000, ACK | PSH | FIN | CWR);
            let mut scratch = Vec::new();
            let mut segs: Vec<Vec<u8>> = Vec::new();
            let g = Gso {
                kind: GsoKind::Tcp,
                size: 1448,
            };
            let n = segment(&pkt, g, &mut scratch, &mut |s| segs.push(s.to_vec())).unwrap();
            assert_eq!(n, 4);
            assert_eq!(segment_len(&pkt, g), Some(segs[0].len()));
            let mut data = Vec::new();
            for (i, s) in segs.iter().enumerate() {
                let h = valid(s);
                let crate::packet::L4::Tcp(t) = h.l4 else { panic!("tcp") };
                assert_eq!(t.seq, 1000 + (i as u32) * 1448);
                assert_eq!(t.flags & CWR != 0, i == 0, "CWR on the first only");
                assert_eq!(t.flags & (FIN | PSH) != 0, i == 3, "FIN, PSH on the last only");
                assert_eq!(t.flags & ACK, ACK);
                if !v6 {
                    assert_eq!(h.ident, u16::from_be_bytes([pkt[4], pkt[5]]).wrapping_add(i as u16));
                }
                data.extend_from_slice(&s[usize::from(h.l4_off) + 20..]);
            }
            assert_eq!(data, pkt[pkt.len() - 5000..], "payload in order");
            assert_eq!(segs[3].len(), pkt.len() - 3 * 1448);
        }
    }

    #[test]
    fn udp_segments_carry_their_own_lengths() {
        let data = vec![0x5au8; 3000];
        let pkt = udp4(&data);
        let mut scratch = Vec::new();
        let mut lens = Vec::new();
        let g = Gso {
            kind: GsoKind::Udp,
            size: 1400,
        };
        segment(&pkt, g, &mut scratch, &mut |s| {
            valid(s);
            lens.push(u16::from_be_bytes([s[24], s[25]]));
        })
        .unwrap();
        assert_eq!(lens, vec![1408, 1408, 208]);
    }

    #[test]
    fn partial_then_completed_is_the_full_checksum() {
        for v6 in [false, true] {
            let pkt = tcp_super(v6, 777, crate::packet::tcp_flags::ACK);
            let mut p = pkt.clone();
            let (start, off) = make_partial(&mut p).unwrap();
            assert_ne!(p, pkt);
            complete_checksum(&mut p, start, off).unwrap();
            assert_eq!(p, pkt);
        }
        assert_eq!(
            complete_checksum(&mut [0u8; 30], 20, 10),
            Err(GsoError::BadChecksumOffset)
        );
    }

    #[test]
    fn wrong_headers_are_refused_not_cut() {
        let pkt = udp4(&[1; 100]);
        let tcp = Gso {
            kind: GsoKind::Tcp,
            size: 10,
        };
        assert_eq!(
            segment(&pkt, tcp, &mut Vec::new(), &mut |_| {}),
            Err(GsoError::WrongTransport)
        );
        assert_eq!(
            segment(&pkt[..30], tcp, &mut Vec::new(), &mut |_| {}),
            Err(GsoError::Malformed)
        );
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4 | GSO_ECN,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 20,
            csum_offset: 16,
        };
        let mut b = [0u8; HDR_LEN];
        hdr.write(&mut b);
        assert_eq!(VnetHdr::parse(&b), hdr);
        assert_eq!(
            hdr.gso(),
            Some(Gso {
                kind: GsoKind::Tcp,
                size: 1448
            })
        );
    }
}
