//! Connection tracking: one entry per connection in a concurrent hash table (sharded, keyed
//! with foldhash, see `index`), found from either direction.
//!
//! Like netfilter's conntrack, an entry holds two tuples: `orig`, the first packet as it
//! arrived, and `reply`, what a reply looks like — after NAT, which is why NAT is nothing more
//! than a changed reply tuple ([`crate::nat`]). Both tuples index the entry. A connection is
//! *tentative* while its first packet crosses the hooks and is inserted ([`Table::confirm`])
//! only after that packet passed every hook; a dropped first packet leaves nothing behind.
//!
//! The table has a hard size limit. When it is full, the oldest connection that never saw a
//! reply is evicted (`early_drop`); if there is none, the new connection is refused and
//! counted, so a SYN flood cannot push out established connections. Expiry is passed `now`
//! and runs off the packet path ([`Table::gc`]); a lookup also ignores an expired entry.

pub mod tcp;

use crate::config::ConntrackSection;
use crate::eval::status;
use crate::packet::{proto, Headers, L4};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tcp::{TcpState, Transition};

mod index;

pub const NS: u64 = 1_000_000_000;

/// One direction of a connection: addresses, ports (ICMP: the echo identifier as `sport`),
/// protocol and zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub zone: u16,
}

impl Key {
    /// The tuple of a packet that conntrack can track by itself: TCP, UDP, SCTP, ICMP
    /// queries and replies, and other protocols by address. ICMP errors have none (they are
    /// RELATED to the connection they quote) and neither do non-first fragments of
    /// port-carrying protocols.
    pub fn of(h: &Headers, zone: u16) -> Option<Key> {
        let (sport, dport) = match h.l4 {
            L4::Tcp(t) => (t.sport, t.dport),
            L4::Udp { sport, dport } | L4::Sctp { sport, dport } => (sport, dport),
            L4::Icmp(i) if is_icmp_query(h.proto, i.typ) => (i.ident, 0),
            L4::Icmp(_) => return None,
            L4::None
                if matches!(
                    h.proto,
                    proto::TCP | proto::UDP | proto::SCTP | proto::ICMP | proto::ICMPV6
                ) =>
            {
                return None
            }
            L4::None => (0, 0),
        };
        Some(Key {
            src: h.src,
            dst: h.dst,
            sport,
            dport,
            proto: h.proto,
            zone,
        })
    }

    pub fn reverse(&self) -> Key {
        match self.proto {
            // An ICMP query and its reply carry the same identifier.
            proto::ICMP | proto::ICMPV6 => Key {
                src: self.dst,
                dst: self.src,
                ..*self
            },
            _ => Key {
                src: self.dst,
                dst: self.src,
                sport: self.dport,
                dport: self.sport,
                ..*self
            },
        }
    }

    pub fn has_ports(&self) -> bool {
        matches!(self.proto, proto::TCP | proto::UDP | proto::SCTP | 33 | 136)
    }
}

/// Echo, timestamp, information and address-mask requests and replies (RFC 792, 950), and
/// ICMPv6 echo (RFC 4443).
pub fn is_icmp_query(proto: u8, typ: u8) -> bool {
    match proto {
        proto::ICMP => matches!(typ, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18),
        _ => matches!(typ, 128 | 129),
    }
}

/// Which way a packet travels relative to the connection's first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Original,
    Reply,
}

/// Timeouts in nanoseconds, from `[conntrack]`.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub tcp: [u64; 10],
    pub tcp_unack: u64,
    pub udp: u64,
    pub udp_stream: u64,
    pub icmp: u64,
    pub generic: u64,
}

impl Timeouts {
    pub fn from_config(c: &ConntrackSection) -> Timeouts {
        let s = |v: u32| u64::from(v) * NS;
        let mut tcp = [0; 10];
        tcp[TcpState::SynSent as usize] = s(c.tcp_syn_sent);
        tcp[TcpState::SynRecv as usize] = s(c.tcp_syn_recv);
        tcp[TcpState::Established as usize] = s(c.tcp_established);
        tcp[TcpState::FinWait as usize] = s(c.tcp_fin_wait);
        tcp[TcpState::CloseWait as usize] = s(c.tcp_close_wait);
        tcp[TcpState::LastAck as usize] = s(c.tcp_last_ack);
        tcp[TcpState::TimeWait as usize] = s(c.tcp_time_wait);
        tcp[TcpState::Close as usize] = s(c.tcp_close);
        tcp[TcpState::SynSent2 as usize] = s(c.tcp_syn_sent);
        Timeouts {
            tcp,
            tcp_unack: s(c.tcp_unacknowledged),
            udp: s(c.udp),
            udp_stream: s(c.udp_stream),
            icmp: s(c.icmp),
            generic: s(c.generic),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::from_config(&ConntrackSection::default())
    }
}

/// The mutable part of a connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnState {
    pub orig: Key,
    pub reply: Key,
    /// `status::*` bits.
    pub status: u16,
    pub mark: u32,
    /// `-m connlabel` bits.
    pub labels: Labels,
    /// ICMP: the type and code of the query that opened the connection.
    pub icmp: (u8, u8),
    /// Monotonic nanoseconds at which the entry expires.
    pub expires: u64,
    pub tcp: TcpState,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    /// UDP: when a replied flow still active counts as a stream (2 s after its first packet,
    /// `ct->proto.udp.stream_ts`).
    pub stream_ts: u64,
    /// SYNPROXY's record, when `status::SYNPROXY` is set.
    pub synproxy: crate::synproxy::Record,
}

/// `-m connlabel` bits, held as two words so that a connection is aligned to 8 bytes rather
/// than 16 (which keeps it within its allocation size class).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Labels([u64; 2]);

impl Labels {
    pub fn get(self) -> u128 {
        u128::from(self.0[0]) | (u128::from(self.0[1]) << 64)
    }
}

impl From<u128> for Labels {
    fn from(v: u128) -> Labels {
        Labels([v as u64, (v >> 64) as u64])
    }
}

/// `tcp_valid_flags` (`nf_conntrack_proto_tcp.c`): the flag combinations, ECE, CWR and PSH
/// aside, that a TCP segment may carry; anything else (SYN+FIN, SYN+RST, none, all, …) is
/// INVALID.
fn tcp_flags_valid(flags: u8) -> bool {
    use crate::packet::tcp_flags::{ACK, FIN, PSH, RST, SYN, URG};
    matches!(
        flags & !(0x40 | 0x80 | PSH),
        f if f == SYN
            || f == SYN | URG
            || f == SYN | ACK
            || f == RST
            || f == RST | ACK
            || f == FIN | ACK
            || f == FIN | ACK | URG
            || f == ACK
            || f == ACK | URG
    )
}

/// The checks `tcp_error`, `udp_error` and `icmp_error` make before a packet reaches the
/// state machine.
fn valid(h: &Headers, buf: &[u8], arriving: bool) -> Result<(), &'static str> {
    match h.l4 {
        L4::Tcp(t) if !tcp_flags_valid(t.flags) => return Err("invalid TCP flag combination"),
        L4::Udp { .. } if !h.is_fragment() => {
            // The parser has checked that the header is there; a summary built without its
            // bytes (benchmarks) has nothing to check.
            let at = usize::from(h.l4_off);
            if let Some(b) = buf.get(at + 4..at + 6) {
                let len = usize::from(u16::from_be_bytes([b[0], b[1]]));
                if len < 8 || len > usize::from(h.total_len).saturating_sub(at) {
                    return Err("truncated/malformed UDP packet");
                }
            }
        }
        _ => {}
    }
    if arriving && !crate::packet::l4_checksum_valid(buf, h) {
        return Err("bad checksum");
    }
    Ok(())
}

/// A connection. Shared by both of its table entries and by packets in flight.
#[derive(Debug)]
pub struct Conn {
    /// The index's hashes of the original and reply tuples (they never change once the
    /// connection is confirmed), so that the index grows without reading the tuples.
    hashes: [u32; 2],
    pub st: Mutex<ConnState>,
}

impl Conn {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, ConnState> {
        crate::eval::state::lock(&self.st)
    }
}

/// How a packet stands after conntrack looked at it.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// An existing connection, in `Dir`; `established` unless it is an original-direction
    /// packet of a connection that has not seen a reply yet (still NEW, as in Linux).
    Known { conn: Arc<Conn>, dir: Dir, new: bool },
    /// An ICMP error quoting a tracked connection, travelling in `Dir` of it.
    Related { conn: Arc<Conn>, dir: Dir },
    /// The first packet of a new connection, not in the table yet: it travels with the
    /// packet (no allocation) and is inserted by [`Table::confirm`].
    Tentative(ConnState),
    /// Out of state (TCP) or not trackable.
    Invalid,
}

/// Table counters.
#[derive(Debug, Default)]
pub struct Stats {
    pub found: AtomicU64,
    pub new: AtomicU64,
    pub invalid: AtomicU64,
    pub inserted: AtomicU64,
    pub insert_failed: AtomicU64,
    /// Racing first packets of one flow: the later one went on with the earlier's entry.
    pub clash_resolved: AtomicU64,
    pub early_drop: AtomicU64,
    /// New connections refused because the table was full of replied connections.
    pub drop_full: AtomicU64,
    pub expired: AtomicU64,
    pub deleted: AtomicU64,
}

impl Stats {
    /// The counters as `conntrack -S` prints the kernel's (one line; rtrouter's table is one
    /// across its workers, so it is `cpu=0`).
    pub fn line(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "cpu=0   \tfound={} invalid={} insert={} insert_failed={} drop={} early_drop={} error=0 search_restart=0 clash_resolve={} chaintoolong=0 ",
            g(&self.found),
            g(&self.invalid),
            g(&self.inserted),
            g(&self.insert_failed),
            g(&self.drop_full),
            g(&self.early_drop),
            g(&self.clash_resolved)
        )
    }
}

/// A filter for listing and deleting entries (`conntrack -L/-D` options).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub proto: Option<u8>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub mark: Option<u32>,
}

impl Filter {
    /// Whether the connection's original tuple matches.
    pub fn matches(&self, s: &ConnState) -> bool {
        let o = &s.orig;
        self.proto.is_none_or(|p| p == o.proto)
            && self.src.is_none_or(|a| a == o.src)
            && self.dst.is_none_or(|a| a == o.dst)
            && self.sport.is_none_or(|p| p == o.sport)
            && self.dport.is_none_or(|p| p == o.dport)
            && self.mark.is_none_or(|m| m == s.mark)
    }
}

/// The connection table.
#[derive(Debug)]
pub struct Table {
    index: index::Index,
    count: AtomicUsize,
    pub max: usize,
    pub timeouts: Timeouts,
    /// Connections that had not seen a reply when inserted, oldest first: eviction candidates.
    unreplied: Mutex<VecDeque<std::sync::Weak<Conn>>>,
    pub stats: Stats,
    /// `conntrack -L` shows packet and byte counters (`nf_conntrack_acct`).
    pub accounting: bool,
    /// A TCP connection may start from a segment other than a SYN (`nf_conntrack_tcp_loose`).
    pub tcp_loose: bool,
    /// `conntrack -E`: NEW, UPDATE and DESTROY events as conntrack-tools prints them.
    pub events: crate::monitor::Monitor,
}

impl Table {
    pub fn new(max: usize, timeouts: Timeouts) -> Table {
        // Start with room for a modest number and grow on demand.
        let cap = max.min(1 << 12);
        Table {
            index: index::Index::new(cap),
            count: AtomicUsize::new(0),
            max,
            timeouts,
            unreplied: Mutex::new(VecDeque::new()),
            stats: Stats::default(),
            accounting: false,
            tcp_loose: true,
            events: crate::monitor::Monitor::default(),
        }
    }

    pub fn from_config(c: &ConntrackSection) -> Table {
        Table {
            accounting: c.accounting,
            tcp_loose: c.tcp_loose,
            ..Table::new(c.max_entries, Timeouts::from_config(c))
        }
    }

    /// Connections in the table.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `k` is some connection's tuple (either direction): NAT must not reuse it.
    pub fn taken(&self, k: &Key) -> bool {
        self.index.contains(k)
    }

    fn get(&self, k: &Key, now: u64) -> Option<(Arc<Conn>, Dir)> {
        let (c, d) = self.index.get(k)?;
        if c.lock().expires <= now {
            return None;
        }
        Some((c, d))
    }

    /// Classifies a packet and updates its connection (`nf_conntrack_in`): state machine,
    /// timeouts, counters, SEEN_REPLY/ASSURED. `arriving` is a packet from an interface
    /// (PREROUTING), whose transport checksum is verified as with `nf_conntrack_checksum=1`.
    pub fn inspect(&self, h: &Headers, buf: &[u8], zone: u16, now: u64, arriving: bool) -> Verdict {
        if let Err(why) = valid(h, buf, arriving) {
            tracing::trace!(target: "rtrouter::conntrack", "invalid: {why}");
            self.stats.invalid.fetch_add(1, Ordering::Relaxed);
            return Verdict::Invalid;
        }
        let Some(key) = Key::of(h, zone) else {
            return self.related(h, buf, zone, now);
        };
        let Some((conn, dir)) = self.index.get(&key) else {
            return self.start(key, h, now);
        };
        let mut st = conn.lock();
        if st.expires <= now {
            // Expired but not yet collected: collect it, and the packet starts anew.
            let (o, r) = (st.orig, st.reply);
            drop(st);
            self.remove(&o, &r);
            self.stats.expired.fetch_add(1, Ordering::Relaxed);
            return self.start(key, h, now);
        }
        let reply = dir == Dir::Reply;
        let before = (st.status & (status::SEEN_REPLY | status::ASSURED), st.tcp);
        let bytes = u64::from(h.total_len);
        st.packets[usize::from(reply)] += 1;
        st.bytes[usize::from(reply)] += bytes;
        let mut kill = false;
        let timeout = match h.l4 {
            L4::Tcp(t) => match tcp::transition(st.tcp, reply, t.flags) {
                Transition::Invalid => {
                    drop(st);
                    self.stats.invalid.fetch_add(1, Ordering::Relaxed);
                    return Verdict::Invalid;
                }
                Transition::Ignore => None,
                Transition::To(new) => {
                    let old = st.tcp;
                    st.tcp = new;
                    if t.flags & crate::packet::tcp_flags::RST != 0 && st.status & status::SEEN_REPLY == 0 && reply {
                        // "If only reply is a RST, we can consider ourselves not to have an
                        // established connection" (the kernel deletes the entry at once).
                        kill = true;
                    }
                    if st.status & status::SEEN_REPLY != 0
                        && st.status & status::ASSURED == 0
                        && matches!(old, TcpState::SynRecv | TcpState::Established)
                        && new == TcpState::Established
                    {
                        st.status |= status::ASSURED;
                    }
                    let mut to = self.timeouts.tcp[new as usize];
                    if t.flags & crate::packet::tcp_flags::RST != 0 {
                        to = self.timeouts.tcp[TcpState::Close as usize];
                    } else if st.status & status::ASSURED == 0
                        && to > self.timeouts.tcp_unack
                        && new == TcpState::Established
                    {
                        to = self.timeouts.tcp_unack;
                    }
                    Some(to)
                }
            },
            // `nf_conntrack_udp_packet` (Linux 6.x): a flow that has seen a reply (before this
            // packet) and is still active 2 s after its first packet is a stream: the long
            // timeout and ASSURED. Until then, and for the first reply itself, the short one.
            L4::Udp { .. } => Some(if st.status & status::SEEN_REPLY != 0 && now > st.stream_ts {
                st.status |= status::ASSURED;
                self.timeouts.udp_stream
            } else {
                self.timeouts.udp
            }),
            L4::Icmp(_) => Some(self.timeouts.icmp),
            _ => Some(self.timeouts.generic),
        };
        if reply && st.status & status::SEEN_REPLY == 0 {
            st.status |= status::SEEN_REPLY;
            if h.proto == proto::ICMP {
                st.status |= status::ASSURED;
            }
        }
        if let Some(to) = timeout {
            st.expires = now + to;
        }
        let new = !reply && st.status & status::SEEN_REPLY == 0;
        let (orig, rep) = (st.orig, st.reply);
        let changed = before != (st.status & (status::SEEN_REPLY | status::ASSURED), st.tcp);
        let shown = *st;
        drop(st);
        self.stats.found.fetch_add(1, Ordering::Relaxed);
        if kill {
            self.remove(&orig, &rep);
            self.event("[DESTROY]", &shown, now);
        } else if changed {
            self.event("[UPDATE]", &shown, now);
        }
        Verdict::Known { conn, dir, new }
    }

    /// A first packet: a tentative connection, or INVALID when its protocol cannot start one
    /// with it (a TCP segment without SYN other than a loose-pickup ACK).
    fn start(&self, key: Key, h: &Headers, now: u64) -> Verdict {
        let (tcp, timeout) = match h.l4 {
            L4::Tcp(t) => match tcp::start(t.flags) {
                // Without loose pickup only a SYN starts a connection (`tcp_new`).
                Some(s) if self.tcp_loose || s == TcpState::SynSent => (s, self.timeouts.tcp[s as usize]),
                _ => {
                    self.stats.invalid.fetch_add(1, Ordering::Relaxed);
                    return Verdict::Invalid;
                }
            },
            L4::Udp { .. } => (TcpState::None, self.timeouts.udp),
            L4::Icmp(i) => {
                // Only a request opens an ICMP connection; a lone reply is INVALID.
                if !matches!(i.typ, 8 | 13 | 15 | 17 | 128) {
                    self.stats.invalid.fetch_add(1, Ordering::Relaxed);
                    return Verdict::Invalid;
                }
                (TcpState::None, self.timeouts.icmp)
            }
            _ => (TcpState::None, self.timeouts.generic),
        };
        self.stats.new.fetch_add(1, Ordering::Relaxed);
        Verdict::Tentative(ConnState {
            orig: key,
            reply: key.reverse(),
            status: 0,
            mark: 0,
            labels: Labels::default(),
            icmp: match h.l4 {
                L4::Icmp(i) => (i.typ, i.code),
                _ => (0, 0),
            },
            expires: now + timeout,
            tcp,
            packets: [1, 0],
            bytes: [u64::from(h.total_len), 0],
            stream_ts: now + 2 * NS,
            synproxy: Default::default(),
        })
    }

    /// An ICMP error: RELATED to the connection its quoted packet belongs to
    /// (`icmp_error_message`), else INVALID.
    fn related(&self, h: &Headers, buf: &[u8], zone: u16, now: u64) -> Verdict {
        let Some(inner) = quoted(h, buf) else {
            return Verdict::Invalid;
        };
        let Some(k) = Key::of(&inner, zone) else {
            return Verdict::Invalid;
        };
        // The quoted packet travelled the other way: look up its reverse.
        match self.get(&k.reverse(), now) {
            Some((conn, dir)) => Verdict::Related { conn, dir },
            None => Verdict::Invalid,
        }
    }

    /// Inserts a tentative connection whose first packet passed every hook
    /// (`nf_conntrack_confirm`). `Err` when the table is full of replied connections or a
    /// tuple was taken meanwhile: the packet must be dropped.
    pub fn confirm(&self, mut st: ConnState, now: u64) -> Result<(), crate::packet::DropReason> {
        st.status |= status::CONFIRMED;
        let shown = st;
        let (orig, reply) = (st.orig, st.reply);
        // A place in the table first, atomically, so that racing inserts cannot overshoot
        // `max_entries`.
        let placed = self.reserve() || (self.early_drop() && self.reserve());
        if !placed {
            self.stats.drop_full.fetch_add(1, Ordering::Relaxed);
            return Err(crate::packet::DropReason::ConntrackFull);
        }
        let conn = Arc::new(Conn {
            hashes: [self.index.hash32(&orig), self.index.hash32(&reply)],
            st: Mutex::new(st),
        });
        if let Err(winner) = self.index.insert(Dir::Original, &orig, &conn) {
            // Another packet of the same flow confirmed first (`nf_ct_resolve_clash`): when
            // it made the same connection, this packet goes on with it; otherwise it is
            // dropped as a clash.
            self.count.fetch_sub(1, Ordering::Relaxed);
            let same = {
                let w = winner.lock();
                w.orig == orig && w.reply == reply
            };
            if same {
                self.stats.clash_resolved.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            self.stats.insert_failed.fetch_add(1, Ordering::Relaxed);
            return Err(crate::packet::DropReason::Clash);
        }
        if reply != orig && self.index.insert(Dir::Reply, &reply, &conn).is_err() {
            // Another connection owns this one's reply tuple: undo.
            self.index.remove_if(Dir::Original, &orig, |c| std::ptr::eq(c, &*conn));
            self.count.fetch_sub(1, Ordering::Relaxed);
            self.stats.insert_failed.fetch_add(1, Ordering::Relaxed);
            return Err(crate::packet::DropReason::Clash);
        }
        self.stats.inserted.fetch_add(1, Ordering::Relaxed);
        crate::eval::state::lock(&self.unreplied).push_back(Arc::downgrade(&conn));
        self.event("[NEW]", &shown, now);
        Ok(())
    }

    /// Publishes a `conntrack -E` event about `st` when someone listens.
    fn event(&self, tag: &str, st: &ConnState, now: u64) {
        if self.events.listening() {
            self.events
                .publish(&format!("{tag:>9} {}", event_line(st, now, self.accounting)));
        }
    }

    /// Takes a place in the table if there is one (the count includes it from now on).
    fn reserve(&self) -> bool {
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| (c < self.max).then_some(c + 1))
            .is_ok()
    }

    /// Evicts the oldest connection that is not ASSURED (Linux's `early_drop`: a half-open
    /// TCP connection or a UDP flow not yet a stream may go, an assured one never). `false`
    /// when there is none.
    fn early_drop(&self) -> bool {
        let mut q = crate::eval::state::lock(&self.unreplied);
        while let Some(w) = q.pop_front() {
            let Some(conn) = w.upgrade() else { continue };
            let st = conn.lock();
            if st.status & status::ASSURED != 0 {
                // Assured since: never a candidate again.
                continue;
            }
            let (o, r) = (st.orig, st.reply);
            drop(st);
            // Gone from the table meanwhile (expired and collected): try the next.
            if !self.remove(&o, &r) {
                continue;
            }
            drop(q);
            self.stats.early_drop.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Removes the connection with these tuples; whether it was there.
    fn remove(&self, orig: &Key, reply: &Key) -> bool {
        let gone = self.index.remove_if(Dir::Original, orig, |_| true);
        if gone {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        if reply != orig {
            self.index.remove_if(Dir::Reply, reply, |_| true);
        }
        gone
    }

    /// Removes the connection `k` names (either of its tuples); `false` if there is none.
    pub fn forget(&self, k: &Key) -> bool {
        let Some((conn, _)) = self.index.get(k) else {
            return false;
        };
        let (o, r) = {
            let st = conn.lock();
            (st.orig, st.reply)
        };
        self.remove(&o, &r);
        self.stats.deleted.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Removes expired connections; returns how many. Runs off the packet path, and never
    /// holds a lock across the table: the scan reads one shard at a time (packets keep
    /// looking connections up meanwhile; only an insert into that shard waits, for the time
    /// the scan takes over one 64th of the table), and each expired connection is then
    /// removed under its own shard's lock, if it is still expired. When the table has
    /// drained to a quarter of what it holds room for, the room is given back.
    pub fn gc(&self, now: u64) -> usize {
        let watched = self.events.listening();
        let mut expired: Vec<(Key, Key, Option<ConnState>)> = Vec::new();
        self.index.for_each(|c| {
            let st = c.lock();
            if st.expires <= now {
                expired.push((st.orig, st.reply, watched.then_some(*st)));
            }
        });
        let still_expired = |c: &Conn| c.lock().expires <= now;
        let mut n = 0;
        for (orig, reply, st) in expired {
            if self.index.remove_if(Dir::Original, &orig, still_expired) {
                if reply != orig {
                    self.index.remove_if(Dir::Reply, &reply, |_| true);
                }
                n += 1;
                if let Some(st) = st {
                    self.event("[DESTROY]", &st, now);
                }
            }
        }
        self.count.fetch_sub(n.min(self.len()), Ordering::Relaxed);
        self.stats.expired.fetch_add(n as u64, Ordering::Relaxed);
        // Drop eviction candidates that no longer exist or are assured, so the queue stays
        // bounded.
        crate::eval::state::lock(&self.unreplied)
            .retain(|w| w.upgrade().is_some_and(|c| c.lock().status & status::ASSURED == 0));
        // Memory back after a drain (the kernel's table shrinks with its hash buckets freed).
        let held = self.index.len();
        if self.index.capacity() > 4 * held.max(4096) {
            self.index.shrink();
        }
        n
    }

    /// Room the table holds, in entries (two per connection), for tests and `stats`.
    pub fn capacity(&self) -> usize {
        self.index.capacity()
    }

    /// The connections that match `f`, as `conntrack -L` prints them (`-o extended`: with
    /// the address family in front), sorted.
    pub fn list(&self, f: &Filter, now: u64, extended: bool) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        self.index.for_each(|c| {
            let st = c.lock();
            if f.matches(&st) && st.expires > now {
                let family = match (extended, st.orig.src.is_ipv6()) {
                    (false, _) => "",
                    (true, false) => "ipv4     2 ",
                    (true, true) => "ipv6     10 ",
                };
                v.push(format!("{family}{}", line(&st, now, self.accounting)));
            }
        });
        v.sort();
        v
    }

    /// Deletes the connections that match `f`; returns how many.
    pub fn delete(&self, f: &Filter, now: u64) -> usize {
        let mut victims: Vec<ConnState> = Vec::new();
        self.index.for_each(|c| {
            let st = c.lock();
            if f.matches(&st) {
                victims.push(*st);
            }
        });
        for st in &victims {
            self.remove(&st.orig, &st.reply);
            self.event("[DESTROY]", st, now);
        }
        self.stats.deleted.fetch_add(victims.len() as u64, Ordering::Relaxed);
        victims.len()
    }
}

/// The packet an ICMP error quotes, parsed leniently (it is truncated by design).
pub fn quoted(h: &Headers, buf: &[u8]) -> Option<Headers> {
    let L4::Icmp(i) = h.l4 else { return None };
    let is_error = match h.proto {
        proto::ICMP => matches!(i.typ, 3 | 4 | 5 | 11 | 12),
        _ => matches!(i.typ, 1..=4),
    };
    if !is_error {
        return None;
    }
    let start = usize::from(h.l4_off) + 8;
    let inner = buf.get(start..usize::from(h.total_len))?;
    parse_quoted(inner)
}

/// Parses an IPv4 header and the first 8 bytes of its transport header, which is all an
/// ICMP error must quote (RFC 792); lengths and checksums of the quote are not checked.
pub fn parse_quoted(b: &[u8]) -> Option<Headers> {
    if b.first().is_some_and(|v| v >> 4 == 6) {
        return parse_quoted6(b);
    }
    if b.len() < 28 || b[0] >> 4 != 4 {
        return None;
    }
    let hl = usize::from(b[0] & 0x0f) * 4;
    if hl < 20 || b.len() < hl + 8 {
        return None;
    }
    let p = b[9];
    let frag_off = (u16::from_be_bytes([b[6], b[7]]) & 0x1fff) << 3;
    let l4v = if frag_off != 0 {
        L4::None
    } else {
        quoted_l4(p, &b[hl..hl + 8], proto::ICMP)
    };
    let a = |o: usize| IpAddr::from([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    Some(Headers {
        src: a(12),
        dst: a(16),
        proto: p,
        ttl: b[8],
        tos: b[1],
        ident: u16::from_be_bytes([b[4], b[5]]),
        df: b[6] & 0x40 != 0,
        total_len: u16::from_be_bytes([b[2], b[3]]),
        l4_off: hl as u16,
        frag_off,
        more_frags: b[6] & 0x20 != 0,
        l4: l4v,
    })
}

/// The first 8 bytes of a quoted transport header (`l4`, at least 8 bytes) of protocol
/// `proto`: ports, or the type, code, identifier and sequence of the family's ICMP (`icmp`).
fn quoted_l4(proto: u8, l4: &[u8], icmp: u8) -> L4 {
    let port = |o: usize| u16::from_be_bytes([l4[o], l4[o + 1]]);
    match proto {
        proto::TCP => L4::Tcp(crate::packet::Tcp {
            sport: port(0),
            dport: port(2),
            seq: 0,
            ack: 0,
            flags: 0,
            window: 0,
            hdr_len: 20,
        }),
        proto::UDP => L4::Udp {
            sport: port(0),
            dport: port(2),
        },
        proto::SCTP => L4::Sctp {
            sport: port(0),
            dport: port(2),
        },
        p if p == icmp => L4::Icmp(crate::packet::Icmp {
            typ: l4[0],
            code: l4[1],
            ident: port(4),
            seq: port(6),
        }),
        _ => L4::None,
    }
}

/// An IPv6 packet quoted in an ICMPv6 error (RFC 4443 2.4 (c)): its header, the extension
/// headers before the transport header, and the transport header's first 8 bytes.
fn parse_quoted6(b: &[u8]) -> Option<Headers> {
    if b.len() < 48 {
        return None;
    }
    let crate::packet::Ext6 {
        next,
        off,
        frag_off,
        more_frags,
    } = crate::packet::skip_ext6(b)?;
    let l4v = if frag_off != 0 {
        L4::None
    } else {
        quoted_l4(next, b.get(off..off + 8)?, proto::ICMPV6)
    };
    let a = |o: usize| {
        let x: [u8; 16] = b[o..o + 16].try_into().expect("16 bytes");
        IpAddr::from(x)
    };
    Some(Headers {
        src: a(8),
        dst: a(24),
        proto: next,
        ttl: b[7],
        tos: ((b[0] & 0x0f) << 4) | (b[1] >> 4),
        ident: 0,
        df: true,
        total_len: 40u16.saturating_add(u16::from_be_bytes([b[4], b[5]])),
        l4_off: off as u16,
        frag_off,
        more_frags,
        l4: l4v,
    })
}

fn proto_name(p: u8) -> String {
    crate::ruleset::value::protocol_name(p).map_or_else(|| "unknown".into(), str::to_string)
}

/// One line in the format of `conntrack -L`.
/// The type of the reply to an ICMP query of type `t` (echo, timestamp, information,
/// address mask; ICMPv6 echo).
fn icmp_reply_type(proto: u8, t: u8) -> u8 {
    match (proto, t) {
        (proto::ICMPV6, 128) => 129,
        (proto::ICMPV6, t) => t,
        (_, 8) => 0,
        (_, 13 | 15 | 17) => t + 1,
        (_, t) => t,
    }
}

/// One connection as conntrack-tools 1.4 prints it (`conntrack -L`); the counters only
/// with accounting on, as with `nf_conntrack_acct`.
pub fn line(st: &ConnState, now: u64, accounting: bool) -> String {
    let mut s = event_line(st, now, accounting);
    let _ = write!(s, " mark={}", st.mark);
    if st.orig.zone != 0 {
        let _ = write!(s, " zone={}", st.orig.zone);
    }
    s.push_str(" use=1");
    s
}

/// The same as an event of `conntrack -E` shows it (without mark and use).
fn event_line(st: &ConnState, now: u64, accounting: bool) -> String {
    let mut s = String::new();
    let o = &st.orig;
    let secs = st.expires.saturating_sub(now) / NS;
    let _ = write!(s, "{:<8} {} {} ", proto_name(o.proto), o.proto, secs);
    if o.proto == proto::TCP {
        let _ = write!(s, "{} ", st.tcp.name());
    }
    let tuple = |s: &mut String, k: &Key, reply: bool| {
        let _ = write!(s, "src={} dst={} ", k.src, k.dst);
        match k.proto {
            proto::ICMP | proto::ICMPV6 => {
                let (t, c) = st.icmp;
                let t = if reply { icmp_reply_type(k.proto, t) } else { t };
                let _ = write!(s, "type={t} code={} id={} ", if reply { 0 } else { c }, k.sport);
            }
            _ if k.has_ports() => {
                let _ = write!(s, "sport={} dport={} ", k.sport, k.dport);
            }
            _ => {}
        }
    };
    tuple(&mut s, o, false);
    if accounting {
        let _ = write!(s, "packets={} bytes={} ", st.packets[0], st.bytes[0]);
    }
    if st.status & status::SEEN_REPLY == 0 {
        s.push_str("[UNREPLIED] ");
    }
    tuple(&mut s, &st.reply, true);
    if accounting {
        let _ = write!(s, "packets={} bytes={} ", st.packets[1], st.bytes[1]);
    }
    if st.status & status::ASSURED != 0 {
        s.push_str("[ASSURED] ");
    }
    s.pop();
    s
}

impl crate::eval::ConnLookup for Table {
    fn alive(&self, orig: &crate::eval::Tuple, proto: u8, zone: u16, now: u64) -> bool {
        let key = Key {
            src: orig.src,
            dst: orig.dst,
            sport: orig.sport,
            dport: orig.dport,
            proto,
            zone,
        };
        self.index.get(&key).is_some_and(|(c, _)| c.lock().expires > now)
    }
}
