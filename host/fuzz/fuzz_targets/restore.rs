//! Any bytes as iptables-restore input: the parser and validator must return, never panic or
//! hang, and whatever loads must save to text that loads back to the same ruleset.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtrouter::ruleset::{restore::restore, validate, Env, Ruleset};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(rs) = restore(&Ruleset::default(), text, "fuzz", false) else {
        return;
    };
    let saved = rs.save(false);
    let again = restore(&Ruleset::default(), &saved, "saved", false).expect("saved output must load");
    assert_eq!(again, rs, "load(save(x)) != x for:\n{saved}");
    let _ = validate(&rs, &Env::default());
});
