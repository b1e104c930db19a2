//! Any bytes as a capture file (pcapng or classic pcap): the reader must return packets or an
//! error, never panic; whatever it returns replays through the router without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtrouter::gen::topology;
use rtrouter::router::Router;
use rtrouter::ruleset::ValidRuleset;
use std::sync::OnceLock;

fn router() -> &'static Router {
    static R: OnceLock<Router> = OnceLock::new();
    R.get_or_init(|| Router::new(topology(), ValidRuleset::empty(), Default::default(), 5))
}

fuzz_target!(|data: &[u8]| {
    if rtrouter::pcap::read(data).is_ok() {
        let _ = rtrouter::replay::replay(router(), data, Some("lan0"), 1);
    }
});
