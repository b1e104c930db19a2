//! The compiled classifier against the reference walk: the fuzzer's bytes are the random
//! decisions of `rtrouter::gen`'s ruleset and packet generators (every extension it knows,
//! user chains, jumps, gotos, RETURNs, negations, stateful matches); both engines must agree
//! on every outcome, path, packet, reply and counter (`gen::differential`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtrouter::eval::Chance;
use rtrouter::gen::{self, ByteChance};

fuzz_target!(|data: &[u8]| {
    let mut c = ByteChance::new(data);
    let rules = gen::random_ruleset(&mut c);
    let n = 1 + c.below(40) as usize;
    let packets: Vec<_> = (0..n)
        .map(|_| {
            let (from, p) = gen::random_packet(&mut c);
            (from, p, c.below(4))
        })
        .collect();
    if let Err(e) = gen::differential(&rules, &packets, u64::from(c.below(u32::MAX))) {
        panic!("{e}\n--- rules\n{rules}");
    }
});
