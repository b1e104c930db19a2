//! `-m socket` (`libxt_socket.c`, `xt_socket.c` revisions 1–3, `nf_socket_ipv4.c`,
//! `nf_socket_ipv6.c`): whether a local socket is the packet's — an established one for its
//! four-tuple or one listening on its destination. For a TCP or UDP packet the lookup is by its
//! own addresses and ports; for an ICMP error, by those of the packet it quotes, whose source
//! is the local side (`extract_icmp4_fields`); other packets have none.
//!
//! In rtrouter the only local sockets are the router's own stack's: its TCP listener for the
//! metrics endpoint (`[metrics] listen`, one address, never the wildcard) and that listener's
//! connections, whose local side is the same address and port. So the match holds for a TCP
//! packet to that address and port, or an ICMP error quoting one from it. None of these
//! sockets is transparent (`IP_TRANSPARENT`), so `--transparent` never matches; none is bound
//! to the wildcard address, so `--nowildcard` changes nothing; `--restore-skmark` sets the
//! packet's mark to the socket's, which is 0.

use super::{CompileEnv, MatchExt, RuleProto};
use crate::eval::{Cx, Engine, Pkt};
use crate::packet::{proto, L4};
use crate::ruleset::ext::{Cursor, PResult};
use crate::ruleset::{hooks, HookMask};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Socket {
    pub transparent: bool,
    pub nowildcard: bool,
    pub restore_skmark: bool,
}

impl MatchExt for Socket {
    type Builder = Socket;
    type Compiled = Socket;
    /// `--restore-skmark` sets the mark.
    const SIDE_EFFECT: bool = true;
    const OPTIONS: &'static [&'static str] = &["transparent", "nowildcard", "restore-skmark"];

    fn option(b: &mut Socket, opt: &str, inv: bool, c: &mut Cursor) -> PResult<bool> {
        let slot = match opt {
            "transparent" => &mut b.transparent,
            "nowildcard" => &mut b.nowildcard,
            "restore-skmark" => &mut b.restore_skmark,
            _ => return Ok(false),
        };
        if inv {
            return c.err(format!("socket: option \"--{opt}\" cannot be inverted."));
        }
        if *slot {
            return c.err(format!("socket: option \"--{opt}\" can only be used once."));
        }
        *slot = true;
        Ok(true)
    }

    fn finish(b: Socket, _: RuleProto) -> Result<Socket, String> {
        Ok(b)
    }

    fn save(&self, out: &mut String) {
        for (on, name) in [
            (self.transparent, " --transparent"),
            (self.nowildcard, " --nowildcard"),
            (self.restore_skmark, " --restore-skmark"),
        ] {
            if on {
                out.push_str(name);
            }
        }
    }

    fn hooks(&self) -> HookMask {
        hooks::PREROUTING | hooks::INPUT
    }

    fn tun_note(&self) -> Option<&'static str> {
        Some("the only local sockets are the router's metrics listener and its connections, none transparent: -m socket matches packets to (or ICMP errors about packets from) that address and port, never with --transparent")
    }

    fn compile(&self, _: &CompileEnv) -> Socket {
        *self
    }

    fn test(m: &Socket, p: &Pkt, cx: &mut Cx, _: &Engine) -> bool {
        // The local side of the lookup: the packet's destination, or the quoted source.
        let local = match p.h.proto {
            proto::TCP => match p.h.l4 {
                L4::Tcp(t) => Some((p.h.dst, t.dport)),
                _ => None,
            },
            proto::ICMP | proto::ICMPV6 => crate::conntrack::quoted(&p.h, p.buf)
                .filter(|q| q.proto == proto::TCP)
                .and_then(|q| q.ports().map(|(sport, _)| (q.src, sport))),
            _ => None,
        };
        let found = local.is_some_and(|(a, port)| cx.topo.listeners.iter().any(|l| l.ip() == a && l.port() == port));
        // None of the router's sockets is transparent.
        if !found || m.transparent {
            return false;
        }
        if m.restore_skmark {
            cx.mark_set = Some(0);
        }
        true
    }
}
