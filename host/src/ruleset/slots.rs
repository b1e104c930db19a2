//! A vector shared between generations: fixed-size leaves behind `Arc`s, grouped in
//! branches behind `Arc`s, copied on write.
//!
//! Chains are addressed by slot (their `ChainId`) in every generation, and a generation that
//! changes a few chains must not copy the others: cloning a `Slots` copies one pointer per
//! branch (a 400,000-chain table: 25), and setting a slot copies its branch's pointers (64)
//! and its leaf (256 slots). One level of leaves alone made each clone touch the reference
//! counts of 1,600 leaves, which in a router whose caches hold packets, not its 400,000-chain
//! table, cost more than the rest of a small change. A lookup is three indexings.

use std::sync::Arc;

/// Slots per leaf.
const CHUNK: usize = 256;
/// Leaves per branch.
const FAN: usize = 64;

type Leaf<T> = Arc<Vec<Option<T>>>;

#[derive(Debug)]
pub struct Slots<T> {
    branches: Vec<Arc<Vec<Leaf<T>>>>,
    len: usize,
}

impl<T> Clone for Slots<T> {
    fn clone(&self) -> Self {
        Slots {
            branches: self.branches.clone(),
            len: self.len,
        }
    }
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            branches: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Clone> Slots<T> {
    /// How many slots exist (occupied or not).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn leaf(&self, i: usize) -> Option<&Leaf<T>> {
        self.branches
            .get(i / (CHUNK * FAN))
            .and_then(|b| b.get(i / CHUNK % FAN))
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        self.leaf(i).and_then(|c| c[i % CHUNK].as_ref())
    }

    /// Sets slot `i` (growing the vector when `i` is past the end).
    pub fn set(&mut self, i: usize, v: Option<T>) {
        while self.branches.len() <= i / (CHUNK * FAN) {
            self.branches.push(Arc::new(Vec::new()));
        }
        let branch = Arc::make_mut(&mut self.branches[i / (CHUNK * FAN)]);
        while branch.len() <= i / CHUNK % FAN {
            branch.push(Arc::new(vec![None; CHUNK]));
        }
        Arc::make_mut(&mut branch[i / CHUNK % FAN])[i % CHUNK] = v;
        self.len = self.len.max(i + 1);
    }

    /// Appends a value and returns its slot.
    pub fn push(&mut self, v: T) -> usize {
        let i = self.len;
        self.set(i, Some(v));
        i
    }

    /// The occupied slots with their values, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> + '_ {
        self.branches.iter().enumerate().flat_map(|(bi, b)| {
            b.iter().enumerate().flat_map(move |(li, c)| {
                let base = (bi * FAN + li) * CHUNK;
                c.iter()
                    .enumerate()
                    .filter_map(move |(k, v)| v.as_ref().map(|v| (base + k, v)))
            })
        })
    }

    /// Whether the leaf holding slot `i` is shared with `other` (nothing in it can differ).
    pub fn same_chunk(&self, other: &Slots<T>, i: usize) -> bool {
        match (self.leaf(i), other.leaf(i)) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_on_write() {
        let mut a: Slots<u32> = Slots::default();
        for i in 0..1000 {
            assert_eq!(a.push(i), i as usize);
        }
        let mut b = a.clone();
        b.set(3, Some(33));
        b.set(1500, Some(7));
        assert_eq!(a.get(3), Some(&3));
        assert_eq!(b.get(3), Some(&33));
        assert!(a.same_chunk(&b, 700));
        assert!(!a.same_chunk(&b, 3));
        assert_eq!(b.get(1200), None);
        assert_eq!(b.len(), 1501);
        assert_eq!(b.iter().count(), 1001);
        b.set(5, None);
        assert_eq!(b.get(5), None);
        // Past one branch: slots there live and are shared as well.
        let far = 3 * CHUNK * FAN + 17;
        b.set(far, Some(9));
        assert_eq!(b.get(far), Some(&9));
        assert_eq!(b.get(far - 1), None);
        assert_eq!(b.len(), far + 1);
        assert_eq!(b.iter().last(), Some((far, &9)));
        let c = b.clone();
        b.set(far, Some(10));
        assert_eq!((b.get(far), c.get(far)), (Some(&10), Some(&9)));
        assert!(b.same_chunk(&c, 0) && !b.same_chunk(&c, far));
    }
}
