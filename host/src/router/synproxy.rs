//! The router's side of SYNPROXY: the target (`synproxy_tg4`/`synproxy_tg6`), the hook that
//! runs just before confirmation at POSTROUTING and LOCAL_IN (`ipv4_synproxy_hook`,
//! `ipv6_synproxy_hook`, priority `NF_IP_PRI_CONNTRACK_CONFIRM - 1`), and the sequence
//! adjustment `nf_confirm` then makes (`nf_ct_seq_adjust`).
//!
//! The handshake, as in `nf_synproxy_core.c`:
//! 1. The client's SYN meets the target: the router answers with a SYN-ACK whose sequence
//!    number is a cookie (and whose timestamp carries the client's options), and keeps
//!    nothing.
//! 2. The client's ACK meets the target: a good cookie makes the router send the server a SYN
//!    on the client's behalf, with the client's options; its new connection carries
//!    SYNPROXY's record, where the hook notes the cookie and timestamp the client was given.
//! 3. The server's SYN-ACK reaches the hook: the router answers it with the client's ACK,
//!    sends the client a window update, and from then on shifts the server's sequence
//!    numbers and timestamps into the ones the client knows, on every packet.

use super::*;
use crate::conntrack::tcp::TcpState;
use crate::eval::status;
use crate::packet::Tcp;
use crate::synproxy::{self as sp, opt, Info, Options, Stats};

/// What the hook does with a packet after looking at its connection's record.
enum Step {
    /// Adjust and let it pass.
    Pass,
    /// A client's ACK retransmitted while the server has not answered: check it again.
    ClientAck,
    /// The server's SYN-ACK: finish both handshakes.
    ServerSynAck,
}

impl Run<'_> {
    fn now_ms(&self) -> u32 {
        (self.now / 1_000_000) as u32
    }

    /// `tcp_cookie_time`: minutes.
    fn minute(&self) -> u32 {
        (self.now / (60 * conntrack::NS)) as u32
    }

    /// The target: a SYN is answered with a cookie, an ACK checked (the target hands over only
    /// those two, see `targets::synproxy::handles`).
    pub(super) fn synproxy_target(&mut self, p: &mut Pkt, reply: &mut Reply, info: Info) -> Disposition {
        let L4::Tcp(t) = p.h.l4 else {
            return Disposition::Drop(DropReason::SynproxyInvalid);
        };
        // `nf_ip_checksum`: a segment the client did not send intact is no handshake.
        if !packet::l4_checksum_valid(p.buf, &p.h) {
            return Disposition::Drop(DropReason::SynproxyInvalid);
        }
        let mut o = sp::parse_options(sp::tcp_options(p.buf, &p.h));
        if t.flags & tcp_flags::SYN == 0 {
            return if self.synproxy_client_ack(p, reply, &t, &mut o, t.seq) {
                Disposition::Drop(DropReason::Synproxy)
            } else {
                Disposition::Drop(DropReason::SynproxyInvalid)
            };
        }
        Stats::bump(&self.r.synproxy.stats.syn_received);
        if t.flags & tcp_flags::ECE != 0 && t.flags & tcp_flags::CWR != 0 {
            o.options |= opt::ECN;
        }
        o.options &= info.options;
        o.mss_encode = o.mss_option;
        o.mss_option = info.mss;
        if o.options & opt::TIMESTAMP != 0 {
            sp::init_timestamp_cookie(&info, &mut o, self.now_ms());
        } else {
            o.options &= !(opt::WSCALE | opt::SACK_PERM | opt::ECN);
        }
        // `synproxy_send_client_synack`.
        let cookie = self.r.synproxy.make(&flow(p, &t), t.seq, o.mss_encode, self.minute());
        let ece = if o.options & opt::ECN != 0 { tcp_flags::ECE } else { 0 };
        let seg = TcpSeg {
            sport: t.dport,
            dport: t.sport,
            seq: cookie,
            ack: t.seq.wrapping_add(1),
            flags: tcp_flags::SYN | tcp_flags::ACK | ece,
            window: 0,
        };
        if build_segment(&mut reply.buf, p.h.dst, p.h.src, seg, &o) {
            self.send_attached(p, reply, "SYNPROXY SYN-ACK", CtState::Established, true);
        }
        Disposition::Drop(DropReason::Synproxy)
    }

    /// `synproxy_recv_client_ack`: the ACK's cookie gives the client's MSS (its timestamp the
    /// rest of its options), and the router opens the connection to the server.
    fn synproxy_client_ack(&mut self, p: &Pkt, reply: &mut Reply, t: &Tcp, o: &mut Options, recv_seq: u32) -> bool {
        let r = self.r;
        let stats = &r.synproxy.stats;
        let Some(mss) = r.synproxy.check(&flow(p, t), t.seq, t.ack, self.minute()) else {
            Stats::bump(&stats.cookie_invalid);
            return false;
        };
        Stats::bump(&stats.cookie_valid);
        o.mss_option = mss;
        o.options |= opt::MSS;
        if o.options & opt::TIMESTAMP != 0 {
            sp::check_timestamp_cookie(o);
        }
        // `synproxy_send_server_syn`: its acknowledgment field carries the client's ISN from
        // the router to the hook, which records it.
        let (ece, cwr) = if o.options & opt::ECN != 0 {
            (tcp_flags::ECE, tcp_flags::CWR)
        } else {
            (0, 0)
        };
        let seg = TcpSeg {
            sport: t.sport,
            dport: t.dport,
            seq: recv_seq.wrapping_sub(1),
            ack: t.ack.wrapping_sub(1),
            flags: tcp_flags::SYN | ece | cwr,
            window: t.window,
        };
        if build_segment(&mut reply.buf, p.h.src, p.h.dst, seg, o) {
            self.send_new(reply, true, "SYNPROXY SYN to the server");
        }
        true
    }

    /// Runs `f` on the packet's connection, in the table or still travelling with it.
    fn with_conn<R>(&mut self, f: impl FnOnce(&mut ConnState) -> R) -> Option<R> {
        match &mut self.flow.conn {
            FlowConn::Known(c) => Some(f(&mut c.lock())),
            FlowConn::New(st) => Some(f(st)),
            FlowConn::None => None,
        }
    }

    /// The hook before confirmation, then the sequence adjustment. `Some` when it takes or
    /// drops the packet.
    pub(super) fn synproxy_hook(&mut self, p: &mut Pkt, reply: &mut Reply) -> Option<Disposition> {
        let Ct::Tracked(c) = p.ct else { return None };
        if c.status & status::SYNPROXY == 0 {
            return None;
        }
        let L4::Tcp(t) = p.h.l4 else { return None };
        let orig = self.flow.dir == Dir::Original;
        let o = sp::parse_options(sp::tcp_options(p.buf, &p.h));
        let (syn, ack, rst) = (
            t.flags & tcp_flags::SYN != 0,
            t.flags & tcp_flags::ACK != 0,
            t.flags & tcp_flags::RST != 0,
        );
        let r = self.r;
        let stats = &r.synproxy.stats;
        let (step, rec, st_status) = self.with_conn(|st| {
            let mut rec = st.synproxy;
            let mut step = Step::Pass;
            let mut state = st.tcp;
            if state == TcpState::Close {
                if rst && !orig {
                    let off = rec.isn.wrapping_sub(t.seq).wrapping_add(1);
                    seqadj_init(st, &mut rec, off);
                } else if syn && !ack && orig {
                    // Reopened: the shifts start again once it is re-established.
                    rec.tsoff = 0;
                    Stats::bump(&stats.conn_reopened);
                    state = TcpState::SynSent;
                }
            }
            match state {
                TcpState::SynSent if !syn && ack && orig => step = Step::ClientAck,
                TcpState::SynSent => {
                    rec.isn = t.ack;
                    if o.options & opt::TIMESTAMP != 0 {
                        rec.its = o.tsecr;
                    }
                    if syn && orig {
                        // The original direction's `td_maxwin`, as conntrack sets it from a SYN.
                        rec.win = t.window.max(1);
                    }
                }
                TcpState::SynRecv if syn && ack => {
                    if o.options & opt::TIMESTAMP != 0 {
                        rec.tsoff = o.tsval.wrapping_sub(rec.its);
                    }
                    step = Step::ServerSynAck;
                }
                _ => {}
            }
            st.synproxy = rec;
            (step, rec, st.status)
        })?;
        match step {
            Step::ClientAck => {
                let mut o = o;
                // Keep-alives carry SND.NXT-1: one more gives the SYN's sequence back.
                return Some(
                    if self.synproxy_client_ack(p, reply, &t, &mut o, t.seq.wrapping_add(1)) {
                        Stats::bump(&self.r.synproxy.stats.cookie_retrans);
                        Disposition::Drop(DropReason::Synproxy)
                    } else {
                        Disposition::Drop(DropReason::SynproxyInvalid)
                    },
                );
            }
            Step::ServerSynAck => {
                self.synproxy_finish(p, reply, &t, o, rec);
                return Some(Disposition::Drop(DropReason::Synproxy));
            }
            Step::Pass => {}
        }
        sp::tstamp_adjust(p.buf, &p.h, !orig, rec.tsoff);
        if st_status & status::SEQ_ADJUST != 0 && !sp::seq_adjust(p.buf, &p.h, !orig, rec.seq_off) {
            return Some(Disposition::Drop(DropReason::SynproxyInvalid));
        }
        // The cached header follows the bytes.
        if let (L4::Tcp(h), Some(b)) = (&mut p.h.l4, p.buf.get(usize::from(p.h.l4_off) + 4..)) {
            h.seq = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            h.ack = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        }
        None
    }

    /// The server's SYN-ACK: the router acknowledges it as the client would, shifts the
    /// server's sequence space onto the cookie's, and opens the client's window.
    fn synproxy_finish(&mut self, p: &Pkt, reply: &mut Reply, t: &Tcp, mut o: Options, rec: sp::Record) {
        o.options &= !(opt::MSS | opt::WSCALE | opt::SACK_PERM);
        std::mem::swap(&mut o.tsval, &mut o.tsecr);
        // `synproxy_send_server_ack`, tracked as any packet the router sends.
        let seg = TcpSeg {
            sport: t.dport,
            dport: t.sport,
            seq: t.ack,
            ack: t.seq.wrapping_add(1),
            flags: tcp_flags::ACK,
            window: rec.win,
        };
        if build_segment(&mut reply.buf, p.h.dst, p.h.src, seg, &o) {
            self.send_new(reply, false, "SYNPROXY ACK to the server");
        }
        self.with_conn(|st| {
            let mut r = st.synproxy;
            seqadj_init(st, &mut r, rec.isn.wrapping_sub(t.seq));
            st.synproxy = r;
        });
        std::mem::swap(&mut o.tsval, &mut o.tsecr);
        // `synproxy_send_client_ack`: attached to the connection, in the SYN-ACK's direction.
        let seg = TcpSeg {
            sport: t.sport,
            dport: t.dport,
            seq: t.seq.wrapping_add(1),
            ack: t.ack,
            flags: tcp_flags::ACK,
            window: t.window.checked_shr(u32::from(o.wscale)).unwrap_or(0),
        };
        let mut second = Reply::default();
        if build_segment(&mut second.buf, p.h.src, p.h.dst, seg, &o) {
            self.send_attached(p, &mut second, "SYNPROXY window update", CtState::Established, false);
            if let Some(Disposition::Forward(hop)) = second.disposition {
                reply.copies.push((second.buf, hop));
            }
        }
    }

    /// Runs a packet the router built in `reply` through OUTPUT and POSTROUTING as one of its
    /// own: conntrack looks it up (a new connection is confirmed once it passed, carrying
    /// SYNPROXY's record when `synproxy_syn`), without touching the outcome of the packet
    /// being processed.
    fn send_new(&mut self, reply: &mut Reply, synproxy_syn: bool, what: &str) {
        let Ok(h) = packet::parse(&reply.buf) else { return };
        self.obs
            .event(&|| format!("{what} {} -> {} sent through OUTPUT", h.src, h.dst));
        let mut buf = std::mem::take(&mut reply.buf);
        let mut p = Pkt {
            buf: &mut buf,
            h,
            in_if: None,
            out_if: None,
            mark: 0,
            ct: Ct::Invalid,
            zone: 0,
            nat: None,
            nat_done: false,
            seen: false,
            trace: false,
        };
        let flow = std::mem::replace(&mut self.flow, Flow::none());
        let out = self.out;
        let was = std::mem::replace(&mut self.synproxy_syn, synproxy_syn);
        let mut sink = Reply::default();
        let d = self.local_out(&mut p, &mut sink, true);
        self.synproxy_syn = was;
        let conn = std::mem::replace(&mut self.flow.conn, FlowConn::None);
        let d = self.r.settle(conn, p.ct, d, self.now);
        self.flow = flow;
        self.out = Outcome { replied: true, ..out };
        reply.buf = buf;
        reply.disposition = Some(d);
    }
}

/// `nf_ct_seqadj_init` for the reply direction (the only one SYNPROXY shifts): nothing for a
/// zero shift.
fn seqadj_init(st: &mut ConnState, r: &mut sp::Record, off: u32) {
    if off == 0 {
        return;
    }
    st.status |= status::SEQ_ADJUST;
    r.seq_off = off;
}

/// The flow a cookie is made for: the client's SYN's addresses and ports.
fn flow(p: &Pkt, t: &Tcp) -> sp::Flow {
    sp::Flow {
        src: p.h.src,
        dst: p.h.dst,
        sport: t.sport,
        dport: t.dport,
    }
}

/// Writes a SYNPROXY segment from `src` to `dst` (`synproxy_build_ip`: DF, TTL 64, no TOS).
fn build_segment(buf: &mut Vec<u8>, src: IpAddr, dst: IpAddr, seg: TcpSeg, o: &Options) -> bool {
    let (opts, n) = sp::build_options(o);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => build::tcp_with_options(
            buf,
            Ip4 {
                df: true,
                ..Ip4::new(s, d, proto::TCP)
            },
            seg,
            &opts[..n],
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => build::tcp_with_options(buf, Ip6::new(s, d), seg, &opts[..n]),
        _ => return false,
    }
    true
}
