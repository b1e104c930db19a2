//! `tls-sni`: matches a TLS ClientHello whose server name (SNI, RFC 6066 section 3) is one of
//! the given names: `--args "example.com,*.example.org"`. `*.` matches one or more labels
//! in front of the rest; comparison ignores case. The ClientHello must start in this
//! segment's payload (RFC 8446 4.1.2), which is how clients send it.
#![cfg_attr(target_arch = "wasm32", no_std)]
extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use rtrouter_sdk::{export_match, Match, Packet};

#[derive(Debug)]
pub struct TlsSni {
    /// (suffix, wildcard): exact names have `wildcard == false`.
    names: Vec<(Vec<u8>, bool)>,
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?])))
}

/// The server name in a TLS record holding a ClientHello.
pub fn sni(rec: &[u8]) -> Option<&[u8]> {
    // Record: handshake (22), version, length; then handshake type ClientHello (1), length.
    if *rec.first()? != 22 || *rec.get(5)? != 1 {
        return None;
    }
    let mut at = 9 + 2 + 32; // handshake header, client version, random
    at += 1 + usize::from(*rec.get(at)?); // session id
    at += 2 + be16(rec, at)?; // cipher suites
    at += 1 + usize::from(*rec.get(at)?); // compression methods
    let ext_end = at + 2 + be16(rec, at)?;
    at += 2;
    while at + 4 <= ext_end.min(rec.len()) {
        let (typ, len) = (be16(rec, at)?, be16(rec, at + 2)?);
        let body = rec.get(at + 4..at + 4 + len)?;
        if typ == 0 {
            // server_name: list length, then (type 0 = host_name, length, name).
            if *body.get(2)? != 0 {
                return None;
            }
            let n = be16(body, 3)?;
            return body.get(5..5 + n);
        }
        at += 4 + len;
    }
    None
}

impl Match for TlsSni {
    fn new(args: &str) -> Result<Self, String> {
        let mut names = Vec::new();
        for a in args.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let (name, wild) = match a.strip_prefix("*.") {
                Some(rest) => (rest, true),
                None => (a, false),
            };
            if name.is_empty() || name.contains('*') || name.len() > 253 {
                return Err(alloc::format!("bad server name `{a}' (NAME or *.NAME)"));
            }
            names.push((name.to_ascii_lowercase().into_bytes(), wild));
        }
        if names.is_empty() {
            return Err("--args needs one or more server names, comma-separated".into());
        }
        Ok(TlsSni { names })
    }

    fn matches(&self, p: &Packet) -> bool {
        if p.proto() != 6 {
            return false;
        }
        let Some(host) = sni(p.payload()) else { return false };
        self.names.iter().any(|(n, wild)| {
            if *wild {
                host.len() > n.len() + 1
                    && host[host.len() - n.len() - 1] == b'.'
                    && host[host.len() - n.len()..].eq_ignore_ascii_case(n)
            } else {
                host.eq_ignore_ascii_case(n)
            }
        })
    }
}

export_match!(TlsSni);

/// A minimal ClientHello carrying `host` as its server name (for tests).
pub fn client_hello(host: &str) -> Vec<u8> {
    let mut sn = Vec::new();
    sn.extend_from_slice(&((host.len() + 3) as u16).to_be_bytes());
    sn.push(0);
    sn.extend_from_slice(&(host.len() as u16).to_be_bytes());
    sn.extend_from_slice(host.as_bytes());
    let mut ext = Vec::new();
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&(sn.len() as u16).to_be_bytes());
    ext.extend_from_slice(&sn);
    let mut hello = Vec::new();
    hello.extend_from_slice(&[3, 3]);
    hello.extend_from_slice(&[7; 32]);
    hello.push(0);
    hello.extend_from_slice(&[0, 2, 0x13, 0x01]);
    hello.extend_from_slice(&[1, 0]);
    hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hello.extend_from_slice(&ext);
    let mut hs = alloc::vec![1];
    hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&hello);
    let mut rec = alloc::vec![22, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtrouter_sdk::testing::tcp;

    #[test]
    fn exact_and_wildcard_names() {
        let m = TlsSni::new("example.com, *.example.org").unwrap();
        for (host, want) in [
            ("example.com", true),
            ("EXAMPLE.com", true),
            ("www.example.com", false),
            ("a.example.org", true),
            ("a.b.example.org", true),
            ("example.org", false),
            ("badexample.org", false),
        ] {
            let p = tcp([10, 0, 0, 1], [10, 0, 0, 2], 40000, 443, 0x18, &client_hello(host));
            assert_eq!(m.matches(&Packet::new(&p)), want, "{host}");
        }
    }

    #[test]
    fn anything_else_never_matches_nor_panics() {
        let m = TlsSni::new("example.com").unwrap();
        let hello = client_hello("example.com");
        for cut in 0..hello.len() {
            let p = tcp([10, 0, 0, 1], [10, 0, 0, 2], 40000, 443, 0x18, &hello[..cut]);
            assert!(!m.matches(&Packet::new(&p)));
        }
        assert!(TlsSni::new("*.").is_err());
    }
}
