//! Reading and writing packet captures: pcapng (the IETF draft `draft-ietf-opsawg-pcapng`)
//! and classic pcap. Reading yields each packet with its interface and timestamp; a damaged or
//! unsupported capture is an error naming the block (or record), never a panic.

use std::fmt;

/// Link types this reader turns into IP packets.
pub mod linktype {
    pub const ETHERNET: u16 = 1;
    pub const RAW: u16 = 101;
    pub const IPV4: u16 = 228;
    pub const IPV6: u16 = 229;
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
}

/// A whole capture, read.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    pub ifaces: Vec<CapIface>,
    pub packets: Vec<Packet>,
    /// Packets skipped because their link-layer payload is not IP (e.g. ARP).
    pub skipped_non_ip: usize,
}

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

/// The IP packet inside a frame of `linktype`; `Ok(None)` for a non-IP frame.
fn ip_payload(linktype: u16, frame: &[u8], block: usize) -> Result<Option<Vec<u8>>, Error> {
    match linktype {
        linktype::RAW | linktype::IPV4 | linktype::IPV6 => Ok(Some(frame.to_vec())),
        linktype::ETHERNET => {
            let mut off = 12;
            let mut ethertype = frame.get(off..off + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            // One or two VLAN tags (802.1Q, 802.1ad).
            while matches!(ethertype, Some(0x8100 | 0x88a8)) {
                off += 4;
                ethertype = frame.get(off..off + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            }
            match ethertype {
                Some(0x0800 | 0x86dd) => Ok(Some(frame[off + 2..].to_vec())),
                Some(_) => Ok(None),
                None => Err(Error {
                    block,
                    msg: "Ethernet frame shorter than its header".into(),
                }),
            }
        }
        other => Err(Error {
            block,
            msg: format!("unsupported link type {other} (raw IP 101, IPv4 228, IPv6 229 and Ethernet 1 are read)"),
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
                if let Some(ip) = ip_payload(iface.linktype, data, block)? {
                    cap.packets.push(Packet {
                        block,
                        iface: id as usize,
                        ts_ns,
                        data: ip,
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
                if let Some(ip) = ip_payload(iface.linktype, data, block)? {
                    cap.packets.push(Packet {
                        block,
                        iface: 0,
                        ts_ns: 0,
                        data: ip,
                    });
                } else {
                    cap.skipped_non_ip += 1;
                }
            }
            _ => {} // Statistics, name resolution, custom blocks: nothing to replay.
        }
        at += len;
    }
    Ok(cap)
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
            Some(ip) => cap.packets.push(Packet {
                block: rec,
                iface: 0,
                ts_ns,
                data: ip,
            }),
            None => cap.skipped_non_ip += 1,
        }
        at += 16 + incl as usize;
    }
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
        w.packet("wan0", 5, &[0x45, 9]);
        w.packet("lan0", 6, &[0x45]);
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
}
