//! Any bytes as what a TUN device with offloads hands over: a virtio-net header and a packet.
//! Completing the checksum, cutting the super-packet and making a checksum partial again must
//! never panic; the segments carry the headers and at most `gso_size` bytes after them, their
//! payloads put together are the super-packet's, and every segment that parses has correct
//! checksums; a checksum made partial and completed again is correct.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtrouter::packet::checksums_ok;
use rtrouter::packet::gso::{self, VnetHdr, HDR_LEN};

fuzz_target!(|data: &[u8]| {
    if data.len() < HDR_LEN {
        return;
    }
    let (h, pkt) = data.split_at(HDR_LEN);
    let hdr = VnetHdr::parse(h.try_into().expect("10 bytes"));
    let mut pkt = pkt.to_vec();
    if hdr.flags & gso::F_NEEDS_CSUM != 0 {
        let _ = gso::complete_checksum(&mut pkt, hdr.csum_start, hdr.csum_offset);
    }
    if let Some(g) = hdr.gso() {
        let hdrs = gso::headers_len(&pkt, g);
        let mut scratch = Vec::new();
        let mut payload = Vec::new();
        let mut count = 0;
        let r = gso::segment(&pkt, g, &mut scratch, &mut |s| {
            let hl = hdrs.expect("a packet that segments has headers");
            assert!(s.len() >= hl && s.len() - hl <= usize::from(g.size), "segment size");
            payload.extend_from_slice(&s[hl..]);
            count += 1;
            if let Some(ok) = checksums_ok(s) {
                assert!(ok, "a segment's checksums are complete and right");
            }
        });
        if let Ok(n) = r {
            assert_eq!(n, count);
            let hl = hdrs.expect("headers");
            let total = if pkt[0] >> 4 == 4 {
                usize::from(u16::from_be_bytes([pkt[2], pkt[3]]))
            } else {
                40 + usize::from(u16::from_be_bytes([pkt[4], pkt[5]]))
            };
            assert_eq!(payload, pkt[hl..total], "the segments carry the payload in order");
        }
    }
    let mut p = pkt.clone();
    if let Some((start, off)) = gso::make_partial(&mut p) {
        gso::complete_checksum(&mut p, start, off).expect("offsets inside the packet");
        let total = if p[0] >> 4 == 4 {
            usize::from(u16::from_be_bytes([p[2], p[3]]))
        } else {
            40 + usize::from(u16::from_be_bytes([p[4], p[5]]))
        };
        if total == p.len() {
            if let Some(ok) = checksums_ok(&p) {
                assert!(ok, "partial, then completed, is right");
            }
        }
    }
});
