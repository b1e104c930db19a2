//! `-m conntrack` (`libxt_conntrack.c`, `xt_conntrack.c: conntrack_mt`): the packet's
//! connection: state, protocol, tuples, status, expiry, direction.

use super::{range_holds, save_range, CompileEnv, MatchExt, RuleProto};
use crate::eval::{status, Ct, CtState, Cx, Engine, Pkt};
use crate::ruleset::ext::{Cursor, Neg, PResult};
use crate::ruleset::value::{has_ports, parse_protocol, parse_uint, IpNet, Range16};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// Conntrack state bits, as `XT_CONNTRACK_STATE_*`.
pub mod ctstate {
    pub const INVALID: u8 = 1 << 0;
    pub const ESTABLISHED: u8 = 1 << 1;
    pub const RELATED: u8 = 1 << 2;
    pub const NEW: u8 = 1 << 3;
    pub const UNTRACKED: u8 = 1 << 4;
    pub const SNAT: u8 = 1 << 5;
    pub const DNAT: u8 = 1 << 6;
    /// Printing order of iptables (`print_state`).
    pub const NAMES: [(&str, u8); 7] = [
        ("INVALID", INVALID),
        ("NEW", NEW),
        ("RELATED", RELATED),
        ("ESTABLISHED", ESTABLISHED),
        ("UNTRACKED", UNTRACKED),
        ("SNAT", SNAT),
        ("DNAT", DNAT),
    ];
}

/// Conntrack status bits, as `IPS_*`.
pub mod ctstatus {
    pub const EXPECTED: u8 = 1 << 0;
    pub const SEEN_REPLY: u8 = 1 << 1;
    pub const ASSURED: u8 = 1 << 2;
    pub const CONFIRMED: u8 = 1 << 3;
    pub const NAMES: [(&str, u8); 4] = [
        ("EXPECTED", EXPECTED),
        ("SEEN_REPLY", SEEN_REPLY),
        ("ASSURED", ASSURED),
        ("CONFIRMED", CONFIRMED),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtDir {
    Original,
    Reply,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conntrack {
    pub state: Option<Neg<u8>>,
    pub proto: Option<Neg<u8>>,
    /// Boxed: rarely used, and an IPv6 prefix would make every rule's matches wider.
    pub orig_src: Option<Box<Neg<IpNet>>>,
    pub orig_dst: Option<Box<Neg<IpNet>>>,
    pub repl_src: Option<Box<Neg<IpNet>>>,
    pub repl_dst: Option<Box<Neg<IpNet>>>,
    pub orig_src_port: Option<Neg<Range16>>,
    pub orig_dst_port: Option<Neg<Range16>>,
    pub repl_src_port: Option<Neg<Range16>>,
    pub repl_dst_port: Option<Neg<Range16>>,
    pub status: Option<Neg<u8>>,
    pub expire: Option<Neg<(u32, u32)>>,
    pub dir: Option<CtDir>,
}

impl MatchExt for Conntrack {
    type Builder = Conntrack;
    type Compiled = Box<Conntrack>;
    const SIDE_EFFECT: bool = false;
    const OPTIONS: &'static [&'static str] = &[
        "ctstate",
        "ctproto",
        "ctorigsrc",
        "ctorigdst",
        "ctreplsrc",
        "ctrepldst",
        "ctorigsrcport",
        "ctorigdstport",
        "ctreplsrcport",
        "ctrepldstport",
        "ctstatus",
        "ctexpire",
        "ctdir",
    ];

    fn option(ct: &mut Conntrack, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        let name = format!("--{opt}");
        let name = name.as_str();
        macro_rules! net {
            ($slot:expr) => {{
                c.once(&$slot, name)?;
                let v = c.value_inv(name, &mut inv)?;
                let n = IpNet::parse(&v, c.family)
                    .map_or_else(|| c.err_value(format!("conntrack: bad address `{v}'")), Ok)?;
                $slot = Some(Box::new(Neg::new(inv, n)));
            }};
        }
        macro_rules! port {
            ($slot:expr) => {{
                c.once(&$slot, name)?;
                let v = c.value_inv(name, &mut inv)?;
                let r = Range16::parse(&v, Some("tcp"))
                    .map_or_else(|| c.err_value(format!("conntrack: bad port range `{v}'")), Ok)?;
                $slot = Some(Neg::new(inv, r));
            }};
        }
        match opt {
            "ctstate" => {
                c.once(&ct.state, name)?;
                let v = c.value_inv(name, &mut inv)?;
                let bits =
                    parse_ctstate(&v, true).map_or_else(|| c.err_value(format!("conntrack: bad ctstate `{v}'")), Ok)?;
                ct.state = Some(Neg::new(inv, bits));
            }
            "ctproto" => {
                c.once(&ct.proto, name)?;
                let v = c.value_inv(name, &mut inv)?;
                let p = parse_protocol(&v).filter(|p| *p != 0).map_or_else(
                    || c.err_value(format!("conntrack: bad --ctproto `{v}' (rule would never match)")),
                    Ok,
                )?;
                ct.proto = Some(Neg::new(inv, p));
            }
            "ctorigsrc" => net!(ct.orig_src),
            "ctorigdst" => net!(ct.orig_dst),
            "ctreplsrc" => net!(ct.repl_src),
            "ctrepldst" => net!(ct.repl_dst),
            "ctorigsrcport" => port!(ct.orig_src_port),
            "ctorigdstport" => port!(ct.orig_dst_port),
            "ctreplsrcport" => port!(ct.repl_src_port),
            "ctrepldstport" => port!(ct.repl_dst_port),
            "ctstatus" => {
                c.once(&ct.status, name)?;
                let v = c.value_inv(name, &mut inv)?;
                let mut bits = 0;
                for s in v.split(',') {
                    if s.eq_ignore_ascii_case("NONE") {
                        continue;
                    }
                    let Some((_, b)) = ctstatus::NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) else {
                        return c.err_value(format!("conntrack: bad ctstatus `{s}'"));
                    };
                    bits |= b;
                }
                ct.status = Some(Neg::new(inv, bits));
            }
            "ctexpire" => {
                c.once(&ct.expire, name)?;
                let v = c.value_inv(name, &mut inv)?;
                let one = |s: &str| parse_uint(s, 0, u32::MAX.into()).map(|v| v as u32);
                let r = match v.split_once(':') {
                    Some((a, b)) => one(a).zip(one(b)),
                    None => one(&v).map(|x| (x, x)),
                }
                .filter(|(a, b)| a <= b)
                .map_or_else(|| c.err_value(format!("conntrack: bad --ctexpire `{v}'")), Ok)?;
                ct.expire = Some(Neg::new(inv, r));
            }
            "ctdir" => {
                c.no_invert(inv, name)?;
                c.once(&ct.dir, name)?;
                let v = c.value(name)?;
                ct.dir = Some(match v.to_ascii_uppercase().as_str() {
                    "ORIGINAL" => CtDir::Original,
                    "REPLY" => CtDir::Reply,
                    _ => return c.err_value(format!("conntrack: bad --ctdir `{v}' (ORIGINAL or REPLY)")),
                });
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn finish(ct: Conntrack, _: RuleProto) -> Result<Conntrack, String> {
        if ct == Conntrack::default() {
            return Err("conntrack: at least one option is required".into());
        }
        let ports = [ct.orig_src_port, ct.orig_dst_port, ct.repl_src_port, ct.repl_dst_port];
        if ports.iter().any(Option::is_some) && ct.proto.is_some_and(|p| p.inv || !has_ports(p.v)) {
            return Err("conntrack: port options need --ctproto tcp, udp, sctp, dccp or udplite".into());
        }
        Ok(ct)
    }

    fn save(&self, out: &mut String) {
        let ct = self;
        if let Some(s) = ct.state {
            let _ = write!(out, "{} --ctstate ", s.bang());
            print_ctstate(out, s.v);
        }
        if let Some(p) = ct.proto {
            let _ = write!(out, "{} --ctproto {}", p.bang(), p.v);
        }
        for (opt, a) in [
            ("ctorigsrc", &ct.orig_src),
            ("ctorigdst", &ct.orig_dst),
            ("ctreplsrc", &ct.repl_src),
            ("ctrepldst", &ct.repl_dst),
        ] {
            if let Some(a) = a {
                // `conntrack_dump_addr`: the mask as xtables_ip(6)mask_to_numeric prints it,
                // nothing for a single address.
                let _ = write!(out, "{} --{opt} {}", a.bang(), a.v.addr());
                if !a.v.is_host() {
                    match (a.v.prefix_len(), a.v) {
                        (Some(l), _) => {
                            let _ = write!(out, "/{l}");
                        }
                        (None, IpNet::V4(n)) => {
                            let _ = write!(out, "/{}", Ipv4Addr::from(n.mask));
                        }
                        (None, IpNet::V6(n)) => {
                            let _ = write!(out, "/{}", std::net::Ipv6Addr::from(n.mask));
                        }
                    }
                }
            }
        }
        save_range(out, "ctorigsrcport", &ct.orig_src_port);
        save_range(out, "ctorigdstport", &ct.orig_dst_port);
        save_range(out, "ctreplsrcport", &ct.repl_src_port);
        save_range(out, "ctrepldstport", &ct.repl_dst_port);
        if let Some(s) = ct.status {
            let names: Vec<&str> = ctstatus::NAMES
                .iter()
                .filter(|(_, b)| s.v & b != 0)
                .map(|(n, _)| *n)
                .collect();
            let list = if names.is_empty() {
                "NONE".to_string()
            } else {
                names.join(",")
            };
            let _ = write!(out, "{} --ctstatus {list}", s.bang());
        }
        if let Some(e) = ct.expire {
            let _ = write!(out, "{} --ctexpire {}", e.bang(), e.v.0);
            if e.v.0 != e.v.1 {
                let _ = write!(out, ":{}", e.v.1);
            }
        }
        if let Some(d) = ct.dir {
            out.push_str(match d {
                CtDir::Original => " --ctdir ORIGINAL",
                CtDir::Reply => " --ctdir REPLY",
            });
        }
    }

    fn compile(&self, _: &CompileEnv) -> Box<Conntrack> {
        Box::new(self.clone())
    }

    fn test(c: &Box<Conntrack>, p: &Pkt, _: &mut Cx, _: &Engine) -> bool {
        conntrack_mt(c, p)
    }
}

/// The conntrack state bits of the packet (`xt_conntrack.c: conntrack_mt`).
pub(super) fn state_bits(ct: &Ct) -> u8 {
    match ct {
        Ct::Invalid => ctstate::INVALID,
        Ct::Untracked => ctstate::UNTRACKED,
        Ct::Tracked(c) => {
            let mut b = match c.state {
                CtState::New => ctstate::NEW,
                CtState::Established => ctstate::ESTABLISHED,
                CtState::Related => ctstate::RELATED,
            };
            if c.status & status::SRC_NAT != 0 {
                b |= ctstate::SNAT;
            }
            if c.status & status::DST_NAT != 0 {
                b |= ctstate::DNAT;
            }
            b
        }
    }
}

fn conntrack_mt(c: &Conntrack, p: &Pkt) -> bool {
    let bits = state_bits(&p.ct);
    if let Some(s) = c.state {
        if !s.holds(bits & s.v != 0) {
            return false;
        }
    }
    let Ct::Tracked(ct) = &p.ct else {
        // Without a connection only a pure state test can match (`conntrack_mt`).
        return c.proto.is_none()
            && c.orig_src.is_none()
            && c.orig_dst.is_none()
            && c.repl_src.is_none()
            && c.repl_dst.is_none()
            && c.orig_src_port.is_none()
            && c.orig_dst_port.is_none()
            && c.repl_src_port.is_none()
            && c.repl_dst_port.is_none()
            && c.status.is_none()
            && c.expire.is_none()
            && c.dir.is_none();
    };
    if let Some(pr) = c.proto {
        if !pr.holds(ct.proto == pr.v) {
            return false;
        }
    }
    for (n, a) in [
        (&c.orig_src, ct.orig.src),
        (&c.orig_dst, ct.orig.dst),
        (&c.repl_src, ct.reply.src),
        (&c.repl_dst, ct.reply.dst),
    ] {
        if !n.as_deref().is_none_or(|n| n.holds(n.v.contains(a))) {
            return false;
        }
    }
    for (r, port) in [
        (&c.orig_src_port, ct.orig.sport),
        (&c.orig_dst_port, ct.orig.dport),
        (&c.repl_src_port, ct.reply.sport),
        (&c.repl_dst_port, ct.reply.dport),
    ] {
        if !range_holds(r, port) {
            return false;
        }
    }
    if let Some(s) = c.status {
        if !s.holds(u16::from(s.v) & ct.status != 0) {
            return false;
        }
    }
    if let Some(e) = c.expire {
        if !e.holds(e.v.0 <= ct.expires_in && ct.expires_in <= e.v.1) {
            return false;
        }
    }
    match c.dir {
        Some(CtDir::Original) => !ct.reply_dir,
        Some(CtDir::Reply) => ct.reply_dir,
        None => true,
    }
}

/// `INVALID,NEW,...`; `full` allows conntrack's extra SNAT/DNAT pseudo-states.
pub(super) fn parse_ctstate(v: &str, full: bool) -> Option<u8> {
    let mut bits = 0;
    for s in v.split(',') {
        let (_, b) = ctstate::NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s))?;
        if !full && (*b == ctstate::SNAT || *b == ctstate::DNAT) {
            return None;
        }
        bits |= b;
    }
    Some(bits)
}

pub(super) fn print_ctstate(out: &mut String, bits: u8) {
    let names: Vec<&str> = ctstate::NAMES
        .iter()
        .filter(|(_, b)| bits & b != 0)
        .map(|(n, _)| *n)
        .collect();
    out.push_str(&names.join(","));
}
