//! `REJECT` (`libipt_REJECT.c`, `ipt_REJECT.c`): drop the packet and answer with an ICMP
//! error or a TCP reset. INPUT, FORWARD and OUTPUT only.

use super::TargetExt;
use crate::eval::{Cx, Engine, Pkt, Verdict};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::matches::RuleProto;
use crate::ruleset::{hooks, HookMask};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject(pub RejectWith);

impl TargetExt for Reject {
    type Builder = RejectWith;

    fn start() -> RejectWith {
        RejectWith::PortUnreachable
    }

    const OPTIONS: &'static [&'static str] = &["reject-with"];

    fn option(r: &mut RejectWith, _: &str, _: bool, c: &mut Cursor) -> PResult<()> {
        let v = c.value("--reject-with")?;
        *r = RejectWith::NAMES
            .iter()
            .find(|(_, n, alias)| *n == v || *alias == v)
            .map(|(r, ..)| *r)
            .map_or_else(|| c.err_value(format!("REJECT: unknown reject type `{v}'")), Ok)?;
        Ok(())
    }

    fn finish(r: RejectWith, p: RuleProto, _: bool) -> Result<Reject, String> {
        if r == RejectWith::TcpReset && p.exact() != Some(6) {
            return Err("REJECT: --reject-with tcp-reset is only valid with `-p tcp'".into());
        }
        Ok(Reject(r))
    }

    fn save(&self, out: &mut String) {
        let _ = write!(out, " --reject-with {}", self.0.name());
    }

    fn hooks(&self) -> HookMask {
        hooks::INPUT | hooks::FORWARD | hooks::OUTPUT
    }

    fn apply(&self, _: &mut Pkt, _: &mut Cx, _: &Engine) -> Option<Verdict> {
        Some(Verdict::Reject(self.0))
    }
}
