//! Any bytes as what a plugin target hands back (the metadata record, the packet bytes it
//! wrote, its return code), applied to a packet in flight: never a panic, and when the packet
//! goes on it parses, its headers are the ones the rules see, and its checksums are right.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtrouter::eval::{plugin_out, Ct, CtInfo, Pkt, Verdict};
use rtrouter::packet::build::{self, Ip4, TcpSeg};
use rtrouter::packet::{checksums_ok, parse};
use rtrouter::route::IfaceId;

fuzz_target!(|data: &[u8]| {
    let Some((code, rest)) = data.split_first() else { return };
    let (meta, body) = rest.split_at(rtrouter_sdk::abi::META_LEN.min(rest.len()));
    let mut buf = Vec::new();
    let seg = TcpSeg {
        sport: 40000,
        dport: 443,
        seq: 1,
        ack: 0,
        flags: 2,
        window: 1000,
    };
    build::tcp(
        &mut buf,
        Ip4::new([10, 0, 1, 2].into(), [192, 0, 2, 9].into(), 6),
        seg,
        &[0u8; 24],
    );
    let h = parse(&buf).expect("the built segment parses");
    let mut p = Pkt {
        buf: &mut buf,
        h,
        in_if: Some(IfaceId(0)),
        out_if: Some(IfaceId(1)),
        mark: 0,
        ct: Ct::Tracked(CtInfo::new_from(&h)),
        zone: 0,
        nat: None,
        nat_done: false,
        seen: false,
        trace: false,
    };
    let v = plugin_out::apply(&mut p, meta, body, i32::from(*code as i8));
    if !matches!(v, Some(Verdict::Drop | Verdict::Abort(_) | Verdict::Reject(_))) {
        assert_eq!(
            parse(p.buf).ok(),
            Some(p.h),
            "a packet that goes on parses, as the rules saw it"
        );
        assert_ne!(checksums_ok(p.buf), Some(false), "with right checksums");
    }
});
