//! The `-j` targets: options, checks, where netfilter allows them, and their canonical
//! `iptables-save` form (`extensions/libxt_*.c`, `libipt_*.c`).

use super::ext::{Cursor, PResult};
use super::matches::{parse_mark_mask, RuleProto};
use super::value::{has_ports, parse_ipv4, parse_port, parse_uint, save_string};
use super::{hooks, HookMask, TableKind};
use std::fmt::Write;
use std::net::Ipv4Addr;

/// What a rule does when all its matches hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// No `-j`: the rule only counts.
    None,
    Accept,
    Drop,
    Return,
    /// `-j CHAIN`: call a user chain, coming back here on RETURN.
    Jump(String),
    /// `-g CHAIN`: continue in a user chain without a return point.
    Goto(String),
    Reject(RejectWith),
    Log(Log),
    Nflog(Nflog),
    /// `MARK`: mark = (mark & !mask) ^ value.
    Mark {
        value: u32,
        mask: u32,
    },
    ConnMark(ConnMark),
    Dnat(NatRange),
    Snat(NatRange),
    Masquerade(NatRange),
    Redirect(NatRange),
    /// `NOTRACK`, the old spelling of `CT --notrack`.
    Notrack,
    Ct(Ct),
    Ttl(TtlOp),
    TcpMss(TcpMss),
    /// `CHECKSUM --checksum-fill`.
    ChecksumFill,
    /// `WASM --plugin NAME [--args TEXT]`.
    Wasm(super::matches::Plugin),
}

/// The ICMP error (or TCP reset) a REJECT sends back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectWith {
    NetUnreachable,
    HostUnreachable,
    PortUnreachable,
    ProtoUnreachable,
    NetProhibited,
    HostProhibited,
    AdminProhibited,
    TcpReset,
}

impl RejectWith {
    const NAMES: [(RejectWith, &'static str, &'static str); 8] = [
        (RejectWith::NetUnreachable, "icmp-net-unreachable", "net-unreach"),
        (RejectWith::HostUnreachable, "icmp-host-unreachable", "host-unreach"),
        (RejectWith::PortUnreachable, "icmp-port-unreachable", "port-unreach"),
        (RejectWith::ProtoUnreachable, "icmp-proto-unreachable", "proto-unreach"),
        (RejectWith::NetProhibited, "icmp-net-prohibited", "net-prohib"),
        (RejectWith::HostProhibited, "icmp-host-prohibited", "host-prohib"),
        (RejectWith::AdminProhibited, "icmp-admin-prohibited", "admin-prohib"),
        (RejectWith::TcpReset, "tcp-reset", "tcp-rst"),
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(r, ..)| *r == self).map_or("", |(_, n, _)| n)
    }

    /// The ICMP destination-unreachable code (RFC 792, RFC 1812); `None` for a TCP reset.
    pub fn icmp_code(self) -> Option<u8> {
        Some(match self {
            RejectWith::NetUnreachable => 0,
            RejectWith::HostUnreachable => 1,
            RejectWith::ProtoUnreachable => 2,
            RejectWith::PortUnreachable => 3,
            RejectWith::NetProhibited => 9,
            RejectWith::HostProhibited => 10,
            RejectWith::AdminProhibited => 13,
            RejectWith::TcpReset => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub prefix: String,
    pub level: u8,
    pub tcp_sequence: bool,
    pub tcp_options: bool,
    pub ip_options: bool,
    pub uid: bool,
    pub macdecode: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nflog {
    pub group: u16,
    pub prefix: String,
    /// The copy length; `true` when given with the legacy spelling `--nflog-range`.
    pub size: Option<(u32, bool)>,
    /// 0 = not set (the kernel's default).
    pub threshold: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnMark {
    /// ctmark = (ctmark & !mask) ^ value.
    Set { value: u32, mask: u32 },
    /// ctmark = (ctmark & !ctmask) ^ (mark & nfmask).
    Save { nfmask: u32, ctmask: u32 },
    /// mark = (mark & !nfmask) ^ (ctmark & ctmask).
    Restore { nfmask: u32, ctmask: u32 },
}

/// A NAT range as `nf_nat_range2`: addresses, ports, a port base (offset mode) and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NatRange {
    pub addrs: Option<(Ipv4Addr, Ipv4Addr)>,
    pub ports: Option<(u16, u16)>,
    pub base: Option<u16>,
    pub random: bool,
    pub random_fully: bool,
    pub persistent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ct {
    pub notrack: bool,
    pub helper: String,
    pub ctevents: u16,
    pub expevents: u16,
    pub zone: u16,
    pub timeout: String,
}

const CT_EVENTS: [&str; 10] = [
    "new",
    "related",
    "destroy",
    "reply",
    "assured",
    "protoinfo",
    "helper",
    "mark",
    "natseqinfo",
    "secmark",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlOp {
    Set(u8),
    Inc(u8),
    Dec(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpMss {
    Set(u16),
    ClampToPmtu,
}

/// A target whose options are still being read.
#[derive(Debug, Clone)]
pub struct PartialTarget {
    pub target: Target,
    /// Options seen, for the checks in `finish` (e.g. DNAT without `--to-destination`).
    seen: u32,
}

const SEEN_MAIN: u32 = 1;

impl PartialTarget {
    /// Starts the target named by `-j NAME`. Names that are not built-in targets are chains;
    /// names of extensions rtrouter lacks are refused here rather than taken for chains.
    pub fn start(name: &str) -> Result<PartialTarget, String> {
        let target = match name {
            "ACCEPT" => Target::Accept,
            "DROP" => Target::Drop,
            "RETURN" => Target::Return,
            "REJECT" => Target::Reject(RejectWith::PortUnreachable),
            "LOG" => Target::Log(Log {
                prefix: String::new(),
                level: 4,
                tcp_sequence: false,
                tcp_options: false,
                ip_options: false,
                uid: false,
                macdecode: false,
            }),
            "NFLOG" => Target::Nflog(Nflog::default()),
            "MARK" => Target::Mark { value: 0, mask: 0 },
            "CONNMARK" => Target::ConnMark(ConnMark::Set { value: 0, mask: 0 }),
            "DNAT" => Target::Dnat(NatRange::default()),
            "SNAT" => Target::Snat(NatRange::default()),
            "MASQUERADE" => Target::Masquerade(NatRange::default()),
            "REDIRECT" => Target::Redirect(NatRange::default()),
            "NOTRACK" => Target::Notrack,
            "CT" => Target::Ct(Ct::default()),
            "TTL" => Target::Ttl(TtlOp::Set(0)),
            "TCPMSS" => Target::TcpMss(TcpMss::Set(0)),
            "CHECKSUM" => Target::ChecksumFill,
            "WASM" => Target::Wasm(super::matches::Plugin {
                inv: false,
                name: String::new(),
                args: String::new(),
                handle: None,
            }),
            n if is_unsupported_extension(n) => {
                return Err(format!("target `{n}' is not supported by rtrouter"));
            }
            n => Target::Jump(n.to_string()),
        };
        Ok(PartialTarget { target, seen: 0 })
    }

    /// Offers `--opt` to the target; `Ok(false)` when it is not one of its options.
    pub fn option(&mut self, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        let name = format!("--{opt}");
        let name = name.as_str();
        let mine = match &self.target {
            Target::Reject(_) => opt == "reject-with",
            Target::Log(_) => opt.starts_with("log-"),
            Target::Nflog(_) => opt.starts_with("nflog-"),
            Target::Mark { .. } => matches!(opt, "set-xmark" | "set-mark" | "and-mark" | "or-mark" | "xor-mark"),
            Target::ConnMark(_) => matches!(
                opt,
                "set-xmark"
                    | "set-mark"
                    | "and-mark"
                    | "or-mark"
                    | "xor-mark"
                    | "save-mark"
                    | "restore-mark"
                    | "mask"
                    | "nfmask"
                    | "ctmask"
            ),
            Target::Dnat(_) => matches!(opt, "to-destination" | "random" | "persistent"),
            Target::Snat(_) => {
                matches!(opt, "to-source" | "random" | "random-fully" | "persistent")
            }
            Target::Masquerade(_) => matches!(opt, "to-ports" | "random" | "random-fully"),
            Target::Redirect(_) => matches!(opt, "to-ports" | "random"),
            Target::Ct(_) => matches!(
                opt,
                "notrack" | "helper" | "ctevents" | "expevents" | "zone" | "timeout" | "zone-orig" | "zone-reply"
            ),
            Target::Ttl(_) => matches!(opt, "ttl-set" | "ttl-inc" | "ttl-dec"),
            Target::TcpMss(_) => matches!(opt, "set-mss" | "clamp-mss-to-pmtu"),
            Target::ChecksumFill => opt == "checksum-fill",
            Target::Wasm(_) => opt == "plugin" || opt == "args",
            _ => false,
        };
        if !mine {
            return Ok(false);
        }
        if let Target::Wasm(w) = &mut self.target {
            return super::matches::Plugin::option(w, opt, inv, c, false);
        }
        c.no_invert(inv, name)?;
        let seen = self.seen;
        match &mut self.target {
            Target::Reject(r) => {
                let v = c.value(name)?;
                *r = RejectWith::NAMES
                    .iter()
                    .find(|(_, n, alias)| *n == v || *alias == v)
                    .map(|(r, ..)| *r)
                    .map_or_else(|| c.err_value(format!("REJECT: unknown reject type `{v}'")), Ok)?;
            }
            Target::Log(l) => match opt {
                "log-prefix" => {
                    let v = c.raw_value(name)?;
                    if v.len() > 29 {
                        return c.err_value("LOG: --log-prefix is longer than 29 characters");
                    }
                    if v.contains('\n') {
                        return c.err_value("LOG: newlines are not allowed in --log-prefix");
                    }
                    l.prefix = v;
                }
                "log-level" => {
                    let v = c.value(name)?;
                    const LEVELS: [&str; 8] = ["emerg", "alert", "crit", "error", "warning", "notice", "info", "debug"];
                    l.level = match parse_uint(&v, 0, 7) {
                        Some(n) => n as u8,
                        None => match v.as_str() {
                            "panic" => 0,
                            "err" => 3,
                            "warn" => 4,
                            _ => LEVELS
                                .iter()
                                .position(|n| *n == v)
                                .map_or_else(|| c.err_value(format!("LOG: unknown level `{v}'")), Ok)?
                                as u8,
                        },
                    };
                }
                "log-tcp-sequence" => l.tcp_sequence = true,
                "log-tcp-options" => l.tcp_options = true,
                "log-ip-options" => l.ip_options = true,
                "log-uid" => l.uid = true,
                "log-macdecode" => l.macdecode = true,
                _ => return c.err(format!("LOG: unknown option {name}")),
            },
            Target::Nflog(n) => match opt {
                "nflog-group" => {
                    let v = c.value(name)?;
                    n.group =
                        parse_uint(&v, 0, 65535).map_or_else(|| c.err_value("NFLOG: bad --nflog-group"), Ok)? as u16;
                }
                "nflog-prefix" => {
                    // Like libxt_NFLOG, a longer prefix is cut to the kernel's 63 bytes.
                    let v = c.raw_value(name)?;
                    n.prefix = v.chars().take(63).collect();
                }
                "nflog-range" | "nflog-size" => {
                    let v = c.value(name)?;
                    let size =
                        parse_uint(&v, 0, u32::MAX.into()).map_or_else(|| c.err_value("NFLOG: bad size"), Ok)? as u32;
                    n.size = Some((size, opt == "nflog-range"));
                }
                "nflog-threshold" => {
                    let v = c.value(name)?;
                    n.threshold = parse_uint(&v, 1, 65535)
                        .map_or_else(|| c.err_value("NFLOG: bad --nflog-threshold"), Ok)?
                        as u16;
                }
                _ => return c.err(format!("NFLOG: unknown option {name}")),
            },
            Target::Mark { value, mask } => {
                if seen & SEEN_MAIN != 0 {
                    return c.err("MARK: only one action option allowed");
                }
                let v = c.value(name)?;
                let mm = parse_mark_mask(&v).map_or_else(|| c.err_value(format!("MARK: bad value `{v}'")), Ok)?;
                if opt != "set-xmark" && opt != "set-mark" && v.contains('/') {
                    return c.err_value(format!("MARK: {name} takes no mask"));
                }
                (*value, *mask) = bit_op(opt, mm.value, mm.mask);
                self.seen |= SEEN_MAIN;
            }
            Target::ConnMark(cm) => match opt {
                "save-mark" | "restore-mark" => {
                    if seen & SEEN_MAIN != 0 {
                        return c.err("CONNMARK: only one action option allowed");
                    }
                    *cm = if opt == "save-mark" {
                        ConnMark::Save {
                            nfmask: u32::MAX,
                            ctmask: u32::MAX,
                        }
                    } else {
                        ConnMark::Restore {
                            nfmask: u32::MAX,
                            ctmask: u32::MAX,
                        }
                    };
                    self.seen |= SEEN_MAIN;
                }
                "mask" | "nfmask" | "ctmask" => {
                    let v = c.value(name)?;
                    let m = parse_uint(&v, 0, u32::MAX.into())
                        .map_or_else(|| c.err_value(format!("CONNMARK: bad mask `{v}'")), Ok)?
                        as u32;
                    match cm {
                        ConnMark::Save { nfmask, ctmask } | ConnMark::Restore { nfmask, ctmask } => {
                            if opt != "ctmask" {
                                *nfmask = m;
                            }
                            if opt != "nfmask" {
                                *ctmask = m;
                            }
                        }
                        ConnMark::Set { .. } => {
                            return c.err(format!(
                                "CONNMARK: {name} needs --save-mark or --restore-mark before it"
                            ));
                        }
                    }
                }
                _ => {
                    if seen & SEEN_MAIN != 0 {
                        return c.err("CONNMARK: only one action option allowed");
                    }
                    let v = c.value(name)?;
                    let mm =
                        parse_mark_mask(&v).map_or_else(|| c.err_value(format!("CONNMARK: bad value `{v}'")), Ok)?;
                    let (value, mask) = bit_op(opt, mm.value, mm.mask);
                    *cm = ConnMark::Set { value, mask };
                    self.seen |= SEEN_MAIN;
                }
            },
            Target::Dnat(r) | Target::Snat(r) => match opt {
                "to-destination" | "to-source" => {
                    if seen & SEEN_MAIN != 0 {
                        return c.err(format!("multiple {name} options are not supported"));
                    }
                    let v = c.value(name)?;
                    *r = NatRange {
                        random: r.random,
                        random_fully: r.random_fully,
                        persistent: r.persistent,
                        ..parse_nat_range(&v).map_or_else(|e| c.err_value(format!("bad {name} `{v}': {e}")), Ok)?
                    };
                    self.seen |= SEEN_MAIN;
                }
                "random" => r.random = true,
                "random-fully" => r.random_fully = true,
                _ => r.persistent = true,
            },
            Target::Masquerade(r) | Target::Redirect(r) => match opt {
                "to-ports" => {
                    let v = c.value(name)?;
                    let (lo, hi) =
                        parse_port_range(&v).map_or_else(|e| c.err_value(format!("bad --to-ports `{v}': {e}")), Ok)?;
                    r.ports = Some((lo, hi));
                }
                "random" => r.random = true,
                _ => r.random_fully = true,
            },
            Target::Ct(ct) => match opt {
                "notrack" => ct.notrack = true,
                "helper" => {
                    let v = c.value(name)?;
                    if v.is_empty() || v.len() > 15 {
                        return c.err_value("CT: bad --helper name");
                    }
                    ct.helper = v;
                }
                "timeout" => {
                    let v = c.value(name)?;
                    if v.is_empty() || v.len() > 31 {
                        return c.err_value("CT: bad --timeout policy name");
                    }
                    ct.timeout = v;
                }
                "zone" => {
                    let v = c.value(name)?;
                    ct.zone = parse_uint(&v, 0, 65535)
                        .map_or_else(|| c.err_value(format!("CT: bad --zone `{v}'")), Ok)?
                        as u16;
                }
                "ctevents" | "expevents" => {
                    let v = c.value(name)?;
                    let mut bits = 0u16;
                    for e in v.split(',') {
                        let ok = if opt == "ctevents" {
                            &CT_EVENTS[..]
                        } else {
                            &CT_EVENTS[..1]
                        };
                        let Some(i) = ok.iter().position(|n| *n == e) else {
                            return c.err_value(format!("CT: unknown event `{e}'"));
                        };
                        bits |= 1 << i;
                    }
                    if opt == "ctevents" {
                        ct.ctevents = bits;
                    } else {
                        ct.expevents = bits;
                    }
                }
                _ => return c.err("CT: --zone-orig and --zone-reply are not supported by rtrouter"),
            },
            Target::Ttl(t) => {
                if seen & SEEN_MAIN != 0 {
                    return c.err("TTL: only one of --ttl-set, --ttl-inc or --ttl-dec allowed");
                }
                let v = c.value(name)?;
                let min = if opt == "ttl-set" { 0 } else { 1 };
                let n =
                    parse_uint(&v, min, 255).map_or_else(|| c.err_value(format!("TTL: bad value `{v}'")), Ok)? as u8;
                *t = match opt {
                    "ttl-set" => TtlOp::Set(n),
                    "ttl-inc" => TtlOp::Inc(n),
                    _ => TtlOp::Dec(n),
                };
                self.seen |= SEEN_MAIN;
            }
            Target::TcpMss(t) => {
                if seen & SEEN_MAIN != 0 {
                    return c.err("TCPMSS: only one of --set-mss or --clamp-mss-to-pmtu allowed");
                }
                *t = if opt == "set-mss" {
                    let v = c.value(name)?;
                    TcpMss::Set(
                        parse_uint(&v, 0, 65535).map_or_else(|| c.err_value(format!("TCPMSS: bad MSS `{v}'")), Ok)?
                            as u16,
                    )
                } else {
                    TcpMss::ClampToPmtu
                };
                self.seen |= SEEN_MAIN;
            }
            Target::ChecksumFill => self.seen |= SEEN_MAIN,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the complete target against the rule (`-p`, and for TCPMSS a SYN match).
    pub fn finish(self, p: RuleProto, syn_match: bool) -> Result<Target, String> {
        let main = self.seen & SEEN_MAIN != 0;
        let t = self.target;
        match &t {
            Target::Reject(RejectWith::TcpReset) if p.exact() != Some(6) => {
                return Err("REJECT: --reject-with tcp-reset is only valid with `-p tcp'".into());
            }
            Target::Mark { .. } if !main => {
                return Err(
                    "MARK: one of --set-xmark, --set-mark, --and-mark, --or-mark or --xor-mark is required".into(),
                )
            }
            Target::ConnMark(_) if !main => {
                return Err("CONNMARK: an action (--set-mark, --save-mark, --restore-mark, …) is required".into())
            }
            Target::Dnat(_) if !main => return Err("DNAT: --to-destination is required".into()),
            Target::Snat(_) if !main => return Err("SNAT: --to-source is required".into()),
            Target::Ttl(_) if !main => return Err("TTL: one of --ttl-set, --ttl-inc or --ttl-dec is required".into()),
            Target::TcpMss(_) if !main => return Err("TCPMSS: --set-mss or --clamp-mss-to-pmtu is required".into()),
            Target::ChecksumFill if !main => return Err("CHECKSUM: --checksum-fill is required".into()),
            Target::Wasm(w) if w.name.is_empty() => return Err("WASM: --plugin NAME is required".into()),
            Target::TcpMss(_) if p.exact() != Some(6) || !syn_match => {
                return Err("TCPMSS: only works on TCP SYN packets: needs `-p tcp' and a `--tcp-flags' or `--syn' match that selects SYN".into());
            }
            _ => {}
        }
        if let Target::Dnat(r) | Target::Snat(r) | Target::Masquerade(r) | Target::Redirect(r) = &t {
            if r.ports.is_some() && !p.exact().is_some_and(has_ports) {
                return Err(format!(
                    "{}: a port specification needs `-p tcp', `-p udp', `-p sctp', `-p dccp' or `-p udplite'",
                    t.name()
                ));
            }
        }
        Ok(t)
    }
}

/// Extensions that iptables has and rtrouter does not implement: refused by name so that a
/// ruleset using them fails loudly instead of jumping to a missing chain.
fn is_unsupported_extension(name: &str) -> bool {
    matches!(
        name,
        "AUDIT"
            | "CLASSIFY"
            | "CLUSTERIP"
            | "CONNSECMARK"
            | "DSCP"
            | "ECN"
            | "HL"
            | "HMARK"
            | "IDLETIMER"
            | "LED"
            | "NETMAP"
            | "NFQUEUE"
            | "QUEUE"
            | "RATEEST"
            | "SECMARK"
            | "SET"
            | "SYNPROXY"
            | "TEE"
            | "TOS"
            | "TPROXY"
            | "TRACE"
            | "ULOG"
            | "MIRROR"
            | "SAME"
    )
}

/// The xmark pair for MARK/CONNMARK's option spellings (libxt_MARK.c).
fn bit_op(opt: &str, v: u32, m: u32) -> (u32, u32) {
    match opt {
        "set-xmark" => (v, m),
        "set-mark" => (v, v | m),
        "and-mark" => (0, !v),
        "or-mark" => (v, v),
        _ => (v, 0),
    }
}

/// A port or `lo-hi` range of ports; a single service name is allowed, range ends must be
/// numbers (as in libxt_REDIRECT: `10-ssh` is refused).
fn parse_port_range(v: &str) -> Result<(u16, u16), &'static str> {
    if let Some(p) = parse_port(v, "tcp") {
        return Ok((p, p));
    }
    let (a, b) = v.split_once('-').ok_or("not a port or range")?;
    let num = |s: &str| parse_uint(s, 0, 65535).map(|v| v as u16);
    let (lo, hi) = (num(a).ok_or("bad port")?, num(b).ok_or("bad port")?);
    if lo > hi {
        return Err("range is backwards");
    }
    Ok((lo, hi))
}

/// `[IP[-IP]][:PORT[-PORT][/BASE]]`.
fn parse_nat_range(v: &str) -> Result<NatRange, &'static str> {
    let mut r = NatRange::default();
    let (addrs, ports) = match v.split_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    if !addrs.is_empty() {
        let (lo, hi) = match addrs.split_once('-') {
            Some((a, b)) => (parse_ipv4(a).ok_or("bad address")?, parse_ipv4(b).ok_or("bad address")?),
            None => {
                let a = parse_ipv4(addrs).ok_or("bad address")?;
                (a, a)
            }
        };
        if u32::from(lo) > u32::from(hi) {
            return Err("address range is backwards");
        }
        r.addrs = Some((lo, hi));
    }
    if let Some(p) = ports {
        let (range, base) = match p.split_once('/') {
            Some((range, base)) => (range, Some(base)),
            None => (p, None),
        };
        r.ports = Some(parse_port_range(range)?);
        if let Some(b) = base {
            let b = parse_port(b, "tcp").ok_or("bad base port")?;
            if b == 0 {
                return Err("base port must be 1-65535");
            }
            r.base = Some(b);
        }
    }
    if r.addrs.is_none() && r.ports.is_none() {
        return Err("needs an address or a port");
    }
    Ok(r)
}

impl Target {
    /// The name `-j` takes.
    pub fn name(&self) -> &str {
        match self {
            Target::None => "",
            Target::Accept => "ACCEPT",
            Target::Drop => "DROP",
            Target::Return => "RETURN",
            Target::Jump(c) | Target::Goto(c) => c,
            Target::Reject(_) => "REJECT",
            Target::Log(_) => "LOG",
            Target::Nflog(_) => "NFLOG",
            Target::Mark { .. } => "MARK",
            Target::ConnMark(_) => "CONNMARK",
            Target::Dnat(_) => "DNAT",
            Target::Snat(_) => "SNAT",
            Target::Masquerade(_) => "MASQUERADE",
            Target::Redirect(_) => "REDIRECT",
            Target::Notrack => "NOTRACK",
            Target::Ct(_) => "CT",
            Target::Ttl(_) => "TTL",
            Target::TcpMss(_) => "TCPMSS",
            Target::ChecksumFill => "CHECKSUM",
            Target::Wasm(_) => "WASM",
        }
    }

    /// The table a target is restricted to, as the kernel's `xt_target.table`.
    pub fn table(&self) -> Option<TableKind> {
        match self {
            Target::Dnat(_) | Target::Snat(_) | Target::Masquerade(_) | Target::Redirect(_) => Some(TableKind::Nat),
            Target::Notrack | Target::Ct(_) => Some(TableKind::Raw),
            Target::Ttl(_) | Target::ChecksumFill => Some(TableKind::Mangle),
            _ => None,
        }
    }

    /// The hooks a target is valid in, as the kernel's `xt_target.hooks` and checkentry.
    pub fn allowed_hooks(&self) -> HookMask {
        match self {
            Target::Dnat(_) | Target::Redirect(_) => hooks::PREROUTING | hooks::OUTPUT,
            Target::Snat(_) => hooks::POSTROUTING | hooks::INPUT,
            Target::Masquerade(_) => hooks::POSTROUTING,
            Target::Reject(_) => hooks::INPUT | hooks::FORWARD | hooks::OUTPUT,
            Target::TcpMss(TcpMss::ClampToPmtu) => hooks::FORWARD | hooks::OUTPUT | hooks::POSTROUTING,
            _ => hooks::ALL,
        }
    }

    /// Appends ` -j NAME OPTIONS` (or ` -g CHAIN`) as iptables-save prints it.
    pub fn save(&self, out: &mut String) {
        match self {
            Target::None => return,
            Target::Goto(c) => {
                let _ = write!(out, " -g {c}");
                return;
            }
            t => {
                let _ = write!(out, " -j {}", t.name());
            }
        }
        match self {
            Target::Reject(r) => {
                let _ = write!(out, " --reject-with {}", r.name());
            }
            Target::Log(l) => {
                if !l.prefix.is_empty() {
                    let _ = write!(out, " --log-prefix {}", save_string(&l.prefix));
                }
                if l.level != 4 {
                    let _ = write!(out, " --log-level {}", l.level);
                }
                for (on, opt) in [
                    (l.tcp_sequence, " --log-tcp-sequence"),
                    (l.tcp_options, " --log-tcp-options"),
                    (l.ip_options, " --log-ip-options"),
                    (l.uid, " --log-uid"),
                    (l.macdecode, " --log-macdecode"),
                ] {
                    if on {
                        out.push_str(opt);
                    }
                }
            }
            Target::Nflog(n) => {
                if !n.prefix.is_empty() {
                    let _ = write!(out, " --nflog-prefix {}", save_string(&n.prefix));
                }
                if n.group != 0 {
                    let _ = write!(out, " --nflog-group {}", n.group);
                }
                if let Some((s, legacy)) = n.size {
                    let _ = write!(out, " --nflog-{} {s}", if legacy { "range" } else { "size" });
                }
                if n.threshold != 0 {
                    let _ = write!(out, " --nflog-threshold {}", n.threshold);
                }
            }
            Target::Mark { value, mask } => {
                let _ = write!(out, " --set-xmark {value:#x}/{mask:#x}");
            }
            Target::ConnMark(cm) => {
                let _ = match cm {
                    ConnMark::Set { value, mask } => {
                        write!(out, " --set-xmark {value:#x}/{mask:#x}")
                    }
                    ConnMark::Save { nfmask, ctmask } => {
                        write!(out, " --save-mark --nfmask {nfmask:#x} --ctmask {ctmask:#x}")
                    }
                    ConnMark::Restore { nfmask, ctmask } => {
                        write!(out, " --restore-mark --nfmask {nfmask:#x} --ctmask {ctmask:#x}")
                    }
                };
            }
            Target::Dnat(r) | Target::Snat(r) => {
                let opt = if matches!(self, Target::Dnat(_)) {
                    "to-destination"
                } else {
                    "to-source"
                };
                let _ = write!(out, " --{opt} ");
                if let Some((lo, hi)) = r.addrs {
                    let _ = write!(out, "{lo}");
                    if lo != hi {
                        let _ = write!(out, "-{hi}");
                    }
                }
                if let Some((lo, hi)) = r.ports {
                    let _ = write!(out, ":{lo}");
                    if lo != hi {
                        let _ = write!(out, "-{hi}");
                    }
                    if let Some(b) = r.base {
                        let _ = write!(out, "/{b}");
                    }
                }
                save_nat_flags(out, r);
            }
            Target::Masquerade(r) | Target::Redirect(r) => {
                if let Some((lo, hi)) = r.ports {
                    let _ = write!(out, " --to-ports {lo}");
                    if lo != hi {
                        let _ = write!(out, "-{hi}");
                    }
                }
                save_nat_flags(out, r);
            }
            Target::Ct(ct) => {
                if ct.notrack {
                    out.push_str(" --notrack");
                }
                if !ct.helper.is_empty() {
                    let _ = write!(out, " --helper {}", ct.helper);
                }
                for (opt, bits) in [("ctevents", ct.ctevents), ("expevents", ct.expevents)] {
                    if bits != 0 {
                        let names: Vec<&str> = CT_EVENTS
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| bits & (1 << i) != 0)
                            .map(|(_, n)| *n)
                            .collect();
                        let _ = write!(out, " --{opt} {}", names.join(","));
                    }
                }
                if ct.zone != 0 {
                    let _ = write!(out, " --zone {}", ct.zone);
                }
                if !ct.timeout.is_empty() {
                    let _ = write!(out, " --timeout {}", ct.timeout);
                }
            }
            Target::Ttl(t) => {
                let _ = match t {
                    TtlOp::Set(n) => write!(out, " --ttl-set {n}"),
                    TtlOp::Inc(n) => write!(out, " --ttl-inc {n}"),
                    TtlOp::Dec(n) => write!(out, " --ttl-dec {n}"),
                };
            }
            Target::TcpMss(TcpMss::Set(n)) => {
                let _ = write!(out, " --set-mss {n}");
            }
            Target::TcpMss(TcpMss::ClampToPmtu) => out.push_str(" --clamp-mss-to-pmtu"),
            Target::ChecksumFill => out.push_str(" --checksum-fill"),
            Target::Wasm(w) => w.save(out),
            _ => {}
        }
    }
}

fn save_nat_flags(out: &mut String, r: &NatRange) {
    if r.random {
        out.push_str(" --random");
    }
    if r.random_fully {
        out.push_str(" --random-fully");
    }
    if r.persistent {
        out.push_str(" --persistent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_ranges() {
        let r = parse_nat_range("1.1.1.1-1.1.1.10:1025-65535").unwrap();
        assert_eq!(r.addrs, Some(("1.1.1.1".parse().unwrap(), "1.1.1.10".parse().unwrap())));
        assert_eq!(r.ports, Some((1025, 65535)));
        assert_eq!(parse_nat_range("1.1.1.1:10-20/ftp").unwrap().base, Some(21));
        assert!(parse_nat_range("1.1.1.1:10-20/0").is_err());
        assert!(parse_nat_range("1.1.1.1:echo-ssh").is_err());
        assert_eq!(parse_nat_range(":8080").unwrap().ports, Some((8080, 8080)));
    }

    #[test]
    fn mark_spellings_become_xmark() {
        assert_eq!(bit_op("or-mark", 0x4000, 0), (0x4000, 0x4000));
        assert_eq!(bit_op("xor-mark", 0x4000, 0), (0x4000, 0));
        assert_eq!(bit_op("and-mark", 0xff, 0), (0, !0xff));
        assert_eq!(bit_op("set-mark", 1, 0xffffffff), (1, 0xffffffff));
    }
}
