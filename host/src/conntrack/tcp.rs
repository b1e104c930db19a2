//! Netfilter's TCP connection state machine (`nf_conntrack_proto_tcp.c`, `tcp_conntracks`),
//! without window tracking: transitions follow the kernel's table exactly, with
//! `nf_conntrack_tcp_loose = 1` by default (a connection is picked up from a mid-stream ACK;
//! `[conntrack] tcp_loose = false` makes the table refuse such a start).

use crate::packet::tcp_flags;

/// TCP conntrack states, in the kernel's order (`enum tcp_conntrack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TcpState {
    None = 0,
    SynSent,
    SynRecv,
    Established,
    FinWait,
    CloseWait,
    LastAck,
    TimeWait,
    Close,
    SynSent2,
}

impl TcpState {
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::SynSent2 => "SYN_SENT2",
        }
    }
}

/// What a packet does to the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    To(TcpState),
    /// `sIG`: accept the packet, keep the state.
    Ignore,
    /// `sIV`: the packet is INVALID.
    Invalid,
}

/// `get_conntrack_index`: which row of the table a segment uses.
fn index(flags: u8) -> usize {
    if flags & tcp_flags::RST != 0 {
        4
    } else if flags & tcp_flags::SYN != 0 {
        if flags & tcp_flags::ACK != 0 {
            1
        } else {
            0
        }
    } else if flags & tcp_flags::FIN != 0 {
        2
    } else if flags & tcp_flags::ACK != 0 {
        3
    } else {
        5
    }
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, None as NO, SynRecv as SR,
    SynSent as SS, SynSent2 as S2, TimeWait as TW,
};
use Transition::{Ignore as IG, Invalid as IV, To};

const fn t(s: TcpState) -> Transition {
    To(s)
}

/// `tcp_conntracks[dir][index][state]`, columns sNO sSS sSR sES sFW sCW sLA sTW sCL sS2.
const TABLE: [[[Transition; 10]; 6]; 2] = [
    [
        /* syn    */ [t(SS), t(SS), IG, IG, IG, IG, IG, t(SS), t(SS), t(S2)],
        /* synack */ [IV, IV, t(SR), IV, IV, IV, IV, IV, IV, t(SR)],
        /* fin    */ [IV, IV, t(FW), t(FW), t(LA), t(LA), t(LA), t(TW), t(CL), IV],
        /* ack    */ [t(ES), IV, t(ES), t(ES), t(CW), t(CW), t(TW), t(TW), t(CL), IV],
        /* rst    */ [IV, t(CL), t(CL), t(CL), t(CL), t(CL), t(CL), t(CL), t(CL), t(CL)],
        /* none   */ [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
    ],
    [
        /* syn    */ [IV, t(S2), IV, IV, IV, IV, IV, t(SS), IV, t(S2)],
        /* synack */ [IV, t(SR), IG, IG, IG, IG, IG, IG, IG, t(SR)],
        /* fin    */ [IV, IV, t(FW), t(FW), t(LA), t(LA), t(LA), t(TW), t(CL), IV],
        /* ack    */ [IV, IG, t(SR), t(ES), t(CW), t(CW), t(TW), t(TW), t(CL), IG],
        /* rst    */ [IV, t(CL), t(CL), t(CL), t(CL), t(CL), t(CL), t(CL), t(CL), t(CL)],
        /* none   */ [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
    ],
];

/// The transition for a segment with `flags` in direction `reply` from state `s`.
pub fn transition(s: TcpState, reply: bool, flags: u8) -> Transition {
    TABLE[usize::from(reply)][index(flags)][s as usize]
}

/// Whether a first segment may start tracking (`tcp_new`): the transition from NONE in the
/// original direction must not be invalid. Returns the initial state.
pub fn start(flags: u8) -> Option<TcpState> {
    match transition(NO, false, flags) {
        To(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::tcp_flags::{ACK, FIN, RST, SYN};

    /// Walks a sequence of (reply?, flags) from a new connection; returns the states.
    fn walk(steps: &[(bool, u8)]) -> Vec<Transition> {
        let mut s = start(steps[0].1).expect("starts");
        let mut out = vec![To(s)];
        for &(r, f) in &steps[1..] {
            let tr = transition(s, r, f);
            if let To(n) = tr {
                s = n;
            }
            out.push(tr);
        }
        out
    }

    #[test]
    fn three_way_handshake_and_close() {
        let states = walk(&[
            (false, SYN),
            (true, SYN | ACK),
            (false, ACK),
            (false, FIN | ACK),
            (true, ACK),
            (true, FIN | ACK),
            (false, ACK),
        ]);
        assert_eq!(states, vec![To(SS), To(SR), To(ES), To(FW), To(CW), To(LA), To(TW)]);
    }

    #[test]
    fn out_of_state_segments_are_invalid() {
        assert_eq!(start(SYN | ACK), None, "a SYN/ACK cannot open a connection");
        assert_eq!(start(FIN), None);
        assert_eq!(start(RST), None);
        assert_eq!(start(0), None);
        assert_eq!(start(ACK), Some(ES), "loose pickup of an established connection");
        assert_eq!(transition(SS, false, ACK), IV, "ACK before SYN/ACK");
        assert_eq!(transition(SS, false, FIN), IV);
        assert_eq!(transition(ES, false, SYN | ACK), IV);
        assert_eq!(
            transition(ES, false, SYN),
            IG,
            "SYN in window outside SYN_SENT is ignored"
        );
        assert_eq!(transition(SR, true, SYN | ACK), IG, "retransmitted SYN/ACK");
    }

    #[test]
    fn simultaneous_open_and_resets() {
        assert_eq!(transition(SS, true, SYN), To(S2));
        assert_eq!(transition(S2, true, SYN | ACK), To(SR));
        assert_eq!(transition(ES, true, RST), To(CL));
        assert_eq!(transition(TW, false, SYN), To(SS), "reopened (RFC 1122)");
    }
}
