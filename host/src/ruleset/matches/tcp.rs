//! `-m tcp` (`libxt_tcp.c`, `xt_tcpudp.c: tcp_mt`): ports, flags and options of TCP headers.

use super::{range_holds, save_port_range, CompileEnv, MatchExt, RuleProto};
use crate::eval::classify::{Fields, Indexed, L4_TCP};
use crate::eval::{Cx, Engine, Pkt};
use crate::packet::{Headers, L4};
use crate::ruleset::ext::{Cursor, Neg, PResult};
use crate::ruleset::value::{parse_uint, Range16};
use std::fmt::Write as _;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tcp {
    pub sport: Option<Neg<Range16>>,
    pub dport: Option<Neg<Range16>>,
    /// (mask, comparison) over FIN SYN RST PSH ACK URG.
    pub flags: Option<Neg<(u8, u8)>>,
    pub option: Option<Neg<u8>>,
}

impl MatchExt for Tcp {
    type Builder = Tcp;
    type Compiled = Tcp;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &[
        "source-port",
        "sport",
        "destination-port",
        "dport",
        "syn",
        "tcp-flags",
        "tcp-option",
    ];

    fn option(t: &mut Tcp, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        let name = format!("--{opt}");
        let name = name.as_str();
        match opt {
            "sport" | "source-port" | "dport" | "destination-port" => {
                let v = c.value_inv(name, &mut inv)?;
                let r = Range16::parse(&v, Some("tcp"))
                    .map_or_else(|| c.err_value(format!("invalid port/service `{v}' specified")), Ok)?;
                let slot = if opt.starts_with('s') {
                    &mut t.sport
                } else {
                    &mut t.dport
                };
                c.once(slot, name)?;
                *slot = Some(Neg::new(inv, r));
            }
            "syn" => {
                c.once(&t.flags, "--tcp-flags")?;
                t.flags = Some(Neg::new(inv, (0x17, 0x02)));
            }
            "tcp-flags" => {
                c.once(&t.flags, name)?;
                let mask = c.value_inv(name, &mut inv)?;
                let mask = tcp_flags(&mask).map_or_else(|| c.err_value(format!("unknown TCP flag `{mask}'")), Ok)?;
                let cmp = c.value(name)?;
                let cmp = tcp_flags(&cmp).map_or_else(|| c.err_value(format!("unknown TCP flag `{cmp}'")), Ok)?;
                t.flags = Some(Neg::new(inv, (mask, cmp)));
            }
            "tcp-option" => {
                c.once(&t.option, name)?;
                let v = c.value_inv(name, &mut inv)?;
                let n = parse_uint(&v, 1, 255).map_or_else(|| c.err_value(format!("invalid TCP option `{v}'")), Ok)?;
                t.option = Some(Neg::new(inv, n as u8));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(t: Tcp, p: RuleProto) -> Result<Tcp, String> {
        p.require(6, "tcp")?;
        let ports = super::udp::Ports {
            sport: t.sport,
            dport: t.dport,
        }
        .normalized();
        Ok(Tcp {
            sport: ports.sport,
            dport: ports.dport,
            ..t
        })
    }

    fn save(&self, out: &mut String) {
        save_port_range(out, "sport", &self.sport);
        save_port_range(out, "dport", &self.dport);
        if let Some(o) = self.option {
            let _ = write!(out, "{} --tcp-option {}", o.bang(), o.v);
        }
        if let Some(f) = self.flags.filter(|f| f.inv || f.v.0 != 0) {
            let _ = write!(out, "{} --tcp-flags ", f.bang());
            print_tcp_flags(out, f.v.0);
            out.push(' ');
            print_tcp_flags(out, f.v.1);
        }
    }

    fn list(&self, out: &mut String, numeric: bool) -> bool {
        let ports = super::udp::Ports {
            sport: self.sport,
            dport: self.dport,
        };
        ports.list(out, "tcp", numeric);
        if let Some(o) = self.option {
            let _ = write!(out, " option={}{}", if o.inv { "!" } else { "" }, o.v);
        }
        if let Some(f) = self.flags.filter(|f| f.inv || f.v.0 != 0) {
            let _ = write!(out, " flags:{}", if f.inv { "!" } else { "" });
            if numeric {
                // `print_flags` with `-n`: the masks in hex.
                let _ = write!(out, "0x{:02X}/0x{:02X}", f.v.0, f.v.1);
            } else {
                print_tcp_flags(out, f.v.0);
                out.push('/');
                print_tcp_flags(out, f.v.1);
            }
        }
        true
    }

    fn compile(&self, _: &CompileEnv) -> Tcp {
        self.clone()
    }

    fn test(t: &Tcp, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        let L4::Tcp(tcp) = p.h.l4 else { return false };
        range_holds(&t.sport, tcp.sport)
            && range_holds(&t.dport, tcp.dport)
            && t.flags.is_none_or(|f| f.holds(tcp.flags & f.v.0 == f.v.1))
            && t.option
                .is_none_or(|o| o.holds(has_tcp_option(p.buf, &p.h, tcp.hdr_len, o.v)))
    }

    fn index(&self, f: &mut Fields) -> Indexed {
        match f.ports(L4_TCP, &self.sport, &self.dport) {
            Indexed::Exact if self.flags.is_some() || self.option.is_some() => Indexed::Partial,
            i => i,
        }
    }
}

/// TCP options contain `kind` (`xt_tcpudp.c: tcp_find_option`).
fn has_tcp_option(buf: &[u8], h: &Headers, hdr_len: u8, kind: u8) -> bool {
    let start = usize::from(h.l4_off) + 20;
    let end = usize::from(h.l4_off) + usize::from(hdr_len);
    let Some(opts) = buf.get(start..end) else { return false };
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return kind == 0,
            1 => {
                if kind == 1 {
                    return true;
                }
                i += 1;
            }
            k => {
                if k == kind {
                    return true;
                }
                let len = usize::from(*opts.get(i + 1).unwrap_or(&0));
                if len < 2 {
                    return false;
                }
                i += len;
            }
        }
    }
    false
}

const TCP_FLAGS: [(&str, u8); 8] = [
    ("FIN", 0x01),
    ("SYN", 0x02),
    ("RST", 0x04),
    ("PSH", 0x08),
    ("ACK", 0x10),
    ("URG", 0x20),
    ("ALL", 0x3f),
    ("NONE", 0),
];

fn tcp_flags(v: &str) -> Option<u8> {
    let mut bits = 0;
    for f in v.split(',') {
        bits |= TCP_FLAGS.iter().find(|(n, _)| n.eq_ignore_ascii_case(f))?.1;
    }
    Some(bits)
}

/// `print_tcpf`: names in bit order, `NONE` for no flags.
pub fn print_tcp_flags(out: &mut String, mut flags: u8) {
    if flags == 0 {
        out.push_str("NONE");
        return;
    }
    let mut first = true;
    for (n, b) in &TCP_FLAGS[..6] {
        if flags & b != 0 {
            if !first {
                out.push(',');
            }
            out.push_str(n);
            first = false;
            flags &= !b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_flag_lists() {
        assert_eq!(tcp_flags("SYN,ACK"), Some(0x12));
        assert_eq!(tcp_flags("ALL"), Some(0x3f));
        assert_eq!(tcp_flags("BOGUS"), None);
        let mut s = String::new();
        print_tcp_flags(&mut s, 0x3f);
        assert_eq!(s, "FIN,SYN,RST,PSH,ACK,URG");
    }
}
