//! Reading and writing packet captures: pcapng (the IETF draft `draft-ietf-opsawg-pcapng`)
//! and classic pcap. Reading yields each packet with its interface and timestamp; a damaged or
//! unsupported capture is an error naming the block (or record), never a panic.

use std::fmt;

/// Link types this reader turns into IP packets.
pub mod linktype {
    pub const ETHERNET: u16 = 1;
    pub const RAW: u16 = 101;
    /// Linux cooked capture (`tcpdump -i any`, libpcap before 1.10).
    pub const SLL: u16 = 113;
    pub const IPV4: u16 = 228;
    pub const IPV6: u16 = 229;
    /// Linux cooked capture v2 (`tcpdump -i any`, libpcap 1.10 and later).
    pub const SLL2: u16 = 276;
}

/// An error in a capture: which block (pcapng) or record (pcap), counting from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub block: usize,
    pub msg: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "block {}: {}", self.block, self.msg)
    }
}

impl std::error::Error for Error {}

/// An interface a capture describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapIface {
    pub linktype: u16,
    /// `if_name`, when the capture gives one.
    pub name: Option<String>,
    /// Nanoseconds per timestamp unit, as a (numerator, denominator) pair.
    tsres: (u64, u64),
}

/// One captured packet: the IP packet (link header removed), its interface index and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub block: usize,
    pub iface: usize,
    /// Nanoseconds since the epoch of the capture's clock.
    pub ts_ns: u64,
    pub data: Vec<u8>,
    /// The capture says the packet was leaving its interface (pcapng `epb_flags` outbound,
    /// a cooked capture's "outgoing" packet type): not one that arrived.
    pub outbound: bool,
}

/// A whole capture, read.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    pub ifaces: Vec<CapIface>,
    /// In time order (a capture out of order is sorted; `reordered` says how many moved).
    pub packets: Vec<Packet>,
    /// Packets skipped because their link-layer payload is not IP (e.g. ARP).
    pub skipped_non_ip: usize,
    /// Packets that came before one with an earlier timestamp in the file.
    pub reordered: usize,
}

/// An IP packet out of a frame, and whether the link header says it was outgoing.
type Payload = Option<(Vec<u8>, bool)>;

struct Rd<'a> {
    b: &'a [u8],
    le: bool,
}

impl Rd<'_> {
    fn u16(&self, at: usize) -> Option<u16> {
        let s: [u8; 2] = self.b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.le {
            u16::from_le_bytes(s)
        } else {
            u16::from_be_bytes(s)
        })
    }
    fn u32(&self, at: usize) -> Option<u32> {
        let s: [u8; 4] = self.b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.le {
            u32::from_le_bytes(s)
        } else {
            u32::from_be_bytes(s)
        })
    }
}

/// Reads a pcapng or classic pcap capture.
pub fn read(bytes: &[u8]) -> Result<Capture, Error> {
    let err = |block, msg: &str| Error {
        block,
        msg: msg.to_string(),
    };
    match bytes.get(..4) {
        Some([0x0a, 0x0d, 0x0d, 0x0a]) => read_pcapng(bytes),
        Some(m)
            if [
                [0xd4, 0xc3, 0xb2, 0xa1],
                [0xa1, 0xb2, 0xc3, 0xd4],
                [0x4d, 0x3c, 0xb2, 0xa1],
                [0xa1, 0xb2, 0x3c, 0x4d],
            ]
            .contains(&[m[0], m[1], m[2], m[3]]) =>
        {
            read_pcap(bytes)
        }
        Some(_) => Err(err(1, "not a pcapng or pcap capture (unknown magic number)")),
        None => Err(err(1, "capture is shorter than its header")),
    }
}

/// The IP packet inside a frame of `linktype`, with whether a cooked header calls it
/// outgoing; `Ok(None)` for a non-IP frame.
fn ip_payload(linktype: u16, frame: &[u8], block: usize) -> Result<Payload, Error> {
    const PACKET_OUTGOING: u16 = 4;
    let short = |what: &str| Error {
        block,
        msg: format!("{what} frame shorter than its header"),
    };
    let ip = |proto: u16, at: usize, outgoing: bool| -> Payload {
        matches!(proto, 0x0800 | 0x86dd).then(|| (frame[at..].to_vec(), outgoing))
    };
    match linktype {
        linktype::RAW | linktype::IPV4 | linktype::IPV6 => Ok(Some((frame.to_vec(), false))),
        linktype::SLL => {
            // Packet type, ARPHRD, address length, address (8), protocol.
            let h = frame.get(..16).ok_or_else(|| short("Linux cooked"))?;
            let kind = u16::from_be_bytes([h[0], h[1]]);
            Ok(ip(u16::from_be_bytes([h[14], h[15]]), 16, kind == PACKET_OUTGOING))
        }
        linktype::SLL2 => {
            // Protocol, reserved, interface index, ARPHRD, packet type, address length,
            // address (8).
            let h = frame.get(..20).ok_or_else(|| short("Linux cooked v2"))?;
            Ok(ip(u16::from_be_bytes([h[0], h[1]]), 20, u16::from(h[10]) == PACKET_OUTGOING))
        }
        linktype::ETHERNET => {
            let mut off = 12;
            let mut ethertype = frame.get(off..off + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            // One or two VLAN tags (802.1Q, 802.1ad).
            while matches!(ethertype, Some(0x8100 | 0x88a8)) {
                off += 4;
                ethertype = frame.get(off..off + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            }
            match ethertype {
                Some(0x0800 | 0x86dd) => Ok(Some((frame[off + 2..].to_vec(), false))),
                Some(_) => Ok(None),
                None => Err(Error {
                    block,
                    msg: "Ethernet frame shorter than its header".into(),
                }),
            }
        }
        other => Err(Error {
            block,
            msg: format!(
                "unsupported link type {other} (raw IP 101, IPv4 228, IPv6 229, Ethernet 1 and Linux cooked 113 and 276 are read)"
            ),
        }),
    }
}

fn read_pcapng(bytes: &[u8]) -> Result<Capture, Error> {
    let mut cap = Capture::default();
    let mut at = 0usize;
    let mut block = 0usize;
    let mut le = true;
    while at < bytes.len() {
        block += 1;
        let err = |msg: String| Error { block, msg };
        let head = bytes
            .get(at..at + 12)
            .ok_or_else(|| err("truncated block header".into()))?;
        if head[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
            le = match head[8..12] {
                [0x4d, 0x3c, 0x2b, 0x1a] => true,
                [0x1a, 0x2b, 0x3c, 0x4d] => false,
                _ => return Err(err("section header with a bad byte-order magic".into())),
            };
            // Interfaces are numbered per section.
            cap.ifaces.clear();
        }
        let r = Rd { b: &bytes[at..], le };
        let typ = r.u32(0).unwrap_or(0);
        let len = r.u32(4).unwrap_or(0) as usize;
        if len < 12 || !len.is_multiple_of(4) {
            return Err(err(format!("bad block length {len}")));
        }
        if at + len > bytes.len() {
            return Err(err(format!(
                "truncated block: {len} bytes announced, {} left",
                bytes.len() - at
            )));
        }
        let body = &bytes[at + 8..at + len - 4];
        if r.u32(len - 4) != Some(len as u32) {
            return Err(err("block length trailer does not match its header".into()));
        }
        let br = Rd { b: body, le };
        match typ {
            0x0a0d_0d0a => {}
            1 => {
                let linktype = br.u16(0).ok_or_else(|| err("truncated interface description".into()))?;
                let mut iface = CapIface {
                    linktype,
                    name: None,
                    tsres: (1000, 1),
                };
                parse_options(&body[8.min(body.len())..], le, |code, val| match code {
                    2 => iface.name = Some(String::from_utf8_lossy(val).trim_end_matches('\0').to_string()),
                    9 if !val.is_empty() => {
                        let v = val[0];
                        iface.tsres = if v & 0x80 == 0 {
                            let exp = u32::from(v.min(19));
                            if exp <= 9 {
                                (10u64.pow(9 - exp), 1)
                            } else {
                                (1, 10u64.pow(exp - 9))
                            }
                        } else {
                            (1_000_000_000, 1u64 << u32::from((v & 0x7f).min(63)))
                        };
                    }
                    _ => {}
                })
                .map_err(err)?;
                cap.ifaces.push(iface);
            }
            6 => {
                let (id, hi, lo, clen) = (br.u32(0), br.u32(4), br.u32(8), br.u32(12));
                let (Some(id), Some(hi), Some(lo), Some(clen)) = (id, hi, lo, clen) else {
                    return Err(err("truncated enhanced packet block".into()));
                };
                let data = body
                    .get(20..20 + clen as usize)
                    .ok_or_else(|| err("captured length exceeds the block".into()))?;
                let iface = cap
                    .ifaces
                    .get(id as usize)
                    .ok_or_else(|| err(format!("packet on interface {id}, which no interface block described")))?;
                let units = (u64::from(hi) << 32) | u64::from(lo);
                let ts_ns = units.saturating_mul(iface.tsres.0) / iface.tsres.1;
                // epb_flags: bits 0-1 are the direction (1 inbound, 2 outbound).
                let mut out_flag = false;
                let opts_at = (20 + clen as usize).div_ceil(4) * 4;
                parse_options(body.get(opts_at..).unwrap_or(&[]), le, |code, val| {
                    if code == 2 && val.len() == 4 {
                        let v = Rd { b: val, le }.u32(0).unwrap_or(0);
                        out_flag = v & 3 == 2;
                    }
                })
                .map_err(err)?;
                if let Some((ip, outgoing)) = ip_payload(iface.linktype, data, block)? {
                    cap.packets.push(Packet {
                        block,
                        iface: id as usize,
                        ts_ns,
                        data: ip,
                        outbound: outgoing || out_flag,
                    });
                } else {
                    cap.skipped_non_ip += 1;
                }
            }
            3 => {
                let iface = cap
                    .ifaces
                    .first()
                    .ok_or_else(|| err("simple packet block before any interface block".into()))?;
                let olen = br.u32(0).ok_or_else(|| err("truncated simple packet block".into()))? as usize;
                let data = &body[4..4 + olen.min(body.len() - 4)];
                if let Some((ip, outbound)) = ip_payload(iface.linktype, data, block)? {
                    cap.packets.push(Packet {
                        block,
                        iface: 0,
                        ts_ns: 0,
                        data: ip,
                        outbound,
                    });
                } else {
                    cap.skipped_non_ip += 1;
                }
            }
            _ => {} // Statistics, name resolution, custom blocks: nothing to replay.
        }
        at += len;
    }
    in_time_order(&mut cap);
    Ok(cap)
}

/// Sorts the packets by time (stably: equal times keep the file's order), counting how many
/// came before an earlier one.
fn in_time_order(cap: &mut Capture) {
    let mut latest = 0;
    for p in &cap.packets {
        if p.ts_ns < latest {
            cap.reordered += 1;
        }
        latest = latest.max(p.ts_ns);
    }
    if cap.reordered > 0 {
        cap.packets.sort_by_key(|p| p.ts_ns);
    }
}

/// Walks pcapng options (code, length, value padded to 4) until `opt_endofopt`.
fn parse_options(mut b: &[u8], le: bool, mut f: impl FnMut(u16, &[u8])) -> Result<(), String> {
    while b.len() >= 4 {
        let r = Rd { b, le };
        let code = r.u16(0).unwrap_or(0);
        let len = usize::from(r.u16(2).unwrap_or(0));
        if code == 0 {
            return Ok(());
        }
        let val = b.get(4..4 + len).ok_or("option longer than its block")?;
        f(code, val);
        let padded = 4 + len.div_ceil(4) * 4;
        b = b.get(padded..).unwrap_or(&[]);
    }
    Ok(())
}

fn read_pcap(bytes: &[u8]) -> Result<Capture, Error> {
    let le = bytes[0] == 0xd4 || bytes[0] == 0x4d;
    let nanos = matches!(bytes[..4], [0x4d, 0x3c, 0xb2, 0xa1] | [0xa1, 0xb2, 0x3c, 0x4d]);
    let r = Rd { b: bytes, le };
    let linktype = r.u32(20).ok_or(Error {
        block: 1,
        msg: "truncated pcap file header".into(),
    })?;
    let linktype = (linktype & 0xffff) as u16;
    let mut cap = Capture {
        ifaces: vec![CapIface {
            linktype,
            name: None,
            tsres: (1, 1),
        }],
        ..Capture::default()
    };
    let mut at = 24;
    let mut rec = 0;
    while at < bytes.len() {
        rec += 1;
        let r = Rd { b: &bytes[at..], le };
        let (Some(sec), Some(frac), Some(incl)) = (r.u32(0), r.u32(4), r.u32(8)) else {
            return Err(Error {
                block: rec,
                msg: "truncated record header".into(),
            });
        };
        let data = bytes.get(at + 16..at + 16 + incl as usize).ok_or(Error {
            block: rec,
            msg: "truncated record".into(),
        })?;
        let ts_ns = u64::from(sec) * 1_000_000_000 + u64::from(frac) * if nanos { 1 } else { 1000 };
        match ip_payload(linktype, data, rec)? {
            Some((ip, outbound)) => cap.packets.push(Packet {
                block: rec,
                iface: 0,
                ts_ns,
                data: ip,
                outbound,
            }),
            None => cap.skipped_non_ip += 1,
        }
        at += 16 + incl as usize;
    }
    in_time_order(&mut cap);
    Ok(cap)
}

/// Writes pcapng: one section, one raw-IP interface per name (nanosecond timestamps), and
/// the packets in order.
#[derive(Debug, Default)]
pub struct Writer {
    out: Vec<u8>,
    names: Vec<String>,
}

fn push_block(out: &mut Vec<u8>, typ: u32, body: &[u8]) {
    let len = 12 + body.len().div_ceil(4) * 4;
    out.extend_from_slice(&typ.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(body);
    out.resize(out.len() + (len - 12 - body.len()), 0);
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

impl Writer {
    pub fn new() -> Writer {
        let mut w = Writer::default();
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        push_block(&mut w.out, 0x0a0d_0d0a, &shb);
        w
    }

    fn iface(&mut self, name: &str) -> u32 {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return i as u32;
        }
        let mut idb = Vec::new();
        idb.extend_from_slice(&linktype::ETHERNET.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        let mut opt = |code: u16, val: &[u8]| {
            idb.extend_from_slice(&code.to_le_bytes());
            idb.extend_from_slice(&(val.len() as u16).to_le_bytes());
            idb.extend_from_slice(val);
            idb.resize(idb.len() + (val.len().div_ceil(4) * 4 - val.len()), 0);
        };
        opt(2, name.as_bytes());
        opt(9, &[9]);
        idb.extend_from_slice(&[0, 0, 0, 0]);
        push_block(&mut self.out, 1, &idb);
        self.names.push(name.to_string());
        (self.names.len() - 1) as u32
    }

    /// Appends a packet seen on (or sent out of) interface `name` at `ts_ns`.
    ///
    /// Each IP packet is written in an Ethernet frame with zero addresses and the EtherType
    /// of its IP version: libpcap (tcpdump) reads a pcapng only when every interface has the
    /// same link type, and refuses several raw-IP (101) interfaces outright, while Ethernet
    /// carries IPv4 and IPv6 side by side; tcpdump, tshark and `replay` read it.
    pub fn packet(&mut self, name: &str, ts_ns: u64, data: &[u8]) {
        let id = self.iface(name);
        let ethertype: u16 = if data.first().is_some_and(|b| b >> 4 == 6) {
            0x86dd
        } else {
            0x0800
        };
        let len = (14 + data.len()) as u32;
        let mut epb = Vec::with_capacity(34 + data.len() + 3);
        epb.extend_from_slice(&id.to_le_bytes());
        epb.extend_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts_ns as u32).to_le_bytes());
        epb.extend_from_slice(&len.to_le_bytes());
        epb.extend_from_slice(&len.to_le_bytes());
        epb.extend_from_slice(&[0; 12]);
        epb.extend_from_slice(&ethertype.to_be_bytes());
        epb.extend_from_slice(data);
        push_block(&mut self.out, 6, &epb);
    }

    /// Declares an interface even if no packet uses it, so readers see every name.
    pub fn declare(&mut self, name: &str) {
        self.iface(name);
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_it_reads() {
        let mut w = Writer::new();
        w.packet("lan0", 1_700_000_000_123_456_789, &[0x45, 1, 2]);
        w.packet("wan0", 1_700_000_000_123_456_795, &[0x45, 9]);
        w.packet("lan0", 1_700_000_000_123_456_796, &[0x45]);
        let cap = read(&w.finish()).unwrap();
        assert_eq!(
            cap.ifaces.iter().map(|i| i.name.clone().unwrap()).collect::<Vec<_>>(),
            ["lan0", "wan0"]
        );
        assert_eq!(cap.packets.len(), 3);
        assert_eq!(cap.packets[0].ts_ns, 1_700_000_000_123_456_789);
        assert_eq!((cap.packets[1].iface, &cap.packets[1].data[..]), (1, &[0x45, 9][..]));
    }

    #[test]
    fn damaged_captures_name_the_block() {
        let mut w = Writer::new();
        w.packet("lan0", 1, &[0x45; 20]);
        let good = w.finish();
        let e = read(&good[..good.len() - 3]).unwrap_err();
        assert_eq!(e.block, 3);
        assert!(e.msg.contains("truncated"), "{e}");
        assert_eq!(read(b"hello world!").unwrap_err().block, 1);
        // An unknown link type in the interface block.
        let mut bad = good.clone();
        let idb = 28; // after the 28-byte section header block
        bad[idb + 8] = 147;
        let e = read(&bad).unwrap_err();
        assert_eq!(e.block, 3);
        assert!(e.msg.contains("link type 147"), "{e}");
    }

    #[test]
    fn classic_pcap_with_ethernet() {
        let mut b = Vec::new();
        b.extend_from_slice(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&65535u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        let frame: Vec<u8> = [[0u8; 12].as_slice(), &[0x08, 0x00], &[0x45, 0, 0, 20]].concat();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&7u32.to_le_bytes());
        b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        b.extend_from_slice(&frame);
        let cap = read(&b).unwrap();
        assert_eq!(cap.packets[0].data, [0x45, 0, 0, 20]);
        assert_eq!(cap.packets[0].ts_ns, 3_000_007_000);
    }

    /// A classic little-endian pcap of `linktype` holding `frames` at the given seconds.
    fn classic(linktype: u32, frames: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&65535u32.to_le_bytes());
        b.extend_from_slice(&linktype.to_le_bytes());
        for (sec, f) in frames {
            b.extend_from_slice(&sec.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
            b.extend_from_slice(&(f.len() as u32).to_le_bytes());
            b.extend_from_slice(&(f.len() as u32).to_le_bytes());
            b.extend_from_slice(f);
        }
        b
    }

    #[test]
    fn linux_cooked_captures() {
        // SLL: packet type, ARPHRD_ETHER, address length 6, address padded to 8, protocol.
        let sll = |kind: u16, proto: u16, ip: &[u8]| -> Vec<u8> {
            let mut f = kind.to_be_bytes().to_vec();
            f.extend_from_slice(&1u16.to_be_bytes());
            f.extend_from_slice(&6u16.to_be_bytes());
            f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
            f.extend_from_slice(&proto.to_be_bytes());
            f.extend_from_slice(ip);
            f
        };
        let cap = read(&classic(
            113,
            &[
                (1, sll(0, 0x0800, &[0x45, 1])),
                (2, sll(4, 0x86dd, &[0x60, 2])),
                (3, sll(0, 0x0806, &[0, 1, 8, 0])),
            ],
        ))
        .unwrap();
        assert_eq!(cap.packets.len(), 2);
        assert_eq!(
            (&cap.packets[0].data[..], cap.packets[0].outbound),
            (&[0x45, 1][..], false)
        );
        assert_eq!(
            (&cap.packets[1].data[..], cap.packets[1].outbound),
            (&[0x60, 2][..], true)
        );
        assert_eq!(cap.skipped_non_ip, 1);
        // SLL2: protocol, reserved, ifindex, ARPHRD, packet type, address length, address.
        let sll2 = |kind: u8, ip: &[u8]| -> Vec<u8> {
            let mut f = 0x0800u16.to_be_bytes().to_vec();
            f.extend_from_slice(&[0, 0]);
            f.extend_from_slice(&7u32.to_be_bytes());
            f.extend_from_slice(&1u16.to_be_bytes());
            f.extend_from_slice(&[kind, 6]);
            f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
            f.extend_from_slice(ip);
            f
        };
        let cap = read(&classic(276, &[(1, sll2(4, &[0x45, 3])), (2, sll2(0, &[0x45, 4]))])).unwrap();
        let got: Vec<_> = cap.packets.iter().map(|p| (p.data.clone(), p.outbound)).collect();
        assert_eq!(got, [(vec![0x45, 3], true), (vec![0x45, 4], false)]);
        // A cooked frame shorter than its header names its record.
        let e = read(&classic(113, &[(1, vec![0; 10])])).unwrap_err();
        assert_eq!(e.block, 1);
        assert!(e.msg.contains("Linux cooked"), "{e}");
    }

    #[test]
    fn enhanced_packet_direction_flag() {
        let mut w = Writer::new();
        w.packet("lan0", 1, &[0x45, 1]);
        w.packet("lan0", 2, &[0x45, 2]);
        let mut b = w.finish();
        // Give the second EPB an epb_flags option saying outbound (2), then the end of
        // options, and fix its lengths.
        let second = b.len() - (12 + 16 + 20);
        assert_eq!(b[second], 6);
        let len = u32::from_le_bytes(b[second + 4..second + 8].try_into().unwrap());
        assert_eq!(len, 48);
        b.truncate(b.len() - 4);
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&4u16.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&60u32.to_le_bytes());
        b[second + 4..second + 8].copy_from_slice(&60u32.to_le_bytes());
        let cap = read(&b).unwrap();
        let got: Vec<_> = cap.packets.iter().map(|p| (p.data.clone(), p.outbound)).collect();
        assert_eq!(got, [(vec![0x45, 1], false), (vec![0x45, 2], true)]);
    }

    #[test]
    fn out_of_order_packets_are_sorted_and_counted() {
        let cap = read(&classic(
            101,
            &[
                (5, vec![0x45, 1]),
                (3, vec![0x45, 2]),
                (5, vec![0x45, 3]),
                (4, vec![0x45, 4]),
            ],
        ))
        .unwrap();
        let order: Vec<u8> = cap.packets.iter().map(|p| p.data[1]).collect();
        // Stable: the two at 5 s keep their order.
        assert_eq!(order, [2, 4, 1, 3]);
        assert_eq!(cap.reordered, 2);
        let cap = read(&classic(101, &[(1, vec![0x45, 1]), (1, vec![0x45, 2])])).unwrap();
        assert_eq!(cap.reordered, 0);
    }
}
