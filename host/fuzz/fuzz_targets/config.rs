//! Any bytes as router.toml: errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtrouter::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Config::parse(text, "fuzz.toml");
});
