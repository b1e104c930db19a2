//! The kernel's `jhash` (`include/linux/jhash.h`, Bob Jenkins' lookup3), for the extensions
//! whose results must agree with Linux's: `-m cluster` and `HMARK` pick nodes and marks with
//! it, so a mixed cluster of Linux routers and rtrouter agree.

const JHASH_INITVAL: u32 = 0xdead_beef;

/// `__jhash_nwords` with `__jhash_final`.
fn nwords(a: u32, b: u32, c: u32, init: u32) -> u32 {
    let (mut a, mut b, mut c) = (a.wrapping_add(init), b.wrapping_add(init), c.wrapping_add(init));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(14));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(11));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(25));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(16));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(4));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(14));
    c ^= b;
    c.wrapping_sub(b.rotate_left(24))
}

/// `jhash_1word`.
pub fn jhash_1word(a: u32, initval: u32) -> u32 {
    nwords(a, 0, 0, initval.wrapping_add(JHASH_INITVAL).wrapping_add(1 << 2))
}

/// `jhash_3words`.
pub fn jhash_3words(a: u32, b: u32, c: u32, initval: u32) -> u32 {
    nwords(a, b, c, initval.wrapping_add(JHASH_INITVAL).wrapping_add(3 << 2))
}

/// `__jhash_mix`.
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

/// `jhash2`: a hash of `k`'s 32-bit words.
pub fn jhash2(k: &[u32], initval: u32) -> u32 {
    let init = JHASH_INITVAL.wrapping_add((k.len() as u32) << 2).wrapping_add(initval);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut k = k;
    while k.len() > 3 {
        a = a.wrapping_add(k[0]);
        b = b.wrapping_add(k[1]);
        c = c.wrapping_add(k[2]);
        mix(&mut a, &mut b, &mut c);
        k = &k[3..];
    }
    if k.is_empty() {
        return c;
    }
    if k.len() == 3 {
        c = c.wrapping_add(k[2]);
    }
    if k.len() >= 2 {
        b = b.wrapping_add(k[1]);
    }
    a = a.wrapping_add(k[0]);
    // `__jhash_final` is `nwords` without the initial value.
    nwords(a, b, c, 0)
}

/// `reciprocal_scale`: `v` scaled into `0..n`.
pub fn reciprocal_scale(v: u32, n: u32) -> u32 {
    ((u64::from(v) * u64::from(n)) >> 32) as u32
}

#[cfg(test)]
mod jhash2_tests {
    use super::*;

    /// jhash2 over one and three words is jhash_1word and jhash_3words, as in the kernel.
    #[test]
    fn jhash2_agrees_with_the_word_forms() {
        for (a, b, c, seed) in [(1u32, 2u32, 3u32, 0u32), (0xdead, 0xbeef, 7, 0x1234_5678)] {
            assert_eq!(jhash2(&[a], seed), jhash_1word(a, seed));
            assert_eq!(jhash2(&[a, b, c], seed), jhash_3words(a, b, c, seed));
        }
        assert_eq!(jhash2(&[], 5), JHASH_INITVAL.wrapping_add(5));
    }
}
