//! IPv4 fragmentation on the way out, as Linux's `ip_do_fragment` (slow path) does it: every
//! fragment but the last carries a multiple of 8 data bytes and MF; each repeats the header,
//! with the options that are not to be copied (RFC 791: the copy bit clear) overwritten by
//! NOPs in all but the first fragment, so every header has the same length; offsets and MF
//! continue those of a packet that was a fragment already; each header gets its own length
//! and checksum, the rest (identification, TTL, addresses) is shared.

use super::checksum;

/// Why a packet cannot be fragmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragError {
    /// Not an IPv4 packet with a whole header.
    NotIpv4,
    /// Don't Fragment is set: the router answers with ICMP fragmentation needed instead.
    DontFragment,
    /// The MTU leaves no room for 8 data bytes after the header.
    MtuTooSmall,
}

/// Splits the IPv4 packet `pkt` into fragments of at most `mtu` bytes, building each in
/// `scratch` and handing it to `out`; the number of fragments. A packet that fits is handed
/// over whole.
pub fn fragment(pkt: &[u8], mtu: usize, scratch: &mut Vec<u8>, out: &mut dyn FnMut(&[u8])) -> Result<usize, FragError> {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 {
        return Err(FragError::NotIpv4);
    }
    let hlen = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]])).min(pkt.len());
    if hlen < 20 || total < hlen {
        return Err(FragError::NotIpv4);
    }
    if total <= mtu {
        out(&pkt[..total]);
        return Ok(1);
    }
    let flags_off = u16::from_be_bytes([pkt[6], pkt[7]]);
    if flags_off & 0x4000 != 0 {
        return Err(FragError::DontFragment);
    }
    let room = mtu.saturating_sub(hlen) & !7;
    if room < 8 {
        return Err(FragError::MtuTooSmall);
    }
    let base = usize::from(flags_off & 0x1fff) * 8;
    let more_after = flags_off & 0x2000 != 0;
    let data = &pkt[hlen..total];
    let mut header = pkt[..hlen].to_vec();
    let mut at = 0;
    let mut n = 0;
    while at < data.len() {
        let len = room.min(data.len() - at);
        let last = at + len == data.len();
        scratch.clear();
        scratch.extend_from_slice(&header);
        scratch.extend_from_slice(&data[at..at + len]);
        let off = ((base + at) / 8) as u16;
        let mf = if !last || more_after { 0x2000 } else { 0 };
        // The reserved bit stays as it came.
        let field = (flags_off & 0x8000) | mf | off;
        scratch[6..8].copy_from_slice(&field.to_be_bytes());
        scratch[2..4].copy_from_slice(&((hlen + len) as u16).to_be_bytes());
        scratch[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::finish(checksum::sum(&scratch[..hlen]));
        scratch[10..12].copy_from_slice(&c.to_be_bytes());
        out(scratch);
        n += 1;
        if n == 1 {
            options_for_later_fragments(&mut header[20..]);
        }
        at += len;
    }
    Ok(n)
}

/// `ip_options_fragment`: options without the copy bit become NOPs after the first fragment.
fn options_for_later_fragments(opts: &mut [u8]) {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return,
            1 => i += 1,
            kind => {
                let Some(&len) = opts.get(i + 1) else { return };
                let len = usize::from(len);
                if len < 2 || i + len > opts.len() {
                    return;
                }
                if kind & 0x80 == 0 {
                    opts[i..i + len].fill(1);
                }
                i += len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::build::{self, Ip4};

    fn frags(pkt: &[u8], mtu: usize) -> Result<Vec<Vec<u8>>, FragError> {
        let mut v = Vec::new();
        let mut scratch = Vec::new();
        fragment(pkt, mtu, &mut scratch, &mut |f| v.push(f.to_vec()))?;
        Ok(v)
    }

    fn udp(len: usize) -> Vec<u8> {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut b = Vec::new();
        build::raw(
            &mut b,
            Ip4::new([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 17),
            &payload,
        );
        b
    }

    #[test]
    fn fragments_carry_multiples_of_8_and_reassemble_to_the_original() {
        let p = udp(3000);
        let fs = frags(&p, 1500).unwrap();
        assert_eq!(fs.len(), 3);
        let mut data = Vec::new();
        for (k, f) in fs.iter().enumerate() {
            assert!(f.len() <= 1500);
            assert_eq!(checksum::finish(checksum::sum(&f[..20])), 0, "header checksum");
            let field = u16::from_be_bytes([f[6], f[7]]);
            assert_eq!(usize::from(field & 0x1fff) * 8, data.len(), "offset of fragment {k}");
            assert_eq!(field & 0x2000 != 0, k < 2, "MF on all but the last");
            assert_eq!(usize::from(u16::from_be_bytes([f[2], f[3]])), f.len());
            assert_eq!(&f[4..6], &p[4..6], "same identification");
            if k < 2 {
                assert_eq!((f.len() - 20) % 8, 0);
            }
            data.extend_from_slice(&f[20..]);
        }
        assert_eq!(data, p[20..]);
        // 1480 data bytes in the first two, as Linux sends them.
        assert_eq!(fs[0].len(), 1500);
    }

    #[test]
    fn a_fragment_is_split_further_keeping_its_offset_and_mf() {
        let mut p = udp(2000);
        // As if it were the middle fragment at offset 800 of a larger datagram.
        p[6..8].copy_from_slice(&(0x2000u16 | 100).to_be_bytes());
        let fs = frags(&p, 1000).unwrap();
        assert_eq!(fs.len(), 3);
        for f in &fs {
            let field = u16::from_be_bytes([f[6], f[7]]);
            assert!(field & 0x2000 != 0, "MF stays: more of the datagram follows");
            assert!(usize::from(field & 0x1fff) * 8 >= 800);
        }
    }

    #[test]
    fn refusals_and_packets_that_fit() {
        let p = udp(100);
        assert_eq!(frags(&p, 1500).unwrap(), vec![p.clone()]);
        let mut df = udp(3000);
        df[6] |= 0x40;
        assert_eq!(frags(&df, 1500), Err(FragError::DontFragment));
        assert_eq!(frags(&udp(3000), 27), Err(FragError::MtuTooSmall));
        assert_eq!(frags(&[0x60; 40], 1500), Err(FragError::NotIpv4));
    }

    #[test]
    fn later_fragments_keep_only_copied_options() {
        // Header with options: record route (7, not copied) and a copied option 0x94 (router
        // alert), padded to 12 bytes.
        let mut p = udp(64);
        let opts = [7u8, 7, 4, 0, 0, 0, 0, 0x94, 4, 0, 0, 0];
        let mut q = p[..20].to_vec();
        q.extend_from_slice(&opts);
        q.extend_from_slice(&p[20..]);
        q[0] = 0x40 | 8;
        let total = q.len() as u16;
        q[2..4].copy_from_slice(&total.to_be_bytes());
        p = q;
        let fs = frags(&p, 32 + 24).unwrap();
        assert!(fs.len() >= 3);
        assert_eq!(&fs[0][20..32], &opts, "the first fragment keeps every option");
        assert_eq!(
            &fs[1][20..32],
            &[1, 1, 1, 1, 1, 1, 1, 0x94, 4, 0, 0, 0],
            "later ones the copied"
        );
        assert!(fs.iter().all(|f| checksum::finish(checksum::sum(&f[..32])) == 0));
    }
}

/// `ip6_find_1stfragopt`: where the fragmentable part of an IPv6 packet starts (after the
/// hop-by-hop and routing headers, and destination options before a routing header), and
/// the offset of the next-header byte that names it.
fn first_fragmentable(pkt: &[u8]) -> Option<(usize, usize)> {
    let mut next_at = 6;
    let mut at = 40;
    let mut routing = false;
    while at <= pkt.len() {
        match pkt[next_at] {
            0 => {}
            43 => routing = true,
            60 if routing => return Some((at, next_at)),
            60 => {}
            _ => return Some((at, next_at)),
        }
        let h = pkt.get(at..at + 2)?;
        next_at = at;
        at += (usize::from(h[1]) + 1) * 8;
    }
    None
}

/// Splits the IPv6 packet `pkt` (not a fragment itself) into fragments of at most `mtu`
/// bytes with fragment headers of identification `id`, as `ip6_fragment` does for a
/// datagram conntrack reassembled: the unfragmentable part repeated, every fragment but the
/// last carrying a multiple of 8 data bytes. A packet that fits is handed over whole.
pub fn fragment6(
    pkt: &[u8],
    mtu: usize,
    id: u32,
    scratch: &mut Vec<u8>,
    out: &mut dyn FnMut(&[u8]),
) -> Result<usize, FragError> {
    if pkt.len() < 40 || pkt[0] >> 4 != 6 {
        return Err(FragError::NotIpv4);
    }
    let total = (40 + usize::from(u16::from_be_bytes([pkt[4], pkt[5]]))).min(pkt.len());
    if total <= mtu {
        out(&pkt[..total]);
        return Ok(1);
    }
    let (hlen, next_at) = first_fragmentable(&pkt[..total]).ok_or(FragError::NotIpv4)?;
    if hlen > total {
        return Err(FragError::NotIpv4);
    }
    let room = mtu.saturating_sub(hlen + 8) & !7;
    if room < 8 {
        return Err(FragError::MtuTooSmall);
    }
    let next = pkt[next_at];
    let data = &pkt[hlen..total];
    let mut at = 0;
    let mut n = 0;
    while at < data.len() {
        let len = room.min(data.len() - at);
        let more = at + len < data.len();
        scratch.clear();
        scratch.extend_from_slice(&pkt[..hlen]);
        scratch[next_at] = 44;
        let field = (at as u16) | u16::from(more);
        scratch.extend_from_slice(&[next, 0]);
        scratch.extend_from_slice(&field.to_be_bytes());
        scratch.extend_from_slice(&id.to_be_bytes());
        scratch.extend_from_slice(&data[at..at + len]);
        let payload = (scratch.len() - 40) as u16;
        scratch[4..6].copy_from_slice(&payload.to_be_bytes());
        out(scratch);
        n += 1;
        at += len;
    }
    Ok(n)
}

#[cfg(test)]
mod tests6 {
    use super::*;
    use crate::defrag::{Defrag, Offer};
    use crate::packet::build::{self, Ip6};

    /// A UDP datagram split by fragment6 comes back whole through the reassembly, in any
    /// order; every fragment fits the MTU and all but the last carry multiples of 8.
    #[test]
    fn fragment6_and_reassembly_round_trip() {
        let mut p = Vec::new();
        let body: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        build::udp(
            &mut p,
            Ip6::new("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap()),
            1,
            2,
            &body,
        );
        // A hop-by-hop header first: it stays in every fragment.
        let mut with_hbh = p[..40].to_vec();
        with_hbh[6] = 0;
        with_hbh.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        with_hbh.extend_from_slice(&p[40..]);
        let plen = (with_hbh.len() - 40) as u16;
        with_hbh[4..6].copy_from_slice(&plen.to_be_bytes());
        let mut frags = Vec::new();
        let mut scratch = Vec::new();
        let n = fragment6(&with_hbh, 1280, 77, &mut scratch, &mut |f| frags.push(f.to_vec())).unwrap();
        assert_eq!(n, 3);
        for (i, f) in frags.iter().enumerate() {
            assert!(f.len() <= 1280);
            assert_eq!(f[6], 0, "the hop-by-hop header still comes first");
            assert_eq!(f[48], 17, "the fragment header names UDP");
            let h = crate::packet::parse(f).unwrap();
            assert_eq!(h.more_frags, i + 1 < n);
            if h.more_frags {
                assert_eq!((f.len() - 56) % 8, 0);
            }
        }
        let d = Defrag::default();
        let mut last = None;
        for f in [&frags[2], &frags[0], &frags[1]] {
            let mut b = f.clone();
            let h = crate::packet::parse(&b).unwrap();
            last = Some(d.offer(0, &mut b, &h));
            if let Some(Offer::Whole { frag_max }) = last {
                assert_eq!(frag_max, 1280);
                assert_eq!(b, with_hbh, "the datagram as it was");
            }
        }
        assert!(matches!(last, Some(Offer::Whole { .. })));
        assert!(d.is_empty());
    }

    #[test]
    fn ipv6_reassembly_refuses_what_conntrack_refuses() {
        let frag = |off: u16, more: bool, id: u32, data: &[u8]| {
            let mut b = Vec::new();
            let ip = Ip6::new("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
            let mut body = vec![17u8, 0];
            body.extend_from_slice(&(off | u16::from(more)).to_be_bytes());
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(data);
            build::raw_of(&mut b, ip, 44, &body);
            b
        };
        let d = Defrag::default();
        let offer = |b: &[u8]| {
            let mut b = b.to_vec();
            let h = crate::packet::parse(&b).unwrap();
            d.offer(0, &mut b, &h)
        };
        // A non-final fragment whose length is not a multiple of 8: dropped with its queue.
        assert_eq!(
            offer(&frag(0, true, 1, &[0; 12])),
            Offer::Dropped(crate::packet::DropReason::FragInvalid)
        );
        // Overlaps kill the datagram (RFC 5722); an exact duplicate goes alone.
        assert_eq!(offer(&frag(0, true, 2, &[0; 16])), Offer::Held);
        assert_eq!(
            offer(&frag(0, true, 2, &[0; 16])),
            Offer::Dropped(crate::packet::DropReason::FragInvalid)
        );
        assert_eq!(
            offer(&frag(8, false, 2, &[0; 16])),
            Offer::Dropped(crate::packet::DropReason::FragOverlap)
        );
        assert!(d.is_empty());
    }
}
