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

/// `reciprocal_scale`: `v` scaled into `0..n`.
pub fn reciprocal_scale(v: u32, n: u32) -> u32 {
    ((u64::from(v) * u64::from(n)) >> 32) as u32
}
