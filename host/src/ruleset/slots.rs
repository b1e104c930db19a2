//! A vector shared between generations: fixed-size chunks behind `Arc`s, copied on write.
//!
//! Chains are addressed by slot (their `ChainId`) in every generation, and a generation that
//! changes a few chains must not copy the others: cloning a `Slots` copies one pointer per
//! chunk (a 400,000-chain table: about 1,600), and setting a slot copies only its chunk. A
//! lookup is two indexings, so the packet path pays nothing for it.

use std::sync::Arc;

/// Slots per chunk.
const CHUNK: usize = 256;

#[derive(Debug)]
pub struct Slots<T> {
    chunks: Vec<Arc<Vec<Option<T>>>>,
    len: usize,
}

impl<T> Clone for Slots<T> {
    fn clone(&self) -> Self {
        Slots {
            chunks: self.chunks.clone(),
            len: self.len,
        }
    }
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            chunks: Vec::new(),
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

    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK).and_then(|c| c[i % CHUNK].as_ref())
    }

    /// Sets slot `i` (growing the vector when `i` is past the end).
    pub fn set(&mut self, i: usize, v: Option<T>) {
        while self.chunks.len() <= i / CHUNK {
            self.chunks.push(Arc::new(vec![None; CHUNK]));
        }
        Arc::make_mut(&mut self.chunks[i / CHUNK])[i % CHUNK] = v;
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
        self.chunks.iter().enumerate().flat_map(|(ci, c)| {
            c.iter()
                .enumerate()
                .filter_map(move |(k, v)| v.as_ref().map(|v| (ci * CHUNK + k, v)))
        })
    }

    /// Whether chunk `i / CHUNK` is shared with `other` (nothing in it can differ).
    pub fn same_chunk(&self, other: &Slots<T>, i: usize) -> bool {
        match (self.chunks.get(i / CHUNK), other.chunks.get(i / CHUNK)) {
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
    }
}
