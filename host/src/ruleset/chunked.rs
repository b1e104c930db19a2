//! A dense vector shared between generations: fixed-size chunks behind `Arc`s, copied on
//! write — [`super::slots::Slots`] without the holes, for what a chain keeps per rule
//! position (its jumps, its compiled layout, its classifier's fields).
//!
//! A new version of a long chain keeps most of its rules at their positions: cloning copies
//! one pointer per chunk, and [`Chunked::replaced`] shares every chunk before the change (and,
//! when the length does not change, every whole chunk after it), so a rule appended to a
//! 100,000-rule chain copies one chunk, not the chain. A lookup is two indexings.

use smallvec::SmallVec;
use std::sync::Arc;

/// Elements per chunk. Every chunk is full but the last.
const CHUNK: usize = 512;

pub struct Chunked<T> {
    /// Every chunk holds `CHUNK` elements but the last, which holds at least one. Each is
    /// one allocation, its exact size, and a vector of one chunk holds it inline (most
    /// chains are short: a 400,000-chain table keeps a few of these per chain).
    chunks: SmallVec<[Arc<[T]>; 1]>,
    len: usize,
}

impl<T> Clone for Chunked<T> {
    fn clone(&self) -> Self {
        Chunked {
            chunks: self.chunks.clone(),
            len: self.len,
        }
    }
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: SmallVec::new(),
            len: 0,
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Chunked<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.chunks.iter().flat_map(|c| c.iter()))
            .finish()
    }
}

impl<T: Clone> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(it: I) -> Self {
        let mut v = Chunked::default();
        v.append(it);
        v
    }
}

impl<T: Clone> Chunked<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn first(&self) -> Option<&T> {
        self.get(0)
    }

    pub fn last(&self) -> Option<&T> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    pub fn to_vec(&self) -> Vec<T> {
        self.iter().cloned().collect()
    }

    /// Appends `v` (copying the last chunk when it has room: a run of appends goes through
    /// [`Chunked::extend`]).
    pub fn push(&mut self, v: T) {
        self.append([v]);
    }

    pub fn extend(&mut self, it: impl IntoIterator<Item = T>) {
        self.append(it);
    }

    /// Inserts `v` at `i` (at most the length): the elements after it move.
    pub fn insert(&mut self, i: usize, v: T) {
        self.splice(i..i, [v]);
    }

    /// Removes the element at `i` (`None` past the end); the elements after it move.
    pub fn remove(&mut self, i: usize) -> Option<T> {
        let v = self.get(i).cloned()?;
        self.splice(i..i + 1, []);
        Some(v)
    }

    /// Replaces the element at `i` (past the end: nothing).
    pub fn set(&mut self, i: usize, v: T) {
        if i < self.len {
            self.splice(i..i + 1, [v]);
        }
    }

    /// Replaces the elements at `range` (clamped to the length) with `with`.
    pub fn splice(&mut self, range: std::ops::Range<usize>, with: impl IntoIterator<Item = T>) {
        let end = range.end.min(self.len);
        let start = range.start.min(end);
        *self = self.replaced(start, self.len - end, with);
    }

    pub fn clear(&mut self) {
        *self = Chunked::default();
    }

    /// How many elements `self` and `other` share at their start and, in what is left, at
    /// their end, as `same` tells (chunks the two share are not looked into).
    pub fn shared_ends(&self, other: &Chunked<T>, same: impl Fn(&T, &T) -> bool) -> (usize, usize) {
        let mut prefix = 0;
        for (a, b) in self.chunks.iter().zip(&other.chunks) {
            if Arc::ptr_eq(a, b) {
                prefix += a.len();
                continue;
            }
            let k = a.iter().zip(b.iter()).take_while(|(x, y)| same(x, y)).count();
            prefix += k;
            if k < a.len() || a.len() != b.len() {
                break;
            }
        }
        let room = self.len.min(other.len) - prefix;
        let mut suffix = 0;
        while suffix < room {
            let (i, j) = (self.len - 1 - suffix, other.len - 1 - suffix);
            // Whole chunks at the same place in both and shared: skipped at once.
            if i == j && ((i + 1).is_multiple_of(CHUNK) || i + 1 == self.len) {
                let c = i / CHUNK;
                let start = c * CHUNK;
                if Arc::ptr_eq(&self.chunks[c], &other.chunks[c]) && start >= prefix {
                    suffix += i + 1 - start;
                    continue;
                }
            }
            match (self.get(i), other.get(j)) {
                (Some(a), Some(b)) if same(a, b) => suffix += 1,
                _ => break,
            }
        }
        (prefix, suffix.min(room))
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK).and_then(|c| c.get(i % CHUNK))
    }

    pub fn iter(&self) -> Iter<'_, T> {
        fn each<T>(c: &Arc<[T]>) -> std::slice::Iter<'_, T> {
            c.iter()
        }
        self.chunks
            .iter()
            .flat_map(each as fn(&Arc<[T]>) -> std::slice::Iter<'_, T>)
    }

    /// The elements chunk by chunk.
    pub fn slices(&self) -> impl Iterator<Item = &[T]> + '_ {
        self.chunks.iter().map(|c| &c[..])
    }

    /// The elements, each chunk copied first where it is shared.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.chunks.iter_mut().flat_map(|c| Arc::make_mut(c).iter_mut())
    }

    /// The elements at positions `range` (clamped to the length), in order.
    pub fn range(&self, range: std::ops::Range<usize>) -> Range<'_, T> {
        let end = range.end.min(self.len);
        let start = range.start.min(end);
        let (first, last) = (start / CHUNK, end.div_ceil(CHUNK));
        Range {
            chunks: self.chunks[first..last].iter(),
            base: first * CHUNK,
            start,
            end,
            cur: [].iter(),
        }
    }

    /// Appends `it`, the last chunk copied when it has room.
    pub fn append(&mut self, it: impl IntoIterator<Item = T>) {
        let mut buf: Vec<T> = Vec::new();
        if !self.len.is_multiple_of(CHUNK) {
            if let Some(last) = self.chunks.pop() {
                buf.extend(last.iter().cloned());
            }
        }
        let mut it = it.into_iter().peekable();
        while it.peek().is_some() || !buf.is_empty() {
            let room = CHUNK - buf.len();
            buf.extend(it.by_ref().take(room));
            self.len = self.chunks.len() * CHUNK + buf.len();
            self.chunks.push(Arc::from(std::mem::take(&mut buf)));
        }
    }

    /// This vector with the elements between its first `p` and its last `s` replaced by
    /// `mid`. The chunks before position `p` are shared with `self`; so are the whole chunks
    /// after the change when they stay at their positions (the change keeps the length).
    pub fn replaced(&self, p: usize, s: usize, mid: impl IntoIterator<Item = T>) -> Chunked<T> {
        let p = p.min(self.len);
        let s = s.min(self.len - p);
        let mut out = Chunked {
            chunks: self.chunks[..p / CHUNK].iter().cloned().collect(),
            len: p / CHUNK * CHUNK,
        };
        let tail = self.len - s;
        // The start of `p`'s chunk, then the new elements.
        let mid: Vec<T> = self.range(out.len..p).cloned().chain(mid).collect();
        let new_len = out.len + mid.len() + s;
        // From where the tail can be shared: the first chunk boundary at or after the tail's
        // start, when the tail starts at the same position in both.
        let keep_from = if new_len == self.len {
            tail.next_multiple_of(CHUNK).min(self.len)
        } else {
            self.len
        };
        out.append(mid.into_iter().chain(self.range(tail..keep_from).cloned()));
        if keep_from < self.len {
            out.chunks.extend(self.chunks[keep_from / CHUNK..].iter().cloned());
            out.len = self.len;
        }
        out
    }

    /// Whether the chunk holding position `i` is the same chunk in `other` (so every element
    /// in it is the same).
    #[cfg(test)]
    fn same_chunk(&self, other: &Chunked<T>, i: usize) -> bool {
        match (self.chunks.get(i / CHUNK), other.chunks.get(i / CHUNK)) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Heap bytes held (shared chunks counted in full).
    pub fn heap_bytes(&self) -> usize {
        let spilled = if self.chunks.spilled() {
            self.chunks.capacity()
        } else {
            0
        };
        spilled * std::mem::size_of::<Arc<[T]>>() + self.len * std::mem::size_of::<T>()
    }
}

impl<T: PartialEq> PartialEq for Chunked<T> {
    fn eq(&self, o: &Self) -> bool {
        self.len == o.len
            && self
                .chunks
                .iter()
                .flat_map(|c| c.iter())
                .eq(o.chunks.iter().flat_map(|c| c.iter()))
    }
}

/// The elements of a range of positions, in order.
#[derive(Debug)]
pub struct Range<'a, T> {
    chunks: std::slice::Iter<'a, Arc<[T]>>,
    /// The position of the next chunk's first element.
    base: usize,
    start: usize,
    end: usize,
    cur: std::slice::Iter<'a, T>,
}

impl<'a, T> Iterator for Range<'a, T> {
    type Item = &'a T;

    #[inline]
    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(v) = self.cur.next() {
                return Some(v);
            }
            let c = self.chunks.next()?;
            let (a, b) = (
                self.start.max(self.base) - self.base,
                self.end.min(self.base + c.len()) - self.base,
            );
            self.base += c.len();
            self.cur = c[a..b].iter();
        }
    }
}

/// The elements in order.
pub type Iter<'a, T> = std::iter::FlatMap<
    std::slice::Iter<'a, Arc<[T]>>,
    std::slice::Iter<'a, T>,
    fn(&'a Arc<[T]>) -> std::slice::Iter<'a, T>,
>;

impl<'a, T: Clone> IntoIterator for &'a Chunked<T> {
    type Item = &'a T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T: Clone> IntoIterator for &'a mut Chunked<T> {
    type Item = &'a mut T;
    type IntoIter = Box<dyn Iterator<Item = &'a mut T> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter_mut())
    }
}

impl<T: Clone> From<Vec<T>> for Chunked<T> {
    fn from(v: Vec<T>) -> Self {
        v.into_iter().collect()
    }
}

impl<T: Clone> std::ops::Index<usize> for Chunked<T> {
    type Output = T;

    #[inline]
    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random number below `n` (0 for 0), from `seed`.
    fn below(seed: &mut u64, n: usize) -> usize {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*seed >> 33) as usize % n.max(1)
    }

    #[test]
    fn replaced_equals_a_rebuilt_vector_and_shares_what_it_keeps() {
        let mut seed = 7u64;
        let mut next = |n: usize| below(&mut seed, n);
        for _ in 0..300 {
            let n = next(3 * CHUNK);
            let old: Vec<u32> = (0..n as u32).collect();
            let v: Chunked<u32> = old.iter().copied().collect();
            assert_eq!(v.iter().copied().collect::<Vec<_>>(), old);
            let p = next(n + 1);
            let s = next(n - p + 1);
            let mid: Vec<u32> = (0..next(CHUNK + 3) as u32).map(|x| 10_000 + x).collect();
            let w = v.replaced(p, s, mid.iter().copied());
            let mut want = old[..p].to_vec();
            want.extend(&mid);
            want.extend_from_slice(&old[n - s..]);
            assert_eq!(w.len(), want.len());
            assert_eq!(w.iter().copied().collect::<Vec<_>>(), want);
            for (i, x) in want.iter().enumerate() {
                assert_eq!(w.get(i), Some(x));
                assert_eq!(w[i], *x);
            }
            assert_eq!(w.get(want.len()), None);
            let (a, b) = (next(want.len() + 1), next(want.len() + 1));
            let (a, b) = (a.min(b), a.max(b));
            assert_eq!(w.range(a..b).copied().collect::<Vec<_>>(), want[a..b]);
            // Chunks wholly before the change are shared.
            for i in (0..p / CHUNK * CHUNK).step_by(CHUNK) {
                assert!(w.same_chunk(&v, i));
            }
        }
        // A change that keeps the length shares the whole chunks after it.
        let v: Chunked<u32> = (0..4 * CHUNK as u32).collect();
        let w = v.replaced(5, 4 * CHUNK - 6, [99]);
        assert_eq!(w[5], 99);
        assert!(!w.same_chunk(&v, 0));
        assert!((CHUNK..4 * CHUNK).step_by(CHUNK).all(|i| w.same_chunk(&v, i)));
        // Appending copies the last chunk only.
        let w = v.replaced(v.len(), 0, [1, 2, 3]);
        assert!((0..4 * CHUNK).step_by(CHUNK).all(|i| w.same_chunk(&v, i)));
        assert_eq!(w.len(), 4 * CHUNK + 3);
    }

    #[test]
    fn shared_ends_are_what_a_scan_finds() {
        let mut seed = 3u64;
        let mut next = |n: usize| below(&mut seed, n);
        for round in 0..400 {
            let n = next(4 * CHUNK);
            let v: Chunked<u32> = (0..n as u32).collect();
            let p = next(n + 1);
            let s = next(n - p + 1);
            // Sometimes the new elements repeat the ones they replace (a change that puts
            // back what was there), sometimes they are new.
            let mid: Vec<u32> = match next(3) {
                0 => v.range(p..n - s).copied().collect(),
                1 => (0..(n - s - p) as u32).map(|x| 100_000 + x).collect(),
                _ => (0..next(CHUNK + 5) as u32).map(|x| 100_000 + x).collect(),
            };
            let w = v.replaced(p, s, mid);
            let (a, b) = (v.to_vec(), w.to_vec());
            let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
            let room = a.len().min(b.len()) - prefix;
            let suffix = a
                .iter()
                .rev()
                .zip(b.iter().rev())
                .take(room)
                .take_while(|(x, y)| x == y)
                .count();
            assert_eq!(
                v.shared_ends(&w, |x, y| x == y),
                (prefix, suffix),
                "round {round}: n {n} p {p} s {s}"
            );
            assert_eq!(
                w.shared_ends(&v, |x, y| x == y),
                (prefix, suffix),
                "round {round}: reversed"
            );
        }
    }
}
