//! The compiled classifier: for one chain, "which rule at or after position `i` is the next
//! one whose indexed tests hold for this packet", answered without testing every rule.
//!
//! # What may be skipped, and why the answer is exact
//!
//! The kernel tests a rule's IP part first (`ip_packet_match`: `-s -d -i -o -p -f`) and then
//! its `-m` matches in the order written, stopping at the first that fails. Some matches have
//! side effects when they are tested (`statistic`, `limit`, `recent`, `nfacct`, plugins). A
//! rule may therefore be skipped only when a test that comes *before its first side effect*
//! fails: then the walk would have stopped there without any effect. This module indexes only
//! such tests (its [`Fields`]: source and destination prefix, IPv4 or IPv6, protocol, the transport the
//! `tcp`/`udp`/`sctp` match demands, and their port ranges, none negated). The engine still
//! runs every test of a candidate rule in order, so side effects, counters, jumps and
//! policies happen exactly as in the walk; a candidate whose other tests fail is passed over
//! and the classifier asked again from the next position.
//!
//! # The structure
//!
//! Tuple space search with TupleMerge's relaxation (Daly, Liu, Torng: "TupleMerge: Fast
//! Software Packet Processing for Online Packet Classification", 2019). Rules are grouped
//! into tables, each with a mask over the fields (prefix lengths rounded down to a multiple of
//! 8, protocol, transport, exact ports); a rule goes into the first table whose mask it
//! covers and whose bucket for it holds fewer than [`COLLISION_LIMIT`] rules, else into a new
//! table of its own shape. A lookup probes each table once with the packet's masked key and
//! checks the few rules of the bucket; tables are sorted by their first rule so a lookup stops
//! as soon as no remaining table can hold an earlier rule (Open vSwitch's priority sorting).
//! Port ranges are checked on the candidates, not hashed. Rules with no indexable field share
//! one table whose single bucket lists them in order.
//!
//! Chains shorter than [`MIN_RULES`] are not indexed: the walk is cheaper there.

use super::Pkt;
use crate::packet::L4;
use crate::ruleset::chunked::Chunked;
use crate::ruleset::ext::Neg;
use crate::ruleset::value::IpNet;
use crate::ruleset::Rule;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// A bucket may hold this many rules before a rule that would land in it starts a new table.
pub const COLLISION_LIMIT: usize = 8;

/// Chains with fewer rules are walked.
pub const MIN_RULES: usize = 6;

/// Which transport a rule's port match demands (`-m tcp` needs a TCP header, and so on).
const L4_ANY: u8 = 0;
pub(crate) const L4_TCP: u8 = 1;
pub(crate) const L4_UDP: u8 = 2;
pub(crate) const L4_SCTP: u8 = 3;

/// The fields of a packet the classifier reads, taken from its headers at each query (a
/// non-terminal target may have changed them).
#[derive(Debug, Clone, Copy)]
struct Key {
    /// Addresses as 128 bits: IPv6's whole, IPv4's in the top 32 bits (so that a prefix is a
    /// prefix of either).
    src: u128,
    dst: u128,
    proto: u8,
    /// `L4_*`; `L4_ANY` when the packet carries no ports (not a first fragment, other protocol).
    l4: u8,
    sport: u16,
    dport: u16,
}

impl Key {
    fn of(p: &Pkt) -> Option<Key> {
        let (s, d) = (wide(p.h.src), wide(p.h.dst));
        let (l4, sport, dport) = match p.h.l4 {
            L4::Tcp(t) => (L4_TCP, t.sport, t.dport),
            L4::Udp { sport, dport } => (L4_UDP, sport, dport),
            L4::Sctp { sport, dport } => (L4_SCTP, sport, dport),
            L4::None | L4::Icmp(_) => (L4_ANY, 0, 0),
        };
        Some(Key {
            src: s,
            dst: d,
            proto: p.h.proto,
            l4,
            sport,
            dport,
        })
    }
}

/// The pure tests of a rule that precede its first side effect and that the classifier
/// checks itself. Each holds for every packet when unconstrained (mask 0, full range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields {
    /// Prefixes in [`Key`]'s 128-bit form.
    src: u128,
    smask: u128,
    dst: u128,
    dmask: u128,
    /// `Some` for a non-negated `-p`.
    proto: Option<u8>,
    l4: u8,
    sport: (u16, u16),
    dport: (u16, u16),
    /// These fields are all the rule tests: when they hold, the rule matches, and the
    /// engine does not test it again.
    exact: bool,
}

/// What a match tells the classifier about the packets it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexed {
    /// Its test is exactly what it narrowed the fields to.
    Exact,
    /// It narrowed them (or not), and its test must still run on a candidate.
    Partial,
    /// No packet can match it.
    Never,
}

impl Fields {
    const ANY: Fields = Fields {
        src: 0,
        smask: 0,
        dst: 0,
        dmask: 0,
        proto: None,
        l4: L4_ANY,
        sport: (0, u16::MAX),
        dport: (0, u16::MAX),
        exact: true,
    };

    #[inline]
    fn holds(&self, k: &Key) -> bool {
        k.src & self.smask == self.src
            && k.dst & self.dmask == self.dst
            && self.proto.is_none_or(|p| p == k.proto)
            && (self.l4 == L4_ANY
                || (self.l4 == k.l4
                    && self.sport.0 <= k.sport
                    && k.sport <= self.sport.1
                    && self.dport.0 <= k.dport
                    && k.dport <= self.dport.1))
    }

    /// Narrows the fields by a transport match (`-m tcp`, `-m udp`, `-m sctp`): it demands
    /// that transport, and its ports where they are not negated. `false` when the rule can
    /// then match nothing.
    pub(crate) fn ports(
        &mut self,
        l4: u8,
        sport: &Option<crate::ruleset::ext::Neg<crate::ruleset::value::Range16>>,
        dport: &Option<crate::ruleset::ext::Neg<crate::ruleset::value::Range16>>,
    ) -> Indexed {
        let range = |x: &Option<crate::ruleset::ext::Neg<crate::ruleset::value::Range16>>| match x {
            Some(x) if !x.inv => Some((x.v.lo, x.v.hi)),
            _ => None,
        };
        if !self.narrow(l4, range(sport), range(dport)) {
            return Indexed::Never;
        }
        let negated = |x: &Option<crate::ruleset::ext::Neg<crate::ruleset::value::Range16>>| x.is_some_and(|x| x.inv);
        if negated(sport) || negated(dport) {
            Indexed::Partial
        } else {
            Indexed::Exact
        }
    }

    fn narrow(&mut self, l4: u8, sport: Option<(u16, u16)>, dport: Option<(u16, u16)>) -> bool {
        if self.l4 != L4_ANY && self.l4 != l4 {
            return false;
        }
        self.l4 = l4;
        let meet = |a: (u16, u16), b: Option<(u16, u16)>| match b {
            Some(b) => (a.0.max(b.0), a.1.min(b.1)),
            None => a,
        };
        self.sport = meet(self.sport, sport);
        self.dport = meet(self.dport, dport);
        self.sport.0 <= self.sport.1 && self.dport.0 <= self.dport.1
    }

    /// The indexable tests of `r`, or `None` when they can hold for no packet at all (then
    /// the walk never gets past them, and the rule is never a candidate).
    fn of(r: &Rule) -> Option<Fields> {
        let mut f = Fields::ANY;
        let net = |n: &Option<crate::ruleset::ext::Neg<IpNet>>| match n {
            Some(Neg {
                inv: false,
                v: IpNet::V4(v),
            }) => (u128::from(u32::from(v.addr) & v.mask) << 96, u128::from(v.mask) << 96),
            Some(Neg {
                inv: false,
                v: IpNet::V6(v),
            }) => (u128::from(v.addr) & v.mask, v.mask),
            _ => (0, 0),
        };
        (f.src, f.smask) = net(&r.src);
        (f.dst, f.dmask) = net(&r.dst);
        f.proto = r.proto.filter(|p| !p.inv).map(|p| p.v);
        f.exact = !r.src.is_some_and(|n| n.inv)
            && !r.dst.is_some_and(|n| n.inv)
            && !r.proto.is_some_and(|p| p.inv)
            && r.in_iface.is_none()
            && r.out_iface.is_none()
            && r.frag.is_none();
        for m in &r.matches {
            if m.side_effect() {
                // Nothing after a side effect may be used to skip the rule.
                f.exact = false;
                break;
            }
            match m.index(&mut f) {
                Indexed::Exact => {}
                Indexed::Partial => f.exact = false,
                Indexed::Never => return None,
            }
        }
        // A transport match on a packet of another protocol fails; the kernel demands `-p`
        // to agree, which validation leaves to the source, so check it here.
        match (f.proto, f.l4) {
            (Some(6), L4_TCP) | (Some(17), L4_UDP) | (Some(132), L4_SCTP) | (_, L4_ANY) | (None, _) => Some(f),
            _ => None,
        }
    }
}

/// Which fields a table hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mask {
    smask: u128,
    dmask: u128,
    proto: bool,
    l4: bool,
    sport: bool,
    dport: bool,
}

/// An address in [`Key`]'s 128-bit form.
fn wide(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
        IpAddr::V6(v) => u128::from(v),
    }
}

/// A masked address folded to the 32 bits a table key holds: an IPv4 address is itself; an
/// IPv6 prefix folds to a hash of it (prefixes that differ may share a bucket, where the
/// candidates' own fields tell them apart; equal ones always share it).
#[inline]
fn fold(x: u128) -> u32 {
    ((x >> 96) ^ (x >> 64) ^ (x >> 32) ^ x) as u32
}

impl Mask {
    /// The relaxed shape of a rule: prefixes shortened to a multiple of 8 bits (or kept as
    /// they are with `exact`), every exact field used.
    fn of(f: &Fields, exact: bool) -> Mask {
        let relax = |m: u128| {
            let n = m.leading_ones();
            crate::ruleset::value::prefix_mask6((if exact { n } else { n - n % 8 }) as u8)
        };
        Mask {
            smask: relax(f.smask),
            dmask: relax(f.dmask),
            proto: f.proto.is_some(),
            l4: f.l4 != L4_ANY,
            sport: f.l4 != L4_ANY && f.sport.0 == f.sport.1,
            dport: f.l4 != L4_ANY && f.dport.0 == f.dport.1,
        }
    }

    /// Whether a rule with fields `f` can live in a table with this mask: every field the
    /// table hashes is fixed by the rule.
    fn covers(&self, f: &Fields) -> bool {
        f.smask & self.smask == self.smask
            && f.dmask & self.dmask == self.dmask
            && (!self.proto || f.proto.is_some())
            && (!self.l4 || f.l4 != L4_ANY)
            && (!self.sport || (f.l4 != L4_ANY && f.sport.0 == f.sport.1))
            && (!self.dport || (f.l4 != L4_ANY && f.dport.0 == f.dport.1))
    }

    fn pack(&self, src: u128, dst: u128, proto: u8, l4: u8, sport: u16, dport: u16) -> u128 {
        let p = if self.proto { proto } else { 0 };
        let l = if self.l4 { l4 } else { 0 };
        let s = if self.sport { sport } else { 0 };
        let d = if self.dport { dport } else { 0 };
        u128::from(fold(src & self.smask))
            | u128::from(fold(dst & self.dmask)) << 32
            | u128::from(p) << 64
            | u128::from(l) << 72
            | u128::from(s) << 80
            | u128::from(d) << 96
    }

    fn rule_key(&self, f: &Fields) -> u128 {
        self.pack(f.src, f.dst, f.proto.unwrap_or(0), f.l4, f.sport.0, f.dport.0)
    }

    /// `None` when the packet cannot match any rule of this table (it has no ports and the
    /// table's rules demand a transport).
    #[inline]
    fn packet_key(&self, k: &Key) -> Option<u128> {
        if self.l4 && k.l4 == L4_ANY {
            return None;
        }
        Some(self.pack(k.src, k.dst, k.proto, k.l4, k.sport, k.dport))
    }
}

type Hasher = foldhash::fast::FixedState;

/// One table of the tuple space.
#[derive(Debug, Clone)]
struct Table {
    mask: Mask,
    /// The buckets, split by key into `1 << bits` shards shared between the versions of
    /// the chain's classifier: a rule added to a table of 100,000 buckets copies one shard.
    shards: Vec<Arc<Shard>>,
    bits: u32,
    /// The lowest and highest rule position in the table.
    first: u32,
    last: u32,
}

/// A share of a table's buckets.
#[derive(Debug, Clone)]
struct Shard {
    /// Masked key → range of `rules` (rule positions, ascending); a bucket of one rule holds
    /// the rule's position itself, with length 1.
    buckets: HashMap<u128, (u32, u32), Hasher>,
    rules: Vec<u32>,
    /// The lowest and highest rule position in the shard's buckets (`u32::MAX`, 0: none): a
    /// change after `last` leaves the shard as it is.
    first: u32,
    last: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            buckets: HashMap::default(),
            rules: Vec::new(),
            first: u32::MAX,
            last: 0,
        }
    }
}

impl Shard {
    /// Counts `lo..=hi`, the positions of a bucket put in the shard, in its bounds.
    fn holds(&mut self, lo: u32, hi: u32) {
        self.first = self.first.min(lo);
        self.last = self.last.max(hi);
    }
}

/// Buckets per shard a table is built for (more shards: less copied per change, more
/// pointers copied per version and a little more memory).
const SHARD_BUCKETS: usize = 512;

/// How many bits of a key pick its shard in a table of about `buckets` buckets.
fn shard_bits(buckets: usize) -> u32 {
    (buckets / SHARD_BUCKETS)
        .max(1)
        .next_power_of_two()
        .trailing_zeros()
        .min(8)
}

/// The shard of `key` in a table split by `bits` bits.
#[inline]
fn shard_of(bits: u32, key: u128) -> usize {
    if bits == 0 {
        return 0;
    }
    let x = (key as u64 ^ (key >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> (64 - bits)) as usize
}

impl Table {
    /// A table of `shards` (as many as [`shard_bits`] gives for their buckets).
    fn new(mask: Mask, shards: Vec<Shard>) -> Table {
        Table {
            mask,
            bits: shards.len().trailing_zeros(),
            shards: shards.into_iter().map(Arc::new).collect(),
            first: u32::MAX,
            last: 0,
        }
    }

    #[inline]
    fn shard_of(&self, key: u128) -> usize {
        shard_of(self.bits, key)
    }

    /// The rule positions of `key`'s bucket, ascending.
    #[inline]
    fn bucket(&self, key: u128) -> &[u32] {
        let sh = &self.shards[self.shard_of(key)];
        match sh.buckets.get_key_value(&key) {
            None => &[],
            Some((_, (r, 1))) => std::slice::from_ref(r),
            Some((_, &(off, len))) => &sh.rules[off as usize..(off + len) as usize],
        }
    }

    /// Puts the rule at `pos` in `key`'s bucket (in order), copying its shard if shared.
    fn insert(&mut self, key: u128, pos: u32) {
        let mut bucket = self.bucket(key).to_vec();
        let at = bucket.partition_point(|&r| r < pos);
        bucket.insert(at, pos);
        let i = self.shard_of(key);
        let sh = Arc::make_mut(&mut self.shards[i]);
        let v = if let [only] = bucket[..] {
            (only, 1)
        } else {
            // The old range stays behind unused until the next update compacts it.
            let off = sh.rules.len() as u32;
            sh.rules.extend_from_slice(&bucket);
            (off, bucket.len() as u32)
        };
        sh.buckets.insert(key, v);
        sh.holds(pos, pos);
        self.first = self.first.min(pos);
        self.last = self.last.max(pos);
    }
}

/// Where [`ChainIndex::place`] puts a rule.
enum Place {
    Table(usize),
    New(Mask),
}

/// The classifier of one chain.
#[derive(Debug)]
pub struct ChainIndex {
    /// Sorted by `first`.
    tables: Vec<Table>,
    /// Per rule position: its indexed tests; `None` for rules that never match. Shared in
    /// chunks with the previous version of the chain's classifier.
    fields: Chunked<Option<Fields>>,
}

impl ChainIndex {
    /// The classifier for a chain's `rules`, or `None` when the chain is short enough to walk.
    pub fn build(rules: &crate::ruleset::Rules) -> Option<ChainIndex> {
        Self::build_after(rules, None)
    }

    /// The classifier for `rules`, a new version of a chain whose classifier was `before`
    /// and which keeps its first `p` and last `s` rules (`(before, (p, s))`): the indexed
    /// tests of those rules are taken from it rather than worked out again, and when only a
    /// few rules changed, its tables are carried over with the positions after the change
    /// moved, rather than built again.
    pub fn build_after(
        rules: &crate::ruleset::Rules,
        before: Option<(&ChainIndex, (usize, usize))>,
    ) -> Option<ChainIndex> {
        if rules.len() < MIN_RULES {
            return None;
        }
        let Some((ix, (p, s))) = before.filter(|(ix, (p, s))| p + s <= ix.fields.len().min(rules.len())) else {
            return Some(Self::from_fields(rules.iter().map(|r| Fields::of(r)).collect()));
        };
        let (old, n) = (ix.fields.len(), rules.len());
        let fields = ix.fields.replaced(p, s, rules.range(p..n - s).map(|r| Fields::of(r)));
        let changed = (old - s - p) + (n - s - p);
        Some(if changed <= (n / 16).max(64) {
            ix.updated(p, s, fields)
        } else {
            Self::from_fields(fields)
        })
    }

    /// Where a rule of `f` goes among `tables` (each: its mask, and how many rules its bucket
    /// for `f` holds): the first table whose shape covers it and whose bucket has room; else a
    /// table of its relaxed shape, new if there is none; if that is full for this key, one of
    /// its exact shape; if that is full too, it takes the collision.
    fn place(f: &Fields, tables: impl Iterator<Item = (Mask, usize)> + Clone) -> Place {
        if let Some(i) = tables
            .clone()
            .position(|(m, held)| m.covers(f) && held < COLLISION_LIMIT)
        {
            return Place::Table(i);
        }
        let (relaxed, exact) = (Mask::of(f, false), Mask::of(f, true));
        let find = |want: Mask| tables.clone().position(|(m, _)| m == want);
        match (find(relaxed), find(exact)) {
            (None, _) => Place::New(relaxed),
            (Some(_), None) => Place::New(exact),
            (Some(_), Some(e)) => Place::Table(e),
        }
    }

    /// The classifier of the rules `fields` describe (by position), built whole.
    fn from_fields(fields: Chunked<Option<Fields>>) -> ChainIndex {
        // Build with Vec buckets, then flatten.
        struct Building {
            mask: Mask,
            buckets: HashMap<u128, Vec<u32>, Hasher>,
        }
        let mut tables: Vec<Building> = Vec::new();
        for (pos, f) in fields.iter().enumerate() {
            let Some(f) = f else { continue };
            let pos = pos as u32;
            let held = tables
                .iter()
                .map(|t| (t.mask, t.buckets.get(&t.mask.rule_key(f)).map_or(0, Vec::len)));
            let ti = match Self::place(f, held) {
                Place::Table(i) => i,
                Place::New(mask) => {
                    tables.push(Building {
                        mask,
                        buckets: HashMap::with_hasher(Hasher::default()),
                    });
                    tables.len() - 1
                }
            };
            let t = &mut tables[ti];
            t.buckets.entry(t.mask.rule_key(f)).or_default().push(pos);
        }
        let mut out: Vec<Table> = tables
            .into_iter()
            .map(|b| {
                let bits = shard_bits(b.buckets.len());
                let mut shards: Vec<Shard> = vec![Shard::default(); 1 << bits];
                let (mut first, mut last) = (u32::MAX, 0);
                for (k, v) in b.buckets {
                    first = first.min(v[0]);
                    last = last.max(v[v.len() - 1]);
                    let sh = &mut shards[shard_of(bits, k)];
                    sh.holds(v[0], v[v.len() - 1]);
                    if let [only] = v[..] {
                        // A bucket of one keeps its rule inline: one memory access less.
                        sh.buckets.insert(k, (only, 1));
                    } else {
                        sh.buckets.insert(k, (sh.rules.len() as u32, v.len() as u32));
                        sh.rules.extend_from_slice(&v);
                    }
                }
                Table {
                    first,
                    last,
                    ..Table::new(b.mask, shards)
                }
            })
            .collect();
        out.sort_by_key(|t| t.first);
        ChainIndex { tables: out, fields }
    }

    /// This classifier after a change of its chain that keeps the first `p` and the last `s`
    /// rules: the rules between are dropped from its tables, the last `s` move to their new
    /// positions (order kept, so every bucket stays sorted), and the new rules between are
    /// placed as a whole build places them. `fields` are the new chain's.
    fn updated(&self, p: usize, s: usize, fields: Chunked<Option<Fields>>) -> ChainIndex {
        let (old_end, new_end) = ((self.fields.len() - s) as u32, (fields.len() - s) as u32);
        let p32 = p as u32;
        let moved = |r: u32| -> Option<u32> {
            if r < p32 {
                Some(r)
            } else if r < old_end {
                None
            } else {
                Some(r - old_end + new_end)
            }
        };
        let mut tables: Vec<Table> = Vec::with_capacity(self.tables.len() + 1);
        for t in &self.tables {
            // Every rule of the table stays where it was (it holds none past the change, or
            // the change only added rules at the end): the table is shared as it is.
            if t.last < p32 || (old_end == p32 && s == 0) {
                tables.push(t.clone());
                continue;
            }
            let mut kept = Table {
                shards: Vec::with_capacity(t.shards.len()),
                ..*t
            };
            (kept.first, kept.last) = (u32::MAX, 0);
            for sh in &t.shards {
                // No rule of the shard is at or after the change: it stays as it is.
                if sh.last < p32 {
                    if sh.first != u32::MAX {
                        kept.first = kept.first.min(sh.first);
                        kept.last = kept.last.max(sh.last);
                    }
                    kept.shards.push(sh.clone());
                    continue;
                }
                let (mut first, mut last) = (u32::MAX, 0);
                let mut buckets = sh.buckets.clone();
                let mut rules = Vec::with_capacity(sh.rules.len());
                buckets.retain(|_, v| {
                    let moved_to = if v.1 == 1 {
                        moved(v.0).map(|r| (r, 1))
                    } else {
                        let at = rules.len();
                        rules.extend(
                            sh.rules[v.0 as usize..(v.0 + v.1) as usize]
                                .iter()
                                .filter_map(|&r| moved(r)),
                        );
                        match rules.len() - at {
                            0 => None,
                            1 => rules.pop().map(|r| (r, 1)),
                            n => Some((at as u32, n as u32)),
                        }
                    };
                    let Some(m) = moved_to else { return false };
                    *v = m;
                    let (lo, hi) = if m.1 == 1 {
                        (m.0, m.0)
                    } else {
                        (rules[m.0 as usize], rules[(m.0 + m.1 - 1) as usize])
                    };
                    first = first.min(lo);
                    last = last.max(hi);
                    true
                });
                kept.first = kept.first.min(first);
                kept.last = kept.last.max(last);
                kept.shards.push(Arc::new(Shard {
                    buckets,
                    rules,
                    first,
                    last,
                }));
            }
            if kept.first != u32::MAX {
                tables.push(kept);
            }
        }
        // Placed in the order a whole build meets the tables: by their first rule.
        tables.sort_by_key(|t| t.first);
        for pos in p32..new_end {
            let Some(f) = fields.get(pos as usize).and_then(Option::as_ref) else {
                continue;
            };
            let held = tables.iter().map(|t| (t.mask, t.bucket(t.mask.rule_key(f)).len()));
            let ti = match Self::place(f, held) {
                Place::Table(i) => i,
                Place::New(mask) => {
                    tables.push(Table::new(mask, vec![Shard::default()]));
                    tables.len() - 1
                }
            };
            let t = &mut tables[ti];
            let key = t.mask.rule_key(f);
            t.insert(key, pos);
        }
        tables.sort_by_key(|t| t.first);
        ChainIndex { tables, fields }
    }

    /// The first rule position at or after `start` whose indexed tests hold for `p`, or the
    /// chain's length when there is none.
    #[inline]
    pub fn next(&self, start: usize, p: &Pkt) -> usize {
        match Key::of(p) {
            Some(k) => self.next_key(start, &k),
            None => self.fields.len(),
        }
    }

    #[inline]
    fn next_key(&self, start: usize, k: &Key) -> usize {
        let n = self.fields.len();
        let k = *k;
        let start = start as u32;
        let mut best = n as u32;
        for t in &self.tables {
            if t.first >= best {
                break;
            }
            if t.last < start {
                continue;
            }
            let Some(key) = t.mask.packet_key(&k) else { continue };
            let bucket = t.bucket(key);
            let from = if bucket.len() > 8 {
                bucket.partition_point(|&r| r < start)
            } else {
                0
            };
            for &r in &bucket[from..] {
                if r >= best {
                    break;
                }
                if r < start {
                    continue;
                }
                if self
                    .fields
                    .get(r as usize)
                    .is_some_and(|f| f.is_some_and(|f| f.holds(&k)))
                {
                    best = r;
                    break;
                }
            }
        }
        best as usize
    }

    /// Whether the rule at `pos`, a candidate [`ChainIndex::next`] returned, matches without
    /// further tests.
    #[inline]
    pub fn exact(&self, pos: usize) -> bool {
        self.fields.get(pos).is_some_and(|f| f.is_some_and(|f| f.exact))
    }

    /// Bytes this index occupies on the heap (approximately: hash tables by capacity).
    pub fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(u128, (u32, u32))>() + 1;
        self.fields.heap_bytes()
            + self
                .tables
                .iter()
                .map(|t| {
                    std::mem::size_of::<Table>()
                        + t.shards
                            .iter()
                            .map(|sh| {
                                std::mem::size_of::<Shard>() + sh.rules.capacity() * 4 + sh.buckets.capacity() * entry
                            })
                            .sum::<usize>()
                })
                .sum::<usize>()
    }

    /// How many tables a lookup may probe (for benchmarks and `bench`).
    pub fn table_count(&self) -> usize {
        self.tables.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 address in [`Key`]'s form.
    fn v4(a: [u8; 4]) -> u128 {
        u128::from(u32::from_be_bytes(a)) << 96
    }

    /// A TCP packet's key from port 1000 to `dport`.
    fn tcp_key(src: u128, dst: u128, dport: u16) -> Key {
        Key {
            src,
            dst,
            proto: 6,
            l4: L4_TCP,
            sport: 1000,
            dport,
        }
    }

    fn f(src: &str, dst: &str) -> Fields {
        let n = |s: &str| crate::ruleset::value::Ipv4Net::parse(s).unwrap();
        let (s, d) = (n(src), n(dst));
        Fields {
            src: u128::from(u32::from(s.addr)) << 96,
            smask: u128::from(s.mask) << 96,
            dst: u128::from(u32::from(d.addr)) << 96,
            dmask: u128::from(d.mask) << 96,
            ..Fields::ANY
        }
    }

    #[test]
    fn masks_relax_to_bytes_and_cover_finer_rules() {
        let a = f("10.1.2.0/23", "0.0.0.0/0");
        let m = Mask::of(&a, false);
        assert_eq!(m.smask, 0xffff_0000 << 96);
        assert!(m.covers(&a));
        assert!(m.covers(&f("10.1.2.3/32", "1.2.3.4/32")));
        assert!(!m.covers(&f("10.0.0.0/8", "0.0.0.0/0")));
        assert_eq!(Mask::of(&a, true).smask, 0xffff_fe00 << 96);
        // A non-contiguous mask counts by its leading ones.
        let odd = f("10.0.0.1/255.0.255.255", "0.0.0.0/0");
        assert_eq!(Mask::of(&odd, false).smask, 0xff00_0000 << 96);
        assert!(Mask::of(&odd, false).covers(&odd));
    }

    #[test]
    fn a_classifier_carried_over_a_change_finds_what_one_built_whole_finds() {
        use crate::eval::{Chance, SplitMix};
        let mut rng = SplitMix(11);
        // Few distinct values, so that buckets fill, collide and spill into more tables.
        let field = |rng: &mut SplitMix| -> Option<Fields> {
            if rng.below(10) == 0 {
                return None;
            }
            let addr = |rng: &mut SplitMix| format!("10.{}.{}.{}", rng.below(3), rng.below(3), rng.below(3));
            let len = [0, 8, 16, 24, 32, 23][rng.below(6) as usize];
            let (a, b) = (addr(rng), addr(rng));
            let mut x = if rng.below(2) == 0 {
                f(&format!("{a}/{len}"), "0.0.0.0/0")
            } else {
                f("0.0.0.0/0", &format!("{b}/{len}"))
            };
            if rng.below(2) == 0 {
                let port = 80 + rng.below(3) as u16;
                x.narrow(L4_TCP, None, Some((port, port)));
            }
            Some(x)
        };
        let key = |rng: &mut SplitMix| {
            let mut addr = || v4([10, rng.below(3) as u8, rng.below(3) as u8, rng.below(3) as u8]);
            let (src, dst) = (addr(), addr());
            tcp_key(src, dst, 80 + rng.below(3) as u16)
        };
        let mut compared = 0;
        for round in 0..300 {
            let n = 6 + rng.below(120) as usize;
            let old: Vec<Option<Fields>> = (0..n).map(|_| field(&mut rng)).collect();
            let mut ix = ChainIndex::from_fields(old.iter().copied().collect());
            let mut cur = old;
            // A few changes in a row, each carried over from the last.
            for _ in 0..4 {
                let p = rng.below(cur.len() as u32 + 1) as usize;
                let gone = rng.below((cur.len() - p) as u32 + 1).min(5) as usize;
                let added = rng.below(6) as usize;
                let s = cur.len() - p - gone;
                let mut next = cur[..p].to_vec();
                next.extend((0..added).map(|_| field(&mut rng)));
                next.extend_from_slice(&cur[cur.len() - s..]);
                if next.len() < MIN_RULES {
                    break;
                }
                let carried = ix.updated(p, s, ix.fields.replaced(p, s, next[p..next.len() - s].iter().copied()));
                let whole = ChainIndex::from_fields(next.iter().copied().collect());
                for _ in 0..40 {
                    let k = key(&mut rng);
                    for start in 0..=next.len() {
                        assert_eq!(
                            carried.next_key(start, &k),
                            whole.next_key(start, &k),
                            "round {round}: start {start}, {k:?}"
                        );
                        compared += 1;
                    }
                }
                ix = carried;
                cur = next;
            }
        }
        assert!(compared > 100_000, "{compared}");
    }

    #[test]
    fn a_large_classifier_carried_over_changes_finds_what_one_built_whole_finds() {
        use crate::eval::{Chance, SplitMix};
        let mut rng = SplitMix(5);
        // Thousands of distinct destinations: one table split into shards.
        let field = |rng: &mut SplitMix| -> Option<Fields> {
            let d = format!("10.{}.{}.{}/32", rng.below(2), rng.below(40), rng.below(60));
            let mut x = f("0.0.0.0/0", &d);
            if rng.below(3) == 0 {
                let port = 80 + rng.below(2) as u16;
                x.narrow(L4_TCP, None, Some((port, port)));
            }
            Some(x)
        };
        let key = |rng: &mut SplitMix| {
            let dst = v4([10, rng.below(2) as u8, rng.below(40) as u8, rng.below(60) as u8]);
            tcp_key(1 << 96, dst, 80 + rng.below(2) as u16)
        };
        let mut cur: Vec<Option<Fields>> = (0..3000).map(|_| field(&mut rng)).collect();
        let mut ix = ChainIndex::from_fields(cur.iter().copied().collect());
        assert!(ix.tables.iter().any(|t| t.shards.len() > 1), "a table is sharded");
        for round in 0..16 {
            // Appends (tables shared), changes anywhere (tables rebuilt), and changes near the
            // end (the shards that hold no rule after the change shared).
            let p = match round % 4 {
                0 => cur.len(),
                3 => cur.len() - rng.below(40) as usize,
                _ => rng.below(cur.len() as u32 + 1) as usize,
            };
            // Inserts only (the rules after move, none goes), or rules gone too; near the end,
            // every other change only deletes.
            let gone = if round % 4 == 1 {
                0
            } else {
                rng.below((cur.len() - p) as u32 + 1).min(20) as usize
            };
            let added = if round % 8 == 3 { 0 } else { 1 + rng.below(30) };
            let s = cur.len() - p - gone;
            let mut next = cur[..p].to_vec();
            next.extend((0..added).map(|_| field(&mut rng)));
            next.extend_from_slice(&cur[cur.len() - s..]);
            let carried = ix.updated(p, s, ix.fields.replaced(p, s, next[p..next.len() - s].iter().copied()));
            // Each shard's bounds are those of its buckets (sharing relies on them).
            for t in &carried.tables {
                for sh in &t.shards {
                    let (mut lo, mut hi) = (u32::MAX, 0);
                    for &(r, n) in sh.buckets.values() {
                        let rs = if n == 1 {
                            vec![r]
                        } else {
                            sh.rules[r as usize..(r + n) as usize].to_vec()
                        };
                        lo = lo.min(rs[0]);
                        hi = hi.max(rs[rs.len() - 1]);
                    }
                    assert_eq!((sh.first, sh.last), (lo, hi), "round {round}: a shard's bounds");
                }
            }
            let whole = ChainIndex::from_fields(next.iter().copied().collect());
            for _ in 0..300 {
                let k = key(&mut rng);
                for start in [0, rng.below(next.len() as u32) as usize, p, next.len()] {
                    assert_eq!(
                        carried.next_key(start, &k),
                        whole.next_key(start, &k),
                        "round {round}: {start} {k:?}"
                    );
                }
            }
            ix = carried;
            cur = next;
        }
    }

    #[test]
    fn port_intersection_and_conflicts() {
        let mut x = Fields::ANY;
        assert!(x.narrow(L4_TCP, None, Some((10, 20))));
        assert!(x.narrow(L4_TCP, None, Some((15, 30))));
        assert_eq!(x.dport, (15, 20));
        assert!(!x.clone().narrow(L4_UDP, None, None));
        assert!(!x.narrow(L4_TCP, None, Some((25, 30))));
    }
}
