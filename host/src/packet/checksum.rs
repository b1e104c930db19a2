//! Internet checksums: the full computation (RFC 1071) and incremental updates when a field
//! changes (RFC 1624, eqn. 3: `HC' = ~(~HC + ~m + m')`), so that NAT and TTL changes do not
//! re-sum the whole packet.

/// The one's-complement sum of `data` (not complemented), folded to 16 bits.
pub fn sum(data: &[u8]) -> u32 {
    // Eight bytes at a time as two 32-bit words: 2^32 = 1 modulo 2^16 - 1, so folding the
    // 32-bit sums gives the 16-bit one's-complement sum (RFC 1071 2(B)), with room in the
    // accumulator for any packet.
    let mut acc: u64 = 0;
    let mut wide = data.chunks_exact(8);
    for c in &mut wide {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut chunks = wide.remainder().chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u64::from(*b) << 8;
    }
    fold(acc)
}

fn fold(mut acc: u64) -> u32 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u32
}

/// The checksum field value for data whose partial sums add to `s`.
pub fn finish(s: u32) -> u16 {
    !(fold(u64::from(s)) as u16)
}

/// The sum of the IPv4 or IPv6 pseudo-header for an upper-layer checksum.
pub fn pseudo_header(src: &[u8], dst: &[u8], proto: u8, len: u32) -> u32 {
    let mut acc = u64::from(sum(src)) + u64::from(sum(dst)) + u64::from(proto);
    acc += u64::from(len >> 16) + u64::from(len & 0xffff);
    fold(acc)
}

/// Adjusts a checksum field in place for a change of `old` bytes to `new` (same length, even
/// alignment within the checksummed data).
pub fn update(field: &mut [u8], old: &[u8], new: &[u8]) {
    let hc = u16::from_be_bytes([field[0], field[1]]);
    let mut acc = u64::from(!hc);
    acc += u64::from(!(sum(old) as u16));
    acc += u64::from(sum(new));
    let v = !(fold(acc) as u16);
    field.copy_from_slice(&v.to_be_bytes());
}

/// As [`update`], for a UDP checksum, where 0 means "no checksum" and stays 0, and a computed
/// 0 is sent as 0xffff (RFC 768).
pub fn update_udp(field: &mut [u8], old: &[u8], new: &[u8]) {
    if field == [0, 0] {
        return;
    }
    update(field, old, new);
    if field == [0, 0] {
        field.copy_from_slice(&[0xff, 0xff]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        assert_eq!(sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0xddf2);
    }

    #[test]
    fn wide_sum_equals_the_16_bit_sum() {
        let data: Vec<u8> = (0..1001u32).map(|i| (i * 131 + 7) as u8).collect();
        for len in [0, 1, 2, 7, 8, 9, 15, 16, 17, 64, 1000, 1001] {
            let d = &data[..len];
            let mut acc: u64 = 0;
            for c in d.chunks(2) {
                acc += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
            assert_eq!(sum(d), fold(acc), "{len} bytes");
        }
        assert_eq!(sum(&[0xff; 4096]), 0xffff);
    }

    #[test]
    fn incremental_equals_full() {
        let mut data = [
            0x45u8, 0, 0, 28, 0x12, 0x34, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = finish(sum(&data));
        data[10..12].copy_from_slice(&c.to_be_bytes());
        let (old, new) = ([10u8, 0, 0, 2], [192u8, 168, 7, 9]);
        let mut field = [data[10], data[11]];
        update(&mut field, &old, &new);
        data[16..20].copy_from_slice(&new);
        data[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(u16::from_be_bytes(field), finish(sum(&data)));
    }
}
