//! `REJECT` (`libipt_REJECT.c`, `ipt_REJECT.c`; `libip6t_REJECT.c`, `ip6t_REJECT.c`): drop
//! the packet and answer with an ICMP (ICMPv6) error or a TCP reset. INPUT, FORWARD and OUTPUT
//! only.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::{hooks, Family, HookMask};
use std::fmt::Write as _;

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
    /// ip6tables' (ICMPv6 destination unreachable, RFC 4443 3.1).
    Icmp6NoRoute,
    Icmp6AdmProhibited,
    Icmp6AddrUnreachable,
    Icmp6PortUnreachable,
    Icmp6PolicyFail,
    Icmp6RejectRoute,
    /// Not REJECT's: an ICMPv6 parameter problem (erroneous header field, RFC 4443 3.4)
    /// pointing at this byte of the IPv6 header, as `SNPT`/`DNPT` answer an address they
    /// cannot translate.
    Icmp6HeaderField(u8),
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
    const NAMES6: [(RejectWith, &'static str, &'static str); 7] = [
        (RejectWith::Icmp6NoRoute, "icmp6-no-route", "no-route"),
        (RejectWith::Icmp6AdmProhibited, "icmp6-adm-prohibited", "adm-prohibited"),
        (
            RejectWith::Icmp6AddrUnreachable,
            "icmp6-addr-unreachable",
            "addr-unreach",
        ),
        (
            RejectWith::Icmp6PortUnreachable,
            "icmp6-port-unreachable",
            "port-unreach",
        ),
        (RejectWith::Icmp6PolicyFail, "icmp6-policy-fail", "policy-fail"),
        (RejectWith::Icmp6RejectRoute, "icmp6-reject-route", "reject-route"),
        (RejectWith::TcpReset, "tcp-reset", "tcp-rst"),
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .chain(&Self::NAMES6)
            .find(|(r, ..)| *r == self)
            .map_or("", |(_, n, _)| n)
    }

    /// The ICMPv6 destination-unreachable code (RFC 4443 3.1); `None` for a TCP reset. An
    /// iptables type (a plugin's REJECT verdict on an IPv6 packet) maps to its nearest.
    pub fn icmp6_code(self) -> Option<u8> {
        Some(match self {
            RejectWith::Icmp6NoRoute | RejectWith::NetUnreachable => 0,
            RejectWith::Icmp6AdmProhibited
            | RejectWith::AdminProhibited
            | RejectWith::NetProhibited
            | RejectWith::HostProhibited => 1,
            RejectWith::Icmp6AddrUnreachable | RejectWith::HostUnreachable => 3,
            RejectWith::Icmp6PortUnreachable | RejectWith::PortUnreachable | RejectWith::ProtoUnreachable => 4,
            RejectWith::Icmp6PolicyFail => 5,
            RejectWith::Icmp6RejectRoute => 6,
            // Answered as a parameter problem, not as destination unreachable (the router's
            // `reject` tells them apart); code 0 is "erroneous header field".
            RejectWith::Icmp6HeaderField(_) => 0,
            RejectWith::TcpReset => return None,
        })
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
            RejectWith::AdminProhibited | RejectWith::Icmp6AdmProhibited | RejectWith::Icmp6PolicyFail => 13,
            RejectWith::Icmp6NoRoute | RejectWith::Icmp6RejectRoute => 0,
            RejectWith::Icmp6AddrUnreachable => 1,
            RejectWith::Icmp6PortUnreachable => 3,
            // IPv6 only (SNPT/DNPT); IPv4 has no such answer.
            RejectWith::Icmp6HeaderField(_) => 13,
            RejectWith::TcpReset => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject(pub RejectWith);

impl TargetExt for Reject {
    /// `None` until `--reject-with`: the family's port unreachable.
    type Builder = Option<RejectWith>;

    fn start() -> Option<RejectWith> {
        None
    }

    const OPTIONS: &'static [&'static str] = &["reject-with"];

    fn option(r: &mut Option<RejectWith>, _: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        let v = c.value("--reject-with")?;
        let names: &[_] = match c.family {
            Family::V4 => &RejectWith::NAMES,
            Family::V6 => &RejectWith::NAMES6,
        };
        *r = Some(
            names
                .iter()
                .find(|(_, n, alias)| *n == v || *alias == v)
                .map(|(r, ..)| *r)
                .map_or_else(|| c.err_value(format!("REJECT: unknown reject type `{v}'")), Ok)?,
        );
        Ok(())
    }

    fn finish(r: Option<RejectWith>, p: RuleProto, _: bool) -> Result<Reject, String> {
        let r = r.unwrap_or(match p.family {
            Family::V4 => RejectWith::PortUnreachable,
            Family::V6 => RejectWith::Icmp6PortUnreachable,
        });
        if r == RejectWith::TcpReset && p.exact() != Some(6) {
            return Err("REJECT: --reject-with tcp-reset is only valid with `-p tcp'".into());
        }
        Ok(Reject(r))
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, " --reject-with {}", self.0.name());
    }

    fn list(&self, out: &mut String, _: bool) {
        let _ = write!(out, " reject-with {}", self.0.name());
    }

    fn hooks(&self) -> HookMask {
        hooks::INPUT | hooks::FORWARD | hooks::OUTPUT
    }

    fn apply(&self, _: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        Some(Verdict::Reject(self.0))
    }
}
