//! The `-m` match extensions: their options, checks and canonical `iptables-save` form.
//!
//! Each extension follows its libxtables counterpart (`extensions/libxt_*.c`) for what it
//! accepts and prints; the semantics live in `eval`. Options are parsed by `option()`, which
//! returns `Ok(false)` for an option that is not this match's, so that the rule parser can
//! offer it to another extension.

use super::ext::{bang, Cursor, Neg, PResult};
use super::value::{parse_ipv4, parse_uint, save_string, Ipv4Net, Range16};
use super::{hooks, HookMask};
use std::fmt::Write;
use std::net::Ipv4Addr;

/// One `-m` match of a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    Tcp(Tcp),
    Udp(Ports),
    Sctp(Ports),
    Icmp(Icmp),
    Multiport(Multiport),
    Comment(String),
    AddrType(AddrType),
    Statistic(Statistic),
    Conntrack(Conntrack),
    State(Neg<u8>),
    Mark(Neg<MarkMask>),
    ConnMark(Neg<MarkMask>),
    IpRange(IpRange),
    Limit(Limit),
    Length(Neg<Range16>),
    Ttl(Ttl),
    Set(SetMatch),
    PktType(Neg<PktType>),
    Recent(Recent),
    Nfacct(String),
    /// `-m wasm --plugin NAME [--args TEXT]`, negatable.
    Wasm(Plugin),
}

/// A rule's use of a wasm plugin. `handle` is filled in when the ruleset is validated
/// against the loaded plugins.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub inv: bool,
    pub name: String,
    pub args: String,
    pub handle: Option<u32>,
}

impl PartialEq for Plugin {
    fn eq(&self, o: &Self) -> bool {
        (self.inv, &self.name, &self.args) == (o.inv, &o.name, &o.args)
    }
}

impl Plugin {
    /// ` --plugin NAME [--args TEXT]`, with `!` for a negated match.
    pub fn save(&self, out: &mut String) {
        let _ = write!(out, "{} --plugin {}", bang(self.inv), save_string(&self.name));
        if !self.args.is_empty() {
            let _ = write!(out, " --args {}", save_string(&self.args));
        }
    }

    /// Offers `--plugin`/`--args` to a plugin use; `Ok(false)` when not one of them.
    pub fn option(slot: &mut Plugin, opt: &str, inv: bool, c: &mut Cursor, negatable: bool) -> PResult<bool> {
        match opt {
            "plugin" => {
                if !negatable {
                    c.no_invert(inv, "--plugin")?;
                }
                if !slot.name.is_empty() {
                    return c.err("multiple --plugin options not allowed");
                }
                let mut inv = inv;
                let v = c.value_inv("--plugin", &mut inv)?;
                if inv && !negatable {
                    return c.err("--plugin cannot be negated in a target");
                }
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                    return c.err_value(format!("bad plugin name `{v}'"));
                }
                slot.inv = inv;
                slot.name = v;
            }
            "args" => {
                c.no_invert(inv, "--args")?;
                let v = c.raw_value("--args")?;
                if v.len() > 4096 {
                    return c.err_value("--args is longer than 4096 bytes");
                }
                slot.args = v;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tcp {
    pub sport: Option<Neg<Range16>>,
    pub dport: Option<Neg<Range16>>,
    /// (mask, comparison) over FIN SYN RST PSH ACK URG.
    pub flags: Option<Neg<(u8, u8)>>,
    pub option: Option<Neg<u8>>,
}

/// Source and destination port matches (`udp`, `sctp`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ports {
    pub sport: Option<Neg<Range16>>,
    pub dport: Option<Neg<Range16>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmp {
    pub inv: bool,
    /// 0xff with codes 0–255 means any type.
    pub typ: u8,
    pub code: (u8, u8),
}

impl Default for Icmp {
    fn default() -> Self {
        Icmp {
            inv: false,
            typ: 0xff,
            code: (0, 0xff),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSide {
    Src,
    Dst,
    Either,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Multiport {
    pub inv: bool,
    pub side: PortSide,
    pub ports: Vec<Range16>,
}

/// Bitmask of `RTN_*` address types (bit n = type n).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddrType {
    pub src: Option<Neg<u16>>,
    pub dst: Option<Neg<u16>>,
    pub limit_iface_in: bool,
    pub limit_iface_out: bool,
}

/// Address types in the kernel's `RTN_*` order; the index is the bit.
pub const ADDR_TYPES: [&str; 12] = [
    "UNSPEC",
    "UNICAST",
    "LOCAL",
    "BROADCAST",
    "ANYCAST",
    "MULTICAST",
    "BLACKHOLE",
    "UNREACHABLE",
    "PROHIBIT",
    "THROW",
    "NAT",
    "XRESOLVE",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatisticMode {
    /// Probability in units of 2^-31, as the kernel stores it.
    Random { probability: u32 },
    /// Every `every`-th packet, counter starting at `packet`.
    Nth { every: u32, packet: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statistic {
    pub inv: bool,
    pub mode: StatisticMode,
}

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
    pub orig_src: Option<Neg<Ipv4Net>>,
    pub orig_dst: Option<Neg<Ipv4Net>>,
    pub repl_src: Option<Neg<Ipv4Net>>,
    pub repl_dst: Option<Neg<Ipv4Net>>,
    pub orig_src_port: Option<Neg<Range16>>,
    pub orig_dst_port: Option<Neg<Range16>>,
    pub repl_src_port: Option<Neg<Range16>>,
    pub repl_dst_port: Option<Neg<Range16>>,
    pub status: Option<Neg<u8>>,
    pub expire: Option<Neg<(u32, u32)>>,
    pub dir: Option<CtDir>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkMask {
    pub value: u32,
    pub mask: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpRange {
    pub src: Option<Neg<(Ipv4Addr, Ipv4Addr)>>,
    pub dst: Option<Neg<(Ipv4Addr, Ipv4Addr)>>,
}

/// A token bucket: `avg` is the refill period per token in 1/10000 s (`XT_LIMIT_SCALE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub avg: u32,
    pub burst: u32,
}

pub const LIMIT_SCALE: u32 = 10_000;

impl Default for Limit {
    fn default() -> Self {
        // 3/hour, burst 5: iptables' defaults.
        Limit {
            avg: LIMIT_SCALE * 3600 / 3,
            burst: 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    Eq(u8),
    Ne(u8),
    Lt(u8),
    Gt(u8),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SetMatch {
    pub inv: bool,
    pub name: String,
    /// Per dimension: `true` = source, `false` = destination.
    pub dirs: Vec<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PktType {
    Unicast,
    Broadcast,
    Multicast,
    OtherHost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecentCmd {
    Set,
    Check,
    Update,
    Remove,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recent {
    pub inv: bool,
    pub cmd: RecentCmd,
    pub name: String,
    pub seconds: u32,
    pub reap: bool,
    pub hitcount: u32,
    pub rttl: bool,
    pub mask: Ipv4Addr,
    /// `true` = `--rsource` (the default), `false` = `--rdest`.
    pub source: bool,
}

/// The largest `--hitcount` the kernel accepts (`XT_RECENT_MAX_NSTAMPS - 1`).
pub const RECENT_MAX_HITCOUNT: u32 = 255;

/// What the rule parser knows when it checks a match: the rule's `-p`.
#[derive(Debug, Clone, Copy)]
pub struct RuleProto {
    pub proto: u8,
    pub inv: bool,
}

impl RuleProto {
    /// The protocol when the rule is restricted to exactly one.
    pub fn exact(&self) -> Option<u8> {
        (!self.inv && self.proto != 0).then_some(self.proto)
    }
}

/// Half-built matches: extensions whose options are still being read.
#[derive(Debug, Clone)]
pub enum Partial {
    Done(Match),
    Multiport(Option<Multiport>),
    Statistic {
        inv: bool,
        mode: Option<String>,
        probability: Option<u32>,
        every: Option<u32>,
        packet: Option<u32>,
    },
    Comment(Option<String>),
    AddrType(AddrType),
    Conntrack(Conntrack),
    State(Option<Neg<u8>>),
    Mark(Option<Neg<MarkMask>>, bool),
    IpRange(IpRange),
    Length(Option<Neg<Range16>>),
    Ttl(Option<Ttl>),
    Set(Option<SetMatch>),
    PktType(Option<Neg<PktType>>),
    Recent {
        r: Recent,
        cmd: Option<RecentCmd>,
        side: Option<bool>,
    },
    Nfacct(Option<String>),
    Limit(Limit),
    Wasm(Plugin),
}

impl Partial {
    /// Starts the match named by `-m NAME`; `None` for an unknown extension.
    pub fn start(name: &str) -> Option<Partial> {
        Some(match name {
            "tcp" => Partial::Done(Match::Tcp(Tcp::default())),
            "udp" => Partial::Done(Match::Udp(Ports::default())),
            "sctp" => Partial::Done(Match::Sctp(Ports::default())),
            "icmp" => Partial::Done(Match::Icmp(Icmp::default())),
            "multiport" => Partial::Multiport(None),
            "comment" => Partial::Comment(None),
            "addrtype" => Partial::AddrType(AddrType::default()),
            "statistic" => Partial::Statistic {
                inv: false,
                mode: None,
                probability: None,
                every: None,
                packet: None,
            },
            "conntrack" => Partial::Conntrack(Conntrack::default()),
            "state" => Partial::State(None),
            "mark" => Partial::Mark(None, false),
            "connmark" => Partial::Mark(None, true),
            "iprange" => Partial::IpRange(IpRange::default()),
            "limit" => Partial::Limit(Limit::default()),
            "length" => Partial::Length(None),
            "ttl" => Partial::Ttl(None),
            "set" => Partial::Set(None),
            "pkttype" => Partial::PktType(None),
            "recent" => Partial::Recent {
                r: Recent {
                    inv: false,
                    cmd: RecentCmd::Check,
                    name: "DEFAULT".into(),
                    seconds: 0,
                    reap: false,
                    hitcount: 0,
                    rttl: false,
                    mask: Ipv4Addr::BROADCAST,
                    source: true,
                },
                cmd: None,
                side: None,
            },
            "nfacct" => Partial::Nfacct(None),
            "wasm" => Partial::Wasm(Plugin {
                inv: false,
                name: String::new(),
                args: String::new(),
                handle: None,
            }),
            _ => return None,
        })
    }

    /// Offers the option `opt` (already stripped of `--`) to this match. `Ok(false)`: not ours.
    pub fn option(&mut self, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
        let name = format!("--{opt}");
        let name = name.as_str();
        match self {
            Partial::Done(Match::Tcp(t)) => match opt {
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
                    let mask =
                        tcp_flags(&mask).map_or_else(|| c.err_value(format!("unknown TCP flag `{mask}'")), Ok)?;
                    let cmp = c.value(name)?;
                    let cmp = tcp_flags(&cmp).map_or_else(|| c.err_value(format!("unknown TCP flag `{cmp}'")), Ok)?;
                    t.flags = Some(Neg::new(inv, (mask, cmp)));
                }
                "tcp-option" => {
                    c.once(&t.option, name)?;
                    let v = c.value_inv(name, &mut inv)?;
                    let n =
                        parse_uint(&v, 1, 255).map_or_else(|| c.err_value(format!("invalid TCP option `{v}'")), Ok)?;
                    t.option = Some(Neg::new(inv, n as u8));
                }
                _ => return Ok(false),
            },
            Partial::Done(Match::Udp(p)) => return port_option(p, "udp", opt, inv, c),
            Partial::Done(Match::Sctp(p)) => {
                if opt == "chunk-types" {
                    return c.err("sctp --chunk-types is not supported by rtrouter");
                }
                return port_option(p, "sctp", opt, inv, c);
            }
            Partial::Done(Match::Icmp(i)) => {
                if opt != "icmp-type" {
                    return Ok(false);
                }
                let v = c.value_inv(name, &mut inv)?;
                let (typ, code) =
                    parse_icmp_type(&v).map_or_else(|| c.err_value(format!("invalid ICMP type `{v}'")), Ok)?;
                *i = Icmp { inv, typ, code };
            }
            Partial::Done(_) => return Ok(false),
            Partial::Multiport(m) => {
                let side = match opt {
                    "sports" | "source-ports" => PortSide::Src,
                    "dports" | "destination-ports" => PortSide::Dst,
                    "ports" => PortSide::Either,
                    _ => return Ok(false),
                };
                if m.is_some() {
                    return c.err("multiport can only have one option");
                }
                let v = c.value_inv(name, &mut inv)?;
                let mut ports = Vec::new();
                let mut slots = 0;
                for part in v.split(',') {
                    let r = Range16::parse(part, Some("tcp"))
                        .filter(|_| !part.is_empty())
                        .map_or_else(|| c.err_value(format!("invalid port/service `{part}' specified")), Ok)?;
                    slots += if part.contains(':') { 2 } else { 1 };
                    ports.push(r);
                }
                if slots > 15 {
                    return c.err_value("too many ports specified (multiport takes at most 15)");
                }
                *m = Some(Multiport { inv, side, ports });
            }
            Partial::Comment(s) => {
                if opt != "comment" {
                    return Ok(false);
                }
                c.no_invert(inv, name)?;
                c.once(s, name)?;
                let v = c.raw_value(name)?;
                if v.len() > 255 {
                    return c.err_value("comment too long: at most 255 characters");
                }
                *s = Some(v);
            }
            Partial::AddrType(a) => match opt {
                "src-type" | "dst-type" => {
                    let v = c.value_inv(name, &mut inv)?;
                    let mut mask = 0u16;
                    for t in v.split(',') {
                        let Some(bit) = ADDR_TYPES.iter().position(|n| n.eq_ignore_ascii_case(t)) else {
                            return c.err_value(format!("addrtype: unknown address type `{t}'"));
                        };
                        mask |= 1 << bit;
                    }
                    let slot = if opt == "src-type" { &mut a.src } else { &mut a.dst };
                    c.once(slot, name)?;
                    *slot = Some(Neg::new(inv, mask));
                }
                "limit-iface-in" => a.limit_iface_in = true,
                "limit-iface-out" => a.limit_iface_out = true,
                _ => return Ok(false),
            },
            Partial::Statistic {
                inv: sinv,
                mode,
                probability,
                every,
                packet,
            } => {
                if inv {
                    *sinv = true;
                }
                match opt {
                    "mode" => {
                        let v = c.value(name)?;
                        if v != "random" && v != "nth" {
                            return c.err_value(format!("statistic: bad mode `{v}'"));
                        }
                        *mode = Some(v);
                    }
                    "probability" => {
                        let v = c.value_inv(name, sinv)?;
                        let p: f64 = v.parse().ok().filter(|p: &f64| (0.0..=1.0).contains(p)).map_or_else(
                            || c.err_value(format!("statistic: --probability `{v}' is not between 0 and 1")),
                            Ok,
                        )?;
                        *probability = Some((p * 2147483648.0).round() as u32);
                    }
                    "every" => {
                        let v = c.value_inv(name, sinv)?;
                        let n = parse_uint(&v, 1, u32::MAX.into())
                            .map_or_else(|| c.err_value(format!("statistic: bad --every `{v}'")), Ok)?;
                        *every = Some(n as u32);
                    }
                    "packet" => {
                        let v = c.value_inv(name, sinv)?;
                        let n = parse_uint(&v, 0, u32::MAX.into())
                            .map_or_else(|| c.err_value(format!("statistic: bad --packet `{v}'")), Ok)?;
                        *packet = Some(n as u32);
                    }
                    _ => return Ok(false),
                }
            }
            Partial::Conntrack(ct) => return conntrack_option(ct, opt, inv, c),
            Partial::State(s) => {
                if opt != "state" {
                    return Ok(false);
                }
                c.once(s, name)?;
                let v = c.value_inv(name, &mut inv)?;
                let bits = parse_ctstate(&v, false).map_or_else(|| c.err_value(format!("bad state `{v}'")), Ok)?;
                *s = Some(Neg::new(inv, bits));
            }
            Partial::Mark(m, _) => {
                if opt != "mark" {
                    return Ok(false);
                }
                c.once(m, name)?;
                let v = c.value_inv(name, &mut inv)?;
                let mm = parse_mark_mask(&v).map_or_else(|| c.err_value(format!("bad mark value `{v}'")), Ok)?;
                *m = Some(Neg::new(inv, mm));
            }
            Partial::IpRange(r) => {
                let slot = match opt {
                    "src-range" => &mut r.src,
                    "dst-range" => &mut r.dst,
                    _ => return Ok(false),
                };
                c.once(slot, name)?;
                let v = c.value_inv(name, &mut inv)?;
                let range = v
                    .split_once('-')
                    .and_then(|(a, b)| Some((parse_ipv4(a)?, parse_ipv4(b)?)))
                    .map_or_else(
                        || c.err_value(format!("iprange: bad range `{v}' (expected ADDR-ADDR)")),
                        Ok,
                    )?;
                *slot = Some(Neg::new(inv, range));
            }
            Partial::Limit(l) => match opt {
                "limit" => {
                    c.no_invert(inv, name)?;
                    let v = c.value(name)?;
                    l.avg = parse_rate(&v).map_or_else(|| c.err_value(format!("bad rate `{v}'")), Ok)?;
                }
                "limit-burst" => {
                    c.no_invert(inv, name)?;
                    let v = c.value(name)?;
                    l.burst = parse_uint(&v, 0, 10_000)
                        .map_or_else(|| c.err_value(format!("bad --limit-burst `{v}'")), Ok)?
                        as u32;
                }
                _ => return Ok(false),
            },
            Partial::Length(l) => {
                if opt != "length" {
                    return Ok(false);
                }
                c.once(l, name)?;
                let v = c.value_inv(name, &mut inv)?;
                let r = Range16::parse(&v, None).map_or_else(|| c.err_value(format!("length: bad range `{v}'")), Ok)?;
                *l = Some(Neg::new(inv, r));
            }
            Partial::Ttl(t) => {
                if !matches!(opt, "ttl-eq" | "ttl-lt" | "ttl-gt") {
                    return Ok(false);
                }
                if t.is_some() {
                    return c.err("ttl: can't specify TTL option twice");
                }
                let v = c.value_inv(name, &mut inv)?;
                let n =
                    parse_uint(&v, 0, 255).map_or_else(|| c.err_value(format!("ttl: invalid TTL `{v}'")), Ok)? as u8;
                *t = Some(match (opt, inv) {
                    ("ttl-eq", false) => Ttl::Eq(n),
                    ("ttl-eq", true) => Ttl::Ne(n),
                    (_, true) => return c.err("ttl: unexpected `!' (only --ttl-eq can be negated)"),
                    ("ttl-lt", _) => Ttl::Lt(n),
                    _ => Ttl::Gt(n),
                });
            }
            Partial::Set(s) => {
                if opt != "match-set" {
                    return Ok(false);
                }
                c.once(s, name)?;
                let set = c.value_inv(name, &mut inv)?;
                let Some(dirs) = c.next_word() else {
                    return c.err("--match-set requires two arguments: NAME src|dst[,...]");
                };
                let mut v = Vec::new();
                for d in dirs.split(',') {
                    match d {
                        "src" => v.push(true),
                        "dst" => v.push(false),
                        _ => return c.err_value(format!("set: bad direction `{d}' (src or dst)")),
                    }
                }
                if v.len() > 6 {
                    return c.err_value("set: at most 6 dimensions");
                }
                *s = Some(SetMatch {
                    inv,
                    name: set,
                    dirs: v,
                });
            }
            Partial::PktType(p) => {
                if opt != "pkt-type" {
                    return Ok(false);
                }
                c.once(p, name)?;
                let v = c.value_inv(name, &mut inv)?;
                let t = match v.to_ascii_lowercase().as_str() {
                    "unicast" | "host" => PktType::Unicast,
                    "broadcast" => PktType::Broadcast,
                    "multicast" => PktType::Multicast,
                    "otherhost" => PktType::OtherHost,
                    _ => return c.err_value(format!("pkttype: bad packet type `{v}'")),
                };
                *p = Some(Neg::new(inv, t));
            }
            Partial::Recent { r, cmd, side } => {
                let set_cmd = |cmd: &mut Option<RecentCmd>, new: RecentCmd, c: &Cursor| {
                    if cmd.is_some() {
                        return c.err("recent: only one of --set, --rcheck, --update or --remove allowed");
                    }
                    *cmd = Some(new);
                    Ok(())
                };
                if inv {
                    r.inv = true;
                }
                match opt {
                    "set" => set_cmd(cmd, RecentCmd::Set, c)?,
                    "rcheck" => set_cmd(cmd, RecentCmd::Check, c)?,
                    "update" => set_cmd(cmd, RecentCmd::Update, c)?,
                    "remove" => set_cmd(cmd, RecentCmd::Remove, c)?,
                    "seconds" => {
                        let v = c.value(name)?;
                        r.seconds = parse_uint(&v, 1, u32::MAX.into())
                            .map_or_else(|| c.err_value(format!("recent: bad --seconds `{v}'")), Ok)?
                            as u32;
                    }
                    "hitcount" => {
                        let v = c.value(name)?;
                        r.hitcount = parse_uint(&v, 1, RECENT_MAX_HITCOUNT.into()).map_or_else(
                            || c.err_value(format!("recent: --hitcount `{v}' must be 1..{RECENT_MAX_HITCOUNT}")),
                            Ok,
                        )? as u32;
                    }
                    "reap" => r.reap = true,
                    "rttl" => r.rttl = true,
                    "name" => {
                        let v = c.value(name)?;
                        if v.is_empty() || v.len() > 200 || !v.bytes().all(|b| b.is_ascii_graphic()) {
                            return c.err_value(format!("recent: bad list name `{v}'"));
                        }
                        r.name = v;
                    }
                    "mask" => {
                        let v = c.value(name)?;
                        r.mask = parse_ipv4(&v).map_or_else(|| c.err_value(format!("recent: bad --mask `{v}'")), Ok)?;
                    }
                    "rsource" | "rdest" => {
                        if side.is_some() {
                            return c.err("recent: only one of --rsource or --rdest allowed");
                        }
                        *side = Some(opt == "rsource");
                    }
                    _ => return Ok(false),
                }
            }
            Partial::Wasm(w) => return Plugin::option(w, opt, inv, c, true),
            Partial::Nfacct(n) => {
                if opt != "nfacct-name" {
                    return Ok(false);
                }
                c.no_invert(inv, name)?;
                c.once(n, name)?;
                let v = c.value(name)?;
                if v.is_empty() || v.len() > 31 {
                    return c.err_value("nfacct: name must be 1 to 31 characters");
                }
                *n = Some(v);
            }
        }
        Ok(true)
    }

    /// Checks the completed match (`xtables_fcheck` plus the kernel's `checkentry`).
    pub fn finish(self, p: RuleProto) -> Result<Match, String> {
        let need_proto = |want: u8, ext: &str| -> Result<(), String> {
            if p.exact() == Some(want) {
                Ok(())
            } else {
                Err(format!("match `{ext}' is only valid with `-p {ext}'"))
            }
        };
        Ok(match self {
            Partial::Done(m) => {
                match &m {
                    Match::Tcp(_) => need_proto(6, "tcp")?,
                    Match::Udp(_) => need_proto(17, "udp")?,
                    Match::Sctp(_) => need_proto(132, "sctp")?,
                    Match::Icmp(_) => need_proto(1, "icmp")?,
                    _ => {}
                }
                m
            }
            Partial::Multiport(m) => {
                let m = m.ok_or("multiport: one of --sports, --dports or --ports is required")?;
                if !p.exact().is_some_and(super::value::has_ports) {
                    return Err("multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'".into());
                }
                Match::Multiport(m)
            }
            Partial::Statistic {
                inv,
                mode,
                probability,
                every,
                packet,
            } => {
                let mode = match mode.as_deref() {
                    None => return Err("statistic: --mode is required".into()),
                    Some("random") => {
                        if every.is_some() || packet.is_some() {
                            return Err("statistic: --every and --packet can only be used in nth mode".into());
                        }
                        StatisticMode::Random {
                            probability: probability.ok_or("statistic: random mode needs --probability")?,
                        }
                    }
                    _ => {
                        if probability.is_some() {
                            return Err("statistic: --probability can only be used in random mode".into());
                        }
                        let every = every.ok_or("statistic: nth mode needs --every")?;
                        let packet = packet.unwrap_or(0);
                        if packet >= every {
                            return Err("statistic: --packet p must be 0 <= p <= n-1".into());
                        }
                        StatisticMode::Nth { every, packet }
                    }
                };
                Match::Statistic(Statistic { inv, mode })
            }
            Partial::Comment(s) => Match::Comment(s.ok_or("comment: --comment is required")?),
            Partial::AddrType(a) => {
                if a.src.is_none() && a.dst.is_none() {
                    return Err("addrtype: you must specify --src-type or --dst-type".into());
                }
                if a.limit_iface_in && a.limit_iface_out {
                    return Err("addrtype: you can't specify both --limit-iface-in and --limit-iface-out".into());
                }
                Match::AddrType(a)
            }
            Partial::Conntrack(ct) => {
                if ct == Conntrack::default() {
                    return Err("conntrack: at least one option is required".into());
                }
                let ports = [ct.orig_src_port, ct.orig_dst_port, ct.repl_src_port, ct.repl_dst_port];
                if ports.iter().any(Option::is_some) && ct.proto.is_some_and(|p| p.inv || !super::value::has_ports(p.v))
                {
                    return Err("conntrack: port options need --ctproto tcp, udp, sctp, dccp or udplite".into());
                }
                Match::Conntrack(ct)
            }
            Partial::State(s) => Match::State(s.ok_or("state: --state is required")?),
            Partial::Mark(m, conn) => {
                let m = m.ok_or("mark: --mark is required")?;
                if conn {
                    Match::ConnMark(m)
                } else {
                    Match::Mark(m)
                }
            }
            Partial::IpRange(r) => {
                if r.src.is_none() && r.dst.is_none() {
                    return Err("iprange: --src-range or --dst-range is required".into());
                }
                Match::IpRange(r)
            }
            Partial::Limit(l) => Match::Limit(l),
            Partial::Length(l) => Match::Length(l.ok_or("length: --length is required")?),
            Partial::Ttl(t) => Match::Ttl(t.ok_or("ttl: one of --ttl-eq, --ttl-lt or --ttl-gt is required")?),
            Partial::Set(s) => Match::Set(s.ok_or("set: --match-set is required")?),
            Partial::PktType(t) => Match::PktType(t.ok_or("pkttype: --pkt-type is required")?),
            Partial::Recent { mut r, cmd, side } => {
                r.cmd = cmd.ok_or("recent: one of --set, --rcheck, --update or --remove is required")?;
                r.source = side.unwrap_or(true);
                let checks = matches!(r.cmd, RecentCmd::Check | RecentCmd::Update);
                if (r.seconds != 0 || r.hitcount != 0 || r.rttl) && !checks {
                    return Err("recent: --seconds, --hitcount and --rttl need --rcheck or --update".into());
                }
                if r.reap && r.seconds == 0 {
                    return Err("recent: --reap needs --seconds".into());
                }
                Match::Recent(r)
            }
            Partial::Nfacct(n) => Match::Nfacct(n.ok_or("nfacct: --nfacct-name is required")?),
            Partial::Wasm(w) => {
                if w.name.is_empty() {
                    return Err("wasm: --plugin NAME is required".into());
                }
                Match::Wasm(w)
            }
        })
    }
}

fn port_option(p: &mut Ports, proto: &str, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
    let slot = match opt {
        "sport" | "source-port" => &mut p.sport,
        "dport" | "destination-port" => &mut p.dport,
        _ => return Ok(false),
    };
    let name = format!("--{opt}");
    c.once(slot, &name)?;
    let v = c.value_inv(&name, &mut inv)?;
    // libxt_udp keeps a reversed range (it then matches nothing); libxt_sctp refuses it.
    let r = if proto == "udp" {
        Range16::parse_reversible(&v, Some(proto))
    } else {
        Range16::parse(&v, Some(proto))
    };
    let r = r.map_or_else(|| c.err_value(format!("invalid port/service `{v}' specified")), Ok)?;
    *slot = Some(Neg::new(inv, r));
    Ok(true)
}

fn conntrack_option(ct: &mut Conntrack, opt: &str, mut inv: bool, c: &mut Cursor) -> PResult<bool> {
    let name = format!("--{opt}");
    let name = name.as_str();
    macro_rules! net {
        ($slot:expr) => {{
            c.once(&$slot, name)?;
            let v = c.value_inv(name, &mut inv)?;
            let n = Ipv4Net::parse(&v).map_or_else(|| c.err_value(format!("conntrack: bad address `{v}'")), Ok)?;
            $slot = Some(Neg::new(inv, n));
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
            let p = super::value::parse_protocol(&v).filter(|p| *p != 0).map_or_else(
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

/// `INVALID,NEW,...`; `full` allows conntrack's extra SNAT/DNAT pseudo-states.
fn parse_ctstate(v: &str, full: bool) -> Option<u8> {
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

fn print_ctstate(out: &mut String, bits: u8) {
    let names: Vec<&str> = ctstate::NAMES
        .iter()
        .filter(|(_, b)| bits & b != 0)
        .map(|(n, _)| *n)
        .collect();
    out.push_str(&names.join(","));
}

/// `VALUE[/MASK]`; the mask defaults to all ones.
pub fn parse_mark_mask(v: &str) -> Option<MarkMask> {
    let max = u32::MAX.into();
    let (value, mask) = match v.split_once('/') {
        Some((a, b)) => (parse_uint(a, 0, max)?, parse_uint(b, 0, max)?),
        None => (parse_uint(v, 0, max)?, max),
    };
    Some(MarkMask {
        value: value as u32,
        mask: mask as u32,
    })
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

/// ICMP type names with their type and code range, as libipt_icmp lists them.
const ICMP_NAMES: &[(&str, u8, u8, u8)] = &[
    ("any", 0xff, 0, 0xff),
    ("echo-reply", 0, 0, 0xff),
    ("pong", 0, 0, 0xff),
    ("destination-unreachable", 3, 0, 0xff),
    ("network-unreachable", 3, 0, 0),
    ("host-unreachable", 3, 1, 1),
    ("protocol-unreachable", 3, 2, 2),
    ("port-unreachable", 3, 3, 3),
    ("fragmentation-needed", 3, 4, 4),
    ("source-route-failed", 3, 5, 5),
    ("network-unknown", 3, 6, 6),
    ("host-unknown", 3, 7, 7),
    ("network-prohibited", 3, 9, 9),
    ("host-prohibited", 3, 10, 10),
    ("TOS-network-unreachable", 3, 11, 11),
    ("TOS-host-unreachable", 3, 12, 12),
    ("communication-prohibited", 3, 13, 13),
    ("host-precedence-violation", 3, 14, 14),
    ("precedence-cutoff", 3, 15, 15),
    ("source-quench", 4, 0, 0xff),
    ("redirect", 5, 0, 0xff),
    ("network-redirect", 5, 0, 0),
    ("host-redirect", 5, 1, 1),
    ("TOS-network-redirect", 5, 2, 2),
    ("TOS-host-redirect", 5, 3, 3),
    ("echo-request", 8, 0, 0xff),
    ("ping", 8, 0, 0xff),
    ("router-advertisement", 9, 0, 0xff),
    ("router-solicitation", 10, 0, 0xff),
    ("time-exceeded", 11, 0, 0xff),
    ("ttl-exceeded", 11, 0, 0xff),
    ("ttl-zero-during-transit", 11, 0, 0),
    ("ttl-zero-during-reassembly", 11, 1, 1),
    ("parameter-problem", 12, 0, 0xff),
    ("ip-header-bad", 12, 0, 0),
    ("required-option-missing", 12, 1, 1),
    ("timestamp-request", 13, 0, 0xff),
    ("timestamp-reply", 14, 0, 0xff),
    ("address-mask-request", 17, 0, 0xff),
    ("address-mask-reply", 18, 0, 0xff),
];

/// `NAME`, `TYPE`, `TYPE/CODE` or `TYPE/CODE:CODE`.
pub fn parse_icmp_type(v: &str) -> Option<(u8, (u8, u8))> {
    if let Some((_, t, lo, hi)) = ICMP_NAMES.iter().find(|(n, ..)| n.eq_ignore_ascii_case(v)) {
        return Some((*t, (*lo, *hi)));
    }
    let byte = |s: &str| parse_uint(s, 0, 255).map(|v| v as u8);
    let (t, code) = match v.split_once('/') {
        None => return Some((byte(v)?, (0, 0xff))),
        Some((t, code)) => (t, code),
    };
    let code = match code.split_once(':') {
        Some((a, b)) => (byte(a)?, byte(b)?),
        None => {
            let c = byte(code)?;
            (c, c)
        }
    };
    (code.0 <= code.1).then_some((byte(t)?, code))
}

/// `N/UNIT` with UNIT a prefix of second, minute, hour or day; the result is the period per
/// packet in 1/10000 s, as `xt_rateinfo.avg`.
pub fn parse_rate(v: &str) -> Option<u32> {
    let (n, mult) = match v.split_once('/') {
        None => (v, 1u64),
        Some((n, unit)) => {
            let unit = unit.to_ascii_lowercase();
            let is = |full: &str| !unit.is_empty() && full.starts_with(&unit);
            let mult = if is("second") {
                1
            } else if is("minute") {
                60
            } else if is("hour") {
                3600
            } else if is("day") {
                86400
            } else {
                return None;
            };
            (n, mult)
        }
    };
    let r = parse_uint(n, 1, u32::MAX.into())?;
    let avg = u64::from(LIMIT_SCALE) * mult / r;
    (avg != 0).then_some(avg.min(u32::MAX.into()) as u32)
}

/// `print_rate`: the largest unit that represents the period without losing much.
fn print_rate(out: &mut String, period: u32) {
    let units: [(&str, u32); 4] = [
        ("day", LIMIT_SCALE * 24 * 60 * 60),
        ("hour", LIMIT_SCALE * 60 * 60),
        ("min", LIMIT_SCALE * 60),
        ("sec", LIMIT_SCALE),
    ];
    if period == 0 {
        out.push_str("inf");
        return;
    }
    let mut i = 1;
    while i < units.len() {
        let m = units[i].1;
        if period > m || m / period < m % period {
            break;
        }
        i += 1;
    }
    let _ = write!(out, "{}/{}", units[i - 1].1 / period, units[i - 1].0);
}

impl Match {
    /// The extension name that `-m` takes.
    pub fn name(&self) -> &'static str {
        match self {
            Match::Tcp(_) => "tcp",
            Match::Udp(_) => "udp",
            Match::Sctp(_) => "sctp",
            Match::Icmp(_) => "icmp",
            Match::Multiport(_) => "multiport",
            Match::Comment(_) => "comment",
            Match::AddrType(_) => "addrtype",
            Match::Statistic(_) => "statistic",
            Match::Conntrack(_) => "conntrack",
            Match::State(_) => "state",
            Match::Mark(_) => "mark",
            Match::ConnMark(_) => "connmark",
            Match::IpRange(_) => "iprange",
            Match::Limit(_) => "limit",
            Match::Length(_) => "length",
            Match::Ttl(_) => "ttl",
            Match::Set(_) => "set",
            Match::PktType(_) => "pkttype",
            Match::Recent(_) => "recent",
            Match::Nfacct(_) => "nfacct",
            Match::Wasm(_) => "wasm",
        }
    }

    /// The hooks where the kernel accepts this match (`addrtype --limit-iface-*`).
    pub fn allowed_hooks(&self) -> HookMask {
        match self {
            Match::AddrType(a) if a.limit_iface_in => hooks::PREROUTING | hooks::INPUT | hooks::FORWARD,
            Match::AddrType(a) if a.limit_iface_out => hooks::POSTROUTING | hooks::OUTPUT | hooks::FORWARD,
            _ => hooks::ALL,
        }
    }

    /// Appends ` -m NAME OPTIONS` exactly as iptables-save prints them.
    pub fn save(&self, out: &mut String) {
        let _ = write!(out, " -m {}", self.name());
        let range = |out: &mut String, opt: &str, r: &Option<Neg<Range16>>| {
            if let Some(r) = r {
                let _ = write!(out, "{} --{opt} {}", r.bang(), r.v);
            }
        };
        match self {
            Match::Tcp(t) => {
                for (opt, r) in [("sport", &t.sport), ("dport", &t.dport)] {
                    if let Some(r) = r.filter(|r| r.inv || r.v != Range16::FULL) {
                        let _ = write!(out, "{} --{opt} {}", r.bang(), r.v);
                    }
                }
                if let Some(o) = t.option {
                    let _ = write!(out, "{} --tcp-option {}", o.bang(), o.v);
                }
                if let Some(f) = t.flags.filter(|f| f.inv || f.v.0 != 0) {
                    let _ = write!(out, "{} --tcp-flags ", f.bang());
                    print_tcp_flags(out, f.v.0);
                    out.push(' ');
                    print_tcp_flags(out, f.v.1);
                }
            }
            Match::Udp(p) | Match::Sctp(p) => {
                for (opt, r) in [("sport", &p.sport), ("dport", &p.dport)] {
                    if let Some(r) = r.filter(|r| r.inv || r.v != Range16::FULL) {
                        let _ = write!(out, "{} --{opt} {}", r.bang(), r.v);
                    }
                }
            }
            Match::Icmp(i) => {
                out.push_str(bang(i.inv));
                if i.typ == 0xff && i.code == (0, 0xff) {
                    out.push_str(" --icmp-type any");
                } else {
                    let _ = write!(out, " --icmp-type {}", i.typ);
                    if i.code.0 == i.code.1 {
                        let _ = write!(out, "/{}", i.code.0);
                    } else if i.code != (0, 0xff) {
                        let _ = write!(out, "/{}:{}", i.code.0, i.code.1);
                    }
                }
            }
            Match::Multiport(m) => {
                let opt = match m.side {
                    PortSide::Src => "sports",
                    PortSide::Dst => "dports",
                    PortSide::Either => "ports",
                };
                let list: Vec<String> = m.ports.iter().map(Range16::to_string).collect();
                let _ = write!(out, "{} --{opt} {}", bang(m.inv), list.join(","));
            }
            Match::Comment(s) => {
                let _ = write!(out, " --comment {}", save_string(s));
            }
            Match::AddrType(a) => {
                for (opt, t) in [("src-type", &a.src), ("dst-type", &a.dst)] {
                    if let Some(t) = t {
                        let names: Vec<&str> = ADDR_TYPES
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| t.v & (1 << i) != 0)
                            .map(|(_, n)| *n)
                            .collect();
                        let _ = write!(out, "{} --{opt} {}", t.bang(), names.join(","));
                    }
                }
                if a.limit_iface_in {
                    out.push_str(" --limit-iface-in");
                }
                if a.limit_iface_out {
                    out.push_str(" --limit-iface-out");
                }
            }
            Match::Statistic(s) => match s.mode {
                StatisticMode::Random { probability } => {
                    let p = f64::from(probability) / 2147483648.0;
                    let _ = write!(out, " --mode random{} --probability {p:.11}", bang(s.inv));
                }
                StatisticMode::Nth { every, packet } => {
                    let _ = write!(out, " --mode nth{} --every {every}", bang(s.inv));
                    if packet != 0 {
                        let _ = write!(out, " --packet {packet}");
                    }
                }
            },
            Match::Conntrack(ct) => {
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
                        let _ = write!(out, "{} --{opt} {}", a.bang(), a.v.addr);
                        match a.v.prefix_len() {
                            Some(32) => {}
                            Some(l) => {
                                let _ = write!(out, "/{l}");
                            }
                            None => {
                                let _ = write!(out, "/{}", Ipv4Addr::from(a.v.mask));
                            }
                        }
                    }
                }
                range(out, "ctorigsrcport", &ct.orig_src_port);
                range(out, "ctorigdstport", &ct.orig_dst_port);
                range(out, "ctreplsrcport", &ct.repl_src_port);
                range(out, "ctrepldstport", &ct.repl_dst_port);
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
            Match::State(s) => {
                let _ = write!(out, "{} --state ", s.bang());
                print_ctstate(out, s.v);
            }
            Match::Mark(m) | Match::ConnMark(m) => {
                let _ = write!(out, "{} --mark {:#x}", m.bang(), m.v.value);
                if m.v.mask != u32::MAX {
                    let _ = write!(out, "/{:#x}", m.v.mask);
                }
            }
            Match::IpRange(r) => {
                for (opt, x) in [("src-range", &r.src), ("dst-range", &r.dst)] {
                    if let Some(x) = x {
                        let _ = write!(out, "{} --{opt} {}-{}", x.bang(), x.v.0, x.v.1);
                    }
                }
            }
            Match::Limit(l) => {
                out.push_str(" --limit ");
                print_rate(out, l.avg);
                if l.burst != 5 {
                    let _ = write!(out, " --limit-burst {}", l.burst);
                }
            }
            Match::Length(l) => range(out, "length", &Some(*l)),
            Match::Ttl(t) => {
                let _ = match t {
                    Ttl::Eq(n) => write!(out, " --ttl-eq {n}"),
                    Ttl::Ne(n) => write!(out, " ! --ttl-eq {n}"),
                    Ttl::Lt(n) => write!(out, " --ttl-lt {n}"),
                    Ttl::Gt(n) => write!(out, " --ttl-gt {n}"),
                };
            }
            Match::Set(s) => {
                let dirs: Vec<&str> = s.dirs.iter().map(|d| if *d { "src" } else { "dst" }).collect();
                let _ = write!(out, "{} --match-set {} {}", bang(s.inv), s.name, dirs.join(","));
            }
            Match::PktType(p) => {
                let n = match p.v {
                    PktType::Unicast => "unicast",
                    PktType::Broadcast => "broadcast",
                    PktType::Multicast => "multicast",
                    PktType::OtherHost => "otherhost",
                };
                let _ = write!(out, "{} --pkt-type {n}", p.bang());
            }
            Match::Recent(r) => {
                out.push_str(bang(r.inv));
                out.push_str(match r.cmd {
                    RecentCmd::Set => " --set",
                    RecentCmd::Check => " --rcheck",
                    RecentCmd::Update => " --update",
                    RecentCmd::Remove => " --remove",
                });
                if r.seconds != 0 {
                    let _ = write!(out, " --seconds {}", r.seconds);
                }
                if r.reap {
                    out.push_str(" --reap");
                }
                if r.hitcount != 0 {
                    let _ = write!(out, " --hitcount {}", r.hitcount);
                }
                if r.rttl {
                    out.push_str(" --rttl");
                }
                let _ = write!(out, " --name {} --mask {}", r.name, r.mask);
                out.push_str(if r.source { " --rsource" } else { " --rdest" });
            }
            Match::Nfacct(n) => {
                let _ = write!(out, " --nfacct-name {n}");
            }
            Match::Wasm(w) => w.save(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_print_like_iptables() {
        let p = |s: &str| {
            let mut o = String::new();
            print_rate(&mut o, parse_rate(s).unwrap());
            o
        };
        assert_eq!(p("1/sec"), "1/sec");
        assert_eq!(p("1/min"), "1/min");
        assert_eq!(p("1000/hour"), "1000/hour");
        assert_eq!(p("1000/day"), "1000/day");
        assert_eq!(p("12/min"), "12/min");
        assert_eq!(p("60/min"), "1/sec");
        assert!(parse_rate("1/fortnight").is_none());
        assert!(parse_rate("0/sec").is_none());
    }

    #[test]
    fn icmp_types() {
        assert_eq!(parse_icmp_type("echo-request"), Some((8, (0, 255))));
        assert_eq!(parse_icmp_type("port-unreachable"), Some((3, (3, 3))));
        assert_eq!(parse_icmp_type("255/0:255"), Some((255, (0, 255))));
        assert_eq!(parse_icmp_type("3/4"), Some((3, (4, 4))));
        assert_eq!(parse_icmp_type("bogus"), None);
    }

    #[test]
    fn tcp_flag_lists() {
        let mut o = String::new();
        print_tcp_flags(&mut o, tcp_flags("SYN,ACK,FIN").unwrap());
        assert_eq!(o, "FIN,SYN,ACK");
        assert_eq!(tcp_flags("ALL"), Some(0x3f));
        assert_eq!(tcp_flags("XMAS"), None);
    }
}
