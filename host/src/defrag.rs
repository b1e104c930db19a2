//! Reassembly before the rules, as `nf_defrag_ipv4` (`net/ipv4/ip_fragment.c`) and
//! `nf_defrag_ipv6` (`nf_conntrack_reasm.c`) do for connection tracking: the rules and
//! conntrack see whole datagrams, and the datagram leaves in fragments again, no larger than
//! the largest one that arrived (`IPCB(skb)->frag_max_size`, `IP6CB(skb)->frag_max_size`).
//! An IPv6 datagram is the unfragmentable part of its first fragment (the headers before the
//! fragment header) followed by the data; the fragment header goes.
//!
//! A queue per (source, destination, protocol, identification). As `ip_frag_queue`: a
//! fragment past the end a final fragment fixed, or a final fragment that disagrees with
//! the end seen so far, or an empty one, kills its queue; data of a non-final fragment is
//! trimmed to a multiple of 8; an exact duplicate is dropped alone, while any other overlap
//! kills the queue (Linux's answer to FragmentSmack). Bounded as `ipfrag_high_thresh` and
//! `ipfrag_time` bound it: a fragment that would take the held bytes over the limit is
//! dropped with its queue (a new datagram is not started then), and a queue still
//! incomplete after its timeout is dropped (without an ICMP error: conntrack's reassembly
//! sends none).

use crate::packet::{checksum, DropReason, Headers};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// `ipfrag_high_thresh`'s default: 4 MiB of fragments held.
pub const DEFAULT_LIMIT_BYTES: usize = 4 << 20;
/// `ipfrag_time`'s default: 30 s.
pub const DEFAULT_TIMEOUT_NS: u64 = 30_000_000_000;

/// A datagram: IPv4's (source, destination, protocol, identification), or IPv6's (source,
/// destination, identification; protocol 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    id: u32,
}

#[derive(Debug, Default)]
struct Queue {
    created: u64,
    /// The first fragment's header, once it arrived.
    header: Option<Vec<u8>>,
    /// Data by offset, non-overlapping.
    pieces: BTreeMap<usize, Vec<u8>>,
    /// The end of the data as far as known.
    len: usize,
    /// The final fragment (MF clear) arrived: `len` is the datagram's.
    last_in: bool,
    /// Bytes of data held.
    meat: usize,
    /// The largest fragment that arrived, header included.
    max_size: usize,
    /// IPv6: where the first fragment's header named the fragment header, and what the
    /// fragment header named.
    next: (usize, u8),
}

/// What happened to a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Kept until the rest of its datagram arrives.
    Held,
    /// It completed its datagram: the buffer now holds the whole datagram; it leaves in
    /// fragments of at most `frag_max` bytes.
    Whole { frag_max: u16 },
    /// Dropped, and why.
    Dropped(DropReason),
}

/// Counters, as the kernel's `ReasmReqds`, `ReasmOKs`, `ReasmFails`, `ReasmTimeout`,
/// `ReasmOverlaps`.
#[derive(Debug, Default)]
pub struct Stats {
    pub fragments: AtomicU64,
    pub reassembled: AtomicU64,
    pub failed: AtomicU64,
    pub timeouts: AtomicU64,
    pub overlaps: AtomicU64,
}

#[derive(Debug)]
struct Table {
    queues: HashMap<Key, Queue>,
    /// Data bytes held over every queue.
    mem: usize,
}

/// The reassembly table.
#[derive(Debug)]
pub struct Defrag {
    table: Mutex<Table>,
    limit_bytes: usize,
    timeout_ns: u64,
    pub stats: Stats,
}

impl Default for Defrag {
    fn default() -> Self {
        Defrag::new(DEFAULT_LIMIT_BYTES, DEFAULT_TIMEOUT_NS)
    }
}

impl Defrag {
    pub fn new(limit_bytes: usize, timeout_ns: u64) -> Defrag {
        Defrag {
            table: Mutex::new(Table {
                queues: HashMap::new(),
                mem: 0,
            }),
            limit_bytes,
            timeout_ns,
            stats: Stats::default(),
        }
    }

    /// Datagrams being reassembled.
    pub fn len(&self) -> usize {
        crate::eval::state::lock(&self.table).queues.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of fragment data held.
    pub fn held_bytes(&self) -> usize {
        crate::eval::state::lock(&self.table).mem
    }

    /// Drops the queues whose time is up.
    pub fn gc(&self, now: u64) {
        let mut t = crate::eval::state::lock(&self.table);
        let before = t.queues.len();
        let timeout = self.timeout_ns;
        let mut freed = 0;
        t.queues.retain(|_, q| {
            let keep = now.saturating_sub(q.created) < timeout;
            if !keep {
                freed += q.meat;
            }
            keep
        });
        t.mem -= freed;
        let gone = before - t.queues.len();
        self.stats.timeouts.fetch_add(gone as u64, Ordering::Relaxed);
        self.stats.failed.fetch_add(gone as u64, Ordering::Relaxed);
    }

    /// Takes the fragment in `buf` (parsed as `h`), of either family.
    pub fn offer(&self, now: u64, buf: &mut Vec<u8>, h: &Headers) -> Offer {
        self.stats.fragments.fetch_add(1, Ordering::Relaxed);
        let total = usize::from(h.total_len).min(buf.len());
        let piece = match (h.src, h.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => {
                let hlen = usize::from(buf[0] & 0x0f) * 4;
                Piece {
                    key: Key {
                        src: h.src,
                        dst: h.dst,
                        proto: h.proto,
                        id: u32::from(h.ident),
                    },
                    unfrag: hlen,
                    data_at: hlen,
                    next_at: 0,
                    next: 0,
                }
            }
            _ => match find_fhdr(&buf[..total]) {
                Some((fhoff, next_at)) => Piece {
                    key: Key {
                        src: h.src,
                        dst: h.dst,
                        proto: 0,
                        id: u32::from_be_bytes([buf[fhoff + 4], buf[fhoff + 5], buf[fhoff + 6], buf[fhoff + 7]]),
                    },
                    unfrag: fhoff,
                    data_at: fhoff + 8,
                    next_at,
                    next: buf[fhoff],
                },
                None => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    return Offer::Dropped(DropReason::FragInvalid);
                }
            },
        };
        let v6 = piece.key.src.is_ipv6();
        let key = piece.key;
        let offset = usize::from(h.frag_off);
        let data_len = total - piece.data_at;
        let mut end = offset + data_len;
        let mut t = crate::eval::state::lock(&self.table);
        let fail = |t: &mut Table, stats: &Stats, reason: DropReason| {
            if let Some(q) = t.queues.remove(&key) {
                t.mem -= q.meat;
            }
            stats.failed.fetch_add(1, Ordering::Relaxed);
            Offer::Dropped(reason)
        };
        // IPv6's datagrams are at most 65535 bytes after the fixed header (`IPV6_MAXPLEN`).
        if v6 && end > usize::from(u16::MAX) {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            return Offer::Dropped(DropReason::FragInvalid);
        }
        // A queue whose time is up is gone, as the kernel's timer would have removed it.
        if t.queues
            .get(&key)
            .is_some_and(|q| now.saturating_sub(q.created) >= self.timeout_ns)
        {
            let q = t.queues.remove(&key).expect("present");
            t.mem -= q.meat;
            self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        if !t.queues.contains_key(&key) && t.mem + data_len > self.limit_bytes {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            return Offer::Dropped(DropReason::FragLimit);
        }
        let limit = self.limit_bytes;
        let mem = t.mem;
        let q = t.queues.entry(key).or_insert_with(|| Queue {
            created: now,
            ..Queue::default()
        });
        // `ip_frag_queue`'s (`nf_ct_frag6_queue`'s) checks, deciding what becomes of the
        // fragment and its queue.
        let step = (|| {
            if !h.more_frags {
                // The final fragment: the end must agree with everything seen.
                if end < q.len || (q.last_in && end != q.len) {
                    return Err(DropReason::FragInvalid);
                }
                q.last_in = true;
                q.len = end;
            } else {
                if end & 7 != 0 {
                    // IPv6 demands non-final fragments in multiples of 8 bytes (RFC 8200
                    // 4.5): conntrack's reassembly kills the queue; IPv4's trims.
                    if v6 {
                        return Err(DropReason::FragInvalid);
                    }
                    end &= !7;
                }
                if end > q.len {
                    if q.last_in {
                        return Err(DropReason::FragInvalid);
                    }
                    q.len = end;
                }
            }
            if end <= offset {
                return Err(DropReason::FragInvalid);
            }
            // Overlaps: an exact duplicate goes alone; anything else kills the queue (RFC
            // 5722 for IPv6).
            let before = q.pieces.range(..=offset).next_back().map(|(&o, d)| (o, o + d.len()));
            let after = q.pieces.range(offset + 1..).next().map(|(&o, d)| (o, o + d.len()));
            if before == Some((offset, end)) {
                return Ok(false);
            }
            if before.is_some_and(|(_, e)| e > offset) || after.is_some_and(|(o, _)| o < end) {
                return Err(DropReason::FragOverlap);
            }
            if mem + (end - offset) > limit {
                return Err(DropReason::FragLimit);
            }
            Ok(true)
        })();
        match step {
            Ok(true) => {}
            Ok(false) => return Offer::Dropped(DropReason::FragInvalid),
            Err(reason) => {
                if reason == DropReason::FragOverlap {
                    self.stats.overlaps.fetch_add(1, Ordering::Relaxed);
                }
                return fail(&mut t, &self.stats, reason);
            }
        }
        let len = end - offset;
        t.mem += len;
        let q = t.queues.get_mut(&key).expect("just inserted");
        q.pieces
            .insert(offset, buf[piece.data_at..piece.data_at + len].to_vec());
        q.meat += len;
        q.max_size = q.max_size.max(total);
        if offset == 0 {
            q.header = Some(buf[..piece.unfrag].to_vec());
            q.next = (piece.next_at, piece.next);
        }
        if !(q.last_in && q.header.is_some() && q.meat == q.len) {
            return Offer::Held;
        }
        // Complete: the first fragment's header, then the data in order.
        let q = t.queues.remove(&key).expect("present");
        t.mem -= q.meat;
        drop(t);
        let header = q.header.expect("checked");
        let hl = header.len();
        let too_long = if v6 {
            hl - 40 + q.len > usize::from(u16::MAX)
        } else {
            hl + q.len > usize::from(u16::MAX)
        };
        if too_long {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            return Offer::Dropped(DropReason::FragInvalid);
        }
        buf.clear();
        buf.extend_from_slice(&header);
        for d in q.pieces.values() {
            buf.extend_from_slice(d);
        }
        if v6 {
            // `nf_ct_frag6_reasm`: the fragment header goes; the header before it names what
            // it named; the payload length covers the whole datagram.
            let (next_at, next) = q.next;
            buf[next_at] = next;
            let payload = (hl - 40 + q.len) as u16;
            buf[4..6].copy_from_slice(&payload.to_be_bytes());
        } else {
            let total = (hl + q.len) as u16;
            buf[2..4].copy_from_slice(&total.to_be_bytes());
            // Offset 0, MF clear; DF and the reserved bit as the first fragment had them.
            let flags = u16::from_be_bytes([buf[6], buf[7]]) & 0xc000;
            buf[6..8].copy_from_slice(&flags.to_be_bytes());
            buf[10..12].copy_from_slice(&[0, 0]);
            let c = checksum::finish(checksum::sum(&buf[..hl]));
            buf[10..12].copy_from_slice(&c.to_be_bytes());
        }
        self.stats.reassembled.fetch_add(1, Ordering::Relaxed);
        Offer::Whole {
            frag_max: q.max_size as u16,
        }
    }
}

/// Where a fragment's parts lie.
struct Piece {
    key: Key,
    /// Bytes kept from the first fragment: IPv4's header, or IPv6's up to the fragment header.
    unfrag: usize,
    /// Where the fragment's data starts.
    data_at: usize,
    /// IPv6: the byte naming the fragment header (to name what it named) and that value.
    next_at: usize,
    next: u8,
}

/// `find_prev_fhdr`: the IPv6 fragment header's offset and that of the next-header byte that
/// points at it.
fn find_fhdr(buf: &[u8]) -> Option<(usize, usize)> {
    crate::packet::find_ext6(buf, 44).filter(|&(at, _)| buf.len() >= at + 8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::build::{self, Ip4};
    use crate::packet::frag::fragment;
    use crate::packet::parse;

    fn datagram(len: usize, id: u16) -> Vec<u8> {
        let payload: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
        let mut b = Vec::new();
        build::udp(
            &mut b,
            Ip4::new([10, 0, 1, 2].into(), [192, 0, 2, 9].into(), 17),
            5000,
            53,
            &payload,
        );
        b[4..6].copy_from_slice(&id.to_be_bytes());
        let c = {
            b[10..12].copy_from_slice(&[0, 0]);
            checksum::finish(checksum::sum(&b[..20]))
        };
        b[10..12].copy_from_slice(&c.to_be_bytes());
        b
    }

    fn pieces(p: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        fragment(p, mtu, &mut Vec::new(), &mut |f| v.push(f.to_vec())).unwrap();
        v
    }

    fn offer(d: &Defrag, now: u64, f: &[u8]) -> (Offer, Vec<u8>) {
        let mut buf = f.to_vec();
        let h = parse(&buf).unwrap();
        let o = d.offer(now, &mut buf, &h);
        (o, buf)
    }

    #[test]
    fn fragments_in_any_order_give_back_the_datagram() {
        let p = datagram(3000, 7);
        let mut fs = pieces(&p, 1000);
        fs.reverse();
        let d = Defrag::default();
        let n = fs.len();
        for (k, f) in fs.iter().enumerate() {
            let (o, buf) = offer(&d, 0, f);
            if k + 1 < n {
                assert_eq!(o, Offer::Held);
            } else {
                assert_eq!(o, Offer::Whole { frag_max: 996 });
                assert_eq!(buf, p, "the datagram as it was sent");
            }
        }
        assert!(d.is_empty());
        assert_eq!(d.held_bytes(), 0);
    }

    #[test]
    fn duplicates_overlaps_and_bad_ends() {
        let p = datagram(3000, 8);
        let fs = pieces(&p, 1000);
        let d = Defrag::default();
        assert_eq!(offer(&d, 0, &fs[0]).0, Offer::Held);
        // An exact duplicate is dropped alone.
        assert_eq!(offer(&d, 0, &fs[0]).0, Offer::Dropped(DropReason::FragInvalid));
        assert_eq!(d.len(), 1);
        // A fragment overlapping the first kills the queue.
        let mut overlap = fs[1].clone();
        let field = u16::from_be_bytes([overlap[6], overlap[7]]) - 1;
        overlap[6..8].copy_from_slice(&field.to_be_bytes());
        overlap[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::finish(checksum::sum(&overlap[..20]));
        overlap[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(offer(&d, 0, &overlap).0, Offer::Dropped(DropReason::FragOverlap));
        assert!(d.is_empty());
        assert_eq!(d.stats.overlaps.load(Ordering::Relaxed), 1);
        // A final fragment that ends before data already seen kills it too.
        let last = fs.last().unwrap();
        assert_eq!(offer(&d, 0, &fs[2]).0, Offer::Held);
        let mut short = last.clone();
        short[6..8].copy_from_slice(&[0, 1]);
        short[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::finish(checksum::sum(&short[..20]));
        short[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(offer(&d, 0, &short).0, Offer::Dropped(DropReason::FragInvalid));
        assert!(d.is_empty());
    }

    #[test]
    fn held_bytes_and_time_are_bounded() {
        let d = Defrag::new(2500, 1_000);
        let a = pieces(&datagram(3000, 1), 1000);
        let b = pieces(&datagram(3000, 2), 1000);
        assert_eq!(offer(&d, 0, &a[0]).0, Offer::Held);
        assert_eq!(offer(&d, 0, &b[0]).0, Offer::Held);
        // 2 × 976 held: a third fragment would pass 2500 bytes.
        assert_eq!(offer(&d, 0, &a[1]).0, Offer::Dropped(DropReason::FragLimit));
        assert_eq!(d.len(), 1, "the queue it belonged to is gone");
        // Time passes: the other queue expires.
        d.gc(5_000);
        assert!(d.is_empty());
        assert_eq!(d.held_bytes(), 0);
        assert_eq!(d.stats.timeouts.load(Ordering::Relaxed), 1);
    }
}
