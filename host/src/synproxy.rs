//! SYNPROXY's packet arithmetic (`nf_synproxy_core.c`, `syncookies.c`, `nf_conntrack_seqadj.c`):
//! the TCP options it reads and writes, the SYN cookies that stand for a client's SYN until
//! its ACK proves the address, the timestamp cookie that carries the client's window scale,
//! SACK and ECN, and the sequence-number and timestamp shifts that splice the client's
//! handshake (with the router) onto the server's (with the router, on the client's behalf).
//!
//! The router drives it (`router/synproxy.rs`); nothing here touches a connection table.

use crate::packet::{self, Headers, L4};
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// `NF_SYNPROXY_OPT_*`: which options a SYNPROXY rule offers, or a segment carries.
pub mod opt {
    pub const MSS: u8 = 0x01;
    pub const WSCALE: u8 = 0x02;
    pub const SACK_PERM: u8 = 0x04;
    pub const TIMESTAMP: u8 = 0x08;
    pub const ECN: u8 = 0x10;
}

/// A SYNPROXY rule's parameters (`struct nf_synproxy_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Info {
    /// `opt::*` bits given on the command line.
    pub options: u8,
    pub wscale: u8,
    pub mss: u16,
}

/// The options of one segment as SYNPROXY reads and writes them (`struct synproxy_options`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Options {
    pub options: u8,
    pub wscale: u8,
    /// The MSS the segment advertises (or the one to advertise).
    pub mss_option: u16,
    /// The client's MSS, which the cookie encodes.
    pub mss_encode: u16,
    pub tsval: u32,
    pub tsecr: u32,
}

/// `TCP_MAX_WSCALE`.
const MAX_WSCALE: u8 = 14;

/// Reads the options SYNPROXY cares about from a TCP header's option bytes
/// (`synproxy_parse_options`): a malformed tail ends the walk, keeping what came before.
pub(crate) fn parse_options(opts: &[u8]) -> Options {
    let mut o = Options::default();
    walk(opts, |_, kind, v| match (kind, v.len()) {
        (2, 2) => {
            o.mss_option = u16::from_be_bytes([v[0], v[1]]);
            o.options |= opt::MSS;
        }
        (3, 1) => {
            o.wscale = v[0].min(MAX_WSCALE);
            o.options |= opt::WSCALE;
        }
        (8, 8) => {
            o.tsval = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
            o.tsecr = u32::from_be_bytes([v[4], v[5], v[6], v[7]]);
            o.options |= opt::TIMESTAMP;
        }
        (4, 0) => o.options |= opt::SACK_PERM,
        _ => {}
    });
    o
}

/// Walks TCP option bytes: `f(offset of the option, kind, its value bytes)` for each whole
/// option, up to the end or an end-of-list. False when an option is cut short (the kernel's
/// "no partial options").
fn walk(opts: &[u8], mut f: impl FnMut(usize, u8, &[u8])) -> bool {
    let mut i = 0;
    while let Some(&kind) = opts.get(i) {
        match kind {
            0 => return true,
            1 => i += 1,
            kind => {
                let Some(&len) = opts.get(i + 1) else { return false };
                let len = usize::from(len);
                let Some(v) = opts.get(i + 2..i + len).filter(|_| len >= 2) else {
                    return false;
                };
                f(i, kind, v);
                i += len;
            }
        }
    }
    true
}

/// The option bytes of a segment SYNPROXY sends (`synproxy_build_options`): MSS, then SACK
/// permitted folded into the timestamp's padding (or alone behind two NOPs), then the window
/// scale behind a NOP. Returns the buffer and how many of its bytes are used.
pub(crate) fn build_options(o: &Options) -> ([u8; 20], usize) {
    let mut b = [0u8; 20];
    let mut n = 0;
    let mut put = |w: [u8; 4]| {
        b[n..n + 4].copy_from_slice(&w);
        n += 4;
    };
    if o.options & opt::MSS != 0 {
        let [hi, lo] = o.mss_option.to_be_bytes();
        put([2, 4, hi, lo]);
    }
    if o.options & opt::TIMESTAMP != 0 {
        if o.options & opt::SACK_PERM != 0 {
            put([4, 2, 8, 10]);
        } else {
            put([1, 1, 8, 10]);
        }
        put(o.tsval.to_be_bytes());
        put(o.tsecr.to_be_bytes());
    } else if o.options & opt::SACK_PERM != 0 {
        put([1, 1, 4, 2]);
    }
    if o.options & opt::WSCALE != 0 {
        put([1, 3, 3, o.wscale]);
    }
    (b, n)
}

/// The timestamp SYNPROXY answers a SYN with (`synproxy_init_timestamp_cookie`): the clock in
/// milliseconds with its low 6 bits carrying the client's window scale (15: none), SACK
/// permitted and ECN, which the client's ACK echoes back.
pub(crate) fn init_timestamp_cookie(info: &Info, o: &mut Options, now_ms: u32) {
    o.tsecr = o.tsval;
    o.tsval = now_ms & !0x3f;
    if o.options & opt::WSCALE != 0 {
        o.tsval |= u32::from(o.wscale);
        o.wscale = info.wscale;
    } else {
        o.tsval |= 0xf;
    }
    if o.options & opt::SACK_PERM != 0 {
        o.tsval |= 1 << 4;
    }
    if o.options & opt::ECN != 0 {
        o.tsval |= 1 << 5;
    }
}

/// Reads the client's options back from the timestamp its ACK echoes
/// (`synproxy_check_timestamp_cookie`).
pub(crate) fn check_timestamp_cookie(o: &mut Options) {
    o.wscale = (o.tsecr & 0xf) as u8;
    if o.wscale != 0xf {
        o.options |= opt::WSCALE;
    }
    if o.tsecr & (1 << 4) != 0 {
        o.options |= opt::SACK_PERM;
    }
    if o.tsecr & (1 << 5) != 0 {
        o.options |= opt::ECN;
    }
}

/// `COOKIEBITS`: the low bits of a cookie carry the MSS index, the high 8 the minute.
const COOKIEBITS: u32 = 24;
const COOKIEMASK: u32 = (1 << COOKIEBITS) - 1;
/// `MAX_SYNCOOKIE_AGE`: a cookie is good in the minute it was made and the next.
const MAX_AGE: u32 = 2;
/// The MSS values a cookie can stand for (`msstab` of `syncookies.c`, and IPv6's of
/// `syncookies.c` in `net/ipv6`).
const MSS_V4: [u16; 4] = [536, 1300, 1440, 1460];
const MSS_V6: [u16; 4] = [1280 - 60, 1480 - 60, 1500 - 60, 9000 - 60];

/// SYNPROXY's record of a connection it opened (`struct nf_conn_synproxy`, with the reply
/// direction's `nf_ct_seqadj`, the only one SYNPROXY shifts). Packed to 18 bytes so that a
/// connection keeps its size.
#[repr(C, packed(2))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record {
    /// The sequence number the client was given (the cookie).
    pub isn: u32,
    /// The timestamp the client was given.
    pub its: u32,
    /// The server's clock less the client's view of it.
    pub tsoff: u32,
    /// The reply direction's sequence shift (`offset_before` = `offset_after`).
    pub seq_off: u32,
    /// The window of the SYN sent to the server: the original direction's `td_maxwin`
    /// while the handshake is under way.
    pub win: u16,
}

/// The connection a cookie is made for: addresses and ports of the client's SYN.
#[derive(Debug, Clone, Copy, Hash)]
pub(crate) struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

/// What `/proc/net/stat/synproxy` counts.
#[derive(Debug, Default)]
pub struct Stats {
    pub syn_received: AtomicU64,
    pub cookie_invalid: AtomicU64,
    pub cookie_valid: AtomicU64,
    pub cookie_retrans: AtomicU64,
    pub conn_reopened: AtomicU64,
}

impl Stats {
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as the kernel's file names them, for `stats`.
    pub fn line(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "synproxy: syn_received {} cookie_invalid {} cookie_valid {} cookie_retrans {} conn_reopened {}",
            g(&self.syn_received),
            g(&self.cookie_invalid),
            g(&self.cookie_valid),
            g(&self.cookie_retrans),
            g(&self.conn_reopened)
        )
    }

    /// Whether anything was counted (an ACK with a bad cookie counts without a SYN before it).
    pub fn any(&self) -> bool {
        [
            &self.syn_received,
            &self.cookie_invalid,
            &self.cookie_valid,
            &self.cookie_retrans,
            &self.conn_reopened,
        ]
        .iter()
        .any(|c| c.load(Ordering::Relaxed) != 0)
    }
}

/// SYN cookies (`secure_tcp_syn_cookie`, `check_tcp_syn_cookie`) with two secret keys drawn
/// when the router starts, as the kernel draws `syncookie_secret` once.
#[derive(Debug, Default)]
pub struct Cookies {
    keys: [std::collections::hash_map::RandomState; 2],
    pub stats: Stats,
}

impl Cookies {
    /// Takes `other`'s secrets, so that both answer a SYN with the same cookie (the
    /// differential test runs two routers side by side).
    pub(crate) fn share_keys(&mut self, other: &Cookies) {
        self.keys = other.keys.clone();
    }

    fn hash(&self, f: &Flow, count: u32, c: usize) -> u32 {
        self.keys[c].hash_one((f, count)) as u32
    }

    /// The initial sequence number that stands for the SYN `f` with sequence `seq` and MSS
    /// `mss` in minute `minute` (`__cookie_v4_init_sequence`): the largest table MSS not above
    /// the client's is encoded.
    pub(crate) fn make(&self, f: &Flow, seq: u32, mss: u16, minute: u32) -> u32 {
        let tab = if f.src.is_ipv4() { &MSS_V4 } else { &MSS_V6 };
        let index = (1..tab.len()).rev().find(|&i| mss >= tab[i]).unwrap_or(0) as u32;
        self.hash(f, 0, 0)
            .wrapping_add(seq)
            .wrapping_add(minute << COOKIEBITS)
            .wrapping_add(self.hash(f, minute, 1).wrapping_add(index) & COOKIEMASK)
    }

    /// The MSS a client's ACK proves (`__cookie_v4_check`): its acknowledgment less one must
    /// be a cookie made for this flow and its sequence less one, in this minute or the last;
    /// `None` otherwise.
    pub(crate) fn check(&self, f: &Flow, seq: u32, ack: u32, minute: u32) -> Option<u16> {
        let (seq, cookie) = (seq.wrapping_sub(1), ack.wrapping_sub(1));
        let c = cookie.wrapping_sub(self.hash(f, 0, 0).wrapping_add(seq));
        let diff = minute.wrapping_sub(c >> COOKIEBITS) & (u32::MAX >> COOKIEBITS);
        if diff >= MAX_AGE {
            return None;
        }
        let index = c.wrapping_sub(self.hash(f, minute.wrapping_sub(diff), 1)) & COOKIEMASK;
        let tab = if f.src.is_ipv4() { &MSS_V4 } else { &MSS_V6 };
        tab.get(index as usize).copied()
    }
}

/// The option bytes of a TCP segment: after the fixed header, within the header length.
pub(crate) fn tcp_options<'a>(buf: &'a [u8], h: &Headers) -> &'a [u8] {
    let L4::Tcp(t) = h.l4 else { return &[] };
    let start = usize::from(h.l4_off) + 20;
    let end = usize::from(h.l4_off) + usize::from(t.hdr_len);
    buf.get(start..end).unwrap_or(&[])
}

/// Replaces the big-endian word at `at` (an offset into `buf`) and keeps the TCP checksum
/// right: incrementally where the word is 16-bit aligned within the segment.
fn put_u32(buf: &mut [u8], h: &Headers, at: usize, v: u32) {
    let l4 = usize::from(h.l4_off);
    let mut old = [0u8; 4];
    old.copy_from_slice(&buf[at..at + 4]);
    let new = v.to_be_bytes();
    if old == new {
        return;
    }
    buf[at..at + 4].copy_from_slice(&new);
    if (at - l4).is_multiple_of(2) {
        packet::checksum::update(&mut buf[l4 + 16..l4 + 18], &old, &new);
    } else {
        packet::fill_l4_checksum(buf, h);
    }
}

fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// Walks the segment's options as [`walk`] does, with offsets into the packet.
fn walk_options(buf: &[u8], h: &Headers, mut f: impl FnMut(usize, u8, usize)) -> bool {
    let base = usize::from(h.l4_off) + 20;
    walk(tcp_options(buf, h), |i, kind, v| f(base + i, kind, v.len() + 2))
}

/// Moves the timestamp option between the server's clock and the one the client was shown
/// (`synproxy_tstamp_adjust`): a reply's TSval loses `tsoff`, an original packet's TSecr
/// gains it.
pub(crate) fn tstamp_adjust(buf: &mut [u8], h: &Headers, reply: bool, tsoff: u32) {
    if tsoff == 0 {
        return;
    }
    let mut at = None;
    walk_options(buf, h, |i, kind, len| {
        if kind == 8 && len == 10 && at.is_none() {
            at = Some(i);
        }
    });
    let Some(i) = at else { return };
    if reply {
        let v = get_u32(buf, i + 2).wrapping_sub(tsoff);
        put_u32(buf, h, i + 2, v);
    } else {
        let v = get_u32(buf, i + 6).wrapping_add(tsoff);
        put_u32(buf, h, i + 6, v);
    }
}

/// Shifts sequence numbers (`nf_ct_seq_adjust` with `nf_ct_sack_adjust`): SYNPROXY moves only
/// the reply direction's sequence space, by `off`, so a reply's sequence number gains it and
/// an original packet's acknowledgment and SACK blocks lose it. False when the segment's
/// options are cut short: the kernel drops such a packet.
pub(crate) fn seq_adjust(buf: &mut [u8], h: &Headers, reply: bool, off: u32) -> bool {
    let L4::Tcp(t) = h.l4 else { return true };
    let l4 = usize::from(h.l4_off);
    if reply {
        put_u32(buf, h, l4 + 4, t.seq.wrapping_add(off));
        // The other way's shift is zero: the acknowledgment and SACK blocks stay, but the
        // options are still walked for them.
        return t.flags & packet::tcp_flags::ACK == 0 || walk_options(buf, h, |_, _, _| {});
    }
    if t.flags & packet::tcp_flags::ACK == 0 {
        return true;
    }
    put_u32(buf, h, l4 + 8, t.ack.wrapping_sub(off));
    // The SACK blocks' edges: at most 8 words fit in 40 bytes of options (no allocation on
    // the packet path).
    let mut edges = [0usize; 8];
    let mut n = 0;
    let whole = walk_options(buf, h, |i, kind, len| {
        if kind == 5 && len >= 10 && (len - 2).is_multiple_of(8) {
            for at in (i + 2..i + len).step_by(4) {
                if n < edges.len() {
                    edges[n] = at;
                    n += 1;
                }
            }
        }
    });
    for &at in &edges[..n] {
        let v = get_u32(buf, at).wrapping_sub(off);
        put_u32(buf, h, at, v);
    }
    whole
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn stats_show_once_any_counter_counted() {
        for i in 0..5 {
            let s = Stats::default();
            assert!(!s.any());
            let c = [
                &s.syn_received,
                &s.cookie_invalid,
                &s.cookie_valid,
                &s.cookie_retrans,
                &s.conn_reopened,
            ];
            Stats::bump(c[i]);
            assert!(s.any(), "counter {i}");
        }
    }

    fn flow() -> Flow {
        Flow {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)),
            sport: 40000,
            dport: 80,
        }
    }

    #[test]
    fn a_cookie_proves_its_flow_and_mss_for_two_minutes() {
        let c = Cookies::default();
        let f = flow();
        let isn = 0xfffff000;
        for (mss, want) in [
            (0, 536),
            (536, 536),
            (1400, 1300),
            (1460, 1460),
            (9000, 1460),
            (1439, 1300),
        ] {
            let cookie = c.make(&f, isn, mss, 7);
            // The client's ACK: sequence ISN+1, acknowledgment cookie+1.
            let (seq, ack) = (isn.wrapping_add(1), cookie.wrapping_add(1));
            assert_eq!(c.check(&f, seq, ack, 7), Some(want), "mss {mss}");
            assert_eq!(c.check(&f, seq, ack, 8), Some(want), "the next minute");
            assert_eq!(c.check(&f, seq, ack, 9), None, "two minutes on");
            assert_eq!(c.check(&f, seq, ack.wrapping_add(0x1000), 7), None, "another cookie");
            assert_eq!(c.check(&f, seq.wrapping_add(0x1000), ack, 7), None, "another sequence");
            let other = Flow { sport: 40001, ..f };
            assert_eq!(c.check(&other, seq, ack, 7), None, "another flow");
        }
        // Minutes wrap in the cookie's 8 bits.
        let cookie = c.make(&f, 1, 1460, 255);
        assert_eq!(c.check(&f, 2, cookie.wrapping_add(1), 256), Some(1460));
        let f6 = Flow {
            src: "2001:db8::2".parse().unwrap(),
            dst: "2001:db8:1::2".parse().unwrap(),
            ..f
        };
        let cookie = c.make(&f6, 5, 1440, 0);
        assert_eq!(c.check(&f6, 6, cookie.wrapping_add(1), 0), Some(1440));
        let cookie = c.make(&f6, 5, 1300, 0);
        assert_eq!(c.check(&f6, 6, cookie.wrapping_add(1), 0), Some(1220), "IPv6's table");
        // Keys are the router's own: another router's cookie does not pass.
        let d = Cookies::default();
        assert_eq!(d.check(&f, 2, c.make(&f, 1, 1460, 0).wrapping_add(1), 0), None);
    }

    #[test]
    fn options_read_and_write_as_the_kernel_lays_them_out() {
        // A Linux SYN: MSS, SACK permitted, timestamp, NOP, window scale.
        let syn = [2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 1, 0, 0, 0, 0, 0, 1, 3, 3, 7];
        let o = parse_options(&syn);
        assert_eq!(o.options, opt::MSS | opt::SACK_PERM | opt::TIMESTAMP | opt::WSCALE);
        assert_eq!((o.mss_option, o.wscale, o.tsval, o.tsecr), (1460, 7, 256, 0));
        // A cut option ends the walk but keeps what came before.
        let cut = [2, 4, 5, 180, 8, 10, 0];
        assert_eq!(parse_options(&cut).options, opt::MSS);
        assert_eq!(parse_options(&[3, 3, 20]).wscale, 14, "clamped to TCP_MAX_WSCALE");
        let (b, n) = build_options(&o);
        assert_eq!(
            &b[..n],
            &[2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 1, 0, 0, 0, 0, 0, 1, 3, 3, 7]
        );
        let sack_only = Options {
            options: opt::SACK_PERM,
            ..Options::default()
        };
        let (b, n) = build_options(&sack_only);
        assert_eq!(&b[..n], &[1, 1, 4, 2]);
        let ts = Options {
            options: opt::TIMESTAMP,
            tsval: 1,
            tsecr: 2,
            ..Options::default()
        };
        let (b, n) = build_options(&ts);
        assert_eq!(&b[..n], &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
    }

    #[test]
    fn the_timestamp_cookie_carries_wscale_sack_and_ecn() {
        let info = Info {
            options: opt::TIMESTAMP | opt::WSCALE,
            wscale: 9,
            mss: 1460,
        };
        let mut o = Options {
            options: opt::TIMESTAMP | opt::WSCALE | opt::SACK_PERM | opt::ECN,
            wscale: 7,
            tsval: 1234,
            ..Options::default()
        };
        init_timestamp_cookie(&info, &mut o, 0x1000_00ff);
        assert_eq!(o.tsecr, 1234, "the client's TSval is echoed");
        assert_eq!(o.tsval, 0x1000_00c0 | 7 | 1 << 4 | 1 << 5);
        assert_eq!(o.wscale, 9, "the SYN-ACK offers the rule's scale");
        // The client echoes it in its ACK.
        let mut back = Options {
            options: opt::TIMESTAMP,
            tsecr: o.tsval,
            ..Options::default()
        };
        check_timestamp_cookie(&mut back);
        assert_eq!(back.options, opt::TIMESTAMP | opt::WSCALE | opt::SACK_PERM | opt::ECN);
        assert_eq!(back.wscale, 7);
        let mut none = Options {
            options: opt::TIMESTAMP,
            ..Options::default()
        };
        init_timestamp_cookie(&info, &mut none, 0);
        assert_eq!(none.tsval & 0x3f, 0xf, "no window scale: 15");
        let mut back = Options {
            options: opt::TIMESTAMP,
            tsecr: none.tsval,
            ..Options::default()
        };
        check_timestamp_cookie(&mut back);
        assert_eq!(back.options, opt::TIMESTAMP);
    }

    /// A TCP segment with `opts` as its options, parsed.
    fn segment(flags: u8, seq: u32, ack: u32, opts: &[u8]) -> (Vec<u8>, Headers) {
        let mut b = Vec::new();
        let ip = crate::packet::build::Ip4::new(Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 1, 0, 2), 6);
        crate::packet::build::tcp_with_options(
            &mut b,
            ip,
            crate::packet::build::TcpSeg {
                sport: 1,
                dport: 2,
                seq,
                ack,
                flags,
                window: 100,
            },
            opts,
        );
        let h = packet::parse(&b).unwrap();
        (b, h)
    }

    #[test]
    fn shifts_move_sequence_numbers_sack_blocks_and_timestamps_with_valid_checksums() {
        use crate::packet::tcp_flags::ACK;
        // An original-direction ACK with a SACK block at an odd offset and a timestamp.
        let opts = [1, 5, 10, 0, 0, 1, 0, 0, 0, 2, 0, 1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 50];
        let mut padded = opts.to_vec();
        padded.resize(24, 0);
        let (mut b, h) = segment(ACK, 10, 1000, &padded);
        assert!(seq_adjust(&mut b, &h, false, 100));
        tstamp_adjust(&mut b, &h, false, 7);
        let h2 = packet::parse(&b).unwrap();
        let L4::Tcp(t) = h2.l4 else { panic!() };
        assert_eq!((t.seq, t.ack), (10, 900));
        let o = tcp_options(&b, &h2);
        assert_eq!(&o[3..11], &[0, 0, 0, 156, 0, 0, 1, 156], "SACK block less the shift");
        assert_eq!(get_u32(o, 19), 57, "TSecr plus the offset");
        assert!(packet::l4_checksum_valid(&b, &h2));
        // A reply: its sequence number gains the shift, its TSval loses the offset.
        let (mut b, h) = segment(ACK, 10, 1000, &[1, 1, 8, 10, 0, 0, 0, 90, 0, 0, 0, 1]);
        assert!(seq_adjust(&mut b, &h, true, 100));
        tstamp_adjust(&mut b, &h, true, 7);
        let h2 = packet::parse(&b).unwrap();
        let L4::Tcp(t) = h2.l4 else { panic!() };
        assert_eq!((t.seq, t.ack), (110, 1000));
        assert_eq!(get_u32(tcp_options(&b, &h2), 4), 83);
        assert!(packet::l4_checksum_valid(&b, &h2));
        // An option cut short: the kernel drops the packet.
        let (mut b, h) = segment(ACK, 10, 1000, &[1, 1, 5, 30]);
        assert!(!seq_adjust(&mut b, &h, false, 100));
        // Any option bytes: the shifts never read or write outside the header, and leave
        // the checksum right.
        let mut rng = crate::eval::SplitMix(3);
        for _ in 0..20_000 {
            let n = (rng.next_u64() % 11) as usize * 4;
            let opts: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8 % 12).collect();
            let (mut b, h) = segment(ACK, 10, 1000, &opts);
            let _ = parse_options(tcp_options(&b, &h));
            let reply = rng.next_u64() & 1 == 0;
            let _ = seq_adjust(&mut b, &h, reply, 77);
            tstamp_adjust(&mut b, &h, reply, 5);
            assert!(packet::l4_checksum_valid(&b, &packet::parse(&b).unwrap()));
        }
    }
}
