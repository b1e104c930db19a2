//! `LOG` and `NFLOG`: the kernel's log line (`nf_log_ipv4.c: dump_ipv4_packet`), written
//! through `tracing` under the target `rtrouter::packet`, at most `rate` lines per second with
//! a burst of the same size (the kernel's printk rate limit plays this role there).

use super::state::Bucket;
use crate::packet::{Headers, L4};
use crate::ruleset::matches::{Limit, LIMIT_SCALE};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub struct PacketLog {
    bucket: Bucket,
    /// Lines suppressed by the rate limit.
    pub suppressed: AtomicU64,
}

impl PacketLog {
    pub fn new(rate_per_sec: u32) -> Self {
        let rate = rate_per_sec.max(1);
        PacketLog {
            bucket: Bucket::new(&Limit {
                avg: (LIMIT_SCALE / rate).max(1),
                burst: rate,
            }),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether a line may be written now; counts the ones that may not.
    pub fn admit(&self, now: u64) -> bool {
        let ok = self.bucket.take(now);
        if !ok {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }
}

/// Which optional parts of the line to include.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogFlags {
    pub tcp_sequence: bool,
    pub tcp_options: bool,
    pub ip_options: bool,
}

/// The log line for a packet, after the prefix: `IN=… OUT=… [MAC= ]SRC=… DST=… LEN=… …`.
pub fn format_line(prefix: &str, in_if: &str, out_if: &str, buf: &[u8], h: &Headers, mark: u32, f: LogFlags) -> String {
    let mut s = String::with_capacity(160);
    let _ = write!(s, "{prefix}IN={in_if} OUT={out_if} ");
    // `dump_ipv4_mac_header`, for packets that came in through a device: a TUN device has no
    // link-layer header (ARPHRD_NONE), so the kernel prints an empty `MAC=`.
    if !in_if.is_empty() {
        s.push_str("MAC= ");
    }
    let _ = write!(s, "SRC={} DST={} LEN={} ", h.src, h.dst, h.total_len);
    if h.is_v4() {
        let _ = write!(
            s,
            "TOS=0x{:02X} PREC=0x{:02X} TTL={} ID={} ",
            h.tos & 0x1e,
            h.tos & 0xe0,
            h.ttl,
            h.ident
        );
        if h.tos & 0x03 == 0x03 {
            s.push_str("CE ");
        }
        if h.df {
            s.push_str("DF ");
        }
        if h.more_frags {
            s.push_str("MF ");
        }
        if h.frag_off != 0 {
            let _ = write!(s, "FRAG:{} ", h.frag_off / 8);
        }
        if f.ip_options && h.l4_off > 20 {
            s.push_str("OPT (");
            for b in buf.get(20..usize::from(h.l4_off)).unwrap_or(&[]) {
                let _ = write!(s, "{b:02X}");
            }
            s.push_str(") ");
        }
    } else {
        let _ = write!(s, "TC={} HOPLIMIT={} ", h.tos, h.ttl);
    }
    match h.l4 {
        L4::Tcp(t) => {
            let _ = write!(s, "PROTO=TCP SPT={} DPT={} ", t.sport, t.dport);
            if f.tcp_sequence {
                let _ = write!(s, "SEQ={} ACK={} ", t.seq, t.ack);
            }
            let res = buf.get(usize::from(h.l4_off) + 12).map_or(0, |b| b & 0x0f);
            let _ = write!(s, "WINDOW={} RES=0x{:02x} ", t.window, res);
            for (bit, name) in [
                (0x80u8, "CWR"),
                (0x40, "ECE"),
                (0x20, "URG"),
                (0x10, "ACK"),
                (0x08, "PSH"),
                (0x04, "RST"),
                (0x02, "SYN"),
                (0x01, "FIN"),
            ] {
                if t.flags & bit != 0 {
                    s.push_str(name);
                    s.push(' ');
                }
            }
            let urgp = buf
                .get(usize::from(h.l4_off) + 18..usize::from(h.l4_off) + 20)
                .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
            let _ = write!(s, "URGP={urgp} ");
            if f.tcp_options && t.hdr_len > 20 {
                s.push_str("OPT (");
                for b in buf
                    .get(usize::from(h.l4_off) + 20..usize::from(h.l4_off) + usize::from(t.hdr_len))
                    .unwrap_or(&[])
                {
                    let _ = write!(s, "{b:02X}");
                }
                s.push_str(") ");
            }
        }
        L4::Udp { sport, dport } => {
            let len = h.total_len.saturating_sub(h.l4_off);
            let _ = write!(s, "PROTO=UDP SPT={sport} DPT={dport} LEN={len} ");
        }
        L4::Sctp { sport, dport } => {
            let _ = write!(s, "PROTO=SCTP SPT={sport} DPT={dport} ");
        }
        L4::Icmp(i) => {
            let name = if h.is_v4() { "ICMP" } else { "ICMPv6" };
            let _ = write!(s, "PROTO={name} TYPE={} CODE={} ", i.typ, i.code);
            if h.is_v4() && matches!(i.typ, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18) {
                let _ = write!(s, "ID={} SEQ={} ", i.ident, i.seq);
            }
        }
        L4::None => {
            let _ = write!(s, "PROTO={} ", h.proto);
        }
    }
    if mark != 0 {
        let _ = write!(s, "MARK=0x{mark:x} ");
    }
    s.truncate(s.trim_end().len());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::build::{tcp, Ip4, TcpSeg};
    use crate::packet::parse;

    #[test]
    fn line_looks_like_the_kernels() {
        let mut b = Vec::new();
        let ip = Ip4 {
            df: true,
            ident: 4321,
            ..Ip4::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), 6)
        };
        tcp(
            &mut b,
            ip,
            TcpSeg {
                sport: 1234,
                dport: 80,
                seq: 1,
                ack: 0,
                flags: 2,
                window: 512,
            },
            b"",
        );
        let h = parse(&b).unwrap();
        let l = format_line("DROP: ", "eth0", "", &b, &h, 0, LogFlags::default());
        assert_eq!(
            l,
            "DROP: IN=eth0 OUT= MAC= SRC=10.0.0.1 DST=10.0.0.2 LEN=40 TOS=0x00 PREC=0x00 TTL=64 ID=4321 DF PROTO=TCP SPT=1234 DPT=80 WINDOW=512 RES=0x00 SYN URGP=0"
        );
        // A packet the router sends itself has no input device, and no MAC=.
        let l = format_line("", "", "eth0", &b, &h, 0, LogFlags::default());
        assert!(l.starts_with("IN= OUT=eth0 SRC=10.0.0.1 "), "{l}");
    }

    #[test]
    fn rate_limited() {
        let l = PacketLog::new(2);
        assert!(l.admit(0) && l.admit(1));
        assert!(!l.admit(2));
        assert_eq!(l.suppressed.load(Ordering::Relaxed), 1);
        assert!(l.admit(600_000_000));
    }
}
