//! The connection index: where each tuple's connection is. Two tables — original tuples and
//! reply tuples — each split into 64 shards under their own lock, holding only a pointer to the
//! connection per entry (8 bytes); the tuple an entry stands for is the connection's own
//! (`ConnState::orig` or `reply`, fixed once it is confirmed), read under the connection's
//! lock when a probe meets it, as Linux's hash chains reach the tuples through the
//! connection (`nf_conntrack_tuple_hash` lives in `nf_conn`). A connection thus costs two
//! 8-byte entries (and their share of empty slots) instead of two copies of both tuples.
//!
//! Each connection keeps the hashes of its two tuples, so growing or shrinking a table reads no
//! tuple; a probe compares tuples only for entries whose hash bits agree. Locks are always
//! taken shard first, then connection, never the other way around.

use super::{Conn, Dir, Key};
use hashbrown::HashTable;
use std::hash::BuildHasher;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

const SHARDS: usize = 64;

type Shard = RwLock<HashTable<Arc<Conn>>>;

#[derive(Debug)]
struct Side {
    shards: Box<[Shard]>,
}

impl Side {
    fn new(cap: usize) -> Side {
        Side {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(HashTable::with_capacity(cap / SHARDS)))
                .collect(),
        }
    }
}

/// Both tables, and the hasher of tuples.
#[derive(Debug)]
pub(super) struct Index {
    sides: [Side; 2],
    hasher: foldhash::fast::RandomState,
}

fn read(s: &Shard) -> RwLockReadGuard<'_, HashTable<Arc<Conn>>> {
    s.read().unwrap_or_else(|e| e.into_inner())
}

fn write(s: &Shard) -> RwLockWriteGuard<'_, HashTable<Arc<Conn>>> {
    s.write().unwrap_or_else(|e| e.into_inner())
}

/// The 64 bits the tables use, from a kept 32-bit hash, laid out so the three uses draw on
/// different bits of it: the low bits choose the bucket, bits 18..24 the shard, and the top
/// seven (bits 25..32 of `h`, repeated at the top) are hashbrown's control byte. (Were the shard
/// and the control byte taken from the same bits, every entry of a shard would carry nearly
/// the same control byte and a probe would compare the tuples of many.)
fn spread(h: u32) -> u64 {
    u64::from(h) | (u64::from(h) << 32)
}

fn shard_of(h: u64) -> usize {
    (h >> 18) as usize % SHARDS
}

/// The hash `c` is entered under in the table of `dir`.
fn hash_of(c: &Conn, dir: Dir) -> u64 {
    spread(c.hashes[dir as usize])
}

/// The tuple of `c` that the table of `dir` holds it by.
fn key_of(c: &Conn, dir: Dir) -> Key {
    let st = c.lock();
    match dir {
        Dir::Original => st.orig,
        Dir::Reply => st.reply,
    }
}

impl Index {
    /// Room for about `cap` entries of each table.
    pub(super) fn new(cap: usize) -> Index {
        Index {
            sides: [Side::new(cap), Side::new(cap)],
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// A tuple's hash as a connection keeps it.
    pub(super) fn hash32(&self, k: &Key) -> u32 {
        self.hasher.hash_one(k) as u32
    }

    fn hash(&self, k: &Key) -> u64 {
        spread(self.hash32(k))
    }

    fn shard(&self, dir: Dir, h: u64) -> &Shard {
        &self.sides[dir as usize].shards[shard_of(h)]
    }

    /// The connection `k` is the tuple of in direction `dir`.
    fn find(&self, dir: Dir, k: &Key) -> Option<Arc<Conn>> {
        let h = self.hash(k);
        read(self.shard(dir, h)).find(h, |c| key_of(c, dir) == *k).cloned()
    }

    /// The connection `k` is a tuple of, and in which direction.
    pub(super) fn get(&self, k: &Key) -> Option<(Arc<Conn>, Dir)> {
        if let Some(c) = self.find(Dir::Original, k) {
            return Some((c, Dir::Original));
        }
        self.find(Dir::Reply, k).map(|c| (c, Dir::Reply))
    }

    pub(super) fn contains(&self, k: &Key) -> bool {
        self.get(k).is_some()
    }

    /// Enters `c` under `k` for direction `dir`, unless some connection already has `k` as a
    /// tuple in either direction: then that one (nothing entered).
    pub(super) fn insert(&self, dir: Dir, k: &Key, c: &Arc<Conn>) -> Result<(), Arc<Conn>> {
        let h = self.hash(k);
        let other = match dir {
            Dir::Original => Dir::Reply,
            Dir::Reply => Dir::Original,
        };
        // The other table first (its shard lock is released before this one's is taken).
        if let Some(o) = self.find(other, k) {
            return Err(o);
        }
        let mut t = write(self.shard(dir, h));
        if let Some(o) = t.find(h, |x| key_of(x, dir) == *k) {
            return Err(o.clone());
        }
        t.insert_unique(h, c.clone(), |x| hash_of(x, dir));
        Ok(())
    }

    /// Takes `k`'s entry for direction `dir` out, if `keep` says so of its connection;
    /// whether one went.
    pub(super) fn remove_if(&self, dir: Dir, k: &Key, go: impl Fn(&Conn) -> bool) -> bool {
        let h = self.hash(k);
        let mut t = write(self.shard(dir, h));
        match t.find_entry(h, |x| key_of(x, dir) == *k) {
            Ok(e) if go(e.get()) => {
                e.remove();
                true
            }
            _ => false,
        }
    }

    /// Every connection once (from the table of original tuples), one shard at a time under
    /// its read lock.
    pub(super) fn for_each(&self, mut f: impl FnMut(&Arc<Conn>)) {
        for s in self.sides[Dir::Original as usize].shards.iter() {
            for c in read(s).iter() {
                f(c);
            }
        }
    }

    /// Entries held (both tables).
    pub(super) fn len(&self) -> usize {
        self.sides
            .iter()
            .flat_map(|s| s.shards.iter())
            .map(|s| read(s).len())
            .sum()
    }

    /// Room for entries (both tables).
    pub(super) fn capacity(&self) -> usize {
        self.sides
            .iter()
            .flat_map(|s| s.shards.iter())
            .map(|s| read(s).capacity())
            .sum()
    }

    /// Gives back the room beyond what is held.
    pub(super) fn shrink(&self) {
        for (i, side) in self.sides.iter().enumerate() {
            let dir = if i == 0 { Dir::Original } else { Dir::Reply };
            for s in side.shards.iter() {
                write(s).shrink_to_fit(|x| hash_of(x, dir));
            }
        }
    }
}
