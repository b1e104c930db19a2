//! `dns-qname`: matches DNS queries (UDP to port 53) whose question name ends in one of the
//! given suffixes, on whole labels and ignoring case (RFC 1035 4.1.2, RFC 4343):
//! `--args "example.com,ads.example.net"` matches `www.example.com` and `example.com`,
//! not `badexample.com`.
#![cfg_attr(target_arch = "wasm32", no_std)]
extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use rtrouter_sdk::{export_match, Match, Packet};

/// Most labels a name can have (255 bytes, each label at least 2 bytes).
const MAX_LABELS: usize = 128;

#[derive(Debug)]
pub struct DnsQname {
    /// Each suffix as its labels, lower-cased, last label first.
    suffixes: Vec<Vec<Vec<u8>>>,
}

impl Match for DnsQname {
    fn new(args: &str) -> Result<Self, String> {
        let mut suffixes = Vec::new();
        for s in args.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let s = s.trim_end_matches('.');
            let labels: Vec<Vec<u8>> = s
                .split('.')
                .rev()
                .map(|l| l.to_ascii_lowercase().into_bytes())
                .collect();
            if labels.iter().any(|l| l.is_empty() || l.len() > 63) || s.len() > 253 {
                return Err(alloc::format!("bad domain suffix `{s}'"));
            }
            suffixes.push(labels);
        }
        if suffixes.is_empty() {
            return Err("--args needs one or more domain suffixes, comma-separated".into());
        }
        Ok(DnsQname { suffixes })
    }

    fn matches(&self, p: &Packet) -> bool {
        if p.proto() != 17 || p.dport() != Some(53) {
            return false;
        }
        let msg = p.payload();
        // Header: a query (QR = 0) with at least one question.
        if msg.len() < 12 || msg[2] & 0x80 != 0 || u16::from_be_bytes([msg[4], msg[5]]) == 0 {
            return false;
        }
        let mut labels: [&[u8]; MAX_LABELS] = [&[]; MAX_LABELS];
        let mut n = 0;
        let mut at = 12;
        loop {
            let Some(&len) = msg.get(at) else { return false };
            if len == 0 {
                break;
            }
            // Compression pointers and extended label types cannot appear in a question name.
            if len > 63 || n == MAX_LABELS {
                return false;
            }
            let Some(l) = msg.get(at + 1..at + 1 + usize::from(len)) else {
                return false;
            };
            labels[n] = l;
            n += 1;
            at += 1 + usize::from(len);
        }
        let name = &labels[..n];
        self.suffixes.iter().any(|suf| {
            suf.len() <= name.len()
                && suf
                    .iter()
                    .zip(name.iter().rev())
                    .all(|(want, got)| want.eq_ignore_ascii_case(got))
        })
    }
}

export_match!(DnsQname);

#[cfg(test)]
mod tests {
    use super::*;
    use rtrouter_sdk::testing::udp;

    fn query(name: &str) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        udp([10, 0, 0, 1], [10, 0, 0, 53], 5353, 53, &q)
    }

    #[test]
    fn suffixes_match_whole_labels_ignoring_case() {
        let m = DnsQname::new("example.com, ads.example.net").unwrap();
        for (name, want) in [
            ("www.example.com", true),
            ("example.com", true),
            ("WWW.Example.COM", true),
            ("badexample.com", false),
            ("example.com.evil.org", false),
            ("x.ads.example.net", true),
            ("example.net", false),
        ] {
            assert_eq!(m.matches(&Packet::new(&query(name))), want, "{name}");
        }
    }

    #[test]
    fn only_dns_queries() {
        let m = DnsQname::new("example.com").unwrap();
        let mut resp = query("www.example.com");
        resp[64 + 28 + 2] |= 0x80; // QR: a response
        assert!(!m.matches(&Packet::new(&resp)));
        let other_port = udp([10, 0, 0, 1], [10, 0, 0, 53], 5353, 5353, b"\x12\x34\x01\x00\x00\x01");
        assert!(!m.matches(&Packet::new(&other_port)));
        // A truncated name never matches and never panics.
        let q = query("www.example.com");
        for cut in 0..q.len() {
            let mut short = q[..cut].to_vec();
            short.resize(q.len(), 0);
            let _ = m.matches(&Packet::new(&short));
        }
        assert!(DnsQname::new("").is_err());
        assert!(DnsQname::new("a..b").is_err());
    }
}
